"""The ``event_log`` view on a real PostgreSQL catalog gives the rows it gives on SQLite, for the same recorded run."""

from __future__ import annotations

import pytest

from lawlake.catalog import Catalog, Reconciliation

pytestmark = pytest.mark.postgres

RUN = "event-log-on-postgresql"


def _record(catalog: Catalog) -> None:
    """One run's stage, gate and release, as the runner records them."""
    catalog.start_run(RUN, sources="demo", engine="embedded")
    catalog.record_stage(RUN, "normalize", Reconciliation("silver.suspects", 10, 7, 2, 1, 0, 1), seconds=1.5, candidate_path="/c/s")
    results = [{"expectation": "not_null(name)", "success": True}, {"expectation": "check:x", "success": False, "observed": "1 violating row"}]
    catalog.record_gate(RUN, "normalize", "silver.suspects", success=False, results=results, rows=7, seconds=0.5, candidate_path="/c/s")
    release = catalog.begin_release(RUN, "normalize", {"silver.suspects": None})
    catalog.complete_release(release, {"silver.suspects": {"version": 0, "rows": 7}})
    catalog.finish_run(RUN, status="success")


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("_at")} for r in rows]  # timestamps differ between the two catalogs


def test_event_log_view_on_postgresql_matches_sqlite(fresh_postgres, tmp_path):
    postgres = fresh_postgres  # a database of its own: release ids start at 1 as on the new SQLite catalog
    on_pg, on_sqlite = Catalog(postgres), Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    for catalog in (on_pg, on_sqlite):
        _record(catalog)
    rows = on_pg.event_log(RUN)
    assert rows, "the view returns the run's events"
    assert _comparable(rows) == _comparable(on_sqlite.event_log(RUN))
    assert any(r.get("rows_in") == 10 and r.get("rows_quarantined") == 2 for r in rows)  # the stage's reconciliation is there
    Catalog(postgres)  # opening the catalog again replaces the view without error (CREATE OR REPLACE VIEW)
