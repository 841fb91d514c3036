"""Score the integrate stage (and what share and open make of it) against the demo agencies' ground truth.

    .venv/bin/python bench/score_integrate.py --seeds N [--scale S] [--first-seed K] [--workdir DIR] [--examples K]

For each seed (K, K+1, … K+N-1; K = 1 by default) it generates the demo agencies
(:func:`lawlake.demo.generate`), runs gather → normalize → integrate → share → open in
this process into a fresh lake (:func:`lawlake.pipeline.run_lifecycle`) and compares the
published tables with ``<demo>/_truth/``, with its own code (none of the project's rules):

1. **lost mentions**: truth person records (police.suspects, procuratorate.reviews,
   courts.parties, corrections.custody) delivered to bronze that have no row in
   gold.person_records;
2. **person index pairwise F1**: every pair of delivered truth person records of one true
   person should share a person_key, no pair of two persons should. Lost mentions count as
   misses. Precision must be 1.000;
3. **case chains complete and correct**: for every true (person, police case) suspect pair,
   a gold.case_chain row of that police case whose person is that person, holding the true
   review, first instance, appeal (the silver case numbers of the truth's court records)
   and a custody record when the truth has one;
4. **sealing**: truth-sealed pairs (``_truth/sealed.csv``, or a seal status file when the
   truth has one) whose chain says ``not_sealed`` (false negatives), or that have no chain;
   pending and over-withheld chains are reported beside;
5. **sealed rows served to partners**: rows of truth-sealed pairs in every published
   version of every share table;
6. **sealed cases counted in the open dataset**: truth-sealed police cases the open
   stage counts — with its rule today (a case is left out when a chain ``is_sealed``) and
   with the rule it is adopting (left out when a chain's ``seal_status`` is not
   ``not_sealed``).

A gold person_key is mapped to the true person most of its records belong to. Silver
rows map to truth records through ``_record_hash`` (see bench/score_normalize.py, whose
bronze loader this script reuses).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["SeedScore", "score_seed", "main"]

PERSON_SOURCES = ("police.suspects", "procuratorate.reviews", "courts.parties", "corrections.custody")
SILVER_OF = {
    "police.suspects": ("silver.suspects", "suspect_id"),
    "procuratorate.reviews": ("silver.prosecutions", "prosecution_id"),
    "courts.parties": ("silver.court_defendants", "defendant_id"),
    "corrections.custody": ("silver.custody", "record_id"),
    "courts.cases": ("silver.court_cases", "case_number"),
}
Record = tuple[str, str]


def _score_normalize():
    spec = importlib.util.spec_from_file_location("bench_score_normalize", Path(__file__).with_name("score_normalize.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _delta(lake: Path, name: str, version: int | None = None) -> pd.DataFrame:
    from deltalake import DeltaTable

    from lawlake import tables

    frame = DeltaTable(str(tables.location(lake, name)), version=version).to_pandas()
    return frame.astype(object).where(frame.notna(), None)


@dataclass
class SeedScore:
    seed: int
    scale: float
    figures: dict[str, float | int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    seconds: dict[str, float] = field(default_factory=dict)

    def example(self, kind: str, text: str, limit: int = 5) -> None:
        if len(self.examples[kind]) < limit:
            self.examples[kind].append(text)


def run_demo(workdir: Path, *, scale: float, seed: int) -> tuple[Path, Path, dict[str, float]]:
    from lawlake import config, demo, pipeline

    sources, lake = workdir / "sources", workdir / "lake"
    start = time.perf_counter()
    demo.generate(sources, scale=scale, seed=seed)
    generated = time.perf_counter()
    pipeline.run_lifecycle(config.load(lake=lake), f"score-integrate-{seed}", sources=sources)
    return sources, lake, {"generate": generated - start, "lifecycle": time.perf_counter() - generated}


def _truth_seal(truth_dir: Path) -> dict[tuple[str, str], str]:
    """(person_id, police_case_id) → sealed / not_sealed / pending, from a seal status file when the truth has one."""
    for path in sorted(truth_dir.glob("*.csv")):
        head = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=0)
        if {"person_id", "police_case_id", "seal_status"} <= set(head.columns):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            return {(p, c): s for p, c, s in zip(frame.person_id, frame.police_case_id, frame.seal_status)}
    frame = pd.read_csv(truth_dir / "sealed.csv", dtype=str, keep_default_na=False)
    return {(p, c): "sealed" for p, c in zip(frame.person_id, frame.police_case_id)}


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score_seed(workdir: Path, *, scale: float, seed: int, examples: int = 5) -> SeedScore:
    sn = _score_normalize()
    sources, lake, seconds = run_demo(workdir, scale=scale, seed=seed)
    start = time.perf_counter()
    out = SeedScore(seed, scale, seconds=seconds)
    ex = lambda kind, text: out.example(kind, text, examples)  # noqa: E731

    records = pd.read_csv(sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    person_of = {(s, k): p for s, k, p in zip(records.source, records.record_key, records.person_id) if s in PERSON_SOURCES}
    case_of = {(s, k): c for s, k, c in zip(records.source, records.record_key, records.police_case_id)}
    deliveries = sn.load_deliveries(lake)
    delivered = {r for r in person_of if r in deliveries.fields}

    # silver rows ↔ truth records
    silver_truth: dict[tuple[str, str], Record] = {}  # (silver table, primary key) → truth record
    silver_rows: dict[Record, dict] = {}
    for source, (table, key) in SILVER_OF.items():
        for row in _delta(lake, table).to_dict("records"):
            record = deliveries.by_hash.get(row["_record_hash"])
            if record is None:
                continue
            if source == "courts.parties":
                record = (source, f"{record[1]}|{int(row['party_index']) - 1}")
            silver_truth[(table, row[key])] = record
            silver_rows[record] = row

    # 1, 2: mentions in gold and the person index
    gold_records = _delta(lake, "gold.person_records")
    pk_of: dict[Record, str] = {}
    for table, key, pk in zip(gold_records.source_table, gold_records.record_key, gold_records.person_key):
        record = silver_truth.get((table, key))
        if record is not None and record in person_of:
            pk_of.setdefault(record, pk)
    lost = sorted(r for r in delivered if r not in pk_of)
    out.figures.update(truth_person_records=len(person_of), delivered=len(delivered), lost_mentions=len(lost),
                       lost_share=len(lost) / len(delivered) if delivered else 0.0)
    for r in lost:
        ex("lost mention", f"{r[0]} {r[1]} (person {person_of[r]}; in silver: {r in silver_rows})")
    true_sizes = Counter(person_of[r] for r in delivered)
    pred_sizes = Counter(pk_of[r] for r in delivered if r in pk_of)
    both = Counter((pk_of[r], person_of[r]) for r in delivered if r in pk_of)
    tp = sum(_pairs(n) for n in both.values())
    pred, true = sum(_pairs(n) for n in pred_sizes.values()), sum(_pairs(n) for n in true_sizes.values())
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    out.figures.update(pair_precision=precision, pair_recall=recall, pair_f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    persons_of_pk: dict[str, Counter] = defaultdict(Counter)
    for (pk, person), n in both.items():
        persons_of_pk[pk][person] += n
    for pk, persons in persons_of_pk.items():
        if len(persons) > 1:
            ex("merged persons", f"{pk}: {dict(persons)}")
    pks_of_person: dict[str, set] = defaultdict(set)
    for r in delivered:
        if r in pk_of:
            pks_of_person[person_of[r]].add(pk_of[r])
    for person, pks in pks_of_person.items():
        if len(pks) > 1:
            ex("split person", f"{person}: {len(pks)} person keys; records " + ", ".join(
                f"{r[0]}:{r[1]}" for r in sorted(delivered) if person_of[r] == person)[:300])
    majority = {pk: persons.most_common(1)[0][0] for pk, persons in persons_of_pk.items()}

    # 3: case chains
    chain = _delta(lake, "gold.case_chain")
    chain["true_person"] = [majority.get(pk) for pk in chain.person_key]
    chain_of: dict[tuple[str, str], dict] = {}
    for row in chain.to_dict("records"):
        chain_of.setdefault((row["true_person"], row["police_case_id"]), row)
    canonical = {r[1]: row["case_number"] for r, row in silver_rows.items() if r[0] == "courts.cases"}
    expected: dict[tuple[str, str], dict] = defaultdict(lambda: {"review": set(), "first": set(), "appeal": set(), "custody": False, "unknown": []})
    for r, person in person_of.items():
        pair = (person, case_of[r])
        if r[0] == "procuratorate.reviews":
            row = silver_rows.get(r)
            expected[pair]["review"].add(row["review_id"] if row else r[1].split("|", 1)[0])
        elif r[0] == "courts.parties":
            delivered_number = r[1].rsplit("|", 1)[0]
            number = canonical.get(delivered_number)
            if number is None:
                expected[pair]["unknown"].append(f"court case {delivered_number} not in silver")
                continue
            expected[pair]["appeal" if "刑终" in delivered_number else "first"].add(number)
        elif r[0] == "corrections.custody":
            expected[pair]["custody"] = True
    suspects = sorted({(person_of[r], case_of[r]) for r in person_of if r[0] == "police.suspects"})
    complete = 0
    kinds = Counter()
    for pair in suspects:
        want, got = expected[pair], chain_of.get(pair)
        problems = []
        if got is None:
            problems.append("no chain")
        else:
            if want["review"] and got["review_id"] not in want["review"]:
                problems.append(f"review {got['review_id']} ≠ {sorted(want['review'])}")
            if not want["review"] and got["review_id"] is not None:
                problems.append(f"review {got['review_id']} not in the truth")
            if want["first"] and got["first_instance_case_number"] not in want["first"]:
                problems.append(f"first instance {got['first_instance_case_number']} ≠ {sorted(want['first'])}")
            if not want["first"] and got["first_instance_case_number"] is not None and not want["unknown"]:
                problems.append(f"first instance {got['first_instance_case_number']} not in the truth")
            if want["appeal"] and got["appeal_case_number"] not in want["appeal"]:
                problems.append(f"appeal {got['appeal_case_number']} ≠ {sorted(want['appeal'])}")
            if want["custody"] and got["custody_admitted_on"] is None:
                problems.append("custody missing")
            problems += want["unknown"]
        if problems:
            kind = problems[0].split(" ")[0] + (" " + problems[0].split(" ")[1] if problems[0].startswith("first") else "")
            kinds[kind] += 1
            ex(f"chain: {kind}", f"{pair[0]} in {pair[1]}: " + "; ".join(problems))
        else:
            complete += 1
    out.figures.update(chains_expected=len(suspects), chains_complete=complete, chains_complete_share=complete / len(suspects) if suspects else 1.0)
    out.figures.update({f"chain_error[{k}]": v for k, v in kinds.items()})

    # 4: sealing
    seal = _truth_seal(sources / "_truth")
    truth_sealed = {pair for pair, s in seal.items() if s == "sealed"}
    fn = pending = no_chain = 0
    for pair in sorted(truth_sealed):
        got = chain_of.get(pair)
        if got is None:
            no_chain += 1
            ex("sealed pair without chain", f"{pair[0]} in {pair[1]}")
        elif got["seal_status"] == "not_sealed":
            fn += 1
            ex("sealing false negative", f"{pair[0]} in {pair[1]}: gold not_sealed (minor {got['is_minor_at_offense']}, age {got['age_at_offense']}, "
                                         f"decision {got['prosecution_decision']}, verdict {got['verdict']} {got['sentence_type']} {got['sentence_months']})")
        elif got["seal_status"] == "pending":
            pending += 1
    truth_pending = {pair for pair, s in seal.items() if s == "pending"}
    pending_fn = 0
    for pair in sorted(truth_pending):
        got = chain_of.get(pair)
        if got is not None and got["seal_status"] == "not_sealed":
            pending_fn += 1
            ex("truth pending, gold not_sealed", f"{pair[0]} in {pair[1]}: minor {got['is_minor_at_offense']}, decision {got['prosecution_decision']}, "
                                                 f"verdict {got['verdict']} {got['sentence_type']} {got['sentence_months']}")
    out.figures.update(truth_pending=len(truth_pending), pending_not_withheld=pending_fn)
    over = sum(1 for pair, row in chain_of.items() if row["seal_status"] == "sealed" and pair not in truth_sealed)
    withheld_not_sealed = sum(1 for pair, row in chain_of.items() if row["seal_status"] != "not_sealed" and pair not in truth_sealed)
    out.figures.update(truth_sealed=len(truth_sealed), sealing_false_negatives=fn, sealed_pairs_without_chain=no_chain, truth_sealed_gold_pending=pending,
                       gold_sealed_not_truth_sealed=over, withheld_not_truth_sealed=withheld_not_sealed,
                       chains_pending=int((chain.seal_status == "pending").sum()), chains_sealed=int((chain.seal_status == "sealed").sum()))

    # 5: share tables, every published version
    from deltalake import DeltaTable

    from lawlake import tables

    chain_pair = {row["chain_id"]: (row["true_person"], row["police_case_id"]) for row in chain.to_dict("records")}
    served = 0
    share_root = lake / "share"
    for delta_log in sorted(share_root.glob("*/*/_delta_log")) if share_root.exists() else []:
        path = delta_log.parent
        name = f"share.{path.parent.name}.{path.name}"
        for version in range(DeltaTable(str(path)).version() + 1):
            rows = DeltaTable(str(path), version=version).to_pandas(columns=["chain_id"])
            bad = [c for c in rows.chain_id if chain_pair.get(c) in truth_sealed]
            served += len(bad)
            for c in bad:
                ex("sealed row served", f"{name} v{version}: chain {c} = {chain_pair[c]}")
    out.figures["sealed_rows_served"] = served
    del tables

    # 6: open
    sealed_cases = {case for _, case in truth_sealed}
    by_case = chain.groupby("police_case_id")
    today = tomorrow = 0
    for case in sorted(sealed_cases):
        if case not in by_case.groups:
            continue
        rows = by_case.get_group(case)
        if not rows.is_sealed.any():
            today += 1
            ex("sealed case counted in open (is_sealed rule)", f"{case}: statuses {sorted(rows.seal_status)}")
        if (rows.seal_status == "not_sealed").all():
            tomorrow += 1
            ex("sealed case counted in open (seal_status rule)", f"{case}")
    out.figures.update(sealed_cases_in_open_is_sealed_rule=today, sealed_cases_in_open_seal_status_rule=tomorrow)
    out.seconds["score"] = time.perf_counter() - start
    return out


# -- report ---------------------------------------------------------------------------------

TARGETS = [
    # (figure, label, format, target text, passes)
    ("lost_share", "person mentions that never reach gold", "{:.2%}", "≤ 0.5%", lambda v: v <= 0.005),
    ("pair_f1", "person index pairwise F1 (lost = misses)", "{:.4f}", "≥ 0.995", lambda v: v >= 0.995),
    ("pair_precision", "person index pairwise precision", "{:.4f}", "= 1.000", lambda v: v >= 1.0),
    ("chains_complete_share", "case chains complete and correct", "{:.2%}", "≥ 99%", lambda v: v >= 0.99),
    ("sealing_false_negatives", "sealing false negatives", "{}", "0", lambda v: v == 0),
    ("sealed_pairs_without_chain", "truth-sealed pairs with no chain", "{}", "0", lambda v: v == 0),
    ("sealed_rows_served", "sealed rows served to partners", "{}", "0", lambda v: v == 0),
    ("sealed_cases_in_open_seal_status_rule", "sealed cases counted in open (the open stage's rule: seal_status)", "{}", "0", lambda v: v == 0),
]
# sealed_cases_in_open_is_sealed_rule: what an is_sealed-only rule would count (pending chains), for comparison
INFO = ["sealed_cases_in_open_is_sealed_rule", "pending_not_withheld", "truth_pending", "lost_mentions", "delivered", "pair_recall", "chains_expected", "truth_sealed", "truth_sealed_gold_pending",
        "gold_sealed_not_truth_sealed", "withheld_not_truth_sealed", "chains_pending", "chains_sealed"]


def report(scores: list[SeedScore], *, examples: int = 5) -> str:
    lines = []
    seeds = ", ".join(str(s.seed) for s in scores)
    lines.append(f"integrate scored against the truth: scale {scores[0].scale}, seeds {seeds}\n")
    lines.append(f"{'figure':52} {'min':>9} {'max':>9} {'target':>8}  all seeds")
    for key, label, fmt, target, ok in TARGETS:
        values = [s.figures.get(key, 0) for s in scores]
        worst = min(values) if key in ("pair_f1", "pair_precision", "chains_complete_share") else max(values)
        lines.append(f"{label:52} {fmt.format(min(values)):>9} {fmt.format(max(values)):>9} {target:>8}  {'ok' if all(ok(v) for v in values) else 'MISSED (worst ' + fmt.format(worst) + ')'}")
    lines.append("")
    lines.append("per seed: " + " | ".join(f"{k}" for k in ["seed"] + [t[0] for t in TARGETS] + INFO))
    for s in scores:
        vals = [s.seed] + [s.figures.get(t[0], 0) for t in TARGETS] + [s.figures.get(k, 0) for k in INFO]
        lines.append("  " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in vals))
    errors = Counter()
    for s in scores:
        errors.update({k: v for k, v in s.figures.items() if k.startswith("chain_error[")})
    if errors:
        lines.append("chain errors over all seeds: " + ", ".join(f"{k[12:-1]} {v}" for k, v in errors.most_common()))
    lines.append("\nexamples:")
    merged: dict[str, list[str]] = defaultdict(list)
    for s in scores:
        for kind, texts in s.examples.items():
            merged[kind] += [f"seed {s.seed}: {t}" for t in texts]
    for kind in sorted(merged):
        lines.append(f"  {kind}:")
        lines += [f"    {t}" for t in merged[kind][:examples]]
    lines.append("\nseconds per seed: " + ", ".join(f"{s.seed}: " + "/".join(f"{k} {v:.0f}" for k, v in s.seconds.items()) for s in scores))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds (first-seed, first-seed + 1, …)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, help="keep each seed's demo and lake under DIR/seed-N; default a temporary directory")
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("RUST_LOG", "error")
    from lawlake import engine

    scores: list[SeedScore] = []
    failed: list[tuple[int, str]] = []
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            try:
                if args.workdir:
                    work = args.workdir / f"seed-{seed}"
                    work.mkdir(parents=True, exist_ok=False)
                    scores.append(score_seed(work, scale=args.scale, seed=seed, examples=args.examples))
                else:
                    with tempfile.TemporaryDirectory(prefix="score-integrate-") as tmp:
                        scores.append(score_seed(Path(tmp), scale=args.scale, seed=seed, examples=args.examples))
            except Exception as exc:  # a failed gate or stage is a result too: report it, go on with the next seed
                failed.append((seed, f"{type(exc).__name__}: {str(exc)[:400]}"))
                print(f"seed {seed}: FAILED {failed[-1][1]}", file=sys.stderr, flush=True)
                continue
            s = scores[-1]
            print(f"seed {seed}: " + ", ".join(f"{k} {s.figures.get(k, 0):.4g}" for k, *_ in TARGETS), file=sys.stderr, flush=True)
            if args.json:  # the figures so far, so a long run interrupted still leaves its results
                args.json.write_text(json.dumps([{"seed": x.seed, "scale": x.scale, **x.figures} for x in scores], indent=2))
                args.json.with_suffix(".txt").write_text(report(scores, examples=args.examples) + "\n")
    finally:
        engine.stop()
    if scores:
        print(report(scores, examples=args.examples))
    for seed, message in failed:
        print(f"seed {seed} did not run through: {message}")
    if args.json:
        args.json.write_text(json.dumps([{"seed": s.seed, "scale": s.scale, **s.figures} for s in scores], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
