"""The lifecycle DAG end to end through the real `airflow dags test`, on scale-1 demo data.

One module, four runs on one lake, in order:
1. a clean run: every gate passes, every table reconciles, every stage is released;
2. the same sources again: no new bronze rows, no new bronze versions;
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


def test_same_sources_again_add_no_rows(world, first_run):
    assert first_run.returncode == 0
    before = snapshot(world["lake"], ("bronze.",))
    quarantined = snapshot(world["lake"], ("quarantine.",))["quarantine.records"][2]
    again = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "again")
    assert again.returncode == 0, again.stdout[-3000:]
    assert snapshot(world["lake"], ("bronze.",)) == before  # same versions, same rows
    # a stage that rebuilds in full replaces its quarantine rows: the same sources quarantine nothing more
    assert snapshot(world["lake"], ("quarantine.",))["quarantine.records"][2] == quarantined
    gathered = [s for s in Catalog(world["settings"].catalog_url).stage_results("again") if s["stage"] == "gather"]
    assert len(gathered) == 6 and all(s["rows_in"] == 0 for s in gathered)


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
    bad = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "corrupt")
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
