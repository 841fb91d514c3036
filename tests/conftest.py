"""Shared fixtures: one real Sail engine for the whole test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    """A real embedded Sail engine behind the Spark Connect API."""
    from lawlake import engine

    yield engine.session(engine.EMBEDDED)
    engine.stop()
