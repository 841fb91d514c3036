"""Imports point down: CLI and DAG → runner → stages → rules, contracts, IO; nothing below imports what is above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lawlake.config import REPO_ROOT


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _files(folder: str) -> list[Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


# (files, modules they must never import)
RULES = [
    ("jobs", ("lawlake.pipeline", "lawlake.catalog", "lawlake.cli", "quality", "lawlake.lock", "lawlake.releases")),  # stages know nothing of the runner
    ("quality", ("jobs", "lawlake.pipeline", "lawlake.cli")),  # the gate runs suites; it does not know the stages
    ("lawlake/rules", ("jobs", "lawlake.pipeline", "quality", "lawlake.cli")),
    ("lawlake/sharing", ("lawlake.cli", "jobs", "lawlake.pipeline")),  # the CLI imports the sharing CLI, never the reverse
    ("lawlake/opendata", ("lawlake.cli", "lawlake.pipeline")),
]


@pytest.mark.parametrize("folder, forbidden", RULES, ids=[r[0] for r in RULES])
def test_imports_point_down(folder, forbidden):
    offenders = []
    for path in _files(folder):
        for module in _imports(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert offenders == []


def test_the_runner_finds_stages_by_import_not_by_attribute_name():
    source = (REPO_ROOT / "lawlake" / "pipeline.py").read_text(encoding="utf-8")
    assert "importlib" not in source and "hasattr(" not in source
