"""Making old versions of a share table unreadable once they hold records that are now withheld.

A record can become sealed (or pending) after it was shared: the current version of the
share table no longer holds it, but older versions still do, and Delta time travel (or
anyone with the files) reads them. :func:`purge_withheld` finds those versions and removes
every data file the current version does not reference, so no older version can be read
any more; the purge is recorded in the catalog (``share_purges``) and the sharing server
refuses versions before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lawlake import tables

__all__ = ["PurgeError", "PurgeResult", "purge_withheld"]


class PurgeError(RuntimeError):
    """A share table that cannot be purged safely: its current version holds withheld records, or it has no chain_id."""


@dataclass(frozen=True)
class PurgeResult:
    """What one purge did: the versions that held withheld chains, the files removed, how many chains were found."""

    table_name: str
    current_version: int
    versions_affected: tuple[int, ...]
    files_removed: tuple[str, ...]
    chains: int

    @property
    def purged(self) -> bool:
        return bool(self.versions_affected)


def _chains(dt, withheld: pa.Array) -> set[str]:
    ids = dt.to_pyarrow_table(columns=["chain_id"])["chain_id"]
    return {str(v) for v in pc.filter(ids, pc.is_in(ids, value_set=withheld)).to_pylist()}


def purge_withheld(lake: Path, table_name: str, withheld_chain_ids: Iterable[str], *, catalog_url: str) -> PurgeResult:
    """Remove the older versions of share table ``table_name`` when any of them holds a withheld chain.

    Raises :class:`PurgeError` when the *current* version holds one (the share stage must
    publish a version without it first). Versions whose files are gone already (an earlier
    purge) are skipped.
    """
    from deltalake import DeltaTable

    if not table_name.startswith("share."):
        raise PurgeError(f"{table_name} is not a share table")
    path = str(tables.location(Path(lake), table_name))
    withheld = pa.array(sorted({str(c) for c in withheld_chain_ids}), type=pa.string())
    dt = DeltaTable(path)
    current = dt.version()
    if "chain_id" not in dt.schema().to_arrow().names:
        raise PurgeError(f"{table_name} has no chain_id column to find withheld records by")
    now_held = _chains(dt, withheld)
    if now_held:
        raise PurgeError(f"the current version {current} of {table_name} still holds {len(now_held)} withheld chain(s); publish a version without them first")

    affected, found = [], set()
    for h in dt.history():
        v = h["version"]
        if v == current:
            continue
        try:
            held = _chains(DeltaTable(path, version=v), withheld)
        except Exception:  # files vacuumed by an earlier purge, or a log entry already cleaned up: nothing left to read
            continue
        if held:
            affected.append(v)
            found |= held
    if not affected:
        return PurgeResult(table_name, current, (), (), 0)

    # Retention 0 without the safety check is acceptable only because one writer (the pipeline's
    # share stage, under its run lock) holds the lake: no concurrent reader or writer can still
    # need a file the current version does not reference.
    removed = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)

    from lawlake.sharing.store import ShareStore

    ShareStore(catalog_url).record_purge(table_name, current_version=current, versions_affected=sorted(affected), files_removed=len(removed), chains=len(found))
    return PurgeResult(table_name, current, tuple(sorted(affected)), tuple(sorted(removed)), len(found))
