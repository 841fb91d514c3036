"""Wall time of `lawlake run` (through Airflow) per demo scale, and of each stage's job and gate.

    .venv/bin/python bench/lifecycle.py --scales 1 10

Each scale gets fresh demo data and a fresh lake (so the figures include setting up
Airflow's SQLite home once). Stage figures come from the run's own progress lines:
the job ("built … in Ns") and the gate with publication ("published … in Ns").
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STEP = re.compile(r"^\s+(gather|normalize|integrate|share|open): (built|published) .* in ([0-9.]+)s")


def run_scale(scale: float, seed: int, workdir: Path) -> dict:
    sources, lake = workdir / f"demo-{scale}", workdir / f"lake-{scale}"
    start = time.perf_counter()
    subprocess.run([BIN / "lawlake", "demo-data", "--out", sources, "--scale", str(scale), "--seed", str(seed)], check=True, capture_output=True)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    proc = subprocess.run([BIN / "lawlake", "run", "--sources", sources, "--lake", lake], capture_output=True, text=True)
    wall = time.perf_counter() - start
    stages: dict[str, dict[str, float]] = {}
    for line in proc.stdout.splitlines():
        m = STEP.match(line)
        if m:
            stages.setdefault(m.group(1), {})["job" if m.group(2) == "built" else "gate+publish"] = float(m.group(3))
    return {"scale": scale, "ok": proc.returncode == 0, "generate_s": generated, "run_s": wall, "stages": stages}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lawlake-bench-") as tmp:
        results = [run_scale(s, args.seed, Path(tmp)) for s in args.scales]
    print(f"{'scale':>6} {'result':>7} {'demo-data s':>12} {'lawlake run s':>14}   " + "  ".join(f"{s:>19}" for s in ("gather", "normalize", "integrate", "share", "open")))
    print(f"{'':>6} {'':>7} {'':>12} {'':>14}   " + "  ".join(f"{'job / gate+publish':>19}" for _ in range(5)))
    for r in results:
        cells = []
        for stage in ("gather", "normalize", "integrate", "share", "open"):
            s = r["stages"].get(stage, {})
            cells.append(f"{s.get('job', float('nan')):8.1f} / {s.get('gate+publish', float('nan')):6.1f}")
        print(f"{r['scale']:>6g} {'ok' if r['ok'] else 'FAILED':>7} {r['generate_s']:>12.1f} {r['run_s']:>14.1f}   " + "  ".join(f"{c:>19}" for c in cells))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
