"""gather against hostile deliveries: every case measured to crash, refuse every agency or lose records.

Most cases run the engine-free batch functions (:func:`jobs.gather.collect_files`,
:func:`jobs.gather.collect_police`) on real files in ``tmp_path``; the last test runs
the real stage and gate twice on a hostile tree.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs import gather
from lawlake import config, pipeline, tables
from lawlake.catalog import Catalog

from .sources import CUSTODY_HEADER, REVIEW_HEADER, small_sources, write_courts, write_custody, write_police, write_reviews

AT = datetime(2026, 12, 1, tzinfo=UTC)
PARAMS = gather.GatherParams(data_date=date(2026, 12, 1))
SRC = {s.name: s for s in gather.SOURCES}
REVIEW = ["JC1", "A1", "张三", "11010519491231002X", "女", "1949/12/31", "2023年3月2日", "起诉", "2023-03-20", "盗窃罪", "某院", "2023-03-20 12:00:00",
          "", "", "", "", "", "0"]  # no supplementary rounds, no art. 172 extension, not marked major
CUSTODY = ["JY1", "（2023）浙0102刑初12号", "张三", "11010519491231002X", "浙江省第一监狱", "监狱", datetime(2023, 5, 20), None, "2023-05-20 08:00:00"]


def collect(root, name, *, ingested=None, duplicates=frozenset(), published=frozenset()):
    batch, manifest = gather.collect_files(SRC[name], root, ingested=ingested or {}, known_duplicates=set(duplicates), published=set(published),
                                           run_id="t", ingested_at=AT)
    assert batch.rows_in == len(batch.rows) + len(batch.rejects)  # the reconciliation balances, whatever happened
    return batch, manifest


def rules(batch):
    return [(r["scope"], r["rule"]) for r in batch.rejects]


def csv_bytes(rows, *, header=",".join(REVIEW_HEADER), end="\n"):
    return (header + end + "".join(",".join(r) + end for r in rows))


def police(root, cases):
    write_police(root, cases=cases, suspects=[], transfers=[])
    return root / "police" / "police.db"


def case(cid, updated_at):
    return {"case_id": cid, "region_code": "330102", "charge": "盗窃", "status": "立案", "updated_at": updated_at}


def collect_police(db, *, watermark=None, published=frozenset(), rejected_before=frozenset(), params=PARAMS):
    batch, wm = gather.collect_police(SRC["police.cases"], db, watermark=watermark, published=set(published), rejected_before=set(rejected_before),
                                      params=params, run_id="t", ingested_at=AT)
    assert batch.rows_in == len(batch.rows) + len(batch.rejects)
    return batch, wm


# -- CSV: crashes that were ------------------------------------------------------------


def test_csv_carriage_return_inside_a_line_rejects_that_record_only(tmp_path):
    (tmp_path / "procuratorate").mkdir()
    broken = ",".join(REVIEW).replace("张三", "张\r三")  # a flipped byte became a bare CR in an unquoted field
    (tmp_path / "procuratorate" / "reviews_20230101.csv").write_bytes((csv_bytes([]) + broken + "\n" + ",".join(["JC2"] + REVIEW[1:]) + "\n").encode("gbk"))
    batch, _ = collect(tmp_path, "procuratorate.reviews")
    assert [r["review_id"] for r in batch.rows] == ["JC2"]  # the next record is read
    assert rules(batch) == [("record", "gather.unreadable"), ("record", "gather.unreadable")]  # the line falls apart into two pieces
    assert "row 1" in batch.rejects[0]["reason"] and "expected 18 fields" in batch.rejects[0]["reason"]


def test_csv_quoted_newline_and_carriage_return_crlf_and_a_field_over_128_kib_are_read(tmp_path):
    (tmp_path / "procuratorate").mkdir()
    long_name = "长" * 70_000  # 140 KB in GBK, over csv's default 128 KiB field limit
    rows = [["JC1"] + REVIEW[1:10] + ['"某\r\n院"', *REVIEW[11:]], ["JC2", REVIEW[1], long_name] + REVIEW[3:]]
    (tmp_path / "procuratorate" / "reviews_20230101.csv").write_bytes(csv_bytes(rows, end="\r\n").encode("gbk"))
    batch, manifest = collect(tmp_path, "procuratorate.reviews")
    assert batch.rejects == []
    assert batch.rows[0]["procuratorate"] == "某\r\n院"  # the quoted line break is part of the value
    assert batch.rows[1]["suspect_name"] == long_name and batch.rows[1]["_row_number"] == 3  # its first line is line 4 (the quoted field spans 2 and 3)
    assert manifest[0]["rows"] == 2


# -- CSV: one bad file refused every agency ------------------------------------------


@pytest.mark.parametrize("encode", [
    pytest.param(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), id="utf8-bom"),
    pytest.param(lambda t: t.encode("utf-8"), id="utf8"),
    pytest.param(lambda t: t.encode("gb18030"), id="gb18030"),
])
def test_csv_in_utf8_or_gb18030_where_gbk_was_promised_keeps_rare_characters_byte_for_byte(tmp_path, encode):
    (tmp_path / "procuratorate").mkdir()
    rare = ["JC1", "A1", "䶮𠮷", "", "男", "", "", "起诉", "", "盗窃", "某院", ""] + [""] * 6  # 䶮 and 𠮷 are not in GBK
    dotted = ["JC2", "A1", "阿卜杜·热合曼", "", "男", "", "", "起诉", "", "盗窃", "某院", ""] + [""] * 6  # a name with a middle dot
    (tmp_path / "procuratorate" / "reviews_20230101.csv").write_bytes(encode(csv_bytes([rare, dotted])))
    batch, _ = collect(tmp_path, "procuratorate.reviews")
    assert [r["suspect_name"] for r in batch.rows] == ["䶮𠮷", "阿卜杜·热合曼"]
    assert batch.rejects == []


@pytest.mark.parametrize("content, rule", [
    ("编号,姓名\n1,王五\n".encode("gbk"), "gather.header_mismatch"),  # a renamed header
    (csv_bytes([REVIEW]).replace("更新时间", "修改时间").encode("gbk"), "gather.header_mismatch"),  # one column renamed
    (b"", "gather.file_empty"),  # an empty export
    (b"\xef\xbb\xbf\r\n", "gather.file_empty"),  # a BOM and a line end, nothing else
])
def test_csv_a_bad_file_is_rejected_whole_and_the_next_file_is_read(tmp_path, content, rule):
    (tmp_path / "procuratorate").mkdir()
    (tmp_path / "procuratorate" / "reviews_20230101.csv").write_bytes(content)
    write_reviews(tmp_path, "20230102", [REVIEW])
    batch, manifest = collect(tmp_path, "procuratorate.reviews")
    assert len(batch.rows) == 1 and batch.rows[0]["_source_file"].endswith("reviews_20230102.csv")  # the next file goes on
    assert rules(batch) == [("file", rule)]
    bad = batch.rejects[0]
    assert bad["record_key"] is None and bad["raw_value"].endswith("reviews_20230101.csv") and "reviews_20230101.csv" in bad["reason"]
    assert batch.rows_in == 2  # the rejected file counts 1 in, 1 quarantined; the good one 1 record
    assert [m["rows"] for m in manifest] == [0, 1]  # the rejected file is in the manifest: a re-run does not report it again


def test_csv_undecodable_bytes_reject_their_record_only(tmp_path):
    path = write_reviews(tmp_path, "20230101", [REVIEW, ["JC2"] + REVIEW[1:]])
    data = path.read_bytes()
    path.write_bytes(data.replace("JC2,A1,张三".encode("gbk"), b"JC2,A1,\xff\xfe"))  # two bytes no GBK/GB18030 text has
    batch, _ = collect(tmp_path, "procuratorate.reviews")
    assert [r["review_id"] for r in batch.rows] == ["JC1"]
    assert rules(batch) == [("record", "gather.unreadable")]
    assert "ff fe" in batch.rejects[0]["reason"] and "row 2" in batch.rejects[0]["reason"]
    assert "JC2,A1,\\xff\\xfe" in batch.rejects[0]["raw_value"]  # raw kept losslessly, the bad bytes shown as \xNN


# -- JSON ------------------------------------------------------------------------------


def test_json_nested_100000_deep_is_an_unreadable_record_not_a_crash(tmp_path):
    path = write_courts(tmp_path, "20230101", [{"case_number": "X"}, '{"case_number": ' + "[" * 100_000 + "]" * 100_000 + "}", {"case_number": "Y"}])
    batch, _ = collect(tmp_path, "courts.cases")
    assert [r["case_number"] for r in batch.rows] == ["X", "Y"]
    assert rules(batch) == [("record", "gather.unreadable")]
    assert "nested too deeply" in batch.rejects[0]["reason"] and f"{path} row 2" in batch.rejects[0]["reason"]


def test_json_values_of_the_wrong_type_are_stored_as_delivered_json(tmp_path):
    write_courts(tmp_path, "20230101", [{"case_number": 123, "court_name": {"name": "某院"}, "trial_level": True, "charge": 1.0, "parties": None}])
    batch, _ = collect(tmp_path, "courts.cases")
    row = batch.rows[0]
    assert row["case_number"] == "123"  # a number, as its JSON
    assert json.loads(row["court_name"]) == {"name": "某院"} and row["court_name"] == '{"name": "某院"}'  # JSON, not the Python repr {'name': ...}
    assert (row["trial_level"], row["charge"], row["parties"]) == ("true", "1.0", None)  # true, not True; 1.0 as delivered; null stays null


def test_json_bom_duplicate_key_and_bad_utf8(tmp_path):
    (tmp_path / "courts").mkdir()
    lines = [b'\xef\xbb\xbf{"case_number": "X"}', b'{"case_number": "A", "case_number": "B"}', b'{"case_number": "\xff"}', b'{"case_number": "Y"}\r']
    (tmp_path / "courts" / "court_cases_20230101.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    batch, _ = collect(tmp_path, "courts.cases")
    assert [r["case_number"] for r in batch.rows] == ["X", "Y"]  # a BOM on the first line and a CRLF line end are read
    assert [r["rule"] for r in batch.rejects] == ["gather.unreadable"] * 2
    assert "appears twice" in batch.rejects[0]["reason"]  # neither value silently wins
    assert "not UTF-8" in batch.rejects[1]["reason"]


# -- workbooks -------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [
    pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
    pytest.param(lambda b: b"PK\x03\x04 not really a zip", id="not-xlsx"),
    pytest.param(lambda b: "记录编号,姓名\n".encode("gbk"), id="csv-named-xlsx"),
])
def test_xlsx_unreadable_workbook_is_rejected_whole_and_the_next_one_is_read(tmp_path, damage):
    bad = write_custody(tmp_path, "202301", [CUSTODY])
    bad.write_bytes(damage(bad.read_bytes()))
    write_custody(tmp_path, "202302", [CUSTODY])
    batch, _ = collect(tmp_path, "corrections.custody")
    assert len(batch.rows) == 1 and batch.rows[0]["admitted_on"] == "2023-05-20"  # an Excel date cell as ISO text, read by calamine
    assert rules(batch) == [("file", "gather.file_unreadable")]
    assert "custody_202301.xlsx" in batch.rejects[0]["reason"]


def _workbook(path, sheets: dict[str, list[list]]):
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def test_xlsx_sheet_named_otherwise_is_read_when_it_is_the_only_sheet_and_refused_otherwise(tmp_path):
    _workbook(tmp_path / "corrections" / "custody_202301.xlsx", {"Sheet1": [CUSTODY_HEADER, CUSTODY]})  # the only sheet
    _workbook(tmp_path / "corrections" / "custody_202302.xlsx", {"说明": [["readme"]], "数据": [CUSTODY_HEADER, CUSTODY]})  # which one?
    batch, _ = collect(tmp_path, "corrections.custody")
    assert [r["_source_file"].rsplit("/", 1)[-1] for r in batch.rows] == ["custody_202301.xlsx"]
    assert rules(batch) == [("file", "gather.sheet_missing")]
    assert "'说明', '数据'" in batch.rejects[0]["reason"]


def test_xlsx_value_under_a_column_without_header_is_not_lost(tmp_path):
    write_custody(tmp_path, "202301", [CUSTODY + [None, "备注: 已转监"], ["JY2"] + CUSTODY[1:]])  # column K has no header
    batch, _ = collect(tmp_path, "corrections.custody")
    assert [r["record_id"] for r in batch.rows] == ["JY2"]
    assert rules(batch) == [("record", "gather.unreadable")]
    reject = batch.rejects[0]
    assert "column K (11), which has no header" in reject["reason"] and "备注: 已转监" in reject["raw_value"]


def test_xlsx_cell_reference_far_away_is_refused_before_it_exhausts_memory(tmp_path):
    from openpyxl import load_workbook

    path = write_custody(tmp_path, "202301", [CUSTODY])
    wb = load_workbook(path)
    wb["records"]["XFD1048576"] = "x"  # a damaged reference: calamine would allocate 17 billion cells
    wb.save(path)
    batch, _ = collect(tmp_path, "corrections.custody")
    assert rules(batch) == [("file", "gather.file_unreadable")] and "XFD1048576" in batch.rejects[0]["reason"]


# -- duplicate and missing files ----------------------------------------------------------


def test_same_bytes_under_a_new_name_is_a_duplicate_file_and_the_same_path_again_is_nothing(tmp_path):
    first = write_reviews(tmp_path, "20230101", [REVIEW])
    ingested = {gather.sha256_file(first): [str(first)]}
    copy = tmp_path / "procuratorate" / "reviews_20230105.csv"
    copy.write_bytes(first.read_bytes())  # re-delivered under a new name
    batch, manifest = collect(tmp_path, "procuratorate.reviews", ingested=ingested)
    assert rules(batch) == [("file", "gather.duplicate_file")]
    assert str(copy) in batch.rejects[0]["reason"] and str(first) in batch.rejects[0]["reason"]  # names both paths
    assert batch.rows == [] and manifest == []
    # next run: the first file by its path and hash, the copy by its earlier quarantine row: nothing
    again, _ = collect(tmp_path, "procuratorate.reviews", ingested=ingested, duplicates={(gather.sha256_file(copy), str(copy))})
    assert (again.rows_in, again.rejects) == (0, [])


def test_missing_agency_folder_is_a_source_missing_file_reject(tmp_path):
    batch, manifest = collect(tmp_path, "courts.cases")  # no courts/ folder at all
    assert rules(batch) == [("file", "gather.source_missing")] and batch.rows_in == 1
    assert "courts" in batch.rejects[0]["reason"]
    (tmp_path / "courts").mkdir()  # present but empty: no delivery today, nothing to say
    assert collect(tmp_path, "courts.cases")[0].rows_in == 0


# -- police watermark ----------------------------------------------------------------------


def test_police_row_updated_exactly_at_the_watermark_is_read(tmp_path):
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00"), case("A2", "2023-03-01 10:00:00")])  # A2 committed after the last run, same second
    a1 = {"case_id": "A1", "region_code": "330102", "charge": "盗窃", "occurred_on": None, "filed_on": None, "detained_on": None, "arrested_on": None,
          "transferred_on": None, "status": "立案", "updated_at": "2023-03-01 10:00:00", "is_roaming_serial_gang": None, "detention_extension_on": None,
          "custody_extension_156_on": None, "custody_extension_158_on": None, "custody_extension_159_on": None}
    batch, wm = collect_police(db, watermark="2023-03-01 10:00:00", published={gather.record_hash(a1)})
    assert [r["case_id"] for r in batch.rows] == ["A2"]  # strict > lost it
    assert batch.rows_in == 1 and batch.rejects == []  # A1 was our own overlap: not counted, not quarantined
    assert wm is None  # the watermark did not move


def test_police_future_timestamp_is_quarantined_and_does_not_move_the_watermark(tmp_path):
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00"), case("A9", "9999-12-31 00:00:00")])
    batch, wm = collect_police(db)
    assert [r["case_id"] for r in batch.rows] == ["A1"]
    assert rules(batch) == [("record", "gather.updated_at_in_future")] and "9999-12-31" in batch.rejects[0]["reason"]
    assert wm == "2023-03-01 10:00:00"
    # a later row arrives; A9 was quarantined once and is not again; A1 is in bronze
    police(tmp_path, [case("A2", "2023-04-01 00:00:00")])
    future = gather.record_hash(json.loads(batch.rejects[0]["record"]))
    later, wm2 = collect_police(db, watermark=wm, published={batch.rows[0]["_record_hash"]}, rejected_before={future})
    assert [r["case_id"] for r in later.rows] == ["A2"] and later.rejects == [] and later.rows_in == 1
    assert wm2 == "2023-04-01 00:00:00"


def test_police_watermark_poisoned_by_a_future_value_is_ignored_so_no_row_is_skipped(tmp_path):
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00")])
    batch, wm = collect_police(db, watermark="9999-12-31 00:00:00")  # stored by the old gather after a bad row
    assert [r["case_id"] for r in batch.rows] == ["A1"] and wm == "2023-03-01 10:00:00"


def test_police_timestamps_compare_as_values_and_the_overlap_window_rereads(tmp_path):
    # "2023-03-01T09:00:00+00:00" sorts after "2023-03-01 10:00:00" as text but is an hour earlier
    db = police(tmp_path, [case("A1", "2023-03-01T09:00:00+00:00"), case("A2", "2023-03-01 09:30:00"), case("A3", "garbled")])
    batch, wm = collect_police(db)
    assert sorted(r["case_id"] for r in batch.rows) == ["A1", "A2", "A3"]  # an unparseable timestamp is kept as delivered
    assert wm == "2023-03-01 09:30:00"  # the later of the two parsed values; the garbled one never moves it
    late, _ = collect_police(db, watermark="2023-03-01 10:00:00", params=gather.GatherParams(PARAMS.data_date, overlap=timedelta(hours=1)),
                             published={r["_record_hash"] for r in batch.rows if r["case_id"] != "A2"})
    assert [r["case_id"] for r in late.rows] == ["A2"]  # committed late with an older timestamp: the overlap window finds it


def test_police_corrupt_or_missing_database_is_a_file_reject(tmp_path):
    missing, _ = collect_police(tmp_path / "police" / "police.db")
    assert rules(missing) == [("file", "gather.source_missing")]
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00")])
    db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4096)  # a corrupt database
    corrupt, wm = collect_police(db)
    assert rules(corrupt) == [("file", "gather.source_unreadable")] and wm is None
    assert "police.db" in corrupt.rejects[0]["reason"] and corrupt.rows_in == 1


def test_police_table_with_an_undocumented_column_keeps_it_in_raw_extra(tmp_path):
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00")])
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE cases ADD COLUMN remark TEXT")  # schema drift: its values must not be dropped on the way into bronze
    con.execute("UPDATE cases SET remark = '补充侦查'")
    con.commit()
    con.close()
    columns = tuple(n for n in gather.contracts.load("bronze.police_cases").names if not n.startswith("_"))
    batch, wm = gather.collect_police(SRC["police.cases"], db, watermark=None, published=set(), rejected_before=set(), params=PARAMS,
                                      run_id="t", ingested_at=AT, columns=columns)
    assert batch.rejects == [] and wm == "2023-03-01 10:00:00"
    (row,) = batch.rows
    assert json.loads(row["raw_extra"]) == {"remark": "补充侦查"} and "remark" not in row  # kept whole; the gate's schema_drift check names it


def test_police_text_that_is_not_utf8_rejects_its_row_only(tmp_path):
    db = police(tmp_path, [case("A1", "2023-03-01 10:00:00"), case("A2", "2023-03-01 10:00:00")])
    con = sqlite3.connect(db)
    con.execute("UPDATE cases SET charge = CAST(X'B5C1C7D4' AS TEXT) WHERE case_id = 'A2'")  # GBK bytes stored as TEXT
    con.commit()
    con.close()
    batch, _ = collect_police(db)
    assert [r["case_id"] for r in batch.rows] == ["A1"]
    assert rules(batch) == [("record", "gather.unreadable")] and "charge" in batch.rejects[0]["reason"]


# -- the real stage, twice -----------------------------------------------------------------


def test_hostile_tree_publishes_what_is_readable_and_a_rerun_adds_nothing(spark, tmp_path):
    settings = config.load(lake=tmp_path / "lake")
    src = small_sources(tmp_path / "src")
    (src / "courts" / "court_cases_20230502.jsonl").unlink()
    (src / "courts").rmdir()  # the courts' folder is missing
    custody = src / "corrections" / "custody_202305.xlsx"
    (src / "corrections" / "custody_202306.xlsx").write_bytes(custody.read_bytes()[:300])  # a truncated workbook
    (src / "procuratorate" / "reviews_20230322.csv").write_bytes((src / "procuratorate" / "reviews_20230320.csv").read_bytes())  # re-delivered, renamed
    pipeline.run_lifecycle(settings, "run1", sources=src, stages=("gather",))
    assert tables.read(spark, tables.location(settings.lake, "bronze.court_cases")).count() == 0  # an empty table, published
    q = tables.read(spark, tables.location(settings.lake, "quarantine.records"))
    got = sorted((r["source_table"], r["scope"], r["rule"]) for r in q.where("scope = 'file'").collect())
    assert got == [("corrections.custody", "file", "gather.file_unreadable"), ("courts.cases", "file", "gather.source_missing"),
                   ("legal.appointments", "file", "gather.source_missing"), ("legal.mediations", "file", "gather.source_missing"),  # no API configured
                   ("procuratorate.reviews", "file", "gather.duplicate_file")]
    recs = {r["table_name"]: r for r in Catalog(settings.catalog_url).stage_results("run1")}
    assert (recs["bronze.custody_records"]["rows_in"], recs["bronze.custody_records"]["rows_out"], recs["bronze.custody_records"]["rows_quarantined"]) == (2, 1, 1)
    assert all(r["is_balanced"] for r in recs.values())
    before = q.count()
    pipeline.run_lifecycle(settings, "run2", sources=src, stages=("gather",))
    after = tables.read(spark, tables.location(settings.lake, "quarantine.records"))
    assert after.where("run_id = 'run2' AND rule != 'gather.source_missing'").count() == 0  # nothing new but the still-missing folder
    assert after.count() == before + 3  # the courts' folder and the two unconfigured API listings
    recs2 = {r["table_name"]: r["rows_in"] for r in Catalog(settings.catalog_url).stage_results("run2")}
    assert recs2 == {**{t: 0 for t in recs2}, "bronze.court_cases": 1, "bronze.legal_aid_appointments": 1, "bronze.mediation_records": 1}
    # a new renamed copy, and the gather task of run3 retried before its gate: the retry quarantines the same rows again
    (src / "procuratorate" / "reviews_20230323.csv").write_bytes((src / "procuratorate" / "reviews_20230321.csv").read_bytes())
    Catalog(settings.catalog_url).start_run("run3", sources=str(src), engine=settings.engine)
    for _attempt in (1, 2):
        summary = pipeline.run_stage("gather", settings, "run3", sources=src)
        (q3,) = [c for c in summary["candidates"] if c["table"] == "quarantine.records"]  # published with the release, not before
        assert sorted(r["rule"] for r in tables.read(spark, Path(q3["path"])).collect()) == ["gather.duplicate_file"] + ["gather.source_missing"] * 3  # not lost on the retry
    pipeline.gate_stage("gather", settings, summary)
    run3 = tables.read(spark, tables.location(settings.lake, "quarantine.records")).where("run_id = 'run3'")
    assert sorted(r["rule"] for r in run3.collect()) == ["gather.duplicate_file"] + ["gather.source_missing"] * 3


def test_a_first_delivery_with_nothing_readable_stops_at_the_gather_gate(spark, tmp_path):
    """Every review file refused (a renamed column) on a fresh lake: gather publishes nothing — not an empty
    bronze table the later stages would build empty tables on — and names the source; fixed, it publishes."""
    settings = config.load(lake=tmp_path / "lake")
    src = small_sources(tmp_path / "src")
    renamed = [REVIEW_HEADER[0] + "（旧）", *REVIEW_HEADER[1:]]
    for path in sorted((src / "procuratorate").glob("reviews_*.csv")):
        text = path.read_bytes().decode("gbk").split("\n", 1)[1]
        path.write_bytes((",".join(renamed) + "\n" + text).encode("gbk"))
    with pytest.raises(pipeline.GateFailed) as failed:
        pipeline.run_lifecycle(settings, "refused", sources=src, stages=("gather",))
    message = str(failed.value)
    assert "bronze.procuratorate_reviews" in message and "rule_pass_rate(gather.first_delivery_readable)" in message
    assert "2 of 2 delivered file(s) and record(s) refused; nothing readable" in message
    assert "bronze.police_cases" not in message  # the other sources were readable: only the refused one is named
    assert tables.published_tables(settings.lake) == []  # nothing published, the refused files' rejects kept with the candidates
    assert Catalog(settings.catalog_url).run("refused")["status"] == "failed"

    small_sources(src)  # the agency fixes its export
    pipeline.run_lifecycle(settings, "fixed", sources=src, stages=("gather",))
    assert tables.read(spark, tables.location(settings.lake, "bronze.procuratorate_reviews")).count() > 0
