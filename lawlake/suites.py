"""Expectation suites as data: every gated table's suite in Great Expectations' native format.

A suite is a list of GX expectation configurations (``type``, ``kwargs``, ``meta``,
``description``). Every gated table has one file in the Great Expectations file data
context under ``quality/gx/`` (its expectations store, ``quality/gx/expectations/<zone>/<table>.json``,
the path GX itself gives a suite named ``<zone>.<table>``): the
rules its contract implies (``meta.source = "contract"``: the exact column list,
not-null columns, a unique key, accepted values and code lists) plus the table's own
expectations, SQL checks among them as ``unexpected_rows_expectation`` over the
candidate (``{batch}``) and other tables by logical name (``{gold.case_chain}``).
:func:`write_suite` refreshes the contract part after a contract changes and keeps the
rest (``lawlake suites --write``); a test proves every file matches its contract. A share
table's suite is compiled from its partner policy (:mod:`jobs.share`).

This module only describes suites; :mod:`quality.gate` runs them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from lawlake.config import QUALITY_DIR
from lawlake.contracts import Contract

__all__ = ["Suite", "GX_DIR", "SUITES_DIR", "check", "contract_expectations", "load_suite", "suite_for", "suite_path", "write_suite", "code_list"]

GX_DIR = QUALITY_DIR / "gx"  # the file data context: great_expectations.yml and its stores
SUITES_DIR = GX_DIR / "expectations"
CONTRACT = {"source": "contract"}
_IDS = uuid.UUID("6f1c2a52-2b0e-4d0c-9a51-8b7f3e7f0c11")  # namespace of the suites' stable ids
GX_VERSION = "1.24.1"


@dataclass(frozen=True)
class Suite:
    """A native suite: ``expectations`` are GX expectation configurations (``type``, ``kwargs``, ``meta``, ``description``)."""

    table: str
    expectations: tuple[dict, ...] = ()

    def to_json_dict(self) -> dict:
        """The suite as GX's expectations store writes it, with ids that stay put across refreshes (no churn in git)."""
        expectations = [
            {"id": str(uuid.uuid5(_IDS, f"{self.table}#{i}:{json.dumps(e, sort_keys=True, ensure_ascii=False)}")), **e}
            for i, e in enumerate(self.expectations)
        ]
        return {
            "name": self.table,
            "id": str(uuid.uuid5(_IDS, self.table)),
            "expectations": expectations,
            "meta": {"great_expectations_version": GX_VERSION, "table": self.table},
            "notes": None,
        }

    def __add__(self, other: Suite) -> Suite:
        return Suite(self.table, self.expectations + other.expectations)


def check(name: str, sql: str) -> dict:
    """A SQL check as a native ``unexpected_rows_expectation``: ``sql`` must return no rows."""
    return {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": sql}, "meta": {"check": name}, "description": name}


def _expectation(type_: str, meta: dict | None = None, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": dict(meta or {})}


def suite_path(table: str) -> Path:
    """Where GX's filesystem store keeps the suite named ``table``: one folder per dot (``silver.custody`` → ``silver/custody.json``)."""
    return SUITES_DIR.joinpath(*table.split(".")).with_suffix(".json")


def load_suite(table: str) -> Suite | None:
    """A table's suite file, or None when it has none."""
    path = suite_path(table)
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    # ids and the severity GX fills in belong to the store, not to the rule
    return Suite(table=table, expectations=tuple({k: v for k, v in e.items() if k not in ("id", "severity")} for e in doc.get("expectations", [])))


def suite_for(table: str, *, contract: Contract, declared: Suite | None = None) -> Suite:
    """The suite a table is gated with: its declared one (share tables), its file, or, lacking both, its contract's rules."""
    if declared is not None:
        return declared
    return load_suite(table) or Suite(table, tuple(contract_expectations(contract)))


def write_suite(contract: Contract) -> Path:
    """Write (or refresh) a table's suite file: its contract's rules now, followed by its own expectations as they were."""
    own = [e for e in (load_suite(contract.table) or Suite(contract.table)).expectations if e.get("meta", {}).get("source") != "contract"]
    suite = Suite(contract.table, tuple(contract_expectations(contract)) + tuple(own))
    path = suite_path(contract.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite.to_json_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def code_list(name: str) -> list[str]:
    """The codes of a reference list (schemas/reference/), for in-set expectations."""
    from lawlake.rules import reference

    if name == "regions":
        return sorted(r.code for r in reference.regions())
    if name == "charges":
        return sorted(c.charge_code for c in reference.charges())
    raise ValueError(f"unknown code list {name!r}")


def contract_expectations(contract: Contract) -> list[dict]:
    """The expectations a contract implies, in native form."""
    exps = [_expectation("expect_table_columns_to_match_ordered_list", CONTRACT, column_list=contract.names)]
    for c in contract.columns:
        if not c.nullable:
            exps.append(_expectation("expect_column_values_to_not_be_null", CONTRACT, column=c.name))
        if c.accepted_values:
            exps.append(_expectation("expect_column_values_to_be_in_set", CONTRACT, column=c.name, value_set=list(c.accepted_values)))
        if c.code_list:
            exps.append(_expectation("expect_column_values_to_be_in_set", {**CONTRACT, "code_list": c.code_list}, column=c.name, value_set=code_list(c.code_list)))
    key = list(contract.primary_key)
    if len(key) == 1:
        exps.append(_expectation("expect_column_values_to_be_unique", CONTRACT, column=key[0]))
    elif key:
        exps.append(_expectation("expect_compound_columns_to_be_unique", CONTRACT, column_list=key))
    return exps
