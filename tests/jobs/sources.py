"""Tiny hand-written agency sources for job tests (a few records each, in their native formats)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime
from pathlib import Path

REVIEW_HEADER = ("受案号,公安案件编号,犯罪嫌疑人姓名,身份证号,性别,出生日期,受理日期,审查结论,决定日期,涉嫌罪名,承办检察院,更新时间,"
                 "第一次退回补充侦查日期,第一次重新移送日期,第二次退回补充侦查日期,第二次重新移送日期,延长审查起诉批准日期,重大复杂案件").split(",")
REVIEW_BASE_FIELDS = 12  # up to 更新时间; the time-limit columns (CPL arts. 172, 175) follow
CUSTODY_HEADER = "记录编号,法院案号,姓名,身份证号,执行机构,执行类型,入监日期,出监日期,更新时间".split(",")


def write_police(root: Path, cases: list[dict], suspects: list[dict], transfers: list[dict] = ()) -> None:
    (root / "police").mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(root / "police" / "police.db")
    con.execute("CREATE TABLE IF NOT EXISTS cases (case_id TEXT PRIMARY KEY, region_code TEXT, charge TEXT, occurred_on TEXT, filed_on TEXT, detained_on TEXT, arrested_on TEXT, transferred_on TEXT, status TEXT, updated_at TEXT, "
                "is_roaming_serial_gang TEXT, detention_extension_on TEXT, custody_extension_156_on TEXT, custody_extension_158_on TEXT, custody_extension_159_on TEXT)")
    con.execute("CREATE TABLE IF NOT EXISTS suspects (suspect_id TEXT PRIMARY KEY, case_id TEXT, name TEXT, id_number TEXT, sex TEXT, birth_date TEXT, updated_at TEXT)")
    con.execute("CREATE TABLE IF NOT EXISTS transfers (transfer_id TEXT PRIMARY KEY, case_id TEXT, procuratorate TEXT, transferred_on TEXT, updated_at TEXT)")
    for table, rows in (("cases", cases), ("suspects", suspects), ("transfers", transfers)):
        for r in rows:
            cols = ",".join(r)
            con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({','.join('?' * len(r))})", list(r.values()))
    con.commit()
    con.close()


def write_reviews(root: Path, day: str, rows: list[list[str]], *, extra_lines: list[bytes] = ()) -> Path:
    """A daily export; a row of only the first 12 columns (to 更新时间) gets empty time-limit columns."""
    (root / "procuratorate").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REVIEW_HEADER)
    w.writerows([r + [""] * (len(REVIEW_HEADER) - REVIEW_BASE_FIELDS) if len(r) == REVIEW_BASE_FIELDS else r for r in rows])
    path = root / "procuratorate" / f"reviews_{day}.csv"
    path.write_bytes(buf.getvalue().encode("gbk") + b"".join(extra_lines))
    return path


def write_courts(root: Path, day: str, cases: list[dict | str]) -> Path:
    (root / "courts").mkdir(parents=True, exist_ok=True)
    path = root / "courts" / f"court_cases_{day}.jsonl"
    lines = [c if isinstance(c, str) else json.dumps(c, ensure_ascii=False) for c in cases]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_custody(root: Path, month: str, rows: list[list]) -> Path:
    from openpyxl import Workbook

    (root / "corrections").mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "records"
    ws.append(CUSTODY_HEADER)
    for r in rows:
        ws.append(r)
    path = root / "corrections" / f"custody_{month}.xlsx"
    wb.save(path)
    return path


def small_sources(root: Path) -> Path:
    """One case through every agency, plus one bad record per file feed."""
    write_police(
        root,
        cases=[{"case_id": "A3301022023000001", "region_code": "330102", "charge": "盗窃", "occurred_on": "2023-01-02", "filed_on": "2023-01-03",
                "detained_on": "2023-01-03", "arrested_on": "2023-01-10", "transferred_on": "2023-03-01", "status": "移送审查起诉", "updated_at": "2023-03-01 10:00:00"}],
        suspects=[{"suspect_id": "S000000001", "case_id": "A3301022023000001", "name": "张三", "id_number": "11010519491231002X", "sex": "女",
                   "birth_date": "1949-12-31", "updated_at": "2023-01-03 09:00:00"}],
        transfers=[{"transfer_id": "T000000001", "case_id": "A3301022023000001", "procuratorate": "杭州市上城区人民检察院", "transferred_on": "2023-03-01", "updated_at": "2023-03-01 10:00:00"}],
    )
    review = ["JC3301002023000001", "A3301022023000001", "张三", "11010519491231002X", "女", "1949/12/31", "2023年3月2日", "起诉", "2023-03-20", "盗窃罪", "杭州市上城区人民检察院", "2023-03-20 12:00:00"]
    write_reviews(root, "20230320", [review], extra_lines=[b"JC1,only,three\n"])
    write_reviews(root, "20230321", [review])  # a duplicate delivery of the same row
    court = {"case_number": "(2023)浙0102刑初12号", "court_name": "杭州市上城区人民法院", "trial_level": "first_instance", "original_case_number": None,
             "review_id": "JC3301002023000001", "charge": "盗窃罪", "filed_on": "2023-04-01", "judged_on": "2023-05-01",
             "parties": [{"name": "张三", "id_number": "11010519491231002X", "sex": "女", "birth_date": "1949-12-31", "role": "defendant",
                          "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 10}], "updated_at": "2023-05-02 09:00:00"}
    write_courts(root, "20230502", [court, '{"case_number": "（2023）浙0102刑初13号", "court_na'])
    write_custody(root, "202305", [["JY2023050001", "（2023）浙0102刑初12号", "张三", "11010519491231002X", "浙江省第一监狱", "监狱", datetime(2023, 5, 20), None, "2023-05-20 08:00:00"]])
    return root
