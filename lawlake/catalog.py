"""The control-plane catalog: runs, stage and gate results, published versions, file manifests.

One SQLAlchemy schema for SQLite (embedded) and PostgreSQL (production). Tables are
created on first use. Rows are only ever inserted, never updated in place, except a
run's finish time and status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    func,
    insert,
    select,
    text,
    union,
    update,
)
from sqlalchemy.engine import Engine

__all__ = ["Catalog", "Reconciliation", "metadata", "utcnow", "EVENT_LOG", "event_log_select"]

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(200), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),  # running | success | failed
    Column("sources", Text),
    Column("engine", String(200)),
    Column("message", Text),
)

stage_results = Table(
    "stage_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("stage", String(40), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("rows_in", Integer, nullable=False),
    Column("rows_out", Integer, nullable=False),
    Column("rows_quarantined", Integer, nullable=False),
    Column("rows_merged", Integer, nullable=False),
    Column("rows_excluded", Integer, nullable=False),
    Column("fields_quarantined", Integer, nullable=False, default=0),
    Column("is_balanced", Boolean, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("candidate_path", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

gate_results = Table(
    "gate_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("stage", String(40), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("rows", Integer),
    Column("seconds", Float, nullable=False),
    Column("candidate_path", Text),
    Column("results", JSON, nullable=False),  # one entry per expectation: name, column, success, observed, threshold
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

published_versions = Table(
    "published_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("table_name", String(200), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

ingested_files = Table(
    "ingested_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "sha256", name="uq_ingested_file"),
)

watermarks_table = Table(
    "watermarks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False, index=True),
    Column("value", String(100), nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


releases = Table(
    "releases",
    metadata,
    Column("release_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("stage", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # publishing | complete | discarded
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("message", Text),
)

release_tables = Table(
    "release_tables",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_id", Integer, nullable=False, index=True),
    Column("table_name", String(200), nullable=False),
    Column("version", Integer),  # the Delta version the release publishes; null until committed
    Column("base_version", Integer),  # the version in the release before it (null: a new table)
    Column("rows", Integer),
    UniqueConstraint("release_id", "table_name", name="uq_release_table"),
)

# What each released table version was built from: a fingerprint of its inputs' released
# versions, its run parameters and the code and schemas that built it. A table whose
# fingerprint has not changed since its released version is not rebuilt (incremental runs).
table_builds = Table(
    "table_builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release_id", Integer, nullable=False, index=True),
    Column("table_name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("built_from", JSON, nullable=False),  # {input: version or fingerprint, param: digest, code: digest}
)

# At most one row: the run that may write to the lake now (see lawlake.lock).
lake_lock = Table(
    "lake_lock",
    metadata,
    Column("lock_name", String(20), primary_key=True),
    Column("run_id", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)


EVENT_LOG = "event_log"


def event_log_select():
    """The event log, one row per run, stage and table: rows in/out/quarantined/merged/excluded, the gate's checks, timings, the published version.

    The last record of each (run, stage, table) counts (a retried task records again); a
    table the gate never saw has no gate columns, one never published no version.
    """
    sr, gr = stage_results, gate_results
    keys = union(select(sr.c.run_id, sr.c.stage, sr.c.table_name), select(gr.c.run_id, gr.c.stage, gr.c.table_name)).subquery("k")
    last_s = select(func.max(sr.c.id)).group_by(sr.c.run_id, sr.c.stage, sr.c.table_name)
    last_g = select(func.max(gr.c.id)).group_by(gr.c.run_id, gr.c.stage, gr.c.table_name)
    s = select(sr).where(sr.c.id.in_(last_s)).subquery("s")
    g = select(gr.c.run_id, gr.c.stage, gr.c.table_name, gr.c.success, gr.c.evaluated, gr.c.failed, gr.c.rows, gr.c.seconds, gr.c.checked_at).where(gr.c.id.in_(last_g)).subquery("g")
    r = (
        select(releases.c.release_id, releases.c.run_id, releases.c.stage, releases.c.finished_at, release_tables.c.table_name, release_tables.c.version, release_tables.c.rows)
        .join(release_tables, release_tables.c.release_id == releases.c.release_id)
        .where(releases.c.status == "complete")
        .subquery("r")
    )

    def on(t):
        return and_(t.c.run_id == keys.c.run_id, t.c.stage == keys.c.stage, t.c.table_name == keys.c.table_name)

    return (
        select(
            keys.c.run_id, keys.c.stage, keys.c.table_name,
            s.c.rows_in, s.c.rows_out, s.c.rows_quarantined, s.c.rows_merged, s.c.rows_excluded, s.c.fields_quarantined, s.c.is_balanced,
            s.c.seconds.label("stage_seconds"), s.c.recorded_at.label("built_at"),
            g.c.success.label("gate_passed"), g.c.evaluated.label("checks"), g.c.failed.label("checks_failed"), g.c.rows.label("candidate_rows"),
            g.c.seconds.label("gate_seconds"), g.c.checked_at,
            r.c.release_id, r.c.version, r.c.rows.label("published_rows"), r.c.finished_at.label("published_at"),
        )
        .select_from(keys.outerjoin(s, on(s)).outerjoin(g, on(g)).outerjoin(r, on(r)))
    )


def _create_event_log_view(engine: Engine) -> None:
    """``event_log`` as a view in the catalog database itself (SQLite and PostgreSQL), for any SQL client."""
    ddl = str(event_log_select().compile(engine, compile_kwargs={"literal_binds": True}))
    prefix = "CREATE VIEW IF NOT EXISTS" if engine.dialect.name == "sqlite" else "CREATE OR REPLACE VIEW"
    with engine.begin() as c:
        c.execute(text(f"{prefix} {EVENT_LOG} AS {ddl}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Reconciliation:
    """Where one stage's input rows for one output table went.

    - ``rows_out``: written to the table;
    - ``rows_quarantined``: rejected by a rule, kept in ``quarantine.records`` with the reason;
    - ``rows_merged``: folded into another kept row (an earlier version superseded by a
      late-arriving update, several mentions of one person); the zone upstream keeps them;
    - ``rows_excluded``: left out by policy (a partner's row filter, sealed records).

    ``fields_quarantined`` counts values nulled by a field rule: their records are in
    ``rows_out`` (naming the field in ``invalid_fields``), each value also has its
    quarantine row. It is not part of the balance.
    """

    table: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    rows_merged: int = 0
    rows_excluded: int = 0
    fields_quarantined: int = 0

    @property
    def is_balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_quarantined + self.rows_merged + self.rows_excluded

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_quarantined": self.rows_quarantined,
            "rows_merged": self.rows_merged,
            "rows_excluded": self.rows_excluded,
            "fields_quarantined": self.fields_quarantined,
        }


@cache
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    metadata.create_all(engine)
    _create_event_log_view(engine)
    return engine


class Catalog:
    """Reads and writes the catalog at a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)

    # runs -----------------------------------------------------------------
    def start_run(self, run_id: str, *, sources: str, engine: str) -> None:
        with self.engine.begin() as c:
            exists = c.execute(select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
            if exists:  # a retried first task: keep the original start
                c.execute(update(runs).where(runs.c.run_id == run_id).values(status="running", finished_at=None))
            else:
                c.execute(insert(runs).values(run_id=run_id, started_at=utcnow(), status="running", sources=sources, engine=engine))

    def finish_run(self, run_id: str, *, status: str, message: str | None = None) -> None:
        """Close a run; a message already noted (the failed gate's) is kept unless a new one is given."""
        values = {"status": status, "finished_at": utcnow()}
        if message is not None or status == "success":
            values["message"] = message
        with self.engine.begin() as c:
            c.execute(update(runs).where(runs.c.run_id == run_id).values(**values))

    def note_run(self, run_id: str, *, message: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(runs).where(runs.c.run_id == run_id).values(message=message))

    def last_run(self) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(runs).order_by(runs.c.started_at.desc()).limit(1)).mappings().first()
            return dict(row) if row else None

    def run(self, run_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
            return dict(row) if row else None

    # stages and gates -----------------------------------------------------
    def record_stage(self, run_id: str, stage: str, rec: Reconciliation, *, seconds: float, candidate_path: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(stage_results).values(
                    run_id=run_id,
                    stage=stage,
                    table_name=rec.table,
                    rows_in=rec.rows_in,
                    rows_out=rec.rows_out,
                    rows_quarantined=rec.rows_quarantined,
                    rows_merged=rec.rows_merged,
                    rows_excluded=rec.rows_excluded,
                    fields_quarantined=rec.fields_quarantined,
                    is_balanced=rec.is_balanced,
                    seconds=seconds,
                    candidate_path=candidate_path,
                    recorded_at=utcnow(),
                )
            )

    def stage_results(self, run_id: str) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(stage_results).where(stage_results.c.run_id == run_id).order_by(stage_results.c.id))
            return [dict(r) for r in rows.mappings()]

    def record_gate(
        self, run_id: str, stage: str, table: str, *, success: bool, results: list[dict], rows: int | None, seconds: float, candidate_path: str
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                insert(gate_results).values(
                    run_id=run_id,
                    stage=stage,
                    table_name=table,
                    success=success,
                    evaluated=len(results),
                    failed=sum(1 for r in results if not r["success"]),
                    rows=rows,
                    seconds=seconds,
                    candidate_path=candidate_path,
                    results=json.loads(json.dumps(results, default=str)),
                    checked_at=utcnow(),
                )
            )

    def event_log(self, run_id: str | None = None) -> list[dict]:
        """The ``event_log`` view's rows (of one run, or all), in the order they happened."""
        view = event_log_select().subquery("event_log")
        q = select(view)
        if run_id:
            q = q.where(view.c.run_id == run_id)
        with self.engine.connect() as c:
            started = {r.run_id: r.started_at for r in c.execute(select(runs.c.run_id, runs.c.started_at))}
            rows = [dict(r) for r in c.execute(q).mappings()]
        epoch = datetime.min.replace(tzinfo=UTC)
        order = {s: i for i, s in enumerate(("gather", "normalize", "integrate", "share", "open"))}

        def when(v):
            return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else (v or epoch)

        rows.sort(key=lambda r: (when(started.get(r["run_id"])), r["run_id"], order.get(r["stage"], 99), when(r["built_at"] or r["checked_at"]), r["table_name"]))
        return rows

    def gate_results(self, run_id: str) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(select(gate_results).where(gate_results.c.run_id == run_id).order_by(gate_results.c.id))
            return [dict(r) for r in rows.mappings()]

    # publication ------------------------------------------------------------
    def record_published(self, run_id: str, table: str, *, version: int, rows: int) -> None:
        with self.engine.begin() as c:
            c.execute(insert(published_versions).values(run_id=run_id, table_name=table, version=version, rows=rows, published_at=utcnow()))

    # gather manifests --------------------------------------------------------
    def ingested_hashes(self, source: str) -> set[str]:
        with self.engine.connect() as c:
            return {r[0] for r in c.execute(select(ingested_files.c.sha256).where(ingested_files.c.source == source))}

    def record_ingested(self, run_id: str, files: list[dict]) -> None:
        """Mark files as ingested (after their bronze rows were published); ignore ones already marked."""
        if not files:
            return
        with self.engine.begin() as c:  # one SELECT of what is known and one batched INSERT, not one of each per file
            seen = {(r[0], r[1]) for r in c.execute(select(ingested_files.c.source, ingested_files.c.sha256).where(ingested_files.c.source.in_({f["source"] for f in files})))}
            now, new = utcnow(), []
            for f in files:
                if (f["source"], f["sha256"]) not in seen:
                    seen.add((f["source"], f["sha256"]))
                    new.append({"run_id": run_id, "ingested_at": now, **f})
            if new:
                c.execute(insert(ingested_files), new)

    def ingested(self) -> dict[str, dict[str, list[str]]]:
        """Every source's ingested (or rejected) files: source -> {sha256: [paths]}."""
        out: dict[str, dict[str, list[str]]] = {}
        with self.engine.connect() as c:
            for source, sha, path in c.execute(select(ingested_files.c.source, ingested_files.c.sha256, ingested_files.c.path).order_by(ingested_files.c.id)):
                out.setdefault(str(source), {}).setdefault(str(sha), []).append(str(path))
        return out

    def watermarks(self) -> dict[str, str]:
        """Every source's latest watermark."""
        latest = select(watermarks_table.c.source, func.max(watermarks_table.c.id).label("id")).group_by(watermarks_table.c.source).subquery()
        with self.engine.connect() as c:
            return {r.source: r.value for r in c.execute(select(watermarks_table.c.source, watermarks_table.c.value).join(latest, watermarks_table.c.id == latest.c.id))}

    def watermark(self, source: str) -> str | None:
        with self.engine.connect() as c:
            row = c.execute(select(watermarks_table.c.value).where(watermarks_table.c.source == source).order_by(watermarks_table.c.id.desc()).limit(1)).first()
            return row[0] if row else None

    def record_watermark(self, run_id: str, source: str, value: str) -> None:
        with self.engine.begin() as c:
            c.execute(insert(watermarks_table).values(source=source, value=value, run_id=run_id, recorded_at=utcnow()))

    # stage releases ------------------------------------------------------------
    # A stage publishes its tables as one release: begin_release records the plan (and each
    # table's version before it), the Delta commits follow, and complete_release records
    # every new version, the file manifests and watermarks in one transaction. Readers
    # only ever read versions of complete releases (release_versions).
    def begin_release(self, run_id: str, stage: str, base_versions: dict[str, int | None]) -> int:
        with self.engine.begin() as c:
            key = c.execute(insert(releases).values(run_id=run_id, stage=stage, status="publishing", started_at=utcnow())).inserted_primary_key
            assert key is not None
            release_id = key[0]
            for name, base in base_versions.items():
                c.execute(insert(release_tables).values(release_id=release_id, table_name=name, base_version=base))
        return int(release_id)

    def complete_release(
        self,
        release_id: int,
        published: dict[str, dict],
        *,
        ingested: list[dict] = (),  # type: ignore[assignment]
        watermarks: dict[str, str] | None = None,
        builds: dict[str, dict] | None = None,
    ) -> None:
        """Record the release's versions (``{table: {version, rows}}``), manifests and watermarks, and mark it complete: all or nothing."""
        with self.engine.begin() as c:
            rel = c.execute(select(releases).where(releases.c.release_id == release_id)).mappings().one()
            if rel["status"] != "publishing":
                raise RuntimeError(f"release {release_id} is {rel['status']}, not publishing")
            now = utcnow()
            for name, info in published.items():
                c.execute(
                    update(release_tables)
                    .where(release_tables.c.release_id == release_id, release_tables.c.table_name == name)
                    .values(version=info["version"], rows=info["rows"])
                )
                c.execute(insert(published_versions).values(run_id=rel["run_id"], table_name=name, version=info["version"], rows=info["rows"], published_at=now))
            seen = {(r[0], r[1]) for r in c.execute(select(ingested_files.c.source, ingested_files.c.sha256))} if ingested else set()
            new_files = []
            for f in ingested:
                if (f["source"], f["sha256"]) not in seen:
                    seen.add((f["source"], f["sha256"]))
                    new_files.append({"run_id": rel["run_id"], "ingested_at": now, **f})
            if new_files:
                c.execute(insert(ingested_files), new_files)
            for source, value in (watermarks or {}).items():
                c.execute(insert(watermarks_table).values(source=source, value=value, run_id=rel["run_id"], recorded_at=now))
            built = [{"release_id": release_id, "table_name": name, "version": published[name]["version"], "fingerprint": b["fingerprint"], "built_from": b["built_from"]}
                     for name, b in (builds or {}).items() if name in published]
            if built:
                c.execute(insert(table_builds), built)
            c.execute(update(releases).where(releases.c.release_id == release_id).values(status="complete", finished_at=now))

    def discard_release(self, release_id: int, message: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(releases).where(releases.c.release_id == release_id).values(status="discarded", finished_at=utcnow(), message=message))

    def unfinished_releases(self) -> list[dict]:
        """Releases begun but neither completed nor discarded (their run died while publishing), with their tables."""
        with self.engine.connect() as c:
            rels = [dict(r) for r in c.execute(select(releases).where(releases.c.status == "publishing").order_by(releases.c.release_id)).mappings()]
            for rel in rels:
                rel["tables"] = {
                    r["table_name"]: r["base_version"]
                    for r in c.execute(select(release_tables).where(release_tables.c.release_id == rel["release_id"])).mappings()
                }
            return rels

    def release_versions(self, as_of: int | None = None) -> dict[str, int]:
        """Each table's Delta version in the latest complete release that holds it (up to release ``as_of``)."""
        return {name: info["version"] for name, info in self.released_tables(as_of).items()}

    def released_tables(self, as_of: int | None = None) -> dict[str, dict]:
        """Each table in the latest complete release that holds it: name -> {version, rows, release_id, run_id, stage, released_at}."""
        q = (
            select(release_tables.c.table_name, release_tables.c.version, release_tables.c.rows, releases.c.release_id, releases.c.run_id, releases.c.stage,
                   releases.c.finished_at.label("released_at"))
            .join(releases, releases.c.release_id == release_tables.c.release_id)
            .where(releases.c.status == "complete")
            .order_by(release_tables.c.release_id)
        )
        if as_of is not None:
            q = q.where(releases.c.release_id <= as_of)
        with self.engine.connect() as c:
            return {r["table_name"]: dict(r) for r in c.execute(q).mappings()}

    def released_builds(self) -> dict[str, dict]:
        """What each table's released version was built from: name -> {version, fingerprint, built_from} (the latest complete release's)."""
        released = self.release_versions()
        q = (
            select(table_builds.c.table_name, table_builds.c.version, table_builds.c.fingerprint, table_builds.c.built_from)
            .join(releases, releases.c.release_id == table_builds.c.release_id)
            .where(releases.c.status == "complete")
            .order_by(table_builds.c.id)
        )
        with self.engine.connect() as c:
            rows = {r["table_name"]: dict(r) for r in c.execute(q).mappings()}
        # only a build of the version readers see counts (a table restored or republished since is rebuilt)
        return {name: r for name, r in rows.items() if released.get(name) == r["version"]}

    def releases(self, *, limit: int | None = None) -> list[dict]:
        """Releases, newest first, each with its tables' versions."""
        q = select(releases).order_by(releases.c.release_id.desc())
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as c:
            rels = [dict(r) for r in c.execute(q).mappings()]
            for rel in rels:
                rel["tables"] = {
                    r["table_name"]: r["version"]
                    for r in c.execute(select(release_tables).where(release_tables.c.release_id == rel["release_id"]).order_by(release_tables.c.table_name)).mappings()
                }
            return rels

    def last_release_of_run(self, run_id: str) -> int | None:
        with self.engine.connect() as c:
            row = c.execute(
                select(func.max(releases.c.release_id)).where(releases.c.run_id == run_id, releases.c.status == "complete")
            ).first()
            return row[0] if row else None

    def running_runs(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(select(runs).where(runs.c.status == "running").order_by(runs.c.started_at)).mappings()]
