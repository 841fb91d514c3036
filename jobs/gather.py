"""gather: each agency's system, read in its native form, into bronze Delta tables.

Bronze keeps every source record unchanged (values as text, as delivered) and adds
lineage: source, file, row number, record hash, batch, ingested-at. It is
incremental and idempotent:
- the police database is read by watermark (``updated_at`` greater than the last
  published batch's maximum);
- file feeds are read by manifest: a file whose SHA-256 was already ingested is
  skipped;
- a record whose hash is already in bronze, or earlier in the same batch, is a
  duplicate delivery: quarantined with that reason, not appended again.

Records that cannot be read (broken JSON, a CSV line with the wrong number of
fields, undecodable bytes) go to quarantine with the reason; nothing is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

from lawlake.declarations import Built, Stage, Table
from lawlake.fileio import sha256_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SOURCES", "STAGE", "SourceFormatError", "gather_source", "read_police_table", "read_reviews_csv", "read_court_jsonl", "read_custody_xlsx"]

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


class SourceFormatError(ValueError):
    """A source file whose layout is not the documented one (schema drift): gather stops."""


@dataclass
class Record:
    """One source record: its fields as text, where it came from, and its key."""

    fields: dict[str, str | None]
    file: str
    row_number: int
    key: str | None


@dataclass
class Unreadable:
    """A record that could not be read into fields."""

    file: str
    row_number: int
    reason: str
    raw: str


@dataclass(frozen=True)
class Source:
    name: str  # feed name, e.g. "courts.cases"
    table: str  # bronze table
    kind: str  # "sql" or "files"
    pattern: str = ""  # glob under the sources folder, for files
    sql_table: str = ""  # table in the police database, for sql
    key_fields: tuple = ()  # see _key


SOURCES = (
    Source("police.cases", "bronze.police_cases", "sql", sql_table="cases", key_fields=("case_id",)),
    Source("police.suspects", "bronze.police_suspects", "sql", sql_table="suspects", key_fields=("suspect_id",)),
    Source("police.transfers", "bronze.police_transfers", "sql", sql_table="transfers", key_fields=("transfer_id",)),
    Source("procuratorate.reviews", "bronze.procuratorate_reviews", "files", "procuratorate/reviews_*.csv", key_fields=("review_id", ("id_number", "suspect_name"))),
    Source("courts.cases", "bronze.court_cases", "files", "courts/court_cases_*.jsonl", key_fields=("case_number",)),
    Source("corrections.custody", "bronze.custody_records", "files", "corrections/custody_*.xlsx", key_fields=("record_id",)),
)


# -- readers: one per native format --------------------------------------------------


def _text(value) -> str | None:
    """A source value as text, the way the source shows it (Excel dates as ISO dates)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _key(fields: dict, key_fields: tuple) -> str | None:
    """The record's source key: key fields joined by '|'; a tuple inside means "the first non-empty of"."""
    parts = []
    for k in key_fields:
        names = k if isinstance(k, tuple) else (k,)
        parts.append(next((fields[n] for n in names if fields.get(n)), ""))
    return "|".join(parts) if any(parts) else None


def read_police_table(url: str, table: str, *, after: str | None, key_fields: tuple[str, ...]) -> Iterator[Record]:
    """Rows of a police database table updated after the watermark ``after``, oldest first."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = f'SELECT * FROM "{table}"' + (" WHERE updated_at > :after" if after else "") + " ORDER BY updated_at, 1"
            result = conn.execute(text(query), {"after": after} if after else {})
            for i, row in enumerate(result.mappings(), start=1):
                fields = {k: _text(v) for k, v in row.items()}
                yield Record(fields, f"{url.rsplit('/', 1)[-1]}:{table}", i, _key(fields, key_fields))
    finally:
        engine.dispose()


def read_reviews_csv(path: Path, *, key_fields: tuple[str, ...] = ()) -> Iterator[Record | Unreadable]:
    """Rows of a procuratorate export: GBK text, Chinese header, one review × suspect a row."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    header_line = lines[0].rstrip(b"\r")
    try:
        header = next(csv.reader([header_line.decode("gbk")]))
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"{path}: header is not GBK text ({exc})") from exc
    if header != list(REVIEW_HEADER):
        raise SourceFormatError(f"{path}: header {header} is not the documented {list(REVIEW_HEADER)}")
    names = list(REVIEW_HEADER.values())
    for i, raw in enumerate(lines[1:], start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            line = raw.decode("gbk")
        except UnicodeDecodeError as exc:
            yield Unreadable(str(path), i, f"not GBK text: {exc}", raw.decode("gbk", errors="replace"))
            continue
        values = next(csv.reader([line]))
        if len(values) != len(names):
            yield Unreadable(str(path), i, f"expected {len(names)} fields, got {len(values)}", line)
            continue
        fields = {n: (v if v != "" else None) for n, v in zip(names, values)}
        yield Record(fields, str(path), i, _key(fields, key_fields))


def read_court_jsonl(path: Path, *, key_fields: tuple[str, ...] = ()) -> Iterator[Record | Unreadable]:
    """Court cases from a JSON Lines dump; the parties array is kept as its JSON text."""
    with path.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Unreadable(str(path), i, f"not a JSON object: {exc}", line)
                continue
            if not isinstance(obj, dict):
                yield Unreadable(str(path), i, f"not a JSON object: a {type(obj).__name__}", line)
                continue
            fields = {}
            for name in COURT_FIELDS:
                value = obj.get(name)
                fields[name] = json.dumps(value, ensure_ascii=False) if name == "parties" and value is not None else _text(value)
            extra = {k: v for k, v in obj.items() if k not in COURT_FIELDS}
            fields["extra_fields"] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
            yield Record(fields, str(path), i, _key(fields, key_fields))


def read_custody_xlsx(path: Path, *, key_fields: tuple[str, ...] = ()) -> Iterator[Record | Unreadable]:
    """Rows of a custody workbook's ``records`` sheet; wholly empty rows are not records."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise SourceFormatError(f"{path}: not a readable Excel workbook ({exc})") from exc
    try:
        if "records" not in wb.sheetnames:
            raise SourceFormatError(f"{path}: no sheet 'records' (sheets: {wb.sheetnames})")
        rows = wb["records"].iter_rows(values_only=True)
        header = [_text(v) for v in next(rows, ())]
        if header[: len(CUSTODY_HEADER)] != list(CUSTODY_HEADER) or any(h for h in header[len(CUSTODY_HEADER):]):
            raise SourceFormatError(f"{path}: header {header} is not the documented {list(CUSTODY_HEADER)}")
        names = list(CUSTODY_HEADER.values())
        for i, values in enumerate(rows, start=1):
            values = list(values)[: len(names)]
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            values += [None] * (len(names) - len(values))
            fields = {n: _text(v) for n, v in zip(names, values)}
            yield Record(fields, str(path), i, _key(fields, key_fields))
    finally:
        wb.close()


FILE_READERS: dict[str, Callable[..., Iterator[Record | Unreadable]]] = {
    "procuratorate.reviews": read_reviews_csv,
    "courts.cases": read_court_jsonl,
    "corrections.custody": read_custody_xlsx,
}


# -- the batch: lineage, hashes, duplicates ----------------------------------------


def record_hash(fields: dict) -> str:
    """SHA-256 of a record's source fields: the same record delivered twice has the same hash."""
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Batch:
    """One bronze table's new rows and rejects for this run."""

    source: Source
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    rows_in: int = 0


def add_to_batch(batch: Batch, items: Iterator[Record | Unreadable], *, seen: set[str], run_id: str, ingested_at: datetime) -> None:
    """Append readable, first-seen records with lineage to ``batch``; reject the rest with a reason."""
    src = batch.source
    for item in items:
        batch.rows_in += 1
        if isinstance(item, Unreadable):
            batch.rejects.append(
                {"source_table": src.name, "target_table": src.table, "record_key": None, "scope": "record", "rule": "gather.unreadable",
                 "reason": f"{item.file} line {item.row_number}: {item.reason}", "raw_value": item.raw[:10000], "record": None}
            )
            continue
        h = record_hash(item.fields)
        if h in seen:
            batch.rejects.append(
                {"source_table": src.name, "target_table": src.table, "record_key": item.key, "scope": "record", "rule": "gather.duplicate_delivery",
                 "reason": f"{item.file} row {item.row_number}: identical to record {h[:12]}… already delivered",
                 "raw_value": None, "record": json.dumps(item.fields, ensure_ascii=False)}
            )
            continue
        seen.add(h)
        batch.rows.append(
            {**item.fields, "_source": src.name, "_source_file": item.file, "_row_number": item.row_number,
             "_record_hash": h, "_batch_id": run_id, "_ingested_at": ingested_at}
        )


def _published_hashes(published: "DataFrame | None") -> set[str]:
    if published is None:
        return set()
    return set(published.select("_record_hash").toArrow().column(0).to_pylist())


def police_url(sources: Path) -> str:
    return f"sqlite:///{sources / 'police' / 'police.db'}"


def gather_source(src: Source, published: "DataFrame | None", *, sources: Path | None, watermarks: Mapping[str, str],
                  ingested: Mapping[str, Mapping[str, str]], run_id: str, started_at: datetime) -> Built:
    """One source's new records as bronze rows (append), with its rejects, manifest entries and watermark."""
    if sources is None or not sources.is_dir():
        raise FileNotFoundError(f"sources folder not found: {sources}")
    ingested_at = started_at.replace(microsecond=0)
    batch = Batch(src)
    seen = _published_hashes(published)
    files: list[dict] = []
    marks: dict[str, str] = {}
    if src.kind == "sql":
        db = sources / "police" / "police.db"
        if not db.exists():
            raise FileNotFoundError(f"police database not found: {db}")
        items = list(read_police_table(police_url(sources), src.sql_table, after=watermarks.get(src.name), key_fields=src.key_fields))
        add_to_batch(batch, iter(items), seen=seen, run_id=run_id, ingested_at=ingested_at)
        if items:
            marks[src.name] = max(r.fields["updated_at"] or "" for r in items)
    else:
        done = ingested.get(src.name, {})
        for path in sorted(sources.glob(src.pattern)):
            digest = sha256_file(path)
            if digest in done:
                continue
            before = batch.rows_in
            add_to_batch(batch, FILE_READERS[src.name](path, key_fields=src.key_fields), seen=seen, run_id=run_id, ingested_at=ingested_at)
            files.append({"source": src.name, "sha256": digest, "path": str(path), "rows": batch.rows_in - before})
    return Built(
        frame=batch.rows, quarantine=batch.rejects, ingested=files, watermarks=marks,
        tally={"rows_in": batch.rows_in, "rows_quarantined": len(batch.rejects)},
    )


def _declare(src: Source) -> Table:
    def build(published, **params) -> Built:
        return gather_source(src, published, **params)

    build.__wrapped__ = gather_source  # type: ignore[attr-defined]  # `lawlake tables --explain` names the real builder
    return Table(
        name=src.table, build=build, inputs=(src.table,), optional=(src.table,), mode="append", materialize=False,
        params=("sources", "watermarks", "ingested", "run_id", "started_at"),
    )


STAGE = Stage("gather", tuple(_declare(src) for src in SOURCES), doc=__doc__ or "")
