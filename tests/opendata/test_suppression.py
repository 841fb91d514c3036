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


def _tables(grid, base, *, primary_only=False, zeros_published=False):
    cells = linked_cells(grid)
    values = cell_values(cells, grid, base)
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
    funnel = tabs[FUNNEL].set_index(["year", "region_code", "stage"])
    # Wenzhou: 40 filed, 0 transferred: the zero is suppressed (default policy), and filed can't pin it.
    assert bool(funnel.loc[("2023", "330300", "transferred"), "is_suppressed"])


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
