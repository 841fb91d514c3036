"""integrate: silver to gold — one person index across agencies, the case chain, time-limit warnings.

Entity resolution (deterministic, explainable, in order):
1. ``id_number`` — mentions with a valid identity number are that number's person;
2. ``name_birth_date`` — a mention without one joins the single person with the same
   normalized name and birth date;
3. ``case_name`` — else the single person with the same name in the same police case;
4. ``unmatched`` — else mentions of the same name in the same police case form a
   person of their own (a record with no case context stands alone).

The case chain follows each suspect person of a police case through review for
prosecution, first instance, appeal and custody, and carries the seal flag (Criminal
Procedure Law art. 286): under 18 at the offense and not prosecuted, exempted, or
sentenced to at most five years' fixed-term imprisonment (or a lighter penalty).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lawlake.declarations import Stage, Table

__all__ = ["build_mentions", "build_person_records", "build_person_index", "build_case_chain", "build_time_limit_warnings", "is_sealed", "chain_orphans", "chain_tally", "STAGE"]

LIGHT_SENTENCES = ("detention", "control", "probation", "fine_only", "exempt")
AGENCY = {"silver.suspects": "police", "silver.prosecutions": "procuratorate", "silver.court_defendants": "courts", "silver.custody": "corrections"}


def _key(prefix: str, *cols: Column) -> Column:
    return F.concat(F.lit(prefix), F.substring(F.sha2(F.concat_ws("\u0001", *cols), 256), 1, 16))


def court_case_police_ids(court_cases: DataFrame, prosecutions: DataFrame) -> DataFrame:
    """``(case_number, police_case_id)``: the police case behind each court case (appeals through their first instance)."""
    reviews = prosecutions.select("review_id", "police_case_id").distinct()
    first = court_cases.join(reviews, "review_id").select("case_number", "police_case_id")
    appeals = (
        court_cases.where(F.col("trial_level") == "appeal")
        .select("case_number", F.col("original_case_number").alias("_orig"))
        .join(first.withColumnRenamed("case_number", "_orig"), "_orig")
        .select("case_number", "police_case_id")
    )
    return first.unionByName(appeals).distinct()


def build_mentions(suspects: DataFrame, prosecutions: DataFrame, defendants: DataFrame, custody: DataFrame, court_cases: DataFrame) -> DataFrame:
    """One row per person mention in silver: where it is, who it names, and its police case when known."""
    by_case = court_case_police_ids(court_cases, prosecutions)
    cols = ["source_table", "record_key", "name", "id_number", "sex", "birth_date", "police_case_id"]
    return (
        suspects.select(F.lit("silver.suspects").alias("source_table"), F.col("suspect_id").alias("record_key"), "name", "id_number", "sex", "birth_date", "police_case_id")
        .unionByName(
            prosecutions.select(F.lit("silver.prosecutions").alias("source_table"), F.col("prosecution_id").alias("record_key"), "name", "id_number", "sex", "birth_date", "police_case_id")
        )
        .unionByName(
            defendants.join(by_case, "case_number", "left").select(
                F.lit("silver.court_defendants").alias("source_table"), F.col("defendant_id").alias("record_key"), "name", "id_number", "sex", "birth_date", "police_case_id"
            )
        )
        .unionByName(
            custody.join(by_case, "case_number", "left").select(
                F.lit("silver.custody").alias("source_table"), F.col("record_id").alias("record_key"), "name", "id_number",
                F.lit(None).cast("string").alias("sex"), F.lit(None).cast("date").alias("birth_date"), "police_case_id"
            )
        )
        .select(*cols)
    )


def _unique_person(resolved: DataFrame, keys: list[str]) -> DataFrame:
    """``keys`` → the person key, only where exactly one person has those values."""
    return (
        resolved.where(F.col("person_key").isNotNull())
        .groupBy(*keys)
        .agg(F.countDistinct("person_key").alias("_n"), F.max("person_key").alias("_pk"))
        .where(F.col("_n") == 1)
        .drop("_n")
    )


def build_person_records(mentions: DataFrame) -> DataFrame:
    """One row per mention with its person key and the rule that resolved it."""
    m = mentions.withColumn("person_key", F.when(F.col("id_number").isNotNull(), _key("P", F.col("id_number"))))
    by_birth = _unique_person(m.where(F.col("birth_date").isNotNull()), ["name", "birth_date"])
    by_case = _unique_person(m.where(F.col("police_case_id").isNotNull()), ["police_case_id", "name"])
    m = (
        m.join(by_birth.withColumnRenamed("_pk", "_pk_birth"), ["name", "birth_date"], "left")
        .join(by_case.withColumnRenamed("_pk", "_pk_case"), ["police_case_id", "name"], "left")
    )
    fallback = F.when(F.col("police_case_id").isNotNull(), _key("P", F.lit("case"), F.col("police_case_id"), F.col("name"))).otherwise(
        _key("P", F.col("source_table"), F.col("record_key"))
    )
    return m.select(
        F.concat_ws(":", "source_table", "record_key").alias("record_ref"),
        "source_table",
        "record_key",
        F.coalesce("person_key", "_pk_birth", "_pk_case", fallback).alias("person_key"),
        F.when(F.col("person_key").isNotNull(), "id_number")
        .when(F.col("_pk_birth").isNotNull(), "name_birth_date")
        .when(F.col("_pk_case").isNotNull(), "case_name")
        .otherwise("unmatched")
        .alias("match_rule"),
    )


def _most_frequent(df: DataFrame, col: str) -> DataFrame:
    """``(person_key, col)``: the most frequent non-null value per person (ties: the smallest)."""
    counts = df.where(F.col(col).isNotNull()).groupBy("person_key", col).count()
    w = Window.partitionBy("person_key").orderBy(F.col("count").desc(), F.col(col))
    return counts.withColumn("_r", F.row_number().over(w)).where(F.col("_r") == 1).select("person_key", col)


def build_person_index(mentions: DataFrame, person_records: DataFrame) -> DataFrame:
    """One row per person: identity, most frequent attributes, how many mentions and agencies."""
    m = mentions.join(person_records.select("source_table", "record_key", "person_key"), ["source_table", "record_key"])
    agency = F.create_map(*[x for k, v in AGENCY.items() for x in (F.lit(k), F.lit(v))])
    stats = m.groupBy("person_key").agg(
        F.max("id_number").alias("id_number"),
        F.count(F.lit(1)).cast("int").alias("n_records"),
        F.concat_ws(",", F.array_sort(F.collect_set(agency[F.col("source_table")]))).alias("agencies"),
        ((F.countDistinct("name") > 1) | (F.countDistinct("sex") > 1) | (F.countDistinct("birth_date") > 1)).alias("has_conflicts"),
    )
    # A valid identity number fixes sex and birth date (GB 11643-1999); otherwise the majority of mentions does.
    # Silver holds only valid 18-character numbers: birth date in characters 7-14, an odd 17th digit for male.
    id_birth_date = F.try_to_timestamp(F.substring("id_number", 7, 8), F.lit("yyyyMMdd")).cast("date")
    id_sex = F.when(F.col("id_number").isNotNull(), F.when((F.ascii(F.substring("id_number", 17, 1)) - 48) % 2 == 1, F.lit("M")).otherwise(F.lit("F")))
    return (
        stats.join(_most_frequent(m, "name"), "person_key")
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


def is_sealed(is_minor: Column, decision: Column, verdict: Column, sentence_type: Column, months: Column) -> Column:
    """CPL art. 286: a minor at the offense, not prosecuted, exempted or sentenced to ≤ 5 years (or lighter)."""
    light = (
        (decision == "non_prosecution")
        | (verdict == "exempt")
        | sentence_type.isin(*LIGHT_SENTENCES)
        | ((sentence_type == "fixed_term") & (months <= 60))
    )
    return is_minor & F.coalesce(light, F.lit(False))


def build_case_chain(
    police_cases: DataFrame,
    suspects: DataFrame,
    prosecutions: DataFrame,
    court_cases: DataFrame,
    defendants: DataFrame,
    custody: DataFrame,
    person_records: DataFrame,
    person_index: DataFrame,
) -> DataFrame:
    """One row per (police case, suspect person) with every later stage of the case joined on."""
    pk = person_records.select("source_table", "record_key", "person_key")

    def persons(df: DataFrame, table: str, key: str) -> DataFrame:
        return df.join(pk.where(F.col("source_table") == table).select(F.col("record_key").alias(key), "person_key"), key)

    base = _latest(
        persons(suspects, "silver.suspects", "suspect_id").select("police_case_id", "person_key", "updated_at"),
        ["police_case_id", "person_key"],
        [F.col("updated_at").desc_nulls_last()],
    ).drop("updated_at")
    chain = base.join(police_cases.drop("updated_at", "_record_hash", "status"), "police_case_id")

    pros = _latest(
        persons(prosecutions, "silver.prosecutions", "prosecution_id"),
        ["police_case_id", "person_key"],
        [F.col("decided_on").desc_nulls_last(), F.col("updated_at").desc_nulls_last()],
    ).select(
        "police_case_id", "person_key", "review_id",
        F.col("received_on").alias("prosecution_received_on"),
        F.col("decision").alias("prosecution_decision"),
        F.col("decided_on").alias("prosecution_decided_on"),
    )
    judged = persons(defendants, "silver.court_defendants", "defendant_id").join(
        court_cases.select("case_number", "trial_level", "review_id", "original_case_number", F.col("filed_on").alias("c_filed_on"), F.col("judged_on").alias("c_judged_on")),
        "case_number",
    )
    first = _latest(
        judged.where(F.col("trial_level") == "first_instance"), ["review_id", "person_key"], [F.col("c_judged_on").desc_nulls_last()]
    ).select(
        "review_id", "person_key",
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
    held = persons(custody, "silver.custody", "record_id").select(
        F.col("case_number").alias("_custody_case"), "person_key", "custody_type",
        F.col("admitted_on").alias("custody_admitted_on"), F.col("released_on").alias("custody_released_on"),
    )
    chain = chain.join(pros, ["police_case_id", "person_key"], "left").join(first, ["review_id", "person_key"], "left").join(
        appeal, ["first_instance_case_number", "person_key"], "left"
    )
    custody_match = held.join(
        chain.select("police_case_id", "person_key", "first_instance_case_number", "appeal_case_number"), "person_key"
    ).where((F.col("_custody_case") == F.col("first_instance_case_number")) | (F.col("_custody_case") == F.col("appeal_case_number")))
    custody_first = _latest(custody_match, ["police_case_id", "person_key"], [F.col("custody_admitted_on").asc()]).select(
        "police_case_id", "person_key", "custody_type", "custody_admitted_on", "custody_released_on"
    )
    chain = chain.join(custody_first, ["police_case_id", "person_key"], "left").join(
        person_index.select("person_key", F.col("birth_date").alias("_birth")), "person_key", "left"
    )
    has_appeal = F.col("appeal_case_number").isNotNull()
    offense_on = F.coalesce("occurred_on", "filed_on")
    age = F.floor(F.months_between(offense_on, F.col("_birth")) / 12).cast("int")
    final_judged = F.coalesce("appeal_judged_on", "first_instance_judged_on")
    chain = (
        chain.withColumn("verdict", F.when(has_appeal, F.col("ap_verdict")).otherwise(F.col("fi_verdict")))
        .withColumn("sentence_type", F.when(has_appeal, F.col("ap_sentence_type")).otherwise(F.col("fi_sentence_type")))
        .withColumn("sentence_months", F.when(has_appeal, F.col("ap_sentence_months")).otherwise(F.col("fi_sentence_months")))
        .withColumn("age_at_offense", age)
        .withColumn("is_minor_at_offense", F.coalesce(age < 18, F.lit(False)))
        .withColumn("is_sealed", is_sealed(F.col("is_minor_at_offense"), F.col("prosecution_decision"), F.col("verdict"), F.col("sentence_type"), F.col("sentence_months")))
        .withColumn("chain_id", _key("C", F.col("police_case_id"), F.col("person_key")))
        .withColumn("days_detention_to_arrest", F.datediff("arrested_on", "detained_on").cast("int"))
        .withColumn("days_in_review", F.datediff("prosecution_decided_on", "prosecution_received_on").cast("int"))
        .withColumn("days_first_instance", F.datediff("first_instance_judged_on", "first_instance_filed_on").cast("int"))
        .withColumn("days_filed_to_judgment", F.datediff(final_judged, "filed_on").cast("int"))
    )
    return chain.drop("fi_verdict", "fi_sentence_type", "fi_sentence_months", "ap_verdict", "ap_sentence_type", "ap_sentence_months", "_birth")


def build_time_limit_warnings(chain: DataFrame) -> DataFrame:
    """One row per chain stage over its statutory limit (CPL 2018; the longest term without special approval)."""
    checks = [
        # detention → arrest request 3 days, up to 30 in listed cases, plus 7 for the decision
        ("detention_to_arrest_over_37_days", "detained_on", F.col("arrested_on"), F.lit(37)),
        # review for prosecution: one month, plus 15 days for major cases
        ("review_over_45_days", "prosecution_received_on", F.col("prosecution_decided_on"), F.lit(45)),
        # first instance: three months at most without the higher court's approval
        ("first_instance_over_3_months", "first_instance_filed_on", F.col("first_instance_judged_on"),
         F.datediff(F.add_months(F.col("first_instance_filed_on"), 3), F.col("first_instance_filed_on"))),
    ]
    parts = []
    for rule, start, end, limit in checks:
        actual = F.datediff(end, F.col(start))
        parts.append(
            chain.where(actual > limit).select(
                "chain_id", "police_case_id", F.lit(rule).alias("rule"), limit.cast("int").alias("limit_days"),
                actual.cast("int").alias("actual_days"), F.col(start).alias("started_on"),
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


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


def index_tally(person_index: DataFrame, person_records: DataFrame) -> dict[str, int]:
    """Person records in; one row per person; the other mentions of each person merged into it."""
    n_persons, n_folded = person_index.select(F.count(F.lit(1)), F.sum("n_records")).first()
    return {"rows_in": person_records.count(), "rows_merged": (n_folded or 0) - n_persons}


SILVER = ("silver.police_cases", "silver.suspects", "silver.prosecutions", "silver.court_cases", "silver.court_defendants", "silver.custody")

STAGE = Stage(
    "integrate",
    (
        Table("work.mentions", build_mentions,
              inputs=("silver.suspects", "silver.prosecutions", "silver.court_defendants", "silver.custody", "silver.court_cases")),
        Table("gold.person_records", build_person_records, inputs=("work.mentions",), tally=lambda records, mentions: {"rows_in": mentions.count()}),
        Table("gold.person_index", build_person_index, inputs=("work.mentions", "gold.person_records"),
              tally=lambda index, mentions, records: index_tally(index, records)),
        Table(
            "gold.case_chain", build_case_chain, inputs=(*SILVER, "gold.person_records", "gold.person_index"),
            quarantine=lambda chain, police_cases, suspects, *rest: chain_orphans(police_cases, suspects, rest[-2]),
            tally=lambda chain, police_cases, suspects, *rest: chain_tally(police_cases, suspects, rest[-2]),
        ),
        Table("gold.time_limit_warnings", build_time_limit_warnings, inputs=("gold.case_chain",), materialize=False),
    ),
    doc=__doc__ or "",
)
