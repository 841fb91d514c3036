"""integrate: silver to gold — one person index across agencies, the case chain, seal statuses, time-limit warnings.

Entity resolution links each person mention by every piece of evidence there is, and
only ever to a *single* candidate person (two true persons are never merged):

1. ``id_number`` — a mention with a valid identity number is that number's person;
2. ``case_name`` — else the single person with the same name in the same police case
   (a prosecution's police case, else its review's; a court mention's through its court
   case → review for prosecution; an appeal through its first instance), or in the same
   review for prosecution;
3. ``court_case_name`` — else the single person with the same name among the mentions
   of the same court case (first instance and appeal together): a custody record by
   name among the defendants of its own court case;
4. ``name_birth_date`` — else the single person with the same name and birth date (as
   recorded, or as carried by an identity number);
5. ``sole_person_in_case`` — a mention with neither name nor identity number, in a
   police case with one suspect, a court case with one defendant or a review with one
   person: that one person;
6. ``unmatched`` — else mentions of the same name sharing a police case, review or
   court case form a person of their own (a record with no such context stands alone).

Rules 2–4 repeat until nothing changes, so a custody record reaches a suspect through
a defendant that was itself linked by name and birth date. Every rule but the first
compares the same name, so resolution runs per name (one grouped pass), and a run
resolves again only the name groups whose mentions changed since the released build
(:class:`lawlake.declarations.ByScope`).

The case chain follows each suspect person of a police case through review for
prosecution (first receipt and supplementary rounds kept), first instance, appeal and
custody — each stage found by the case-number chain or, where a link is missing, by the
person — and carries its seal status (``lawlake.sealing``: sealed / not_sealed /
pending, failing closed). A run rebuilds only the chains of the persons its inputs'
changed rows can reach (:func:`chain_reach`, :class:`lawlake.declarations.ByReach`)
and keeps every other as published. ``gold.sealed_records`` lists every silver record
of a withheld (sealed or pending) chain.

``gold.time_limit_warnings`` judges each chain stage against the statutory time limits
of :mod:`lawlake.rules.time_limits` (calendar months, extensions only where silver
records them): stages that ended after their deadline, and stages still open at the
run's data date that are past it or within the warning window before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lawlake import sealing
from lawlake.declarations import ByReach, ByScope, Stage, Table
from lawlake.rules import time_limits as TL
from lawlake.tables import first_row

__all__ = [
    "build_mentions", "build_person_records", "name_groups", "resolve_persons", "build_person_index", "person_mentions", "index_persons", "build_case_chain", "link_case_chain", "chain_persons", "chain_reviews",
    "chain_trials", "join_case_links", "finish_case_chain", "chain_scope", "chain_reach", "chain_records", "legal_aid_links", "build_sealed_records",
    "build_time_limit_warnings", "court_case_links", "resolve_name_group", "chain_orphans", "chain_tally", "STAGE",
]

AGENCY = {"silver.suspects": "police", "silver.prosecutions": "procuratorate", "silver.court_defendants": "courts", "silver.custody": "corrections"}
# silver.prosecutions' time-limit facts (CPL arts. 172, 175) as the chain carries them: (silver column, chain column, type)
REVIEW_FACT_COLUMNS = [
    *[(f"{what}_on_{k}", f"supplementary_{what}_on_{k}", "date") for k in (1, 2) for what in ("returned", "resubmitted")],
    ("review_extension_on", "review_extension_on", "date"),
    ("is_major_complex", "is_major_complex", "boolean"),
]
POLICE_CASE_COLUMNS = ["police_case_id", "region_code", "charge_code", "occurred_on", "filed_on", "detained_on", "arrested_on", "transferred_on"]
MENTION_COLUMNS = ["source_table", "record_key", "name", "id_number", "sex", "birth_date", "police_case_id", "review_id", "court_case", "case_number"]


def _key(prefix: str, *cols: Column) -> Column:
    return F.concat(F.lit(prefix), F.substring(F.sha2(F.concat_ws("\u0001", *cols), 256), 1, 16))


def _py_key(prefix: str, *values: str) -> str:
    return prefix + hashlib.sha256("\u0001".join(values).encode("utf-8")).hexdigest()[:16]


def _id_birth_date(id_number: Column) -> Column:
    # Silver holds only valid 18-character numbers (GB 11643-1999): birth date in characters 7-14.
    return F.try_to_timestamp(F.substring(id_number, 7, 8), F.lit("yyyyMMdd")).cast("date")


def _unique(df: DataFrame, keys: list[str], value: str, alias: str) -> DataFrame:
    """``keys`` → ``value``, only where exactly one distinct non-null value exists.

    One distinct value is ``min == max``: two fixed-size accumulators per group, where a
    distinct count keeps a hash set per group (2.6 GB in one allocation at scale 100).
    """
    return (
        df.where(F.col(value).isNotNull())
        .groupBy(*keys)
        .agg(F.min(value).alias("_lo"), F.max(value).alias(alias))
        .where(F.col("_lo") == F.col(alias))
        .drop("_lo")
    )


def _at_latest(df: DataFrame, keys: list[str], col: str) -> DataFrame:
    """The rows of ``df`` holding the latest ``col`` of their ``keys``: every one of them on a tie (unlike :func:`_latest`,
    which keeps one), so :func:`_unique` can refuse a tie."""
    return df.withColumn("_last", F.max(col).over(Window.partitionBy(*keys))).where(F.col(col) == F.col("_last")).drop("_last")


def review_police_cases(prosecutions: DataFrame) -> DataFrame:
    """``(review_id, police_case_id)``: the police case of each review, where its records agree on one."""
    return _unique(prosecutions.where(F.col("review_id").isNotNull()), ["review_id"], "police_case_id", "police_case_id")


def court_case_links(court_cases: DataFrame, prosecutions: DataFrame) -> DataFrame:
    """One row per court case: ``case_number``, ``court_case`` (its first instance's number: the
    group an appeal shares with it), ``review_id`` (an appeal's through its first instance) and
    ``police_case_id`` (through the review, when its records agree on one; else null).

    At most one row per court case, so no mention is ever duplicated (issues 9 and 14: a
    court case whose review names two police cases used to duplicate its mentions).
    """
    cc = court_cases.select("case_number", "trial_level", "review_id", "original_case_number")
    first = cc.select(F.col("case_number").alias("_orig"), F.col("review_id").alias("_orig_review"))
    is_appeal = F.col("trial_level") == "appeal"
    linked = cc.join(first, F.col("original_case_number") == F.col("_orig"), "left").select(
        "case_number",
        F.when(is_appeal & F.col("original_case_number").isNotNull(), F.col("original_case_number")).otherwise(F.col("case_number")).alias("court_case"),
        F.when(is_appeal, F.coalesce("review_id", "_orig_review")).otherwise(F.col("review_id")).alias("review_id"),
    )
    return linked.join(review_police_cases(prosecutions), "review_id", "left").select("case_number", "court_case", "review_id", "police_case_id")


def build_mentions(suspects: DataFrame, prosecutions: DataFrame, defendants: DataFrame, custody: DataFrame, court_cases: DataFrame) -> DataFrame:
    """One row per person mention in silver (exactly one per silver record): who it names and the
    police case, review and court case it sits in when known."""
    links = court_case_links(court_cases, prosecutions)
    by_review = review_police_cases(prosecutions).withColumnRenamed("police_case_id", "_review_pc")
    null_s, null_d = F.lit(None).cast("string"), F.lit(None).cast("date")

    def court(df: DataFrame, table: str, key: str, sex: Column, birth: Column) -> DataFrame:
        return df.join(links, "case_number", "left").select(
            F.lit(table).alias("source_table"), F.col(key).alias("record_key"), "name", "id_number", sex.alias("sex"), birth.alias("birth_date"),
            "police_case_id", "review_id", F.coalesce("court_case", "case_number").alias("court_case"), "case_number",
        )

    return (
        suspects.select(
            F.lit("silver.suspects").alias("source_table"), F.col("suspect_id").alias("record_key"), "name", "id_number", "sex", "birth_date",
            "police_case_id", null_s.alias("review_id"), null_s.alias("court_case"), null_s.alias("case_number"),
        )
        .unionByName(
            prosecutions.join(by_review, "review_id", "left").select(
                F.lit("silver.prosecutions").alias("source_table"), F.col("prosecution_id").alias("record_key"), "name", "id_number", "sex", "birth_date",
                F.coalesce("police_case_id", "_review_pc").alias("police_case_id"), "review_id", null_s.alias("court_case"), null_s.alias("case_number"),
            )
        )
        .unionByName(court(defendants, "silver.court_defendants", "defendant_id", F.col("sex"), F.col("birth_date")))
        .unionByName(court(custody, "silver.custody", "record_id", null_s, null_d))
        .select(*MENTION_COLUMNS)
    )


# -- entity resolution ------------------------------------------------------------------

_CONTEXT_RULES = (("case_name", ("pc", "rv")), ("court_case_name", ("cc",)), ("name_birth_date", ("bd",)))
RESOLVED_SCHEMA = "record_ref string, person_key string, match_rule string"
RESOLVE_BUCKETS = 64  # engine calls of the name-group resolver per run (see build_person_records)


def _evidence(row) -> dict[str, list[str]]:
    """The lookup keys a mention offers, per rule (its own values) — and, once resolved, lends."""
    out: dict[str, list] = {"pc": [], "rv": [], "cc": [], "bd": []}
    for k in ("pc", "rv", "cc"):
        if row[k] is not None:
            out[k].append(f"{k}:{row[k]}")
    for k in ("birth_date", "id_birth"):
        if row[k] is not None:
            out["bd"].append(str(row[k]))
    return out


def resolve_name_group(pdf: pd.DataFrame) -> pd.DataFrame:
    """Resolve the mentions of one name group.

    Columns: record_ref, name, id_key, birth_date, id_birth, pc, rv, cc (a mention's police
    case, review, court case) and sole_ref (for a mention without a name: the one person
    record of its case, whose name is the group's). Returns record_ref, person_key,
    match_rule. The group of mentions with neither name nor sole record keeps only
    identity numbers; the rest stand alone.
    """
    return resolve_name_groups(pdf.assign(_group=0))


def resolve_name_groups(pdf: pd.DataFrame) -> pd.DataFrame:
    """:func:`resolve_name_group` over every name group (column ``_group``) of a batch: one engine call for many groups."""
    groups: dict[object, list[dict]] = {}
    # Column lists zipped into rows: DataFrame.to_dict boxes every value on its own (half the resolver's time).
    values = pdf.astype(object).where(pdf.notna(), None)
    names = [c for c in values.columns if c != "_group"]
    for group, *row in zip(values["_group"].tolist(), *(values[c].tolist() for c in names), strict=True):
        groups.setdefault(group, []).append(dict(zip(names, row, strict=True)))
    refs: list[str] = []
    keys: list[str] = []
    rules: list[str] = []
    for rows in groups.values():
        key, rule = _resolve_rows(rows)
        refs += [r["record_ref"] for r in rows]
        keys += key
        rules += rule
    return pd.DataFrame({"record_ref": refs, "person_key": keys, "match_rule": rules})


def _resolve_rows(rows: list[dict]) -> tuple[list[str], list[str]]:
    """The person key and match rule of each mention of one name group (see :func:`resolve_name_group`)."""
    key = [r["id_key"] for r in rows]
    rule = ["id_number" if k else None for k in key]
    named = [r["name"] is not None for r in rows]
    evidence = [_evidence(r) if named[i] else {"pc": [], "rv": [], "cc": [], "bd": []} for i, r in enumerate(rows)]
    changed = True
    while changed:
        changed = False
        index: dict[str, set[str]] = {}
        for i, ev in enumerate(evidence):
            if key[i]:
                for values in ev.values():
                    for v in values:
                        index.setdefault(v, set()).add(key[i])
        for i, ev in enumerate(evidence):
            if key[i] or not named[i]:
                continue
            for name, kinds in _CONTEXT_RULES:
                found = set().union(*(index.get(v, set()) for k in kinds for v in ev[k]))
                if len(found) == 1:
                    key[i], rule[i] = found.pop(), name
                    changed = True
                    break
    # What is left: mentions of this name that share a police case, review or court case are one person.
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, ev in enumerate(evidence):
        if key[i] or not named[i]:
            continue
        for v in ev["pc"] + ev["rv"] + ev["cc"]:
            if v in first_with:
                parent[find(i)] = find(first_with[v])
            else:
                first_with[v] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(rows)):
        if not key[i] and named[i]:
            groups.setdefault(find(i), []).append(i)
    for members in groups.values():
        anchor = min(rows[i]["record_ref"] for i in members)
        for i in members:
            key[i], rule[i] = _py_key("P", "unmatched", anchor), "unmatched"
    # No name, no number: the one person record of its case, else alone.
    by_ref = {r["record_ref"]: i for i, r in enumerate(rows)}
    for i, r in enumerate(rows):
        if key[i]:
            continue
        slot = by_ref.get(r["sole_ref"]) if r["sole_ref"] else None
        if slot is not None and key[slot]:
            key[i], rule[i] = key[slot], "sole_person_in_case"
        else:
            table, record_key = r["record_ref"].split(":", 1)
            key[i], rule[i] = _py_key("P", table, record_key), "unmatched"
    return key, rule  # type: ignore[return-value]


def build_person_records(mentions: DataFrame) -> DataFrame:
    """One row per mention with its person key and the rule that resolved it (see the module docstring).

    The stage builds it in two steps, :func:`name_groups` written once as ``work.name_groups`` and
    :func:`resolve_persons` over it."""
    return resolve_persons(name_groups(mentions))


def name_groups(mentions: DataFrame) -> DataFrame:
    """The resolver's input: each mention's name group (``_group``), lookup keys and, for a mention without a name,
    the one person record of its case (``sole_ref``)."""
    m = mentions.select(
        F.concat_ws(":", "source_table", "record_key").alias("record_ref"), "source_table", "record_key", "name",
        F.when(F.col("id_number").isNotNull(), _key("P", F.col("id_number"))).alias("id_key"),
        "birth_date", _id_birth_date(F.col("id_number")).alias("id_birth"),
        F.col("police_case_id").alias("pc"), F.col("review_id").alias("rv"), F.col("court_case").alias("cc"), "case_number",
    )
    # The one person record of a police case with one suspect, a court case with one defendant, a review
    # with one person (counted over all its records, named or not): for mentions with neither name nor number.
    sole = []
    for table, context in (("silver.suspects", "pc"), ("silver.court_defendants", "case_number"), ("silver.prosecutions", "rv")):
        slots = m.where((F.col("source_table") == table) & F.col(context).isNotNull()).groupBy(context).agg(
            F.count(F.lit(1)).alias("_n"), F.max("record_ref").alias(f"_ref_{context}"), F.max("name").alias(f"_name_{context}")
        )
        sole.append((context, slots.where((F.col("_n") == 1) & F.col(f"_name_{context}").isNotNull()).drop("_n")))
    for context, slots in sole:
        m = m.join(slots, context, "left")
    refs, names = [], []
    for context, _ in sole:
        usable = F.col("name").isNull() & F.col(f"_ref_{context}").isNotNull() & (F.col(f"_ref_{context}") != F.col("record_ref"))
        refs.append(F.when(usable, F.col(f"_ref_{context}")))
        names.append(F.when(usable, F.col(f"_name_{context}")))
    m = m.withColumn("sole_ref", F.coalesce(*refs)).withColumn("_group", F.coalesce(F.col("name"), *names))
    return m.select("_group", "record_ref", "name", "id_key", "birth_date", "id_birth", "pc", "rv", "cc", "sole_ref")


def resolve_persons(groups: DataFrame) -> DataFrame:
    """:func:`build_person_records` over :func:`name_groups`: a mention with a valid identity number is that number's
    person, whatever else its group holds, so a group whose every mention has one is resolved in the engine; the
    rest (an *open* group: one holding a mention without an identity number) go through :func:`resolve_name_groups`
    (a fifth of the mentions at scale 100).

    A function of each name group's rows alone, so ``gold.person_records`` is rebuilt by group. Which groups are open
    is found here, not in :func:`name_groups` (a window over every mention, built whole each run: half of its time), so
    a run that resolves only the changed groups looks only at theirs."""
    keyed = groups.withColumn("_gk", F.coalesce(F.concat(F.lit("V"), F.col("_group")), F.lit("N")))  # a null name is a group too
    open_groups = keyed.where(F.col("id_key").isNull()).select("_gk").distinct()
    by_number = keyed.join(open_groups, "_gk", "left_anti").select("record_ref", F.col("id_key").alias("person_key"), F.lit("id_number").alias("match_rule"))
    # Name groups are small (tens of mentions) and many: each engine call of the resolver takes a bucket of them
    # (a group never spans buckets), so the per-call cost of a Python UDF is paid RESOLVE_BUCKETS times, not once per name.
    resolved = (
        keyed.join(open_groups, "_gk", "left_semi").drop("_gk")
        .withColumn("_bucket", F.pmod(F.hash("_group"), F.lit(RESOLVE_BUCKETS)))
        .groupBy("_bucket")
        .applyInPandas(lambda pdf: resolve_name_groups(pdf.drop(columns=["_bucket"])), RESOLVED_SCHEMA)
    )
    # record_ref is "<source table>:<record key>" (a table name holds no ':')
    return by_number.unionByName(resolved).select(
        "record_ref", F.substring_index("record_ref", ":", 1).alias("source_table"), F.expr("substring(record_ref, instr(record_ref, ':') + 1)").alias("record_key"),
        "person_key", "match_rule",
    )


def _most_frequent(df: DataFrame, col: str) -> DataFrame:
    """``(person_key, col)``: the most frequent non-null value per person (ties: the smallest)."""
    counts = df.where(F.col(col).isNotNull()).groupBy("person_key", col).count()
    w = Window.partitionBy("person_key").orderBy(F.col("count").desc(), F.col(col))
    return counts.withColumn("_r", F.row_number().over(w)).where(F.col("_r") == 1).select("person_key", col)


def build_person_index(mentions: DataFrame, person_records: DataFrame) -> DataFrame:
    """One row per person: identity, most frequent attributes, how many mentions and agencies.

    The stage builds it in two steps, :func:`person_mentions` written once as ``work.person_mentions`` and
    :func:`index_persons` over it."""
    return index_persons(person_mentions(mentions, person_records))


def person_mentions(mentions: DataFrame, person_records: DataFrame) -> DataFrame:
    """Each mention's attributes with its person: the person index's input, one row per person record."""
    return mentions.join(person_records.select("source_table", "record_key", "person_key"), ["source_table", "record_key"]).select(
        "person_key", "source_table", "record_key", "name", "id_number", "sex", "birth_date"
    )


def index_persons(m: DataFrame) -> DataFrame:
    """:func:`build_person_index` over :func:`person_mentions`: a function of each person's mentions alone."""
    # Fixed-size accumulators only (no per-group sets): an agency is listed when any mention is from one of its
    # tables (in name order, as a sorted set would list them); a conflict is two values, min != max.
    def seen(name: str) -> Column:
        tables = [t for t, a in AGENCY.items() if a == name]
        return F.when(F.max(F.col("source_table").isin(tables)), F.lit(name))

    def differs(col: str) -> Column:
        return F.coalesce(F.min(col) != F.max(col), F.lit(False))

    stats = m.groupBy("person_key").agg(
        F.max("id_number").alias("id_number"),
        F.count(F.lit(1)).cast("int").alias("n_records"),
        F.concat_ws(",", *[seen(a) for a in sorted(set(AGENCY.values()))]).alias("agencies"),
        (differs("name") | differs("sex") | differs("birth_date")).alias("has_conflicts"),
    )
    # A valid identity number fixes sex and birth date (GB 11643-1999); otherwise the majority of mentions does.
    # Silver holds only valid 18-character numbers: birth date in characters 7-14, an odd 17th digit for male.
    id_birth_date = F.try_to_timestamp(F.substring("id_number", 7, 8), F.lit("yyyyMMdd")).cast("date")
    id_sex = F.when(F.col("id_number").isNotNull(), F.when((F.ascii(F.substring("id_number", 17, 1)) - 48) % 2 == 1, F.lit("M")).otherwise(F.lit("F")))
    return (
        stats.join(_most_frequent(m, "name"), "person_key", "left")
        .join(_most_frequent(m, "sex"), "person_key", "left")
        .join(_most_frequent(m, "birth_date"), "person_key", "left")
        .select(
            "person_key", "id_number", "name",
            F.coalesce(id_sex, F.col("sex")).alias("sex"),
            F.coalesce(id_birth_date, F.col("birth_date")).alias("birth_date"),
            "n_records", "agencies", "has_conflicts",
        )
    )


def _latest(df: DataFrame, keys: list[str], order: list[Column]) -> DataFrame:
    w = Window.partitionBy(*keys).orderBy(*order)
    return df.withColumn("_r", F.row_number().over(w)).where(F.col("_r") == 1).drop("_r")


def _with_person(df: DataFrame, person_records: DataFrame, table: str, key: str) -> DataFrame:
    pk = person_records.where(F.col("source_table") == table).select(F.col("record_key").alias(key), "person_key")
    return df.join(pk, key)


def _birth_evidence(suspects: DataFrame, prosecutions: DataFrame, defendants: DataFrame, custody: DataFrame) -> list[tuple[str, str, DataFrame]]:
    """(table, key column, frame) of every silver person record with its birth dates: recorded and from the id."""
    out = []
    for table, key, df in (
        ("silver.suspects", "suspect_id", suspects), ("silver.prosecutions", "prosecution_id", prosecutions),
        ("silver.court_defendants", "defendant_id", defendants), ("silver.custody", "record_id", custody),
    ):
        recorded = F.col("birth_date") if "birth_date" in df.columns else F.lit(None).cast("date")
        out.append((table, key, df.withColumn("_b", F.greatest(recorded, _id_birth_date(F.col("id_number"))))))
    return out


def build_case_chain(
    police_cases: DataFrame,
    suspects: DataFrame,
    prosecutions: DataFrame,
    court_cases: DataFrame,
    defendants: DataFrame,
    custody: DataFrame,
    person_records: DataFrame,
    person_index: DataFrame,
    legal_aid: DataFrame | None = None,
) -> DataFrame:
    """One row per (police case, suspect person) with every later stage of the case joined on and its seal status.

    Each stage is found by the case-number chain and, where a link is missing, by the person:
    a prosecution through its police case, its review's, else the person's one police case
    filed before the review; a first instance through its
    review's record of the same person, else the review's police case, else the person's
    one police case filed before the trial; an appeal through its first instance; custody
    through the chain's court cases; a legal-aid appointment through its first instance and
    the defendant (see :func:`legal_aid_links`).
    """
    linked = link_case_chain(police_cases, suspects, prosecutions, court_cases, defendants, person_records)
    return finish_case_chain(linked, police_cases, suspects, prosecutions, court_cases, defendants, custody, person_records, person_index, legal_aid)


def link_case_chain(
    police_cases: DataFrame, suspects: DataFrame, prosecutions: DataFrame, court_cases: DataFrame, defendants: DataFrame, person_records: DataFrame,
) -> DataFrame:
    """The first half of :func:`build_case_chain`: one row per (police case, suspect person) with its prosecution,
    first instance and appeal found.

    The stage builds it in four work tables, each written once (:func:`chain_persons`, :func:`chain_reviews`,
    :func:`chain_trials`, then :func:`join_case_links` as ``work.case_links``): the engine has no cache and runs a
    frame again wherever it is used, and each of the first three is used several times (9.3 s as one plan at scale
    100, 3.0 s as four)."""
    base = chain_persons(suspects, person_records)
    return join_case_links(base, police_cases, chain_reviews(base, police_cases, prosecutions, person_records),
                           chain_trials(defendants, court_cases, prosecutions, person_records))


# What a changed row of each of the chain's inputs hands on to find the persons it reaches (chain_reach)
CHAIN_ROW_COLUMNS = {
    "silver.suspects": ("suspect_id", "police_case_id"),
    "silver.police_cases": ("police_case_id",),
    "silver.prosecutions": ("prosecution_id", "police_case_id", "review_id"),
    "silver.court_cases": ("case_number", "review_id", "original_case_number"),
    "silver.court_defendants": ("defendant_id", "case_number"),
    "silver.custody": ("record_id", "case_number"),
    "silver.legal_aid_appointments": ("case_number",),
    "gold.person_records": ("person_key",),
    "gold.person_index": ("person_key",),
}
_RECORD_KEYS = {"silver.suspects": "suspect_id", "silver.prosecutions": "prosecution_id", "silver.court_defendants": "defendant_id", "silver.custody": "record_id"}


def chain_scope(police_cases: DataFrame, suspects: DataFrame, prosecutions: DataFrame, court_cases: DataFrame, defendants: DataFrame,
                custody: DataFrame, legal_aid: DataFrame | None, person_records: DataFrame, person_index: DataFrame, mentions: DataFrame) -> DataFrame:
    """``person_key``: the persons a whole build of the chain covers, every suspect person. It takes every input
    :func:`chain_reach` takes: the runner hashes them for the next build (``ByReach``)."""
    return _suspect_pairs(suspects, person_records).select("person_key").distinct()


def chain_reach(changed: DataFrame, police_cases: DataFrame, suspects: DataFrame, prosecutions: DataFrame, court_cases: DataFrame,
                defendants: DataFrame, custody: DataFrame, legal_aid: DataFrame | None, person_records: DataFrame, person_index: DataFrame,
                mentions: DataFrame) -> DataFrame:
    """``person_key``: every person whose chains the changed rows can change (``changed``: ``(input, column, value)``,
    the :data:`CHAIN_ROW_COLUMNS` of every input row new or gone); the runner rebuilds their chains and keeps every
    other (``ByReach``).

    A person's chains are a function of the person's own records (:func:`chain_persons` onwards join and group by
    person) and of what is known of the cases those records sit in: the police case's facts, the review's police
    case, the court case's review and first instance, its custody and legal-aid records, and every record of the
    police case carrying the person's name (the birth evidence). So a changed row reaches the cases it names (as it
    was and as it is); a court case reaches its first instance, its appeals and its review; a review its police cases
    and court cases: every link a changed row can make or break, both ways. The persons reached: those with a
    record in a reached case (by :func:`build_mentions`' cases), those whose own records changed, and those whose
    records or index row changed (the earlier person of a record included). More than needed costs time only.
    """

    def values(*parts: tuple[str, str]) -> DataFrame:
        hit = F.lit(False)
        for table, col in parts:
            hit = hit | ((F.col("input") == table) & (F.col("column") == col))
        return changed.where(hit & F.col("value").isNotNull()).select(F.col("value").alias("k"))

    def having(df: DataFrame, col: str, keys: DataFrame, out: str) -> DataFrame:
        return df.join(keys.withColumnRenamed("k", col), col, "left_semi").select(F.col(out).alias("k"))

    courts = values(*[(t, "case_number") for t in ("silver.court_cases", "silver.court_defendants", "silver.custody", "silver.legal_aid_appointments")],
                    ("silver.court_cases", "original_case_number")).distinct()
    cc = court_cases.select("case_number", "review_id", "original_case_number")
    # a court case reaches its appeals and its first instance; they and a changed review reach their reviews
    courts = courts.unionByName(having(cc, "original_case_number", courts, "case_number")).unionByName(having(cc, "case_number", courts, "original_case_number"))
    reviews = values(("silver.prosecutions", "review_id"), ("silver.court_cases", "review_id")).unionByName(having(cc, "case_number", courts, "review_id"))
    reviews = reviews.where(F.col("k").isNotNull()).distinct()
    # a review reaches its court cases (and their appeals) and its police cases
    by_review = having(cc, "review_id", reviews, "case_number")
    courts = courts.unionByName(by_review).unionByName(having(cc, "original_case_number", by_review, "case_number"))
    pcs = values(("silver.police_cases", "police_case_id"), ("silver.suspects", "police_case_id"), ("silver.prosecutions", "police_case_id")).unionByName(
        having(prosecutions, "review_id", reviews, "police_case_id"))
    keys = (pcs.select(F.lit("pc").alias("kind"), "k").unionByName(reviews.select(F.lit("rv").alias("kind"), "k"))
            .unionByName(courts.select(F.lit("cc").alias("kind"), "k")).where(F.col("k").isNotNull()).distinct())
    # every record sitting in a reached case: one pass over the mentions, each by its cases
    m = mentions.select("source_table", "record_key", F.explode(F.array(
        F.struct(F.lit("pc").alias("kind"), F.col("police_case_id").alias("k")), F.struct(F.lit("rv").alias("kind"), F.col("review_id").alias("k")),
        F.struct(F.lit("cc").alias("kind"), F.col("case_number").alias("k")), F.struct(F.lit("cc").alias("kind"), F.col("court_case").alias("k")),
    )).alias("_c")).select("source_table", "record_key", "_c.kind", "_c.k")
    records = m.join(keys, ["kind", "k"], "left_semi").select("source_table", "record_key")
    for table, key in _RECORD_KEYS.items():  # the records whose own rows changed
        records = records.unionByName(values((table, key)).select(F.lit(table).alias("source_table"), F.col("k").alias("record_key")))
    persons = person_records.join(records.distinct(), ["source_table", "record_key"], "left_semi").select("person_key")
    persons = persons.unionByName(values(("gold.person_records", "person_key"), ("gold.person_index", "person_key")).select(F.col("k").alias("person_key")))
    return persons.where(F.col("person_key").isNotNull()).distinct()


def chain_records(person_records: DataFrame, scope: DataFrame) -> DataFrame:
    """The person records of the persons a build of the chain covers (:func:`chain_scope`, or :func:`chain_reach`)."""
    return person_records.join(scope, "person_key", "left_semi")


def chain_persons(suspects: DataFrame, person_records: DataFrame) -> DataFrame:
    """``(police_case_id, person_key)``: each suspect person of each police case, once."""
    return _latest(
        _with_person(suspects, person_records, "silver.suspects", "suspect_id").select("police_case_id", "person_key", "updated_at"),
        ["police_case_id", "person_key"],
        [F.col("updated_at").desc_nulls_last()],
    ).drop("updated_at")


def _person_cases(base: DataFrame, police_cases: DataFrame) -> DataFrame:
    """The person's police cases and their filing dates: where a later stage lost its link, the person's one
    police case filed before it is its case."""
    return base.join(police_cases.select("police_case_id", "filed_on", "transferred_on"), "police_case_id").select(
        "person_key", F.col("police_case_id").alias("_own_pc"), F.col("filed_on").alias("_own_filed_on"), F.col("transferred_on").alias("_own_transferred_on")
    )


def _own_case(person_cases: DataFrame, df: DataFrame, key: str, on: str, *, handed_over: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """``(key, person_key, _own_pc)`` where the person has exactly one police case filed on or before ``on``;
    of several, the one ``handed_over`` keeps (the case the record was handed over from), when it keeps exactly one."""
    cands = df.select(key, "person_key", on).distinct().join(person_cases, "person_key").where(
        F.col(on).isNull() | F.col("_own_filed_on").isNull() | (F.col("_own_filed_on") <= F.col(on))
    )
    one = _unique(cands, [key, "person_key"], "_own_pc", "_own_pc")
    if handed_over is None:
        return one
    handed = _unique(handed_over(cands), [key, "person_key"], "_own_pc", "_handed_pc")
    return one.join(handed, [key, "person_key"], "full").select(key, "person_key", F.coalesce("_own_pc", "_handed_pc").alias("_own_pc"))


def chain_reviews(base: DataFrame, police_cases: DataFrame, prosecutions: DataFrame, person_records: DataFrame) -> DataFrame:
    """Each prosecution record with its person and its police case: its own, its review's, else the person's one
    police case filed before the review received it (records with none are left out)."""
    by_review = review_police_cases(prosecutions).withColumnRenamed("police_case_id", "_review_pc")
    p = _with_person(prosecutions, person_records, "silver.prosecutions", "prosecution_id").join(by_review, "review_id", "left")
    # a review that lost its police case id, of a person with several cases: the case the police transferred last before
    # the review received it, of the cases no review names yet
    reviewed = p.select(F.coalesce("police_case_id", "_review_pc").alias("_own_pc"), "person_key").where(F.col("_own_pc").isNotNull())

    def transferred(cands: DataFrame) -> DataFrame:
        before = cands.join(reviewed, ["_own_pc", "person_key"], "left_anti").where(F.col("_own_transferred_on") <= F.col("received_on"))
        return _at_latest(before, ["prosecution_id", "person_key"], "_own_transferred_on")

    own = _own_case(_person_cases(base, police_cases), p, "prosecution_id", "received_on", handed_over=transferred)
    return p.join(own, ["prosecution_id", "person_key"], "left").withColumn(
        "police_case_id", F.coalesce("police_case_id", "_review_pc", "_own_pc")
    ).where(F.col("police_case_id").isNotNull())


def chain_trials(defendants: DataFrame, court_cases: DataFrame, prosecutions: DataFrame, person_records: DataFrame) -> DataFrame:
    """Each court defendant record with its person, its court case's facts and the review and police case the court
    case links to (:func:`court_case_links`)."""
    return _with_person(defendants, person_records, "silver.court_defendants", "defendant_id").join(
        court_case_links(court_cases, prosecutions).select("case_number", F.col("review_id").alias("_rv"), F.col("police_case_id").alias("_cc_pc")), "case_number", "left"
    ).join(
        court_cases.select("case_number", "trial_level", "original_case_number", F.col("filed_on").alias("c_filed_on"), F.col("judged_on").alias("c_judged_on")),
        "case_number",
    )


def join_case_links(base: DataFrame, police_cases: DataFrame, reviews: DataFrame, trials: DataFrame) -> DataFrame:
    """:func:`link_case_chain` from its three parts: each chain's latest prosecution, first instance and appeal."""
    chain = base.join(police_cases.select(*POLICE_CASE_COLUMNS), "police_case_id")
    person_cases = _person_cases(base, police_cases)
    p, judged = reviews, trials
    have = set(p.columns)  # one schema request (each analyses the whole plan so far)
    first_received = F.col("first_received_on") if "first_received_on" in have else F.lit(None).cast("date")
    rounds = F.col("supplementary_rounds") if "supplementary_rounds" in have else F.lit(None).cast("int")
    review_stats = p.groupBy("police_case_id", "person_key").agg(
        F.least(F.min(first_received), F.min("received_on")).alias("prosecution_first_received_on"),
        F.greatest(F.max(rounds), F.sum(F.when(F.col("decision") == "supplementary_investigation", 1).otherwise(0))).cast("int").alias("supplementary_rounds"),
    )
    pros = _latest(p, ["police_case_id", "person_key"], [F.col("decided_on").desc_nulls_last(), F.col("updated_at").desc_nulls_last()]).select(
        "police_case_id", "person_key", "review_id",
        F.col("received_on").alias("prosecution_received_on"),
        F.col("decision").alias("prosecution_decision"),
        F.col("decided_on").alias("prosecution_decided_on"),
        *[(F.col(src) if src in have else F.lit(None).cast(kind)).alias(dst) for src, dst, kind in REVIEW_FACT_COLUMNS],
    ).join(review_stats, ["police_case_id", "person_key"])

    # The police case of a first-instance defendant: the review's record of the same person, else the review's
    # one police case, else the person's one police case filed before the trial.
    same_review = _unique(p.select(F.col("review_id").alias("_rv"), "person_key", F.col("police_case_id").alias("_p_pc")), ["_rv", "person_key"], "_p_pc", "_p_pc")
    fi = judged.where(F.col("trial_level") == "first_instance").join(same_review, ["_rv", "person_key"], "left")
    # a first instance that lost its review id, of a person with several cases: the case whose review decided to prosecute
    # last before the court's filing (the indictment the court accepted), of the cases no first instance is linked to yet
    tried = fi.select(F.coalesce("_p_pc", "_cc_pc").alias("_own_pc"), "person_key").where(F.col("_own_pc").isNotNull())
    decided = p.where(F.col("decision") == "prosecute").select(F.col("police_case_id").alias("_own_pc"), "person_key", F.col("decided_on").alias("_decided_on")
                                                             ).join(tried, ["_own_pc", "person_key"], "left_anti")

    def indicted(cands: DataFrame) -> DataFrame:
        before = cands.join(decided, ["_own_pc", "person_key"]).where(F.col("_decided_on") <= F.col("c_filed_on"))
        return _at_latest(before, ["case_number", "person_key"], "_decided_on")

    fi = fi.join(_own_case(person_cases, fi, "case_number", "c_filed_on", handed_over=indicted), ["case_number", "person_key"], "left").withColumn(
        "police_case_id", F.coalesce("_p_pc", "_cc_pc", "_own_pc"))
    first = _latest(fi.where(F.col("police_case_id").isNotNull()), ["police_case_id", "person_key"], [F.col("c_judged_on").desc_nulls_last()]).select(
        "police_case_id", "person_key",
        F.col("case_number").alias("first_instance_case_number"),
        F.col("c_filed_on").alias("first_instance_filed_on"),
        F.col("c_judged_on").alias("first_instance_judged_on"),
        F.col("verdict").alias("fi_verdict"), F.col("sentence_type").alias("fi_sentence_type"), F.col("sentence_months").alias("fi_sentence_months"),
    )
    appeal = _latest(
        judged.where(F.col("trial_level") == "appeal"), ["original_case_number", "person_key"], [F.col("c_judged_on").desc_nulls_last()]
    ).select(
        F.col("original_case_number").alias("first_instance_case_number"), "person_key",
        F.col("case_number").alias("appeal_case_number"),
        F.col("c_judged_on").alias("appeal_judged_on"),
        F.col("verdict").alias("ap_verdict"), F.col("sentence_type").alias("ap_sentence_type"), F.col("sentence_months").alias("ap_sentence_months"),
    )
    return chain.join(pros, ["police_case_id", "person_key"], "left").join(first, ["police_case_id", "person_key"], "left").join(
        appeal, ["first_instance_case_number", "person_key"], "left"
    )


def finish_case_chain(
    linked: DataFrame,
    police_cases: DataFrame,
    suspects: DataFrame,
    prosecutions: DataFrame,
    court_cases: DataFrame,
    defendants: DataFrame,
    custody: DataFrame,
    person_records: DataFrame,
    person_index: DataFrame,
    legal_aid: DataFrame | None = None,
    chain_records: DataFrame | None = None,
) -> DataFrame:
    """The second half of :func:`build_case_chain` over :func:`link_case_chain`'s rows: custody, legal aid, the
    person's latest birth date by any silver record, and the seal status.

    ``police_cases`` is not joined again (``linked`` carries the police case's columns); the stage reconciles the
    chains against it (a suspect whose police case is not in silver is quarantined, see :func:`chain_tally`).
    ``chain_records``: the person records of the persons built (:func:`chain_records`; default: every one); a
    legal-aid appointment is matched among every defendant of its court case.
    """
    chain = linked
    base = linked.select("police_case_id", "person_key")
    mine = person_records if chain_records is None else chain_records
    held = _with_person(custody, mine, "silver.custody", "record_id").select(
        F.col("case_number").alias("_custody_case"), "person_key", "custody_type",
        F.col("admitted_on").alias("custody_admitted_on"), F.col("released_on").alias("custody_released_on"),
    )
    custody_match = held.join(
        chain.select("police_case_id", "person_key", "first_instance_case_number", "appeal_case_number"), "person_key"
    ).where((F.col("_custody_case") == F.col("first_instance_case_number")) | (F.col("_custody_case") == F.col("appeal_case_number")))
    custody_first = _latest(custody_match, ["police_case_id", "person_key"], [F.col("custody_admitted_on").asc()]).select(
        "police_case_id", "person_key", "custody_type", "custody_admitted_on", "custody_released_on"
    )
    aid = legal_aid_links(legal_aid, defendants, person_records).withColumnRenamed("case_number", "first_instance_case_number")
    chain = chain.join(aid, ["first_instance_case_number", "person_key"], "left")
    chain = chain.join(custody_first, ["police_case_id", "person_key"], "left").join(
        person_index.select("person_key", F.col("birth_date").alias("_birth")), "person_key", "left"
    )
    births = _latest_birth(base, suspects, prosecutions, defendants, custody, court_cases, mine, person_index)
    chain = chain.join(births, ["police_case_id", "person_key"], "left")
    has_appeal = F.col("appeal_case_number").isNotNull()
    final_judged = F.coalesce("appeal_judged_on", "first_instance_judged_on")
    minor = sealing.age_at(F.col("_latest_birth"), sealing.offense_on(F.col("occurred_on"), F.col("filed_on"))) < sealing.ADULT_AGE
    chain = (
        chain.withColumn("verdict", F.when(has_appeal, F.col("ap_verdict")).otherwise(F.col("fi_verdict")))
        .withColumn("sentence_type", F.when(has_appeal, F.col("ap_sentence_type")).otherwise(F.col("fi_sentence_type")))
        .withColumn("sentence_months", F.when(has_appeal, F.col("ap_sentence_months")).otherwise(F.col("fi_sentence_months")))
        .withColumn("age_at_offense", sealing.age_at(F.col("_birth"), F.coalesce("occurred_on", "filed_on")))
        .withColumn("_minor", minor)
        .withColumn("is_minor_at_offense", F.coalesce(F.col("_minor"), F.lit(False)))
        .withColumn(
            "seal_status",
            sealing.seal_status(
                F.col("_minor"),
                sealing.outcome(F.col("prosecution_decision"), F.col("first_instance_case_number").isNotNull(), F.col("verdict"), F.col("sentence_type"), F.col("sentence_months")),
            ),
        )
        .withColumn("is_sealed", F.col("seal_status") == "sealed")
        .withColumn("is_withheld", sealing.is_withheld(F.col("seal_status")))
        .withColumn("chain_id", _key("C", F.col("police_case_id"), F.col("person_key")))
        .withColumn("days_detention_to_arrest", F.datediff("arrested_on", "detained_on").cast("int"))
        .withColumn("days_in_review", F.datediff("prosecution_decided_on", "prosecution_received_on").cast("int"))
        .withColumn("days_first_instance", F.datediff("first_instance_judged_on", "first_instance_filed_on").cast("int"))
        .withColumn("days_filed_to_judgment", F.datediff(final_judged, "filed_on").cast("int"))
    )
    return chain.drop("fi_verdict", "fi_sentence_type", "fi_sentence_months", "ap_verdict", "ap_sentence_type", "ap_sentence_months", "_birth", "_latest_birth", "_minor")


def legal_aid_links(legal_aid: DataFrame | None, defendants: DataFrame, person_records: DataFrame) -> DataFrame:
    """``(case_number, person_key, legal_aid_appointed_on, legal_aid_by)``: the first appointment for each defendant of a court case.

    An appointment names its court case and the defendant: it is the defendant of that case
    with the same valid identity number, else (no valid number delivered) the one defendant
    of that name. An appointment that matches no defendant is not guessed onto one.
    """
    cols = ("case_number", "person_key", "legal_aid_appointed_on", "legal_aid_by")
    d = _with_person(defendants, person_records, "silver.court_defendants", "defendant_id").select("case_number", "person_key", F.col("id_number").alias("_d_id"), F.col("name").alias("_d_name"))
    if legal_aid is None:
        return d.limit(0).select("case_number", "person_key", F.lit(None).cast("date").alias(cols[2]), F.lit(None).cast("string").alias(cols[3]))
    a = legal_aid.where(F.col("case_number").isNotNull()).select("case_number", F.col("id_number").alias("_a_id"), F.col("name").alias("_a_name"),
                                                                F.col("appointed_on").alias(cols[2]), F.col("appointed_by").alias(cols[3]))
    by_id = a.where(F.col("_a_id").isNotNull()).join(d.withColumnRenamed("_d_id", "_a_id"), ["case_number", "_a_id"]).select("case_number", "person_key", *cols[2:])
    named = _unique(d.where(F.col("_d_name").isNotNull()), ["case_number", "_d_name"], "person_key", "person_key").withColumnRenamed("_d_name", "_a_name")
    by_name = a.where(F.col("_a_id").isNull()).join(named, ["case_number", "_a_name"]).select("case_number", "person_key", *cols[2:])
    both = by_id.unionByName(by_name)
    return _latest(both, ["case_number", "person_key"], [F.col(cols[2]).asc_nulls_last(), F.col(cols[3]).asc_nulls_last()]).select(*cols)


def _latest_birth(base: DataFrame, suspects: DataFrame, prosecutions: DataFrame, defendants: DataFrame, custody: DataFrame,
                  court_cases: DataFrame, person_records: DataFrame, person_index: DataFrame) -> DataFrame:
    """``(police_case_id, person_key, _latest_birth)``: the latest birth date any silver record gives the chain's person.

    The records are found as the share gate's check finds them (``sealing.minor_evidence_sql``):
    every record of the person, and every record of the chain's police case (a court record
    through its court case) carrying the person's name. The latest birth date makes the
    person youngest, so the person's own records are reduced to their latest date before they meet
    the person's chains.
    """
    links = court_case_links(court_cases, prosecutions).select("case_number", F.col("police_case_id").alias("_link_pc"))
    # Every silver person record once, with the police case it sits in (a court record's through its court case):
    # each input is referenced once, since the engine runs a frame again wherever it is used.
    records = None
    for table, key, df in _birth_evidence(suspects, prosecutions, defendants, custody):
        if "police_case_id" not in df.columns:
            df = df.join(links, "case_number", "left").withColumnRenamed("_link_pc", "police_case_id")
        part = df.select(F.lit(table).alias("source_table"), F.col(key).alias("record_key"), F.col("police_case_id").alias("_record_pc"),
                         F.col("name").alias("_name"), "_b")
        records = part if records is None else records.unionByName(part)
    assert records is not None
    youngest = person_records.select("source_table", "record_key", "person_key").join(records, ["source_table", "record_key"]).groupBy("person_key").agg(F.max("_b").alias("_b"))
    own = base.select("police_case_id", "person_key").join(youngest, "person_key")
    keys = base.join(person_index.select("person_key", F.col("name").alias("_name")), "person_key")
    named = keys.join(records.withColumnRenamed("_record_pc", "police_case_id"), ["police_case_id", "_name"])
    return (
        own.select("police_case_id", "person_key", "_b")
        .unionByName(named.select("police_case_id", "person_key", "_b"))
        .groupBy("police_case_id", "person_key")
        .agg(F.max("_b").alias("_latest_birth"))
    )


def build_sealed_records(chain: DataFrame, mentions: DataFrame, person_records: DataFrame, police_transfers: DataFrame) -> DataFrame:
    """One row per (silver record, withheld chain): every silver record of a sealed or pending chain.

    Person records: the chain's person's mentions in its police case, or in its court cases.
    Case records: the police case, its transfers, the chain's court cases.
    """
    withheld = chain.where(sealing.is_withheld(F.col("seal_status"))).select(
        "chain_id", "police_case_id", "person_key", "seal_status", "first_instance_case_number", "appeal_case_number"
    )
    mine = person_records.select("source_table", "record_key", "person_key").join(
        mentions.select("source_table", "record_key", F.col("police_case_id").alias("_pc"), F.col("case_number").alias("_cn")), ["source_table", "record_key"]
    )
    by_case = mine.join(withheld, "person_key").where(
        (F.col("_pc") == F.col("police_case_id")) | (F.col("_cn") == F.col("first_instance_case_number")) | (F.col("_cn") == F.col("appeal_case_number"))
    ).select("source_table", "record_key", "chain_id", "person_key", "seal_status")
    cases = withheld.select(F.lit("silver.police_cases").alias("source_table"), F.col("police_case_id").alias("record_key"), "chain_id", "person_key", "seal_status")
    transfers = police_transfers.select("transfer_id", "police_case_id").join(withheld, "police_case_id").select(
        F.lit("silver.police_transfers").alias("source_table"), F.col("transfer_id").alias("record_key"), "chain_id", "person_key", "seal_status"
    )
    courts = withheld.select(F.explode(F.array("first_instance_case_number", "appeal_case_number")).alias("record_key"), "chain_id", "person_key", "seal_status").where(
        F.col("record_key").isNotNull()
    ).select(F.lit("silver.court_cases").alias("source_table"), "record_key", "chain_id", "person_key", "seal_status")
    return by_case.unionByName(cases).unionByName(transfers).unionByName(courts).dropDuplicates(["source_table", "record_key", "chain_id"])


def _limit_stages(chain: DataFrame, police_cases: DataFrame, court_cases: DataFrame) -> tuple[list[str], list[tuple[str, DataFrame]]]:
    """The facts every stage carries, and per rule the chain stages it judges, as
    ``(chain_id, police_case_id, region_code, _start, _end, _open, evidence, facts…)``."""
    police_columns = set(police_cases.columns)  # one schema request, not one per fact
    status = police_cases.select("police_case_id", F.col("status").alias("_status"), *[f for f in _FACTS if f in police_columns])
    appeals = court_cases.where(F.col("trial_level") == "appeal").select(F.col("case_number").alias("appeal_case_number"), F.col("filed_on").alias("_appeal_filed_on"))
    c = chain.join(status, "police_case_id", "left").join(appeals, "appeal_case_number", "left")
    police = F.concat(F.lit("silver.police_cases:"), F.col("police_case_id"))
    review = F.concat(F.lit("silver.prosecutions review "), F.col("review_id"))
    first = F.concat(F.lit("silver.court_cases:"), F.col("first_instance_case_number"))
    appeal = F.concat(F.lit("silver.court_cases:"), F.col("appeal_case_number"))
    withdrawn = F.coalesce(F.col("_status") == "撤案", F.lit(False))
    never_transferred = F.col("transferred_on").isNull() & F.col("prosecution_first_received_on").isNull() & F.col("prosecution_received_on").isNull()
    undecided = F.col("prosecution_decided_on").isNull() & F.col("prosecution_decision").isNull()
    chain_columns = set(c.columns)
    for _src, name, kind in REVIEW_FACT_COLUMNS:
        if name not in chain_columns:
            c = c.withColumn(name, F.lit(None).cast(kind))
            chain_columns.add(name)
    facts = [f for f in _FACTS if f in chain_columns]
    # the latest receipt: a resubmission after supplementary investigation restarts the clock (art. 175); a record whose
    # latest word is a return, resubmitted since, is a review open again from the resubmission
    c = c.withColumn("_review_start", F.greatest("prosecution_received_on", "supplementary_resubmitted_on_1", "supplementary_resubmitted_on_2"))
    reopened = F.coalesce((F.col("prosecution_decision") == "supplementary_investigation") & (F.col("_review_start") > F.col("prosecution_decided_on")), F.lit(False))

    def stage(where: Column, start: str, end: Column, is_open: Column, evidence: Column, *, implied: bool = False) -> DataFrame:
        # implied: the stage's end proves its clock started (a judgment, an accepted case), so a missing start
        # date keeps the stage, undetermined (fail closed), instead of dropping it from the warnings
        started = F.lit(True) if implied else F.col(start).isNotNull()
        return c.where(started & where).select(
            "chain_id", "police_case_id", "region_code", F.col(start).alias("_start"), end.alias("_end"), is_open.alias("_open"),
            F.concat_ws("; ", evidence).alias("evidence"), *[F.col(f) for f in facts],
        )

    return facts, [
        # detention → arrest: judged once the arrest is recorded (a release on bail is not in the sources)
        ("detention_to_arrest", stage(F.col("arrested_on").isNotNull(), "detained_on", F.col("arrested_on"), F.lit(False), police)),
        ("custody_after_arrest", stage(F.col("transferred_on").isNotNull(), "arrested_on", F.col("transferred_on"), F.lit(False), police)),
        ("arrested_not_transferred", stage(never_transferred & ~withdrawn, "arrested_on", F.lit(None).cast("date"), F.lit(True), police)),
        ("review_for_prosecution", stage(F.col("prosecution_decided_on").isNotNull() | undecided, "_review_start",
                                         F.when(~reopened, F.col("prosecution_decided_on")), undecided | reopened, F.concat_ws("; ", police, review))),
        # a decision with no receipt date on record: the review happened, its clock start is not known
        ("review_for_prosecution", stage(F.col("_review_start").isNull() & F.col("prosecution_decided_on").isNotNull(), "_review_start",
                                         F.col("prosecution_decided_on"), F.lit(False), F.concat_ws("; ", police, review), implied=True)),
        # each return for supplementary investigation gives the police one month to resubmit (art. 175); still out: open
        *[("supplementary_investigation", stage(~withdrawn, f"supplementary_returned_on_{k}", F.col(f"supplementary_resubmitted_on_{k}"),
                                                F.col(f"supplementary_resubmitted_on_{k}").isNull(),
                                                F.concat_ws("; ", police, F.concat(review, F.lit(f" round {k}"))))) for k in (1, 2)],
        ("first_instance", stage(F.col("first_instance_judged_on").isNotNull(), "first_instance_filed_on", F.col("first_instance_judged_on"), F.lit(False), first,
                                 implied=True)),
        ("appeal", stage(F.col("appeal_judged_on").isNotNull(), "_appeal_filed_on", F.col("appeal_judged_on"), F.lit(False), F.concat_ws("; ", first, appeal),
                         implied=True)),
    ]


# Extension facts the deadlines apply when the chain carries them (lawlake.rules.time_limits.deadline).
_FACTS = ("is_roaming_serial_gang", "detention_extension_on", "custody_extension_156_on", "custody_extension_158_on",
          "custody_extension_159_on", "review_extension_on", "is_major_complex")


def build_time_limit_warnings(chain: DataFrame, police_cases: DataFrame, court_cases: DataFrame, *, data_date: date, warning_days: int = 5) -> DataFrame:
    """One row per (chain stage, rule) over its statutory limit (``exceeded``), or still open and within
    ``warning_days`` of it (``approaching``), judged at its end date or, while open, at ``data_date``.

    A stage that certainly happened (a judgment, a prosecution decision) but whose clock start is
    missing in the sources (its date quarantined or never delivered) cannot be judged: it is
    ``undetermined``, without a deadline, so someone checks the file instead of no one.

    Rules, articles and deadlines: :mod:`lawlake.rules.time_limits`.
    """
    judged_at = F.lit(data_date).cast("date")
    parts = []
    carried, limit_stages = _limit_stages(chain, police_cases, court_cases)
    facts = {f: F.col(f) for f in carried}
    for rule, stages in limit_stages:
        r = TL.RULES[rule]
        deadline = TL.deadline_column(rule, F.col("_start"), facts)
        judged_on = F.when(F.col("_open"), judged_at).otherwise(F.col("_end"))
        days_over = F.datediff(F.col("judged_on"), F.col("deadline"))
        status = (F.when(F.col("_start").isNull(), "undetermined").when(days_over > 0, "exceeded")
                  .when(F.col("_open") & (days_over >= -warning_days), "approaching"))
        evidence = F.when(F.col("_start").isNull(), F.concat_ws("; ", F.col("evidence"), F.lit(f"the date of {r.clock} is not recorded in the sources: the limit cannot be judged"))
                          ).otherwise(F.col("evidence"))
        parts.append(
            stages.where(~F.col("_open") | (F.col("_start") <= judged_at))
            .select("*", deadline.alias("deadline"), judged_on.alias("judged_on"))
            .select(
                "chain_id", "police_case_id", "region_code", F.lit(rule).alias("rule"), F.lit(r.article).alias("article"), F.lit(r.agency).alias("agency"),
                F.col("_start").alias("clock_started_on"), "deadline", F.when(~F.col("_open"), F.col("_end")).alias("ended_on"), "judged_on",
                days_over.cast("int").alias("days_over"), status.alias("status"), evidence.alias("evidence"),
            )
            .where(F.col("status").isNotNull())
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    # one row per (chain, rule): of a rule's several stages (the two supplementary rounds), the one most over its limit
    worst = Window.partitionBy("chain_id", "rule").orderBy(F.col("days_over").desc(), F.col("clock_started_on").desc())
    return out.withColumn("_n", F.row_number().over(worst)).where(F.col("_n") == 1).drop("_n")


def _suspect_pairs(suspects: DataFrame, person_records: DataFrame) -> DataFrame:
    return suspects.join(
        person_records.where(F.col("source_table") == "silver.suspects").select(F.col("record_key").alias("suspect_id"), "person_key"), "suspect_id"
    )


def chain_orphans(police_cases: DataFrame, suspects: DataFrame, person_records: DataFrame) -> DataFrame:
    """Quarantine rows for suspects whose police case is not in silver: they cannot start a chain."""
    orphans = _suspect_pairs(suspects, person_records).join(police_cases.select("police_case_id"), "police_case_id", "left_anti")
    return orphans.select(
        F.lit("silver.suspects").alias("source_table"), F.lit("gold.case_chain").alias("target_table"), F.col("suspect_id").alias("record_key"),
        F.lit("record").alias("scope"), F.lit("case_chain.no_police_case").alias("rule"),
        F.lit("the suspect's police case is not in silver.police_cases (quarantined or never delivered)").alias("reason"),
        F.col("police_case_id").alias("raw_value"), F.to_json(F.struct("suspect_id", "police_case_id")).alias("record"),
    )


def chain_tally(police_cases: DataFrame, suspects: DataFrame, person_records: DataFrame) -> dict[str, int]:
    """Suspect records in; one chain per (police case, person); orphans quarantined; further mentions of a pair merged."""
    n_in = suspects.count()
    pairs = _suspect_pairs(suspects, person_records)
    n_orphans = pairs.join(police_cases.select("police_case_id"), "police_case_id", "left_anti").count()
    n_pairs = pairs.join(police_cases.select("police_case_id"), "police_case_id").select("police_case_id", "person_key").distinct().count()
    return {"rows_in": n_in, "rows_quarantined": n_orphans, "rows_merged": n_in - n_orphans - n_pairs}


def index_tally(person_index: DataFrame, mentions: DataFrame) -> dict[str, int]:
    """Person records in (their mentions); one row per person; the other mentions of each person merged into it.

    The gate checks every person's ``n_records`` against gold.person_records itself."""
    n_persons, n_folded = first_row(person_index.select(F.count(F.lit(1)), F.sum("n_records")))
    return {"rows_in": mentions.count(), "rows_merged": (n_folded or 0) - n_persons}


SILVER = ("silver.police_cases", "silver.suspects", "silver.prosecutions", "silver.court_cases", "silver.court_defendants", "silver.custody")

STAGE = Stage(
    "integrate",
    (
        Table("work.mentions", build_mentions,
              inputs=("silver.suspects", "silver.prosecutions", "silver.court_defendants", "silver.custody", "silver.court_cases")),
        Table("work.name_groups", name_groups, inputs=("work.mentions",)),
        # resolved per name group: a run rebuilds only the groups whose mentions changed
        Table("gold.person_records", resolve_persons, inputs=("work.name_groups",), tally=lambda records, groups: {"rows_in": groups.count()},
              by_scope=ByScope(scope="_group", key="record_ref")),
        Table("work.person_mentions", person_mentions, inputs=("work.mentions", "gold.person_records")),
        # a function of each person's mentions: a run rebuilds only the persons whose mentions changed
        Table("gold.person_index", index_persons, inputs=("work.person_mentions",), tally=index_tally, by_scope=ByScope(scope="person_key", key="person_key")),
        # the persons whose chains this run builds: every suspect person, or those the inputs' changed rows reach
        Table("work.chain_scope", chain_scope, inputs=(*SILVER, "silver.legal_aid_appointments", "gold.person_records", "gold.person_index", "work.mentions"),
              optional=("silver.legal_aid_appointments",),
              by_reach=ByReach(target="gold.case_chain", scope="person_key", columns=CHAIN_ROW_COLUMNS, reach=chain_reach)),
        Table("work.chain_records", chain_records, inputs=("gold.person_records", "work.chain_scope")),
        # the chain's first half (link_case_chain) in parts, each written once: every part is read several times
        Table("work.chain_persons", chain_persons, inputs=("silver.suspects", "work.chain_records")),
        Table("work.chain_reviews", chain_reviews, inputs=("work.chain_persons", "silver.police_cases", "silver.prosecutions", "work.chain_records")),
        Table("work.chain_trials", chain_trials, inputs=("silver.court_defendants", "silver.court_cases", "silver.prosecutions", "work.chain_records")),
        Table("work.case_links", join_case_links, inputs=("work.chain_persons", "silver.police_cases", "work.chain_reviews", "work.chain_trials")),
        Table(
            "gold.case_chain", finish_case_chain,
            inputs=("work.case_links", *SILVER, "gold.person_records", "gold.person_index", "silver.legal_aid_appointments", "work.chain_records"),
            optional=("silver.legal_aid_appointments",),  # a lake gathered before the legal services API existed
            # orphans and counts from the whole inputs: a build by reach replaces them whole
            quarantine=lambda chain, linked, police_cases, suspects, _p, _cc, _d, _c, person_records, *_: chain_orphans(police_cases, suspects, person_records),
            tally=lambda chain, linked, police_cases, suspects, _p, _cc, _d, _c, person_records, *_: chain_tally(police_cases, suspects, person_records),
        ),
        Table("gold.time_limit_warnings", build_time_limit_warnings, inputs=("gold.case_chain", "silver.police_cases", "silver.court_cases"),
              params=("data_date", "warning_days"), materialize=False),
        Table("gold.sealed_records", build_sealed_records, inputs=("gold.case_chain", "work.mentions", "gold.person_records", "silver.police_transfers"), materialize=False),
    ),
    doc=__doc__ or "",
)
