"""Primary and complementary cell suppression over linked tables, by linear programming (HiGHS).

**Primary**: a cell below the minimum cell size ``m`` is suppressed (and a zero too,
unless the zero policy publishes zeros).

**Protection rule** (what "cannot be recomputed or narrowed" means here): from everything
published (cells, margins, totals, the funnel's order, non-negativity, and what the zero
policy implies), an attacker's interval ``[lo, hi]`` for a primary cell of true value
``v`` must

- reach the minimum cell: ``hi ≥ m`` — the published data cannot rule out a
  publishable count, so the cell cannot be told apart from a complementary one;
- not pin it from below: ``lo ≤ max(v − 1, floor)`` — the attacker cannot prove the
  cell holds ``v`` cases (``floor`` is 1 when zeros are published, as a suppressed
  cell is then known not to be 0, and the cell's known lower bound otherwise).

Every suppressed cell must also not be pinned (``hi − lo ≥ 1``).

**Complementary** suppression is the sequential LP method of Kelly, Golden and Assad
(1992) and Fischetti and Salazar (2001) on the linked system: for each primary cell
whose attack interval misses the rule, solve

    min Σ_j w_j (p_j + q_j)   over published cells j
    s.t. x_j = v_j + p_j − q_j,  every relation of the linked system,  x ≥ floor,
         x_c ≥ m  (upper protection)   or   x_c ≤ max(v_c − 1, floor)  (lower protection)

— the cheapest way the published figures could be explained with the cell at the far
end of its protection interval. Every published cell that solution moves (p + q > 0) is
suppressed; that solution then stays consistent with all that remains published, so the
attack interval reaches the target. Suppressing more cells only widens intervals, so
cells already protected stay protected. Weights ``w_j`` grow with the cell's value and
are higher for margins, so inner cells are sacrificed before totals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lawlake.opendata.linked import LinkedCells

__all__ = ["Protection", "protect", "protection_floor"]

EPS = 1e-6


@dataclass
class Protection:
    """Which cells are suppressed: ``primary`` (below the minimum) or complementary (``suppressed & ~primary``)."""

    suppressed: np.ndarray
    primary: np.ndarray
    lp_solves: int

    @property
    def complementary(self) -> np.ndarray:
        return self.suppressed & ~self.primary


def protection_floor(value: int, known_lower: float, *, zeros_published: bool) -> float:
    """The lowest value an attacker is allowed to rule in for a suppressed cell: ``lo`` may not exceed it."""
    policy_floor = 1.0 if zeros_published and value > 0 else 0.0
    return max(value - 1.0, policy_floor, known_lower)


class _Model:
    """One HiGHS model reused for every query: columns x (cells), p, q (upward/downward moves of published cells)."""

    def __init__(self, cells: LinkedCells, values: np.ndarray, lower: np.ndarray):
        import highspy

        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.inf = highspy.kHighsInf
        self.n = n = len(values)
        self.values = values.astype(float)
        self.lower = lower
        rows: list[list[tuple[int, float]]] = []
        lo_rows: list[float] = []
        up_rows: list[float] = []
        for total, parts in cells.equations:
            rows.append([(total, 1.0)] + [(p, -1.0) for p in parts])
            lo_rows.append(0.0)
            up_rows.append(0.0)
        for small, big in cells.orders:
            rows.append([(big, 1.0), (small, -1.0)])
            lo_rows.append(0.0)
            up_rows.append(self.inf)
        for j in range(n):  # x_j - p_j + q_j = v_j
            rows.append([(j, 1.0), (n + j, -1.0), (2 * n + j, 1.0)])
            lo_rows.append(self.values[j])
            up_rows.append(self.values[j])
        cols: list[list[tuple[int, float]]] = [[] for _ in range(3 * n)]
        for r, entries in enumerate(rows):
            for c, v in entries:
                cols[c].append((r, v))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = 3 * n, len(rows)
        lp.col_cost_ = np.zeros(3 * n)
        lp.col_lower_ = np.concatenate([lower, np.zeros(2 * n)])
        lp.col_upper_ = np.full(3 * n, self.inf)
        lp.row_lower_ = np.array(lo_rows)
        lp.row_upper_ = np.array(up_rows)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        starts, index, value = [0], [], []
        for col in cols:
            index += [r for r, _ in col]
            value += [v for _, v in col]
            starts.append(len(index))
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value)
        self.h.passModel(lp)
        self.solves = 0
        self._all = np.arange(3 * n, dtype=np.int32)

    def _set(self, cost: np.ndarray, col_lower: np.ndarray, col_upper: np.ndarray, sense) -> np.ndarray | None:
        import highspy

        self.h.changeObjectiveSense(sense)
        self.h.changeColsCost(len(self._all), self._all, cost)
        self.h.changeColsBounds(len(self._all), self._all, col_lower, col_upper)
        self.h.run()
        self.solves += 1
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return np.array(self.h.getSolution().col_value)

    def _move_bounds(self, movable: np.ndarray, x_lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        upper = np.concatenate([np.full(n, self.inf), np.where(movable, self.inf, 0.0), np.where(movable, self.inf, 0.0)])
        lower = np.concatenate([x_lower, np.zeros(2 * n)])
        return lower, upper

    def cheapest_moves(self, c: int, suppressed: np.ndarray, movable: np.ndarray, x_lower: np.ndarray, weights: np.ndarray,
                       *, at_least: float | None = None, at_most: float | None = None, seen: Callable = lambda x: None) -> np.ndarray | None:
        """Published cells the cheapest consistent explanation with x_c beyond its target moves (None: no explanation)."""
        import highspy

        lower, upper = self._move_bounds(suppressed | movable, x_lower)
        if at_least is not None:
            lower[c] = at_least
        if at_most is not None:
            upper[c] = at_most
        n = self.n
        w = np.where(suppressed, 0.0, weights)
        cost = np.concatenate([np.zeros(n), w, w])
        sol = self._set(cost, lower, upper, highspy.ObjSense.kMinimize)
        if sol is None:
            return None
        moved = (sol[n:2 * n] + sol[2 * n:]) > EPS
        seen(sol[:n])  # consistent with what stays published once the moved cells are suppressed
        return moved & ~suppressed


class _Attacker:
    """The attacker's bounds on one cell: a model of the cells alone, published ones fixed, suppressed ones free.

    Between two questions about the same suppressed set only the objective changes, so the
    last optimal basis is a feasible start and primal simplex goes on from it.
    """

    def __init__(self, cells: LinkedCells, values: np.ndarray):
        import highspy
        from scipy.sparse import coo_matrix

        self.n = n = len(values)
        self.values = values.astype(float)
        self.inf = inf = highspy.kHighsInf
        entries = [[(t, 1.0)] + [(p, -1.0) for p in parts] for t, parts in cells.equations] + [[(b, 1.0), (a, -1.0)] for a, b in cells.orders]
        r_idx = [r for r, row in enumerate(entries) for _ in row]
        c_idx = [c for row in entries for c, _ in row]
        vals = [v for row in entries for _, v in row]
        A = coo_matrix((vals, (r_idx, c_idx)), shape=(len(entries), n)).tocsc()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, len(entries)
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.zeros(n), self.values.copy(), self.values.copy()
        lp.row_lower_ = np.zeros(len(entries))
        lp.row_upper_ = np.array([0.0] * len(cells.equations) + [inf] * len(cells.orders))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data.astype(float)
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("simplex_strategy", 4)  # primal
        self.h.passModel(lp)
        self.solves = 0
        self._all = np.arange(n, dtype=np.int32)
        self._bounds: tuple[bytes, bytes] | None = None

    def bound(self, c: int, suppressed: np.ndarray, x_lower: np.ndarray, *, upper: bool, seen: Callable = lambda x: None) -> float:
        """The attacker's max (``upper``) or min of cell c."""
        import highspy

        key = (suppressed.tobytes(), x_lower.tobytes())
        if key != self._bounds:
            self.h.changeColsBounds(self.n, self._all, np.where(suppressed, x_lower, self.values), np.where(suppressed, self.inf, self.values))
            self._bounds = key
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize if upper else highspy.ObjSense.kMinimize)
        self.h.changeColCost(c, 1.0)
        self.h.run()
        self.solves += 1
        status = self.h.getModelStatus()
        sol = np.array(self.h.getSolution().col_value) if status == highspy.HighsModelStatus.kOptimal else None
        self.h.changeColCost(c, 0.0)  # (a model change clears the solution: read first)
        if sol is None:
            unbounded = status == highspy.HighsModelStatus.kUnbounded or status == highspy.HighsModelStatus.kUnboundedOrInfeasible  # the true values are feasible
            return math.inf if upper and unbounded else math.nan
        seen(sol)
        return float(sol[c])


def _weights(cells: LinkedCells, values: np.ndarray) -> np.ndarray:
    is_margin = np.zeros(len(values), dtype=bool)
    for total, _ in cells.equations:
        is_margin[total] = True
    return (1.0 + np.log1p(values)) * np.where(is_margin, 4.0, 1.0)


def protect(
    cells: LinkedCells,
    values: np.ndarray,
    *,
    min_cell: int,
    zeros_published: bool,
    known_lower: dict[int, int] | None = None,
) -> Protection:
    """Suppress the cells below ``min_cell`` and enough others that the protection rule holds for each.

    ``known_lower`` holds lower bounds the attacker has from elsewhere (a published
    duration count of a stage's cases bounds that stage's total from below).
    """
    n = len(values)
    primary = values < min_cell
    if zeros_published:
        primary &= values > 0
    suppressed = primary.copy()
    base_lower = np.zeros(n)
    for j, bound in (known_lower or {}).items():
        base_lower[j] = max(base_lower[j], float(bound))
    # A published zero under the zero policy is never a complement: suppressing it would tell the attacker it is not 0.
    movable = ~(zeros_published & (values == 0))
    model = _Model(cells, values, base_lower)
    attacker = _Attacker(cells, values)
    weights = _weights(cells, values)

    def x_lower() -> np.ndarray:
        # Under the zero policy a suppressed cell is known not to be 0; so is every cell that may become one.
        return np.maximum(base_lower, np.where((suppressed | movable) & zeros_published, 1.0, 0.0))

    # Every point a solve returns stays consistent with what is published from then on (suppressing
    # cells only frees them), so the highest and lowest value any such point gave a cell bound its
    # attack interval from inside: when they already reach the target, the solve is not needed.
    highest, lowest = values.astype(float), values.astype(float)  # the true values: always a consistent point

    def seen(x: np.ndarray) -> None:
        np.maximum(highest, x, out=highest)
        np.minimum(lowest, x, out=lowest)

    for c in (int(i) for i in np.flatnonzero(primary)):
        if highest[c] < min_cell - EPS and attacker.bound(c, suppressed, x_lower(), upper=True, seen=seen) < min_cell - EPS:
            moved = model.cheapest_moves(c, suppressed, movable, x_lower(), weights, at_least=float(min_cell), seen=seen)
            if moved is not None:
                suppressed |= moved
        floor = protection_floor(int(values[c]), base_lower[c], zeros_published=zeros_published)
        # The true value is always feasible, so lo <= v: only a floor below v needs checking.
        if floor < values[c] - EPS and lowest[c] > floor + EPS and attacker.bound(c, suppressed, x_lower(), upper=False, seen=seen) > floor + EPS:
            moved = model.cheapest_moves(c, suppressed, movable, x_lower(), weights, at_most=floor, seen=seen)
            if moved is not None:
                suppressed |= moved
    return Protection(suppressed=suppressed, primary=primary, lp_solves=model.solves + attacker.solves)
