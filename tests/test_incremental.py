"""Incremental runs: a table is rebuilt only when its inputs, parameters or code changed, and the result equals a full rebuild.

The plan (which tables a run builds) is tested on declarations alone; then one lake goes
through a whole lifecycle, the same sources again (nothing may get a new Delta version),
a new day's files (only the tables they reach are rebuilt) and a ``full_refresh`` run that
rebuilds everything after bronze from the same bronze: its tables must equal the
incremental ones row for row.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lawlake import config, pipeline
from lawlake.catalog import Catalog
from lawlake.cli import demo_legal_api
from lawlake.declarations import Params, Table

from .releasing import lake_content

DATA_DATE = date(2025, 6, 30)


def _build(*frames, **params):  # never called: planning reads declarations only
    raise AssertionError("plan_stage must not build")


def _params(**kw) -> Params:
    return Params(run_id="r", started_at=datetime(2025, 1, 1, tzinfo=UTC), data_date=kw.pop("data_date", DATA_DATE), **kw)


DECLARED = (
    Table("work.mentions", _build, inputs=("silver.a", "silver.b")),
    Table("gold.x", _build, inputs=("work.mentions",)),
    Table("gold.y", _build, inputs=("gold.x", "silver.c"), params=("data_date",)),
    Table("gold.z", _build, inputs=("silver.c", "reference.regions")),
)
RELEASED = {"silver.a": 3, "silver.b": 1, "silver.c": 7, "gold.x": 2, "gold.y": 2, "gold.z": 2}


def _released_builds(plan: pipeline.Plan) -> dict[str, dict]:
    """What a release of ``plan`` records: each built table at its released version."""
    return {n: {"version": RELEASED[n], **b} for n, b in plan.builds.items()}


def test_a_first_run_builds_every_table():
    plan = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    assert plan.needed == {"work.mentions", "gold.x", "gold.y", "gold.z"}  # nothing recorded: everything is built
    assert set(plan.builds) == {"gold.x", "gold.y", "gold.z"}  # work tables are never released
    assert plan.unchanged == {}


def test_the_same_inputs_build_nothing():
    first = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    again = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds=_released_builds(first))
    assert again.needed == set()  # no table, and so no work table either
    assert again.unchanged == {"gold.x": 2, "gold.y": 2, "gold.z": 2}


def test_a_new_input_version_rebuilds_what_reads_it_through_the_stage():
    first = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    plan = pipeline.plan_stage(DECLARED, _params(), released=RELEASED | {"silver.b": 2}, released_builds=_released_builds(first))
    assert plan.needed == {"work.mentions", "gold.x", "gold.y"}  # silver.b → work.mentions → gold.x → gold.y
    assert plan.unchanged == {"gold.z": 2}  # reads only silver.c and a reference list


def test_a_changed_parameter_rebuilds_only_the_tables_taking_it():
    first = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    plan = pipeline.plan_stage(DECLARED, _params(data_date=date(2025, 7, 1)), released=RELEASED, released_builds=_released_builds(first))
    assert plan.needed == {"gold.y"}  # the only table with data_date among its parameters


def test_a_release_restored_since_the_build_rebuilds():
    first = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    recorded = _released_builds(first)
    recorded.pop("gold.z")  # e.g. gold.z's build was recorded for a version no longer released
    plan = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds=recorded)
    assert plan.needed == {"gold.z"}


def test_full_refresh_and_atomic_stages_rebuild_everything():
    first = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds={})
    builds = _released_builds(first)
    refresh = pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds=builds, full_refresh=True)
    assert refresh.needed == {"work.mentions", "gold.x", "gold.y", "gold.z"}
    atomic = pipeline.plan_stage(DECLARED, _params(), released=RELEASED | {"silver.a": 4}, released_builds=builds, atomic=True)
    assert atomic.needed == {"work.mentions", "gold.x", "gold.y", "gold.z"}  # gold.z too: judged with the others
    assert pipeline.plan_stage(DECLARED, _params(), released=RELEASED, released_builds=builds, atomic=True).needed == set()


def test_append_tables_always_run():
    bronze = (Table("bronze.a", _build, mode="append"),)
    first = pipeline.plan_stage(bronze, _params(), released={"bronze.a": 0}, released_builds={})
    again = pipeline.plan_stage(bronze, _params(), released={"bronze.a": 0}, released_builds={"bronze.a": {"version": 0, **first.builds["bronze.a"]}})
    assert again.needed == {"bronze.a"}  # what is new is decided by the files, not by fingerprints


# -- a whole lake ------------------------------------------------------------------------------


def _versions(lake: Path) -> dict[str, int]:
    """The latest Delta version of every table in the lake, read from the Delta logs (not from the catalog)."""
    from deltalake import DeltaTable

    return {str(log.parent.relative_to(lake)): DeltaTable(str(log.parent)).version()
            for log in sorted(lake.glob("*/**/_delta_log")) if not log.parent.relative_to(lake).parts[0].startswith("_")}




def _newest_day(sources: Path) -> list[Path]:
    """The procuratorate's and courts' files of the newest delivery day: a new day's files."""
    files = [p for p in (*sources.glob("procuratorate/*.csv"), *sources.glob("courts/*.jsonl"))]
    day = max(re.search(r"(\d{8})", p.name).group(1) for p in files)  # type: ignore[union-attr]
    return [p for p in files if day in p.name]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from lawlake.demo.generator import generate

    root = tmp_path_factory.mktemp("incremental") / "demo"
    generate(root, scale=0.05, seed=7)
    return root


def test_runs_rebuild_only_what_new_data_reaches_and_equal_a_full_rebuild(demo, tmp_path, monkeypatch, request, caplog):
    import logging

    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)  # scoped at any size: the threshold is for speed, the rows are the same
    caplog.set_level(logging.INFO, logger="lawlake")
    monkeypatch.setenv("LAWLAKE_SECRET_KEY", "incremental-test-key")
    sources, held = tmp_path / "sources", tmp_path / "held"
    shutil.copytree(demo, sources)
    held.mkdir()
    new_day = _newest_day(sources)
    assert new_day
    for p in new_day:
        shutil.move(p, held / p.name)
    settings = config.load(lake=tmp_path / "lake")
    catalog = Catalog(settings.catalog_url)
    # the legal services API, served as `lawlake run` serves it for demo sources (else each run quarantines its absence)
    api = demo_legal_api(sources, airflow=False, echo=lambda *_: None)
    api.__enter__()
    request.addfinalizer(lambda: api.__exit__(None, None, None))

    pipeline.run_lifecycle(settings, "day1", sources=sources, data_date=DATA_DATE)
    before = _versions(settings.lake)

    # the same sources again: every stage releases, no Delta table gets a new version
    again = pipeline.run_lifecycle(settings, "again", sources=sources, data_date=DATA_DATE)
    assert _versions(settings.lake) == before
    assert [r["stage"] for r in again] == list(pipeline.STAGES)
    assert all(r["published"] == {} for r in again)
    assert catalog.run("again")["status"] == "success"
    assert {r["stage"] for r in catalog.releases() if r["run_id"] == "again" and r["status"] == "complete"} == set(pipeline.STAGES)

    # a new day's procuratorate and court files: their tables are rebuilt, the untouched sources' are not
    for p in new_day:
        shutil.move(held / p.name, p)
    caplog.clear()
    day2 = {r["stage"]: r for r in pipeline.run_lifecycle(settings, "day2", sources=sources, data_date=DATA_DATE)}
    chain = next(r.getMessage() for r in caplog.records if "integrate: built gold.case_chain" in r.getMessage())
    print(chain)
    assert "by reach" in chain, chain  # the chains of the persons the new rows reach, every other kept as published
    after = _versions(settings.lake)
    assert after["silver/prosecutions"] > before["silver/prosecutions"] or after["silver/court_cases"] > before["silver/court_cases"]
    for untouched in ("silver/police_cases", "silver/police_transfers", "silver/suspects", "silver/custody"):
        assert after[untouched] == before[untouched], untouched  # police and corrections delivered nothing new
    assert "silver.police_cases" in day2["normalize"]["unchanged"]
    incremental = lake_content(settings.lake)

    # a full refresh rebuilds every table after bronze from the same bronze: the same rows
    refresh = {r["stage"]: r for r in pipeline.run_lifecycle(settings, "refresh", sources=sources, data_date=DATA_DATE, full_refresh=True)}
    rebuilt = _versions(settings.lake)
    for stage in ("normalize", "integrate", "share", "open"):
        assert refresh[stage]["unchanged"] == {}, stage
        for name in refresh[stage]["published"]:
            if name != pipeline.QUARANTINE:
                assert rebuilt[name.replace(".", "/")] > after[name.replace(".", "/")], name
    assert lake_content(settings.lake) == incremental


def test_normalize_rebuilds_only_the_keys_a_new_day_touches_and_equals_a_full_rebuild(tmp_path, monkeypatch):
    """A new day's reviews — a new version of a review, a later version of another missing a date, a new review, a row
    without a review id — rebuild only their keys (every version of each), keep every other key's rows and quarantine rows (a
    nulled identity number of an untouched review among them), and give the table a full rebuild gives."""
    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)  # scoped at any size: the threshold is for speed, the rows are the same
    from .jobs.sources import small_sources, write_reviews

    (tmp_path / "thresholds.yaml").write_text("default: 0.0\n")  # a handful of rows: rejections are the subject, not a failed delivery
    monkeypatch.setenv("LAWLAKE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    settings = config.load(lake=tmp_path / "lake")
    src = small_sources(tmp_path / "src")
    for old in (src / "procuratorate").glob("*.csv"):
        old.unlink()

    def review(rid: str, name: str, id_number: str, decision: str, updated: str, received: str = "2023-03-02") -> list[str]:
        return [rid, "A3301022023000001", name, id_number, "男", "1980-01-01", received, decision, "2023-03-20", "盗窃罪", "杭州市上城区人民检察院", updated]

    write_reviews(src, "20230320", [
        review("JC3301002023000001", "张三", "11010519491231002X", "起诉", "2023-03-20 12:00:00"),
        review("JC3301002023000002", "李四", "110105194912310021", "起诉", "2023-03-20 12:00:00"),  # a bad check digit: nulled, kept
        review("JC3301002023000003", "王五", "", "起诉", "2023-03-20 12:00:00"),
    ])
    pipeline.run_lifecycle(settings, "day1", sources=src, stages=("gather", "normalize"), data_date=DATA_DATE)
    write_reviews(src, "20230325", [
        review("JC3301002023000001", "张三", "11010519491231002X", "不起诉", "2023-03-25 09:00:00"),  # a new version
        review("JC3301002023000003", "王五", "", "不起诉", "2023-03-25 09:00:00", received=""),  # a later version without its date: current, the date nulled
        review("JC3301002023000004", "赵六", "", "撤回", "2023-03-25 09:00:00"),  # a new review, its unknown decision nulled
        review("", "钱七", "", "起诉", "2023-03-25 09:00:00"),  # no review id: rejected
    ])
    day2 = {r["stage"]: r for r in pipeline.run_lifecycle(settings, "day2", sources=src, stages=("gather", "normalize"), data_date=DATA_DATE)}
    assert set(day2["normalize"]["unchanged"]) >= {"silver.police_cases", "silver.suspects", "silver.custody"}
    recs = {r["table_name"]: r for r in Catalog(settings.catalog_url).stage_results("day2")}
    # this run's balance covers the touched keys' bronze rows only: 张三 ×2, 王五 ×2, 赵六, and the row without an id
    assert (recs["silver.prosecutions"]["rows_in"], recs["silver.prosecutions"]["rows_out"]) == (6, 3)
    incremental = lake_content(settings.lake)
    current = [json.loads(r) for r in incremental["silver.prosecutions"]]
    assert sorted((r["review_id"], r["decision"]) for r in current) == [
        ("JC3301002023000001", "non_prosecution"), ("JC3301002023000002", "prosecute"), ("JC3301002023000003", "non_prosecution"), ("JC3301002023000004", None)]
    q = [json.loads(r) for r in incremental[pipeline.QUARANTINE] if json.loads(r)["target_table"] == "silver.prosecutions"]
    assert {r["rule"] for r in q} == {"id_number.invalid", "received_on.missing", "decision.unknown", "review_id.missing"}

    pipeline.run_lifecycle(settings, "refresh", sources=src, stages=("normalize",), data_date=DATA_DATE, full_refresh=True)
    assert lake_content(settings.lake) == incremental


def test_integrate_resolves_again_only_the_name_groups_a_new_day_changes_and_equals_a_full_rebuild(tmp_path, monkeypatch, caplog):
    """gold.person_records is rebuilt by name group, gold.person_index by person (ByScope): a new day's suspect and reviews change four of fourteen
    groups — a new mention (王五), a new person (郑十), and a review whose new version corrects its person's name, which
    leaves the group of 周八 for that of 周捌 — and every other group's rows are kept as published, 李四's too (a new
    version of its review with another decision changes nothing the resolver reads): the table a full rebuild gives."""
    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)  # scoped at any size: the threshold is for speed, the rows are the same
    import logging

    from .jobs.sources import write_police, write_reviews

    (tmp_path / "thresholds.yaml").write_text("default: 0.0\n")
    monkeypatch.setenv("LAWLAKE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    settings = config.load(lake=tmp_path / "lake")
    src = tmp_path / "src"
    names = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "冯一", "陈二", "褚三", "卫四", "蒋五"]
    ids = {"张三": "11010519491231002X", "周八": "110105198001010016", "周捌": "110105198001010016"}

    def case(n: int) -> dict:
        return {"case_id": f"A33010220230000{n:02d}", "region_code": "330102", "charge": "盗窃", "occurred_on": "2023-01-02", "filed_on": "2023-01-03",
                "status": "立案", "updated_at": "2023-01-03 10:00:00"}

    def suspect(n: int, name: str, case_no: int, updated: str = "2023-01-03 09:00:00") -> dict:
        return {"suspect_id": f"S0000000{n:02d}", "case_id": f"A33010220230000{case_no:02d}", "name": name, "id_number": ids.get(name, ""), "sex": "男",
                "birth_date": "1980-01-01", "updated_at": updated}

    def review(rid: int, name: str, decision: str, updated: str) -> list[str]:
        return [f"JC33010020230000{rid:02d}", f"A33010220230000{rid:02d}", name, ids.get(name, ""), "男", "1980-01-01",
                "2023-03-02", decision, "2023-03-20", "盗窃罪", "杭州市上城区人民检察院", updated]

    write_police(src, cases=[case(i) for i in range(1, len(names) + 1)], suspects=[suspect(i, n, i) for i, n in enumerate(names, 1)])
    write_reviews(src, "20230320", [review(1, "张三", "起诉", "2023-03-20 12:00:00"), review(2, "李四", "起诉", "2023-03-20 12:00:00"),
                                    review(6, "周八", "起诉", "2023-03-20 12:00:00")])
    stages = ("gather", "normalize", "integrate")
    pipeline.run_lifecycle(settings, "day1", sources=src, stages=stages, data_date=DATA_DATE)
    write_police(src, cases=[], suspects=[suspect(20, "郑十", 4, updated="2023-03-24 09:00:00")])
    write_reviews(src, "20230325", [
        review(2, "李四", "不起诉", "2023-03-25 09:00:00"),  # a new version, another decision: the same mention
        review(3, "王五", "起诉", "2023-03-25 09:00:00"),  # a new mention
        review(6, "周捌", "起诉", "2023-03-25 09:00:00"),  # the same review and identity number, the name corrected: another group
    ])
    caplog.set_level(logging.INFO, logger="lawlake")
    pipeline.run_lifecycle(settings, "day2", sources=src, stages=stages, data_date=DATA_DATE)
    built = {m.split(" (")[0].rsplit(" ", 1)[-1]: m for m in (r.getMessage() for r in caplog.records) if "integrate: built gold." in m}
    # 王五, 郑十 (new), 周八 (lost its review) and 周捌 (new) of 14 names
    assert "(17 rows, by scope: 4 of 14 _group value(s) changed)" in built["gold.person_records"], built
    # of 13 persons: 郑十 (new), 周八 (a mention renamed) and 王五, whose key changes with a second mention (an unmatched
    # person is keyed by its first record): the old key gone, the new one added
    assert "(13 rows, by scope: 4 of 13 person_key value(s) changed)" in built["gold.person_index"], built
    incremental = lake_content(settings.lake)
    records = {json.loads(r)["record_ref"]: json.loads(r) for r in incremental["gold.person_records"]}
    person = {ref: r["person_key"] for ref, r in records.items()}
    assert person["silver.prosecutions:JC3301002023000003:王五"] == person["silver.suspects:S000000003"]  # same name, same police case
    assert person["silver.prosecutions:JC3301002023000006:110105198001010016"] == person["silver.suspects:S000000006"]  # by number, across groups
    assert len(records) == 17

    caplog.clear()
    pipeline.run_lifecycle(settings, "refresh", sources=src, stages=("integrate",), data_date=DATA_DATE, full_refresh=True)
    assert not any("by scope" in r.getMessage() for r in caplog.records)  # built whole
    assert lake_content(settings.lake) == incremental


def test_court_defendants_are_rebuilt_by_case_and_equal_a_full_rebuild(tmp_path, monkeypatch, caplog):
    """silver.court_defendants ranks a party by its case: a new version of a case rebuilds every party of that case from
    every version (a party it drops is gone; the quarantine row of its first version's bad verdict is built again, once), an
    untouched case keeps its rows and its quarantine row, and a new version without parties, which says nothing of its
    case, makes the table build whole."""
    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)  # scoped at any size: the threshold is for speed, the rows are the same
    import logging

    from .jobs.sources import write_courts

    (tmp_path / "thresholds.yaml").write_text("default: 0.0\n")
    monkeypatch.setenv("LAWLAKE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    settings = config.load(lake=tmp_path / "lake")
    src = tmp_path / "src"

    def party(name: str, verdict: str = "guilty") -> dict:
        return {"name": name, "id_number": "", "sex": "男", "birth_date": "1980-01-01", "role": "defendant", "verdict": verdict,
                "sentence_type": "fixed_term", "sentence_months": 10}

    def case(n: int, parties: list[dict], updated: str) -> dict:
        return {"case_number": f"(2023)浙0102刑初{n}号", "court_name": "杭州市上城区人民法院", "trial_level": "first_instance", "original_case_number": None,
                "review_id": None, "charge": "盗窃罪", "filed_on": "2023-04-01", "judged_on": "2023-05-01", "parties": parties, "updated_at": updated}

    write_courts(src, "20230502", [
        case(1, [party("张三"), party("李四", verdict="maybe")], "2023-05-02 09:00:00"),  # 李四's verdict is nulled: a quarantine row
        case(2, [party("王五", verdict="maybe")], "2023-05-02 09:00:00"),  # untouched later: its row and quarantine row stay
        case(3, [party("赵六")], "2023-05-02 09:00:00"),
    ])
    stages = ("gather", "normalize")
    pipeline.run_lifecycle(settings, "day1", sources=src, stages=stages, data_date=DATA_DATE)
    fingerprint = lambda: Catalog(settings.catalog_url).released_builds()["silver.court_defendants"]["fingerprint"]  # noqa: E731
    day1_keys = pipeline.keys_location(settings.lake, "silver.court_defendants") / fingerprint()
    write_courts(src, "20230510", [
        case(1, [party("张三")], "2023-05-10 09:00:00"),  # a new version without 李四
        case(4, [party("孙七")], "2023-05-10 09:00:00"),  # a new case
    ])
    caplog.set_level(logging.INFO, logger="lawlake")
    pipeline.run_lifecycle(settings, "day2", sources=src, stages=stages, data_date=DATA_DATE)
    built = [r.getMessage() for r in caplog.records if "built silver.court_defendants" in r.getMessage()]
    # cases 1 and 4; the three earlier case versions' keys read as day1's whole build kept them, only the new rows built for theirs
    assert built and "(4 rows, incremental: 2 key(s) touched by 2 new bronze.court_cases row(s); the keys of 3 earlier bronze.court_cases row(s) as kept)" in built[-1], built
    # the keys kept for day2's build: day1's data files hard-linked (not written again) and the two new rows' keys added
    from deltalake import DeltaTable

    day2_keys = pipeline.keys_location(settings.lake, "silver.court_defendants") / fingerprint()
    assert day2_keys != day1_keys and not list(day2_keys.parent.glob(".*")), "no folder left half made"
    inodes = {f.stat().st_ino for f in day2_keys.glob("*.parquet")}
    assert {f.stat().st_ino for f in day1_keys.glob("*.parquet")} < inodes
    kept = DeltaTable(str(day2_keys)).to_pyarrow_table()
    bronze = DeltaTable(str(settings.lake / "bronze" / "court_cases")).to_pyarrow_table(columns=["_record_hash"])
    assert bronze.num_rows == 5
    assert set(kept.column("_record_hash").to_pylist()) == set(bronze.column("_record_hash").to_pylist())  # five case versions
    incremental = lake_content(settings.lake)
    parties = sorted((json.loads(r)["case_number"], json.loads(r)["name"]) for r in incremental["silver.court_defendants"])
    number = "（2023）浙0102刑初{}号".format  # as silver normalizes it (full-width brackets)
    assert parties == [(number(1), "张三"), (number(2), "王五"), (number(3), "赵六"), (number(4), "孙七")]
    quarantined = sorted(json.loads(r)["record_key"] for r in incremental[pipeline.QUARANTINE] if json.loads(r)["target_table"] == "silver.court_defendants")
    assert quarantined == [number(1) + "#2", number(2) + "#1"]  # 李四's verdict in case 1's first version, rebuilt with its case; 王五's, kept
    pipeline.run_lifecycle(settings, "refresh", sources=src, stages=("normalize",), data_date=DATA_DATE, full_refresh=True)
    assert lake_content(settings.lake) == incremental

    caplog.clear()
    write_courts(src, "20230515", [case(3, [], "2023-05-15 09:00:00")])  # a version of case 3 without parties
    pipeline.run_lifecycle(settings, "day3", sources=src, stages=stages, data_date=DATA_DATE)
    assert any("silver.court_defendants built whole: a new bronze.court_cases row builds no row" in r.getMessage() for r in caplog.records)

    caplog.clear()
    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 20_000)  # the default: inputs this small are cheaper to build whole
    write_courts(src, "20230520", [case(4, [party("孙七"), party("周八")], "2023-05-20 09:00:00")])
    pipeline.run_lifecycle(settings, "day4", sources=src, stages=stages, data_date=DATA_DATE)
    assert any("silver.court_defendants built whole: its input holds 7 rows (a scoped build pays off from 20000)" in r.getMessage() for r in caplog.records)

    # a whole build keeps its rows' keys; without them (a lake from before they were kept), every row is built again for
    # its key: the same table
    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)
    pipeline.run_lifecycle(settings, "refresh4", sources=src, stages=("normalize",), data_date=DATA_DATE, full_refresh=True)
    kept = pipeline.keys_location(settings.lake, "silver.court_defendants")
    assert [p.name for p in kept.iterdir()] == [Catalog(settings.catalog_url).released_builds()["silver.court_defendants"]["fingerprint"]]
    shutil.rmtree(kept)
    caplog.clear()
    write_courts(src, "20230525", [case(2, [party("王五")], "2023-05-25 09:00:00")])  # 王五's verdict corrected
    pipeline.run_lifecycle(settings, "day5", sources=src, stages=stages, data_date=DATA_DATE)
    built = [r.getMessage() for r in caplog.records if "built silver.court_defendants" in r.getMessage()]
    assert built and "incremental: 1 key(s) touched by 1 new bronze.court_cases row(s); every row's key built again" in built[-1], built
    incremental = lake_content(settings.lake)
    pipeline.run_lifecycle(settings, "refresh5", sources=src, stages=("normalize",), data_date=DATA_DATE, full_refresh=True)
    assert lake_content(settings.lake) == incremental

    # a kept keys folder of too many files is written again as one table, not linked: the same table
    monkeypatch.setattr(pipeline, "KEPT_KEYS_MAX_FILES", 1)
    released = pipeline.keys_location(settings.lake, "silver.court_defendants") / fingerprint()
    write_courts(src, "20230530", [case(5, [party("吴九")], "2023-05-30 09:00:00")])
    pipeline.run_lifecycle(settings, "day6", sources=src, stages=stages, data_date=DATA_DATE)
    written = pipeline.keys_location(settings.lake, "silver.court_defendants") / fingerprint()
    assert written != released and not {f.stat().st_ino for f in released.glob("*.parquet")} & {f.stat().st_ino for f in written.glob("*.parquet")}
    incremental = lake_content(settings.lake)
    pipeline.run_lifecycle(settings, "refresh6", sources=src, stages=("normalize",), data_date=DATA_DATE, full_refresh=True)
    assert lake_content(settings.lake) == incremental


def test_the_case_chain_is_rebuilt_for_the_persons_changed_rows_reach_and_equals_a_full_rebuild(tmp_path, monkeypatch, caplog):
    """gold.case_chain is rebuilt for the persons the inputs' changed rows reach (ByReach), every other person's chains
    kept as published. A new day: a first instance for a minor's review, reached through its review's police case (the
    chain gains its judgment and its seal status changes); an appeal of a first instance, through the first instance; a
    custody record, through its court case; a review's new version naming another police case, reaching both cases'
    persons; a police case's new version (an arrest). Twelve of eighteen suspects are not reached: the same table a full
    rebuild gives, every table after it too."""
    import logging

    from jobs import integrate

    from .jobs.sources import write_courts, write_custody, write_police, write_reviews

    monkeypatch.setattr(pipeline, "SCOPED_MIN_ROWS", 0)  # scoped at any size: the threshold is for speed, the rows are the same
    (tmp_path / "thresholds.yaml").write_text("default: 0.0\n")
    monkeypatch.setenv("LAWLAKE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    settings = config.load(lake=tmp_path / "lake")
    src = tmp_path / "src"
    names = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "冯一", "陈二", "褚三", "卫四", "蒋五", "沈六", "韩七", "杨八", "朱九", "秦十", "尤一"]
    births = {"王五": "2007-05-01"}  # a minor at the offense (2023)

    def pc(n: int) -> str:
        return f"A33010220230000{n:02d}"

    def case(n: int, updated: str = "2023-01-03 10:00:00", **facts: str) -> dict:
        return {"case_id": pc(n), "region_code": "330102", "charge": "盗窃", "occurred_on": "2023-01-02", "filed_on": "2023-01-03", "detained_on": "2023-01-04",
                "status": "立案", "updated_at": updated, **facts}

    def suspect(n: int, name: str) -> dict:
        return {"suspect_id": f"S0000000{n:02d}", "case_id": pc(n), "name": name, "id_number": "", "sex": "男", "birth_date": births.get(name, "1980-01-01"),
                "updated_at": "2023-01-03 09:00:00"}

    def review(rid: int, name: str, updated: str, police_case: int | None = None) -> list[str]:
        return [f"JC33010020230000{rid:02d}", pc(police_case or rid), name, "", "男", births.get(name, "1980-01-01"),
                "2023-03-02", "起诉", "2023-03-20", "盗窃罪", "杭州市上城区人民检察院", updated]

    def court(n: int, name: str, review_id: int | None, updated: str, *, appeal_of: int | None = None, months: int = 10) -> dict:
        level = "appeal" if appeal_of else "first_instance"
        return {"case_number": f"(2023)浙01{'02刑初' if not appeal_of else '刑终'}{n}号", "court_name": "杭州市上城区人民法院", "trial_level": level,
                "original_case_number": f"(2023)浙0102刑初{appeal_of}号" if appeal_of else None,
                "review_id": f"JC33010020230000{review_id:02d}" if review_id else None, "charge": "盗窃罪", "filed_on": "2023-04-01", "judged_on": "2023-05-01",
                "updated_at": updated, "parties": [{"name": name, "id_number": "", "sex": "男", "birth_date": births.get(name, "1980-01-01"), "role": "defendant",
                                                    "verdict": "guilty", "sentence_type": "fixed_term", "sentence_months": months}]}

    write_police(src, cases=[case(i) for i in range(1, len(names) + 1)], suspects=[suspect(i, n) for i, n in enumerate(names, 1)])
    write_reviews(src, "20230320", [review(i, n, "2023-03-20 12:00:00") for i, n in enumerate(names[:6], 1)])
    write_courts(src, "20230502", [court(1, "张三", 1, "2023-05-02 09:00:00"), court(2, "李四", 2, "2023-05-02 09:00:00")])
    stages = ("gather", "normalize", "integrate")
    pipeline.run_lifecycle(settings, "day1", sources=src, stages=stages, data_date=DATA_DATE)
    chains = lambda: {json.loads(r)["police_case_id"]: json.loads(r) for r in lake_content(settings.lake)["gold.case_chain"]}  # noqa: E731
    before = chains()
    assert len(before) == len(names)

    write_courts(src, "20230601", [court(3, "王五", 3, "2023-06-01 09:00:00"),  # the minor's first instance
                                   court(11, "张三", None, "2023-06-01 09:00:00", appeal_of=1)])  # 张三's appeal
    write_custody(src, "202306", [["JY2023060001", "（2023）浙0102刑初2号", "李四", "", "浙江省第一监狱", "监狱", datetime(2023, 6, 1), None, "2023-06-01 08:00:00"]])
    write_reviews(src, "20230601", [review(6, "周八", "2023-06-01 12:00:00", police_case=5)])  # review 6 now names 孙七's police case
    write_police(src, cases=[case(4, "2023-06-01 10:00:00", arrested_on="2023-01-10")], suspects=[])
    caplog.set_level(logging.INFO, logger="lawlake")
    pipeline.run_lifecycle(settings, "day2", sources=src, stages=stages, data_date=DATA_DATE)
    built = [r.getMessage() for r in caplog.records if "integrate: built gold.case_chain" in r.getMessage()]
    # 王五, 张三, 李四, 赵六, review 6's two cases' 孙七 and 周八, and the person its 周八 record leaves for a new one of its own
    # (the record's earlier person key, gone, and its new one): eight of eighteen
    assert built and f"({len(names)} rows, by reach: 8 person_key value(s) reached by changed input rows)" in built[-1], built
    after = chains()  # one suspect per police case: a chain per police case
    assert after[pc(3)]["first_instance_case_number"] and not before[pc(3)]["first_instance_case_number"]
    assert after[pc(3)]["seal_status"] != before[pc(3)]["seal_status"]  # the minor's judgment decides it
    assert after[pc(1)]["appeal_case_number"] and after[pc(2)]["custody_admitted_on"] and after[pc(4)]["arrested_on"]
    for n in range(7, len(names) + 1):
        assert after[pc(n)] == before[pc(n)]  # not reached: kept as published
    incremental = lake_content(settings.lake)
    caplog.clear()
    pipeline.run_lifecycle(settings, "refresh", sources=src, stages=("integrate",), data_date=DATA_DATE, full_refresh=True)
    assert not any("by reach" in r.getMessage() for r in caplog.records)  # built whole
    assert lake_content(settings.lake) == incremental

    # the row hashes are kept per build of the chain, the released one's only; without them a later build is whole
    kept = pipeline.rows_location(settings.lake, "gold.case_chain")
    released = Catalog(settings.catalog_url).released_builds()["gold.case_chain"]["fingerprint"]
    assert [p.name for p in kept.iterdir()] == [released]
    assert {p.name for p in (kept / released).iterdir()} == set(integrate.CHAIN_ROW_COLUMNS)  # one table per input
    shutil.rmtree(kept)
    write_police(src, cases=[case(7, "2023-06-02 10:00:00", arrested_on="2023-01-11")], suspects=[])
    caplog.clear()
    pipeline.run_lifecycle(settings, "day3", sources=src, stages=stages, data_date=DATA_DATE)
    built = [r.getMessage() for r in caplog.records if "integrate: built gold.case_chain" in r.getMessage()]
    assert built and "by reach" not in built[-1] and chains()[pc(7)]["arrested_on"], built
    assert kept.is_dir()  # kept again by the whole build, for the next
