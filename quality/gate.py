"""The gate: a table's expectation suite run on its written candidate.

A table's suite is the union of
- the rules its contract implies: the exact column list, not-null columns, a unique
  key, accepted values;
- the table's own suite, ``quality/suites/<table>.yaml``: further Great Expectations
  expectations (by their snake_case name and keyword arguments) and SQL checks
  (queries over the candidate, ``{candidate}``, and published tables, ``{gold.x}``,
  that must return no rows).

Great Expectations evaluates the expectations on the candidate read back from Delta;
an expectation that raises counts as failed. The gate never decides what to publish:
it returns a :class:`GateResult`, and the stage runner publishes only when it passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lawlake import tables
from lawlake.config import QUALITY_DIR
from lawlake.contracts import Contract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["GateResult", "Suite", "load_suite", "run_gate", "rule_rate_results"]


@dataclass(frozen=True)
class Suite:
    table: str
    expectations: tuple[tuple[str, dict], ...] = ()
    checks: tuple[dict, ...] = ()


@dataclass
class GateResult:
    """The outcome of one table's gate: one entry per expectation or check."""

    table: str
    success: bool
    rows: int
    results: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def add(self, results: list[dict]) -> None:
        """Add results judged outside GX (rule pass rates); the gate fails if any fails."""
        self.results.extend(results)
        self.success = self.success and all(r["success"] for r in results)

    def describe_failures(self) -> str:
        return "; ".join(f"{r['expectation']}: {r.get('observed')}" for r in self.failures)


def load_suite(table: str, *, suites_dir: Path | None = None) -> Suite:
    """A table's own suite file (an empty suite when the table has none)."""
    path = (suites_dir or QUALITY_DIR / "suites") / f"{table}.yaml"
    if not path.exists():
        return Suite(table=table)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    exps = []
    for item in doc.get("expectations", []):
        ((name, kwargs),) = item.items()
        exps.append((name, dict(kwargs or {})))
    return Suite(table=table, expectations=tuple(exps), checks=tuple(doc.get("checks", [])))


def code_list(name: str) -> list[str]:
    """The codes of a reference list (schemas/reference/), for in-set expectations."""
    from lawlake.rules import reference

    if name == "regions":
        return sorted(r.code for r in reference.regions())
    if name == "charges":
        return sorted(c.charge_code for c in reference.charges())
    raise ValueError(f"unknown code list {name!r}")


def contract_expectations(contract: Contract) -> list[tuple[str, dict]]:
    """The expectations a contract implies."""
    exps: list[tuple[str, dict]] = [("expect_table_columns_to_match_ordered_list", {"column_list": contract.names})]
    for c in contract.columns:
        if not c.nullable:
            exps.append(("expect_column_values_to_not_be_null", {"column": c.name}))
        if c.accepted_values:
            exps.append(("expect_column_values_to_be_in_set", {"column": c.name, "value_set": list(c.accepted_values)}))
        if c.code_list:
            exps.append(("expect_column_values_to_be_in_set", {"column": c.name, "value_set": code_list(c.code_list)}))
    key = list(contract.primary_key)
    if len(key) == 1:
        exps.append(("expect_column_values_to_be_unique", {"column": key[0]}))
    elif key:
        exps.append(("expect_compound_columns_to_be_unique", {"column_list": key}))
    return exps


@lru_cache(maxsize=1)
def _gx():
    import os

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TQDM_DISABLE", "1")  # GX's per-expectation progress bars drown the task log
    import logging

    import great_expectations as gx

    # GX logs a warning per expectation for every optional field it fills in; only errors matter here.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_spark(name="lawlake")
    batch_definition = source.add_dataframe_asset(name="candidate").add_batch_definition_whole_dataframe("whole")
    return gx, batch_definition


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _label(name: str, kwargs: dict) -> str:
    target = kwargs.get("column") or kwargs.get("column_list") or ""
    if isinstance(target, list):
        target = ",".join(target) if len(target) <= 4 else f"{len(target)} columns"
    return f"{name}({target})" if target else name


def _run_expectations(df: "DataFrame", expectations: list[tuple[str, dict]]) -> list[dict]:
    gx, batch_definition = _gx()
    suite = gx.ExpectationSuite(name="gate")
    for name, kwargs in expectations:
        cls = getattr(gx.expectations, _class_name(name), None)
        if cls is None:
            raise ValueError(f"unknown expectation {name!r}")
        suite.add_expectation(cls(**kwargs))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    validation = batch.validate(suite, result_format="SUMMARY")
    out = []
    for r in validation.results:
        # Expectations of an unsaved suite have no ids: each result names itself by type and arguments.
        kwargs = dict(r.expectation_config.kwargs)
        label = _label(r.expectation_config.type, kwargs)
        raised = bool((r.exception_info or {}).get("raised_exception"))
        result = r.result or {}
        observed: Any = result.get("observed_value")
        if observed is None and "unexpected_count" in result:
            observed = f"{result.get('unexpected_count')} unexpected ({(result.get('unexpected_percent') or 0):.3f}%)"
            sample = result.get("partial_unexpected_list") or []
            if sample:
                observed += f", e.g. {sample[:3]}"
        if raised:
            observed = f"raised: {(r.exception_info or {}).get('exception_message')}"
        out.append(
            {
                "expectation": label,
                "success": bool(r.success) and not raised,
                "observed": observed,
                "threshold": kwargs.get("mostly"),
                "unexpected_count": result.get("unexpected_count"),
            }
        )
    return out


def _sql(sql: str, *, candidate: Path, lake: Path, siblings: dict[str, Path]) -> str:
    """Fill ``{candidate}`` and ``{zone.table}`` placeholders with Delta path references.

    A table built in the same stage resolves to its candidate (``siblings``): the gate
    audits the set about to be published, not the one it replaces.
    """
    import re

    def ref(m: re.Match) -> str:
        name = m.group(1)
        path = candidate if name == "candidate" else siblings.get(name) or tables.location(lake, name)
        return f"delta.`{path}`"

    return re.sub(r"\{(candidate|(?:bronze|silver|gold|share|open|quarantine)\.[a-z0-9_.]+)\}", ref, sql)


def _run_checks(spark: "SparkSession", checks: tuple[dict, ...], *, candidate: Path, lake: Path, siblings: dict[str, Path]) -> list[dict]:
    out = []
    for check in checks:
        query = _sql(check["sql"], candidate=candidate, lake=lake, siblings=siblings)
        try:
            bad = spark.sql(query)
            n = bad.count()
            sample = [r.asDict() for r in bad.limit(3).collect()] if n else []
            out.append({"expectation": f"check:{check['name']}", "success": n == 0, "observed": f"{n} violating rows" + (f", e.g. {sample}" if sample else ""), "threshold": 0, "unexpected_count": n})
        except Exception as exc:  # a check that cannot run is a failed check, not a pass
            out.append({"expectation": f"check:{check['name']}", "success": False, "observed": f"raised: {exc}", "threshold": 0, "unexpected_count": None})
    return out


def run_gate(
    spark: "SparkSession",
    table: str,
    candidate: Path,
    *,
    lake: Path,
    contract: Contract | None,
    suite: Suite | None = None,
    siblings: dict[str, Path] | None = None,
) -> GateResult:
    """Validate the candidate Delta table at ``candidate`` against ``table``'s suite."""
    start = time.perf_counter()
    suite = suite or load_suite(table)
    df = tables.read(spark, candidate)
    expectations = (contract_expectations(contract) if contract else []) + list(suite.expectations)
    results = _run_expectations(df, expectations) if expectations else []
    results += _run_checks(spark, suite.checks, candidate=candidate, lake=lake, siblings=siblings or {})
    rows = df.count()
    return GateResult(
        table=table,
        success=all(r["success"] for r in results),
        rows=rows,
        results=results,
        seconds=time.perf_counter() - start,
    )


def rule_rate_results(metrics: list[dict], thresholds: dict[str, float], *, default: float | None) -> list[dict]:
    """Judge each rule's pass rate (share of the values it checked that it accepted) against its threshold.

    A rule with no threshold (and no default) is reported, not judged. Rejected rows are
    quarantined either way; the threshold decides whether so many rejections still
    let the table be published.
    """
    out = []
    for m in metrics:
        threshold = thresholds.get(m["rule"], default)
        rate = 1.0 if m["applicable"] == 0 else 1 - m["rejected"] / m["applicable"]
        out.append(
            {
                "expectation": f"rule_pass_rate({m['rule']})",
                "success": threshold is None or rate >= threshold,
                "observed": f"{rate:.2%} of {m['applicable']} checked ({m['rejected']} quarantined)",
                "threshold": threshold,
                "unexpected_count": m["rejected"],
            }
        )
    return out
