"""OpenLineage for the lifecycle: which task read and wrote which Delta table, at which version.

Every stage and gate task reports its datasets as a small JSON *report*
(``<lake>/_runs/<run_id>/lineage/<task>.json``), built here from the catalog and the
Delta logs: a stage task reads the released tables its declarations name and writes
candidates; a gate task reads the candidates (with its expectations as a
``dataQualityAssertions`` facet) and publishes them (version, row count, schema).

The same report becomes OpenLineage run events on both paths:

- through Airflow, the OpenLineage provider emits START/COMPLETE/FAIL for every task;
  :mod:`lawlake.lineage_airflow` is the custom extractor that hands it the report;
- in-process (``lawlake run --no-airflow``, :func:`lawlake.pipeline.run_lifecycle`),
  :func:`traced` emits the same events with the ``openlineage-python`` client.

Datasets are named by their logical names (``silver.court_cases``) in the namespace of
the lake (``file://<lake>``). Where events go (:func:`transport_config`): the file
transport into ``<lake>/_lineage/`` (embedded default), or HTTP to a Marquez-compatible
endpoint when ``LAWLAKE_OPENLINEAGE_URL`` is set (``Settings.openlineage_url``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lawlake.config import Settings

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, OutputDataset

__all__ = [
    "DAG_ID",
    "JOB_NAMESPACE",
    "PRODUCER",
    "namespace",
    "lineage_dir",
    "transport_config",
    "published_by_stage",
    "lawlake_run_id",
    "stage_report",
    "gate_report",
    "write_report",
    "read_report",
    "datasets",
    "traced",
    "read_events",
    "graph",
]

DAG_ID = "lawlake_lifecycle"
JOB_NAMESPACE = "lawlake"  # Airflow's [openlineage] namespace is set to the same by `lawlake run`
PRODUCER = "https://github.com/lawlake/lawlake"
ZONE_STAGE = {"bronze": "gather", "silver": "normalize", "gold": "integrate", "open": "open"}
QUARANTINE = "quarantine.records"

T = TypeVar("T")
log = logging.getLogger("lawlake")


def namespace(lake: Path) -> str:
    """The OpenLineage namespace of a lake's tables: its location."""
    return f"file://{Path(lake).resolve()}"


def lineage_dir(lake: Path) -> Path:
    return Path(lake) / "_lineage"


def transport_config(settings: Settings) -> dict:
    """Where events go: HTTP to ``settings.openlineage_url`` (Marquez: ``/api/v1/lineage``) or files under ``<lake>/_lineage/``."""
    if settings.openlineage_url:
        cfg: dict[str, Any] = {"type": "http", "url": settings.openlineage_url, "endpoint": "api/v1/lineage"}
        key = os.environ.get("LAWLAKE_OPENLINEAGE_API_KEY")
        if key:
            cfg["auth"] = {"type": "api_key", "apiKey": key}
        return cfg
    folder = lineage_dir(settings.lake)
    folder.mkdir(parents=True, exist_ok=True)
    return {"type": "file", "log_file_path": str(folder / "event"), "append": False}  # one file per event


def published_by_stage(schemas: Path | None = None) -> dict[str, list[str]]:
    """The tables each stage's gate publishes, from the contracts and partner policies (cheap: for DAG parsing)."""
    from lawlake.config import SCHEMAS_DIR
    from lawlake.fileio import read_yaml

    root = schemas or SCHEMAS_DIR
    out: dict[str, list[str]] = {s: [] for s in ("gather", "normalize", "integrate", "share", "open")}
    for zone, stage in ZONE_STAGE.items():
        out[stage] = sorted(f"{zone}.{p.stem}" for p in (root / zone).glob("*.yaml"))
    for policy in sorted((root / "shares").glob("*.yaml")):
        doc = read_yaml(policy)
        out["share"] += [f"share.{doc['partner']}.{t}" for t in doc["tables"]]
    return {s: names + [QUARANTINE] for s, names in out.items()}


def lawlake_run_id(param: str | None, airflow_run_id: str) -> str:
    """The lawlake run id of a DAG run: its ``run_id`` param, or the Airflow run id made path-safe."""
    return param or re.sub(r"[^A-Za-z0-9_.-]", "", airflow_run_id.replace("+", "_").replace(":", ""))


# -- reports: a task's datasets as JSON ------------------------------------------------------


def _fields(path: Path, version: int | None = None) -> list[list[str]]:
    from deltalake import DeltaTable

    try:
        schema = DeltaTable(str(path), version=version).schema().to_arrow()
    except Exception:  # a table not written (yet): no schema facet rather than a wrong one
        return []
    return [[f.name, str(f.type)] for f in schema]  # type: ignore[attr-defined]  # a pyarrow schema (deltalake's stubs say otherwise)


def _ds(name: str, *, version: int | None = None, rows: int | None = None, fields: list | None = None, assertions: list | None = None,
        ns: str | None = None, built_from: list[str] | None = None) -> dict:
    return {"name": name, "namespace": ns, "version": version, "rows": rows, "fields": fields or [], "assertions": assertions, "from": built_from}


_DECLARED: dict[tuple, tuple[list[str], dict[str, list[str]]]] = {}


def _declared_inputs(stage: str, settings: Settings, run_id: str, data_date: str | None) -> tuple[list[str], dict[str, list[str]]]:
    """A stage's inputs from earlier stages, and each table it builds -> the tables it is built from (through work tables)."""
    key = (stage, str(settings.lake), run_id)
    if key not in _DECLARED:  # share and open compile their declarations: once per task
        _DECLARED[key] = _compile_inputs(stage, settings, run_id, data_date)
    return _DECLARED[key]


def _compile_inputs(stage: str, settings: Settings, run_id: str, data_date: str | None) -> tuple[list[str], dict[str, list[str]]]:
    from lawlake import pipeline
    from lawlake.declarations import Params, is_reference

    params = Params(run_id=run_id, started_at=datetime.now(UTC), data_date=date.fromisoformat(data_date) if data_date else date.today(),
                    min_cell=settings.open_min_cell, secret_key=settings.secret_key)
    declared = {t.name: t for t in pipeline.stage_of(stage).declared(params)}

    def sources(name: str, seen: frozenset = frozenset()) -> set[str]:
        t = declared[name]
        out: set[str] = set()
        for n in t.inputs:
            if n in seen or n == name or n == QUARANTINE or is_reference(n):
                continue
            out |= sources(n, seen | {name}) if n.startswith("work.") and n in declared else {n}
        return out

    built = {n: sorted(sources(n)) for n in declared if not n.startswith("work.")}
    inputs = sorted({n for ins in built.values() for n in ins} - set(built))
    return inputs, built


def _gather_inputs(sources: Path) -> list[dict]:
    """What gather reads: the agencies' folders (files, the police database) and each configured online API."""
    from jobs.gather import SOURCES
    from lawlake import connections

    online = connections.endpoints()
    folders = sorted({s.folder for s in SOURCES if s.kind != "api"})
    found = [_ds(f, ns=f"file://{sources.resolve()}") for f in folders if (sources / f).is_dir()]
    apis = [_ds(s.path, ns=online[s.folder]["url"].rstrip("/")) for s in SOURCES if s.kind == "api" and s.folder in online]
    return found + apis


def stage_report(settings: Settings, stage: str, run_id: str, summary: dict | None = None, *, sources: Path | None = None,
                 error: str | None = None) -> dict:
    """What a stage task read (released tables at their versions; gather: the agencies' folders) and wrote (candidates, rows, schema)."""
    from lawlake import tables
    from lawlake.catalog import Catalog

    released = Catalog(settings.catalog_url).released_tables()
    names, built = _declared_inputs(stage, settings, run_id, (summary or {}).get("data_date"))
    inputs = [_ds(n, version=released[n]["version"], rows=released[n]["rows"], fields=_fields(tables.location(settings.lake, n), released[n]["version"]))
              for n in names if n in released]
    if stage == "gather" and sources and Path(sources).is_dir():
        inputs += _gather_inputs(Path(sources))
    if summary:
        outputs = [_ds(c["table"], rows=c["rows"], fields=_fields(Path(c["path"])), built_from=built.get(c["table"])) for c in summary["candidates"]]
    else:
        outputs = [_ds(n, built_from=ins) for n, ins in built.items()]
    return {"task": stage, "stage": stage, "run_id": run_id, "lake": str(settings.lake), "inputs": inputs, "outputs": outputs, "error": error}


def gate_report(settings: Settings, stage: str, run_id: str, summary: dict, result: dict | None = None, *, error: str | None = None) -> dict:
    """What a gate read (the candidates, with each expectation's result) and published (version, rows, schema): nothing when it failed."""
    from lawlake import tables
    from lawlake.catalog import Catalog

    gates: dict[str, dict] = {}
    for gate in Catalog(settings.catalog_url).gate_results(run_id):
        if gate["stage"] == stage:
            gates[gate["table_name"]] = gate  # the last check of each candidate (a retried gate checks again)
    inputs = []
    for c in summary["candidates"]:
        g = gates.get(c["table"])
        assertions = [{"assertion": r["expectation"], "success": bool(r["success"]), **({"column": r["column"]} if r.get("column") else {}),
                       **({"actual": str(r["observed"])} if r.get("observed") is not None else {})} for r in (g["results"] if g else [])]
        inputs.append(_ds(c["table"], rows=c["rows"], fields=_fields(Path(c["path"])), assertions=assertions if g else None))
    outputs = []
    for name, info in ((result or {}).get("published") or {}).items():
        outputs.append(_ds(name, version=info["version"], rows=info["rows"], fields=_fields(tables.location(settings.lake, name), info["version"])))
    return {"task": f"gate_{stage}", "stage": stage, "run_id": run_id, "lake": str(settings.lake), "inputs": inputs, "outputs": outputs, "error": error}


def _report_path(lake: Path, run_id: str, task: str) -> Path:
    return Path(lake) / "_runs" / run_id / "lineage" / f"{task}.json"


def write_report(report: dict) -> Path:
    path = _report_path(Path(report["lake"]), report["run_id"], report["task"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def read_report(lake: Path, run_id: str, task: str) -> dict | None:
    path = _report_path(lake, run_id, task)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def datasets(report: dict) -> tuple[list[InputDataset], list[OutputDataset]]:
    """A report's datasets as OpenLineage input and output datasets with schema, version, statistics and assertion facets."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.data_quality_assertions_dataset import Assertion, DataQualityAssertionsDatasetFacet
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    ns = namespace(Path(report["lake"]))
    BuiltFromOutputFacet = _built_from_facet()  # noqa: N806

    def facets(d: dict) -> dict:
        out: dict[str, Any] = {}
        if d["fields"]:
            out["schema"] = SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in d["fields"]])
        if d["version"] is not None:
            out["version"] = DatasetVersionDatasetFacet(datasetVersion=str(d["version"]))
        return out

    inputs = []
    for d in report["inputs"]:
        input_facets: dict[str, Any] = {}
        if d["rows"] is not None:
            input_facets["inputStatistics"] = InputStatisticsInputDatasetFacet(rowCount=d["rows"])
        if d["assertions"] is not None:
            input_facets["dataQualityAssertions"] = DataQualityAssertionsDatasetFacet(
                assertions=[Assertion(assertion=a["assertion"], success=a["success"], column=a.get("column"), actual=a.get("actual")) for a in d["assertions"]]
            )
        inputs.append(InputDataset(namespace=d["namespace"] or ns, name=d["name"], facets=facets(d), inputFacets=input_facets))
    outputs = []
    for d in report["outputs"]:
        output_facets: dict[str, Any] = {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=d["rows"])} if d["rows"] is not None else {}
        if d.get("from") is not None:
            output_facets["lawlake_builtFrom"] = BuiltFromOutputFacet(inputs=list(d["from"]))
        outputs.append(OutputDataset(namespace=d["namespace"] or ns, name=d["name"], facets=facets(d), outputFacets=output_facets))
    return inputs, outputs


def _built_from_facet():
    import attr
    from openlineage.client.facet_v2 import OutputDatasetFacet

    @attr.define
    class BuiltFromOutputFacet(OutputDatasetFacet):
        """The tables (logical names, same namespace) this output is built from: its declaration's inputs, through work tables."""

        inputs: list[str] = attr.field(factory=list)

        @staticmethod
        def _get_schema() -> str:
            return "https://github.com/lawlake/lawlake/blob/main/docs/lineage.md#builtfrom"

    return BuiltFromOutputFacet


# -- in-process emission ------------------------------------------------------------------------


def _client(settings: Settings):
    from openlineage.client import OpenLineageClient

    return OpenLineageClient(config={"transport": transport_config(settings)})


def _emit(client, settings: Settings, **kw) -> None:
    """Emit one event; a lineage backend that is down is logged, never the run's failure (as with Airflow's provider)."""
    try:
        _send(client, settings, **kw)
    except Exception:
        log.warning("[lawlake] could not emit an OpenLineage %s event for %s", kw.get("event_type"), kw.get("task"), exc_info=True)


def _send(client, settings: Settings, *, event_type: str, task: str, run_uuid: str, parent_uuid: str, report: dict) -> None:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
    from openlineage.client.generated.job_type_job import JobTypeJobFacet
    from openlineage.client.generated.parent_run import Job as ParentJob
    from openlineage.client.generated.parent_run import ParentRunFacet
    from openlineage.client.generated.parent_run import Run as ParentRun

    inputs, outputs = datasets(report)
    run_facets: dict[str, Any] = {"parent": ParentRunFacet(run=ParentRun(runId=parent_uuid), job=ParentJob(namespace=JOB_NAMESPACE, name=DAG_ID))}
    if report.get("error"):
        run_facets["errorMessage"] = ErrorMessageRunFacet(message=str(report["error"])[:4000], programmingLanguage="python")
    job = Job(namespace=JOB_NAMESPACE, name=f"{DAG_ID}.{task}", facets={"jobType": JobTypeJobFacet(processingType="BATCH", integration="LAWLAKE", jobType="TASK")})
    client.emit(RunEvent(eventType=RunState[event_type], eventTime=datetime.now(UTC).isoformat(), run=Run(runId=run_uuid, facets=run_facets), job=job,
                         inputs=inputs, outputs=outputs, producer=PRODUCER))


def traced(settings: Settings, run_id: str, task: str, fn: Callable[[], T], *, start_report: dict, report: Callable[[T | None, str | None], dict],
           parent_uuid: str | None = None) -> T:
    """Run one task in this process the way Airflow runs it: progress events, and OpenLineage START, then COMPLETE or FAIL.

    ``start_report`` names the datasets known before the task runs; ``report(result, error)``
    builds the final one (from the result, or from the error when it raised).
    """
    from lawlake import events

    client = _client(settings)
    run_uuid = str(uuid.uuid4())
    parent = parent_uuid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"lawlake:{run_id}"))
    started = time.perf_counter()
    events.report(settings.lake, run_id, task, "running")
    _emit(client, settings, event_type="START", task=task, run_uuid=run_uuid, parent_uuid=parent, report=start_report)
    try:
        result = fn()
    except Exception as exc:
        events.report(settings.lake, run_id, task, "failed", seconds=time.perf_counter() - started, message=str(exc)[:500])
        try:  # the task's own error is what the caller must see, not a reporting one
            final = report(None, str(exc))
            write_report(final)
        except Exception:
            final = start_report | {"error": str(exc)}
        _emit(client, settings, event_type="FAIL", task=task, run_uuid=run_uuid, parent_uuid=parent, report=final)
        raise
    final = report(result, None)
    write_report(final)
    _emit(client, settings, event_type="COMPLETE", task=task, run_uuid=run_uuid, parent_uuid=parent, report=final)
    events.report(settings.lake, run_id, task, "success", seconds=time.perf_counter() - started, **events.task_detail(result))
    return result


# -- reading the events back ------------------------------------------------------------------


def read_events(lake: Path) -> Iterator[dict]:
    """Every OpenLineage event the file transport wrote under ``<lake>/_lineage/``, oldest first."""
    folder = lineage_dir(lake)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue


def graph(lake: Path) -> dict[str, dict[str, set[str]]]:
    """From completed run events: table -> {"upstream": tables read by the jobs that wrote it, "downstream": tables written from it, "jobs": …}."""
    out: dict[str, dict[str, set[str]]] = {}

    def node(name: str) -> dict[str, set[str]]:
        return out.setdefault(name, {"upstream": set(), "downstream": set(), "jobs": set()})

    own = namespace(lake)
    label = lambda d: d["name"] if d["namespace"] == own else f"{d['namespace']}/{d['name']}"  # noqa: E731
    for e in read_events(lake):
        if e.get("eventType") != "COMPLETE":
            continue
        ins = [label(d) for d in e.get("inputs") or []]
        for d in e.get("outputs") or []:
            o = label(d)
            node(o)["jobs"].add(e["job"]["name"])
            built_from = ((d.get("outputFacets") or {}).get("lawlake_builtFrom") or {}).get("inputs")
            if e["job"]["name"].rsplit(".", 1)[-1].startswith("gate_"):
                continue  # a gate reads the candidates and publishes the same tables: no edges of its own
            external = [i for i in ins if "/" in i]  # the agencies' folders (another namespace)
            for i in ins if built_from is None else [*built_from, *external]:
                if i != o and QUARANTINE not in (i, o):  # a gate reads and publishes the same name; quarantine is everyone's
                    node(o)["upstream"].add(i)
                    node(i)["downstream"].add(o)
    return out

