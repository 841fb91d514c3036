"""The same lifecycle on Sail's local-cluster mode: a driver and workers over RPC (the path of its Kubernetes mode), identical tables.

Two `lawlake run --no-airflow` processes on the same sources, one with ``SAIL_MODE=local``
(the default) and one with ``SAIL_MODE=local-cluster``: every released table, quarantine
included, must hold the same rows (lineage columns naming the run or the clock aside).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lawlake.demo.generator import generate

from .releasing import lake_content

pytestmark = pytest.mark.crash  # whole runs in subprocesses, like the crash tests


def _run(sources: Path, lake: Path, mode: str) -> subprocess.CompletedProcess:
    env = os.environ | {"SAIL_MODE": mode, "LAWLAKE_SECRET_KEY": "cluster-test-key"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lawlake"), "run", "--no-airflow", "--sources", str(sources), "--lake", str(lake),
         "--run-id", mode, "--data-date", "2025-06-30"],
        env=env, capture_output=True, text=True, timeout=900,
    )


def test_local_cluster_mode_writes_the_tables_local_mode_writes(tmp_path):
    sources = tmp_path / "demo"
    generate(sources, scale=0.02, seed=11)
    runs = {mode: _run(sources, tmp_path / mode, mode) for mode in ("local", "local-cluster")}
    for mode, done in runs.items():
        assert done.returncode == 0, f"{mode}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    assert "(mode local-cluster)" in runs["local-cluster"].stdout + runs["local-cluster"].stderr  # the engine really ran as a cluster
    local, cluster = lake_content(tmp_path / "local"), lake_content(tmp_path / "local-cluster")
    assert set(cluster) == set(local) and len(local) > 20
    for name in local:
        assert cluster[name] == local[name], name
    assert any(local[n] for n in local if n.startswith("gold."))  # the runs built something to compare
