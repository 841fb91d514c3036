"""
### lawlake lifecycle: gather → normalize → integrate → share → open, each behind a quality gate

Every stage is two tasks: the stage's PySpark job writes candidate Delta tables to
staging, then its gate validates them with Great Expectations and publishes them
(write → audit → publish). A failed gate publishes nothing, keeps the candidates for
inspection and stops every stage downstream.

Params: `sources` (the agencies' exports), `lake` (the lake root), `engine`
(`embedded` Sail or an `sc://` Spark Connect URL), `catalog_url` (SQLAlchemy URL;
empty for the lake's own SQLite catalog), `run_id` (empty: derived from Airflow's).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

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
    },
)
def lawlake_lifecycle():
    @task
    def start() -> str:
        """Open the run in the catalog; return the lawlake run id."""
        from lawlake.catalog import Catalog

        _logging()
        ctx = get_current_context()
        params = ctx["params"]
        run_id = params["run_id"] or re.sub(r"[^A-Za-z0-9_.-]", "", ctx["dag_run"].run_id.replace("+", "_").replace(":", ""))
        settings = _settings(params)
        Catalog(settings.catalog_url).start_run(run_id, sources=params["sources"], engine=settings.engine)
        return run_id

    def stage_task(stage: str):
        @task(task_id=stage)
        def run_stage(lawlake_run: str) -> dict:
            from pathlib import Path

            from lawlake import pipeline

            _logging()
            params = get_current_context()["params"]
            return pipeline.run_stage(stage, _settings(params), lawlake_run, sources=Path(params["sources"]).resolve())

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
                Catalog(settings.catalog_url).finish_run(summary["run_id"], status="failed", message=str(exc))
                raise AirflowFailException(str(exc)) from exc

        return gate

    @task(retries=0)
    def finish(lawlake_run: str, last: dict) -> dict:
        """Close the run, remove its published candidates and summarize it."""
        from lawlake import tables
        from lawlake.catalog import Catalog

        settings = _settings(get_current_context()["params"])
        catalog = Catalog(settings.catalog_url)
        catalog.finish_run(lawlake_run, status="success")
        tables.discard_staging(settings.lake, lawlake_run)
        return {"run_id": lawlake_run, "published": len(catalog.published())}

    lawlake_run = start()
    upstream = lawlake_run
    for stage in STAGES:
        summary = stage_task(stage)(lawlake_run)
        upstream >> summary
        upstream = gate_task(stage)(summary)
    finish(lawlake_run, upstream)


lawlake_lifecycle()
