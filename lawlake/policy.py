"""Share policies: one YAML file per partner under ``schemas/shares/``.

A policy names the partner, the legal purpose, the grant's expiry and, per shared
table, its gold source, a row filter and a masking rule for *every* column of the
source (an unlisted column is an error, so a new gold column is never shared by
accident):

- ``keep`` — as is (refused for direct identifiers: names, identity numbers);
- ``drop`` — not shared;
- ``pseudonym`` — keyed HMAC-SHA256 per partner: stable for one partner, unlinkable
  across partners;
- ``mask`` — identity-number mask (region + ``********`` + last four);
- ``year`` / ``month`` — a date generalized to ``YYYY`` / ``YYYY-MM``;
- ``age_band`` — an age generalized to a band (``14-15``, ``16-17``, ``18-24`` …).

An optional ``delivery:`` section allows delivery beyond Delta Sharing:
``delivery: {database: {url_env: HZ_PROCURATORATE_DB_URL, schema: lawlake}}`` lets
``lawlake share push`` write the share into the partner's own database, whose URL is
read from the named environment variable — never written in the policy.

Row filters: ``column: {prefix: [...]}``, ``{in: [...]}`` or ``{equals: value}``.
Sealed juvenile records are excluded whatever the policy says.

``history:`` says which versions of the share tables the sharing server serves to time
travel: ``none`` (the default) only the current one, ``{since_version: N}`` also every
version from N on. A record sealed after it was shared stays in older versions, so
history is opt-in, and :func:`lawlake.sharing.purge.purge_withheld` removes versions
holding withheld records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lawlake import contracts
from lawlake.config import SCHEMAS_DIR
from lawlake.fileio import read_yaml

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["PolicyError", "Policy", "SharedTable", "Delivery", "DatabaseDelivery", "load", "load_all", "parse", "apply", "share_contract", "row_condition", "masked_columns", "MASKS"]

MASKS = ("keep", "drop", "pseudonym", "mask", "year", "month", "age_band")
OUTPUT_TYPE = {"pseudonym": "string", "mask": "string", "year": "string", "month": "string", "age_band": "string"}
AGE_BANDS = ((0, 13, "0-13"), (14, 15, "14-15"), (16, 17, "16-17"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 59, "45-59"), (60, 200, "60+"))
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class PolicyError(ValueError):
    """A share policy that cannot be applied safely; nothing was written."""


@dataclass(frozen=True)
class SharedTable:
    name: str  # the table's name inside the share, e.g. "case_chain"
    source: str  # gold table
    rows: dict
    columns: dict[str, str]  # source column -> mask

    def shared_columns(self) -> list[str]:
        return [c for c, m in self.columns.items() if m != "drop"]


@dataclass(frozen=True)
class DatabaseDelivery:
    """Push delivery into the partner's own database."""

    url_env: str  # the environment variable holding its SQLAlchemy URL (credentials stay out of the policy)
    schema: str | None = None  # the database schema to write into (default: the connection's)


@dataclass(frozen=True)
class Delivery:
    """The deliveries a policy allows beyond Delta Sharing."""

    database: DatabaseDelivery | None = None


@dataclass(frozen=True)
class Policy:
    partner: str
    title: str
    purpose: str
    expires_on: date
    tables: tuple[SharedTable, ...]
    delivery: Delivery | None = None
    # The oldest version time travel may read (``history: {since_version: N}``); None: only the current version.
    history_since: int | None = None

    def table(self, name: str) -> SharedTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def logical(self, table: SharedTable) -> str:
        return f"share.{self.partner}.{table.name}"


def _shape_problem(spec) -> str | None:
    """What is wrong with the shape of one table's spec (before its content is checked), or None."""
    if not isinstance(spec, dict):
        return f"the table's spec must be a mapping with from, rows, columns; got {type(spec).__name__}"
    if not isinstance(spec.get("columns") or {}, dict):
        return "'columns' must map each column to its masking rule"
    if not isinstance(spec.get("rows") or {}, dict):
        return "'rows' must map columns to filters"
    return None


def parse(doc: dict, *, source: str = "<policy>") -> Policy:
    """A policy from its YAML document, checked against the gold contracts."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: a policy is a mapping of partner, purpose, expires_on, tables; got {type(doc).__name__}")
    for key in ("partner", "purpose", "expires_on", "tables"):
        if not doc.get(key):
            problems.append(f"missing '{key}'")
    if problems:
        raise PolicyError(f"{source}: " + "; ".join(problems))
    partner = str(doc["partner"])
    if not _NAME.match(partner):
        problems.append(f"partner {partner!r} must be lower-case letters, digits and '_'")
    expires = doc["expires_on"]
    if not isinstance(expires, date):
        problems.append(f"expires_on {expires!r} is not a date (YYYY-MM-DD)")
    shared = []
    if not isinstance(doc["tables"], dict):
        raise PolicyError(f"{source}: 'tables' must map table names to their specs, got a {type(doc['tables']).__name__}")
    for name, spec in doc["tables"].items():
        if not _NAME.match(str(name)):
            problems.append(f"table name {name!r} must be lower-case letters, digits and '_'")
            continue
        shape = _shape_problem(spec)
        if shape:
            problems.append(f"{name}: {shape}")
            continue
        src = spec.get("from", "")
        if not str(src).startswith("gold."):
            problems.append(f"{name}: 'from' must name a gold table, got {src!r}")
            continue
        try:
            contract = contracts.load(src)
        except (contracts.ContractError, ValueError) as exc:
            problems.append(f"{name}: unknown table {src!r} ({exc})")
            continue
        columns = {str(k): str(v) for k, v in (spec.get("columns") or {}).items()}
        for col, mask in columns.items():
            if col not in contract.names:
                problems.append(f"{name}: unknown column {col!r} in {src}")
            elif mask not in MASKS:
                problems.append(f"{name}.{col}: masking {mask!r} is not one of {MASKS}")
            else:
                c = contract.column(col)
                if mask == "keep" and c.pii == "direct":
                    problems.append(f"{name}.{col}: a direct identifier cannot be kept; use drop, pseudonym or mask")
                if mask in ("year", "month") and c.type != "date":
                    problems.append(f"{name}.{col}: {mask} generalizes dates, but {col} is {c.type}")
                if mask == "age_band" and c.type != "int":
                    problems.append(f"{name}.{col}: age_band needs an int column, {col} is {c.type}")
        for c in contract.columns:
            if c.name not in columns:
                what = f"{c.pii} PII column" if c.pii != "none" else "column"
                problems.append(f"{name}: {what} {c.name!r} of {src} has no masking rule")
        if "chain_id" in contract.names and columns.get("chain_id") != "keep":
            problems.append(f"{name}: chain_id must be kept: the gate uses it to prove no sealed record is shared")
        rows = spec.get("rows") or {}
        for col, cond in rows.items():
            if col not in contract.names:
                problems.append(f"{name}: row filter on unknown column {col!r}")
            elif not isinstance(cond, dict) or len(cond) != 1 or next(iter(cond)) not in ("prefix", "in", "equals"):
                problems.append(f"{name}: row filter on {col} must be one of {{prefix: [...]}}, {{in: [...]}}, {{equals: v}}")
        shared.append(SharedTable(name=str(name), source=src, rows=rows, columns=columns))
    delivery = _parse_delivery(doc.get("delivery"), problems)
    history = _parse_history(doc.get("history", "none"), problems)
    if problems:
        raise PolicyError(f"{source}: " + "; ".join(problems))
    return Policy(
        partner=partner, title=str(doc.get("title", partner)), purpose=str(doc["purpose"]), expires_on=expires, tables=tuple(shared), delivery=delivery,
        history_since=history,
    )


def _parse_history(spec, problems: list[str]) -> int | None:
    """``history: none`` (None) or ``history: {since_version: N}`` (N); appends what is wrong to ``problems``."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, dict) and set(spec) == {"since_version"}:
        n = spec["since_version"]
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
    problems.append(f"history must be 'none' or {{since_version: N}} with N a non-negative integer, got {spec!r}")
    return None


def _parse_delivery(spec, problems: list[str]) -> Delivery | None:
    """The optional ``delivery:`` section; appends what is wrong with it to ``problems``."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        problems.append("delivery must be a mapping, e.g. {database: {url_env: PARTNER_DB_URL}}")
        return None
    for key in spec:
        if key != "database":
            problems.append(f"delivery: unknown kind {key!r} (known: database)")
    db = spec.get("database")
    if db is None:
        return Delivery()
    if not isinstance(db, dict):
        problems.append("delivery.database must be a mapping with url_env")
        return None
    for key in db:
        if key not in ("url_env", "schema"):
            # A URL or password here would put credentials in the repository: only the variable's name belongs here.
            problems.append(f"delivery.database: unknown key {key!r} (allowed: url_env, schema; the URL itself goes in the environment)")
    url_env = str(db.get("url_env", ""))
    if not _ENV_NAME.match(url_env):
        problems.append(f"delivery.database.url_env {url_env!r} must name an environment variable (upper-case letters, digits, '_')")
    schema = db.get("schema")
    if schema is not None and not _NAME.match(str(schema)):
        problems.append(f"delivery.database.schema {schema!r} must be lower-case letters, digits and '_'")
    return Delivery(database=DatabaseDelivery(url_env=url_env, schema=str(schema) if schema is not None else None))


def policies_dir() -> Path:
    return SCHEMAS_DIR / "shares"


@cache
def load(partner: str, directory: Path | None = None) -> Policy:
    path = (directory or policies_dir()) / f"{partner}.yaml"
    if not path.exists():
        raise PolicyError(f"no share policy for partner {partner!r} ({path})")
    policy = parse(read_yaml(path), source=str(path))
    if policy.partner != partner:
        raise PolicyError(f"{path}: partner {policy.partner!r} does not match the file name")
    return policy


def load_all(directory: Path | None = None) -> list[Policy]:
    return [load(p.stem, directory) for p in sorted((directory or policies_dir()).glob("*.yaml"))]


def row_condition(rows: dict, col=None) -> Column:
    """The policy's row filter as a Spark condition (all clauses must hold)."""
    from pyspark.sql import functions as F

    col = col or F.col
    cond = F.lit(True)
    for name, spec in rows.items():
        ((op, value),) = spec.items()
        c = col(name)
        if op == "prefix":
            clause = F.lit(False)
            for p in value:
                clause = clause | c.startswith(str(p))
        elif op == "in":
            clause = c.isin(*[str(v) for v in value])
        else:
            clause = c == F.lit(value)
        cond = cond & F.coalesce(clause, F.lit(False))
    return cond


def _masked(col: str, mask: str, key: bytes) -> Column:
    from pyspark.sql import functions as F

    from lawlake.rules.spark import hmac_sha256_hex, id_mask

    c = F.col(col)
    if mask == "pseudonym":
        return F.substring(hmac_sha256_hex(c.cast("string"), key), 1, 32)
    if mask == "mask":
        return id_mask(c)
    if mask == "year":
        return F.date_format(c, "yyyy")
    if mask == "month":
        return F.date_format(c, "yyyy-MM")
    if mask == "age_band":
        band = F.lit(None).cast("string")
        for lo, hi, label in reversed(AGE_BANDS):
            band = F.when((c >= lo) & (c <= hi), F.lit(label)).otherwise(band)
        return band
    return c


def partner_key(secret: bytes, partner: str) -> bytes:
    """The partner's own pseudonym key, derived from the lake's secret."""
    import hashlib
    import hmac

    return hmac.new(secret, f"pseudonym:{partner}".encode(), hashlib.sha256).digest()


def masked_columns(table: SharedTable, *, key: bytes) -> list[Column]:
    """The shared columns of a table, each masked by its rule (dropped ones left out)."""
    return [_masked(c, m, key).alias(c) for c, m in table.columns.items() if m != "drop"]


def apply(df: DataFrame, table: SharedTable, *, key: bytes, sealed_chain_ids: DataFrame | None = None) -> DataFrame:
    """The partner's rows and columns of a gold table: filtered, sealed excluded, masked."""
    from pyspark.sql import functions as F

    rows = df.where(row_condition(table.rows))
    if "is_sealed" in df.columns:
        rows = rows.where(~F.col("is_sealed"))
    if sealed_chain_ids is not None and "chain_id" in df.columns:
        rows = rows.join(sealed_chain_ids, "chain_id", "left_anti")
    return rows.select(*masked_columns(table, key=key))


def share_contract(policy: Policy, table: SharedTable) -> contracts.Contract:
    """The contract of a share table: the gold columns it keeps, typed after masking."""
    source = contracts.load(table.source)
    cols = []
    for c in source.columns:
        mask = table.columns[c.name]
        if mask == "drop":
            continue
        typ = OUTPUT_TYPE.get(mask, c.type)
        pii = "quasi" if mask in ("pseudonym", "mask") and c.pii == "direct" else c.pii
        cols.append(contracts.Column(c.name, typ, c.nullable, pii, f"{c.description} ({mask})" if mask != "keep" else c.description, c.accepted_values if mask == "keep" else None))
    key = tuple(k for k in source.primary_key if table.columns.get(k) == "keep")
    return contracts.Contract(table=policy.logical(table), grain=f"{source.grain}, as shared with {policy.partner}", columns=tuple(cols), primary_key=key)
