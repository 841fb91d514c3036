"""gather: native formats into bronze, with lineage, quarantine and idempotency."""

from __future__ import annotations

import json

import pytest

from jobs import gather
from lawlake import config, pipeline, tables
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


def test_gather_twice_adds_nothing(spark, settings, tmp_path):
    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather",))
    before = {n: tables.version(tables.location(settings.lake, n)) for n in tables.published_tables(settings.lake) if n.startswith("bronze.")}
    pipeline.run_lifecycle(settings, "run2", sources=sources, stages=("gather",))
    after = {n: tables.version(tables.location(settings.lake, n)) for n in tables.published_tables(settings.lake) if n.startswith("bronze.")}
    assert after == before  # no new rows, not even an empty commit
    recs = Catalog(settings.catalog_url).stage_results("run2")
    api = ("bronze.legal_aid_appointments", "bronze.mediation_records")
    assert all(r["rows_in"] == 0 for r in recs if r["table_name"] not in api)  # files by manifest, the database by watermark
    assert {r["table_name"]: r["rows_in"] for r in recs if r["table_name"] in api} == dict.fromkeys(api, 1)  # the unconfigured API, reported again


def test_python_rows_too_large_for_one_engine_message_go_through_parquet(spark, tmp_path, monkeypatch):
    """Spark Connect refuses a local table over 128 MB in one message (scale 400 failed so): larger batches are written
    as Parquet the engine reads. Forced for every table here, the bronze tables equal the ones sent inline."""
    from lawlake import contracts

    from ..releasing import lake_content

    src = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(config.load(lake=tmp_path / "inline"), "inline", sources=src, stages=("gather",))
    import pyarrow.parquet as pq

    written = []
    write_table = pq.write_table
    monkeypatch.setattr(pq, "write_table", lambda table, path, **kw: (written.append(path.parent.name), write_table(table, path, **kw)))
    monkeypatch.setattr(contracts, "LOCAL_ROWS_LIMIT", 0)
    pipeline.run_lifecycle(config.load(lake=tmp_path / "spilled"), "spilled", sources=src, stages=("gather",))
    assert "bronze.police_cases.rows" in written and "bronze.court_cases.rows" in written  # the Parquet path was taken
    inline, spilled = lake_content(tmp_path / "inline"), lake_content(tmp_path / "spilled")
    assert set(spilled) == set(inline) and any(n.startswith("bronze.") for n in inline)
    assert spilled == inline
