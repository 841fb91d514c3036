"""Shared fixtures: one real Sail engine for the whole test session."""

from __future__ import annotations

import os
import tempfile

import pytest

# Airflow reads its configuration at first import: give the test session a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lawlake-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("RUST_LOG", "warn")


@pytest.fixture(scope="session")
def spark():
    """A real embedded Sail engine behind the Spark Connect API."""
    from lawlake import engine

    yield engine.session(engine.EMBEDDED)
    engine.stop()


@pytest.fixture(scope="session")
def jvm_spark(tmp_path_factory):
    """Real JVM Spark (the Spark Connect server shipped in the pyspark wheel, local[2]) on a free port.

    A server process rather than ``remote("local[2]")`` in this process, so it lives beside
    the Sail session without touching pyspark's process-wide connect settings.
    """
    import socket
    import subprocess
    import time
    from pathlib import Path

    import pyspark
    from pyspark.sql import SparkSession

    home = Path(pyspark.__file__).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("jvm") / "spark-connect.log"
    proc = subprocess.Popen(
        [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.sql.session.timeZone=UTC", "spark-internal"],
        env={**os.environ, "SPARK_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JVM Spark Connect server did not start; see {log}")
            time.sleep(0.5)
    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
    yield spark
    spark.stop()
    proc.terminate()
    proc.wait(timeout=60)
