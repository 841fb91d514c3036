"""Shared fixtures: one real Sail engine for the whole test session."""

from __future__ import annotations

import os
import tempfile

import pytest

# Airflow reads its configuration at first import: give the test session a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lawlake-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("RUST_LOG", "warn")


@pytest.fixture(scope="session")
def spark():
    """A real embedded Sail engine behind the Spark Connect API."""
    from lawlake import engine

    yield engine.session(engine.EMBEDDED)
    engine.stop()
