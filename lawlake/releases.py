"""Stage releases: a stage's tables become visible together, or not at all.

Delta keeps each table whole, but a stage writes several tables, one commit each. So
readers never take "the latest Delta version": they take each table's version in the
latest *complete release* (:func:`versions`), recorded by the catalog in one
transaction once every table of the stage is committed (:func:`publish`). A process
killed between two commits leaves a release ``publishing``; readers stay on the previous
release, and the next run calls :func:`recover`, which restores every table of the
half-published release to its released version (or removes a table no release ever
held) and marks the release discarded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lawlake import failpoints, tables
from lawlake.catalog import Catalog

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["Planned", "publish", "recover", "versions", "version_of", "resolve", "resolve_release_id"]


@dataclass(frozen=True)
class Planned:
    """One table of a release: its gated candidate, how it is committed, and its row count."""

    table: str
    candidate: Path
    mode: Literal["overwrite", "append"]
    rows: int  # rows of the candidate (overwrite: the table's rows after publication)
    replace_where: str | None = None  # overwrite only the rows matching this predicate (a stage's own quarantine rows)


def versions(catalog: Catalog, *, as_of: int | None = None) -> dict[str, int]:
    """Every released table's version in the latest complete release (or as of release ``as_of``)."""
    return catalog.release_versions(as_of)


def version_of(catalog: Catalog, name: str) -> int | None:
    return versions(catalog).get(name)


def resolve_release_id(catalog: Catalog, at: str) -> int:
    """The release a reference names: ``release:N`` or ``run:RUN_ID`` (that run's last complete release)."""
    kind, _, value = at.partition(":")
    if kind == "release" and value.isdigit():
        return int(value)
    if kind == "run" and value:
        last = catalog.last_release_of_run(value)
        if last is None:
            raise LookupError(f"run {value} published no release")
        return last
    raise ValueError(f"not a release reference: {at!r} (expected release:N or run:RUN_ID)")


def resolve(catalog: Catalog, at: str | None) -> dict[str, int]:
    """The table versions a reader should use: the latest release, or as of ``release:N`` / ``run:RUN_ID``."""
    return versions(catalog) if at is None else versions(catalog, as_of=resolve_release_id(catalog, at))


def publish(
    spark: SparkSession,
    catalog: Catalog,
    lake: Path,
    *,
    run_id: str,
    stage: str,
    planned: list[Planned],
    ingested: list[dict] | None = None,
    watermarks: dict[str, str] | None = None,
    builds: dict[str, dict] | None = None,
) -> tuple[int, dict[str, dict]]:
    """Commit every planned table, then record them as one complete release; return (release id, {table: {version, rows}}).

    ``builds`` records what each table was built from (``{table: {fingerprint, built_from}}``),
    so that a later run skips a table whose inputs did not change. A release may plan no
    table at all (nothing changed): it is recorded, and no Delta table gets a new version.
    """
    released = versions(catalog)
    base = {p.table: released.get(p.table) for p in planned}
    release_id = catalog.begin_release(run_id, stage, base)
    published: dict[str, dict] = {}
    for p in planned:
        failpoints.hit(f"publish:{p.table}")
        target = tables.location(lake, p.table)
        if p.mode == "append" and p.rows == 0 and base[p.table] is not None:
            v, total = base[p.table], None  # nothing new: no empty commit
        else:
            v = tables.publish(spark, p.candidate, target, mode=p.mode, replace_where=p.replace_where)
            total = p.rows if p.mode == "overwrite" and not p.replace_where else None
        assert v is not None  # a table with rows to publish got a commit
        if total is None:
            total = _count(target, v)
        published[p.table] = {"version": v, "rows": int(total)}
    failpoints.hit(f"before_release:{stage}")
    catalog.complete_release(release_id, published, ingested=ingested or [], watermarks=watermarks, builds=builds)
    failpoints.hit(f"after_release:{stage}")
    return release_id, published


def _count(path: Path, version: int) -> int:
    """Rows of a Delta version from its log's file statistics (no data read)."""
    from deltalake import DeltaTable

    return int(DeltaTable(str(path), version=version).count())


def recover(catalog: Catalog, lake: Path) -> list[dict]:
    """Undo every half-published release: each table back to its released version; return what was done."""
    from deltalake import DeltaTable

    done = []
    for rel in catalog.unfinished_releases():
        restored: dict[str, int | None] = {}
        for name, base in rel["tables"].items():
            path = tables.location(lake, name)
            if not tables.exists(path):
                continue
            current = DeltaTable(str(path)).version()
            if base is None:
                shutil.rmtree(path)  # a new table that no release ever held
                restored[name] = None
            elif current != base:
                DeltaTable(str(path)).restore(base)
                restored[name] = base
        catalog.discard_release(rel["release_id"], f"run {rel['run_id']} died while publishing {rel['stage']}; tables restored to their released versions: {restored or 'none needed'}")
        done.append({"release_id": rel["release_id"], "run_id": rel["run_id"], "stage": rel["stage"], "restored": restored})
    return done
