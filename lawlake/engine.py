"""The Spark Connect session every job runs on.

Embedded default: a Sail server started in this process (no JVM). Its mode is Sail's own
setting, ``SAIL_MODE``: ``local`` (threads, the default) or ``local-cluster`` (a driver
and workers exchanging tasks and shuffle data over RPC inside the process — the code path
of Sail's ``kubernetes-cluster`` mode, see docs/kubernetes.md). Scale-out: a Sail server in
cluster mode or any Spark 4 Spark Connect server with Delta (``sc://host:15002``). Job code
is the same for all; only the URL differs.

On a Sail cluster (the embedded server with ``SAIL_MODE`` other than ``local``, or a remote
one declared with ``LAWLAKE_SAIL_CLUSTER=true``) every Delta write goes through
:func:`for_delta_write`: see there why.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyspark is heavy: imported only where a session is made
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["EMBEDDED", "session", "stop", "cores", "for_delta_write", "is_sail_cluster"]

EMBEDDED = "embedded"

_lock = threading.Lock()
_server = None  # the in-process Sail server, started once per process
_sessions: dict[str, SparkSession] = {}
_clusters: list[SparkSession] = []  # the sessions whose engine is a Sail cluster (see for_delta_write)


def _start_sail() -> str:
    global _server
    if _server is None:
        # Sail logs every session at INFO through env_logger; keep the console for our progress lines.
        os.environ.setdefault("RUST_LOG", "warn")
        # Sail drops a session idle for 15 minutes (spark.session_timeout_secs = 900). The embedded server
        # belongs to this process, which may wait longer than that between stages (an Airflow worker, a test
        # session around subprocess runs): keep its sessions for a day.
        os.environ.setdefault("SAIL_SPARK__SESSION_TIMEOUT_SECS", "86400")
        from pysail.spark import SparkConnectServer

        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        _server = server
        host, port = server.listening_address
        logging.getLogger(__name__).info("started embedded Sail engine on %s:%s (mode %s)", host, port, os.environ.get("SAIL_MODE", "local"))
    host, port = _server.listening_address
    return f"sc://{host}:{port}"


def session(engine: str = EMBEDDED) -> SparkSession:
    """Return the Spark Connect session for ``engine``: ``"embedded"`` or an ``sc://`` URL.

    The session is created once per process and engine, then reused.
    """
    if engine != EMBEDDED and not engine.startswith("sc://"):
        raise ValueError(f"engine must be 'embedded' or an sc:// URL, got {engine!r}")
    with _lock:
        if engine in _sessions:
            return _sessions[engine]
        from pyspark.sql import SparkSession

        url = _start_sail() if engine == EMBEDDED else engine
        # create(), not getOrCreate(): the latter hands back any existing default session,
        # whatever URL it was asked for.
        spark = SparkSession.builder.remote(url).create()
        # Timestamps are written and read in UTC whatever the machine's zone.
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        _sessions[engine] = spark
        if is_sail_cluster(engine):
            _clusters.append(spark)
        return spark


def is_sail_cluster(engine: str = EMBEDDED) -> bool:
    """Whether ``engine`` is a Sail cluster: the embedded server in a cluster ``SAIL_MODE`` (``local-cluster``), or a
    remote Sail server in ``kubernetes-cluster`` mode, which the client cannot tell apart and is told of by
    ``LAWLAKE_SAIL_CLUSTER=true``."""
    if engine == EMBEDDED:
        return os.environ.get("SAIL_MODE", "local").strip().lower() not in ("", "local")
    return os.environ.get("LAWLAKE_SAIL_CLUSTER", "").strip().lower() in ("1", "true", "yes")


def for_delta_write(df: DataFrame) -> DataFrame:
    """``df`` as a Delta write on its engine needs it: on a Sail cluster, with a shuffle on top; elsewhere as it is.

    pysail 0.7.2 runs a Delta commit in a stage on the driver, and that stage takes in every
    operator down to the first shuffle. The driver decodes its stage's plan with a function
    registry that lacks DataFusion's built-ins, so a write whose plan has no shuffle (one
    bronze file, no join: ``silver.police_transfers``) fails there with "ExtendedScalarUdf: no
    UDF found for translate" (``btrim``, ``upper``, ``regexp_replace`` alike), while the same
    query collected, or written as Parquet, runs. A round-robin shuffle ends the driver's
    stage below the writer: the query runs on the workers and the driver only commits. Local
    mode is left as it is (the shuffle would only cost there).
    """
    if not any(df.sparkSession is s for s in _clusters):
        return df
    return df.repartition(cores())


def stop(engine: str | None = None) -> None:
    """Stop one engine's session (``engine``), or every session and the embedded server.

    Stop a remote engine's session while its server is still up: releasing a session on
    a server that is gone makes the client retry for minutes.
    """
    global _server
    with _lock:
        for name in [engine] if engine else list(_sessions):
            spark = _sessions.pop(name, None)
            _clusters[:] = [s for s in _clusters if s is not spark]
            if spark is not None:
                try:
                    spark.stop()
                except Exception:  # a session whose server already went away
                    pass
        if engine is not None and EMBEDDED in _sessions:
            # Stopping a session clears pyspark's default session; code that asks for "the" session
            # (Great Expectations' Spark datasource does) must still find the embedded one.
            from pyspark.sql.connect.session import SparkSession as ConnectSession

            ConnectSession._set_default_and_active_session(_sessions[EMBEDDED])  # type: ignore[arg-type]  # a Connect session
        if engine is None and _server is not None:
            _server.stop()
            _server = None


def cores() -> int:
    """The cores this process may run on: its CPU affinity, so a container's cpuset counts (not the machine's count)."""
    return len(os.sched_getaffinity(0))
