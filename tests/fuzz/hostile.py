"""A small valid source tree for every format, seeded mutations of it, and the accounting every gather must satisfy."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from jobs import gather

AT = datetime(2026, 12, 1, tzinfo=UTC)
PARAMS = gather.GatherParams(data_date=date(2026, 12, 1))
SRC = {s.name: s for s in gather.SOURCES}
FORMATS = {"police": "police", "reviews": "procuratorate.reviews", "courts": "courts.cases", "custody": "corrections.custody"}
FOLDER = {"police": "police", "reviews": "procuratorate", "courts": "courts", "custody": "corrections"}
POLICE_TABLES = ("police.cases", "police.suspects", "police.transfers")
ROWS = 6  # records per file (and per police table)
REVIEW_HEADER = list(gather.REVIEW_HEADER)
CUSTODY_HEADER = list(gather.CUSTODY_HEADER)
NAMES = ["张三", "李四", "䶮𠮷", "阿卜杜·热合曼", "王五", "赵六"]  # rare GB18030 characters and a middle dot on purpose


def _review(f: int, i: int) -> list[str]:
    return [f"JC{f}{i:04d}", f"A{f}{i:04d}", NAMES[i % len(NAMES)], f"33010219900101{i:03d}X", "男", "1990/1/1", "2023年3月2日", "起诉",
            "2023-03-20", "盗窃罪", "杭州市上城区人民检察院", f"2023-03-2{f} 12:00:{i:02d}",
            "", "", "", "", "", "0"]


def _court(f: int, i: int) -> dict:
    return {"case_number": f"（2023）浙0102刑初{f}{i:03d}号", "court_name": "杭州市上城区人民法院", "trial_level": "first_instance",
            "original_case_number": None, "review_id": f"JC{f}{i:04d}", "charge": "盗窃罪", "filed_on": "2023-04-01", "judged_on": "2023-05-01",
            "parties": [{"name": NAMES[i % len(NAMES)], "role": "defendant", "sentence_months": i}], "updated_at": f"2023-05-0{f} 09:00:{i:02d}"}


def _custody(f: int, i: int) -> list:
    return [f"JY{f}{i:04d}", f"（2023）浙0102刑初{f}{i:03d}号", NAMES[i % len(NAMES)], f"33010219900101{i:03d}X", "浙江省第一监狱", "监狱",
            datetime(2023, 5, 1 + i), None if i % 2 else "2024.01.05", f"2023-05-2{f} 08:00:{i:02d}"]


def write_reviews(path: Path, rows: list[list[str]], *, encoding: str = "gbk") -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REVIEW_HEADER)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def write_workbook(path: Path, rows: list[list], *, title: str = "records") -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in [CUSTODY_HEADER] + rows:
        ws.append(r)
    wb.save(path)


def build_tree(root: Path) -> Path:
    """Two files per feed with :data:`ROWS` records each, and a police database with :data:`ROWS` rows a table."""
    for folder in FOLDER.values():
        (root / folder).mkdir(parents=True, exist_ok=True)
    for f in (1, 2):
        write_reviews(root / "procuratorate" / f"reviews_2023032{f}.csv", [_review(f, i) for i in range(ROWS)], encoding="gb18030")
        (root / "courts" / f"court_cases_2023050{f}.jsonl").write_text("".join(json.dumps(_court(f, i), ensure_ascii=False) + "\n" for i in range(ROWS)), encoding="utf-8")
        write_workbook(root / "corrections" / f"custody_20230{f}.xlsx", [_custody(f, i) for i in range(ROWS)])
    con = sqlite3.connect(root / "police" / "police.db")
    con.execute("CREATE TABLE cases (case_id TEXT PRIMARY KEY, region_code TEXT, charge TEXT, occurred_on TEXT, filed_on TEXT, detained_on TEXT, arrested_on TEXT, transferred_on TEXT, status TEXT, updated_at TEXT, "
                "is_roaming_serial_gang TEXT, detention_extension_on TEXT, custody_extension_156_on TEXT, custody_extension_158_on TEXT, custody_extension_159_on TEXT)")
    con.execute("CREATE TABLE suspects (suspect_id TEXT PRIMARY KEY, case_id TEXT, name TEXT, id_number TEXT, sex TEXT, birth_date TEXT, updated_at TEXT)")
    con.execute("CREATE TABLE transfers (transfer_id TEXT PRIMARY KEY, case_id TEXT, procuratorate TEXT, transferred_on TEXT, updated_at TEXT)")
    for i in range(ROWS):
        ts = f"2023-03-01 10:00:{i:02d}"
        con.execute("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (f"A{i:06d}", "330102", "盗窃", "2023-01-02", "2023-01-03", None, None, None, "立案", ts, "0", None, None, None, None))
        con.execute("INSERT INTO suspects VALUES (?,?,?,?,?,?,?)", (f"S{i:09d}", f"A{i:06d}", NAMES[i % len(NAMES)], f"33010219900101{i:03d}X", "男", "1990-01-01", ts))
        con.execute("INSERT INTO transfers VALUES (?,?,?,?,?)", (f"T{i:09d}", f"A{i:06d}", "杭州市上城区人民检察院", "2023-03-01", ts))
    con.commit()
    con.close()
    return root


def files_of(root: Path, fmt: str) -> list[Path]:
    if fmt == "police":
        return [root / "police" / "police.db"]
    return sorted(root.glob(SRC[FORMATS[fmt]].pattern))


def keys_of(path: Path, fmt: str) -> list[str]:
    """The record keys of a pristine file (what must be found again, in bronze or quarantine)."""
    if fmt == "reviews":
        return [r[0] for r in csv.reader(io.StringIO(path.read_bytes().decode("gb18030")))][1:]
    if fmt == "courts":
        return [json.loads(line)["case_number"] for line in path.read_text(encoding="utf-8").splitlines()]
    return []


# -- mutations ---------------------------------------------------------------------------

HOSTILE_BYTES = b'\r\n",\x00\xff\x80\\{}[]\xef\xbb\xbf'


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One seeded byte-level mutation: flip, set a hostile byte, insert, delete, truncate or duplicate a range."""
    if not data:
        return rng.randbytes(rng.randint(1, 8)), "fill"
    op = rng.choice(["flip", "set", "insert", "delete", "truncate", "duplicate"])
    pos = rng.randrange(len(data))
    b = bytearray(data)
    if op == "flip":
        b[pos] ^= rng.randrange(1, 256)
    elif op == "set":
        b[pos] = rng.choice(HOSTILE_BYTES)
    elif op == "insert":
        b[pos:pos] = rng.randbytes(rng.randint(1, 4))
    elif op == "delete":
        del b[pos : pos + rng.randint(1, 8)]
    elif op == "truncate":
        del b[pos:]
    else:
        a = rng.randrange(len(data))
        b[pos:pos] = data[a : a + rng.randint(1, 40)]
    return bytes(b), f"{op}@{pos}"


def mutate_file(rng: random.Random, path: Path, fmt: str) -> str:
    """Mutate ``path`` in place; workbooks half the time inside their zip (the sheet or shared-strings XML)."""
    data = path.read_bytes()
    if fmt == "custody" and rng.random() < 0.5:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = {n: z.read(n) for n in z.namelist()}
        target = rng.choice(sorted(n for n in members if n.startswith("xl/")))
        members[target], desc = mutate_bytes(rng, members[target])
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for n, content in members.items():
                z.writestr(n, content)
        path.write_bytes(out.getvalue())
        return f"{target}:{desc}"
    mutated, desc = mutate_bytes(rng, data)
    path.write_bytes(mutated)
    return desc


def _reviews_text(path: Path) -> str:
    return path.read_bytes().decode("gb18030")


NAMED: dict[str, list[tuple[str, object]]] = {
    "reviews": [
        ("utf8-bom", lambda p: p.write_bytes(b"\xef\xbb\xbf" + _reviews_text(p).encode("utf-8"))),
        ("utf8", lambda p: p.write_bytes(_reviews_text(p).encode("utf-8"))),
        ("crlf", lambda p: p.write_bytes(_reviews_text(p).replace("\n", "\r\n").encode("gb18030"))),
        ("cr-in-line", lambda p: p.write_bytes(_reviews_text(p).replace("李四", "李\r四", 1).encode("gb18030"))),
        ("quoted-newline", lambda p: p.write_bytes(_reviews_text(p).replace("李四", '"李\n四"', 1).encode("gb18030"))),
        ("field-over-128k", lambda p: p.write_bytes(_reviews_text(p).replace("李四", "长" * 70_000, 1).encode("gb18030"))),
        ("renamed-header", lambda p: p.write_bytes(_reviews_text(p).replace("更新时间", "修改时间").encode("gb18030"))),
        ("empty", lambda p: p.write_bytes(b"")),
        ("header-only", lambda p: p.write_bytes(_reviews_text(p).splitlines(True)[0].encode("gb18030"))),
        ("stray-quote", lambda p: p.write_bytes(_reviews_text(p).replace(",李四", ',"李四', 1).encode("gb18030"))),
    ],
    "courts": [
        ("deep", lambda p: p.write_bytes(p.read_bytes() + b'{"case_number": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")),
        ("wrong-types", lambda p: p.write_bytes(p.read_bytes() + b'{"case_number": 7, "court_name": {"a": 1}, "charge": true}\n')),
        ("bom", lambda p: p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())),
        ("truncated-line", lambda p: p.write_bytes(p.read_bytes()[:-40])),
        ("gbk", lambda p: p.write_bytes(p.read_text(encoding="utf-8").encode("gb18030"))),
        ("duplicate-key", lambda p: p.write_bytes(p.read_bytes() + b'{"case_number": "Q1", "case_number": "Q2"}\n')),
        ("huge-int", lambda p: p.write_bytes(p.read_bytes() + b'{"case_number": ' + b"9" * 5000 + b"}\n")),
    ],
    "custody": [
        ("not-xlsx", lambda p: p.write_bytes(b"this is not a workbook")),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:500])),
        ("renamed-sheet", lambda p: write_workbook(p, [_custody(1, i) for i in range(ROWS)], title="Sheet1")),
        ("unnamed-column", lambda p: write_workbook(p, [_custody(1, i) + ([None, "stray"] if i == 2 else []) for i in range(ROWS)])),
        ("empty-file", lambda p: p.write_bytes(b"")),
        ("far-cell", lambda p: _far_cell(p)),
    ],
    "police": [
        ("corrupt", lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4096)),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:4096])),
        ("not-a-database", lambda p: p.write_bytes(b"hello")),
        ("future-row", lambda p: _sql(p, "INSERT INTO cases (case_id, updated_at) VALUES ('A9', '9999-12-31 00:00:00')")),
        ("not-utf8", lambda p: _sql(p, "UPDATE suspects SET name = CAST(X'D5C5C8FD' AS TEXT) WHERE suspect_id = 'S000000001'")),
        ("missing-table", lambda p: _sql(p, "DROP TABLE transfers")),
    ],
}


def _far_cell(path: Path) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    wb["records"]["XFD1048576"] = "x"
    wb.save(path)


def _sql(path: Path, statement: str) -> None:
    con = sqlite3.connect(path)
    con.execute(statement)
    con.commit()
    con.close()


# -- gathering and accounting ---------------------------------------------------------------


@dataclass
class Outcome:
    source: str
    batch: gather.Batch
    manifest: list[dict]


def gather_format(root: Path, fmt: str) -> list[Outcome]:
    """Run the engine-free batch functions of one format on ``root`` (a first run: nothing published)."""
    if fmt == "police":
        return [Outcome(name, *gather.collect_police(SRC[name], root / "police" / "police.db", watermark=None, published=set(), rejected_before=set(),
                                                     params=PARAMS, run_id="fuzz", ingested_at=AT)[:1], [])
                for name in POLICE_TABLES]
    batch, manifest = gather.collect_files(SRC[FORMATS[fmt]], root, ingested={}, known_duplicates=set(), published=set(), run_id="fuzz", ingested_at=AT)
    return [Outcome(FORMATS[fmt], batch, manifest)]


def _sqlite_count(db: Path, table: str) -> int | None:
    """Rows of a police table counted by sqlite3 directly (None: sqlite cannot read it either)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            con.text_factory = bytes
            return sum(1 for _ in con.execute(f'SELECT * FROM "{table}"'))
        finally:
            con.close()
    except (sqlite3.Error, UnicodeDecodeError):  # a damaged column name is not even UTF-8
        return None


def _openpyxl_rows(path: Path) -> int | None:
    """Non-empty data rows of a workbook's only or ``records`` sheet as openpyxl sees them (None: it cannot read it)."""
    try:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb["records"] if "records" in wb.sheetnames else wb[wb.sheetnames[0]]
            rows = list(ws.iter_rows(values_only=True))[1:]
        finally:
            wb.close()
    except Exception:
        return None
    return sum(1 for r in rows if any(v is not None and not (isinstance(v, str) and not v.strip()) for v in r))


def assert_accounted(root: Path, fmt: str, outcomes: list[Outcome], *, mutated: Path | None, expected: dict[str, int], keys: dict[str, list[str]], label: str) -> None:
    """Exact accounting: every counted row is a bronze row or a quarantine row pointing at a delivered file (and line)."""
    for o in outcomes:
        b = o.batch
        assert b.rows_in == len(b.rows) + len(b.rejects), f"{label}: {o.source} does not balance"
        for r in b.rejects:
            assert r["rule"] in gather.RULES and r["scope"] == gather.RULES[r["rule"]], f"{label}: unnamed reject {r}"
            assert "unexpectedly" not in r["reason"], f"{label}: a reader failed: {r['reason']}"
            assert r["source_table"] == o.source and r["reason"]
        if fmt == "police":
            db = root / "police" / "police.db"
            table = SRC[o.source].sql_table
            file_rejects = [r for r in b.rejects if r["scope"] == "file"]
            count = _sqlite_count(db, table)
            if file_rejects:
                assert len(file_rejects) == 1 and not b.rows and len(b.rejects) == 1 and b.rows_in == 1, f"{label}: {o.source}"
                assert file_rejects[0]["raw_value"] == str(db)
            else:
                assert count is not None, f"{label}: {o.source} read what sqlite3 cannot"
                assert len(b.rows) + len(b.rejects) == count, f"{label}: {o.source}: {len(b.rows)} + {len(b.rejects)} != {count} rows in the table"
                assert all(r["_source_file"] == f"police.db:{table}" for r in b.rows)
                if mutated is None:
                    assert (len(b.rows), b.rejects) == (ROWS, []), f"{label}: {o.source}"
            continue
        counted = 0
        for path in files_of(root, fmt):
            p = str(path)
            file_rejects = [r for r in b.rejects if r["scope"] == "file" and r["raw_value"] == p]
            rec_rejects = [r for r in b.rejects if r["scope"] == "record" and r["reason"].startswith(f"{p} row ")]
            bronze = [r for r in b.rows if r["_source_file"] == p]
            counted += len(file_rejects) + len(rec_rejects) + len(bronze)
            if path != mutated:
                assert (len(bronze), rec_rejects, file_rejects) == (expected[p], [], []), f"{label}: untouched {path.name} changed"
                continue
            if file_rejects:
                assert len(file_rejects) == 1 and not bronze and not rec_rejects, f"{label}: a rejected file kept records"
                continue
            delivered = next(m["rows"] for m in o.manifest if m["path"] == p)
            assert delivered == len(bronze) + len(rec_rejects), f"{label}: manifest says {delivered}"
            numbers = [r["_row_number"] for r in bronze]
            assert len(set(numbers)) == len(numbers) and all(n >= 1 for n in numbers), f"{label}: row numbers {numbers}"
            data = path.read_bytes()
            if fmt in ("reviews", "courts"):
                assert all(n <= data.count(b"\n") + 1 for n in numbers), f"{label}: a row number past the last line"
            if fmt == "courts":  # independent count: JSON Lines has one record per non-blank line
                lines = [line for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip()]
                assert len(lines) == len(bronze) + len(rec_rejects), f"{label}: {len(lines)} lines delivered, {len(bronze)} + {len(rec_rejects)} accounted"
            if fmt == "custody":  # independent count: openpyxl, when it can read the workbook too
                other = _openpyxl_rows(path)
                if other:  # 0: openpyxl found no rows where calamine did (e.g. a damaged XML namespace it insists on)
                    assert other == len(bronze) + len(rec_rejects), f"{label}: openpyxl sees {other} rows, {len(bronze)} + {len(rec_rejects)} accounted"
            text = "\n".join([json.dumps(r, ensure_ascii=False, default=str) for r in bronze] + [(r["raw_value"] or "") + (r["record"] or "") for r in rec_rejects])
            # compared as bytes: a damaged line end can fuse with the key's first byte into one GB18030 character
            found = text.encode("gb18030", errors="ignore") + b"\0" + text.encode("utf-8", errors="ignore")
            for key in keys.get(p, []):
                for enc in ("gb18030", "utf-8"):
                    if key.encode(enc) in data:  # the key survived the mutation: it must be found again
                        assert key.encode(enc) in found, f"{label}: record {key} vanished"
                        break
        assert counted == b.rows_in, f"{label}: {b.rows_in} counted, {counted} point at a file"
