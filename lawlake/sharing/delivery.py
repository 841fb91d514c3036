"""Delivering a partner's share outside Delta Sharing: as files, or pushed into the partner's own database.

- :func:`export_share` writes every table of the share as Parquet and CSV plus a
  ``manifest.json`` (Delta version, row count, SHA-256 and size of every file), for
  partners that take files.
- :func:`push_share` writes every table into the partner's database through SQLAlchemy,
  where its policy allows it (``delivery: {database: {url_env: …}}``): all tables are
  dropped and re-created in one transaction, so the partner sees the old delivery or the
  new one, never a mix, and a failed push leaves the old one in place. A
  ``lawlake_deliveries`` table in the partner's database records what each push brought.

Both refuse a partner whose policy has expired, and both are recorded in the audit log.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.schema import CreateSchema
from sqlalchemy.types import TypeEngine

from lawlake.catalog import utcnow
from lawlake.config import Settings
from lawlake.fileio import sha256_file
from lawlake.policy import Policy
from lawlake.sharing.access import policies_by_partner, policy_in_force
from lawlake.sharing.errors import DeliveryError
from lawlake.sharing.server import SCHEMA
from lawlake.sharing.storage import ShareTables
from lawlake.sharing.store import AuditEntry, ShareStore

__all__ = ["ExportedFile", "ExportedTable", "PushResult", "export_share", "push_share", "database_url", "DELIVERIES_TABLE"]

DELIVERIES_TABLE = "lawlake_deliveries"
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export folder
    format: str  # parquet | csv
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportedTable:
    """One table of an export: the Delta version it was read at, its rows and its files."""

    name: str
    delta_version: int
    rows: int
    columns: list[dict]
    files: list[ExportedFile]


@dataclass
class PushResult:
    """What a push delivered: per table, the Delta version and the rows written."""

    partner: str
    target: str  # the database URL with its password hidden
    tables: dict[str, dict] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t["rows"] for t in self.tables.values())


@contextmanager
def _audited(settings: Settings, action: str, partner: str, **fields) -> Iterator[AuditEntry]:
    """An audit entry for one delivery, recorded whatever happens: 200 set by the caller, 400 refused, 500 failed."""
    store = ShareStore(settings.catalog_url)
    entry = AuditEntry(action=action, status=500, partner=partner, share_name=partner, schema_name=SCHEMA, client=_operator(), **fields)
    start = time.perf_counter()
    try:
        yield entry
    except DeliveryError as exc:
        entry.status, entry.error_code, entry.message = 400, "DELIVERY_REFUSED", str(exc)
        raise
    except Exception as exc:
        entry.error_code, entry.message = "INTERNAL_ERROR", repr(exc)
        raise
    finally:
        entry.seconds = round(time.perf_counter() - start, 6)
        store.record(entry)


def _operator() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "local"


def _policy(partner: str, policies: Iterable[Policy] | None) -> Policy:
    known = policies_by_partner(policies)
    if partner not in known:
        raise DeliveryError(f"no share policy for partner {partner!r} (known: {', '.join(sorted(known))})")
    p = known[partner]
    if not policy_in_force(p, utcnow()):
        raise DeliveryError(f"the share policy of {partner} expired on {p.expires_on}; nothing was delivered")
    return p


def _read_all(settings: Settings, p: Policy) -> dict[str, tuple[pa.Table, int]]:
    """Every table of the share at its latest published version, read before anything is written."""
    from lawlake.catalog import Catalog

    tables = ShareTables(settings.lake, released=Catalog(settings.catalog_url).release_versions)
    missing = [t.name for t in p.tables if not tables.exists(p.partner, t.name)]
    if missing:
        raise DeliveryError(f"share.{p.partner}.{', '.join(missing)} not published yet; run the lifecycle first")
    return {t.name: tables.read(p.partner, t.name) for t in p.tables}


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def export_share(settings: Settings, partner: str, out: str | Path, *, policies: Iterable[Policy] | None = None) -> dict:
    """Write the partner's share as files under ``out``; return the manifest (also written as ``manifest.json``).

    Per table: ``<table>.parquet`` and ``<table>.csv`` (UTF-8, header row, ISO dates),
    both from the same Delta version.
    """
    with _audited(settings, "export", partner, path=str(out)) as entry:
        p = _policy(partner, policies)
        data = _read_all(settings, p)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        exported = []
        for name, (table, version) in data.items():
            files = []
            for fmt, write in (("parquet", lambda t, f: pq.write_table(t, f)), ("csv", lambda t, f: pacsv.write_csv(t, f))):
                target = out / f"{name}.{fmt}"
                _write_atomically(target, lambda tmp, t=table, w=write: w(t, str(tmp)))
                files.append(ExportedFile(target.name, fmt, target.stat().st_size, sha256_file(target)))
            columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
            exported.append(ExportedTable(name, version, table.num_rows, columns, files))
        manifest = {
            "partner": p.partner,
            "title": p.title,
            "purpose": p.purpose,
            "policy_expires_on": p.expires_on.isoformat(),
            "share": p.partner,
            "schema": SCHEMA,
            "exported_at": utcnow().isoformat(timespec="seconds"),
            "tables": [
                {"name": t.name, "delta_version": t.delta_version, "rows": t.rows, "columns": t.columns, "files": [asdict(f) for f in t.files]}
                for t in exported
            ],
        }
        _write_atomically(out / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"))
        entry.status, entry.rows = 200, sum(t.rows for t in exported)
        entry.files, entry.bytes = sum(len(t.files) for t in exported), sum(f.bytes for t in exported for f in t.files)
        entry.message = json.dumps({t.name: t.delta_version for t in exported})
        return manifest


# -- database push ----------------------------------------------------------------------------------


def database_url(p: Policy, *, url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The partner database's URL: ``url`` if given, else the environment variable the policy names."""
    if p.delivery is None or p.delivery.database is None:
        raise DeliveryError(f"the share policy of {p.partner} allows no database delivery (add delivery: {{database: {{url_env: …}}}})")
    if url:
        return url
    env = os.environ if env is None else env
    value = env.get(p.delivery.database.url_env)
    if not value:
        raise DeliveryError(f"set {p.delivery.database.url_env} to {p.partner}'s database URL (SQLAlchemy form), or pass --url")
    return value


def _sql_type(t: pa.DataType) -> TypeEngine:
    """The column type a share column becomes in the partner's database."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return Text()
    if pa.types.is_boolean(t):
        return Boolean()
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return SmallInteger()
    if pa.types.is_int32(t):
        return Integer()
    if pa.types.is_int64(t):
        return BigInteger()
    if pa.types.is_floating(t):
        return Float()
    if pa.types.is_decimal(t):
        return Numeric(t.precision, t.scale)
    if pa.types.is_date(t):
        return Date()
    if pa.types.is_timestamp(t):
        return DateTime(timezone=t.tz is not None)
    raise DeliveryError(f"column type {t} cannot be pushed to a database")


def _engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # pysqlite runs DDL outside any transaction; take BEGIN/COMMIT into our hands so DROP+CREATE is atomic too.
        @event.listens_for(engine, "connect")
        def _no_implicit(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

    return engine


def _deliveries_table(md: MetaData) -> Table:
    return Table(
        DELIVERIES_TABLE,
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("table_name", String(255), nullable=False),
        Column("delta_version", Integer, nullable=False),
        Column("rows", Integer, nullable=False),
        Column("pushed_at", DateTime(timezone=True), nullable=False),
    )


def push_share(
    settings: Settings,
    partner: str,
    *,
    url: str | None = None,
    policies: Iterable[Policy] | None = None,
    env: Mapping[str, str] | None = None,
) -> PushResult:
    """Replace the partner's copy of every share table in its own database, in one transaction."""
    with _audited(settings, "push", partner) as entry:
        p = _policy(partner, policies)
        target = database_url(p, url=url, env=env)
        shown = make_url(target).render_as_string(hide_password=True)
        entry.path = shown
        data = _read_all(settings, p)
        assert p.delivery is not None and p.delivery.database is not None
        schema = p.delivery.database.schema
        result = PushResult(partner, shown)
        engine = _engine(target)
        try:
            with engine.begin() as conn:
                if schema:
                    conn.execute(CreateSchema(schema, if_not_exists=True))
                md = MetaData(schema=schema)
                deliveries = _deliveries_table(md)
                deliveries.create(conn, checkfirst=True)
                pushed_at = utcnow()
                for name, (arrow, version) in data.items():
                    table = Table(name, md, *[Column(f.name, _sql_type(f.type)) for f in arrow.schema])
                    table.drop(conn, checkfirst=True)
                    table.create(conn)
                    for batch in arrow.to_batches(max_chunksize=BATCH_ROWS):
                        rows = batch.to_pylist()
                        if rows:
                            conn.execute(insert(table), rows)
                    conn.execute(insert(deliveries).values(table_name=name, delta_version=version, rows=arrow.num_rows, pushed_at=pushed_at))
                    result.tables[name] = {"delta_version": version, "rows": arrow.num_rows}
        finally:
            engine.dispose()
        entry.status, entry.rows, entry.files = 200, result.rows, len(result.tables)
        entry.message = json.dumps({n: t["delta_version"] for n, t in result.tables.items()})
        return result
