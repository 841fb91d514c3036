"""The gate: contract rules, suite expectations and SQL checks on a candidate Delta table."""

from __future__ import annotations

import pytest
import yaml

from lawlake import contracts, tables
from lawlake.config import QUALITY_DIR
from quality import gate

CONTRACT = contracts.parse({
    "table": "gold.t",
    "grain": "one row per t",
    "primary_key": ["k"],
    "columns": [
        {"name": "k", "type": "string", "nullable": False, "description": "key"},
        {"name": "v", "type": "string", "nullable": False, "description": "required value"},
        {"name": "kind", "type": "string", "description": "a code", "accepted_values": ["a", "b"]},
        {"name": "n", "type": "int", "description": "a number"},
    ],
})
GOOD = [
    {"k": "1", "v": "x", "kind": "a", "n": 1},
    {"k": "2", "v": "y", "kind": "b", "n": 2},
    {"k": "3", "v": "z", "kind": None, "n": 3},  # a nullable code may be null
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return tmp_path_factory.mktemp("gate") / "lake"


def _candidate(spark, lake, name: str, rows: list[dict], contract=CONTRACT):
    path = lake / "_staging" / "run" / name
    tables.write(contracts.dataframe(spark, rows, contract), path)
    return path


def _failed(result) -> dict[str, dict]:
    return {r["expectation"]: r for r in result.failures}


# -- contract-implied expectations -----------------------------------------------------


def test_a_table_that_keeps_its_contract_passes(spark, lake):
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "good", GOOD), lake=lake, contract=CONTRACT, suite=gate.Suite("gold.t"))
    assert (result.success, result.rows, result.failures) == (True, 3, [])
    assert {r["expectation"] for r in result.results} == {
        "expect_table_columns_to_match_ordered_list(k,v,kind,n)",
        "expect_column_values_to_not_be_null(k)",
        "expect_column_values_to_not_be_null(v)",
        "expect_column_values_to_be_in_set(kind)",
        "expect_column_values_to_be_unique(k)",
    }


@pytest.fixture(scope="module")
def broken(spark, lake):
    """One candidate breaking three contract rules, each in its own column."""
    rows = GOOD + [
        {"k": "1", "v": "w", "kind": "a", "n": 4},  # key 1 again
        {"k": "5", "v": None, "kind": "b", "n": 5},  # required value missing
        {"k": "6", "v": "u", "kind": "zzz", "n": 6},  # not an accepted code
    ]
    return gate.run_gate(spark, "gold.t", _candidate(spark, lake, "broken", rows), lake=lake, contract=CONTRACT, suite=gate.Suite("gold.t"))


@pytest.mark.parametrize(
    "expectation, unexpected, sample",
    [
        ("expect_column_values_to_be_unique(k)", 2, "'1'"),  # both rows with key 1
        ("expect_column_values_to_not_be_null(v)", 1, "None"),
        ("expect_column_values_to_be_in_set(kind)", 1, "'zzz'"),
    ],
)
def test_contract_rules_fail_naming_the_column(broken, expectation, unexpected, sample):
    failed = _failed(broken)
    assert failed[expectation]["unexpected_count"] == unexpected
    assert sample in failed[expectation]["observed"]


def test_only_the_broken_rules_fail(broken):
    assert broken.success is False
    assert set(_failed(broken)) == {
        "expect_column_values_to_be_unique(k)", "expect_column_values_to_not_be_null(v)", "expect_column_values_to_be_in_set(kind)"
    }
    assert "expect_column_values_to_not_be_null(v): 1 unexpected" in broken.describe_failures()


def test_a_candidate_with_other_columns_fails_the_column_list(spark, lake):
    other = contracts.parse({"table": "gold.t", "grain": "g", "columns": [{"name": "k", "type": "string", "description": "key"}]})
    path = _candidate(spark, lake, "other", [{"k": "1"}], contract=other)
    result = gate.run_gate(spark, "gold.t", path, lake=lake, contract=CONTRACT, suite=gate.Suite("gold.t"))
    failed = _failed(result)
    assert "expect_table_columns_to_match_ordered_list(k,v,kind,n)" in failed
    assert "expect_column_values_to_not_be_null(v)" in failed  # a missing column cannot pass a rule on it


# -- the suite file --------------------------------------------------------------------


@pytest.mark.parametrize(
    "mostly, success",
    [
        (0.75, True),  # 3 of 4 six-digit codes: exactly enough
        (0.8, False),  # not enough
    ],
)
def test_suite_file_expectation_with_mostly(spark, lake, tmp_path, mostly, success):
    (tmp_path / "gold.t.yaml").write_text(yaml.safe_dump({
        "table": "gold.t",
        "expectations": [{"expect_column_values_to_match_regex": {"column": "v", "regex": "^[0-9]{6}$", "mostly": mostly}}],
    }))
    suite = gate.load_suite("gold.t", suites_dir=tmp_path)
    rows = [{"k": str(i), "v": v, "kind": "a", "n": i} for i, v in enumerate(["330102", "330105", "330106", "33"])]
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, f"mostly{mostly}", rows), lake=lake, contract=CONTRACT, suite=suite)
    (mine,) = [r for r in result.results if r["expectation"] == "expect_column_values_to_match_regex(v)"]
    assert (mine["success"], mine["threshold"], mine["unexpected_count"], result.success) == (success, mostly, 1, success)


def test_a_missing_suite_file_is_an_empty_suite(tmp_path):
    assert gate.load_suite("gold.t", suites_dir=tmp_path) == gate.Suite(table="gold.t")


# -- SQL checks ------------------------------------------------------------------------


def test_a_check_returning_rows_fails_with_their_count(spark, lake):
    suite = gate.Suite("gold.t", checks=({"name": "n_below_3", "sql": "SELECT k FROM {candidate} WHERE n < 3"},))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "check", GOOD), lake=lake, contract=None, suite=suite)
    (check,) = result.results
    assert (result.success, check["expectation"], check["success"], check["unexpected_count"]) == (False, "check:n_below_3", False, 2)
    assert check["observed"].startswith("2 violating rows, e.g. [{'k': '1'}")


def test_a_check_that_cannot_run_fails(spark, lake):
    suite = gate.Suite("gold.t", checks=(
        {"name": "typo", "sql": "SELECT no_such_column FROM {candidate}"},
        {"name": "missing_table", "sql": "SELECT * FROM {gold.never_published}"},
    ))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "errors", GOOD), lake=lake, contract=CONTRACT, suite=suite)
    failed = _failed(result)
    assert result.success is False  # the contract rules pass; a check that errors is never a pass
    assert set(failed) == {"check:typo", "check:missing_table"}
    assert all(f["observed"].startswith("raised: ") and f["unexpected_count"] is None for f in failed.values())


def test_sibling_candidates_are_used_over_published_tables(spark, lake):
    # every k of the candidate must be in gold.ref: the published ref lacks "3", this run's candidate of it has it
    ref = contracts.parse({"table": "gold.ref", "grain": "g", "columns": [{"name": "k", "type": "string", "description": "key"}]})
    tables.write(contracts.dataframe(spark, [{"k": "1"}, {"k": "2"}], ref), tables.location(lake, "gold.ref"))
    sibling = _candidate(spark, lake, "ref", [{"k": "1"}, {"k": "2"}, {"k": "3"}], contract=ref)
    suite = gate.Suite("gold.t", checks=({"name": "k_in_ref", "sql": "SELECT c.k FROM {candidate} c LEFT ANTI JOIN {gold.ref} r ON c.k = r.k"},))
    candidate = _candidate(spark, lake, "with_ref", GOOD)

    published = gate.run_gate(spark, "gold.t", candidate, lake=lake, contract=None, suite=suite)
    assert (published.success, published.results[0]["unexpected_count"]) == (False, 1)
    with_sibling = gate.run_gate(spark, "gold.t", candidate, lake=lake, contract=None, suite=suite, siblings={"gold.ref": sibling})
    assert with_sibling.success is True


# -- the repository's suites -----------------------------------------------------------

SUITE_FILES = sorted((QUALITY_DIR / "suites").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_every_suite_names_its_table_and_known_expectations(path):
    import great_expectations as gx

    suite = gate.load_suite(path.stem)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["table"] == suite.table == path.stem
    contract = contracts.load(path.stem)
    for name, kwargs in suite.expectations:
        assert hasattr(gx.expectations, gate._class_name(name)), name
        assert kwargs.get("column", contract.names[0]) in contract.names
    for check in suite.checks:
        assert set(check) == {"name", "sql"} and "{candidate}" in check["sql"]
