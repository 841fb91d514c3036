"""Juvenile record sealing (CPL art. 286), failing closed: the age rule, the seal status, the gate checks.

Each rule comes three ways that must agree: a Python reference (tests, benchmarks), a
Spark column function (``jobs/integrate.py``) and SQL text (gate checks, which run as SQL
over Delta tables).

**Age** (SPC 法释〔2006〕1号 art. 2): 周岁 count by the calendar from the day *after* the
birthday, so a person is still 17 on the 18th birthday. The age on ``day`` is therefore
the ordinary completed-years age on the day before. A 29 February birthday falls, in a
common year, on the day after 28 February (1 March), so that age is reached on 2 March —
the later of the readings, which withholds rather than shares.

**Offense date**: the police's ``occurred_on``; when it is unknown, the filing date minus
one year (an offense is taken to be filed within a year; the earlier date makes the
person younger, so the doubt withholds).

**Seal status** of one (police case, person) chain:

- ``sealed`` — under 18 at the offense and a known sealable outcome: not prosecuted
  (``non_prosecution``), exempted, acquitted, or guilty with at most five years'
  fixed-term imprisonment or a lighter penalty (detention, control, probation, fine only).
  Acquittal is withheld too: a minor's acquittal is no record to share (2022
  implementing measures, art. 3, protect records of minors not held criminally liable).
- ``not_sealed`` — 18 or over at the offense; or a known heavy outcome (guilty with more
  than five years' fixed term, life or death), which no age makes sealable.
- ``pending`` — everything else that may be a minor's: under 18 with an unknown or
  incomplete outcome (not yet decided, sent back for supplementary investigation,
  prosecuted but not yet judged, a judgment whose verdict or sentence was lost upstream,
  a fixed term without its length), and **any person whose age is unknown** (no birth
  date from any agency) unless the outcome is heavy. Pending chains are withheld from
  every share and open output until the outcome (or the age) is known.

A person is a minor at the offense when *any* birth date of theirs — recorded by any
agency or carried by any identity number — makes them under 18 then (conflicting records
withhold rather than share).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "ADULT_AGE",
    "SEALABLE_FIXED_TERM_MONTHS",
    "LIGHT_SENTENCES",
    "HEAVY_SENTENCES",
    "SEAL_STATUSES",
    "OFFENSE_LOOKBACK_DAYS",
    "age_on",
    "offense_date",
    "outcome_of",
    "seal_status_of",
    "age_at",
    "offense_on",
    "outcome",
    "seal_status",
    "is_withheld",
    "withheld_chain_ids",
    "age_sql",
    "offense_sql",
    "heavy_sql",
    "minor_evidence_sql",
    "share_check",
    "MINOR_CHAINS",
    "GATE_VIEWS",
]

ADULT_AGE = 18
SEALABLE_FIXED_TERM_MONTHS = 60  # five years (CPL art. 286)
LIGHT_SENTENCES = ("detention", "control", "probation", "fine_only", "exempt")
HEAVY_SENTENCES = ("life", "death")
SEAL_STATUSES = ("sealed", "not_sealed", "pending")
OFFENSE_LOOKBACK_DAYS = 365


# -- Python reference --------------------------------------------------------------------


def age_on(birth: date, day: date) -> int:
    """Age in 周岁 on ``day``: completed years, each reached on the day after the birthday."""
    d = day - timedelta(days=1)
    return d.year - birth.year - ((d.month, d.day) < (birth.month, birth.day))


def offense_date(occurred_on: date | None, filed_on: date | None) -> date | None:
    """The date the age is taken on: the offense, else a year before the filing."""
    if occurred_on is not None:
        return occurred_on
    return filed_on - timedelta(days=OFFENSE_LOOKBACK_DAYS) if filed_on is not None else None


def outcome_of(decision: str | None, judged: bool, verdict: str | None, sentence_type: str | None, months: int | None) -> str:
    """``light``, ``heavy`` or ``unknown``: the final outcome of one chain as far as sealing goes.

    ``judged``: the chain has a court record (its verdict decides, even when lost);
    otherwise the prosecution decision does.
    """
    if judged:
        if verdict in ("exempt", "acquitted"):
            return "light"
        if verdict != "guilty":
            return "unknown"  # verdict lost upstream
        if sentence_type in HEAVY_SENTENCES:
            return "heavy"
        if sentence_type == "fixed_term":
            if months is None:
                return "unknown"
            return "light" if months <= SEALABLE_FIXED_TERM_MONTHS else "heavy"
        return "light" if sentence_type in LIGHT_SENTENCES else "unknown"
    return "light" if decision == "non_prosecution" else "unknown"


def seal_status_of(is_minor: bool | None, outcome: str) -> str:
    """The chain's status: ``is_minor`` None means no birth date is known."""
    if outcome == "heavy" or is_minor is False:
        return "not_sealed"
    if is_minor and outcome == "light":
        return "sealed"
    return "pending"


# -- Spark columns -----------------------------------------------------------------------


def age_at(birth: Column, day: Column) -> Column:
    """:func:`age_on` as a column (null when either date is)."""
    from pyspark.sql import functions as F

    d = F.date_sub(day, 1)
    before = (F.month(d) < F.month(birth)) | ((F.month(d) == F.month(birth)) & (F.dayofmonth(d) < F.dayofmonth(birth)))
    return (F.year(d) - F.year(birth) - F.when(before, 1).otherwise(0)).cast("int")


def offense_on(occurred_on: Column, filed_on: Column) -> Column:
    """:func:`offense_date` as a column."""
    from pyspark.sql import functions as F

    return F.coalesce(occurred_on, F.date_sub(filed_on, OFFENSE_LOOKBACK_DAYS))


def outcome(decision: Column, judged: Column, verdict: Column, sentence_type: Column, months: Column) -> Column:
    """:func:`outcome_of` as a column."""
    from pyspark.sql import functions as F

    court = (
        F.when(verdict.isin("exempt", "acquitted"), "light")
        .when(verdict.isNull() | (verdict != "guilty"), "unknown")
        .when(sentence_type.isin(*HEAVY_SENTENCES), "heavy")
        .when(sentence_type == "fixed_term", F.when(months.isNull(), "unknown").when(months <= SEALABLE_FIXED_TERM_MONTHS, "light").otherwise("heavy"))
        .when(sentence_type.isin(*LIGHT_SENTENCES), "light")
        .otherwise("unknown")
    )
    prosecution = F.when(F.coalesce(decision == "non_prosecution", F.lit(False)), "light").otherwise("unknown")
    return F.when(F.coalesce(judged, F.lit(False)), court).otherwise(prosecution)


def seal_status(is_minor: Column, outcome_col: Column) -> Column:
    """:func:`seal_status_of` as a column; ``is_minor`` null = age unknown."""
    from pyspark.sql import functions as F

    return (
        F.when((outcome_col == "heavy") | F.coalesce(~is_minor, F.lit(False)), "not_sealed")
        .when(F.coalesce(is_minor, F.lit(False)) & (outcome_col == "light"), "sealed")
        .otherwise("pending")
    )


def is_withheld(status: Column) -> Column:
    """Withheld from every share and open output: sealed, pending, or no status at all."""
    from pyspark.sql import functions as F

    return F.coalesce(status != "not_sealed", F.lit(True))


def withheld_chain_ids(chain: DataFrame) -> DataFrame:
    """``chain_id`` of every gold.case_chain row a partner or the public may not see."""
    from pyspark.sql import functions as F

    status = F.col("seal_status") if "seal_status" in chain.columns else F.when(F.col("is_sealed"), "sealed")
    return chain.where(is_withheld(status)).select("chain_id").distinct()


# -- SQL (gate checks) -------------------------------------------------------------------


def age_sql(birth: str, day: str) -> str:
    """:func:`age_on` as SQL over two date expressions."""
    d = f"date_sub({day}, 1)"
    return (
        f"(year({d}) - year({birth}) - CASE WHEN month({d}) < month({birth}) "
        f"OR (month({d}) = month({birth}) AND dayofmonth({d}) < dayofmonth({birth})) THEN 1 ELSE 0 END)"
    )


def offense_sql(occurred_on: str, filed_on: str) -> str:
    return f"coalesce({occurred_on}, date_sub({filed_on}, {OFFENSE_LOOKBACK_DAYS}))"


def heavy_sql(alias: str) -> str:
    """A silver.court_defendants row (``alias``) whose outcome no age makes sealable."""
    heavy = ", ".join(f"'{s}'" for s in HEAVY_SENTENCES)
    return (
        f"({alias}.verdict = 'guilty' AND ({alias}.sentence_type IN ({heavy}) "
        f"OR ({alias}.sentence_type = 'fixed_term' AND {alias}.sentence_months > {SEALABLE_FIXED_TERM_MONTHS})))"
    )


_ID_BIRTH = "CAST(try_to_timestamp(substr({x}.id_number, 7, 8), 'yyyyMMdd') AS DATE)"


def minor_evidence_sql(chains: str) -> str:
    """SQL: ``chain_id`` of every chain in ``chains`` (a subquery with chain_id, police_case_id,
    person_key, first_instance_case_number, appeal_case_number, seal_status, occurred_on, filed_on)
    whose person is under 18 at the offense by some silver record, and gold's ``not_sealed``
    is not borne out by a heavy outcome in silver.court_defendants.

    The person's silver records are found two ways, so one linking miss does not hide a
    birth date: every record gold.person_records puts under the person, and every record
    of the chain's own police case or court cases that carries the person's name.

    Age in completed years never grows with a later birth date, so some record makes the
    person under 18 exactly when the latest birth date of them all (a record's own or its
    identity number's, whichever is later) does: each way is reduced to that latest date
    before it meets the chains (per person, and per case and name), and a chain is a minor's
    when either way's date makes its person under 18 at the offense. Joining every chain to
    every record of its person instead made a row per pair (about three per chain). For the
    same reason a record born more than 19 years before the earliest offense of any chain
    can make no one under 18, and is left out before either reduction (three quarters of the
    records at scale 400): it could only lower a latest date that is not under 18 anyway.

    The engine inlines CTEs, so every reference to one runs it again: the chains (``c``)
    are referenced four times (one of them the records' cutoff, which each of the two
    references to the silver records, ``x``, one union of the four tables, runs again); a
    chain's three case numbers are three copies of its row (a cross join), not three more
    joins.
    """
    records = []
    for table, key, case in (
        ("silver.suspects", "suspect_id", "police_case_id"),
        ("silver.prosecutions", "prosecution_id", "police_case_id"),
        ("silver.court_defendants", "defendant_id", "case_number"),
        ("silver.custody", "record_id", "case_number"),
    ):
        kind = "pc" if case == "police_case_id" else "cc"
        birth = "CAST(NULL AS DATE)" if table == "silver.custody" else "t.birth_date"
        records.append(f"SELECT '{table}' AS source_table, {key} AS record_key, '{kind}' AS kind, {case} AS k, name, "
                       f"greatest({birth}, {_ID_BIRTH.format(x='t')}) AS b FROM {{{table}}} t")
    union = "\n           UNION ALL ".join(records)
    case_of = "CASE l.n WHEN 0 THEN c.police_case_id WHEN 1 THEN c.first_instance_case_number ELSE c.appeal_case_number END"
    chain = ("chain_id", "police_case_id", "seal_status", "offense_on")  # what the verdict needs of a chain, carried with its evidence

    def carried(alias: str) -> str:
        return ", ".join(f"{alias}.{f}" for f in chain)

    # no earliest offense (no chain has a date): nothing is left out
    born_after = f"coalesce((SELECT add_months(min(offense_on), -{(ADULT_AGE + 1) * 12}) FROM c), DATE '0001-01-01')"
    return f"""
WITH c AS (SELECT chain_id, police_case_id, person_key, first_instance_case_number, appeal_case_number, seal_status,
                  {offense_sql('occurred_on', 'filed_on')} AS offense_on FROM ({chains}) q),
x AS (SELECT * FROM ({union}) u WHERE u.b > {born_after}),
by_person AS (SELECT r.person_key, max(x.b) AS b FROM {{gold.person_records}} r
                JOIN x ON x.source_table = r.source_table AND x.record_key = r.record_key
              GROUP BY r.person_key),
by_case AS (SELECT kind, k, name, max(b) AS b FROM x GROUP BY kind, k, name),
cases AS (SELECT {carried('c')}, c.person_key, CASE WHEN l.n = 0 THEN 'pc' ELSE 'cc' END AS kind, {case_of} AS k
          FROM c CROSS JOIN (VALUES (0), (1), (2)) AS l(n) WHERE {case_of} IS NOT NULL),
evidence AS (SELECT {carried('c')}, p.b FROM c JOIN by_person p ON p.person_key = c.person_key
             UNION ALL SELECT {carried('cases')}, y.b FROM cases
               JOIN {{gold.person_index}} i ON i.person_key = cases.person_key
               JOIN by_case y ON y.kind = cases.kind AND y.k = cases.k AND y.name = i.name),
minors AS (SELECT DISTINCT chain_id, police_case_id, seal_status FROM evidence WHERE {age_sql('b', 'offense_on')} < {ADULT_AGE}),
heavy AS (SELECT DISTINCT c.chain_id FROM c JOIN {{gold.person_records}} r ON r.person_key = c.person_key AND r.source_table = 'silver.court_defendants'
          JOIN {{silver.court_defendants}} d ON d.defendant_id = r.record_key
          AND d.case_number = coalesce(c.appeal_case_number, c.first_instance_case_number) WHERE c.seal_status = 'not_sealed' AND {heavy_sql('d')})
SELECT DISTINCT m.chain_id, m.police_case_id FROM minors m LEFT JOIN heavy h ON h.chain_id = m.chain_id
WHERE NOT (coalesce(m.seal_status, '') = 'not_sealed' AND h.chain_id IS NOT NULL)"""


_CHAIN_COLUMNS = "g.chain_id, g.police_case_id, g.person_key, g.first_instance_case_number, g.appeal_case_number, g.seal_status, g.occurred_on, g.filed_on"

MINOR_CHAINS = "gate.minor_chains"
"""The shared gate view (:class:`quality.gate.SharedViews`) of :func:`minor_evidence_sql` over every chain in gold:
``chain_id`` and ``police_case_id`` of each chain silver shows is a minor's. The evidence is a property of each
chain alone, so every share and open table's check reads it from this one view instead of computing it again."""

GATE_VIEWS = {MINOR_CHAINS: minor_evidence_sql(f"SELECT {_CHAIN_COLUMNS} FROM {{gold.case_chain}} g")}


def share_check() -> dict:
    """Gate check for a share candidate with ``chain_id``: no row of a person silver shows under 18 at the offense.

    Passes only rows whose chain is provably not sealable: the person is 18 or over by
    every birth date any agency recorded, or gold says ``not_sealed`` and silver holds a
    heavy final sentence for them (the chains :data:`MINOR_CHAINS` does not hold).
    """
    return {"name": "no_minor_by_silver_evidence",
            "sql": f"SELECT m.chain_id, m.police_case_id FROM {{{MINOR_CHAINS}}} m WHERE m.chain_id IN (SELECT chain_id FROM {{candidate}})"}
