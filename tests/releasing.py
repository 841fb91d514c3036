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


# What a run writes that names the run or the clock: left out when two lakes' tables are compared.
LINEAGE = frozenset({"_batch_id", "_ingested_at", "run_id", "quarantined_at"})


def lake_content(lake: Path) -> dict[str, list[str]]:
    """Every released table's rows at its released version, read with delta-rs (not the engine), lineage columns aside."""
    import json

    from lawlake import config

    catalog = Catalog(config.load(lake=lake).catalog_url)
    out = {}
    for name, version in sorted(catalog.release_versions().items()):
        t = DeltaTable(str(tables.location(Path(lake), name)), version=version).to_pyarrow_table()
        cols = [c for c in t.column_names if c not in LINEAGE]
        out[name] = sorted(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) for r in t.select(cols).to_pylist())
    return out
