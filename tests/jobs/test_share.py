"""share: policies refuse unsafe grants; extracts are filtered, sealed-free and masked; the share gate proves it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import share
from lawlake import contracts, policy, suites, tables
from lawlake.rules.spark import hmac_sha256_hex
from quality.gate import run_gate

from .frames import table

D = dt.date
SECRET = b"test-lake-secret"
CHAIN = contracts.load("gold.case_chain")


def _doc(columns: dict | None = None, *, source: str = "gold.case_chain", rows: dict | None = None) -> dict:
    """A policy document sharing one table: every column dropped unless ``columns`` says otherwise."""
    names = CHAIN.names if source == "gold.nope" else contracts.load(source).names
    cols = {c: "drop" for c in names}
    if "chain_id" in cols:
        cols["chain_id"] = "keep"
    cols.update(columns or {})
    return {
        "partner": "test_partner",
        "purpose": "tests",
        "expires_on": D(2099, 1, 1),
        "tables": {"t": {"from": source, "rows": rows or {}, "columns": {c: m for c, m in cols.items() if m is not None}}},
    }


# -- policy.parse ----------------------------------------------------------------------


def test_a_complete_policy_parses():
    p = policy.parse(_doc({"person_key": "pseudonym", "filed_on": "month", "age_at_offense": "age_band"}, rows={"region_code": {"prefix": ["3301"]}}))
    (t,) = p.tables
    assert (p.partner, p.logical(t), t.source) == ("test_partner", "share.test_partner.t", "gold.case_chain")
    assert t.shared_columns() == ["chain_id", "person_key", "filed_on", "age_at_offense"]


@pytest.mark.parametrize(
    "doc, message",
    [
        # a source with no contract
        (_doc(source="gold.nope"), "t: unknown table 'gold.nope'"),
        # a column the gold table does not have
        (_doc({"nickname": "keep"}), "t: unknown column 'nickname' in gold.case_chain"),
        # a sensitive column left out: never shared by accident, never dropped silently either
        (_doc({"verdict": None}), "t: sensitive PII column 'verdict' of gold.case_chain has no masking rule"),
        # names and identity numbers may not be kept
        (_doc({"id_number": "keep"}, source="gold.person_index"), "t.id_number: a direct identifier cannot be kept"),
        # year/month generalize dates only
        (_doc({"police_case_id": "month"}), "t.police_case_id: month generalizes dates, but police_case_id is string"),
        (_doc({"sentence_months": "year"}), "t.sentence_months: year generalizes dates, but sentence_months is int"),
        # the gate proves sealing by chain_id
        (_doc({"chain_id": "pseudonym"}), "t: chain_id must be kept"),
        (_doc(rows={"region_code": {"startswith": ["3301"]}}), "t: row filter on region_code must be one of"),
        (_doc(rows={"province": {"equals": "33"}}), "t: row filter on unknown column 'province'"),
        (_doc({"verdict": "scramble"}), "t.verdict: masking 'scramble' is not one of"),
    ],
)
def test_parse_refuses_unsafe_policies(doc, message):
    with pytest.raises(policy.PolicyError, match="^<policy>: .*" + re.escape(message)):
        policy.parse(doc)


def test_parse_reports_every_problem_at_once():
    doc = _doc({"verdict": "keep", "nickname": "keep", "chain_id": "drop"})
    with pytest.raises(policy.PolicyError) as err:
        policy.parse(doc, source="p.yaml")
    assert "unknown column 'nickname'" in str(err.value) and "chain_id must be kept" in str(err.value)


@pytest.mark.parametrize("partner", ["hz_procuratorate", "zj_law_institute"])
def test_the_repository_policies_parse(partner):
    p = policy.load(partner)
    assert p.partner == partner and p.tables
    for t in p.tables:
        shape = policy.share_contract(p, t)
        assert shape.names == t.shared_columns()


# -- policy.apply ----------------------------------------------------------------------


def _chain_row(chain_id, **fields):
    base = dict(chain_id=chain_id, police_case_id=f"A{chain_id}", person_key="P0", region_code="330102", charge_code="C264", filed_on=D(2023, 1, 15))
    return {**base, **fields}


GOLD = [
    _chain_row("C1", person_key="Paaaa", age_at_offense=17),  # shared
    _chain_row("C2", person_key="Paaaa", region_code="330105", filed_on=D(2023, 2, 3), age_at_offense=45),  # shared: the same person again
    _chain_row("C3", person_key="Pbbbb", seal_status="sealed", is_sealed=True, is_withheld=True, is_minor_at_offense=True, age_at_offense=16),  # sealed
    _chain_row("C6", person_key="Peeee", seal_status="pending", is_withheld=True),  # pending: withheld too
    _chain_row("C4", person_key="Pcccc", region_code="330203"),  # Ningbo: outside the filter
    _chain_row("C5", person_key="Pdddd"),  # listed among sealed chain ids
]
TEST_POLICY = _doc({"police_case_id": "keep", "person_key": "pseudonym", "region_code": "keep", "filed_on": "month", "age_at_offense": "age_band"},
                   rows={"region_code": {"prefix": ["3301"]}})


def _shared(df):
    """The rows a partner receives: those the share marks ``out``."""
    return df.where(F.col("_outcome") == "out").drop("_outcome")


@pytest.fixture(scope="module")
def applied(spark):
    gold = table(spark, "gold.case_chain", GOLD)
    (t,) = policy.parse(TEST_POLICY).tables
    chain = gold.withColumn("seal_status", F.when(F.col("chain_id") == "C5", F.lit("sealed")).otherwise(F.col("seal_status")))  # C5 sealed in the chain, not in this table
    out = {}
    for partner in ("hz_procuratorate", "zj_law_institute"):
        key = policy.partner_key(SECRET, partner)
        marked = share.build_share_table(gold, chain, t, key=key)
        df = _shared(marked)
        outcomes = {r["chain_id"]: r["_outcome"] for r in marked.select("chain_id", "_outcome").collect()}
        out[partner] = (key, df.columns, {r["chain_id"]: r.asDict() for r in df.collect()}, outcomes)
    return out


def test_every_gold_row_is_marked_out_or_excluded(applied):
    *_, outcomes = applied["hz_procuratorate"]
    assert outcomes == {"C1": "out", "C2": "out", "C3": "excluded", "C4": "excluded", "C5": "excluded", "C6": "excluded"}


def test_apply_keeps_the_filtered_unsealed_rows_and_only_the_shared_columns(applied):
    _, columns, rows, _ = applied["hz_procuratorate"]
    assert columns == ["chain_id", "police_case_id", "person_key", "region_code", "filed_on", "age_at_offense"]
    assert sorted(rows) == ["C1", "C2"]  # C3 sealed, C4 outside 3301, C5 a sealed chain id, C6 pending


def test_apply_generalizes_dates_and_ages(applied):
    _, _, rows, _ = applied["hz_procuratorate"]
    assert (rows["C1"]["filed_on"], rows["C1"]["age_at_offense"]) == ("2023-01", "16-17")
    assert (rows["C2"]["filed_on"], rows["C2"]["age_at_offense"]) == ("2023-02", "45-59")  # 45: a band's lower bound


def test_pseudonyms_are_stable_for_a_partner_and_differ_across_partners(applied):
    key, _, hz, _ = applied["hz_procuratorate"]
    _, _, zj, _ = applied["zj_law_institute"]
    assert hz["C1"]["person_key"] == hz["C2"]["person_key"]  # one person, one pseudonym
    assert hz["C1"]["person_key"] != zj["C1"]["person_key"]  # unlinkable across partners
    assert hz["C1"]["person_key"] == hmac.new(key, b"Paaaa", hashlib.sha256).hexdigest()[:32]


def test_hmac_column_equals_python_hmac(spark):
    key = policy.partner_key(SECRET, "hz_procuratorate")
    values = ["Paaaa", "张三", ""]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    got = [r[0] for r in df.select(hmac_sha256_hex(F.col("v"), key)).collect()]
    assert got == [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]


def _apply_one(spark, column: str, ddl: str, mask: str, values: list) -> list:
    df = spark.createDataFrame([(v,) for v in values], f"{column} {ddl}")
    out = policy.apply(df, policy.SharedTable(name="t", source="gold.x", rows={}, columns={column: mask}), key=b"k")
    return [r[0] for r in out.collect()]


AGES = [13, 14, 17, 18, 59, 60, None]


@pytest.fixture(scope="module")
def age_bands(spark):
    return dict(zip(AGES, _apply_one(spark, "age_at_offense", "int", "age_band", AGES)))


@pytest.mark.parametrize(
    "age, band",
    [
        (13, "0-13"),
        (14, "14-15"),  # the youngest age of criminal responsibility for most offenses
        (17, "16-17"),
        (18, "18-24"),  # adult
        (59, "45-59"),
        (60, "60+"),
        (None, None),  # unknown stays unknown
    ],
)
def test_age_bands(age_bands, age, band):
    assert age_bands[age] == band


def test_mask_keeps_region_and_last_four(spark):
    assert _apply_one(spark, "id_number", "string", "mask", ["330102199001011234", None]) == ["330102********1234", None]


# -- the share gate --------------------------------------------------------------------

NAME = "share.hz_procuratorate.case_chain"
GOLD_PUBLISHED = [
    _chain_row("G1", person_key="Pg1", review_id="JC1"),  # in Hangzhou, a theft, not sealed: both partners' row
    _chain_row("G2", person_key="Pg2", seal_status="sealed", is_sealed=True, is_withheld=True, is_minor_at_offense=True, age_at_offense=16),  # sealed
    _chain_row("G3", person_key="Pg3", region_code="330203"),  # Ningbo: not the procuratorate's
    _chain_row("G4", person_key="Pg4", charge_code="C232"),  # homicide: not among the institute's charges
    # gold says not_sealed, but the police recorded a birth date in 2007 for the person: a minor gold mislabels
    _chain_row("G5", person_key="Pg5", occurred_on=D(2023, 1, 10)),
    # a minor by silver, not_sealed: seven years' imprisonment in silver.court_defendants bears it out
    _chain_row("G6", person_key="Pg6", occurred_on=D(2023, 1, 10), first_instance_case_number="（2023）浙0102刑初6号",
               verdict="guilty", sentence_type="fixed_term", sentence_months=84),
    # the minor's birth date is on a procuratorate record gold failed to link: found by police case + name
    _chain_row("G7", person_key="Pg7", occurred_on=D(2023, 1, 10)),
    _chain_row("G8", person_key="Pg8", seal_status="pending", is_withheld=True),  # pending: outcome unknown
    # the minor's birth date is on a defendant record of the chain's appeal that gold failed to link: found by court case + name
    _chain_row("G9", person_key="Pg9", occurred_on=D(2023, 1, 10), first_instance_case_number="（2023）浙0102刑初9号", appeal_case_number="（2023）浙01刑终9号"),
    # custody records carry no birth date: the linked record's identity number (born 2008) gives it
    _chain_row("G10", person_key="Pg10", occurred_on=D(2023, 1, 10)),
    # the earliest offense: born 1984, 17 then, though 39 at every other chain's offense (the gate leaves out only
    # records born more than 19 years before the earliest offense)
    _chain_row("G11", person_key="Pg11", occurred_on=D(2001, 6, 1), filed_on=D(2002, 1, 15)),
]
SILVER_PUBLISHED = {
    "silver.suspects": [
        dict(suspect_id="S1", police_case_id="AG1", name="郑一", birth_date=D(1990, 1, 1)),  # an adult
        dict(suspect_id="S5", police_case_id="AG5", name="冯五", birth_date=D(2007, 1, 1)),  # 16 at the offense
        dict(suspect_id="S6", police_case_id="AG6", name="陈六", birth_date=D(2006, 5, 5)),
        dict(suspect_id="S7", police_case_id="AG7", name="褚七", birth_date=D(1990, 1, 1)),  # the police's birth date is wrong
        dict(suspect_id="S11", police_case_id="AG11", name="沈十一", birth_date=D(1984, 1, 1)),
    ],
    "silver.prosecutions": [
        dict(prosecution_id="JC7:褚七", review_id="JC7", police_case_id="AG7", name="褚七", birth_date=D(2008, 2, 2), supplementary_rounds=0),
    ],
    "silver.court_defendants": [
        dict(defendant_id="（2023）浙0102刑初6号#1", case_number="（2023）浙0102刑初6号", party_index=1, name="陈六",
             verdict="guilty", sentence_type="fixed_term", sentence_months=84),
        dict(defendant_id="（2023）浙01刑终9号#1", case_number="（2023）浙01刑终9号", party_index=1, name="卫九", birth_date=D(2008, 6, 1)),
    ],
    "silver.custody": [
        dict(record_id="R10", case_number="（2023）浙0102刑初10号", name="蒋十", id_number="330102200803031234"),
    ],
    "gold.person_records": [
        dict(record_ref=f"silver.{t}:{k}", source_table=f"silver.{t}", record_key=k, person_key=p, match_rule="id_number")
        for t, k, p in (("suspects", "S1", "Pg1"), ("suspects", "S5", "Pg5"), ("suspects", "S6", "Pg6"), ("suspects", "S7", "Pg7"),
                        ("court_defendants", "（2023）浙0102刑初6号#1", "Pg6"), ("custody", "R10", "Pg10"), ("suspects", "S11", "Pg11"))
    ],
    "gold.person_index": [
        dict(person_key=p, name=n, n_records=1, agencies="police", has_conflicts=False)
        for p, n in (("Pg1", "郑一"), ("Pg5", "冯五"), ("Pg6", "陈六"), ("Pg7", "褚七"), ("Pg9", "卫九"), ("Pg10", "蒋十"), ("Pg11", "沈十一"))
    ],
}


@pytest.fixture(scope="module")
def share_gate(spark, tmp_path_factory):
    """Gold published in a tmp lake; a function that writes a candidate (gold rows → masked) and runs the share gate on it."""
    lake = tmp_path_factory.mktemp("share") / "lake"
    tables.write(table(spark, "gold.case_chain", GOLD_PUBLISHED), tables.location(lake, "gold.case_chain"))
    for name, rows in SILVER_PUBLISHED.items():
        tables.write(table(spark, name, rows), tables.location(lake, name))
    gold = tables.read(spark, tables.location(lake, "gold.case_chain"))
    runs = iter(range(100))

    def gate(chain_ids=("G1",), *, ignore_policy=False, edit=None, name=NAME):
        _, partner, shared = name.split(".")
        p = policy.load(partner)
        t = p.table(shared)
        shape = policy.share_contract(p, t)
        rows = gold.where(F.col("chain_id").isin(*chain_ids))
        if ignore_policy:  # what a broken job might write: no row filter, no sealing
            rows = rows.withColumn("is_sealed", F.lit(False)).withColumn("seal_status", F.lit("not_sealed"))
            spec = policy.SharedTable(name=t.name, source=t.source, rows={}, columns=t.columns)
        else:
            spec = t
        candidate = _shared(share.build_share_table(rows, gold if not ignore_policy else rows, spec, key=policy.partner_key(SECRET, partner)))
        for col, value in (edit or {}).items():
            candidate = candidate.withColumn(col, F.lit(value))
        path = lake / "_staging" / f"run{next(runs)}" / "share" / partner / shared
        tables.write(contracts.enforce(candidate, shape), path)
        return run_gate(spark, name, path, lake=lake, suite=share.share_suite(p, t), versions={n: 0 for n in tables.published_tables(lake)})

    gate.lake = lake  # gold and silver published here: the open check's test reuses them
    return gate


def _failed(result) -> set[str]:
    return {r["expectation"] for r in result.failures}


def test_the_share_suite_covers_sealing_filter_identity_numbers_and_masking():
    p = policy.load("hz_procuratorate")
    suite = share.share_suite(p, p.table("case_chain"))
    own = [e for e in suite.expectations if e["meta"].get("source") != "contract"]
    assert {e["meta"].get("check") for e in own} == {
        "no_sealed_records", "no_minor_by_silver_evidence", "rows_within_partner_filter", "no_raw_identity_numbers", "person_key_holds_no_source_value", None
    }
    assert [e["kwargs"] for e in own if e["type"] == "expect_column_values_to_match_regex"] == [{"column": "person_key", "regex": "^[0-9a-f]{32}$"}]
    # the contract part is the policy's derived contract
    assert [e for e in suite.expectations if e["meta"].get("source") == "contract"] == suites.contract_expectations(policy.share_contract(p, p.table("case_chain")))


def test_share_gate_passes_the_policy_output(share_gate):
    result = share_gate()
    assert (result.success, result.rows, _failed(result)) == (True, 1, set())


def test_share_gate_fails_a_sealed_chain(share_gate):
    result = share_gate(("G1", "G2"), ignore_policy=True)
    assert _failed(result) == {"check:no_sealed_records"}
    (check,) = result.failures
    assert check["unexpected_count"] == 1


def test_share_gate_fails_a_pending_chain(share_gate):
    result = share_gate(("G1", "G8"), ignore_policy=True)
    assert _failed(result) == {"check:no_sealed_records"}
    assert "G8" in result.failures[0]["observed"]


def test_the_policy_output_leaves_out_pending_chains(share_gate):
    assert share_gate(("G1", "G8")).rows == 1  # G8 withheld by build_share_table


@pytest.mark.parametrize(
    "chain_id, caught",
    [
        ("G5", True),  # gold: not_sealed, not a minor; silver.suspects: born 2007 — caught
        ("G6", False),  # a minor by silver, but silver's heavy sentence verifies not_sealed
        ("G7", True),  # the birth date is on an unlinked record of the same police case and name — caught
        ("G9", True),  # ... on an unlinked defendant record of the chain's appeal with the person's name — caught
        ("G10", True),  # ... in the identity number of a linked custody record (custody has no birth date) — caught
        ("G11", True),  # 17 at the earliest offense of all: its record is not left out as too old — caught
        ("G1", False),  # an adult by every silver record
    ],
)
def test_share_gate_checks_sealing_against_silver_evidence(share_gate, chain_id, caught):
    result = share_gate((chain_id,))
    assert _failed(result) == ({"check:no_minor_by_silver_evidence"} if caught else set())
    if caught:
        assert chain_id in str(result.failures[0]["observed"])


def test_share_gate_fails_a_row_outside_the_partner_filter(share_gate):
    result = share_gate(("G1", "G3"), ignore_policy=True)
    assert _failed(result) == {"check:rows_within_partner_filter"}
    assert result.failures[0]["unexpected_count"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "身份证330102199001011234",  # an 18-digit number after Chinese text
        "330102199001011234",  # alone
        "ID 330102900101123",  # a 15-digit legacy number after a space
    ],
)
def test_share_gate_fails_a_raw_identity_number_in_text(share_gate, text):
    result = share_gate(edit={"review_id": text})
    assert _failed(result) == {"check:no_raw_identity_numbers"}


@pytest.mark.parametrize(
    "pseudonym",
    [
        "330102199001011234abcdef01234567",  # starts with 18 digits, then hex letters
        "ab330102199001011234cdef01234567",  # 18 digits inside the token
        "12345678901234567890123456789012",  # all digits
    ],
)
def test_share_gate_passes_a_hex_pseudonym_with_a_digit_run(share_gate, pseudonym):
    # regression: a pseudonym is one hex token, not an identity number standing in text
    result = share_gate(edit={"person_key": pseudonym})
    assert (result.success, _failed(result)) == (True, set())


def test_share_gate_fails_a_pseudonym_column_holding_the_source_value(share_gate):
    result = share_gate(edit={"person_key": "Pg1"})
    assert _failed(result) == {"check:person_key_holds_no_source_value", "expect_column_values_to_match_regex(person_key)"}


def test_share_gate_checks_an_in_filter_and_a_pseudonymized_case_id(share_gate):
    name = "share.zj_law_institute.case_chain"
    assert share_gate(("G1", "G2", "G3", "G4"), name=name).success is True  # the policy's own output: G1 and G3
    result = share_gate(("G1", "G4"), name=name, ignore_policy=True)
    assert _failed(result) == {"check:rows_within_partner_filter"}
    assert result.failures[0]["unexpected_count"] == 1  # G4
    leaked = share_gate(name=name, edit={"police_case_id": "AG1"})
    assert "check:police_case_id_holds_no_source_value" in _failed(leaked)


@pytest.mark.parametrize(
    "doc, message",
    [
        ([1, 2], "a policy is a mapping"),  # not a mapping at all
        ({"partner": "p", "purpose": "x", "expires_on": dt.date(2030, 1, 1), "tables": ["case_chain"]}, "'tables' must map"),
        ({"partner": "p", "purpose": "x", "expires_on": dt.date(2030, 1, 1), "tables": {"case_chain": None}}, "must be a mapping"),
        ({"partner": "p", "purpose": "x", "expires_on": dt.date(2030, 1, 1), "tables": {"case_chain": {"from": "gold.case_chain", "columns": ["chain_id"]}}}, "'columns' must map"),
        ({"partner": "p", "purpose": "x", "expires_on": dt.date(2030, 1, 1), "tables": {"case_chain": {"from": "gold.case_chain", "rows": "region 33"}}}, "'rows' must map"),
    ],
)
def test_a_malformed_policy_is_a_policy_error_not_a_crash(doc, message):
    with pytest.raises(policy.PolicyError, match=message):
        policy.parse(doc)


# -- the open variant of the silver-evidence check (wired into the open gate by the open stage) ------------


@pytest.mark.parametrize(
    "year, level, cases, passes",
    [
        ("2023", "charge", 3, True),  # 2023 · C264 in the province: G1, G3 (Ningbo) and G6 may be counted (G2 sealed, G5, G7, G9 and G10 minors by silver, G8 pending)
        ("2023", "charge", 4, False),  # one more: a case a minor may be in was counted
        ("total", "charge", 3, True),  # all years: the same three
        ("total", "charge", 4, False),
        ("2023", "category", 3, True),  # a category row: judged against the year's cases of every charge
        ("2023", "category", 1000, False),
    ],
)
def test_open_check_counts_only_cases_free_of_withheld_and_silver_minor_chains(share_gate, spark, year, level, cases, passes):
    from jobs import open as open_stage

    name = "open.cases_by_year_charge"
    cell = dict(year=year, level=level, category_code="CL-3-5", category_name="侵犯财产罪", charge_code="C264" if level == "charge" else None,
                charge_name="盗窃罪" if level == "charge" else None, cases=cases, is_suppressed=False)
    gate_lake = Path(share_gate.lake)
    path = gate_lake / "_staging" / f"open{year}{level}{cases}" / "open" / "cases"
    tables.write(table(spark, name, [cell]), path)
    evidence = open_stage.silver_evidence_check(name, province="330000")
    suite = suites.Suite(name, (suites.check(evidence["name"], evidence["sql"]),))
    released = {n: 0 for n in tables.published_tables(gate_lake)}
    result = run_gate(spark, name, path, lake=gate_lake, suite=suite, versions=released)
    assert result.success is passes, result.results
