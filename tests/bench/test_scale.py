"""The parts of bench/scale.py that decide what a figure means: the held-back new day, peak memory per phase,
which Delta tables got a new version, and the fingerprints that say two lakes hold the same rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from .scripts import load

scale = load("scale")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The demo agencies at scale 0.05 (seed 7): ≈ 600 records, written in a couple of seconds."""
    from lawlake.demo import generate

    out = tmp_path_factory.mktemp("bench") / "demo"
    generate(out, scale=0.05, seed=7)
    return out


def test_new_day_holds_back_the_last_days_files_and_police_rows(sources):
    before, held = scale.hold_back_new_day(sources)
    cut = held["from"]
    # at least 0.1% of the records, and only the last days: far less than a full delivery
    assert held["records"] >= scale.NEW_DAY_SHARE * held["total"] and held["share"] < 0.05
    missing = sorted(p.relative_to(sources) for p in sources.rglob("*") if p.is_file() and not (before / p.relative_to(sources)).exists())
    # every file left out is a daily export dated on or after the cut; nothing else is left out
    assert missing and all(p.parts[0] in ("procuratorate", "courts") and scale._day_of(p).isoformat() >= cut for p in missing)
    assert len(missing) == held["files"]
    full_db, cut_db = sqlite3.connect(sources / "police" / "police.db"), sqlite3.connect(before / "police" / "police.db")
    for table in ("cases", "suspects", "transfers"):
        (late,) = cut_db.execute(f"SELECT count(*) FROM {table} WHERE updated_at >= ?", (cut,)).fetchone()
        (kept,) = cut_db.execute(f"SELECT count(*) FROM {table}").fetchone()
        (earlier,) = full_db.execute(f"SELECT count(*) FROM {table} WHERE updated_at < ?", (cut,)).fetchone()
        assert late == 0 and kept == earlier  # the copy holds exactly the rows updated before the cut
    # the original is untouched, and a second call reuses the copy
    assert scale.hold_back_new_day(sources) == (before, held)


def test_sampler_keeps_the_peak_of_each_phase():
    sampler = scale.Sampler(interval=0.01)
    sampler.start()
    sampler.phase("small")
    time.sleep(0.05)
    sampler.phase("big")
    ballast = bytearray(200 * 1024 * 1024)  # 200 MiB touched while "big" runs
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    time.sleep(0.05)
    del ballast
    sampler.phase("after")
    peaks = sampler.stop()
    assert set(peaks) == {"small", "big", "after"}  # "start" (before the first phase) is not reported
    assert peaks["big"]["peak_rss"] >= peaks["small"]["peak_rss"] + 150 * 1024 * 1024
    assert all(p["seconds"] >= 0 and p["cpu"] >= 0 for p in peaks.values())


def _table(path: Path, rows: list[dict], mode: str = "overwrite") -> None:
    write_deltalake(str(path), pa.Table.from_pylist(rows), mode=mode)


def test_delta_versions_and_fingerprints(tmp_path):
    lake, src = tmp_path / "lake", tmp_path / "sources"
    _table(lake / "bronze" / "a", [{"k": 1, "_source_file": f"{src}/x.csv", "_batch_id": "run-1"}, {"k": 2, "_source_file": f"{src}/y.csv", "_batch_id": "run-1"}])
    _table(lake / "_staging" / "run-1" / "bronze" / "a", [{"k": 9}])  # a candidate: not a published table
    assert scale.delta_versions(lake) == {"bronze/a": 0}
    first = scale.table_fingerprints(lake, src)
    assert first["bronze/a"]["rows"] == 2

    # the same rows in another order, another batch and another sources folder: the same fingerprint
    other, src2 = tmp_path / "other", tmp_path / "elsewhere"
    _table(other / "bronze" / "a", [{"k": 2, "_source_file": f"{src2}/y.csv", "_batch_id": "run-2"}, {"k": 1, "_source_file": f"{src2}/x.csv", "_batch_id": "run-2"}])
    assert scale.table_fingerprints(other, src2) == first

    # a changed value: another fingerprint; an append: a new version
    _table(other / "bronze" / "a", [{"k": 3, "_source_file": f"{src2}/z.csv", "_batch_id": "run-3"}], mode="append")
    assert scale.delta_versions(other) == {"bronze/a": 1}
    assert scale.table_fingerprints(other, src2)["bronze/a"] != first["bronze/a"]


def test_the_new_days_fixed_cost_is_the_smallest_scales_new_day_against_a_tenth_of_the_largest_full_run(capsys):
    def run(scale_, full, day):
        return {"scale": scale_, "new_day": {"records": 16 if scale_ == 1 else 1671}, "full": {"wall": full}, "day": {"wall": day}}

    # two repeats per scale, given largest first: paired in order, smallest scale against largest
    scale._new_day_floor([[run(100, 80.0, 40.0), run(100, 90.0, 41.0)], [run(1, 19.0, 16.0), run(1, 20.0, 18.0)]])
    line = capsys.readouterr().out.strip()
    assert line == "new day's fixed cost: scale 1's new day (16 records) took 16.0–18.0 s; 10% of scale 100's full run is 8.0–9.0 s (2.00×)"
    scale._new_day_floor([[run(100, 80.0, 40.0)]])  # one scale: nothing to compare
    assert capsys.readouterr().out == ""
