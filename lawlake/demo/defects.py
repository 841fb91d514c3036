"""Defects injected into the agencies' deliveries, at known rates.

Every kind is drawn per eligible record through a ``Quota``: the number injected
stays within one of rate × eligible records while where they land stays random,
so the configured rates hold in small test samples too. What each delivered
record carries is written to ``_truth/records.csv`` by the source writers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from lawlake.demo.identity import legacy_15, mistype, name_variant
from lawlake.demo.world import Person, Quota

__all__ = [
    "DEFECT_KINDS",
    "DEFECT_RATES",
    "DefectPlan",
    "PersonView",
    "person_view",
    "case_number_variant",
    "DATE_STYLES",
    "format_date",
    "join_defects",
]

# Every kind that can appear in _truth/records.csv, in the order they are listed there.
DEFECT_KINDS = (
    "duplicate_delivery",
    "case_number_variant",
    "legacy_case_number",  # a property of pre-2016 judgments, not drawn at a rate
    "charge_variant",
    "id_legacy_15",
    "id_mistyped",
    "id_missing",
    "date_format",
    "missing_field",
    "name_variant",
    "conflicting_attribute",
    "late_update",
    "unreadable",
    "minor_at_offense",  # a property of the person and case, not drawn at a rate
)
# Share of the eligible records of each source that get the defect.
DEFECT_RATES = {
    "duplicate_delivery": 0.02,  # procuratorate rows, court lines
    "case_number_variant": 0.10,  # court cases, custody rows (modern numbers only)
    "charge_variant": 0.08,  # police cases, procuratorate rows, court cases
    "id_missing": 0.02,  # person records
    "id_mistyped": 0.015,  # person records with an identity number
    "id_legacy_15": 0.03,  # person records of people born before 2000, not otherwise broken
    "date_format": 0.15,  # procuratorate and custody records
    "missing_field": 0.01,  # every record
    "name_variant": 0.03,  # person records
    "conflicting_attribute": 0.01,  # person records that carry sex and birth date
    "late_update": 0.02,  # police cases, procuratorate decisions, court cases
    "unreadable": 0.003,  # court lines, custody rows
}
MAX_CONFLICT_SHIFT_DAYS = 400


class DefectPlan:
    """The quotas of one source writer, with the random stream they draw from."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._quotas: dict[tuple[str, str], Quota] = {}

    def draw(self, kind: str, source: str) -> bool:
        quota = self._quotas.get((kind, source))
        if quota is None:
            quota = self._quotas[(kind, source)] = Quota(DEFECT_RATES[kind])
        return quota.draw(self.rng)

    def missing_field(self, source: str, fields: tuple[str, ...]) -> str | None:
        """The required field left empty in this record, or None."""
        return self.rng.choice(fields) if self.draw("missing_field", source) else None

    def injected(self) -> dict[str, dict[str, int]]:
        """{kind: {"eligible": n, "count": n}} summed over sources."""
        totals: dict[str, dict[str, int]] = {}
        for (kind, _source), quota in self._quotas.items():
            entry = totals.setdefault(kind, {"eligible": 0, "count": 0})
            entry["eligible"] += quota.eligible
            entry["count"] += quota.count
        return totals


@dataclass(slots=True)
class PersonView:
    """A person as one agency's record shows them."""

    name: str
    id_number: str | None
    sex: str
    birth_date: date
    defects: list[str]


def person_view(plan: DefectPlan, source: str, person: Person, *, minor: bool, attributes: bool, dots: tuple[str, ...]) -> PersonView:
    """The person's identity as ``source`` recorded it, with identity defects drawn.

    At most one identity-number defect per record; ``attributes`` says whether the
    record carries sex and birth date (which can then conflict with the truth).
    """
    rng = plan.rng
    defects = []
    number: str | None = person.id_number
    if plan.draw("id_missing", source):
        number = None
        defects.append("id_missing")
    elif plan.draw("id_mistyped", source):
        number = mistype(number, rng)
        defects.append("id_mistyped")
    elif person.birth_date.year < 2000 and plan.draw("id_legacy_15", source):
        number = legacy_15(number)
        defects.append("id_legacy_15")
    name = person.name
    if plan.draw("name_variant", source):
        name = name_variant(name, rng, dots)
        defects.append("name_variant")
    sex, birth = person.sex, person.birth_date
    if attributes and plan.draw("conflicting_attribute", source):
        if rng.random() < 0.5:
            sex = "女" if sex == "男" else "男"
        else:
            birth += timedelta(days=rng.choice((-1, 1)) * rng.randint(1, MAX_CONFLICT_SHIFT_DAYS))
        defects.append("conflicting_attribute")
    if minor:
        defects.append("minor_at_offense")
    return PersonView(name, number, sex, birth, defects)


_FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def case_number_variant(rng: random.Random, year: int, court_code: str, type_code: str, sequence: int) -> str:
    """A modern case number as a careless system writes it: other brackets, spaces, full-width digits, zero padding."""
    canonical = f"（{year}）{court_code}{type_code}{sequence}号"
    style = rng.randrange(6)
    if style == 0:
        return f"({year}){court_code}{type_code}{sequence}号"
    if style == 1:
        return f"〔{year}〕{court_code}{type_code}{sequence}号"
    if style == 2:
        return f"[{year}]{court_code}{type_code}{sequence}号"
    if style == 3:  # a space where the parts meet
        parts = ["（", str(year), "）", court_code, type_code, str(sequence), "号"]
        gap = rng.randrange(1, len(parts))
        return "".join(parts[:gap]) + " " + "".join(parts[gap:])
    if style == 4:
        return canonical.translate(_FULL_WIDTH_DIGITS)
    width = max(4, len(str(sequence)) + 1)  # at least one leading zero
    return f"（{year}）{court_code}{type_code}{sequence:0{width}d}号"


# The date spellings seen in exports typed or converted by hand; the clean form is ISO.
DATE_STYLES = ("slash", "compact", "dotted", "chinese", "with_time")


def format_date(day: date, style: str | None) -> str:
    if style is None:
        return day.isoformat()
    if style == "slash":
        return f"{day.year}/{day.month}/{day.day}"
    if style == "compact":
        return f"{day:%Y%m%d}"
    if style == "dotted":
        return f"{day:%Y.%m.%d}"
    if style == "chinese":
        return f"{day.year}年{day.month}月{day.day}日"
    if style == "with_time":
        return f"{day.isoformat()} 00:00:00"
    raise ValueError(f"unknown date style {style!r}")


_KIND_ORDER = {kind: i for i, kind in enumerate(DEFECT_KINDS)}


def join_defects(kinds: list[str]) -> str:
    """The ``defects`` cell: distinct kinds in DEFECT_KINDS order, ``|``-separated."""
    return "|".join(sorted(set(kinds), key=_KIND_ORDER.__getitem__))
