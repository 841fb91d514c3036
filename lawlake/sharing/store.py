"""Where partner delivery keeps its state in the catalog database: grants (hashed tokens) and the audit logs.

Tables beside the catalog's own, in the same database (SQLite embedded, PostgreSQL in
production): ``share_grants``, ``share_audit`` (every sharing request), ``share_purges``
(share table versions made unreadable because they hold withheld records) and
``sql_access_audit`` (analyst queries that took a role seeing sealed records). A token is
never stored: only its SHA-256, so a copy of the catalog cannot be used to pull a share.
Grant rows are inserted when a token is issued and updated once, when revoked; audit rows
are only ever inserted.

On SQLite every write is serialized inside the process and retried on ``database is
locked`` (WAL journal, 30 s busy timeout), so concurrent requests never lose an audit row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, Text, create_engine, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from lawlake.catalog import Catalog, utcnow

__all__ = [
    "metadata",
    "share_grants",
    "share_audit",
    "share_purges",
    "sql_access_audit",
    "Grant",
    "AuditEntry",
    "ShareStore",
    "hash_token",
    "new_token",
]

log = logging.getLogger("lawlake.sharing")

# Our own MetaData: the catalog's engine ran create_all for its tables before this module may be imported.
metadata = MetaData()

share_grants = Table(
    "share_grants",
    metadata,
    Column("grant_id", String(32), primary_key=True),
    Column("partner", String(100), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

share_audit = Table(
    "share_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("partner", String(100), index=True),  # null: the caller was not authenticated
    Column("grant_id", String(32)),
    Column("action", String(40), nullable=False),  # list_shares, query, file, export, push …
    Column("method", String(10)),
    Column("path", Text),
    Column("share_name", String(255)),
    Column("schema_name", String(255)),
    Column("table_name", String(255)),
    Column("version", Integer),
    Column("rows", Integer),
    Column("files", Integer),
    Column("bytes", Integer),
    Column("status", Integer, nullable=False),
    Column("error_code", String(60)),
    Column("message", Text),
    Column("client", String(100)),
    Column("seconds", Float),
)

share_purges = Table(
    "share_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("table_name", String(255), nullable=False, index=True),  # share.<partner>.<table>
    Column("current_version", Integer, nullable=False),  # versions before it are no longer readable
    Column("versions_affected", Text, nullable=False),  # JSON list of the versions that held withheld chains
    Column("files_removed", Integer, nullable=False),
    Column("chains", Integer, nullable=False),  # withheld chain ids found in those versions
)

sql_access_audit = Table(
    "sql_access_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("os_user", String(100), nullable=False),
    Column("role", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("tables", Text, nullable=False),  # JSON list of the logical tables read
)

TOKEN_PREFIX = "lls_"


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe, with a prefix that makes a leaked one easy to spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Grant:
    """One issued token of a partner (the token itself is not kept)."""

    grant_id: str
    partner: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    @classmethod
    def from_row(cls, row) -> Grant:
        issued, expires = _utc(row["issued_at"]), _utc(row["expires_at"])
        assert issued is not None and expires is not None  # not-null columns
        return cls(row["grant_id"], row["partner"], issued, expires, _utc(row["revoked_at"]))


@dataclass
class AuditEntry:
    """One audited request or delivery: who, what, how much, and how it ended."""

    action: str
    status: int
    partner: str | None = None
    grant_id: str | None = None
    method: str | None = None
    path: str | None = None
    share_name: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    version: int | None = None
    rows: int | None = None
    files: int | None = None
    bytes: int | None = None
    error_code: str | None = None
    message: str | None = None
    client: str | None = None
    seconds: float | None = None


@cache
def _engine(url: str) -> Engine:
    engine = Catalog(url).engine  # creates the catalog (and its folder) if it is new
    if engine.dialect.name == "sqlite":
        # Our own engine on the same file: readers never wait for a writer (WAL), writers wait for each other.
        engine = create_engine(url, future=True, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    metadata.create_all(engine)
    return engine


_write_lock = threading.Lock()
_RETRIES = 5


def _locked(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text


class ShareStore:
    """Grants and audit rows in the catalog database at a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        self._serial = self.engine.dialect.name == "sqlite"

    def _write(self, statement) -> int:
        """Run one write in its own transaction; on SQLite one at a time per process, retried while the file is locked."""
        for attempt in range(_RETRIES):
            try:
                if self._serial:
                    with _write_lock, self.engine.begin() as c:
                        return c.execute(statement).rowcount
                with self.engine.begin() as c:
                    return c.execute(statement).rowcount
            except OperationalError as exc:
                if not self._serial or not _locked(exc) or attempt == _RETRIES - 1:
                    raise
                log.warning("catalog database is locked; retrying the write (%s)", attempt + 1)
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # grants ---------------------------------------------------------------
    def issue(self, partner: str, *, expires_at: datetime, now: datetime | None = None) -> tuple[str, Grant]:
        """Store a new grant; return its token (shown once, never stored) and the grant."""
        token = new_token()
        grant = Grant(secrets.token_hex(16), partner, now or utcnow(), expires_at, None)
        self._write(
            insert(share_grants).values(
                grant_id=grant.grant_id, partner=partner, token_sha256=hash_token(token), issued_at=grant.issued_at, expires_at=expires_at
            )
        )
        return token, grant

    def by_token(self, token: str) -> Grant | None:
        with self.engine.connect() as c:
            row = c.execute(select(share_grants).where(share_grants.c.token_sha256 == hash_token(token))).mappings().first()
        return Grant.from_row(row) if row else None

    def by_id(self, grant_id: str) -> Grant | None:
        with self.engine.connect() as c:
            row = c.execute(select(share_grants).where(share_grants.c.grant_id == grant_id)).mappings().first()
        return Grant.from_row(row) if row else None

    def revoke(self, partner: str, *, now: datetime | None = None, grant_ids: list[str] | None = None) -> int:
        """Revoke every unrevoked grant of a partner (only ``grant_ids`` when given); return how many."""
        q = update(share_grants).where(share_grants.c.partner == partner, share_grants.c.revoked_at.is_(None))
        if grant_ids is not None:
            q = q.where(share_grants.c.grant_id.in_(grant_ids))
        return self._write(q.values(revoked_at=now or utcnow()))

    def grants(self, partner: str | None = None) -> list[Grant]:
        q = select(share_grants).order_by(share_grants.c.issued_at)
        if partner:
            q = q.where(share_grants.c.partner == partner)
        with self.engine.connect() as c:
            return [Grant.from_row(r) for r in c.execute(q).mappings()]

    # audit ----------------------------------------------------------------
    def record(self, entry: AuditEntry) -> None:
        values = asdict(entry)
        for key, limit in (("path", 2000), ("message", 2000), ("share_name", 255), ("schema_name", 255), ("table_name", 255), ("client", 100)):
            if values[key] is not None:
                values[key] = str(values[key])[:limit]  # names come from the caller: bounded before they are stored
        self._write(insert(share_audit).values(at=utcnow(), **values))

    def audit(self, *, partner: str | None = None, limit: int = 50) -> list[dict]:
        """The newest audit rows first."""
        q = select(share_audit).order_by(share_audit.c.id.desc()).limit(limit)
        if partner:
            q = q.where(share_audit.c.partner == partner)
        with self.engine.connect() as c:
            return [{**dict(r), "at": _utc(r["at"])} for r in c.execute(q).mappings()]

    # purges of share table history -------------------------------------------
    def record_purge(self, table_name: str, *, current_version: int, versions_affected: list[int], files_removed: int, chains: int) -> None:
        self._write(
            insert(share_purges).values(
                at=utcnow(), table_name=table_name, current_version=current_version, versions_affected=json.dumps(versions_affected),
                files_removed=files_removed, chains=chains,
            )
        )

    def purges(self, table_name: str | None = None) -> list[dict]:
        q = select(share_purges).order_by(share_purges.c.id)
        if table_name:
            q = q.where(share_purges.c.table_name == table_name)
        with self.engine.connect() as c:
            return [{**dict(r), "at": _utc(r["at"]), "versions_affected": json.loads(r["versions_affected"])} for r in c.execute(q).mappings()]

    def purged_before(self, table_name: str) -> int | None:
        """The oldest version of a share table still readable after its purges (None: never purged)."""
        from sqlalchemy import func

        with self.engine.connect() as c:
            return c.execute(select(func.max(share_purges.c.current_version)).where(share_purges.c.table_name == table_name)).scalar()

    # analyst SQL with a role that sees sealed records --------------------------
    def record_sql_access(self, *, user: str, role: str, reason: str, query: str, tables: str) -> None:
        self._write(insert(sql_access_audit).values(at=utcnow(), os_user=user[:100], role=role[:100], reason=reason, query=query, tables=tables))

    def sql_access(self, *, limit: int = 50) -> list[dict]:
        """The newest audited role queries first."""
        q = select(sql_access_audit).order_by(sql_access_audit.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            return [{**dict(r), "at": _utc(r["at"])} for r in c.execute(q).mappings()]
