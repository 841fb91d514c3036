"""The normalize stage scored against the demo agencies' ground truth (bench/score_normalize.py, scale 0.3)."""

from __future__ import annotations

import pytest

from .scripts import load

scorer = load("score_normalize")


@pytest.fixture(scope="module")
def scores(spark, tmp_path_factory):
    """One demo run (scale 0.3, seed 7) through gather and normalize, scored; shared by the tests here."""
    return scorer.score(tmp_path_factory.mktemp("score") / "work", scale=0.3, seed=7)


def test_every_quarantine_row_joins_a_truth_record(scores):
    assert scores.notes == []


def test_id_number_invalid_catches_mistyped_numbers_only(scores):
    s = scores.rule("id_number.invalid")
    assert s.expected > 0
    assert s.precision >= 0.95 and s.recall >= 0.95, s


def test_every_rule_is_precise(scores):
    imprecise = [(s.table, s.rule, s.precision) for s in scores.rules if s.rejected and s.precision < 0.95]
    assert imprecise == []


def test_no_defect_that_must_be_rejected_slips_through(scores):
    # a record may be rejected by an earlier rule of its table instead (first rule wins), never kept
    slipped = [(s.table, s.rule, s.expected - s.true_positives - s.other_rule) for s in scores.rules if s.true_positives + s.other_rule < s.expected]
    assert slipped == []


def test_no_case_number_is_rejected_as_unparseable(scores):
    # the demo has no invalid case numbers: variant and legacy forms must be normalized, not rejected
    assert [s for s in scores.rules if s.rule == "case_number.unparseable"] == []


@pytest.mark.parametrize("kind", ["case_number_variant", "legacy_case_number", "id_legacy_15", "date_format", "name_variant", "charge_variant", "id_missing",
                                  "field_rejection"])
def test_transformations_reach_silver(scores, kind):
    k = scores.kept(kind)
    assert k.records > 0
    assert k.share >= 0.99, k


@pytest.mark.parametrize("kind", ["case_number_variant", "legacy_case_number", "id_legacy_15", "charge_variant"])
def test_transformed_values_are_right(scores, kind):
    k = scores.kept(kind)
    assert k.value_checked > 0
    assert k.value_ok == k.value_checked, [e for e in scores.examples if e.what == "wrong value" and e.rule == kind][:5]


def test_a_record_with_only_nulled_fields_reaches_silver_naming_them(scores):
    # a mistyped identity number, an empty charge …: the value is quarantined, the record goes on
    k = scores.kept("field_rejection")
    assert k.records > 0 and k.in_silver == k.records, k
    assert k.value_checked == k.records and k.value_ok == k.value_checked, [e for e in scores.examples if e.rule == "field_rejection"][:5]


def test_an_empty_police_region_is_derived_from_the_case_id(scores):
    k = scores.kept("missing_optional_field")
    assert k.in_silver == k.records
    assert k.value_ok == k.value_checked, [e for e in scores.examples if e.rule == "missing_optional_field"][:5]


def test_name_variants_normalize_to_the_true_name(scores):
    k = scores.kept("name_variant")
    assert k.value_ok == k.value_checked, [e for e in scores.examples if e.what == "wrong value" and e.rule == "name_variant"][:5]


def test_late_updates_keep_the_newest_version(scores):
    for u in scores.late_updates:
        assert u["records"] > 0, u
        assert u["in_silver"] == u["records"] - u["rightly_rejected"], u
        assert u["newest_kept"] == u["in_silver"] and u["older_kept"] == 0, u


def test_duplicate_deliveries_and_truncated_lines_are_quarantined_at_gather(scores):
    for s in scores.gather:
        if s.expected:
            assert s.precision >= 0.95 and s.recall >= 0.95, s


def test_report_prints(scores):
    text = scorer.report(scores)
    assert "id_number.invalid" in text and "Must not reject" in text
