"""Expectation suites as data: every gated table's suite in Great Expectations' native format.

A suite is a list of GX expectation configurations (``type``, ``kwargs``, ``meta``,
``description``). Every gated table has one file, ``quality/suites/<table>.json``: the
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
from dataclasses import dataclass
from pathlib import Path

from lawlake.config import QUALITY_DIR
from lawlake.contracts import Contract

__all__ = ["Suite", "SUITES_DIR", "check", "contract_expectations", "load_suite", "suite_for", "suite_path", "write_suite", "code_list"]

SUITES_DIR = QUALITY_DIR / "suites"
CONTRACT = {"source": "contract"}


@dataclass(frozen=True)
class Suite:
    """A native suite: ``expectations`` are GX expectation configurations (``type``, ``kwargs``, ``meta``, ``description``)."""

    table: str
    expectations: tuple[dict, ...] = ()

    def to_json_dict(self) -> dict:
        return {"name": self.table, "expectations": [dict(e) for e in self.expectations], "meta": {"table": self.table}}

    def __add__(self, other: Suite) -> Suite:
        return Suite(self.table, self.expectations + other.expectations)


def check(name: str, sql: str) -> dict:
    """A SQL check as a native ``unexpected_rows_expectation``: ``sql`` must return no rows."""
    return {"type": "unexpected_rows_expectation", "kwargs": {"unexpected_rows_query": sql}, "meta": {"check": name}, "description": name}


def _expectation(type_: str, meta: dict | None = None, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": dict(meta or {})}


def suite_path(table: str) -> Path:
    return SUITES_DIR / f"{table}.json"


def load_suite(table: str) -> Suite | None:
    """A table's suite file, or None when it has none."""
    path = suite_path(table)
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return Suite(table=table, expectations=tuple(doc.get("expectations", [])))


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
