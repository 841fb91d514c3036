"""
### partner_refresh: a partner's file export, refreshed whenever its share tables are published

Scheduled on the Assets of the Hangzhou procuratorate's share tables (the lifecycle
DAG's `gate_share` publishes them, one asset event per table whose `extra` holds the
Delta version, row count and lake): when all of them have new versions, this DAG writes
the partner's export again (`lawlake share export`: Parquet + CSV + manifest.json with
row counts and SHA-256) into `<lake>/_exports/<partner>/`.

Params: `lake` (empty: the lake named by the triggering asset events, else LAWLAKE_LAKE),
`catalog_url` (empty: the lake's SQLite catalog).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, get_current_context, task

from lawlake.lineage import published_by_stage

PARTNER = "hz_procuratorate"
SHARE_TABLES = [n for n in published_by_stage()["share"] if n.startswith(f"share.{PARTNER}.")]


@dag(
    dag_id="partner_refresh",
    doc_md=__doc__,
    schedule=[Asset(name=n, uri=f"lawlake://lake/{n}", group="lawlake") for n in SHARE_TABLES],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # it exists to react to the share Assets: Airflow queues no runs for a paused DAG
    tags=["lawlake", "sharing"],
    default_args={"retries": 1},
    params={
        "lake": Param("", type="string", description="Lake root (empty: the triggering asset events' lake, else LAWLAKE_LAKE or ./lake)"),
        "catalog_url": Param("", type="string", description="Catalog SQLAlchemy URL (empty: the lake's SQLite catalog)"),
    },
)
def partner_refresh():
    @task
    def export() -> dict:
        """Write the partner's export from the released share tables; return its manifest's tables (name, version, rows)."""
        from lawlake import config
        from lawlake.sharing.delivery import export_share

        ctx = get_current_context()
        params = ctx["params"]
        lakes = {e.extra.get("lake") for events in (ctx.get("triggering_asset_events") or {}).values() for e in events if e.extra.get("lake")}
        if not params["lake"] and len(lakes) > 1:
            raise ValueError(f"the triggering asset events name several lakes {sorted(lakes)}: set the lake param")
        lake = params["lake"] or (lakes.pop() if lakes else None)
        settings = config.load(lake=lake, catalog_url=params["catalog_url"] or None)
        out = settings.lake / "_exports" / PARTNER
        manifest = export_share(settings, PARTNER, out)
        return {"out": str(out), "tables": [{"name": t["name"], "version": t["delta_version"], "rows": t["rows"]} for t in manifest["tables"]]}

    export()


partner_refresh()
