"""Throughput and memory of the whole lifecycle per demo scale, against the gather floor.

    .venv/bin/python bench/scale.py --scales 1 10 100 [--repeat N] [--airflow] [--bench-dir DIR]

For each scale (demo data generated once with ``lawlake demo-data`` and cached under
``--bench-dir``, default ``./.bench``), each repeat measures, every part in a child
process of its own so one part's memory never counts in another's:

1. **the floor**: read every source file once, hash it (SHA-256) and write each
   source's records to Parquet once (pyarrow.csv, pyarrow.json, python-calamine,
   sqlite3): what reading the deliveries costs with no pipeline at all;
2. **the full run**: a fresh lake, the lifecycle in-process
   (:func:`lawlake.pipeline.run_lifecycle`) over every source but the last delivery
   days' (the *new day*, held back so that step 3 can deliver it); wall, source
   records/s, and the peak RSS of each stage (sampled in a thread every 50 ms, summed over
   the process and gather's worker processes; Sail runs inside the process, so that is
   the engine's memory too);
3. **a new day's files**: the same lake, every source now (≈0.1% more records: the
   files of the last delivery days and the police rows updated on them);
4. **the same sources again**: the same lake, nothing new;
5. with ``--airflow``, **the full run through Airflow**: the same sources as 2 on
   another fresh lake, by ``lawlake run`` (``dags test``; memory summed over the
   process tree), measured beside 2 so that the ratio and the target (1.3 × in-process
   + 20 s) come from one sitting.

It prints the ratio of 3 and 4 to the full run, and how many Delta tables got a new
version in each, side by side. With ``--repeat N`` every figure is a range (min–max).
It measures; it asserts nothing (exit 1 only when a run fails).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAGES = ("gather", "normalize", "integrate", "share", "open")
NEW_DAY_SHARE = 0.001  # the held-back "new day": at least this share of the source records


# -- memory ------------------------------------------------------------------------------


def _rss(pids: list[int] | None = None) -> int:
    """Resident bytes of this process, or the sum over ``pids`` (a process tree)."""
    total = 0
    for pid in pids or ["self"]:  # type: ignore[list-item]
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user and system) of the processes ``pids`` so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / _TICK


def _children_cpu() -> float:
    """CPU seconds of this process's running descendants (gather's worker processes)."""
    return _cpu([pid for pid in _tree(os.getpid()) if pid != os.getpid()])


def _tree(root: int) -> list[int]:
    """``root`` and every descendant process (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


class Sampler(threading.Thread):
    """Peak RSS per phase: :meth:`phase` names the phase now running; samples every ``interval`` s."""

    def __init__(self, root: int | None = None, interval: float = 0.05, *, tree_cpu: bool = False):
        super().__init__(daemon=True)
        self.root, self.interval, self.tree_cpu = root, interval, tree_cpu
        self.current = "start"
        self.peaks: dict[str, int] = {}
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds of this process (every thread: Sail's too; tree_cpu: its children too) per phase
        self._halt = threading.Event()

    def _cpu(self) -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        if self.tree_cpu:  # and gather's worker processes: the running ones, and those that ended (they were waited for)
            c = resource.getrusage(resource.RUSAGE_CHILDREN)
            return u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime + _children_cpu()
        return u.ru_utime + u.ru_stime

    def phase(self, name: str) -> None:
        now, cpu = time.perf_counter(), self._cpu()
        self.cpu[self.current] = cpu - self.cpu.get(self.current, 0.0)
        self.cpu[name] = cpu  # the phase's CPU at its start, until it ends
        self.ends[self.current] = now
        self.current = name
        self.starts.setdefault(name, now)
        self._sample()

    def _sample(self) -> None:
        rss = _rss(_tree(self.root)) if self.root else _rss()
        self.peaks[self.current] = max(self.peaks.get(self.current, 0), rss)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self._sample()

    def stop(self) -> dict:
        self._sample()
        self.ends[self.current] = time.perf_counter()
        self.cpu[self.current] = self._cpu() - self.cpu.get(self.current, 0.0)
        self._halt.set()
        self.join()
        return {k: {"peak_rss": v, "seconds": round(self.ends.get(k, 0) - self.starts.get(k, 0), 3), "cpu": round(self.cpu.get(k, 0.0), 3)}
                for k, v in self.peaks.items() if k != "start"}


# -- the demo data and its new day ------------------------------------------------------


def _generator_digest() -> str:
    """A digest of the demo generator's code: cached sources a changed generator would not write are not reused."""
    h = hashlib.sha256()
    for path in sorted((REPO / "lawlake" / "demo").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:10]


def demo(scale: float, seed: int, bench: Path) -> Path:
    """The demo sources of ``scale``, generated once per generator version (``lawlake demo-data``) and cached."""
    out = bench / f"demo-s{scale:g}-seed{seed}-{_generator_digest()}"
    if not (out / "_truth" / "summary.json").is_file():
        subprocess.run([sys.executable, "-m", "lawlake.cli", "demo-data", "--out", str(out), "--scale", str(scale), "--seed", str(seed)],
                       check=True, env=_env(), cwd=REPO)
    return out


def _day_of(path: Path) -> date | None:
    stem = path.stem.rsplit("_", 1)[-1]
    return date(int(stem[:4]), int(stem[4:6]), int(stem[6:8])) if len(stem) == 8 and stem.isdigit() else None


def _records_in(path: Path) -> int:
    lines = path.read_bytes().count(b"\n")
    return lines - 1 if path.suffix == ".csv" else lines


def hold_back_new_day(full: Path) -> tuple[Path, dict]:
    """The sources without their last delivery days (a copy of hard links beside ``full``), and what was held back.

    Days are taken from the latest back until they hold at least ``NEW_DAY_SHARE`` of the
    records: the daily review and court files of those days, and the police rows
    updated on them (deleted from the copy's database). Monthly custody workbooks stay.
    """
    summary = json.loads((full / "_truth" / "summary.json").read_text())
    total = summary["records_total"]
    daily = sorted(((d, p) for p in [*full.glob("procuratorate/*.csv"), *full.glob("courts/*.jsonl")] if (d := _day_of(p))), reverse=True)
    db = sqlite3.connect(f"file:{full / 'police' / 'police.db'}?mode=ro", uri=True)
    police = ("cases", "suspects", "transfers")

    def police_since(day: date) -> int:
        return sum(db.execute(f"SELECT count(*) FROM {t} WHERE updated_at >= ?", (day.isoformat(),)).fetchone()[0] for t in police)

    held, files, cut = 0, [], daily[0][0]
    for d, p in daily:
        if d < cut and held + police_since(cut) >= NEW_DAY_SHARE * total:
            break
        cut = d
        files.append(p)
        held += _records_in(p)
    held_police = police_since(cut)
    db.close()
    before = full.with_name(full.name + f"-before-{cut:%Y%m%d}")
    if not (before / ".complete").is_file():
        shutil.rmtree(before, ignore_errors=True)
        skip = {p.resolve() for p in files}
        for p in full.rglob("*"):
            target = before / p.relative_to(full)
            if p.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif p.resolve() not in skip:
                target.parent.mkdir(parents=True, exist_ok=True)
                if p.name == "police.db":
                    shutil.copyfile(p, target)
                else:
                    os.link(p, target)
        con = sqlite3.connect(before / "police" / "police.db")
        for t in police:
            con.execute(f"DELETE FROM {t} WHERE updated_at >= ?", (cut.isoformat(),))
        con.commit()
        con.execute("VACUUM")
        con.close()
        (before / ".complete").write_text("")
    return before, {"from": cut.isoformat(), "files": len(files), "records": held + held_police, "total": total,
                    "share": (held + held_police) / total}


# -- the floor ---------------------------------------------------------------------------


def floor(sources: Path, out: Path) -> dict:
    """Read every source file once, hash it, write each source's records to Parquet once; seconds per source."""
    import pandas  # noqa: F401  # pyarrow imports it on first use: import time is not reading time
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq
    from python_calamine import CalamineWorkbook

    from jobs.gather import CUSTODY_HEADER, REVIEW_HEADER

    out.mkdir(parents=True, exist_ok=True)
    cpu_start = time.process_time()
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}

    def timed(name: str, tables: list, digests: list) -> None:
        if tables:  # every column as text, the union of the files' columns (a damaged file's lines in "line")
            names = list(dict.fromkeys(n for t in tables for n in t.schema.names))
            schema = pa.schema([(n, pa.string()) for n in names])
            whole = [pa.table({n: t[n].cast(pa.string()) if n in t.schema.names else pa.nulls(t.num_rows, pa.string()) for n in names}, schema=schema) for t in tables]
            pq.write_table(pa.concat_tables(whole), out / f"{name}.parquet")
        rows[name] = sum(t.num_rows for t in tables)

    start = time.perf_counter()
    tables, digests = [], []
    review_types = {n: pa.string() for n in REVIEW_HEADER}
    for p in sorted(sources.glob("procuratorate/reviews_*.csv")):
        data = p.read_bytes()
        digests.append(hashlib.sha256(data).hexdigest())
        try:
            tables.append(pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(encoding="gb18030", use_threads=False),
                                         convert_options=pacsv.ConvertOptions(column_types=review_types)))
        except pa.ArrowInvalid:  # a damaged export: read as text lines
            tables.append(pa.table({"line": data.decode("gb18030", errors="replace").splitlines()}))
    timed("procuratorate.reviews", tables, digests)
    seconds["procuratorate.reviews"] = time.perf_counter() - start

    start = time.perf_counter()
    tables, digests = [], []
    for p in sorted(sources.glob("courts/court_cases_*.jsonl")):
        data = p.read_bytes()
        digests.append(hashlib.sha256(data).hexdigest())
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        try:
            t = pajson.read_json(pa.BufferReader(data), read_options=pajson.ReadOptions(use_threads=False))
            t = t.set_column(t.schema.get_field_index("parties"), "parties", pa.array([json.dumps(v, ensure_ascii=False, default=str) for v in t["parties"].to_pylist()])) if "parties" in t.schema.names else t
            tables.append(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            tables.append(pa.table({"line": [ln.decode("utf-8", errors="replace") for ln in lines]}))
    timed("courts.cases", tables, digests)
    seconds["courts.cases"] = time.perf_counter() - start

    start = time.perf_counter()
    tables, digests = [], []
    for p in sorted(sources.glob("corrections/custody_*.xlsx")):
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
        try:
            wb = CalamineWorkbook.from_path(str(p))
            cells = wb.get_sheet_by_index(0).to_python()
        except Exception:
            continue
        width = len(CUSTODY_HEADER)
        cols = list(zip(*[(list(r) + [None] * width)[:width] for r in cells[1:]])) or [[]] * width
        tables.append(pa.table({n: pa.array([None if v in ("", None) else str(v) for v in col], pa.string()) for n, col in zip(CUSTODY_HEADER.values(), cols)}))
    timed("corrections.custody", tables, digests)
    seconds["corrections.custody"] = time.perf_counter() - start

    start = time.perf_counter()
    db = sources / "police" / "police.db"
    hashlib.sha256(db.read_bytes()).hexdigest()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    for t in ("cases", "suspects", "transfers"):
        cur = con.execute(f"SELECT * FROM {t}")
        names = [d[0] for d in cur.description]
        cols = list(zip(*cur.fetchall())) or [[]] * len(names)
        timed(f"police.{t}", [pa.table({n: pa.array(list(c), pa.string()) for n, c in zip(names, cols)})], [])
    con.close()
    seconds["police"] = time.perf_counter() - start
    return {"seconds": round(sum(seconds.values()), 3), "cpu_seconds": round(time.process_time() - cpu_start, 3),
            "per_source": {k: round(v, 3) for k, v in seconds.items()}, "rows": rows}


# -- one lifecycle run -------------------------------------------------------------------


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("RUST_LOG", "warn")
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    env.setdefault("TQDM_DISABLE", "1")
    return env


def delta_versions(lake: Path) -> dict[str, int]:
    """Every Delta table under the lake (candidates and work tables aside): its newest commit version."""
    out = {}
    for log in lake.rglob("_delta_log"):
        rel = log.parent.relative_to(lake)
        if rel.parts and rel.parts[0].startswith("_"):
            continue
        commits = [int(p.name.split(".")[0]) for p in log.glob("*.json") if p.name.split(".")[0].isdigit()]
        if commits:
            out[str(rel)] = max(commits)
    return out


VOLATILE = frozenset({"_batch_id", "_ingested_at", "run_id", "quarantined_at"})  # set by the run, not by the data


def table_fingerprints(lake: Path, sources: Path | None = None) -> dict[str, dict]:
    """Every published table's rows and an order-free SHA-256 of its contents, for comparing two lakes built from the same sources.

    Columns the run sets (batch, run id, ingest and quarantine times) are left out, and the
    sources folder's path is replaced by ``<sources>`` in every text value, so two runs of
    the same sources in different folders fingerprint the same.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    out = {}
    for name in sorted(delta_versions(lake)):
        t = DeltaTable(str(lake / name)).to_pyarrow_table()
        t = t.select([c for c in t.schema.names if c not in VOLATILE])
        if sources is not None:
            cols = [pc.replace_substring(t[c], str(sources), "<sources>") if pa.types.is_string(t.schema.field(c).type) else t[c] for c in t.schema.names]
            t = pa.table(cols, names=t.schema.names)
        lines = sorted(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) for row in t.to_pylist())
        out[name] = {"rows": len(lines), "sha256": hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()}
    return out


FINGERPRINT_DATE = date(2025, 1, 1)  # a fixed data date: ages, time limits and seal statuses do not move with the calendar
FINGERPRINT_KEY = "bench-fingerprint-key"  # a fixed lake key: pseudonyms are the same in every lake


def fingerprint_run(sources: Path, lake: Path, stages: tuple[str, ...] = STAGES) -> dict[str, dict]:
    """Run the lifecycle (``stages``) in-process on a fresh ``lake`` with a fixed data date and key; the fingerprints of its tables."""
    from lawlake import config, pipeline

    os.environ["LAWLAKE_SECRET_KEY"] = FINGERPRINT_KEY
    try:
        pipeline.run_lifecycle(config.load(lake), "fingerprint", sources=sources, data_date=FINGERPRINT_DATE, stages=stages)
    finally:
        del os.environ["LAWLAKE_SECRET_KEY"]
    return table_fingerprints(lake, sources)


def lifecycle_in_process(sources: Path, lake: Path, profile: Path | None = None) -> dict:
    """Run the whole lifecycle in this process and sample its memory per stage (``profile``: a pyinstrument report there)."""
    import logging
    import re

    from lawlake import config, engine, pipeline

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logging.getLogger("lawlake").addHandler(Keep())
    logging.getLogger("lawlake").setLevel(logging.INFO)
    sampler = Sampler(root=os.getpid(), tree_cpu=True)  # this process and gather's worker processes
    sampler.start()
    settings = config.load(lake)
    run_id = "bench-" + time.strftime("%Y%m%dT%H%M%S")
    start = time.perf_counter()
    error = None
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    from lawlake.cli import demo_legal_api

    try:  # the demo legal services API served as `lawlake run` serves it
        with demo_legal_api(sources, airflow=False, echo=lambda *_: None):
            pipeline.run_lifecycle(settings, run_id, sources=sources, progress=lambda msg: sampler.phase(msg.split()[0]))
    except Exception as exc:  # reported, and the bench exits 1
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    if profiler is not None and profile is not None:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_text(unicode=True, show_all=False))
        profile.with_suffix(".html").write_text(profiler.output_html())
    stages = sampler.stop()
    engine.stop()
    for line in lines:
        m = re.match(r"\[lawlake\] (\w+): (built \d+ candidate|published release)\D.* in ([0-9.]+)s", line)
        if m and m.group(1) in stages:
            stages[m.group(1)]["job" if m.group(2).startswith("built") else "gate"] = float(m.group(3))
    return {"wall": round(wall, 3), "stages": stages, "error": error}


def lifecycle_airflow(sources: Path, lake: Path) -> dict:
    """``lawlake run`` through Airflow; memory summed over its process tree, stages from its progress lines."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lawlake.cli", "run", "--sources", str(sources), "--lake", str(lake)], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    sampler = Sampler(root=proc.pid, interval=0.25)
    sampler.start()
    out = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        word = line.strip().split(":", 1)[0]
        if word in STAGES and word != sampler.current:
            sampler.phase(word)
    code = proc.wait()
    wall = time.perf_counter() - start
    return {"wall": round(wall, 3), "stages": sampler.stop(), "error": None if code == 0 else "".join(out[-20:])}


def child(argv: list[str]) -> int:
    """Entry of a child process: ``--child floor|run|airflow SOURCES OUT [LAKE]``; the result as JSON on the last line."""
    kind, sources, out = argv[0], Path(argv[1]), Path(argv[2])
    if kind == "floor":
        result = floor(sources, out)
    elif kind == "fingerprint":
        stages = tuple(argv[4].split(",")) if len(argv) > 4 else STAGES
        out.write_text(json.dumps(fingerprint_run(sources, Path(argv[3]), stages), indent=1, sort_keys=True) + "\n")
        return 0
    else:
        lake = Path(argv[3])
        before = delta_versions(lake) if lake.exists() else {}
        profile = Path(argv[4]) if len(argv) > 4 else None
        result = lifecycle_airflow(sources, lake) if kind == "airflow" else lifecycle_in_process(sources, lake, profile)
        after = delta_versions(lake)
        result["new_versions"] = sorted(t for t, v in after.items() if before.get(t) != v)
        result["tables"] = len(after)
    result["peak_rss"] = max([s["peak_rss"] for s in result.get("stages", {}).values()] + [_rss()])
    # CPU seconds of this process (Sail's threads included; through Airflow, of the children waited for; in process,
    # of gather's workers still running) and the machine's load: on a shared machine wall time says as much about
    # the neighbours as about the pipeline.
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    result["cpu"] = round(sum(u.ru_utime + u.ru_stime for u in usage) + _children_cpu(), 3)
    result["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


def _spawn(kind: str, *args: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)], env=_env(), cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:], "wall": float("nan"), "stages": {}}
    return json.loads(lines[-1])


# -- one scale ---------------------------------------------------------------------------


def measure(scale: float, seed: int, bench: Path, *, airflow: bool, profile: Path | None = None, only_full: bool = False) -> dict:
    full = demo(scale, seed, bench)
    before, new_day = hold_back_new_day(full)
    skipped = {"wall": float("nan"), "stages": {}, "skipped": True}
    prof = [profile / f"s{scale:g}-{name}.txt" for name in ("full", "day", "again")] if profile else []
    with tempfile.TemporaryDirectory(prefix="scale-", dir=bench) as tmp:
        work = Path(tmp)
        fl = _spawn("floor", full, work / "floor")
        first = _spawn("run", before, work / "unused", work / "lake", *prof[:1])
        day = skipped if only_full else _spawn("run", full, work / "unused", work / "lake", *prof[1:2])
        again = skipped if only_full else _spawn("run", full, work / "unused", work / "lake", *prof[2:3])
        through_airflow = _spawn("airflow", before, work / "unused", work / "airflow-lake") if airflow else skipped
    records = new_day["total"] - new_day["records"]
    return {"scale": scale, "records": records, "new_day": new_day, "floor": fl, "full": first, "day": day, "again": again, "airflow": through_airflow,
            "records_per_s": records / first["wall"] if first.get("wall") else float("nan")}


# -- printing ----------------------------------------------------------------------------


def _span(values: list[float], fmt: str) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def _new_day_floor(results: list[list[dict]]) -> None:
    """The smallest scale's new day (a few records through every stage: what a new day costs whatever its size) against
    10% of the largest scale's full run, the issue's bound for a new day there (repeats paired in order)."""
    by_scale = sorted(results, key=lambda runs: runs[0]["scale"])
    small, large = by_scale[0], by_scale[-1]
    if small is large:
        return
    days = [r["day"]["wall"] for r in small]
    bounds = [0.1 * r["full"]["wall"] for r in large]
    print(f"\nnew day's fixed cost: scale {small[0]['scale']:g}'s new day ({small[0]['new_day']['records']:,} records) took {_span(days, '.1f')} s; "
          f"10% of scale {large[0]['scale']:g}'s full run is {_span(bounds, '.1f')} s ({_span([d / b for d, b in zip(days, bounds)], '.2f')}×)")


def report(results: list[list[dict]], airflow: bool) -> None:
    gib = 1024**3
    print(f"\nlifecycle in-process (pipeline.run_lifecycle); ranges over {len(results[0])} repeat(s)\n")
    head = (f"{'scale':>6} {'records':>10} {'wall s':>12} {'records/s':>14} {'cpu s':>10} {'records/cpu s':>14} {'load':>6} {'peak GB':>10} "
            f"{'gather s':>12} {'floor s':>10} {'gather/floor':>13} {'cpu: g/floor':>13}")
    print(head)
    for runs in results:
        r0 = runs[0]
        gather = [r["full"]["stages"].get("gather", {}).get("seconds", float("nan")) for r in runs]
        print(f"{r0['scale']:>6g} {r0['records']:>10,} {_span([r['full']['wall'] for r in runs], '.1f'):>12} {_span([r['records_per_s'] for r in runs], ',.0f'):>14} "
              f"{_span([r['full'].get('cpu', float('nan')) for r in runs], '.1f'):>10} {_span([r['records'] / r['full']['cpu'] for r in runs if r['full'].get('cpu')], ',.0f'):>14} "
              f"{_span([r['full'].get('load', float('nan')) for r in runs], '.1f'):>6} "
              f"{_span([r['full'].get('peak_rss', float('nan')) / gib for r in runs], '.2f'):>10} {_span(gather, '.1f'):>12} "
              f"{_span([r['floor'].get('seconds', float('nan')) for r in runs], '.1f'):>10} "
              f"{_span([g / r['floor']['seconds'] for g, r in zip(gather, runs) if r['floor'].get('seconds')], '.2f'):>13} "
              f"{_span([r['full']['stages'].get('gather', {}).get('cpu', float('nan')) / r['floor']['cpu_seconds'] for r in runs if r['floor'].get('cpu_seconds')], '.2f'):>13}")
    print(f"\n{'scale':>6}  " + "  ".join(f"{s:>22}" for s in STAGES))
    print(f"{'':>6}  " + "  ".join(f"{'s (job/gate) cpu · GB':>22}" for _ in STAGES))
    for runs in results:
        cells = []
        for s in STAGES:
            secs = _span([r["full"]["stages"].get(s, {}).get("seconds", float("nan")) for r in runs], ".1f")
            job = _span([r["full"]["stages"].get(s, {}).get("job", float("nan")) for r in runs], ".0f")
            gate = _span([r["full"]["stages"].get(s, {}).get("gate", float("nan")) for r in runs], ".0f")
            peak = _span([r["full"]["stages"].get(s, {}).get("peak_rss", float("nan")) / gib for r in runs], ".2f")
            cpu = _span([r["full"]["stages"].get(s, {}).get("cpu", float("nan")) for r in runs], ".0f")
            cells.append(f"{secs} ({job}/{gate}) {cpu} · {peak}")
        print(f"{runs[0]['scale']:>6g}  " + "  ".join(f"{c:>22}" for c in cells))
    print(f"\n{'scale':>6} {'new day: records':>18} {'wall s':>10} {'ratio':>11} {'new versions':>13}   {'same again: wall s':>19} {'ratio':>11} {'new versions':>13}")
    for runs in results:
        r0 = runs[0]
        nd = f"{r0['new_day']['records']:,} ({r0['new_day']['share']:.2%})"
        cells = []
        for key in ("day", "again"):
            cells.append(f"{_span([r[key]['wall'] for r in runs], '.1f'):>10} {_span([r[key]['wall'] / r['full']['wall'] for r in runs], '.2f'):>11} "
                         f"{_span([len(r[key]['new_versions']) if 'new_versions' in r[key] else float('nan') for r in runs], '.0f'):>7}/{r0['full'].get('tables', 0):<5}")
        print(f"{r0['scale']:>6g} {nd:>18} {cells[0]}   {'':>8}{cells[1]}")
    _new_day_floor(results)
    if airflow:
        print(f"\n{'scale':>6} {'in-process s':>13} {'Airflow s':>11} {'ratio':>11} {'target s':>10} {'Airflow/target':>15} {'Airflow peak GB':>16}")
        for runs in results:
            print(f"{runs[0]['scale']:>6g} {_span([r['full']['wall'] for r in runs], '.1f'):>13} {_span([r['airflow']['wall'] for r in runs], '.1f'):>11} "
                  f"{_span([r['airflow']['wall'] / r['full']['wall'] for r in runs], '.2f'):>11} "
                  f"{_span([1.3 * r['full']['wall'] + 20 for r in runs], '.1f'):>10} "
                  f"{_span([r['airflow']['wall'] / (1.3 * r['full']['wall'] + 20) for r in runs], '.2f'):>15} "
                  f"{_span([r['airflow'].get('peak_rss', float('nan')) / gib for r in runs], '.2f'):>16}")
    for runs in results:
        for r in runs:
            for key in ("floor", "full", "day", "again", "airflow"):
                if r[key].get("error"):
                    print(f"\nscale {r['scale']:g} {key}: FAILED: {r[key]['error']}")


def compare_fingerprints(scale: float, seed: int, bench: Path, file: Path, stages: tuple[str, ...] = STAGES) -> int:
    """Fingerprint a fresh run of ``scale``; write them to ``file``, or print how they differ from the ones in it."""
    sources = demo(scale, seed, bench)
    with tempfile.TemporaryDirectory(prefix="fingerprint-", dir=bench) as tmp:
        got_file = Path(tmp) / "got.json"
        proc = subprocess.run([sys.executable, __file__, "--child", "fingerprint", str(sources), str(got_file), str(Path(tmp) / "lake"), ",".join(stages)], env=_env(), cwd=REPO)
        if proc.returncode != 0:
            return 1
        got = json.loads(got_file.read_text())
    if not file.exists():
        file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"wrote the fingerprints of {len(got)} tables to {file}")
        return 0
    want = json.loads(file.read_text())
    differ = sorted(n for n in set(got) | set(want) if got.get(n) != want.get(n))
    for n in differ:
        print(f"{n}: {want.get(n)} before, {got.get(n)} now")
    print(f"{len(got)} tables: " + ("identical" if not differ else f"{len(differ)} differ"))
    return 1 if differ else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--airflow", action="store_true", help="also run the full lifecycle through `lawlake run` (Airflow), beside the in-process one")
    ap.add_argument("--bench-dir", type=Path, default=REPO / ".bench", help="where demo data is cached and lakes are made (default ./.bench)")
    ap.add_argument("--json", type=Path, help="also write every measurement to this file")
    ap.add_argument("--profile", type=Path, help="profile each in-process run with pyinstrument: reports (text and HTML) in this folder")
    ap.add_argument("--only-full", action="store_true", help="measure the floor and the full run only (no new day, no rerun)")
    ap.add_argument("--fingerprint", type=Path, metavar="FILE",
                    help="instead: run the first scale once (fixed data date and key) and write its tables' fingerprints to FILE, "
                         "or compare with FILE when it exists (identical tables before and after a change)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="with --fingerprint: the stages to run (default all)")
    args = ap.parse_args()
    args.bench_dir.mkdir(parents=True, exist_ok=True)
    if args.fingerprint:
        return compare_fingerprints(args.scales[0], args.seed, args.bench_dir.resolve(), args.fingerprint, tuple(args.stages))
    results = []
    for scale in args.scales:
        runs = []
        for i in range(args.repeat):
            print(f"scale {scale:g}, repeat {i + 1}/{args.repeat} …", file=sys.stderr, flush=True)
            runs.append(measure(scale, args.seed, args.bench_dir.resolve(), airflow=args.airflow, profile=args.profile and args.profile.resolve(), only_full=args.only_full))
        results.append(runs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results, args.airflow)
    return 1 if any(r[k].get("error") for runs in results for r in runs for k in ("floor", "full", "day", "again", "airflow")) else 0


if __name__ == "__main__":
    sys.exit(main())
