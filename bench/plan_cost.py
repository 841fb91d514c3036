"""What a rule costs the engine to plan, beside what it costs to run: the identity number's check character, side by side.

    .venv/bin/python bench/plan_cost.py [--rows 1000000] [--runs 3] [--seed 7]

Sail's planning time grows with the expression tree, and a small build pays it whatever its
rows (the issue's "normalize at 200 rows: planning, not data"). For each rule of
:mod:`lawlake.rules.spark` over a Delta table of ``--rows`` identity-number, date, name and
case-number strings (valid, 15-digit, mistyped and empty numbers; drawn by
:mod:`lawlake.demo.identity`, seeded), it times, best of ``--runs``:

- **plan**: writing the rule's column for ``LIMIT 0`` rows, which plans the whole query
  and reads nothing;
- **write**: writing the column for every row.

The identity number runs twice, side by side in the one session: with the check character
as it is (four base-2 readings of the digits, :func:`lawlake.rules.spark._check_character`)
and as it was written before, 17 weighted terms. Both outputs are compared row by row, so
that the faster form cannot be a wrong one. It measures; it asserts nothing but that
equality.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def _terms_check_character(first17):
    """The check character as 17 weighted terms: the form before the base-2 readings (kept here to compare)."""
    from pyspark.sql import functions as F

    from lawlake.rules import id_numbers

    total = None
    for i, weight in enumerate(id_numbers.WEIGHTS):
        term = (F.ascii(first17.substr(i + 1, 1)) - 48) * weight
        total = term if total is None else total + term
    return F.lit(id_numbers.CHECK_CHARACTERS).substr(total % 11 + 1, F.lit(1))


def _strings(rows: int, seed: int) -> list[tuple[str, str, str, str]]:
    from lawlake.demo import identity

    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(20000))
        number = identity.id_number("330102", birth, rng.randrange(1, 1000))
        kind = rng.random()
        if kind < 0.05:
            number = identity.legacy_15(number)
        elif kind < 0.10:
            number = identity.mistype(number, rng)
        elif kind < 0.12:
            number = ""
        out.append((number, birth.strftime("%Y年%m月%d日"), identity.draw_name(rng, rng.choice("MF"), False), f"（{birth.year}）浙0102刑初{rng.randrange(1, 999)}号"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from lawlake import engine, tables
    from lawlake.rules import spark as R

    spark = engine.session()
    work = Path(tempfile.mkdtemp(prefix="lawlake-plan-cost-"))
    try:
        strings = _strings(min(args.rows, 100_000), args.seed)
        base = spark.createDataFrame(strings, "id_number string, birth string, name string, case_number string")
        copies = -(-args.rows // len(strings))
        source = base
        for _ in range(copies - 1):
            source = source.unionByName(base)
        tables.write(source.limit(args.rows), work / "source")
        src = tables.read(spark, work / "source")

        def timed(df, path: Path) -> float:
            best = float("inf")
            for _ in range(args.runs):
                start = time.perf_counter()
                tables.write(df, path)
                best = min(best, time.perf_counter() - start)
            return best

        terms = _terms_check_character
        rules = [  # (name, label, column, the check character's form while it is planned)
            ("id_now", "id_number (base-2 readings)", lambda: R.id_number(F.col("id_number")), R._check_character),
            ("id_before", "id_number (17 terms, before)", lambda: R.id_number(F.col("id_number")), terms),
            ("date", "parse_date", lambda: R.parse_date(F.col("birth")), R._check_character),
            ("name", "person_name", lambda: R.person_name(F.col("name")), R._check_character),
            ("case", "case_number", lambda: R.case_number(F.col("case_number")), R._check_character),
        ]
        print(f"{tables.count(spark, work / 'source'):,} rows, best of {args.runs}\n")
        print(f"{'rule':32s} {'plan s':>8s} {'write s':>8s}")
        current = R._check_character
        for name, label, column, check in rules:
            R._check_character = check
            try:
                df = src.select(column().alias("x"))
            finally:
                R._check_character = current
            plan = timed(df.limit(0), work / "plan")
            write = timed(df, work / name)
            print(f"{label:32s} {plan:8.3f} {write:8.3f}")
        now, before = tables.read(spark, work / "id_now"), tables.read(spark, work / "id_before")
        differ = now.exceptAll(before).count() + before.exceptAll(now).count()
        print(f"\nid_number, the two forms: {differ} differing rows")
        if differ:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
