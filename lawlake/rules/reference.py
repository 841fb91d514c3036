"""Reference code lists: GB/T 2260 administrative divisions and criminal charges.

The lists live in ``schemas/reference/*.csv`` (versioned with the code, described
in the README there) and are loaded once per process:

- ``regions.csv`` — GB/T 2260 codes: 6 digits, province (2) + prefecture (2) +
  county (2). Abolished codes carry ``valid_to`` and stay in the list: GB/T 2260
  never reuses an abolished code, so old records still resolve to the right place.
  ``court_abbr`` is the one-character court code of a province in case numbers
  (SPC 案号 rules 2015, art. 4).
- ``charges.csv`` — criminal charges (罪名) with their Criminal Law article and
  the variant spellings seen in source systems.

Jobs join against :func:`reference_dataframe`, built from the same Python rows
with an explicit schema, so the Python and the Spark rules read one list.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lawlake.rules import remove_whitespace

if TYPE_CHECKING:  # pyspark is heavy: imported only where a DataFrame is made
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "CHARGE_PREFIX",
    "REFERENCE_DIR",
    "Charge",
    "Region",
    "charge_code",
    "charge_lookup",
    "charges",
    "is_valid_region",
    "normalize_charge_text",
    "province_court_abbreviations",
    "reference_dataframe",
    "region",
    "region_name",
    "regions",
]

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "schemas" / "reference"

# Police and procuratorate records name the charge a suspect is "suspected of" (涉嫌盗窃罪).
CHARGE_PREFIX = "涉嫌"

RegionLevel = Literal["province", "prefecture", "county"]
ReferenceName = Literal["regions", "charges", "charge_variants"]


@dataclass(frozen=True, slots=True)
class Region:
    """One GB/T 2260 administrative division."""

    code: str
    name: str
    level: RegionLevel
    parent_code: str | None
    court_abbr: str | None
    valid_to: dt.date | None  # the day the code was abolished; None while in use


@dataclass(frozen=True, slots=True)
class Charge:
    """One criminal charge (罪名) and the spellings that mean it."""

    charge_code: str
    name: str
    criminal_law_article: str  # "253之一": articles inserted by amendments carry 之一/之二
    variants: tuple[str, ...]


def _read_csv(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def regions() -> tuple[Region, ...]:
    """Every region of ``regions.csv``, in file order."""
    return tuple(
        Region(
            code=row["code"],
            name=row["name"],
            level=row["level"],  # type: ignore[arg-type]  # checked by the reference tests
            parent_code=row["parent_code"] or None,
            court_abbr=row["court_abbr"] or None,
            valid_to=dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        )
        for row in _read_csv("regions.csv")
    )


@cache
def charges() -> tuple[Charge, ...]:
    """Every charge of ``charges.csv``, in file order."""
    return tuple(
        Charge(
            charge_code=row["charge_code"],
            name=row["name"],
            criminal_law_article=row["criminal_law_article"],
            variants=tuple(v for v in row["variants"].split("|") if v),
        )
        for row in _read_csv("charges.csv")
    )


@cache
def _regions_by_code() -> dict[str, Region]:
    return {r.code: r for r in regions()}


def region(code: str | None) -> Region | None:
    """The region with GB/T 2260 ``code``, or None when the list does not hold it."""
    return _regions_by_code().get(code) if code else None


def region_name(code: str | None) -> str | None:
    """The name of the region with ``code`` (abolished ones too), or None."""
    found = region(code)
    return found.name if found else None


def is_valid_region(code: str | None, *, on: dt.date | None = None) -> bool:
    """Whether ``code`` is in the reference list; with ``on``, also not yet abolished that day."""
    found = region(code)
    if found is None:
        return False
    return on is None or found.valid_to is None or on < found.valid_to


@cache
def province_court_abbreviations() -> dict[str, str]:
    """Court abbreviation of each province (浙 → "330000"), from ``regions.csv``."""
    return {r.court_abbr: r.code for r in regions() if r.level == "province" and r.court_abbr}


def normalize_charge_text(text: str | None) -> str | None:
    """A charge as written, without whitespace and without one leading 涉嫌; None if empty."""
    if text is None:
        return None
    key = remove_whitespace(text).removeprefix(CHARGE_PREFIX)
    return key or None


@cache
def charge_lookup() -> dict[str, str]:
    """Every charge name and variant (normalized as by :func:`normalize_charge_text`) → charge_code.

    Raises ValueError when the list maps one spelling to two charges.
    """
    lookup: dict[str, str] = {}
    for charge in charges():
        for spelling in (charge.name, *charge.variants):
            key = normalize_charge_text(spelling)
            if key is None:
                continue
            if lookup.get(key, charge.charge_code) != charge.charge_code:
                raise ValueError(f"charges.csv maps {key!r} to {lookup[key]} and {charge.charge_code}")
            lookup[key] = charge.charge_code
    return lookup


def charge_code(text: str | None) -> str | None:
    """The charge_code of a charge name or any known variant (``" 涉嫌盗窃 "`` → ``"C264"``), or None."""
    key = normalize_charge_text(text)
    return charge_lookup().get(key) if key else None


def reference_dataframe(spark: SparkSession, name: ReferenceName) -> DataFrame:
    """A reference list as a DataFrame for joins in jobs.

    ``regions`` and ``charges`` have one row per CSV row (``variants`` an array);
    ``charge_variants`` has one row per normalized spelling: ``spelling, charge_code``
    (join it on :func:`lawlake.rules.spark.charge_text`).
    """
    from pyspark.sql.types import ArrayType, DateType, StringType, StructField, StructType

    if name == "regions":
        schema = StructType(
            [
                StructField("code", StringType(), nullable=False),
                StructField("name", StringType(), nullable=False),
                StructField("level", StringType(), nullable=False),
                StructField("parent_code", StringType(), nullable=True),
                StructField("court_abbr", StringType(), nullable=True),
                StructField("valid_to", DateType(), nullable=True),
            ]
        )
        rows: list[tuple] = [(r.code, r.name, r.level, r.parent_code, r.court_abbr, r.valid_to) for r in regions()]
    elif name == "charges":
        schema = StructType(
            [
                StructField("charge_code", StringType(), nullable=False),
                StructField("name", StringType(), nullable=False),
                StructField("criminal_law_article", StringType(), nullable=False),
                StructField("variants", ArrayType(StringType(), containsNull=False), nullable=False),
            ]
        )
        rows = [(c.charge_code, c.name, c.criminal_law_article, list(c.variants)) for c in charges()]
    elif name == "charge_variants":
        schema = StructType(
            [
                StructField("spelling", StringType(), nullable=False),
                StructField("charge_code", StringType(), nullable=False),
            ]
        )
        rows = sorted(charge_lookup().items())
    else:
        raise ValueError(f"unknown reference list {name!r}: expected regions, charges or charge_variants")
    return spark.createDataFrame(rows, schema)
