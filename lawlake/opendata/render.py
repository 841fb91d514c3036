"""The protected cells rendered as the open count tables (every cell of the full grid, totals included)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, FUNNEL
from lawlake.opendata.linked import CHANNELS, TOTAL, Grid, LinkedCells, channel_stage

__all__ = ["count_tables", "online_rate", "TOTAL_NAME", "ALL_CHANNELS", "RATE_DIGITS"]

TOTAL_NAME = "合计"
ALL_CHANNELS = "all"
RATE_DIGITS = 3  # the online-transfer rate is published to 0.1 %


def online_rate(online: int | None, transfers: int | None) -> tuple[float | None, str | None]:
    """(rate, why it is withheld): online / all transfers of the row, only from published counts.

    A rate is a function of two published cells, so it discloses nothing they do not;
    when either is suppressed it is null with ``inputs_suppressed`` (never estimated), and
    ``no_transfers`` when there were none. Transfers of unknown channel are in the
    denominator and never in the numerator.
    """
    if online is None or transfers is None:
        return None, "inputs_suppressed"
    if transfers == 0:
        return None, "no_transfers"
    return round(online / transfers, RATE_DIGITS), None


def count_tables(grid: Grid, cells: LinkedCells, values: np.ndarray, suppressed: np.ndarray, *, names: dict[str, str]) -> dict[str, pd.DataFrame]:
    """One frame per count dataset; a suppressed cell has ``cases`` missing and ``is_suppressed`` true.

    ``names`` maps region, charge and category codes to their names.
    """

    def cell(key):
        i = cells.index[key]
        return (None if suppressed[i] else int(values[i])), bool(suppressed[i])

    def level(region):
        return "province" if region == grid.province else "prefecture"

    by_region = []
    funnel: list[tuple] = []
    for y in grid.all_years:
        for r in grid.regions:
            cases, sup = cell(("filed", y, r, TOTAL))
            by_region.append((y, r, names[r], level(r), cases, sup))
            for order, s in enumerate(grid.stages, start=1):
                cases, sup = cell((s, y, r, TOTAL))
                if s not in grid.channel_stages:
                    funnel.append((y, r, names[r], level(r), s, order, ALL_CHANNELS, cases, sup, None, "not_a_transfer"))
                    continue
                online, _ = cell((channel_stage(s, "online"), y, r, TOTAL))
                funnel.append((y, r, names[r], level(r), s, order, ALL_CHANNELS, cases, sup, *online_rate(online, cases)))
                for ch in CHANNELS:
                    n, sup_ch = cell((channel_stage(s, ch), y, r, TOTAL))
                    funnel.append((y, r, names[r], level(r), s, order, ch, n, sup_ch, None, "channel_row"))
    by_charge = []
    for y in grid.all_years:
        cases, sup = cell(("filed", y, grid.province, TOTAL))
        by_charge.append((y, "total", TOTAL, TOTAL_NAME, TOTAL, TOTAL_NAME, cases, sup))
        for cat, charges in grid.categories:
            cases, sup = cell(("filed", y, grid.province, cat))
            by_charge.append((y, "category", cat, names[cat], TOTAL, TOTAL_NAME, cases, sup))
            for c in charges:
                cases, sup = cell(("filed", y, grid.province, c))
                by_charge.append((y, "charge", cat, names[cat], c, names[c], cases, sup))

    def frame(rows, columns):
        df = pd.DataFrame(rows, columns=columns)
        df["cases"] = df["cases"].astype("Int64")
        return df

    return {
        BY_YEAR_PREFECTURE: frame(by_region, ["year", "region_code", "region_name", "region_level", "cases", "is_suppressed"]),
        BY_YEAR_CHARGE: frame(by_charge, ["year", "level", "category_code", "category_name", "charge_code", "charge_name", "cases", "is_suppressed"]),
        FUNNEL: frame(funnel, ["year", "region_code", "region_name", "region_level", "stage", "stage_order", "channel", "cases", "is_suppressed",
                               "online_rate", "online_rate_withheld"]),
    }
