"""Stage releases and the lake lock: a kill -9 anywhere in publication leaves every reader on one complete release.

The publication loop runs :func:`lawlake.releases.publish` in a child process that
kills itself (SIGKILL, like ``kill -9``) at each named point of the publish path; the
lake is then read with an independent reader — sqlite3 on the catalog file and
delta-rs on the tables, none of lawlake's reading code — before the next run recovers.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lawlake import contracts, lock, pipeline, releases, tables
from lawlake.catalog import Catalog
from lawlake.config import Settings

TABLE = contracts.parse({"table": "silver.t", "grain": "one row per k", "columns": [{"name": "k", "type": "string", "description": "key"}]})
STAGE_TABLES = ("silver.a", "silver.b", "silver.c")
OLD = {"silver.a": ["a1"], "silver.b": ["b1"], "silver.c": ["c1"]}
NEW = {"silver.a": ["a1", "a2"], "silver.b": ["b2"], "silver.c": ["c1", "c2", "c3"]}

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from lawlake import engine, releases
    from lawlake.catalog import Catalog
    lake, url, plan = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    spark = engine.session()
    planned = [releases.Planned(t, Path(p), "overwrite", n) for t, p, n in plan]
    releases.publish(spark, Catalog(url), lake, run_id="second", stage="normalize", planned=planned)
    print("published")
    """
)


def _write(spark, path: Path, keys: list[str]) -> None:
    tables.write(contracts.dataframe(spark, [{"k": k} for k in keys], TABLE), path)


def _independent_read(lake: Path, catalog_db: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(each table at its version in the latest complete release, each table at its latest Delta version), without lawlake."""
    from deltalake import DeltaTable

    con = sqlite3.connect(catalog_db)
    rows = con.execute(
        "SELECT t.table_name, t.version FROM release_tables t JOIN releases r ON r.release_id = t.release_id "
        "WHERE r.status = 'complete' ORDER BY t.release_id"
    ).fetchall()
    con.close()
    released = dict(rows)  # later releases overwrite earlier ones
    at_release, latest = {}, {}
    for name in STAGE_TABLES:
        path = str(lake / "silver" / name.split(".")[1])
        at_release[name] = sorted(DeltaTable(path, version=released[name]).to_pyarrow_table().column("k").to_pylist())
        latest[name] = sorted(DeltaTable(path).to_pyarrow_table().column("k").to_pylist())
    return at_release, latest


@pytest.fixture
def released_lake(spark, tmp_path):
    """A lake whose three silver tables were released once (OLD), with NEW candidates staged for the next release."""
    lake = tmp_path / "lake"
    settings = Settings(lake=lake, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog = Catalog(settings.catalog_url)
    first = []
    for name in STAGE_TABLES:
        path = tmp_path / "first" / name
        _write(spark, path, OLD[name])
        first.append(releases.Planned(name, path, "overwrite", len(OLD[name])))
    releases.publish(spark, catalog, lake, run_id="first", stage="normalize", planned=first)
    plan = []
    for name in STAGE_TABLES:
        path = tmp_path / "second" / name
        _write(spark, path, NEW[name])
        plan.append((name, str(path), len(NEW[name])))
    return settings, plan, tmp_path / "catalog.db"


POINTS = [f"publish:{t}" for t in STAGE_TABLES] + ["before_release:normalize", "after_release:normalize"]


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_during_publication_leaves_readers_on_one_release_and_the_next_run_converges(spark, released_lake, point):
    settings, plan, db = released_lake
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.lake), settings.catalog_url, json.dumps(plan)],
        env={**__import__("os").environ, "LAWLAKE_CRASH_AT": point}, capture_output=True, text=True, timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr  # it really died mid-way, no cleanup

    at_release, latest = _independent_read(settings.lake, db)
    completed = point == "after_release:normalize"
    # every reader sees one complete release: all old, or (once the release is recorded) all new — never a mix
    assert at_release == (NEW if completed else OLD)
    if point == "publish:silver.b":
        assert latest["silver.a"] == NEW["silver.a"] and latest["silver.b"] == OLD["silver.b"]  # the torn state readers are kept from

    # the next run recovers: tables back to their released versions, the dead release discarded
    catalog = Catalog(settings.catalog_url)
    recovered = releases.recover(catalog, settings.lake)
    assert [r["stage"] for r in recovered] == ([] if completed else ["normalize"])
    assert _independent_read(settings.lake, db) == ((NEW, NEW) if completed else (OLD, OLD))
    assert not catalog.unfinished_releases()
    # … and publishing again converges to exactly what an uninterrupted publication writes
    planned = [releases.Planned(t, Path(p), "overwrite", n) for t, p, n in plan]
    releases.publish(spark, catalog, settings.lake, run_id="again", stage="normalize", planned=planned)
    assert _independent_read(settings.lake, db) == (NEW, NEW)


def test_a_table_no_release_ever_held_is_removed_on_recovery(spark, tmp_path):
    lake = tmp_path / "lake"
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    _write(spark, tmp_path / "cand", ["x"])
    release_id = catalog.begin_release("dead", "normalize", {"silver.new": None})
    tables.publish(spark, tmp_path / "cand", tables.location(lake, "silver.new"), mode="overwrite")  # committed, then the process died
    assert releases.versions(catalog) == {}  # no reader sees it
    (done,) = releases.recover(catalog, lake)
    assert done["release_id"] == release_id and done["restored"] == {"silver.new": None}
    assert not tables.exists(tables.location(lake, "silver.new"))


# -- the lake lock -------------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path):
    return Catalog(f"sqlite:///{tmp_path / 'lock.db'}")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_is_refused_naming_the_running_one(catalog):
    lock.acquire(catalog, "first")
    with pytest.raises(lock.LakeBusy, match="run first"):
        lock.acquire(catalog, "second")
    assert lock.acquire(catalog, "first").abandoned is None  # the holder's own tasks may take it again
    lock.release(catalog, "second")  # only the holder can give it back
    assert lock.holder(catalog)["run_id"] == "first"
    lock.release(catalog, "first")
    assert lock.holder(catalog) is None


def test_a_lock_left_by_a_dead_process_is_taken_over(catalog):
    lock.acquire(catalog, "dead", pid=_dead_pid())
    taken = lock.acquire(catalog, "next")
    assert (taken.run_id, taken.abandoned) == ("next", "dead")


def test_a_lock_held_by_heartbeat_alone_expires(catalog):
    from datetime import timedelta

    lock.acquire(catalog, "ui-run", pid=0)  # an Airflow-scheduled run: no process of its own
    with pytest.raises(lock.LakeBusy):
        lock.acquire(catalog, "other")
    assert lock.acquire(catalog, "other", ttl=timedelta(seconds=0)).abandoned == "ui-run"


def test_open_run_marks_the_dead_run_failed_and_undoes_its_half_release(spark, released_lake):
    settings, plan, db = released_lake
    catalog = Catalog(settings.catalog_url)
    catalog.start_run("second", sources="s", engine="embedded")
    lock.acquire(catalog, "second", pid=_dead_pid())
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.lake), settings.catalog_url, json.dumps(plan)],
        env={**__import__("os").environ, "LAWLAKE_CRASH_AT": "publish:silver.c"}, capture_output=True, text=True, timeout=300,
    )
    assert child.returncode == -signal.SIGKILL
    opened = pipeline.open_run(settings, "third", sources="s")
    assert opened["abandoned"] == "second" and [r["stage"] for r in opened["recovered"]] == ["normalize"]
    dead = catalog.run("second")
    assert dead["status"] == "failed" and "abandoned" in dead["message"] and "normalize release was undone" in dead["message"]
    assert _independent_read(settings.lake, db) == (OLD, OLD)
    assert lock.holder(catalog)["run_id"] == "third"
