"""
### lawlake lifecycle: gather → normalize → integrate → share → open, each behind a quality gate

Every stage is two tasks: the stage's PySpark job writes candidate Delta tables to
staging, then its gate validates them with Great Expectations and publishes them as
one release (write → audit → publish). A failed gate publishes nothing, keeps the
candidates for inspection and stops every stage downstream.

`start` (a setup task) takes the lake for the run — one writer per lake: a second run
fails at once naming the running one — and undoes whatever a dead run left half
published. `finish` (its teardown) runs whatever happened: it marks the run succeeded
when every stage released, failed otherwise, and gives the lake back.

Params: `sources` (the agencies' exports), `lake` (the lake root), `engine`
(`embedded` Sail or an `sc://` Spark Connect URL), `catalog_url` (SQLAlchemy URL;
empty for the lake's own SQLite catalog), `run_id` (empty: derived from Airflow's),
`data_date` (the date the data describes; empty: the run's UTC date).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, setup, task, teardown

STAGES = ("gather", "normalize", "integrate", "share", "open")


def _settings(params: dict):
    from lawlake import config

    return config.load(lake=params["lake"] or None, catalog_url=params["catalog_url"] or None, engine=params["engine"] or None)


def _logging() -> None:
    import logging

    logging.getLogger("lawlake").setLevel(logging.INFO)


@dag(
    dag_id="lawlake_lifecycle",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["lawlake", "lifecycle"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=15)},
    params={
        "sources": Param("demo", type="string", description="Folder with the agencies' exports"),
        "lake": Param("", type="string", description="Lake root (empty: LAWLAKE_LAKE or ./lake)"),
        "engine": Param("", type="string", description="'embedded' or an sc:// Spark Connect URL (empty: LAWLAKE_ENGINE or embedded)"),
        "catalog_url": Param("", type="string", description="Catalog SQLAlchemy URL (empty: the lake's SQLite catalog)"),
        "run_id": Param("", type="string", description="lawlake run id (empty: derived from the Airflow run id)"),
        "data_date": Param("", type="string", description="The date the data describes, YYYY-MM-DD (empty: the run's UTC date)"),
        "full_refresh": Param(False, type="boolean", description="Rebuild every table, even those whose inputs did not change"),
    },
)
def lawlake_lifecycle():
    @setup
    def start() -> str:
        """Take the lake for the run (refused if another run holds it), recover from a dead run; return the lawlake run id."""
        from lawlake import pipeline

        _logging()
        ctx = get_current_context()
        params = ctx["params"]
        run_id = params["run_id"] or re.sub(r"[^A-Za-z0-9_.-]", "", ctx["dag_run"].run_id.replace("+", "_").replace(":", ""))
        # pid 0: the run's life is its tasks' heartbeats (a `lawlake run` that took the lake first keeps its own process).
        pipeline.open_run(_settings(params), run_id, sources=params["sources"], pid=0)
        return run_id

    def stage_task(stage: str):
        @task(task_id=stage)
        def run_stage(lawlake_run: str) -> dict:
            from datetime import date
            from pathlib import Path

            from lawlake import pipeline

            _logging()
            params = get_current_context()["params"]
            data_date = date.fromisoformat(params["data_date"]) if params.get("data_date") else None
            return pipeline.run_stage(stage, _settings(params), lawlake_run, sources=Path(params["sources"]).resolve(), data_date=data_date,
                                      full_refresh=bool(params.get("full_refresh")))

        return run_stage

    def gate_task(stage: str):
        # A failed gate is a verdict on the data, not a transient fault: never retried.
        @task(task_id=f"gate_{stage}", retries=0)
        def gate(summary: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from lawlake import pipeline
            from lawlake.catalog import Catalog

            _logging()
            settings = _settings(get_current_context()["params"])
            try:
                return pipeline.gate_stage(stage, settings, summary)
            except pipeline.GateFailed as exc:
                Catalog(settings.catalog_url).note_run(summary["run_id"], message=str(exc))
                raise AirflowFailException(str(exc)) from exc

        return gate

    @teardown
    def finish(lawlake_run: str) -> dict:
        """Close the run whatever happened: success only when every stage released; give the lake back."""
        from lawlake import pipeline
        from lawlake.catalog import Catalog

        settings = _settings(get_current_context()["params"])
        catalog = Catalog(settings.catalog_url)
        released = {r["stage"] for r in catalog.releases() if r["run_id"] == lawlake_run and r["status"] == "complete"}
        missing = [s for s in STAGES if s not in released]
        status = "failed" if missing else "success"
        noted = (catalog.run(lawlake_run) or {}).get("message")  # a failed gate's verdict says more than "stopped"
        message = None if not missing else noted or f"stopped before releasing {', '.join(missing)}"
        pipeline.close_run(settings, lawlake_run, status=status, message=message)
        return {"run_id": lawlake_run, "status": status}

    lawlake_run = start()
    upstream = lawlake_run
    for stage in STAGES:
        summary = stage_task(stage)(lawlake_run)
        upstream >> summary
        upstream = gate_task(stage)(summary)
    upstream >> finish(lawlake_run)


lawlake_lifecycle()
