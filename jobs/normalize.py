"""normalize: bronze records to canonical silver tables, by the contracts in ``schemas/silver``.

Each silver table is built by a pure function ``build_<table>(bronze, refs)`` that
renames, parses (case numbers, identity numbers, dates, names, regions, charges with
the rules in :mod:`lawlake.rules`), checks the table's rules and ranks the versions of
each record. What a broken rule does is declared in the table's contract (``rules:``,
each with ``id``, ``field`` and ``on_failure``): ``reject_record`` where the record cannot
be placed at all (a missing or unparseable key), ``null_field`` otherwise. A builder
returns every input row once, with these markers:

- ``_rule``/``_reason``/``_raw``: the first *record* rule the row breaks (null when none);
- ``_field_errors``: one struct (rule, field, reason, raw) per broken *field* rule, whose
  field is nulled; ``invalid_fields`` names those fields (a silver column);
- ``_key``: the record's source key;
- ``_version``: 1 for the latest version of the key, 2+ for superseded ones.

:func:`split` then sends rejected records to quarantine (scope ``record``), one
quarantine row per nulled value (scope ``field``), keeps the latest kept version and
counts the superseded ones as merged, so rows in = out + quarantined + merged, and
:func:`outcome_counts` counts the nulled values beside the balance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal, NamedTuple

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lawlake import contracts
from lawlake.declarations import Incremental, Stage, Table
from lawlake.fileio import read_yaml
from lawlake.rules import WHITESPACE
from lawlake.rules import spark as R
from lawlake.tables import first_row

__all__ = [
    "ON_FAILURE",
    "Outcome",
    "Refs",
    "Rule",
    "declared",
    "rule_actions",
    "check",
    "outcome_counts",
    "tally",
    "build_police_cases",
    "build_police_transfers",
    "build_suspects",
    "build_prosecutions",
    "build_court_cases",
    "build_court_defendants",
    "build_custody",
    "split",
    "STAGE",
]

DECISIONS = {"起诉": "prosecute", "不起诉": "non_prosecution", "退回补充侦查": "supplementary_investigation"}
CUSTODY_TYPES = {"监狱": "prison", "社区矫正": "community_corrections", "看守所": "remand"}
SEXES = {"男": "M", "女": "F", "M": "M", "F": "F"}
SENTENCE_TYPES = ("fixed_term", "detention", "control", "probation", "fine_only", "exempt", "life", "death", "none")
VERDICTS = ("guilty", "exempt", "acquitted")
PARTY = T.StructType(
    [
        T.StructField("name", T.StringType()),
        T.StructField("id_number", T.StringType()),
        T.StructField("sex", T.StringType()),
        T.StructField("birth_date", T.StringType()),
        T.StructField("role", T.StringType()),
        T.StructField("verdict", T.StringType()),
        T.StructField("sentence_type", T.StringType()),
        T.StructField("sentence_months", T.StringType()),
    ]
)


@dataclass(frozen=True)
class Refs:
    """Reference tables the rules join against: ``regions(code, …)`` (GB/T 2260), ``charge_variants(spelling, charge_code)``."""

    regions: DataFrame
    charge_variants: DataFrame


ON_FAILURE = ("reject_record", "null_field")
FIELD_ERROR = T.StructType(
    [T.StructField("rule", T.StringType()), T.StructField("field", T.StringType()), T.StructField("reason", T.StringType()), T.StructField("raw", T.StringType())]
)


@dataclass(frozen=True)
class Rule:
    """A named rule: ``broken`` is true for a row that breaks it; ``raw`` is the offending value.

    ``field`` and ``on_failure`` come from the table's contract (:func:`declared`).
    """

    id: str
    reason: str
    broken: Column
    raw: Column
    field: str = ""
    on_failure: Literal["reject_record", "null_field", ""] = ""
    column: bool = False  # whether ``field`` is a column of the table (a null_field rule nulls it there); parties is not


@cache
def rule_actions(table: str) -> dict[str, tuple[str, str]]:
    """``{rule id: (field, on_failure)}`` as the contract of ``table`` declares them (its ``rules:`` list)."""
    path = contracts.contract_path(table)
    doc = read_yaml(path) or {}
    actions: dict[str, tuple[str, str]] = {}
    problems = []
    for entry in doc.get("rules") or []:
        rid, field, action = entry.get("id"), entry.get("field"), entry.get("on_failure")
        if not rid or not field:
            problems.append(f"rule {entry!r} needs an id and a field")
        elif action not in ON_FAILURE:
            problems.append(f"rule {rid}: on_failure {action!r} not one of {ON_FAILURE}")
        elif rid in actions:
            problems.append(f"rule {rid} declared twice")
        else:
            actions[rid] = (field, action)
    if problems:
        raise contracts.ContractError(f"{path}: " + "; ".join(problems))
    return actions


def declared(table: str, rules: list[Rule]) -> list[Rule]:
    """``rules`` with the field and action the contract of ``table`` declares for each.

    Fails closed: a rule the contract does not declare, or a declaration no rule
    implements, raises :class:`lawlake.contracts.ContractError`.
    """
    actions = rule_actions(table)
    ids = [r.id for r in rules]
    undeclared = [i for i in ids if i not in actions]
    unimplemented = [i for i in actions if i not in ids]
    if undeclared or unimplemented:
        raise contracts.ContractError(f"{table}: rules not declared in the contract {undeclared}; declared but not implemented {unimplemented}")
    columns = set(contracts.load(table).names)
    return [replace(r, field=actions[r.id][0], on_failure=actions[r.id][1], column=actions[r.id][0] in columns) for r in rules]  # type: ignore[arg-type]


# -- shared steps -------------------------------------------------------------------


def _blank(col: Column) -> Column:
    # Every whitespace the rules strip (full-width spaces too), not only ASCII spaces.
    return col.isNull() | (F.translate(col, WHITESPACE, "") == "")


def _map(col: Column, mapping: dict[str, str]) -> Column:
    expr = F.lit(None).cast("string")
    for raw, value in mapping.items():
        expr = F.when(F.trim(col) == raw, F.lit(value)).otherwise(expr)
    return expr


def required(name: str, what: str) -> Rule:
    return Rule(f"{name}.missing", f"{what} is missing", _blank(F.col(f"raw_{name}")), F.col(f"raw_{name}"))


def date_rule(name: str, what: str) -> Rule:
    return Rule(
        f"{name}.unparseable",
        f"{what} is not a date in any accepted format",
        ~_blank(F.col(f"raw_{name}")) & F.col(name).isNull(),
        F.col(f"raw_{name}"),
    )


def id_rule() -> Rule:
    return Rule(
        "id_number.invalid",
        "identity number fails GB 11643-1999 (length, birth date or check character)",
        ~_blank(F.col("raw_id_number")) & F.col("_id").isNull(),
        F.col("raw_id_number"),
    )


def charge_rule() -> Rule:
    return Rule("charge.unknown", "charge is not in the charge code list", ~_blank(F.col("raw_charge")) & F.col("charge_code").isNull(), F.col("raw_charge"))


def with_person(df: DataFrame) -> DataFrame:
    """Parse a record's person fields: name, identity number, and sex/birth date (the valid id wins)."""
    return (
        df.withColumn("_id", R.id_number(F.col("raw_id_number")))
        .withColumn("name", R.person_name(F.col("raw_name")))
        .withColumn("id_number", F.col("_id.number"))
        .withColumn("is_id_upgraded", F.coalesce(F.col("_id.is_legacy"), F.lit(False)))
        .withColumn("sex", F.coalesce(F.col("_id.sex"), _map(F.col("raw_sex"), SEXES)))
        .withColumn("birth_date", F.coalesce(F.col("_id.birth_date"), R.parse_date(F.col("raw_birth_date"))))
    )


def with_charge(df: DataFrame, refs: Refs) -> DataFrame:
    """Map the raw charge text (name or variant spelling) to its charge code.

    A broadcast join on the charge list rather than ``rules.spark.charge_code``'s literal
    map: the same answer, measured 0.2 s instead of 9.4 s per million rows on Sail.
    """
    variants = refs.charge_variants.select(F.col("spelling").alias("_spelling"), "charge_code")
    return df.withColumn("_spelling", R.charge_text(F.col("raw_charge"))).join(F.broadcast(variants), "_spelling", "left").drop("_spelling")


def parse_timestamp(col: Column) -> Column:
    """A source system's update time (``YYYY-MM-DD HH:MM:SS``, or a bare date) as a timestamp; null otherwise."""
    text = F.trim(col)
    return F.coalesce(F.try_to_timestamp(text, F.lit("yyyy-MM-dd HH:mm:ss")), F.try_to_timestamp(text, F.lit("yyyy-MM-dd")))


def _string_array(cols: list[Column]) -> Column:
    return F.array_compact(F.array(*cols)) if cols else F.array().cast("array<string>")


def check(df: DataFrame, rules: list[Rule]) -> DataFrame:
    """Apply declared rules: mark record rejections, record and null the failed fields.

    - ``_rule``/``_reason``/``_raw``: the first ``reject_record`` rule the row breaks (null when none);
    - ``_field_errors``: array of (rule, field, reason, raw), one per broken ``null_field`` rule;
    - ``invalid_fields``: the distinct fields of those, in rule order; each is nulled.

    Every rule is judged on the values as parsed, before any field is nulled.
    """
    bad = [r.id for r in rules if r.on_failure not in ON_FAILURE]
    if bad:
        raise contracts.ContractError(f"rules without a declared action (see normalize.declared): {bad}")
    record_rules = [r for r in rules if r.on_failure == "reject_record"]
    field_rules = [r for r in rules if r.on_failure == "null_field"]
    rule = reason = raw = F.lit(None).cast("string")
    for r in reversed(record_rules):  # the first rule listed wins
        rule = F.when(r.broken, F.lit(r.id)).otherwise(rule)
        reason = F.when(r.broken, F.lit(r.reason)).otherwise(reason)
        raw = F.when(r.broken, r.raw.cast("string")).otherwise(raw)
    errors = (
        F.array_compact(F.array(*[
            F.when(r.broken, F.struct(F.lit(r.id).alias("rule"), F.lit(r.field).alias("field"), F.lit(r.reason).alias("reason"), r.raw.cast("string").alias("raw")))
            for r in field_rules
        ]))
        if field_rules
        else F.array().cast(T.ArrayType(FIELD_ERROR))
    )
    fields = list(dict.fromkeys(r.field for r in field_rules))
    broken_field = {f: F.greatest(*[F.coalesce(r.broken, F.lit(False)) for r in field_rules if r.field == f], F.lit(False)) for f in fields}
    invalid = _string_array([F.when(broken_field[f], F.lit(f)) for f in fields])
    out = df.withColumn("_rule", rule).withColumn("_reason", reason).withColumn("_raw", raw)
    out = out.withColumn("_field_errors", errors).withColumn("invalid_fields", invalid)
    # a field the contract has no column for (parties) is reported, not nulled; every other is a column of the frame by
    # then (asking the frame for its columns cost an analysis of the whole plan, 0.1-0.3 s a build at scale 100)
    for f in dict.fromkeys(r.field for r in field_rules if r.column):
        out = out.withColumn(f, F.when(~F.array_contains(F.col("invalid_fields"), F.lit(f)), F.col(f)))
    return out


def rank_versions(df: DataFrame, key: Column) -> DataFrame:
    """``_key`` and ``_version``: 1 for the latest *valid* version of each key (by updated_at, then ingestion).

    Valid and rejected versions are ranked apart: a broken late update is quarantined and
    the last valid version stays current (last known good), rather than the record
    vanishing from silver.
    """
    is_valid = F.col("_rule").isNull()
    w = Window.partitionBy("_key", is_valid).orderBy(
        F.col("updated_at").desc_nulls_last(), F.col("_ingested_at").desc(), F.col("_record_hash").desc()
    )
    return df.withColumn("_key", key).withColumn(
        "_version", F.when(F.col("_key").isNull() | ~is_valid, F.lit(1)).otherwise(F.row_number().over(w))
    )


def raw_fields(bronze: DataFrame, names: dict[str, str]) -> DataFrame:
    """Bronze columns renamed to ``raw_<name>``, lineage kept."""
    cols = [F.col(src).alias(f"raw_{dst}") for src, dst in names.items()]
    return bronze.select(*cols, "_record_hash", "_ingested_at", "_source")


RAW_COLUMNS = "`^raw_.*`"  # every raw_ column, by the engine: naming them from DataFrame.columns is a schema request per use


def record_json(df: DataFrame) -> Column:
    """The raw record as JSON, for its quarantine rows: only on a row that has one (a rejected record, or a nulled field).

    Its fields are the ``raw_`` columns of the frame it is used in (Sail and Spark alike expand a column regex against the
    frame it is selected from); the builders add no ``raw_`` column after they read ``df``.
    """
    quarantined = F.col("_rule").isNotNull() | (F.size(F.col("_field_errors")) > 0)
    return F.when(quarantined, F.to_json(F.struct(df.colRegex(RAW_COLUMNS))))


# -- one build function per silver table ---------------------------------------------


def police_case_rules() -> list[Rule]:
    """The rules of police_cases, their actions as the contract declares them."""
    return declared("silver.police_cases", [
        required("case_id", "police case id"),
        required("filed_on", "filing date"),
        Rule("region_code.unknown", "region code is not a GB/T 2260 code", ~_blank(F.col("raw_region_code")) & F.col("_region_ok").isNull(), F.col("raw_region_code")),
        # an empty region is only missing when the case id does not carry a valid one either
        Rule("region_code.missing", "region code is missing and the police case id carries no valid GB/T 2260 code",
             _blank(F.col("raw_region_code")) & F.col("_case_region").isNull(), F.col("raw_region_code")),
        required("charge", "charge"),
        charge_rule(),
        *[date_rule(n, n.replace("_", " ")) for n in ("occurred_on", "filed_on", "detained_on", "arrested_on", "transferred_on")],
        *time_limit_fact_rules(),
    ])


TIME_LIMIT_DATES = ("detention_extension_on", "custody_extension_156_on", "custody_extension_158_on", "custody_extension_159_on")
MARK_VALUES = {"1": True, "0": False}  # the police system's 1/0 flag


def time_limit_fact_rules() -> list[Rule]:
    """Rules of the police case's time-limit facts (CPL arts. 91, 156, 158, 159): a mark other than 1/0, an approval that is not a date."""
    unknown_mark = ~_blank(F.col("raw_is_roaming_serial_gang")) & ~F.trim(F.col("raw_is_roaming_serial_gang")).isin(*MARK_VALUES)
    return [
        Rule("is_roaming_serial_gang.unknown", "roaming/serial/gang mark is not 1 or 0", unknown_mark, F.col("raw_is_roaming_serial_gang")),
        *[date_rule(n, n.replace("_", " ")) for n in TIME_LIMIT_DATES],
    ]


def with_time_limit_facts(df: DataFrame) -> DataFrame:
    """The facts that lengthen a time limit, parsed. A missing or unreadable mark is false: the longer limit is never assumed."""
    out = df.withColumn("is_roaming_serial_gang", F.coalesce(F.trim(F.col("raw_is_roaming_serial_gang")) == "1", F.lit(False)))
    for name in TIME_LIMIT_DATES:
        out = out.withColumn(name, R.parse_date(F.col(f"raw_{name}")))
    return out


CASE_ID_REGION = r"^A([0-9]{6})[0-9]{4}[0-9]{6}$"  # A{county GB/T 2260 code}{year}{seq:06d}, see lawlake.demo.world


def region_from_case_id(case_id: Column) -> Column:
    """The 6-digit county code a police case id ``A{code}{year}{seq:06d}`` carries; null when it has no such shape."""
    return F.when(case_id.rlike(CASE_ID_REGION), F.regexp_extract(case_id, CASE_ID_REGION, 1))


def with_region(df: DataFrame, refs: Refs) -> DataFrame:
    """``region_code`` as recorded when it is a GB/T 2260 code (``_region_ok``), and ``_case_region``: the valid code in the case id, or null."""
    recorded = refs.regions.select(F.col("code").alias("_region"), F.lit(True).alias("_region_ok"))
    from_id = refs.regions.select(F.col("code").alias("_case_region"))
    return (
        df.withColumn("region_code", F.when(~_blank(F.col("raw_region_code")), F.trim("raw_region_code")))
        .join(F.broadcast(recorded), F.col("region_code") == F.col("_region"), "left")
        .withColumn("_id_region", region_from_case_id(F.col("police_case_id")))
        .join(F.broadcast(from_id), F.col("_id_region") == F.col("_case_region"), "left")
        .drop("_region", "_id_region")
    )


def build_police_cases(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze police case version, parsed and checked.

    The region falls back to the one in the case id when the recorded one is empty or not
    a GB/T 2260 code (``region_source``: ``recorded`` or ``case_id``; null when neither).
    """
    df = raw_fields(bronze, {c: c for c in ("case_id", "region_code", "charge", "occurred_on", "filed_on", "detained_on", "arrested_on", "transferred_on", "status",
                                            "updated_at", "is_roaming_serial_gang", *TIME_LIMIT_DATES)})
    df = (
        df.withColumn("police_case_id", F.trim("raw_case_id"))
        .transform(lambda d: with_region(d, refs))
        .transform(lambda d: with_charge(d, refs))
        .withColumn("occurred_on", R.parse_date(F.col("raw_occurred_on")))
        .withColumn("filed_on", R.parse_date(F.col("raw_filed_on")))
        .withColumn("detained_on", R.parse_date(F.col("raw_detained_on")))
        .withColumn("arrested_on", R.parse_date(F.col("raw_arrested_on")))
        .withColumn("transferred_on", R.parse_date(F.col("raw_transferred_on")))
        .withColumn("status", F.trim("raw_status"))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
        .transform(with_time_limit_facts)
    )
    rules = police_case_rules()
    checked = (
        check(df, rules)  # an unknown recorded region is nulled here, then derived
        .withColumn("region_source", F.when(F.col("region_code").isNotNull(), F.lit("recorded")).when(F.col("_case_region").isNotNull(), F.lit("case_id")))
        .withColumn("region_code", F.coalesce(F.col("region_code"), F.col("_case_region")))
    )
    return rank_versions(checked, F.col("police_case_id")).withColumn("_record", record_json(df))


TRANSFER_CHANNELS = {"online": "online", "网上": "online", "在线": "online", "paper": "paper", "纸质": "paper"}


def with_transfer_channel(df: DataFrame) -> DataFrame:
    """``transfer_channel``: online or paper, from the delivered text (null when not delivered or not known)."""
    return df.withColumn("transfer_channel", _map(F.lower(F.col("raw_transfer_channel")), TRANSFER_CHANNELS))


def transfer_channel_rule() -> Rule:
    return Rule("transfer_channel.unknown", "transfer channel is not online or paper",
                ~_blank(F.col("raw_transfer_channel")) & F.col("transfer_channel").isNull(), F.col("raw_transfer_channel"))


def police_transfer_rules() -> list[Rule]:
    """The rules of police_transfers, their actions as the contract declares them."""
    return declared(
        "silver.police_transfers",
        [required("transfer_id", "transfer id"), required("case_id", "police case id"), required("transferred_on", "transfer date"), date_rule("transferred_on", "transfer date"),
         transfer_channel_rule()],
    )


def build_police_transfers(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze transfer version, parsed and checked."""
    df = raw_fields(bronze, {c: c for c in ("transfer_id", "case_id", "procuratorate", "transferred_on", "updated_at", "transfer_channel")})
    df = (
        df.withColumn("transfer_id", F.trim("raw_transfer_id"))
        .withColumn("police_case_id", F.trim("raw_case_id"))
        .withColumn("procuratorate", F.trim("raw_procuratorate"))
        .withColumn("transferred_on", R.parse_date(F.col("raw_transferred_on")))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
        .transform(with_transfer_channel)
    )
    rules = police_transfer_rules()
    return rank_versions(check(df, rules), F.col("transfer_id")).withColumn("_record", record_json(df))


def suspect_rules() -> list[Rule]:
    """The rules of suspects, their actions as the contract declares them."""
    return declared(
        "silver.suspects",
        [required("suspect_id", "suspect id"), required("case_id", "police case id"), required("name", "name"), id_rule(), date_rule("birth_date", "birth date")],
    )


def build_suspects(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze suspect version, with the person fields parsed and checked."""
    df = raw_fields(bronze, {"suspect_id": "suspect_id", "case_id": "case_id", "name": "name", "id_number": "id_number", "sex": "sex", "birth_date": "birth_date", "updated_at": "updated_at"})
    df = (
        df.withColumn("suspect_id", F.trim("raw_suspect_id"))
        .withColumn("police_case_id", F.trim("raw_case_id"))
        .transform(with_person)
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
    )
    rules = suspect_rules()
    return rank_versions(check(df, rules), F.col("suspect_id")).withColumn("_record", record_json(df))


def prosecution_rules() -> list[Rule]:
    """The rules of prosecutions, their actions as the contract declares them."""
    return declared("silver.prosecutions", [
        required("review_id", "review id (受案号)"),
        # the key is review id + the suspect's identity number or name: without either the row cannot be placed
        Rule("suspect.unidentified", "neither a valid identity number nor a name tells the suspect of the review apart",
             F.col("id_number").isNull() & F.col("name").isNull(), F.coalesce(F.col("raw_id_number"), F.col("raw_name"))),
        required("police_case_id", "police case id"),
        required("name", "suspect name"),
        id_rule(),
        required("received_on", "date received"),
        date_rule("received_on", "date received"),
        required("decision", "decision (审查结论)"),
        Rule("decision.unknown", "decision is not 起诉, 不起诉 or 退回补充侦查", ~_blank(F.col("raw_decision")) & F.col("decision").isNull(), F.col("raw_decision")),
        date_rule("decided_on", "decision date"),
        date_rule("birth_date", "birth date"),
        required("charge", "charge"),
        charge_rule(),
        *review_time_limit_rules(),
    ])


REVIEW_ROUND_DATES = ("returned_on_1", "resubmitted_on_1", "returned_on_2", "resubmitted_on_2")
REVIEW_TIME_LIMIT_DATES = (*REVIEW_ROUND_DATES, "review_extension_on")


def review_time_limit_rules() -> list[Rule]:
    """Rules of a review's time-limit facts (CPL arts. 172, 175): a date that is not one, a resubmission dated before
    its return (nulled: the round counts as still out, the safe reading), a mark other than 1/0."""
    unknown_mark = ~_blank(F.col("raw_is_major_complex")) & ~F.trim(F.col("raw_is_major_complex")).isin(*MARK_VALUES)
    rules = [date_rule(n, n.replace("_", " ")) for n in REVIEW_TIME_LIMIT_DATES]
    for k in (1, 2):
        back, returned = F.col(f"resubmitted_on_{k}"), F.col(f"returned_on_{k}")
        rules.append(Rule(f"resubmitted_on_{k}.before_return", f"resubmission of round {k} is dated before its return for supplementary investigation",
                          back.isNotNull() & returned.isNotNull() & (back < returned), F.col(f"raw_resubmitted_on_{k}")))
    rules.append(Rule("is_major_complex.unknown", "major/complex mark is not 1 or 0", unknown_mark, F.col("raw_is_major_complex")))
    return rules


def with_review_time_limit_facts(df: DataFrame) -> DataFrame:
    """The review's rounds and art. 172 facts, parsed. A missing or unreadable mark is false: the longer limit is never assumed."""
    out = df.withColumn("is_major_complex", F.coalesce(F.trim(F.col("raw_is_major_complex")) == "1", F.lit(False)))
    for name in REVIEW_TIME_LIMIT_DATES:
        out = out.withColumn(name, R.parse_date(F.col(f"raw_{name}")))
    return out


def build_prosecutions(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze review row (review × suspect) version, parsed and checked.

    ``first_received_on`` is the earliest receipt over every kept version of the review ×
    suspect and ``supplementary_rounds`` how many of them returned it for supplementary
    investigation (退回补充侦查), so the latest version keeps the whole history.
    """
    df = raw_fields(
        bronze,
        {"review_id": "review_id", "police_case_id": "police_case_id", "suspect_name": "name", "id_number": "id_number", "sex": "sex", "birth_date": "birth_date",
         "received_on": "received_on", "decision": "decision", "decided_on": "decided_on", "charge": "charge", "procuratorate": "procuratorate", "updated_at": "updated_at",
         **{n: n for n in (*REVIEW_TIME_LIMIT_DATES, "is_major_complex")}},
    )
    df = (
        df.withColumn("review_id", F.trim("raw_review_id"))
        .withColumn("police_case_id", F.trim("raw_police_case_id"))
        .transform(with_person)
        .withColumn("prosecution_id", F.concat_ws(":", F.col("review_id"), F.coalesce(F.col("id_number"), F.col("name"))))
        .withColumn("received_on", R.parse_date(F.col("raw_received_on")))
        .withColumn("decision", _map(F.col("raw_decision"), DECISIONS))
        .withColumn("decided_on", R.parse_date(F.col("raw_decided_on")))
        .transform(lambda d: with_charge(d, refs))
        .withColumn("procuratorate", F.trim("raw_procuratorate"))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
        .transform(with_review_time_limit_facts)
    )
    rules = prosecution_rules()
    ranked = rank_versions(check(df, rules), F.col("prosecution_id"))
    # over every kept version of the review × suspect, not only the latest
    versions = Window.partitionBy("_key", F.col("_rule").isNull())
    return (
        ranked.withColumn("first_received_on", F.min("received_on").over(versions))
        # distinct returns (a record re-exported on the resubmission repeats its return), or the rounds the row records
        .withColumn("supplementary_rounds", F.greatest(
            F.size(F.collect_set(F.when(F.col("decision") == "supplementary_investigation", F.coalesce(F.col("decided_on"), F.col("received_on")))).over(versions)),
            F.col("returned_on_1").isNotNull().cast("int") + F.col("returned_on_2").isNotNull().cast("int"),
        ).cast("int"))
        .withColumn("_record", record_json(df))
    )


def _court_rows(bronze: DataFrame, refs: Refs) -> DataFrame:
    df = raw_fields(bronze, {c: c for c in ("case_number", "court_name", "trial_level", "original_case_number", "review_id", "charge", "filed_on", "judged_on", "parties", "updated_at",
                                            "transfer_channel")})
    return (
        df.withColumn("_cn", R.case_number(F.col("raw_case_number")))
        .withColumn("case_number", F.col("_cn.canonical"))
        .withColumn("_orig", R.case_number(F.col("raw_original_case_number")))
        .withColumn("original_case_number", F.col("_orig.canonical"))
        .withColumn("_parties", F.from_json(F.col("raw_parties"), T.ArrayType(PARTY)))
        .transform(lambda d: with_charge(d, refs))
        .withColumn("filed_on", R.parse_date(F.col("raw_filed_on")))
        .withColumn("judged_on", R.parse_date(F.col("raw_judged_on")))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
        .withColumn("trial_level", F.trim("raw_trial_level"))  # here for court_case_rules, which null it in both tables' builds
        .transform(with_transfer_channel)
    )


def build_court_cases(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze court case version, its case number parsed to the canonical form."""
    df = (
        _court_rows(bronze, refs)
        .withColumn("court_code", F.col("_cn.court_code"))
        .withColumn("court_level", F.when(~F.col("_cn.is_legacy"), R.court_level(F.col("court_code"))))
        .withColumn("court_region_code", F.when(~F.col("_cn.is_legacy"), R.court_region(F.col("court_code"))))
        .withColumn("case_type", F.col("_cn.case_type"))
        .withColumn("case_year", F.col("_cn.year").cast("int"))
        .withColumn("is_legacy_number", F.col("_cn.is_legacy"))
        .withColumn("court_name", F.trim("raw_court_name"))
        .withColumn("review_id", F.when(~_blank(F.col("raw_review_id")), F.trim("raw_review_id")))
    )
    rules = court_case_rules()
    return rank_versions(check(df, rules), F.col("case_number")).withColumn("_record", record_json(df))


def court_case_rules() -> list[Rule]:
    """The rules of court_cases, their actions as the contract declares them."""
    return declared("silver.court_cases", [
        required("case_number", "case number (案号)"),
        Rule("case_number.unparseable", "not a case number under the SPC 2015/2018 rules (nor a legacy one)",
             ~_blank(F.col("raw_case_number")) & F.col("case_number").isNull(), F.col("raw_case_number")),
        Rule("trial_level.unknown", "trial level is not first_instance or appeal", ~F.trim(F.col("raw_trial_level")).isin("first_instance", "appeal") | F.col("raw_trial_level").isNull(), F.col("raw_trial_level")),
        Rule("original_case_number.unparseable", "the appealed case number is not a case number",
             ~_blank(F.col("raw_original_case_number")) & F.col("original_case_number").isNull(), F.col("raw_original_case_number")),
        required("charge", "charge"),
        charge_rule(),
        date_rule("filed_on", "filing date"),
        date_rule("judged_on", "judgment date"),
        Rule("parties.unparseable", "parties is not an array of party objects", ~_blank(F.col("raw_parties")) & F.col("_parties").isNull(), F.col("raw_parties")),
        transfer_channel_rule(),
    ])


def court_defendant_rules() -> list[Rule]:
    """The rules of court_defendants, their actions as the contract declares them."""
    return declared("silver.court_defendants", [
        Rule("court_case.rejected", "its court case was rejected", F.col("_case_rule").isNotNull(), F.col("raw_case_number")),
        required("name", "defendant name"),
        id_rule(),
        date_rule("birth_date", "birth date"),
        Rule("verdict.unknown", "verdict is not guilty, exempt or acquitted", ~_blank(F.col("raw_verdict")) & F.col("verdict").isNull(), F.col("raw_verdict")),
        Rule("sentence_type.unknown", "sentence type is not in the code list", ~_blank(F.col("raw_sentence_type")) & F.col("sentence_type").isNull(), F.col("raw_sentence_type")),
        Rule("sentence_months.invalid", "sentence months is not a whole number between 0 and 600",
             ~_blank(F.col("raw_sentence_months")) & (F.col("sentence_months").isNull() | (F.col("sentence_months") < 0) | (F.col("sentence_months") > 600)), F.col("raw_sentence_months")),
    ])


def build_court_defendants(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per party of every bronze court case version; a party of a broken case breaks with it."""
    cases = rank_versions(check(_court_rows(bronze, refs), court_case_rules()), F.col("case_number"))
    parties = cases.select(
        "case_number", "_version", "updated_at", "_record_hash", "_ingested_at",
        F.col("_rule").alias("_case_rule"), F.col("_reason").alias("_case_reason"), F.col("raw_case_number"),
        F.posexplode(F.coalesce(F.col("_parties"), F.array().cast(T.ArrayType(PARTY)))).alias("_pos", "p"),
    )
    df = parties.select(
        "*",
        F.col("p.name").alias("raw_name"),
        F.col("p.id_number").alias("raw_id_number"),
        F.col("p.sex").alias("raw_sex"),
        F.col("p.birth_date").alias("raw_birth_date"),
        F.col("p.verdict").alias("raw_verdict"),
        F.col("p.sentence_type").alias("raw_sentence_type"),
        F.col("p.sentence_months").alias("raw_sentence_months"),
    ).drop("p")
    df = (
        df.withColumn("party_index", (F.col("_pos") + 1).cast("int"))
        # A party of a case whose number did not parse keeps the number as delivered in its key.
        .withColumn("defendant_id", F.concat_ws("#", F.coalesce(F.col("case_number"), F.col("raw_case_number")), F.col("party_index").cast("string")))
        .transform(with_person)
        .withColumn("verdict", F.when(F.trim("raw_verdict").isin(*VERDICTS), F.trim("raw_verdict")))
        .withColumn("sentence_type", F.when(F.trim("raw_sentence_type").isin(*SENTENCE_TYPES), F.trim("raw_sentence_type")))
        .withColumn("sentence_months", F.expr("try_cast(raw_sentence_months AS INT)"))
    )
    rules = court_defendant_rules()
    checked = check(df, rules)
    # The case's version rank decides which parties are current; a party is its case's key plus position.
    return checked.withColumn("_key", F.col("defendant_id")).withColumn("_record", record_json(df))


def custody_rules() -> list[Rule]:
    """The rules of custody, their actions as the contract declares them."""
    return declared("silver.custody", [
        required("record_id", "record id (记录编号)"),
        required("case_number", "court case number"),
        Rule("case_number.unparseable", "not a case number under the SPC 2015/2018 rules (nor a legacy one)",
             ~_blank(F.col("raw_case_number")) & F.col("case_number").isNull(), F.col("raw_case_number")),
        required("name", "name"),
        id_rule(),
        Rule("custody_type.unknown", "custody type is not 监狱, 社区矫正 or 看守所", F.col("custody_type").isNull(), F.col("raw_custody_type")),
        required("admitted_on", "admission date"),
        date_rule("admitted_on", "admission date"),
        date_rule("released_on", "release date"),
        Rule("released_on.before_admission", "released before admitted", F.col("released_on") < F.col("admitted_on"), F.col("raw_released_on")),
    ])


def build_custody(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze custody record version, parsed and checked."""
    df = raw_fields(bronze, {c: c for c in ("record_id", "case_number", "name", "id_number", "institution", "custody_type", "admitted_on", "released_on", "updated_at")})
    df = (
        df.withColumn("record_id", F.trim("raw_record_id"))
        .withColumn("case_number", R.case_number(F.col("raw_case_number")).getField("canonical"))
        .withColumn("raw_sex", F.lit(None).cast("string"))
        .withColumn("raw_birth_date", F.lit(None).cast("string"))
        .transform(with_person)
        .withColumn("institution", F.trim("raw_institution"))
        .withColumn("custody_type", _map(F.col("raw_custody_type"), CUSTODY_TYPES))
        .withColumn("admitted_on", R.parse_date(F.col("raw_admitted_on")))
        .withColumn("released_on", R.parse_date(F.col("raw_released_on")))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
    )
    rules = custody_rules()
    return rank_versions(check(df, rules), F.col("record_id")).withColumn("_record", record_json(df))


def legal_aid_rules() -> list[Rule]:
    """The rules of legal_aid_appointments, their actions as the contract declares them."""
    return declared("silver.legal_aid_appointments", [
        required("appointment_id", "appointment id"),
        required("case_number", "court case number"),
        Rule("case_number.unparseable", "not a case number under the SPC 2015/2018 rules (nor a legacy one)",
             ~_blank(F.col("raw_case_number")) & F.col("case_number").isNull(), F.col("raw_case_number")),
        id_rule(),
        required("appointed_on", "appointment date"),
        date_rule("appointed_on", "appointment date"),
    ])


def build_legal_aid_appointments(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze legal-aid appointment version, parsed and checked."""
    names = {c: c for c in ("appointment_id", "case_number", "id_number", "birth_date", "appointed_on", "appointed_by", "lawyer", "updated_at")}
    df = raw_fields(bronze, {**names, "defendant_name": "name"})
    df = (
        df.withColumn("appointment_id", F.trim("raw_appointment_id"))
        .withColumn("case_number", R.case_number(F.col("raw_case_number")).getField("canonical"))
        .withColumn("raw_sex", F.lit(None).cast("string"))
        .transform(with_person)
        .withColumn("appointed_on", R.parse_date(F.col("raw_appointed_on")))
        .withColumn("appointed_by", F.trim("raw_appointed_by"))
        .withColumn("lawyer", R.person_name(F.col("raw_lawyer")))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
    )
    return rank_versions(check(df, legal_aid_rules()), F.col("appointment_id")).withColumn("_record", record_json(df))


def mediation_rules() -> list[Rule]:
    """The rules of mediations, their actions as the contract declares them."""
    return declared("silver.mediations", [
        required("mediation_id", "mediation id"), date_rule("applied_on", "application date"), date_rule("concluded_on", "conclusion date"),
    ])


def build_mediations(bronze: DataFrame, refs: Refs) -> DataFrame:
    """One row per bronze mediation record version, parsed and checked."""
    df = raw_fields(bronze, {c: c for c in ("mediation_id", "region_code", "committee", "dispute_type", "applied_on", "concluded_on", "outcome", "updated_at")})
    df = (
        df.withColumn("mediation_id", F.trim("raw_mediation_id"))
        .withColumn("region_code", F.trim("raw_region_code"))
        .withColumn("committee", F.trim("raw_committee"))
        .withColumn("dispute_type", F.trim("raw_dispute_type"))
        .withColumn("applied_on", R.parse_date(F.col("raw_applied_on")))
        .withColumn("concluded_on", R.parse_date(F.col("raw_concluded_on")))
        .withColumn("outcome", F.trim("raw_outcome"))
        .withColumn("updated_at", parse_timestamp(F.col("raw_updated_at")))
    )
    return rank_versions(check(df, mediation_rules()), F.col("mediation_id")).withColumn("_record", record_json(df))


# -- stage ----------------------------------------------------------------------------


def split(checked: DataFrame, *, source_table: str, target_table: str) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(current kept rows, quarantine rows, superseded kept rows) of a builder's output.

    The quarantine rows are one per rejected record (``scope='record'``) and one per
    nulled value of every kept version, current or superseded (``scope='field'``): every
    rejected value is accounted for. Kept rows carry ``invalid_fields``.
    """
    kept = checked.where(F.col("_rule").isNull())
    where = [F.lit(source_table).alias("source_table"), F.lit(target_table).alias("target_table"), F.col("_key").cast("string").alias("record_key")]
    records = checked.where(F.col("_rule").isNotNull()).select(
        *where,
        F.lit("record").alias("scope"),
        F.col("_rule").alias("rule"),
        F.col("_reason").alias("reason"),
        F.col("_raw").alias("raw_value"),
        F.col("_record").alias("record"),
    )
    fields = kept.select(*where, F.explode(F.col("_field_errors")).alias("_e"), F.col("_record")).select(
        "source_table", "target_table", "record_key",
        F.lit("field").alias("scope"),
        F.col("_e.rule").alias("rule"),
        F.col("_e.reason").alias("reason"),
        F.col("_e.raw").alias("raw_value"),
        F.col("_record").alias("record"),
    )
    return kept.where(F.col("_version") == 1), records.unionByName(fields), kept.where(F.col("_version") > 1)


class Outcome(NamedTuple):
    """Where a builder's input rows went: the balance, plus the values nulled by field rules."""

    rows_in: int
    rows_quarantined: int  # records rejected
    rows_merged: int  # kept versions superseded by a later one
    fields_quarantined: int  # values nulled (their records are in rows_out or rows_merged)


def outcome_counts(checked: DataFrame) -> Outcome:
    """The :class:`Outcome` of a builder's output, in one pass."""
    kept = F.col("_rule").isNull()
    row = checked.agg(
        F.count(F.lit(1)),
        F.sum(F.when(~kept, 1).otherwise(0)),
        F.sum(F.when(kept & (F.col("_version") > 1), 1).otherwise(0)),
        F.sum(F.when(kept, F.size(F.col("_field_errors"))).otherwise(0)),
    ).first()
    assert row is not None  # a global aggregate has one row
    return Outcome(*(int(v or 0) for v in row))


def tally(checked: DataFrame) -> dict[str, int]:
    """:func:`outcome_counts` as the stage runner's tally (``rows_in``, ``rows_quarantined``, ``rows_merged``, ``fields_quarantined``)."""
    return outcome_counts(checked)._asdict()


TABLES: dict[str, tuple[str, Callable[[DataFrame, Refs], DataFrame]]] = {
    "silver.police_cases": ("bronze.police_cases", build_police_cases),
    "silver.police_transfers": ("bronze.police_transfers", build_police_transfers),
    "silver.suspects": ("bronze.police_suspects", build_suspects),
    "silver.prosecutions": ("bronze.procuratorate_reviews", build_prosecutions),
    "silver.court_cases": ("bronze.court_cases", build_court_cases),
    "silver.court_defendants": ("bronze.court_cases", build_court_defendants),
    "silver.custody": ("bronze.custody_records", build_custody),
    "silver.legal_aid_appointments": ("bronze.legal_aid_appointments", build_legal_aid_appointments),
    "silver.mediations": ("bronze.mediation_records", build_mediations),
}
RULES: dict[str, Callable[[], list[Rule]]] = {
    "silver.police_cases": police_case_rules,
    "silver.police_transfers": police_transfer_rules,
    "silver.suspects": suspect_rules,
    "silver.prosecutions": prosecution_rules,
    "silver.court_cases": court_case_rules,
    "silver.court_defendants": court_defendant_rules,
    "silver.custody": custody_rules,
    "silver.legal_aid_appointments": legal_aid_rules,
    "silver.mediations": mediation_rules,
}


def rule_metrics(checked: DataFrame, rules: list[Rule]) -> list[dict]:
    """Per rule: how many rows had a value for it to check (``applicable``) and how many it rejected.

    A rule's pass rate is ``1 - rejected / applicable``: e.g. the share of non-empty case
    numbers that parse. A ``*.missing`` rule checks every row. ``rejected`` counts a
    record rule's rejected records and a field rule's nulled values (in kept records: a
    rejected record's fields are in its record quarantine row), so it equals the
    quarantine rows of the rule.
    """
    aggs = []
    for i, r in enumerate(rules):
        applicable = F.lit(True) if r.id.endswith(".missing") or r.id == "suspect.unidentified" else ~_blank(r.raw.cast("string"))
        if r.on_failure == "null_field":
            hit = F.col("_rule").isNull() & F.array_contains(F.col("_field_errors.rule"), F.lit(r.id))
        else:
            hit = F.col("_rule") == r.id
        aggs.append(F.sum(F.when(applicable, 1).otherwise(0)).alias(f"a{i}"))
        aggs.append(F.sum(F.when(hit, 1).otherwise(0)).alias(f"r{i}"))
    row = first_row(checked.agg(*aggs))
    return [{"rule": r.id, "applicable": int(row[f"a{i}"] or 0), "rejected": int(row[f"r{i}"] or 0)} for i, r in enumerate(rules)]


def reference_tables(spark) -> Refs:
    """The reference lists as the builders take them (for tests and benchmarks; the runner passes them as inputs)."""
    from lawlake.rules import reference

    return Refs(regions=reference.reference_dataframe(spark, "regions"), charge_variants=reference.reference_dataframe(spark, "charge_variants"))


# Each table's key column: a builder ranks the versions of each key apart from every other key's (rank_versions), so a
# new day's bronze rows rebuild only the keys they carry (Incremental). Court defendants rank by their case, not by
# their own key (a new version of a case can drop a party), so they are rebuilt by case: every party of a case a new
# row carries, from every version of the case; their quarantine rows are keyed "<case number>#<party>".
KEYS = {
    "silver.police_cases": "police_case_id", "silver.police_transfers": "transfer_id", "silver.suspects": "suspect_id",
    "silver.prosecutions": "prosecution_id", "silver.court_cases": "case_number", "silver.custody": "record_id",
    "silver.legal_aid_appointments": "appointment_id", "silver.mediations": "mediation_id", "silver.court_defendants": "case_number",
}
SCOPES = {"silver.court_defendants": "case_number"}  # the built frame's scope column, where it is not _key
QUARANTINE_SCOPES = {"silver.court_defendants": lambda record_key: F.regexp_extract(record_key, r"^(.*)#[0-9]+$", 1)}


def _declare(target: str, source: str, build: Callable[[DataFrame, Refs], DataFrame], rules: Callable[[], list[Rule]]) -> Table:
    def checked(bronze: DataFrame, regions: DataFrame, charge_variants: DataFrame) -> DataFrame:
        df = build(bronze, Refs(regions=regions, charge_variants=charge_variants))
        names = contracts.load(target).names
        # the raw_ columns kept for the per-rule metrics, by a column regex: listing them from df.columns asked the engine
        # to analyse the whole plan (0.1-0.5 s per build at scale 100; a new day builds each table twice)
        return df.select(*names, df.colRegex(RAW_COLUMNS), "_rule", "_reason", "_raw", "_field_errors", "_key", "_version", "_record")

    checked.__wrapped__ = build  # type: ignore[attr-defined]  # `lawlake tables --explain` names the real builder
    return Table(
        name=target,
        build=checked,
        inputs=(source, "reference.regions", "reference.charge_variants"),
        rows=lambda df: split(df, source_table=source, target_table=target)[0].select(*contracts.load(target).names),
        quarantine=lambda df, *_: split(df, source_table=source, target_table=target)[1],
        tally=lambda df, *_: tally(df),
        metrics=lambda df: rule_metrics(df, rules()),
        incremental=Incremental(source=source, scope=SCOPES.get(target, "_key"), key=KEYS[target], quarantine_scope=QUARANTINE_SCOPES.get(target))
        if target in KEYS else None,
    )


STAGE = Stage("normalize", tuple(_declare(target, source, build, RULES[target]) for target, (source, build) in TABLES.items()), doc=__doc__ or "")
