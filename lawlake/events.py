"""What a run did, as events: the tasks' progress feed and the catalog's event log.

- :func:`report` appends one JSON line per task state change to
  ``<lake>/_runs/<run_id>/events.jsonl`` (the Airflow tasks and the in-process runner
  both call it); ``lawlake run`` follows that file for its live progress display.
- :func:`event_log` is the catalog's ``event_log`` view (like a Lakeflow pipeline's event
  log): per run, stage and table the rows in/out/quarantined/merged/excluded, the gate's
  checks with each expectation's passed/failed counts, timings and the published version.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from lawlake.catalog import Catalog

__all__ = ["report", "events_path", "read", "task_detail", "event_log", "expectations", "COLUMNS"]

COLUMNS = (
    "run_id", "stage", "table_name", "rows_in", "rows_out", "rows_quarantined", "rows_merged", "rows_excluded", "fields_quarantined",
    "stage_seconds", "gate_passed", "checks", "checks_failed", "expectations_passed", "expectations_failed", "candidate_rows", "gate_seconds",
    "release_id", "version", "published_rows", "published_at",
)


def events_path(lake: Path, run_id: str) -> Path:
    return Path(lake) / "_runs" / run_id / "events.jsonl"


def report(lake: Path, run_id: str, task: str, state: str, **detail) -> None:
    """Append a task's state (``running`` | ``success`` | ``failed``) and its counts to the run's feed, in one write."""
    path = events_path(lake, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": datetime.now(UTC).isoformat(), "run_id": run_id, "task": task, "state": state, **detail}, ensure_ascii=False, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read(lake: Path, run_id: str, *, offset: int = 0) -> tuple[list[dict], int]:
    """The feed's complete lines from byte ``offset`` on, and the offset after them (a half-written last line waits)."""
    path = events_path(lake, run_id)
    if not path.is_file():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    return [json.loads(x) for x in data[:end].decode("utf-8").splitlines() if x.strip()], offset + end


def task_detail(result) -> dict:
    """The counts a finished task reports: a stage's candidates and rows, a gate's release."""
    if not isinstance(result, dict):
        return {}
    if "candidates" in result:
        return {"tables": len(result["candidates"]), "rows": sum(c["rows"] for c in result["candidates"]), "quarantined": (result.get("notes") or {}).get("quarantined", 0)}
    if "published" in result:
        return {"release": result.get("release"), "tables": len(result["published"])}
    return {}


def expectations(results: list[dict], rows: int | None) -> tuple[int, int]:
    """Rows passing and failing a gate's expectations, summed over them (an expectation that counts no rows counts its table's rows)."""
    passed = failed = 0
    for r in results:
        unexpected = r.get("unexpected_count")
        if unexpected is None:
            n = rows or 0
            passed, failed = (passed + n, failed) if r["success"] else (passed, failed + n)
        else:
            failed += int(unexpected)
            passed += max((rows or 0) - int(unexpected), 0)
    return passed, failed


def event_log(catalog: Catalog, run_id: str | None = None, *, with_expectations: bool = False) -> list[dict]:
    """The event log's rows (:data:`COLUMNS`); with ``with_expectations`` each row also lists its gate's expectations with passed/failed rows."""
    gates: dict[tuple, dict] = {}
    runs = {run_id} if run_id else {r["run_id"] for r in catalog.event_log()}
    for rid in runs:
        for gate in catalog.gate_results(rid):
            gates[(rid, gate["stage"], gate["table_name"])] = gate  # the last check counts, as in the view
    out = []
    for row in catalog.event_log(run_id):
        g = gates.get((row["run_id"], row["stage"], row["table_name"]))
        per = []
        for r in g["results"] if g else []:
            p, f = expectations([r], g["rows"] if g else None)
            per.append({"expectation": r["expectation"], "success": bool(r["success"]), "passed": p, "failed": f, "observed": r.get("observed")})
        row["expectations_passed"] = sum(e["passed"] for e in per) if g else None
        row["expectations_failed"] = sum(e["failed"] for e in per) if g else None
        if with_expectations:
            row["expectations"] = per
        out.append({c: row.get(c) for c in COLUMNS} | ({"expectations": per} if with_expectations else {}))
    return out
