"""normalize: bronze rows to canonical silver rows, broken rows to quarantine, older versions merged.

Every ``build_<table>`` runs once per module on a handful of inline bronze rows; the
parametrized cases then look up one row each in the three frames of
:func:`jobs.normalize.split` (current, rejected, superseded).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest

from jobs import normalize
from lawlake import contracts

from .frames import bronze, id_number

D = dt.date
ZS = id_number("330102", "19900101", "123")  # 张三, male, valid
LS = id_number("330106", "19850505", "222")  # 李四, female, valid
LEGACY = "110105491231002"  # 15 digits: 1949-12-31, female; upgrades to 11010519491231002X
BAD_CHECK = "110105194912310021"  # 18 digits, wrong check character

LATE = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)  # delivered a day after the rest

BRONZE = {
    "silver.police_cases": [
        # A1: valid; every date in another format, a charge variant with the 涉嫌 prefix
        {"case_id": " A1 ", "region_code": "330102", "charge": "涉嫌盗窃罪", "occurred_on": "2023年1月2日", "filed_on": "2023/1/3",
         "detained_on": "20230103", "arrested_on": "2023.01.10", "transferred_on": "2023-02-28 08:30:00", "status": "侦查", "updated_at": "2023-03-01 10:00:00"},
        {"case_id": None, "region_code": "330102", "charge": "盗窃", "filed_on": "2023-01-03"},  # no key
        {"case_id": "A3", "region_code": "999999", "charge": "盗窃", "filed_on": "2023-01-03"},  # not a GB/T 2260 code
        {"case_id": "A4", "region_code": "330102", "charge": "外星入侵罪", "filed_on": "2023-01-03"},  # not a charge
        {"case_id": "A5", "region_code": "330102", "charge": "盗窃", "filed_on": "2023-13-01"},  # no month 13
        # A6 twice: the later update arrives first; the earlier update, delivered late, must not win
        {"case_id": "A6", "region_code": "330105", "charge": "诈骗", "filed_on": "2023-01-05", "status": "newer", "updated_at": "2023-03-01 00:00:00"},
        {"case_id": "A6", "region_code": "330105", "charge": "诈骗", "filed_on": "2023-01-05", "status": "older", "updated_at": "2023-02-01 00:00:00",
         "_ingested_at": LATE},
    ],
    "silver.police_transfers": [
        {"transfer_id": "T1", "case_id": "A1", "procuratorate": " 上城区检察院 ", "transferred_on": "2023年3月1日", "updated_at": "2023-03-01"},
        {"transfer_id": "T2", "case_id": "A1", "transferred_on": None},  # no transfer date
        {"transfer_id": "T3", "case_id": "A1", "transferred_on": "yesterday"},  # not a date
    ],
    "silver.suspects": [
        # S1: a 15-digit id, upgraded; its sex and birth date override the (wrong) recorded ones; the traditional name simplified
        {"suspect_id": "S1", "case_id": "A1", "name": "張 三", "id_number": LEGACY, "sex": "男", "birth_date": "1950-01-01", "updated_at": "2023-01-03 09:00:00"},
        {"suspect_id": "S2", "case_id": "A1", "name": "李四", "id_number": BAD_CHECK, "sex": "男", "birth_date": "1949-12-31"},  # check character wrong
        # S3: no id: sex and birth date as recorded
        {"suspect_id": "S3", "case_id": "A1", "name": "王五", "id_number": None, "sex": "男", "birth_date": "2001年2月3日"},
        {"suspect_id": "S4", "case_id": "A1", "name": "  ", "id_number": ZS},  # blank name
        {"suspect_id": "S5", "case_id": "A1", "name": "赵六", "birth_date": "2001/2/30"},  # no 30 February, no id to fall back on
        # S6: a valid id fixes the birth date, so an unreadable recorded one does not reject the row
        {"suspect_id": "S6", "case_id": "A1", "name": "钱七", "id_number": ZS, "sex": "女", "birth_date": "不详"},
    ],
    "silver.prosecutions": [
        # JC1: 不起诉 → non_prosecution, the slang 醉驾 → C133-1
        {"review_id": "JC1", "police_case_id": "A1", "suspect_name": "张三", "id_number": ZS, "sex": "男", "birth_date": "1990-01-01", "received_on": "2023/3/2",
         "decision": "不起诉", "decided_on": "2023-03-20", "charge": "醉驾", "procuratorate": "上城区检察院", "updated_at": "2023-03-20 12:00:00"},
        # JC2: no id: keyed by name
        {"review_id": "JC2", "police_case_id": "A2", "suspect_name": "李四", "received_on": "2023-03-02", "decision": "起诉", "charge": "故意伤害案"},
        {"review_id": "JC3", "police_case_id": "A3", "suspect_name": "王五", "received_on": "2023-03-02", "decision": "撤案", "charge": "盗窃"},  # not a decision
        {"review_id": "JC4", "police_case_id": "A4", "suspect_name": "赵六", "received_on": "2023-03-02", "decision": "起诉", "charge": "外星入侵罪"},  # not a charge
        {"review_id": "JC5", "police_case_id": "A5", "suspect_name": "钱七", "received_on": "2023-02-30", "decision": "起诉", "charge": "盗窃"},  # no 30 February
    ],
    "silver.custody": [
        # K1: round brackets and a 15-digit id, both canonicalized
        {"record_id": "K1", "case_number": "(2023)浙0102刑初12号", "name": "张三", "id_number": LEGACY, "institution": "浙江省第一监狱", "custody_type": "监狱",
         "admitted_on": "2023-05-20", "released_on": None, "updated_at": "2023-05-20 08:00:00"},
        {"record_id": "K2", "case_number": "（2023）浙0102刑初12号", "name": "张三", "custody_type": "拘役所", "admitted_on": "2023-05-20"},  # unknown type
        {"record_id": "K3", "case_number": "（2023）浙0102刑初12号", "name": "张三", "custody_type": "监狱", "admitted_on": "2023-05-20", "released_on": "2023-05-01"},  # released first
        {"record_id": "K4", "case_number": "刑初12号", "name": "张三", "custody_type": "监狱", "admitted_on": "2023-05-20"},  # not a case number
        {"record_id": None, "case_number": "（2023）浙0102刑初12号", "name": "张三", "custody_type": "监狱", "admitted_on": "2023-05-20"},  # no key
    ],
}

FI = "（2023）浙0102刑初12号"
AP = "（2023）浙01刑终9号"


def _party(name, **fields):
    return {"name": name, "role": "defendant", **fields}


COURT_CASES = [
    # FI, newer version (updated in June), delivered first: two parties
    {"case_number": "〔2023〕浙0102刑初12号", "court_name": "newer", "trial_level": "first_instance", "review_id": "JC1", "charge": "盗窃罪",
     "filed_on": "2023-04-01", "judged_on": "2023年5月1日", "updated_at": "2023-06-01 09:00:00",
     "parties": json.dumps([
         _party("張三", id_number=LEGACY, sex="男", birth_date="1950-01-01", verdict="guilty", sentence_type="fixed_term", sentence_months=10),
         _party("李四", birth_date="1985/5/5", sex="女", verdict="guilty", sentence_type="probation", sentence_months="12"),
     ], ensure_ascii=False)},
    # FI, older version (updated in May), delivered late: its one party is superseded with it
    {"case_number": "(2023)浙0102刑初12号", "court_name": "older", "trial_level": "first_instance", "review_id": "JC1", "charge": "盗窃罪",
     "filed_on": "2023-04-01", "judged_on": "2023-05-01", "updated_at": "2023-05-02 09:00:00", "_ingested_at": LATE,
     "parties": json.dumps([_party("张三", id_number=ZS, verdict="guilty", sentence_type="fixed_term", sentence_months=12)], ensure_ascii=False)},
    # AP: an appeal; its parties break one rule each
    {"case_number": "[2023]浙01刑终9号", "court_name": "中院", "trial_level": "appeal", "original_case_number": "(2023)浙0102刑初12号", "charge": "盗窃",
     "filed_on": "2023-05-20", "judged_on": "2023-07-01", "updated_at": "2023-07-01",
     "parties": json.dumps([
         _party("张三", id_number=BAD_CHECK, verdict="guilty"),
         _party("李四", verdict="maybe"),
         _party("王五", verdict="guilty", sentence_type="fixed_term", sentence_months="700"),
         _party("赵六", verdict="guilty", sentence_type="caning"),
     ], ensure_ascii=False)},
    # no brackets: not a case number; its defendant goes with it
    {"case_number": "2023浙0102刑初13号", "trial_level": "first_instance", "charge": "盗窃", "parties": json.dumps([_party("孙八")], ensure_ascii=False)},
    {"case_number": "（2023）浙0102刑初14号", "trial_level": "retrial", "charge": "盗窃"},  # not a trial level
    {"case_number": "（2023）浙0102刑初15号", "trial_level": "first_instance", "charge": "抢劫", "judged_on": "2023-02-29"},  # not a day
]

SOURCES = {
    "silver.police_cases": "bronze.police_cases",
    "silver.police_transfers": "bronze.police_transfers",
    "silver.suspects": "bronze.police_suspects",
    "silver.prosecutions": "bronze.procuratorate_reviews",
    "silver.court_cases": "bronze.court_cases",
    "silver.court_defendants": "bronze.court_cases",
    "silver.custody": "bronze.custody_records",
}
BUILD = {
    "silver.police_cases": normalize.build_police_cases,
    "silver.police_transfers": normalize.build_police_transfers,
    "silver.suspects": normalize.build_suspects,
    "silver.prosecutions": normalize.build_prosecutions,
    "silver.court_cases": normalize.build_court_cases,
    "silver.court_defendants": normalize.build_court_defendants,
    "silver.custody": normalize.build_custody,
}
KEYS = {
    "silver.police_cases": "police_case_id",
    "silver.police_transfers": "transfer_id",
    "silver.suspects": "suspect_id",
    "silver.prosecutions": "prosecution_id",
    "silver.court_cases": "case_number",
    "silver.court_defendants": "defendant_id",
    "silver.custody": "record_id",
}


@dataclass
class Split:
    current: dict  # key -> silver row (contract columns)
    rejected: list[dict]  # quarantine rows, scope record and field
    superseded: list[dict]  # silver rows of older versions

    def scope(self, scope):
        return [r for r in self.rejected if r["scope"] == scope]

    def reject(self, rule, raw):
        found = [r for r in self.rejected if (r["rule"], r["raw_value"]) == (rule, raw)]
        assert len(found) == 1, f"expected one quarantine row for {rule} {raw!r}, got {found} (all: {self.rejected})"
        return found[0]


@pytest.fixture(scope="module")
def built(spark):
    """Each silver table's split, computed on first use."""
    refs = normalize.reference_tables(spark)
    cache: dict[str, Split] = {}

    def get(target: str) -> Split:
        if target not in cache:
            source = SOURCES[target]
            rows = COURT_CASES if source == "bronze.court_cases" else BRONZE[target]
            contract = contracts.load(target)
            checked = BUILD[target](bronze(spark, source, rows), refs)
            current, rejected, superseded = normalize.split(checked, source_table=source, target_table=target)
            key = KEYS[target]
            cur = [r.asDict() for r in contracts.enforce(current.select(*contract.names), contract).collect()]
            assert len({r[key] for r in cur}) == len(cur), f"{target}: one current row per key"
            cache[target] = Split(
                current={r[key]: r for r in cur},
                rejected=[r.asDict() for r in rejected.collect()],
                superseded=[r.asDict() for r in superseded.select(*contract.names).collect()],
            )
        return cache[target]

    return get


@pytest.mark.parametrize(
    "target, key, expected",
    [
        # one police case: trimmed key, charge variant → code, four date formats, a timestamp's date
        ("silver.police_cases", "A1", {"region_code": "330102", "charge_code": "C264", "occurred_on": D(2023, 1, 2), "filed_on": D(2023, 1, 3),
                                       "detained_on": D(2023, 1, 3), "arrested_on": D(2023, 1, 10), "transferred_on": D(2023, 2, 28),
                                       "updated_at": dt.datetime(2023, 3, 1, 10, 0)}),
        # the later update wins, though delivered first
        ("silver.police_cases", "A6", {"status": "newer", "charge_code": "C266", "updated_at": dt.datetime(2023, 3, 1)}),
        ("silver.police_transfers", "T1", {"police_case_id": "A1", "procuratorate": "上城区检察院", "transferred_on": D(2023, 3, 1)}),
        # 15 digits upgraded; sex and birth date from the id, not the recorded 男 / 1950-01-01; name simplified and unspaced
        ("silver.suspects", "S1", {"name": "张三", "id_number": "11010519491231002X", "is_id_upgraded": True, "sex": "F", "birth_date": D(1949, 12, 31),
                                   "police_case_id": "A1"}),
        # no id: the recorded sex and 年月日 birth date
        ("silver.suspects", "S3", {"id_number": None, "is_id_upgraded": False, "sex": "M", "birth_date": D(2001, 2, 3)}),
        # a valid id overrides an unreadable birth date and a wrong sex
        ("silver.suspects", "S6", {"id_number": ZS, "sex": "M", "birth_date": D(1990, 1, 1)}),
        # keyed review + id; 不起诉 → non_prosecution; 醉驾 → C133-1
        ("silver.prosecutions", f"JC1:{ZS}", {"review_id": "JC1", "decision": "non_prosecution", "charge_code": "C133-1", "received_on": D(2023, 3, 2),
                                              "decided_on": D(2023, 3, 20), "sex": "M", "birth_date": D(1990, 1, 1)}),
        # keyed review + name when there is no id; 故意伤害案 → C234
        ("silver.prosecutions", "JC2:李四", {"decision": "prosecute", "charge_code": "C234", "id_number": None}),
        # 〔〕 → （）; the June version wins over the May one delivered later
        ("silver.court_cases", FI, {"court_name": "newer", "court_code": "浙0102", "case_type": "刑初", "case_year": 2023, "is_legacy_number": False,
                                    "judged_on": D(2023, 5, 1), "charge_code": "C264", "review_id": "JC1"}),
        # [] → （）, the appealed number canonical too
        ("silver.court_cases", AP, {"trial_level": "appeal", "original_case_number": FI, "court_code": "浙01", "case_type": "刑终"}),
        # a JSON number of months read as int; the id's sex and birth date
        ("silver.court_defendants", f"{FI}#1", {"case_number": FI, "party_index": 1, "name": "张三", "id_number": "11010519491231002X", "sex": "F",
                                                "birth_date": D(1949, 12, 31), "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 10}),
        ("silver.court_defendants", f"{FI}#2", {"party_index": 2, "id_number": None, "sex": "F", "birth_date": D(1985, 5, 5), "sentence_type": "probation",
                                                "sentence_months": 12}),
        ("silver.custody", "K1", {"case_number": FI, "id_number": "11010519491231002X", "is_id_upgraded": True, "custody_type": "prison",
                                  "admitted_on": D(2023, 5, 20), "released_on": None}),
    ],
)
def test_valid_rows_come_out_canonical(built, target, key, expected):
    row = built(target).current[key]
    assert {k: row[k] for k in expected} == expected


ANY_KEY = object()  # a party of a case without a case number has no meaningful key of its own


@pytest.mark.parametrize(
    "target, key, rule, raw",
    [
        ("silver.police_cases", None, "case_id.missing", None),
        ("silver.police_cases", "A3", "region_code.unknown", "999999"),
        ("silver.police_cases", "A4", "charge.unknown", "外星入侵罪"),
        ("silver.police_cases", "A5", "filed_on.unparseable", "2023-13-01"),
        ("silver.police_transfers", "T2", "transferred_on.missing", None),
        ("silver.police_transfers", "T3", "transferred_on.unparseable", "yesterday"),
        ("silver.suspects", "S2", "id_number.invalid", BAD_CHECK),
        ("silver.suspects", "S4", "name.missing", "  "),
        ("silver.suspects", "S5", "birth_date.unparseable", "2001/2/30"),
        ("silver.prosecutions", "JC3:王五", "decision.unknown", "撤案"),
        ("silver.prosecutions", "JC4:赵六", "charge.unknown", "外星入侵罪"),
        ("silver.prosecutions", "JC5:钱七", "received_on.unparseable", "2023-02-30"),
        ("silver.court_cases", None, "case_number.unparseable", "2023浙0102刑初13号"),
        ("silver.court_cases", "（2023）浙0102刑初14号", "trial_level.unknown", "retrial"),
        ("silver.court_cases", "（2023）浙0102刑初15号", "judged_on.unparseable", "2023-02-29"),
        # the party of a rejected case is rejected with it, pointing at the case number
        ("silver.court_defendants", ANY_KEY, "court_case.rejected", "2023浙0102刑初13号"),
        ("silver.court_defendants", f"{AP}#1", "id_number.invalid", BAD_CHECK),
        ("silver.court_defendants", f"{AP}#2", "verdict.unknown", "maybe"),
        ("silver.court_defendants", f"{AP}#3", "sentence_months.invalid", "700"),
        ("silver.court_defendants", f"{AP}#4", "sentence_type.unknown", "caning"),
        ("silver.custody", "K2", "custody_type.unknown", "拘役所"),
        ("silver.custody", "K3", "released_on.before_admission", "2023-05-01"),
        ("silver.custody", "K4", "case_number.unparseable", "刑初12号"),
        ("silver.custody", None, "record_id.missing", None),
    ],
)
def test_each_rule_acts_as_its_contract_declares(built, target, key, rule, raw):
    """A reject_record rule keeps the record out; a null_field rule nulls the field, names it, and quarantines the value."""
    split = built(target)
    q = split.reject(rule, raw)
    if key is not ANY_KEY:
        assert q["record_key"] == key
    assert (q["source_table"], q["target_table"]) == (SOURCES[target], target)
    assert q["reason"]
    assert json.loads(q["record"])  # the raw record, for replay
    field, action = normalize.rule_actions(target)[rule]
    if action == "reject_record":
        assert q["scope"] == "record"
        assert key is None or key is ANY_KEY or key not in split.current
    else:
        assert q["scope"] == "field"
        row = split.current[key]  # the record reached silver
        assert field in row["invalid_fields"]
        if field in row:
            assert row[field] is None


def test_a_record_failing_several_field_rules_has_one_quarantine_row_per_field(spark):
    rows = [
        # P1: unknown region, unknown charge, impossible filing date: three values nulled, one record kept
        {"case_id": "P1", "region_code": "999999", "charge": "外星入侵罪", "filed_on": "2023-13-01"},
        {"case_id": "P2", "region_code": "330102", "charge": "盗窃", "filed_on": "2023-01-03"},  # clean: invalid_fields empty
    ]
    checked = normalize.build_police_cases(bronze(spark, "bronze.police_cases", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_cases", target_table="silver.police_cases")
    cur = {r["police_case_id"]: r for r in current.collect()}
    assert sorted(cur["P1"]["invalid_fields"]) == ["charge_code", "filed_on", "region_code"]
    assert (cur["P1"]["region_code"], cur["P1"]["charge_code"], cur["P1"]["filed_on"]) == (None, None, None)
    assert cur["P2"]["invalid_fields"] == []
    q = sorted((r["scope"], r["rule"], r["record_key"], r["raw_value"]) for r in rejected.collect())
    assert q == [("field", "charge.unknown", "P1", "外星入侵罪"), ("field", "filed_on.unparseable", "P1", "2023-13-01"), ("field", "region_code.unknown", "P1", "999999")]
    assert normalize.outcome_counts(checked) == normalize.Outcome(rows_in=2, rows_quarantined=0, rows_merged=0, fields_quarantined=3)
    metrics = {m["rule"]: m for m in normalize.rule_metrics(checked, normalize.police_case_rules())}
    assert (metrics["charge.unknown"]["applicable"], metrics["charge.unknown"]["rejected"]) == (2, 1)  # field rejections count in the pass rate


def test_every_rule_is_declared_in_its_contract():
    for target, rules in normalize.RULES.items():
        declared = normalize.rule_actions(target)
        assert [r.id for r in rules()] == list(declared), target
        for r in rules():
            assert r.on_failure in normalize.ON_FAILURE
            if r.on_failure == "null_field" and r.field in contracts.load(target).names:
                assert contracts.load(target).column(r.field).nullable, f"{target}.{r.field} is nulled by {r.id}: it must be nullable"


def test_an_undeclared_rule_fails_closed():
    rule = normalize.Rule("made_up.rule", "not in any contract", normalize.F.lit(False), normalize.F.lit(None))
    with pytest.raises(contracts.ContractError, match="made_up.rule"):
        normalize.declared("silver.suspects", [*normalize.suspect_rules(), rule])


@pytest.mark.parametrize(
    "target, n_in, n_current, n_rejected, n_superseded, n_fields",
    [
        ("silver.police_cases", 7, 5, 1, 1, 3),  # only the keyless case is rejected; A6's older update is merged, not lost
        ("silver.police_transfers", 3, 3, 0, 0, 2),  # T2, T3 go on without a transfer date
        ("silver.suspects", 6, 6, 0, 0, 3),  # S2's id, S4's name, S5's birth date nulled
        ("silver.prosecutions", 5, 5, 0, 0, 3),
        ("silver.court_cases", 6, 4, 1, 1, 2),  # the unparseable number is the one rejection
        ("silver.court_defendants", 8, 6, 1, 1, 4),  # 2 + 4 (AP) current, 1 (older FI) merged, 1 of the rejected case
        ("silver.custody", 5, 4, 1, 0, 3),
    ],
)
def test_every_row_lands_once(built, target, n_in, n_current, n_rejected, n_superseded, n_fields):
    split = built(target)
    counts = (len(split.current), len(split.scope("record")), len(split.superseded), len(split.scope("field")))
    assert counts == (n_current, n_rejected, n_superseded, n_fields)
    assert n_current + n_rejected + n_superseded == n_in


def test_late_arriving_older_update_is_superseded(built):
    (older,) = built("silver.police_cases").superseded
    assert (older["police_case_id"], older["status"]) == ("A6", "older")


def test_parties_of_a_superseded_case_version_are_superseded(built):
    (old_party,) = built("silver.court_defendants").superseded
    assert (old_party["defendant_id"], old_party["id_number"], old_party["sentence_months"]) == (f"{FI}#1", ZS, 12)
    (old_case,) = built("silver.court_cases").superseded
    assert old_case["court_name"] == "older"


def test_a_name_of_ideographic_spaces_is_missing(spark):
    checked = normalize.build_suspects(
        bronze(spark, "bronze.police_suspects", [{"suspect_id": "S9", "case_id": "A1", "name": "\u3000\u3000", "id_number": ZS}]),
        normalize.reference_tables(spark),
    )
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_suspects", target_table="silver.suspects")
    (row,) = current.collect()  # the valid identity number still places the person
    assert (row["name"], row["id_number"], row["invalid_fields"]) == (None, ZS, ["name"])
    assert [(r["scope"], r["rule"]) for r in rejected.collect()] == [("field", "name.missing")]


def test_a_key_rule_rejects_the_record_and_a_field_rule_does_not(spark):
    rows = [
        {"suspect_id": " ", "case_id": "A1", "name": "张三", "id_number": ZS},  # no suspect id: cannot be placed, rejected
        {"suspect_id": "S8", "case_id": "A1", "name": "张三", "id_number": BAD_CHECK},  # a mistyped id: the suspect stays, id null
    ]
    checked = normalize.build_suspects(bronze(spark, "bronze.police_suspects", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_suspects", target_table="silver.suspects")
    assert [(r["suspect_id"], r["name"], r["id_number"], r["invalid_fields"]) for r in current.collect()] == [("S8", "张三", None, ["id_number"])]
    assert sorted((r["scope"], r["rule"], r["raw_value"]) for r in rejected.collect()) == [("field", "id_number.invalid", BAD_CHECK), ("record", "suspect_id.missing", " ")]


def test_a_review_without_id_and_name_is_rejected(spark):
    rows = [
        # no valid id and no name: review id + person cannot be formed, rejected
        {"review_id": "JC9", "police_case_id": "A1", "suspect_name": " ", "id_number": BAD_CHECK, "received_on": "2023-03-02", "decision": "起诉", "charge": "盗窃"},
        # no name but a valid id: kept, keyed by the id
        {"review_id": "JC9", "police_case_id": "A1", "suspect_name": None, "id_number": ZS, "received_on": "2023-03-02", "decision": "起诉", "charge": "盗窃"},
    ]
    checked = normalize.build_prosecutions(bronze(spark, "bronze.procuratorate_reviews", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.procuratorate_reviews", target_table="silver.prosecutions")
    assert [(r["prosecution_id"], r["invalid_fields"]) for r in current.collect()] == [(f"JC9:{ZS}", ["name"])]
    assert sorted((r["scope"], r["rule"]) for r in rejected.collect()) == [("field", "name.missing"), ("record", "suspect.unidentified")]


def test_a_broken_update_wins_with_the_broken_field_nulled(spark):
    rows = [
        {"case_id": "A7", "region_code": "330102", "charge": "盗窃", "filed_on": "2023-01-03", "status": "valid", "updated_at": "2023-03-01 00:00:00"},
        # the later update, its filing date impossible: it is the current version, its filing date null and quarantined
        {"case_id": "A7", "region_code": "330102", "charge": "盗窃", "filed_on": "2023-01-33", "status": "broken", "updated_at": "2023-04-01 00:00:00"},
    ]
    checked = normalize.build_police_cases(bronze(spark, "bronze.police_cases", rows), normalize.reference_tables(spark))
    current, rejected, superseded = normalize.split(checked, source_table="bronze.police_cases", target_table="silver.police_cases")
    assert [(r["scope"], r["rule"]) for r in rejected.collect()] == [("field", "filed_on.unparseable")]
    assert [(r["status"], r["filed_on"], r["invalid_fields"]) for r in current.collect()] == [("broken", None, ["filed_on"])]
    assert [r["status"] for r in superseded.collect()] == ["valid"]


@pytest.mark.parametrize(
    "raw, level, region",
    [
        ("(2023)浙0102刑初12号", "basic", "330102"),  # basic court: the county of its code
        ("（2023）浙01刑终45号", "intermediate", "330100"),  # intermediate court: the prefecture
        ("（2023）浙71刑初3号", "special", None),  # 71–99: railway, maritime, IP… no GB/T 2260 region
        ("（2015）杭上刑初字第49号", None, None),  # legacy free-form abbreviation: not resolved
    ],
)
def test_court_level_and_region_come_from_the_court_code(spark, raw, level, region):
    rows = [{"case_number": raw, "trial_level": "first_instance", "charge": "盗窃罪", "parties": "[]", "updated_at": "2023-06-01 00:00:00"}]
    checked = normalize.build_court_cases(bronze(spark, "bronze.court_cases", rows), normalize.reference_tables(spark))
    current, _, _ = normalize.split(checked, source_table="bronze.court_cases", target_table="silver.court_cases")
    (row,) = current.collect()
    assert (row["court_level"], row["court_region_code"]) == (level, region)


CID = "A3301022023000001"  # A{330102}{2023}{000001}: the county code is in the id


@pytest.mark.parametrize(
    "row, region, source, invalid, quarantined",
    [
        # empty region: taken from the case id; nothing was rejected, so no quarantine row
        ({"case_id": CID, "region_code": " "}, "330102", "case_id", [], []),
        # an unknown region is rejected (its quarantine row) and replaced by the one in the case id
        ({"case_id": CID, "region_code": "999999"}, "330102", "case_id", ["region_code"], ["region_code.unknown"]),
        # a valid recorded region wins over the case id
        ({"case_id": CID, "region_code": "330105"}, "330105", "recorded", [], []),
        # the case id's code is no GB/T 2260 code: the region stays null, named missing
        ({"case_id": "A9999992023000001", "region_code": None}, None, None, ["region_code"], ["region_code.missing"]),
        # an id without the shape: nothing to derive
        ({"case_id": "X-1", "region_code": ""}, None, None, ["region_code"], ["region_code.missing"]),
    ],
)
def test_the_region_falls_back_to_the_police_case_id(spark, row, region, source, invalid, quarantined):
    rows = [{"charge": "盗窃", "filed_on": "2023-01-03", **row}]
    checked = normalize.build_police_cases(bronze(spark, "bronze.police_cases", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_cases", target_table="silver.police_cases")
    (out,) = current.collect()  # the case is never rejected for its region
    assert (out["region_code"], out["region_source"], out["invalid_fields"]) == (region, source, invalid)
    assert [r["rule"] for r in rejected.collect()] == quarantined


def test_an_empty_charge_or_review_id_keeps_the_case(spark):
    police = [{"case_id": CID, "region_code": "330102", "charge": "", "filed_on": "2023-01-03"}]  # empty charge: the case stays, charge null
    checked = normalize.build_police_cases(bronze(spark, "bronze.police_cases", police), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.police_cases", target_table="silver.police_cases")
    assert [(r["police_case_id"], r["charge_code"], r["invalid_fields"]) for r in current.collect()] == [(CID, None, ["charge_code"])]
    assert [(r["scope"], r["rule"]) for r in rejected.collect()] == [("field", "charge.missing")]
    court = [{"case_number": "（2023）浙0102刑初16号", "trial_level": "first_instance", "review_id": "  ", "charge": "盗窃", "parties": "[]"}]  # blank review id: null, no rule broken
    checked = normalize.build_court_cases(bronze(spark, "bronze.court_cases", court), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.court_cases", target_table="silver.court_cases")
    assert [(r["case_number"], r["review_id"], r["invalid_fields"]) for r in current.collect()] == [("（2023）浙0102刑初16号", None, [])]
    assert rejected.count() == 0


def test_a_review_keeps_its_first_receipt_and_counts_supplementary_rounds(spark):
    common = {"review_id": "JC7", "police_case_id": CID, "suspect_name": "张三", "id_number": ZS, "charge": "盗窃"}
    rows = [
        # returned twice for supplementary investigation, then prosecuted: three versions of one review × suspect
        {**common, "received_on": "2023-03-02", "decision": "退回补充侦查", "decided_on": "2023-03-20", "updated_at": "2023-03-20 10:00:00"},
        {**common, "received_on": "2023-04-10", "decision": "退回补充侦查", "decided_on": "2023-04-30", "updated_at": "2023-04-30 10:00:00"},
        {**common, "received_on": "2023-05-20", "decision": "起诉", "decided_on": "2023-06-10", "updated_at": "2023-06-10 10:00:00"},
        # one version, never returned: its own receipt, no rounds
        {"review_id": "JC8", "police_case_id": CID, "suspect_name": "李四", "received_on": "2023-03-05", "decision": "不起诉", "charge": "盗窃"},
    ]
    checked = normalize.build_prosecutions(bronze(spark, "bronze.procuratorate_reviews", rows), normalize.reference_tables(spark))
    current, _, superseded = normalize.split(checked, source_table="bronze.procuratorate_reviews", target_table="silver.prosecutions")
    got = {r["prosecution_id"]: (r["decision"], r["received_on"], r["first_received_on"], r["supplementary_rounds"]) for r in current.collect()}
    assert got == {
        f"JC7:{ZS}": ("prosecute", D(2023, 5, 20), D(2023, 3, 2), 2),
        "JC8:李四": ("non_prosecution", D(2023, 3, 5), D(2023, 3, 5), 0),
    }
    assert superseded.count() == 2  # the two returns are merged into the latest version


def test_an_empty_value_breaks_one_rule_not_two(spark):
    rows = [
        # an empty case number is missing, not also unparseable: one quarantine row, the record kept
        {"record_id": "K9", "case_number": " ", "name": "张三", "custody_type": "监狱", "admitted_on": "2023-05-20"},
    ]
    checked = normalize.build_custody(bronze(spark, "bronze.custody_records", rows), normalize.reference_tables(spark))
    current, rejected, _ = normalize.split(checked, source_table="bronze.custody_records", target_table="silver.custody")
    assert [(r["record_id"], r["case_number"], r["invalid_fields"]) for r in current.collect()] == [("K9", None, ["case_number"])]
    assert [(r["scope"], r["rule"]) for r in rejected.collect()] == [("field", "case_number.missing")]


def test_tally_counts_rejected_records_and_nulled_fields_apart(spark):
    rows = [
        {"suspect_id": None, "case_id": "A1", "name": "张三"},  # rejected: no key
        {"suspect_id": "S1", "case_id": "A1", "name": "张三", "id_number": BAD_CHECK, "birth_date": "2001/2/30"},  # two fields nulled
        {"suspect_id": "S2", "case_id": "A1", "name": "李四", "updated_at": "2023-01-01 00:00:00"},  # superseded by the next
        {"suspect_id": "S2", "case_id": "A1", "name": "李四", "updated_at": "2023-02-01 00:00:00"},
    ]
    checked = normalize.build_suspects(bronze(spark, "bronze.police_suspects", rows), normalize.reference_tables(spark))
    assert normalize.tally(checked) == {"rows_in": 4, "rows_quarantined": 1, "rows_merged": 1, "fields_quarantined": 2}
