"""OpenLineage events of a real in-process run: valid against the spec, naming the Delta tables with their facets; `lawlake lineage`."""

from __future__ import annotations

import pytest

from lawlake import cli, lineage, pipeline
from lawlake.catalog import Catalog

from .openlineage_check import validate
from .small_run import small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


@pytest.fixture(scope="module")
def events(run):
    return list(lineage.read_events(run["lake"]))


def test_every_event_is_valid_openlineage(events):
    assert len(events) == 8  # gather, gate_gather, normalize, gate_normalize: START and COMPLETE each
    for e in events:
        assert validate(e) == [], e["job"]["name"]


def test_a_broken_event_is_refused_by_the_schema(events):
    broken = dict(events[0])
    broken.pop("eventTime")  # a run event without its time is not OpenLineage
    assert validate(broken) != []


def test_each_task_has_start_then_complete(events):
    by_job: dict[str, list[str]] = {}
    for e in events:
        by_job.setdefault(e["job"]["name"], []).append(e["eventType"])
    assert by_job == {f"lawlake_lifecycle.{t}": ["START", "COMPLETE"] for t in ("gather", "gate_gather", "normalize", "gate_normalize")}


def test_gate_events_name_published_versions_rows_schema_and_assertions(run, events):
    catalog = Catalog(run["settings"].catalog_url)
    released = catalog.released_tables()
    done = next(e for e in events if e["job"]["name"] == "lawlake_lifecycle.gate_normalize" and e["eventType"] == "COMPLETE")
    ns = lineage.namespace(run["lake"])
    outputs = {d["name"]: d for d in done["outputs"]}
    silver = {n for n, (s, _) in pipeline.declared_tables().items() if s == "normalize"}
    assert set(outputs) == silver | {"quarantine.records"}  # every table the gate published
    court = outputs["silver.court_cases"]
    assert court["namespace"] == ns
    assert court["facets"]["version"]["datasetVersion"] == str(released["silver.court_cases"]["version"])  # the released Delta version
    assert court["outputFacets"]["outputStatistics"]["rowCount"] == released["silver.court_cases"]["rows"]
    assert "case_number" in {f["name"] for f in court["facets"]["schema"]["fields"]}
    # the gate's verdict: one assertion per expectation the catalog recorded for the candidate
    gate = next(g for g in catalog.gate_results("small") if g["table_name"] == "silver.court_cases")
    checked = {d["name"]: d for d in done["inputs"]}["silver.court_cases"]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in checked] == [(r["expectation"], bool(r["success"])) for r in gate["results"]]


def test_stage_events_read_released_inputs_and_the_agencies_folders(run, events):
    normalize = next(e for e in events if e["job"]["name"] == "lawlake_lifecycle.normalize" and e["eventType"] == "COMPLETE")
    inputs = {d["name"]: d for d in normalize["inputs"]}
    assert "bronze.court_cases" in inputs and inputs["bronze.court_cases"]["facets"]["version"]["datasetVersion"] == "0"  # bronze as released by gather
    court = {d["name"]: d for d in normalize["outputs"]}["silver.court_cases"]
    assert court["outputFacets"]["lawlake_builtFrom"]["inputs"] == ["bronze.court_cases"]  # its declaration's input
    gather = next(e for e in events if e["job"]["name"] == "lawlake_lifecycle.gather" and e["eventType"] == "COMPLETE")
    assert {d["name"] for d in gather["inputs"]} >= {"courts", "police"}  # the agencies' folders
    assert {d["namespace"] for d in gather["inputs"]} == {f"file://{run['sources'].resolve()}"}


def test_lineage_command_shows_upstream_and_downstream(run, capsys):
    assert cli.main(["lineage", "--lake", str(run["lake"]), "bronze.court_cases"]) == 0
    lines = {tuple(line.split()[:2]) for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines == {
        ("upstream", f"file://{run['sources'].resolve()}/courts"),  # gathered from the courts' folder (and the other agencies' folders: the job reads them all;
        # not legal/: the demo writes the legal services API's data there, but gather reads that API, and none is configured here)
        ("upstream", f"file://{run['sources'].resolve()}/police"),
        ("upstream", f"file://{run['sources'].resolve()}/procuratorate"),
        ("upstream", f"file://{run['sources'].resolve()}/corrections"),
        ("downstream", "silver.court_cases"),  # both silver court tables are built from it
        ("downstream", "silver.court_defendants"),
    }
    assert cli.main(["lineage", "--lake", str(run["lake"]), "silver.court_cases"]) == 0
    lines = {tuple(line.split()[:2]) for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines == {("upstream", "bronze.court_cases")}  # only its declaration's input; no sibling, nothing downstream yet


def test_lineage_command_refuses_an_unknown_table(run, capsys):
    assert cli.main(["lineage", "--lake", str(run["lake"]), "gold.nothing"]) == 2
    assert "no events name 'gold.nothing'" in capsys.readouterr().err


def test_transport_is_http_when_a_url_is_configured(run):
    from dataclasses import replace

    assert lineage.transport_config(run["settings"])["type"] == "file"
    http = lineage.transport_config(replace(run["settings"], openlineage_url="http://127.0.0.1:5000"))
    assert http == {"type": "http", "url": "http://127.0.0.1:5000", "endpoint": "api/v1/lineage"}  # Marquez's endpoint


def test_failed_task_emits_fail_with_the_error(run, tmp_path):
    from dataclasses import replace

    settings = replace(run["settings"], lake=tmp_path / "lake")
    report = {"task": "gather", "stage": "gather", "run_id": "x", "lake": str(settings.lake), "inputs": [], "outputs": [], "error": None}

    def boom():
        raise RuntimeError("the sources folder vanished")

    with pytest.raises(RuntimeError):
        lineage.traced(settings, "x", "gather", boom, start_report=report, report=lambda result, error: report | {"error": error})
    events = list(lineage.read_events(settings.lake))
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "the sources folder vanished"
    assert all(validate(e) == [] for e in events)


def test_gather_reads_the_agencies_folders_and_the_configured_api(run, monkeypatch):
    sources = run["sources"]
    names = {(d["namespace"], d["name"]) for d in lineage._gather_inputs(sources)}
    folders = {(f"file://{sources.resolve()}", f) for f in ("police", "procuratorate", "courts", "corrections")}
    assert names == folders  # no legal API configured: it is not an input (gather reports it missing)
    monkeypatch.setenv("LAWLAKE_LEGAL_API_URL", "http://legal.example:8080/")
    names = {(d["namespace"], d["name"]) for d in lineage._gather_inputs(sources)}
    assert names == folders | {("http://legal.example:8080", "/v1/legal-aid/appointments"), ("http://legal.example:8080", "/v1/mediations")}
