"""gather: native formats into bronze, with lineage, quarantine and idempotency."""

from __future__ import annotations

import json

import pytest

from jobs import gather
from lawlake import config, engine, pipeline, tables
from lawlake.catalog import Catalog

from .sources import small_sources, write_courts, write_reviews


@pytest.fixture
def settings(tmp_path):
    return config.load(lake=tmp_path / "lake")


def _bronze(spark, settings, name):
    return tables.read(spark, tables.location(settings.lake, name))


def test_reviews_csv_reads_gbk_and_rejects_short_lines(tmp_path):
    path = write_reviews(tmp_path, "20230101", [["JC1", "A1", "李四", "", "男", "", "2023/1/5", "起诉", "", "盗窃", "某院", "2023-01-05 00:00:00"]],
                         extra_lines=[b"JC2,A2\n"])
    items = list(gather.read_reviews_csv(path, key_fields=("review_id",)))
    assert items[0].fields["suspect_name"] == "李四"  # decoded from GBK
    assert items[0].fields["id_number"] is None  # empty cell: missing, not ""
    assert isinstance(items[1], gather.Unreadable) and "expected 18 fields, got 2" in items[1].reason


def test_reviews_csv_with_another_header_is_schema_drift(tmp_path):
    path = tmp_path / "procuratorate" / "reviews_20230101.csv"
    path.parent.mkdir()
    path.write_bytes("编号,姓名\n1,王五\n".encode("gbk"))
    with pytest.raises(gather.SourceFormatError, match="is not the documented"):
        list(gather.read_reviews_csv(path))


def test_court_jsonl_keeps_parties_as_json_and_rejects_broken_lines(tmp_path):
    path = write_courts(tmp_path, "20230101", [{"case_number": "X", "parties": [{"name": "赵六"}], "new_field": 1}, '{"case_number": "Y"', "[1, 2]"])
    good, broken, array = list(gather.read_court_jsonl(path))
    assert json.loads(good.fields["parties"]) == [{"name": "赵六"}]
    assert json.loads(good.fields["extra_fields"]) == {"new_field": 1}  # undocumented fields are kept, not dropped
    assert isinstance(broken, gather.Unreadable) and "not a JSON object" in broken.reason
    assert isinstance(array, gather.Unreadable) and "a list" in array.reason


def test_gather_then_gate_publishes_bronze_and_quarantines_rejects(spark, settings, tmp_path):
    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    assert _bronze(spark, settings, "bronze.police_cases").count() == 1
    assert _bronze(spark, settings, "bronze.procuratorate_reviews").count() == 1  # the second delivery is a duplicate
    assert _bronze(spark, settings, "bronze.court_cases").count() == 1
    custody = _bronze(spark, settings, "bronze.custody_records").collect()
    assert custody[0]["admitted_on"] == "2023-05-20"  # an Excel date cell, as ISO text
    q = {(r["rule"], r["source_table"]) for r in _bronze(spark, settings, "quarantine.records").collect()}
    assert q == {("gather.unreadable", "procuratorate.reviews"), ("gather.duplicate_delivery", "procuratorate.reviews"), ("gather.unreadable", "courts.cases"),
                 ("gather.source_missing", "legal.appointments"), ("gather.source_missing", "legal.mediations")}  # no legal services API configured: fail closed
    recs = {r["table_name"]: r for r in Catalog(settings.catalog_url).stage_results("run1")}
    assert (recs["bronze.procuratorate_reviews"]["rows_in"], recs["bronze.procuratorate_reviews"]["rows_out"], recs["bronze.procuratorate_reviews"]["rows_quarantined"]) == (3, 1, 2)
    assert all(r["is_balanced"] for r in recs.values())


def test_python_rows_are_written_in_one_file_per_core_so_every_scan_of_them_is_parallel(spark, settings, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "ROWS_PER_PARTITION", 2)  # at scale 100 a part holds 50k rows at least
    monkeypatch.setattr(engine, "cores", lambda: 3)
    sources = small_sources(tmp_path / "src")
    rows = [[f"JC330100202300010{i}", "A3301022023000001", f"李{i}", "", "男", "1980-01-01", "2023-03-02", "起诉", "2023-03-20", "盗窃罪", "杭州市上城区人民检察院",
             "2023-03-20 12:00:00"] for i in range(4)]
    write_reviews(sources, "20230322", rows)
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    reviews = tables.location(settings.lake, "bronze.procuratorate_reviews")
    assert len(list(reviews.glob("*.parquet"))) == 2  # 5 rows: two parts of at least 2 (not 3, one per core)
    assert sorted(r["review_id"] for r in _bronze(spark, settings, "bronze.procuratorate_reviews").collect()) == sorted(
        ["JC3301002023000001", *(r[0] for r in rows)])  # every row, once
    police = tables.location(settings.lake, "bronze.police_cases")
    assert len(list(police.glob("*.parquet"))) == 1  # one row: one part


def test_the_released_record_hashes_are_read_only_when_a_record_is_checked_against_them(spark, settings, tmp_path):
    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    released = {n: tables.version(tables.location(settings.lake, n)) for n in ("bronze.procuratorate_reviews",)}
    hashes = gather.ReleasedHashes(str(tables.location(settings.lake, "bronze.procuratorate_reviews")), released["bronze.procuratorate_reviews"])
    ingested = Catalog(settings.catalog_url).ingested().get("procuratorate.reviews", {})
    src = next(s for s in gather.SOURCES if s.name == "procuratorate.reviews")
    at = gather.datetime(2024, 1, 1, tzinfo=gather.UTC)
    batch, _ = gather.collect_files(src, sources, ingested=dict(ingested), known_duplicates=set(), published=hashes, run_id="again", ingested_at=at)
    assert (batch.rows, hashes._hashes) == ([], None)  # every file ingested already: nothing looked up, nothing read
    [row] = _bronze(spark, settings, "bronze.procuratorate_reviews").collect()
    assert row["_record_hash"] in hashes and "0" * 64 not in hashes  # read on the first look-up, from the released version


def test_a_watermark_re_read_asks_the_released_version_for_its_own_rows_only(spark, settings, tmp_path):
    """The police rows read again within the watermark's overlap are matched against bronze in one Arrow read: the
    set of every hash in bronze is never built for them (at scale 100 that took 0.15–0.19 s per police table)."""
    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    catalog = Catalog(settings.catalog_url)
    name = "bronze.police_cases"
    hashes = gather.ReleasedHashes(str(tables.location(settings.lake, name)), tables.version(tables.location(settings.lake, name)))
    [row] = _bronze(spark, settings, name).collect()
    assert hashes.among([row["_record_hash"], "0" * 64]) == {row["_record_hash"]} and hashes._hashes is None
    src = next(s for s in gather.SOURCES if s.name == "police.cases")
    batch, mark = gather.collect_police(src, sources / "police" / "police.db", watermark=catalog.watermark("police.cases"), published=hashes,
                                        rejected_before=set(), params=gather.GatherParams(data_date=gather.date(2024, 1, 1)), run_id="again",
                                        ingested_at=gather.datetime(2024, 1, 1, tzinfo=gather.UTC))
    assert (batch.rows, batch.rejects, batch.rows_in, mark, hashes._hashes) == ([], [], 0, None, None)  # the overlap's row: known, not delivered


def test_a_run_that_finds_nothing_new_never_imports_the_gate(settings, tmp_path):
    """Great Expectations is imported in the background only once a stage has something to judge: in a run that finds
    nothing new the import would take the core the run needs (at scale 100: 6.2 → 4.0 s for the same sources again)."""
    import os
    import subprocess
    import sys

    from lawlake.demo import api

    sources = small_sources(tmp_path / "src")
    (sources / "legal").mkdir()
    for feed in ("legal_aid_appointments", "mediation_records"):  # the API configured: no source is missing (reported, judged) each run
        (sources / "legal" / f"{feed}.jsonl").write_text("", encoding="utf-8")
    script = (
        "import sys; from jobs import gather; from lawlake import config, pipeline\n"
        "submitted = []; submit = gather._submit\n"
        "gather._submit = lambda *args: submitted.append(args[1].__name__) or submit(*args)\n"
        f"pipeline.run_lifecycle(config.load(lake={str(settings.lake)!r}), sys.argv[1], sources={str(sources)!r}, stages=('gather',))\n"
        "print('gx imported:', 'great_expectations' in sys.modules, 'sources in workers:', len(submitted))"
    )
    with api.running(sources, fault_rate=0) as url:
        env = os.environ | {"LAWLAKE_LEGAL_API_URL": url, "LAWLAKE_LEGAL_API_TOKEN": api.DEFAULT_TOKEN, "LAWLAKE_GATHER_WORKERS": "2"}
        runs = [subprocess.run([sys.executable, "-c", script, run], capture_output=True, text=True, check=True, env=env).stdout for run in ("run1", "run2")]
    # judged, its six file and database sources in workers; then nothing to judge, nothing new expected: no workers either
    assert [out.strip().splitlines()[-1] for out in runs] == ["gx imported: True sources in workers: 6", "gx imported: False sources in workers: 0"]


def test_gather_expects_new_input_from_a_first_delivery_or_a_file_the_manifest_does_not_name(settings, tmp_path):
    """The hint that imports the gate at a stage's start (a run with nothing new never pays for it)."""
    sources = small_sources(tmp_path / "src")

    import shutil

    def expects(folder=sources) -> bool:
        catalog = Catalog(settings.catalog_url)
        return gather.expects_new(pipeline._params(settings, catalog, "r", folder, None, pipeline.releases.versions(catalog)))

    assert expects()  # nothing released yet
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    moved = shutil.copytree(sources, tmp_path / "moved")
    assert not expects() and not expects(moved)  # the same files, wherever the folder is now
    write_reviews(sources, "20230322", [["JC9", "A9", "王五", "", "男", "", "2023/3/22", "起诉", "", "盗窃", "某院", "2023-03-22 00:00:00"]])
    assert expects()
    shutil.copy(sources / "procuratorate" / "reviews_20230320.csv", sources / "procuratorate" / "reviews_20230323.csv")  # a duplicate delivery
    pipeline.run_lifecycle(settings, "run2", sources=sources, stages=("gather",))
    assert not expects()  # the new file is ingested, the copy quarantined as a duplicate: both known


def test_gather_twice_adds_nothing(spark, settings, tmp_path, caplog):
    import logging

    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    before = {n: tables.version(tables.location(settings.lake, n)) for n in tables.published_tables(settings.lake) if n.startswith("bronze.")}
    with caplog.at_level(logging.INFO):
        pipeline.run_lifecycle(settings, "run2", sources=sources, stages=("gather",))
    # an empty batch is not written as a candidate at all; the unconfigured API's reject still is
    assert "nothing new for bronze.court_cases" in caplog.text and "nothing new for bronze.legal_aid_appointments" not in caplog.text
    after = {n: tables.version(tables.location(settings.lake, n)) for n in tables.published_tables(settings.lake) if n.startswith("bronze.")}
    assert after == before  # no new rows, not even an empty commit
    recs = Catalog(settings.catalog_url).stage_results("run2")
    api = ("bronze.legal_aid_appointments", "bronze.mediation_records")
    assert all(r["rows_in"] == 0 for r in recs if r["table_name"] not in api)  # files by manifest, the database by watermark
    assert {r["table_name"]: r["rows_in"] for r in recs if r["table_name"] in api} == dict.fromkeys(api, 1)  # the unconfigured API, reported again


def test_python_rows_too_large_for_one_engine_message_go_through_parquet(spark, tmp_path, monkeypatch):
    """Spark Connect refuses a local table over 128 MB in one message (scale 400 failed so): larger batches are written
    as Parquet the engine reads. Forced for every table here, the bronze tables equal the ones sent inline — whether
    this process collected the rows or gather's worker processes did (they write the Parquet themselves)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from lawlake import contracts

    from ..releasing import lake_content

    src = small_sources(tmp_path / "src")
    monkeypatch.setenv(gather.WORKERS_ENV, "0")
    pipeline.run_lifecycle(config.load(lake=tmp_path / "inline"), "inline", sources=src, stages=("gather",))
    written, spilled_by_worker = [], []
    write_table, dataframe = pq.write_table, contracts.dataframe
    monkeypatch.setattr(pq, "write_table", lambda table, path, **kw: (written.append(path.parent.name), write_table(table, path, **kw)))
    monkeypatch.setattr(contracts, "dataframe", lambda spark, rows, *a, **kw: (spilled_by_worker.append(isinstance(rows, Path)), dataframe(spark, rows, *a, **kw))[1])
    monkeypatch.setattr(contracts, "LOCAL_ROWS_LIMIT", 0)
    pipeline.run_lifecycle(config.load(lake=tmp_path / "spilled"), "spilled", sources=src, stages=("gather",))
    assert "bronze.police_cases.rows" in written and "bronze.court_cases.rows" in written  # the Parquet path was taken
    assert not any(spilled_by_worker)
    monkeypatch.setenv(gather.WORKERS_ENV, "2")
    written.clear()
    pipeline.run_lifecycle(config.load(lake=tmp_path / "workers"), "workers", sources=src, stages=("gather",))
    assert not written and sum(spilled_by_worker) == 6  # the workers wrote the Parquet of the 3 police tables and 3 file feeds
    inline, spilled, workers = (lake_content(tmp_path / n) for n in ("inline", "spilled", "workers"))
    assert set(spilled) == set(inline) and any(n.startswith("bronze.") for n in inline)
    assert spilled == inline
    assert workers == inline


def test_gather_in_worker_processes_equals_gather_in_this_process(tmp_path, monkeypatch):
    """The same sources collected by two worker processes (rows inline as Arrow) give the same release as in this
    process: every table and its quarantine, the manifest and the watermarks; a second run adds nothing either way."""
    import multiprocessing

    from ..releasing import lake_content

    src = small_sources(tmp_path / "src")
    lakes = {}
    for workers in ("0", "2"):
        monkeypatch.setenv(gather.WORKERS_ENV, workers)
        settings = config.load(lake=tmp_path / f"w{workers}")
        for run in ("first", "again"):
            pipeline.run_lifecycle(settings, f"{run}-{workers}", sources=src, stages=("gather",))
        catalog = Catalog(settings.catalog_url)
        again = {r["table_name"]: r["rows_out"] for r in catalog.stage_results(f"again-{workers}")}
        lakes[workers] = (lake_content(settings.lake), catalog.watermarks(), catalog.ingested(), again)
        assert not gather._POOL and not multiprocessing.active_children()  # the workers stopped with the stage
    assert lakes["2"] == lakes["0"]
    content, marks, ingested, again = lakes["0"]
    assert all(content[n] for n in content if n.startswith("bronze.police")) and marks and ingested
    assert set(again.values()) == {0}  # the second run: nothing new in either


def test_a_bad_worker_setting_is_refused(monkeypatch):
    monkeypatch.setenv(gather.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="LAWLAKE_GATHER_WORKERS='two'"):
        gather.gather_workers()


def test_a_script_that_starts_a_run_on_import_gets_a_clear_error_and_the_lake_is_untouched(tmp_path):
    """Worker processes are spawned and import the script that started the run; one without a ``__main__`` guard
    starts the run again in each worker. The run stops with an error that says so, and nothing is published."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = small_sources(tmp_path / "src")
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pathlib import Path\nfrom lawlake import config, pipeline\n"
        f"pipeline.run_lifecycle(config.load(lake=Path({str(tmp_path / 'lake')!r})), 'unguarded', sources=Path({str(src)!r}), stages=('gather',))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, gather.WORKERS_ENV: "2", "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, str(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "a worker process died" in proc.stderr and '`if __name__ == "__main__":`' in proc.stderr
    assert not Catalog(config.load(lake=tmp_path / "lake").catalog_url).release_versions()  # nothing published


def test_the_default_workers_follow_the_cores_this_process_may_use(monkeypatch):
    import os

    monkeypatch.delenv(gather.WORKERS_ENV, raising=False)
    sources = sum(1 for s in gather.SOURCES if s.kind != "api")
    assert gather.gather_workers() == min(len(os.sched_getaffinity(0)), sources)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # a large host: no more workers than sources
    assert gather.gather_workers() == sources == 6
    monkeypatch.setenv(gather.WORKERS_ENV, "0")
    assert gather.gather_workers() == 0


def test_police_rows_with_irregular_timestamps_are_read_first_in_key_order_then_the_rest_by_time(tmp_path):
    """On SQLite the irregular rows are found by a scan and sorted (not by walking the key's index): the same order."""
    from .sources import write_police

    stamps = {"S3": None, "S1": "2023/01/05", "S4": "2023-01-04 08:00:00", "S2": None, "S5": "2023-01-03 08:00:00"}
    write_police(tmp_path, cases=[], suspects=[{"suspect_id": k, "case_id": "A1", "updated_at": v} for k, v in stamps.items()])
    url = f"sqlite:///{tmp_path / 'police' / 'police.db'}"
    rows = list(gather.read_police_table(url, "suspects", since="2023-01-01 00:00:00", key_fields=("suspect_id",), batch_size=1))
    assert [(r.key, r.row_number) for r in rows] == [("S1", 1), ("S2", 2), ("S3", 3), ("S5", 4), ("S4", 5)]
