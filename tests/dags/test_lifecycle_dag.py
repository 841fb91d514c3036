"""The lifecycle DAG end to end through the real `airflow dags test`, on scale-1 demo data.

One module, four runs on one lake, in order:
1. a clean run: every gate passes, every table reconciles, every stage is released;
2. the same sources again: no new rows, no Delta table anywhere gets a new version,
   every stage after gather rebuilds nothing (incremental runs), and the DAGs, unchanged,
   are not serialized again;
3. a corrupted delivery (court cases judged before they were filed): the silver gate
   fails, the released silver and downstream tables are exactly as they were,
   nothing downstream ran, the failure is reported and the candidate kept;
4. a task that fails inside Airflow, with no `lawlake run` around it to clean up: the
   DAG's teardown marks the run failed and gives the lake back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lawlake import config, lock, pipeline, tables
from lawlake.catalog import Catalog
from lawlake.cli import SERIALIZED, dags_digest

pytestmark = pytest.mark.dag

DECLARED = {name: stage for name, (stage, _) in pipeline.declared_tables().items() if not name.startswith("work.")}
EXPECTED_TABLES = set(DECLARED) | {"quarantine.records"}


def lawlake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "lawlake"), *args], capture_output=True, text=True, timeout=900)


def snapshot(lake: Path, prefix: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """(released version, latest Delta version, rows at the released version) of every released table whose name starts with ``prefix``."""
    from deltalake import DeltaTable

    out = {}
    for name, version in Catalog(config.load(lake=lake).catalog_url).release_versions().items():
        if name.startswith(prefix):
            path = str(tables.location(lake, name))
            out[name] = (version, DeltaTable(path).version(), DeltaTable(path, version=version).to_pyarrow_dataset().count_rows())
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lawlake.demo import generate

    root = tmp_path_factory.mktemp("lifecycle")
    sources = root / "sources"
    generate(sources, scale=1, seed=11)
    return {"sources": sources, "lake": root / "lake", "settings": config.load(lake=root / "lake")}


@pytest.fixture(scope="module")
def first_run(world):
    return lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "first")


def test_clean_run_passes_every_gate_and_publishes_everything(world, first_run):
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    assert "first: SUCCESS" in first_run.stdout
    catalog = Catalog(world["settings"].catalog_url)
    assert catalog.run("first")["status"] == "success"
    gates = catalog.gate_results("first")
    assert sorted(g["table_name"] for g in gates) == sorted(list(DECLARED) + ["quarantine.records"] * 5)  # every table, and each stage's quarantine rows
    assert all(g["success"] for g in gates)
    stages = catalog.stage_results("first")
    assert {s["stage"] for s in stages} >= {"gather", "normalize", "integrate", "share"}
    assert all(s["is_balanced"] for s in stages)
    assert set(catalog.release_versions()) == EXPECTED_TABLES
    releases = [r for r in catalog.releases() if r["run_id"] == "first"]
    assert sorted(r["stage"] for r in releases) == sorted(pipeline.STAGES) and {r["status"] for r in releases} == {"complete"}
    for r in releases:  # each stage released all of its tables, and its quarantine rows, together
        assert set(r["tables"]) == {n for n, st in DECLARED.items() if st == r["stage"]} | {"quarantine.records"}
    assert lock.holder(catalog) is None  # the teardown gave the lake back
    # the run's candidates are gone once released
    assert not (world["lake"] / "_staging" / "first").exists()
    # where the evidence is
    assert f"lineage events (OpenLineage): {world['lake'] / '_lineage'}" in first_run.stdout and "lawlake events" in first_run.stdout


def test_airflow_emits_valid_openlineage_events_naming_the_tables(world, first_run):
    from lawlake import lineage

    from ..openlineage_check import validate

    assert first_run.returncode == 0
    emitted = [e for e in lineage.read_events(world["lake"]) if e.get("eventType")]
    assert emitted and all(validate(e) == [] for e in emitted)
    tasks = {(e["job"]["name"], e["eventType"]) for e in emitted}
    for stage in pipeline.STAGES:
        for task in (stage, f"gate_{stage}"):
            assert {(f"lawlake_lifecycle.{task}", "START"), (f"lawlake_lifecycle.{task}", "COMPLETE")} <= tasks, task
    done = next(e for e in emitted if e["job"]["name"] == "lawlake_lifecycle.gate_integrate" and e["eventType"] == "COMPLETE")
    versions = Catalog(world["settings"].catalog_url).released_tables()
    chain = {d["name"]: d for d in done["outputs"]}["gold.case_chain"]
    assert chain["namespace"] == lineage.namespace(world["lake"])
    assert chain["outputFacets"]["outputStatistics"]["rowCount"] == versions["gold.case_chain"]["rows"]
    assert {d["name"] for d in done["inputs"]} >= {"gold.case_chain"} and all("dataQualityAssertions" in d["inputFacets"] for d in done["inputs"])
    # the same graph as an in-process run: `lawlake lineage` reads it
    out = lawlake("lineage", "--lake", str(world["lake"]), "gold.case_chain")
    assert out.returncode == 0 and "silver.court_cases" in out.stdout and "share.hz_procuratorate.case_chain" in out.stdout


def _airflow_db(world) -> str:
    return str(world["lake"] / "_airflow" / "airflow.db")


def test_publications_are_asset_events_and_queue_the_partner_refresh(world, first_run):
    import sqlite3

    assert first_run.returncode == 0
    released = Catalog(world["settings"].catalog_url).released_tables()
    with sqlite3.connect(_airflow_db(world)) as db:
        rows = db.execute(
            "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE e.source_dag_id = 'lawlake_lifecycle'"
        ).fetchall()
        queued = {r[0] for r in db.execute("SELECT a.name FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id WHERE q.target_dag_id = 'partner_refresh'")}
    first = {}
    for name, extra in rows:
        extra = json.loads(extra)
        if extra.get("run_id") == "first" and name != "quarantine.records":
            first[name] = extra
    assert set(first) == set(DECLARED)  # one asset event per published table
    for name, extra in first.items():
        # the extra is the publication: the released Delta version and its rows
        assert (extra["version"], extra["rows"], extra["lake"]) == (released[name]["version"], released[name]["rows"], str(world["lake"])), name
    # the share tables' events queued the asset-triggered run of the downstream DAG (no scheduler runs here to start it):
    assert queued == {n for n in DECLARED if n.startswith("share.hz_procuratorate.")}


def test_partner_refresh_exports_the_share(world, first_run):
    from lawlake.cli import _airflow, _airflow_env

    assert first_run.returncode == 0
    env = _airflow_env(world["lake"] / "_airflow")
    proc = subprocess.run([_airflow(), "dags", "test", "partner_refresh", "-c", json.dumps({"lake": str(world["lake"])})], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((world["lake"] / "_exports" / "hz_procuratorate" / "manifest.json").read_text())
    released = Catalog(world["settings"].catalog_url).released_tables()
    exported = {t["name"].rsplit(".", 1)[-1]: t["rows"] for t in manifest["tables"]}
    assert exported == {n.rsplit(".", 1)[-1]: released[n]["rows"] for n in DECLARED if n.startswith("share.hz_procuratorate.")}  # every share table, at its released rows


def test_same_sources_again_add_no_rows(world, first_run):
    assert first_run.returncode == 0
    zones = ("bronze.", "silver.", "gold.", "share.", "open.", "quarantine.")
    before = snapshot(world["lake"], zones)
    serialized = world["lake"] / "_airflow" / SERIALIZED
    written = serialized.stat().st_mtime_ns
    again = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "again")
    assert again.returncode == 0, again.stdout[-3000:]
    # the DAGs are as the first run serialized them: not serialized again (`airflow dags reserialize`, 3 s)
    assert (serialized.read_text(), serialized.stat().st_mtime_ns) == (dags_digest(), written)
    # nothing new: every released table keeps its version and rows, and no Delta table got a new version
    assert snapshot(world["lake"], zones) == before
    catalog = Catalog(world["settings"].catalog_url)
    gathered = [s for s in catalog.stage_results("again") if s["stage"] == "gather"]
    assert len(gathered) == len([n for n in DECLARED if n.startswith("bronze.")]) and all(s["rows_in"] == 0 for s in gathered)
    assert {s["stage"] for s in catalog.stage_results("again")} == {"gather"}  # every later table was unchanged: not rebuilt
    assert {r["stage"] for r in catalog.releases() if r["run_id"] == "again" and r["status"] == "complete"} == set(pipeline.STAGES)


def _corrupt_delivery(sources: Path) -> None:
    """A day's court dump whose cases were 'judged' before they were filed (dates swapped in the export)."""
    lines = []
    for i in range(3):
        lines.append({
            "case_number": f"（2024）浙0102刑初{9900 + i}号", "court_name": "杭州市上城区人民法院", "trial_level": "first_instance",
            "original_case_number": None, "review_id": f"JC3301002024{990000 + i}", "charge": "盗窃罪",
            "filed_on": "2024-11-20", "judged_on": "2024-03-01",
            "parties": [{"name": "王五", "id_number": None, "sex": "男", "birth_date": "1990-01-01", "role": "defendant",
                         "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 12}],
            "updated_at": "2024-12-30 09:00:00",
        })
    path = sources / "courts" / "court_cases_20241230_corrupt.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")


def test_corrupted_source_fails_its_gate_and_changes_nothing_downstream(world, first_run):
    assert first_run.returncode == 0
    published_before = snapshot(world["lake"], ("silver.", "gold.", "share.", "open."))
    _corrupt_delivery(world["sources"])
    serialized = world["lake"] / "_airflow" / SERIALIZED
    serialized.write_text("serialized from other DAGs")  # as after a change to the DAGs or the code they are made of
    bad = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "corrupt")
    assert serialized.read_text() == dags_digest()  # serialized again before the run
    assert bad.returncode == 1
    assert "corrupt: FAILED" in bad.stdout
    assert "check:judged_after_filed: 3 violating rows" in bad.stdout  # the failure names the expectation
    # the released tables are exactly as they were: same versions, same rows
    assert snapshot(world["lake"], ("silver.", "gold.", "share.", "open.")) == published_before
    catalog = Catalog(world["settings"].catalog_url)
    run = catalog.run("corrupt")
    assert run["status"] == "failed" and "silver.court_cases" in run["message"]
    assert {s["stage"] for s in catalog.stage_results("corrupt")} == {"gather", "normalize"}  # nothing downstream ran
    failed = [g for g in catalog.gate_results("corrupt") if not g["success"]]
    assert [g["table_name"] for g in failed] == ["silver.court_cases"]
    assert tables.exists(Path(failed[0]["candidate_path"]))  # the candidate is kept for inspection
    gates = lawlake("gates", "--lake", str(world["lake"]))
    assert "FAILED" in gates.stdout and "judged_after_filed" in gates.stdout


def test_a_task_failing_inside_airflow_is_closed_by_the_teardown(world, first_run, tmp_path):
    from lawlake.cli import run_via_airflow

    assert first_run.returncode == 0
    settings = world["settings"]
    missing = tmp_path / "no-such-sources"  # gather fails on it (after its retry)
    code = run_via_airflow(settings, missing, "broken", echo=lambda line: None)  # Airflow alone: no `lawlake run` to clean up after it
    assert code != 0
    catalog = Catalog(settings.catalog_url)
    run = catalog.run("broken")
    assert run["status"] == "failed" and "stopped before releasing gather" in run["message"]
    assert lock.holder(catalog) is None
