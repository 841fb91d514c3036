"""Publishing a gated candidate commits the candidate's own files (hard-linked), or, where they cannot be taken as they are, a copy through the engine."""

from __future__ import annotations

from deltalake import DeltaTable

from lawlake import contracts, tables

T = contracts.parse({"table": "silver.t", "grain": "one row per k", "columns": [{"name": "k", "type": "string", "description": "key"}]})
WIDER = contracts.parse({"table": "silver.t", "grain": "one row per k", "columns": [
    {"name": "k", "type": "string", "description": "key"}, {"name": "n", "type": "int", "description": "a count"}]})


def _candidate(spark, path, rows, contract=T):
    tables.write(contracts.dataframe(spark, rows, contract), path)
    return path


def _rows(spark, path, version=None):
    return sorted(tuple(r) for r in tables.read(spark, path, version=version).collect())


def _inodes(path):
    return {f.stat().st_ino for f in path.glob("*.parquet")}


def test_a_publish_commits_the_candidates_own_files_and_each_version_reads_as_its_candidate(spark, tmp_path):
    published = tmp_path / "lake" / "silver" / "t"
    first = _candidate(spark, tmp_path / "c1", [{"k": "a"}, {"k": "b"}])
    assert tables.publish(spark, first, published, mode="overwrite") == 0
    assert _inodes(first) <= _inodes(published)  # the same files: nothing read or written again
    second = _candidate(spark, tmp_path / "c2", [{"k": "c"}])
    assert tables.publish(spark, second, published, mode="overwrite") == 1
    third = _candidate(spark, tmp_path / "c3", [{"k": "d"}])
    assert tables.publish(spark, third, published, mode="append") == 2
    assert _inodes(second) | _inodes(third) <= _inodes(published)
    assert [_rows(spark, published, v) for v in (0, 1, 2)] == [[("a",), ("b",)], [("c",)], [("c",), ("d",)]]
    assert [DeltaTable(str(published), version=v).count() for v in (0, 1, 2)] == [2, 1, 2]  # the candidates' file statistics came along
    # the candidates go (the run's staging is discarded): the published table keeps its files
    for c in (first, second, third):
        for f in c.rglob("*"):
            if f.is_file():
                f.unlink()
    assert _rows(spark, published, 0) == [("a",), ("b",)] and _rows(spark, published) == [("c",), ("d",)]


def test_a_candidate_whose_schema_changed_is_published_through_the_engine_with_its_schema(spark, tmp_path):
    published = tmp_path / "silver" / "t"
    tables.publish(spark, _candidate(spark, tmp_path / "c1", [{"k": "a"}]), published, mode="overwrite")
    wider = _candidate(spark, tmp_path / "c2", [{"k": "b", "n": 2}], WIDER)
    assert tables.publish(spark, wider, published, mode="overwrite") == 1
    assert _rows(spark, published) == [("b", 2)] and not (_inodes(wider) & _inodes(published))  # written again, not linked
    assert _rows(spark, published, 0) == [("a",)]


def test_a_tables_rows_are_counted_by_its_log_as_the_engine_counts_them(spark, tmp_path):
    """Candidates and gates count rows by the files' numRecords statistics: the engine's count, file by file, empty included."""
    path = tmp_path / "t"
    _candidate(spark, path, [])
    assert tables.row_count(path) == 0 == spark.read.format("delta").load(str(path)).count()
    _candidate(spark, path, [{"k": str(i)} for i in range(5)])
    tables.write(spark.read.format("delta").load(str(path)).limit(2), tmp_path / "two")
    tables.publish(spark, tmp_path / "two", path, mode="append")  # a second file: 5 + 2 rows
    assert len(DeltaTable(str(path)).file_uris()) >= 2
    assert tables.row_count(path) == 7 == tables.count(spark, path) == spark.read.format("delta").load(str(path)).count()
    # as of an earlier version, too (a scoped build counts its source's rows then and now)
    before = DeltaTable(str(path)).version() - 1
    assert tables.row_count(path, version=before) == 5 == tables.count(spark, path, version=before) == tables.read(spark, path, version=before).count()


def test_the_rows_appended_since_a_version_are_read_from_the_files_added_and_a_rewrite_is_refused(spark, tmp_path):
    """A scoped build's new source rows (``tables.added_rows``): what the appends since a version added, the rows the engine's
    time travel differs by; nothing when nothing was added; None once a file of that version is gone."""
    path = tmp_path / "t"
    tables.publish(spark, _candidate(spark, tmp_path / "c1", [{"k": "a"}, {"k": "b"}]), path, mode="overwrite")  # v0
    assert tables.added_rows(spark, path, since=0, version=0).count() == 0
    tables.publish(spark, _candidate(spark, tmp_path / "c2", [{"k": "c"}]), path, mode="append")  # v1
    tables.publish(spark, _candidate(spark, tmp_path / "c3", [{"k": "d"}, {"k": "a"}]), path, mode="append")  # v2: "a" again
    added = tables.added_rows(spark, path, since=0, version=2)
    assert added.columns == ["k"] and sorted(r.k for r in added.collect()) == ["a", "c", "d"]
    assert sorted(r.k for r in tables.added_rows(spark, path, since=1, version=2).collect()) == ["a", "d"]
    tables.publish(spark, _candidate(spark, tmp_path / "c4", [{"k": "e", "n": 5}], WIDER), path, mode="overwrite")  # v3 rewrites
    assert tables.added_rows(spark, path, since=2, version=3) is None  # v2's files are gone: not an append
    tables.write(contracts.dataframe(spark, [{"k": "f"}], T).selectExpr("k", "cast(null as int) AS n"), tmp_path / "c5")
    tables.publish(spark, tmp_path / "c5", path, mode="append")  # v4: the rows of the wider table's new file, in its columns
    assert [tuple(r) for r in tables.added_rows(spark, path, since=3, version=4).collect()] == [("f", None)]
    # a version the log no longer reaches (expired, cleaned up after a checkpoint): not known, so not an append
    DeltaTable(str(path)).create_checkpoint()
    (path / "_delta_log" / "00000000000000000000.json").unlink()
    assert tables.added_rows(spark, path, since=0, version=4) is None
