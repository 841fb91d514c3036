"""The cells of every open count table as one system of linear relations.

A cell is ``(stage, year, region, charge)``: the number of police cases filed in
``year`` (or every year, ``"total"``) in ``region`` (a prefecture, or the province) with
``charge`` (a charge, a charge category, or every charge, ``"total"``) that reached
``stage`` of the case-handling funnel. The open tables are views of these cells:

- ``open.cases_by_year_prefecture``      ``("filed", year, region, "total")``
- ``open.cases_by_year_charge``          ``("filed", year, province, charge | category | "total")``
- ``open.case_funnel_by_year_prefecture`` ``(stage, year, region, "total")`` and ``(stage/channel, year, region, "total")``

and the funnel's transfer stages split by channel, ``("transferred/online", year, region, "total")``
(``CHANNELS``: online, paper, unknown — a case whose channel is not known is never online),

so a cell two tables share (the funnel's "filed" row *is* the year × prefecture table;
the year totals of the charge table *are* the province rows) is one variable, and the
relations between cells are what an attacker knows: every margin is the sum of its parts
(prefectures → province, years → all years, charges → category → all charges) and a
funnel stage never holds more cases than the stage before it, and a transfer stage is the
sum of its channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STAGES", "TRANSFER_STAGES", "CHANNELS", "TOTAL", "channel_stage", "Grid", "LinkedCells", "linked_cells", "cell_values"]

STAGES = ("filed", "transferred", "prosecuted", "tried", "sentenced")
TRANSFER_STAGES = ("transferred", "prosecuted")  # police→procuratorate, procuratorate→court
CHANNELS = ("online", "paper", "unknown")
TOTAL = "total"


def channel_stage(stage: str, channel: str) -> str:
    """The stage part of a channel cell's key: ``transferred/online``."""
    return f"{stage}/{channel}"

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Grid:
    """The full grid the tables cover: every cell of it is published, suppressed or zero (never absent)."""

    years: tuple[str, ...]
    province: str
    prefectures: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]  # (category, its charges), in publication order
    stages: tuple[str, ...] = STAGES
    transfer_stages: tuple[str, ...] = TRANSFER_STAGES  # the stages split by transfer channel

    @property
    def all_years(self) -> tuple[str, ...]:
        return self.years + (TOTAL,)

    @property
    def regions(self) -> tuple[str, ...]:
        return self.prefectures + (self.province,)

    @property
    def channel_stages(self) -> tuple[str, ...]:
        """The stages of the grid split by transfer channel."""
        return tuple(s for s in self.transfer_stages if s in self.stages)

    @property
    def category_of(self) -> dict[str, str]:
        return {charge: cat for cat, charges in self.categories for charge in charges}


@dataclass
class LinkedCells:
    """Cells (``keys``), ``equations`` (total, parts) meaning total = Σ parts, and ``orders`` (a, b) meaning a ≤ b."""

    keys: list[Key]
    equations: list[tuple[int, tuple[int, ...]]]
    orders: list[tuple[int, int]]
    index: dict[Key, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.keys)}


def linked_cells(grid: Grid) -> LinkedCells:
    """Every cell of the grid with the additive and order relations between them."""
    T, P = TOTAL, grid.province
    keys: list[Key] = [(s, y, r, T) for s in grid.stages for y in grid.all_years for r in grid.regions]
    charge_nodes = [c for _, charges in grid.categories for c in charges] + [cat for cat, _ in grid.categories]
    split = [channel_stage(s, ch) for s in grid.channel_stages for ch in CHANNELS]
    keys += [(s, y, r, T) for s in split for y in grid.all_years for r in grid.regions]
    keys += [("filed", y, P, k) for y in grid.all_years for k in charge_nodes]
    if len(set(charge_nodes)) != len(charge_nodes) or T in charge_nodes:
        raise ValueError("charge and category codes must be distinct and not 'total'")
    idx = {k: i for i, k in enumerate(keys)}
    eqs: list[tuple[int, tuple[int, ...]]] = []
    for s in grid.stages + tuple(split):
        for y in grid.all_years:
            eqs.append((idx[(s, y, P, T)], tuple(idx[(s, y, r, T)] for r in grid.prefectures)))
        for r in grid.regions:
            eqs.append((idx[(s, T, r, T)], tuple(idx[(s, y, r, T)] for y in grid.years)))
    for s in grid.channel_stages:
        for y in grid.all_years:
            for r in grid.regions:
                eqs.append((idx[(s, y, r, T)], tuple(idx[(channel_stage(s, ch), y, r, T)] for ch in CHANNELS)))
    for y in grid.all_years:
        for cat, charges in grid.categories:
            eqs.append((idx[("filed", y, P, cat)], tuple(idx[("filed", y, P, c)] for c in charges)))
        eqs.append((idx[("filed", y, P, T)], tuple(idx[("filed", y, P, cat)] for cat, _ in grid.categories)))
    for k in charge_nodes:
        eqs.append((idx[("filed", T, P, k)], tuple(idx[("filed", y, P, k)] for y in grid.years)))
    orders = [
        (idx[(later, y, r, T)], idx[(earlier, y, r, T)])
        for earlier, later in zip(grid.stages, grid.stages[1:])
        for y in grid.all_years
        for r in grid.regions
    ]
    return LinkedCells(keys=keys, equations=eqs, orders=orders)


def cell_values(cells: LinkedCells, grid: Grid, base: Iterable[tuple[str, str, str, int, int]],
                channels: Iterable[tuple[str, str, str, str, int]] | None = None) -> np.ndarray:
    """The true count of every cell from base counts ``(year, prefecture, charge, furthest stage 1-5, cases)``
    and channel counts ``(year, prefecture, transfer stage, channel, cases)``.

    A case counts at every stage up to the furthest it reached. Without ``channels``
    every transfer's channel is unknown (never online). Raises ValueError for a
    base row outside the grid (it would silently miss every cell), and (by the
    equations' check) when the channel counts of a transfer stage do not add up to it.
    """
    T, P = TOTAL, grid.province
    values = np.zeros(len(cells.keys), dtype=np.int64)
    category_of = grid.category_of
    years, prefectures = set(grid.years), set(grid.prefectures)
    for year, region, charge, reached, n in base:
        if year not in years or region not in prefectures or charge not in category_of or not 1 <= reached <= len(grid.stages):
            raise ValueError(f"base count outside the grid: year {year}, region {region}, charge {charge}, stage {reached}")
        for s in grid.stages[:reached]:
            for yy in (year, T):
                for rr in (region, P):
                    values[cells.index[(s, yy, rr, T)]] += n
        for yy in (year, T):
            for kk in (charge, category_of[charge]):
                values[cells.index[("filed", yy, P, kk)]] += n
    if channels is None:
        channels = []
        for s in grid.channel_stages:
            for y in grid.years:
                for r in grid.prefectures:
                    channels.append((y, r, s, "unknown", int(values[cells.index[(s, y, r, T)]])))
    for year, region, stage, channel, n in channels:
        if year not in years or region not in prefectures or stage not in grid.channel_stages or channel not in CHANNELS:
            raise ValueError(f"channel count outside the grid: year {year}, region {region}, stage {stage}, channel {channel}")
        for yy in (year, T):
            for rr in (region, P):
                values[cells.index[(channel_stage(stage, channel), yy, rr, T)]] += n
    for total, parts in cells.equations:
        if values[total] != values[list(parts)].sum():
            raise ValueError(f"cell {cells.keys[total]} is not the sum of its parts: the channel counts do not match the stage counts")
    return values
