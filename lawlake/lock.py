"""One writer per lake: the run that holds the lake lock is the only one that writes.

The lock is one row in the catalog (``lake_lock``), taken with an INSERT on its
primary key, so two runs racing for it cannot both win on SQLite or PostgreSQL. Its
holder names the run, the host and process that took it, and a heartbeat that
:class:`Heartbeat` refreshes while the process works.

A holder is alive, on this host, while the process that took the lock exists; a holder
with no owning process (``pid=0``: a run started from the Airflow UI, whose tasks are
separate processes) or on another host is alive while its heartbeat is fresh (younger
than ``ttl``), and its DAG's teardown releases it. A second run is refused at once with :class:`LakeBusy`, naming
the running run. A lock whose holder is dead is taken over: the caller is told which run
died (:attr:`Acquired.abandoned`) so it can mark that run failed and recover what it left
half published (see :mod:`lawlake.releases`).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lawlake.catalog import Catalog, lake_lock, utcnow

__all__ = ["LakeBusy", "Acquired", "acquire", "release", "holder", "Heartbeat", "DEFAULT_TTL"]

LOCK = "lake"
DEFAULT_TTL = timedelta(minutes=3)


class LakeBusy(RuntimeError):
    """Another run holds the lake: this one must not write."""


@dataclass(frozen=True)
class Acquired:
    run_id: str
    abandoned: str | None = None  # a dead run whose lock this run took over


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    # A zombie (killed, not yet reaped by its parent) holds nothing.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite returns naive UTC


def is_alive(row: dict, *, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None) -> bool:
    """Whether a lock holder still works: its process exists on this host, or (elsewhere) its heartbeat is fresh."""
    if row["pid"] and row["host"] == socket.gethostname():
        return _pid_alive(int(row["pid"]))
    return (now or utcnow()) - _aware(row["heartbeat_at"]) < ttl


def holder(catalog: Catalog) -> dict | None:
    with catalog.engine.connect() as c:
        row = c.execute(select(lake_lock).where(lake_lock.c.lock_name == LOCK)).mappings().first()
        return dict(row) if row else None


def acquire(catalog: Catalog, run_id: str, *, ttl: timedelta = DEFAULT_TTL, pid: int | None = None) -> Acquired:
    """Take the lake for ``run_id`` (or refresh it, if it holds it already); :class:`LakeBusy` if a live run holds it.

    ``pid``: the process whose life is the run's (default: this one); 0 for none, judged
    by heartbeat alone.
    """
    me = {"host": socket.gethostname(), "pid": os.getpid() if pid is None else pid}
    abandoned = None
    for _ in range(5):
        now = utcnow()
        try:
            with catalog.engine.begin() as c:
                c.execute(insert(lake_lock).values(lock_name=LOCK, run_id=run_id, acquired_at=now, heartbeat_at=now, **me))
            return Acquired(run_id, abandoned)
        except IntegrityError:
            pass
        row = holder(catalog)
        if row is None:
            continue  # released between our insert and our read
        if row["run_id"] == run_id:
            # The same run, from another task: it keeps the lock (and its owning process).
            with catalog.engine.begin() as c:
                c.execute(update(lake_lock).where(lake_lock.c.lock_name == LOCK, lake_lock.c.run_id == run_id).values(heartbeat_at=now))
            return Acquired(run_id, abandoned)
        if is_alive(row, ttl=ttl, now=now):
            raise LakeBusy(
                f"the lake is being written by run {row['run_id']} (process {row['pid']} on {row['host']}, "
                f"since {_aware(row['acquired_at']):%Y-%m-%d %H:%M:%S} UTC); wait for it to finish"
            )
        # Dead holder: remove exactly the row we judged dead, then race for the insert again.
        with catalog.engine.begin() as c:
            gone = c.execute(
                delete(lake_lock).where(lake_lock.c.lock_name == LOCK, lake_lock.c.run_id == row["run_id"], lake_lock.c.pid == row["pid"])
            ).rowcount
        if gone:
            abandoned = row["run_id"]
    raise LakeBusy("could not take the lake lock: other runs keep racing for it")


def release(catalog: Catalog, run_id: str) -> None:
    """Give the lake back (only if ``run_id`` holds it)."""
    with catalog.engine.begin() as c:
        c.execute(delete(lake_lock).where(lake_lock.c.lock_name == LOCK, lake_lock.c.run_id == run_id))


class Heartbeat:
    """Refresh the lock's heartbeat every ``every`` seconds from a daemon thread while the process works."""

    def __init__(self, catalog: Catalog, run_id: str, *, every: float = 20.0):
        self.catalog, self.run_id, self.every = catalog, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lawlake-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with self.catalog.engine.begin() as c:
                    c.execute(update(lake_lock).where(lake_lock.c.lock_name == LOCK, lake_lock.c.run_id == self.run_id).values(heartbeat_at=utcnow()))
            except Exception:  # a missed beat is not fatal; the next one retries
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
