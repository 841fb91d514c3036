"""gather under schema drift: added, dropped, renamed and retyped columns; shifted workbook headers; GB18030 round trips."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime

import pytest

from jobs import gather

from .sources import REVIEW_HEADER, write_custody

TRANSFERS = gather.SOURCES[[s.name for s in gather.SOURCES].index("police.transfers")]
CASES = gather.SOURCES[[s.name for s in gather.SOURCES].index("police.cases")]
TRANSFER_DDL = "transfer_id TEXT PRIMARY KEY, case_id TEXT, procuratorate TEXT, transferred_on TEXT, updated_at TEXT"


def _police(tmp_path, ddl: str, rows: list[tuple]):
    db = tmp_path / "police.db"
    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE transfers ({ddl})")
    con.executemany(f"INSERT INTO transfers VALUES ({','.join('?' * len(rows[0]))})", rows)
    con.commit()
    con.close()
    return gather.collect_police(TRANSFERS, db, watermark=None, published=set(), rejected_before=set(), params=gather.GatherParams(date(2024, 12, 31)),
                                 run_id="r", ingested_at=datetime(2024, 12, 31, tzinfo=UTC), columns=gather.contracts.load("bronze.police_transfers").names[:7])


@pytest.mark.parametrize(
    ("ddl", "row", "expect"),
    [
        # the documented columns without the later optional transfer_channel: read, the channel null
        (TRANSFER_DDL, ("T1", "A1", "某院", "2023-03-01", "2023-03-01 10:00:00"), {"transfer_channel": None, "raw_extra": None}),
        # a column added by the agency: kept in raw_extra, nothing dropped
        (TRANSFER_DDL + ", transfer_channel TEXT, clerk TEXT", ("T1", "A1", "某院", "2023-03-01", "2023-03-01 10:00:00", "online", "李四"),
         {"transfer_channel": "online", "raw_extra": json.dumps({"clerk": "李四"}, ensure_ascii=False)}),
        # a column whose type changed (an integer where text was): kept as its text
        (TRANSFER_DDL.replace("transferred_on TEXT", "transferred_on INTEGER"), ("T1", "A1", "某院", 20230301, "2023-03-01 10:00:00"),
         {"transferred_on": "20230301", "raw_extra": None}),
    ],
)
def test_police_drift_that_loses_nothing_is_read(tmp_path, ddl, row, expect):
    batch, _ = _police(tmp_path, ddl, [row])
    assert batch.rejects == []
    (got,) = batch.rows
    assert {k: got.get(k) for k in expect} == expect


@pytest.mark.parametrize(
    ("ddl", "kind"),
    [
        ("transfer_id TEXT PRIMARY KEY, case_id TEXT, transferred_on TEXT, updated_at TEXT", "dropped"),  # procuratorate gone
        ("transfer_id TEXT PRIMARY KEY, case_id TEXT, receiving_org TEXT, transferred_on TEXT, updated_at TEXT", "renamed"),  # procuratorate renamed
    ],
)
def test_police_drift_of_a_required_column_fails_closed_and_names_it(tmp_path, ddl, kind):
    n = ddl.count(",") + 1
    batch, mark = _police(tmp_path, ddl, [("T1", "A1", "x", "2023-03-01", "2023-03-01 10:00:00")[:n]])
    (reject,) = batch.rejects
    assert batch.rows == [] and mark is None  # nothing half-read, the watermark stays
    assert reject["rule"] == "gather.header_mismatch" and f"['procuratorate'] {kind}" in reject["reason"]
    assert json.loads(reject["record"])["drift"] == kind


def test_column_drift_names_added_and_missing():
    drift = gather.column_drift(TRANSFERS, ["transfer_id", "case_id", "org", "transferred_on", "updated_at"],
                                ["transfer_id", "case_id", "procuratorate", "transferred_on", "updated_at", "transfer_channel", "raw_extra"])
    assert (drift.added, drift.missing) == (["org"], ["procuratorate"])  # the optional channel and raw_extra are not missing


CUSTODY_ROW = ["JY1", "（2023）浙0102刑初12号", "张三", "11010519491231002X", "浙江省第一监狱", "监狱", "2023-05-20", None, "2023-05-20 08:00:00"]


def test_workbook_header_below_title_rows_is_found():
    header = list(gather.CUSTODY_HEADER)
    rows = [["浙江省监狱管理局 2023年5月 入监名册", "", ""], ["", "", ""], header, CUSTODY_ROW]  # a title, a blank row, then the header
    (rec,) = gather.parse_custody_rows(rows, "custody.xlsx")
    assert rec.fields["record_id"] == "JY1" and rec.row_number == 1  # the first record under the header


def test_workbook_with_data_above_a_shifted_header_is_refused():
    header = list(gather.CUSTODY_HEADER)
    rows = [CUSTODY_ROW, header, CUSTODY_ROW]  # a record above the header: reading from the header would lose it
    with pytest.raises(gather.SourceFormatError, match="is not the documented"):
        list(gather.parse_custody_rows(rows, "custody.xlsx"))


def test_workbook_with_an_extra_sheet_reads_the_records_sheet(tmp_path):
    path = write_custody(tmp_path, "202305", [CUSTODY_ROW])
    from openpyxl import load_workbook

    wb = load_workbook(path)
    wb.create_sheet("说明").append(["本表为示例"])  # an extra sheet of notes
    wb.save(path)
    (rec,) = gather.read_custody_xlsx(path)
    assert rec.fields["name"] == "张三"


@pytest.mark.parametrize("name", ["䶮", "𠮷田", "阿依古丽·买买提", "马·伊布拉欣"])  # rare (extension B/A) characters, a middle dot
def test_gb18030_csv_round_trips_byte_for_byte(name):
    header = ",".join(REVIEW_HEADER)
    line = f"JC1,A1,{name},,男,,2023/1/5,起诉,,盗窃,某院,2023-01-05 00:00:00" + "," * (len(REVIEW_HEADER) - 12)  # the time-limit columns empty
    data = (header + "\n" + line + "\n").encode("gb18030")
    (rec,) = gather.parse_reviews_csv(data, "reviews.csv")
    assert rec.fields["suspect_name"] == name
    assert rec.fields["suspect_name"].encode("gb18030") in data  # the same bytes as delivered
