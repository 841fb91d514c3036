"""What the gates cost in one in-process run: seconds and engine queries per gate, against each stage's time.

    .venv/bin/python bench/gates.py --scale 1

Generates fresh demo data and a fresh lake, runs the lifecycle in this process
(``pipeline.run_lifecycle``, as ``lawlake run --no-airflow``) and counts the Spark Connect
calls the client makes (``ExecutePlan``: a query run; ``AnalyzePlan``: a schema or plan
lookup) inside each gate. The first gate pays for importing Great Expectations.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CALLS: collections.Counter = collections.Counter()


def _count_engine_calls() -> None:
    from pyspark.sql.connect.client import core

    def counted(kind, fn):
        def wrapper(self, *args, **kwargs):
            CALLS[kind] += 1
            return fn(self, *args, **kwargs)
        return wrapper

    client = core.SparkConnectClient
    client._execute_and_fetch_as_iterator = counted("execute", client._execute_and_fetch_as_iterator)  # type: ignore[method-assign]
    client._execute = counted("execute", client._execute)  # type: ignore[method-assign]
    client._analyze = counted("analyze", client._analyze)  # type: ignore[method-assign]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    _count_engine_calls()
    from lawlake import config, pipeline
    from quality import gate

    gates: list[dict] = []
    stages: dict[str, dict[str, float]] = collections.defaultdict(dict)
    run_gate, run_stage, gate_stage = gate.run_gate, pipeline.run_stage, pipeline.gate_stage

    def timed_gate(spark, table, *a, **k):
        before, start = CALLS.copy(), time.perf_counter()
        result = run_gate(spark, table, *a, **k)
        gates.append({"table": table, "s": time.perf_counter() - start, "execute": CALLS["execute"] - before["execute"], "analyze": CALLS["analyze"] - before["analyze"], "checks": len(result.results)})
        return result

    def timed(kind, fn):
        def wrapper(stage, *a, **k):
            start = time.perf_counter()
            try:
                return fn(stage, *a, **k)
            finally:
                stages[stage][kind] = time.perf_counter() - start
        return wrapper

    gate.run_gate = timed_gate  # type: ignore[assignment]
    pipeline.run_stage = timed("job", run_stage)  # type: ignore[assignment]
    pipeline.gate_stage = timed("gate+publish", gate_stage)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="lawlake-bench-gates-") as tmp:
        sources, lake = Path(tmp) / "demo", Path(tmp) / "lake"
        subprocess.run([BIN / "lawlake", "demo-data", "--out", sources, "--scale", str(args.scale), "--seed", str(args.seed)], check=True, capture_output=True)
        start, before = time.perf_counter(), CALLS.copy()
        pipeline.run_lifecycle(config.load(lake=lake), "bench-gates", sources=sources)
        wall = time.perf_counter() - start
    total = {k: CALLS[k] - before[k] for k in ("execute", "analyze")}
    print(f"{'gate':<42} {'s':>6} {'execute':>8} {'analyze':>8} {'checks':>7}")
    for g in gates:
        print(f"{g['table']:<42} {g['s']:>6.2f} {g['execute']:>8} {g['analyze']:>8} {g['checks']:>7}")
    gated = sum(g["s"] for g in gates)
    print(f"\n{len(gates)} gates: {gated:.1f}s, {sum(g['execute'] for g in gates)} of {total['execute']} ExecutePlan calls, "
          f"{sum(g['analyze'] for g in gates)} of {total['analyze']} AnalyzePlan calls")
    later = gates[1:]
    if later:
        print(f"first gate {gates[0]['s']:.1f}s (imports Great Expectations); the others {sum(g['s'] for g in later) / len(later):.2f}s each on average")
    staged = sum(s.get("job", 0) + s.get("gate+publish", 0) for s in stages.values())
    print("stages (job / gate+publish s): " + ", ".join(f"{n} {s.get('job', 0):.1f} / {s.get('gate+publish', 0):.1f}" for n, s in stages.items()))
    print(f"gates are {gated / staged:.0%} of stage time; run wall {wall:.1f}s (scale {args.scale:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
