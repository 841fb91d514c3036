"""Analyst SQL: only read-only queries over logical names run; sealed records stay hidden without an audited role."""

from __future__ import annotations

import csv
import getpass
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lawlake import cli, config, tables
from lawlake.sharing.store import ShareStore
from lawlake.sql import AccessPolicy, AccessRole, SqlRefused, authorize, check, load_access, resolve, run

from .releasing import release

USER = getpass.getuser()


def _write(lake: Path, name: str, rows: list[dict], *, mode: str = "overwrite") -> None:
    write_deltalake(str(tables.location(lake, name)), pa.Table.from_pylist(rows), mode=mode)


SEALED = [
    # chain c2 is sealed: its suspect s2 (person p2), its police case and its court case are withheld
    {"source_table": "silver.suspects", "record_key": "s2", "chain_id": "c2", "person_key": "p2", "seal_status": "sealed"},
    {"source_table": "silver.police_cases", "record_key": "A2", "chain_id": "c2", "person_key": None, "seal_status": "sealed"},
    # chain c3 is pending (a minor whose outcome is not known yet): withheld exactly like sealed
    {"source_table": "silver.suspects", "record_key": "s3", "chain_id": "c3", "person_key": "p3", "seal_status": "pending"},
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A tiny lake: three chains (c1 open, c2 sealed, c3 pending) in silver, gold, a share and open data."""
    lake = tmp_path_factory.mktemp("sqllake") / "lake"
    _write(lake, "silver.suspects", [
        {"suspect_id": "s1", "police_case_id": "A1", "name": "张三"},  # shown
        {"suspect_id": "s2", "police_case_id": "A2", "name": "李四"},  # sealed
        {"suspect_id": "s3", "police_case_id": "A3", "name": "王五"},  # pending
    ])
    _write(lake, "silver.police_cases", [{"police_case_id": "A1", "region_code": "330102"}, {"police_case_id": "A2", "region_code": "330102"}])
    _write(lake, "gold.case_chain", [
        {"chain_id": "c1", "person_key": "p1", "charge_code": "234", "is_sealed": False},  # shown
        {"chain_id": "c2", "person_key": "p2", "charge_code": "264", "is_sealed": True},  # sealed (listed and flagged)
        {"chain_id": "c3", "person_key": "p3", "charge_code": "264", "is_sealed": False},  # pending: listed, not flagged
    ])
    _write(lake, "gold.case_chain", [{"chain_id": "c4", "person_key": "p4", "charge_code": "234", "is_sealed": False}], mode="append")  # v1
    _write(lake, "gold.person_records", [
        {"record_ref": "silver.suspects:s1", "person_key": "p1"},  # shown
        {"record_ref": "silver.suspects:s2", "person_key": "p2"},  # sealed
    ])
    _write(lake, "gold.person_index", [{"person_key": "p1", "name": "张三"}, {"person_key": "p3", "name": "王五"}])  # p3 hidden
    _write(lake, "gold.sealed_records", SEALED)
    _write(lake, "share.hz_procuratorate.case_chain", [{"chain_id": "c1", "charge_code": "234"}])
    _write(lake, "share.zj_law_institute.persons", [{"person_key": "x9"}])  # a share table without chain_id
    _write(lake, "open.cases_by_year_region_charge", [{"year": 2024, "charge_code": "234", "n": 12}])
    _write(lake, "bronze.police_suspects", [{"suspect_id": "s2", "name": "李四"}])
    release(config.load(lake=lake).catalog_url, lake, tables.published_tables(lake))  # what `lawlake sql` reads
    return lake


@pytest.fixture(scope="module")
def settings(lake) -> config.Settings:
    return config.load(lake=lake)


def _rows(spark, lake, query, **kw) -> list[dict]:
    return [r.asDict() for r in run(spark, lake, query, **kw).collect()]


def _role_policy(*users: str) -> AccessPolicy:
    return AccessPolicy({"sealed_access": AccessRole("sealed_access", "CPL art. 286 procedure", True, frozenset(users))})


# -- refused --------------------------------------------------------------------------------------

REFUSED = [
    "DELETE FROM gold.case_chain WHERE is_sealed",
    "UPDATE silver.suspects SET name='X'",
    "MERGE INTO gold.case_chain t USING silver.suspects s ON t.chain_id = s.suspect_id WHEN NOT MATCHED THEN INSERT *",
    "CREATE TABLE leak LOCATION '/tmp/leak' AS SELECT id_number, name FROM silver.suspects",
    "CREATE TABLE leak USING delta LOCATION '/tmp/leak' AS SELECT id_number, name FROM silver.suspects",
    "INSERT OVERWRITE DIRECTORY '/tmp/out' USING parquet SELECT * FROM silver.suspects",  # sqlglot cannot parse it: refused
    "INSERT OVERWRITE DIRECTORY '/tmp/out' SELECT * FROM silver.suspects",
    "INSERT INTO gold.case_chain SELECT * FROM gold.case_chain",
    "DROP TABLE gold.case_chain",
    "CREATE TEMPORARY VIEW v USING parquet OPTIONS (path '/etc')",
    "SELECT * FROM text.`/etc/passwd`",
    "SELECT * FROM text.`{lake}/_catalog/secret.key`",
    "SELECT * FROM json.`{lake}/_profiles/hz_procuratorate.share`",
    "SELECT * FROM delta.`{lake}/gold/case_chain`",
    "SELECT * FROM parquet.`{lake}/gold/case_chain`",
    "SELECT * FROM csv.`/etc/passwd`",
    "SELECT * FROM orc.`/x`",
    "SELECT * FROM binaryFile.`/etc`",
    "SELECT * FROM `/etc/passwd`",
    "SELECT * FROM `gold.case_chain`",  # one quoted identifier is not a logical name
    "SELECT * FROM read_files('/etc/passwd')",
    "SELECT * FROM range(10)",
    "SELECT * FROM IDENTIFIER('gold.case_chain')",
    "SELECT reflect('java.lang.Runtime', 'getRuntime')",
    "SELECT input_file_name() FROM gold.case_chain",
    "SET spark.sql.ansi.enabled=false",
    "RESET",
    "ADD JAR /tmp/evil.jar",
    "ADD FILE /tmp/evil.py",
    "CACHE TABLE gold.case_chain",
    "REFRESH TABLE gold.case_chain",
    "MSCK REPAIR TABLE gold.case_chain",
    "ANALYZE TABLE gold.case_chain COMPUTE STATISTICS",
    "USE gold",
    "SHOW TABLES",
    "SELECT 1; SELECT 2",
    "SELECT 1; DELETE FROM gold.case_chain",
    "SELECT * INTO copy FROM gold.case_chain",
    "SELECT * FROM case_chain",  # neither a lake name nor a CTE
    "SELECT * FROM global_temp.case_chain",
    "SELECT * FROM spark_catalog.gold.case_chain",
    "SELECT * FROM gold.case_chain VERSION AS OF 0",
    "SELECT * FROM (WITH a AS (SELECT 1) SELECT * FROM a) t JOIN a ON true",  # a CTE used outside its scope
    "SELECT * FROM gold.case_chain WHERE",
    "SELECT TRANSFORM(chain_id) USING 'cat /etc/passwd' AS (x) FROM gold.case_chain",  # a script on the engine's host
    "SELECT * FROM gold.case_chain@v1@v0",
    "SELECT * FROM gold.case_chain WHERE chain_id = ${{hivevar:x}}",  # braces doubled for str.format
    "SELECT * FROM gold.case_chain WHERE chain_id = :x",
    "",
]


@pytest.mark.parametrize("query", REFUSED)
def test_every_statement_that_writes_reads_files_or_escapes_is_refused(lake, query):
    with pytest.raises(SqlRefused):
        check(query.format(lake=lake))


def test_a_refused_query_says_why():
    with pytest.raises(SqlRefused, match="read-only"):
        check("DELETE FROM gold.case_chain WHERE is_sealed")
    with pytest.raises(SqlRefused, match="path-based"):
        check("SELECT * FROM text.`/etc/passwd`")
    with pytest.raises(SqlRefused, match="exactly one statement"):
        check("SELECT 1; SELECT 2")


@pytest.mark.parametrize("query", ["SELECT * FROM text.`/etc/passwd`", "DELETE FROM gold.case_chain"])
def test_the_cli_refuses_with_a_clear_error_and_exit_code(lake, capsys, query):
    assert cli.main(["sql", "--lake", str(lake), query]) == 2
    assert "lawlake sql: refused:" in capsys.readouterr().err


def test_nothing_changed_after_refusals(spark, lake):
    # the sealed chain is still in the table as published (read with delta-rs, not through analyst SQL)
    from deltalake import DeltaTable

    assert sorted(DeltaTable(str(tables.location(lake, "gold.case_chain"))).to_pyarrow_table()["chain_id"].to_pylist()) == ["c1", "c2", "c3", "c4"]
    assert not Path("/tmp/leak").exists()


# -- accepted -------------------------------------------------------------------------------------


def test_select_join_cte_and_set_operations_run_on_delta(spark, lake):
    rows = _rows(spark, lake, "SELECT s.suspect_id, p.region_code FROM silver.suspects s JOIN silver.police_cases p ON s.police_case_id = p.police_case_id")
    assert rows == [{"suspect_id": "s1", "region_code": "330102"}]  # s2 sealed, s3 has no police case row
    rows = _rows(spark, lake, "WITH c AS (SELECT chain_id FROM gold.case_chain) SELECT chain_id FROM c ORDER BY chain_id")
    assert [r["chain_id"] for r in rows] == ["c1", "c4"]  # c2 sealed, c3 pending
    rows = _rows(spark, lake, "SELECT chain_id FROM gold.case_chain UNION ALL SELECT chain_id FROM share.hz_procuratorate.case_chain ORDER BY 1")
    assert [r["chain_id"] for r in rows] == ["c1", "c1", "c4"]
    assert _rows(spark, lake, "VALUES (1, 'a')") == [{"col1": 1, "col2": "a"}]
    # qualified column names keep working after resolution
    assert _rows(spark, lake, "SELECT case_chain.chain_id FROM gold.case_chain WHERE case_chain.chain_id = 'c1'") == [{"chain_id": "c1"}]


def test_version_suffix_reads_a_published_version(spark, lake):
    assert _rows(spark, lake, "SELECT count(*) AS n FROM gold.case_chain@v0") == [{"n": 1}]  # c1 only: c2, c3 withheld, c4 came in v1
    assert _rows(spark, lake, "SELECT count(*) AS n FROM gold.case_chain") == [{"n": 2}]
    rows = _rows(spark, lake, "SELECT a.chain_id FROM gold.case_chain@v1 AS a JOIN gold.case_chain@v0 b ON a.chain_id = b.chain_id")
    assert rows == [{"chain_id": "c1"}]
    with pytest.raises(SqlRefused, match="no version 7"):
        run(spark, lake, "SELECT * FROM gold.case_chain@v7")
    # '@v0' inside a string literal is data, not a version
    assert _rows(spark, lake, "SELECT '@v0' AS s FROM open.cases_by_year_region_charge") == [{"s": "@v0"}]


def test_injected_release_versions_are_read(spark, lake):
    assert _rows(spark, lake, "SELECT count(*) AS n FROM gold.case_chain", versions={"gold.case_chain": 0, "gold.sealed_records": 0}) == [{"n": 1}]
    with pytest.raises(SqlRefused, match="not part of the current release"):
        run(spark, lake, "SELECT * FROM gold.case_chain", versions={"gold.sealed_records": 0})


def test_the_engine_gets_no_paths(spark, lake):
    sql = resolve(spark, lake, check("SELECT * FROM gold.case_chain JOIN silver.suspects@v0 ON true"))
    assert str(lake) not in sql and "delta." not in sql and "`/" not in sql


def test_csv_output_through_the_cli(lake, capsys):
    assert cli.main(["sql", "--lake", str(lake), "--format", "csv", "--limit", "0", "SELECT chain_id, charge_code FROM gold.case_chain ORDER BY chain_id"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["chain_id", "charge_code"], ["c1", "234"], ["c4", "234"]]


# -- sealed records --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,expected",
    [
        ("SELECT suspect_id AS k FROM silver.suspects", ["s1"]),  # s2 sealed, s3 pending
        ("SELECT police_case_id AS k FROM silver.police_cases", ["A1"]),  # A2: the sealed chain's case-level row
        ("SELECT chain_id AS k FROM gold.case_chain", ["c1", "c4"]),
        ("SELECT record_ref AS k FROM gold.person_records", ["silver.suspects:s1"]),
        ("SELECT person_key AS k FROM gold.person_index", ["p1"]),  # p3 belongs to the pending chain
        ("SELECT chain_id AS k FROM share.hz_procuratorate.case_chain", ["c1"]),
        ("SELECT person_key AS k FROM share.zj_law_institute.persons", ["x9"]),  # sealed-free already, no chain to filter by
        ("SELECT charge_code AS k FROM open.cases_by_year_region_charge", ["234"]),
    ],
)
def test_sealed_and_pending_records_are_hidden_without_the_role(spark, lake, query, expected):
    assert sorted(r["k"] for r in _rows(spark, lake, query)) == expected


@pytest.mark.parametrize("table", ["bronze.police_suspects", "gold.sealed_records"])
def test_raw_zones_and_the_sealed_list_are_refused_without_the_role(spark, lake, table):
    with pytest.raises(SqlRefused, match="only with a role"):
        run(spark, lake, f"SELECT * FROM {table}")


def test_without_a_published_sealed_list_tables_that_need_it_are_refused(spark, tmp_path):
    lake = tmp_path / "lake"
    _write(lake, "gold.case_chain", [{"chain_id": "c2", "is_sealed": True}])
    _write(lake, "open.cases_by_year_region_charge", [{"year": 2024, "n": 12}])
    with pytest.raises(SqlRefused, match="gold.sealed_records is not published"):
        run(spark, lake, "SELECT * FROM gold.case_chain")
    assert _rows(spark, lake, "SELECT n FROM open.cases_by_year_region_charge") == [{"n": 12}]  # open data needs no sealed list


def test_the_role_with_a_reason_shows_sealed_records_and_is_audited(spark, lake, settings):
    rows = _rows(
        spark, lake, "SELECT chain_id FROM gold.case_chain ORDER BY chain_id", role="sealed_access", reason="court order (2026)浙01刑更12号",
        access=_role_policy(USER), catalog_url=settings.catalog_url,
    )
    assert [r["chain_id"] for r in rows] == ["c1", "c2", "c3", "c4"]
    (last,) = ShareStore(settings.catalog_url).sql_access(limit=1)
    assert (last["os_user"], last["role"], last["reason"]) == (USER, "sealed_access", "court order (2026)浙01刑更12号")
    assert last["query"] == "SELECT chain_id FROM gold.case_chain ORDER BY chain_id" and json.loads(last["tables"]) == ["gold.case_chain"]
    # bronze too, under the role
    assert len(_rows(spark, lake, "SELECT * FROM bronze.police_suspects", role="sealed_access", reason="r", access=_role_policy(USER), catalog_url=settings.catalog_url)) == 1


@pytest.mark.parametrize(
    "role,reason,policy,message",
    [
        ("sealed_access", None, _role_policy(USER), "needs a reason"),  # no reason
        ("sealed_access", "   ", _role_policy(USER), "needs a reason"),  # a blank reason
        ("sealed_access", "court order", _role_policy("someone_else"), "may not take role"),  # not this user's role
        ("root", "court order", _role_policy(USER), "not defined"),  # an unknown role
        (None, "court order", _role_policy(USER), "without --role"),  # a reason alone grants nothing
    ],
)
def test_the_role_is_refused_without_reason_or_permission_and_nothing_is_audited(spark, lake, settings, role, reason, policy, message):
    before = len(ShareStore(settings.catalog_url).sql_access(limit=1000))
    with pytest.raises(SqlRefused, match=message):
        run(spark, lake, "SELECT * FROM gold.case_chain", role=role, reason=reason, access=policy, catalog_url=settings.catalog_url)
    assert len(ShareStore(settings.catalog_url).sql_access(limit=1000)) == before


def test_the_shipped_access_policy_lets_nobody_take_the_role():
    policy = load_access()
    assert policy.roles["sealed_access"].sees_sealed and policy.roles["sealed_access"].users == frozenset()
    with pytest.raises(SqlRefused, match="nobody"):
        authorize(policy, "sealed_access", "court order")


@pytest.mark.parametrize(
    "query,expected",
    [
        # the README's example: group, count, order
        ("SELECT charge_code, count(*) AS n FROM gold.case_chain GROUP BY charge_code ORDER BY n DESC", [("234", 2)]),
        # window function, CASE, a CJK literal
        ("SELECT chain_id, row_number() OVER (ORDER BY chain_id) AS k, CASE WHEN chain_id = 'c1' THEN '甲' ELSE '乙' END AS t FROM gold.case_chain",
         [("c1", 1, "甲"), ("c4", 2, "乙")]),
        # subquery in WHERE, DISTINCT, a literal with a quote
        ("SELECT DISTINCT charge_code, 'it\\'s' AS q FROM gold.case_chain WHERE chain_id IN (SELECT chain_id FROM share.hz_procuratorate.case_chain)",
         [("234", "it's")]),
        # LATERAL VIEW over a published table
        ("SELECT chain_id, x FROM gold.case_chain LATERAL VIEW explode(array(1, 2)) e AS x WHERE chain_id = 'c1' ORDER BY x", [("c1", 1), ("c1", 2)]),
        # an optimizer hint is dropped, the query runs
        ("SELECT /*+ BROADCAST(t) */ count(*) AS n FROM gold.case_chain t", [(2,)]),
        # a comment that tries to close itself early stays a comment
        ("SELECT count(*) AS n FROM gold.case_chain -- */ WHERE chain_id = 'c1'", [(2,)]),
        # a recursive-free CTE chain referring to an earlier CTE
        ("WITH a AS (SELECT chain_id FROM gold.case_chain), b AS (SELECT count(*) AS n FROM a) SELECT n FROM b", [(2,)]),
    ],
)
def test_ordinary_analyst_queries_run_as_written(spark, lake, query, expected):
    assert [tuple(r.values()) for r in _rows(spark, lake, query)] == expected
