"""A run's Data Docs: the Great Expectations HTML site of every gate's validation result.

Built after a stage's gates are recorded, from the validation results the run's data
context saved (:mod:`quality.context`): GX's site under ``<lake>/_quality/<run_id>/gx/
uncommitted/data_docs/local_site/`` and, beside it, ``<lake>/_quality/<run_id>/index.html``,
a plain page listing every gate of the run with a link to its GX validation page. GX's own
index draws its table with scripts from public CDNs (jQuery, bootstrap-table), so on a
machine without the internet it shows no rows; its validation pages are plain HTML and
read fine offline. Building never decides a gate: the gate's decision is already in the
catalog, and a failure here is logged and returns None.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from urllib.parse import quote

from quality.context import GateContext, quality_location, run_context, site_index

__all__ = ["build_site", "run_index"]

log = logging.getLogger(__name__)


def build_site(lake: Path, run_id: str) -> Path | None:
    """Build (or refresh) the run's Data Docs site; its index page, or None when it could not be built."""
    start = time.perf_counter()
    try:
        if not (quality_location(lake, run_id) / "gx").is_dir():
            return None  # no gate of this run kept a result
        ctx = run_context(lake, run_id)
        # only the pages of results saved since the last build (a stage's gates); the index lists them all
        fresh = [k for k in ctx.context.validation_results_store.list_keys() if not _page(lake, run_id, k).is_file()]
        if fresh:
            from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

            suites = {k.expectation_suite_identifier.name for k in fresh}
            ctx.context.build_data_docs(resource_identifiers=fresh + [ExpectationSuiteIdentifier(name=n) for n in sorted(suites)])
        if not site_index(lake, run_id).is_file():
            raise FileNotFoundError(f"GX built no index page at {site_index(lake, run_id)}")
        index = _write_run_index(ctx, lake, run_id)
    except Exception as exc:  # Data Docs are evidence to read, never part of the decision
        log.warning("[lawlake] Data Docs for %s not built: %s", run_id, exc)
        return None
    log.info("[lawlake] Data Docs: %s (%.1fs)", index, time.perf_counter() - start)
    return index


def run_index(lake: Path, run_id: str) -> Path:
    """The run's Data Docs entry page: ``<lake>/_quality/<run_id>/index.html``."""
    return quality_location(lake, run_id) / "index.html"


def _page(lake: Path, run_id: str, key) -> Path:
    """Where GX's site puts the page of the validation result stored under ``key``."""
    name = key.expectation_suite_identifier.name
    return site_index(lake, run_id).parent / "validations" / Path(*name.split(".")) / key.run_id.run_name / key.run_id.to_tuple()[1] / f"{key.batch_identifier}.html"


def _write_run_index(ctx: GateContext, lake: Path, run_id: str) -> Path:
    store = ctx.context.validation_results_store
    rows = []
    for key in sorted(store.list_keys(), key=lambda k: (k.run_id.run_time, k.expectation_suite_identifier.name)):
        result = store.get(key)
        name = key.expectation_suite_identifier.name
        href = quote(str(_page(lake, run_id, key).relative_to(quality_location(lake, run_id))))
        stats = result.statistics or {}
        status = "passed" if result.success else "FAILED"
        rows.append(
            f"<tr class='{status}'><td>{html.escape(key.run_id.run_name or '')}</td><td><a href='{href}'>{html.escape(name)}</a></td>"
            f"<td>{status}</td><td>{stats.get('unsuccessful_expectations', '')} of {stats.get('evaluated_expectations', '')}</td></tr>"
        )
    body = "\n".join(rows) or "<tr><td colspan='4'>no gate kept a result</td></tr>"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lawlake Data Docs: {html.escape(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.3em .6em}} tr.FAILED td{{background:#fdd}}</style></head>
<body><h1>Gates of run {html.escape(run_id)}</h1>
<p>Each row is one gate's Great Expectations validation result; the table links to its page
(failed expectations, their unexpected values, the quarantined rows). GX's own index:
<a href="{quote(str(site_index(lake, run_id).relative_to(quality_location(lake, run_id))))}">gx/…/local_site/index.html</a>.</p>
<table><tr><th>run_stage</th><th>table</th><th>gate</th><th>failed expectations</th></tr>
{body}
</table></body></html>
"""
    index = run_index(lake, run_id)
    index.write_text(page, encoding="utf-8")
    return index
