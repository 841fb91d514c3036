"""The disclosure policy of the open datasets: ``schemas/open/policy/disclosure.yaml`` with the minimum cell from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lawlake.fileio import read_yaml

__all__ = ["OpenPolicy", "load_policy", "POLICY_FILE"]

POLICY_FILE = Path(__file__).resolve().parents[2] / "schemas" / "open" / "policy" / "disclosure.yaml"


@dataclass(frozen=True)
class OpenPolicy:
    min_cell: int
    zeros_published: bool
    min_duration_cases: int
    province: str
    license: str
    publisher: str
    contact_email: str


def load_policy(min_cell: int, path: Path = POLICY_FILE) -> OpenPolicy:
    """The policy file's settings with ``min_cell`` (``Settings.open_min_cell``); a bad value is a ValueError naming it."""
    doc = read_yaml(path) or {}
    if doc.get("zeros") not in ("publish", "suppress"):
        raise ValueError(f"{path}: zeros must be 'publish' or 'suppress', got {doc.get('zeros')!r}")
    if int(min_cell) < 1:
        raise ValueError(f"open_min_cell must be at least 1, got {min_cell}")
    return OpenPolicy(
        min_cell=int(min_cell),
        zeros_published=doc["zeros"] == "publish",
        min_duration_cases=max(int(doc["min_duration_cases"]), int(min_cell)),
        province=str(doc["province"]),
        license=str(doc["license"]),
        publisher=str(doc["publisher"]),
        contact_email=str(doc["contact_email"]),
    )
