"""integrate: one person across agencies, one case chain from police to custody, sealing, time limits."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs import integrate
from lawlake import contracts, sealing

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
    # Materialized as run() does (it reads each gold table back from Delta), so later plans stay small.
    records = _rows(spark, "gold.person_records", contracts.enforce(integrate.build_person_records(mentions), contracts.load("gold.person_records")))
    index = _rows(spark, "gold.person_index", contracts.enforce(integrate.build_person_index(mentions, records), contracts.load("gold.person_index")))
    return s, records, index


def _rows(spark, name, df):
    return table(spark, name, [r.asDict() for r in df.collect()])


# -- entity resolution -----------------------------------------------------------------

ZL = id_number("330102", "19920707", "155")  # 赵六, M, 1992-07-07
FI2 = "（2023）浙0102刑初2号"  # its review id was lost upstream
FI3 = "（2023）浙0102刑初3号"  # its review id was lost upstream too
AP3 = "（2023）浙01刑终3号"  # the appeal of FI3


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
            # 王五 without an id and with a wrong recorded birth date: joins by police case + name
            dict(prosecution_id="JC4:王五", review_id="JC4", police_case_id="A4", name="王五", sex="M", birth_date=D(1990, 2, 2),
                 received_on=D(2023, 3, 1), decision="prosecute", charge_code="C264"),
        ],
        court_cases=[
            dict(case_number=FI, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC1", charge_code="C264"),
            dict(case_number=FI_WW, court_code="浙0105", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC4", charge_code="C264"),
            dict(case_number=FI2, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", charge_code="C264"),
            dict(case_number=FI3, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", charge_code="C264"),
            dict(case_number=AP3, court_code="浙01", case_type="刑终", case_year=2023, trial_level="appeal", original_case_number=FI3, charge_code="C264"),
        ],
        defendants=[
            # no id; the court case leads (review JC1) to police case A1, where one 张三 is known
            dict(defendant_id=f"{FI}#1", case_number=FI, party_index=1, name="张三", birth_date=D(1990, 1, 1)),
            dict(defendant_id=f"{FI_WW}#1", case_number=FI_WW, party_index=1, name="王五", sex="M", birth_date=D(1990, 2, 2)),
            # no id and no review behind the court case: name + birth date → the one 张三 born 1990-01-01
            dict(defendant_id=f"{FI2}#1", case_number=FI2, party_index=1, name="张三", birth_date=D(1990, 1, 1)),
            dict(defendant_id=f"{FI3}#1", case_number=FI3, party_index=1, name="赵六", id_number=ZL, birth_date=D(1992, 7, 7)),
            # the appeal's defendant without id: the same court case (appeal → first instance) + name
            dict(defendant_id=f"{AP3}#1", case_number=AP3, party_index=1, name="赵六"),
        ],
        custody=[
            # no id, no birth date: the court case leads to police case A1, where one 张三 is known
            dict(record_id="R1", case_number=FI, name="张三", custody_type="prison", admitted_on=D(2023, 6, 1)),
            # by name among the defendants of its own court case (no review, no police case)
            dict(record_id="R2", case_number=AP3, name="赵六", custody_type="prison", admitted_on=D(2023, 9, 1)),
            # no name, no id: the one defendant of its court case
            dict(record_id="R3", case_number=FI3, custody_type="prison", admitted_on=D(2023, 9, 1)),
            # by name among FI2's defendants, whose 张三 was itself linked by name + birth date: two steps
            dict(record_id="R4", case_number=FI2, name="张三", custody_type="prison", admitted_on=D(2023, 9, 1)),
            # no name, no id, a court case nobody else is in: stands alone
            dict(record_id="R5", case_number="（2023）浙0102刑初99号", custody_type="prison", admitted_on=D(2023, 9, 1)),
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
        # no id: the police case behind the court case (review JC1 → A1) + name
        (f"silver.court_defendants:{FI}#1", "case_name", "silver.suspects:S1"),
        # no id, no birth date: police case (through the court case and review) + name
        ("silver.custody:R1", "case_name", "silver.suspects:S1"),
        # no id and a birth date matching nobody: police case + name
        ("silver.prosecutions:JC4:王五", "case_name", "silver.suspects:S4"),
        # no id, no review behind the court case: name + birth date → the one person with both
        (f"silver.court_defendants:{FI2}#1", "name_birth_date", "silver.suspects:S1"),
        # custody by name among the defendants of its own court case (an appeal, grouped with its first instance)
        ("silver.custody:R2", "court_case_name", f"silver.court_defendants:{FI3}#1"),
        (f"silver.court_defendants:{AP3}#1", "court_case_name", f"silver.court_defendants:{FI3}#1"),
        # custody → a defendant linked by name + birth date → the suspect: resolution repeats
        ("silver.custody:R4", "court_case_name", "silver.suspects:S1"),
        # no name and no id: the court case's one defendant
        ("silver.custody:R3", "sole_person_in_case", f"silver.court_defendants:{FI3}#1"),
        # two 李四 born 1985-05-05 with different ids: ambiguous, so no join
        ("silver.prosecutions:JC9:李四", "unmatched", None),
        # nothing to go by: alone
        ("silver.custody:R5", "unmatched", None),
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
        "id_number": ZS, "name": "张三", "sex": "M", "birth_date": D(1990, 1, 1), "n_records": 6,  # S1, JC1, FI#1, FI2#1, R1, R4
        "agencies": "corrections,courts,police,procuratorate", "has_conflicts": True,
    }
    li = _person(resolved, "silver.suspects:S2")
    assert (li["n_records"], li["agencies"], li["has_conflicts"]) == (1, "police", False)
    zhao = _person(resolved, "silver.custody:R3")
    assert (zhao["id_number"], zhao["n_records"], zhao["agencies"]) == (ZL, 4, "corrections,courts")  # FI3#1, AP3#1, R2, R3
    nobody = _person(resolved, "silver.custody:R5")
    assert (nobody["name"], nobody["n_records"]) == (None, 1)  # a person with no name: kept, name null
    _, index = resolved
    assert len(index) == 7  # 张三, two 李四 with ids, the unmatched 李四, 王五, 赵六, R5's nobody


def test_identity_number_fixes_sex_and_birth_date_over_the_majority(resolved):
    # 王五's id says F, 2006-03-01; two mentions without an id say M, 1990-02-02 (the contract: "from the identity number when known")
    wang = _person(resolved, "silver.suspects:S4")
    assert (wang["id_number"], wang["sex"], wang["birth_date"], wang["has_conflicts"]) == (WW, "F", D(2006, 3, 1), True)


def test_resolve_name_group_never_merges_two_persons_with_ids():
    # pure Python: two 陈七 with different ids in one police case; a third mention without id in that case is ambiguous
    rows = pd.DataFrame([
        dict(record_ref="a", name="陈七", id_key="P1", birth_date=None, id_birth=None, pc="A1", rv=None, cc=None),  # one person
        dict(record_ref="b", name="陈七", id_key="P2", birth_date=None, id_birth=None, pc="A1", rv=None, cc=None),  # another
        dict(record_ref="c", name="陈七", id_key=None, birth_date=None, id_birth=None, pc="A1", rv=None, cc=None),  # either: neither
        dict(record_ref="d", name="陈七", id_key=None, birth_date=None, id_birth=None, pc="A1", rv="JC1", cc=None),  # same case, also ambiguous
    ])
    out = integrate.resolve_name_group(rows).set_index("record_ref")
    assert list(out.person_key[["a", "b"]]) == ["P1", "P2"]
    assert list(out.match_rule[["c", "d"]]) == ["unmatched", "unmatched"]
    assert out.person_key["c"] == out.person_key["d"] and out.person_key["c"] not in ("P1", "P2")  # the leftovers of one case: one person


def test_a_batch_of_name_groups_resolves_each_group_on_its_own():
    # the engine hands the resolver a bucket of name groups at once: evidence never crosses a group
    # (王八 shares 陈七's police case, and is still not 陈七), and each group gets what it gets alone
    def row(ref, name, id_key, pc, group=None, sole_ref=None):
        return dict(_group=group or name, record_ref=ref, name=name, id_key=id_key, birth_date=None, id_birth=None, pc=pc, rv=None, cc=None, sole_ref=sole_ref)

    batch = pd.DataFrame([
        row("a", "陈七", "P1", "A1"), row("b", "王八", None, "A1"), row("c", "陈七", None, "A1"),
        row("d", None, None, "A2", group="陈七", sole_ref="a"),  # no name: the one person record of its case, in 陈七's group
        row("e", "王八", None, "A3"),
    ])
    out = integrate.resolve_name_groups(batch).set_index("record_ref").sort_index()
    alone = pd.concat([integrate.resolve_name_group(g.drop(columns=["_group"])) for _, g in batch.groupby("_group")]).set_index("record_ref").sort_index()
    pd.testing.assert_frame_equal(out, alone)
    assert list(out.person_key[["a", "c", "d"]]) == ["P1"] * 3
    assert list(out.match_rule[["c", "d"]]) == ["case_name", "sole_person_in_case"]
    assert out.match_rule["b"] == "unmatched" and out.person_key["b"] != out.person_key["e"]  # 王八 of A1 and of A3: nothing links them


# -- issues 9 and 14: a court case whose review names two police cases ------------------


def test_a_court_case_mapping_to_two_police_cases_duplicates_no_mention(spark):
    # two source trees loaded one after the other: review JC7 names police case A7 in one, A8 in the other
    silver, records, index = _resolve(
        spark,
        suspects=[
            dict(suspect_id="S7", police_case_id="A7", name="孙七", id_number=LS1),
            dict(suspect_id="S8", police_case_id="A8", name="周八", id_number=LS2),
        ],
        prosecutions=[
            dict(prosecution_id=f"JC7:{LS1}", review_id="JC7", police_case_id="A7", name="孙七", id_number=LS1, received_on=D(2023, 3, 1), charge_code="C264"),
            dict(prosecution_id=f"JC7:{LS2}", review_id="JC7", police_case_id="A8", name="周八", id_number=LS2, received_on=D(2023, 3, 1), charge_code="C264"),
        ],
        court_cases=[dict(case_number=FI, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", review_id="JC7", charge_code="C264")],
        # no id: linked by name within the review (its police case is ambiguous)
        defendants=[dict(defendant_id=f"{FI}#1", case_number=FI, party_index=1, name="周八")],
        custody=[dict(record_id="R7", case_number=FI, name="周八", custody_type="prison", admitted_on=D(2023, 6, 1))],
    )
    refs = [r["record_ref"] for r in records.collect()]
    assert len(refs) == len(set(refs)) == 6  # one row per silver record (the old code gave the defendant and custody two each)
    # the reconciliation run() checks: the index folds exactly the records it was given
    assert index.select(F.sum("n_records")).first()[0] == 6
    by_ref = {r["record_ref"]: r for r in records.collect()}
    assert by_ref[f"silver.court_defendants:{FI}#1"]["person_key"] == by_ref["silver.suspects:S8"]["person_key"]
    assert by_ref[f"silver.court_defendants:{FI}#1"]["match_rule"] == "case_name"


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
        "age_at_offense", "is_minor_at_offense", "seal_status", "is_sealed", "is_withheld",
    )} == {
        "review_id": "JC1", "prosecution_decision": "prosecute", "first_instance_case_number": FI, "appeal_case_number": AP,
        "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 24,  # the appeal's, not the first instance's 36
        "custody_type": "prison", "custody_admitted_on": D(2023, 7, 10),
        "days_detention_to_arrest": 7,  # 01-03 → 01-10
        "days_in_review": 19,  # 03-01 → 03-20
        "days_first_instance": 30,  # 04-01 → 05-01
        "days_filed_to_judgment": 179,  # police filing 01-03 → appeal judgment 07-01
        "age_at_offense": 33, "is_minor_at_offense": False, "seal_status": "not_sealed", "is_sealed": False, "is_withheld": False,
    }
    assert row["chain_id"].startswith("C") and len(row["chain_id"]) == 17


def test_a_minor_not_prosecuted_is_sealed_and_the_review_keeps_its_first_receipt(chain):
    # the latest decision (non_prosecution) counts; age from the id's birth date (2006-03-01), not the recorded 1990-02-02
    row = chain["A4"]
    assert (row["prosecution_decision"], row["age_at_offense"], row["is_minor_at_offense"], row["seal_status"], row["is_sealed"]) == (
        "non_prosecution", 16, True, "sealed", True)
    # first received 2022-12-20, sent back once; the review clock restarted on 2023-01-20
    assert (row["prosecution_first_received_on"], row["supplementary_rounds"], row["prosecution_received_on"]) == (D(2022, 12, 20), 1, D(2023, 1, 20))


# -- seal statuses on whole chains -------------------------------------------------------

KID = id_number("330102", "20060615", "171")  # born 2006-06-15: 16 in 2022
KIDS = {  # police case → (name, id number or None, birth date recorded by the police)
    "B1": ("钱一", KID, D(2006, 6, 15)),
    "B2": ("钱二", id_number("330102", "20060616", "173"), None),
    "B3": ("钱三", id_number("330102", "20060617", "175"), None),
    "B4": ("钱四", id_number("330102", "20060618", "177"), None),
    "B5": ("钱五", None, None),  # no birth date from any agency
    "B6": ("钱六", None, None),  # no birth date either, heavy sentence
    "B7": ("钱七", id_number("330102", "20040615", "179"), None),  # 18 on 2022-06-15, the offense day: still a minor
    "B8": ("钱八", id_number("330102", "20040614", "181"), None),  # 18 the day before the offense: an adult
    "B9": ("钱九", None, None),  # the police know no birth date; the court records 2007-01-01 for a defendant linked by case + name
}


@pytest.fixture(scope="module")
def statuses(spark):
    """(chain rows by police case, gold.sealed_records rows) for one minor per outcome."""
    def fi(case):
        return f"（2023）浙0102刑初{case[1:]}号"

    suspects = [dict(suspect_id=f"S{c}", police_case_id=c, name=n, id_number=i, birth_date=b) for c, (n, i, b) in KIDS.items()]
    decided = dict(received_on=D(2022, 8, 1), decided_on=D(2022, 9, 1), charge_code="C264")
    prosecutions = [
        dict(prosecution_id=f"JC{c}:{n}", review_id=f"JC{c}", police_case_id=c, name=n, id_number=i, decision=d, **decided)
        for c, (n, i, _), d in [
            ("B1", KIDS["B1"], "prosecute"), ("B2", KIDS["B2"], "prosecute"), ("B3", KIDS["B3"], "prosecute"),
            ("B5", KIDS["B5"], "non_prosecution"), ("B6", KIDS["B6"], "prosecute"), ("B7", KIDS["B7"], "non_prosecution"),
            ("B8", KIDS["B8"], "non_prosecution"), ("B9", KIDS["B9"], "prosecute"),
        ]
    ]  # B4: transferred, never decided
    prosecutions[5]["police_case_id"] = None  # B7's police case id failed its rule: found through the person's one police case
    court_cases = [
        dict(case_number=fi(c), court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance", review_id=f"JC{c}",
             charge_code="C264", filed_on=D(2022, 10, 1), judged_on=D(2022, 12, 1))
        for c in ("B1", "B2", "B3", "B6", "B9")
    ]
    court_cases[0]["review_id"] = None  # B1's review id lost upstream: found through the person's one police case
    sentences = {
        "B1": dict(verdict="guilty", sentence_type="probation", sentence_months=12),  # sealable
        "B2": dict(verdict=None, sentence_type=None),  # verdict lost upstream
        "B3": dict(verdict="guilty", sentence_type="fixed_term", sentence_months=84),  # seven years: heavy
        "B6": dict(verdict="guilty", sentence_type="life"),  # heavy, whatever the age
        "B9": dict(verdict="guilty", sentence_type="fine_only", birth_date=D(2007, 1, 1)),
    }
    defendants = [
        dict(defendant_id=f"{fi(c)}#1", case_number=fi(c), party_index=1, name=KIDS[c][0], id_number=KIDS[c][1], **sentences[c]) for c in sentences
    ]
    silver, records, index = _resolve(spark, suspects=suspects, prosecutions=prosecutions, court_cases=court_cases, defendants=defendants, custody=[])
    police_cases = table(spark, "silver.police_cases", [
        dict(police_case_id=c, region_code="330102", charge_code="C264", occurred_on=D(2022, 6, 15), filed_on=D(2022, 6, 20)) for c in KIDS
    ])
    transfers = table(spark, "silver.police_transfers", [dict(transfer_id="T1", police_case_id="B1", transferred_on=D(2022, 7, 30))])
    df = integrate.build_case_chain(police_cases, silver["suspects"], silver["prosecutions"], silver["court_cases"], silver["defendants"], silver["custody"], records, index)
    chain = contracts.enforce(df, contracts.load("gold.case_chain"))
    mentions = integrate.build_mentions(silver["suspects"], silver["prosecutions"], silver["defendants"], silver["custody"], silver["court_cases"])
    sealed = contracts.enforce(integrate.build_sealed_records(chain, mentions, records, transfers), contracts.load("gold.sealed_records"))
    return {r["police_case_id"]: r.asDict() for r in chain.collect()}, [r.asDict() for r in sealed.collect()]


@pytest.mark.parametrize(
    "case, status, minor",
    [
        ("B1", "sealed", True),  # probation; the first instance found without its review id
        ("B2", "pending", True),  # verdict lost upstream: fails closed
        ("B3", "not_sealed", True),  # a minor, but seven years: not sealable
        ("B4", "pending", True),  # outcome pending: transferred, not yet decided
        ("B5", "pending", False),  # not prosecuted, but no birth date anywhere: the age may be a minor's
        ("B6", "not_sealed", False),  # age unknown, life imprisonment: sealable at no age
        ("B7", "sealed", True),  # the offense on the 18th birthday is a minor's (SPC 法释〔2006〕1号 art. 2); its review found by the person
        ("B8", "not_sealed", False),  # 18 reached on the offense day
        ("B9", "sealed", True),  # the court's birth date (linked by court case + name) makes a minor
    ],
)
def test_seal_status(statuses, case, status, minor):
    chains, _ = statuses
    row = chains[case]
    assert (row["seal_status"], row["is_minor_at_offense"], row["is_sealed"], row["is_withheld"]) == (status, minor, status == "sealed", status != "not_sealed")


def test_the_first_instance_is_found_by_the_person_when_its_review_id_is_lost(statuses):
    chains, _ = statuses
    assert (chains["B1"]["first_instance_case_number"], chains["B1"]["verdict"]) == ("（2023）浙0102刑初1号", "guilty")


def test_sealed_records_list_every_silver_record_of_withheld_chains(statuses):
    chains, sealed = statuses
    b1 = {(r["source_table"], r["record_key"]) for r in sealed if r["chain_id"] == chains["B1"]["chain_id"]}
    assert b1 == {
        ("silver.suspects", "SB1"), ("silver.prosecutions", "JCB1:钱一"), ("silver.court_defendants", "（2023）浙0102刑初1号#1"),
        ("silver.police_cases", "B1"), ("silver.police_transfers", "T1"), ("silver.court_cases", "（2023）浙0102刑初1号"),
    }
    assert {r["seal_status"] for r in sealed if r["chain_id"] == chains["B1"]["chain_id"]} == {"sealed"}
    # every withheld chain is listed, nothing of a not_sealed one is
    listed = {r["chain_id"] for r in sealed}
    assert listed == {c["chain_id"] for c in chains.values() if c["is_withheld"]}
    assert chains["B3"]["chain_id"] not in listed and chains["B4"]["chain_id"] in listed


# -- the age rule and the status rule ----------------------------------------------------


@pytest.mark.parametrize(
    "birth, day, age",
    [
        (D(2004, 6, 15), D(2022, 6, 15), 17),  # the 18th birthday: still 17
        (D(2004, 6, 15), D(2022, 6, 16), 18),  # the day after
        (D(2004, 6, 15), D(2022, 6, 14), 17),
        (D(2004, 2, 29), D(2022, 2, 28), 17),  # born on 29 February, a common year
        (D(2004, 2, 29), D(2022, 3, 1), 17),  # its birthday falls on 1 March: still 17
        (D(2004, 2, 29), D(2022, 3, 2), 18),
        (D(2004, 2, 29), D(2024, 2, 29), 19),  # a leap year: the birthday itself
        (D(2004, 2, 29), D(2024, 3, 1), 20),
        (D(2004, 12, 31), D(2023, 1, 1), 18),  # across the year end
    ],
)
def test_age_edges_python_column_and_sql_agree(spark, birth, day, age):
    assert sealing.age_on(birth, day) == age
    df = spark.createDataFrame([(birth, day)], "b date, d date")
    col, sql = df.select(sealing.age_at(F.col("b"), F.col("d"))).first()[0], df.selectExpr(sealing.age_sql("b", "d")).first()[0]
    assert (col, sql) == (age, age)


OUTCOMES = [
    # (decision, judged, verdict, sentence_type, months) → outcome
    (("non_prosecution", False, None, None, None), "light"),
    (("prosecute", False, None, None, None), "unknown"),  # not yet judged
    ((None, False, None, None, None), "unknown"),  # decision missing
    (("supplementary_investigation", False, None, None, None), "unknown"),
    (("prosecute", True, None, None, None), "unknown"),  # verdict lost upstream
    (("prosecute", True, "guilty", None, None), "unknown"),  # sentence lost
    (("prosecute", True, "guilty", "fixed_term", None), "unknown"),  # a fixed term without its length
    (("prosecute", True, "guilty", "fixed_term", 60), "light"),  # five years: the limit, included
    (("prosecute", True, "guilty", "fixed_term", 61), "heavy"),
    (("prosecute", True, "guilty", "life", None), "heavy"),
    (("prosecute", True, "guilty", "probation", 12), "light"),
    (("prosecute", True, "exempt", "exempt", None), "light"),
    (("prosecute", True, "acquitted", "none", None), "light"),  # withheld: a minor's acquittal is no record to share
    (("non_prosecution", True, "guilty", "fixed_term", 84), "heavy"),  # a judgment outranks an earlier decision
]


def test_outcome_column_matches_the_python_reference(spark):
    df = spark.createDataFrame([args for args, _ in OUTCOMES], "decision string, judged boolean, verdict string, sentence_type string, months int")
    got = [r[0] for r in df.select(sealing.outcome(F.col("decision"), F.col("judged"), F.col("verdict"), F.col("sentence_type"), F.col("months"))).collect()]
    assert got == [sealing.outcome_of(*args) for args, _ in OUTCOMES] == [want for _, want in OUTCOMES]


@pytest.mark.parametrize(
    "is_minor, outcome, status",
    [
        (True, "light", "sealed"),
        (True, "unknown", "pending"),  # a minor's outcome not known: withheld until it is
        (True, "heavy", "not_sealed"),
        (False, "light", "not_sealed"),  # adults are never sealed
        (False, "unknown", "not_sealed"),
        (None, "light", "pending"),  # age unknown: may be a minor
        (None, "unknown", "pending"),
        (None, "heavy", "not_sealed"),  # sealable at no age
    ],
)
def test_seal_status_python_and_column(spark, is_minor, outcome, status):
    assert sealing.seal_status_of(is_minor, outcome) == status
    df = spark.createDataFrame([(is_minor, outcome)], "m boolean, o string")
    assert df.select(sealing.seal_status(F.col("m"), F.col("o"))).first()[0] == status


# -- time limits: tests/jobs/test_time_limit_warnings.py ------------------------------


def test_a_repeat_offenders_records_that_lost_their_links_go_to_the_case_they_were_handed_over_from(spark):
    """张三 has two police cases (2015, 2018). The 2018 review lost its police case id and the 2018 first instance its
    review id: neither is the person's one case filed before it, so each goes to the case it was handed over from:
    the one transferred last before the review's receipt, the one indicted last before the court's filing — of the
    cases no review or trial names yet (so the 2015 chain keeps its own trial, not the later one)."""
    fi15, fi18 = "（2015）浙0102刑初1号", "（2018）浙0102刑初9号"
    silver, records, index = _resolve(
        spark,
        suspects=[dict(suspect_id="S15", police_case_id="A15", name="张三", id_number=ZS), dict(suspect_id="S18", police_case_id="A18", name="张三", id_number=ZS)],
        prosecutions=[
            dict(prosecution_id=f"JC15:{ZS}", review_id="JC15", police_case_id="A15", name="张三", id_number=ZS, received_on=D(2015, 3, 1),
                 decision="prosecute", decided_on=D(2015, 3, 20), charge_code="C264"),
            dict(prosecution_id=f"JC18:{ZS}", review_id="JC18", police_case_id=None, name="张三", id_number=ZS, received_on=D(2018, 3, 10),
                 decision="prosecute", decided_on=D(2018, 4, 8), charge_code="C264"),
        ],
        court_cases=[
            dict(case_number=fi15, court_code="浙0102", case_type="刑初", case_year=2015, trial_level="first_instance", review_id="JC15", charge_code="C264",
                 filed_on=D(2015, 4, 1), judged_on=D(2015, 5, 1)),
            dict(case_number=fi18, court_code="浙0102", case_type="刑初", case_year=2018, trial_level="first_instance", review_id=None, charge_code="C264",
                 filed_on=D(2018, 4, 16), judged_on=D(2018, 6, 1)),
        ],
        defendants=[dict(defendant_id=f"{n}#1", case_number=n, party_index=1, name="张三", id_number=ZS, verdict="guilty") for n in (fi15, fi18)],
        custody=[],
    )
    police_cases = table(spark, "silver.police_cases", [
        dict(police_case_id="A15", region_code="330102", charge_code="C264", filed_on=D(2015, 1, 3), transferred_on=D(2015, 2, 28)),
        dict(police_case_id="A18", region_code="330102", charge_code="C264", filed_on=D(2018, 1, 4), transferred_on=D(2018, 3, 7)),
    ])
    df = integrate.build_case_chain(
        police_cases, silver["suspects"], silver["prosecutions"], silver["court_cases"], silver["defendants"], silver["custody"], records, index
    )
    got = {r["police_case_id"]: (r["review_id"], r["first_instance_case_number"]) for r in df.collect()}
    assert got == {"A15": ("JC15", fi15), "A18": ("JC18", fi18)}
