"""Reference data the generator draws from: the demo province's counties and the charges.

Read from ``schemas/reference/`` (versioned with the code) so that the simulated
agencies use exactly the codes and spellings the normalize stage maps back.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REFERENCE_DIR", "DEMO_PROVINCE", "County", "Charge", "Reference", "load_reference"]

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "schemas" / "reference"
DEMO_PROVINCE = "330000"  # Zhejiang: regions.csv lists its prefectures and counties


@dataclass(frozen=True, slots=True)
class County:
    """A county of the demo province and the agencies that sit there."""

    code: str  # GB/T 2260, e.g. 330102
    name: str  # 上城区
    prefecture_name: str  # 杭州市
    basic_court: str  # 杭州市上城区人民法院
    basic_court_code: str  # 浙0102
    intermediate_court: str  # 杭州市中级人民法院
    intermediate_court_code: str  # 浙01
    procuratorate: str  # 杭州市上城区人民检察院
    legacy_basic_abbr: str  # 杭上: the pre-2016 free-form court abbreviation
    legacy_intermediate_abbr: str  # 浙杭


@dataclass(frozen=True, slots=True)
class Charge:
    code: str  # C264
    name: str  # 盗窃罪
    variants: tuple[str, ...]  # spellings seen in source systems


@dataclass(frozen=True, slots=True)
class Reference:
    counties: tuple[County, ...]
    charges: tuple[Charge, ...]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _county(row: dict[str, str], prefecture: str, court_abbr: str) -> County:
    full_name = prefecture + row["name"]
    return County(
        code=row["code"],
        name=row["name"],
        prefecture_name=prefecture,
        basic_court=full_name + "人民法院",
        basic_court_code=court_abbr + row["code"][2:],
        intermediate_court=prefecture + "中级人民法院",
        intermediate_court_code=court_abbr + row["code"][2:4],
        procuratorate=full_name + "人民检察院",
        legacy_basic_abbr=prefecture[0] + row["name"][0],
        legacy_intermediate_abbr=court_abbr + prefecture[0],
    )


def load_reference(directory: Path = REFERENCE_DIR) -> Reference:
    """The current (not abolished) counties of the demo province and every charge, in file order."""
    regions = _read_csv(directory / "regions.csv")
    by_code = {row["code"]: row for row in regions}
    court_abbr = by_code[DEMO_PROVINCE]["court_abbr"]
    counties = tuple(
        _county(row, by_code[row["parent_code"]]["name"], court_abbr)
        for row in regions
        if row["level"] == "county" and not row["valid_to"] and row["code"][:2] == DEMO_PROVINCE[:2]
    )
    charges = tuple(
        Charge(row["charge_code"], row["name"], tuple(v for v in row["variants"].split("|") if v))
        for row in _read_csv(directory / "charges.csv")
    )
    if not counties or not charges:
        raise ValueError(f"reference data in {directory} has no counties of {DEMO_PROVINCE} or no charges")
    return Reference(counties, charges)
