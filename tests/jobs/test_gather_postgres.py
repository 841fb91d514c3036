"""gather: the police system on a real PostgreSQL, read by watermark in keyset batches.

Edge cases: many rows with one ``updated_at`` across a batch boundary, and a row committed
late with an older ``updated_at`` (inside the lookback overlap): none skipped, none twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from jobs import gather

TRANSFERS = gather.SOURCES[[s.name for s in gather.SOURCES].index("police.transfers")]
COLUMNS = ("transfer_id", "case_id", "procuratorate", "transferred_on", "updated_at")
SAME = "2023-03-01 10:00:00"  # one commit's timestamp, shared by many rows


@pytest.fixture(scope="module")
def pg_url(postgres):
    """The session's PostgreSQL (tests/conftest.py) with a fresh police ``transfers`` table."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS transfers"))
        conn.execute(text("CREATE TABLE transfers (transfer_id TEXT PRIMARY KEY, case_id TEXT, procuratorate TEXT, transferred_on TEXT, updated_at TEXT NOT NULL)"))
    engine.dispose()
    return postgres


def _insert(url, rows):
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO transfers VALUES (:t, :c, '某院', '2023-03-01', :u)"), [{"t": t, "c": f"A{t}", "u": u} for t, u in rows])
    engine.dispose()


def _collect(url, *, watermark=None, published=(), batch_size=3, overlap=timedelta(hours=1)):
    return gather.collect_police(TRANSFERS, gather.Path("unused"), watermark=watermark, published=set(published), rejected_before=set(),
                                 params=gather.GatherParams(date(2024, 12, 31), overlap=overlap), run_id="r", ingested_at=datetime(2024, 12, 31, tzinfo=UTC),
                                 columns=COLUMNS, url=url, batch_size=batch_size)


def test_postgres_watermark_edges(pg_url):
    # seven rows of one commit: batches of three cut through them twice; one row earlier, one with an irregular timestamp
    _insert(pg_url, [(f"T{n}", SAME) for n in range(1, 8)] + [("T0", "2023-02-01 09:00:00"), ("TX", "2023/03/01")])
    batch, mark = _collect(pg_url)
    assert sorted(r["transfer_id"] for r in batch.rows) == ["T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "TX"]  # each once
    assert batch.rows_in == 9 and mark == SAME
    published = {r["_record_hash"] for r in batch.rows}

    # after the run: one more row with the watermark's own timestamp, and one committed late with a 20 minutes older one
    _insert(pg_url, [("T8", SAME), ("T9", "2023-03-01 09:40:00")])
    batch2, mark2 = _collect(pg_url, watermark=mark, published=published)
    assert sorted(r["transfer_id"] for r in batch2.rows) == ["T8", "T9"]  # found; the overlap's 7 rows and TX not again
    assert batch2.rows_in == 2 and mark2 is None  # nothing newer than the watermark: it stays

    # without the lookback overlap the late row would be missed: the overlap is what finds it
    batch3, _ = _collect(pg_url, watermark=mark, published=published, overlap=timedelta(0))
    assert sorted(r["transfer_id"] for r in batch3.rows) == ["T8"]

    # a changed version of a row (same key, new updated_at) is a new bronze row, the old one stays
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE transfers SET procuratorate = '另一院', updated_at = '2023-03-02 08:00:00' WHERE transfer_id = 'T3'"))
    engine.dispose()
    published |= {r["_record_hash"] for r in batch2.rows}
    batch4, mark4 = _collect(pg_url, watermark=mark, published=published)
    assert [(r["transfer_id"], r["procuratorate"]) for r in batch4.rows] == [("T3", "另一院")] and mark4 == "2023-03-02 08:00:00"


def test_postgres_missing_table_is_a_source_reject(pg_url):
    src = gather.SOURCES[[s.name for s in gather.SOURCES].index("police.cases")]  # no cases table in this database
    batch, mark = gather.collect_police(src, gather.Path("unused"), watermark=None, published=set(), rejected_before=set(),
                                        params=gather.GatherParams(date(2024, 12, 31)), run_id="r", ingested_at=datetime(2024, 12, 31), url=pg_url)
    (reject,) = batch.rejects
    assert reject["rule"] == "gather.source_unreadable" and "postgres" in reject["reason"] and mark is None
