"""Data contracts: refused when malformed, enforced before every write, and every contract in schemas/ loads."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from lawlake import contracts
from lawlake.config import SCHEMAS_DIR


def _doc(*columns: dict, key=("k",)) -> dict:
    base = [{"name": "k", "type": "string", "nullable": False, "pii": "none", "description": "the key"}]
    return {"table": "silver.t", "grain": "one row per t", "primary_key": list(key), "columns": base + list(columns)}


# -- parse -----------------------------------------------------------------------------


def test_parse_reads_columns_and_key():
    c = contracts.parse(_doc({"name": "v", "type": "int", "description": "a value", "pii": "quasi", "accepted_values": [1, 2]}))
    assert (c.table, c.grain, c.names, c.primary_key) == ("silver.t", "one row per t", ["k", "v"], ("k",))
    assert c.column("v") == contracts.Column("v", "int", True, "quasi", "a value", (1, 2))  # nullable unless said otherwise
    assert c.ddl() == "`k` string, `v` int"


@pytest.mark.parametrize(
    "doc, message",
    [
        (_doc({"name": "v", "type": "varchar", "description": "x"}), "column v: type 'varchar' not one of"),
        (_doc({"name": "v", "type": "string", "pii": "secret", "description": "x"}), "column v: pii 'secret' not one of"),
        (_doc({"name": "v", "type": "string"}), "column v: no description"),
        (_doc({"name": "v", "type": "string", "description": ""}), "column v: no description"),
        (_doc(key=("k", "nope")), "primary key names unknown columns ['nope']"),
        (_doc({"name": "k", "type": "string", "description": "again"}), "duplicate columns ['k']"),
        ({"table": "silver.t", "columns": []}, "missing 'grain'"),
    ],
)
def test_parse_refuses_malformed_contracts(doc, message):
    with pytest.raises(contracts.ContractError) as err:
        contracts.parse(doc, source="t.yaml")
    assert str(err.value).startswith("t.yaml: ") and message in str(err.value)


def test_parse_names_every_problem():
    doc = _doc({"name": "a", "type": "text", "description": "x"}, {"name": "b", "type": "int", "pii": "maybe"}, key=("z",))
    with pytest.raises(contracts.ContractError) as err:
        contracts.parse(doc)
    msg = str(err.value)
    assert all(part in msg for part in ("column a: type 'text'", "column b: pii 'maybe'", "column b: no description", "unknown columns ['z']"))


def test_load_refuses_a_table_without_contract():
    with pytest.raises(contracts.ContractError, match="no contract for gold.nope"):
        contracts.load("gold.nope")


# -- enforce ---------------------------------------------------------------------------

CONTRACT = contracts.parse(_doc(
    {"name": "n", "type": "int", "description": "a count"},
    {"name": "on", "type": "date", "description": "a day"},
))


def test_enforce_returns_columns_in_contract_order(spark):
    df = spark.createDataFrame([(dt.date(2023, 1, 1), 1, "a")], "on date, n int, k string")
    out = contracts.enforce(df, CONTRACT)
    assert out.columns == ["k", "n", "on"]
    assert tuple(out.first()) == ("a", 1, dt.date(2023, 1, 1))


def test_enforce_names_missing_extra_and_mistyped_columns(spark):
    df = spark.createDataFrame([("a", "1", 2)], "k string, n string, extra int")
    with pytest.raises(contracts.ContractError) as err:
        contracts.enforce(df, CONTRACT)
    assert str(err.value) == (
        "silver.t breaks its contract: missing columns ['on']; columns not in the contract ['extra']; "
        "wrong types n: string (contract: int)"
    )


@pytest.mark.parametrize(
    "ddl, named",
    [
        ("k string, n int", "missing columns ['on']"),
        ("k string, n int, on date, x string", "columns not in the contract ['x']"),
        ("k string, n bigint, on date", "wrong types n: bigint (contract: int)"),  # widening is a contract change too
        ("k string, n int, on timestamp", "wrong types on: timestamp (contract: date)"),
    ],
)
def test_enforce_refuses_each_kind_of_mismatch(spark, ddl, named):
    df = spark.createDataFrame([], ddl)
    with pytest.raises(contracts.ContractError, match="^silver.t breaks its contract: ") as err:
        contracts.enforce(df, CONTRACT)
    assert named in str(err.value)


def test_dataframe_types_rows_by_the_contract(spark):
    df = contracts.dataframe(spark, [{"k": "a", "n": 1, "on": dt.date(2023, 1, 2)}, {"k": "b", "n": None, "on": None}], CONTRACT)
    assert contracts.enforce(df, CONTRACT).count() == 2
    empty = contracts.dataframe(spark, [], CONTRACT)
    assert [(f.name, f.dataType.simpleString()) for f in empty.schema.fields] == [("k", "string"), ("n", "int"), ("on", "date")]


# -- the repository's contracts --------------------------------------------------------

CONTRACT_FILES = sorted(p for zone in ("bronze", "silver", "gold", "open", "quarantine") for p in (SCHEMAS_DIR / zone).glob("*.yaml"))


def test_there_are_contracts():
    assert len(CONTRACT_FILES) >= 19


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_contract_loads(path):
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    name = f"{path.parent.name}.{path.stem}"
    c = contracts.load(name)
    assert c.table == doc["table"] == name  # the file is where its logical name says
    assert text.splitlines()[0] == f"# {c.grain}"  # the first line states the grain
    assert c.grain.startswith("one row per")
    assert all(col.description for col in c.columns)
    assert contracts.arrow_schema(c).names == c.names
