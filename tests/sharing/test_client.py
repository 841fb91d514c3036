"""The official delta-sharing client against the real server: discovery, every table's rows, limits, time travel."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import delta_sharing
import pandas as pd
import pytest
import requests
from deltalake import DeltaTable, write_deltalake

from lawlake import policy, tables
from lawlake.sharing.access import write_profile
from lawlake.sharing.server import start_in_thread

from .conftest import PARTNER_TABLES


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order, so two reads of one table compare equal."""
    return df.sort_values(list(df.columns), na_position="first", kind="mergesort").reset_index(drop=True)


@pytest.mark.parametrize("partner", sorted(PARTNER_TABLES))
def test_partner_sees_only_its_own_share_schema_and_tables(profiles, partner):
    client = delta_sharing.SharingClient(str(profiles[partner]))
    # One share per partner, named after it; one schema; the policy's tables.
    assert [s.name for s in client.list_shares()] == [partner]
    (share,) = client.list_shares()
    assert [s.name for s in client.list_schemas(share)] == ["justice"]
    (schema,) = client.list_schemas(share)
    assert [t.name for t in client.list_tables(schema)] == PARTNER_TABLES[partner]
    assert [(t.share, t.schema, t.name) for t in client.list_all_tables()] == [(partner, "justice", t) for t in PARTNER_TABLES[partner]]


@pytest.mark.parametrize("partner,table", [(p, t) for p, ts in sorted(PARTNER_TABLES.items()) for t in ts])
def test_load_as_pandas_returns_exactly_the_published_share_table(lake_settings, profiles, partner, table):
    pulled = delta_sharing.load_as_pandas(f"{profiles[partner]}#{partner}.justice.{table}")
    published = DeltaTable(str(tables.location(lake_settings.lake, f"share.{partner}.{table}"))).to_pandas()
    assert len(pulled) == len(published) > 0
    assert list(pulled.columns) == list(published.columns)
    pd.testing.assert_frame_equal(_canonical(pulled), _canonical(published))


def test_table_version_and_metadata_match_the_delta_log(lake_settings, profiles):
    client = delta_sharing.SharingClient(str(profiles["hz_procuratorate"]))
    table = client.list_all_tables()[0]
    path = str(tables.location(lake_settings.lake, f"share.hz_procuratorate.{table.name}"))
    rest = client._rest_client
    meta = rest.query_table_metadata(table)
    assert meta.delta_table_version == DeltaTable(path).version()
    assert meta.metadata.format.provider == "parquet"
    assert json.loads(meta.metadata.schema_string) == json.loads(DeltaTable(path).schema().to_json())
    assert meta.metadata.partition_columns == []
    assert rest.query_table_version(table).delta_table_version == DeltaTable(path).version()


@pytest.fixture(scope="module")
def history(lake_settings, tmp_path_factory):
    """A copy of one share table with three versions (13, +5, +8 rows; one file each), served from its own root."""
    root = tmp_path_factory.mktemp("history")
    target = root / "share" / "hz_procuratorate" / "time_limit_warnings"
    base = DeltaTable(str(tables.location(lake_settings.lake, "share.hz_procuratorate.time_limit_warnings"))).to_pyarrow_table().slice(0, 13)
    assert base.num_rows == 13  # the demo data at scale 0.3, seed 7, has more
    write_deltalake(str(target), base)
    time.sleep(0.02)  # distinct commit times, for time travel by timestamp
    write_deltalake(str(target), base.slice(0, 5), mode="append")
    time.sleep(0.02)
    write_deltalake(str(target), base.slice(5), mode="append")
    # Time travel is opt-in per policy (history: {since_version: N}); this copy serves every version.
    srv = start_in_thread(lake_settings, root=str(root), policies=[replace(policy.load(p), history_since=0) for p in PARTNER_TABLES])
    profile = write_profile(lake_settings, "hz_procuratorate", root / "hz.share", endpoint=srv.endpoint)
    commits = {h["version"]: h["timestamp"] for h in DeltaTable(str(target)).history()}
    yield {"server": srv, "profile": profile, "table": target, "commits": commits, "token": json.loads(profile.read_text())["bearerToken"]}
    srv.stop()


def _query(history, body: dict, **headers) -> requests.Response:
    url = f"{history['server'].endpoint}/shares/hz_procuratorate/schemas/justice/tables/time_limit_warnings/query"
    return requests.post(url, json=body, headers={"Authorization": f"Bearer {history['token']}", **headers}, timeout=30)


def _lines(resp: requests.Response) -> list[dict]:
    return [json.loads(line) for line in resp.text.splitlines()]


@pytest.mark.parametrize("version,rows", [(0, 13), (1, 18), (2, 26), (None, 26)])
def test_time_travel_by_version(history, version, rows):
    url = f"{history['profile']}#hz_procuratorate.justice.time_limit_warnings"
    assert len(delta_sharing.load_as_pandas(url, version=version)) == rows


def test_time_travel_by_timestamp_reads_the_version_current_then(history):
    url = f"{history['profile']}#hz_procuratorate.justice.time_limit_warnings"
    at_v1 = datetime.fromtimestamp(history["commits"][1] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(delta_sharing.load_as_pandas(url, timestamp=at_v1)) == 18
    resp = _query(history, {"timestamp": at_v1})
    assert resp.headers["delta-table-version"] == "1"
    files = [line["file"] for line in _lines(resp)[2:]]
    assert {f["version"] for f in files} == {1} and {f["timestamp"] for f in files} == {history["commits"][1]}
    # Before the first commit there is nothing to read.
    assert _query(history, {"timestamp": "2001-01-01T00:00:00Z"}).json()["errorCode"] == "INVALID_PARAMETER_VALUE"


def test_limit_hint_returns_only_the_files_needed(history):
    everything = _lines(_query(history, {}))
    assert len(everything) == 2 + 3  # protocol, metaData, three files
    limited = _lines(_query(history, {"limitHint": 3}))
    assert len(limited) == 2 + 1  # one file holds more than three rows
    assert len(_lines(_query(history, {"limitHint": 0}))) == 2
    url = f"{history['profile']}#hz_procuratorate.justice.time_limit_warnings"
    assert len(delta_sharing.load_as_pandas(url, limit=3)) == 3


def test_predicate_hints_are_accepted_and_not_applied(history):
    hints = {"predicateHints": ["limit_days > 1000"], "jsonPredicateHints": json.dumps({"op": "equal", "children": []})}
    assert len(_lines(_query(history, hints))) == 2 + 3


def test_version_endpoints(history):
    base = f"{history['server'].endpoint}/shares/hz_procuratorate/schemas/justice/tables/time_limit_warnings"
    auth = {"Authorization": f"Bearer {history['token']}"}
    assert requests.get(f"{base}/version", headers=auth, timeout=30).headers["delta-table-version"] == "2"
    assert requests.head(base, headers=auth, timeout=30).headers["delta-table-version"] == "2"  # the deprecated HEAD form
    since = datetime.fromtimestamp((history["commits"][1] - 1) / 1000, UTC).isoformat()
    assert requests.get(f"{base}/version", params={"startingTimestamp": since}, headers=auth, timeout=30).headers["delta-table-version"] == "1"
    meta = requests.get(f"{base}/metadata", params={"version": 0}, headers=auth, timeout=30)
    assert meta.headers["delta-table-version"] == "0" and _lines(meta)[1]["metaData"]["version"] == 0
    missing = requests.get(f"{base}/metadata", params={"version": 9}, headers=auth, timeout=30)
    assert (missing.status_code, missing.json()["errorCode"]) == (400, "INVALID_PARAMETER_VALUE")


def test_delta_response_format_when_the_client_asks_for_it_only(history):
    resp = _query(history, {}, **{"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors"})
    assert resp.headers["delta-sharing-capabilities"] == "responseformat=delta"
    protocol, metadata, *files = _lines(resp)
    assert protocol["protocol"]["deltaProtocol"]["minReaderVersion"] == 1
    assert json.loads(metadata["metaData"]["deltaMetadata"]["schemaString"])["type"] == "struct"
    add = files[0]["file"]["deltaSingleAction"]["add"]
    assert requests.get(add["path"], timeout=30).content[:4] == b"PAR1"
    # Offered both, the server picks parquet (our tables need no delta-only reader feature).
    assert _query(history, {}, **{"delta-sharing-capabilities": "responseformat=delta,parquet"}).headers["delta-sharing-capabilities"] == "responseformat=parquet"


def test_list_responses_page_with_max_results(server, tokens):
    auth = {"Authorization": f"Bearer {tokens['hz_procuratorate']}"}
    url = f"{server.endpoint}/shares/hz_procuratorate/all-tables"
    first = requests.get(url, params={"maxResults": 1}, headers=auth, timeout=30).json()
    assert [t["name"] for t in first["items"]] == ["case_chain"] and first["nextPageToken"]
    second = requests.get(url, params={"maxResults": 1, "pageToken": first["nextPageToken"]}, headers=auth, timeout=30).json()
    assert [t["name"] for t in second["items"]] == ["time_limit_warnings"] and "nextPageToken" not in second
    bad = requests.get(url, params={"maxResults": -1}, headers=auth, timeout=30)
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "INVALID_PARAMETER_VALUE")


def test_partitioned_tables_carry_their_partition_values(lake_settings, tmp_path):
    # Partition values travel as strings in the file lines; the client turns them back into columns.
    root = tmp_path / "partitioned"
    target = root / "share" / "hz_procuratorate" / "time_limit_warnings"
    data = DeltaTable(str(tables.location(lake_settings.lake, "share.hz_procuratorate.time_limit_warnings"))).to_pyarrow_table()
    write_deltalake(str(target), data, partition_by=["rule", "clock_started_on"])
    with start_in_thread(lake_settings, root=str(root)) as srv:
        profile = write_profile(lake_settings, "hz_procuratorate", tmp_path / "hz.share", endpoint=srv.endpoint)
        token = json.loads(profile.read_text())["bearerToken"]
        resp = requests.post(f"{srv.endpoint}/shares/hz_procuratorate/schemas/justice/tables/time_limit_warnings/query", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        metadata, files = _lines(resp)[1]["metaData"], [line["file"] for line in _lines(resp)[2:]]
        assert metadata["partitionColumns"] == ["rule", "clock_started_on"]
        assert all(set(f["partitionValues"]) == {"rule", "clock_started_on"} for f in files) and len(files) > 1
        pulled = delta_sharing.load_as_pandas(f"{profile}#hz_procuratorate.justice.time_limit_warnings")
    published = DeltaTable(str(target)).to_pandas()[list(pulled.columns)]
    pd.testing.assert_frame_equal(_canonical(pulled), _canonical(published), check_dtype=False)
