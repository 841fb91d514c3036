"""Reading published share tables for the server: Delta snapshots through delta-rs, data files by byte range.

Share tables live at ``<root>/share/<partner>/<table>``; ``root`` is the lake folder or
an object-store URI (``s3://bucket/lake``). Snapshots come from ``deltalake.DeltaTable``,
file bytes from delta-rs's own object store (``deltalake.fs.DeltaStorageHandler``), so a
local lake and an S3 one are read by the same code with the same storage options.

Every file path handed to :meth:`ShareTables.open_file` is checked to stay inside its
table: it must be a relative data-file path (no ``..``, ``.``, empty or absolute parts, no
``_delta_log``), and on a local lake its resolved real path must lie under the table's
real folder, so neither a crafted path nor a symlink escapes the table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs

from lawlake.sharing.errors import BadRequest, Forbidden, NotFound

__all__ = ["DataFile", "Snapshot", "ShareTables", "parse_timestamp", "NAME"]

# Share, schema and table names: what the policies allow, and nothing a path could be built from.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


@dataclass(frozen=True)
class DataFile:
    """One active data file of a table version, as the Delta log describes it."""

    path: str  # relative to the table root, the object's real name (the log's path URL-decoded once)
    size: int
    modification_time: int  # ms since the epoch
    num_records: int | None
    stats: str | None  # the Delta per-file statistics as a JSON string
    partition_values: dict[str, str | None]  # serialized as the protocol says (strings, null for null)


@dataclass(frozen=True)
class Snapshot:
    """A table as of one Delta version: its protocol, metadata and (when asked for) its data files."""

    version: int
    table_id: str
    schema_string: str
    partition_columns: list[str]
    configuration: dict[str, str]
    created_time: int | None
    min_reader_version: int
    min_writer_version: int
    reader_features: list[str] | None
    writer_features: list[str] | None
    files: list[DataFile] | None
    timestamp: int | None = None  # commit time of the version (ms), known for time-travel reads


def parse_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp as the protocol sends it (``2022-01-01T00:00:00Z``), as an aware UTC datetime."""
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise BadRequest(f"timestamp {value!r} is not in ISO-8601 format (e.g. 2026-01-31T00:00:00Z)") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _json_value(value: Any) -> Any:
    """A statistics value as Delta writes it in JSON."""
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items() if v is not None and not isinstance(v, bytes)}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _partition_string(value: Any) -> str | None:
    """A partition value serialized as the protocol says."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _stats(row: dict) -> str | None:
    if row.get("num_records") is None:
        return None
    stats: dict[str, Any] = {"numRecords": row["num_records"]}
    for key, name in (("min", "minValues"), ("max", "maxValues"), ("null_count", "nullCount")):
        if row.get(key):
            stats[name] = _json_value(row[key])
    return json.dumps(stats, ensure_ascii=False, separators=(",", ":"))


def _files(dt) -> list[DataFile]:
    actions = pa.table(dt.get_add_actions(flatten=False)).to_pylist()
    return [
        DataFile(
            path=unquote(a["path"]),
            size=a["size_bytes"],
            modification_time=a["modification_time"],
            num_records=a.get("num_records"),
            stats=_stats(a),
            partition_values={k: _partition_string(v) for k, v in (a.get("partition") or {}).items()},
        )
        for a in actions
    ]


def _safe_relative(path: str) -> str:
    """``path`` if it is a plain relative data-file path; refuses anything that could leave the table."""
    parts = path.split("/")
    bad = (
        not path
        or "\\" in path
        or "\x00" in path
        or path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == "_delta_log"
        or not path.endswith(".parquet")
    )
    if bad:
        raise Forbidden(f"file path {path!r} is not a data file inside the table")
    return path


class ShareTables:
    """The released share tables under a lake root (a folder or an object-store URI).

    ``released`` gives the Delta version of every table in the latest complete stage
    release (``lawlake.releases``): the latest version a partner is served is its
    table's released version, never a version a half-finished publication wrote. Without
    it (a copy of the tables with no catalog, e.g. on object storage) the latest Delta
    version is taken.
    """

    def __init__(self, root: str | Path, *, storage_options: dict[str, str] | None = None, released: Callable[[], Mapping[str, int]] | None = None):
        root = str(root)
        self.is_local = "://" not in root or root.startswith("file://")
        self.root = os.path.realpath(root.removeprefix("file://")) if self.is_local else root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.released = released

    def _released_version(self, partner: str, table: str) -> int | None:
        """The released version (None: no catalog to ask); NotFound when no release holds the table."""
        if self.released is None:
            return None
        version = self.released().get(f"share.{partner}.{table}")
        if version is None:
            raise NotFound(f"table {partner}.{table} has no released version")
        return version

    def uri(self, partner: str, table: str) -> str:
        """The Delta location of ``share.<partner>.<table>``."""
        for name in (partner, table):
            if not NAME.match(name):
                raise BadRequest(f"{name!r} is not a valid name")
        return f"{self.root}/share/{partner}/{table}"

    def exists(self, partner: str, table: str) -> bool:
        from deltalake import DeltaTable

        if self.released is not None and f"share.{partner}.{table}" not in self.released():
            return False
        return DeltaTable.is_deltatable(self.uri(partner, table), storage_options=self.storage_options or None)

    def _table(self, partner: str, table: str, *, version: int | None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        uri = self.uri(partner, table)
        released = self._released_version(partner, table)
        if released is not None and (version is None or version > released):
            if version is not None:
                raise BadRequest(f"version {version} of {partner}.{table} does not exist (the latest released version is {released})")
            version = released
        try:
            return DeltaTable(uri, version=version, storage_options=self.storage_options or None)
        except TableNotFoundError:
            raise NotFound(f"table {partner}.{table} has no published version") from None
        except Exception as exc:  # delta-rs reports a missing version as a generic DeltaError
            if version is not None:
                raise BadRequest(f"version {version} of {partner}.{table} does not exist") from exc
            raise

    def commit_times(self, partner: str, table: str) -> dict[int, int]:
        """Commit time (ms) of every version still in the log, up to the released one."""
        dt = self._table(partner, table, version=None)
        return {h["version"]: h["timestamp"] for h in dt.history() if h["version"] <= dt.version()}

    def version_at(self, partner: str, table: str, ts: datetime) -> int:
        """The version current at ``ts``: the last one committed at or before it."""
        ms = int(ts.timestamp() * 1000)
        earlier = [v for v, t in self.commit_times(partner, table).items() if t <= ms]
        if not earlier:
            raise BadRequest(f"timestamp {ts.isoformat()} is before the first version of {partner}.{table}")
        return max(earlier)

    def version_since(self, partner: str, table: str, ts: datetime) -> int:
        """The first version committed at or after ``ts`` (the protocol's ``startingTimestamp``)."""
        ms = int(ts.timestamp() * 1000)
        later = [v for v, t in self.commit_times(partner, table).items() if t >= ms]
        if not later:
            raise BadRequest(f"no version of {partner}.{table} was committed at or after {ts.isoformat()}")
        return min(later)

    def latest_version(self, partner: str, table: str) -> int:
        return self._table(partner, table, version=None).version()

    def snapshot(self, partner: str, table: str, *, version: int | None = None, with_files: bool = True) -> Snapshot:
        """The table as of ``version`` (default: the latest published one)."""
        if version is not None and version < 0:
            raise BadRequest("version must not be negative")
        dt = self._table(partner, table, version=version)
        meta, proto = dt.metadata(), dt.protocol()
        return Snapshot(
            version=dt.version(),
            table_id=meta.id,
            schema_string=dt.schema().to_json(),
            partition_columns=list(meta.partition_columns),
            configuration=dict(meta.configuration or {}),
            created_time=meta.created_time,
            min_reader_version=proto.min_reader_version,
            min_writer_version=proto.min_writer_version,
            reader_features=list(proto.reader_features) if proto.reader_features else None,
            writer_features=list(proto.writer_features) if proto.writer_features else None,
            files=_files(dt) if with_files else None,
        )

    def read(self, partner: str, table: str, *, version: int | None = None) -> tuple[pa.Table, int]:
        """The rows of a table version as Arrow, with the version read (file and database delivery)."""
        dt = self._table(partner, table, version=version)
        return pa.table(dt.to_pyarrow_table()), dt.version()

    def _filesystem(self, partner: str, table: str) -> pafs.FileSystem:
        from deltalake.fs import DeltaStorageHandler

        return pafs.PyFileSystem(DeltaStorageHandler(self.uri(partner, table), self.storage_options or None))

    def open_file(self, partner: str, table: str, path: str) -> pa.NativeFile:
        """A data file of the table opened for random access; refuses any path outside the table."""
        rel = _safe_relative(path)
        if self.is_local:
            table_dir = os.path.realpath(self.uri(partner, table))
            real = os.path.realpath(os.path.join(table_dir, rel))
            if not real.startswith(table_dir + os.sep):
                raise Forbidden(f"file path {path!r} is not a data file inside the table")
        try:
            return self._filesystem(partner, table).open_input_file(rel)
        except (FileNotFoundError, OSError):
            raise NotFound(f"file {path!r} does not exist (it may have been vacuumed)") from None
