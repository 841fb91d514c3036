"""For tests that write Delta tables directly: record them as a complete release, the way the stage runner does after its gate."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable

from lawlake import tables
from lawlake.catalog import Catalog


def release(catalog_url: str, lake: Path, names: list[str], *, run_id: str = "test", stage: str = "test") -> int:
    """Release each table at its latest Delta version; return the release id."""
    catalog = Catalog(catalog_url)
    released = catalog.release_versions()
    release_id = catalog.begin_release(run_id, stage, {n: released.get(n) for n in names})
    published = {}
    for name in names:
        dt = DeltaTable(str(tables.location(Path(lake), name)))
        published[name] = {"version": dt.version(), "rows": int(dt.count())}
    catalog.complete_release(release_id, published)
    return release_id
