"""Where partner delivery keeps its state in the catalog database: grants (hashed tokens) and the audit log.

Two tables beside the catalog's own, in the same database (SQLite embedded, PostgreSQL in
production). A token is never stored: only its SHA-256, so a copy of the catalog cannot
be used to pull a share. Grant rows are inserted when a token is issued and updated once,
when revoked; audit rows are only ever inserted.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine

from lawlake.catalog import Catalog, utcnow

__all__ = ["metadata", "share_grants", "share_audit", "Grant", "AuditEntry", "ShareStore", "hash_token", "new_token"]

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
    return value.replace(tzinfo=timezone.utc)


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
    def from_row(cls, row) -> "Grant":
        return cls(row["grant_id"], row["partner"], _utc(row["issued_at"]), _utc(row["expires_at"]), _utc(row["revoked_at"]))


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


@lru_cache(maxsize=None)
def _engine(url: str) -> Engine:
    engine = Catalog(url).engine
    metadata.create_all(engine)
    return engine


class ShareStore:
    """Grants and audit rows in the catalog database at a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)

    # grants ---------------------------------------------------------------
    def issue(self, partner: str, *, expires_at: datetime, now: datetime | None = None) -> tuple[str, Grant]:
        """Store a new grant; return its token (shown once, never stored) and the grant."""
        token = new_token()
        grant = Grant(secrets.token_hex(16), partner, now or utcnow(), expires_at, None)
        with self.engine.begin() as c:
            c.execute(
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

    def revoke(self, partner: str, *, now: datetime | None = None) -> int:
        """Revoke every unrevoked grant of a partner; return how many."""
        with self.engine.begin() as c:
            result = c.execute(
                update(share_grants).where(share_grants.c.partner == partner, share_grants.c.revoked_at.is_(None)).values(revoked_at=now or utcnow())
            )
            return result.rowcount

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
        with self.engine.begin() as c:
            c.execute(insert(share_audit).values(at=utcnow(), **values))

    def audit(self, *, partner: str | None = None, limit: int = 50) -> list[dict]:
        """The newest audit rows first."""
        q = select(share_audit).order_by(share_audit.c.id.desc()).limit(limit)
        if partner:
            q = q.where(share_audit.c.partner == partner)
        with self.engine.connect() as c:
            return [{**dict(r), "at": _utc(r["at"])} for r in c.execute(q).mappings()]
