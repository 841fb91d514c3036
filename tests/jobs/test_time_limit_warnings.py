"""gold.time_limit_warnings on inline chain rows: each rule's exceeded and approaching stages, open stages at the data date."""

from __future__ import annotations

import datetime as dt

from jobs import integrate
from lawlake import contracts

from .frames import table

D = dt.date
COLUMNS = ("chain_id", "rule", "clock_started_on", "deadline", "ended_on", "judged_on", "days_over", "status")


def _warnings(spark, chains, *, police=(), courts=(), data_date=D(2023, 6, 30), warning_days=5):
    base = dict(person_key="P1", region_code="330102", charge_code="C264", filed_on=D(2023, 1, 1))
    chain = table(spark, "gold.case_chain", [dict(base, **c) for c in chains])
    police_cases = table(spark, "silver.police_cases", list(police))
    court_cases = table(spark, "silver.court_cases", list(courts))
    out = contracts.enforce(
        integrate.build_time_limit_warnings(chain, police_cases, court_cases, data_date=data_date, warning_days=warning_days),
        contracts.load("gold.time_limit_warnings"),
    )
    return sorted(tuple(r[c] for c in COLUMNS) for r in out.collect()), out


def test_closed_stages_at_and_over_each_limit(spark):
    got, out = _warnings(spark, [
        # exactly at every limit: 10 days, 2 months (31 Jan → 31 Mar), 1 month, 2 months: nothing
        dict(chain_id="C_at", police_case_id="A1", detained_on=D(2023, 1, 21), arrested_on=D(2023, 1, 31), transferred_on=D(2023, 3, 31),
             review_id="R1", prosecution_received_on=D(2023, 4, 1), prosecution_decision="prosecute", prosecution_decided_on=D(2023, 5, 1),
             first_instance_case_number="F1", first_instance_filed_on=D(2023, 5, 10), first_instance_judged_on=D(2023, 7, 10)),
        # one day over each, the appeal too
        dict(chain_id="C_over", police_case_id="A2", detained_on=D(2023, 1, 20), arrested_on=D(2023, 1, 31), transferred_on=D(2023, 4, 1),
             review_id="R2", prosecution_received_on=D(2016, 2, 22), prosecution_decision="prosecute", prosecution_decided_on=D(2016, 4, 7),
             first_instance_case_number="F2", first_instance_filed_on=D(2023, 5, 10), first_instance_judged_on=D(2023, 7, 11),
             appeal_case_number="AP2", appeal_judged_on=D(2023, 11, 1)),
    ], courts=[dict(case_number="AP2", trial_level="appeal", filed_on=D(2023, 8, 31))], data_date=D(2024, 1, 1))
    assert got == [
        ("C_over", "appeal", D(2023, 8, 31), D(2023, 10, 31), D(2023, 11, 1), D(2023, 11, 1), 1, "exceeded"),  # 31 Aug + 2 months = 31 Oct
        ("C_over", "custody_after_arrest", D(2023, 1, 31), D(2023, 3, 31), D(2023, 4, 1), D(2023, 4, 1), 1, "exceeded"),
        ("C_over", "detention_to_arrest", D(2023, 1, 20), D(2023, 1, 30), D(2023, 1, 31), D(2023, 1, 31), 1, "exceeded"),  # 11 days > 10
        ("C_over", "first_instance", D(2023, 5, 10), D(2023, 7, 10), D(2023, 7, 11), D(2023, 7, 11), 1, "exceeded"),
        # received 2016-02-22, decided 2016-04-07: 45 flat days, but over one calendar month by 16 days
        ("C_over", "review_for_prosecution", D(2016, 2, 22), D(2016, 3, 22), D(2016, 4, 7), D(2016, 4, 7), 16, "exceeded"),
    ]
    row = out.where("rule = 'appeal'").first()
    assert (row.article, row.agency, row.region_code, row.evidence) == ("CPL art. 243", "court", "330102", "silver.court_cases:F2; silver.court_cases:AP2")


def test_open_stages_judged_at_the_data_date_never_the_wall_clock(spark):
    got, out = _warnings(spark, [
        # arrested 2023-04-30, not transferred: deadline 30 Jun; at the data date 2023-06-27, 3 days left → approaching
        dict(chain_id="C_soon", police_case_id="A1", arrested_on=D(2023, 4, 30)),
        # arrested 2023-04-20: deadline 20 Jun, 10 days past at the data date → exceeded
        dict(chain_id="C_late", police_case_id="A2", arrested_on=D(2023, 4, 20)),
        # arrested 2023-05-30: 33 days left → nothing yet
        dict(chain_id="C_early", police_case_id="A3", arrested_on=D(2023, 5, 30)),
        # withdrawn (撤案): the custody ended on a date the sources do not give → not judged as open
        dict(chain_id="C_gone", police_case_id="A4", arrested_on=D(2023, 1, 1)),
        # review received 2023-05-31 and undecided: deadline 30 Jun, approaching
        dict(chain_id="C_review", police_case_id="A5", arrested_on=D(2023, 4, 1), transferred_on=D(2023, 5, 30),
             review_id="R5", prosecution_received_on=D(2023, 5, 31)),
    ], police=[dict(police_case_id="A4", status="撤案")], data_date=D(2023, 6, 27))
    assert got == [
        ("C_late", "arrested_not_transferred", D(2023, 4, 20), D(2023, 6, 20), None, D(2023, 6, 27), 7, "exceeded"),
        ("C_review", "review_for_prosecution", D(2023, 5, 31), D(2023, 6, 30), None, D(2023, 6, 27), -3, "approaching"),
        ("C_soon", "arrested_not_transferred", D(2023, 4, 30), D(2023, 6, 30), None, D(2023, 6, 27), -3, "approaching"),
    ]
    # a wider window (a setting) reaches the early one too; a narrower one drops the approaching ones
    wide, _ = _warnings(spark, [dict(chain_id="C_early", police_case_id="A3", arrested_on=D(2023, 5, 30))], data_date=D(2023, 6, 27), warning_days=40)
    assert [(r[0], r[7], r[6]) for r in wide] == [("C_early", "approaching", -33)]
    narrow, _ = _warnings(spark, [dict(chain_id="C_soon", police_case_id="A1", arrested_on=D(2023, 4, 30))], data_date=D(2023, 6, 27), warning_days=2)
    assert narrow == []  # 3 days left, window 2


def test_a_resubmission_restarts_the_review_clock_and_an_unrecorded_extension_is_not_given(spark):
    got, _ = _warnings(spark, [
        # first received 1 Mar, returned, resubmitted 20 Apr (the latest receipt), decided 19 May: within one month of the resubmission
        dict(chain_id="C_resub", police_case_id="A1", review_id="R1", prosecution_first_received_on=D(2023, 3, 1), supplementary_rounds=1,
             prosecution_received_on=D(2023, 4, 20), prosecution_decision="prosecute", prosecution_decided_on=D(2023, 5, 19)),
        # 40 days with no recorded extension: the 15 extra days of a major case are not assumed
        dict(chain_id="C_major", police_case_id="A2", review_id="R2", prosecution_received_on=D(2023, 3, 1),
             prosecution_decision="prosecute", prosecution_decided_on=D(2023, 4, 10)),
    ], data_date=D(2023, 12, 31))
    assert got == [("C_major", "review_for_prosecution", D(2023, 3, 1), D(2023, 4, 1), D(2023, 4, 10), D(2023, 4, 10), 9, "exceeded")]


def test_extensions_recorded_by_the_police_lengthen_the_limit_and_only_those(spark):
    got, _ = _warnings(spark, [
        # 20 days detention → arrest, marked roaming/serial/gang: 37 days allowed, in time
        dict(chain_id="C_gang", police_case_id="A1", detained_on=D(2023, 1, 1), arrested_on=D(2023, 1, 21), transferred_on=D(2023, 3, 1)),
        # the same 20 days without the mark: over 10 days by 10
        dict(chain_id="C_plain", police_case_id="A2", detained_on=D(2023, 1, 1), arrested_on=D(2023, 1, 21), transferred_on=D(2023, 3, 1)),
        # custody 31 Jan → 20 Apr with an art. 156 approval on 25 Mar: deadline 30 Apr, in time
        dict(chain_id="C_ext", police_case_id="A3", arrested_on=D(2023, 1, 31), transferred_on=D(2023, 4, 20)),
        # the same custody with the approval dated after the 2-month deadline: not applied, over by 20 days
        dict(chain_id="C_late_ext", police_case_id="A4", arrested_on=D(2023, 1, 31), transferred_on=D(2023, 4, 20)),
    ], police=[
        dict(police_case_id="A1", is_roaming_serial_gang=True),
        dict(police_case_id="A2", is_roaming_serial_gang=False),
        dict(police_case_id="A3", custody_extension_156_on=D(2023, 3, 25)),
        dict(police_case_id="A4", custody_extension_156_on=D(2023, 4, 1)),
    ], data_date=D(2023, 12, 31))
    assert got == [
        ("C_late_ext", "custody_after_arrest", D(2023, 1, 31), D(2023, 3, 31), D(2023, 4, 20), D(2023, 4, 20), 20, "exceeded"),
        ("C_plain", "detention_to_arrest", D(2023, 1, 1), D(2023, 1, 11), D(2023, 1, 21), D(2023, 1, 21), 10, "exceeded"),
    ]


def test_normalize_parses_the_police_time_limit_facts_and_quarantines_bad_ones(spark):
    from jobs import normalize

    from .frames import bronze

    base = {"region_code": "330102", "charge": "盗窃", "filed_on": "2023-01-03"}
    rows = [
        # marked roaming/serial/gang, an art. 156 approval in a Chinese date form: both kept
        {"case_id": "P1", **base, "is_roaming_serial_gang": "1", "custody_extension_156_on": "2023年3月20日"},
        # no mark delivered: not marked (the 30-day period is never assumed)
        {"case_id": "P2", **base},
        # a mark that is neither 1 nor 0, an approval that is not a date: nulled, named, quarantined
        {"case_id": "P3", **base, "is_roaming_serial_gang": "maybe", "custody_extension_158_on": "soon"},
    ]
    checked = normalize.build_police_cases(bronze(spark, "bronze.police_cases", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_cases", target_table="silver.police_cases")
    cur = {r["police_case_id"]: r for r in current.collect()}
    assert (cur["P1"]["is_roaming_serial_gang"], cur["P1"]["custody_extension_156_on"], cur["P1"]["invalid_fields"]) == (True, D(2023, 3, 20), [])
    assert (cur["P2"]["is_roaming_serial_gang"], cur["P2"]["invalid_fields"]) == (False, [])
    assert (cur["P3"]["is_roaming_serial_gang"], cur["P3"]["custody_extension_158_on"]) == (None, None)
    assert sorted(cur["P3"]["invalid_fields"]) == ["custody_extension_158_on", "is_roaming_serial_gang"]
    assert sorted((r["rule"], r["record_key"], r["raw_value"]) for r in rejected.collect()) == [
        ("custody_extension_158_on.unparseable", "P3", "soon"), ("is_roaming_serial_gang.unknown", "P3", "maybe"),
    ]


def test_each_supplementary_round_gives_the_police_one_calendar_month(spark):
    got, out = _warnings(spark, [
        # returned on the last day of February, resubmitted on 31 March: exactly one month (last day to last day), in time
        dict(chain_id="C_in", police_case_id="A0", review_id="R0", supplementary_returned_on_1=D(2023, 2, 28), supplementary_resubmitted_on_1=D(2023, 3, 31),
             prosecution_received_on=D(2023, 3, 31), prosecution_decision="prosecute", prosecution_decided_on=D(2023, 4, 20)),
        # returned 31 Jan, resubmitted 1 Mar: the month ended 28 Feb, one day over
        dict(chain_id="C_over", police_case_id="A1", review_id="R1", supplementary_returned_on_1=D(2023, 1, 31), supplementary_resubmitted_on_1=D(2023, 3, 1),
             prosecution_received_on=D(2023, 3, 1), prosecution_decision="prosecute", prosecution_decided_on=D(2023, 3, 20)),
        # round 1 in time; round 2 returned 31 May and still out at the data date 27 Jun: 3 days left
        dict(chain_id="C_open", police_case_id="A2", review_id="R2", supplementary_returned_on_1=D(2023, 4, 20), supplementary_resubmitted_on_1=D(2023, 5, 10),
             supplementary_returned_on_2=D(2023, 5, 31), prosecution_received_on=D(2023, 5, 10), prosecution_decision="supplementary_investigation",
             prosecution_decided_on=D(2023, 5, 31)),
        # both rounds over (by 5 and by 10 days): one warning, the round most over its limit
        dict(chain_id="C_two", police_case_id="A3", review_id="R3", supplementary_returned_on_1=D(2023, 1, 10), supplementary_resubmitted_on_1=D(2023, 2, 15),
             supplementary_returned_on_2=D(2023, 3, 1), supplementary_resubmitted_on_2=D(2023, 4, 11),
             prosecution_received_on=D(2023, 4, 11), prosecution_decision="prosecute", prosecution_decided_on=D(2023, 5, 1)),
    ], data_date=D(2023, 6, 27))
    assert got == [
        ("C_open", "supplementary_investigation", D(2023, 5, 31), D(2023, 6, 30), None, D(2023, 6, 27), -3, "approaching"),
        ("C_over", "supplementary_investigation", D(2023, 1, 31), D(2023, 2, 28), D(2023, 3, 1), D(2023, 3, 1), 1, "exceeded"),
        ("C_two", "supplementary_investigation", D(2023, 3, 1), D(2023, 4, 1), D(2023, 4, 11), D(2023, 4, 11), 10, "exceeded"),
    ]
    row = out.where("chain_id = 'C_two'").first()
    assert (row.article, row.agency, row.evidence) == ("CPL art. 175", "police", "silver.police_cases:A3; silver.prosecutions review R3 round 2")


def test_review_extension_only_with_a_timely_approval_or_the_major_mark_and_a_resubmission_reopens_it(spark):
    review = dict(prosecution_received_on=D(2023, 3, 1), prosecution_decision="prosecute")
    got, _ = _warnings(spark, [
        # 40 days with an approval on 25 Mar (before the 1 Apr deadline): 1 Apr + 15 = 16 Apr, in time
        dict(chain_id="C_ext", police_case_id="A1", review_id="R1", **review, prosecution_decided_on=D(2023, 4, 10), review_extension_on=D(2023, 3, 25)),
        # 40 days, marked major/complex: +15 without an approval, in time
        dict(chain_id="C_major", police_case_id="A2", review_id="R2", **review, prosecution_decided_on=D(2023, 4, 10), is_major_complex=True),
        # 50 days, the approval dated after the deadline: not applied, 19 days over one month
        dict(chain_id="C_late", police_case_id="A3", review_id="R3", **review, prosecution_decided_on=D(2023, 4, 20), review_extension_on=D(2023, 4, 5)),
        # 50 days, marked major: over the extended 16 Apr by 4
        dict(chain_id="C_major_over", police_case_id="A4", review_id="R4", **review, prosecution_decided_on=D(2023, 4, 20), is_major_complex=True),
        # returned 20 Apr and resubmitted 25 May (5 days late); the record's latest word is still the return: the review is
        # open again from 25 May, past its 25 Jun deadline at the data date 27 Jun
        dict(chain_id="C_reopen", police_case_id="A5", review_id="R5", prosecution_received_on=D(2023, 4, 1), prosecution_decision="supplementary_investigation",
             prosecution_decided_on=D(2023, 4, 20), supplementary_returned_on_1=D(2023, 4, 20), supplementary_resubmitted_on_1=D(2023, 5, 25)),
    ], data_date=D(2023, 6, 27))
    assert got == [
        ("C_late", "review_for_prosecution", D(2023, 3, 1), D(2023, 4, 1), D(2023, 4, 20), D(2023, 4, 20), 19, "exceeded"),
        ("C_major_over", "review_for_prosecution", D(2023, 3, 1), D(2023, 4, 16), D(2023, 4, 20), D(2023, 4, 20), 4, "exceeded"),
        ("C_reopen", "review_for_prosecution", D(2023, 5, 25), D(2023, 6, 25), None, D(2023, 6, 27), 2, "exceeded"),
        ("C_reopen", "supplementary_investigation", D(2023, 4, 20), D(2023, 5, 20), D(2023, 5, 25), D(2023, 5, 25), 5, "exceeded"),
    ]


def test_normalize_parses_the_review_time_limit_facts_and_quarantines_bad_ones(spark):
    from jobs import normalize

    from .frames import bronze

    base = {"police_case_id": "A1", "suspect_name": "张三", "received_on": "2023-05-10", "decision": "起诉", "decided_on": "2023-06-01", "charge": "盗窃"}
    rows = [
        # two rounds (one date in a Chinese form), an approval, marked major: all kept
        {"review_id": "R1", **base, "returned_on_1": "2023年3月20日", "resubmitted_on_1": "2023-04-10", "returned_on_2": "2023-04-20",
         "resubmitted_on_2": "2023-05-10", "review_extension_on": "2023-05-30", "is_major_complex": "1"},
        # nothing recorded: no rounds, not marked (the extra 15 days are never assumed)
        {"review_id": "R2", **base},
        # a resubmission dated before its return, a mark that is neither 1 nor 0: nulled, named, quarantined
        {"review_id": "R3", **base, "returned_on_1": "2023-04-20", "resubmitted_on_1": "2023-04-01", "is_major_complex": "是"},
    ]
    checked = normalize.build_prosecutions(bronze(spark, "bronze.procuratorate_reviews", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.procuratorate_reviews", target_table="silver.prosecutions")
    cur = {r["review_id"]: r for r in current.collect()}
    r1 = cur["R1"]
    assert (r1["returned_on_1"], r1["resubmitted_on_1"], r1["returned_on_2"], r1["resubmitted_on_2"], r1["review_extension_on"], r1["is_major_complex"]) == (
        D(2023, 3, 20), D(2023, 4, 10), D(2023, 4, 20), D(2023, 5, 10), D(2023, 5, 30), True)
    assert (r1["supplementary_rounds"], r1["invalid_fields"]) == (2, [])  # the rounds the latest version records
    assert (cur["R2"]["is_major_complex"], cur["R2"]["supplementary_rounds"], cur["R2"]["invalid_fields"]) == (False, 0, [])
    assert (cur["R3"]["returned_on_1"], cur["R3"]["resubmitted_on_1"], cur["R3"]["is_major_complex"]) == (D(2023, 4, 20), None, None)
    assert sorted(cur["R3"]["invalid_fields"]) == ["is_major_complex", "resubmitted_on_1"]
    assert sorted((r["rule"], r["raw_value"]) for r in rejected.collect()) == [("is_major_complex.unknown", "是"), ("resubmitted_on_1.before_return", "2023-04-01")]


def test_a_stage_whose_start_date_is_missing_is_undetermined_not_dropped(spark):
    got, out = _warnings(spark, [
        # judged, but the court's acceptance date is not on record (quarantined in normalize): the trial happened
        dict(chain_id="C_fi", police_case_id="A1", review_id="R1", prosecution_received_on=D(2023, 1, 2), prosecution_decision="prosecute",
             prosecution_decided_on=D(2023, 1, 20), first_instance_case_number="F1", first_instance_filed_on=None, first_instance_judged_on=D(2023, 3, 1)),
        # decided, no receipt date; and an appeal judged whose filing date is missing
        dict(chain_id="C_rv", police_case_id="A2", review_id="R2", prosecution_received_on=None, prosecution_decision="prosecute",
             prosecution_decided_on=D(2023, 2, 1), first_instance_case_number="F2", first_instance_filed_on=D(2023, 2, 10),
             first_instance_judged_on=D(2023, 3, 1), appeal_case_number="AP2", appeal_judged_on=D(2023, 5, 1)),
        # not judged and no date: no stage to judge, nothing to say
        dict(chain_id="C_none", police_case_id="A3", first_instance_case_number="F3", first_instance_filed_on=None, first_instance_judged_on=None),
    ], courts=[dict(case_number="AP2", trial_level="appeal", filed_on=None)])
    assert got == [
        ("C_fi", "first_instance", None, None, D(2023, 3, 1), D(2023, 3, 1), None, "undetermined"),
        ("C_rv", "appeal", None, None, D(2023, 5, 1), D(2023, 5, 1), None, "undetermined"),
        ("C_rv", "review_for_prosecution", None, None, D(2023, 2, 1), D(2023, 2, 1), None, "undetermined"),
    ]
    evidence = {r["chain_id"]: r["evidence"] for r in out.where("rule = 'first_instance'").collect()}
    assert evidence["C_fi"] == ("silver.court_cases:F1; the date of the court's acceptance of the public prosecution (受理) is not recorded in the sources: "
                                "the limit cannot be judged")
    # the gate's check holds on them, and catches a row claiming a verdict without a clock start
    from pyspark.sql import functions as F

    from lawlake import suites

    (query,) = [e["kwargs"]["unexpected_rows_query"] for e in suites.load_suite("gold.time_limit_warnings").expectations
                if e.get("meta", {}).get("check") == "undetermined_exactly_without_clock_start"]
    out.createOrReplaceTempView("warnings_batch")
    assert spark.sql(query.format(batch="warnings_batch")).count() == 0
    out.withColumn("status", F.when(F.col("chain_id") == "C_fi", "exceeded").otherwise(F.col("status"))).createOrReplaceTempView("warnings_batch")
    assert [r["chain_id"] for r in spark.sql(query.format(batch="warnings_batch")).collect()] == ["C_fi"]
