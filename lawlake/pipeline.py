"""The stage runner: run a stage's job, gate its candidates, publish them — and record it all.

Each stage module in ``jobs/`` exposes ``run(ctx) -> StageOutput``: it reads published
tables, builds its tables, checks their contracts and writes them as candidates. This
module does the rest, the same way for every stage:

1. :func:`run_stage` runs the job, refuses unbalanced reconciliations
   (rows in = out + quarantined + merged) and records them in the catalog;
2. :func:`gate_stage` validates every candidate; when any fails it raises
   :class:`GateFailed` naming the failed expectations, publishes nothing and keeps the
   candidates; when all pass it publishes them (one Delta commit each) and records
   the versions.

Only names, paths and counts cross between the two (they are Airflow tasks).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from lawlake import contracts, tables
from lawlake.catalog import Catalog, Reconciliation
from lawlake.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "STAGES",
    "StageContext",
    "StageOutput",
    "GateFailed",
    "ReconciliationError",
    "run_stage",
    "gate_stage",
    "run_lifecycle",
    "rejects_frame",
    "REJECT_COLUMNS",
]

log = logging.getLogger("lawlake")

STAGES = ("gather", "normalize", "integrate", "share", "open")
ZONE_OF = {"gather": "bronze", "normalize": "silver", "integrate": "gold", "share": "share", "open": "open"}
QUARANTINE = "quarantine.records"


class GateFailed(RuntimeError):
    """A stage's candidates failed their gate: nothing was published."""


class ReconciliationError(RuntimeError):
    """A stage lost or invented rows: in != out + quarantined + merged."""


@dataclass
class StageContext:
    """What a job may use: the session, the lake and the run. Jobs read and write only through it."""

    spark: "SparkSession"
    settings: Settings
    run_id: str
    stage: str
    sources: Path | None = None
    catalog: Catalog | None = None

    @property
    def lake(self) -> Path:
        return self.settings.lake

    def published(self, name: str) -> Path:
        return tables.location(self.lake, name)

    def read(self, name: str) -> "DataFrame":
        """A published table; a missing one is an error naming the stage to run first."""
        path = self.published(name)
        if not tables.exists(path):
            raise FileNotFoundError(f"{name} is not published yet ({path}): run the stage that builds it first")
        return tables.read(self.spark, path)

    def write_candidate(self, df: "DataFrame", name: str, *, contract: contracts.Contract | None = None) -> Path:
        """Check ``df`` against its contract and write it as this run's candidate for ``name``."""
        contract = contract or contracts.load(name)
        checked = contracts.enforce(df, contract)
        path = tables.staging_location(self.lake, name, self.run_id)
        tables.write(checked, path, mode="overwrite")
        return path

    def materialize(self, df: "DataFrame", label: str) -> "DataFrame":
        """Write an intermediate result to this run's work area and read it back.

        The engine has no cache: a result used several times (split, counted) is
        computed once this way instead of once per use.
        """
        if not re.fullmatch(r"[a-z0-9_.]+", label):
            raise ValueError(f"work label {label!r} may only hold a-z, 0-9, '_' and '.'")
        path = tables.staging_root(self.lake, self.run_id) / "_work" / self.stage / label
        tables.write(df, path, mode="overwrite")
        return tables.read(self.spark, path)

    def quarantine(self, df: "DataFrame") -> int:
        """Append rejected rows (quarantine contract columns but run_id/stage/at) and return their count.

        A re-run of the same stage in the same run replaces its earlier rows, so retries
        never double-count.
        """
        from pyspark.sql import functions as F

        contract = contracts.load(QUARANTINE)
        rows = df.withColumn("run_id", F.lit(self.run_id)).withColumn("stage", F.lit(self.stage)).withColumn(
            "quarantined_at", F.current_timestamp()
        )
        rows = contracts.enforce(rows, contract)
        path = self.published(QUARANTINE)
        if tables.exists(path):
            self.spark.sql(f"DELETE FROM delta.`{path}` WHERE run_id = '{self.run_id}' AND stage = '{self.stage}'").collect()
        path.parent.mkdir(parents=True, exist_ok=True)
        tables.write(rows, path, mode="append")
        return tables.read(self.spark, path).where(
            (F.col("run_id") == self.run_id) & (F.col("stage") == self.stage)
        ).count()


@dataclass
class Candidate:
    table: str
    path: Path
    mode: Literal["overwrite", "append"] = "overwrite"


@dataclass
class StageOutput:
    """A job's result: its candidates, where every input row went, and what to record on publication."""

    candidates: list[Candidate] = field(default_factory=list)
    reconciliations: list[Reconciliation] = field(default_factory=list)
    ingested_files: list[dict] = field(default_factory=list)
    watermarks: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[dict]] = field(default_factory=dict)  # table -> per-rule {rule, applicable, rejected}
    notes: dict = field(default_factory=dict)


REJECT_COLUMNS = ("source_table", "target_table", "record_key", "scope", "rule", "reason", "raw_value", "record")


def rejects_frame(spark: "SparkSession", rows: list[dict]) -> "DataFrame":
    """Rejected records built in Python (dicts with :data:`REJECT_COLUMNS`) as a DataFrame for :meth:`StageContext.quarantine`."""
    import pyarrow as pa

    if not rows:
        return spark.createDataFrame([], schema=", ".join(f"{c} string" for c in REJECT_COLUMNS))
    schema = pa.schema([(c, pa.string()) for c in REJECT_COLUMNS])
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema=schema))


def _job(stage: str):
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return importlib.import_module(f"jobs.{stage}")


def _context(stage: str, settings: Settings, run_id: str, sources: Path | None) -> StageContext:
    from lawlake import engine

    return StageContext(
        spark=engine.session(settings.engine),
        settings=settings,
        run_id=run_id,
        stage=stage,
        sources=Path(sources) if sources else None,
        catalog=Catalog(settings.catalog_url),
    )


def run_stage(stage: str, settings: Settings, run_id: str, *, sources: Path | None = None) -> dict:
    """Run one stage's job; return its summary (candidates, reconciliations) for the gate."""
    ctx = _context(stage, settings, run_id, sources)
    start = time.perf_counter()
    out: StageOutput = _job(stage).run(ctx)
    seconds = time.perf_counter() - start
    unbalanced = [r for r in out.reconciliations if not r.is_balanced]
    for rec in out.reconciliations:
        path = next((str(c.path) for c in out.candidates if c.table == rec.table), None)
        ctx.catalog.record_stage(run_id, stage, rec, seconds=seconds, candidate_path=path)
    if unbalanced:
        raise ReconciliationError(
            f"{stage}: rows do not reconcile: "
            + "; ".join(f"{r.table}: in {r.rows_in} != out {r.rows_out} + quarantined {r.rows_quarantined} + merged {r.rows_merged} + excluded {r.rows_excluded}" for r in unbalanced)
        )
    log.info("[lawlake] %s: built %d candidate table(s) in %.1fs", stage, len(out.candidates), seconds)
    # What to record on publication (file manifests can be long) stays on disk beside the candidates.
    manifest = tables.staging_root(settings.lake, run_id) / f"{stage}.manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"ingested_files": out.ingested_files, "watermarks": out.watermarks}, ensure_ascii=False))
    return {
        "stage": stage,
        "run_id": run_id,
        "seconds": round(seconds, 3),
        "candidates": [{"table": c.table, "path": str(c.path), "mode": c.mode} for c in out.candidates],
        "reconciliations": [r.as_dict() for r in out.reconciliations],
        "manifest": str(manifest),
        "metrics": out.metrics,
        "notes": out.notes,
    }


def _contract_for(stage: str, table: str, settings: Settings) -> contracts.Contract:
    job = _job(stage)
    if hasattr(job, "contract"):
        return job.contract(table, settings)
    return contracts.load(table)


def _suite_for(stage: str, table: str, settings: Settings):
    """The table's suite file, plus any checks its job derives from configuration or policy."""
    from quality.gate import Suite, load_suite

    suite = load_suite(table)
    job = _job(stage)
    if hasattr(job, "checks"):
        extra = job.checks(table, settings)
        suite = Suite(table=table, expectations=suite.expectations + tuple(extra.get("expectations", ())), checks=suite.checks + tuple(extra.get("checks", ())))
    return suite


def gate_stage(stage: str, settings: Settings, summary: dict) -> dict:
    """Gate every candidate of a stage; publish them all only if every one passed."""
    from quality.gate import rule_rate_results, run_gate

    run_id = summary["run_id"]
    ctx = _context(stage, settings, run_id, None)
    start = time.perf_counter()
    results = []
    siblings = {c["table"]: Path(c["path"]) for c in summary["candidates"]}
    for cand in summary["candidates"]:
        path = Path(cand["path"])
        result = run_gate(
            ctx.spark, cand["table"], path, lake=settings.lake,
            contract=_contract_for(stage, cand["table"], settings), suite=_suite_for(stage, cand["table"], settings), siblings=siblings,
        )
        metrics = (summary.get("metrics") or {}).get(cand["table"])
        if metrics:
            result.add(rule_rate_results(metrics, settings.thresholds.get(cand["table"], {}), default=settings.thresholds.get("default")))
        ctx.catalog.record_gate(run_id, stage, cand["table"], success=result.success, results=result.results, rows=result.rows, seconds=result.seconds, candidate_path=str(path))
        results.append((cand, result))
        log.info("[lawlake] gate %s: %s (%d rows, %d checks)", cand["table"], "passed" if result.success else "FAILED", result.rows, len(result.results))
    failed = [(c, r) for c, r in results if not r.success]
    if failed:
        message = f"gate {stage} failed; nothing published. " + " | ".join(
            f"{c['table']} (candidate kept at {c['path']}): {r.describe_failures()}" for c, r in failed
        )
        raise GateFailed(message)
    published = {}
    for cand, result in results:
        target = tables.location(settings.lake, cand["table"])
        if cand["mode"] == "append" and result.rows == 0 and tables.exists(target):
            v = tables.version(target)  # nothing new: no empty commit
        else:
            v = tables.publish(ctx.spark, Path(cand["path"]), target, mode=cand["mode"])
        # An overwrite publishes exactly the candidate the gate counted; only an append needs a new total.
        total = result.rows if cand["mode"] == "overwrite" else tables.read(ctx.spark, target).count()
        ctx.catalog.record_published(run_id, cand["table"], version=v, rows=total)
        published[cand["table"]] = {"version": v, "rows": total}
    manifest = json.loads(Path(summary["manifest"]).read_text())
    if manifest["ingested_files"]:
        ctx.catalog.record_ingested(run_id, manifest["ingested_files"])
    for source, value in manifest["watermarks"].items():
        ctx.catalog.record_watermark(run_id, source, value)
    job = _job(stage)
    if hasattr(job, "after_publish"):
        job.after_publish(ctx, published)
    log.info("[lawlake] %s: published %d table(s) in %.1fs", stage, len(published), time.perf_counter() - start)
    return {"stage": stage, "run_id": run_id, "published": published}


def run_lifecycle(
    settings: Settings,
    run_id: str,
    *,
    sources: Path,
    stages: tuple[str, ...] = STAGES,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run stages in order in this process (no Airflow): stage, gate, publish; stop at the first failure.

    The Airflow DAG runs the same two calls per stage as separate tasks; this is for
    tests, benchmarks and debugging.
    """
    catalog = Catalog(settings.catalog_url)
    catalog.start_run(run_id, sources=str(sources), engine=settings.engine)
    done = []
    try:
        for stage in stages:
            if progress:
                progress(f"{stage} …")
            summary = run_stage(stage, settings, run_id, sources=sources)
            done.append(gate_stage(stage, settings, summary))
    except Exception as exc:
        catalog.finish_run(run_id, status="failed", message=str(exc))
        raise
    catalog.finish_run(run_id, status="success")
    tables.discard_staging(settings.lake, run_id)
    return done


def dumps(summary: dict) -> str:
    return json.dumps(summary, ensure_ascii=False, default=str)
