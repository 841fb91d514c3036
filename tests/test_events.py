"""The event log (catalog view) against the catalog tables of a real run; the progress feed; `lawlake events`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text

from lawlake import cli, events, pipeline
from lawlake.catalog import Catalog

from .small_run import small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


def test_event_log_numbers_match_the_catalog_tables(run):
    catalog = Catalog(run["settings"].catalog_url)
    log = {(r["stage"], r["table_name"]): r for r in events.event_log(catalog, "small")}
    stages = catalog.stage_results("small")
    gates = catalog.gate_results("small")
    releases = {r["stage"]: r for r in catalog.releases() if r["run_id"] == "small"}
    assert set(log) == {(g["stage"], g["table_name"]) for g in gates}  # every gated table once (quarantine.records once per stage)
    for s in stages:
        row = log[(s["stage"], s["table_name"])]
        assert (row["rows_in"], row["rows_out"], row["rows_quarantined"], row["rows_merged"], row["rows_excluded"]) == (
            s["rows_in"], s["rows_out"], s["rows_quarantined"], s["rows_merged"], s["rows_excluded"])
        assert row["stage_seconds"] == s["seconds"]
    for g in gates:
        row = log[(g["stage"], g["table_name"])]
        assert (row["gate_passed"], row["checks"], row["checks_failed"], row["gate_seconds"]) == (g["success"], g["evaluated"], g["failed"], g["seconds"])
        assert row["version"] == releases[g["stage"]]["tables"][g["table_name"]]  # the version the stage's release published
        assert row["release_id"] == releases[g["stage"]]["release_id"]
    # quarantine.records has no reconciliation of its own: no row counts, but its gate and version
    q = log[("gather", "quarantine.records")]
    assert q["rows_in"] is None and q["gate_passed"] is True and q["version"] is not None


def test_expectation_counts(run):
    catalog = Catalog(run["settings"].catalog_url)
    rows = events.event_log(catalog, "small", with_expectations=True)
    court = next(r for r in rows if r["table_name"] == "bronze.court_cases")
    assert len(court["expectations"]) == court["checks"]
    assert sum(e["failed"] for e in court["expectations"]) == court["expectations_failed"]
    # rows counted per expectation: an expectation without unexpected rows passes every candidate row
    assert all(e["passed"] + e["failed"] == court["candidate_rows"] for e in court["expectations"])


@pytest.mark.parametrize(
    "results, rows, expected",
    [
        ([{"success": True, "unexpected_count": 0}], 10, (10, 0)),  # all ten rows pass
        ([{"success": False, "unexpected_count": 3}], 10, (7, 3)),  # three rows fail
        ([{"success": False, "unexpected_count": None}], 4, (0, 4)),  # a table-level check that fails fails every row
    ],
)
def test_expectations_passed_failed(results, rows, expected):
    assert events.expectations(results, rows) == expected


def test_the_view_is_in_the_catalog_database(run):
    catalog = Catalog(run["settings"].catalog_url)
    with catalog.engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM event_log WHERE run_id = 'small'")).scalar()
    assert n == len(catalog.gate_results("small"))  # any SQL client can read it


def test_events_command_formats(run, capsys):
    lake = str(run["lake"])
    assert cli.main(["events", "--lake", lake, "--run", "small", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["stage"] == "gather" and rows[-1]["stage"] == "normalize"  # in the order they ran
    assert cli.main(["events", "--lake", lake, "--run", "small", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc) == len(rows) and "expectations" in doc[0]
    assert cli.main(["events", "--lake", lake, "--run", "nope"]) == 2  # an unknown run is refused
    assert "no run 'nope'" in capsys.readouterr().err


def test_progress_feed_of_the_run(run):
    feed, _ = events.read(run["lake"], "small")
    assert [(e["task"], e["state"]) for e in feed] == [
        (t, s) for t in ("gather", "gate_gather", "normalize", "gate_normalize") for s in ("running", "success")
    ]
    gathered = feed[1]
    bronze = [n for n in pipeline.declared_tables() if n.startswith("bronze.")]
    assert gathered["tables"] == len(bronze) + 1 and gathered["rows"] > 0  # every bronze table and the quarantine rows
