"""Normalize throughput on the embedded Sail engine: built-in Spark expressions vs Python UDFs.

    .venv/bin/python bench/normalize_throughput.py [--rows 1000000] [--runs 2] [--seed 7] [--no-arrow] [--no-court-path] [--per-rule]

1. Generates the demo agencies (scale 1) and collects every raw value they
   deliver, read with the gather stage's own readers: case numbers (court and
   custody, variants and legacy forms included), identity numbers (15-digit,
   mistyped and empty ones included), dates (every date column: ISO, slashes,
   compact, dotted, 年月日, with a time), names (with variants) and charges (with
   variant spellings). The defects come at the generator's rates.
2. Samples ``--rows`` bronze-like rows from those pools (numpy, seeded) and
   writes them once as a Delta table.
3. Times, on that table, the five rules of :mod:`lawlake.rules.spark` applied
   together — ``case_number``, ``id_number``, ``parse_date``, ``person_name``,
   ``charge_code`` — written to a Delta table (as the normalize stage does):
   (a) the built-in Spark expressions, (b) their Python-UDF twins (``*_udf``,
   pickled rows) and (c) the same UDFs Arrow-batched (``use_arrow=True``). Each
   variant runs ``--runs`` times; the best wall time counts. The outputs are
   compared column by column (non-null counts) so that a faster variant cannot
   be a wrong one.
4. Times the whole :func:`jobs.normalize.build_court_defendants` path (parse the
   court case, its number and charge, explode the parties, rank the versions,
   parse the persons, check every rule) over ``--rows`` bronze court lines tiled
   from the demo's, written to Delta — with the built-ins, and with the UDF twins
   swapped in (``jobs.normalize.R`` patched for the run; no file is changed).
5. With ``--per-rule``: each rule alone, built-in vs pickled Python UDF.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa

__all__ = ["Pools", "collect_pools", "bronze_rules_table", "bronze_court_table", "time_variant", "main"]

DATE_FIELDS = {
    "police": ("occurred_on", "filed_on", "detained_on", "arrested_on", "transferred_on"),
    "reviews": ("birth_date", "received_on", "decided_on"),
    "custody": ("admitted_on", "released_on"),
}


@dataclass
class Pools:
    """Raw values as the agencies deliver them (None where a field was empty)."""

    case_numbers: list[str | None]
    id_numbers: list[str | None]
    dates: list[str | None]
    names: list[str | None]
    charges: list[str | None]
    court_lines: list[dict]  # bronze court_cases rows (fields only)


def collect_pools(sources: Path) -> Pools:
    """Every raw value of the demo sources, read with jobs.gather's readers (as bronze holds them)."""
    from jobs import gather

    police = {
        table: [r.fields for r in gather.read_police_table(gather.police_url(sources), table, after=None, key_fields=())]
        for table in ("cases", "suspects")
    }
    reviews = [r.fields for p in sorted(sources.glob("procuratorate/*.csv")) for r in gather.read_reviews_csv(p) if isinstance(r, gather.Record)]
    courts = [r.fields for p in sorted(sources.glob("courts/*.jsonl")) for r in gather.read_court_jsonl(p) if isinstance(r, gather.Record)]
    custody = [r.fields for p in sorted(sources.glob("corrections/*.xlsx")) for r in gather.read_custody_xlsx(p) if isinstance(r, gather.Record)]
    parties = [p for line in courts for p in json.loads(line["parties"] or "[]")]
    return Pools(
        case_numbers=[r["case_number"] for r in courts + custody],
        id_numbers=[r["id_number"] for r in police["suspects"] + reviews + parties + custody],
        dates=[r[f] for r in police["cases"] for f in DATE_FIELDS["police"] if r[f]]
        + [r[f] for r in reviews for f in DATE_FIELDS["reviews"]]
        + [r[f] for r in custody for f in DATE_FIELDS["custody"] if r[f]],
        names=[r["name"] for r in police["suspects"] + parties + custody] + [r["suspect_name"] for r in reviews],
        charges=[r["charge"] for r in police["cases"] + reviews + courts],
        court_lines=courts,
    )


def _sample(pool: list, n: int, rng: np.random.Generator) -> pa.Array:
    values = np.array(pool, dtype=object)[rng.integers(0, len(pool), n)]
    return pa.array(values, type=pa.string())


def bronze_rules_table(pools: Pools, rows: int, seed: int) -> pa.Table:
    """``rows`` rows of independently sampled raw values, one column per rule."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "raw_case_number": _sample(pools.case_numbers, rows, rng),
            "raw_id_number": _sample(pools.id_numbers, rows, rng),
            "raw_date": _sample(pools.dates, rows, rng),
            "raw_name": _sample(pools.names, rows, rng),
            "raw_charge": _sample(pools.charges, rows, rng),
        }
    )


def bronze_court_table(pools: Pools, rows: int, seed: int) -> pa.Table:
    """``rows`` bronze court_cases rows: the demo's lines sampled with replacement, each with its own record hash.

    A line drawn several times is several versions of its case (same case number),
    which the job ranks; the lineage columns follow the bronze contract.
    """
    from lawlake import contracts

    rng = np.random.default_rng(seed)
    lines = np.array(pools.court_lines, dtype=object)[rng.integers(0, len(pools.court_lines), rows)]
    schema = contracts.arrow_schema(contracts.load("bronze.court_cases"))
    ingested = datetime(2025, 1, 1, tzinfo=UTC)
    columns = {}
    for field in schema:
        if field.name in ("_source", "_source_file", "_batch_id"):
            values = ["courts.cases" if field.name == "_source" else "bench"] * rows
        elif field.name == "_row_number":
            values = np.arange(1, rows + 1)
        elif field.name == "_record_hash":
            values = [f"{i:064x}" for i in range(rows)]
        elif field.name == "_ingested_at":
            values = [ingested] * rows
        else:
            values = [line.get(field.name) for line in lines]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.table(columns, schema=schema)


# -- the variants -------------------------------------------------------------------------------


def builtin_rules():
    """The built-in Spark expressions (lawlake.rules.spark)."""
    from lawlake.rules import spark as R

    return R


def udf_rules(use_arrow: bool):
    """A stand-in for lawlake.rules.spark whose five rules are the Python-UDF twins."""
    from lawlake.rules import spark as R

    shim = types.SimpleNamespace(**{name: getattr(R, name) for name in R.__all__})
    for name in ("case_number", "id_number", "parse_date", "person_name", "charge_code"):
        twin = getattr(R, f"{name}_udf")
        setattr(shim, name, lambda col, _twin=twin: _twin(col, use_arrow=use_arrow))
    return shim


RULE_INPUTS = {  # rule → the raw column it reads
    "case_number": "raw_case_number",
    "id_number": "raw_id_number",
    "parse_date": "raw_date",
    "person_name": "raw_name",
    "charge_code": "raw_charge",
}


def rules_frame(df, R):
    """The five rules applied together, as the normalize stage applies them."""
    from pyspark.sql import functions as F

    return df.select(*[getattr(R, rule)(F.col(raw)).alias(rule) for rule, raw in RULE_INPUTS.items()])


def one_rule_frame(df, R, rule: str):
    from pyspark.sql import functions as F

    return df.select(getattr(R, rule)(F.col(RULE_INPUTS[rule])).alias(rule))


def court_path_frame(df, R):
    """jobs.normalize.build_court_defendants with the rules module ``R``."""
    from jobs import normalize

    with mock.patch.object(normalize, "R", R):  # the plan is built now; evaluation needs nothing from Python's R
        return normalize.build_court_defendants(df, normalize.reference_tables(df.sparkSession))


@dataclass
class Timing:
    name: str
    rows: int
    seconds: list[float]
    non_null: dict[str, int]

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.best


def time_variant(spark, name: str, build: Callable, source: Path, out: Path, runs: int) -> Timing:
    """Build the plan over the Delta table at ``source``, write it to Delta ``runs`` times, time each write."""
    from pyspark.sql import functions as F

    seconds = []
    for i in range(runs):
        target = out / f"{name.replace(' ', '_')}_{i}"
        start = time.perf_counter()
        build(spark.read.format("delta").load(str(source))).write.format("delta").mode("overwrite").save(str(target))
        seconds.append(time.perf_counter() - start)
    written = spark.read.format("delta").load(str(target))
    counts = written.select(F.count(F.lit(1)).alias("rows"), *[F.count(c).alias(c) for c in _leaf_columns(written.schema)]).first().asDict()
    for i in range(runs):
        shutil.rmtree(out / f"{name.replace(' ', '_')}_{i}", ignore_errors=True)
    return Timing(name, counts.pop("rows"), seconds, counts)


def _leaf_columns(schema, prefix: str = "") -> list[str]:
    """Every column and struct field (``id_number.birth_date``), for comparing outputs field by field."""
    from pyspark.sql.types import StructType

    names = []
    for f in schema.fields:
        name = f"{prefix}{f.name}"
        names.append(name)
        if isinstance(f.dataType, StructType):
            names += _leaf_columns(f.dataType, prefix=f"{name}.")
    return names


# -- printing ---------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A fixed-width text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *[line(r) for r in rows]])


def report(title: str, timings: list[Timing]) -> str:
    base = timings[0].best
    rows = [
        [t.name, f"{t.rows:,}", " / ".join(f"{s:.2f}" for s in t.seconds), f"{t.best:.2f}", f"{t.rows_per_second:,.0f}", f"{t.best / base:.1f}x"]
        for t in timings
    ]
    text = _table(["variant", "rows out", "runs (s)", "best (s)", "rows/s", f"time vs {timings[0].name}"], rows)
    return f"{title}\n{text}\n{compare(timings)}"


def compare(timings: list[Timing]) -> str:
    """Which variants' outputs differ from the first one's, by non-null count per column and struct field."""
    base = timings[0]
    lines = []
    for t in timings[1:]:
        diff = {c: (base.non_null[c], n) for c, n in t.non_null.items() if base.non_null.get(c) != n}
        if diff:
            shown = ", ".join(f"{c} {a:,} vs {b:,}" for c, (a, b) in list(diff.items())[:6])
            lines.append(f"OUTPUT DIFFERS: {t.name} vs {base.name}, non-null values: {shown}")
    return "\n".join(lines) or "outputs agree (non-null count of every column and struct field)"


def per_rule_report(spark, work: Path, runs: int) -> str:
    """Each rule alone over the rules table: built-in vs pickled Python UDF."""
    rows = []
    for rule in RULE_INPUTS:
        pair = [
            time_variant(spark, f"{name} {rule}", lambda df, R=R, rule=rule: one_rule_frame(df, R, rule), work / "bronze_rules", work / "out", runs)
            for name, R in (("built-in", builtin_rules()), ("python udf", udf_rules(False)))
        ]
        rows.append([rule, f"{pair[0].best:.2f}", f"{pair[0].rows_per_second:,.0f}", f"{pair[1].best:.2f}", f"{pair[1].rows_per_second:,.0f}", f"{pair[1].best / pair[0].best:.1f}x"])
    table = _table(["rule", "built-in (s)", "built-in rows/s", "udf (s)", "udf rows/s", "udf time vs built-in"], rows)
    return f"Each rule alone, written to Delta (best of {runs})\n{table}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2, help="runs per variant; the best counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-arrow", action="store_true", help="skip the Arrow-batched UDF variant")
    parser.add_argument("--no-court-path", action="store_true", help="skip timing build_court_defendants")
    parser.add_argument("--per-rule", action="store_true", help="also time each rule alone, built-in vs Python UDF")
    parser.add_argument("--workdir", type=Path, help="where the demo and the tables go (default: a temporary directory)")
    args = parser.parse_args(argv)

    os.environ.setdefault("RUST_LOG", "error")
    from deltalake import write_deltalake

    from lawlake import demo, engine

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="normalize-throughput-")
    work = args.workdir or Path(tmp.name)
    try:
        start = time.perf_counter()
        demo.generate(work / "sources", scale=1, seed=args.seed)
        pools = collect_pools(work / "sources")
        write_deltalake(str(work / "bronze_rules"), bronze_rules_table(pools, args.rows, args.seed), mode="overwrite")
        print(
            f"input: {args.rows:,} rows sampled from the demo's raw values (scale 1, seed {args.seed}): "
            f"{len(pools.case_numbers):,} case numbers, {len(pools.id_numbers):,} identity numbers, {len(pools.dates):,} dates, "
            f"{len(pools.names):,} names, {len(pools.charges):,} charges; prepared in {time.perf_counter() - start:.1f}s\n"
        )
        spark = engine.session()
        variants = [("built-in", builtin_rules()), ("python udf", udf_rules(False))]
        if not args.no_arrow:
            variants.append(("arrow udf", udf_rules(True)))
        timings = [time_variant(spark, name, lambda df, R=R: rules_frame(df, R), work / "bronze_rules", work / "out", args.runs) for name, R in variants]
        print(report("Five rules (case_number, id_number, parse_date, person_name, charge_code) written to Delta", timings))
        if not args.no_court_path:
            write_deltalake(str(work / "bronze_courts"), bronze_court_table(pools, args.rows, args.seed), mode="overwrite")
            court = [time_variant(spark, name, lambda df, R=R: court_path_frame(df, R), work / "bronze_courts", work / "out", args.runs) for name, R in variants]
            print()
            print(report(f"jobs.normalize.build_court_defendants over {args.rows:,} bronze court lines, written to Delta (rows out = defendants)", court))
        if args.per_rule:
            print()
            print(per_rule_report(spark, work, args.runs))
    finally:
        engine.stop()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
