"""The simulated agencies' generator: determinism, native layouts, identity numbers, defect rates and the sealing truth.

The generated files are read back the way an outside reader would (sqlite3 and
SQLAlchemy, GBK text, json, openpyxl) and checked against the ground truth in
``_truth/``; nothing here imports the generator's internals except its rate table.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, inspect

from lawlake.demo import generate
from lawlake.demo.defects import DEFECT_KINDS, DEFECT_RATES

REVIEW_HEADER = ("受案号,公安案件编号,犯罪嫌疑人姓名,身份证号,性别,出生日期,受理日期,审查结论,决定日期,涉嫌罪名,承办检察院,更新时间,"
                 "第一次退回补充侦查日期,第一次重新移送日期,第二次退回补充侦查日期,第二次重新移送日期,延长审查起诉批准日期,重大复杂案件").split(",")
CUSTODY_HEADER = "记录编号,法院案号,姓名,身份证号,执行机构,执行类型,入监日期,出监日期,更新时间".split(",")
COURT_FIELDS = ["case_number", "court_name", "trial_level", "original_case_number", "review_id", "charge", "filed_on", "judged_on", "parties", "updated_at"]
POLICE_COLUMNS = {
    "cases": ["case_id", "region_code", "charge", "occurred_on", "filed_on", "detained_on", "arrested_on", "transferred_on", "status", "updated_at",
              "is_roaming_serial_gang", "detention_extension_on", "custody_extension_156_on", "custody_extension_158_on", "custody_extension_159_on"],
    "suspects": ["suspect_id", "case_id", "name", "id_number", "sex", "birth_date", "updated_at"],
    "transfers": ["transfer_id", "case_id", "procuratorate", "transferred_on", "updated_at", "transfer_channel"],
}
SEALABLE_SENTENCES = {"detention", "control", "probation", "fine_only"}


# -- fixtures and readers --------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """One scale-1 demo output shared by the read-back tests."""
    out = tmp_path_factory.mktemp("demo") / "sources"
    generate(out, scale=1, seed=7)
    return out


def _summary(root: Path) -> dict:
    return json.loads((root / "_truth" / "summary.json").read_text(encoding="utf-8"))


def _csv_rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def _truth(root: Path) -> list[dict[str, str]]:
    return _csv_rows(root / "_truth" / "records.csv")


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _review_rows(root: Path) -> list[dict[str, str]]:
    return [row for path in sorted((root / "procuratorate").glob("reviews_*.csv")) for row in _csv_rows(path, "gbk")]


def _court_lines(root: Path) -> tuple[list[dict], int]:
    """(parsed court cases, number of lines that are not JSON)."""
    cases, broken = [], 0
    for path in sorted((root / "courts").glob("court_cases_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError:
                broken += 1
    return cases, broken


def _custody_rows(root: Path) -> list[tuple]:
    rows = []
    for path in sorted((root / "corrections").glob("custody_*.xlsx")):
        wb = load_workbook(path, read_only=True)
        rows += list(wb["records"].iter_rows(values_only=True))[1:]
        wb.close()
    return rows


def _valid_id18(number: str) -> bool:
    """GB 11643-1999 check, written independently: the weights are 2^(17−i) mod 11."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(number[:17]))
    return "10X98765432"[total % 11] == number[17]


def _age(birth: date, day: date) -> int:
    """The legal age (SPC 法释〔2006〕1号 art. 2): reached on the day after the birthday."""
    eve = day - timedelta(days=1)
    return eve.year - birth.year - ((eve.month, eve.day) < (birth.month, birth.day))


# -- determinism and size -------------------------------------------------------------


def test_same_seed_and_scale_give_byte_identical_files(tmp_path):
    # Fractional scale on purpose: fast tests use it. The workbooks are zips whose
    # timestamps the generator pins, so even they must match byte for byte.
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(first, scale=0.2, seed=11)
    generate(second, scale=0.2, seed=11)
    generate(other, scale=0.2, seed=12)
    digests = _digests(first)
    assert any(name.endswith(".xlsx") for name in digests)
    assert digests == _digests(second)
    assert digests != _digests(other)


def test_size_is_linear_in_the_scale(tmp_path, demo):
    small = generate(tmp_path / "small", scale=0.2, seed=7)
    full = _summary(demo)
    assert full["population"]["police_cases"] == 2000
    assert 9_000 <= full["records_total"] <= 15_000
    assert 0.8 <= full["records_total"] / (5 * small["records_total"]) <= 1.2


# -- every layout file in its native form ---------------------------------------------


@pytest.mark.parametrize("table", sorted(POLICE_COLUMNS))
def test_police_tables_have_the_documented_columns(demo, table):
    # read through SQLAlchemy, as the gather stage does
    engine = create_engine(f"sqlite:///{demo / 'police' / 'police.db'}")
    try:
        assert [c["name"] for c in inspect(engine).get_columns(table)] == POLICE_COLUMNS[table]
    finally:
        engine.dispose()


def test_procuratorate_exports_are_gbk_with_the_chinese_header(demo):
    files = sorted((demo / "procuratorate").glob("reviews_*.csv"))
    assert files and all(re.fullmatch(r"reviews_\d{8}\.csv", p.name) for p in files)
    for path in files:
        text = path.read_bytes().decode("gbk")  # raises if any byte is not GBK
        assert next(csv.reader([text.splitlines()[0]])) == REVIEW_HEADER


def test_court_lines_parse_except_the_truncated_ones(demo):
    cases, broken = _court_lines(demo)
    unreadable = [r for r in _truth(demo) if r["source"] == "courts.cases" and "unreadable" in r["defects"].split("|")]
    assert broken == len(unreadable) > 0
    # first instances also carry the procuratorate → court transfer channel
    assert all([k for k in case if k != "transfer_channel"] == COURT_FIELDS for case in cases)
    assert all(("transfer_channel" in case) == (case["trial_level"] == "first_instance") for case in cases)


def test_custody_workbooks_have_the_records_sheet_and_header(demo):
    files = sorted((demo / "corrections").glob("custody_*.xlsx"))
    assert files and all(re.fullmatch(r"custody_\d{6}\.xlsx", p.name) for p in files)
    for path in files:
        wb = load_workbook(path, read_only=True)
        assert wb.sheetnames == ["records"]
        assert list(next(wb["records"].iter_rows(values_only=True))) == CUSTODY_HEADER
        wb.close()


def test_every_delivered_record_has_one_truth_row(demo):
    counts = {}
    with sqlite3.connect(demo / "police" / "police.db") as conn:
        for table in POLICE_COLUMNS:
            counts[f"police.{table}"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    cases, broken = _court_lines(demo)
    counts["procuratorate.reviews"] = len(_review_rows(demo))
    counts["courts.cases"] = len(cases) + broken
    counts["courts.parties"] = sum(len(c["parties"]) for c in cases)  # a truncated line's parties are not records
    counts["corrections.custody"] = len(_custody_rows(demo))
    for source, name in (("legal.appointments", "legal_aid_appointments"), ("legal.mediations", "mediation_records")):
        counts[source] = len((demo / "legal" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines())
    truth = {}
    for row in _truth(demo):
        truth[row["source"]] = truth.get(row["source"], 0) + 1
    assert truth == counts == _summary(demo)["records"]


# -- people ------------------------------------------------------------------------------


def test_every_true_identity_number_is_valid_and_matches_the_person(demo):
    persons = _csv_rows(demo / "_truth" / "persons.csv")
    assert len({p["id_number"] for p in persons}) == len(persons)
    for p in persons:
        assert _valid_id18(p["id_number"]), p
        assert p["id_number"][6:14] == p["birth_date"].replace("-", "")
        assert p["sex"] == ("男" if int(p["id_number"][16]) % 2 else "女")
        assert 2 <= len(p["name"]) <= 3 or "·" in p["name"]


def test_repeat_offenders_and_minors_are_present(demo):
    population = _summary(demo)["population"]
    assert 0.04 <= population["repeat_offenders"] / population["persons"] <= 0.12
    assert 0.03 <= population["minors_at_offense"] / population["suspects"] <= 0.09


def test_clean_first_instance_numbers_name_the_basic_court_of_the_case_county(demo):
    # the police case id embeds the county: "A" + region code + year + sequence
    clean = [r for r in _truth(demo) if r["source"] == "courts.cases" and not r["defects"] and "刑初" in r["record_key"]]
    assert clean
    for row in clean:
        match = re.fullmatch(r"（(\d{4})）浙(\d{4})刑初(\d+)号", row["record_key"])
        assert match and match.group(2) == row["police_case_id"][3:7], row


# -- defects --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DEFECT_RATES))
def test_injected_rate_is_within_half_of_the_configured_rate(demo, kind):
    # each kind is drawn per eligible record; at scale 1 every kind has enough candidates
    stats = _summary(demo)["injected"][kind]
    assert stats["eligible"] > 0 and stats["rate"] == DEFECT_RATES[kind]
    assert 0.5 * stats["rate"] <= stats["count"] / stats["eligible"] <= 1.5 * stats["rate"]


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_summary_defect_counts_match_the_truth_rows(demo, kind):
    rows = [r for r in _truth(demo) if kind in r["defects"].split("|")]
    assert _summary(demo)["defects"][kind] == len(rows) > 0


def test_truth_defects_are_known_kinds(demo):
    kinds = {k for r in _truth(demo) for k in r["defects"].split("|") if k}
    assert kinds <= set(DEFECT_KINDS)


@pytest.mark.parametrize(
    "kind",
    [
        "duplicate_delivery",  # the same record delivered again: its first delivery is there too
        "late_update",  # a later version: the earlier one was delivered under the same key (police: one row)
    ],
)
def test_repeated_deliveries_have_an_original(demo, kind):
    by_key: dict[tuple[str, str], list[list[str]]] = {}
    for r in _truth(demo):
        by_key.setdefault((r["source"], r["record_key"]), []).append(r["defects"].split("|"))
    affected = {key: versions for key, versions in by_key.items() if any(kind in v for v in versions)}
    assert affected
    for (source, _key), versions in affected.items():
        if source != "police.cases":
            assert any(kind not in v for v in versions)


def _legacy_15_of(number: str, person: dict) -> bool:
    return person["birth_date"] < "2000" and number == person["id_number"][:6] + person["id_number"][8:17]


def _one_digit_off(number: str, person: dict) -> bool:
    true = person["id_number"]
    return len(number) == 18 and sum(a != b for a, b in zip(number, true)) == 1 and not _valid_id18(number)


@pytest.mark.parametrize(
    "kind, looks_right",
    [
        ("id_legacy_15", _legacy_15_of),  # the 1989 form: 15 digits, only for people born before 2000
        ("id_mistyped", _one_digit_off),  # one digit changed, so the check character fails
        ("id_missing", lambda number, person: number is None),  # NULL in the police database
        ("", lambda number, person: number == person["id_number"]),  # a clean record carries the true number
    ],
    ids=["legacy_15", "mistyped", "missing", "clean"],
)
def test_police_identity_numbers_carry_their_defect(demo, kind, looks_right):
    persons = {p["person_id"]: p for p in _csv_rows(demo / "_truth" / "persons.csv")}
    with sqlite3.connect(demo / "police" / "police.db") as conn:
        numbers = dict(conn.execute("SELECT suspect_id, id_number FROM suspects"))
    id_kinds = {"id_legacy_15", "id_mistyped", "id_missing"}
    rows = [
        r for r in _truth(demo)
        if r["source"] == "police.suspects" and (kind in r["defects"].split("|") if kind else not id_kinds & set(r["defects"].split("|")))
    ]
    assert rows
    for row in rows:
        assert looks_right(numbers[row["record_key"]], persons[row["person_id"]]), row


# -- sealing truth --------------------------------------------------------------------


def _final_outcomes(root: Path) -> dict[tuple[str, str], dict]:
    """(person_id, police_case_id) → the last word on it in the sources: a review decision or a court party."""
    truth = {}
    for r in _truth(root):
        truth[(r["source"], r["record_key"])] = (r["person_id"], r["police_case_id"], r["defects"])
    outcomes: dict[tuple[str, str], dict] = {}
    latest: dict[str, dict] = {}
    for row in _review_rows(root):
        key = f"{row['受案号']}|{row['身份证号'] or row['犯罪嫌疑人姓名']}"
        if key not in latest or row["更新时间"] > latest[key]["更新时间"]:
            latest[key] = row
    for key, row in latest.items():
        person_id, case_id, defects = truth[("procuratorate.reviews", key)]
        outcomes[(person_id, case_id)] = {"decision": row["审查结论"], "defects": defects}
    cases, _ = _court_lines(root)
    newest: dict[str, dict] = {}
    for case in sorted(cases, key=lambda c: c["updated_at"]):
        newest[case["case_number"]] = case
    for level in ("first_instance", "appeal"):  # an appeal's judgment replaces the first instance's
        for number, case in newest.items():
            if case["trial_level"] != level:
                continue
            for i, party in enumerate(case["parties"]):
                person_id, case_id, defects = truth[("courts.parties", f"{number}|{i}")]
                outcomes[(person_id, case_id)] = {**party, "defects": defects}
    return outcomes


def _sealable(outcome: dict) -> bool:
    if outcome.get("decision") == "不起诉" or outcome.get("verdict") == "exempt":
        return True
    if outcome.get("verdict") != "guilty":
        return False
    kind = outcome["sentence_type"]
    return kind in SEALABLE_SENTENCES or (kind == "fixed_term" and outcome["sentence_months"] <= 60)


def _minor_at_offense(root: Path) -> set[tuple[str, str]]:
    births = {p["person_id"]: date.fromisoformat(p["birth_date"]) for p in _csv_rows(root / "_truth" / "persons.csv")}
    with sqlite3.connect(root / "police" / "police.db") as conn:
        occurred = {c: date.fromisoformat(o) for c, o in conn.execute("SELECT case_id, occurred_on FROM cases")}
    return {
        (r["person_id"], r["police_case_id"])
        for r in _truth(root)
        if r["source"] == "police.suspects" and _age(births[r["person_id"]], occurred[r["police_case_id"]]) < 18
    }


def test_sealed_pairs_are_exactly_the_minors_with_a_sealable_outcome(demo):
    sealed = {(r["person_id"], r["police_case_id"]) for r in _csv_rows(demo / "_truth" / "sealed.csv")}
    minors = _minor_at_offense(demo)
    outcomes = _final_outcomes(demo)
    expected = {pair for pair in minors if pair in outcomes and _sealable(outcomes[pair])}
    # a review row whose decision was left empty (missing_field) cannot show non-prosecution
    unreadable_decision = {pair for pair, o in outcomes.items() if o.get("decision") == "" and "missing_field" in o["defects"]}
    assert sealed and sealed <= minors
    assert expected <= sealed
    assert sealed - expected <= unreadable_decision


def test_minor_at_offense_marks_exactly_the_minors_records(demo):
    minors = _minor_at_offense(demo)
    for r in _truth(demo):
        if r["person_id"]:
            assert ("minor_at_offense" in r["defects"].split("|")) == ((r["person_id"], r["police_case_id"]) in minors), r


# -- the truth follows the law ---------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    import random

    from lawlake.demo.reference import load_reference
    from lawlake.demo.world import build_world

    return build_world(random.Random(7), load_reference(), 2000)


def test_legal_age_is_reached_the_day_after_the_birthday():
    from lawlake.demo.world import legal_age

    assert legal_age(date(2006, 5, 1), date(2024, 5, 1)) == 17  # on the 18th birthday: still 17, a minor
    assert legal_age(date(2006, 5, 1), date(2024, 5, 2)) == 18  # the day after: 18
    assert legal_age(date(2010, 5, 1), date(2024, 5, 1)) == 13  # on the 14th birthday: not yet responsible
    # a 29 February birthday has its anniversary on 1 March in a common year (calendar count): 18 from 2 March
    assert (legal_age(date(2008, 2, 29), date(2026, 3, 1)), legal_age(date(2008, 2, 29), date(2026, 3, 2))) == (17, 18)


def test_no_suspect_is_below_criminal_responsibility_for_the_charge(world):
    # Criminal Law art. 17: from 16 for every crime, at 14–15 only for the crimes of art. 17(2)
    from lawlake.demo.world import ART_17_2_CHARGES, legal_age

    ages = [(legal_age(s.person.birth_date, c.occurred_on), c.charge.code) for c in world.cases for s in c.suspects]
    assert min(age for age, _ in ages) >= 14
    young = [(age, code) for age, code in ages if age < 16]
    assert young, "the sample has 14–15-year-olds"
    assert {code for _, code in young} <= ART_17_2_CHARGES
    assert ART_17_2_CHARGES == {"C232", "C234", "C236", "C263", "C347", "C114A", "C114C", "C114D"}


def test_art_17_2_charges_are_in_the_charge_list():
    from lawlake.demo.reference import load_reference
    from lawlake.demo.world import ART_17_2_CHARGES

    names = {c.code: c.name for c in load_reference().charges}
    assert {names[c] for c in ART_17_2_CHARGES} == {
        "故意杀人罪", "故意伤害罪", "强奸罪", "抢劫罪", "走私、贩卖、运输、制造毒品罪", "放火罪", "爆炸罪", "投放危险物质罪",
    }


def test_an_offense_on_the_18th_birthday_is_a_minors(demo):
    births = {p["person_id"]: date.fromisoformat(p["birth_date"]) for p in _csv_rows(demo / "_truth" / "persons.csv")}
    with sqlite3.connect(demo / "police" / "police.db") as conn:
        occurred = {c: date.fromisoformat(o) for c, o in conn.execute("SELECT case_id, occurred_on FROM cases")}
    status = {(r["person_id"], r["police_case_id"]): r for r in _csv_rows(demo / "_truth" / "seal_status.csv")}
    on_birthday = [
        pair for pair in status
        if (occurred[pair[1]].year - births[pair[0]].year, occurred[pair[1]].month, occurred[pair[1]].day) == (18, births[pair[0]].month, births[pair[0]].day)
    ]
    assert on_birthday, "at least one offense falls on the 18th birthday"
    assert all(status[pair]["is_minor_at_offense"] == "true" for pair in on_birthday)
    assert all(status[pair]["seal_status"] in ("sealed", "not_sealed", "pending") for pair in on_birthday)


def test_seal_status_covers_every_suspect_and_agrees_with_sealed_csv(demo):
    rows = _csv_rows(demo / "_truth" / "seal_status.csv")
    pairs = [(r["person_id"], r["police_case_id"]) for r in rows]
    suspects = {(r["person_id"], r["police_case_id"]) for r in _truth(demo) if r["source"] == "police.suspects"}
    assert len(pairs) == len(set(pairs)) and set(pairs) == suspects  # one status per (person, case)
    assert {r["seal_status"] for r in rows} == {"sealed", "not_sealed", "pending"}
    sealed = {(r["person_id"], r["police_case_id"]) for r in _csv_rows(demo / "_truth" / "sealed.csv")}
    assert {(r["person_id"], r["police_case_id"]) for r in rows if r["seal_status"] == "sealed"} == sealed
    minors = _minor_at_offense(demo)
    assert {(r["person_id"], r["police_case_id"]) for r in rows if r["is_minor_at_offense"] == "true"} == minors
    # only minors are sealed or pending; adults are never withheld for sealing
    assert all(r["is_minor_at_offense"] == "true" for r in rows if r["seal_status"] != "not_sealed")


def test_pending_minors_have_no_outcome_in_the_deliveries(demo):
    rows = _csv_rows(demo / "_truth" / "seal_status.csv")
    pending = {(r["person_id"], r["police_case_id"]) for r in rows if r["seal_status"] == "pending"}
    assert pending, "at least one minor's case is still open"
    outcomes = _final_outcomes(demo)
    # no non-prosecution and no judgment was delivered for them (a later decision would settle it)
    settled = {pair for pair, o in outcomes.items() if o.get("decision") == "不起诉" or o.get("verdict")}
    assert not pending & settled


# -- the output directory -------------------------------------------------------------


def test_previous_output_is_replaced_cleanly(tmp_path):
    out = tmp_path / "demo"
    generate(out, scale=0.05, seed=1)
    stale = out / "courts" / "court_cases_29990101.jsonl"
    stale.write_text("{}\n", encoding="utf-8")
    summary = generate(out, scale=0.05, seed=2)
    assert not stale.exists()
    assert _summary(out) == summary and summary["seed"] == 2


def _someones_files(out: Path) -> None:
    (out / "notes.txt").write_text("mine", encoding="utf-8")


def _demo_output_plus_someones_file(out: Path) -> None:
    generate(out, scale=0.05, seed=1)
    _someones_files(out)


@pytest.mark.parametrize(
    "setup, message",
    [
        (_someones_files, "not a previous demo output"),  # no demo summary: never overwritten
        (_demo_output_plus_someones_file, "did not write"),  # a demo output, but the extra file is not ours to delete
    ],
    ids=["foreign-directory", "demo-output-with-foreign-file"],
)
def test_refuses_to_overwrite_what_it_did_not_write(tmp_path, setup, message):
    out = tmp_path / "demo"
    out.mkdir()
    setup(out)
    with pytest.raises(ValueError, match=message):
        generate(out, scale=0.05)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("scale", [0, -1], ids=["zero", "negative"])
def test_rejects_a_scale_that_is_not_positive(tmp_path, scale):
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path / "demo", scale=scale)


def test_time_limit_facts_give_every_limit_cases_over_near_and_within():
    from lawlake.demo.generator import world_of

    world = world_of(scale=1, seed=7)
    again = world_of(scale=1, seed=7)
    assert [c.facts for c in world.cases] == [c.facts for c in again.cases]  # deterministic for a seed
    detention = [(c.arrested_on - c.detained_on).days for c in world.cases if c.detained_on and c.arrested_on]
    assert min(detention) <= 10 and any(10 < d <= 14 for d in detention) and any(d > 37 for d in detention)  # within, near, over
    facts = [c.facts for c in world.cases]
    assert sum(f.is_roaming_serial_gang for f in facts) > 10 and sum(f.detention_extension_on is not None for f in facts) > 10
    for name in ("custody_extension_156_on", "custody_extension_158_on", "custody_extension_159_on"):
        assert sum(getattr(f, name) is not None for f in facts) > 3, name  # each article's approval occurs
    # some approvals came after the deadline they were meant to extend (they must not count)
    late = [c for c in world.cases if c.facts.custody_extension_156_on and c.facts.custody_extension_156_on > _months(c.arrested_on, 2)]
    assert late
    open_custody = [c for c in world.cases if c.arrested_on and not c.transferred_on and not c.withdrawn_on]
    assert open_custody  # stages still open at the snapshot


def _months(day, n):
    import calendar

    y, m = divmod(day.year * 12 + day.month - 1 + n, 12)
    last = calendar.monthrange(y, m + 1)[1]
    return date(y, m + 1, last if day.day == calendar.monthrange(day.year, day.month)[1] else min(day.day, last))


def test_review_facts_give_supplementary_rounds_and_review_extensions_and_the_export_carries_them(demo):
    from lawlake.demo.generator import world_of
    from lawlake.rules.dates import parse

    world = world_of(scale=1, seed=7)
    assert [r.facts for r in world.reviews] == [r.facts for r in world_of(scale=1, seed=7).reviews]  # deterministic for a seed
    rounds = [(r, k, ret, back) for r in world.reviews for k, (ret, back) in enumerate(r.facts.rounds, 1)]
    assert any(k == 2 for _, k, _, _ in rounds)  # second rounds occur (at most two: art. 175)
    assert all(len(r.facts.rounds) <= 2 for r in world.reviews)
    months = [(back - _months(ret, 1)).days for _, _, ret, back in rounds if back]
    assert any(m > 0 for m in months) and any(m <= 0 for m in months)  # rounds over and within the police's month
    for r, _k, ret, back in rounds:  # each round lies between the receipt and the decision
        assert r.received_on < ret and (back is None or ret < back) and (r.decided_on is None or back is None or back < r.decided_on)
    facts = [r.facts for r in world.reviews]
    assert sum(f.is_major_complex for f in facts) > 10 and sum(f.review_extension_on is not None for f in facts) > 10
    late = [r for r in world.reviews if r.facts.review_extension_on
            and r.facts.review_extension_on > _months(r.facts.latest_receipt(r.received_on), 1)]
    assert late  # approvals dated after the deadline (they must not count)
    # the final export row of a twice-returned, decided review carries both rounds and restarts at the last resubmission
    two = next(r for r in world.reviews if len(r.facts.rounds) == 2 and r.decided_on)
    rows = [row for row in _review_rows(demo) if row["受案号"] == two.review_id and row["审查结论"] in ("起诉", "不起诉")]
    assert rows
    row = max(rows, key=lambda x: x["更新时间"])
    (ret1, back1), (ret2, back2) = two.facts.rounds
    got = [parse(row[c]) for c in ("第一次退回补充侦查日期", "第一次重新移送日期", "第二次退回补充侦查日期", "第二次重新移送日期", "受理日期")]
    assert got == [ret1, back1, ret2, back2, back2]
    assert row["重大复杂案件"] == ("1" if two.facts.is_major_complex else "0")


def test_world_of_is_the_world_generate_writes(tmp_path):
    """bench/score_warnings judges against world_of: its time-limit facts must be the ones the police database holds."""
    import sqlite3

    from lawlake.demo.generator import generate, world_of

    generate(tmp_path / "demo", scale=0.05, seed=7)
    with sqlite3.connect(tmp_path / "demo" / "police" / "police.db") as db:
        written = {r[0]: (r[1] == "1", r[2]) for r in db.execute("SELECT case_id, is_roaming_serial_gang, custody_extension_156_on FROM cases")}
    world = world_of(scale=0.05, seed=7)
    true = {c.case_id: (c.facts.is_roaming_serial_gang, c.facts.custody_extension_156_on.isoformat() if c.facts.custody_extension_156_on else None)
            for c in world.cases}
    assert written and all(written[k] == v for k, v in true.items() if k in written)  # every written case carries the world's facts
    assert any(v[0] for v in true.values())  # the comparison covers marked cases
