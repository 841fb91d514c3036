"""Configuration, chosen once per process: lake root, catalog URL, engine.

Order of precedence: explicit arguments (CLI flags, DAG params) > environment
(``LAWLAKE_LAKE``, ``LAWLAKE_CATALOG_URL``, ``LAWLAKE_ENGINE``, ``LAWLAKE_OPEN_MIN_CELL``,
``LAWLAKE_WARNING_DAYS_BEFORE``, ``LAWLAKE_OPENLINEAGE_URL``) > defaults
(``./lake``, a SQLite catalog inside the lake, the embedded Sail engine).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "load", "load_thresholds", "REPO_ROOT", "SCHEMAS_DIR", "QUALITY_DIR"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "schemas"
QUALITY_DIR = REPO_ROOT / "quality"


@dataclass(frozen=True)
class Settings:
    """Where the lake and its catalog live and which engine runs the jobs."""

    lake: Path
    catalog_url: str
    engine: str = "embedded"
    # Smallest count an open dataset may publish; smaller cells are suppressed.
    open_min_cell: int = 10
    # Days before a statutory deadline from which an open stage is warned about (gold.time_limit_warnings).
    warning_days_before: int = 5
    thresholds: dict = field(default_factory=dict)
    # Where OpenLineage events go: a Marquez-compatible HTTP endpoint, or None for files under <lake>/_lineage/.
    openlineage_url: str | None = None

    @property
    def secret_key(self) -> bytes:
        """The lake's key for pseudonyms and signed URLs, created on first use.

        Kept in the lake's private ``_catalog`` folder (mode 0600) unless
        ``LAWLAKE_SECRET_KEY`` supplies it, as production deployments should.
        """
        env = os.environ.get("LAWLAKE_SECRET_KEY")
        if env:
            return env.encode()
        path = self.lake / "_catalog" / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip().encode()


def load_thresholds(path: str | Path | None = None) -> dict:
    """Gate thresholds: ``{table: {rule: minimum pass rate}, "default": rate}`` from YAML."""
    from lawlake.fileio import read_yaml

    path = Path(path or os.environ.get("LAWLAKE_THRESHOLDS") or QUALITY_DIR / "thresholds.yaml")
    doc = read_yaml(path) or {}
    for table, rules in doc.items():
        values = rules.values() if isinstance(rules, dict) else [rules]
        if any(not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in values):
            raise ValueError(f"{path}: thresholds of {table} must be rates between 0 and 1")
    return doc


def load(lake: str | Path | None = None, catalog_url: str | None = None, engine: str | None = None) -> Settings:
    """Settings from arguments, then environment, then defaults."""
    lake_path = Path(lake or os.environ.get("LAWLAKE_LAKE") or "lake").expanduser().resolve()
    url = catalog_url or os.environ.get("LAWLAKE_CATALOG_URL") or f"sqlite:///{lake_path / '_catalog' / 'catalog.db'}"
    eng = engine or os.environ.get("LAWLAKE_ENGINE") or "embedded"
    min_cell = int(os.environ.get("LAWLAKE_OPEN_MIN_CELL", "10"))
    warning_days = int(os.environ.get("LAWLAKE_WARNING_DAYS_BEFORE", "5"))
    if warning_days < 0:
        raise ValueError(f"LAWLAKE_WARNING_DAYS_BEFORE must be a number of days >= 0, got {warning_days}")
    return Settings(lake=lake_path, catalog_url=url, engine=eng, open_min_cell=min_cell, warning_days_before=warning_days, thresholds=load_thresholds(),
                    openlineage_url=os.environ.get("LAWLAKE_OPENLINEAGE_URL") or None)
