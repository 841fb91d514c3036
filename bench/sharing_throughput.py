"""Delta Sharing throughput: the official client through our server vs reading the same Parquet files directly.

    .venv/bin/python bench/sharing_throughput.py [--rows 1000000] [--files 4] [--runs 3] [--seed 7]

1. Builds a share-like Delta table in a temporary lake: ``--rows`` rows with the columns
   and types of ``share.hz_procuratorate.case_chain`` (the policy's share contract),
   generated with numpy (unique ids, values drawn from pools, ~15 % nulls in the
   optional columns), written in ``--files`` commits so it has that many data files.
2. Grants the partner a token, writes its profile, starts the sharing server on
   127.0.0.1 (free port, a thread of this process).
3. Times, best of ``--runs``:
   (a) ``delta_sharing.load_as_pandas`` — protocol requests, signed file URLs,
       byte-range reads over HTTP, the client's own pandas conversion;
   (b) ``deltalake.DeltaTable(path).to_pandas()`` on the same table;
   (c) ``pyarrow.parquet`` on the same files with the client's conversion options
       (``date_as_object=True, use_threads=False``), i.e. the client's work minus HTTP.
   Row counts are checked equal, so a fast path cannot be a wrong one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["share_like_table", "main"]

PARTNER, TABLE = "hz_procuratorate", "case_chain"


def _strings(rng: np.random.Generator, rows: int, prefix: str, pool: int, null_rate: float) -> pa.Array:
    values = pa.array([f"{prefix}{i:08d}" for i in range(pool)])
    taken = values.take(pa.array(rng.integers(0, pool, rows)))
    return pa.array(taken.to_numpy(zero_copy_only=False), mask=rng.random(rows) < null_rate) if null_rate else taken


def share_like_table(rows: int, seed: int) -> pa.Table:
    """``rows`` rows shaped like the procuratorate's ``case_chain`` share (its contract's columns and types)."""
    from lawlake import policy

    p = policy.load(PARTNER)
    contract = policy.share_contract(p, p.table(TABLE))
    rng = np.random.default_rng(seed)
    epoch = (date(2015, 1, 1) - date(1970, 1, 1)).days
    columns = {}
    for c in contract.columns:
        nulls = 0.0 if not c.nullable else 0.15
        if c.name == "chain_id":
            columns[c.name] = pa.array([f"C{i:016x}" for i in range(rows)])
        elif c.type == "string":
            columns[c.name] = _strings(rng, rows, c.name[:4].upper(), 50_000 if "id" in c.name or "number" in c.name or "key" in c.name else 12, nulls)
        elif c.type == "date":
            days = rng.integers(epoch, epoch + 3650, rows).astype("int32")
            columns[c.name] = pa.array(days, type=pa.int32(), mask=rng.random(rows) < nulls).cast(pa.date32())
        elif c.type == "int":
            columns[c.name] = pa.array(rng.integers(0, 400, rows).astype("int32"), mask=rng.random(rows) < nulls)
        elif c.type == "boolean":
            columns[c.name] = pa.array(rng.random(rows) < 0.05)
        else:
            raise ValueError(f"no generator for {c.name}: {c.type}")
    return pa.table(columns)


def _best(runs: int, fn) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        n = len(fn())
        times.append(time.perf_counter() - start)
    return min(times), n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    import delta_sharing
    import pyarrow.parquet as pq
    from deltalake import DeltaTable, write_deltalake

    from lawlake import config, tables
    from lawlake.sharing.access import write_profile
    from lawlake.sharing.server import start_in_thread

    with tempfile.TemporaryDirectory(prefix="lawlake-bench-sharing-") as tmp:
        settings = config.load(lake=Path(tmp) / "lake")
        path = tables.location(settings.lake, f"share.{PARTNER}.{TABLE}")
        start = time.perf_counter()
        data = share_like_table(args.rows, args.seed)
        generated = time.perf_counter() - start
        step = -(-args.rows // args.files)
        for i in range(args.files):
            write_deltalake(str(path), data.slice(i * step, step), mode="append")
        dt = DeltaTable(str(path))
        files = dt.file_uris()
        size = sum(Path(f).stat().st_size for f in files)
        print(f"table: {args.rows:,} rows × {data.num_columns} columns in {len(files)} files, {size / 1e6:.1f} MB Parquet "
              f"(generated in {generated:.1f}s, written in {time.perf_counter() - start - generated:.1f}s)")

        with start_in_thread(settings) as srv:
            profile = write_profile(settings, PARTNER, Path(tmp) / "bench.share", endpoint=srv.endpoint)
            url = f"{profile}#{PARTNER}.justice.{TABLE}"
            results = {
                "delta_sharing.load_as_pandas (HTTP, our server)": _best(args.runs, lambda: delta_sharing.load_as_pandas(url)),
                "deltalake DeltaTable.to_pandas() (local)": _best(args.runs, lambda: DeltaTable(str(path)).to_pandas()),
                "pyarrow.parquet, client's conversion (local)": _best(
                    args.runs, lambda: pq.read_table(files).to_pandas(date_as_object=True, use_threads=False, split_blocks=False, self_destruct=True)
                ),
            }
            requests_made = [r for r in _audit(settings) if r["action"] == "file"]

        counts = {n for _, n in results.values()}
        if counts != {args.rows}:
            print(f"row counts differ: {counts}", file=sys.stderr)
            return 1
        width = max(map(len, results))
        print(f"\n{'method':<{width}}  {'wall s':>7}  {'rows/s':>12}  {'MB/s':>7}")
        for name, (seconds, n) in results.items():
            print(f"{name:<{width}}  {seconds:7.2f}  {n / seconds:12,.0f}  {size / 1e6 / seconds:7.1f}")
        ranged = [r for r in requests_made if r["status"] == 206]
        whole = [r for r in requests_made if r["method"] == "GET" and r["status"] == 200]
        heads = [r for r in requests_made if r["method"] == "HEAD"]
        # fsspec's HTTPFileSystem.isdir() GETs a file URL without a Range to look for an HTML listing and drops the
        # connection after the headers: those GETs move little data but each starts a file read on the server.
        print(f"\nfile requests per load of {len(files)} files: {len(ranged) / args.runs:.0f} range reads "
              f"(median {statistics.median(r['bytes'] for r in ranged) / 1e6:.1f} MB), "
              f"{len(whole) / args.runs:.0f} GETs without Range (client probing), {len(heads) / args.runs:.0f} HEAD")
        print(json.dumps({name: {"seconds": round(s, 3), "rows_per_second": round(n / s)} for name, (s, n) in results.items()}))
    return 0


def _audit(settings) -> list[dict]:
    from lawlake.sharing.store import ShareStore

    return ShareStore(settings.catalog_url).audit(limit=100_000)


if __name__ == "__main__":
    sys.exit(main())
