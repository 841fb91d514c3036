"""The engine is chosen by configuration: the embedded Sail engine, or any Spark Connect URL."""

from __future__ import annotations

import pytest

from lawlake import config, engine, pipeline, tables

from .jobs.sources import small_sources


@pytest.fixture(scope="module")
def remote_url():
    """A second, separate Spark Connect server (Sail) standing in for a remote cluster."""
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    host, port = server.listening_address
    url = f"sc://{host}:{port}"
    yield url
    engine.stop(url)  # release the session while its server is still there
    server.stop()


def test_a_stage_runs_on_the_spark_connect_url_it_is_given(tmp_path, remote_url, monkeypatch):
    monkeypatch.setenv("LAWLAKE_ENGINE", remote_url)
    settings = config.load(lake=tmp_path / "lake")
    assert settings.engine == remote_url
    # GX registers each batch as ``tmp_view`` in its DataFrame's session: a stale one in the
    # embedded (default) session must not be what the remote run's SQL checks read.
    engine.session(engine.EMBEDDED).range(1).createOrReplaceTempView("tmp_view")
    pipeline.run_lifecycle(settings, "remote", sources=small_sources(tmp_path / "src"), stages=("gather",))
    remote = engine.session(remote_url)
    assert remote is not engine.session(engine.EMBEDDED)  # a session of its own, on the other server
    assert tables.read(remote, tables.location(settings.lake, "bronze.court_cases")).count() == 1


@pytest.mark.parametrize("bad", ["local[2]", "http://spark:15002", ""])  # not 'embedded', not sc://
def test_an_unknown_engine_is_refused(bad):
    with pytest.raises(ValueError, match="engine must be 'embedded' or an sc:// URL"):
        engine.session(bad)


@pytest.mark.parametrize(
    "engine_url, env, cluster",
    [
        ("embedded", {}, False),  # Sail's default mode: local
        ("embedded", {"SAIL_MODE": "local"}, False),
        ("embedded", {"SAIL_MODE": "local-cluster"}, True),  # driver and workers over RPC
        ("sc://sail:50051", {}, False),  # a remote server is Spark unless declared
        ("sc://sail:50051", {"LAWLAKE_SAIL_CLUSTER": "true"}, True),  # Sail in kubernetes-cluster mode
        ("sc://sail:50051", {"SAIL_MODE": "local-cluster"}, False),  # the client's SAIL_MODE says nothing of a remote server
    ],
)
def test_a_sail_cluster_is_known_by_its_mode_or_declared(monkeypatch, engine_url, env, cluster):
    for name in ("SAIL_MODE", "LAWLAKE_SAIL_CLUSTER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert engine.is_sail_cluster(engine_url) is cluster
