"""Reference code lists (GB/T 2260 regions, criminal charges) and their DataFrames."""

from __future__ import annotations

import datetime as dt

import pytest

from lawlake.rules import reference
from lawlake.rules.reference import charge_code, is_valid_region, region_name


def test_regions_follow_gb_t_2260_structure() -> None:
    regions = reference.regions()
    codes = [r.code for r in regions]
    assert len(codes) == len(set(codes))
    by_code = {r.code: r for r in regions}
    for r in regions:
        assert len(r.code) == 6 and r.code.isdigit()
        assert r.level in ("province", "prefecture", "county")
        if r.level == "province":
            assert r.code.endswith("0000") and r.parent_code is None
        else:
            parent = by_code[r.parent_code]  # every parent is in the list
            prefix = 2 if r.level == "prefecture" else 4
            assert r.code[:prefix] == parent.code[:prefix]


def test_court_abbreviations_are_unique_single_characters() -> None:
    abbrs = reference.province_court_abbreviations()
    assert all(len(a) == 1 for a in abbrs)
    assert len(set(abbrs.values())) == len(abbrs)
    assert abbrs["浙"] == "330000" and abbrs["黔"] == "520000" and abbrs["内"] == "150000"


@pytest.mark.parametrize(
    ("code", "on", "name", "valid"),
    [
        ("330102", None, "上城区", True),  # current county
        ("330100", None, "杭州市", True),  # prefecture
        ("330103", None, "下城区", True),  # abolished 2021: still resolves
        ("330103", dt.date(2020, 1, 1), "下城区", True),  # valid before abolition
        ("330103", dt.date(2022, 1, 1), "下城区", False),  # not after
        ("999999", None, None, False),  # unknown
        (None, None, None, False),  # null
    ],
)
def test_region_lookup(code: str | None, on: dt.date | None, name: str | None, valid: bool) -> None:
    assert region_name(code) == name
    assert is_valid_region(code, on=on) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("盗窃罪", "C264"),  # canonical name
        ("盗窃", "C264"),  # variant
        ("涉嫌盗窃罪", "C264"),  # leading 涉嫌
        (" 涉嫌 盗 窃\u3000", "C264"),  # whitespace anywhere
        ("帮信罪", "C287-2"),  # colloquial variant
        ("掩饰、隐瞒犯罪所得、犯罪所得收益罪", "C312"),  # long name with punctuation
        ("醉驾", "C133-1"),  # article inserted by amendment
        ("涉嫌", None),  # nothing after the prefix
        ("杀猪", None),  # unknown
        ("", None),  # empty
        (None, None),  # null
    ],
)
def test_charge_code(text: str | None, expected: str | None) -> None:
    assert charge_code(text) == expected


def test_every_charge_name_maps_to_its_code() -> None:
    for charge in reference.charges():
        assert charge_code(charge.name) == charge.charge_code
        for variant in charge.variants:
            assert charge_code(variant) == charge.charge_code


def test_reference_dataframes(spark) -> None:
    regions = reference.reference_dataframe(spark, "regions")
    assert regions.schema.simpleString() == (
        "struct<code:string,name:string,level:string,parent_code:string,court_abbr:string,valid_to:date>"
    )
    assert regions.count() == len(reference.regions())
    abolished = regions.where("valid_to is not null").select("code").collect()
    assert {r.code for r in abolished} == {r.code for r in reference.regions() if r.valid_to}

    variants = reference.reference_dataframe(spark, "charge_variants")
    assert dict(variants.collect()) == reference.charge_lookup()
    assert reference.reference_dataframe(spark, "charges").count() == len(reference.charges())


def test_reference_dataframe_rejects_unknown_names(spark) -> None:
    with pytest.raises(ValueError, match="unknown reference list"):
        reference.reference_dataframe(spark, "prisons")  # type: ignore[arg-type]
