"""An independent disclosure attack on everything the open datasets publish.

The attacker reads only the published tables. Each count is a variable: a published cell
is fixed at its value, a suppressed one is unknown. The attacker knows (and this module
re-derives from the tables' own columns, without the suppression's model):

- every margin is the sum of its parts: prefectures → province (``region_level``), years
  → ``total``, charges → their category (``category_code``) → all charges;
- a cell two datasets share is one value (the funnel's ``filed`` row is the year ×
  prefecture table; the charge table's all-charges rows are its province rows);
- a later funnel stage never holds more cases than an earlier one (``stage_order``);
- a funnel transfer stage is the sum of its ``channel`` rows (online + paper + unknown),
  and a published ``online_rate`` is online / transfers of its row: it must come only
  from published counts (a rate beside a suppressed count is a disclosure, judged as an
  inconsistency);
- a published duration count is a number of cases that reached that stage;
- counts are non-negative, and when zeros are published a suppressed cell is not 0.

For every suppressed cell a linear program (HiGHS, one model per connected group of suppressed cells) computes the smallest and the
largest value consistent with all of that. :func:`judge` fails when an interval breaks
the protection rule of :mod:`lawlake.opendata.suppress`, or a published count is small.
Results have the shape of ``quality.gate.rule_rate_results``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, DURATIONS, FUNNEL

__all__ = ["Interval", "Attack", "attack", "judge", "cell_keys"]

TOTAL = "total"
ALL = "all"
RATE_TOL = 0.0005 + 1e-9  # the rate is rounded to 0.001
DURATION_STAGE_CELL = {"police": "transferred", "review": "transferred", "first_instance": "tried"}
TOL = 1e-6
WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads solving the bounds (the machine's cores, two at most)


@dataclass(frozen=True)
class Interval:
    key: tuple
    tables: tuple[str, ...]
    lo: float
    hi: float


@dataclass
class Attack:
    intervals: list[Interval]
    published: dict[tuple, int]
    suppressed: set[tuple]
    inconsistencies: list[str] = field(default_factory=list)
    tables_of: dict[tuple, set[str]] = field(default_factory=dict)


def cell_keys(tables: dict[str, pd.DataFrame]) -> list[tuple[str, tuple, object, bool]]:
    """(table, key, cases, is_suppressed) for every count cell; a key is (stage, year, region, charge)."""
    out = []
    province = None
    if BY_YEAR_PREFECTURE in tables:
        t = tables[BY_YEAR_PREFECTURE]
        prov = t.loc[t["region_level"] == "province", "region_code"].unique()
        province = prov[0] if len(prov) else None
        for r in t.itertuples(index=False):
            out.append((BY_YEAR_PREFECTURE, ("filed", r.year, r.region_code, TOTAL), r.cases, bool(r.is_suppressed)))
    if FUNNEL in tables:
        t = tables[FUNNEL]
        if province is None:
            prov = t.loc[t["region_level"] == "province", "region_code"].unique()
            province = prov[0] if len(prov) else None
        for r in t.itertuples(index=False):
            out.append((FUNNEL, (_stage_key(r.stage, getattr(r, "channel", ALL)), r.year, r.region_code, TOTAL), r.cases, bool(r.is_suppressed)))
    if BY_YEAR_CHARGE in tables:
        for r in tables[BY_YEAR_CHARGE].itertuples(index=False):
            node = r.charge_code if r.level == "charge" else r.category_code if r.level == "category" else TOTAL
            out.append((BY_YEAR_CHARGE, ("filed", r.year, province or "province", node), r.cases, bool(r.is_suppressed)))
    return out


def _stage_key(stage: str, channel: str) -> str:
    return stage if channel == ALL else f"{stage}/{channel}"


def _funnel_channels(t: pd.DataFrame) -> pd.Series:
    return t["channel"] if "channel" in t else pd.Series(ALL, index=t.index)


def _rate_problems(t: pd.DataFrame) -> list[str]:
    """A published online rate must be online / transfers of its row, both published."""
    if "online_rate" not in t:
        return []
    problems = []
    ch = _funnel_channels(t)
    online = t[ch == "online"].set_index(["year", "region_code", "stage"])
    for r in t[(ch == ALL) & t["online_rate"].notna()].itertuples(index=False):
        key = (r.year, r.region_code, r.stage)
        n_online = online["cases"].get(key) if key in online.index else None
        if r.is_suppressed or n_online is None or pd.isna(n_online):
            problems.append(f"online_rate of {key} published beside a suppressed count")
        elif r.cases == 0 or abs(float(r.online_rate) - int(n_online) / int(r.cases)) > RATE_TOL:
            problems.append(f"online_rate of {key} is {r.online_rate}, not {int(n_online)}/{int(r.cases)}")
    return problems


def _relations(tables: dict[str, pd.DataFrame], keys: set[tuple]) -> tuple[list[tuple[tuple, list[tuple]]], list[tuple[tuple, tuple]]]:
    """(total, parts) equations and (smaller, larger) orders, from the tables' own columns."""
    eqs: list[tuple[tuple, list[tuple]]] = []
    orders: list[tuple[tuple, tuple]] = []
    regional = [tables[n] for n in (BY_YEAR_PREFECTURE, FUNNEL) if n in tables]
    for t in regional:
        if "stage" in t:
            stage = pd.Series([_stage_key(s, c) for s, c in zip(t["stage"], _funnel_channels(t))], index=t.index)
        else:
            stage = pd.Series("filed", index=t.index)
        frame = t.assign(_stage=stage)
        for (s, y), g in frame.groupby(["_stage", "year"]):
            prov = g.loc[g["region_level"] == "province", "region_code"].tolist()
            parts = g.loc[g["region_level"] == "prefecture", "region_code"].tolist()
            for p in prov:
                eqs.append(((s, y, p, TOTAL), [(s, y, r, TOTAL) for r in parts]))
        for (s, r), g in frame.groupby(["_stage", "region_code"]):
            years = [y for y in g["year"] if y != TOTAL]
            if (g["year"] == TOTAL).any():
                eqs.append(((s, TOTAL, r, TOTAL), [(s, y, r, TOTAL) for y in years]))
        if "stage_order" in t:
            whole = t[_funnel_channels(t) == ALL]
            stages = whole[["stage", "stage_order"]].drop_duplicates().sort_values("stage_order")["stage"].tolist()
            cells = t[["year", "region_code"]].drop_duplicates()
            split = frame[_funnel_channels(t) != ALL]
            for (s, y, r), g in split.groupby(["stage", "year", "region_code"]):
                eqs.append(((s, y, r, TOTAL), [(k, y, r, TOTAL) for k in g["_stage"]]))
            for a, b in zip(stages, stages[1:]):
                for y, r in cells.itertuples(index=False):
                    orders.append(((b, y, r, TOTAL), (a, y, r, TOTAL)))
    if BY_YEAR_CHARGE in tables:
        t = tables[BY_YEAR_CHARGE]
        province = next((k[2] for k in keys if k[0] == "filed" and k[3] != TOTAL), None)
        for y, g in t.groupby("year"):
            for cat, gc in g[g["level"] == "charge"].groupby("category_code"):
                eqs.append((("filed", y, province, cat), [("filed", y, province, c) for c in gc["charge_code"]]))
            cats = g.loc[g["level"] == "category", "category_code"].tolist()
            eqs.append((("filed", y, province, TOTAL), [("filed", y, province, c) for c in cats]))
        nodes = t.assign(node=np.where(t["level"] == "charge", t["charge_code"], np.where(t["level"] == "category", t["category_code"], TOTAL)))
        for node, g in nodes.groupby("node"):
            years = [y for y in g["year"] if y != TOTAL]
            if (g["year"] == TOTAL).any():
                eqs.append((("filed", TOTAL, province, node), [("filed", y, province, node) for y in years]))
    eqs = [(tot, parts) for tot, parts in eqs if tot in keys and parts and all(p in keys for p in parts)]
    orders = [(a, b) for a, b in orders if a in keys and b in keys]
    return eqs, orders


def _bound_all(A_eq, b_eq, A_ub, b_ub, lower: np.ndarray, *, integral: bool = False) -> list[tuple[float, float]]:
    """min and max of every variable subject to A_eq x = b_eq, A_ub x <= b_ub, x >= lower (one HiGHS model, objectives swapped).

    ``integral``: the variables are whole numbers (a MIP per bound), the attacker who knows counts are integers.

    Only the objective changes between solves, so the last optimal basis stays feasible and
    primal simplex starts from it (4x fewer iterations than HiGHS's default dual simplex
    here). Every optimum is a feasible point: a variable some point already holds at its
    lower bound has that bound as its minimum, exactly, with no solve of its own (most of
    them: a vertex holds most variables at their bounds). So all maxima are solved first.
    The solves are shared among ``WORKERS`` threads, each with a copy of the model.
    """
    from concurrent.futures import ThreadPoolExecutor

    import highspy
    from scipy.sparse import vstack

    n = len(lower)
    inf = highspy.kHighsInf
    blocks = [m for m in (A_eq, A_ub) if m is not None]
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.col_cost_ = np.zeros(n)
    lp.col_lower_ = lower.astype(float)
    lp.col_upper_ = np.full(n, inf)
    if blocks:
        A = vstack(blocks).tocsc()
        lp.num_row_ = A.shape[0]
        lp.row_lower_ = np.concatenate([np.array(b_eq, dtype=float)] * (A_eq is not None) + [np.full(len(b_ub or []), -inf)] * (A_ub is not None))
        lp.row_upper_ = np.concatenate([np.array(b_eq, dtype=float)] * (A_eq is not None) + [np.array(b_ub, dtype=float)] * (A_ub is not None))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data.astype(float)
    if integral:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n

    def solver():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if not integral:
            h.setOptionValue("simplex_strategy", 4)  # primal: the previous basis is a feasible start
        h.passModel(lp)
        return h

    def bounds(columns: list[int], sense) -> tuple[dict[int, float], np.ndarray]:
        """The optimum of each of ``columns`` in ``sense`` on a model of its own; and the lowest value each variable took."""
        h, lowest, out = solver(), np.full(n, math.inf), {}
        for j in columns:
            h.changeObjectiveSense(sense)
            h.changeColCost(j, 1.0)
            h.run()
            status = h.getModelStatus()
            x = np.asarray(h.getSolution().col_value) if status == highspy.HighsModelStatus.kOptimal else None
            h.changeColCost(j, 0.0)  # (a model change clears the solution: read first)
            if x is not None:
                np.minimum(lowest, x, out=lowest)
                out[j] = float(x[j])
            elif status == highspy.HighsModelStatus.kUnbounded or (sense == highspy.ObjSense.kMaximize and status == highspy.HighsModelStatus.kUnboundedOrInfeasible):
                out[j] = math.inf
            else:
                out[j] = math.nan
        return out, lowest

    def in_parallel(columns: list[int], sense) -> tuple[dict[int, float], np.ndarray]:
        # HiGHS releases the GIL while it solves: one model per thread, the columns dealt out between them
        parts = [columns[k::WORKERS] for k in range(WORKERS) if columns[k::WORKERS]]
        if len(parts) <= 1:
            return bounds(columns, sense)
        with ThreadPoolExecutor(len(parts)) as pool:
            done = list(pool.map(lambda part: bounds(part, sense), parts))
        return {j: v for found, _ in done for j, v in found.items()}, np.minimum.reduce([low for _, low in done])

    highs, lowest_seen = in_parallel(list(range(n)), highspy.ObjSense.kMaximize)
    at_lower = lowest_seen <= lower + TOL
    lows, _ = in_parallel([j for j in range(n) if not at_lower[j]], highspy.ObjSense.kMinimize)
    return [(float(lower[j]) if at_lower[j] else lows[j], highs[j]) for j in range(n)]


def attack(tables: dict[str, pd.DataFrame], *, zeros_published: bool, integral: bool = False) -> Attack:
    """Bound every suppressed count cell from everything the tables publish.

    ``integral``: bound by integer programming (counts are whole numbers) instead of the
    LP relaxation; slower, and never wider.
    """
    from scipy.sparse import coo_matrix

    published: dict[tuple, int] = {}
    suppressed: set[tuple] = set()
    tables_of: dict[tuple, set[str]] = {}
    problems: list[str] = []
    for table, key, cases, is_suppressed in cell_keys(tables):
        tables_of.setdefault(key, set()).add(table)
        if is_suppressed:
            suppressed.add(key)
            continue
        if cases is None or (isinstance(cases, float) and math.isnan(cases)):
            problems.append(f"{table} {key}: neither published nor suppressed")
            continue
        count = int(cases)  # type: ignore[call-overload]  # a published cell: a number, checked above
        if key in published and published[key] != count:
            problems.append(f"{key}: published as {published[key]} and {count}")
        published[key] = count
    if FUNNEL in tables:
        problems += _rate_problems(tables[FUNNEL])
    suppressed -= set(published)  # published anywhere is known everywhere
    keys = set(published) | suppressed
    eqs, orders = _relations(tables, keys)
    unknown = sorted(suppressed)
    col = {k: i for i, k in enumerate(unknown)}
    lower = np.full(len(unknown), 1.0 if zeros_published else 0.0)
    rows_eq, b_eq, rows_ub, b_ub = [], [], [], []
    for total, parts in eqs:
        terms = [(total, 1.0)] + [(p, -1.0) for p in parts]
        coeffs: dict = {}
        const = 0.0
        for k, c in terms:
            if k in col:
                coeffs[col[k]] = coeffs.get(col[k], 0.0) + c
            else:
                const += c * published[k]
        if coeffs:
            rows_eq.append(coeffs)
            b_eq.append(-const)
        elif abs(const) > TOL:
            problems.append(f"{total} does not equal the sum of its parts ({const:+.0f})")
    for small, big in orders:  # x_small - x_big <= 0
        coeffs, const = {}, 0.0
        for k, c in ((small, 1.0), (big, -1.0)):
            if k in col:
                coeffs[col[k]] = coeffs.get(col[k], 0.0) + c
            else:
                const += c * published[k]
        if coeffs:
            rows_ub.append(coeffs)
            b_ub.append(-const)
        elif const > TOL:
            problems.append(f"{small} exceeds {big}")
    if DURATIONS in tables and BY_YEAR_PREFECTURE in tables:
        t = tables[BY_YEAR_PREFECTURE]
        province = next(iter(t.loc[t["region_level"] == "province", "region_code"]), None)
        for r in tables[DURATIONS].itertuples(index=False):
            k = (DURATION_STAGE_CELL.get(r.stage), r.year, province, TOTAL)
            if not r.is_suppressed and k in col:
                lower[col[k]] = max(lower[col[k]], float(r.cases))

    # Unknown cells that share no relation bound each other not at all: solve each connected group on its own.
    parent = list(range(len(unknown)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in rows_eq + rows_ub:
        cols_ = list(row)
        for j in cols_[1:]:
            a, b = find(cols_[0]), find(j)
            if a != b:
                parent[a] = b
    groups: dict[int, list[int]] = {}
    for i in range(len(unknown)):
        groups.setdefault(find(i), []).append(i)

    def matrix(rows, members):
        local = {j: n for n, j in enumerate(members)}
        picked = [(row, b) for row, b in rows if find(next(iter(row))) == find(members[0])]
        if not picked:
            return None, None
        r_idx = [i for i, (row, _) in enumerate(picked) for _ in row]
        c_idx = [local[j] for row, _ in picked for j in row]
        vals = [v for row, _ in picked for v in row.values()]
        return coo_matrix((vals, (r_idx, c_idx)), shape=(len(picked), len(members))).tocsr(), [b for _, b in picked]

    bounds_of = {}
    for members in groups.values():
        A_eq, beq = matrix(list(zip(rows_eq, b_eq)), members)
        A_ub, bub = matrix(list(zip(rows_ub, b_ub)), members)
        for n, (lo, hi) in enumerate(_bound_all(A_eq, beq, A_ub, bub, np.array([lower[j] for j in members]), integral=integral)):
            if math.isnan(lo) or math.isnan(hi):
                problems.append(f"{unknown[members[n]]}: the published figures are inconsistent")
            bounds_of[members[n]] = (lo, hi)
    intervals = [Interval(k, tuple(sorted(tables_of[k])), *bounds_of[col[k]]) for k in unknown]
    return Attack(intervals=intervals, published=published, suppressed=suppressed, inconsistencies=problems, tables_of=tables_of)


def judge(result: Attack, *, min_cell: int, zeros_published: bool, truth: dict[tuple, int] | None = None) -> list[dict]:
    """Gate results: per dataset, suppressed cells whose attack interval breaks the protection rule; small published cells.

    Without ``truth`` (the unsuppressed counts) only the value-free part of the rule is
    judged: ``hi ≥ min_cell`` and not pinned. With it, also ``lo ≤ max(v − 1, floor)``
    for every primary cell (v < min_cell).
    """
    from lawlake.opendata.suppress import protection_floor

    bad: dict[str, list[str]] = {}
    counted: dict[str, int] = {}
    for iv in result.intervals:
        reasons = []
        if not iv.hi >= min_cell - TOL:
            reasons.append(f"max {iv.hi:g} < {min_cell}")
        if not iv.hi - iv.lo >= 1 - TOL:
            reasons.append(f"pinned to [{iv.lo:g}, {iv.hi:g}]")
        if truth is not None and iv.key in truth and truth[iv.key] < min_cell:
            floor = protection_floor(int(truth[iv.key]), 0.0, zeros_published=zeros_published)
            if not iv.lo <= floor + TOL:
                reasons.append(f"min {iv.lo:g} > {floor:g} (value {truth[iv.key]})")
        for t in iv.tables:
            counted[t] = counted.get(t, 0) + 1
            if reasons:
                bad.setdefault(t, []).append(f"{iv.key}: {', '.join(reasons)}")
    for key, v in result.published.items():
        if 0 < v < min_cell or (v == 0 and not zeros_published):
            for t in result.tables_of.get(key, ()):
                bad.setdefault(t, []).append(f"{key}: published {v} below {min_cell}")
    out = []
    for t in sorted(set(counted) | set(bad) | {t for ts in result.tables_of.values() for t in ts}):
        failures = bad.get(t, [])
        out.append({
            "expectation": f"disclosure_attack({t})",
            "success": not failures,
            "observed": f"{counted.get(t, 0)} suppressed cells bounded by LP over every open dataset; {len(failures)} recoverable or too narrow"
            + (f", e.g. {failures[:3]}" if failures else ""),
            "threshold": f"every suppressed cell: max >= {min_cell}, max - min >= 1" + (", primary: min <= max(v-1, floor)" if truth is not None else ""),
            "unexpected_count": len(failures),
        })
    out.append({
        "expectation": "disclosure_attack(consistency)",
        "success": not result.inconsistencies,
        "observed": f"{len(result.inconsistencies)} inconsistencies" + (f", e.g. {result.inconsistencies[:3]}" if result.inconsistencies else ""),
        "threshold": 0,
        "unexpected_count": len(result.inconsistencies),
    })
    return out
