"""open: counts from the canonical cases with sealed and pending cases withheld and reconciled; the job end to end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from jobs import open as open_job
from lawlake import contracts, pipeline, tables
from lawlake.catalog import Catalog
from lawlake.config import Settings
from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, COUNT_DATASETS, DURATIONS, FUNNEL
from lawlake.rules import reference

from .frames import table

D = dt.date
P = "330000"


def _case(case, region, charge, filed_on, *, transferred_on=None):
    return dict(police_case_id=case, region_code=region, charge_code=charge, filed_on=filed_on, transferred_on=transferred_on)


def _chain(chain_id, case, seal_status="not_sealed", **stages):
    return dict(chain_id=chain_id, police_case_id=case, person_key=f"P{chain_id}", region_code="330102", charge_code="C264",
                filed_on=D(2023, 1, 1), seal_status=seal_status, **stages)


def chain_frame(spark, rows):
    """gold.case_chain rows with ``seal_status`` (joined on until the chain contract carries it)."""
    contract = contracts.load("gold.case_chain")
    base = table(spark, "gold.case_chain", [{k: v for k, v in r.items() if k != "seal_status"} for r in rows])
    if "seal_status" in contract.names:
        return table(spark, "gold.case_chain", rows)
    status = spark.createDataFrame([(r["chain_id"], r["seal_status"]) for r in rows], "chain_id string, seal_status string")
    return base.join(status, "chain_id")


CASES = [
    _case("A1", "330102", "C264", D(2023, 1, 3), transferred_on=D(2023, 2, 2)),  # Hangzhou county; two suspects, both not sealed: counted once
    _case("A2", "330105", "C264", D(2023, 6, 1)),  # another Hangzhou county (same prefecture)
    _case("A3", "330203", "C266", D(2023, 2, 1)),  # Ningbo, fraud
    _case("A4", "330102", "C264", D(2023, 3, 1)),  # one of two suspects sealed: the whole case is withheld
    _case("A5", "330102", "C264", D(2022, 5, 1)),  # sealing pending: withheld
    _case("A6", "330102", "C264", D(2023, 4, 1)),  # no chain covers it: doubtful, withheld
    _case("A7", "110101", "C264", D(2023, 4, 1)),  # Beijing: outside the province, withheld
    _case("A8", "330100", "C232", D(2022, 7, 1)),  # recorded at prefecture level: still Hangzhou
]
CHAINS = [
    _chain("c1", "A1", prosecution_received_on=D(2023, 2, 5), prosecution_decided_on=D(2023, 3, 5), prosecution_decision="prosecute",
           first_instance_case_number="K1", first_instance_filed_on=D(2023, 3, 10), first_instance_judged_on=D(2023, 5, 10), verdict="guilty", sentence_type="fixed_term"),
    _chain("c2", "A1"),
    _chain("c3", "A2"),
    _chain("c4", "A3", prosecution_received_on=D(2023, 3, 1)),  # reached review (transferred) without a recorded transfer date
    _chain("c5", "A4"),
    _chain("c6", "A4", "sealed"),
    _chain("c7", "A5", "pending"),
    _chain("c8", "A7"),
    _chain("c9", "A8", None),  # missing seal status: as good as pending
]


def _transfer(tid, case, channel):
    return dict(transfer_id=tid, police_case_id=case, transfer_channel=channel, invalid_fields=[])


def _court(number, channel, trial_level="first_instance"):
    return dict(case_number=number, court_code="C1", case_type="刑初", case_year=2023, trial_level=trial_level, transfer_channel=channel, invalid_fields=[])


TRANSFERS = [
    _transfer("T1", "A1", "online"),  # A1's two suspects transferred separately: one online,
    _transfer("T2", "A1", "paper"),  # one on paper: the case counts as paper
    _transfer("T3", "A6", "online"),  # A6 is withheld (no chain): counted nowhere
]
COURT_CASES = [
    _court("K1", None),  # A1's first instance: the channel was not delivered → unknown, never online
    _court("K1-appeal", "paper", trial_level="appeal"),  # an appeal is no procuratorate→court transfer: ignored
]


@pytest.fixture(scope="module")
def channel_facts(spark):
    df = open_job.build_case_facts(table(spark, "silver.police_cases", CASES), chain_frame(spark, CHAINS), reference.reference_dataframe(spark, "regions"),
                                   province=P, transfers=table(spark, "silver.police_transfers", TRANSFERS),
                                   court_cases=table(spark, "silver.court_cases", COURT_CASES))
    return df


@pytest.mark.parametrize(
    "case, expected",
    [
        ("A1", ("paper", "unknown")),  # one transfer on paper; the court case's channel not delivered
        ("A2", (None, None)),  # filed only: no transfer
        ("A3", ("unknown", None)),  # reached review without a transfer record: unknown; not prosecuted
    ],
)
def test_case_facts_carry_transfer_channels(channel_facts, case, expected):
    r = next(r for r in channel_facts.collect() if r["police_case_id"] == case)
    assert (r["police_transfer_channel"], r["court_transfer_channel"]) == expected


def test_channel_counts_leave_withheld_cases_out(channel_facts):
    rows = sorted(tuple(r) for r in open_job.build_channel_counts(channel_facts).collect())
    assert rows == [
        ("2023", "330100", "prosecuted", "unknown", 1),  # A1 to court
        ("2023", "330100", "transferred", "paper", 1),  # A1 to the procuratorate
        ("2023", "330200", "transferred", "unknown", 1),  # A3; A6's online transfer is withheld with A6
    ]


def test_without_channel_sources_every_transfer_is_unknown(facts):
    assert facts["A1"]["police_transfer_channel"] == "unknown" and facts["A1"]["court_transfer_channel"] == "unknown"  # never online
    assert facts["A2"]["police_transfer_channel"] is None  # not transferred


@pytest.fixture(scope="module")
def facts(spark):
    df = open_job.build_case_facts(table(spark, "silver.police_cases", CASES), chain_frame(spark, CHAINS), reference.reference_dataframe(spark, "regions"), province=P)
    return {r["police_case_id"]: r.asDict() for r in df.collect()}


@pytest.mark.parametrize(
    "case, expected",
    [
        ("A1", ("2023", "330100", 5, None, 30, 28, 61)),  # sentenced; 30 days police, 28 review, 61 first instance
        ("A2", ("2023", "330100", 1, None, None, None, None)),  # filed only
        ("A3", ("2023", "330200", 2, None, None, None, None)),  # a review reached counts as transferred
        ("A4", ("2023", "330100", 1, "sealed", None, None, None)),
        ("A5", ("2022", "330100", 1, "seal_pending", None, None, None)),
        ("A6", ("2023", "330100", 1, "no_chain", None, None, None)),
        ("A7", ("2023", None, 1, "outside_province", None, None, None)),
        ("A8", ("2022", "330100", 1, "seal_pending", None, None, None)),  # a null seal status withholds
    ],
)
def test_case_facts(facts, case, expected):
    r = facts[case]
    assert (r["year"], r["region_code"], r["furthest_stage"], r["withheld_reason"], r["police_days"], r["review_days"], r["first_instance_days"]) == expected


def test_every_canonical_case_has_one_fact_row(facts):
    assert sorted(facts) == [c["police_case_id"] for c in CASES]


def test_a_chain_without_seal_status_is_refused(spark):
    chain = table(spark, "gold.case_chain", [{k: v for k, v in c.items() if k != "seal_status"} for c in CHAINS[:1]])
    if "seal_status" in chain.columns:
        chain = chain.drop("seal_status")
    with pytest.raises(open_job.SealStatusMissing):
        open_job.build_case_facts(table(spark, "silver.police_cases", CASES[:1]), chain, reference.reference_dataframe(spark, "regions"), province=P)


def test_base_counts_leave_withheld_cases_out(spark):
    df = open_job.build_case_facts(table(spark, "silver.police_cases", CASES), chain_frame(spark, CHAINS), reference.reference_dataframe(spark, "regions"), province=P)
    rows = sorted(tuple(r) for r in open_job.build_base_counts(df).select("year", "region_code", "charge_code", "furthest_stage", "cases").collect())
    assert rows == [
        ("2023", "330100", "C264", 1, 1),  # A2
        ("2023", "330100", "C264", 5, 1),  # A1, once for its two chains
        ("2023", "330200", "C266", 2, 1),  # A3
    ]


@pytest.fixture(scope="module")
def built():
    """Count tables from base counts: 25 thefts in Hangzhou 2023, 3 in Ningbo 2023, 12 in Hangzhou 2022, 1 fraud in Ningbo 2022."""
    grid, names = open_job.build_grid(["2022", "2023"], [(r.code, r.name, r.level, r.parent_code) for r in reference.regions()], province=P)
    base = [("2023", "330100", "C264", 1, 25), ("2023", "330200", "C264", 2, 3), ("2022", "330100", "C264", 1, 12), ("2022", "330200", "C266", 1, 1)]
    policy = open_job.load_policy(Settings(lake="/nonexistent", catalog_url="sqlite://", engine="embedded", open_min_cell=10))
    durations = pd.DataFrame(columns=["year", "stage", "stage_order", "cases", "p25_days", "median_days", "p75_days", "p90_days", "is_suppressed"])
    tables_, truth, protection = open_job.build_count_tables(base, grid, names, policy, durations=durations)
    return grid, tables_, truth, protection, policy


def test_every_cell_of_the_grid_is_present(built):
    grid, t, *_ = built
    assert len(t[BY_YEAR_PREFECTURE]) == 3 * 12  # 2022, 2023, total × 11 prefectures + the province
    assert len(t[FUNNEL]) == 3 * 12 * (5 + 2 * 3)  # five stages, the two transfer stages also by online, paper, unknown
    n_charges = len(reference.charges()) + 1  # and the unknown charge
    assert len(t[BY_YEAR_CHARGE]) == 3 * (1 + len(grid.categories) + n_charges)


def test_small_cells_are_suppressed_and_big_ones_published(built):
    _, t, truth, protection, _ = built
    yp = t[BY_YEAR_PREFECTURE].set_index(["year", "region_code"])
    assert bool(yp.loc[("2023", "330200"), "is_suppressed"]) and pd.isna(yp.loc[("2023", "330200"), "cases"])  # 3 < 10
    published = {n: df[~df["is_suppressed"]] for n, df in t.items()}
    assert all((df["cases"].astype(int) >= 10).all() for df in published.values())  # zeros are suppressed under the default policy
    # So small a world leaves little to publish; what is published is true: property crimes 2023 = 25 + 3 thefts.
    charge = published[BY_YEAR_CHARGE]
    assert ("2023", "CL-2-05", "total", 28) in set(zip(charge["year"], charge["category_code"], charge["charge_code"], charge["cases"].astype(int)))
    for r in charge.itertuples(index=False):
        node = r.charge_code if r.level == "charge" else r.category_code if r.level == "category" else "total"
        assert int(r.cases) == truth[("filed", r.year, P, node)]
    # Hangzhou 2023 (25) alone would be safe, but with the province total (28) it would give away Ningbo's 3.
    assert bool(yp.loc[("2023", "330100"), "is_suppressed"]) or bool(yp.loc[("2023", "330000"), "is_suppressed"])
    assert protection.complementary.sum() > 0


def test_the_attack_finds_nothing_to_recover(built):
    _, t, truth, _, policy = built
    durations = pd.DataFrame(columns=["year", "stage", "stage_order", "cases", "p25_days", "median_days", "p75_days", "p90_days", "is_suppressed"])
    results = open_job.disclosure_results(dict(t, **{DURATIONS: durations}), policy, truth=truth)
    assert [r for r in results if not r["success"]] == []
    assert {r["expectation"] for r in results} >= {f"disclosure_attack({n})" for n in COUNT_DATASETS}


def test_reconciliation_in_cases(built):
    grid, t, truth, *_ = built
    facts_summary = {None: 41, "sealed": 2, "seal_pending": 1}  # 41 publishable (25 + 3 + 12 + 1), 3 withheld
    balance = open_job.reconcile(facts_summary, t, truth, grid)
    for name, b in balance.items():
        assert b["cases_in"] == 44 == b["published"] + b["suppressed"] + b["withheld"], name
        assert b["withheld"] == 3


def test_charges_are_nested_in_criminal_law_chapters():
    cats = {code: charges for code, _, charges in open_job.charge_categories()}
    assert "C264" in cats["CL-2-05"] and "C253-1" in cats["CL-2-04"] and "C133-1" in cats["CL-2-02"]
    assert sorted(c for cs in cats.values() for c in cs) == sorted(c.charge_code for c in reference.charges())  # every charge, once


def test_durations_need_their_own_minimum(spark):
    rows = [dict(police_case_id=f"D{i}", year="2023", region_code="330100", charge_code="C264", furthest_stage=2, police_days=i,
                 review_days=None, first_instance_days=None, withheld_reason=None) for i in range(1, 21)]
    rows.append(dict(police_case_id="DX", year="2023", region_code="330100", charge_code="C264", furthest_stage=2, police_days=999,
                     review_days=5, first_instance_days=None, withheld_reason="sealed"))  # withheld: in no percentile
    facts = spark.createDataFrame(pd.DataFrame(rows).astype({"review_days": "Int64", "first_instance_days": "Int64"}),
                                  "police_case_id string, year string, region_code string, charge_code string, furthest_stage int, police_days int, review_days int, first_instance_days int, withheld_reason string")
    df = open_job.build_stage_durations(facts, years=("2023",), min_cases=20)
    got = {r["stage"]: r.asDict() for r in contracts.enforce(df, contracts.load(DURATIONS)).collect()}
    # 20 police durations 1..20: published; numpy-style linear percentiles
    assert (got["police"]["cases"], got["police"]["p25_days"], got["police"]["median_days"], got["police"]["p90_days"]) == (20, 5.8, 10.5, 18.1)
    assert got["review"]["is_suppressed"] and got["review"]["cases"] is None and got["review"]["median_days"] is None  # none: below the minimum
    assert got["first_instance"]["is_suppressed"]


@dataclass
class _Out:
    candidates: list
    reconciliations: list
    facts: object


@pytest.fixture(scope="module")
def job_run(spark, tmp_path_factory):
    """The declared open stage, run by the stage runner on a lake holding the inline silver cases and gold chains
    (plus 30 thefts in Hangzhou 2023 transferred to the procuratorate: 29 online, 1 on paper)."""
    root = tmp_path_factory.mktemp("open_job")
    lake = root / "lake"
    cases = CASES + [_case(f"B{i}", "330106", "C264", D(2023, 5, 1), transferred_on=D(2023, 5, 20)) for i in range(30)]
    chains = CHAINS + [_chain(f"b{i}", f"B{i}") for i in range(30)]
    transfers = TRANSFERS + [_transfer(f"TB{i}", f"B{i}", "paper" if i == 29 else "online") for i in range(30)]
    tables.write(table(spark, "silver.police_cases", cases), tables.location(lake, "silver.police_cases"))
    tables.write(chain_frame(spark, chains), tables.location(lake, "gold.case_chain"))
    tables.write(table(spark, "silver.police_transfers", transfers), tables.location(lake, "silver.police_transfers"))
    tables.write(table(spark, "silver.court_cases", COURT_CASES), tables.location(lake, "silver.court_cases"))
    settings = Settings(lake=lake, catalog_url=f"sqlite:///{root / 'catalog.db'}", engine="embedded", open_min_cell=10)
    catalog = Catalog(settings.catalog_url)
    inputs = {"silver.police_cases": len(cases), "gold.case_chain": len(chains), "silver.police_transfers": len(transfers), "silver.court_cases": len(COURT_CASES)}
    release = catalog.begin_release("fixture", "integrate", dict.fromkeys(inputs))
    catalog.complete_release(release, {n: {"version": 0, "rows": rows} for n, rows in inputs.items()})
    summary = pipeline.run_stage("open", settings, "run-test-open")
    candidates = [SimpleNamespace(table=c["table"], path=Path(c["path"])) for c in summary["candidates"] if c["table"] != "quarantine.records"]
    facts = tables.read(spark, tables.staging_root(lake, "run-test-open") / "_work" / "open" / "work.case_facts")
    return _Out(candidates, summary["reconciliations"], facts), spark


def test_run_writes_four_candidates_and_reconciles(job_run):
    out, spark = job_run
    assert sorted(c.table for c in out.candidates) == sorted(COUNT_DATASETS + (DURATIONS,))
    counted = [r for r in out.reconciliations if r["table"] in COUNT_DATASETS]
    assert sorted(r["table"] for r in counted) == sorted(COUNT_DATASETS)
    for rec in counted:
        # 38 canonical cases = published + (suppressed + withheld)
        assert rec["rows_in"] == 38 and rec["rows_in"] == rec["rows_out"] + rec["rows_excluded"], rec
    withheld = {r["withheld_reason"]: r["count"] for r in out.facts.groupBy("withheld_reason").count().collect() if r["withheld_reason"]}
    # A1, A2, A3 and B0-B29 publishable; A4 sealed, A5 and A8 pending, A6 without chain, A7 outside: withheld
    assert withheld == {"sealed": 1, "seal_pending": 2, "no_chain": 1, "outside_province": 1}
    yp = tables.read(spark, next(c.path for c in out.candidates if c.table == BY_YEAR_PREFECTURE)).toPandas()
    assert len(yp) == 3 * 12 and (yp.loc[~yp["is_suppressed"], "cases"] >= 10).all()


def test_the_funnel_publishes_channels_and_rates_only_from_published_counts(job_run):
    out, spark = job_run
    funnel = tables.read(spark, next(c.path for c in out.candidates if c.table == FUNNEL)).toPandas()
    hz = funnel[(funnel["year"] == "2023") & (funnel["region_code"] == "330100") & (funnel["stage"] == "transferred")].set_index("channel")
    # Hangzhou 2023: 31 transferred (A1 and B0-B29), 29 online, 2 on paper (A1, B29), 0 unknown: the paper 2 is suppressed,
    # and so, to protect it, is the online 29 (31 - 29 - 0 = 2 otherwise): the rate is withheld, never estimated.
    assert bool(hz.loc["paper", "is_suppressed"]) and bool(hz.loc["online", "is_suppressed"])
    assert pd.isna(hz.loc["all", "online_rate"]) and hz.loc["all", "online_rate_withheld"] == "inputs_suppressed"
    rated = funnel[funnel["online_rate"].notna()]
    assert (rated["channel"] == "all").all() and not rated["is_suppressed"].any()  # only beside published counts
    assert ((funnel["online_rate"].isna()) == funnel["online_rate_withheld"].notna()).all()
    assert set(funnel.loc[funnel["stage"] == "filed", "online_rate_withheld"]) == {"not_a_transfer"}


def test_gate_results_pass_for_the_candidates(job_run):
    out, spark = job_run
    candidates = {c.table: c.path for c in out.candidates}
    settings = Settings(lake=_lake_of(out), catalog_url="sqlite://", engine="embedded", open_min_cell=10)
    results = open_job.gate_results(spark, candidates, settings.lake, settings)
    assert sorted(results) == sorted(candidates)
    for name, rs in results.items():
        labels = {r["expectation"] for r in rs}
        assert {"dcat_ap_3_shacl", "disclosure_attack(consistency)"} <= labels, name
        assert all(r["success"] for r in rs), [r for r in rs if not r["success"]]


def test_gate_results_fail_when_a_suppressed_cell_is_published(job_run, tmp_path):
    out, spark = job_run
    candidates = {c.table: c.path for c in out.candidates}
    path = candidates[BY_YEAR_PREFECTURE]
    df = tables.read(spark, path).toPandas()
    row = df.index[(df["year"] == "2023") & (df["region_code"] == "330200")][0]  # Ningbo 2023: A3 alone
    assert bool(df.loc[row, "is_suppressed"])
    df.loc[row, ["cases", "is_suppressed"]] = [1, False]
    leaked = tmp_path / "leaked"
    tables.write(contracts.dataframe(spark, df.astype(object).where(df.notna(), None).to_dict("records"), contracts.load(BY_YEAR_PREFECTURE)), leaked)
    settings = Settings(lake=_lake_of(out), catalog_url="sqlite://", engine="embedded", open_min_cell=10)
    results = open_job.gate_results(spark, dict(candidates, **{BY_YEAR_PREFECTURE: leaked}), settings.lake, settings)
    attack = next(r for r in results[BY_YEAR_PREFECTURE] if r["expectation"] == f"disclosure_attack({BY_YEAR_PREFECTURE})")
    assert not attack["success"] and "published 1 below 10" in attack["observed"]


def test_gate_results_fail_when_a_rate_discloses_a_suppressed_count(job_run, tmp_path):
    out, spark = job_run
    candidates = {c.table: c.path for c in out.candidates}
    df = tables.read(spark, candidates[FUNNEL]).toPandas()
    row = df.index[(df["year"] == "2023") & (df["region_code"] == "330100") & (df["stage"] == "transferred") & (df["channel"] == "all")][0]
    df["online_rate"] = df["online_rate"].astype(object)
    df.loc[row, ["online_rate", "online_rate_withheld"]] = [0.935, None]  # 29 / 31 beside the suppressed online count
    leaked = tmp_path / "leaked_rate"
    tables.write(contracts.dataframe(spark, df.astype(object).where(df.notna(), None).to_dict("records"), contracts.load(FUNNEL)), leaked)
    settings = Settings(lake=_lake_of(out), catalog_url="sqlite://", engine="embedded", open_min_cell=10)
    results = open_job.gate_results(spark, dict(candidates, **{FUNNEL: leaked}), settings.lake, settings)
    consistency = next(r for r in results[FUNNEL] if r["expectation"] == "disclosure_attack(consistency)")
    assert not consistency["success"] and "beside a suppressed count" in consistency["observed"]


def _lake_of(out):
    """The lake a candidate was staged in (<lake>/_staging/<run>/...)."""
    path = out.candidates[0].path
    return next(p.parent for p in path.parents if p.name == "_staging")
