"""Score the open datasets: recount every published cell with independent code, and attack the suppression.

    python bench/score_open.py --sources demo --lake lake [--min-cell 10]

What is recounted from where (none of it uses jobs/open.py or lawlake.opendata's counting):

- **which cases exist, their filing year, prefecture and charge**: from the police
  source itself (``police/police.db``, SQLite), with the charge names and variants of
  ``schemas/reference/charges.csv`` and the prefecture from the county code
  (``regions.csv``); a case whose recorded region is empty or unknown is placed by the
  county in its case id, as normalize does; a case with no recognizable charge counts
  under the charge ``unknown``;
- **which cases must be withheld**: every case of ``_truth/sealed.csv`` must be withheld
  (a sealed case in any published count is a *sealing leak*); beyond that the pipeline
  withholds cases whose sealing is pending or that no chain covers, which the truth
  cannot decide (it has no "pending"): the bench takes that set from the lake
  (``gold.case_chain.seal_status``, chain coverage) and reports its size;
- **the later funnel stages and the durations**: from ``gold.case_chain`` with
  pandas (linking reviews and judgments to police cases is the integrate stage's
  job, scored by its own benchmark);
- **the transfer channels** (online, paper, unknown) of the two transfer stages: from
  ``silver.police_transfers`` and the first-instance ``silver.court_cases`` (reached
  through the chain's prosecuted rows) with pandas — a case is paper if any of its
  transfers is, unknown if any channel is missing, else online — and every published
  ``online_rate`` is checked against the recounted online / all.

Then the LP attack (``lawlake.opendata.attack``) bounds every suppressed cell from the
published tables, judged with the recounted values as the truth (``--integral``: also
by integer programming). Prints JSON; exit 1 unless 0 wrong cells, 0 recoverable
cells and 0 sealing leaks.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REF = ROOT / "schemas" / "reference"
STAGES = ("filed", "transferred", "prosecuted", "tried", "sentenced")


def _reference():
    with (REF / "regions.csv").open(encoding="utf-8") as f:
        regions = {r["code"]: r for r in csv.DictReader(f)}
    spelling = {}
    with (REF / "charges.csv").open(encoding="utf-8") as f:
        charges = list(csv.DictReader(f))
    for c in charges:
        for s in [c["name"]] + [v for v in c["variants"].split("|") if v]:
            spelling["".join(s.split()).removeprefix("涉嫌")] = c["charge_code"]
    with (REF / "charge_categories.csv").open(encoding="utf-8") as f:
        chapters = list(csv.DictReader(f))
    category = {}
    for c in charges:
        art = int("".join(ch for ch in c["criminal_law_article"].split("之")[0] if ch.isdigit()))
        category[c["charge_code"]] = next(ch["category_code"] for ch in chapters if int(ch["first_article"]) <= art <= int(ch["last_article"]))
    return regions, spelling, category


def source_cases(sources: Path, province: str) -> pd.DataFrame:
    regions, spelling, category = _reference()
    con = sqlite3.connect(f"file:{sources / 'police' / 'police.db'}?mode=ro", uri=True)
    rows = con.execute("SELECT case_id, region_code, charge, filed_on, transferred_on FROM cases").fetchall()
    con.close()
    out = []
    for case_id, region, charge, filed_on, transferred_on in rows:
        if not region or region not in regions:
            region = case_id[1:7]  # the county in the case id
        charge_code = spelling.get("".join((charge or "").split()).removeprefix("涉嫌"), "unknown")
        r = regions.get(region)
        pref = None
        if r is not None:
            pref = region if r["level"] == "prefecture" else r["parent_code"]
        if pref is None or regions.get(pref, {}).get("parent_code") != province:
            pref = None
        out.append((case_id, filed_on[:4], pref, charge_code, category.get(charge_code, "CL-unknown"), transferred_on))
    return pd.DataFrame(out, columns=["police_case_id", "year", "prefecture", "charge_code", "category_code", "transferred_on"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, required=True)
    ap.add_argument("--lake", type=Path, required=True)
    ap.add_argument("--min-cell", type=int, default=10)
    ap.add_argument("--integral", action="store_true", help="also attack by integer programming (slower; counts are whole numbers)")
    args = ap.parse_args(argv)
    from deltalake import DeltaTable

    from lawlake import tables
    from lawlake.opendata.attack import attack, judge
    from lawlake.opendata.datasets import BY_YEAR_CHARGE, BY_YEAR_PREFECTURE, DATASETS, DURATIONS, FUNNEL
    from lawlake.opendata.policy import load_policy

    policy = load_policy(args.min_cell)
    P = policy.province
    start = time.perf_counter()
    read = lambda name: DeltaTable(str(tables.location(args.lake, name))).to_pandas()  # noqa: E731
    published = {d.name: read(d.name) for d in DATASETS}
    silver = read("silver.police_cases")
    chain = read("gold.case_chain")

    cases = source_cases(args.sources, P)
    canonical = cases[cases["charge_code"].notna()]
    sealed_truth = set(pd.read_csv(args.sources / "_truth" / "sealed.csv", dtype=str)["police_case_id"])
    unsealed = chain.groupby("police_case_id")["seal_status"].apply(lambda s: bool((s.fillna("missing") != "not_sealed").any()))
    withheld_by_lake = set(unsealed[unsealed].index) | (set(silver["police_case_id"]) - set(chain["police_case_id"]))
    outside = set(canonical.loc[canonical["prefecture"].isna(), "police_case_id"])
    withheld = sealed_truth | withheld_by_lake | outside
    open_cases = canonical[~canonical["police_case_id"].isin(withheld)]

    # furthest stage per case, from the chain (pandas)
    g = chain.assign(
        review=chain["prosecution_received_on"].notna(),
        prosecuted=chain["prosecution_decision"].eq("prosecute"),
        tried=chain["first_instance_judged_on"].notna(),
        sentenced=chain["verdict"].eq("guilty") & ~chain["sentence_type"].fillna("none").isin(["exempt", "none"]),
    ).groupby("police_case_id")[["review", "prosecuted", "tried", "sentenced"]].any()
    oc = open_cases.set_index("police_case_id").join(g, how="left").fillna({"review": False, "prosecuted": False, "tried": False, "sentenced": False})
    reached = np.select([oc["sentenced"], oc["tried"], oc["prosecuted"], oc["transferred_on"].notna() | oc["review"]], [5, 4, 3, 2], 1)
    oc = oc.assign(reached=reached)

    def case_channel(frame: pd.DataFrame, key: str) -> pd.Series:
        ch = frame["transfer_channel"]
        f = frame.assign(paper=ch.eq("paper"), unknown=~ch.eq("online"))
        agg = f.groupby(key)[["paper", "unknown"]].any()
        return pd.Series(np.where(agg["paper"], "paper", np.where(agg["unknown"], "unknown", "online")), index=agg.index)

    transfers = read("silver.police_transfers")
    courts = read("silver.court_cases")
    first = courts[courts["trial_level"].eq("first_instance")]
    by_number = case_channel(first, "case_number")
    sent = chain[chain["prosecution_decision"].eq("prosecute")][["police_case_id", "first_instance_case_number"]].copy()
    sent["transfer_channel"] = sent["first_instance_case_number"].map(by_number)
    police_ch = case_channel(transfers, "police_case_id").reindex(oc.index)
    court_ch = (case_channel(sent, "police_case_id") if len(sent) else pd.Series(dtype=object)).reindex(oc.index)
    oc = oc.assign(police_ch=police_ch.fillna("unknown"), court_ch=court_ch.fillna("unknown"))

    truth: dict[tuple, int] = Counter()
    for r in oc.itertuples():
        split = [f"transferred/{r.police_ch}"] * (r.reached >= 2) + [f"prosecuted/{r.court_ch}"] * (r.reached >= 3)
        for s in list(STAGES[: r.reached]) + split:
            for y in (r.year, "total"):
                for reg in (r.prefecture, P):
                    truth[(s, y, reg, "total")] += 1
        for y in (r.year, "total"):
            for k in (r.charge_code, r.category_code):
                truth[("filed", y, P, k)] += 1

    from lawlake.opendata.attack import cell_keys

    wrong, checked, published_cells = [], 0, Counter()
    for table, key, value, is_suppressed in cell_keys({n: published[n] for n in (BY_YEAR_PREFECTURE, BY_YEAR_CHARGE, FUNNEL)}):
        published_cells[(table, not is_suppressed)] += 1
        if not is_suppressed:
            checked += 1
            if int(value) != truth.get(key, 0):
                wrong.append((table, key, int(value), truth.get(key, 0)))

    # online rates, against the recounted channel counts
    wrong_rates, checked_rates = [], 0
    for r in published[FUNNEL].itertuples(index=False):
        if pd.isna(r.online_rate):
            continue
        checked_rates += 1
        n = truth.get((r.stage, r.year, r.region_code, "total"), 0)
        expect = round(truth.get((f"{r.stage}/online", r.year, r.region_code, "total"), 0) / n, 3) if n else None
        if expect is None or abs(float(r.online_rate) - expect) > 1e-9:
            wrong_rates.append((r.year, r.region_code, r.stage, r.online_rate, expect))
    funnel = published[FUNNEL]
    transfer_rows = funnel[funnel["channel"].eq("all") & funnel["stage"].isin(["transferred", "prosecuted"])]

    # durations, recounted with numpy from the chain
    def span(frame, a, b):
        return (pd.to_datetime(frame[b]) - pd.to_datetime(frame[a])).dt.days

    dated = chain[chain["police_case_id"].isin(oc.index)].copy()
    for c in ("prosecution_received_on", "prosecution_decided_on", "first_instance_filed_on", "first_instance_judged_on"):
        dated[c] = pd.to_datetime(dated[c])
    per_case = dated.groupby("police_case_id").agg(
        rf=("prosecution_received_on", "min"), rt=("prosecution_decided_on", "max"), tf=("first_instance_filed_on", "min"), tt=("first_instance_judged_on", "max"))
    sil = silver.set_index("police_case_id")
    dur = pd.DataFrame({"year": oc["year"], "police": span(sil.loc[oc.index], "filed_on", "transferred_on")}).join(
        pd.DataFrame({"review": span(per_case, "rf", "rt"), "first_instance": span(per_case, "tf", "tt")}), how="left")
    wrong_durations, checked_durations = [], 0
    for r in published[DURATIONS].itertuples(index=False):
        if r.is_suppressed:
            continue
        checked_durations += 1
        d = dur.loc[dur["year"] == r.year, r.stage].dropna()
        d = d[d >= 0]
        expect = (len(d), *[float(np.floor(np.percentile(d, q) * 10 + 0.5) / 10) for q in (25, 50, 75, 90)])  # half up, as published
        got = (int(r.cases), r.p25_days, r.median_days, r.p75_days, r.p90_days)
        if len(d) != got[0] or any(abs(a - b) > 0.051 for a, b in zip(expect[1:], got[1:])):
            wrong_durations.append((r.year, r.stage, got, expect))

    result = attack(published, zeros_published=policy.zeros_published)
    judged = judge(result, min_cell=policy.min_cell, zeros_published=policy.zeros_published, truth=dict(truth))
    integral = None
    if args.integral:
        mip = judge(attack(published, zeros_published=policy.zeros_published, integral=True), min_cell=policy.min_cell,
                    zeros_published=policy.zeros_published, truth=dict(truth))
        integral = sum(r["unexpected_count"] or 0 for r in mip if r["expectation"] != "disclosure_attack(consistency)")
    yp = published[BY_YEAR_PREFECTURE]
    leaks = sorted(sealed_truth & set(open_cases["police_case_id"]))
    report = {
        "cases_in_sources": len(cases),
        "canonical_cases": len(canonical),
        "silver_police_cases": len(silver),
        "withheld": {"sealed_by_truth": len(sealed_truth & set(canonical["police_case_id"])),
                     "pending_or_uncovered_by_lake": len(withheld_by_lake - sealed_truth), "outside_province": len(outside), "total": len(withheld & set(canonical["police_case_id"]))},
        "sealing_leaks": len(leaks),
        "published_cells_checked": checked,
        "wrong_cells": len(wrong),
        "wrong_examples": [str(w) for w in wrong[:5]],
        "online_rates_published": checked_rates,
        "online_rates_withheld": int(transfer_rows["online_rate"].isna().sum()),
        "wrong_online_rates": len(wrong_rates),
        "wrong_online_rate_examples": [str(w) for w in wrong_rates[:3]],
        "province_online_rate": {f"{r.stage} {r.year}": r.online_rate for r in transfer_rows[transfer_rows["region_code"].eq(P)].itertuples(index=False)},
        "duration_rows_checked": checked_durations,
        "wrong_duration_rows": len(wrong_durations),
        "wrong_duration_examples": [str(w) for w in wrong_durations[:3]],
        "suppressed_cells_attacked": len(result.intervals),
        "recoverable_or_too_narrow": sum(r["unexpected_count"] or 0 for r in judged if r["expectation"] != "disclosure_attack(consistency)"),
        "recoverable_or_too_narrow_integer_attack": integral,
        "inconsistencies": len(result.inconsistencies),
        "cells": {t: {"published": published_cells[(t, True)], "suppressed": published_cells[(t, False)]} for t in (BY_YEAR_PREFECTURE, BY_YEAR_CHARGE, FUNNEL)},
        "year_x_prefecture_published_share": round(float((~yp["is_suppressed"]).mean()), 3),
        "year_x_prefecture_inner_published_share": round(float((~yp.loc[(yp["year"] != "total") & (yp["region_level"] == "prefecture"), "is_suppressed"]).mean()), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    ok = report["wrong_cells"] == 0 and report["recoverable_or_too_narrow"] == 0 and not integral and report["sealing_leaks"] == 0 and report["wrong_duration_rows"] == 0 and report["wrong_online_rates"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
