"""The lifecycle DAG parses cleanly, quickly, with nothing heavy imported, and has the intended shape."""

from __future__ import annotations

import json
import subprocess
import sys

from lawlake.config import REPO_ROOT

DAG_FILE = REPO_ROOT / "dags" / "lawlake_lifecycle.py"
HEAVY = ("pyspark", "pysail", "great_expectations", "deltalake", "pandas")

PROBE = f"""
import json, sys, time
import airflow.sdk  # Airflow's own import cost is not the DAG file's
before = set(sys.modules)
start = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("lawlake_lifecycle", {str(DAG_FILE)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
heavy = sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & set({HEAVY!r}))
print(json.dumps({{"seconds": seconds, "heavy": heavy}}))
"""


def test_dag_file_parses_fast_and_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["heavy"] == []  # pyspark & co. are imported inside tasks only
    assert probe["seconds"] < 2.0, f"parsing the DAG file took {probe['seconds']:.2f}s"


def test_dagbag_has_the_lifecycle_dag_without_import_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["lawlake_lifecycle", "partner_refresh"]
    dag = bag.dags["lawlake_lifecycle"]
    assert dag.catchup is False and dag.schedule is None
    assert set(dag.tags) == {"lawlake", "lifecycle"}
    # gather → gate → normalize → gate → … → open → gate → finish, one straight line
    expected = ["start"]
    for stage in ("gather", "normalize", "integrate", "share", "open"):
        expected += [stage, f"gate_{stage}"]
    expected.append("finish")
    for upstream, downstream in zip(expected, expected[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids, f"{upstream} → {downstream}"
    assert sorted(dag.task_ids) == sorted(expected)
    # stages retry transient faults; gates never retry a verdict on the data
    assert dag.get_task("gather").retries >= 1
    assert all(dag.get_task(f"gate_{s}").retries == 0 for s in ("gather", "normalize", "integrate", "share", "open"))


def test_each_gate_publishes_its_tables_as_assets():
    from airflow.dag_processing.dagbag import DagBag

    from lawlake import pipeline

    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    dag = bag.dags["lawlake_lifecycle"]
    declared: dict[str, set[str]] = {}
    for name, (stage, _) in pipeline.declared_tables().items():
        if not name.startswith("work."):
            declared.setdefault(stage, set()).add(name)
    for stage, names in declared.items():
        outlets = {a.name for a in dag.get_task(f"gate_{stage}").outlets}
        assert outlets == names | {"quarantine.records"}, stage  # the Assets are exactly the tables the gate publishes
        assert dag.get_task(stage).outlets == []  # a stage writes candidates only
    # the downstream DAG is scheduled on the Hangzhou procuratorate's share tables
    refresh = bag.dags["partner_refresh"]
    assert {a.name for a in refresh.timetable.asset_condition.objects} == {n for n in declared["share"] if n.startswith("share.hz_procuratorate.")}
