"""Signed file URLs: the server's own pre-signed links to a share table's data files.

A query answers with one URL per data file pointing back at the server,
``<endpoint>/files/<share>/<schema>/<table>/<path>?grant=…&expires=…&sig=…``. The
signature is HMAC-SHA256, keyed by a key derived from the lake's secret, over the
grant, the share, schema and table, the file path and the expiry, so changing any of
them (or the expiry) invalidates the URL. The grant is in the URL so that revoking a
partner's tokens also kills the links it was given, at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote

from lawlake.sharing.errors import Forbidden

__all__ = ["FileRef", "url_key", "sign", "file_url", "verify"]


@dataclass(frozen=True)
class FileRef:
    """What a file URL grants: one file of one table, to one grant, until ``expires`` (epoch seconds)."""

    grant_id: str
    share: str
    schema: str
    table: str
    path: str
    expires: int


def url_key(secret: bytes) -> bytes:
    """The key for file URLs, derived so it is never the key used for pseudonyms."""
    return hmac.new(secret, b"lawlake/sharing/file-url/v1", hashlib.sha256).digest()


def sign(key: bytes, ref: FileRef) -> str:
    # JSON of the fields: an unambiguous encoding, no field can bleed into the next.
    message = json.dumps([ref.grant_id, ref.share, ref.schema, ref.table, ref.path, ref.expires], ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def file_url(base: str, key: bytes, ref: FileRef) -> str:
    """The signed URL of a file under ``base`` (the endpoint, e.g. ``http://host:8765/delta-sharing``)."""
    path = "/".join(quote(part, safe="") for part in ref.path.split("/"))
    return f"{base}/files/{ref.share}/{ref.schema}/{ref.table}/{path}?grant={ref.grant_id}&expires={ref.expires}&sig={sign(key, ref)}"


def verify(key: bytes, ref: FileRef, signature: str, *, now: float) -> None:
    """Refuse a file URL whose signature does not match or whose expiry has passed."""
    if not hmac.compare_digest(sign(key, ref), signature or ""):
        raise Forbidden("file URL signature does not match; the URL was altered")
    if now >= ref.expires:
        raise Forbidden("file URL has expired; query the table again for fresh URLs")
