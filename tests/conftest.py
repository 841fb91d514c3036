"""Shared fixtures: one real Sail engine for the whole test session."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings

# Hypothesis profiles. ``ci`` (the default, and always when CI is set): derandomized, so a
# run draws the same examples every time, with a fixed budget, and a failure prints the
# blob that reproduces it (@reproduce_failure). ``dev``: random exploration with a bigger
# budget, for ``make fuzz`` (HYPOTHESIS_PROFILE=dev); its finds are kept in the local
# example database and belong in the tests as explicit cases.
settings.register_profile("ci", derandomize=True, max_examples=100, print_blob=True, database=None, deadline=None)
settings.register_profile("dev", derandomize=False, max_examples=1000, print_blob=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Airflow reads its configuration at first import: give the test session a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lawlake-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("RUST_LOG", "warn")


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 server for the session: its SQLAlchemy URL."""
    from .sharing.pg import PostgresServer, PostgresUnavailable

    try:
        pg = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    pg.start()
    yield pg.url
    pg.stop()


@pytest.fixture
def fresh_postgres(postgres, request):
    """A database of this test's own on the session's PostgreSQL (its ids and sequences start afresh)."""
    import re

    import sqlalchemy as sa

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield sa.engine.make_url(postgres).set(database=name).render_as_string(hide_password=False)


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
    import subprocess
    from pathlib import Path

    import pyspark
    from pyspark.sql import SparkSession

    from .servers import free_port, start_listening

    home = Path(pyspark.__file__).parent
    port = free_port()
    log = tmp_path_factory.mktemp("jvm") / "spark-connect.log"
    proc = start_listening(
        [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.sql.session.timeZone=UTC", "spark-internal"],
        port, name=f"the JVM Spark Connect server (log: {log})", timeout=180,
        env={**os.environ, "SPARK_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
    yield spark
    spark.stop()
    proc.terminate()
    proc.wait(timeout=60)
