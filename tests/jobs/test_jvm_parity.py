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
