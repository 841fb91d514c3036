"""File export and database push of a partner's share; the policy's ``delivery:`` section."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable
from sqlalchemy import create_engine, func, select, table, text

from lawlake import policy, tables
from lawlake.config import SCHEMAS_DIR
from lawlake.fileio import sha256_file
from lawlake.sharing.delivery import DELIVERIES_TABLE, export_share, push_share
from lawlake.sharing.errors import DeliveryError
from lawlake.sharing.store import ShareStore

from .conftest import PARTNER_TABLES


def _published(settings, partner: str, name: str):
    return DeltaTable(str(tables.location(settings.lake, f"share.{partner}.{name}")))


@pytest.mark.parametrize("partner", sorted(PARTNER_TABLES))
def test_export_writes_parquet_csv_and_a_verifiable_manifest(lake_settings, tmp_path, partner):
    manifest = export_share(lake_settings, partner, tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert [t["name"] for t in manifest["tables"]] == PARTNER_TABLES[partner]
    for t in manifest["tables"]:
        delta = _published(lake_settings, partner, t["name"])
        assert t["delta_version"] == delta.version()
        assert t["rows"] == delta.to_pyarrow_table().num_rows > 0
        for f in t["files"]:
            path = tmp_path / f["path"]
            assert sha256_file(path) == f["sha256"] and path.stat().st_size == f["bytes"]
        parquet = pq.read_table(tmp_path / f"{t['name']}.parquet")
        assert parquet.num_rows == t["rows"] and parquet.column_names == [c["name"] for c in t["columns"]]
        assert parquet.sort_by("chain_id").equals(delta.to_pyarrow_table().sort_by("chain_id"))
        assert pacsv.read_csv(tmp_path / f"{t['name']}.csv").num_rows == t["rows"]
    assert not list(tmp_path.glob("*.tmp"))
    audit = ShareStore(lake_settings.catalog_url).audit(partner=partner, limit=1)[0]
    assert (audit["action"], audit["status"], audit["rows"]) == ("export", 200, sum(t["rows"] for t in manifest["tables"]))


def test_export_refuses_an_expired_policy(lake_settings, tmp_path):
    lapsed = [replace(policy.load("zj_law_institute"), expires_on=date(2020, 1, 1))]
    with pytest.raises(DeliveryError, match="expired"):
        export_share(lake_settings, "zj_law_institute", tmp_path / "out", policies=lapsed)
    assert not (tmp_path / "out").exists()
    audit = ShareStore(lake_settings.catalog_url).audit(partner="zj_law_institute", limit=1)[0]
    assert (audit["action"], audit["status"], audit["error_code"]) == ("export", 400, "DELIVERY_REFUSED")


def _counts(url: str, names: list[str], schema: str | None = None) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return {n: c.execute(select(func.count()).select_from(table(n, schema=schema))).scalar_one() for n in names}
    finally:
        engine.dispose()


def _push_twice_and_check(settings, url: str, *, policies=None, schema: str | None = None) -> None:
    names = PARTNER_TABLES["hz_procuratorate"]
    expected = {n: _published(settings, "hz_procuratorate", n).to_pyarrow_table().num_rows for n in names}
    first = push_share(settings, "hz_procuratorate", url=url, policies=policies)
    assert {n: t["rows"] for n, t in first.tables.items()} == expected
    assert _counts(url, names, schema) == expected
    push_share(settings, "hz_procuratorate", url=url, policies=policies)
    # Replaced, not appended; the deliveries log keeps both pushes.
    assert _counts(url, names, schema) == expected
    assert _counts(url, [DELIVERIES_TABLE], schema)[DELIVERIES_TABLE] == 2 * len(names)
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            prefix = f"{schema}." if schema else ""
            pushed = c.execute(text(f"SELECT chain_id, police_case_id, occurred_on FROM {prefix}case_chain ORDER BY chain_id")).all()
    finally:
        engine.dispose()
    delta = _published(settings, "hz_procuratorate", "case_chain").to_pyarrow_table().sort_by("chain_id")
    # Compared as text: SQLite hands dates back as ISO strings from a raw SELECT, PostgreSQL as dates.
    expected_rows = zip(*(delta.column(c).to_pylist() for c in ("chain_id", "police_case_id", "occurred_on")))
    assert [tuple(map(str, r)) for r in pushed] == [tuple(map(str, r)) for r in expected_rows]


@pytest.mark.postgres
def test_push_replaces_the_tables_in_a_real_postgresql(lake_settings, postgres):
    _push_twice_and_check(lake_settings, postgres)
    audit = ShareStore(lake_settings.catalog_url).audit(partner="hz_procuratorate", limit=1)[0]
    assert (audit["action"], audit["status"], audit["files"]) == ("push", 200, 2)
    assert "postgresql+psycopg://postgres@127.0.0.1" in audit["path"]


@pytest.mark.postgres
def test_push_into_the_schema_the_policy_names(lake_settings, postgres):
    hz = policy.load("hz_procuratorate")
    with_schema = replace(hz, delivery=policy.Delivery(database=replace(hz.delivery.database, schema="lawlake_share")))
    _push_twice_and_check(lake_settings, postgres, policies=[with_schema], schema="lawlake_share")


def test_push_into_sqlite_is_atomic_too(lake_settings, tmp_path):
    _push_twice_and_check(lake_settings, f"sqlite:///{tmp_path / 'partner.db'}")


def test_push_reads_the_url_from_the_variable_the_policy_names(lake_settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = push_share(lake_settings, "hz_procuratorate", env={"HZ_PROCURATORATE_DB_URL": url})
    assert result.target == url and result.rows > 0
    with pytest.raises(DeliveryError, match="HZ_PROCURATORATE_DB_URL"):
        push_share(lake_settings, "hz_procuratorate", env={})


def test_push_is_refused_without_a_delivery_section(lake_settings, tmp_path):
    with pytest.raises(DeliveryError, match="allows no database delivery"):
        push_share(lake_settings, "zj_law_institute", url=f"sqlite:///{tmp_path / 'x.db'}")
    assert not (tmp_path / "x.db").exists()


def _doc(partner: str) -> dict:
    return yaml.safe_load((SCHEMAS_DIR / "shares" / f"{partner}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "delivery,error",
    [
        ({"database": {"url_env": "HZ_DB"}}, None),
        ({"database": {"url_env": "HZ_DB", "schema": "share_in"}}, None),
        ({"database": {"url": "postgresql://u:secret@h/db"}}, "unknown key 'url'"),  # credentials never in a policy
        ({"database": {"url_env": "HZ_DB", "password": "secret"}}, "unknown key 'password'"),
        ({"database": {"url_env": "hz db"}}, "must name an environment variable"),
        ({"database": {"url_env": "HZ_DB", "schema": "Bad-Name"}}, "schema"),
        ({"ftp": {"host": "x"}}, "unknown kind 'ftp'"),
        ("database", "must be a mapping"),
    ],
)
def test_policy_delivery_section(delivery, error):
    doc = {**_doc("hz_procuratorate"), "delivery": delivery}
    if error is None:
        assert policy.parse(doc).delivery.database.url_env == "HZ_DB"
    else:
        with pytest.raises(policy.PolicyError, match=error):
            policy.parse(doc)


def test_shipped_policies_delivery():
    assert policy.load("hz_procuratorate").delivery.database.url_env == "HZ_PROCURATORATE_DB_URL"
    assert policy.load("zj_law_institute").delivery is None
