"""The Delta Sharing protocol server: partners pull their share tables with any Delta Sharing client.

One share per partner (named after it) holding one schema, ``justice``, whose tables are
those of the partner's policy that have been published (``share.<partner>.<table>``).
A partner's token opens its own share only; any other share answers exactly as a share
that does not exist. Endpoints (under ``/delta-sharing``), as PROTOCOL.md defines them:

- ``GET /shares``, ``/shares/{share}``, ``/shares/{share}/schemas``,
  ``/shares/{share}/schemas/{schema}/tables``, ``/shares/{share}/all-tables``;
- ``GET …/tables/{table}/version`` (and the deprecated ``HEAD …/tables/{table}``),
  ``GET …/tables/{table}/metadata``, ``POST …/tables/{table}/query`` with ``limitHint``,
  ``version`` and ``timestamp`` (time travel); predicate hints are accepted and, being
  hints, not applied;
- ``GET|HEAD /files/{share}/{schema}/{table}/{path}``: the signed data-file URLs a query
  hands out (see :mod:`lawlake.sharing.urls`), with byte ranges.

Responses come in the ``parquet`` format, or ``delta`` when the client asks for it only.
Every request, served or refused, is one row of the audit log.

The server stays bounded whatever a client sends: headers are limited (16 KiB in all at
the HTTP layer, :data:`MAX_HEADER_BYTES` and :data:`MAX_HEADERS` in the app: 400), a
declared body over :data:`MAX_BODY_BYTES` is refused (413) before authentication and
before a byte of it is read, the token is checked before any body is read, a body is read
only up to the limit (413 past it), and JSON nested deeper than :data:`MAX_JSON_DEPTH` is
refused (400) before it is parsed. A client's input never gets a 500.

Time travel follows each policy's ``history``: only the current version unless the policy
allows versions since N; versions a purge made unreadable are refused too (403).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from lawlake.catalog import utcnow
from lawlake.config import Settings
from lawlake.policy import Policy
from lawlake.sharing import urls
from lawlake.sharing.access import authenticate, check_grant, policies_by_partner
from lawlake.sharing.errors import (
    BadRequest,
    Forbidden,
    Malformed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    SharingError,
    Unsupported,
)
from lawlake.sharing.storage import NAME, DataFile, ShareTables, Snapshot, parse_timestamp
from lawlake.sharing.store import AuditEntry, Grant, ShareStore

__all__ = [
    "SCHEMA",
    "PREFIX",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADERS",
    "MAX_JSON_DEPTH",
    "SharingService",
    "create_app",
    "serve",
    "BackgroundServer",
    "start_in_thread",
]

log = logging.getLogger("lawlake.sharing")

SCHEMA = "justice"
PREFIX = "/delta-sharing"
DEFAULT_URL_TTL_SECONDS = 900
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "lawlake:sharing")

# A query body is a small JSON object (limitHint, version, timestamp, predicate hints).
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16
# What the app accepts; the HTTP layer (h11) refuses a request head over H11_MAX_HEAD_BYTES before the app sees it.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS = 64
H11_MAX_HEAD_BYTES = 16 * 1024


def share_id(partner: str) -> str:
    """A stable id for a partner's share (the protocol wants ids immutable)."""
    return str(uuid.uuid5(_ID_NAMESPACE, partner))


def table_id(partner: str, table: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{partner}.{SCHEMA}.{table}"))


@dataclass
class SharingService:
    """What the endpoints share: the tables, the grant and audit store, the policies, the URL key."""

    tables: ShareTables
    store: ShareStore
    policies: dict[str, Policy]
    url_key: bytes
    url_ttl_seconds: int = DEFAULT_URL_TTL_SECONDS
    public_url: str | None = None  # the endpoint as partners reach it, when the server sits behind a proxy
    prefix: str = PREFIX


@dataclass
class Call:
    """One request being served: the request, the authenticated grant, and its audit row."""

    request: Request
    service: SharingService
    body: bytes
    entry: AuditEntry
    now: datetime = field(default_factory=utcnow)
    grant: Grant | None = None
    policy: Policy | None = None

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def endpoint_url(self) -> str:
        return self.service.public_url or (str(self.request.base_url).rstrip("/") + self.service.prefix)


# -- responses ---------------------------------------------------------------------------


def _json(doc: dict, *, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    # One line of JSON: the Python client reads list responses with a single next(lines).
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json; charset=utf-8", headers=headers)


def _error(exc: SharingError) -> Response:
    return _json(exc.body(), status=exc.status, headers=exc.headers)


def _ndjson(lines: list[dict], version: int, response_format: str) -> Response:
    body = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines)
    headers = {"delta-table-version": str(version), "delta-sharing-capabilities": f"responseformat={response_format}"}
    return Response(body.encode("utf-8"), media_type="application/x-ndjson; charset=utf-8", headers=headers)


def _page(call: Call, items: list[dict]) -> dict:
    """A list response page: ``maxResults`` items from the offset ``pageToken`` holds."""
    q = call.request.query_params
    try:
        offset = int(q.get("pageToken") or 0)
        size = int(q["maxResults"]) if q.get("maxResults") not in (None, "") else len(items)
    except ValueError:
        raise BadRequest("maxResults and pageToken must be non-negative integers") from None
    if offset < 0 or size < 0:
        raise BadRequest("maxResults and pageToken must be non-negative integers")
    doc: dict[str, Any] = {"items": items[offset : offset + size]}
    if offset + size < len(items):
        doc["nextPageToken"] = str(offset + size)
    return doc


# -- resolving names -----------------------------------------------------------------------


def _valid(name: str, what: str) -> str:
    key = name.lower()  # the protocol makes names case-insensitive
    if not NAME.match(key):
        raise BadRequest(f"{name!r} is not a valid {what} name")
    return key


def _share(call: Call) -> Policy:
    """The caller's own share; any other name answers as a share that does not exist."""
    name = call.param("share")
    key = _valid(name, "share")
    if call.policy is None or key != call.policy.partner:
        raise NotFound(f"share '{name}' does not exist")
    return call.policy


def _schema(call: Call, share: Policy) -> str:
    name = call.param("schema")
    if _valid(name, "schema") != SCHEMA:
        raise NotFound(f"schema '{share.partner}.{name}' does not exist")
    return SCHEMA


def _published(call: Call, share: Policy) -> list[str]:
    """The share's tables: those of its policy that have a published version."""
    return [t.name for t in share.tables if call.service.tables.exists(share.partner, t.name)]


def _table(call: Call) -> tuple[Policy, str]:
    share = _share(call)
    _schema(call, share)
    name = call.param("table")
    key = _valid(name, "table")
    if key not in [t.name for t in share.tables] or not call.service.tables.exists(share.partner, key):
        raise NotFound(f"table '{share.partner}.{SCHEMA}.{name}' does not exist")
    return share, key


def _table_item(partner: str, table: str) -> dict:
    return {"name": table, "schema": SCHEMA, "share": partner, "shareId": share_id(partner), "id": table_id(partner, table)}


# -- discovery endpoints ----------------------------------------------------------------------


def list_shares(call: Call) -> Response:
    """Items: the caller's share (one per partner)."""
    p = call.policy
    assert p is not None
    return _json(_page(call, [{"name": p.partner, "id": share_id(p.partner), "displayName": p.title}]))


def get_share(call: Call) -> Response:
    p = _share(call)
    return _json({"share": {"name": p.partner, "id": share_id(p.partner), "displayName": p.title}})


def list_schemas(call: Call) -> Response:
    p = _share(call)
    return _json(_page(call, [{"name": SCHEMA, "share": p.partner}]))


def list_tables(call: Call) -> Response:
    p = _share(call)
    _schema(call, p)
    return _json(_page(call, [_table_item(p.partner, t) for t in _published(call, p)]))


def list_all_tables(call: Call) -> Response:
    p = _share(call)
    return _json(_page(call, [_table_item(p.partner, t) for t in _published(call, p)]))


# -- table endpoints ---------------------------------------------------------------------------


def _int_param(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"{name} must be a non-negative integer")
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a non-negative integer") from None
    if n < 0:
        raise BadRequest(f"{name} must be a non-negative integer")
    return n


def _resolve_version(call: Call, partner: str, table: str, version: int | None, timestamp: str | None) -> int | None:
    """The version a time-travel request names (None: the latest)."""
    if version is not None and timestamp is not None:
        raise BadRequest("version and timestamp are mutually exclusive")
    if timestamp is not None:
        return call.service.tables.version_at(partner, table, parse_timestamp(timestamp))
    return version


def _within_history(call: Call, share: Policy, table: str, version: int | None) -> None:
    """Refuse a time-travel version the share's history does not serve, or one a purge made unreadable (403)."""
    if version is None:
        return
    latest = call.service.tables.latest_version(share.partner, table)
    if version > latest:
        raise BadRequest(f"version {version} of {share.partner}.{table} does not exist (the latest is {latest})")
    if version == latest:
        return
    if share.history_since is None:
        raise Forbidden(f"the share {share.partner} serves only the current version of its tables (v{latest} of {table}); version {version} is not shared")
    floor = call.service.store.purged_before(f"share.{share.partner}.{table}")
    oldest = max(share.history_since, floor or 0)
    if version < oldest:
        raise Forbidden(f"version {version} of {share.partner}.{table} is outside the share's history (versions {oldest} to {latest} are served)")


def table_version(call: Call) -> Response:
    """Only the ``delta-table-version`` header: the latest version, or the first at/after ``startingTimestamp``."""
    share, table = _table(call)
    starting = call.request.query_params.get("startingTimestamp")
    tables = call.service.tables
    version = tables.version_since(share.partner, table, parse_timestamp(starting)) if starting else tables.latest_version(share.partner, table)
    if starting:
        _within_history(call, share, table, version)
    call.entry.version = version
    return Response(b"", headers={"delta-table-version": str(version)})


def _response_format(call: Call) -> str:
    """``parquet`` unless the client accepts only ``delta`` (our tables need no delta-only reader features)."""
    caps: dict[str, list[str]] = {}
    for part in call.request.headers.get("delta-sharing-capabilities", "").split(";"):
        key, _, values = part.partition("=")
        if key.strip():
            caps[key.strip().lower()] = [v.strip().lower() for v in values.split(",") if v.strip()]
    formats = caps.get("responseformat") or ["parquet"]
    if "parquet" in formats:
        return "parquet"
    if "delta" in formats:
        return "delta"
    raise Unsupported(f"response format {','.join(formats)} is not supported (parquet, delta)")


def _check_readable(snap: Snapshot, partner: str, table: str) -> None:
    # Deletion vectors or column mapping would need more than file URLs to read correctly.
    if snap.min_reader_version > 1 or snap.reader_features:
        raise Unsupported(f"table {partner}.{table} uses Delta reader features this server does not share ({snap.reader_features or snap.min_reader_version})")


def _protocol_line(snap: Snapshot, fmt: str) -> dict:
    if fmt == "delta":
        return {"protocol": {"deltaProtocol": {"minReaderVersion": snap.min_reader_version, "minWriterVersion": snap.min_writer_version}}}
    return {"protocol": {"minReaderVersion": 1}}


def _metadata_line(snap: Snapshot, table: str, fmt: str, *, time_travel: bool) -> dict:
    meta: dict[str, Any] = {
        "id": snap.table_id,
        "name": table,
        "format": {"provider": "parquet"},
        "schemaString": snap.schema_string,
        "partitionColumns": snap.partition_columns,
        "configuration": snap.configuration,
    }
    extra: dict[str, Any] = {}
    if time_travel:
        extra["version"] = snap.version
    if snap.files is not None:
        extra["size"] = sum(f.size for f in snap.files)
        extra["numFiles"] = len(snap.files)
    if fmt == "delta":
        meta["format"]["options"] = {}
        if snap.created_time is not None:
            meta["createdTime"] = snap.created_time
        return {"metaData": {"deltaMetadata": meta, **extra}}
    return {"metaData": {**meta, **extra}}


def table_metadata(call: Call) -> Response:
    share, table = _table(call)
    q = call.request.query_params
    version = _resolve_version(call, share.partner, table, _int_param(q.get("version"), "version"), q.get("timestamp"))
    _within_history(call, share, table, version)
    snap = call.service.tables.snapshot(share.partner, table, version=version, with_files=False)
    _check_readable(snap, share.partner, table)
    fmt = _response_format(call)
    call.entry.version = snap.version
    return _ndjson([_protocol_line(snap, fmt), _metadata_line(snap, table, fmt, time_travel=version is not None)], snap.version, fmt)


@dataclass(frozen=True)
class QueryRequest:
    """The query body's fields this server acts on."""

    limit_hint: int | None
    version: int | None
    timestamp: str | None


def _json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (strings skipped), found without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for b in body:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _query_request(body: bytes) -> QueryRequest:
    if _json_depth(body) > MAX_JSON_DEPTH:
        raise Malformed(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        doc = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        raise Malformed("the request body is not JSON") from None
    if not isinstance(doc, dict):
        raise Malformed("the request body must be a JSON object")
    if doc.get("startingVersion") is not None or doc.get("endingVersion") is not None:
        raise Unsupported("change data feed and streaming queries (startingVersion) are not supported")
    hints = doc.get("predicateHints")
    if hints is not None and (not isinstance(hints, list) or not all(isinstance(h, str) for h in hints)):
        raise BadRequest("predicateHints must be a list of strings")
    if doc.get("jsonPredicateHints") is not None and not isinstance(doc["jsonPredicateHints"], str):
        raise BadRequest("jsonPredicateHints must be a string")
    timestamp = doc.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise BadRequest("timestamp must be a string")
    return QueryRequest(_int_param(doc.get("limitHint"), "limitHint"), _int_param(doc.get("version"), "version"), timestamp)


def _within_limit(files: list[DataFile], limit_hint: int | None) -> list[DataFile]:
    """The first files whose row counts reach ``limitHint`` (all of them if a file has no row count)."""
    if limit_hint is None:
        return files
    chosen, rows = [], 0
    for f in files:
        if rows >= limit_hint:
            break
        chosen.append(f)
        if f.num_records is None:
            return files  # without stats the limit cannot be honoured safely
        rows += f.num_records
    return chosen


def _file_id(path: str) -> str:
    # Stable for the same file across requests, as the protocol asks; reveals nothing of the path.
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]


def _file_line(call: Call, partner: str, table: str, f: DataFile, fmt: str, *, expires: int, version: int | None, timestamp: int | None) -> dict:
    assert call.grant is not None
    ref = urls.FileRef(call.grant.grant_id, partner, SCHEMA, table, f.path, expires)
    url = urls.file_url(call.endpoint_url(), call.service.url_key, ref)
    extra: dict[str, Any] = {"expirationTimestamp": expires * 1000}
    if version is not None:
        extra.update(version=version, timestamp=timestamp)
    if fmt == "delta":
        add = {"path": url, "partitionValues": f.partition_values, "size": f.size, "modificationTime": f.modification_time, "dataChange": True}
        if f.stats:
            add["stats"] = f.stats
        return {"file": {"id": _file_id(f.path), "deltaSingleAction": {"add": add}, **extra}}
    line: dict[str, Any] = {"url": url, "id": _file_id(f.path), "partitionValues": f.partition_values, "size": f.size}
    if f.stats:
        line["stats"] = f.stats
    return {"file": {**line, **extra}}


def query_table(call: Call) -> Response:
    """Protocol, metadata, then one line per data file of the requested version, each with a signed URL."""
    share, table = _table(call)
    req = _query_request(call.body)
    fmt = _response_format(call)
    version = _resolve_version(call, share.partner, table, req.version, req.timestamp)
    _within_history(call, share, table, version)
    snap = call.service.tables.snapshot(share.partner, table, version=version)
    _check_readable(snap, share.partner, table)
    assert snap.files is not None and call.grant is not None
    files = _within_limit(snap.files, req.limit_hint)
    time_travel = version is not None
    committed = call.service.tables.commit_times(share.partner, table).get(snap.version) if time_travel else None
    # A URL outlives neither its TTL nor the token that obtained it.
    expires = int(min(call.now.timestamp() + call.service.url_ttl_seconds, call.grant.expires_at.timestamp()))
    lines = [_protocol_line(snap, fmt), _metadata_line(snap, table, fmt, time_travel=time_travel)]
    lines += [_file_line(call, share.partner, table, f, fmt, expires=expires, version=snap.version if time_travel else None, timestamp=committed) for f in files]
    call.entry.version = snap.version
    call.entry.files = len(files)
    call.entry.rows = sum(int(f.num_records or 0) for f in files) if all(f.num_records is not None for f in files) else None
    return _ndjson(lines, snap.version, fmt)


def table_changes(call: Call) -> Response:
    _table(call)
    raise Unsupported("change data feed is not enabled on shared tables")


# -- signed files -------------------------------------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK_BYTES = 1 << 20


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``Range: bytes=…``; None for the whole file."""
    m = _RANGE.match((header or "").strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # absent, multi-range or unparsable: RFC 9110 lets a server answer with the whole file
    unsatisfiable = RangeNotSatisfiable(f"range {header} is outside the file ({size} bytes)", headers={"content-range": f"bytes */{size}"})
    if m.group(1) == "":
        suffix = int(m.group(2))
        if suffix == 0:
            raise unsatisfiable
        return max(0, size - suffix), size
    start = int(m.group(1))
    end = size if m.group(2) == "" else min(int(m.group(2)) + 1, size)
    if start >= size or end <= start:
        raise unsatisfiable
    return start, end


def _chunks(handle, start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(CHUNK_BYTES, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        handle.close()


def serve_file(call: Call) -> Response:
    """The bytes of one data file, for a URL this server signed, while its grant is still good."""
    q = call.request.query_params
    try:
        expires = int(q.get("expires", ""))
    except ValueError:
        raise Forbidden("file URL is not signed (grant, expires and sig are required)") from None
    if not q.get("grant") or not q.get("sig"):
        raise Forbidden("file URL is not signed (grant, expires and sig are required)")
    ref = urls.FileRef(q["grant"], call.param("share"), call.param("schema"), call.param("table"), call.param("path"), expires)
    urls.verify(call.service.url_key, ref, q["sig"], now=call.now.timestamp())
    grant = call.service.store.by_id(ref.grant_id)
    if grant is None:
        raise Forbidden("the grant behind this file URL does not exist")
    call.entry.partner, call.entry.grant_id = grant.partner, grant.grant_id
    policy = check_grant(grant, call.service.policies, call.now, refuse=Forbidden)
    # The signature already binds these; checked again so a signing bug cannot widen access.
    if ref.share != grant.partner or ref.schema != SCHEMA or ref.table not in [t.name for t in policy.tables]:
        raise NotFound("file does not exist")
    handle = call.service.tables.open_file(ref.share, ref.table, ref.path)
    size = handle.size()
    try:
        span = _byte_range(call.request.headers.get("range"), size)
    except RangeNotSatisfiable:
        handle.close()
        raise
    start, end = span or (0, size)
    headers = {"accept-ranges": "bytes", "content-length": str(end - start)}
    if span:
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    call.entry.files = 1
    if call.request.method == "HEAD":
        handle.close()
        call.entry.bytes = 0
        return Response(b"", status_code=200, headers=headers, media_type="application/octet-stream")
    call.entry.bytes = end - start
    return StreamingResponse(_chunks(handle, start, end - start), status_code=206 if span else 200, headers=headers, media_type="application/octet-stream")


def not_found(call: Call) -> Response:
    raise NotFound(f"no such endpoint: {call.request.method} {call.request.url.path}")


# -- the request pipeline ---------------------------------------------------------------------------


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _check_head(request: Request) -> None:
    """Refuse oversize or malformed request heads and declared bodies, before authentication and before any body is read."""
    raw = request.scope.get("headers") or []
    if len(raw) > MAX_HEADERS:
        raise BadRequest(f"too many request headers ({len(raw)}; at most {MAX_HEADERS})")
    size = sum(len(k) + len(v) + 4 for k, v in raw)
    if size > MAX_HEADER_BYTES:
        raise BadRequest(f"request headers too large ({size} bytes; at most {MAX_HEADER_BYTES})")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest("Content-Length must be a non-negative integer")
        if int(declared) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body of {int(declared)} bytes is larger than the limit of {MAX_BODY_BYTES} bytes")


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0").strip() not in ("", "0") or "chunked" in request.headers.get("transfer-encoding", "").lower()


async def _read_body(request: Request) -> bytes:
    """The request body, read only up to :data:`MAX_BODY_BYTES` (a chunked body can exceed what it declared)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body is larger than the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(call: Call) -> None:
    service, request = call.service, call.request
    grant, policy, refusal = authenticate(service.store, request.headers.get("authorization"), service.policies, call.now)
    if grant is not None:
        call.entry.partner, call.entry.grant_id = grant.partner, grant.grant_id
    if refusal is not None:
        raise refusal
    call.grant, call.policy = grant, policy


def _audit(service: SharingService, entry: AuditEntry) -> bool:
    try:
        service.store.record(entry)
        return True
    except Exception:
        log.exception("sharing: could not write the audit row; refusing the request")
        return False


def _endpoint(service: SharingService, action: str, handler: Callable[[Call], Response], *, signed: bool = False):
    """Check the head, authenticate (unless the URL is signed), read the body, run the handler; answer errors as protocol JSON; audit it all."""

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        params = request.path_params
        entry = AuditEntry(
            action=action, status=0, method=request.method, path=request.url.path, client=_client(request),
            share_name=params.get("share"), schema_name=params.get("schema"), table_name=params.get("table"),
        )
        call = Call(request=request, service=service, body=b"", entry=entry)
        body_read = False
        try:
            _check_head(request)
            # Handlers do blocking IO (delta-rs, the catalog): run them off the event loop.
            if not signed:
                await run_in_threadpool(_authenticate, call)
            if request.method == "POST":
                call.body = await _read_body(request)
                body_read = True
            response = await run_in_threadpool(handler, call)
        except SharingError as exc:
            response = _error(exc)
            entry.error_code, entry.message = exc.error_code, exc.message
        except Exception as exc:  # never show internals to a partner; keep them in the log and the audit row
            log.exception("sharing: %s %s failed", request.method, request.url.path)
            response = _error(SharingError("internal error"))
            entry.error_code, entry.message = "INTERNAL_ERROR", repr(exc)
        if not body_read and _has_body(request):
            response.headers["connection"] = "close"  # the unread body is not worth receiving: end the connection after the answer
        entry.status = response.status_code
        entry.seconds = round(time.perf_counter() - start, 6)
        if not await run_in_threadpool(_audit, service, entry):
            return _error(SharingError("internal error"))  # what cannot be audited is not served
        return response

    return endpoint


def _released(settings: Settings):
    from lawlake.catalog import Catalog

    catalog = Catalog(settings.catalog_url)
    return catalog.release_versions


def create_app(
    settings: Settings,
    *,
    policies: list[Policy] | None = None,
    root: str | None = None,
    storage_options: dict[str, str] | None = None,
    url_ttl_seconds: int = DEFAULT_URL_TTL_SECONDS,
    public_url: str | None = None,
    prefix: str = PREFIX,
) -> Starlette:
    """The server as an ASGI app over the lake's published share tables.

    ``root`` reads the share tables from another location than the lake (an ``s3://``
    URI, with ``storage_options`` as delta-rs takes them); ``public_url`` is the endpoint
    as partners reach it, used in file URLs behind a proxy; ``policies`` replaces
    ``schemas/shares/*.yaml``.
    """
    service = SharingService(
        # Served from a copy elsewhere (root), the copy's own versions count; in the lake, only released ones.
        tables=ShareTables(root or settings.lake, storage_options=storage_options, released=None if root else _released(settings)),
        store=ShareStore(settings.catalog_url),
        policies=policies_by_partner(policies),
        url_key=urls.url_key(settings.secret_key),
        url_ttl_seconds=url_ttl_seconds,
        public_url=public_url.rstrip("/") if public_url else None,
        prefix=prefix,
    )
    table = prefix + "/shares/{share}/schemas/{schema}/tables/{table}"

    def route(path: str, action: str, handler, methods: list[str], **kw) -> Route:
        return Route(path, _endpoint(service, action, handler, **kw), methods=methods)

    routes = [
        route(prefix + "/shares", "list_shares", list_shares, ["GET"]),
        route(prefix + "/shares/{share}", "get_share", get_share, ["GET"]),
        route(prefix + "/shares/{share}/schemas", "list_schemas", list_schemas, ["GET"]),
        route(prefix + "/shares/{share}/schemas/{schema}/tables", "list_tables", list_tables, ["GET"]),
        route(prefix + "/shares/{share}/all-tables", "list_all_tables", list_all_tables, ["GET"]),
        route(table, "table_version", table_version, ["HEAD"]),  # deprecated form of /version
        route(table + "/version", "table_version", table_version, ["GET"]),
        route(table + "/metadata", "metadata", table_metadata, ["GET"]),
        route(table + "/query", "query", query_table, ["POST"]),
        route(table + "/changes", "changes", table_changes, ["GET"]),
        route(prefix + "/files/{share}/{schema}/{table}/{path:path}", "file", serve_file, ["GET", "HEAD"], signed=True),
        # Anything else — unknown paths, wrong methods, names with encoded slashes — is a protocol 404.
        route("/{rest:path}", "unknown", not_found, ALL_METHODS),
    ]
    app = Starlette(routes=routes)
    app.state.service = service
    return app


# h11 (not httptools, which keeps any number of header bytes) with a bound on the request head.
_HTTP_LIMITS: dict[str, Any] = {"http": "h11", "h11_max_incomplete_event_size": H11_MAX_HEAD_BYTES}


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8765, **options) -> None:
    """Run the server in the foreground until interrupted (``lawlake share serve``)."""
    import uvicorn

    # No access log: it would hold signed file URLs; every request is in the audit log instead.
    uvicorn.run(create_app(settings, **options), host=host, port=port, log_level="info", access_log=False, **_HTTP_LIMITS)


class BackgroundServer:
    """The server running in a thread of this process, on a port of its own; a context manager that stops it."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, prefix: str = PREFIX):
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.endpoint = f"http://{self.host}:{self.port}{prefix}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **_HTTP_LIMITS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="lawlake-sharing")

    def start(self) -> BackgroundServer:
        if self._thread.is_alive():  # already started (start_in_thread, then used as a context manager)
            return self
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sharing server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_in_thread(settings: Settings, *, host: str = "127.0.0.1", port: int = 0, **options) -> BackgroundServer:
    """Start the server for ``settings`` in a background thread (tests, benchmarks, notebooks)."""
    prefix = options.get("prefix", PREFIX)
    return BackgroundServer(create_app(settings, **options), host, port, prefix=prefix).start()
