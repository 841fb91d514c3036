"""The agencies' deliveries, written in each system's native form with defects injected.

One writer per source system (docs/sources.md): the police SQLite database, the
procuratorate's daily GBK CSV exports, the courts' daily JSON Lines dumps and
the monthly custody workbooks. Each writer derives its records from the true
``World``, draws defects through a ``DefectPlan`` and logs every record it
delivers to the ground truth (``_truth/records.csv``).

Record keys in the truth, per source:
- ``police.cases`` ``case_id``; ``police.suspects`` ``suspect_id``; ``police.transfers`` ``transfer_id``;
- ``procuratorate.reviews`` ``受案号|身份证号`` as delivered, ``受案号|姓名`` when the number is empty;
- ``courts.cases`` ``case_number`` as delivered; ``courts.parties`` ``case_number|party index`` (0-based);
- ``corrections.custody`` ``记录编号`` (the true one, also for the rows where it was left empty).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import sqlite3
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

from lawlake.demo.defects import DATE_STYLES, DefectPlan, PersonView, case_number_variant, format_date, join_defects, person_view
from lawlake.demo.identity import GBK_SAFE_DOTS, UNICODE_DOTS
from lawlake.demo.reference import Charge
from lawlake.demo.world import AS_OF, CourtCase, Party, PoliceCase, Review, Suspect, World, at_time

__all__ = ["Truth", "write_police", "write_procuratorate", "write_courts", "write_corrections", "REVIEW_HEADER", "CUSTODY_HEADER"]

REVIEW_HEADER = ("受案号", "公安案件编号", "犯罪嫌疑人姓名", "身份证号", "性别", "出生日期", "受理日期", "审查结论", "决定日期", "涉嫌罪名", "承办检察院", "更新时间",
                 "第一次退回补充侦查日期", "第一次重新移送日期", "第二次退回补充侦查日期", "第二次重新移送日期", "延长审查起诉批准日期", "重大复杂案件")
CUSTODY_HEADER = ("记录编号", "法院案号", "姓名", "身份证号", "执行机构", "执行类型", "入监日期", "出监日期", "更新时间")
TRUTH_HEADER = ("source", "record_key", "person_id", "police_case_id", "defects")

REDELIVERY_LAG_DAYS = (1, 3)  # a duplicate arrives in one of the next few daily files
POLICE_LATE_UPDATE_DAYS = (30, 365)
REVIEW_LATE_UPDATE_DAYS = (5, 60)
COURT_LATE_UPDATE_DAYS = (5, 90)
COURT_PUBLICATION_DAYS = (0, 3)  # judged_on → the dump that carries the case
TRUNCATED_SHARE = (0.3, 0.8)  # where a cut-off JSON line ends, as a share of its length
UNREADABLE_CELL = "##########"  # what Excel shows in a column too narrow for its date
# Workbook timestamps are pinned so that the same seed gives the same bytes.
PINNED_TIME = datetime(2025, 1, 1)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(sep=" ")


def _later(rng: random.Random, moment: datetime, days: tuple[int, int]) -> datetime:
    """A later office-hours moment, no later than AS_OF."""
    return at_time(rng, min(moment.date() + timedelta(days=rng.randint(*days)), AS_OF))


def _redelivery_day(rng: random.Random, day: date) -> date:
    return min(day + timedelta(days=rng.randint(*REDELIVERY_LAG_DAYS)), AS_OF)


def _charge_as_written(plan: DefectPlan, source: str, charge: Charge, defects: list[str]) -> str:
    if charge.variants and plan.draw("charge_variant", source):
        defects.append("charge_variant")
        return plan.rng.choice(charge.variants)
    return charge.name


# -- the ground truth log ------------------------------------------------------------


class Truth:
    """``_truth/records.csv``, written as records are delivered; counts per source and per kind."""

    def __init__(self, path: Path):
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(TRUTH_HEADER)
        self.records: Counter[str] = Counter()
        self.defects: Counter[str] = Counter()

    def add(self, source: str, key: str, person_id: str, case_id: str, defects: list[str]) -> None:
        cell = join_defects(defects)
        self._writer.writerow((source, key, person_id, case_id, cell))
        self.records[source] += 1
        if cell:
            self.defects.update(cell.split("|"))

    def close(self) -> None:
        self._file.close()


# -- police: a relational database ---------------------------------------------------

POLICE_DDL = (
    """CREATE TABLE cases (case_id TEXT PRIMARY KEY, region_code TEXT, charge TEXT, occurred_on TEXT, filed_on TEXT,
       detained_on TEXT, arrested_on TEXT, transferred_on TEXT, status TEXT, updated_at TEXT NOT NULL,
       is_roaming_serial_gang TEXT, detention_extension_on TEXT,
       custody_extension_156_on TEXT, custody_extension_158_on TEXT, custody_extension_159_on TEXT)""",
    """CREATE TABLE suspects (suspect_id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases (case_id),
       name TEXT, id_number TEXT, sex TEXT, birth_date TEXT, updated_at TEXT NOT NULL)""",
    """CREATE TABLE transfers (transfer_id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases (case_id),
       procuratorate TEXT, transferred_on TEXT, updated_at TEXT NOT NULL, transfer_channel TEXT)""",
    # the watermark column is what incremental readers filter on
    "CREATE INDEX cases_updated_at ON cases (updated_at)",
    "CREATE INDEX suspects_updated_at ON suspects (updated_at)",
    "CREATE INDEX transfers_updated_at ON transfers (updated_at)",
)


ONLINE_TRANSFER_SHARE = 0.99  # Zhejiang: over 99% of criminal cases are transferred online


def transfer_channel(transfer_key: str) -> str:
    """How a case file went to the next agency: ``online`` (≈99%) or ``paper``.

    Drawn from a hash of the transfer's key, not from a random stream, so adding the
    channel changed no other value the generator writes.
    """
    draw = int(hashlib.sha256(transfer_key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "online" if draw < ONLINE_TRANSFER_SHARE else "paper"


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _police_rows(world: World, plan: DefectPlan, truth: Truth) -> tuple[list[tuple], list[tuple], list[tuple]]:
    rng = plan.rng
    cases, suspects, transfers = [], [], []
    for case in world.cases:
        defects: list[str] = []
        row = {
            "case_id": case.case_id,
            "region_code": case.county.code,
            "charge": _charge_as_written(plan, "police.cases", case.charge, defects),
            "occurred_on": _iso(case.occurred_on),
            "filed_on": _iso(case.filed_on),
            "detained_on": _iso(case.detained_on),
            "arrested_on": _iso(case.arrested_on),
            "transferred_on": _iso(case.transferred_on),
            "status": case.status,
            "updated_at": _timestamp(case.updated_at),
            **_time_limit_columns(case),
        }
        missing = plan.missing_field("police.cases", ("charge", "region_code"))
        if missing:
            row[missing] = None
            defects.append("missing_field")
        # The row holds the latest state only; a late update shows as a later watermark.
        if case.updated_at.date() + timedelta(days=POLICE_LATE_UPDATE_DAYS[0]) <= AS_OF and plan.draw("late_update", "police.cases"):
            row["updated_at"] = _timestamp(_later(rng, case.updated_at, POLICE_LATE_UPDATE_DAYS))
            defects.append("late_update")
        cases.append(tuple(row.values()))
        truth.add("police.cases", case.case_id, "", case.case_id, defects)
        for suspect in case.suspects:
            view = person_view(plan, "police.suspects", suspect.person, minor=suspect.minor, attributes=True, dots=UNICODE_DOTS)
            srow = {
                "suspect_id": suspect.suspect_id,
                "case_id": case.case_id,
                "name": view.name,
                "id_number": view.id_number,
                "sex": view.sex,
                "birth_date": _iso(view.birth_date),
                "updated_at": _timestamp(at_time(rng, case.filed_on)),
            }
            missing = plan.missing_field("police.suspects", ("name", "sex", "birth_date"))
            if missing:
                srow[missing] = None
                view.defects.append("missing_field")
            suspects.append(tuple(srow.values()))
            truth.add("police.suspects", suspect.suspect_id, suspect.person.person_id, case.case_id, view.defects)
        if case.transfer_id:
            defects = []
            trow = {
                "transfer_id": case.transfer_id,
                "case_id": case.case_id,
                "procuratorate": case.county.procuratorate,
                "transferred_on": _iso(case.transferred_on),
                "updated_at": _timestamp(at_time(rng, case.transferred_on)),
            }
            missing = plan.missing_field("police.transfers", ("procuratorate", "transferred_on"))
            if missing:
                trow[missing] = None
                defects.append("missing_field")
            trow["transfer_channel"] = transfer_channel(case.transfer_id)
            transfers.append(tuple(trow.values()))
            truth.add("police.transfers", case.transfer_id, "", case.case_id, defects)
    return cases, suspects, transfers


def _time_limit_columns(case: PoliceCase) -> dict:
    """The case's time-limit facts as the police system records them: a 1/0 mark and approval dates (延长侦查羁押期限)."""
    f = case.facts
    return {
        "is_roaming_serial_gang": "1" if f.is_roaming_serial_gang else "0",
        "detention_extension_on": _iso(f.detention_extension_on),
        "custody_extension_156_on": _iso(f.custody_extension_156_on),
        "custody_extension_158_on": _iso(f.custody_extension_158_on),
        "custody_extension_159_on": _iso(f.custody_extension_159_on),
    }


def write_police(directory: Path, world: World, plan: DefectPlan, truth: Truth) -> int:
    """``police/police.db``; returns the number of files written."""
    directory.mkdir(parents=True)
    cases, suspects, transfers = _police_rows(world, plan, truth)
    conn = sqlite3.connect(directory / "police.db")
    try:
        with conn:  # one transaction: executemany of hundreds of thousands of rows stays fast
            for ddl in POLICE_DDL:
                conn.execute(ddl)
            conn.executemany(f"INSERT INTO cases VALUES ({', '.join(['?'] * 15)})", cases)
            conn.executemany("INSERT INTO suspects VALUES (?, ?, ?, ?, ?, ?, ?)", suspects)
            conn.executemany("INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?)", transfers)
    finally:
        conn.close()
    return 1


# -- shared by the file feeds: deliveries sorted into dated files -------------------


@dataclass(slots=True)
class Delivery:
    """One row or line in the file of ``day``; ``order`` sorts it within the file."""

    day: date
    order: tuple
    content: object


@dataclass
class Feed:
    """A source's deliveries, collected in any order and written out file by file."""

    deliveries: list[Delivery] = field(default_factory=list)

    def add(self, day: date, order: tuple, content: object) -> None:
        self.deliveries.append(Delivery(day, order, content))

    def by_day(self) -> list[tuple[date, list[object]]]:
        files: dict[date, list[object]] = {}
        for d in sorted(self.deliveries, key=lambda d: (d.day, d.order)):
            files.setdefault(d.day, []).append(d.content)
        return list(files.items())


# -- procuratorate: daily GBK CSV exports --------------------------------------------


@dataclass(slots=True)
class ReviewRecord:
    """One (review, suspect) record as the procuratorate holds it; its versions share all of this."""

    review_id: str
    police_case_id: str
    procuratorate: str
    person_id: str
    view: PersonView
    charge: str  # as written, maybe a variant spelling
    date_style: str | None
    missing: str | None  # the column left empty
    key: str

    def row(self, conclusion: str, received: date, decided: date, charge: str, updated: datetime, limits: dict[str, str]) -> tuple:
        values = {
            "受案号": self.review_id,
            "公安案件编号": self.police_case_id,
            "犯罪嫌疑人姓名": self.view.name,
            "身份证号": self.view.id_number or "",
            "性别": self.view.sex,
            "出生日期": format_date(self.view.birth_date, self.date_style),
            "受理日期": format_date(received, self.date_style),
            "审查结论": conclusion,
            "决定日期": format_date(decided, self.date_style),
            "涉嫌罪名": charge,
            "承办检察院": self.procuratorate,
            "更新时间": _timestamp(updated),
            **limits,
        }
        if self.missing:
            values[self.missing] = ""
        return tuple(values.values())


def _review_record(plan: DefectPlan, review: Review, suspect: Suspect) -> ReviewRecord:
    source = "procuratorate.reviews"
    view = person_view(plan, source, suspect.person, minor=suspect.minor, attributes=True, dots=GBK_SAFE_DOTS)
    charge = _charge_as_written(plan, source, review.case.charge, view.defects)
    style = plan.rng.choice(DATE_STYLES) if plan.draw("date_format", source) else None
    if style:
        view.defects.append("date_format")
    missing = plan.missing_field(source, ("公安案件编号", "审查结论", "决定日期"))
    if missing:
        view.defects.append("missing_field")
    key = f"{review.review_id}|{view.id_number or view.name}"
    return ReviewRecord(review.review_id, review.case.case_id, review.case.county.procuratorate, suspect.person.person_id, view, charge, style, missing, key)


def _review_versions(review: Review, decision: str) -> list[tuple[str, date, date, date]]:
    """(审查结论, 受理日期, 决定日期, the day the record changed) of each state the record went through: each return for
    supplementary investigation, a resubmission of a review still open (the record re-exported with its date), the decision."""
    versions = []
    receipt = review.received_on
    rounds = review.facts.rounds or ([(review.returned_on, review.rereceived_on)] if review.returned_on else [])
    for i, (returned, back) in enumerate(rounds):
        versions.append(("退回补充侦查", receipt, returned, returned))
        if back and i == len(rounds) - 1 and not review.decided_on:
            versions.append(("退回补充侦查", receipt, returned, back))
        receipt = back or receipt
    if review.decided_on:
        versions.append((decision, review.facts.latest_receipt(review.received_on), review.decided_on, review.decided_on))
    return versions


def _review_limit_columns(review: Review, known_on: date, style: str | None) -> dict[str, str]:
    """The review's time-limit facts as recorded by ``known_on``: each round's return and resubmission dates,
    the 延长审查起诉 approval (art. 172) and the 1/0 major-or-complex mark."""
    f = review.facts

    def on(day: date | None) -> str:
        return format_date(day, style) if day and day <= known_on else ""

    rounds = [*f.rounds, (None, None), (None, None)][:2]
    return {
        "第一次退回补充侦查日期": on(rounds[0][0]), "第一次重新移送日期": on(rounds[0][1]),
        "第二次退回补充侦查日期": on(rounds[1][0]), "第二次重新移送日期": on(rounds[1][1]),
        "延长审查起诉批准日期": on(f.review_extension_on), "重大复杂案件": "1" if f.is_major_complex else "0",
    }


def _deliver_review(plan: DefectPlan, truth: Truth, feed: Feed, record: ReviewRecord, row: tuple, updated: datetime, extra: list[str]) -> None:
    """A row in the export of the day it changed, and maybe again in a later one."""
    source = "procuratorate.reviews"
    day = updated.date()
    feed.add(day, (_timestamp(updated), record.key), row)
    truth.add(source, record.key, record.person_id, record.police_case_id, record.view.defects + extra)
    if day < AS_OF and plan.draw("duplicate_delivery", source):
        feed.add(_redelivery_day(plan.rng, day), (_timestamp(updated), record.key), row)
        truth.add(source, record.key, record.person_id, record.police_case_id, record.view.defects + extra + ["duplicate_delivery"])


def _review_records(world: World, charges: tuple[Charge, ...], plan: DefectPlan, truth: Truth, feed: Feed) -> None:
    rng = plan.rng
    for review in world.reviews:
        decisions = dict(review.decisions)
        for suspect in review.case.suspects:
            record = _review_record(plan, review, suspect)
            versions = _review_versions(review, decisions.get(suspect, ""))
            for i, (conclusion, received, decided, known) in enumerate(versions):
                limits = _review_limit_columns(review, known, record.date_style)
                updated = at_time(rng, known)
                final = i == len(versions) - 1 and review.decided_on is not None
                if final and decided + timedelta(days=REVIEW_LATE_UPDATE_DAYS[0]) <= AS_OF and plan.draw("late_update", "procuratorate.reviews"):
                    # first exported under a wrong charge, corrected later
                    wrong = rng.choice([c.name for c in charges if c is not review.case.charge])
                    _deliver_review(plan, truth, feed, record, record.row(conclusion, received, decided, wrong, updated, limits), updated, [])
                    updated = _later(rng, updated, REVIEW_LATE_UPDATE_DAYS)
                    _deliver_review(plan, truth, feed, record, record.row(conclusion, received, decided, record.charge, updated, limits), updated, ["late_update"])
                else:
                    _deliver_review(plan, truth, feed, record, record.row(conclusion, received, decided, record.charge, updated, limits), updated, [])


def write_procuratorate(directory: Path, world: World, charges: tuple[Charge, ...], plan: DefectPlan, truth: Truth) -> int:
    """``procuratorate/reviews_YYYYMMDD.csv``; returns the number of files written."""
    directory.mkdir(parents=True)
    feed = Feed()
    _review_records(world, charges, plan, truth, feed)
    files = feed.by_day()
    for day, rows in files:
        with (directory / f"reviews_{day:%Y%m%d}.csv").open("w", encoding="gbk", newline="") as f:
            writer = csv.writer(f)  # \r\n line ends, as the agency's Windows export writes them
            writer.writerow(REVIEW_HEADER)
            writer.writerows(rows)
    return len(files)


# -- courts: daily JSON Lines dumps ---------------------------------------------------


@dataclass(slots=True)
class CourtRecord:
    """One court case as the court API serves it; every line delivered for it shares these."""

    content: dict  # the JSON object but for updated_at
    number: str  # case_number as delivered: the record key
    police_case_id: str
    case_defects: list[str]
    party_defects: list[tuple[str, list[str]]]  # (person_id, defects) per party


def _court_number(plan: DefectPlan, case: CourtCase, defects: list[str]) -> str:
    if case.legacy:
        defects.append("legacy_case_number")
        return case.case_number
    if plan.draw("case_number_variant", "courts.cases"):
        defects.append("case_number_variant")
        return case_number_variant(plan.rng, case.year, case.court_code, case.type_code, case.sequence)
    return case.case_number


def _court_party(plan: DefectPlan, party: Party) -> tuple[dict, PersonView]:
    suspect = party.suspect
    view = person_view(plan, "courts.parties", suspect.person, minor=suspect.minor, attributes=True, dots=UNICODE_DOTS)
    entry = {
        "name": view.name,
        "id_number": view.id_number,
        "sex": view.sex,
        "birth_date": _iso(view.birth_date),
        "role": "defendant",
        "verdict": party.verdict,
        "sentence_type": party.sentence_type,
        "sentence_months": party.sentence_months,
    }
    # never both the name and the number: the party would be nobody
    missing = plan.missing_field("courts.parties", ("sex", "birth_date", "name") if view.id_number else ("sex", "birth_date"))
    if missing:
        entry[missing] = None
        view.defects.append("missing_field")
    return entry, view


def _court_record(plan: DefectPlan, case: CourtCase) -> CourtRecord:
    defects: list[str] = []
    number = _court_number(plan, case, defects)
    if case.original is not None and case.original.legacy:
        defects.append("legacy_case_number")
    police_case = case.review.case
    content = {
        "case_number": number,
        "court_name": case.court_name,
        "trial_level": case.level,
        "original_case_number": case.original.case_number if case.original else None,
        "review_id": case.review.review_id,
        "charge": _charge_as_written(plan, "courts.cases", police_case.charge, defects),
        "filed_on": _iso(case.filed_on),
        "judged_on": _iso(case.judged_on),
        "parties": [],
    }
    if case.level == "first_instance":  # the procuratorate's transfer of the indictment to the court
        content["transfer_channel"] = transfer_channel(case.review.review_id or police_case.case_id)
    missing = plan.missing_field("courts.cases", ("review_id", "charge", "filed_on"))
    if missing:
        content[missing] = None
        defects.append("missing_field")
    party_defects = []
    for party in case.parties:
        entry, view = _court_party(plan, party)
        content["parties"].append(entry)
        party_defects.append((party.suspect.person.person_id, view.defects))
    return CourtRecord(content, number, police_case.case_id, defects, party_defects)


def _log_court_line(truth: Truth, record: CourtRecord, extra: list[str]) -> None:
    truth.add("courts.cases", record.number, "", record.police_case_id, record.case_defects + extra)
    for i, (person_id, defects) in enumerate(record.party_defects):
        truth.add("courts.parties", f"{record.number}|{i}", person_id, record.police_case_id, defects + extra)


def _deliver_court_line(plan: DefectPlan, truth: Truth, feed: Feed, record: CourtRecord, content: dict, updated: datetime, extra: list[str]) -> None:
    """A line in the dump of the day it was updated; maybe cut off there, maybe delivered twice."""
    line = json.dumps({**content, "updated_at": _timestamp(updated)}, ensure_ascii=False)
    order = (False, _timestamp(updated), record.number)
    day = updated.date()
    if day < AS_OF and plan.draw("unreadable", "courts.cases"):
        # the dump was cut off inside this line; the next day's dump carries it whole
        cut = round(len(line) * plan.rng.uniform(*TRUNCATED_SHARE))
        feed.add(day, (True,), line[:cut])  # sorts last: the end of the file
        truth.add("courts.cases", record.number, "", record.police_case_id, record.case_defects + extra + ["unreadable"])
        day += timedelta(days=1)
    feed.add(day, order, line)
    _log_court_line(truth, record, extra)
    if day < AS_OF and plan.draw("duplicate_delivery", "courts.cases"):
        feed.add(_redelivery_day(plan.rng, day), order, line)
        _log_court_line(truth, record, extra + ["duplicate_delivery"])


def _with_error(rng: random.Random, content: dict) -> dict:
    """A copy of a court case with a wrong sentence length, or a wrong judgment date when no party has one."""
    wrong = {**content, "parties": [dict(p) for p in content["parties"]]}
    with_months = [i for i, p in enumerate(wrong["parties"]) if p["sentence_months"]]
    if with_months:
        party = wrong["parties"][rng.choice(with_months)]
        delta = rng.randint(1, 12)
        months = party["sentence_months"]
        party["sentence_months"] = months - delta if months - delta >= 1 and rng.random() < 0.5 else months + delta
    else:
        judged = date.fromisoformat(content["judged_on"])
        filed = date.fromisoformat(content["filed_on"]) if content["filed_on"] else judged - timedelta(days=15)
        wrong["judged_on"] = (judged - timedelta(days=rng.randint(1, max(1, (judged - filed).days)))).isoformat()
    return wrong


def _court_case_records(world: World, plan: DefectPlan, truth: Truth, feed: Feed) -> None:
    rng = plan.rng
    for case in world.court_cases:
        record = _court_record(plan, case)
        published = at_time(rng, min(case.judged_on + timedelta(days=rng.randint(*COURT_PUBLICATION_DAYS)), AS_OF))
        if published.date() + timedelta(days=COURT_LATE_UPDATE_DAYS[0]) <= AS_OF and plan.draw("late_update", "courts.cases"):
            # first published with an error, corrected in a later dump
            _deliver_court_line(plan, truth, feed, record, _with_error(rng, record.content), published, [])
            published = _later(rng, published, COURT_LATE_UPDATE_DAYS)
            _deliver_court_line(plan, truth, feed, record, record.content, published, ["late_update"])
        else:
            _deliver_court_line(plan, truth, feed, record, record.content, published, [])


def write_courts(directory: Path, world: World, plan: DefectPlan, truth: Truth) -> int:
    """``courts/court_cases_YYYYMMDD.jsonl``; returns the number of files written."""
    directory.mkdir(parents=True)
    feed = Feed()
    _court_case_records(world, plan, truth, feed)
    files = feed.by_day()
    for day, lines in files:
        with (directory / f"court_cases_{day:%Y%m%d}.jsonl").open("w", encoding="utf-8", newline="\n") as f:
            f.writelines(line + "\n" for line in lines)
    return len(files)


# -- corrections: monthly Excel workbooks --------------------------------------------


def _custody_records(world: World, plan: DefectPlan, truth: Truth) -> dict[str, list[list]]:
    """Rows per workbook month (YYYYMM of the admission)."""
    rng = plan.rng
    source = "corrections.custody"
    months: dict[str, list[list]] = {}
    for record in world.custody:
        case, suspect = record.court_case, record.party.suspect
        view = person_view(plan, source, suspect.person, minor=suspect.minor, attributes=False, dots=UNICODE_DOTS)
        defects = view.defects
        if case.legacy:
            number = case.case_number
            defects.append("legacy_case_number")
        elif plan.draw("case_number_variant", source):
            number = case_number_variant(rng, case.year, case.court_code, case.type_code, case.sequence)
            defects.append("case_number_variant")
        else:
            number = case.case_number
        admitted: object = record.admitted_on  # a date cell unless typed as text
        released: object = record.released_on
        if plan.draw("date_format", source):
            style = rng.choice(DATE_STYLES)
            admitted = format_date(record.admitted_on, style)
            released = format_date(record.released_on, style) if record.released_on else None
            defects.append("date_format")
        updated = at_time(rng, record.released_on or record.admitted_on)
        row = [record.record_id, number, view.name, view.id_number, record.agency, record.kind, admitted, released, _timestamp(updated)]
        missing = plan.missing_field(source, ("法院案号", "执行类型", "姓名"))
        if missing:
            row[CUSTODY_HEADER.index(missing)] = None
            defects.append("missing_field")
        if plan.draw("unreadable", source):
            if rng.random() < 0.5:
                row[0] = None  # the record id lost
            else:
                row[CUSTODY_HEADER.index("入监日期")] = UNREADABLE_CELL
            defects.append("unreadable")
        months.setdefault(f"{record.admitted_on:%Y%m}", []).append(row)
        truth.add(source, record.record_id, suspect.person.person_id, case.review.case.case_id, defects)
    return months


def _pin_zip_times(data: bytes) -> bytes:
    """The workbook zip re-packed with fixed entry times and a fixed modified property.

    openpyxl stamps both with the wall clock on save, which would make every run's
    bytes differ.
    """
    pinned = PINNED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + pinned.encode() + rb"\g<2>", content)
            entry = zipfile.ZipInfo(info.filename, date_time=PINNED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, content)
    return out.getvalue()


def _write_workbook(path: Path, rows: list[list]) -> None:
    wb = Workbook(write_only=True)
    wb.properties.created = PINNED_TIME
    wb.properties.creator = "lawlake demo"
    sheet = wb.create_sheet("records")
    sheet.append(CUSTODY_HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    path.write_bytes(_pin_zip_times(buffer.getvalue()))


def write_corrections(directory: Path, world: World, plan: DefectPlan, truth: Truth) -> int:
    """``corrections/custody_YYYYMM.xlsx``; returns the number of files written."""
    directory.mkdir(parents=True)
    months = _custody_records(world, plan, truth)
    for month in sorted(months):
        _write_workbook(directory / f"custody_{month}.xlsx", months[month])
    return len(months)
