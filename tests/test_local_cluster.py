"""Sail's local-cluster mode: a driver and workers over RPC in one process (the code path of its Kubernetes mode).

Measured on pysail 0.7.2: gather runs and writes exactly the bronze tables local mode
writes; normalize fails at its second table with "ExtendedScalarUdf: no UDF found for
translate" (and, with translate rewritten as regexp_replace, "… for regexp_replace"),
although the same functions in small queries of their own, shuffled or not, run in
cluster mode. The second test pins that Sail limitation (strict xfail): it starts
failing — telling us to extend the comparison to the whole lifecycle — the day Sail
runs normalize.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lawlake.demo.generator import generate

from .releasing import lake_content

pytestmark = pytest.mark.crash  # engines in subprocesses, like the crash tests

STAGES = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from datetime import date
from pathlib import Path
from lawlake import config, pipeline
pipeline.run_lifecycle(config.load(lake=Path(sys.argv[1])), sys.argv[3], sources=Path(sys.argv[2]), stages=tuple(sys.argv[4].split(",")),
                       data_date=date(2025, 6, 30))
"""

def _python(code: str, *args: str, mode: str) -> subprocess.CompletedProcess:
    env = os.environ | {"SAIL_MODE": mode, "LAWLAKE_SECRET_KEY": "cluster-test-key"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)


def test_gather_on_local_cluster_writes_the_bronze_local_mode_writes(tmp_path):
    sources = tmp_path / "demo"
    generate(sources, scale=0.05, seed=7)
    for mode in ("local", "local-cluster"):
        done = _python(STAGES, str(tmp_path / mode), str(sources), mode, "gather", mode=mode)
        assert done.returncode == 0, f"{mode}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    assert "(mode local-cluster)" in done.stdout + done.stderr  # the engine really ran as a cluster
    local, cluster = lake_content(tmp_path / "local"), lake_content(tmp_path / "local-cluster")
    assert set(cluster) == set(local) and any(n.startswith("bronze.") for n in local)
    for name in local:
        assert cluster[name] == local[name], name


@pytest.mark.xfail(strict=True, reason="pysail 0.7.2 local-cluster: normalize fails with 'ExtendedScalarUdf: no UDF found for translate'")
def test_normalize_on_local_cluster(tmp_path):
    sources = tmp_path / "demo"
    generate(sources, scale=0.05, seed=7)
    done = _python(STAGES, str(tmp_path / "lake"), str(sources), "cluster", "gather,normalize", mode="local-cluster")
    assert done.returncode == 0, done.stderr[-2000:]
