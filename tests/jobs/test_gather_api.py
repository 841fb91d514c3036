"""gather from the public legal services API: pages, 429/503 with Retry-After, watermarks, reconciliation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from jobs import gather
from lawlake import config, connections, pipeline, tables
from lawlake.catalog import Catalog
from lawlake.demo import api

from .sources import small_sources

APPOINTMENTS = gather.SOURCES[[s.name for s in gather.SOURCES].index("legal.appointments")]
FIELDS = ("appointment_id", "case_number", "defendant_name", "id_number", "birth_date", "appointed_on", "appointed_by", "lawyer", "is_minor", "updated_at")
BATCH = "2023-04-02 23:30:00"  # one nightly batch: every record of it has this updated_at


def _aid(n: int, updated_at: str = BATCH, **extra) -> dict:
    return {"appointment_id": f"FY{n:09d}", "case_number": "（2023）浙0102刑初12号", "defendant_name": "张三", "id_number": "11010519491231002X",
            "birth_date": "1949-12-31", "appointed_on": "2023-04-02", "appointed_by": "杭州市上城区法律援助中心", "lawyer": "王明", "is_minor": False,
            "updated_at": updated_at, **extra}


def _store(root, records: list) -> None:
    folder = root / "legal"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "legal_aid_appointments.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    (folder / "mediation_records.jsonl").write_text("", encoding="utf-8")


class Waits(list):
    def __call__(self, seconds: float) -> None:  # record the backoff instead of sleeping it
        self.append(seconds)


def _collect(url, *, token=api.DEFAULT_TOKEN, watermark=None, published=(), retry=None):
    return gather.collect_api(APPOINTMENTS, {"url": url, "token": token}, watermark=watermark, published=set(published), rejected_before=set(),
                              params=gather.GatherParams(date(2024, 12, 31)), run_id="r", ingested_at=datetime(2024, 12, 31, tzinfo=UTC),
                              fields=FIELDS, retry=retry or gather.Retry(sleep=Waits()))


def test_pages_with_429_and_503_deliver_every_record_once(tmp_path):
    _store(tmp_path, [_aid(n) for n in range(1, 8)])  # seven records of one batch, served two a page
    waits = Waits()
    with api.running(tmp_path, fault_rate=0.5, seed=3, retry_after=2) as url:
        items = list(gather.read_api(url, api.DEFAULT_TOKEN, APPOINTMENTS.path, since=None, fields=FIELDS, key_fields=("appointment_id",), page_size=2,
                                     retry=gather.Retry(attempts=20, sleep=waits)))
    assert [i.key for i in items] == [f"FY{n:09d}" for n in range(1, 8)]  # none skipped, none twice, in order
    assert [i.file for i in items][::2] == [f"{APPOINTMENTS.path} page {p}" for p in (1, 2, 3, 4)]  # 4 pages: 2+2+2+1
    assert waits and set(waits) == {2.0}  # faults happened, each retried after the server's Retry-After


def test_unknown_fields_are_kept_in_raw_extra(tmp_path):
    _store(tmp_path, [_aid(1, centre_code="330102")])  # a field the contract does not document
    with api.running(tmp_path, fault_rate=0) as url:
        (item,) = gather.read_api(url, api.DEFAULT_TOKEN, APPOINTMENTS.path, since=None, fields=FIELDS)
    assert json.loads(item.fields["raw_extra"]) == {"centre_code": "330102"}  # kept, not dropped
    assert item.fields["is_minor"] == "false"  # a JSON boolean, as its JSON text


@pytest.mark.parametrize(
    ("token", "fault_rate", "why"),
    [
        ("wrong", 0.0, "HTTP 401"),  # a bad credential is not retried
        (api.DEFAULT_TOKEN, 1.0, "gave up after 3 attempts"),  # the service never answers: give up, read nothing
    ],
)
def test_a_listing_that_cannot_be_read_whole_is_one_source_reject(tmp_path, token, fault_rate, why):
    _store(tmp_path, [_aid(1), _aid(2)])
    with api.running(tmp_path, fault_rate=fault_rate, retry_after=0) as url:
        batch, mark = _collect(url, token=token, retry=gather.Retry(attempts=3, sleep=Waits()))
    assert batch.rows == [] and mark is None  # nothing half-read; the watermark stays
    (reject,) = batch.rejects
    assert (reject["scope"], reject["rule"]) == ("file", "gather.source_unreadable") and why in reject["reason"]
    assert batch.rows_in == 1  # the listing counts as one row in, one quarantined


def test_not_configured_is_source_missing():
    batch, mark = gather.collect_api(APPOINTMENTS, None, watermark=None, published=set(), rejected_before=set(),
                                     params=gather.GatherParams(date(2024, 12, 31)), run_id="r", ingested_at=datetime(2024, 12, 31), fields=FIELDS)
    assert [r["rule"] for r in batch.rejects] == ["gather.source_missing"] and mark is None


def test_watermark_rereads_its_own_batch_and_late_commits_without_duplicates(tmp_path):
    first = [_aid(1), _aid(2)]
    _store(tmp_path, first)
    with api.running(tmp_path, fault_rate=0) as url:
        batch, mark = _collect(url)
        assert (len(batch.rows), mark) == (2, BATCH)
        published = {r["_record_hash"] for r in batch.rows}
        # after the run: one more record of the same batch (same updated_at), and one committed late, 20 minutes older
        _store(tmp_path, [*first, _aid(3), _aid(4, updated_at="2023-04-02 23:10:00")])
        batch, mark2 = _collect(url, watermark=mark, published=published)
    assert sorted(r["appointment_id"] for r in batch.rows) == ["FY000000003", "FY000000004"]  # both found, 1 and 2 not again
    assert batch.rows_in == 2 and mark2 is None  # the overlap is not counted; the watermark did not move (nothing newer)


def test_endpoint_from_the_environment():
    assert connections.legal_services({"LAWLAKE_LEGAL_API_URL": "http://127.0.0.1:1", "LAWLAKE_LEGAL_API_TOKEN": "t"}) == {"url": "http://127.0.0.1:1", "token": "t"}
    assert connections.legal_services({}) is None  # not configured: gather reports the source missing


def test_every_delivered_record_is_in_bronze_or_quarantine_once_over_failures_and_reruns(spark, tmp_path, monkeypatch):
    settings = config.load(lake=tmp_path / "lake")
    src = small_sources(tmp_path / "src")
    _store(src, [_aid(1), _aid(2), [1, 2], _aid(3, updated_at="2023-04-03 23:30:00")])  # a broken item among three records
    monkeypatch.setenv("LAWLAKE_LEGAL_API_TOKEN", api.DEFAULT_TOKEN)

    def gathered(run_id, **serve):
        with api.running(src, retry_after=0, **serve) as url:
            monkeypatch.setenv("LAWLAKE_LEGAL_API_URL", url)
            pipeline.run_lifecycle(settings, run_id, sources=src, stages=("gather",))
        recs = {r["table_name"]: r for r in Catalog(settings.catalog_url).stage_results(run_id)}
        assert all(r["is_balanced"] for r in recs.values())
        return recs["bronze.legal_aid_appointments"]

    down = gathered("down", fault_rate=1.0)  # the service is down for the whole run
    assert (down["rows_in"], down["rows_out"], down["rows_quarantined"]) == (1, 0, 1)  # one listing reject, no records
    run1 = gathered("run1", fault_rate=0.4, seed=5)  # flaky: retried until every page came
    assert (run1["rows_in"], run1["rows_out"], run1["rows_quarantined"]) == (4, 3, 1)  # 3 records + the broken item
    run2 = gathered("run2", fault_rate=0.4, seed=6)  # a re-run: the overlap is read again and dropped
    assert (run2["rows_in"], run2["rows_out"], run2["rows_quarantined"]) == (0, 0, 0)
    bronze = tables.read(spark, tables.location(settings.lake, "bronze.legal_aid_appointments")).collect()
    assert sorted(r["appointment_id"] for r in bronze) == ["FY000000001", "FY000000002", "FY000000003"]  # each once
    q = tables.read(spark, tables.location(settings.lake, "quarantine.records")).where("source_table = 'legal.appointments'").collect()
    assert sorted((r["run_id"], r["rule"]) for r in q) == [("down", "gather.source_unreadable"), ("run1", "gather.unreadable")]  # the item once
    assert Catalog(settings.catalog_url).watermarks()["legal.appointments"] == "2023-04-03 23:30:00"  # advanced on release only


def test_a_run_reads_each_listing_once_and_leaves_none_running(tmp_path, monkeypatch):
    """Every gather table starts the run's listings in the background; one a table has taken is not started again
    (it was, for each later table: a second read of the service that outlived the run by its retries)."""
    settings = config.load(lake=tmp_path / "lake")
    src = small_sources(tmp_path / "src")
    _store(src, [_aid(1), _aid(2)])
    reads = []
    read_listing = gather._read_listing
    monkeypatch.setattr(gather, "_read_listing", lambda s, *a: (reads.append(s.name), read_listing(s, *a))[1])
    monkeypatch.setenv("LAWLAKE_LEGAL_API_TOKEN", api.DEFAULT_TOKEN)
    with api.running(src, retry_after=0, fault_rate=0.0) as url:
        monkeypatch.setenv("LAWLAKE_LEGAL_API_URL", url)
        pipeline.run_lifecycle(settings, "once", sources=src, stages=("gather",))
    assert sorted(reads) == ["legal.appointments", "legal.mediations"]
    assert not gather._PREFETCHED
    recs = {r["table_name"]: r for r in Catalog(settings.catalog_url).stage_results("once")}
    assert recs["bronze.legal_aid_appointments"]["rows_out"] == 2
