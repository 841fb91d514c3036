"""The lifecycle DAG end to end through the real `airflow dags test`, on scale-1 demo data.

One module, three runs on one lake, in order:
1. a clean run: every gate passes, every table reconciles, everything is published;
2. the same sources again: no new bronze rows, no new bronze versions;
3. a corrupted delivery (court cases judged before they were filed): the silver gate
   fails, the published silver and downstream tables are exactly as they were,
   nothing downstream ran, the failure is reported and the candidate kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lawlake import config, tables
from lawlake.catalog import Catalog

pytestmark = pytest.mark.dag

EXPECTED_TABLES = {
    "bronze.police_cases", "bronze.police_suspects", "bronze.police_transfers", "bronze.procuratorate_reviews",
    "bronze.court_cases", "bronze.custody_records",
    "silver.police_cases", "silver.police_transfers", "silver.suspects", "silver.prosecutions", "silver.court_cases",
    "silver.court_defendants", "silver.custody",
    "gold.person_records", "gold.person_index", "gold.case_chain", "gold.time_limit_warnings",
    "share.hz_procuratorate.case_chain", "share.hz_procuratorate.time_limit_warnings", "share.zj_law_institute.case_chain",
    "open.cases_by_year_region_charge",
    "quarantine.records",
}


def lawlake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "lawlake"), *args], capture_output=True, text=True, timeout=900)


def snapshot(lake: Path, prefix: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """(Delta version, row count) of every published table whose name starts with one of ``prefix``."""
    from deltalake import DeltaTable

    out = {}
    for name in tables.published_tables(lake):
        if name.startswith(prefix):
            dt = DeltaTable(str(tables.location(lake, name)))
            out[name] = (dt.version(), dt.to_pyarrow_dataset().count_rows())
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lawlake.demo import generate

    root = tmp_path_factory.mktemp("lifecycle")
    sources = root / "sources"
    generate(sources, scale=1, seed=11)
    return {"sources": sources, "lake": root / "lake", "settings": config.load(lake=root / "lake")}


@pytest.fixture(scope="module")
def first_run(world):
    return lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "first")


def test_clean_run_passes_every_gate_and_publishes_everything(world, first_run):
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    assert "first: SUCCESS" in first_run.stdout
    catalog = Catalog(world["settings"].catalog_url)
    assert catalog.run("first")["status"] == "success"
    gates = catalog.gate_results("first")
    assert len(gates) == len(EXPECTED_TABLES) - 1  # every table but the quarantine has a gate
    assert all(g["success"] for g in gates)
    stages = catalog.stage_results("first")
    assert {s["stage"] for s in stages} == {"gather", "normalize", "integrate", "share"}
    assert all(s["is_balanced"] for s in stages)
    assert set(tables.published_tables(world["lake"])) == EXPECTED_TABLES
    assert set(catalog.published()) == EXPECTED_TABLES - {"quarantine.records"}
    # the run's candidates are gone once published; the open dataset is downloadable
    assert not (world["lake"] / "_staging" / "first").exists()
    meta = json.loads((world["lake"] / "open" / "_downloads" / "cases_by_year_region_charge" / "metadata.json").read_text())
    assert meta["distribution"][0]["rows"] > 0


def test_same_sources_again_add_no_rows(world, first_run):
    assert first_run.returncode == 0
    before = snapshot(world["lake"], ("bronze.",))
    again = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "again")
    assert again.returncode == 0, again.stdout[-3000:]
    assert snapshot(world["lake"], ("bronze.",)) == before  # same versions, same rows
    gathered = [s for s in Catalog(world["settings"].catalog_url).stage_results("again") if s["stage"] == "gather"]
    assert len(gathered) == 6 and all(s["rows_in"] == 0 for s in gathered)


def _corrupt_delivery(sources: Path) -> None:
    """A day's court dump whose cases were 'judged' before they were filed (dates swapped in the export)."""
    lines = []
    for i in range(3):
        lines.append({
            "case_number": f"（2024）浙0102刑初{9900 + i}号", "court_name": "杭州市上城区人民法院", "trial_level": "first_instance",
            "original_case_number": None, "review_id": f"JC3301002024{990000 + i}", "charge": "盗窃罪",
            "filed_on": "2024-11-20", "judged_on": "2024-03-01",
            "parties": [{"name": "王五", "id_number": None, "sex": "男", "birth_date": "1990-01-01", "role": "defendant",
                         "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": 12}],
            "updated_at": "2024-12-30 09:00:00",
        })
    path = sources / "courts" / "court_cases_20241230_corrupt.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")


def test_corrupted_source_fails_its_gate_and_changes_nothing_downstream(world, first_run):
    assert first_run.returncode == 0
    published_before = snapshot(world["lake"], ("silver.", "gold.", "share.", "open."))
    _corrupt_delivery(world["sources"])
    bad = lawlake("run", "--sources", str(world["sources"]), "--lake", str(world["lake"]), "--run-id", "corrupt")
    assert bad.returncode == 1
    assert "corrupt: FAILED" in bad.stdout
    assert "check:judged_after_filed: 3 violating rows" in bad.stdout  # the failure names the expectation
    # the published tables are exactly as they were: same Delta versions, same rows
    assert snapshot(world["lake"], ("silver.", "gold.", "share.", "open.")) == published_before
    catalog = Catalog(world["settings"].catalog_url)
    run = catalog.run("corrupt")
    assert run["status"] == "failed" and "silver.court_cases" in run["message"]
    assert {s["stage"] for s in catalog.stage_results("corrupt")} == {"gather", "normalize"}  # nothing downstream ran
    failed = [g for g in catalog.gate_results("corrupt") if not g["success"]]
    assert [g["table_name"] for g in failed] == ["silver.court_cases"]
    assert tables.exists(Path(failed[0]["candidate_path"]))  # the candidate is kept for inspection
    gates = lawlake("gates", "--lake", str(world["lake"]))
    assert "FAILED" in gates.stdout and "judged_after_filed" in gates.stdout
