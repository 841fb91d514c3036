"""Fixtures for partner delivery: a real lake built by the lifecycle, the real server, a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lawlake import config, pipeline
from lawlake.sharing.access import write_profile
from lawlake.sharing.server import start_in_thread

PARTNER_TABLES = {"hz_procuratorate": ["case_chain", "time_limit_warnings"], "zj_law_institute": ["case_chain"]}


@pytest.fixture(scope="session")
def lake_settings(tmp_path_factory) -> config.Settings:
    """Settings of a lake the lifecycle built from demo data up to share (share tables for both partners; the open stage is not theirs)."""
    from lawlake.demo import generate

    root = tmp_path_factory.mktemp("sharing")
    generate(root / "demo", scale=0.3, seed=7)
    settings = config.load(lake=root / "lake")
    pipeline.run_lifecycle(settings, "r1", sources=root / "demo", stages=("gather", "normalize", "integrate", "share"))
    return settings


@pytest.fixture(scope="session")
def server(lake_settings):
    """The sharing server over that lake, in a thread on a free port."""
    srv = start_in_thread(lake_settings)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def profiles(lake_settings, server, tmp_path_factory) -> dict[str, Path]:
    """A profile file per partner, as ``lawlake share profile`` writes it."""
    folder = tmp_path_factory.mktemp("profiles")
    return {p: write_profile(lake_settings, p, folder / f"{p}.share", endpoint=server.endpoint) for p in PARTNER_TABLES}


@pytest.fixture(scope="session")
def tokens(profiles) -> dict[str, str]:
    return {p: json.loads(path.read_text())["bearerToken"] for p, path in profiles.items()}


