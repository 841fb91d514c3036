"""The gate: a table's native Great Expectations suite (:mod:`lawlake.suites`) run on its written candidate.

Great Expectations evaluates the suite on the candidate read back from Delta; an
expectation or check that raises counts as failed. Tables named in a check are read at
their versions in the latest complete release, or, when built in the same stage, as
the candidate about to be published with it. The gate never decides what to publish:
it returns a :class:`GateResult`, and the stage runner publishes only when it passed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lawlake import tables
from lawlake.suites import Suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["GateResult", "run_gate", "rule_rate_results"]


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


def _label(name: str, kwargs: dict) -> str:
    target = kwargs.get("column") or kwargs.get("column_list") or ""
    if isinstance(target, list):
        target = ",".join(target) if len(target) <= 4 else f"{len(target)} columns"
    return f"{name}({target})" if target else name


def _raised(info: dict) -> tuple[bool, str | None]:
    """Whether an expectation raised, and why: GX reports it flat, or per metric that failed."""
    if info.get("raised_exception"):
        return True, info.get("exception_message")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return True, value.get("exception_message")
    return False, None


def _run_expectations(df: DataFrame, expectations: list[dict]) -> list[dict]:
    gx, batch_definition = _gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name="gate")
    for e in expectations:
        # add_expectation, not add_expectation_configuration: the latter upserts by domain, so a
        # second SQL check on the same table would silently replace the first.
        config = ExpectationConfiguration(type=e["type"], kwargs=dict(e["kwargs"]), meta=dict(e.get("meta") or {}), description=e.get("description"))
        suite.add_expectation(config.to_domain_obj())
    if len(suite.expectations) != len(expectations):
        raise ValueError(f"suite {suite.name}: {len(expectations) - len(suite.expectations)} duplicate expectations")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    validation = batch.validate(suite, result_format="SUMMARY")
    out = []
    for r in validation.results:
        kwargs = dict(r.expectation_config.kwargs)
        meta = r.expectation_config.meta or {}
        label = f"check:{meta['check']}" if meta.get("check") else _label(r.expectation_config.type, kwargs)
        raised, message = _raised(r.exception_info or {})
        result = r.result or {}
        observed: Any = result.get("observed_value")
        unexpected = result.get("unexpected_count")
        if meta.get("check") and observed is not None:
            unexpected, observed = observed, f"{observed} violating rows"
        if observed is None and "unexpected_count" in result:
            observed = f"{result.get('unexpected_count')} unexpected ({(result.get('unexpected_percent') or 0):.3f}%)"
            sample = result.get("partial_unexpected_list") or []
            if sample:
                observed += f", e.g. {sample[:3]}"
        if raised:  # an expectation or check that cannot run is a failure, not a pass
            observed = f"raised: {message}"
        out.append(
            {
                "expectation": label,
                "success": bool(r.success) and not raised,
                "observed": observed,
                "threshold": kwargs.get("mostly", 0 if meta.get("check") else None),
                "unexpected_count": unexpected,
            }
        )
    return out


_REF = re.compile(r"\{((?:bronze|silver|gold|share|open|quarantine)\.[a-z0-9_.]+)\}")


def _resolve_refs(spark: SparkSession, expectations: list[dict], *, lake: Path, siblings: Mapping[str, Path], versions: Mapping[str, int]) -> list[dict]:
    """Replace ``{zone.table}`` in checks with temporary views of that table.

    A table built in the same stage is its candidate (``siblings``): the gate audits the
    set about to be published, not the one it replaces. Others are read at their
    released versions; a table no release holds yet fails the check that names it.
    """
    out = []
    for e in expectations:
        query = e["kwargs"].get("unexpected_rows_query")
        if not query:
            out.append(e)
            continue

        def ref(m: re.Match) -> str:
            name = m.group(1)
            view = "_gate_" + name.replace(".", "__")
            if name in siblings:
                df = tables.read(spark, siblings[name])
            elif name in versions:
                df = tables.read(spark, tables.location(lake, name), version=versions[name])
            else:
                raise LookupError(f"{name} is not in any release")
            df.createOrReplaceTempView(view)
            return view

        try:
            query = _REF.sub(ref, query)
        except LookupError as exc:
            query = f"SELECT '{exc}' AS unresolved FROM {{batch}} LIMIT 1"  # fails the check, naming why
        # GX fills {batch} with str.format: every other brace (regex quantifiers) is doubled.
        query = query.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")
        out.append({**e, "kwargs": {**e["kwargs"], "unexpected_rows_query": query}})
    return out


def _sample_violations(spark: SparkSession, df: DataFrame, expectations: list[dict], results: list[dict]) -> None:
    """Name up to three violating rows of each failed SQL check (GX returns rows only in COMPLETE format, for every expectation)."""
    queries = {f"check:{e['meta']['check']}": e["kwargs"]["unexpected_rows_query"] for e in expectations if (e.get("meta") or {}).get("check")}
    failed = [r for r in results if not r["success"] and r["expectation"] in queries and r["unexpected_count"]]
    if not failed:
        return
    df.createOrReplaceTempView("_gate_batch")
    for r in failed:
        try:
            sample = [row.asDict() for row in spark.sql(queries[r["expectation"]].format(batch="_gate_batch")).limit(3).collect()]
            r["observed"] += f", e.g. {sample}"
        except Exception:  # the count stands; a sample is only a help
            pass


def run_gate(
    spark: SparkSession,
    table: str,
    candidate: Path,
    *,
    lake: Path,
    suite: Suite,
    siblings: Mapping[str, Path] | None = None,
    versions: Mapping[str, int] | None = None,
) -> GateResult:
    """Validate the candidate Delta table at ``candidate`` against ``suite``."""
    start = time.perf_counter()
    df = tables.read(spark, candidate)
    expectations = _resolve_refs(spark, list(suite.expectations), lake=lake, siblings=siblings or {}, versions=versions or {})
    results = _run_expectations(df, expectations) if expectations else []
    _sample_violations(spark, df, expectations, results)
    rows = df.count()
    return GateResult(table=table, success=all(r["success"] for r in results), rows=rows, results=results, seconds=time.perf_counter() - start)


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
