"""The ``lawlake`` command: demo data, runs, and the lake's tables, gates and quarantine.

Every command takes ``--lake DIR`` (default: ``LAWLAKE_LAKE`` or ``./lake``) and has ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from lawlake import config, tables
from lawlake.console import RunProgress
from lawlake.console import print_table as _print_table

__all__ = ["main", "run_via_airflow", "warnings_query"]


def _settings(args) -> config.Settings:
    return config.load(lake=getattr(args, "lake", None), catalog_url=getattr(args, "catalog_url", None), engine=getattr(args, "engine", None))


# -- demo-data ----------------------------------------------------------------------


def cmd_demo_data(args) -> int:
    from lawlake.demo import generate

    start = time.perf_counter()
    summary = generate(args.out, scale=args.scale, seed=args.seed)
    records = summary["records_total"]
    print(f"wrote the demo agencies to {Path(args.out).resolve()} (scale {args.scale}, seed {args.seed}, {records:,} source records) in {time.perf_counter() - start:.1f}s")
    return 0


# -- run --------------------------------------------------------------------------------


def _airflow_env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(config.REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "GX_ANALYTICS_ENABLED": "False",
            "TQDM_DISABLE": "1",
            "RUST_LOG": env.get("RUST_LOG", "warn"),
        }
    )
    return env


def _openlineage_env(settings: config.Settings) -> dict:
    """The OpenLineage provider's settings for a run: lawlake's extractor, the lake's namespace, and where events go.

    An ``[openlineage]`` transport or config file the environment already sets (production)
    is kept; otherwise events go where :func:`lawlake.lineage.transport_config` says (files
    under ``<lake>/_lineage/``, or HTTP to ``LAWLAKE_OPENLINEAGE_URL``).
    """
    from lawlake import lineage

    env = {
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "lawlake.lineage_airflow.LifecycleExtractor",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": os.environ.get("AIRFLOW__OPENLINEAGE__NAMESPACE", lineage.JOB_NAMESPACE),
        "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": os.environ.get("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "60"),
        "AIRFLOW__OPENLINEAGE__INCLUDE_FULL_TASK_INFO": "False",
        "LAWLAKE_LAKE": str(settings.lake),  # the extractor's START events name the run's lake
    }
    if not any(os.environ.get(k) for k in ("AIRFLOW__OPENLINEAGE__TRANSPORT", "AIRFLOW__OPENLINEAGE__CONFIG_PATH", "OPENLINEAGE_URL", "OPENLINEAGE_CONFIG")):
        env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(lineage.transport_config(settings))
    return env


SERIALIZED = "dags.serialized"  # in the Airflow home: the dags_digest() of the DAGs its database holds serialized


def dags_digest() -> str:
    """What the serialized DAGs are made of: the DAG files and where they are (a serialized DAG names its file),
    lawlake's code and schemas (the tables and partner policies the DAGs publish and are scheduled on) and
    Airflow's version. The same digest: the same DAGs."""
    import hashlib
    from importlib.metadata import version

    from lawlake.pipeline import code_fingerprint

    digest = hashlib.sha256(f"{code_fingerprint()}\0{version('apache-airflow')}\0{config.REPO_ROOT.resolve()}\0".encode())
    for path in sorted((config.REPO_ROOT / "dags").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _airflow() -> str:
    exe = Path(sys.executable).parent / "airflow"
    return str(exe) if exe.exists() else "airflow"


def run_via_airflow(settings: config.Settings, sources: Path, run_id: str, *, data_date=None, full_refresh: bool = False, echo=print) -> int:
    """Run the lifecycle DAG with ``airflow dags test`` on an Airflow home inside the lake; return its exit code.

    The tasks report their progress to ``<lake>/_runs/<run_id>/events.jsonl`` (shown by
    ``lawlake run``); the full Airflow log goes to ``<lake>/_logs/<run_id>.log``. Every DAG
    is serialized first, so DAGs scheduled on the lake's Assets (``partner_refresh``) are
    queued by the run's asset events; when nothing they are made of changed since the Airflow
    home's last serialization (:func:`dags_digest`), they are not serialized again.
    """
    home = settings.lake / "_airflow"
    home.mkdir(parents=True, exist_ok=True)
    logs = settings.lake / "_logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{run_id}.log"
    env = _airflow_env(home) | _openlineage_env(settings)
    with log_path.open("w", encoding="utf-8") as log:
        serialized = home / SERIALIZED
        if not (home / "airflow.db").exists():
            echo("setting up Airflow (SQLite) in " + str(home))
            serialized.unlink(missing_ok=True)  # a new database holds no DAG
            subprocess.run([_airflow(), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        digest = dags_digest()
        if not serialized.is_file() or serialized.read_text() != digest:
            subprocess.run([_airflow(), "dags", "reserialize"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
            serialized.write_text(digest)
        conf = {"sources": str(sources), "lake": str(settings.lake), "engine": settings.engine, "catalog_url": settings.catalog_url, "run_id": run_id,
                "data_date": data_date.isoformat() if data_date else "", "full_refresh": full_refresh}
        proc = subprocess.run([_airflow(), "dags", "test", "lawlake_lifecycle", "-c", json.dumps(conf)], env=env, stdout=log, stderr=subprocess.STDOUT)
        return proc.returncode


@contextlib.contextmanager
def demo_legal_api(sources: Path, *, airflow: bool = True, echo=print) -> Iterator[str | None]:
    """For demo sources (a ``legal/`` folder) and no legal services API configured: serve it for the block.

    Sets the environment gather finds it in: ``LAWLAKE_LEGAL_API_URL``/``_TOKEN``
    in-process, and (``airflow``) the Airflow connection ``lawlake_legal_services`` for
    the DAG's tasks.
    """
    from lawlake import connections

    if connections.legal_services() is not None or not (sources / "legal").is_dir():
        yield None
        return
    from lawlake.demo import api

    names = ("LAWLAKE_LEGAL_API_URL", "LAWLAKE_LEGAL_API_TOKEN", f"AIRFLOW_CONN_{connections.LEGAL_CONNECTION.upper()}")
    saved = {n: os.environ.get(n) for n in names}
    with api.running(sources) as url:
        port = int(url.rsplit(":", 1)[1])
        os.environ.update({names[0]: url, names[1]: api.DEFAULT_TOKEN})
        if airflow:
            os.environ[names[2]] = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port, "password": api.DEFAULT_TOKEN})
        echo(f"  serving the demo legal services API at {url} for this run")
        try:
            yield url
        finally:
            for n, v in saved.items():
                if v is None:
                    os.environ.pop(n, None)
                else:
                    os.environ[n] = v


def cmd_demo_api(args) -> int:
    from lawlake.demo import api

    sources = Path(args.sources).resolve()
    if not (sources / "legal").is_dir():
        print(f"lawlake demo-api: {sources / 'legal'} does not exist (make it with: lawlake demo-data --out {args.sources})", file=sys.stderr)
        return 2
    print(f"serving the legal services API of {sources} at http://127.0.0.1:{args.port} (bearer token {args.token!r}); Ctrl-C stops it")
    api.serve(sources, port=args.port, token=args.token, fault_rate=args.fault_rate, seed=args.seed)
    return 0


def cmd_run(args) -> int:
    from lawlake import lock, pipeline
    from lawlake.catalog import Catalog

    settings = _settings(args)
    sources = Path(args.sources).resolve()
    if not sources.is_dir():
        print(f"lawlake run: sources folder {sources} does not exist (make one with: lawlake demo-data --out {args.sources})", file=sys.stderr)
        return 2
    run_id = args.run_id or datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S")
    catalog = Catalog(settings.catalog_url)
    try:  # this process holds the lake for the whole run, Airflow's tasks included
        lock.acquire(catalog, run_id)
    except lock.LakeBusy as exc:
        print(f"lawlake run: {exc}", file=sys.stderr)
        return 2
    print(f"lawlake run {run_id}: sources {sources} → lake {settings.lake} (engine: {settings.engine})")
    start = time.perf_counter()
    with lock.Heartbeat(catalog, run_id), demo_legal_api(sources, airflow=not args.no_airflow), RunProgress(settings.lake, run_id):
        if args.no_airflow:
            import logging

            logs = settings.lake / "_logs"
            logs.mkdir(parents=True, exist_ok=True)
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", filename=str(logs / f"{run_id}.log"), filemode="w")
            try:
                pipeline.run_lifecycle(settings, run_id, sources=sources, data_date=args.data_date, full_refresh=args.full_refresh)
                code = 0
            except Exception as exc:  # reported below from the catalog
                print(f"  failed: {exc}", file=sys.stderr)
                code = 1
        else:
            code = run_via_airflow(settings, sources, run_id, data_date=args.data_date, full_refresh=args.full_refresh)
    run = catalog.run(run_id) or {}
    if run.get("status") != "success":
        code = code or 1
    if run.get("status") in (None, "running"):  # Airflow died before its teardown could close the run
        if run:
            pipeline.close_run(settings, run_id, status="failed", message=f"a task failed; see {settings.lake / '_logs' / (run_id + '.log')}")
        else:
            lock.release(catalog, run_id)
    print(f"\n{run_id}: {'SUCCESS' if code == 0 else 'FAILED'} in {time.perf_counter() - start:.1f}s")
    print_run_summary(settings, run_id)
    return code


def print_run_summary(settings: config.Settings, run_id: str) -> None:
    from lawlake.catalog import Catalog

    catalog = Catalog(settings.catalog_url)
    run = catalog.run(run_id) or {}
    stages = catalog.stage_results(run_id)
    gates = catalog.gate_results(run_id)
    if stages:
        print("\nrows per table (in = out + quarantined + merged + excluded):")
        _print_table(
            [{"stage": s["stage"], "table": s["table_name"], "in": s["rows_in"], "out": s["rows_out"], "quarantined": s["rows_quarantined"],
              "merged": s["rows_merged"], "excluded": s["rows_excluded"], "balanced": "yes" if s["is_balanced"] else "NO"} for s in stages]
        )
    rules = [
        {"table": g["table_name"], "rule": r["expectation"][len("rule_pass_rate("):-1], "quarantined": r["unexpected_count"],
         "pass rate": r["observed"].split(" of ")[0], "threshold": "" if r["threshold"] is None else f"{r['threshold']:.1%}", "ok": "yes" if r["success"] else "NO"}
        for g in gates for r in g["results"] if r["expectation"].startswith("rule_pass_rate(") and (r["unexpected_count"] or not r["success"])
    ]
    if rules:
        print("\nnormalize rules that quarantined rows (pass rate = share of checked values accepted):")
        _print_table(rules)
    if gates:
        failed = [g for g in gates if not g["success"]]
        print(f"\ngates: {len(gates) - len(failed)} passed, {len(failed)} failed")
        for g in failed:
            print(f"  FAILED {g['table_name']} (candidate kept at {g['candidate_path']}):")
            for r in g["results"]:
                if not r["success"]:
                    print(f"    ✗ {r['expectation']}: {r['observed']}")
    _print_data_docs(settings, run_id)
    if run.get("status") != "success" and run.get("message"):
        print(f"\n{run['message']}")
    print_evidence_hint(settings, run_id)
    if run.get("status") == "success":
        print(f"\ntables are published under {settings.lake}; query them with:")
        print(f'  lawlake sql --lake {settings.lake} "SELECT charge_code, count(*) AS n FROM gold.case_chain GROUP BY charge_code ORDER BY n DESC"')
        print(f"  lawlake tables --lake {settings.lake}    lawlake gates --lake {settings.lake}    lawlake quarantine --lake {settings.lake}")
        from lawlake.opendata.portal import portal_location

        portal = portal_location(settings.lake)
        if (portal / "index.html").is_file():
            print(f"open data portal: {portal / 'index.html'} (DCAT-AP 3 catalog: {portal / 'catalog.jsonld'})")
        print_sharing_hint(settings)


def _print_data_docs(settings: config.Settings, run_id: str) -> None:
    from quality.docs import run_index

    index = run_index(settings.lake, run_id)
    if index.is_file():
        print(f"\nData Docs (every gate's validation result): {index}")


def print_evidence_hint(settings: config.Settings, run_id: str) -> None:
    """Where the run's evidence is: lineage events, the event log, the progress feed."""
    from lawlake import events, lineage

    if settings.openlineage_url:
        print(f"\nlineage events: sent to {settings.openlineage_url} (OpenLineage HTTP)")
    else:
        print(f"\nlineage events (OpenLineage): {lineage.lineage_dir(settings.lake)}/    lawlake lineage --lake {settings.lake} gold.case_chain")
    print(f"event log: lawlake events --lake {settings.lake} --run {run_id} [--format csv|json]  (catalog view {'event_log'} in {settings.catalog_url})")
    print(f"task events of this run: {events.events_path(settings.lake, run_id)}")


def print_sharing_hint(settings: config.Settings, partner: str = "hz_procuratorate") -> None:
    """How a partner pulls its share: the server command and a demo partner's profile (a fresh token)."""
    from lawlake import sharing

    if not tables.exists(tables.location(settings.lake, f"share.{partner}.case_chain")):
        return
    profile = sharing.demo_profile(settings, partner)
    print("\npartners pull their shares with the Delta Sharing client; start the server with:")
    print(f"  {sharing.serve_command(settings)}")
    print(f"demo partner profile ({partner}): {profile}")
    print(f"  python -c \"import delta_sharing; print(delta_sharing.load_as_pandas('{profile}#{partner}.justice.case_chain'))\"")


# -- tables, sql, gates, quarantine --------------------------------------------------


def cmd_tables(args) -> int:
    from lawlake import releases
    from lawlake.catalog import Catalog

    settings = _settings(args)
    if args.explain:
        return explain_table(args.explain)
    catalog = Catalog(settings.catalog_url)
    as_of = releases.resolve_release_id(catalog, args.at) if args.at else None
    rows = [
        {"zone": name.split(".")[0], "table": name, "version": info["version"], "rows": info["rows"], "release": info["release_id"],
         "run": info["run_id"], "released at": str(info["released_at"])[:19]}
        for name, info in sorted(catalog.released_tables(as_of).items())
    ]
    _print_table(rows, ["zone", "table", "version", "rows", "release", "run", "released at"])
    return 0


def explain_table(name: str) -> int:
    """A table's parts, one hop apart: its stage, builder, inputs, contract, suite and tests."""
    import inspect

    from lawlake import contracts, pipeline
    from lawlake.suites import suite_for, suite_path

    declared = pipeline.declared_tables()
    if name not in declared:
        print(f"lawlake tables --explain: no declared table {name!r}; declared: {', '.join(sorted(declared))}", file=sys.stderr)
        return 2
    stage, t = declared[name]
    contract = t.contract or contracts.load(name)
    suite = suite_for(name, contract=contract, declared=t.suite)
    build = inspect.unwrap(t.build)
    where = f"{inspect.getsourcefile(build)}:{inspect.getsourcelines(build)[1]}"
    repo = config.REPO_ROOT
    test_file = repo / "tests" / "jobs" / f"test_{stage}.py"
    print(f"{name}  ({stage} stage, {t.mode})")
    print(f"  grain:    {contract.grain}")
    print(f"  builder:  {build.__module__}.{build.__name__}  ({Path(where).relative_to(repo) if where.startswith(str(repo)) else where})")
    if (build.__doc__ or "").strip():
        print(f"            {(build.__doc__ or '').strip().splitlines()[0]}")
    print(f"  inputs:   {', '.join(t.inputs) or '(the agencies’ sources)'}")
    print(f"  params:   {', '.join(t.params) or '-'}")
    print(f"  reconciles: {'yes' if t.tally or stage == 'gather' else 'no (derived)'}; quarantine: {'yes' if t.quarantine or stage == 'gather' else 'no'}")
    source = "the partner policy (schemas/shares/)" if name.startswith("share.") else str(contracts.contract_path(name).relative_to(repo))
    print(f"  contract: {source}: {len(contract.columns)} columns, key ({', '.join(contract.primary_key) or '-'})")
    own = [e for e in suite.expectations if (e.get('meta') or {}).get("source") != "contract"]
    suite_file = "compiled from the partner policy" if t.suite is not None else str(suite_path(name).relative_to(repo))
    print(f"  suite:    {suite_file}: {len(suite.expectations)} expectations ({len(own)} of its own)")
    for e in own:
        label = (e.get("meta") or {}).get("check") or e["type"]
        print(f"            - {label}")
    print(f"  tests:    {test_file.relative_to(repo)}" + ("" if test_file.exists() else " (missing)"))
    return 0


def cmd_releases(args) -> int:
    from lawlake.catalog import Catalog

    settings = _settings(args)
    rels = Catalog(settings.catalog_url).releases(limit=args.limit)
    _print_table(
        [{"release": r["release_id"], "stage": r["stage"], "run": r["run_id"], "status": r["status"], "tables": len(r["tables"]),
          "finished at": str(r["finished_at"] or "")[:19], "note": (r["message"] or "")[:80]} for r in rels]
    )
    return 0


def cmd_suites(args) -> int:
    from lawlake import contracts, pipeline
    from lawlake.suites import write_suite

    names = sorted(n for n in pipeline.declared_tables() if not n.startswith(("work.", "share."))) + [pipeline.QUARANTINE]
    for name in names:
        path = write_suite(contracts.load(name))
        print(f"wrote {path.relative_to(config.REPO_ROOT)}")
    return 0


def resolve_sql(spark, settings: config.Settings, query: str, *, role: str | None = None, reason: str | None = None, at: str | None = None):
    """The analyst query as a DataFrame: checked read-only, on logical names at their released versions, sealed records hidden unless an audited role allows them."""
    from lawlake import releases, sql
    from lawlake.catalog import Catalog

    versions = releases.resolve(Catalog(settings.catalog_url), at)
    return sql.run(spark, settings.lake, query, versions=versions, role=role, reason=reason, catalog_url=settings.catalog_url)


def cmd_sql(args) -> int:
    from lawlake import engine
    from lawlake.sql import SqlRefused, check

    settings = _settings(args)
    try:
        check(args.query)  # refused before an engine is started
        spark = engine.session(settings.engine)
        df = resolve_sql(spark, settings, args.query, role=args.role, reason=args.reason, at=args.at)
    except SqlRefused as exc:
        print(f"lawlake sql: refused: {exc}", file=sys.stderr)
        return 2
    except (LookupError, ValueError) as exc:  # a release reference that names nothing
        print(f"lawlake sql: {exc}", file=sys.stderr)
        return 2
    rows = [r.asDict() for r in (df.limit(args.limit).collect() if args.limit else df.collect())]
    if args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(df.columns)
        for r in rows:
            w.writerow(["" if r[c] is None else r[c] for c in df.columns])
    else:
        _print_table(rows, df.columns)
        if args.limit and len(rows) == args.limit:
            print(f"(first {args.limit} rows; --limit 0 for all)")
    return 0


WARNING_COLUMNS = ["status", "days_over", "rule", "article", "agency", "region_code", "police_case_id", "clock_started_on", "deadline", "ended_on", "judged_on", "evidence"]


def warnings_query(*, agency: str | None = None, region: str | None = None, status: str | None = None) -> str:
    """The released statutory time-limit warnings as one read-only query: exceeded first, the most overdue first.

    ``region`` is a GB/T 2260 code or its prefix (``3301`` a prefecture, ``330102`` a county).
    """
    from lawlake.rules import time_limits

    where = []
    if agency is not None:
        if agency not in time_limits.AGENCIES:
            raise ValueError(f"unknown agency {agency!r}; agencies: {', '.join(time_limits.AGENCIES)}")
        where.append(f"agency = '{agency}'")
    if status is not None:
        if status not in time_limits.STATUSES:
            raise ValueError(f"unknown status {status!r}; statuses: {', '.join(time_limits.STATUSES)}")
        where.append(f"status = '{status}'")
    if region is not None:
        if not re.fullmatch(r"[0-9]{2,6}", region):
            raise ValueError(f"region must be a GB/T 2260 code or its prefix (2 to 6 digits), got {region!r}")
        where.append(f"region_code LIKE '{region}%'")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT {', '.join(WARNING_COLUMNS)} FROM gold.time_limit_warnings{clause} "
            "ORDER BY status = 'exceeded' DESC, status = 'undetermined', days_over DESC, police_case_id, rule")


def cmd_warnings(args) -> int:
    from lawlake import engine
    from lawlake.sql import SqlRefused

    settings = _settings(args)
    try:
        query = warnings_query(agency=args.agency, region=args.region, status=args.status)
    except ValueError as exc:
        print(f"lawlake warnings: {exc}", file=sys.stderr)
        return 2
    spark = engine.session(settings.engine)
    try:
        df = resolve_sql(spark, settings, query, at=args.at)  # sealed and pending chains hidden, as in lawlake sql
    except (SqlRefused, LookupError, ValueError) as exc:  # nothing released yet, or a release reference that names nothing
        print(f"lawlake warnings: {exc}", file=sys.stderr)
        return 2
    rows = [r.asDict() for r in (df.limit(args.limit).collect() if args.limit else df.collect())]
    _print_table(rows, WARNING_COLUMNS)
    if args.limit and len(rows) == args.limit:
        print(f"(first {args.limit} warnings; --limit 0 for all)")
    return 0


def cmd_gates(args) -> int:
    from lawlake.catalog import Catalog

    settings = _settings(args)
    catalog = Catalog(settings.catalog_url)
    run = catalog.run(args.run) if args.run else catalog.last_run()
    if not run:
        print("no runs yet")
        return 0
    print(f"run {run['run_id']}: {run['status']}")
    gates = catalog.gate_results(run["run_id"])
    quarantined = {}
    for s in catalog.stage_results(run["run_id"]):
        quarantined[s["table_name"]] = s["rows_quarantined"]
    _print_table(
        [{"stage": g["stage"], "table": g["table_name"], "result": "passed" if g["success"] else "FAILED", "checks": g["evaluated"], "failed": g["failed"],
          "rows": g["rows"], "quarantined": quarantined.get(g["table_name"], ""), "seconds": f"{g['seconds']:.1f}"} for g in gates]
    )
    for g in gates:
        shown = g["results"] if args.verbose else [r for r in g["results"] if not r["success"]]
        if shown:
            print(f"\n{g['table_name']}:")
            for r in shown:
                threshold = f" (threshold {r['threshold']})" if r.get("threshold") not in (None, 0) else ""
                print(f"  {'✓' if r['success'] else '✗'} {r['expectation']}{threshold}: {r['observed']}")
    return 0


def cmd_quarantine(args) -> int:
    from pyspark.sql import functions as F

    from lawlake import engine

    settings = _settings(args)
    path = tables.location(settings.lake, "quarantine.records")
    if not tables.exists(path):
        print("nothing quarantined yet")
        return 0
    spark = engine.session(settings.engine)
    df = tables.read(spark, path)
    if args.table:
        df = df.where((F.col("target_table") == args.table) | (F.col("source_table") == args.table))
    if args.rule:
        df = df.where(F.col("rule") == args.rule)
    if args.run:
        df = df.where(F.col("run_id") == args.run)
    if args.summary:
        rows = [r.asDict() for r in df.groupBy("stage", "target_table", "rule").count().orderBy("stage", "target_table", F.col("count").desc()).collect()]
        _print_table(rows, ["stage", "target_table", "rule", "count"])
        return 0
    cols = ["run_id", "target_table", "record_key", "rule", "reason", "raw_value"]
    rows = [r.asDict() for r in df.orderBy("quarantined_at", "target_table", "record_key").select(*cols).limit(args.limit).collect()]
    _print_table(rows, cols)
    return 0


def cmd_lineage(args) -> int:
    from lawlake import lineage

    settings = _settings(args)
    if not any(True for _ in lineage.read_events(settings.lake)):
        where = f"they are sent to {settings.openlineage_url}" if settings.openlineage_url else f"none under {lineage.lineage_dir(settings.lake)}"
        print(f"lawlake lineage: no OpenLineage events to read ({where}); run the lifecycle first", file=sys.stderr)
        return 2
    g = lineage.graph(settings.lake)
    if args.table not in g:
        print(f"lawlake lineage: no events name {args.table!r}; tables with lineage: {', '.join(sorted(g))}", file=sys.stderr)
        return 2

    def closure(name: str, way: str) -> list[str]:
        seen: list[str] = []
        todo = sorted(g.get(name, {}).get(way, ()))
        while todo:
            n = todo.pop(0)
            if n not in seen:
                seen.append(n)
                todo += sorted(g.get(n, {}).get(way, ()))
        return seen

    node = g[args.table]
    print(f"{args.table}  (written by {', '.join(sorted(node['jobs']))}; namespace {lineage.namespace(settings.lake)})")
    rows = [{"direction": "upstream", "table": n, "hops": "1" if n in node["upstream"] else "2+"} for n in closure(args.table, "upstream")]
    rows += [{"direction": "downstream", "table": n, "hops": "1" if n in node["downstream"] else "2+"} for n in closure(args.table, "downstream")]
    if not args.all:
        rows = [r for r in rows if r["hops"] == "1"]
    _print_table(rows, ["direction", "table", "hops"])
    return 0


def cmd_events(args) -> int:
    from lawlake import events
    from lawlake.catalog import Catalog

    settings = _settings(args)
    catalog = Catalog(settings.catalog_url)
    run_id = args.run
    if run_id and not catalog.run(run_id):
        print(f"lawlake events: no run {run_id!r}", file=sys.stderr)
        return 2
    rows = events.event_log(catalog, run_id, with_expectations=args.format == "json")
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
    elif args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(events.COLUMNS)
        for r in rows:
            w.writerow(["" if r[c] is None else r[c] for c in events.COLUMNS])
    else:
        def num(v, fmt="{:,}"):
            return "" if v is None else fmt.format(v)

        _print_table([
            {"run": r["run_id"], "stage": r["stage"], "table": r["table_name"], "in": num(r["rows_in"]), "out": num(r["rows_out"]),
             "quarantined": num(r["rows_quarantined"]), "merged": num(r["rows_merged"]), "excluded": num(r["rows_excluded"]),
             "gate": "" if r["gate_passed"] is None else ("passed" if r["gate_passed"] else "FAILED"), "checks": num(r["checks"]), "failed": num(r["checks_failed"]),
             "build s": num(r["stage_seconds"], "{:.1f}"), "gate s": num(r["gate_seconds"], "{:.1f}"), "version": num(r["version"]), "published": num(r["published_rows"])}
            for r in rows
        ])
    return 0


# -- parser ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lawlake", description="A rule-of-law data lake: gather, normalize, integrate, share and open justice data behind quality gates.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_lake(sp):
        sp.add_argument("--lake", help="lake root (default: LAWLAKE_LAKE or ./lake)")
        sp.add_argument("--catalog-url", dest="catalog_url", help="catalog SQLAlchemy URL (default: LAWLAKE_CATALOG_URL or SQLite in the lake)")
        sp.add_argument("--engine", help="'embedded' (Sail, default) or an sc:// Spark Connect URL")
        return sp

    sp = sub.add_parser("demo-data", help="write the simulated agencies' source systems")
    sp.add_argument("--out", required=True, help="folder to write (replaced if it holds earlier demo data)")
    sp.add_argument("--scale", type=float, default=1.0, help="size: 1 ≈ 2,000 police cases (default 1)")
    sp.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sp.set_defaults(func=cmd_demo_data)

    sp = sub.add_parser("demo-api", help="serve the demo public legal services API (paginated JSON) on 127.0.0.1")
    sp.add_argument("--sources", required=True, help="demo sources folder (its legal/ folder is served)")
    sp.add_argument("--port", type=int, default=8765)
    sp.add_argument("--token", default="demo-legal-services-token", help="the bearer token callers must send")
    sp.add_argument("--fault-rate", dest="fault_rate", type=float, default=0.05, help="share of calls answered 429/503 with Retry-After (default 0.05)")
    sp.add_argument("--seed", type=int, default=13, help="seed of the faults (default 13)")
    sp.set_defaults(func=cmd_demo_api)

    sp = with_lake(sub.add_parser("run", help="run the lifecycle DAG (gather → normalize → integrate → share → open) through Airflow"))
    sp.add_argument("--sources", required=True, help="folder with the agencies' exports")
    sp.add_argument("--run-id", dest="run_id", help="run id (default: run-<UTC time>)")
    sp.add_argument("--no-airflow", action="store_true", help="run the stages in this process instead of through Airflow (debugging)")
    sp.add_argument("--data-date", dest="data_date", type=date.fromisoformat, help="the date the data describes, YYYY-MM-DD (default: today, UTC)")
    sp.add_argument("--full-refresh", dest="full_refresh", action="store_true",
                    help="rebuild every table, even those whose inputs, parameters and code did not change since their released version")
    sp.set_defaults(func=cmd_run)

    sp = with_lake(sub.add_parser("tables", help="released tables: zone, version, rows, release, run (or --explain NAME)"))
    sp.add_argument("--at", help="as of a past release: release:N or run:RUN_ID (default: the latest)")
    sp.add_argument("--explain", metavar="NAME", help="print a table's stage, builder, inputs, contract, suite and tests")
    sp.set_defaults(func=cmd_tables)

    sp = with_lake(sub.add_parser("releases", help="stage releases, newest first: each stage publishes its tables as one release"))
    sp.add_argument("--limit", type=int, default=20)
    sp.set_defaults(func=cmd_releases)

    sp = sub.add_parser("suites", help="refresh every table's suite (quality/gx/expectations/, the GX file context) from its contract, keeping its own expectations")
    sp.add_argument("--write", action="store_true", required=True, help="write the files")
    sp.set_defaults(func=cmd_suites)

    sp = with_lake(sub.add_parser("sql", help="run a read-only query over the lake; name tables as gold.case_chain (gold.case_chain@v3 for a past version)"))
    sp.add_argument("query", help="one SELECT / WITH … SELECT / set operation / VALUES over logical table names")
    sp.add_argument("--role", help="a role of schemas/access.yaml, e.g. sealed_access (shows sealed records; audited)")
    sp.add_argument("--reason", help="why the role is taken (required with --role; kept in the audit)")
    sp.add_argument("--at", help="read every table as of a past release: release:N or run:RUN_ID (default: the latest release)")
    sp.add_argument("--format", choices=("table", "csv"), default="table")
    sp.add_argument("--limit", type=int, default=50, help="rows to show (0: all; default 50)")
    sp.set_defaults(func=cmd_sql)

    sp = with_lake(sub.add_parser("warnings", help="statutory time limits exceeded or approaching (CPL 2018), from the released gold.time_limit_warnings"))
    sp.add_argument("--agency", choices=["police", "procuratorate", "court"], help="the agency responsible for the limit")
    sp.add_argument("--region", help="a GB/T 2260 region code or prefix: 3301 (Hangzhou), 330102 (one county)")
    sp.add_argument("--status", choices=["approaching", "exceeded", "undetermined"],
                    help="exceeded; still open and within the warning window; or undetermined (the clock's start date is missing in the sources)")
    sp.add_argument("--at", help="release:N or run:RUN_ID: the warnings as that release left them")
    sp.add_argument("--limit", type=int, default=100, help="rows to print (0: all)")
    sp.set_defaults(func=cmd_warnings)

    sp = with_lake(sub.add_parser("gates", help="gate results of the last run (or --run), with quarantine counts"))
    sp.add_argument("--run", help="run id (default: the last run)")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every expectation, not only failures")
    sp.set_defaults(func=cmd_gates)

    sp = with_lake(sub.add_parser("quarantine", help="list quarantined records with their rule and reason"))
    sp.add_argument("--table", help="only records headed for (or read from) this table")
    sp.add_argument("--rule", help="only records rejected by this rule, e.g. id_number.invalid")
    sp.add_argument("--run", help="only this run")
    sp.add_argument("--summary", action="store_true", help="counts per stage, table and rule")
    sp.add_argument("--limit", type=int, default=50)
    sp.set_defaults(func=cmd_quarantine)

    sp = with_lake(sub.add_parser("lineage", help="a table's upstream and downstream tables, read from the OpenLineage events"))
    sp.add_argument("table", help="a logical table name, e.g. gold.case_chain")
    sp.add_argument("--all", action="store_true", help="every table up- and downstream, not only one hop away")
    sp.set_defaults(func=cmd_lineage)

    sp = with_lake(sub.add_parser("events", help="the event log: per run, stage and table, rows in/out/quarantined/merged/excluded, checks, timings, versions"))
    sp.add_argument("--run", help="only this run (default: every run)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="json adds each expectation's passed/failed rows")
    sp.set_defaults(func=cmd_events)

    from lawlake.sharing.cli import register

    register(sub)
    from lawlake.opendata.cli import register as register_open

    register_open(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("RUST_LOG", "error")  # the embedded engine's shutdown warnings are not the user's concern
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
