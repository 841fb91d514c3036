"""Table IO: logical names (``silver.court_cases``) to Delta locations, staging and publication.

Every curated table is written in two steps. A stage writes its *candidate* under
``<lake>/_staging/<run_id>/<zone>/<table>``; the gate validates the candidate read
back from Delta; only then does :func:`publish` commit it to the published location
``<lake>/<zone>/<table>`` in one Delta commit. Readers of a published table therefore
only ever see data that passed its gate.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lawlake import engine

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "TableNameError",
    "ZONES",
    "parse_name",
    "location",
    "staging_location",
    "exists",
    "version",
    "read",
    "added_rows",
    "row_count",
    "count",
    "write",
    "publish",
    "staging_root",
    "discard_staging",
    "published_tables",
    "first_row",
]

ZONES = ("bronze", "silver", "gold", "share", "open", "quarantine")
_NAME = re.compile(r"^(bronze|silver|gold|share|open|quarantine)\.([a-z][a-z0-9_]*)(?:\.([a-z][a-z0-9_]*))?$")


class TableNameError(ValueError):
    """A logical table name that is not ``zone.table`` (or ``share.partner.table``)."""


def parse_name(name: str) -> tuple[str, ...]:
    """Split a logical name into its path parts, refusing anything that could escape the lake."""
    m = _NAME.match(name)
    if not m or (m.group(3) is not None) != (m.group(1) == "share"):
        raise TableNameError(
            f"not a table name: {name!r} (expected zone.table, or share.partner.table; zones: {', '.join(ZONES)})"
        )
    return tuple(p for p in m.groups() if p is not None)


def location(lake: Path, name: str) -> Path:
    """The published Delta location of a logical table name."""
    return Path(lake).joinpath(*parse_name(name))


def staging_location(lake: Path, name: str, run_id: str) -> Path:
    """Where a run writes a table's candidate before its gate."""
    return staging_root(lake, run_id) / Path(*parse_name(name))


def exists(path: Path) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def version(path: Path) -> int | None:
    """The current Delta version at ``path``, or None when there is no table."""
    if not exists(path):
        return None
    from deltalake import DeltaTable

    return DeltaTable(str(path)).version()


def row_count(path: Path, *, version: int | None = None) -> int | None:
    """The rows of the Delta table at ``path`` (as of ``version``) by its log: the sum of its files' ``numRecords``
    statistics (a few milliseconds, where the engine's count of a candidate took 20–30 ms). None when a file carries no
    count: ask the engine."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    counts = pa.table(DeltaTable(str(path), version=version).get_add_actions(flatten=False)).column("num_records")
    if counts.null_count:
        return None
    return int(pc.sum(counts).as_py() or 0)


def count(spark: SparkSession, path: Path, *, version: int | None = None) -> int:
    """The rows of the Delta table at ``path`` (as of ``version``): by its log when every file counts its rows, else by the engine."""
    n = row_count(path, version=version)
    return read(spark, path, version=version).count() if n is None else n


def read(spark: SparkSession, path: Path, *, version: int | None = None) -> DataFrame:
    """A Delta table as a DataFrame, optionally as of a version (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(path))


def added_rows(spark: SparkSession, path: Path, *, since: int, version: int) -> DataFrame | None:
    """The rows the commits after version ``since`` (up to ``version``) added to the Delta table at ``path``, read from
    the data files they added: an append-only table's new rows without reading or joining its earlier ones.

    None when that is not what they did: a data file of ``since`` is gone at ``version``
    (rows removed or rewritten), the log no longer reaches ``since`` (expired and cleaned up),
    or a file's rows cannot be read from it alone (partition values kept in the log, column
    mapping, deletion vectors: reader protocol above 1).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        old = DeltaTable(str(path), version=since)
    except TableNotFoundError:  # delta-rs's error for a version its log no longer holds
        return None
    new = DeltaTable(str(path), version=version)
    if new.metadata().partition_columns or new.protocol().min_reader_version > 1:
        return None
    before, now = set(old.file_uris()), set(new.file_uris())
    if not before <= now:
        return None
    table = read(spark, path, version=version)
    files = sorted(now - before)
    # read with the table's schema: a file written before a column was added lacks it (null, as the table reads it)
    return spark.read.schema(table.schema).parquet(*files) if files else table.limit(0)


def write(df: DataFrame, path: Path, *, mode: Literal["overwrite", "append"] = "overwrite") -> None:
    """Write a DataFrame as a Delta table at ``path``."""
    writer = engine.for_delta_write(df).write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    writer.save(str(path))


def publish(
    spark: SparkSession, candidate: Path, published: Path, *, mode: Literal["overwrite", "append"], replace_where: str | None = None
) -> int:
    """Commit a gated candidate to its published location; return the new Delta version.

    ``overwrite`` replaces the table's content (only the rows matching ``replace_where``,
    when given), ``append`` adds the candidate's rows; either way it is one Delta
    commit, so readers see the old or the new table, never a mix.
    """
    if not exists(candidate):
        raise FileNotFoundError(f"no candidate table at {candidate}")
    published.parent.mkdir(parents=True, exist_ok=True)
    if replace_where and exists(published):
        engine.for_delta_write(read(spark, candidate)).write.format("delta").mode("overwrite").option("replaceWhere", replace_where).save(str(published))
    elif not _commit_files(candidate, published, mode=mode):
        write(read(spark, candidate), published, mode=mode)
    v = version(published)
    assert v is not None
    return v


def link_files(source: Path, target: Path) -> bool:
    """A new Delta table at ``target`` holding ``source``'s current data files, hard-linked (nothing read or written
    again); False, and nothing made, where they cannot be taken as they are (see :func:`_commit_files`)."""
    if exists(target):
        raise FileExistsError(f"a table is already at {target}")
    return _commit_files(source, target, mode="overwrite")


def _commit_files(candidate: Path, published: Path, *, mode: Literal["overwrite", "append"]) -> bool:
    """Publish the candidate's own data files: hard-linked into the published folder and committed there by delta-rs.

    The gate judged exactly these files, and nothing is read or encoded again (a copy
    through the engine took 6 s of a scale-100 run). One commit, as the engine's write
    would be: an overwrite removes every earlier file, an append adds. Returns False, and
    touches nothing, where the candidate's files cannot be taken as they are — a
    checkpointed or partitioned candidate, a file that is not plain in its folder, a
    schema or protocol that differs from the published table's — and the caller writes
    through the engine. A file linked before a failed commit is in no version (vacuum
    removes it).
    """
    import json
    import os
    from urllib.parse import unquote

    from deltalake import DeltaTable
    from deltalake.transaction import AddAction, create_table_with_add_actions

    log = Path(candidate) / "_delta_log"
    if any(log.glob("*.checkpoint*")):
        return False
    source = DeltaTable(str(candidate))
    if source.metadata().partition_columns:
        return False
    files: dict[str, dict] = {}
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
    names = {path: unquote(path) for path in files}
    if any("/" in n or n.startswith(".") or not (Path(candidate) / n).is_file() for n in names.values()):
        return False
    schema = source.schema()
    target = DeltaTable(str(published)) if exists(published) else None
    if target is not None and (target.schema() != schema or target.protocol() != source.protocol() or target.metadata().partition_columns):
        return False
    if any((Path(published) / n).exists() for n in names.values()):
        return False  # a file of that name is there already (a path is never both added and removed in one commit)
    Path(published).mkdir(parents=True, exist_ok=True)
    adds: list[AddAction] = []
    for path, add in files.items():
        try:
            os.link(Path(candidate) / names[path], Path(published) / names[path])
        except OSError:  # another file system: a copy, still no re-encoding
            shutil.copyfile(Path(candidate) / names[path], Path(published) / names[path])
        adds.append(AddAction(path=path, size=int(add["size"]), partition_values={}, modification_time=int(add["modificationTime"]),
                                 data_change=True, stats=add.get("stats") or ""))
    if target is None:
        create_table_with_add_actions(str(published), schema, adds, mode="error")
    else:
        target.create_write_transaction([*adds], mode=mode, schema=schema)
    return True


def first_row(df: DataFrame):
    """The first row of a result that always has one (a global aggregate); an error if it has none."""
    row = df.first()
    if row is None:
        raise ValueError("expected a row, got an empty result")
    return row


def staging_root(lake: Path, run_id: str) -> Path:
    """The folder holding every candidate of a run."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", run_id):
        raise ValueError(f"run id {run_id!r} may only hold letters, digits, '_', '.', '-'")
    return Path(lake) / "_staging" / run_id


def discard_staging(lake: Path, run_id: str) -> None:
    """Remove a run's candidates (after they were published)."""
    shutil.rmtree(staging_root(lake, run_id), ignore_errors=True)


def published_tables(lake: Path) -> list[str]:
    """Logical names of every published table in the lake, sorted."""
    lake = Path(lake)
    names = []
    for zone in ZONES:
        zdir = lake / zone
        if not zdir.is_dir():
            continue
        for log in sorted(zdir.glob("**/_delta_log")):
            parts = log.parent.relative_to(lake).parts
            names.append(".".join(parts))
    return sorted(names)
