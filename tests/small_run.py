"""One small in-process run (gather and normalize, demo data at scale 0.05) shared by the lineage and event-log tests of a session."""

from __future__ import annotations

from pathlib import Path

from lawlake import config, pipeline

_RUNS: dict[str, dict] = {}


def small_run(tmp_path_factory) -> dict:
    """The run's lake, settings and run id (run once per session)."""
    if "run" not in _RUNS:
        from lawlake.demo import generate

        root = tmp_path_factory.mktemp("small_run")
        sources = root / "sources"
        generate(sources, scale=0.05, seed=5)
        settings = config.load(lake=root / "lake")
        pipeline.run_lifecycle(settings, "small", sources=sources, stages=("gather", "normalize"))
        _RUNS["run"] = {"lake": Path(settings.lake), "sources": sources, "settings": settings, "run_id": "small"}
    return _RUNS["run"]
