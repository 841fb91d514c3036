"""The open datasets: their names and what a reader is told about each (titles, descriptions, keywords)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OpenDataset", "DATASETS", "BY_YEAR_PREFECTURE", "BY_YEAR_CHARGE", "FUNNEL", "DURATIONS", "COUNT_DATASETS"]

BY_YEAR_PREFECTURE = "open.cases_by_year_prefecture"
BY_YEAR_CHARGE = "open.cases_by_year_charge"
FUNNEL = "open.case_funnel_by_year_prefecture"
DURATIONS = "open.stage_durations_by_year"
COUNT_DATASETS = (BY_YEAR_PREFECTURE, BY_YEAR_CHARGE, FUNNEL)


@dataclass(frozen=True)
class OpenDataset:
    name: str
    title: str
    description: str
    keywords: tuple[str, ...]

    @property
    def slug(self) -> str:
        return self.name.split(".", 1)[1]


DATASETS = (
    OpenDataset(
        BY_YEAR_PREFECTURE,
        "Criminal cases filed by the police, by year and prefecture",
        "Police cases (立案) per filing year and prefecture of Zhejiang, with the province total and the all-years total.",
        ("criminal justice", "police", "cases", "prefecture"),
    ),
    OpenDataset(
        BY_YEAR_CHARGE,
        "Criminal cases filed by the police, by year and charge",
        "Police cases per filing year and charge, nested in charge categories (the chapters of the Criminal Law), with category and overall totals.",
        ("criminal justice", "police", "cases", "charge", "Criminal Law"),
    ),
    OpenDataset(
        FUNNEL,
        "Case-handling funnel by year and prefecture",
        "Police cases per filing year and prefecture by the furthest stage they reached: filed, transferred to the procuratorate, "
        "prosecuted, tried at first instance, sentenced. A case counts at every stage up to the furthest it reached. "
        "The two transfer stages (police to procuratorate, procuratorate to court) are also split by channel (online, paper, unknown) "
        "and carry the online-transfer rate, published only where its counts are; channel counts are protected with the rest.",
        ("criminal justice", "procuratorate", "courts", "case handling", "online transfer"),
    ),
    OpenDataset(
        DURATIONS,
        "Stage durations by filing year",
        "Days spent in each stage of the cases filed in a year: police investigation (filing to transfer), review for prosecution "
        "(received to decision) and first instance (filed to judgment): 25th, 50th (median), 75th and 90th percentiles.",
        ("criminal justice", "durations", "time limits", "case handling"),
    ),
)
