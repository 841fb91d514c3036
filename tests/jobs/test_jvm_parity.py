"""normalize gives the same silver rows on JVM Spark as on Sail.

Real bronze rows (a small demo world with every defect kind, gathered on Sail) go
through every ``build_<table>`` + ``split`` on both engines; the results must be equal
row for row. This is what lets the same job code run on a Spark 4 cluster.
"""

from __future__ import annotations

import pytest

from jobs import normalize
from lawlake import config, contracts, pipeline, tables

pytestmark = pytest.mark.jvm


@pytest.fixture(scope="module")
def bronze(spark, tmp_path_factory):
    """Bronze tables of a small demo world, as Arrow tables."""
    from deltalake import DeltaTable

    from lawlake.cli import demo_legal_api
    from lawlake.demo import generate

    root = tmp_path_factory.mktemp("parity")
    generate(root / "sources", scale=0.1, seed=3)
    settings = config.load(lake=root / "lake")
    with demo_legal_api(root / "sources", airflow=False, echo=lambda *_: None):  # the legal services too, as `lawlake run` serves them
        pipeline.run_lifecycle(settings, "parity", sources=root / "sources", stages=("gather",))
    return {name: DeltaTable(str(tables.location(settings.lake, name))).to_pyarrow_table() for name in {s for s, _ in normalize.TABLES.values()}}


def _rows(spark, build, arrow, target):
    contract = contracts.load(target)
    df = spark.createDataFrame(arrow)
    checked = build(df, normalize.reference_tables(spark))
    current, rejected, superseded = normalize.split(checked, source_table="b", target_table=target)

    def collect(frame, cols):
        return sorted(tuple(str(v) for v in r) for r in frame.select(*cols).collect())

    return (
        collect(current, contract.names),
        collect(rejected, ["record_key", "rule", "raw_value"]),
        collect(superseded, ["_key", "_version"]),
    )


@pytest.mark.parametrize("target", list(normalize.TABLES))
def test_normalize_is_the_same_on_jvm_spark_and_sail(spark, jvm_spark, bronze, target):
    source, build = normalize.TABLES[target]
    sail = _rows(spark, build, bronze[source], target)
    jvm = _rows(jvm_spark, build, bronze[source], target)
    assert len(sail[0]) > 0  # real rows went through, not an empty comparison
    assert sail[0] == jvm[0], f"{target}: silver rows differ"
    assert sail[1] == jvm[1], f"{target}: quarantined rows differ"
    assert sail[2] == jvm[2], f"{target}: superseded versions differ"


def test_scope_digests_are_the_same_on_jvm_spark_and_sail(spark, jvm_spark):
    """ByScope's digests (pipeline.scope_digests): per scope value, a changed, added or removed row, or a value that
    becomes null, changes its digest only; null is a scope value of its own; both engines give the same digests, so a
    lake moved to a Spark cluster keeps rebuilding by scope."""
    schema = "g string, k string, v int, d date"
    rows = [("a", "1", 1, None), ("a", "2", 2, None), ("b", "3", None, None), (None, "4", 4, None), ("c", "5", 5, None), ("d", "7", 7, None)]
    changed = [("a", "1", 1, None), ("a", "2", 3, None),  # a: a value changed
               ("b", "3", 0, None),  # b: a null became 0
               (None, "4", 4, None), (None, "6", 6, None),  # null scope: a row added
               ("d", "7", 7, None)]  # c: its row removed; d: untouched

    def digests(session, data):
        return {r["_scope"]: (r["_n"], r["_hi"], r["_lo"]) for r in pipeline.scope_digests(session.createDataFrame(data, schema), "g").collect()}

    for session in (spark, jvm_spark):
        before, after = digests(session, rows), digests(session, changed)
        assert set(before) == {"Va", "Vb", "Vc", "Vd", "N"}
        assert {s for s in before.keys() | after.keys() if before.get(s) != after.get(s)} == {"Va", "Vb", "Vc", "N"}
        assert digests(session, list(reversed(rows))) == before  # row order does not matter
        assert digests(session, rows[1:] + rows[:1]) == before
    assert digests(spark, rows) == digests(jvm_spark, rows)
    assert digests(spark, changed) == digests(jvm_spark, changed)
