"""open: the open datasets a statistics office would publish, from the canonical cases.

Four datasets (``lawlake.opendata.datasets``), counted from ``silver.police_cases`` with
the case chain for the later stages:

- ``open.cases_by_year_prefecture`` — cases per filing year × prefecture, with the
  province and all-years totals;
- ``open.cases_by_year_charge`` — per filing year × charge, nested in charge categories
  (the Criminal Law's chapters), with category and overall totals;
- ``open.case_funnel_by_year_prefecture`` — filed → transferred → prosecuted → tried →
  sentenced per filing year × prefecture (a case counts at every stage up to the
  furthest it reached); the two transfer stages (police→procuratorate: ``transferred``;
  procuratorate→court: ``prosecuted``) also by ``channel`` (online, paper, unknown —
  from ``silver.police_transfers`` and the first-instance ``silver.court_cases``), as
  cells of the same suppression system, with the ``online_rate`` computed only from
  published cells;
- ``open.stage_durations_by_year`` — percentiles of the days in each stage.

**Withheld cases.** A police case is left out of every dataset when any of its chains
has ``seal_status`` other than ``not_sealed`` (sealed, pending, or missing), when no
chain covers it (its suspects are unknown, so whether one is a sealed minor is
doubtful), or when its region is outside the province. The exclusion reconciles:
cases in = published + suppressed + withheld.

**Disclosure control.** The three count datasets share margins, so they are protected
together as one linked system (``lawlake.opendata.linked``): primary suppression below
``Settings.open_min_cell`` and LP complementary suppression (``lawlake.opendata.suppress``).
Before anything is written, the independent LP attack (``lawlake.opendata.attack``)
bounds every suppressed cell from what would be published; the job refuses to write
candidates it can break. A duration row is published only with at least
``min_duration_cases`` cases (``schemas/open/policy/disclosure.yaml``).

After publication the datasets are exported as a portal folder with DCAT-AP 3 metadata
(``<lake>/open/_portal``, see :func:`lawlake.opendata.portal.portal_location`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lawlake import contracts
from lawlake.config import Settings
from lawlake.declarations import Params, Stage, Table
from lawlake.opendata import policy as opendata_policy
from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, COUNT_DATASETS, DATASETS, DURATIONS, FUNNEL
from lawlake.opendata.linked import TOTAL, Grid, cell_values, linked_cells
from lawlake.opendata.policy import OpenPolicy
from lawlake.suites import Suite, check, suite_for
from lawlake.tables import first_row

__all__ = [
    "DATASETS",
    "OpenPolicy",
    "SealStatusMissing",
    "load_policy",
    "charge_categories",
    "build_case_facts",
    "build_base_counts",
    "build_channel_counts",
    "build_stage_durations",
    "build_grid",
    "build_count_tables",
    "reconcile",
    "disclosure_results",
    "gate_results",
    "checks",
    "build_protected_cells",
    "silver_evidence_check",
    "open_tables",
    "STAGE",
]

CATEGORIES_FILE = Path(__file__).resolve().parents[1] / "schemas" / "reference" / "charge_categories.csv"
DURATION_STAGES = ("police", "review", "first_instance")
PERCENTILES = (0.25, 0.5, 0.75, 0.9)
UNKNOWN_CHARGE = "unknown"  # a case whose charge normalize could not recognize: its own charge and category rows
UNKNOWN_CATEGORY = "CL-unknown"


class SealStatusMissing(ValueError):
    """The case chain has no ``seal_status``: nothing can be opened without knowing what is sealed."""


def load_policy(settings: Settings) -> OpenPolicy:
    """The disclosure policy (``schemas/open/policy/disclosure.yaml``) with the configured minimum cell."""
    return opendata_policy.load_policy(settings.open_min_cell)


def _article(text: str) -> int:
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    if not digits:
        raise ValueError(f"charge article {text!r} does not start with a number")
    return int(digits)


def charge_categories() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(category code, name, its charges) for every category holding a charge of the charge list, in order.

    A charge is in the chapter whose article range holds its article. Raises ValueError
    for a charge no chapter holds.
    """
    from lawlake.rules import reference

    with CATEGORIES_FILE.open(encoding="utf-8", newline="") as f:
        chapters = [(r["category_code"], r["name"], int(r["first_article"]), int(r["last_article"])) for r in csv.DictReader(f)]
    members: dict[str, list[str]] = {code: [] for code, *_ in chapters}
    for charge in reference.charges():
        art = _article(charge.criminal_law_article)
        code = next((c for c, _, lo, hi in chapters if lo <= art <= hi), None)
        if code is None:
            raise ValueError(f"charge {charge.charge_code} (article {charge.criminal_law_article}) is in no chapter of {CATEGORIES_FILE.name}")
        members[code].append(charge.charge_code)
    return tuple((code, name, tuple(sorted(members[code]))) for code, name, *_ in chapters if members[code])


def _channel(paper, unknown):
    """A case's channel over its transfers: paper if any was on paper, else unknown if any channel is not known, else online."""
    return F.when(paper == 1, "paper").when(unknown == 1, "unknown").otherwise("online")


def _transfer_channels(chain: DataFrame, transfers: DataFrame | None, court_cases: DataFrame | None) -> tuple[DataFrame | None, DataFrame | None]:
    """(police_case_id, police_transfer_channel) and (police_case_id, court_transfer_channel), one row per case that has one."""
    def agg(df: DataFrame, key: str, name: str) -> DataFrame:
        ch = F.col("transfer_channel")
        return df.groupBy(key).agg(_channel(F.max((ch == "paper").cast("int")), F.max(F.coalesce(ch != "online", F.lit(True)).cast("int"))).alias(name))

    police = agg(transfers, "police_case_id", "police_transfer_channel") if transfers is not None else None
    court = None
    if court_cases is not None:
        first = court_cases.where(F.col("trial_level") == "first_instance").select(F.col("case_number").alias("first_instance_case_number"), "transfer_channel")
        by_number = agg(first, "first_instance_case_number", "transfer_channel")
        # Every chain the procuratorate prosecuted was transferred to court: one without its first-instance case has an unknown channel.
        sent = chain.where(F.col("prosecution_decision") == "prosecute").select("police_case_id", "first_instance_case_number")
        court = agg(sent.join(by_number, "first_instance_case_number", "left"), "police_case_id", "court_transfer_channel")
    return police, court


def build_case_facts(police_cases: DataFrame, chain: DataFrame, regions: DataFrame, *, province: str,
                     transfers: DataFrame | None = None, court_cases: DataFrame | None = None) -> DataFrame:
    """One row per canonical police case: filing year, prefecture, charge, furthest stage, stage durations, and why it is withheld (null: it is not).

    ``police_transfer_channel`` (a case that reached ``transferred``) and
    ``court_transfer_channel`` (one that reached ``prosecuted``): online, paper (any of its
    transfers on paper) or unknown (a channel not delivered, no transfer record, or
    ``transfers`` / ``court_cases`` not given); null for a case that did not reach the stage.

    ``withheld_reason``: ``sealed`` (a chain is sealed), ``seal_pending`` (a chain's seal
    status is pending, missing or unknown), ``no_chain`` (no chain covers the case),
    ``filed_on_unknown`` / ``region_unknown`` (it cannot be placed in the grid),
    ``outside_province`` (its region is not in a prefecture of ``province``). A case
    without a known charge is counted under the charge ``unknown``.
    """
    if "seal_status" not in chain.columns:
        raise SealStatusMissing("gold.case_chain has no seal_status column: the open stage needs sealed/not_sealed/pending per chain")
    status = F.coalesce(F.col("seal_status"), F.lit("missing"))
    per_case = chain.groupBy("police_case_id").agg(
        F.max((status == "sealed").cast("int")).alias("any_sealed"),
        F.max((status != "not_sealed").cast("int")).alias("any_unsealed"),
        F.max(F.col("prosecution_received_on").isNotNull().cast("int")).alias("any_review"),
        F.max((F.col("prosecution_decision") == "prosecute").cast("int")).alias("any_prosecuted"),
        F.max(F.col("first_instance_judged_on").isNotNull().cast("int")).alias("any_tried"),
        F.max(((F.col("verdict") == "guilty") & ~F.coalesce(F.col("sentence_type"), F.lit("none")).isin("exempt", "none")).cast("int")).alias("any_sentenced"),
        F.min("prosecution_received_on").alias("review_from"),
        F.max("prosecution_decided_on").alias("review_to"),
        F.min("first_instance_filed_on").alias("trial_from"),
        F.max("first_instance_judged_on").alias("trial_to"),
    )
    # County → prefecture by the code list's parent links (abolished county codes still resolve); a prefecture is itself.
    prefectures = regions.where((F.col("level") == "prefecture") & (F.col("parent_code") == province)).select(F.col("code").alias("prefecture_code"))
    county_of = regions.select(F.col("code").alias("region_code"), F.col("parent_code").alias("parent"))
    cases = (
        police_cases.select("police_case_id", "region_code", F.coalesce(F.col("charge_code"), F.lit(UNKNOWN_CHARGE)).alias("charge_code"), "filed_on", "transferred_on")
        .join(county_of, "region_code", "left")
        .join(prefectures.select(F.col("prefecture_code").alias("region_code"), F.lit(True).alias("is_prefecture")), "region_code", "left")
        .withColumn("prefecture_code", F.when(F.col("is_prefecture"), F.col("region_code")).otherwise(F.col("parent")))
        .join(prefectures.withColumn("in_province", F.lit(True)), "prefecture_code", "left")
        .join(per_case.withColumn("has_chain", F.lit(True)), "police_case_id", "left")
    )
    police_ch, court_ch = _transfer_channels(chain, transfers, court_cases)
    cases = cases.join(police_ch, "police_case_id", "left") if police_ch is not None else cases.withColumn("police_transfer_channel", F.lit(None).cast("string"))
    cases = cases.join(court_ch, "police_case_id", "left") if court_ch is not None else cases.withColumn("court_transfer_channel", F.lit(None).cast("string"))
    reached = (
        F.when(F.col("any_sentenced") == 1, 5)
        .when(F.col("any_tried") == 1, 4)
        .when(F.col("any_prosecuted") == 1, 3)
        .when(F.col("transferred_on").isNotNull() | (F.col("any_review") == 1), 2)
        .otherwise(1)
    )

    def days(start: str, end: str):
        d = F.datediff(F.col(end), F.col(start))
        return F.when(d >= 0, d).cast("int")

    return cases.select(
        "police_case_id",
        F.year("filed_on").cast("string").alias("year"),
        F.col("prefecture_code").alias("region_code"),
        "charge_code",
        reached.cast("int").alias("furthest_stage"),
        F.when(reached >= 2, F.coalesce(F.col("police_transfer_channel"), F.lit("unknown"))).alias("police_transfer_channel"),
        F.when(reached >= 3, F.coalesce(F.col("court_transfer_channel"), F.lit("unknown"))).alias("court_transfer_channel"),
        days("filed_on", "transferred_on").alias("police_days"),
        days("review_from", "review_to").alias("review_days"),
        days("trial_from", "trial_to").alias("first_instance_days"),
        F.when(F.col("any_sealed") == 1, "sealed")
        .when(F.col("any_unsealed") == 1, "seal_pending")
        .when(F.col("has_chain").isNull(), "no_chain")
        .when(F.col("filed_on").isNull(), "filed_on_unknown")
        .when(F.col("region_code").isNull(), "region_unknown")
        .when(F.col("in_province").isNull(), "outside_province")
        .alias("withheld_reason"),
    )


def build_base_counts(facts: DataFrame) -> DataFrame:
    """One row per (year, prefecture, charge, furthest stage) with the number of cases that may be published."""
    return (
        facts.where(F.col("withheld_reason").isNull())
        .groupBy("year", "region_code", "charge_code", "furthest_stage")
        .agg(F.count(F.lit(1)).cast("int").alias("cases"))
    )


CHANNEL_COLUMNS = {"transferred": "police_transfer_channel", "prosecuted": "court_transfer_channel"}


def build_channel_counts(facts: DataFrame) -> DataFrame:
    """One row per (year, prefecture, transfer stage, channel) with the number of cases that may be published."""
    open_facts = facts.where(F.col("withheld_reason").isNull())
    parts = [open_facts.where(F.col(col).isNotNull()).groupBy("year", "region_code", F.col(col).alias("channel"))
             .agg(F.count(F.lit(1)).cast("int").alias("cases")).withColumn("stage", F.lit(stage))
             for stage, col in CHANNEL_COLUMNS.items()]
    return parts[0].unionByName(parts[1]).select("year", "region_code", "stage", "channel", "cases")


def _channel_rows(facts: DataFrame) -> list[tuple[str, str, str, str, int]]:
    return [(r["year"], r["region_code"], r["stage"], r["channel"], r["cases"]) for r in build_channel_counts(facts).collect()]


def build_stage_durations(facts: DataFrame, *, years: tuple[str, ...], min_cases: int) -> DataFrame:
    """One row per (filing year, stage) of the grid: cases with a duration and its percentiles in days, null below ``min_cases``.

    Percentiles interpolate linearly between ranks (numpy's default) and are rounded half up to 0.1 day.
    """
    spark = facts.sparkSession
    open_facts = facts.where(F.col("withheld_reason").isNull())
    parts = []
    for order, stage in enumerate(DURATION_STAGES, start=1):
        col = F.col(f"{stage}_days")
        parts.append(
            open_facts.where(col.isNotNull()).groupBy("year").agg(
                F.count(F.lit(1)).cast("int").alias("n"), F.percentile(col, list(PERCENTILES)).alias("p")
            ).select("year", F.lit(stage).alias("stage"), F.lit(order).alias("stage_order"), "n", "p")
        )
    stats = parts[0].unionByName(parts[1]).unionByName(parts[2])
    grid = spark.createDataFrame([(y, s, o) for y in years for o, s in enumerate(DURATION_STAGES, start=1)], "year string, stage string, stage_order int")
    joined = grid.join(stats.drop("stage_order"), ["year", "stage"], "left")
    ok = F.coalesce(F.col("n"), F.lit(0)) >= min_cases
    names = ("p25_days", "median_days", "p75_days", "p90_days")
    return joined.select(
        "year", "stage", F.col("stage_order").cast("int").alias("stage_order"),
        F.when(ok, F.col("n")).cast("int").alias("cases"),
        *[F.when(ok, F.round(F.col("p")[i], 1)).cast("double").alias(name) for i, name in enumerate(names)],
        (~ok).alias("is_suppressed"),
    )


def build_grid(years: list[str], regions: list[tuple[str, str, str, str | None]], *, province: str) -> tuple[Grid, dict[str, str]]:
    """The full grid (every year from the first to the last filing year, every prefecture, every categorized charge) and the names of its codes.

    ``regions`` are (code, name, level, parent_code) rows of the code list.
    """
    from lawlake.rules import reference

    if not years:
        raise ValueError("no police cases: there is nothing to open")
    span = [str(y) for y in range(int(min(years)), int(max(years)) + 1)]
    prefectures = tuple(code for code, _, level, parent in regions if level == "prefecture" and parent == province)
    if not prefectures:
        raise ValueError(f"province {province} has no prefectures in the code list")
    categories = charge_categories() + ((UNKNOWN_CATEGORY, "罪名不详", (UNKNOWN_CHARGE,)),)
    names = {code: name for code, name, *_ in regions}
    names[UNKNOWN_CHARGE] = "罪名不详"
    names.update({c.charge_code: c.name for c in reference.charges()})
    names.update({code: name for code, name, _ in categories})
    grid = Grid(years=tuple(span), province=province, prefectures=prefectures, categories=tuple((c, m) for c, _, m in categories))
    return grid, names


def duration_lower_bounds(grid: Grid, cells, durations: pd.DataFrame) -> dict[int, int]:
    """What a published duration count tells about the funnel: at least that many cases reached the stage."""
    stage_cell = {"police": "transferred", "review": "transferred", "first_instance": "tried"}
    out: dict[int, int] = {}
    for r in durations.itertuples(index=False):
        if not r.is_suppressed:
            i = cells.index[(stage_cell[r.stage], r.year, grid.province, TOTAL)]
            out[i] = max(out.get(i, 0), int(r.cases))
    return out


def build_count_tables(base: list[tuple[str, str, str, int, int]], grid: Grid, names: dict[str, str], policy: OpenPolicy, *, durations: pd.DataFrame,
                       channels: list[tuple[str, str, str, str, int]] | None = None):
    """The three count datasets, protected together: ``(tables, truth, protection)``.

    ``channels``: the transfer-channel counts (:func:`build_channel_counts`; None: every
    transfer's channel is unknown). ``truth`` maps every cell key to its unsuppressed
    count (for the attack's judge; never published).
    """
    from lawlake.opendata.render import count_tables
    from lawlake.opendata.suppress import protect

    cells = linked_cells(grid)
    values = cell_values(cells, grid, base, channels)
    protection = protect(cells, values, min_cell=policy.min_cell, zeros_published=policy.zeros_published,
                         known_lower=duration_lower_bounds(grid, cells, durations))
    tables = count_tables(grid, cells, values, protection.suppressed, names=names)
    truth = {k: int(values[i]) for i, k in enumerate(cells.keys)}
    return tables, truth, protection


def reconcile(facts_summary: dict[str | None, int], tables: dict[str, pd.DataFrame], truth: dict[tuple, int], grid: Grid) -> dict[str, dict[str, int]]:
    """Per count dataset, in cases: in = published + suppressed + withheld (over its finest cells, each case in exactly one)."""
    cases_in = sum(facts_summary.values())
    withheld = sum(n for reason, n in facts_summary.items() if reason is not None)
    finest = {
        BY_YEAR_PREFECTURE: lambda t: t[(t["year"] != TOTAL) & (t["region_level"] == "prefecture")],
        BY_YEAR_CHARGE: lambda t: t[(t["year"] != TOTAL) & (t["level"] == "charge")],
        FUNNEL: lambda t: t[(t["year"] != TOTAL) & (t["region_level"] == "prefecture") & (t["stage"] == "filed")],
    }
    out = {}
    for name, pick in finest.items():
        rows = pick(tables[name])
        published = int(rows.loc[~rows["is_suppressed"], "cases"].sum())
        if name == BY_YEAR_CHARGE:
            keys = [("filed", r.year, grid.province, r.charge_code) for r in rows.itertuples(index=False) if r.is_suppressed]
        else:
            keys = [("filed", r.year, r.region_code, TOTAL) for r in rows.itertuples(index=False) if r.is_suppressed]
        suppressed = sum(truth[k] for k in keys)
        out[name] = {"cases_in": cases_in, "published": published, "suppressed": suppressed, "withheld": withheld}
    return out


def disclosure_results(tables: dict[str, pd.DataFrame], policy: OpenPolicy, *, truth: dict[tuple, int] | None) -> list[dict]:
    """The independent LP attack on the datasets as they would be published, judged (gate-result dicts)."""
    from lawlake.opendata.attack import attack, judge

    return judge(attack(tables, zeros_published=policy.zeros_published), min_cell=policy.min_cell, zeros_published=policy.zeros_published, truth=truth)


def gate_results(spark, candidates: dict[str, Path], lake: Path, settings: Settings) -> dict[str, list[dict]]:
    """The open stage's extra gate checks, per candidate table (``quality.gate.rule_rate_results`` shape).

    - ``disclosure_attack(<table>)``: the independent LP attack on every candidate
      together, judged with the true counts recomputed from the published
      ``silver.police_cases`` and ``gold.case_chain``;
    - ``disclosure_attack(consistency)``: the candidates add up (on every table);
    - ``dcat_ap_3_shacl``: the catalog the portal would publish for exactly these
      candidates conforms to ``quality/shapes/dcat-ap-3.ttl`` (on every table).

    A check that cannot run is a failed check.
    """
    import datetime as dt
    import tempfile

    from deltalake import DeltaTable

    from lawlake import tables as lake_tables
    from lawlake.opendata import dcat
    from lawlake.opendata.portal import portal_location, render
    from lawlake.rules import reference

    policy = load_policy(settings)
    names = list(candidates)
    out: dict[str, list[dict]] = {n: [] for n in names}

    def failed(label: str, exc: Exception) -> dict:
        return {"expectation": label, "success": False, "observed": f"raised: {exc}", "threshold": None, "unexpected_count": None}

    try:
        frames = {n: DeltaTable(str(p)).to_pandas() for n, p in candidates.items()}
    except Exception as exc:  # noqa: BLE001 - a check that cannot run fails
        return {n: [failed("open_candidates_readable", exc)] for n in names}
    try:
        regions = reference.reference_dataframe(spark, "regions")
        def read(name: str) -> DataFrame:
            return lake_tables.read(spark, lake_tables.location(lake, name))

        facts = build_case_facts(read("silver.police_cases"), read("gold.case_chain"), regions, province=policy.province,
                                 transfers=read("silver.police_transfers"), court_cases=read("silver.court_cases"))
        years = [r["year"] for r in facts.where(F.col("year").isNotNull()).select("year").distinct().collect()]
        grid, _ = build_grid(years, [(r.code, r.name, r.level, r.parent_code) for r in reference.regions()], province=policy.province)
        cells = linked_cells(grid)
        base = [(r["year"], r["region_code"], r["charge_code"], r["furthest_stage"], r["cases"]) for r in build_base_counts(facts).collect()]
        values = cell_values(cells, grid, base, _channel_rows(facts))
        truth = {k: int(values[i]) for i, k in enumerate(cells.keys)}
        results = disclosure_results(frames, policy, truth=truth)
        for r in results:
            target = r["expectation"][len("disclosure_attack("):-1]
            for n in names if target == "consistency" else [target] if target in out else []:
                out[n].append(r)
    except Exception as exc:  # noqa: BLE001
        for n in names:
            out[n].append(failed("disclosure_attack", exc))
    try:
        now = dt.datetime.now(dt.UTC)
        with tempfile.TemporaryDirectory() as tmp:
            render(frames, Path(tmp) / "portal", base_url=portal_location(lake).resolve().as_uri() + "/", versions={}, policy=policy,
                   issued={n: now for n in frames}, modified={n: now for n in frames})
        shacl = {"expectation": "dcat_ap_3_shacl", "success": True, "observed": "the catalog conforms", "threshold": "conforms", "unexpected_count": 0}
    except dcat.MetadataInvalid as exc:
        shacl = {"expectation": "dcat_ap_3_shacl", "success": False, "observed": str(exc)[:2000], "threshold": "conforms", "unexpected_count": str(exc).count("Constraint Violation")}
    except Exception as exc:  # noqa: BLE001
        shacl = failed("dcat_ap_3_shacl", exc)
    for n in names:
        out[n].append(shacl)
    return out


def checks(name: str, settings: Settings) -> dict:
    """SQL disclosure checks with the configured minimum cell size (the LP attack is :func:`disclosure_results`)."""
    m = int(settings.open_min_cell)
    if name == DURATIONS:
        return {"checks": [
            {"name": "no_small_duration_rows", "sql": f"SELECT * FROM {{candidate}} WHERE cases IS NOT NULL AND cases < {m}"},
            {"name": "suppressed_iff_null", "sql": "SELECT * FROM {candidate} WHERE is_suppressed <> (cases IS NULL) OR is_suppressed <> (median_days IS NULL)"},
        ]}
    rate = [] if name != FUNNEL else [
        {"name": "rate_null_iff_reason", "sql": "SELECT * FROM {candidate} WHERE (online_rate IS NULL) = (online_rate_withheld IS NULL)"},
        {"name": "rate_only_from_published_counts", "sql": (
            "SELECT a.* FROM {candidate} a LEFT JOIN {candidate} o ON o.year = a.year AND o.region_code = a.region_code "
            "AND o.stage = a.stage AND o.channel = 'online' "
            "WHERE a.online_rate IS NOT NULL AND (a.channel <> 'all' OR a.is_suppressed OR o.cases IS NULL)")},
    ]
    return {"checks": rate + [
        {"name": "no_small_cells", "sql": f"SELECT * FROM {{candidate}} WHERE cases IS NOT NULL AND cases < {m} AND cases <> 0"},
        {"name": "suppressed_iff_null", "sql": "SELECT * FROM {candidate} WHERE is_suppressed <> (cases IS NULL)"},
    ]}


_SCHEMAS = {
    BY_YEAR_PREFECTURE: "year string, region_code string, region_name string, region_level string, cases int, is_suppressed boolean",
    BY_YEAR_CHARGE: "year string, level string, category_code string, category_name string, charge_code string, charge_name string, cases int, is_suppressed boolean",
    FUNNEL: ("year string, region_code string, region_name string, region_level string, stage string, stage_order int, channel string, cases int, "
             "is_suppressed boolean, online_rate double, online_rate_withheld string"),
}


WORK_SCHEMA = (
    "dataset string, year string, region_code string, region_name string, region_level string, level string, category_code string, "
    "category_name string, charge_code string, charge_name string, stage string, stage_order int, channel string, cases int, is_suppressed boolean, "
    "online_rate double, online_rate_withheld string, true_cases int, is_finest boolean"
)
COLUMNS = {name: [c.split()[0] for c in schema.split(", ")] for name, schema in _SCHEMAS.items()}


def _py(v):
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return int(v) if isinstance(v, np.integer) else bool(v) if isinstance(v, np.bool_) else v


def _cell_key(name: str, row: dict, province: str) -> tuple:
    if name == BY_YEAR_CHARGE:
        code = {"total": TOTAL, "category": row["category_code"]}.get(row["level"], row["charge_code"])
        return ("filed", row["year"], province, code)
    stage = row.get("stage") or "filed"
    channel = row.get("channel") or "all"
    return (stage if channel == "all" else f"{stage}/{channel}", row["year"], row["region_code"], TOTAL)


def _is_finest(name: str, row: dict) -> bool:
    """The cells each case falls in exactly once (the ones a dataset reconciles over)."""
    if row["year"] == TOTAL:
        return False
    if name == BY_YEAR_CHARGE:
        return row["level"] == "charge"
    return row["region_level"] == "prefecture" and (name == BY_YEAR_PREFECTURE or row["stage"] == "filed")


def build_protected_cells(facts: DataFrame, *, min_cell: int) -> DataFrame:
    """One row per cell of the three count datasets, protected together (a work table: ``true_cases`` is never published).

    Primary and complementary suppression over the three tables as one linked system.
    The independent disclosure attack is the gate's (:func:`gate_results`): it runs once,
    on the candidates as written, and a cell it recovers keeps them all unpublished.
    """
    from lawlake.rules import reference

    policy = opendata_policy.load_policy(min_cell)
    years = [r["year"] for r in facts.where(F.col("year").isNotNull()).select("year").distinct().collect()]
    grid, names = build_grid(years, [(r.code, r.name, r.level, r.parent_code) for r in reference.regions()], province=policy.province)
    durations = build_stage_durations(facts, years=grid.years, min_cases=policy.min_duration_cases).toPandas()
    base = [(r["year"], r["region_code"], r["charge_code"], r["furthest_stage"], r["cases"]) for r in build_base_counts(facts).collect()]
    tables, truth, _ = build_count_tables(base, grid, names, policy, durations=durations, channels=_channel_rows(facts))
    fields = [c.split()[0] for c in WORK_SCHEMA.split(", ")]
    rows = []
    for name in COUNT_DATASETS:
        for rec in tables[name].to_dict("records"):
            row = {k: _py(v) for k, v in rec.items()}
            row.update(dataset=name, true_cases=truth.get(_cell_key(name, row, grid.province)), is_finest=_is_finest(name, row))
            rows.append(tuple(row.get(f) for f in fields))
    return facts.sparkSession.createDataFrame(rows, schema=WORK_SCHEMA)


def _dataset(name: str):
    def build(cells: DataFrame, facts: DataFrame) -> DataFrame:  # facts: for the tally's withheld cases
        return cells.where(F.col("dataset") == name).select(*COLUMNS[name])

    build.__wrapped__ = build_protected_cells  # type: ignore[attr-defined]  # `lawlake tables --explain` names the real builder
    return build


def _tally(table: DataFrame, cells: DataFrame, facts: DataFrame, *, name: str) -> dict[str, int]:
    """In police cases: in = published + suppressed + withheld, over the dataset's finest cells."""
    finest = cells.where((F.col("dataset") == name) & F.col("is_finest"))
    published, suppressed = first_row(finest.agg(
        F.sum(F.when(~F.col("is_suppressed"), F.col("cases")).otherwise(0)), F.sum(F.when(F.col("is_suppressed"), F.col("true_cases")).otherwise(0))
    ))
    n_in, withheld = first_row(facts.agg(F.count(F.lit(1)), F.sum(F.col("withheld_reason").isNotNull().cast("int"))))
    return {"rows_in": int(n_in or 0), "rows_out": int(published or 0), "rows_excluded": int(suppressed or 0) + int(withheld or 0)}


_TWICE = "CROSS JOIN (VALUES (0), (1)) AS t(k)"  # each row once as it is and once at the level above (see _and_level)


def _and_level(col: str, above: str) -> str:
    """With :data:`_TWICE`: ``col`` in the first copy of a row, the level above (a literal) in the second."""
    return f"CASE WHEN t.k = 0 THEN {col} ELSE '{above}' END"


def silver_evidence_check(name: str, *, province: str) -> dict | None:
    """Gate check: no published count exceeds the cases gold holds free of withheld chains *and* of silver evidence of a minor.

    The open datasets count from the canonical cases and withhold by gold's seal
    status; this check judges again from every agency's birth dates
    (:data:`lawlake.sealing.MINOR_CHAINS`, computed once for the stage's gate), at every level a row publishes (a
    prefecture, the province, a charge, all years), so a mislabelled chain cannot be
    counted in a total either.
    """
    from lawlake import sealing

    blocked = f"""blocked AS (SELECT police_case_id FROM {{{sealing.MINOR_CHAINS}}}
            UNION SELECT police_case_id FROM {{gold.case_chain}} WHERE coalesce(seal_status, 'pending') <> 'not_sealed'),
ok AS (SELECT DISTINCT g.police_case_id, CAST(year(g.filed_on) AS STRING) AS y, concat(substring(g.region_code, 1, 4), '00') AS r, coalesce(g.charge_code, '{UNKNOWN_CHARGE}') AS ch
       FROM {{gold.case_chain}} g LEFT ANTI JOIN blocked b ON g.police_case_id = b.police_case_id),
years AS (SELECT police_case_id, {_and_level("y", TOTAL)} AS y, r, ch FROM ok {_TWICE})"""
    # Each level a row publishes is one more copy of the rows of `years` (a cross join), never a second reference to a
    # CTE: the engine inlines CTEs, so every reference would run the minor-evidence joins again.
    if name in (BY_YEAR_PREFECTURE, FUNNEL):
        levels = f"""allowed AS (SELECT y, r, count(DISTINCT police_case_id) AS n FROM (
                   SELECT police_case_id, y, {_and_level("r", province)} AS r FROM years {_TWICE}) GROUP BY y, r)"""
        stage = "AND o.stage = 'filed'" if name == FUNNEL else ""
        rows = f"SELECT o.* FROM {{batch}} o LEFT JOIN allowed a ON o.year = a.y AND o.region_code = a.r WHERE o.cases IS NOT NULL {stage} AND o.cases > coalesce(a.n, 0)"
    elif name == BY_YEAR_CHARGE:
        # a charge row against its charge's cases, any other row (a category, all charges) against the year's
        levels = f"""allowed AS (SELECT y, ch, count(DISTINCT police_case_id) AS n FROM (
                   SELECT police_case_id, y, {_and_level("ch", "*")} AS ch FROM years {_TWICE}) GROUP BY y, ch)"""
        rows = ("SELECT o.* FROM {batch} o LEFT JOIN allowed a ON o.year = a.y AND a.ch = CASE WHEN o.level = 'charge' THEN o.charge_code ELSE '*' END "
                "WHERE o.cases IS NOT NULL AND o.cases > coalesce(a.n, 0)")
    else:
        return None
    return {"name": "no_cases_a_minor_could_be_in", "sql": f"WITH {blocked},\n{levels}\n{rows}"}


def _suite(name: str, min_cell: int) -> Suite:
    base = suite_for(name, contract=contracts.load(name))
    extra = checks(name, Settings(lake=Path("."), catalog_url="", open_min_cell=min_cell))["checks"]
    evidence = silver_evidence_check(name, province=opendata_policy.load_policy(min_cell).province)
    extra += [evidence] if evidence else []
    return base + Suite(name, tuple(check(c["name"], c["sql"].replace("{candidate}", "{batch}")) for c in extra))


def _durations(facts: DataFrame, *, min_cell: int) -> DataFrame:
    policy = opendata_policy.load_policy(min_cell)
    years = sorted(r["year"] for r in facts.where(F.col("year").isNotNull()).select("year").distinct().collect())
    return build_stage_durations(facts, years=tuple(years), min_cases=policy.min_duration_cases)


_durations.__wrapped__ = build_stage_durations  # type: ignore[attr-defined]


def _facts(police_cases: DataFrame, chain: DataFrame, regions: DataFrame, transfers: DataFrame, court_cases: DataFrame, *, min_cell: int) -> DataFrame:
    return build_case_facts(police_cases, chain, regions, province=opendata_policy.load_policy(min_cell).province,
                            transfers=transfers, court_cases=court_cases)


_facts.__wrapped__ = build_case_facts  # type: ignore[attr-defined]


def open_tables(params: Params) -> tuple[Table, ...]:
    """The open datasets: case facts and the protected cells as work tables, then each dataset a view of them."""
    m = params.min_cell
    counts = tuple(
        Table(name, _dataset(name), inputs=("work.open_cells", "work.case_facts"), materialize=False, suite=_suite(name, m),
              tally=lambda df, cells, facts, name=name: _tally(df, cells, facts, name=name))
        for name in COUNT_DATASETS
    )
    return (
        Table("work.case_facts", _facts, inputs=("silver.police_cases", "gold.case_chain", "reference.regions",
                                                    "silver.police_transfers", "silver.court_cases"), params=("min_cell",)),
        Table("work.open_cells", build_protected_cells, inputs=("work.case_facts",), params=("min_cell",)),
        *counts,
        Table(DURATIONS, _durations, inputs=("work.case_facts",), params=("min_cell",), materialize=False, suite=_suite(DURATIONS, m)),
    )


STAGE = Stage("open", open_tables, doc=__doc__ or "", atomic=True)  # judged jointly: suppression spans its datasets
