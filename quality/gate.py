"""The gate: a table's native Great Expectations suite (:mod:`lawlake.suites`) run on its written candidate.

Great Expectations evaluates the suite on the candidate read back from Delta; an
expectation or check that raises counts as failed. Tables named in a check are read at
their versions in the latest complete release, or, when built in the same stage, as
the candidate about to be published with it. The gate never decides what to publish:
it returns a :class:`GateResult`, and the stage runner publishes only when it passed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lawlake import sealing, tables
from lawlake.suites import Suite
from quality.context import GateContext, ephemeral_context, run_context
from quality.context import gx as gx_module

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["GateResult", "SharedViews", "run_gate", "rule_rate_results", "quarantine_reference"]

log = logging.getLogger(__name__)
POSITION = "gate_position"
SQL_CHECK = "unexpected_rows_expectation"
COUNTED = "unexpected_rows_counted"  # the decision pass's form of a SQL check (:func:`_counted_check`)


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


def _is_map(type_: str) -> bool:
    """A row rule (column, pair or multicolumn map expectation): passing without ``mostly`` means no unexpected row."""
    from great_expectations.expectations.registry import get_expectation_impl

    return getattr(get_expectation_impl(type_), "map_metric", None) is not None


def _needs_details(config: dict, passed: bool, raised: bool) -> bool:
    """Whether an expectation is validated a second time for its counts, observed value and unexpected values."""
    if raised:
        return False  # it would raise again; the first pass says why
    if config["type"] != SQL_CHECK and not _is_map(config["type"]):
        return True  # a table-level expectation: its observed value is the point, and it costs no row scan of its own
    return not passed or config["kwargs"].get("mostly") is not None


def _implied(config: dict, rows: int) -> dict:
    """The result a passing row rule or check without ``mostly`` implies: no unexpected row (the first pass computed the count)."""
    if config["type"] == SQL_CHECK:
        return {"observed_value": 0}
    return {"element_count": rows, "unexpected_count": 0, "unexpected_percent": 0.0, "partial_unexpected_list": []}


COUNTS = "lawlake_checks.row_counts"  # the metric: every SQL check of a suite counted in one query
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
_MISSING = {"all_values_are_missing": " OR ", "any_value_is_missing": " AND "}  # how a compound key's rows GX ignores are left out


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _counted_query(e: dict) -> str | None:
    """The query the decision pass counts for an expectation, or None: GX decides it its own way.

    A SQL check: its own query. A key's uniqueness (``expect_column_values_to_be_unique``,
    ``expect_compound_columns_to_be_unique``, without ``mostly`` or a row condition): its
    duplicated key values, grouped — none exactly when GX's form, a window partitioned by the
    key over every row, finds no unexpected row, and 4–8× faster on Sail (gold.person_records
    at scale 400: 0.4–0.5 s against 2.0–4.0 s). The rows GX leaves out are left out: a null
    value, and a compound key's rows as its ``ignore_row_if`` says. A key that fails is
    validated again as GX's own, for its unexpected count and values.
    """
    kwargs = e["kwargs"]
    if e["type"] == SQL_CHECK:
        return kwargs["unexpected_rows_query"]
    if kwargs.get("mostly") is not None or kwargs.get("row_condition"):
        return None
    ignore = kwargs.get("ignore_row_if", "all_values_are_missing")  # GX's default for a compound key
    if e["type"] == UNIQUE:
        columns, joiner = [kwargs["column"]], ""  # one column: its nulls are left out
    elif e["type"] == COMPOUND_UNIQUE and ignore in _MISSING:
        columns, joiner = list(kwargs["column_list"]), _MISSING[ignore]
    else:
        return None
    key = ", ".join(_quoted(c) for c in columns)
    kept = joiner.join(f"{_quoted(c)} IS NOT NULL" for c in columns)
    return f"SELECT {key} FROM {{batch}} WHERE {kept} GROUP BY {key} HAVING COUNT(*) > 1"


@lru_cache(maxsize=1)
def _counted_check() -> type:
    """A suite's SQL checks decided in one engine query: ``unexpected_rows_expectation`` that counts its rows and fetches none.

    GX's ``unexpected_rows_expectation`` depends on two metrics, the query's rows (up to
    200, fetched) and their count, so every result format runs the query twice; and each
    check registers the batch as a view and runs its query on its own. The decision needs
    the counts only. This subclass (a custom expectation, registered with GX as
    ``unexpected_rows_counted``) depends on one metric of the whole suite's checks
    (``suite_checks``, the same for every check, so GX computes it once): the batch
    registered once and every query counted as a scalar subquery of one SELECT. Each check
    reads its count by its place (``check_position``). Should that query fail, each query
    is counted on its own and a check whose query fails raises alone. A check that fails is
    validated again as GX's own, in COMPLETE, for its violating rows.
    """
    gx_module()
    from great_expectations.core.metric_domain_types import MetricDomainTypes
    from great_expectations.execution_engine import SparkDFExecutionEngine
    from great_expectations.expectations.core.unexpected_rows_expectation import UnexpectedRowsExpectation
    from great_expectations.expectations.metrics.metric_provider import metric_value
    from great_expectations.expectations.metrics.query_metric_provider import QueryMetricProvider

    class SuiteCheckRowCounts(QueryMetricProvider):
        """The row count of each query of ``suite_checks`` over the batch; a query that cannot run: its error, as text."""

        metric_name = COUNTS
        value_keys = ("suite_checks",)

        @metric_value(engine=SparkDFExecutionEngine)
        def _spark(cls, execution_engine, metric_domain_kwargs: dict, metric_value_kwargs: dict, metrics: dict, runtime_configuration: dict) -> list:
            df, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
            df.createOrReplaceTempView("tmp_view")
            queries = [cls._format_query(q, batch="tmp_view") for q in metric_value_kwargs["suite_checks"]]
            spark = execution_engine.spark
            try:
                row = spark.sql("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM ({q}) q{i}) AS c{i}" for i, q in enumerate(queries))).collect()[0]
                return [int(n) for n in row]
            except Exception as together:  # one query that cannot run: find it, and count the others on their own
                log.info("[lawlake] gate: %d SQL checks counted one by one (together: %s)", len(queries), str(together).splitlines()[0][:200])
                counts: list = []
                for q in queries:
                    try:
                        counts.append(spark.sql(q).count())
                    except Exception as exc:
                        counts.append(f"{type(exc).__name__}: {exc}")
                return counts

    class UnexpectedRowsCounted(UnexpectedRowsExpectation):
        """The rows of ``unexpected_rows_query`` counted (with the suite's other checks): success when there are none."""

        suite_checks: list[str]
        check_position: int
        metric_dependencies: ClassVar[tuple[str, ...]] = (COUNTS,)
        success_keys: ClassVar[tuple[str, ...]] = ("unexpected_rows_query", "suite_checks")

        def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
            count = metrics[COUNTS][self.check_position]
            if isinstance(count, str):
                raise RuntimeError(count)  # GX reports it as this check's exception: never a pass
            return {"success": count == 0, "result": {"observed_value": count}}

    return UnexpectedRowsCounted


def _validate(ctx, df: DataFrame, name: str, expectations: list[dict], *, rows: int, notes: str | None):
    """Validate one batch of the candidate against the suite, in as few engine queries as GX allows.

    GX's Spark engine computes a row rule's unexpected count as an aggregate and bundles
    the aggregates sharing a domain into one query, but any result format above
    BOOLEAN_ONLY adds a query per expectation for its unexpected values, and a SQL check
    runs its query for a count and again for rows in every format. So the whole suite runs
    once in BOOLEAN_ONLY (the decision), its SQL checks and key uniqueness counted together in one query
    (:func:`_counted_check`, :func:`_counted_query`), and only the expectations that failed or carry a ``mostly`` run again: row rules in
    SUMMARY (counts and unexpected values), SQL checks in COMPLETE (their violating rows).
    The second pass replaces the first's entries, so the saved validation result is one
    result for the whole suite, and every entry names its expectation as the suite does.
    """
    gx = gx_module()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    _counted_check()

    counted = {i: q for i, e in enumerate(expectations) if (q := _counted_query(e)) is not None}
    checks = list(counted.values())
    position = {i: n for n, i in enumerate(counted)}

    def configuration(i: int, *, decide: bool = False) -> ExpectationConfiguration:
        # GX orders results its own way: each carries its place in the suite (meta.gate_position).
        e = expectations[i]
        kwargs = dict(e["kwargs"])
        kind = e["type"]
        if decide and i in counted:  # counted with the suite's other checks and keys, in one query
            kind = COUNTED
            kwargs = (kwargs if e["type"] == SQL_CHECK else {"unexpected_rows_query": counted[i]}) | {"suite_checks": checks, "check_position": position[i]}
        return ExpectationConfiguration(type=kind, kwargs=kwargs, meta={**(e.get("meta") or {}), POSITION: i}, description=e.get("description"))

    def suite_of(picked: list[int], suite_name: str, *, decide: bool = False):
        # The suite is a set: two expectations alike but for their meta are one (GX's own test). Built whole, not by
        # add_expectation, which writes the whole suite to the run's store per expectation once a suite of that name
        # is saved (quarantine.records is gated in every stage); an invalid one GX leaves out is caught by the count.
        alike = [(expectations[i]["type"], json.dumps(expectations[i]["kwargs"], sort_keys=True, default=str), expectations[i].get("description")) for i in picked]
        if len(set(alike)) != len(alike):
            raise ValueError(f"suite {suite_name}: {len(alike) - len(set(alike))} duplicate expectations")
        suite = gx.ExpectationSuite(name=suite_name, notes=notes, expectations=[configuration(i, decide=decide).to_domain_obj() for i in picked])
        if len(suite.expectations) != len(picked):
            raise ValueError(f"suite {suite_name}: GX refused {len(picked) - len(suite.expectations)} expectation(s) as invalid")
        return suite

    def by_position(validation) -> dict[int, Any]:
        return {r.expectation_config.meta[POSITION]: r for r in validation.results}

    everything = list(range(len(expectations)))
    batch = ctx.batch(df)
    validation = batch.validate(suite_of(everything, name, decide=True), result_format="BOOLEAN_ONLY")
    first = by_position(validation)
    if sorted(first) != everything:
        raise RuntimeError(f"suite {name}: GX returned {len(first)} results for {len(expectations)} expectations")
    again: dict[str, list[int]] = {"SUMMARY": [], "COMPLETE": []}
    for i, e in enumerate(expectations):
        if _needs_details(e, bool(first[i].success), _raised(first[i].exception_info or {})[0]):
            again["COMPLETE" if e["type"] == SQL_CHECK else "SUMMARY"].append(i)
    final = dict(first)
    for result_format, picked in again.items():
        if picked:
            detailed = by_position(batch.validate(suite_of(picked, f"{name}.details"), result_format=result_format))
            for i in picked:
                r = detailed[i]
                r.success = bool(r.success) and bool(first[i].success)  # the same data judged twice: a disagreement fails
                final[i] = r
    for i, r in final.items():
        if r.expectation_config.type == COUNTED:  # decided by the count: named as the suite names it, with what its pass implies
            r.expectation_config = configuration(i)
            if r.success:
                r.result = _implied(expectations[i], rows)
        elif r.success and not r.result and not _raised(r.exception_info or {})[0]:
            r.result = _implied(expectations[i], rows)
    validation.results = [final[i] for i in everything]  # in the suite's order
    for r in validation.results:
        r.expectation_config.meta.pop(POSITION, None)
    return suite_of(everything, name), batch, validation


def _gate_results(validation) -> list[dict]:
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
            sample = (result.get("details") or {}).get("unexpected_rows") or []
            if sample:
                observed += f", e.g. {sample[:3]}"
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


_INSTANCES = itertools.count()
_REF = re.compile(r"\{((?:bronze|silver|gold|share|open|quarantine|gate)\.[a-z0-9_.]+)\}")


class SharedViews:
    """The views a stage's checks share, named ``{gate.<name>}`` in their SQL; each runs once per stage's gate.

    A view's SQL names tables as checks do (``{zone.table}``: the stage's candidate, or
    the released version). The engine caches nothing and inlines every reference, so a
    view several tables' checks use (the silver evidence of minors, over every chain in
    gold) would run once per table: with ``folder`` it is written there as Parquet the
    first time a check names it, and every check reads that. The file is named by what
    the view reads (each table's released version, or its candidate's path), so a later
    stage of the same run whose gate reads the same versions (open after share) reads it
    too instead of computing it again. Without ``folder`` (a gate run on its own) each
    check runs the view's SQL inline: the same rows, at the cost of computing them again.
    """

    def __init__(self, spark: SparkSession, definitions: Mapping[str, str] | None = None, *, lake: Path, siblings: Mapping[str, Path],
                 versions: Mapping[str, int], folder: Path | None = None):
        self.spark, self.folder = spark, folder
        self.definitions = dict(sealing.GATE_VIEWS if definitions is None else definitions)  # the project's: lawlake.sealing
        self.lake, self.siblings, self.versions = lake, siblings, versions
        self._made: dict[str, str] = {}  # what this instance registered: name -> its temporary view
        self._prefix = f"_gate{next(_INSTANCES)}_"  # its own view names: another instance's registrations never replace them
        self.seconds: dict[str, float] = {}

    def view(self, name: str) -> str:
        """The temporary view holding ``name``'s rows (``LookupError`` when it names a table no release holds)."""
        if name in self._made:
            return self._made[name]
        if name not in self.definitions:
            raise LookupError(f"{name} is not a shared gate view")
        start = time.perf_counter()
        sql = _REF.sub(self.table_ref, self.definitions[name])
        how = "inline"
        if self.folder is None:
            df = self.spark.sql(sql)
        else:
            path = self.folder / f"{name.split('.', 1)[1]}-{self._reads_digest(name)}"
            done = path / "_lawlake_complete"  # written last: a file left by a failed write is written again
            how = "read again: the same versions as an earlier stage's gate"
            if not done.is_file():
                self.spark.sql(sql).write.mode("overwrite").parquet(str(path))
                done.touch()
                how = "written once for the run's gates that read the same versions"
            df = self.spark.read.parquet(str(path))
        view = self._register(name, df)
        self.seconds[name] = time.perf_counter() - start
        log.info("[lawlake] gate view %s: %s in %.1fs", name, how, self.seconds[name])
        return view

    def _reads_digest(self, name: str) -> str:
        """What the view's rows depend on: its SQL and, per table it names, the candidate's path or the released version."""
        sql = self.definitions[name]
        reads = []
        for ref in sorted(set(_REF.findall(sql))):
            if ref.startswith("gate."):
                reads.append(f"{ref}={self._reads_digest(ref)}")
            elif ref in self.siblings:
                reads.append(f"{ref}=candidate:{self.siblings[ref]}")
            else:
                reads.append(f"{ref}=v{self.versions.get(ref)}")
        return hashlib.sha256("\0".join([sql, *reads]).encode()).hexdigest()[:16]

    def table_ref(self, m: re.Match) -> str:
        """``{zone.table}`` as a temporary view: a shared view, the stage's candidate, or the released version (registered
        once for the stage's checks: each registration is an engine call)."""
        name = m.group(1)
        if name.startswith("gate."):
            return self.view(name)
        if name in self._made:
            return self._made[name]
        if name in self.siblings:
            df = tables.read(self.spark, self.siblings[name])
        elif name in self.versions:
            df = tables.read(self.spark, tables.location(self.lake, name), version=self.versions[name])
        else:
            raise LookupError(f"{name} is not in any release")
        return self._register(name, df)

    def _register(self, name: str, df: DataFrame) -> str:
        """``df`` as this instance's temporary view of ``name``, kept for every later check that names it."""
        view = self._prefix + name.replace(".", "__")
        df.createOrReplaceTempView(view)
        self._made[name] = view  # only once registered
        return view


def _resolve_refs(expectations: list[dict], views: SharedViews) -> list[dict]:
    """Replace ``{zone.table}`` in checks with temporary views of that table.

    A table built in the same stage is its candidate (``siblings``): the gate audits the
    set about to be published, not the one it replaces. Others are read at their
    released versions; a table no release holds yet fails the check that names it.
    ``{gate.<name>}`` is a view the stage's checks share (:class:`SharedViews`).
    """
    out = []
    for e in expectations:
        query = e["kwargs"].get("unexpected_rows_query")
        if not query:
            out.append(e)
            continue
        try:
            query = _REF.sub(views.table_ref, query)
        except LookupError as exc:
            query = f"SELECT '{exc}' AS unresolved FROM {{batch}} LIMIT 1"  # fails the check, naming why
        # GX fills {batch} with str.format: every other brace (regex quantifiers) is doubled.
        query = query.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")
        out.append({**e, "kwargs": {**e["kwargs"], "unexpected_rows_query": query}})
    return out


def quarantine_reference(lake: Path, table: str, run_id: str | None) -> str:
    """The command (and the Delta table and filter behind it) listing the rows a run quarantined for ``table``."""
    run = f" --run {run_id}" if run_id else ""
    where = f"target_table = '{table}'" + (f" AND run_id = '{run_id}'" if run_id else "")
    return f"lawlake quarantine --lake {lake} --table {table}{run}  (Delta table {tables.location(lake, 'quarantine.records')} where {where})"


def _describe_failure(r, reference: str) -> str:
    """What a failed expectation's line in Data Docs says beside GX's own rendering: its violating rows and the quarantined ones."""
    meta = r.expectation_config.meta or {}
    result = r.result or {}
    head = meta.get("check") or r.expectation_config.description or _label(r.expectation_config.type, dict(r.expectation_config.kwargs))
    rows = (result.get("details") or {}).get("unexpected_rows") or []
    sample = f"; violating rows, e.g. {rows[:3]}" if rows else ""
    return f"{head} FAILED{sample}. Quarantined rows: {reference}"


def _save(ctx: GateContext, suite, validation, *, table: str, stage: str | None, candidate: Path, reference: str) -> None:
    """Keep the suite as it ran, its validation definition and the validation result in the run's context."""
    gx = gx_module()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier, ValidationResultIdentifier

    context = ctx.context
    for e in suite.expectations:
        e.meta.pop(POSITION, None)
    # the definition's add_or_update saves its suite too (and returns it saved): saved once, not twice
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=f"{stage or 'gate'}:{table}", data=ctx.batch_definition, suite=suite))
    suite = definition.suite
    for r in validation.results:
        if not r.success:  # GX renders the description in place of its sentence: name the rows behind the failure
            r.expectation_config.description = _describe_failure(r, reference)
    run_id = RunIdentifier(run_name=f"{ctx.run_id}_{stage}" if stage else ctx.run_id, run_time=datetime.now(UTC))
    validation.meta.update({
        "run_id": run_id, "validation_time": run_id.run_time, "validation_id": definition.id, "checkpoint_id": None,
        # rendered under the page's "Info": where the candidate and the quarantined rows are
        "batch_parameters": {"dataframe": f"candidate {candidate}", "quarantined rows": reference},
    })
    key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name), run_id=run_id, batch_identifier=validation.batch_id or table)
    context.validation_results_store.store_validation_results(
        suite_validation_result=validation, suite_validation_result_identifier=key, expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
    )


def run_gate(
    spark: SparkSession,
    table: str,
    candidate: Path,
    *,
    lake: Path,
    suite: Suite,
    siblings: Mapping[str, Path] | None = None,
    versions: Mapping[str, int] | None = None,
    run_id: str | None = None,
    stage: str | None = None,
    views: SharedViews | None = None,
) -> GateResult:
    """Validate the candidate Delta table at ``candidate`` against ``suite``.

    With ``run_id``, the run's data context keeps the suite as it ran and the validation
    result (for Data Docs); without, nothing is kept. Saving never decides the gate.
    ``views``: the stage's shared views (built with the same ``siblings`` and
    ``versions``); without, each check computes the views it names itself.
    """
    start = time.perf_counter()
    df = tables.read(spark, candidate)
    if views is None:
        views = SharedViews(spark, lake=lake, siblings=siblings or {}, versions=versions or {})
    expectations = _resolve_refs(list(suite.expectations), views)
    results: list[dict] = []
    rows = tables.count(spark, candidate)
    if expectations:
        ctx = run_context(lake, run_id) if run_id else ephemeral_context()
        reference = quarantine_reference(lake, table, run_id)
        gx_suite, _, validation = _validate(ctx, df, table, expectations, rows=rows, notes=f"Candidate {candidate}. Quarantined rows: {reference}")
        results = _gate_results(validation)
        if ctx.keeps_results:
            try:
                _save(ctx, gx_suite, validation, table=table, stage=stage, candidate=candidate, reference=reference)
            except Exception as exc:  # evidence for Data Docs only: the catalog holds the gate's record
                log.warning("[lawlake] gate %s: validation result not saved for Data Docs: %s", table, exc)
    return GateResult(table=table, success=all(r["success"] for r in results), rows=rows, results=results, seconds=time.perf_counter() - start)


CONFIDENCE_Z = 1.96  # two-sided 95%: a rule fails only when its rejections are too many beyond chance


def rejected_share_lower_bound(rejected: int, applicable: int, z: float = CONFIDENCE_Z) -> float:
    """The lower end of the Wilson score interval of the rejected share: the least share of bad values a delivery
    with ``rejected`` of ``applicable`` can plausibly have (0 when nothing was checked or rejected)."""
    if applicable == 0 or rejected == 0:
        return 0.0
    n, p = applicable, rejected / applicable
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


def rule_rate_results(metrics: list[dict], thresholds: dict[str, float], *, default: float | None) -> list[dict]:
    """Judge each rule's pass rate (share of the values it checked that it accepted) against its threshold.

    A rule fails when the share of values it rejected is, with 95% confidence, above what
    its threshold allows: when the lower end of the share's Wilson score interval is over
    ``1 - threshold``. On many values that is the rate itself (a court system exporting
    case numbers in a new format fails); on the few values of a new day's slice one
    mistyped identity number among 26 is chance, not a broken delivery, and passes (its
    record is quarantined either way). A threshold of 1 fails on any rejection. A rule with
    no threshold (and no default) is reported, not judged. Rejected rows are quarantined
    either way; the threshold decides whether so many rejections still let the table be
    published.
    """
    out = []
    for m in metrics:
        threshold = thresholds.get(m["rule"], default)
        rate = 1.0 if m["applicable"] == 0 else 1 - m["rejected"] / m["applicable"]
        bound = rejected_share_lower_bound(m["rejected"], m["applicable"])
        judged = f"; rejected at least {bound:.2%} at 95% confidence" if threshold is not None and rate < threshold else ""
        out.append(
            {
                "expectation": f"rule_pass_rate({m['rule']})",
                "success": threshold is None or rate >= threshold or bound <= 1 - threshold,
                "observed": f"{rate:.2%} of {m['applicable']} checked ({m['rejected']} quarantined){judged}" + (f"; {m['note']}" if m.get("note") else ""),
                "threshold": threshold,
                "unexpected_count": m["rejected"],
            }
        )
    return out
