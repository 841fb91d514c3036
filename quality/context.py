"""Great Expectations, paid for once: the module imported once per process, one data context per run.

Importing GX costs 14–19 s (scipy, altair, pandas, sqlalchemy): :func:`gx` does it once per
process, so every later gate of an in-process run, or of the tasks Airflow's ``dags test``
runs in one process, reuses it. A run's gates share one file data context
(:func:`run_context`), a GX project of its own under ``<lake>/_quality/<run_id>/gx/``: the
suites as they ran, a validation definition per table, every gate's validation result and
the Data Docs site (:mod:`quality.docs`). The repository's context (``quality/gx/``) holds
the suites as written and is never written by a run. Gates outside a run (tests) use one
ephemeral context that keeps nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["GateContext", "gx", "prewarm", "ephemeral_context", "run_context", "quality_location", "site_index"]

DATASOURCE, ASSET, BATCH = "lawlake", "candidate", "whole"
_LOCK = threading.Lock()
_RUNS: dict[tuple[str, str], GateContext] = {}


@lru_cache(maxsize=1)
def gx() -> Any:
    """The ``great_expectations`` module, imported (and quietened) once per process."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TQDM_DISABLE", "1")  # GX's per-expectation progress bars drown the task log
    import great_expectations

    # GX logs a warning per expectation for every optional field it fills in; only errors matter here.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return great_expectations


def prewarm() -> None:
    """Start importing GX in a background thread, so the import overlaps a stage's work instead of delaying the first gate.

    The engine runs the stage's queries outside Python, so the import mostly uses the
    core the stage leaves idle. A failure here is ignored: the gate imports GX itself and
    reports any error.
    """
    if gx.cache_info().currsize:
        return

    def load() -> None:
        try:
            gx()
        except Exception:  # the first gate raises it where it counts
            pass

    threading.Thread(target=load, name="lawlake-gx-import", daemon=True).start()


@dataclass
class GateContext:
    """A data context with the Spark DataFrame batch definition every gate validates through."""

    context: Any
    batch_definition: Any
    root: Path | None = None  # the run's GX project (None: ephemeral, nothing kept)
    run_id: str | None = None

    @property
    def keeps_results(self) -> bool:
        return self.root is not None

    def batch(self, df: Any) -> Any:
        """The GX batch of ``df``, validated on ``df``'s own Spark session.

        GX's Spark engine keeps the session it found first (pyspark's default) and runs SQL
        checks there, while GX registers the batch's ``tmp_view`` in the DataFrame's session.
        On another engine (a ``sc://`` server) the check would read a stale ``tmp_view`` of the
        default session, so the engine is pointed at the DataFrame's session first.
        """
        self.batch_definition.data_asset.datasource.get_execution_engine().spark = df.sparkSession
        return self.batch_definition.get_batch(batch_parameters={"dataframe": df})


def _dataframe_batches(context: Any) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    try:
        source = context.data_sources.get(DATASOURCE)
        return source.get_asset(ASSET).get_batch_definition(BATCH)
    except (KeyError, LookupError, ValueError):  # a new context (or a run's reopened one lacking it)
        source = context.data_sources.add_spark(name=DATASOURCE)
        return source.add_dataframe_asset(name=ASSET).add_batch_definition_whole_dataframe(BATCH)


@lru_cache(maxsize=1)
def ephemeral_context() -> GateContext:
    """One in-memory context for gates outside a run."""
    context = gx().get_context(mode="ephemeral")
    return GateContext(context, _dataframe_batches(context))


def quality_location(lake: Path, run_id: str) -> Path:
    """Where a run's GX project lives: ``<lake>/_quality/<run_id>/`` (its context root is ``gx/`` inside)."""
    return Path(lake) / "_quality" / run_id


def site_index(lake: Path, run_id: str) -> Path:
    """The run's Data Docs home page."""
    return quality_location(lake, run_id) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def run_context(lake: Path, run_id: str) -> GateContext:
    """The run's file data context, created at its first gate and reused by every later one in this process."""
    key = (str(Path(lake).resolve()), run_id)
    with _LOCK:
        found = _RUNS.get(key)
        if found is None:
            root = quality_location(Path(key[0]), run_id)
            root.mkdir(parents=True, exist_ok=True)
            context = gx().get_context(mode="file", project_root_dir=str(root))
            # GX reads (and parses) the project's config_variables.yml on every read of a context variable: about nine
            # per gate, 0.5-0.9 s a run. A run's project uses no config variables; without the file GX reads none.
            (root / "gx" / "uncommitted" / "config_variables.yml").unlink(missing_ok=True)
            found = _RUNS[key] = GateContext(context, _dataframe_batches(context), root=root / "gx", run_id=run_id)
        return found
