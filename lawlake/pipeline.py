"""The stage runner: one generic path for every declared table — read, build, enforce, write, count, gate, publish.

Each stage module in ``jobs/`` declares its tables (:mod:`lawlake.declarations`). For a
stage, :func:`run_stage`:

1. reads each table's inputs at their versions in the latest complete release (or the
   candidates of tables built earlier in the stage), calls the pure builder, and
   materializes the result once;
2. checks the table's rows against its contract and writes them as a candidate under
   ``<lake>/_staging/<run>/``;
3. counts where every input row went (rows in = out + quarantined + merged + excluded),
   refuses a table that does not balance, and records the counts in the catalog;
4. writes the stage's quarantine rows as a candidate of ``quarantine.records`` too: they
   are published with the stage's release, never before its gate.

:func:`gate_stage` then validates every candidate; when any fails it raises
:class:`GateFailed`, publishes nothing and keeps the candidates; when all pass it
publishes them as one release (:mod:`lawlake.releases`).

:func:`open_run` and :func:`close_run` bracket a run: the lake lock (one writer per
lake, :mod:`lawlake.lock`), recovery of what a dead run left half published, and the
run's row in the catalog. Only names, paths and counts cross between these calls (they
are Airflow tasks).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lawlake import connections, contracts, engine, failpoints, lock, releases, tables
from lawlake.catalog import Catalog, Reconciliation
from lawlake.config import Settings
from lawlake.declarations import TALLY_FIELDS, Built, ByReach, ByScope, Incremental, Params, Stage, Table, is_reference, is_work

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "STAGES",
    "GateFailed",
    "ReconciliationError",
    "open_run",
    "close_run",
    "run_stage",
    "gate_stage",
    "run_lifecycle",
    "rejects_frame",
    "REJECT_COLUMNS",
    "QUARANTINE",
    "stage_of",
    "declared_tables",
    "plan_stage",
    "Plan",
    "code_fingerprint",
]

log = logging.getLogger("lawlake")

STAGES = ("gather", "normalize", "integrate", "share", "open")
QUARANTINE = "quarantine.records"
REJECT_COLUMNS = ("source_table", "target_table", "record_key", "scope", "rule", "reason", "raw_value", "record")


class GateFailed(RuntimeError):
    """A stage's candidates failed their gate: nothing was published."""


class ReconciliationError(RuntimeError):
    """A stage lost or invented rows: in != out + quarantined + merged + excluded."""


def _stages() -> dict[str, Stage]:
    return {s: stage_of(s) for s in STAGES}


def stage_of(stage: str) -> Stage:
    """The declarations of one stage, importing its module only (a stage's plan need not load the others' dependencies).

    Imports point down: the runner knows the stages; the stages know nothing of the runner.
    """
    if stage == "gather":
        from jobs import gather

        return gather.STAGE
    if stage == "normalize":
        from jobs import normalize

        return normalize.STAGE
    if stage == "integrate":
        from jobs import integrate

        return integrate.STAGE
    if stage == "share":
        from jobs import share

        return share.STAGE
    if stage == "open":
        from jobs import open

        return open.STAGE
    raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


def _params(settings: Settings, catalog: Catalog, run_id: str, sources: Path | None, data_date: date | None, released: dict[str, int]) -> Params:
    now = datetime.now(UTC)
    return Params(
        run_id=run_id,
        started_at=now,
        data_date=data_date or now.date(),
        sources=Path(sources) if sources else None,
        min_cell=settings.open_min_cell,
        warning_days=settings.warning_days_before,
        secret_key=settings.secret_key,
        watermarks=catalog.watermarks(),
        ingested=catalog.ingested(),
        endpoints=connections.endpoints(),
        lake=settings.lake,
        versions=released,
    )


def declared_tables(params: Params | None = None) -> dict[str, tuple[str, Table]]:
    """Every declared table: logical name -> (stage, declaration)."""
    params = params or Params(run_id="explain", started_at=datetime.now(UTC), data_date=date.today())
    return {t.name: (name, t) for name, s in _stages().items() for t in s.declared(params)}


def rejects_frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """Rejected records built in Python (dicts with :data:`REJECT_COLUMNS`) as a DataFrame."""
    import pyarrow as pa

    if not rows:
        return spark.createDataFrame([], schema=", ".join(f"{c} string" for c in REJECT_COLUMNS))
    schema = pa.schema([(c, pa.string()) for c in REJECT_COLUMNS])
    return spark.createDataFrame(pa.Table.from_pylist([{c: r.get(c) for c in REJECT_COLUMNS} for r in rows], schema=schema))


# -- a run: lock, recovery, catalog -------------------------------------------------------


def open_run(settings: Settings, run_id: str, *, sources: str, pid: int | None = None) -> dict:
    """Take the lake for ``run_id``, clean up after any dead run, and open the run in the catalog.

    Raises :class:`lawlake.lock.LakeBusy` (naming the running run) when a live run holds
    the lake. A dead holder's run is marked failed with the reason, its half-published
    release is undone and its candidates removed, so this run starts from the last
    complete release exactly as a clean run would.
    """
    catalog = Catalog(settings.catalog_url)
    acquired = lock.acquire(catalog, run_id, pid=pid)
    recovered = releases.recover(catalog, settings.lake)
    for run in catalog.running_runs():
        if run["run_id"] != run_id:
            why = "its process died" + (" (its lock was taken over by run " + run_id + ")" if run["run_id"] == acquired.abandoned else "")
            undone = [r for r in recovered if r["run_id"] == run["run_id"]]
            if undone:
                why += "; its half-published " + ", ".join(r["stage"] for r in undone) + " release was undone"
            catalog.finish_run(run["run_id"], status="failed", message=f"abandoned: {why}")
            tables.discard_staging(settings.lake, run["run_id"])
    catalog.start_run(run_id, sources=sources, engine=settings.engine)
    return {"run_id": run_id, "abandoned": acquired.abandoned, "recovered": recovered}


def close_run(settings: Settings, run_id: str, *, status: str, message: str | None = None) -> None:
    """Build the run's Data Docs, record its outcome, remove its candidates when it succeeded, and give the lake back.

    The site is rendered once per run, here, from every gate's saved result (each gate
    keeps its result as it judges): five builds, one per gate, took 2.8 s of a scale-100
    run, one build of the same pages 0.6–0.8 s. A run that judged nothing has no site.
    """
    _build_data_docs(settings, run_id)
    catalog = Catalog(settings.catalog_url)
    catalog.finish_run(run_id, status=status, message=message)
    if status == "success":
        tables.discard_staging(settings.lake, run_id)
    lock.release(catalog, run_id)


@contextmanager
def _holding(catalog: Catalog, run_id: str) -> Iterator[None]:
    """Work for ``run_id`` only while it holds the lake (a task of a run whose lock was taken over stops)."""
    lock.acquire(catalog, run_id, pid=0)
    with lock.Heartbeat(catalog, run_id):
        yield


# -- what to rebuild: fingerprints ------------------------------------------------------------

_ROOT = Path(__file__).resolve().parent.parent
_CODE = ("jobs", "lawlake", "schemas", "quality")
_CODE_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".csv"}


@cache
def code_fingerprint() -> str:
    """A digest of the code and schemas that build tables: any change rebuilds every table (the safe side)."""
    digest = hashlib.sha256()
    for top in _CODE:
        for path in sorted((_ROOT / top).rglob("*")):
            rel = path.relative_to(_ROOT)
            if path.suffix in _CODE_SUFFIXES and path.is_file() and not {"__pycache__", "uncommitted"} & set(rel.parts):
                digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    """Which tables of a stage this run builds, and what each is built from."""

    builds: dict[str, dict]  # table -> {fingerprint, built_from}
    unchanged: dict[str, int]  # published tables whose inputs did not change -> their released version
    needed: frozenset[str]  # tables (work tables included) the run builds

    def builds_table(self, name: str) -> bool:
        return name in self.needed


def plan_stage(
    declared: tuple[Table, ...], params: Params, *, released: dict[str, int], released_builds: dict[str, dict],
    full_refresh: bool = False, atomic: bool = False,
) -> Plan:
    """Decide what to rebuild: a table is rebuilt unless it was built, at its released version, from exactly these inputs.

    A table's fingerprint digests the released versions of its inputs (or, for tables of the
    same stage, their fingerprints), the run parameters it takes and the code and schemas
    (:func:`code_fingerprint`). Append tables (bronze) always run: what is new is decided by
    the files. ``full_refresh`` rebuilds everything; an ``atomic`` stage rebuilds all its
    tables when any changed (they are judged together).
    """
    builds: dict[str, dict] = {}
    for t in declared:
        built_from: dict[str, object] = {"code": code_fingerprint()}
        for n in t.inputs:
            built_from[n] = f"fp:{builds[n]['fingerprint']}" if n in builds else "reference" if is_reference(n) else released.get(n)
        for p in t.params:
            built_from[f"param:{p}"] = _digest(getattr(params, p))
        builds[t.name] = {"fingerprint": hashlib.sha256(json.dumps(built_from, sort_keys=True).encode()).hexdigest(), "built_from": built_from}
    published = [t for t in declared if not t.is_work]

    def same(t: Table) -> bool:
        before = released_builds.get(t.name)
        return t.mode == "overwrite" and t.name in released and before is not None and before["fingerprint"] == builds[t.name]["fingerprint"]

    unchanged = set() if full_refresh else {t.name for t in published if same(t)}
    if atomic and len(unchanged) < len(published):
        unchanged = set()
    needed = {t.name for t in published if t.name not in unchanged}
    by_name = {t.name: t for t in declared}
    for t in reversed(declared):  # a work table is built only when a table built this run reads it
        if t.name in needed:
            needed |= {n for n in t.inputs if n in by_name and is_work(n)}
    return Plan(
        builds={n: b for n, b in builds.items() if n in needed and not is_work(n)},
        unchanged={n: released[n] for n in sorted(unchanged)},
        needed=frozenset(needed),
    )


# -- building a stage ---------------------------------------------------------------------


@dataclass
class _Run:
    spark: SparkSession
    settings: Settings
    catalog: Catalog
    run_id: str
    stage: str
    released: dict[str, int]
    built: dict[str, DataFrame] = field(default_factory=dict)  # same-stage candidates and work tables
    reached: dict[str, tuple[ByReach, DataFrame, int]] = field(default_factory=dict)  # table -> its scope values to rebuild (ByReach)

    def read(self, name: str, *, optional: bool = False) -> DataFrame | None:
        if name in self.built:
            return self.built[name]
        if is_reference(name):
            from lawlake.rules import reference

            return reference.reference_dataframe(self.spark, name.split(".", 1)[1])  # type: ignore[arg-type]
        version = self.released.get(name)
        if version is None:
            if optional:
                return None
            raise FileNotFoundError(f"{name} is not published in any release yet: run the stage that builds it first")
        return tables.read(self.spark, tables.location(self.settings.lake, name), version=version)

    def work_path(self, name: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_.]+", name):
            raise ValueError(f"work table {name!r} may only hold a-z, 0-9, '_' and '.'")
        return tables.staging_root(self.settings.lake, self.run_id) / "_work" / self.stage / name

    def materialize(self, df: DataFrame, name: str) -> DataFrame:
        """Write a result used several times and read it back: the engine has no cache."""
        path = self.work_path(name)
        tables.write(df, path, mode="overwrite")
        return tables.read(self.spark, path)


def _contract(t: Table) -> contracts.Contract:
    return t.contract or contracts.load(t.name)


ROWS_PER_PARTITION = 50_000  # Python rows are spread over the cores in parts of at least this many rows
# A table whose scoped input (Incremental's source, ByScope's input) holds fewer rows is built whole: a scoped build's
# extra queries cost more than building every row (scale 1's new day took 1.18 of its full run scoped everywhere).
SCOPED_MIN_ROWS = 20_000


def _as_frame(run: _Run, value, contract: contracts.Contract | None, name: str) -> DataFrame:
    import pyarrow as pa

    if isinstance(value, list | pa.Table | Path):  # Python rows, or contracts.arrow_rows of them
        if contract is None:
            raise TypeError("Python rows need a contract to be typed")
        frame = contracts.dataframe(run.spark, value, contract, spill_to=run.work_path(f"{name}.rows"))
        # They reach the engine as one part, and would be written as one file: every later scan of the table (its
        # gate, normalize) would parse it on one core. Spread them, so the table is written in one file per core.
        parts = min(engine.cores(), _row_count(value) // ROWS_PER_PARTITION)
        return frame.repartition(parts) if parts > 1 else frame
    return value


def _row_count(value) -> int:
    import pyarrow as pa

    if isinstance(value, list):
        return len(value)
    if isinstance(value, pa.Table):
        return value.num_rows
    import pyarrow.dataset as ds

    return ds.dataset(str(value), format="parquet").count_rows()


def _nothing_new(built: Built) -> bool:
    """A batch of Python rows that holds nothing: no row, no quarantine row, no file to record, no watermark, no measure."""
    import pyarrow as pa

    return (isinstance(built.frame, list | pa.Table | Path) and isinstance(built.quarantine, list | None) and _row_count(built.frame) == 0
            and not built.quarantine and not built.ingested and not built.watermarks and not built.metrics)


def _count_tally(t: Table, built: DataFrame, inputs: list) -> dict[str, int]:
    counts = dict(t.tally(built, *inputs)) if t.tally else {}
    unknown = set(counts) - set(TALLY_FIELDS)
    if unknown:
        raise ValueError(f"{t.name}: tally counts unknown outcomes {sorted(unknown)}")
    return {k: int(v or 0) for k, v in counts.items()}


def run_stage(
    stage: str, settings: Settings, run_id: str, *, sources: Path | None = None, data_date: date | None = None, full_refresh: bool = False,
) -> dict:
    """Build the declared tables of a stage whose inputs changed as candidates; return the stage's summary for its gate.

    A table built, at its released version, from the same input versions, parameters and
    code is not rebuilt (:func:`plan_stage`): it keeps its version, and the summary lists it
    as unchanged. ``full_refresh`` rebuilds every table.
    """

    catalog = Catalog(settings.catalog_url)
    with _holding(catalog, run_id):
        start = time.perf_counter()
        released = releases.versions(catalog)
        params = _params(settings, catalog, run_id, sources, data_date, released)
        run = _Run(engine.session(settings.engine), settings, catalog, run_id, stage, released)
        candidates: list[dict] = []
        nothing_new: list[str] = []  # append tables that got no new rows
        recs: list[Reconciliation] = []
        metrics: dict[str, list[dict]] = {}
        quarantine_parts: list[DataFrame] = []
        expected_quarantine = 0
        ingested: list[dict] = []
        watermarks: dict[str, str] = {}
        notes: dict = {}
        spec = stage_of(stage)
        if spec.expects_new:  # the hint, once per run (gather: spawn its workers, import the gate early)
            params = dataclasses.replace(params, new_input=spec.expects_new(params))
        declared = spec.declared(params)  # share and open compile their declarations: once per run
        released_builds = catalog.released_builds()
        plan = plan_stage(declared, params, released=run.released, released_builds=released_builds, full_refresh=full_refresh, atomic=spec.atomic)
        # tables to judge: the gate will need GX (an append stage's, bronze, when its sources look new; else at its first new rows, below)
        if any(t.mode != "append" and t.name in plan.builds for t in declared) or params.new_input:
            _prewarm_gate()
        for name, version in plan.unchanged.items():
            run.built[name] = tables.read(run.spark, tables.location(settings.lake, name), version=version)
            log.info("[lawlake] %s: %s unchanged (inputs, parameters and code as at its version %d)", stage, name, version)
        started = {}  # tables whose builds run in the background, side by side: their inputs and Future
        for t in declared:
            if t.start and plan.builds_table(t.name):
                inputs = [run.read(n, optional=n in t.optional) for n in t.inputs]
                kwargs = {p: getattr(params, p) for p in t.params}
                started[t.name] = (inputs, t.start(*inputs, spill_to=run.work_path(f"{t.name}.rows"), **kwargs))
        try:
            for t in declared:
                if not plan.builds_table(t.name):
                    continue
                table_start = time.perf_counter()
                kwargs = {p: getattr(params, p) for p in t.params}
                inputs, future = started.pop(t.name) if t.name in started else ([run.read(n, optional=n in t.optional) for n in t.inputs], None)
                scoped: _Scoped | _Regrouped | _Reached | None = None
                reached = None  # ByReach: the scope values of its target the changed input rows reach
                if future is None and t.by_scope:  # its scopes' digests are kept with every build, a full refresh's too
                    scoped = _regrouped(run, t, inputs, kwargs, plan.builds.get(t.name), released_builds.get(t.name), full_refresh=full_refresh)
                elif future is None and t.by_reach:  # its inputs' row hashes are kept with every build of its target
                    reached = _reached(run, t, inputs, plan.builds.get(t.by_reach.target), released_builds.get(t.by_reach.target), full_refresh=full_refresh)
                elif future is None and t.name in run.reached:
                    by, touched, n_touched = run.reached[t.name]
                    published = run.read(t.name)
                    assert published is not None  # released (checked by _reached)
                    scoped = _Reached(by, published, touched, t.build(*inputs, **kwargs), n_touched)
                elif future is None and not full_refresh:
                    scoped = _scoped(run, t, inputs, kwargs, plan.builds.get(t.name), released_builds.get(t.name))
                result = future.result() if future is not None else scoped.built if scoped else reached if reached is not None else t.build(*inputs, **kwargs)
                built = result if isinstance(result, Built) else Built(result)
                if t.mode == "append" and t.name in run.released and _nothing_new(built):
                    # no row, reject, file or watermark: nothing to write, judge or publish (the engine is not asked)
                    nothing_new.append(t.name)
                    tally = dict(built.tally or {})
                    recs.append(Reconciliation(t.name, tally.get("rows_in", 0), 0, tally.get("rows_quarantined", 0), 0, 0, 0))
                    log.info("[lawlake] %s: nothing new for %s in %.1fs", stage, t.name, time.perf_counter() - table_start)
                    continue
                contract = None if t.is_work else _contract(t)
                frame = _as_frame(run, built.frame, contract if t.rows is None else None, t.name)
                if t.is_work:
                    run.built[t.name] = run.materialize(frame, t.name)
                    log.info("[lawlake] %s: built %s (work table, this run only) in %.1fs", stage, t.name, time.perf_counter() - table_start)
                    continue
                if t.materialize and (t.rows or t.quarantine or t.tally or t.metrics):
                    frame = run.materialize(frame, t.name)
                    inc, now = t.incremental, plan.builds.get(t.name)
                    if inc and scoped is None and future is None and now and not _small(run, t, tables.location(settings.lake, inc.source), quiet=True):
                        # built whole, every source row with it: its rows' keys are kept for the next build (_scoped)
                        before = released_builds.get(t.name)
                        _keep_keys(run, t, frame.select("_record_hash", inc.scope), now["fingerprint"], before["fingerprint"] if before else None)
                assert contract is not None
                current = t.rows(frame) if t.rows else frame
                # incremental: the touched keys' rows replace theirs; every other key's published rows stay as they are
                rows = contracts.enforce(scoped.merged(current) if scoped else current, contract)
                path = tables.staging_location(settings.lake, t.name, run_id)
                tables.write(rows, path, mode="overwrite")
                candidate = tables.read(run.spark, path)
                run.built[t.name] = candidate
                n_out = tables.count(run.spark, path)
                if t.mode == "append" and n_out == 0 and t.name in run.released:
                    nothing_new.append(t.name)  # nothing to judge or publish: the table keeps its version (a new table is created, empty)
                else:
                    candidates.append({"table": t.name, "path": str(path), "mode": t.mode, "rows": n_out})
                    _prewarm_gate()
                quarantine = t.quarantine(frame, *inputs) if t.quarantine else built.quarantine
                if isinstance(quarantine, list):
                    quarantine = rejects_frame(run.spark, quarantine)
                # rebuilt by scope: the balance is the whole table's, as a full rebuild gives it
                tally = dict(built.tally or {}) | _count_tally(t, candidate if isinstance(scoped, _Regrouped | _Reached) else frame, inputs)
                if isinstance(scoped, _Scoped):  # this run's balance is the touched keys' rows: in = out + quarantined + merged
                    tally["rows_out"] = current.count()
                if quarantine is not None:
                    n_q = quarantine.count()
                    tally.setdefault("rows_quarantined", n_q - tally.get("fields_quarantined", 0))
                    if n_q != tally["rows_quarantined"] + tally.get("fields_quarantined", 0):
                        raise ReconciliationError(f"{t.name}: {n_q} quarantine rows for {tally['rows_quarantined']} rejected records and {tally.get('fields_quarantined', 0)} nulled fields")
                    quarantine_parts.append(quarantine)
                    expected_quarantine += n_q
                    if n_q:
                        _prewarm_gate()
                    if scoped:  # the stage's earlier quarantine rows of the keys not touched stay as they are
                        kept = scoped.kept_quarantine(run.read(QUARANTINE, optional=True), stage=stage, table=t.name)
                        if kept is not None:
                            quarantine_parts.append(kept)
                            expected_quarantine += kept.count()
                if tally:
                    rows_out = tally.get("rows_out", n_out)
                    recs.append(Reconciliation(t.name, tally.get("rows_in", rows_out), rows_out, tally.get("rows_quarantined", 0), tally.get("rows_merged", 0),
                                               tally.get("rows_excluded", 0), tally.get("fields_quarantined", 0)))
                if t.metrics:
                    metrics[t.name] = t.metrics(frame)
                elif built.metrics:
                    metrics[t.name] = list(built.metrics)
                ingested += built.ingested
                watermarks.update(built.watermarks)
                notes.update(built.notes)
                how = f", {scoped.describe()}" if scoped else ""
                log.info("[lawlake] %s: built %s (%d rows%s) in %.1fs", stage, t.name, n_out, how, time.perf_counter() - table_start)
        finally:
            for _, future in started.values():  # a failed stage leaves nothing queued
                if future is not None:
                    future.cancel()
            if spec.done:
                spec.done()
        # A stage that rebuilds its tables in full rebuilds its quarantine rows too (they replace its
        # earlier ones); an incremental stage (gather, append only) adds the new batch's.
        # Tables not rebuilt keep their quarantine rows.
        incremental = all(t.mode == "append" for t in declared if not t.is_work)
        rebuilt = [c["table"] for c in candidates]
        if (expected_quarantine > 0) if incremental else bool(rebuilt):
            q = _write_quarantine(run, quarantine_parts, replace=None if incremental else rebuilt)
            if q["rows"] != expected_quarantine:
                raise ReconciliationError(f"{stage}: wrote {q['rows']} quarantine rows, expected {expected_quarantine}")
            candidates.append(q)
            notes["quarantined"] = q["rows"]
        seconds = time.perf_counter() - start
        paths = {c["table"]: c["path"] for c in candidates}
        for rec in recs:
            catalog.record_stage(run_id, stage, rec, seconds=seconds, candidate_path=paths.get(rec.table))
        unbalanced = [r for r in recs if not r.is_balanced]
        if unbalanced:
            raise ReconciliationError(
                f"{stage}: rows do not reconcile: "
                + "; ".join(f"{r.table}: in {r.rows_in} != out {r.rows_out} + quarantined {r.rows_quarantined} + merged {r.rows_merged} + excluded {r.rows_excluded}" for r in unbalanced)
            )
        manifest = tables.staging_root(settings.lake, run_id) / f"{stage}.manifest.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)  # a stage with nothing new wrote no candidate there
        manifest.write_text(json.dumps({"ingested_files": ingested, "watermarks": watermarks}, ensure_ascii=False))
        log.info("[lawlake] %s: built %d candidate table(s) in %.1fs", stage, len(candidates), seconds)
        failpoints.hit(f"after:{stage}")
        return {
            "stage": stage,
            "run_id": run_id,
            "seconds": round(seconds, 3),
            "candidates": candidates,
            "unchanged": plan.unchanged | {n: run.released[n] for n in nothing_new if n in run.released},
            "builds": plan.builds,
            "reconciliations": [r.as_dict() for r in recs],
            "manifest": str(manifest),
            "metrics": metrics,
            "notes": notes,
            "data_date": params.data_date.isoformat(),
        }


@dataclass
class _Scoped:
    """A table rebuilt for the scope values (keys) new input rows touch (:class:`lawlake.declarations.Incremental`)."""

    inc: Incremental
    published: DataFrame  # the table at its released version
    touched: DataFrame  # the scope values, materialized
    built: DataFrame  # the builder's rows for them, from all their input rows (every version)
    n_touched: int
    n_added: int
    keys: str  # how the source rows' keys were found

    def merged(self, rows: DataFrame) -> DataFrame:
        """The table as a full rebuild gives it: the published rows of the keys not touched, and the touched keys' new rows."""
        from pyspark.sql import functions as F

        keys = self.touched.select(F.col(self.inc.scope).alias(self.inc.key))
        return self.published.join(keys, self.inc.key, "left_anti").unionByName(rows.select(*self.published.columns))

    def kept_quarantine(self, quarantined: DataFrame | None, *, stage: str, table: str) -> DataFrame | None:
        """The stage's published quarantine rows for ``table`` whose scope value (its record key, or what the
        declaration's ``quarantine_scope`` makes of it) was not touched (rows without one included)."""
        from pyspark.sql import functions as F

        if quarantined is None:
            return None
        keys = self.touched.select(F.col(self.inc.scope).cast("string").alias("_scope"))
        mine = quarantined.where((F.col("stage") == stage) & (F.col("target_table") == table)).select(*REJECT_COLUMNS)
        scope = self.inc.quarantine_scope(F.col("record_key")) if self.inc.quarantine_scope else F.col("record_key")
        return mine.withColumn("_scope", scope).join(keys, "_scope", "left_anti").select(*REJECT_COLUMNS)

    def describe(self) -> str:
        return f"incremental: {self.n_touched} key(s) touched by {self.n_added} new {self.inc.source} row(s); {self.keys}"


def _only_input_changed(before: dict, now: dict, name: str) -> bool:
    """Whether a table's build ``now`` differs from its released build ``before`` in input ``name`` at most (code,
    parameters and every other input as then): the condition for rebuilding only what that input changed."""
    then, current = before["built_from"], now["built_from"]
    return set(then) == set(current) and all(then[k] == current[k] for k in current if k != name)


def _scoped(run: _Run, t: Table, inputs: list, kwargs: dict, now: dict | None, before: dict | None) -> _Scoped | None:
    """The touched keys' rows of ``t``, when only its incremental source changed since its released build; else None (build whole).

    The source's new rows are those in the data files its commits added since the version
    the table was built from (:func:`lawlake.tables.added_rows`: read alone, not joined with
    the earlier rows); a source that lost a file since (restored, rewritten), or whose log
    no longer reaches that version, is not known to be append-only for this build, and the
    table is built whole. The builder's rows
    carry ``_record_hash``, the source row each was built from.
    """
    from pyspark.sql import functions as F

    inc = t.incremental
    if inc is None or now is None or before is None or t.name not in run.released:
        return None
    if not _only_input_changed(before, now, inc.source):
        return None  # code, parameters or another input changed: a full rebuild
    old_v, new_v = before["built_from"].get(inc.source), now["built_from"].get(inc.source)
    if not isinstance(old_v, int) or not isinstance(new_v, int) or old_v >= new_v:
        return None
    if _small(run, t, tables.location(run.settings.lake, inc.source)):
        return None
    source, published = run.read(inc.source), run.read(t.name)
    assert source is not None and published is not None  # both released (checked above, and its build recorded)
    location = tables.location(run.settings.lake, inc.source)
    new_rows = tables.added_rows(run.spark, location, since=old_v, version=new_v)  # from the files the commits added
    if new_rows is None:
        log.info("[lawlake] %s: %s built whole: %s v%d is not v%d with rows appended (or v%d is no longer in its log)",
                 run.stage, t.name, inc.source, new_v, old_v, old_v)
        return None
    added = run.materialize(new_rows, f"{t.name}.added")
    # counted by the Delta logs (the engine only when a file carries no count); the earlier version's files are all still there
    n_added = tables.count(run.spark, run.work_path(f"{t.name}.added"))
    n_old = tables.count(run.spark, location, version=new_v) - n_added
    # Each source row's key, by the builder itself: the keys the new rows carry are touched; every source row of a touched
    # key, and the new rows without a key, are built as a table of their own (filtering the whole build instead would run
    # it over every row). The released build kept its rows' keys (_keep_keys): only the new rows go through the builder
    # (a row's key is its own, see Incremental); without them, every row does.
    def build_from(source_rows: DataFrame) -> DataFrame:  # the builder over these rows of the source, its other inputs whole
        return t.build(*[source_rows if n == inc.source else x for n, x in zip(t.inputs, inputs, strict=True)], **kwargs)

    kept = keys_location(run.settings.lake, t.name) / before["fingerprint"]
    if tables.exists(kept):
        keys = _keep_keys(run, t, build_from(added).select("_record_hash", inc.scope), now["fingerprint"], before["fingerprint"], kept=kept)
        how = f"the keys of {n_old:,} earlier {inc.source} row(s) as kept"
    else:
        keys = _keep_keys(run, t, t.build(*inputs, **kwargs).select("_record_hash", inc.scope), now["fingerprint"], before["fingerprint"])
        how = "every row's key built again"
    if added.join(keys, "_record_hash", "left_anti").limit(1).count():
        # a new row the builder turns into no row (a court case version without parties) says nothing of its scope
        log.info("[lawlake] %s: %s built whole: a new %s row builds no row, so its scope is not known", run.stage, t.name, inc.source)
        return None
    new_keys = keys.join(added.select("_record_hash"), "_record_hash", "left_semi")
    touched = run.materialize(new_keys.select(inc.scope).where(F.col(inc.scope).isNotNull()).distinct(), f"{t.name}.touched")
    wanted = keys.join(touched, inc.scope, "left_semi").select("_record_hash").unionByName(new_keys.where(F.col(inc.scope).isNull()).select("_record_hash"))
    rows = run.materialize(source.join(wanted, "_record_hash", "left_semi"), f"{t.name}.touched_rows")
    return _Scoped(inc, published, touched, build_from(rows), touched.count(), n_added, how)


def keys_location(lake: Path, name: str) -> Path:
    """Where each source row's key is kept for a table's builds, one folder per build fingerprint (:class:`Incremental`)."""
    return Path(lake) / "_keys" / Path(*tables.parse_name(name))


KEPT_KEYS_MAX_FILES = 64  # a kept keys folder grows by a file a day; past this many it is written again as one


def _keep_keys(run: _Run, t: Table, keys: DataFrame, fingerprint: str, released: str | None, *, kept: Path | None = None) -> DataFrame:
    """``(_record_hash, scope)`` of every source row of ``t``'s build ``fingerprint``, written once under it and read back.

    A later build of ``t`` reads them instead of building every source row again to learn
    its key (at scale 100 that was half of normalize's new day). The same fingerprint (the
    same code and input versions) has the same keys, so a folder written whole is reused.
    With ``kept`` (the released build's keys), ``keys`` are only the new rows' and are added
    to the kept ones: their data files hard-linked, not read and written again. The folder
    is made under a temporary name and renamed into place, so it is there whole or not at all.
    """
    folder = keys_location(run.settings.lake, t.name)
    path = folder / fingerprint
    if not tables.exists(path):
        building = folder / f".{fingerprint}.{run.run_id}"  # renamed into place once whole
        shutil.rmtree(building, ignore_errors=True)
        linked = kept is not None and len(list(kept.glob("*.parquet"))) < KEPT_KEYS_MAX_FILES and tables.link_files(kept, building)
        if linked:
            tables.write(keys, building, mode="append")  # only the new rows' keys
        else:  # link_files makes nothing when it cannot link
            tables.write(keys if kept is None else tables.read(run.spark, kept).unionByName(keys), building)
        building.rename(path)
    _keep_only(folder, {fingerprint, released})
    return tables.read(run.spark, path)


def _keep_only(folder: Path, fingerprints: set[str | None]) -> None:
    """Remove a table's kept build folders (keys, scope digests) but ``fingerprints``': only the released build's are ever read."""
    for old in folder.iterdir() if folder.is_dir() else ():
        if old.name not in fingerprints:
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Regrouped:
    """A table rebuilt for the scope values whose input rows changed (:class:`lawlake.declarations.ByScope`)."""

    by: ByScope
    published: DataFrame  # the table at its released version
    kept_keys: DataFrame  # the key values of the untouched scope values' input rows
    built: DataFrame  # the builder's rows for the touched scope values, from their input rows
    n_touched: int
    n_scopes: int

    def merged(self, rows: DataFrame) -> DataFrame:
        """The table as a full rebuild gives it: the published rows of the untouched scope values, and the touched ones' new rows."""
        return self.published.join(self.kept_keys, self.by.key, "left_semi").unionByName(rows.select(*self.published.columns))

    def kept_quarantine(self, quarantined: DataFrame | None, *, stage: str, table: str) -> DataFrame | None:
        return None  # a table rebuilt by scope quarantines nothing (see _regrouped)

    def describe(self) -> str:
        return f"by scope: {self.n_touched:,} of {self.n_scopes:,} {self.by.scope} value(s) changed"


@dataclass
class _Reached:
    """A table rebuilt for the scope values the changed rows of its inputs reach (:class:`lawlake.declarations.ByReach`)."""

    by: ByReach
    published: DataFrame  # the table at its released version
    touched: DataFrame  # the scope values reached, materialized
    built: DataFrame  # the builder's rows for them (its inputs restricted to them)
    n_touched: int

    def merged(self, rows: DataFrame) -> DataFrame:
        """The table as a full rebuild gives it: the published rows of the scope values not reached, and the reached ones' new rows."""
        return self.published.join(self.touched, self.by.scope, "left_anti").unionByName(rows.select(*self.published.columns))

    def kept_quarantine(self, quarantined: DataFrame | None, *, stage: str, table: str) -> DataFrame | None:
        return None  # its quarantine rows come from its whole inputs (see ByReach)

    def describe(self) -> str:
        return f"by reach: {self.n_touched:,} {self.by.scope} value(s) reached by changed input rows"


def rows_location(lake: Path, name: str) -> Path:
    """Where the row hashes of a table's inputs are kept, one folder per build fingerprint (:class:`ByReach`)."""
    return Path(lake) / "_rows" / Path(*tables.parse_name(name))


def _hashed(df: DataFrame) -> list:
    """What a row's hash covers: every column (a list, map or struct as its JSON, which the engine's hashers take) and
    whether each is null, so a changed, added or removed value changes the hash."""
    from pyspark.sql import functions as F

    cols = [F.to_json(c) if kind.startswith(("array", "map", "struct")) else F.col(c) for c, kind in df.dtypes]
    return [*cols, *[c.isNull() for c in cols]]


def row_hashes(df: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """``(_h, _h2, *columns)``: each row's two hashes (xxhash64 and murmur3, 96 bits between them, over
    :func:`_hashed`) and the columns a changed row hands on."""
    from pyspark.sql import functions as F

    hashed = _hashed(df)
    return df.select(F.xxhash64(*hashed).alias("_h"), F.hash(*hashed).alias("_h2"), *columns)


def _reached(run: _Run, t: Table, inputs: list, now: dict | None, before: dict | None, *, full_refresh: bool) -> DataFrame | None:
    """The scope values of ``t.by_reach.target`` the rows changed since its released build reach, or None: build it whole.

    Every build of the target first keeps its inputs' row hashes under the build's
    fingerprint (an input at the same version as the released build's: its kept files
    hard-linked). The target is rebuilt by reach only when its released build ran the same
    code, parameters and inputs and its hashes are kept; else, or when the scope values
    reached are half its rows or more, it is built whole.
    """
    by = t.by_reach
    assert by is not None
    if now is None:
        return None
    frames = {n: x for n, x in zip(t.inputs, inputs, strict=True) if n in by.columns and x is not None}  # an optional input not yet published: none
    if _small(run, t, tables.location(run.settings.lake, next(iter(by.columns)))):
        return None
    folder = rows_location(run.settings.lake, by.target)
    path = folder / now["fingerprint"]
    previous = folder / before["fingerprint"] if before else None
    then = before["built_from"] if before else {}

    def unchanged(n: str) -> bool:  # read at the version (or built from the fingerprint) the released build read: the same rows
        return then.get(n) is not None and then.get(n) == now["built_from"].get(n)

    if not path.is_dir():  # the same fingerprint: the same rows (its inputs' versions are in it)
        building = folder / f".{now['fingerprint']}.{run.run_id}"  # renamed into place once whole
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for n, df in frames.items():
            if previous is not None and unchanged(n) and tables.exists(previous / n) and tables.link_files(previous / n, building / n):
                continue  # the released build's hashes of the same rows
            tables.write(row_hashes(df, by.columns[n]), building / n)
        building.rename(path)
    _keep_only(folder, {now["fingerprint"], before["fingerprint"] if before else None})
    if full_refresh or before is None or previous is None or by.target not in run.released:
        return None
    same_code = then.get("code") == now["built_from"].get("code") and {k: v for k, v in then.items() if k.startswith("param:")} == {
        k: v for k, v in now["built_from"].items() if k.startswith("param:")}
    kept = {p.name for p in previous.iterdir()} if previous.is_dir() else set()
    if not same_code or set(then) != set(now["built_from"]) or kept != set(frames):
        return None  # code, parameters or the inputs themselves changed (or the hashes are not kept): a full rebuild
    from pyspark.sql import functions as F

    parts = []
    for n in frames:  # an input at the same version: no row changed
        if not unchanged(n):
            fresh, old = tables.read(run.spark, path / n), tables.read(run.spark, previous / n)
            rows = fresh.join(old, ["_h", "_h2"], "left_anti").unionByName(old.join(fresh, ["_h", "_h2"], "left_anti"))
            values = F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).cast("string").alias("value")) for c in by.columns[n]]))
            parts.append(rows.select(F.lit(n).alias("input"), values.alias("_v")).select("input", "_v.column", "_v.value"))
    empty = run.spark.createDataFrame([], "input string, column string, value string")
    changed = run.materialize(functools.reduce(lambda a, b: a.unionByName(b), parts, empty), f"{t.name}.changed")  # written once: reach reads it often
    touched = run.materialize(by.reach(changed, *inputs).select(by.scope).distinct(), f"{t.name}.reached")
    n_touched = tables.count(run.spark, run.work_path(f"{t.name}.reached"))
    n_rows = tables.row_count(tables.location(run.settings.lake, by.target), version=run.released[by.target])
    if n_rows is None or 2 * n_touched >= n_rows:
        log.info("[lawlake] %s: %s built whole: changed input rows reach %d %s value(s) of its %s rows", run.stage, by.target, n_touched, by.scope, n_rows)
        return None
    run.reached[by.target] = (by, touched, n_touched)
    return touched


def scopes_location(lake: Path, name: str) -> Path:
    """Where the scope digests of a table's builds are kept, one folder per build fingerprint (:class:`ByScope`)."""
    return Path(lake) / "_scopes" / Path(*tables.parse_name(name))


def scope_digests(df: DataFrame, scope: str) -> DataFrame:
    """``(_scope, _n, _hi, _lo)``: per scope value, its rows' count and the sums of the two halves of their 64-bit hashes.

    A sum does not depend on row order, and summing 32-bit halves cannot overflow. A row's
    hash covers every column and whether each is null, so a changed, added or removed row
    changes its scope's digest. ``_scope`` marks null apart from every value.
    """
    from pyspark.sql import functions as F

    return df.select(_scope_value(scope).alias("_scope"), F.xxhash64(*_hashed(df)).alias("_h")).groupBy("_scope").agg(
        F.count(F.lit(1)).alias("_n"), F.sum(F.shiftrightunsigned("_h", 32)).alias("_hi"), F.sum(F.col("_h").bitwiseAND(F.lit(0xFFFFFFFF))).alias("_lo"),
    )


def _scope_value(scope: str):
    from pyspark.sql import functions as F

    return F.when(F.col(scope).isNull(), F.lit("N")).otherwise(F.concat(F.lit("V"), F.col(scope).cast("string")))


def _regrouped(run: _Run, t: Table, inputs: list, kwargs: dict, now: dict | None, before: dict | None, *, full_refresh: bool) -> _Regrouped | None:
    """The rows of ``t``'s changed scope values (:class:`lawlake.declarations.ByScope`), or None: build whole.

    Every build first keeps its input's scope digests under the build's fingerprint. A table
    is rebuilt by scope only when its released build ran the same code and parameters (only
    its input differs) and its digests are kept; else, or when most scope values changed, it
    is built whole.
    """
    by = t.by_scope
    assert by is not None
    if now is None or len(inputs) != 1 or inputs[0] is None or t.quarantine is not None:
        return None
    name = t.inputs[0]
    if is_work(name) and _small(run, t, run.work_path(name)):  # digests are kept for a larger input only
        return None
    source = inputs[0]
    folder = scopes_location(run.settings.lake, t.name)
    path = folder / now["fingerprint"]
    if not tables.exists(path):  # a Delta table, committed whole or not at all; the same fingerprint: the same digests
        tables.write(scope_digests(source, by.scope), path)
    _keep_only(folder, {now["fingerprint"], before["fingerprint"] if before else None})
    if full_refresh or before is None or t.name not in run.released:
        return None
    if not _only_input_changed(before, now, name):
        return None  # code or parameters changed: a full rebuild
    previous = folder / before["fingerprint"]
    if not tables.exists(previous):
        return None
    digest = ["_scope", "_n", "_hi", "_lo"]
    fresh, old_digests = tables.read(run.spark, path), tables.read(run.spark, previous)
    changed = fresh.join(old_digests, digest, "left_anti").select("_scope").unionByName(old_digests.join(fresh, digest, "left_anti").select("_scope"))
    touched = run.materialize(changed.distinct(), f"{t.name}.touched")
    n_touched, n_scopes = tables.count(run.spark, run.work_path(f"{t.name}.touched")), tables.count(run.spark, path)
    if 2 * n_touched > n_scopes:
        log.info("[lawlake] %s: %s built whole: %d of %d %s value(s) changed", run.stage, t.name, n_touched, n_scopes, by.scope)
        return None
    tagged = source.withColumn("_scope", _scope_value(by.scope))
    rows = run.materialize(tagged.join(touched, "_scope", "left_semi").drop("_scope"), f"{t.name}.touched_rows")
    published = run.read(t.name)
    assert published is not None  # released (checked above)
    kept = tagged.join(touched, "_scope", "left_anti").select(by.key)
    return _Regrouped(by, published, kept, t.build(rows, **kwargs), n_touched, n_scopes)


def _small(run: _Run, t: Table, source: Path, *, quiet: bool = False) -> bool:
    """Whether the Delta table at ``source`` holds fewer than :data:`SCOPED_MIN_ROWS` rows (by its log): ``t`` is built whole."""
    n = tables.row_count(source)
    if n is not None and n < SCOPED_MIN_ROWS:
        if not quiet:
            log.info("[lawlake] %s: %s built whole: its input holds %d rows (a scoped build pays off from %d)", run.stage, t.name, n, SCOPED_MIN_ROWS)
        return True
    return False


def _write_quarantine(run: _Run, parts: list[DataFrame], *, replace: list[str] | None) -> dict:
    """The stage's quarantine rows as one candidate, published with its release.

    Appended (``replace=None``: gather adds the new batch's), or replacing the rows the stage
    quarantined earlier for the tables it rebuilt (``replace``: their names; every row must
    be headed for one of them).
    """
    from pyspark.sql import functions as F

    contract = contracts.load(QUARANTINE)
    rows = parts[0] if parts else rejects_frame(run.spark, [])
    for p in parts[1:]:
        rows = rows.unionByName(p)
    rows = rows.select(*REJECT_COLUMNS).withColumn("run_id", F.lit(run.run_id)).withColumn("stage", F.lit(run.stage)).withColumn("quarantined_at", F.current_timestamp())
    path = tables.staging_location(run.settings.lake, QUARANTINE, run.run_id).with_name(f"records__{run.stage}")
    tables.write(contracts.enforce(rows, contract), path, mode="overwrite")
    written = tables.read(run.spark, path)
    if replace is None:
        return {"table": QUARANTINE, "path": str(path), "mode": "append", "rows": written.count()}
    counts = {r["target_table"]: int(r["n"]) for r in written.groupBy("target_table").agg(F.count(F.lit(1)).alias("n")).collect()}
    stray = sorted(set(counts) - set(replace), key=str)
    if stray:
        raise ReconciliationError(f"{run.stage}: quarantine rows headed for {stray}, which this run did not rebuild ({replace})")
    names = ", ".join("'" + n.replace("'", "''") + "'" for n in replace)
    where = f"stage = '{run.stage}' AND target_table IN ({names})"
    return {"table": QUARANTINE, "path": str(path), "mode": "overwrite", "replace_where": where, "rows": sum(counts.values())}


# -- the gate and the release -----------------------------------------------------------------


def _declared(stage: str, settings: Settings, summary: dict) -> dict[str, Table]:
    params = Params(run_id=summary["run_id"], started_at=datetime.now(UTC), data_date=date.fromisoformat(summary["data_date"]), min_cell=settings.open_min_cell, secret_key=settings.secret_key)
    return {t.name: t for t in stage_of(stage).declared(params)}


def gate_stage(stage: str, settings: Settings, summary: dict) -> dict:
    """Gate every candidate of a stage; publish them all as one release only if every one passed."""
    from lawlake.suites import suite_for
    from quality.gate import SharedViews, rule_rate_results, run_gate

    run_id = summary["run_id"]
    catalog = Catalog(settings.catalog_url)
    with _holding(catalog, run_id):
        spark = engine.session(settings.engine)
        declared = _declared(stage, settings, summary)
        released = releases.versions(catalog)
        start = time.perf_counter()
        results = []
        siblings = {c["table"]: Path(c["path"]) for c in summary["candidates"]}
        extra = _extra_checks(stage, spark, settings, siblings) if summary["candidates"] else {}
        views = SharedViews(spark, lake=settings.lake, siblings=siblings, versions=released,
                            folder=tables.staging_root(settings.lake, run_id) / "_gate")
        for cand in summary["candidates"]:
            name, path = cand["table"], Path(cand["path"])
            t = declared.get(name)
            contract = _contract(t) if t else contracts.load(name)
            suite = suite_for(name, contract=contract, declared=t.suite if t else None)
            result = run_gate(spark, name, path, lake=settings.lake, suite=suite, siblings=siblings, versions=released, run_id=run_id, stage=stage, views=views)
            result.add(extra.get(name, []))
            metrics = (summary.get("metrics") or {}).get(name)
            if metrics:
                result.add(rule_rate_results(metrics, settings.thresholds.get(name, {}), default=settings.thresholds.get("default")))
            catalog.record_gate(run_id, stage, name, success=result.success, results=result.results, rows=result.rows, seconds=result.seconds, candidate_path=str(path))
            results.append((cand, result))
            log.info("[lawlake] gate %s: %s (%d rows, %d checks)", name, "passed" if result.success else "FAILED", result.rows, len(result.results))
        failed = [(c, r) for c, r in results if not r.success]
        if failed:
            raise GateFailed(
                f"gate {stage} failed; nothing published. "
                + " | ".join(f"{c['table']} (candidate kept at {c['path']}): {r.describe_failures()}" for c, r in failed)
            )
        failpoints.hit(f"gated:{stage}")
        manifest = json.loads(Path(summary["manifest"]).read_text())
        planned = [releases.Planned(c["table"], Path(c["path"]), c["mode"], r.rows, c.get("replace_where")) for c, r in results]
        release_id, published = releases.publish(
            spark, catalog, settings.lake, run_id=run_id, stage=stage, planned=planned,
            ingested=manifest["ingested_files"], watermarks=manifest["watermarks"], builds=summary.get("builds"),
        )
        after = _AFTER_PUBLISH.get(stage)
        if after and published:
            after(settings, published)
        log.info("[lawlake] %s: published release %d (%d tables, %d unchanged) in %.1fs", stage, release_id, len(published), len(summary.get("unchanged", {})), time.perf_counter() - start)
        return {"stage": stage, "run_id": run_id, "release": release_id, "published": published, "unchanged": summary.get("unchanged", {})}


def _prewarm_gate() -> None:
    """Import Great Expectations in the background while the stage builds (the first gate would wait 3–19 s for it).

    Only once the stage has something to judge: a run that finds nothing new needs no gate, and the import would
    take the core it runs on (gather's same-sources-again run: 6.2 → 4.0 s at scale 100).
    """
    from quality.context import prewarm

    prewarm()


def _build_data_docs(settings: Settings, run_id: str) -> None:
    """Build the run's Data Docs site from its gates' saved results (:func:`close_run`); never decides anything (a failure is logged)."""
    try:
        from quality.docs import build_site

        build_site(settings.lake, run_id)
    except Exception as exc:  # even an import failure only costs the site
        log.warning("[lawlake] Data Docs for %s not built: %s", run_id, exc)


def _extra_checks(stage: str, spark, settings: Settings, siblings: dict[str, Path]) -> dict[str, list[dict]]:
    """Gate checks judged outside Great Expectations: the open datasets' disclosure attack and DCAT-AP validation."""
    if stage != "open":
        return {}
    from jobs import open as open_stage

    return open_stage.gate_results(spark, {n: p for n, p in siblings.items() if n.startswith("open.")}, settings.lake, settings)


def _export_open(settings: Settings, published: dict) -> None:
    """Only gated, released versions are published: the portal folder (files, DCAT-AP 3 catalog, index.html) under the lake."""
    from lawlake.opendata import policy as opendata_policy
    from lawlake.opendata.portal import portal_location, publish

    folder = portal_location(settings.lake)
    versions = {n: info["version"] for n, info in published.items() if n.startswith("open.")}
    publish(settings.lake, folder, base_url=folder.resolve().as_uri() + "/", versions=versions, policy=opendata_policy.load_policy(settings.open_min_cell))


def _purge_shares(settings: Settings, published: dict) -> None:
    """A record sealed (or pending) after it was shared leaves every readable version of every share (CPL art. 286)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from lawlake.sharing.purge import purge_withheld

    chain = DeltaTable(str(tables.location(settings.lake, "gold.case_chain")), version=releases.version_of(Catalog(settings.catalog_url), "gold.case_chain"))
    columns = [c for c in ("chain_id", "is_sealed", "seal_status") if c in chain.schema().to_arrow().names]
    rows = chain.to_pyarrow_table(columns=columns)
    withheld = pc.fill_null(rows["is_sealed"], True)
    if "seal_status" in columns:
        withheld = pc.or_(withheld, pc.not_equal(pc.fill_null(rows["seal_status"], "pending"), "not_sealed"))
    ids = rows.filter(withheld)["chain_id"].to_pylist()
    for name in published:
        if name.startswith("share.") and "chain_id" in DeltaTable(str(tables.location(settings.lake, name))).schema().to_arrow().names:
            result = purge_withheld(settings.lake, name, ids, catalog_url=settings.catalog_url)
            if result.versions_affected:
                log.info("[lawlake] share: purged %s versions %s (%d withheld chains)", name, list(result.versions_affected), result.chains)


_AFTER_PUBLISH: dict[str, Callable[[Settings, dict], None]] = {"share": _purge_shares, "open": _export_open}


def _traced_stage(stage: str, settings: Settings, run_id: str, *, sources: Path, data_date: date | None, full_refresh: bool = False) -> tuple[dict, dict]:
    """A stage and its gate as the DAG's two tasks would run them: progress events and OpenLineage START/COMPLETE/FAIL (:mod:`lawlake.lineage`)."""
    from lawlake import lineage

    summary = lineage.traced(
        settings, run_id, stage, lambda: run_stage(stage, settings, run_id, sources=sources, data_date=data_date, full_refresh=full_refresh),
        start_report=lineage.stage_report(settings, stage, run_id, sources=sources),
        report=lambda result, error: lineage.stage_report(settings, stage, run_id, result, sources=sources, error=error),
    )
    published = lineage.traced(
        settings, run_id, f"gate_{stage}", lambda: gate_stage(stage, settings, summary),
        start_report=lineage.gate_report(settings, stage, run_id, {"candidates": []} | summary),
        report=lambda result, error: lineage.gate_report(settings, stage, run_id, summary, result, error=error),
    )
    return summary, published


def run_lifecycle(
    settings: Settings,
    run_id: str,
    *,
    sources: Path,
    stages: tuple[str, ...] = STAGES,
    progress: Callable[[str], None] | None = None,
    data_date: date | None = None,
    full_refresh: bool = False,
) -> list[dict]:
    """Run stages in order in this process (no Airflow): stage, gate, release; stop at the first failure.

    The Airflow DAG runs the same calls as separate tasks; this is for tests, benchmarks
    and debugging.
    """
    open_run(settings, run_id, sources=str(sources))
    done = []
    try:
        for stage in stages:
            if progress:
                progress(f"{stage} …")
            summary, published = _traced_stage(stage, settings, run_id, sources=sources, data_date=data_date, full_refresh=full_refresh)
            done.append(published)
    except Exception as exc:
        close_run(settings, run_id, status="failed", message=str(exc))
        raise
    close_run(settings, run_id, status="success")
    return done


