"""gather: each agency's system, read in its native form, into bronze Delta tables.

Bronze keeps every source record unchanged (values as text, as delivered) and adds
lineage: source, file, row number, record hash, batch, ingested-at. It is
incremental and idempotent:

- the police database (SQLite, or PostgreSQL by URL) and the legal services API are
  read by watermark: rows with ``updated_at`` at or after the last published watermark
  minus a lookback overlap (:data:`WATERMARK_OVERLAP`, for rows committed late with an
  older timestamp), compared as parsed timestamps; police tables in keyset batches of
  (``updated_at``, key), API listings page by page with retries (:class:`Retry`). A re-read row whose record
  hash is already in bronze is our overlap, not a delivery: it is dropped without being
  counted. A timestamp after the run's data date is quarantined
  (``gather.updated_at_in_future``) and never moves the watermark;
- file feeds are read by manifest: a file whose path and SHA-256 were already ingested
  is skipped; the same SHA-256 under a new path is a ``gather.duplicate_file``;
- a record whose hash is already in bronze, or earlier in the same batch, is a
  duplicate delivery: quarantined with that reason, not appended again.

Nothing the agencies deliver stops the stage or disappears. Every reject lands in
quarantine at the finest grain that can be placed:

============================  ======  ==========================================================
rule                          scope   meaning
============================  ======  ==========================================================
gather.unreadable             record  the record cannot be read into fields: undecodable bytes,
                                      broken or too deeply nested JSON, a duplicate JSON key,
                                      the wrong number of CSV fields, a workbook value under a
                                      column without a header
gather.duplicate_delivery     record  identical to a record already in bronze or in this batch
gather.updated_at_in_future   record  a police row updated after the run's data date
gather.file_empty             file    an empty file: no header row
gather.file_unreadable        file    not readable as its format (corrupt, truncated or oversized workbook,
                                      unreadable header bytes, an I/O error)
gather.header_mismatch        file    a header (or police table's columns) that is not the documented one
gather.sheet_missing          file    a workbook without a ``records`` sheet and more than one sheet
gather.duplicate_file         file    the same bytes as a file already ingested, under another path
gather.source_missing         file    an agency folder or the police database is not there, or the legal services
                                      API is not configured
gather.source_unreadable      file    the police database (or one of its tables) cannot be read; an API listing
                                      that cannot be read to its last page (past the retries)
============================  ======  ==========================================================

Reconciliation of a file-level reject: the rejected file (or missing/unreadable source)
counts as **one** row in and **one** row quarantined for its bronze table, and none of
its records are counted (a file is read whole or not at all: records read before the
error are discarded with it). A source that is missing or unreadable still gets an empty
bronze candidate, so the stages downstream run on what exists. A file-level reject is
re-reported on every run for a missing or unreadable source (it is the state of this
run's input); a rejected file, like an ingested one, is recorded in the manifest, so a
re-run of the same sources adds nothing — deliver a corrected file (new bytes) to have it
read. A record already quarantined as unreadable or in the future that the watermark
makes us read again is not quarantined again.

Field-level rejects (``scope='field'``) are not used at gather: bronze keeps records as
delivered, so a bad value rejects its record here and normalize judges fields.

Reading, parsing and hashing records is Python, one core per process: the file feeds and
police tables are collected side by side in spawned worker processes
(``LAWLAKE_GATHER_WORKERS``, default one per core; 0: in the run's process), all started
before the first table is built (:func:`start_gather`), their batches returned as Arrow
(Parquet when large) and the workers stopped with the stage (:func:`stop_workers`).
"""

from __future__ import annotations

import atexit
import csv
import functools
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import sleep as _sleep
from typing import TYPE_CHECKING
from urllib.parse import quote

from lawlake import contracts, engine
from lawlake.declarations import Built, Params, Stage, Table
from lawlake.fileio import decode_text, printable, sha256_file, undecodable_bytes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "SOURCES",
    "first_delivery_metrics",
    "RULES",
    "SourceFormatError",
    "Record",
    "Unreadable",
    "GatherParams",
    "read_police_table",
    "read_reviews_csv",
    "read_court_jsonl",
    "read_custody_xlsx",
    "parse_reviews_csv",
    "parse_court_jsonl",
    "parse_custody_rows",
    "parse_timestamp",
    "record_hash",
    "collect_police",
    "collect_files",
    "collect_api",
    "read_api",
    "Retry",
    "ApiError",
    "gather_source",
    "STAGE",
]

log = logging.getLogger("lawlake")

RULES = {
    "gather.unreadable": "record",
    "gather.duplicate_delivery": "record",
    "gather.updated_at_in_future": "record",
    "gather.file_empty": "file",
    "gather.file_unreadable": "file",
    "gather.header_mismatch": "file",
    "gather.sheet_missing": "file",
    "gather.duplicate_file": "file",
    "gather.source_missing": "file",
    "gather.source_unreadable": "file",
}

REVIEW_HEADER = {
    "受案号": "review_id",
    "公安案件编号": "police_case_id",
    "犯罪嫌疑人姓名": "suspect_name",
    "身份证号": "id_number",
    "性别": "sex",
    "出生日期": "birth_date",
    "受理日期": "received_on",
    "审查结论": "decision",
    "决定日期": "decided_on",
    "涉嫌罪名": "charge",
    "承办检察院": "procuratorate",
    "更新时间": "updated_at",
    "第一次退回补充侦查日期": "returned_on_1",
    "第一次重新移送日期": "resubmitted_on_1",
    "第二次退回补充侦查日期": "returned_on_2",
    "第二次重新移送日期": "resubmitted_on_2",
    "延长审查起诉批准日期": "review_extension_on",
    "重大复杂案件": "is_major_complex",
}
CUSTODY_HEADER = {
    "记录编号": "record_id",
    "法院案号": "case_number",
    "姓名": "name",
    "身份证号": "id_number",
    "执行机构": "institution",
    "执行类型": "custody_type",
    "入监日期": "admitted_on",
    "出监日期": "released_on",
    "更新时间": "updated_at",
}
COURT_FIELDS = ("case_number", "court_name", "trial_level", "original_case_number", "review_id", "charge", "filed_on", "judged_on", "parties", "updated_at")
REVIEW_ENCODINGS = ("gb18030", "utf-8")  # promised GBK; GB18030 is its superset and reads GBK byte for byte
RAW_LIMIT = 100_000  # characters of a rejected record's raw text kept in quarantine
POLICE_BATCH_ROWS = 50_000  # rows per keyset query of a police table
WATERMARK_OVERLAP = timedelta(hours=1)  # re-read window below the watermark: rows committed late with an older updated_at
_CANONICAL_TS = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"  # SQLite GLOB


class SourceFormatError(ValueError):
    """A whole file (or source) that cannot be read as documented; ``rule`` names why. Gather rejects the file and goes on."""

    def __init__(self, message: str, *, rule: str = "gather.header_mismatch"):
        super().__init__(message)
        self.rule = rule


@dataclass
class Record:
    """One source record: its fields as text, where it came from, and its key."""

    fields: dict[str, str | None]
    file: str
    row_number: int
    key: str | None


@dataclass
class Unreadable:
    """A record that could not be read into fields: where it is (row, and physical line if it differs) and why."""

    file: str
    row_number: int
    reason: str
    raw: str
    line: int | None = None
    fields: dict | None = None  # what could be read, for inspection (police rows with undecodable bytes)


@dataclass(frozen=True)
class GatherParams:
    """The run's parameters: its data date (later timestamps are in the future) and the watermark overlap window."""

    data_date: date
    overlap: timedelta = WATERMARK_OVERLAP


@dataclass(frozen=True)
class Source:
    name: str  # feed name, e.g. "courts.cases"
    table: str  # bronze table
    kind: str  # "sql", "files" or "api"
    pattern: str = ""  # glob under the sources folder, for files
    sql_table: str = ""  # table in the police database, for sql
    key_fields: tuple = ()  # see _key
    path: str = ""  # listing path of the legal services API, for api

    @property
    def folder(self) -> str:
        return {"files": self.pattern.split("/", 1)[0], "sql": "police", "api": "legal"}[self.kind]


SOURCES = (
    Source("police.cases", "bronze.police_cases", "sql", sql_table="cases", key_fields=("case_id",)),
    Source("police.suspects", "bronze.police_suspects", "sql", sql_table="suspects", key_fields=("suspect_id",)),
    Source("police.transfers", "bronze.police_transfers", "sql", sql_table="transfers", key_fields=("transfer_id",)),
    Source("procuratorate.reviews", "bronze.procuratorate_reviews", "files", "procuratorate/reviews_*.csv", key_fields=("review_id", ("id_number", "suspect_name"))),
    Source("courts.cases", "bronze.court_cases", "files", "courts/court_cases_*.jsonl", key_fields=("case_number",)),
    Source("corrections.custody", "bronze.custody_records", "files", "corrections/custody_*.xlsx", key_fields=("record_id",)),
    Source("legal.appointments", "bronze.legal_aid_appointments", "api", key_fields=("appointment_id",), path="/v1/legal-aid/appointments"),
    Source("legal.mediations", "bronze.mediation_records", "api", key_fields=("mediation_id",), path="/v1/mediations"),
)


# -- values ----------------------------------------------------------------------------


def _text(value) -> str | None:
    """A source value as text, the way the source shows it (Excel dates as ISO dates)."""
    if value is None or type(value) is str:  # most values: text already
        return value
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_text(value) -> str | None:
    """A JSON value as text: strings as they are, anything else as its JSON (never a Python repr)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _key(fields: dict, key_fields: tuple) -> str | None:
    """The record's source key: key fields joined by '|'; a tuple inside means "the first non-empty of"."""
    parts = []
    for k in key_fields:
        names = k if isinstance(k, tuple) else (k,)
        parts.append(next((fields[n] for n in names if fields.get(n)), ""))
    return "|".join(parts) if any(parts) else None


def parse_timestamp(value: str | None) -> datetime | None:
    """An ``updated_at`` as a naive UTC timestamp (ISO date or date-time, any offset); None if it is not one."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _watermark_text(ts: datetime) -> str:
    return ts.isoformat(sep=" ")


def _column_name(index: int) -> str:
    """Spreadsheet column letters of a 1-based column number (1 → A, 27 → AA)."""
    name = ""
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


# -- readers: one per native format --------------------------------------------------


def read_police_table(
    url: str, table: str, *, since: str | None = None, key_fields: tuple[str, ...] = (), label: str | None = None, after: str | None = None,
    batch_size: int | None = None,
) -> Iterator[Record | Unreadable]:
    """Rows of a police database table updated at or after ``since`` (or whose ``updated_at`` is not canonical), oldest first.

    ``since`` is a canonical ``YYYY-MM-DD HH:MM:SS`` text; rows whose ``updated_at`` is
    NULL or in another form are always read (the caller compares parsed values and drops
    what bronze already holds). Text that is not UTF-8 makes its row unreadable rather
    than failing the query. ``after`` is the old name of ``since``. Database errors
    propagate: the caller rejects the whole table.

    ``batch_size`` reads the canonical rows in batches by keyset on (``updated_at``, the
    first key field), not by offset: many rows with one ``updated_at`` across a batch
    boundary are each read once, and a row committed meanwhile is not skipped.
    """
    from sqlalchemy import create_engine, event, text

    since = since if since is not None else after
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # Undecodable TEXT would abort the whole query inside sqlite3: fetch bytes, decode per value.
        event.listen(engine, "connect", lambda dbapi_conn, _record: setattr(dbapi_conn, "text_factory", bytes))
    file = label or f"{url.rsplit('/', 1)[-1].split('?', 1)[0]}:{table}"
    try:
        with engine.connect() as conn:
            if since is None:
                query, params = f'SELECT * FROM "{table}" ORDER BY updated_at, 1', {}
            else:
                canonical = "updated_at GLOB :pattern" if engine.dialect.name == "sqlite" else "updated_at LIKE '____-__-__ __:__:__'"
                query = f'SELECT * FROM "{table}" WHERE updated_at >= :since OR updated_at IS NULL OR NOT ({canonical}) ORDER BY updated_at, 1'
                params = {"since": since, "pattern": _CANONICAL_TS} if engine.dialect.name == "sqlite" else {"since": since}
            rows: Iterator[Sequence]
            if batch_size is None:
                result = conn.execute(text(query), params)
                columns, rows = list(result.keys()), _fetched(result)
            else:
                columns, rows = _keyset_rows(conn, table, engine.dialect.name, since=since, key=key_fields[0] if key_fields else "", batch_size=batch_size)
            for i, row in enumerate(rows, start=1):
                fields: dict[str, str | None] = {}
                bad = []
                for k, v in zip(columns, row, strict=True):  # rows as tuples: a mapping per row costs more than reading it
                    if isinstance(v, (bytes, bytearray, memoryview)):
                        b = bytes(v)
                        try:
                            v = b.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            bad.append(f"{k} (byte {b[exc.start]:#04x} at {exc.start})")
                            v = b.decode("utf-8", errors="backslashreplace")
                        fields[k] = v
                    else:
                        fields[k] = _text(v)
                if bad:
                    yield Unreadable(file, i, f"not UTF-8 text in {', '.join(bad)}", json.dumps(fields, ensure_ascii=False), fields=fields)
                    continue
                yield Record(fields, file, i, _key(fields, key_fields))
    finally:
        engine.dispose()


def _fetched(result, size: int = 10_000) -> Iterator[Sequence]:
    """A result's rows as the driver returns them (tuples), in batches: SQLAlchemy's Row per row costs more than reading it."""
    cursor = result.cursor
    try:
        while batch := cursor.fetchmany(size):
            yield from batch
    finally:
        result.close()


def _keyset_rows(conn, table: str, dialect: str, *, since: str | None, key: str, batch_size: int) -> tuple[list[str], Iterator[Sequence]]:
    """The table's columns, and its rows as tuples: the irregular ones (``updated_at`` NULL or not canonical) in one
    query, then the canonical ones batch by batch."""
    from sqlalchemy import text

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ValueError(f"a keyset read needs a key column name, got {key!r}")
    canonical = "updated_at GLOB :pattern" if dialect == "sqlite" else "updated_at LIKE '____-__-__ __:__:__'"
    pattern = {"pattern": _CANONICAL_TS} if dialect == "sqlite" else {}
    # SQLite would walk the key's index to return the (usually no) irregular rows in key order, fetching every row by
    # it (0.32 s for 200k police cases, where a scan and a sort of what matches take 0.06 s): "+key" orders by the same
    # values and collation without the index.
    order = f'+"{key}"' if dialect == "sqlite" else f'"{key}"'
    irregular = conn.execute(text(f'SELECT * FROM "{table}" WHERE updated_at IS NULL OR NOT ({canonical}) ORDER BY {order}'), pattern)
    columns = list(irregular.keys())
    at, by = columns.index("updated_at"), columns.index(key)

    def rows() -> Iterator[Sequence]:
        yield from _fetched(irregular)
        cursor: tuple[str, str] | None = None
        while True:
            where = [canonical] + (["updated_at >= :since"] if since else [])
            if cursor is not None:
                where.append(f'(updated_at > :ts OR (updated_at = :ts AND "{key}" > :k))')
            params = {**pattern, "since": since, "n": batch_size, **({"ts": cursor[0], "k": cursor[1]} if cursor else {})}
            result = conn.execute(text(f'SELECT * FROM "{table}" WHERE {" AND ".join(where)} ORDER BY updated_at, "{key}" LIMIT :n'), params)
            try:  # the driver's tuples: SQLAlchemy's Row per row costs more than reading it
                batch = result.cursor.fetchall()
            finally:
                result.close()
            yield from batch
            if len(batch) < batch_size:
                return
            last = batch[-1]
            cursor = (_decoded(last[at]), _decoded(last[by]))

    return columns, rows()


def _decoded(value) -> str:
    return bytes(value).decode("utf-8") if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


def read_reviews_csv(path: Path, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Rows of a procuratorate export: see :func:`parse_reviews_csv`."""
    yield from parse_reviews_csv(path.read_bytes(), str(path), key_fields=key_fields)


def parse_reviews_csv(data: bytes, file: str, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Records of a procuratorate export: GBK text (GB18030, UTF-8 and a BOM read too), Chinese header, one review × suspect a row.

    The bytes are parsed as CSV, not line by line: a quoted field may hold a comma, a
    newline or a carriage return; CRLF and LF line ends both work. A record with
    undecodable bytes or the wrong number of fields is :class:`Unreadable`; a file with
    no header or another header raises :class:`SourceFormatError`. ``row_number`` is the
    record's first line minus the header line.
    """
    decoded = decode_text(data, REVIEW_ENCODINGS)
    if not decoded.text.strip():
        raise SourceFormatError(f"{file}: empty file, no header row", rule="gather.file_empty")
    lines = list(io.StringIO(decoded.text, newline=""))
    if csv.field_size_limit() < len(decoded.text):
        csv.field_size_limit(len(decoded.text) + 1)  # a field may be as long as the file
    reader = csv.reader(iter(lines))
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise SourceFormatError(f"{file}: header row is not CSV ({exc})", rule="gather.file_unreadable") from exc
    if undecodable_bytes("".join(header)):
        raise SourceFormatError(
            f"{file}: header has bytes {undecodable_bytes(''.join(header)).hex(' ')} that are not {decoded.encoding} text", rule="gather.file_unreadable"
        )
    if header != list(REVIEW_HEADER):
        raise SourceFormatError(f"{file}: header {header} is not the documented {list(REVIEW_HEADER)}")
    names = list(REVIEW_HEADER.values())
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = max(reader.line_num, start)
            raw = "".join(lines[start - 1 : end])
            yield Unreadable(file, start - 1, f"not CSV: {exc}", printable(raw, decoded.encoding), line=start)
            start = end + 1
            continue
        first, start = start, reader.line_num + 1
        if not values or (len(values) == 1 and not values[0].strip()):
            continue  # a blank line is not a record
        raw = "".join(lines[first - 1 : reader.line_num]).rstrip("\r\n")
        bad = undecodable_bytes(raw) if decoded.undecodable else b""
        if bad:
            yield Unreadable(file, first - 1, f"bytes {bad[:16].hex(' ')} are not {decoded.encoding} text", printable(raw, decoded.encoding), line=first)
            continue
        if len(values) != len(names):
            yield Unreadable(file, first - 1, f"expected {len(names)} fields, got {len(values)}", raw, line=first)
            continue
        fields = {n: (v if v != "" else None) for n, v in zip(names, values)}
        yield Record(fields, file, first - 1, _key(fields, key_fields))


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise _DuplicateKey(f"key {k!r} appears twice (which value is meant is not known)")
        obj[k] = v
    return obj


def read_court_jsonl(path: Path, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Court cases from a JSON Lines dump: see :func:`parse_court_jsonl`."""
    yield from parse_court_jsonl(path.read_bytes(), str(path), key_fields=key_fields)


def parse_court_jsonl(data: bytes, file: str, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Court cases from JSON Lines (UTF-8, a BOM tolerated); non-text values (the parties array) are kept as their JSON text.

    A line that is not UTF-8, not a JSON object, nested too deeply to read or holding a
    key twice is :class:`Unreadable`.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for i, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        line = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
        try:
            obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError as exc:
            why = f"not UTF-8 text: byte {raw[exc.start]:#04x} at {exc.start}"
            try:  # keep a GBK/GB18030 line legible in quarantine; it is still refused (JSON is UTF-8)
                line, why = raw.decode("gb18030").rstrip("\r\n"), why + " (the line reads as GB18030; kept so in raw_value)"
            except UnicodeDecodeError:
                pass
            yield Unreadable(file, i, why, line)
            continue
        except RecursionError:
            yield Unreadable(file, i, "not a readable JSON object: nested too deeply", line)
            continue
        except _DuplicateKey as exc:
            yield Unreadable(file, i, f"not a readable JSON object: {exc}", line)
            continue
        except ValueError as exc:  # json.JSONDecodeError, or an integer too long to convert
            yield Unreadable(file, i, f"not a JSON object: {exc}", line)
            continue
        if not isinstance(obj, dict):
            yield Unreadable(file, i, f"not a JSON object: a {type(obj).__name__}", line)
            continue
        try:
            fields = {name: _json_text(obj.get(name)) for name in COURT_FIELDS}
            later = OPTIONAL_COLUMNS["courts.cases"]
            fields.update({name: _json_text(obj[name]) for name in later if name in obj})  # only when delivered: older hashes stay
            extra = {k: v for k, v in obj.items() if k not in COURT_FIELDS and k not in later}
            fields["extra_fields"] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
        except (RecursionError, ValueError) as exc:
            yield Unreadable(file, i, f"not a readable JSON object: {type(exc).__name__}: {exc}", line)
            continue
        yield Record(fields, file, i, _key(fields, key_fields))


MAX_CELLS = 50_000_000  # a sheet grid calamine would allocate beyond this is refused, not read (memory)
_CELL_REF = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"')
_FAR_REF = re.compile(rb' r="(?:[A-Z]{2,3}[0-9]|[A-Z][0-9]{6})')  # a cell beyond column Z or row 99999


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _check_grid(path: Path) -> None:
    """Refuse a workbook whose sheets claim a grid too big to hold (a damaged cell reference like XFD1048576).

    calamine allocates every cell from A1 to the furthest one named, so one bad
    reference would exhaust memory instead of raising. A file that is not a readable
    zip is left to calamine to name.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                    continue
                data = z.read(info)
                if not _FAR_REF.search(data):
                    continue  # every cell within A1:Z99999: at most 2.6M cells, no need to look closer
                rows = cols = 0
                for letters, digits in set(_CELL_REF.findall(data)):
                    rows, cols = max(rows, int(digits)), max(cols, _column_number(letters))
                if rows * cols > MAX_CELLS:
                    raise SourceFormatError(f"{path}: {info.filename} names a cell {_column_name(cols)}{rows}: a grid of {rows * cols:,} cells is too big to read",
                                            rule="gather.file_unreadable")
    except SourceFormatError:
        raise
    except Exception:  # not a zip, a bad CRC, a broken deflate stream: calamine names the problem
        return


def _workbook_rows(path: Path) -> list[list]:
    """The cell values of a workbook's ``records`` sheet (or its only sheet), from A1, read with python-calamine."""
    from python_calamine import CalamineWorkbook

    _check_grid(path)
    try:
        wb = CalamineWorkbook.from_path(str(path))
    except BaseException as exc:  # calamine raises its own errors and, on some corrupt files, a Rust panic
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SourceFormatError(f"{path}: not a readable Excel workbook ({type(exc).__name__}: {exc})", rule="gather.file_unreadable") from exc
    try:
        sheets = list(wb.sheet_names)
        if "records" in sheets:
            sheet = "records"
        elif len(sheets) == 1:
            sheet = sheets[0]  # one sheet, named otherwise: it can only be the records
        else:
            raise SourceFormatError(f"{path}: no sheet 'records' among {len(sheets)} sheets {sheets}", rule="gather.sheet_missing")
        try:
            return wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise SourceFormatError(f"{path}: sheet {sheet!r} is not readable ({type(exc).__name__}: {exc})", rule="gather.file_unreadable") from exc
    finally:
        wb.close()


def read_custody_xlsx(path: Path, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Rows of a custody workbook: see :func:`parse_custody_rows`."""
    yield from parse_custody_rows(_workbook_rows(path), str(path), key_fields=key_fields)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


HEADER_SEARCH_ROWS = 10  # a workbook's header may sit below a few title rows


def _header_row(rows: list[list], width: int) -> int:
    """Where the documented header is: row 0, or a later row (within the first few) below title rows only.

    A title row has at most one non-blank cell; anything else above the header is data
    that would be lost, so the header is then not looked for (the sheet is refused).
    """
    documented = list(CUSTODY_HEADER)
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if [_text(v) if v != "" else None for v in row[:width]] == documented:
            return i
        if sum(not _blank(v) for v in row) > 1:
            return 0  # a row with data above any header: read as is (and refused if row 0 is not the header)
    return 0


def parse_custody_rows(rows: list[list], file: str, *, key_fields: tuple = ()) -> Iterator[Record | Unreadable]:
    """Custody records from a sheet's cell values (first row the header); wholly empty rows are not records.

    A value in a column without a header is not dropped: its record is
    :class:`Unreadable`, naming the column.
    """
    if not rows or all(_blank(v) for v in rows[0]):
        raise SourceFormatError(f"{file}: empty sheet, no header row", rule="gather.file_empty")
    width = len(CUSTODY_HEADER)
    top = _header_row(rows, width)
    header = [_text(v) if v != "" else None for v in rows[top]]
    if header[:width] != list(CUSTODY_HEADER) or any(h for h in header[width:]):
        raise SourceFormatError(f"{file}: header {header} is not the documented {list(CUSTODY_HEADER)}")
    names = list(CUSTODY_HEADER.values())
    for i, values in enumerate(rows[top + 1 :], start=1):
        cells = [None if v == "" else v for v in values]  # calamine reads an empty cell as ""
        if all(_blank(v) for v in cells):
            continue
        stray = [(j, v) for j, v in enumerate(cells[width:], start=width + 1) if not _blank(v)]
        if stray:
            j, v = stray[0]
            raw = json.dumps([_text(c) for c in cells], ensure_ascii=False)
            yield Unreadable(file, i, f"value {_text(v)!r} in column {_column_name(j)} ({j}), which has no header", raw, line=top + i + 1)
            continue
        cells = cells[:width] + [None] * (width - len(cells))
        fields = {n: _text(v) for n, v in zip(names, cells)}
        yield Record(fields, file, i, _key(fields, key_fields))


_FILE_PARSERS: dict[str, Callable[..., Iterator[Record | Unreadable]]] = {  # the text feeds' parsers of bytes already read
    "procuratorate.reviews": parse_reviews_csv,
    "courts.cases": parse_court_jsonl,
}
FILE_READERS: dict[str, Callable[..., Iterator[Record | Unreadable]]] = {
    "procuratorate.reviews": read_reviews_csv,
    "courts.cases": read_court_jsonl,
    "corrections.custody": read_custody_xlsx,
}


# -- the batch: lineage, hashes, duplicates ----------------------------------------


_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # one encoder: json.dumps makes one per call


def record_hash(fields: dict) -> str:
    """SHA-256 of a record's source fields: the same record delivered twice has the same hash."""
    return hashlib.sha256(_CANONICAL.encode(fields).encode("utf-8")).hexdigest()


def _unreadable_hash(item: Unreadable) -> str:
    return record_hash(item.fields) if item.fields is not None else hashlib.sha256(item.raw[:RAW_LIMIT].encode("utf-8")).hexdigest()


@dataclass
class Batch:
    """One bronze table's new rows and rejects for this run."""

    source: Source
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    rows_in: int = 0


def _raw(text: str) -> tuple[str, str]:
    """The raw text to keep and a note when it was cut."""
    if len(text) <= RAW_LIMIT:
        return text, ""
    return text[:RAW_LIMIT], f" (raw text cut to its first {RAW_LIMIT:,} of {len(text):,} characters)"


def _where(item: Record | Unreadable) -> str:
    line = getattr(item, "line", None)
    return f"{item.file} row {item.row_number}" + (f" (line {line})" if line is not None and line != item.row_number else "")


def reject_file(batch: Batch, *, rule: str, reason: str, path: str | None, record: dict | None = None) -> None:
    """Count a whole file (or source) as one row in and one quarantined, with ``rule`` and ``reason``."""
    src = batch.source
    batch.rows_in += 1
    batch.rejects.append(
        {"source_table": src.name, "target_table": src.table, "record_key": None, "scope": "file", "rule": rule, "reason": reason,
         "raw_value": path, "record": json.dumps(record, ensure_ascii=False, sort_keys=True) if record else None}
    )


def _reject_record(batch: Batch, item: Record | Unreadable, *, rule: str, reason: str) -> None:
    src = batch.source
    if isinstance(item, Unreadable):
        raw, note = _raw(item.raw)
        record = json.dumps(item.fields, ensure_ascii=False) if item.fields is not None else None
        batch.rejects.append(
            {"source_table": src.name, "target_table": src.table, "record_key": None, "scope": "record", "rule": rule,
             "reason": f"{_where(item)}: {reason}{note}", "raw_value": raw, "record": record}
        )
    else:
        batch.rejects.append(
            {"source_table": src.name, "target_table": src.table, "record_key": item.key, "scope": "record", "rule": rule,
             "reason": f"{_where(item)}: {reason}", "raw_value": None, "record": json.dumps(item.fields, ensure_ascii=False)}
        )


def add_to_batch(
    batch: Batch, items: Iterable[Record | Unreadable], *, seen: _Seen | set[str], run_id: str, ingested_at: datetime, hashed: str | None = None
) -> None:
    """Append readable, first-seen records with lineage to ``batch``; reject the rest with a reason.

    ``hashed``: the record hash of a single record the caller already computed (not hashed twice).
    """
    src = batch.source
    for item in items:
        batch.rows_in += 1
        if isinstance(item, Unreadable):
            _reject_record(batch, item, rule="gather.unreadable", reason=item.reason)
            continue
        h = hashed if hashed is not None else record_hash(item.fields)
        if h in seen:
            _reject_record(batch, item, rule="gather.duplicate_delivery", reason=f"identical to record {h[:12]}… already delivered")
            continue
        seen.add(h)
        batch.rows.append(
            {**item.fields, "_source": src.name, "_source_file": item.file, "_row_number": item.row_number,
             "_record_hash": h, "_batch_id": run_id, "_ingested_at": ingested_at}
        )


# -- one source's batch (no engine: values in, values out) ---------------------------


def collect_police(
    src: Source,
    db: Path,
    *,
    watermark: str | None,
    published: Container[str],
    rejected_before: set[str],
    params: GatherParams,
    run_id: str,
    ingested_at: datetime,
    columns: tuple[str, ...] | None = None,
    url: str | None = None,
    batch_size: int | None = POLICE_BATCH_ROWS,
) -> tuple[Batch, str | None]:
    """One police table's batch and its new watermark (None: keep the old one).

    ``url``: the police system's SQLAlchemy URL (PostgreSQL in production); without it,
    the SQLite file ``db``, opened read-only.

    ``columns`` are the documented columns of the table (its bronze contract's source
    columns): a table with other columns is rejected whole (``gather.header_mismatch``),
    as its values would otherwise be dropped or invented on the way into bronze.

    ``published`` are the record hashes already in bronze (re-read rows with them are our
    overlap: dropped, not counted); ``rejected_before`` those already quarantined as
    unreadable or in the future (not quarantined again while they still are). A stored
    watermark that is unparseable or after the data date is ignored (everything is read
    again and the overlap dropped), so a bad value can never hide rows.
    """
    batch = Batch(src)
    if url is None and not db.is_file():
        reject_file(batch, rule="gather.source_missing", reason=f"{src.name}: police database not found: {db}", path=str(db))
        return batch, None
    old, since = _read_from(src, watermark, params)
    label, where = f"{db.name}:{src.sql_table}", str(db)
    if url is None:
        url = f"sqlite:///file:{quote(str(db))}?mode=ro&uri=true"  # read-only: gather never writes to an agency's system
    else:
        where = url.rsplit("@", 1)[-1]  # host/database, never the credentials
        label = f"{where.rsplit('/', 1)[-1].split('?', 1)[0]}:{src.sql_table}"
    try:
        items = list(read_police_table(url, src.sql_table, since=since, key_fields=src.key_fields, label=label, batch_size=batch_size))
    except Exception as exc:  # a corrupt or locked database, a missing table or column: the whole table
        reject_file(batch, rule="gather.source_unreadable", reason=f"{src.name}: table {src.sql_table!r} of {where} is not readable ({type(exc).__name__}: {exc})".strip(),
                    path=where, record={"table": src.sql_table})
        return batch, None
    delivered = next((list(i.fields) for i in items if i.fields is not None), None)
    if columns is not None and delivered is not None:
        drift = column_drift(src, delivered, columns)
        if drift.missing:
            kind = "renamed" if drift.added else "dropped"
            reject_file(batch, rule="gather.header_mismatch", path=where, record={"table": src.sql_table, "columns": delivered, "drift": kind},
                        reason=f"{src.name}: table {src.sql_table!r} of {where}: required column(s) {drift.missing} {kind} (schema drift: fails closed)"
                               + (f"; undocumented: {drift.added}" if drift.added else "") + f"; delivered {delivered}, documented {list(columns)}")
            return batch, None
        if drift.added:
            log.warning("[lawlake] gather %s: schema drift: undocumented column(s) %s kept in raw_extra", src.name, drift.added)
            items = [_with_extra(i, drift.added) for i in items]
    newest = _add_incremental(batch, items, old=old, published=published, rejected_before=rejected_before, params=params, run_id=run_id, ingested_at=ingested_at)
    moved = newest is not None and (old is None or newest > old)
    return batch, (_watermark_text(newest) if moved and newest is not None else None)


OPTIONAL_COLUMNS = {  # columns a source added after its first deliveries: null where not delivered, and out of the record hash
    "police.transfers": ("transfer_channel",),
    "courts.cases": ("transfer_channel",),
}


@dataclass(frozen=True)
class Drift:
    """How a delivered set of columns differs from the documented one."""

    added: list[str]  # undocumented: kept in raw_extra
    missing: list[str]  # required and not delivered: the source is refused


def column_drift(src: Source, delivered: Iterable[str], documented: Iterable[str]) -> Drift:
    """The drift of ``delivered`` against ``documented`` (``raw_extra`` and the source's optional columns may be absent)."""
    have, want = list(delivered), [c for c in documented if c != "raw_extra"]
    optional = set(OPTIONAL_COLUMNS.get(src.name, ()))
    return Drift(added=[c for c in have if c not in want], missing=[c for c in want if c not in have and c not in optional])


def _with_extra(item: Record | Unreadable, added: list[str]) -> Record | Unreadable:
    """The record with its undocumented columns moved into ``raw_extra`` (JSON), so bronze loses nothing."""
    if not isinstance(item, Record):
        return item
    fields = {k: v for k, v in item.fields.items() if k not in added}
    extra = {k: item.fields[k] for k in added}
    fields["raw_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
    return Record(fields, item.file, item.row_number, item.key)



def _read_from(src, watermark: str | None, params) -> tuple[datetime | None, str | None]:
    """The released watermark to read after (``None``: from the start) and the ``since`` text to ask for: the watermark less the overlap.

    A watermark after the run's data date is ignored (everything is read again, the overlap
    dropped), so a bad value can never hide rows.
    """
    horizon = datetime.combine(params.data_date, time.max)
    old = parse_timestamp(watermark)
    if old is not None and old > horizon:
        log.warning("[lawlake] gather %s: stored watermark %s is after the data date %s: reading from the start", src.name, watermark, params.data_date)
        old = None
    return old, None if old is None else _watermark_text(max(old - params.overlap, datetime.min)).split(".", 1)[0]

def _add_incremental(
    batch: Batch, items: Iterable[Record | Unreadable], *, old: datetime | None, published: Container[str], rejected_before: set[str],
    params: GatherParams, run_id: str, ingested_at: datetime,
) -> datetime | None:
    """Add what a watermark read delivered to ``batch``; the newest ``updated_at`` seen (not after the data date).

    A record whose hash is in bronze was read again because of the overlap: not a new
    delivery, not counted. One already quarantined (unreadable, in the future) is not
    quarantined again while it still is.
    """
    horizon = datetime.combine(params.data_date, time.max)
    newest = old
    items = list(items)
    hashes = [None if isinstance(item, Unreadable) else record_hash(item.fields) for item in items]
    # which of these records bronze holds, asked once for all of them (not the table's every hash, one by one)
    published = released_among(published, [h for h in hashes if h is not None])
    seen = _Seen(published)
    for item, h in zip(items, hashes, strict=True):
        if isinstance(item, Unreadable):
            if _unreadable_hash(item) not in rejected_before:
                add_to_batch(batch, [item], seen=seen, run_id=run_id, ingested_at=ingested_at)
            continue
        assert h is not None
        ts = parse_timestamp(item.fields.get("updated_at"))
        if h in published:
            pass  # read again because of the watermark overlap: not a new delivery
        elif ts is not None and ts > horizon:
            if h not in rejected_before:
                batch.rows_in += 1
                _reject_record(batch, item, rule="gather.updated_at_in_future",
                               reason=f"updated_at {item.fields.get('updated_at')!r} is after the run's data date {params.data_date.isoformat()}")
            continue
        else:
            add_to_batch(batch, [item], seen=seen, run_id=run_id, ingested_at=ingested_at, hashed=h)
        if ts is not None and ts <= horizon and (newest is None or ts > newest):
            newest = ts
    return newest


def _same_delivery(stored: str, path: Path, root: Path) -> bool:
    """Whether a manifest path names ``path`` (the sources folder may have moved since)."""
    if stored == str(path):
        return True
    rel = path.relative_to(root).parts if path.is_relative_to(root) else (path.name,)
    return Path(stored).parts[-len(rel):] == rel


def collect_files(
    src: Source,
    root: Path,
    *,
    ingested: dict[str, list[str]],
    known_duplicates: set[tuple[str, str]],
    published: Container[str],
    run_id: str,
    ingested_at: datetime,
) -> tuple[Batch, list[dict]]:
    """One file feed's batch and its manifest entries (every file read or rejected this run).

    ``ingested`` maps the SHA-256 of every file already ingested to its paths;
    ``known_duplicates`` the (SHA-256, path) pairs already quarantined as duplicate files.
    """
    batch = Batch(src)
    manifest: list[dict] = []
    folder = root / src.folder
    if not folder.is_dir():
        reject_file(batch, rule="gather.source_missing", reason=f"{src.name}: agency folder not found: {folder}", path=str(folder))
        return batch, manifest
    reader = FILE_READERS[src.name]
    parser = _FILE_PARSERS.get(src.name)
    seen = _Seen(published)
    this_run: dict[str, str] = {}
    for path in sorted(root.glob(src.pattern)):
        data = None
        try:  # text feeds: read once, hashed and parsed from the same bytes; workbooks are hashed here and opened by calamine
            if parser is not None:
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
            else:
                digest = sha256_file(path)
        except OSError as exc:
            reject_file(batch, rule="gather.file_unreadable", reason=f"{path}: cannot be read ({type(exc).__name__}: {exc})", path=str(path))
            continue
        earlier = ingested.get(digest, []) + ([this_run[digest]] if digest in this_run else [])
        if earlier:
            if any(_same_delivery(p, path, root) for p in earlier) or (digest, str(path)) in known_duplicates:
                continue  # already ingested (or already reported as a duplicate)
            reject_file(batch, rule="gather.duplicate_file", reason=f"{path}: the same bytes (SHA-256 {digest[:12]}…) as {earlier[0]}, already delivered",
                        path=str(path), record={"path": str(path), "sha256": digest, "duplicate_of": earlier[0]})
            continue
        this_run[digest] = str(path)
        try:
            # whole, so a file-level error discards its records
            items = list(parser(data, str(path), key_fields=src.key_fields) if parser is not None and data is not None else reader(path, key_fields=src.key_fields))
        except SourceFormatError as exc:
            reject_file(batch, rule=exc.rule, reason=str(exc), path=str(path), record={"path": str(path), "sha256": digest})
            manifest.append({"source": src.name, "sha256": digest, "path": str(path), "rows": 0})
            continue
        except Exception as exc:  # a reader bug or an I/O error: the file, named, never the run
            log.exception("[lawlake] gather %s: reading %s failed", src.name, path)
            reject_file(batch, rule="gather.file_unreadable", reason=f"{path}: reading failed unexpectedly ({type(exc).__name__}: {exc})",
                        path=str(path), record={"path": str(path), "sha256": digest})
            continue
        add_to_batch(batch, items, seen=seen, run_id=run_id, ingested_at=ingested_at)
        manifest.append({"source": src.name, "sha256": digest, "path": str(path), "rows": len(items)})
    return batch, manifest


# -- the legal services API: pages by watermark, with retries ---------------------------


class ApiError(RuntimeError):
    """The API refused the read (an answer that is not retried, or too many failed attempts)."""


@dataclass(frozen=True)
class Retry:
    """How hard to try one page: attempts, the backoff when no Retry-After is given, the longest wait honoured."""

    attempts: int = 6
    backoff: float = 0.5  # seconds, doubled per attempt
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=_sleep, repr=False)


RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
API_PAGE_SIZE = 500


def _get_page(client, path: str, query: dict, *, retry: Retry) -> dict:
    """One page's JSON body; a 429/5xx or a dropped connection is retried (honouring ``Retry-After``)."""
    import httpx

    last = ""
    for attempt in range(retry.attempts):
        wait = min(retry.backoff * 2**attempt, retry.max_wait)
        try:
            resp = client.get(path, params=query)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code == 200:
                try:
                    body = resp.json()
                except ValueError as exc:
                    raise SourceFormatError(f"{path}: a page that is not JSON ({exc})", rule="gather.file_unreadable") from exc
                if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                    raise SourceFormatError(f"{path}: a page without an 'items' list", rule="gather.file_unreadable")
                return body
            if resp.status_code not in RETRIED_STATUS:
                raise ApiError(f"{path}: HTTP {resp.status_code} {resp.text[:200]}")
            last = f"HTTP {resp.status_code}"
            after = resp.headers.get("Retry-After", "")
            if after.strip().isdigit():
                wait = min(float(after), retry.max_wait)
        if attempt + 1 < retry.attempts:
            log.info("[lawlake] gather %s: %s, retrying in %.1fs (attempt %d of %d)", path, last, wait, attempt + 2, retry.attempts)
            retry.sleep(wait)
    raise ApiError(f"{path}: gave up after {retry.attempts} attempts (last: {last})")


def read_api(
    url: str, token: str, path: str, *, since: str | None, fields: tuple[str, ...], key_fields: tuple = (), page_size: int = API_PAGE_SIZE,
    retry: Retry | None = None,
) -> Iterator[Record | Unreadable]:
    """Records of one API listing changed at or after ``since``, page by page (``fields`` as text, others in ``raw_extra``).

    A page that fails is asked for again with the same token, so a retry neither skips
    nor repeats records. An item that is not a JSON object is :class:`Unreadable`.
    Raises :class:`ApiError` or :class:`SourceFormatError` when a page cannot be had.
    """
    import httpx

    retry = retry or Retry()
    query: dict[str, str | int] = {"page_size": page_size}
    if since:
        query["updated_since"] = since
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        page = 0
        while True:
            body = _get_page(client, path, query, retry=retry)
            page += 1
            label = f"{path} page {page}"
            for i, obj in enumerate(body["items"], start=1):
                if not isinstance(obj, dict):
                    yield Unreadable(label, i, f"not a JSON object: a {type(obj).__name__}", json.dumps(obj, ensure_ascii=False))
                    continue
                values = {name: _json_text(obj.get(name)) for name in fields}
                extra = {k: v for k, v in obj.items() if k not in fields}
                values["raw_extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
                yield Record(values, label, i, _key(values, key_fields))
            token_ = body.get("next_page_token")
            if not token_:
                return
            query["page_token"] = str(token_)


def collect_api(
    src: Source,
    endpoint: Mapping[str, str] | None,
    *,
    watermark: str | None,
    published: Container[str],
    rejected_before: set[str],
    params: GatherParams,
    run_id: str,
    ingested_at: datetime,
    fields: tuple[str, ...],
    retry: Retry | None = None,
) -> tuple[Batch, str | None]:
    """One API listing's batch and its new watermark (None: keep the old one); read whole or not at all.

    ``updated_since`` is the released watermark minus the overlap; what bronze already
    holds is dropped as overlap (by record hash). A listing that cannot be read to its
    last page is one ``gather.source_unreadable`` reject and adds no record: the
    watermark stays, so the next run reads it again.
    """
    batch = Batch(src)
    if not endpoint or not endpoint.get("url"):
        reject_file(batch, rule="gather.source_missing", path=src.path,
                    reason=f"{src.name}: the legal services API is not configured (Airflow connection lawlake_legal_services, or LAWLAKE_LEGAL_API_URL)")
        return batch, None
    old, since = _read_from(src, watermark, params)
    try:
        prefetched = _PREFETCHED.pop((run_id, ingested_at, src.name, endpoint["url"], since), None) if retry is None else None
        items = prefetched.result() if prefetched is not None else list(
            read_api(endpoint["url"], endpoint.get("token", ""), src.path, since=since, fields=fields, key_fields=src.key_fields, retry=retry))
    except (ApiError, SourceFormatError) as exc:
        reject_file(batch, rule="gather.source_unreadable", path=endpoint["url"].rstrip("/") + src.path,
                    reason=f"{src.name}: {exc}", record={"url": endpoint["url"], "path": src.path, "updated_since": since})
        return batch, None
    newest = _add_incremental(batch, items, old=old, published=published, rejected_before=rejected_before, params=params, run_id=run_id, ingested_at=ingested_at)
    moved = newest is not None and (old is None or newest > old)
    return batch, (_watermark_text(newest) if moved and newest is not None else None)


_PREFETCHED: dict[tuple, Future] = {}  # (run_id, stage start, source, url, since) -> its listing being read in the background
_STARTED: set[tuple] = set()  # the keys of this stage run's listings started (taken or not)
_PREFETCH_LOCK = threading.Lock()
_PREFETCHER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lawlake-api")


def api_fields(src: Source) -> tuple[str, ...]:
    """The listing's documented fields (its bronze contract's source columns; everything else goes to raw_extra)."""
    return tuple(n for n in contracts.load(src.table).names if not n.startswith("_") and n != "raw_extra")


def prefetch_listings(
    endpoints: Mapping[str, Mapping[str, str]], watermarks: Mapping[str, str], params: GatherParams, *, run_id: str, ingested_at: datetime,
) -> None:
    """Start reading every configured API listing of this run in the background, once.

    A listing's time goes to waiting on the service — its pages in turn, and the
    ``Retry-After`` of a 429 or 503 — not to this process: read while the files and the
    police database are, that wait is hidden. :func:`collect_api` takes the listing
    (or its error) when its table is built; the batch is the same as reading it then,
    as it asks for the same ``updated_since``.
    """
    with _PREFETCH_LOCK:
        for key in [k for k in _PREFETCHED if k[:2] != (run_id, ingested_at)]:  # an earlier stage run's listing nobody took (it failed)
            _PREFETCHED.pop(key).cancel()
        _STARTED.intersection_update(k for k in _STARTED if k[:2] == (run_id, ingested_at))
        for src in SOURCES:
            endpoint = endpoints.get(src.folder) if src.kind == "api" else None
            if not endpoint or not endpoint.get("url"):
                continue
            _, since = _read_from(src, watermarks.get(src.name), params)
            key = (run_id, ingested_at, src.name, endpoint["url"], since)
            if key not in _STARTED:  # once: a listing already taken is not read again for a later table
                _STARTED.add(key)
                _PREFETCHED[key] = _PREFETCHER.submit(_read_listing, src, endpoint["url"], endpoint.get("token", ""), since)


def _read_listing(src: Source, url: str, token: str, since: str | None) -> list[Record | Unreadable]:
    return list(read_api(url, token, src.path, since=since, fields=api_fields(src), key_fields=src.key_fields))


# -- what earlier runs left ---------------------------------------------------------------


@dataclass
class ReleasedHashes:
    """The record hashes of a source's released bronze version, read by delta-rs the first time one is looked up.

    Plain values until then, so a worker process takes it as is; a run with nothing new to
    check (no new file, no row since the watermark) never reads them. Read through the
    engine up front, they took 4.7 s of a scale-100 run that had nothing new.
    """

    path: str
    version: int
    _hashes: frozenset[str] | None = field(default=None, repr=False)

    def __contains__(self, h: object) -> bool:
        if self._hashes is None:
            from deltalake import DeltaTable

            rows = DeltaTable(self.path, version=self.version).to_pyarrow_table(columns=["_record_hash"])
            self._hashes = frozenset(rows.column(0).to_pylist())
        return h in self._hashes

    def among(self, hashes: list[str]) -> frozenset[str]:
        """Which of ``hashes`` the version holds, matched in Arrow: a watermark re-read of a few rows
        need not build the set of every hash in bronze (0.15–0.19 s per police table at scale 100)."""
        if self._hashes is not None or not hashes:
            return frozenset(h for h in hashes if h in self)
        import pyarrow as pa
        import pyarrow.compute as pc
        from deltalake import DeltaTable

        column = DeltaTable(self.path, version=self.version).to_pyarrow_table(columns=["_record_hash"]).column(0)
        wanted = pa.array(hashes, type=pa.string())
        return frozenset(wanted.filter(pc.is_in(wanted, value_set=column)).to_pylist())


def released_among(published: Container[str], hashes: list[str]) -> frozenset[str]:
    """The ``hashes`` in ``published`` (a :class:`ReleasedHashes` answers in one read)."""
    if isinstance(published, ReleasedHashes):
        return published.among(hashes)
    return frozenset(h for h in hashes if h in published)


class _Seen:
    """What a batch has seen: the records already in bronze, and those it took itself."""

    def __init__(self, published: Container[str]):
        self.published = published
        self.taken: set[str] = set()

    def __contains__(self, h: object) -> bool:
        return h in self.taken or h in self.published

    def add(self, h: str) -> None:
        self.taken.add(h)


def _released(name: str, lake: Path | None, versions: Mapping[str, int]) -> tuple[str, int]:
    """Where delta-rs reads ``name`` at its released version (the runner passes the lake and the release's versions)."""
    if lake is None or name not in versions:
        raise ValueError(f"{name}: no released version in {lake} to read")
    from lawlake import tables

    return str(tables.location(lake, name)), versions[name]


def _published_hashes(published: DataFrame | None, *, table: str, lake: Path | None, versions: Mapping[str, int]) -> Container[str]:
    return frozenset() if published is None else ReleasedHashes(*_released(table, lake, versions))


def earlier_rejects(rows: Iterable[dict]) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """From earlier gather quarantine rows: per source, the hashes of police rows quarantined as unreadable or in the
    future; and the (SHA-256, path) of files quarantined as duplicates."""
    hashes: dict[str, set[str]] = {}
    duplicates: set[tuple[str, str]] = set()
    for r in rows:
        if r["rule"] == "gather.duplicate_file" and r["record"]:
            doc = json.loads(r["record"])
            duplicates.add((doc["sha256"], doc["path"]))
        elif r["rule"] in ("gather.unreadable", "gather.updated_at_in_future") and r["source_table"].startswith(("police.", "legal.")):
            if r["record"]:
                h = record_hash(json.loads(r["record"]))
            else:
                h = hashlib.sha256((r["raw_value"] or "").encode("utf-8")).hexdigest()
            hashes.setdefault(r["source_table"], set()).add(h)
    return hashes, duplicates


_EARLIER_RULES = ("gather.duplicate_file", "gather.unreadable", "gather.updated_at_in_future")


def _earlier_rows(quarantined: DataFrame | None, *, run_id: str, lake: Path | None, versions: Mapping[str, int]) -> list[dict]:
    """Gather's released quarantine rows that :func:`earlier_rejects` looks at — not this run's own: a retry of the
    run replaces them, so it must quarantine the same rows again. Read by delta-rs once per release of the quarantine
    table and run (every source asks)."""
    return [] if quarantined is None else list(_released_rejects(*_released("quarantine.records", lake, versions), run_id))


@functools.lru_cache(maxsize=4)
def _released_rejects(path: str, version: int, run_id: str) -> tuple[dict, ...]:
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    rows = DeltaTable(path, version=version).to_pyarrow_table(columns=["source_table", "rule", "raw_value", "record", "stage", "run_id"])
    # as the engine's filter: a null in any of the three drops the row
    keep = pc.and_(pc.and_(pc.equal(rows["stage"], "gather"), pc.is_in(rows["rule"], value_set=pa.array(_EARLIER_RULES))), pc.not_equal(rows["run_id"], run_id))
    return tuple(rows.filter(keep).select(["source_table", "rule", "raw_value", "record"]).to_pylist())


def police_url(sources: Path) -> str:
    return f"sqlite:///{sources / 'police' / 'police.db'}"


@dataclass(frozen=True)
class _Job:
    """One file or database source's batch to collect: plain values only, so a worker process can take it."""

    src: Source
    sources: Path
    watermark: str | None
    published: Container[str]  # the record hashes already in bronze (ReleasedHashes: read when first looked up)
    rejected_before: set[str]
    known_duplicates: set[tuple[str, str]]
    ingested: dict[str, list[str]]
    params: GatherParams
    run_id: str
    ingested_at: datetime
    first: bool  # the source's first delivery (nothing published yet)


def _prepare(
    src: Source, published: DataFrame | None, quarantined: DataFrame | None, *, sources: Path | None, watermarks: Mapping[str, str],
    ingested: Mapping[str, Mapping[str, list[str]]], run_id: str, started_at: datetime, data_date: date,
    endpoints: Mapping[str, Mapping[str, str]] | None, lake: Path | None, versions: Mapping[str, int],
) -> _Job:
    """What collecting ``src`` needs from the engine and the catalog, read here; the API listings started."""
    if sources is None or not sources.is_dir():
        raise FileNotFoundError(f"sources folder not found: {sources}")
    ingested_at = started_at.replace(microsecond=0)
    params = GatherParams(data_date=data_date)
    prefetch_listings(endpoints or {}, watermarks, params, run_id=run_id, ingested_at=ingested_at)
    rejected_before, known_duplicates = earlier_rejects(_earlier_rows(quarantined, run_id=run_id, lake=lake, versions=versions))
    hashes = _published_hashes(published, table=src.table, lake=lake, versions=versions)
    return _Job(src, sources, watermarks.get(src.name), hashes, rejected_before.get(src.name, set()), known_duplicates,
                dict(ingested.get(src.name, {})), params, run_id, ingested_at, first=published is None)


def _collect(job: _Job, endpoints: Mapping[str, Mapping[str, str]] | None = None, *, rows: Callable[[list[dict]], object] = list) -> Built:
    """The batch of one source (no engine: values in, values out); ``rows`` makes its frame of the Python rows."""
    src = job.src
    marks: dict[str, str] = {}
    files: list[dict] = []
    if src.kind == "sql":
        batch, watermark = collect_police(
            src, job.sources / "police" / "police.db", watermark=job.watermark, published=job.published, rejected_before=job.rejected_before,
            params=job.params, run_id=job.run_id, ingested_at=job.ingested_at,
            columns=tuple(n for n in contracts.load(src.table).names if not n.startswith("_")),
        )
    elif src.kind == "api":
        batch, watermark = collect_api(
            src, (endpoints or {}).get(src.folder), watermark=job.watermark, published=job.published, rejected_before=job.rejected_before,
            params=job.params, run_id=job.run_id, ingested_at=job.ingested_at, fields=api_fields(src),
        )
    else:
        watermark = None
        batch, files = collect_files(
            src, job.sources, ingested=job.ingested, known_duplicates=job.known_duplicates, published=job.published,
            run_id=job.run_id, ingested_at=job.ingested_at,
        )
    if watermark:
        marks[src.name] = watermark
    return Built(
        frame=rows(batch.rows), quarantine=batch.rejects, ingested=files, watermarks=marks,
        tally={"rows_in": batch.rows_in, "rows_quarantined": len(batch.rejects)},
        metrics=first_delivery_metrics(batch) if job.first else None,
    )


def gather_source(
    src: Source,
    published: DataFrame | None,
    quarantined: DataFrame | None,
    *,
    sources: Path | None,
    watermarks: Mapping[str, str],
    ingested: Mapping[str, Mapping[str, list[str]]],
    run_id: str,
    started_at: datetime,
    data_date: date,
    endpoints: Mapping[str, Mapping[str, str]] | None = None,
    lake: Path | None = None,
    versions: Mapping[str, int] | None = None,
) -> Built:
    """One source's new records as bronze rows (append), with its rejects, manifest entries and watermark.

    ``published``: the source's bronze table as released (its record hashes say what
    was delivered before); ``quarantined``: the released quarantine rows (what was
    already reported). Both are read by delta-rs at their versions in ``versions``
    under ``lake``, and only when needed; None: not released yet. A missing agency folder or database is a file-level reject of
    its own; only a missing sources root stops the stage.
    """
    job = _prepare(src, published, quarantined, sources=sources, watermarks=watermarks, ingested=ingested, run_id=run_id,
                   started_at=started_at, data_date=data_date, endpoints=endpoints, lake=lake, versions=versions or {})
    return _collect(job, endpoints)


# -- worker processes: the sources' Python record paths side by side -----------------------

WORKERS_ENV = "LAWLAKE_GATHER_WORKERS"
_POOL: dict = {}  # workers -> the process pool, made on first use in a stage run (stopped at its end)


def gather_workers() -> int:
    """How many worker processes collect the file and database sources (``LAWLAKE_GATHER_WORKERS``; 0: in this process).

    Reading, parsing and hashing records is Python, one core per process: the default
    runs one worker per core this process may run on (its CPU affinity, so a container's
    cpuset counts, not the host's cores), and never more than there are such sources, so
    the sources are collected side by side while this process writes the bronze
    candidates and imports the gate. A container limited by CPU quota rather than cpuset
    should set the variable to its cores.
    """
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return min(engine.cores(), sum(1 for s in SOURCES if s.kind != "api"))
    if not text.isdigit():
        raise ValueError(f"{WORKERS_ENV}={text!r}: a number of worker processes (0: none) is expected")
    return int(text)


@atexit.register
def stop_workers() -> None:
    """Stop the worker processes once the stage's builds are over: idle, each would still hold 130–150 MB through
    the later stages. (Also at exit, before the interpreter tears its modules down: a pool collected after would
    fail noisily.)"""
    while _POOL:
        _POOL.popitem()[1].shutdown(wait=True, cancel_futures=True)


def _exit_with(parent: int) -> None:
    """A worker's initializer: exit when the run's process is gone (killed, say): an orphan would hold its memory
    and the run's output pipes for ever, as it never sees its work queue close (it holds that queue's other end)."""

    def watch() -> None:
        while os.getppid() == parent:
            _sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="lawlake-parent-watch", daemon=True).start()


def _submit(workers: int, fn: Callable, *args) -> Future:
    """``fn(*args)`` in the pool of ``workers`` processes, made on first use (again if a worker died: its run failed)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    for other in [n for n in _POOL if n != workers]:  # the setting changed
        _POOL.pop(other).shutdown(wait=False, cancel_futures=True)
    for _ in range(2):
        if workers not in _POOL:
            # spawn, never fork: this process runs the engine's threads, which a forked child would inherit mid-flight
            _POOL[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_exit_with, initargs=(os.getpid(),))
        try:
            return _POOL[workers].submit(fn, *args)
        except BrokenProcessPool:
            _POOL.pop(workers).shutdown(wait=False)
    raise RuntimeError(f"gather: the pool of {workers} worker processes cannot be started")


def _collect_in_worker(job: _Job, spill_to: Path, limit: int) -> Built:
    """:func:`_collect` in a worker process, its rows returned as Arrow (or Parquet in ``spill_to`` over ``limit`` bytes)."""
    contract = contracts.load(job.src.table)
    return _collect(job, rows=lambda rows: contracts.arrow_rows(rows, contract, spill_to=spill_to, limit=limit))


class _Collecting:
    """A source's batch being collected in a worker process (what the runner waits for)."""

    def __init__(self, src: Source, future: Future):
        self.src, self.future = src, future

    def result(self) -> Built:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(
                f"gather {self.src.name}: a worker process died ({exc}). It was killed or out of memory — or the script that "
                "started this run starts it again when imported: a worker imports that script, so it must start the run under "
                f"`if __name__ == \"__main__\":`. {WORKERS_ENV}=0 collects in this process instead."
            ) from exc

    def cancel(self) -> bool:
        return self.future.cancel()


def start_gather(src: Source, published: DataFrame | None, quarantined: DataFrame | None, *, spill_to: Path, new_input: bool | None = None,
                 **params) -> _Collecting | None:
    """Start collecting a file or database source in a worker process: what waits for its :class:`Built`
    (the same as :func:`gather_source`'s, its rows as Arrow). ``None`` (built in this process): an API
    listing (read in a background thread already), no workers configured, or nothing new expected
    (``new_input`` False, :func:`expects_new`): then the files are only hashed and the police rows of the
    watermark's overlap read again, which costs less here than starting the workers (at scale 100, 1.0 s
    in this process against 1.8 s waited for two workers)."""
    workers = gather_workers()
    if src.kind == "api" or workers == 0 or new_input is False:
        return None
    job = _prepare(src, published, quarantined, **params)
    return _Collecting(src, _submit(workers, _collect_in_worker, job, spill_to, contracts.LOCAL_ROWS_LIMIT))


def first_delivery_metrics(batch: Batch) -> list[dict] | None:
    """The gate's measure of a source's first delivery: was any of what it delivered readable?

    A source table's first release sets what every later stage builds on: published empty
    because every delivered file or record was refused (say, a header the contract does
    not know), it would let normalize, integrate, share and open publish empty tables,
    every gate passing. Such a delivery (rule ``gather.first_delivery_readable``: one
    check, rejected when nothing was readable) fails the gate against its threshold
    (``quality/thresholds.yaml``), so it stops at gather with its rejects kept beside the
    candidates. A source that delivered nothing this run (``gather.source_missing``, or an
    API listing that could not be read to its end, ``gather.source_unreadable``, read
    again next run) is not judged here; a first delivery with some readable rows, and
    every later one, publishes what is readable, its rejects in quarantine.
    """
    absent = sum(1 for r in batch.rejects if r["rule"] in ("gather.source_missing", "gather.source_unreadable"))
    delivered = batch.rows_in - absent
    if delivered <= 0:
        return None
    refused = len(batch.rejects) - absent
    nothing = not batch.rows
    return [{"rule": "gather.first_delivery_readable", "applicable": 1, "rejected": int(nothing),
             "note": f"first delivery: {refused} of {delivered} delivered file(s) and record(s) refused" + ("; nothing readable" if nothing else "")}]


def _declare(src: Source) -> Table:
    def build(published, quarantined, *, new_input: bool | None = None, **params) -> Built:
        return gather_source(src, published, quarantined, **params)

    def start(published, quarantined, **params) -> _Collecting | None:
        return start_gather(src, published, quarantined, **params)

    build.__wrapped__ = gather_source  # type: ignore[attr-defined]  # `lawlake tables --explain` names the real builder
    return Table(
        name=src.table, build=build, start=start, inputs=(src.table, "quarantine.records"), optional=(src.table, "quarantine.records"), mode="append",
        materialize=False, params=("sources", "watermarks", "ingested", "run_id", "started_at", "data_date", "endpoints", "lake", "versions", "new_input"),  # every table starts the API reads
    )


def expects_new(params: Params) -> bool:
    """Whether this run likely gathers something to judge: a source's first delivery, or a file the manifest does not
    name and that was not reported as a duplicate delivery. Only a hint (the runner imports the gate early when it holds); police rows and API records are not looked at."""
    if params.sources is None:
        return False
    if any(src.table not in params.versions for src in SOURCES):
        return True
    # a file already reported as a duplicate delivery is known too (it has no manifest entry: its bytes are another file's)
    released = params.lake is not None and "quarantine.records" in params.versions
    rows = _released_rejects(*_released("quarantine.records", params.lake, params.versions), params.run_id) if released else ()
    duplicates = [p for _, p in earlier_rejects(rows)[1]]
    for src in SOURCES:
        if src.kind == "files":  # a path by its parts under the sources folder, as _same_delivery compares them (the folder may move)
            depth = len(Path(src.pattern).parts)
            known = {Path(p).parts[-depth:] for paths in params.ingested.get(src.name, {}).values() for p in paths}
            known |= {Path(p).parts[-depth:] for p in duplicates}
            if any(path.relative_to(params.sources).parts not in known for path in params.sources.glob(src.pattern)):
                return True
    return False


STAGE = Stage("gather", tuple(_declare(src) for src in SOURCES), doc=__doc__ or "", done=stop_workers, expects_new=expects_new)
