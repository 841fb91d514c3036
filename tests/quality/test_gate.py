"""The gate: contract rules, suite expectations and SQL checks (native GX suites) on a candidate Delta table."""

from __future__ import annotations

import json

import pytest

from lawlake import contracts, pipeline, suites, tables
from lawlake.suites import Suite, check
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


def _contract_suite(*own: dict, contract=CONTRACT) -> Suite:
    return Suite("gold.t", tuple(suites.contract_expectations(contract)) + own)


# -- contract-implied expectations -----------------------------------------------------


def test_a_table_that_keeps_its_contract_passes(spark, lake):
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "good", GOOD), lake=lake, suite=_contract_suite())
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
    return gate.run_gate(spark, "gold.t", _candidate(spark, lake, "broken", rows), lake=lake, suite=_contract_suite())


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
    result = gate.run_gate(spark, "gold.t", path, lake=lake, suite=_contract_suite())
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
def test_suite_expectation_with_mostly(spark, lake, mostly, success):
    suite = _contract_suite({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "v", "regex": "^[0-9]{6}$", "mostly": mostly}, "meta": {}})
    rows = [{"k": str(i), "v": v, "kind": "a", "n": i} for i, v in enumerate(["330102", "330105", "330106", "33"])]
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, f"mostly{mostly}", rows), lake=lake, suite=suite)
    (mine,) = [r for r in result.results if r["expectation"] == "expect_column_values_to_match_regex(v)"]
    assert (mine["success"], mine["threshold"], mine["unexpected_count"], result.success) == (success, mostly, 1, success)


def test_write_suite_refreshes_the_contract_part_and_keeps_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(suites, "SUITES_DIR", tmp_path)
    own = check("n_positive", "SELECT * FROM {batch} WHERE n <= 0")
    suites.suite_path("gold.t").parent.mkdir(parents=True)
    suites.suite_path("gold.t").write_text(json.dumps({"name": "gold.t", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "gone"}, "meta": {"source": "contract"}},  # a stale contract rule
        own,
    ]}))
    suites.write_suite(CONTRACT)
    written = suites.load_suite("gold.t")
    assert written is not None
    assert list(written.expectations) == suites.contract_expectations(CONTRACT) + [own]


def test_a_table_without_a_suite_file_is_gated_by_its_contract(tmp_path, monkeypatch):
    monkeypatch.setattr(suites, "SUITES_DIR", tmp_path)
    assert suites.suite_for("gold.t", contract=CONTRACT) == Suite("gold.t", tuple(suites.contract_expectations(CONTRACT)))


# -- SQL checks (unexpected_rows_expectation) ----------------------------------------------


def test_a_check_returning_rows_fails_with_their_count(spark, lake):
    suite = Suite("gold.t", (check("n_below_3", "SELECT k FROM {batch} WHERE n < 3"),))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "check", GOOD), lake=lake, suite=suite)
    (found,) = result.results
    assert (result.success, found["expectation"], found["success"], found["unexpected_count"]) == (False, "check:n_below_3", False, 2)
    assert found["observed"].startswith("2 violating rows, e.g. [{'k': '1'}")


def test_a_passing_check_runs_its_query_once_and_a_failing_one_is_run_again_for_its_rows(spark, lake, monkeypatch):
    # GX's unexpected_rows_expectation runs its query twice (rows and count) in every result format; the decision counts only
    ran: list[str] = []
    sql = spark.sql
    monkeypatch.setattr(spark, "sql", lambda query, *a, **k: (ran.append(query), sql(query, *a, **k))[1])
    suite = Suite("gold.t", (check("passes", "SELECT k FROM {batch} WHERE n > 5 AND 'passes' = 'passes'"),
                             check("fails", "SELECT k FROM {batch} WHERE n < 3 AND 'fails' = 'fails'")))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "once", GOOD), lake=lake, suite=suite, run_id="once", stage="integrate")
    assert sum("'passes'" in q for q in ran) == 1
    assert sum("'fails'" in q for q in ran) == 3  # counted, then its rows and their count for the result
    assert [(r["expectation"], r["success"], r["unexpected_count"]) for r in result.results] == [("check:passes", True, 0), ("check:fails", False, 2)]
    # what the run keeps for Data Docs names both as the suite does: GX's own expectation, not the counting form
    kept = [p.read_text() for p in (lake / "_quality" / "once").rglob("*.json")]
    assert kept and any(gate.SQL_CHECK in text for text in kept) and not any(gate.COUNTED in text or "suite_checks" in text for text in kept)


def test_a_tables_passing_checks_are_counted_in_one_query(spark, lake, monkeypatch):
    # each check ran as its own query (and registered the batch as a view first); the decision counts them all in one
    ran: list[str] = []
    sql = spark.sql
    monkeypatch.setattr(spark, "sql", lambda query, *a, **k: (ran.append(query), sql(query, *a, **k))[1])
    suite = Suite("gold.t", tuple(check(f"c{i}", f"SELECT k FROM {{batch}} WHERE n > {5 + i} AND 'c{i}' = 'c{i}'") for i in range(3)))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "together", GOOD), lake=lake, suite=suite, run_id="together")
    assert result.success and [r["unexpected_count"] for r in result.results] == [0, 0, 0]
    mine = [q for q in ran if "'c0'" in q or "'c1'" in q or "'c2'" in q]
    assert len(mine) == 1 and all(f"'c{i}'" in mine[0] for i in range(3))


def test_a_keys_uniqueness_is_decided_in_the_counted_query_and_kept_as_gxs_own(spark, lake, monkeypatch):
    # GX judges uniqueness by a window over every row, partitioned by the key; the decision counts the duplicated keys grouped
    ran: list[str] = []
    sql = spark.sql
    monkeypatch.setattr(spark, "sql", lambda query, *a, **k: (ran.append(query), sql(query, *a, **k))[1])
    suite = _contract_suite(check("c", "SELECT k FROM {batch} WHERE n > 5 AND 'c' = 'c'"))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "unique", GOOD), lake=lake, suite=suite, run_id="unique", stage="integrate")
    (key,) = [r for r in result.results if r["expectation"] == "expect_column_values_to_be_unique(k)"]
    assert result.success and (key["success"], key["unexpected_count"]) == (True, 0)
    (counted,) = [q for q in ran if "GROUP BY `k` HAVING COUNT(*) > 1" in q]
    assert "'c' = 'c'" in counted  # with the table's SQL check, in one query
    kept = [p.read_text() for p in (lake / "_quality" / "unique").rglob("*.json")]
    assert kept and any(gate.UNIQUE in text for text in kept) and not any(gate.COUNTED in text or "suite_checks" in text for text in kept)


KEYS = contracts.parse({
    "table": "gold.t2", "grain": "g", "primary_key": ["a", "b"],
    "columns": [{"name": "a", "type": "string", "description": "a"}, {"name": "b", "type": "string", "description": "b"}],
})


MODES = (None, "any_value_is_missing", "never")  # ignore_row_if: GX's default (all_values_are_missing), and the others


@pytest.mark.parametrize("rows, compound_by_mode, single", [
    ([("1", "x"), ("1", "y"), ("2", "x")], (True, True, True), False),  # unique keys; a repeated
    ([("1", "x"), ("1", "x")], (False, False, False), False),  # a duplicated key
    ([(None, None), (None, None), ("1", "x")], (True, True, False), True),  # rows without a key: left out, but under "never"
    ([("1", None), ("1", None)], (False, True, False), False),  # a key with a null part: the same key twice, but under "any"
    ([(None, "x"), ("2", "x")], (True, True, True), True),
])
@pytest.mark.parametrize("mode", range(len(MODES)))
def test_the_counted_key_uniqueness_decides_as_gxs_own(spark, lake, rows, compound_by_mode, single, mode):
    # the same expectations with mostly=1.0 are judged by GX's own metric (a window over the rows): both agree, and are right
    data = [{"a": a, "b": b} for a, b in rows]
    path = _candidate(spark, lake, f"keys{len(rows)}{rows[0][0]}{rows[0][1]}{mode}", data, contract=KEYS)
    extra = {"ignore_row_if": MODES[mode]} if MODES[mode] else {}
    compound = {"type": gate.COMPOUND_UNIQUE, "kwargs": {"column_list": ["a", "b"], **extra}, "meta": {}}
    expectations = (compound, {"type": gate.UNIQUE, "kwargs": {"column": "a"}, "meta": {}})
    assert (gate._counted_query(compound) is None) == (MODES[mode] == "never")  # "never": GX's own form decides it
    for mostly in ({}, {"mostly": 1.0}):
        suite = Suite("gold.t2", tuple({**e, "kwargs": {**e["kwargs"], **mostly}} for e in expectations))
        result = gate.run_gate(spark, "gold.t2", path, lake=lake, suite=suite)
        assert [r["success"] for r in result.results] == [compound_by_mode[mode], single], mostly


def test_every_check_of_a_table_is_judged(spark, lake):
    # GX upserts configurations by domain: every SQL check has the same domain, so only the last would run
    suite = Suite("gold.t", (check("n_over_0", "SELECT k FROM {batch} WHERE n > 0"), check("n_over_5", "SELECT k FROM {batch} WHERE n > 5")))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "two_checks", GOOD), lake=lake, suite=suite)
    assert [(r["expectation"], r["unexpected_count"]) for r in result.results] == [("check:n_over_0", 3), ("check:n_over_5", 0)]


def test_a_check_with_regex_braces_runs(spark, lake):
    # GX fills {batch} with str.format: the gate escapes every other brace
    suite = Suite("gold.t", (check("six_digits", "SELECT k FROM {batch} WHERE v RLIKE '^[a-z]{1}$'"),))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "braces", GOOD), lake=lake, suite=suite)
    assert (result.success, result.results[0]["unexpected_count"]) == (False, 3)


def test_a_check_that_cannot_run_fails(spark, lake):
    suite = _contract_suite(
        check("typo", "SELECT no_such_column FROM {batch}"),
        check("missing_table", "SELECT * FROM {gold.never_published}"),
        check("fine", "SELECT k FROM {batch} WHERE n > 5"),
    )
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "errors", GOOD), lake=lake, suite=suite)
    failed = _failed(result)
    assert result.success is False  # the contract rules pass; a check that errors is never a pass
    assert set(failed) == {"check:typo", "check:missing_table"}  # the checks counted together: the one that runs still passes
    assert "no_such_column" in str(failed["check:typo"]["observed"])


def test_sibling_candidates_are_used_over_released_tables(spark, lake):
    # every k of the candidate must be in gold.ref: the released ref lacks "3", this run's candidate of it has it
    ref = contracts.parse({"table": "gold.ref", "grain": "g", "columns": [{"name": "k", "type": "string", "description": "key"}]})
    tables.write(contracts.dataframe(spark, [{"k": "1"}, {"k": "2"}], ref), tables.location(lake, "gold.ref"))
    tables.write(contracts.dataframe(spark, [{"k": "1"}, {"k": "2"}, {"k": "3"}], ref), tables.location(lake, "gold.ref"), mode="overwrite")  # v1: not released
    sibling = _candidate(spark, lake, "ref", [{"k": "1"}, {"k": "2"}, {"k": "3"}], contract=ref)
    suite = Suite("gold.t", (check("k_in_ref", "SELECT c.k FROM {batch} c LEFT ANTI JOIN {gold.ref} r ON c.k = r.k"),))
    candidate = _candidate(spark, lake, "with_ref", GOOD)

    released = gate.run_gate(spark, "gold.t", candidate, lake=lake, suite=suite, versions={"gold.ref": 0})
    assert (released.success, released.results[0]["unexpected_count"]) == (False, 1)  # version 0, the released one, not the latest
    with_sibling = gate.run_gate(spark, "gold.t", candidate, lake=lake, suite=suite, siblings={"gold.ref": sibling}, versions={"gold.ref": 0})
    assert with_sibling.success is True


def test_a_shared_view_is_written_once_for_every_table_that_names_it(spark, lake, tmp_path):
    # gold.view_ref holds k 1 and 2; the view (its k over 1) is computed once and read by both gates
    ref = contracts.parse({"table": "gold.view_ref", "grain": "g", "columns": [{"name": "k", "type": "string", "description": "key"}]})
    tables.write(contracts.dataframe(spark, [{"k": "1"}, {"k": "2"}], ref), tables.location(lake, "gold.view_ref"))
    definitions = {"gate.big_ref": "SELECT k FROM {gold.view_ref} WHERE k > '1'"}
    views = gate.SharedViews(spark, definitions, lake=lake, siblings={}, versions={"gold.view_ref": 0}, folder=tmp_path / "views")
    suite = Suite("gold.t", (check("k_in_big_ref", "SELECT c.k FROM {batch} c JOIN {gate.big_ref} b ON c.k = b.k"),))
    first = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_1", GOOD), lake=lake, suite=suite, versions={"gold.view_ref": 0}, views=views)
    [folder] = (tmp_path / "views").glob("big_ref-*")
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_2", GOOD[:1]), lake=lake, suite=suite, versions={"gold.view_ref": 0}, views=views)
    assert (first.success, first.results[0]["unexpected_count"]) == (False, 1)  # k = 2
    assert second.success is True  # k = 1 only
    assert list(views.seconds) == ["gate.big_ref"] and written == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # a later stage's gate reading the same versions reads the same file; another version of what it reads is another file
    later = gate.SharedViews(spark, definitions, lake=lake, siblings={}, versions={"gold.view_ref": 0}, folder=tmp_path / "views")
    third = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_4", GOOD), lake=lake, suite=suite, versions={"gold.view_ref": 0}, views=later)
    assert (third.success, third.results[0]["unexpected_count"]) == (False, 1)
    assert written == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} and len(list((tmp_path / "views").iterdir())) == 1
    tables.write(contracts.dataframe(spark, [{"k": "1"}, {"k": "2"}, {"k": "3"}], ref), tables.location(lake, "gold.view_ref"))
    newer = gate.SharedViews(spark, definitions, lake=lake, siblings={}, versions={"gold.view_ref": 1}, folder=tmp_path / "views")
    fourth = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_5", GOOD), lake=lake, suite=suite, versions={"gold.view_ref": 1}, views=newer)
    assert fourth.results[0]["unexpected_count"] == 2 and len(list((tmp_path / "views").iterdir())) == 2  # k = 2 and 3, from version 1
    # without a folder (a gate on its own) the view runs inline: the same verdict
    inline = gate.SharedViews(spark, definitions, lake=lake, siblings={}, versions={"gold.view_ref": 0})
    again = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_3", GOOD), lake=lake, suite=suite, versions={"gold.view_ref": 0}, views=inline)
    assert (again.success, again.results[0]["unexpected_count"]) == (False, 1)


def test_a_suite_holding_one_check_twice_is_refused_and_two_checks_alike_but_for_their_sql_both_run(spark, lake):
    twice = Suite("gold.t", (check("k_known", "SELECT * FROM {batch} WHERE k IS NULL"), check("k_known", "SELECT * FROM {batch} WHERE k IS NULL")))
    with pytest.raises(ValueError, match="1 duplicate expectations"):
        gate.run_gate(spark, "gold.t", _candidate(spark, lake, "twice", GOOD), lake=lake, suite=twice)
    both = Suite("gold.t", (check("no_k_2", "SELECT * FROM {batch} WHERE k = '2'"), check("no_k_3", "SELECT * FROM {batch} WHERE k = '3'")))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "both", GOOD), lake=lake, suite=both)
    assert sorted(_failed(result)) == ["check:no_k_2", "check:no_k_3"]


def test_a_shared_view_over_an_unreleased_table_fails_the_check_naming_it(spark, lake, tmp_path):
    views = gate.SharedViews(spark, {"gate.v": "SELECT k FROM {gold.never_published}"}, lake=lake, siblings={}, versions={}, folder=tmp_path)
    suite = Suite("gold.t", (check("uses_v", "SELECT * FROM {gate.v}"), check("unknown_view", "SELECT * FROM {gate.nope}")))
    result = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "view_missing", GOOD), lake=lake, suite=suite, views=views)
    failed = _failed(result)
    assert set(failed) == {"check:uses_v", "check:unknown_view"}
    assert "gold.never_published is not in any release" in str(failed["check:uses_v"]["observed"])
    assert "gate.nope is not a shared gate view" in str(failed["check:unknown_view"]["observed"])


# -- the repository's suites -----------------------------------------------------------

GATED = sorted(n for n in pipeline.declared_tables() if not n.startswith(("work.", "share."))) + [pipeline.QUARANTINE]


@pytest.mark.parametrize("name", GATED)
def test_every_gated_table_has_a_native_suite_matching_its_contract(name):
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    suite = suites.load_suite(name)
    assert suite is not None, f"no quality/suites/{name}.json: run lawlake suites --write"
    contract = contracts.load(name)
    from_contract = [e for e in suite.expectations if e["meta"].get("source") == "contract"]
    assert from_contract == suites.contract_expectations(contract), f"{name}: suite out of date with its contract: run lawlake suites --write"
    for e in suite.expectations:
        get_expectation_impl(e["type"])  # a real GX expectation type
        column = e["kwargs"].get("column")
        assert column is None or column in contract.names, f"{name}: {e['type']} names unknown column {column}"
        if e["type"] == "unexpected_rows_expectation":
            assert "{batch}" in e["kwargs"]["unexpected_rows_query"] and e["meta"].get("check")
    gx.ExpectationSuite(**{k: v for k, v in json.loads(suites.suite_path(name).read_text()).items() if k in ("name", "expectations", "meta")})  # GX loads it natively


def test_the_repository_file_context_holds_every_suite():
    # GX's own file data context (quality/gx/great_expectations.yml) finds each suite in its store by name
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=suites.GX_DIR.parent)
    for name in GATED:
        stored = context.suites.get(name)
        assert [e.expectation_type for e in stored.expectations] == [e["type"] for e in suites.load_suite(name).expectations], name


def test_the_person_index_gate_counts_every_person_record_against_gold_person_records(spark, lake):
    """gold.person_index's own check: each person's n_records is its rows in gold.person_records (this run's candidate),
    no person record's person is missing and no person is left without records (a stale row a rebuild by scope kept)."""
    records_contract, index_contract = contracts.load("gold.person_records"), contracts.load("gold.person_index")
    records = [{"record_ref": f"silver.suspects:S{i}", "source_table": "silver.suspects", "record_key": f"S{i}", "person_key": p, "match_rule": "id_number"}
               for i, p in enumerate(["P1", "P1", "P2"])]
    sibling = _candidate(spark, lake, "person_records", records, contract=records_contract)

    def person(key: str, n: int) -> dict:
        return {"person_key": key, "id_number": None, "name": "张三", "sex": "M", "birth_date": None, "n_records": n, "agencies": "police", "has_conflicts": False}

    suite = suites.load_suite("gold.person_index")
    assert suite is not None

    def gate_of(name: str, rows: list[dict]):
        candidate = _candidate(spark, lake, name, rows, contract=index_contract)
        return gate.run_gate(spark, "gold.person_index", candidate, lake=lake, suite=suite, siblings={"gold.person_records": sibling})

    assert gate_of("index_good", [person("P1", 2), person("P2", 1)]).success is True
    for name, rows in (("index_miscounted", [person("P1", 1), person("P2", 1)]), ("index_missing", [person("P1", 2)]),
                       ("index_stale", [person("P1", 2), person("P2", 1), person("P3", 1)])):
        result = gate_of(name, rows)
        assert (result.success, _failed(result)["check:n_records_counts_person_records"]["unexpected_count"]) == (False, 1), name


@pytest.mark.parametrize("rejected, applicable, threshold, success", [
    (1, 26, 0.97, True),  # a new day's slice: one mistyped number in 26 is chance (lower bound 0.68% <= 3%)
    (5, 26, 0.97, False),  # five in 26: at least 8.5% at 95% confidence, over 3%
    (26, 26, 0.97, False),  # a broken delivery, however small
    (1, 1, 0.95, False),  # the one first delivery unreadable (gather.first_delivery_readable)
    (700, 20_000, 0.97, False),  # 96.5% of a whole table: at least 3.25%
    (560, 20_000, 0.97, True),  # 97.2%: within the threshold
    (1, 100_000, 1.0, False),  # a threshold of 1 refuses any rejection
    (0, 0, 0.99, True),  # nothing checked
    (3, 3, 0.0, True),  # a threshold of 0 accepts anything
])
def test_a_rule_fails_only_when_its_rejections_exceed_the_threshold_beyond_chance(rejected, applicable, threshold, success):
    (result,) = gate.rule_rate_results([{"rule": "r", "applicable": applicable, "rejected": rejected}], {"r": threshold}, default=None)
    assert result["success"] is success
    assert result["unexpected_count"] == rejected
    if success and applicable and rejected / applicable > 1 - threshold:
        assert "at 95% confidence" in result["observed"]  # why a rate under its threshold passed


def test_the_rejected_share_lower_bound_is_the_wilson_score_interval():
    assert gate.rejected_share_lower_bound(0, 10) == 0.0
    assert gate.rejected_share_lower_bound(1, 26) == pytest.approx(0.00681, abs=1e-4)
    assert gate.rejected_share_lower_bound(50, 100) == pytest.approx(0.4038, abs=1e-4)  # textbook: 50/100 → [0.404, 0.596]
    assert gate.rejected_share_lower_bound(300, 10_000) == pytest.approx(0.0268, abs=1e-3)  # converges on the share itself
