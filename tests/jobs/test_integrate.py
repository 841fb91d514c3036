"""integrate: one person across agencies, one case chain from police to custody, sealing, time limits."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs import integrate
from lawlake import contracts

from .frames import id_number, table

D = dt.date
ZS = id_number("330102", "19900101", "123")  # 张三, M, 1990-01-01
LS1 = id_number("330102", "19850505", "111")  # 李四, M, 1985-05-05
LS2 = id_number("330106", "19850505", "222")  # another 李四, F, born the same day
WW = id_number("330105", "20060301", "132")  # 王五, F, 2006-03-01: a minor in 2022
FI = "（2023）浙0102刑初1号"
AP = "（2023）浙01刑终9号"
FI_WW = "（2023）浙0105刑初4号"


def _resolve(spark, suspects, prosecutions, court_cases, defendants, custody):
    s = {
        "suspects": table(spark, "silver.suspects", suspects),
        "prosecutions": table(spark, "silver.prosecutions", prosecutions),
        "court_cases": table(spark, "silver.court_cases", court_cases),
        "defendants": table(spark, "silver.court_defendants", defendants),
        "custody": table(spark, "silver.custody", custody),
    }
    mentions = integrate.build_mentions(s["suspects"], s["prosecutions"], s["defendants"], s["custody"], s["court_cases"])
    records = integrate.build_person_records(mentions)
    index = integrate.build_person_index(mentions, records)
    return s, contracts.enforce(records, contracts.load("gold.person_records")), contracts.enforce(index, contracts.load("gold.person_index"))


# -- entity resolution -----------------------------------------------------------------


@pytest.fixture(scope="module")
def resolved(spark):
    """(person_records by record_ref, person_index by person_key)."""
    _, records, index = _resolve(
        spark,
        suspects=[
            dict(suspect_id="S1", police_case_id="A1", name="张三", id_number=ZS, sex="M", birth_date=D(1990, 1, 1)),
            dict(suspect_id="S2", police_case_id="A2", name="李四", id_number=LS1, sex="M", birth_date=D(1985, 5, 5)),
            dict(suspect_id="S3", police_case_id="A3", name="李四", id_number=LS2, sex="F", birth_date=D(1985, 5, 5)),
            dict(suspect_id="S4", police_case_id="A4", name="王五", id_number=WW, sex="F", birth_date=D(2006, 3, 1)),
        ],
        prosecutions=[
            # the same id at the procuratorate, under a variant spelling of the name
            dict(prosecution_id=f"JC1:{ZS}", review_id="JC1", police_case_id="A1", name="张叁", id_number=ZS, sex="M", birth_date=D(1990, 1, 1),
                 received_on=D(2023, 3, 1), decision="prosecute", charge_code="C264"),
            # 李四 born 1985-05-05 without an id, in a case neither 李四 with an id is in: two candidates, no join
            dict(prosecution_id="JC9:李四", review_id="JC9", police_case_id="A9", name="李四", birth_date=D(1985, 5, 5),
                 received_on=D(2023, 3, 1), decision="prosecute", charge_code="C264"),
            # 王五 without an id and with a wrong recorded birth date, twice: joins by case + name
            dict(prosecution_id="JC4:王五", review_id="JC4", police_case_id="A4", name="王五", sex="M", birth_date=D(1990, 2, 2),
                 received_on=D(2023, 3, 1), decision="prosecute", charge_code="C264"),
        ],
        court_cases=[
            dict(case_number=FI, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC1", charge_code="C264"),
            dict(case_number=FI_WW, court_code="浙0105", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC4", charge_code="C264"),
        ],
        defendants=[
            # no id, but name + birth date match exactly one person
            dict(defendant_id=f"{FI}#1", case_number=FI, party_index=1, name="张三", birth_date=D(1990, 1, 1)),
            dict(defendant_id=f"{FI_WW}#1", case_number=FI_WW, party_index=1, name="王五", sex="M", birth_date=D(1990, 2, 2)),
        ],
        custody=[
            # no id, no birth date: the court case leads to police case A1, where one 张三 is known
            dict(record_id="R1", case_number=FI, name="张三", custody_type="prison", admitted_on=D(2023, 6, 1)),
        ],
    )
    return {r["record_ref"]: r.asDict() for r in records.collect()}, {r["person_key"]: r.asDict() for r in index.collect()}


def _person(resolved, ref):
    records, index = resolved
    return index[records[ref]["person_key"]]


@pytest.mark.parametrize(
    "ref, rule, same_person_as",
    [
        ("silver.suspects:S1", "id_number", None),
        # the same id number at another agency → the same person
        (f"silver.prosecutions:JC1:{ZS}", "id_number", "silver.suspects:S1"),
        # no id: name + birth date → the one person with both
        (f"silver.court_defendants:{FI}#1", "name_birth_date", "silver.suspects:S1"),
        # no id, no birth date: police case (through the court case and review) + name
        ("silver.custody:R1", "case_name", "silver.suspects:S1"),
        # no id and a birth date matching nobody: police case + name
        ("silver.prosecutions:JC4:王五", "case_name", "silver.suspects:S4"),
        # two 李四 born 1985-05-05 with different ids: ambiguous, so no join
        ("silver.prosecutions:JC9:李四", "unmatched", None),
    ],
)
def test_mentions_resolve_to_persons(resolved, ref, rule, same_person_as):
    records, _ = resolved
    assert records[ref]["match_rule"] == rule
    if same_person_as:
        assert records[ref]["person_key"] == records[same_person_as]["person_key"]


def test_an_ambiguous_mention_joins_neither_candidate(resolved):
    records, index = resolved
    alone = records["silver.prosecutions:JC9:李四"]["person_key"]
    assert alone not in {records["silver.suspects:S2"]["person_key"], records["silver.suspects:S3"]["person_key"]}
    assert index[alone]["id_number"] is None and index[alone]["n_records"] == 1


def test_person_index_counts_mentions_and_agencies_and_flags_conflicts(resolved):
    zhang = _person(resolved, "silver.suspects:S1")
    # 张叁 at the procuratorate disagrees with 张三 elsewhere; the most frequent spelling wins
    assert {k: zhang[k] for k in ("id_number", "name", "sex", "birth_date", "n_records", "agencies", "has_conflicts")} == {
        "id_number": ZS, "name": "张三", "sex": "M", "birth_date": D(1990, 1, 1), "n_records": 4,
        "agencies": "corrections,courts,police,procuratorate", "has_conflicts": True,
    }
    li = _person(resolved, "silver.suspects:S2")
    assert (li["n_records"], li["agencies"], li["has_conflicts"]) == (1, "police", False)
    _, index = resolved
    assert len(index) == 5  # 张三, two 李四 with ids, the unmatched 李四, 王五


def test_identity_number_fixes_sex_and_birth_date_over_the_majority(resolved):
    # 王五's id says F, 2006-03-01; two mentions without an id say M, 1990-02-02 (the contract: "from the identity number when known")
    wang = _person(resolved, "silver.suspects:S4")
    assert (wang["id_number"], wang["sex"], wang["birth_date"], wang["has_conflicts"]) == (WW, "F", D(2006, 3, 1), True)


# -- case chain ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(spark):
    """gold.case_chain rows by police case id."""
    silver, records, index = _resolve(
        spark,
        suspects=[
            dict(suspect_id="S1", police_case_id="A1", name="张三", id_number=ZS, sex="M", birth_date=D(1990, 1, 1)),
            dict(suspect_id="S4", police_case_id="A4", name="王五", id_number=WW, sex="F", birth_date=D(2006, 3, 1)),
        ],
        prosecutions=[
            dict(prosecution_id=f"JC1:{ZS}", review_id="JC1", police_case_id="A1", name="张三", id_number=ZS, received_on=D(2023, 3, 1),
                 decision="prosecute", decided_on=D(2023, 3, 20), charge_code="C264"),
            # 王五: sent back for supplementary investigation, then not prosecuted; recorded twice without id and with a wrong birth date
            dict(prosecution_id="JC5:王五", review_id="JC5", police_case_id="A4", name="王五", birth_date=D(1990, 2, 2), received_on=D(2022, 12, 20),
                 decision="supplementary_investigation", decided_on=D(2023, 1, 10), charge_code="C264"),
            dict(prosecution_id="JC4:王五", review_id="JC4", police_case_id="A4", name="王五", birth_date=D(1990, 2, 2), received_on=D(2023, 1, 20),
                 decision="non_prosecution", decided_on=D(2023, 2, 1), charge_code="C264"),
        ],
        court_cases=[
            dict(case_number=FI, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC1", charge_code="C264",
                 filed_on=D(2023, 4, 1), judged_on=D(2023, 5, 1)),
            dict(case_number=AP, court_code="浙01", case_type="刑终", case_year=2023, trial_level="appeal", original_case_number=FI, charge_code="C264",
                 filed_on=D(2023, 5, 20), judged_on=D(2023, 7, 1)),
        ],
        defendants=[
            dict(defendant_id=f"{FI}#1", case_number=FI, party_index=1, name="张三", id_number=ZS, verdict="guilty", sentence_type="fixed_term", sentence_months=36),
            dict(defendant_id=f"{AP}#1", case_number=AP, party_index=1, name="张三", id_number=ZS, verdict="guilty", sentence_type="fixed_term", sentence_months=24),
        ],
        custody=[dict(record_id="R1", case_number=AP, name="张三", id_number=ZS, custody_type="prison", admitted_on=D(2023, 7, 10))],
    )
    police_cases = table(spark, "silver.police_cases", [
        dict(police_case_id="A1", region_code="330102", charge_code="C264", occurred_on=D(2023, 1, 2), filed_on=D(2023, 1, 3),
             detained_on=D(2023, 1, 3), arrested_on=D(2023, 1, 10), transferred_on=D(2023, 2, 28)),
        dict(police_case_id="A4", region_code="330105", charge_code="C264", occurred_on=D(2022, 12, 1), filed_on=D(2022, 12, 2)),
    ])
    df = integrate.build_case_chain(
        police_cases, silver["suspects"], silver["prosecutions"], silver["court_cases"], silver["defendants"], silver["custody"], records, index
    )
    rows = contracts.enforce(df, contracts.load("gold.case_chain")).collect()
    return {r["police_case_id"]: r.asDict() for r in rows}


def test_one_case_through_every_agency_gives_the_final_sentence_and_durations(chain):
    assert set(chain) == {"A1", "A4"}  # one row per (police case, person)
    row = chain["A1"]
    assert {k: row[k] for k in (
        "review_id", "prosecution_decision", "first_instance_case_number", "appeal_case_number",
        "verdict", "sentence_type", "sentence_months", "custody_type", "custody_admitted_on",
        "days_detention_to_arrest", "days_in_review", "days_first_instance", "days_filed_to_judgment",
        "age_at_offense", "is_minor_at_offense", "is_sealed",
    )} == {
        "review_id": "JC1", "prosecution_decision": "prosecute", "first_instance_case_number": FI, "appeal_case_number": AP,
        "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 24,  # the appeal's, not the first instance's 36
        "custody_type": "prison", "custody_admitted_on": D(2023, 7, 10),
        "days_detention_to_arrest": 7,  # 01-03 → 01-10
        "days_in_review": 19,  # 03-01 → 03-20
        "days_first_instance": 30,  # 04-01 → 05-01
        "days_filed_to_judgment": 179,  # police filing 01-03 → appeal judgment 07-01
        "age_at_offense": 33, "is_minor_at_offense": False, "is_sealed": False,
    }
    assert row["chain_id"].startswith("C") and len(row["chain_id"]) == 17


def test_a_minor_not_prosecuted_is_sealed(chain):
    # the latest decision (non_prosecution) counts; age from the id's birth date (2006-03-01), not the recorded 1990-02-02
    row = chain["A4"]
    assert (row["prosecution_decision"], row["age_at_offense"], row["is_minor_at_offense"], row["is_sealed"]) == ("non_prosecution", 16, True, True)


# -- sealing (CPL art. 286) ------------------------------------------------------------

SEAL_CASES = {
    # name: (is_minor, decision, verdict, sentence_type, months)
    "minor_non_prosecution": (True, "non_prosecution", None, None, None),
    "minor_fixed_term_60": (True, "prosecute", "guilty", "fixed_term", 60),
    "minor_fixed_term_61": (True, "prosecute", "guilty", "fixed_term", 61),
    "minor_acquitted": (True, "prosecute", "acquitted", None, None),
    "adult_exempt": (False, "prosecute", "exempt", "exempt", None),
    "minor_probation": (True, "prosecute", "guilty", "probation", 12),
}


@pytest.fixture(scope="module")
def sealed(spark):
    rows = [(name, *values) for name, values in SEAL_CASES.items()]
    df = spark.createDataFrame(rows, "name string, is_minor boolean, decision string, verdict string, sentence_type string, months int")
    out = df.select("name", integrate.is_sealed(F.col("is_minor"), F.col("decision"), F.col("verdict"), F.col("sentence_type"), F.col("months")).alias("s"))
    return {r["name"]: r["s"] for r in out.collect()}


@pytest.mark.parametrize(
    "case, expected",
    [
        ("minor_non_prosecution", True),  # not prosecuted
        ("minor_fixed_term_60", True),  # five years: the limit, included
        ("minor_fixed_term_61", False),  # more than five years
        ("minor_acquitted", False),  # no sentence: nothing to seal
        ("adult_exempt", False),  # adults are never sealed
        ("minor_probation", True),  # lighter than fixed-term imprisonment
    ],
)
def test_is_sealed(sealed, case, expected):
    assert sealed[case] is expected


# -- time limits -----------------------------------------------------------------------


def test_time_limit_warnings_one_row_per_rule_over_the_limit_none_at_it(spark):
    base = dict(person_key="P1", region_code="330102", charge_code="C264", filed_on=D(2023, 1, 1))
    chain = table(spark, "gold.case_chain", [
        # exactly at every limit: 37 days, 45 days, 31 Jan → 30 Apr (three months = 89 days)
        dict(base, chain_id="C_at", police_case_id="A1", detained_on=D(2023, 1, 1), arrested_on=D(2023, 2, 7),
             prosecution_received_on=D(2023, 3, 1), prosecution_decided_on=D(2023, 4, 15),
             first_instance_filed_on=D(2023, 1, 31), first_instance_judged_on=D(2023, 4, 30)),
        # one day over each
        dict(base, chain_id="C_over", police_case_id="A2", detained_on=D(2023, 1, 1), arrested_on=D(2023, 2, 8),
             prosecution_received_on=D(2023, 3, 1), prosecution_decided_on=D(2023, 4, 16),
             first_instance_filed_on=D(2023, 1, 31), first_instance_judged_on=D(2023, 5, 1)),
        # stages not reached: no clock
        dict(base, chain_id="C_open", police_case_id="A3", detained_on=D(2020, 1, 1), prosecution_received_on=D(2020, 1, 1)),
    ])
    out = contracts.enforce(integrate.build_time_limit_warnings(chain), contracts.load("gold.time_limit_warnings"))
    assert sorted(tuple(r) for r in out.collect()) == [
        ("C_over", "A2", "detention_to_arrest_over_37_days", 37, 38, D(2023, 1, 1)),
        ("C_over", "A2", "first_instance_over_3_months", 89, 90, D(2023, 1, 31)),
        ("C_over", "A2", "review_over_45_days", 45, 46, D(2023, 3, 1)),
    ]
