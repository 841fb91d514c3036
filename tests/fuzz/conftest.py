"""The long randomized fuzz run (marker ``fuzz``) runs only when asked for: ``make fuzz`` or ``pytest -m fuzz``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "fuzz" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the long randomized fuzz run: `make fuzz` (pytest -m fuzz)")
    for item in items:
        if item.get_closest_marker("fuzz"):
            item.add_marker(skip)
