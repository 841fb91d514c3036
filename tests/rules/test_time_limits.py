"""Statutory time limits: calendar months (CPL art. 105), each extension, open stages, the warning window.

The Spark expressions agree with the Python reference at every month edge (31st,
February, leap years, last days of months) and on a seeded random batch.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from lawlake.rules import time_limits as TL

D = date


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (D(2023, 1, 10), 1, D(2023, 2, 10)),  # the same day-number of the next month
        (D(2023, 1, 31), 1, D(2023, 2, 28)),  # February has no 31st: its last day
        (D(2024, 1, 31), 1, D(2024, 2, 29)),  # … in a leap year, the 29th
        (D(2024, 1, 30), 1, D(2024, 2, 29)),  # no 30 February either
        (D(2023, 2, 28), 1, D(2023, 3, 31)),  # started on the last day of February: the last day of March
        (D(2024, 2, 28), 1, D(2024, 3, 28)),  # 28 February of a leap year is not its last day
        (D(2024, 2, 29), 2, D(2024, 4, 30)),  # last day of a leap February: last day of April
        (D(2023, 4, 30), 1, D(2023, 5, 31)),  # last day of April → last day of May
        (D(2023, 3, 31), 1, D(2023, 4, 30)),  # 31 March → 30 April
        (D(2023, 11, 15), 2, D(2024, 1, 15)),  # across the year end
        (D(2023, 12, 31), 2, D(2024, 2, 29)),  # across the year end into a leap February
        (D(2023, 8, 31), 7, D(2024, 3, 31)),  # seven months, 31st to 31st
    ],
)
def test_add_months_by_the_calendar(spark, start, months, expected):
    assert TL.add_months(start, months) == expected
    df = spark.createDataFrame([(start,)], "d date")
    assert df.select(TL.add_months_column(F.col("d"), months)).first()[0] == expected


FACT_SCHEMA = ("start date, is_roaming_serial_gang boolean, detention_extension_on date, custody_extension_156_on date, "
               "custody_extension_158_on date, custody_extension_159_on date, review_extension_on date, is_major_complex boolean")
FACT_NAMES = [c.split()[0] for c in FACT_SCHEMA.split(", ")][1:]

EXTENSIONS = [
    # rule, facts recorded, clock start, expected deadline
    ("detention_to_arrest", {}, D(2023, 1, 1), D(2023, 1, 11)),  # 3 days to request + 7 to decide
    ("detention_to_arrest", {"detention_extension_on": D(2023, 1, 3)}, D(2023, 1, 1), D(2023, 1, 15)),  # +4 with a recorded extension
    ("detention_to_arrest", {"detention_extension_on": D(2023, 1, 5)}, D(2023, 1, 1), D(2023, 1, 11)),  # approved after the 3 days: not applied
    ("detention_to_arrest", {"is_roaming_serial_gang": True}, D(2023, 1, 1), D(2023, 2, 7)),  # 30 + 7 only for roaming/serial/gang
    ("detention_to_arrest", {"is_roaming_serial_gang": False}, D(2023, 1, 1), D(2023, 1, 11)),  # marked not: 10
    ("custody_after_arrest", {}, D(2023, 1, 31), D(2023, 3, 31)),  # 2 months, last day to last day
    ("custody_after_arrest", {"custody_extension_156_on": D(2023, 3, 20)}, D(2023, 1, 31), D(2023, 4, 30)),  # +1 (art. 156)
    ("custody_after_arrest", {"custody_extension_156_on": D(2023, 3, 20), "custody_extension_158_on": D(2023, 4, 25)},
     D(2023, 1, 31), D(2023, 6, 30)),  # +1 +2 (art. 158)
    ("custody_after_arrest", {"custody_extension_156_on": D(2023, 3, 20), "custody_extension_158_on": D(2023, 4, 25),
                              "custody_extension_159_on": D(2023, 6, 1)}, D(2023, 1, 31), D(2023, 8, 31)),  # +1 +2 +2 (art. 159)
    ("custody_after_arrest", {"custody_extension_158_on": D(2023, 3, 1)}, D(2023, 1, 31), D(2023, 3, 31)),  # art. 158 without 156 first: none
    ("custody_after_arrest", {"custody_extension_156_on": D(2023, 4, 2)}, D(2023, 1, 31), D(2023, 3, 31)),  # approved after expiry: none
    ("arrested_not_transferred", {"custody_extension_156_on": D(2023, 3, 10)}, D(2023, 1, 10), D(2023, 4, 10)),  # the open form: same deadline
    ("review_for_prosecution", {}, D(2016, 2, 22), D(2016, 3, 22)),  # one month (the 2016-02-22 case)
    ("review_for_prosecution", {"review_extension_on": D(2016, 3, 20)}, D(2016, 2, 22), D(2016, 4, 6)),  # +15 days for a major case
    ("review_for_prosecution", {"review_extension_on": D(2016, 3, 23)}, D(2016, 2, 22), D(2016, 3, 22)),  # approved too late: none
    ("review_for_prosecution", {"review_extension_on": D(2016, 2, 21)}, D(2016, 2, 22), D(2016, 3, 22)),  # dated before the receipt: none
    ("review_for_prosecution", {"is_major_complex": True}, D(2016, 2, 22), D(2016, 4, 6)),  # marked major/complex: +15 without an approval
    ("review_for_prosecution", {"is_major_complex": False}, D(2016, 2, 22), D(2016, 3, 22)),  # marked not: one month
    ("review_for_prosecution", {"review_extension_on": D(2023, 2, 28)}, D(2023, 1, 31), D(2023, 3, 15)),  # 31 Jan + 1 month = 28 Feb, +15
    ("review_for_prosecution", {}, D(2024, 1, 31), D(2024, 2, 29)),  # a resubmission on 31 Jan restarts: leap February's last day
    ("supplementary_investigation", {}, D(2023, 1, 31), D(2023, 2, 28)),  # one month from the return, 31st into February
    ("supplementary_investigation", {}, D(2024, 2, 29), D(2024, 3, 31)),  # returned on a leap February's last day: 31 March
    ("supplementary_investigation", {"review_extension_on": D(2024, 3, 1), "is_major_complex": True},
     D(2024, 3, 15), D(2024, 4, 15)),  # no extension of the police's month (art. 175), whatever the review records
    ("first_instance", {}, D(2024, 12, 31), D(2025, 2, 28)),  # two months
    ("appeal", {}, D(2023, 12, 30), D(2024, 2, 29)),  # two months, into a leap February
]


@pytest.mark.parametrize(("rule", "facts", "start", "expected"), EXTENSIONS)
def test_each_extension_only_where_recorded(spark, rule, facts, start, expected):
    assert TL.deadline(rule, start, facts) == expected
    row = {"start": start, **{n: facts.get(n) for n in FACT_NAMES}}
    df = spark.createDataFrame([row], FACT_SCHEMA)
    assert df.select(TL.deadline_column(rule, F.col("start"), {n: F.col(n) for n in FACT_NAMES})).first()[0] == expected


def test_spark_and_python_agree_on_a_seeded_batch_of_month_edges(spark):
    rng = random.Random(20261202)
    edges = [D(y, m, d) for y in (2015, 2016, 2023, 2024) for m in range(1, 13) for d in (1, 28, 29, 30, 31) if _valid(y, m, d)]
    rows = []
    for _ in range(300):
        start = rng.choice(edges) if rng.random() < 0.7 else D(2015, 1, 1) + timedelta(days=rng.randint(0, 3650))
        row = {"start": start, "is_roaming_serial_gang": rng.choice([None, True, False])}
        for name in FACT_NAMES[1:-1]:  # an approval date around the deadlines, or none
            row[name] = start + timedelta(days=rng.randint(-5, 200)) if rng.random() < 0.5 else None
        row["is_major_complex"] = rng.choice([None, True, False])
        rows.append(row)
    df = spark.createDataFrame(rows, FACT_SCHEMA)
    facts = {n: F.col(n) for n in FACT_NAMES}
    got = df.select("*", *[TL.deadline_column(r, F.col("start"), facts).alias(r) for r in TL.RULE_NAMES]).collect()
    mismatches = [(r, row.asDict()) for row in got for r in TL.RULE_NAMES
                  if row[r] != TL.deadline(r, row["start"], {n: row[n] for n in FACT_NAMES})]
    assert len(got) == 300 and mismatches == []


def _valid(y, m, d):
    try:
        D(y, m, d)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("ended_on", "data_date", "expected"),
    [
        (D(2023, 3, 31), D(2024, 1, 1), None),  # ended on the deadline day: in time
        (D(2023, 4, 1), D(2024, 1, 1), ("exceeded", D(2023, 4, 1), 1)),  # ended one day late
        (None, D(2023, 3, 25), None),  # open, 6 days left: not yet in the 5-day window
        (None, D(2023, 3, 26), ("approaching", D(2023, 3, 26), -5)),  # open, 5 days left: approaching
        (None, D(2023, 3, 31), ("approaching", D(2023, 3, 31), 0)),  # open on the deadline day: still approaching
        (None, D(2023, 4, 3), ("exceeded", D(2023, 4, 3), 3)),  # open and past it: exceeded, judged at the data date
        (D(2023, 3, 28), D(2023, 3, 28), None),  # ended in the window: nothing to act on
    ],
)
def test_open_stage_before_and_after_its_deadline(ended_on, data_date, expected):
    assert TL.judge(D(2023, 3, 31), ended_on, data_date, 5) == expected


def test_every_rule_names_its_article_agency_and_clock():
    assert set(TL.RULE_NAMES) == {"detention_to_arrest", "custody_after_arrest", "arrested_not_transferred",
                                  "review_for_prosecution", "first_instance", "appeal", "supplementary_investigation"}
    for rule in TL.RULES.values():
        assert rule.article.startswith("CPL art. ") and rule.agency in TL.AGENCIES and rule.clock and rule.ends
    with pytest.raises(KeyError):
        TL.deadline("no_such_rule", D(2023, 1, 1))  # an unknown rule is an error, never a default limit
