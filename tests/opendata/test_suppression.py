"""Complementary suppression over linked tables, and the independent LP attack that checks it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lawlake.opendata.attack import attack, judge
from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, FUNNEL
from lawlake.opendata.linked import Grid, cell_values, linked_cells
from lawlake.opendata.render import count_tables
from lawlake.opendata.suppress import protect

MIN = 10
PREFS = ("330100", "330200", "330300")
CATS = (("K1", ("C1", "C2")), ("K2", ("C3",)))
NAMES = {c: c for c in PREFS + ("330000", "C1", "C2", "C3", "K1", "K2")}


def _grid(years=("2022", "2023"), stages=("filed",)):
    return Grid(years=years, province="330000", prefectures=PREFS, categories=CATS, stages=stages)


def _tables(grid, base, *, primary_only=False, zeros_published=False, channels=None):
    cells = linked_cells(grid)
    values = cell_values(cells, grid, base, channels)
    prot = protect(cells, values, min_cell=MIN, zeros_published=zeros_published)
    mask = prot.primary if primary_only else prot.suppressed
    truth = {k: int(values[i]) for i, k in enumerate(cells.keys)}
    return count_tables(grid, cells, values, mask, names=NAMES), truth, prot


def _failures(tabs, truth, *, zeros_published=False):
    return [r for r in judge(attack(tabs, zeros_published=zeros_published), min_cell=MIN, zeros_published=zeros_published, truth=truth) if not r["success"]]


# One small cell: Ningbo 2023 has 4 cases; every other cell is large.
BASE = [
    ("2022", "330100", "C1", 1, 40), ("2022", "330200", "C1", 1, 30), ("2022", "330300", "C3", 1, 25),
    ("2023", "330100", "C1", 1, 35), ("2023", "330200", "C2", 1, 4), ("2023", "330300", "C3", 1, 20),
    ("2023", "330200", "C1", 1, 22),
]


def test_naive_primary_suppression_leaks_through_the_margin():
    tabs, truth, _ = _tables(_grid(), BASE, primary_only=True)
    yp = tabs[BY_YEAR_PREFECTURE].set_index(["year", "region_code"])
    # Ningbo 2023 = 26 is published; C2 2023 = 4 is suppressed in the charge table, but K1 2023 - C1 2023 = 61 - 57 = 4 gives it away.
    failures = _failures(tabs, truth)
    assert failures and any("'C2'" in r["observed"] and "pinned" in r["observed"] for r in failures if r["expectation"] == f"disclosure_attack({BY_YEAR_CHARGE})")
    assert int(yp.loc[("2023", "330200"), "cases"]) == 26


def test_complementary_suppression_protects_every_suppressed_cell():
    tabs, truth, prot = _tables(_grid(), BASE)
    assert _failures(tabs, truth) == []
    assert prot.complementary.sum() >= 1  # the leak above needed at least one more suppression
    charges = tabs[BY_YEAR_CHARGE].set_index(["year", "charge_code", "category_code"])
    assert bool(charges.loc[("2023", "C2", "K1"), "is_suppressed"])
    published = pd.concat([t[~t["is_suppressed"]] for t in tabs.values()])
    assert (published["cases"].astype(int) >= MIN).all()


def test_a_margin_shared_with_another_table_is_used_by_the_attack():
    """Suppressed in the year × prefecture table, but the funnel publishes the same cell: the attack pins it."""
    tabs, truth, _ = _tables(_grid(stages=("filed", "transferred")), [("2023", "330100", "C1", 1, 50), ("2023", "330200", "C1", 1, 3), ("2023", "330300", "C1", 2, 30)])
    funnel = tabs[FUNNEL]
    leaked = funnel.copy()
    row = (leaked["year"] == "2023") & (leaked["region_code"] == "330200") & (leaked["stage"] == "filed")
    leaked.loc[row, ["cases", "is_suppressed"]] = [3, False]  # the funnel alone publishes Ningbo's 3
    tabs = dict(tabs, **{FUNNEL: leaked})
    failures = _failures(tabs, truth)
    assert any(r["expectation"] == f"disclosure_attack({BY_YEAR_PREFECTURE})" for r in failures)  # the same cell, suppressed there
    assert any("published 3 below 10" in r["observed"] for r in failures)


def test_the_funnel_order_is_part_of_the_attack():
    """A later stage never exceeds an earlier one; the attack knows it, and the protected pattern still holds."""
    grid = _grid(years=("2023",), stages=("filed", "transferred"))
    tabs, truth, _ = _tables(grid, [("2023", "330100", "C1", 2, 30), ("2023", "330200", "C1", 2, 12), ("2023", "330300", "C1", 1, 40)])
    assert _failures(tabs, truth) == []
    funnel = tabs[FUNNEL].set_index(["year", "region_code", "stage", "channel"]).sort_index()
    # Wenzhou: 40 filed, 0 transferred: the zero is suppressed (default policy), and filed can't pin it.
    assert bool(funnel.loc[("2023", "330300", "transferred", "all"), "is_suppressed"])


@pytest.mark.parametrize("zeros_published", [False, True])
def test_random_linked_tables_are_protected(zeros_published):
    rng = np.random.default_rng(11)  # fixed seed
    years = ("2021", "2022", "2023")
    grid = _grid(years=years, stages=("filed", "transferred", "prosecuted"))
    base = [(y, p, c, int(rng.integers(1, 4)), int(n)) for y in years for p in PREFS for c in ("C1", "C2", "C3") if (n := rng.poisson(6))]
    tabs, truth, prot = _tables(grid, base, zeros_published=zeros_published)
    assert _failures(tabs, truth, zeros_published=zeros_published) == []
    naive, _, _ = _tables(grid, base, primary_only=True, zeros_published=zeros_published)
    assert _failures(naive, truth, zeros_published=zeros_published)  # the same data with primary suppression only leaks
    if zeros_published:
        zeros = [k for k, v in truth.items() if v == 0]
        assert zeros and not prot.suppressed[[linked_cells(grid).index[k] for k in zeros]].any()  # zeros stay published


def test_an_inconsistent_publication_fails_the_attack():
    tabs, truth, _ = _tables(_grid(), BASE)
    broken = tabs[BY_YEAR_PREFECTURE].copy()
    i = broken.index[(broken["year"] == "2022") & (broken["region_code"] == "330100")][0]
    broken.loc[i, "cases"] = 41  # a prefecture that no longer adds up to the province total
    results = judge(attack(dict(tabs, **{BY_YEAR_PREFECTURE: broken}), zeros_published=False), min_cell=MIN, zeros_published=False)
    assert not next(r for r in results if r["expectation"] == "disclosure_attack(consistency)")["success"]


def test_results_have_the_gate_shape():
    tabs, truth, _ = _tables(_grid(), BASE)
    for r in judge(attack(tabs, zeros_published=False), min_cell=MIN, zeros_published=False, truth=truth):
        assert set(r) == {"expectation", "success", "observed", "threshold", "unexpected_count"}


def test_the_integer_attack_finds_no_narrower_interval_on_a_protected_table():
    tabs, truth, _ = _tables(_grid(), BASE)
    lp, mip = attack(tabs, zeros_published=False), attack(tabs, zeros_published=False, integral=True)
    assert [(i.key, round(i.lo), round(i.hi)) for i in lp.intervals] == [(i.key, round(i.lo), round(i.hi)) for i in mip.intervals]
    assert all(r["success"] for r in judge(mip, min_cell=MIN, zeros_published=False, truth=truth))


# Transfer channels: Hangzhou 2023 has 40 transfers (38 online, 2 on paper), Ningbo 30 (30 online), Wenzhou 25 (20 online, 5 unknown).
CHANNEL_BASE = [("2023", "330100", "C1", 2, 40), ("2023", "330200", "C1", 2, 30), ("2023", "330300", "C1", 2, 25)]
CHANNEL_ROWS = [
    ("2023", "330100", "transferred", "online", 38), ("2023", "330100", "transferred", "paper", 2),
    ("2023", "330200", "transferred", "online", 30),
    ("2023", "330300", "transferred", "online", 20), ("2023", "330300", "transferred", "unknown", 5),
]


def _channel_tables(**kw):
    return _tables(_grid(years=("2023",), stages=("filed", "transferred")), CHANNEL_BASE, channels=CHANNEL_ROWS, **kw)


def _row(funnel, region, channel, year="2023", stage="transferred"):
    f = funnel[(funnel["year"] == year) & (funnel["region_code"] == region) & (funnel["stage"] == stage) & (funnel["channel"] == channel)]
    assert len(f) == 1
    return f.iloc[0]


def test_channel_cells_are_protected_with_the_funnel():
    """A paper count of 2 beside published online and transferred counts is recoverable; protection closes it."""
    naive, truth, _ = _channel_tables(primary_only=True)
    # Primary only: Hangzhou's 40 transferred and 38 online are published, so its 2 paper transfers are 40 - 38 - unknown.
    assert _failures(naive, truth)
    tabs, truth, _ = _channel_tables()
    assert _failures(tabs, truth) == []
    funnel = tabs[FUNNEL]
    assert bool(_row(funnel, "330100", "paper")["is_suppressed"])  # 2 < 10: primary
    assert bool(_row(funnel, "330100", "online")["is_suppressed"])  # its complement in the row (38 + 2 + 0 = 40)
    hz = _row(funnel, "330100", "all")
    assert pd.isna(hz["online_rate"]) and hz["online_rate_withheld"] == "inputs_suppressed"  # never estimated
    nb = _row(funnel, "330200", "all")
    if not nb["is_suppressed"] and not _row(funnel, "330200", "online")["is_suppressed"]:
        assert nb["online_rate"] == 1.0 and nb["online_rate_withheld"] is None  # 30 / 30, from published counts only


def test_unknown_channel_is_never_online():
    """Without channel counts every transfer is unknown; counts that do not add up to the stage are refused."""
    grid = _grid(years=("2023",), stages=("filed", "transferred"))
    cells = linked_cells(grid)
    values = cell_values(cells, grid, CHANNEL_BASE)
    assert values[cells.index[("transferred/online", "2023", "330000", "total")]] == 0  # nothing known online
    assert values[cells.index[("transferred/unknown", "2023", "330000", "total")]] == 95  # 40 + 30 + 25, all unknown
    with pytest.raises(ValueError, match="not the sum of its parts"):
        cell_values(cells, grid, CHANNEL_BASE, CHANNEL_ROWS[:-1])  # Wenzhou's 5 unknown missing: 20 != 25


def test_a_rate_beside_a_suppressed_count_fails_the_attack():
    """Publishing Hangzhou's rate (0.95) while its online count is suppressed would give away 38 and so the 2 on paper."""
    tabs, truth, _ = _channel_tables()
    funnel = tabs[FUNNEL].copy()
    row = (funnel["region_code"] == "330100") & (funnel["year"] == "2023") & (funnel["stage"] == "transferred") & (funnel["channel"] == "all")
    funnel["online_rate"] = funnel["online_rate"].astype(object)
    funnel.loc[row, ["online_rate", "online_rate_withheld"]] = [0.95, None]
    failures = _failures(dict(tabs, **{FUNNEL: funnel}), truth)
    assert any(r["expectation"] == "disclosure_attack(consistency)" and "beside a suppressed count" in r["observed"] for r in failures)
