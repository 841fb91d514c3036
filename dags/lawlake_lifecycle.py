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

Lineage and Assets: every stage and gate task reports its datasets to the OpenLineage
provider (START/COMPLETE/FAIL; `lawlake.lineage_airflow.LifecycleExtractor`), and each
gate's outlets are the Assets of the tables it publishes: a publication is an asset event
whose `extra` holds the Delta version and row count, so other DAGs (`partner_refresh`)
can be scheduled on a table. Each task also appends its state to
`<lake>/_runs/<run_id>/events.jsonl`, the feed of `lawlake run`'s progress display.

Params: `sources` (the agencies' exports), `lake` (the lake root), `engine`
(`embedded` Sail or an `sc://` Spark Connect URL), `catalog_url` (SQLAlchemy URL;
empty for the lake's own SQLite catalog), `run_id` (empty: derived from Airflow's),
`data_date` (the date the data describes; empty: the run's UTC date).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, get_current_context, setup, task, teardown

from lawlake.lineage import published_by_stage

STAGES = ("gather", "normalize", "integrate", "share", "open")
PUBLISHES = published_by_stage()  # stage -> the tables its gate publishes (from the contracts: cheap at parse time)


def table_asset(name: str) -> Asset:
    """A lake table as an Airflow Asset: named by its logical name."""
    return Asset(name=name, uri=f"lawlake://lake/{name}", group="lawlake")


def _settings(params: dict):
    from lawlake import config

    return config.load(lake=params["lake"] or None, catalog_url=params["catalog_url"] or None, engine=params["engine"] or None)


@contextmanager
def _reported(settings, run_id: str, task_id: str):
    """The task's state in the run's progress feed: running, then success with its counts or failed with the error."""
    import time

    from lawlake import events

    started = time.perf_counter()
    result: list = []
    events.report(settings.lake, run_id, task_id, "running")
    try:
        yield result.append
    except BaseException as exc:
        events.report(settings.lake, run_id, task_id, "failed", seconds=time.perf_counter() - started, message=str(exc)[:500])
        raise
    events.report(settings.lake, run_id, task_id, "success", seconds=time.perf_counter() - started, **events.task_detail(result[0] if result else None))


def _report_failure(build, exc: BaseException) -> None:
    """Write a failed task's lineage report; never hide the task's own error behind a reporting one."""
    import logging

    from lawlake import lineage

    try:
        lineage.write_report(build(str(exc)))
    except Exception:
        logging.getLogger("lawlake").warning("[lawlake] could not write the lineage report of a failed task", exc_info=True)


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
        from lawlake.lineage import lawlake_run_id

        _logging()
        ctx = get_current_context()
        params = ctx["params"]
        run_id = lawlake_run_id(params["run_id"], ctx["dag_run"].run_id)
        # pid 0: the run's life is its tasks' heartbeats (a `lawlake run` that took the lake first keeps its own process).
        pipeline.open_run(_settings(params), run_id, sources=params["sources"], pid=0)
        return run_id

    def stage_task(stage: str):
        @task(task_id=stage)
        def run_stage(lawlake_run: str) -> dict:
            from datetime import date
            from pathlib import Path

            from lawlake import lineage, pipeline

            _logging()
            params = get_current_context()["params"]
            settings = _settings(params)
            data_date = date.fromisoformat(params["data_date"]) if params.get("data_date") else None
            sources = Path(params["sources"]).resolve()
            with _reported(settings, lawlake_run, stage) as done:
                try:
                    summary = pipeline.run_stage(stage, settings, lawlake_run, sources=sources, data_date=data_date,
                                                   full_refresh=bool(params.get("full_refresh")))
                except Exception as exc:
                    _report_failure(lambda error: lineage.stage_report(settings, stage, lawlake_run, sources=sources, error=error), exc)
                    raise
                lineage.write_report(lineage.stage_report(settings, stage, lawlake_run, summary, sources=sources))
                done(summary)
            return summary

        return run_stage

    def gate_task(stage: str):
        # A failed gate is a verdict on the data, not a transient fault: never retried.
        @task(task_id=f"gate_{stage}", retries=0, outlets=[table_asset(n) for n in PUBLISHES[stage]])
        def gate(summary: dict) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from lawlake import lineage, pipeline
            from lawlake.catalog import Catalog

            _logging()
            ctx = get_current_context()
            settings = _settings(ctx["params"])
            with _reported(settings, summary["run_id"], f"gate_{stage}") as done:
                try:
                    result = pipeline.gate_stage(stage, settings, summary)
                except pipeline.GateFailed as exc:
                    _report_failure(lambda error: lineage.gate_report(settings, stage, summary["run_id"], summary, error=error), exc)
                    Catalog(settings.catalog_url).note_run(summary["run_id"], message=str(exc))
                    raise AirflowFailException(str(exc)) from exc
                except Exception as exc:
                    _report_failure(lambda error: lineage.gate_report(settings, stage, summary["run_id"], summary, error=error), exc)
                    raise
                lineage.write_report(lineage.gate_report(settings, stage, summary["run_id"], summary, result))
                for name, info in result["published"].items():  # each publication an asset event: which version, how many rows
                    ctx["outlet_events"][table_asset(name)].extra = {"version": info["version"], "rows": info["rows"], "release": result["release"], "run_id": summary["run_id"],
                                                                       "lake": str(settings.lake)}
                done(result)
            return result

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
