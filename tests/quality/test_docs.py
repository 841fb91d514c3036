"""A run's Data Docs site, opened in a real headless Chromium: a failing gate's page shows what failed and why."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from urllib.parse import unquote

import pytest

from lawlake import config, contracts, pipeline, suites, tables
from lawlake.suites import Suite, check
from quality import context, docs, gate

RUN = "run-docs"
CONTRACT = contracts.parse({
    "table": "gold.t",
    "grain": "one row per t",
    "primary_key": ["k"],
    "columns": [
        {"name": "k", "type": "string", "nullable": False, "description": "key"},
        {"name": "kind", "type": "string", "description": "a code", "accepted_values": ["a", "b"]},
        {"name": "n", "type": "int", "description": "a number"},
    ],
})
GOOD = [
    {"k": "1", "kind": "a", "n": 1},
    {"k": "2", "kind": "b", "n": 2},
]


def _candidate(spark, lake, name: str, rows: list[dict]):
    path = lake / "_staging" / RUN / name
    tables.write(contracts.dataframe(spark, rows, CONTRACT), path)
    return path


def _contract_suite(*own: dict) -> Suite:
    return Suite("gold.t", tuple(suites.contract_expectations(CONTRACT)) + own)


def _browse(path) -> str:
    """The page's text after Chromium loaded it and ran its scripts (the DOM, tags stripped)."""
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is needed for the Data Docs test: apt-get install -y chromium (make test installs it)"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--dump-dom", path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", proc.stdout, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))), proc.stdout


@pytest.fixture(scope="module")
def failing_run(spark, tmp_path_factory):
    """One run: gold.t fails its gate (two codes outside the set, one row breaking a check); gold.ok passes."""
    lake = tmp_path_factory.mktemp("docs") / "lake"
    rows = GOOD + [
        {"k": "6", "kind": "zzz", "n": 6},  # not an accepted code
        {"k": "7", "kind": "qqq", "n": -1},  # not an accepted code, and n is not positive
    ]
    suite = _contract_suite(check("n_positive", "SELECT k, n FROM {batch} WHERE n <= 0"))
    failed = gate.run_gate(spark, "gold.t", _candidate(spark, lake, "t", rows), lake=lake, suite=suite, run_id=RUN, stage="integrate")
    assert docs.build_site(lake, RUN) is not None  # after the first stage's gate
    passed = gate.run_gate(spark, "gold.ok", _candidate(spark, lake, "ok", GOOD), lake=lake, suite=_contract_suite(), run_id=RUN, stage="share")
    return lake, failed, passed, docs.build_site(lake, RUN)  # the next stage adds its page; the index lists both


def test_the_gate_decides_as_before_and_keeps_each_result_in_the_run_context(failing_run):
    lake, failed, passed, index = failing_run
    assert (failed.success, passed.success) == (False, True)
    assert {r["expectation"] for r in failed.failures} == {"expect_column_values_to_be_in_set(kind)", "check:n_positive"}
    store = context.run_context(lake, RUN).context.validation_results_store
    assert sorted(k.expectation_suite_identifier.name for k in store.list_keys()) == ["gold.ok", "gold.t"]  # one saved result per gate
    assert all(docs._page(lake, RUN, k).is_file() for k in store.list_keys())  # each with its page, built stage by stage
    assert index == lake / "_quality" / RUN / "index.html" and index.is_file()
    assert context.site_index(lake, RUN).is_file()  # GX's own site beside it


def test_a_failing_runs_site_shows_the_failed_expectation_and_its_unexpected_values(failing_run):
    lake, _, _, index = failing_run
    text, dom = _browse(index)
    assert f"{RUN}_integrate gold.t FAILED 2 of 5" in text  # the index lists both gates of the run
    assert f"{RUN}_share gold.ok passed 0 of 4" in text
    (link,) = re.findall(r'href="([^"]*validations/gold/t/[^"]*\.html)"', dom)  # the failed gate's page
    page, _ = _browse(index.parent / unquote(html.unescape(link)))
    assert "Status: Failed" in page
    assert "expect_column_values_to_be_in_set(kind) FAILED" in page
    assert re.search(r"Unexpected Value Count (qqq 1 zzz 1|zzz 1 qqq 1)", page)  # the unexpected values, counted
    assert "n_positive FAILED; violating rows, e.g. [{'k': '7', 'n': -1}]" in page  # the check's violating row
    assert f"lawlake quarantine --lake {lake} --table gold.t --run {RUN}" in page  # where the quarantined rows are


def test_a_site_that_cannot_be_built_never_fails_the_stage(failing_run, tmp_path, caplog):
    lake, *_ = failing_run
    site = context.site_index(lake, RUN).parent
    shutil.rmtree(site)
    site.write_text("not a folder")  # GX cannot write the site here
    try:
        assert docs.build_site(lake, RUN) is None
        pipeline._build_data_docs(config.load(lake=lake), RUN)  # the runner's step logs, never raises
        assert "Data Docs for run-docs not built" in caplog.text
    finally:
        site.unlink()


def test_a_run_builds_its_site_once_when_it_closes_listing_every_gate(tmp_path, monkeypatch):
    """One build per run, at its close, with a row per gate of every stage; a run that judged nothing builds none."""
    from tests.jobs.sources import small_sources

    builds: list[str] = []
    real = docs.build_site
    monkeypatch.setattr(docs, "build_site", lambda lake, run_id: builds.append(run_id) or real(lake, run_id))
    settings = config.load(lake=tmp_path / "lake")
    sources = small_sources(tmp_path / "src")
    pipeline.run_lifecycle(settings, "run1", sources=sources, stages=("gather", "normalize"))
    assert builds == ["run1"]  # not one per stage
    text, _ = _browse(docs.run_index(settings.lake, "run1"))
    assert "run1_gather bronze.police_cases passed" in text and "run1_normalize silver.police_cases passed" in text
