"""``lawlake warnings``: the released warnings, filtered by agency, region and status, sealed chains hidden."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lawlake import cli, config, contracts, tables

from .releasing import release

D = dt.date


def _warning(chain_id, rule, agency, region, status, days_over):
    return {"chain_id": chain_id, "police_case_id": f"A{chain_id}", "region_code": region, "rule": rule, "article": "CPL art. 156",
            "agency": agency, "clock_started_on": D(2024, 1, 10), "deadline": D(2024, 3, 10), "ended_on": None,
            "judged_on": D(2024, 3, 10) + dt.timedelta(days=days_over), "days_over": days_over, "status": status,
            "evidence": f"silver.police_cases:A{chain_id}"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("warnlake") / "lake"
    schema = contracts.arrow_schema(contracts.load("gold.time_limit_warnings"))
    rows = [
        _warning("c1", "arrested_not_transferred", "police", "330102", "exceeded", 7),  # Hangzhou, police, over by 7
        _warning("c2", "review_for_prosecution", "procuratorate", "330102", "approaching", -3),  # Hangzhou, 3 days left
        _warning("c3", "first_instance", "court", "330302", "exceeded", 20),  # Wenzhou court
        _warning("c9", "arrested_not_transferred", "police", "330102", "exceeded", 40),  # a sealed chain: never listed
    ]
    write_deltalake(str(tables.location(lake, "gold.time_limit_warnings")), pa.Table.from_pylist(rows, schema=schema))
    write_deltalake(str(tables.location(lake, "gold.sealed_records")), pa.Table.from_pylist(
        [{"source_table": "silver.police_cases", "record_key": "Ac9", "chain_id": "c9", "person_key": "p9", "seal_status": "sealed"}]))
    release(config.load(lake=lake).catalog_url, lake, tables.published_tables(lake))
    return lake


def _listed(capsys) -> list[tuple[str, str]]:
    lines = capsys.readouterr().out.splitlines()
    # status, days_over, rule, article ("CPL art. 156": three words), agency, region_code, police_case_id
    rows = lines[1:]  # under the header line
    return [(line.split()[0], line.split()[8]) for line in rows if line.strip() and not line.startswith("(")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], [("exceeded", "Ac3"), ("exceeded", "Ac1"), ("approaching", "Ac2")]),  # exceeded first, most overdue first; c9 sealed
        (["--agency", "police"], [("exceeded", "Ac1")]),
        (["--region", "3301"], [("exceeded", "Ac1"), ("approaching", "Ac2")]),  # a prefecture prefix
        (["--status", "approaching"], [("approaching", "Ac2")]),
        (["--agency", "court", "--region", "3301"], []),  # no court warning in Hangzhou
    ],
)
def test_filters(lake, capsys, args, expected):
    assert cli.main(["warnings", "--lake", str(lake), *args]) == 0
    assert _listed(capsys) == expected


def test_a_bad_region_is_refused_with_exit_2(lake, capsys):
    assert cli.main(["warnings", "--lake", str(lake), "--region", "33' OR 1=1 --"]) == 2
    assert "region must be a GB/T 2260 code" in capsys.readouterr().err


def test_nothing_released_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["warnings", "--lake", str(tmp_path / "empty")]) == 2
    assert "lawlake warnings:" in capsys.readouterr().err


def test_the_warning_window_is_a_setting(tmp_path, monkeypatch):
    assert config.load(lake=tmp_path).warning_days_before == 5  # the default
    monkeypatch.setenv("LAWLAKE_WARNING_DAYS_BEFORE", "10")
    assert config.load(lake=tmp_path).warning_days_before == 10
    monkeypatch.setenv("LAWLAKE_WARNING_DAYS_BEFORE", "-1")
    with pytest.raises(ValueError, match="LAWLAKE_WARNING_DAYS_BEFORE"):
        config.load(lake=tmp_path)  # a negative window is refused, not silently read as none
