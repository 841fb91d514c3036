"""Legal aid from the public legal services API: silver appointments, and the case chain's legal_aid_* columns."""

from __future__ import annotations

import datetime as dt

from jobs import integrate, normalize
from lawlake import contracts

from .frames import bronze, id_number, table

D = dt.date
ZS = id_number("330102", "19900101", "123")  # 张三
LS = id_number("330102", "19850505", "111")  # 李四
FI = "（2023）浙0102刑初1号"


def _rows(spark, name, df):
    return table(spark, name, [r.asDict() for r in df.collect()])


def test_silver_appointments_parse_and_reject(spark):
    rows = [
        # kept: a variant case number made canonical, the date parsed
        {"appointment_id": "FY1", "case_number": "(2023)浙0102刑初1号", "defendant_name": "张三", "id_number": ZS, "appointed_on": "2023-04-05",
         "appointed_by": "杭州市上城区法律援助中心", "updated_at": "2023-04-05 23:30:00"},
        # kept with case_number nulled: not a case number
        {"appointment_id": "FY2", "case_number": "第一号", "defendant_name": "李四", "appointed_on": "2023-04-06", "updated_at": "2023-04-06 23:30:00"},
        # rejected: no appointment id
        {"appointment_id": " ", "case_number": FI, "defendant_name": "王五", "appointed_on": "2023-04-06"},
    ]
    checked = normalize.build_legal_aid_appointments(bronze(spark, "bronze.legal_aid_appointments", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.legal_aid_appointments", target_table="silver.legal_aid_appointments")
    got = {r["appointment_id"]: (r["case_number"], r["appointed_on"], r["invalid_fields"]) for r in current.collect()}
    assert got == {"FY1": (FI, D(2023, 4, 5), []), "FY2": (None, D(2023, 4, 6), ["case_number"])}
    assert sorted((r["scope"], r["rule"]) for r in rejected.collect()) == [("field", "case_number.unparseable"), ("record", "appointment_id.missing")]


def test_case_chain_carries_the_first_appointment_of_each_defendant(spark):
    suspects = [dict(suspect_id="S1", police_case_id="A1", name="张三", id_number=ZS), dict(suspect_id="S2", police_case_id="A1", name="李四", id_number=LS)]
    s = {
        "suspects": table(spark, "silver.suspects", suspects),
        "prosecutions": table(spark, "silver.prosecutions", [dict(prosecution_id="JC1:1", review_id="JC1", police_case_id="A1", name="张三", id_number=ZS, decision="prosecute"),
                                                             dict(prosecution_id="JC1:2", review_id="JC1", police_case_id="A1", name="李四", id_number=LS, decision="prosecute")]),
        "court_cases": table(spark, "silver.court_cases", [dict(case_number=FI, court_code="浙0102", case_type="刑初", case_year=2023, trial_level="first_instance",
                                                                review_id="JC1", filed_on=D(2023, 4, 1), judged_on=D(2023, 5, 1))]),
        "defendants": table(spark, "silver.court_defendants", [dict(defendant_id=f"{FI}#1", case_number=FI, party_index=1, name="张三", id_number=ZS),
                                                               dict(defendant_id=f"{FI}#2", case_number=FI, party_index=2, name="李四", id_number=LS)]),
        "custody": table(spark, "silver.custody", []),
    }
    mentions = integrate.build_mentions(s["suspects"], s["prosecutions"], s["defendants"], s["custody"], s["court_cases"])
    # materialized as the runner does (it reads each gold table back), so the chain's plan stays small
    records = _rows(spark, "gold.person_records", contracts.enforce(integrate.build_person_records(mentions), contracts.load("gold.person_records")))
    index = _rows(spark, "gold.person_index", contracts.enforce(integrate.build_person_index(mentions, records), contracts.load("gold.person_index")))
    aid = table(spark, "silver.legal_aid_appointments", [
        dict(appointment_id="FY1", case_number=FI, name="张三", id_number=ZS, appointed_on=D(2023, 4, 9), appointed_by="B中心"),  # a later one
        dict(appointment_id="FY2", case_number=FI, name="张三", id_number=ZS, appointed_on=D(2023, 4, 3), appointed_by="A中心"),  # the first: wins
        dict(appointment_id="FY3", case_number=FI, name="王五", id_number=None, appointed_on=D(2023, 4, 3), appointed_by="A中心"),  # no such defendant: not guessed
    ])
    police = table(spark, "silver.police_cases", [dict(police_case_id="A1", region_code="330102", charge_code="C264", occurred_on=D(2023, 1, 2), filed_on=D(2023, 1, 3))])
    df = integrate.build_case_chain(police, s["suspects"], s["prosecutions"], s["court_cases"], s["defendants"], s["custody"], records, index, aid)
    rows = contracts.enforce(df, contracts.load("gold.case_chain")).collect()
    got = {(r["first_instance_case_number"], r["legal_aid_appointed_on"], r["legal_aid_by"]) for r in rows}
    assert len(rows) == 2 and got == {(FI, None, None), (FI, D(2023, 4, 3), "A中心")}  # 李四 had none; 张三 the first of two
    no_aid = integrate.build_case_chain(police, s["suspects"], s["prosecutions"], s["court_cases"], s["defendants"], s["custody"], records, index)
    assert {r["legal_aid_by"] for r in contracts.enforce(no_aid, contracts.load("gold.case_chain")).collect()} == {None}  # a lake without the table


def test_transfer_channel_is_kept_in_silver(spark):
    rows = [
        {"transfer_id": "T1", "case_id": "A1", "transferred_on": "2023-03-01", "transfer_channel": "online"},  # online
        {"transfer_id": "T2", "case_id": "A2", "transferred_on": "2023-03-01", "transfer_channel": "纸质"},  # paper, in Chinese
        {"transfer_id": "T3", "case_id": "A3", "transferred_on": "2023-03-01"},  # not delivered (an older source): null, no rule broken
        {"transfer_id": "T4", "case_id": "A4", "transferred_on": "2023-03-01", "transfer_channel": "fax"},  # unknown: nulled, quarantined
    ]
    checked = normalize.build_police_transfers(bronze(spark, "bronze.police_transfers", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_transfers", target_table="silver.police_transfers")
    assert {r["transfer_id"]: r["transfer_channel"] for r in current.collect()} == {"T1": "online", "T2": "paper", "T3": None, "T4": None}
    assert [(r["record_key"], r["rule"], r["raw_value"]) for r in rejected.collect()] == [("T4", "transfer_channel.unknown", "fax")]
