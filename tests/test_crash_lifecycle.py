"""kill -9 at stage boundaries and mid-publication of a whole `lawlake run`: the next run converges to a clean run.

One lake goes through: run ``killed-gather`` dies half-way through publishing bronze;
run ``killed-integrate`` takes over its lock, undoes that, gathers and normalizes, and
dies half-way through publishing gold; run ``final`` takes over again and completes.
Its lake must equal a clean run's on the same sources, table for table and row for row
(lineage columns that name the run or the clock aside), quarantine included, with both
dead runs marked failed in the catalog.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lawlake import config
from lawlake.catalog import Catalog

from .releasing import lake_content

pytestmark = pytest.mark.crash



def _lawlake(*args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LAWLAKE_CRASH_AT"}
    env["LAWLAKE_SECRET_KEY"] = "crash-test-key"  # both lakes pseudonymize alike, so their shares compare
    if crash_at:
        env["LAWLAKE_CRASH_AT"] = crash_at
    return subprocess.run([str(Path(sys.executable).parent / "lawlake"), *args], env=env, capture_output=True, text=True, timeout=900)




@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash") / "demo"
    assert _lawlake("demo-data", "--out", str(root), "--scale", "0.05", "--seed", "7").returncode == 0
    return root


def test_runs_killed_mid_publication_converge_to_a_clean_run(sources, tmp_path):
    clean, lake = tmp_path / "clean", tmp_path / "lake"
    done = _lawlake("run", "--no-airflow", "--sources", str(sources), "--lake", str(clean), "--run-id", "clean", "--data-date", "2025-06-30")
    assert done.returncode == 0, done.stdout + done.stderr

    for run_id, point in (("killed-gather", "publish:bronze.court_cases"), ("killed-integrate", "publish:gold.case_chain")):
        died = _lawlake("run", "--no-airflow", "--sources", str(sources), "--lake", str(lake), "--run-id", run_id, "--data-date", "2025-06-30", crash_at=point)
        assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
    final = _lawlake("run", "--no-airflow", "--sources", str(sources), "--lake", str(lake), "--run-id", "final", "--data-date", "2025-06-30")
    assert final.returncode == 0, final.stdout + final.stderr

    assert lake_content(lake) == lake_content(clean)  # bronze … open and quarantine: exactly what a clean run writes
    catalog = Catalog(config.load(lake=lake).catalog_url)
    for dead in ("killed-gather", "killed-integrate"):
        run = catalog.run(dead)
        assert run["status"] == "failed" and run["message"].startswith("abandoned"), run
    assert catalog.run("final")["status"] == "success"
    statuses = {(r["run_id"], r["stage"]): r["status"] for r in catalog.releases()}
    assert statuses[("killed-gather", "gather")] == "discarded"
    assert statuses[("killed-integrate", "normalize")] == "complete"  # it got that far: the final run built on it
    assert statuses[("killed-integrate", "integrate")] == "discarded"
    assert not catalog.unfinished_releases() and not catalog.running_runs()


def test_a_second_run_is_refused_while_one_holds_the_lake(sources, tmp_path):
    from lawlake import lock

    lake = tmp_path / "lake"
    catalog = Catalog(config.load(lake=lake).catalog_url)
    lock.acquire(catalog, "long-running")  # this test process stands for a live run
    refused = _lawlake("run", "--no-airflow", "--sources", str(sources), "--lake", str(lake), "--run-id", "second")
    assert refused.returncode == 2
    assert "being written by run long-running" in refused.stderr
    assert catalog.run("second") is None  # nothing was started or written
