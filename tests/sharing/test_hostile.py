"""A hostile client against the real sharing server: oversize and malformed requests, load, history, purge, token rotation.

These tests build their own tiny lake (share tables written with delta-rs) instead of the
lifecycle lake of ``conftest.py``, so they run in seconds.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import delta_sharing
import pyarrow as pa
import pytest
import requests
from deltalake import DeltaTable, write_deltalake

from lawlake import config, policy, sharing, tables
from lawlake.sharing.access import write_profile
from lawlake.sharing.purge import PurgeError, purge_withheld
from lawlake.sharing.server import MAX_BODY_BYTES, start_in_thread
from lawlake.sharing.store import ShareStore

from ..releasing import release
from ..servers import free_port, start_listening

HZ = "hz_procuratorate"
TABLE = "/shares/hz_procuratorate/schemas/justice/tables/case_chain"
REPO = Path(__file__).resolve().parents[2]


def _share_rows(*chains: str) -> pa.Table:
    return pa.Table.from_pylist([{"chain_id": c, "charge_code": "234"} for c in chains])


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> config.Settings:
    """A lake holding only hz_procuratorate's case_chain share table: v0 with chains c1, c2; v1 with c1 only."""
    settings = config.load(lake=tmp_path_factory.mktemp("hostile") / "lake")
    path = str(tables.location(settings.lake, f"share.{HZ}.case_chain"))
    write_deltalake(path, _share_rows("c1", "c2"))  # v0
    release(settings.catalog_url, settings.lake, [f"share.{HZ}.case_chain"])
    write_deltalake(path, _share_rows("c1"), mode="overwrite")  # v1: c2 became sealed
    release(settings.catalog_url, settings.lake, [f"share.{HZ}.case_chain"])
    return settings


@pytest.fixture(scope="module")
def server(lake):
    srv = start_in_thread(lake)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(lake, server, tmp_path_factory) -> str:
    profile = write_profile(lake, HZ, tmp_path_factory.mktemp("p") / "hz.share", endpoint=server.endpoint)
    return json.loads(profile.read_text())["bearerToken"]


def _raw(host: str, port: int, head: bytes, body: bytes = b"", *, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send bytes as they are; return status, headers, body of the answer."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(head + body)
        return _read_answer(s)


def _read_answer(s: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def _post_head(server, path: str, *, token: str | None = None, length: int | None = None, extra: str = "") -> bytes:
    lines = [f"POST /delta-sharing{path} HTTP/1.1", f"Host: {server.host}:{server.port}", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _protocol_error(status_headers_body, status: int, code: str | None = None) -> dict:
    got, _, body = status_headers_body
    assert got == status, body
    doc = json.loads(body)
    assert set(doc) == {"errorCode", "message"}, doc
    if code:
        assert doc["errorCode"] == code, doc
    return doc


def _query(server, token: str, body, **kw) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.endpoint + TABLE + "/query", data=data, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=30, **kw)


# -- size, depth and syntax limits ---------------------------------------------------------------------------


def test_a_declared_oversize_body_is_413_before_authentication(server):
    # no token at all, 300 MB declared, nothing of it sent: answered at once
    answer = _raw(server.host, server.port, _post_head(server, TABLE + "/query", length=300_000_000))
    _protocol_error(answer, 413, "RESOURCE_LIMIT_EXCEEDED")
    assert answer[1].get("connection") == "close"


def test_an_unauthenticated_small_body_is_401_and_not_read(server):
    answer = _raw(server.host, server.port, _post_head(server, TABLE + "/query", length=2), b"{}")
    _protocol_error(answer, 401, "UNAUTHENTICATED")


def test_a_chunked_body_past_the_limit_is_413(server, token):
    head = _post_head(server, TABLE + "/query", token=token, extra="Transfer-Encoding: chunked\r\n")
    chunk = b"x" * 65536
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(MAX_BODY_BYTES // len(chunk) + 2)) + b"0\r\n\r\n"
    _protocol_error(_raw(server.host, server.port, head, body), 413, "RESOURCE_LIMIT_EXCEEDED")


@pytest.mark.parametrize(
    "body,code",
    [
        ("[" * 30_000 + "]" * 30_000, "MALFORMED_REQUEST"),  # deeply nested, under the size limit: refused before parsing (used to be a 500)
        ('{"predicateHints": ' + "[" * 17 + "]" * 17 + "}", "MALFORMED_REQUEST"),  # one level past the limit
        ('{"version": 0', "MALFORMED_REQUEST"),  # truncated JSON
        (b"\xff\xfe{}", "MALFORMED_REQUEST"),  # not UTF-8
        ('{"version": ' + "9" * 5000 + "}", "MALFORMED_REQUEST"),  # a number Python will not parse
        ('{"version": 1e400}', "INVALID_PARAMETER_VALUE"),  # a float where an integer belongs
        ('{"limitHint": "x"}', "INVALID_PARAMETER_VALUE"),
    ],
)
def test_malformed_json_is_400(server, token, body, code):
    resp = _query(server, token, body)
    assert resp.status_code == 400 and resp.json()["errorCode"] == code, resp.text


def test_json_strings_full_of_brackets_are_not_depth(server, token):
    assert _query(server, token, {"predicateHints": ["[" * 1000]}).status_code == 200


@pytest.mark.parametrize(
    "extra,status",
    [
        ("X-Padding: " + "a" * 10_000 + "\r\n", 400),  # over the app's 8 KiB: a protocol error
        ("".join(f"X-H{i}: v\r\n" for i in range(100)), 400),  # too many headers
        ("X-Padding: " + "a" * 100_000 + "\r\n", 400),  # over the HTTP layer's 16 KiB: refused by h11 before the app
    ],
)
def test_oversize_headers_are_400(server, token, extra, status):
    lines = f"GET /delta-sharing/shares HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode()
    got, _, body = _raw(server.host, server.port, lines)
    assert got == status
    if len(extra) < 16_000:
        assert json.loads(body)["errorCode"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("value", ["-1", "abc", "1, 2"])
def test_a_bad_content_length_is_400(server, value):
    got, _, _ = _raw(server.host, server.port, _post_head(server, TABLE + "/query", extra=f"Content-Length: {value}\r\n"))
    assert got == 400


@pytest.mark.parametrize(
    "path,params",
    [
        (TABLE + "/metadata", {"version": "99999999999999999999999"}),
        (TABLE + "/metadata", {"timestamp": "9999-99-99"}),
        (TABLE + "/version", {"startingTimestamp": "0000-01-01T00:00:00Z"}),
        ("/shares", {"maxResults": "-" + "9" * 50}),
        ("/shares/" + "a" * 5000, {}),
        ("/shares/%00/schemas", {}),
    ],
)
def test_odd_parameters_never_get_a_500(server, token, path, params):
    resp = requests.get(server.endpoint + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert 400 <= resp.status_code < 500, resp.text


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_300_mb_unauthenticated_post_leaves_the_server_rss_bounded(lake, tmp_path):
    # The server in its own process, as `lawlake share serve` runs it, so its memory is measured alone.
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = start_listening(
        [sys.executable, "-m", "lawlake.cli", "share", "serve", "--lake", str(lake.lake), "--host", "127.0.0.1", "--port", str(port)],
        port, name="the sharing server", timeout=60, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        before = _rss_kb(proc.pid)
        sent, answered = 0, None
        head = f"POST /delta-sharing{TABLE}/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 300000000\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head)
            chunk = b"{" * (1 << 20)
            try:
                while sent < 300_000_000:
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:  # the server answered and closed the connection instead of reading 300 MB
                pass
            try:
                answered = _read_answer(s)
            except OSError:
                answered = None
        after = _rss_kb(proc.pid)
        print(f"\nserver RSS {before // 1024} MB before, {after // 1024} MB after; the client sent {sent >> 20} MB of 300 MB declared")
        assert sent < 300_000_000, "the server kept reading the body"
        if answered is not None:
            _protocol_error(answered, 413, "RESOURCE_LIMIT_EXCEEDED")
        assert after - before < 30_000, f"RSS grew from {before} kB to {after} kB"
        audit = ShareStore(lake.catalog_url).audit(limit=5)
        assert any(r["status"] == 413 and r["partner"] is None for r in audit)  # refused, and audited
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- load: every request answered and audited ---------------------------------------------------------------------


def _fifty_clients(settings: config.Settings, server, token: str, *, requests_each: int = 4) -> float:
    """50 concurrent clients, each making ``requests_each`` requests of four kinds; assert one audit row per answer; return seconds."""
    store = ShareStore(settings.catalog_url)
    first_id = max((r["id"] for r in store.audit(limit=1)), default=0)
    auth = {"Authorization": f"Bearer {token}"}

    def client(i: int) -> list[int]:
        statuses = []
        with requests.Session() as s:
            for j in range(requests_each):
                kind = (i + j) % 4
                if kind == 0:
                    r = s.post(server.endpoint + TABLE + "/query", json={}, headers=auth, timeout=60)  # 200
                elif kind == 1:
                    r = s.get(server.endpoint + "/shares", headers=auth, timeout=60)  # 200
                elif kind == 2:
                    r = s.get(server.endpoint + TABLE + "/version", timeout=60)  # no token: 401, audited too
                else:
                    r = s.post(server.endpoint + TABLE + "/query", data="[" * 50, headers=auth, timeout=60)  # too deep: 400
                statuses.append(r.status_code)
        return statuses

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = [s for result in pool.map(client, range(50)) for s in result]
    seconds = time.monotonic() - start
    assert len(statuses) == 50 * requests_each and 500 not in statuses
    assert sorted(set(statuses)) == [200, 400, 401]
    rows = [r for r in store.audit(limit=10_000) if r["id"] > first_id]
    assert len(rows) == len(statuses), f"{len(rows)} audit rows for {len(statuses)} answers"
    assert sorted(r["status"] for r in rows) == sorted(statuses)
    assert seconds < 45
    print(f"\n{len(statuses)} requests from 50 clients in {seconds:.1f}s, {len(rows)} audit rows ({settings.catalog_url.split(':')[0]})")
    return seconds


def test_fifty_concurrent_clients_get_answers_and_one_audit_row_each(lake, server, token):
    _fifty_clients(lake, server, token)


@pytest.mark.postgres
def test_fifty_concurrent_clients_with_the_catalog_on_postgresql(lake, postgres, tmp_path):
    settings = config.load(lake=lake.lake, catalog_url=postgres)
    release(postgres, lake.lake, [f"share.{HZ}.case_chain"])  # the release as this catalog records it
    with start_in_thread(settings) as srv:
        profile = write_profile(settings, HZ, tmp_path / "hz.share", endpoint=srv.endpoint)
        _fifty_clients(settings, srv, json.loads(profile.read_text())["bearerToken"], requests_each=2)


# -- history policy and purge ----------------------------------------------------------------------------------


def _with_history(since: int | None) -> list[policy.Policy]:
    return [replace(policy.load(HZ), history_since=since)]


def test_history_none_serves_only_the_current_version(lake, server, token, tmp_path):
    profile = write_profile(lake, HZ, tmp_path / "hz.share", endpoint=server.endpoint)
    url = f"{profile}#{HZ}.justice.case_chain"
    assert sorted(delta_sharing.load_as_pandas(url)["chain_id"]) == ["c1"]
    assert len(delta_sharing.load_as_pandas(url, version=1)) == 1  # the current version, asked for by number
    with pytest.raises(requests.HTTPError) as err:
        delta_sharing.load_as_pandas(url, version=0)
    assert err.value.response.status_code == 403 and err.value.response.json()["errorCode"] == "PERMISSION_DENIED"
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(server.endpoint + TABLE + "/metadata", params={"version": 0}, headers=auth, timeout=30).status_code == 403
    commits = {h["version"]: h["timestamp"] for h in DeltaTable(str(tables.location(lake.lake, f"share.{HZ}.case_chain"))).history()}
    at_v0 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(commits[0] / 1000)) + f".{commits[0] % 1000:03d}Z"
    assert _query(server, token, {"timestamp": at_v0}).status_code == 403
    assert _query(server, token, {"startingVersion": 0}).status_code == 400  # change data feed: never


def test_a_share_table_is_served_since_its_history_version_until_purged(lake, tmp_path):
    with start_in_thread(lake, policies=_with_history(0)) as srv:
        profile = write_profile(lake, HZ, tmp_path / "hz.share", endpoint=srv.endpoint, policies=_with_history(0))
        url = f"{profile}#{HZ}.justice.case_chain"
        assert sorted(delta_sharing.load_as_pandas(url, version=0)["chain_id"]) == ["c1", "c2"]  # c2, now sealed, is still in v0

        result = purge_withheld(lake.lake, f"share.{HZ}.case_chain", ["c2", "c9"], catalog_url=lake.catalog_url)
        assert result.versions_affected == (0,) and result.chains == 1 and result.current_version == 1 and len(result.files_removed) == 1
        (row,) = ShareStore(lake.catalog_url).purges(f"share.{HZ}.case_chain")
        assert (row["versions_affected"], row["files_removed"], row["chains"], row["current_version"]) == ([0], 1, 1, 1)

        # v0 is gone for delta-rs and for the partner; the current version is intact
        path = str(tables.location(lake.lake, f"share.{HZ}.case_chain"))
        with pytest.raises(Exception):
            DeltaTable(path, version=0).to_pyarrow_table()
        with pytest.raises(requests.HTTPError) as err:
            delta_sharing.load_as_pandas(url, version=0)
        assert err.value.response.status_code == 403
        assert sorted(delta_sharing.load_as_pandas(url)["chain_id"]) == ["c1"]

    # a second purge finds nothing left to remove
    again = purge_withheld(lake.lake, f"share.{HZ}.case_chain", ["c2"], catalog_url=lake.catalog_url)
    assert not again.purged and len(ShareStore(lake.catalog_url).purges(f"share.{HZ}.case_chain")) == 1


def test_purge_refuses_when_the_current_version_still_holds_a_withheld_chain(tmp_path):
    settings = config.load(lake=tmp_path / "lake")
    path = str(tables.location(settings.lake, f"share.{HZ}.case_chain"))
    write_deltalake(path, _share_rows("c1", "c2"))
    with pytest.raises(PurgeError, match="current version 0"):
        purge_withheld(settings.lake, f"share.{HZ}.case_chain", ["c2"], catalog_url=settings.catalog_url)
    assert DeltaTable(path).to_pyarrow_table().num_rows == 2  # nothing removed


def _policy_doc(**extra) -> dict:
    import yaml

    return {**yaml.safe_load((policy.policies_dir() / f"{HZ}.yaml").read_text(encoding="utf-8")), **extra}


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({}, None),  # no history key: only the current version
        ({"history": "none"}, None),
        ({"history": {"since_version": 3}}, 3),  # versions 3 and later
    ],
)
def test_history_policy_parses(extra, expected):
    assert policy.parse(_policy_doc(**extra)).history_since == expected


@pytest.mark.parametrize("doc", ["all", {"since_version": -1}, {"since_version": "3"}, {"since": 3}, {"since_version": True}])
def test_a_bad_history_policy_is_refused(doc):
    with pytest.raises(policy.PolicyError, match="history must be"):
        policy.parse(_policy_doc(history=doc))


# -- the demo token and profile files ---------------------------------------------------------------------------


def test_the_demo_profile_rotates_its_token_and_is_the_owners_only(tmp_path):
    settings = config.load(lake=tmp_path / "lake")
    store = ShareStore(settings.catalog_url)
    first = sharing.demo_profile(settings, HZ)
    token1 = json.loads(first.read_text())["bearerToken"]
    second = sharing.demo_profile(settings, HZ)
    token2 = json.loads(second.read_text())["bearerToken"]
    assert first == second and token1 != token2
    live = [g for g in store.grants(HZ) if g.revoked_at is None]
    assert [g.grant_id for g in live] == [store.by_token(token2).grant_id]  # one live demo token, the newest
    assert store.by_token(token1).revoked_at is not None
    assert stat.S_IMODE(second.stat().st_mode) == 0o600 and stat.S_IMODE(second.parent.stat().st_mode) == 0o700
    # another token of the partner (lawlake share grant) is left alone
    from lawlake.sharing.access import grant_token

    other = grant_token(settings, HZ)
    sharing.demo_profile(settings, HZ)
    assert store.by_token(other.token).revoked_at is None
    assert len([g for g in store.grants(HZ) if g.revoked_at is None]) == 2
