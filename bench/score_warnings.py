"""Score gold.time_limit_warnings against the statutory limits recomputed from the demo's ground truth.

    .venv/bin/python bench/score_warnings.py --seeds N [--scale S] [--first-seed K] [--warning-days D] [--examples K]

For each seed (K, K+1, … K+N-1; K = 1 by default) it generates the demo agencies
(:func:`lawlake.demo.generate`), runs gather → normalize → integrate in this process
into a fresh lake (:func:`lawlake.pipeline.run_lifecycle`, data date = the demo's
snapshot date) and compares the released gold.time_limit_warnings with every limit
recomputed here from the generator's true world (:func:`lawlake.demo.generator.world_of`:
the same seed gives the same world the sources were written from). The limits are
recomputed with this file's own calendar code, not ``lawlake.rules.time_limits``.

A warning is ``(police case, rule, status)``: every date the limits use is a case's (all
its suspects share them), so a case's chains collapse to one. Per rule it prints the
true and flagged counts, precision and recall, pooled over the seeds. A stage the
pipeline holds ``undetermined`` (its start date is not in the sources) is counted
apart: ``held`` when it is a true warning (recall is over the others), ``without cause``
when the court source files this script reads do give that date; ``missed`` counts
true warnings neither flagged nor held.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

__all__ = ["truth_warnings", "score_seed", "main"]

RULES = ("detention_to_arrest", "custody_after_arrest", "arrested_not_transferred", "supplementary_investigation", "review_for_prosecution",
         "first_instance", "appeal")
Warning = tuple[str, str, str]  # (police_case_id, rule, status)


# -- the limits, recomputed (CPL 2018; months by the calendar, art. 105) -----------------------


def _months_on(day: date, n: int) -> date:
    """``day`` + ``n`` calendar months: the same day-number, or the month's end when it has none or ``day`` ends its month."""
    y, m = divmod(day.year * 12 + day.month - 1 + n, 12)
    month_end = calendar.monthrange(y, m + 1)[1]
    ends_its_month = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(y, m + 1, month_end if ends_its_month else min(day.day, month_end))


def _custody_deadline(arrested: date, facts) -> date:
    # 2 months (art. 156); +1 (art. 156 approval), +2 (art. 158), +2 (art. 159), each approved by the deadline it extends
    months, due = 2, _months_on(arrested, 2)
    for approved, more in ((facts.custody_extension_156_on, 1), (facts.custody_extension_158_on, 2), (facts.custody_extension_159_on, 2)):
        if approved is None or not arrested <= approved <= due:
            break
        months += more
        due = _months_on(arrested, months)
    return due


def _detention_days(detained: date, facts) -> int:
    # art. 91: request within 3 days (+1–4 with approval; 30 for roaming/serial/gang), decision within 7
    if facts.is_roaming_serial_gang:
        return 37
    approved = facts.detention_extension_on
    return 14 if approved is not None and detained <= approved <= detained + timedelta(days=3) else 10


def _status(deadline: date, ended: date | None, data_date: date, warning_days: int) -> str | None:
    judged = ended or data_date
    if judged > deadline:
        return "exceeded"
    if ended is None and (deadline - judged).days <= warning_days:
        return "approaching"
    return None


def truth_warnings(world, data_date: date, warning_days: int) -> set[Warning]:
    """Every (police case, rule, status) the true world holds at ``data_date``."""
    out: set[Warning] = set()

    def add(case_id: str, rule: str, status: str | None) -> None:
        if status:
            out.add((case_id, rule, status))

    for case in world.cases:
        f = case.facts
        if case.detained_on and case.arrested_on:
            add(case.case_id, "detention_to_arrest",
                _status(case.detained_on + timedelta(days=_detention_days(case.detained_on, f)), case.arrested_on, data_date, warning_days))
        if case.arrested_on and case.transferred_on:
            add(case.case_id, "custody_after_arrest", _status(_custody_deadline(case.arrested_on, f), case.transferred_on, data_date, warning_days))
        elif case.arrested_on and not case.withdrawn_on:
            add(case.case_id, "arrested_not_transferred", _status(_custody_deadline(case.arrested_on, f), None, data_date, warning_days))
    for review in world.reviews:
        f = review.facts
        # art. 175: one month from each return to the resubmission (still out: judged at the data date); a chain's
        # warning is its round most over the limit among those flagged
        rounds = []
        for returned, back in f.rounds:
            due = _months_on(returned, 1)
            status = _status(due, back, data_date, warning_days)
            if status:
                rounds.append((((back or data_date) - due).days, returned, status))
        if rounds:
            add(review.case.case_id, "supplementary_investigation", max(rounds)[2])
        # every review period: to each return, and from each resubmission (the clock restarts, art. 175) to the next
        # return, the decision, or (resubmitted, undecided) the data date; art. 172: +15 days for a case marked major
        # or complex, or with an approval dated within the period's month
        periods: list[tuple[date, date | None]] = []
        start: date | None = review.received_on
        for returned, back in f.rounds:
            if start is not None:
                periods.append((start, returned))
            start = back
        if start is not None and (review.decided_on or f.rounds):
            periods.append((start, review.decided_on))
        for begin, end in periods:
            due = _months_on(begin, 1)
            approved = f.review_extension_on
            if f.is_major_complex or (approved is not None and begin <= approved <= due):
                due += timedelta(days=15)
            add(review.case.case_id, "review_for_prosecution", _status(due, end, data_date, warning_days))
    for court_case in world.court_cases:
        rule = "first_instance" if court_case.level == "first_instance" else "appeal"
        add(court_case.review.case.case_id, rule, _status(_months_on(court_case.filed_on, 2), court_case.judged_on, data_date, warning_days))
    return out


# -- one seed ------------------------------------------------------------------------------


def court_dates_on_record(sources: Path) -> set[tuple[str, str]]:
    """(review id, trial level) of every court case some delivered court record gives a filing date (read here, not by gather)."""
    import json

    out = set()
    for path in sorted((sources / "courts").glob("court_cases_*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("filed_on") and record.get("review_id"):
                out.add((str(record["review_id"]), str(record.get("trial_level"))))
    return out


def flagged_warnings(lake: Path) -> set[Warning]:
    from deltalake import DeltaTable

    from lawlake import tables

    frame = DeltaTable(str(tables.location(lake, "gold.time_limit_warnings"))).to_pandas(columns=["police_case_id", "rule", "status"])
    return set(frame.itertuples(index=False, name=None))


def score_seed(workdir: Path, *, scale: float, seed: int, warning_days: int) -> dict:
    from lawlake import config, demo, pipeline
    from lawlake.demo.generator import world_of
    from lawlake.demo.world import AS_OF

    sources, lake = workdir / "sources", workdir / "lake"
    t0 = time.perf_counter()
    demo.generate(sources, scale=scale, seed=seed)
    settings = dataclasses.replace(config.load(lake=lake), warning_days_before=warning_days)
    pipeline.run_lifecycle(settings, f"score-warnings-{seed}", sources=sources, stages=("gather", "normalize", "integrate"), data_date=AS_OF)
    t1 = time.perf_counter()
    world = world_of(scale=scale, seed=seed)
    dated = court_dates_on_record(sources)
    # court stages the sources really give no start date: the cases a correct pipeline can only hold undetermined
    undatable = {(c.review.case.case_id, "first_instance" if c.level == "first_instance" else "appeal") for c in world.court_cases
                 if (c.review.review_id, c.level) not in dated}
    return {"seed": seed, "truth": truth_warnings(world, AS_OF, warning_days), "flagged": flagged_warnings(lake), "undatable": undatable,
            "seconds": t1 - t0}


def report(results: list[dict], *, examples: int) -> str:
    """Per rule, pooled: precision and recall of the judged flags; the undetermined ones (the start date is not in the
    sources) counted apart, and checked against the court sources; ``missed``: true warnings neither flagged nor held."""
    rows = []
    misses: dict[str, list[str]] = defaultdict(list)
    for rule in RULES:
        t = f = hit = held = undetermined = missed = uncaused = 0
        for r in results:
            truth = {w for w in r["truth"] if w[1] == rule}
            pending = {(w[0], w[1]) for w in r["flagged"] if w[1] == rule and w[2] == "undetermined"}
            flagged = {w for w in r["flagged"] if w[1] == rule and w[2] != "undetermined"}
            held_here = {w for w in truth - flagged if (w[0], w[1]) in pending}
            t, f, hit = t + len(truth), f + len(flagged), hit + len(truth & flagged)
            held, undetermined = held + len(held_here), undetermined + len(pending)
            missed += len(truth - flagged - held_here)
            if rule in ("first_instance", "appeal"):
                uncaused += len(pending - r["undatable"])
            for w in sorted(truth - flagged - held_here)[:examples]:
                misses[rule].append(f"seed {r['seed']} missed {w[0]} {w[2]}")
            for w in sorted(flagged - truth)[:examples]:
                misses[rule].append(f"seed {r['seed']} wrongly {w[0]} {w[2]}")
        precision = hit / f if f else 1.0
        judgeable = t - held
        recall = hit / judgeable if judgeable else 1.0
        checked = str(uncaused) if rule in ("first_instance", "appeal") else "n/a"
        rows.append(f"| {rule} | {t} | {f} | {hit} | {precision:.3f} | {recall:.3f} | {undetermined} | {held} | {checked} | {missed} |")
    lines = [f"seeds {', '.join(str(r['seed']) for r in results)}; (police case, rule, status) pooled over the seeds", "",
             "precision and recall over the stages the sources let anyone judge; undetermined: flagged, the clock's start date is",
             "not in the sources (of them, held: a true warning; without cause: the court sources do have the date); missed: neither", "",
             "| rule | true | flagged | both | precision | recall | undetermined | held | without cause | missed |",
             "|---|---|---|---|---|---|---|---|---|---|", *rows]
    for rule, items in misses.items():
        lines += ["", f"{rule}:", *[f"  {m}" for m in items[: examples * 2]]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (first-seed, first-seed + 1, …)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--warning-days", type=int, default=5)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("RUST_LOG", "error")
    from lawlake import engine

    results = []
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            with tempfile.TemporaryDirectory(prefix="score-warnings-") as tmp:
                results.append(score_seed(Path(tmp), scale=args.scale, seed=seed, warning_days=args.warning_days))
            print(f"seed {seed}: {len(results[-1]['truth'])} true, {len(results[-1]['flagged'])} flagged, {results[-1]['seconds']:.0f} s",
                  file=sys.stderr, flush=True)
    finally:
        engine.stop()
    print(report(results, examples=args.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
