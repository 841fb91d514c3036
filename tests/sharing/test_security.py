"""Who may pull what: tokens, revocation, expiry, other partners' shares, signed file URLs, path traversal, audit.

Each refusal is checked for its exact status and protocol errorCode.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import urlsplit

import delta_sharing
import pytest
import requests

from lawlake import config, policy, tables
from lawlake.catalog import utcnow
from lawlake.sharing import urls
from lawlake.sharing.access import grant_token, revoke_tokens, write_profile
from lawlake.sharing.server import start_in_thread
from lawlake.sharing.store import ShareStore

from ..releasing import release

HZ_TABLE = "/shares/hz_procuratorate/schemas/justice/tables/case_chain"


def _error(resp, status: int, code: str) -> str:
    """Assert a protocol error response; return its message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"errorCode", "message"} and body["errorCode"] == code, body
    return body["message"]


def _get(server, path: str, token: str | None = None, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(server.endpoint + path, headers=headers, timeout=30, **kw)


def _raw(server, method: str, path: str, token: str | None = None) -> requests.Response:
    """A request whose path is sent byte for byte (no client-side normalization of '..' or %2F)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
    r = conn.getresponse()
    resp = requests.Response()
    resp.status_code, resp._content, resp.headers = r.status, r.read(), requests.structures.CaseInsensitiveDict(r.getheaders())
    conn.close()
    return resp


def _file_urls(server, token: str, table: str = "case_chain") -> list[str]:
    resp = requests.post(f"{server.endpoint}/shares/hz_procuratorate/schemas/justice/tables/{table}/query", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 200
    return [json.loads(line)["file"]["url"] for line in resp.text.splitlines()[2:]]


# -- tokens ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/shares"), ("GET", "/shares/hz_procuratorate/schemas"), ("GET", HZ_TABLE + "/metadata"), ("POST", HZ_TABLE + "/query"), ("GET", "/no/such/endpoint")],
)
def test_no_token_is_401_everywhere(server, method, path):
    resp = requests.request(method, server.endpoint + path, timeout=30)
    assert "bearer token" in _error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer lls_not-a-token", "Bearer ", "Basic aGVsbG86d29ybGQ=", "lls_no_scheme"])
def test_wrong_or_malformed_token_is_401(server, header):
    resp = requests.get(server.endpoint + "/shares", headers={"Authorization": header}, timeout=30)
    _error(resp, 401, "UNAUTHENTICATED")


def test_expired_token_is_401(lake_settings, server):
    # Issued 40 days ago for 30 days: a real grant, back-dated.
    issued = grant_token(lake_settings, "hz_procuratorate", days=30, now=utcnow() - timedelta(days=40))
    assert "expired" in _error(_get(server, "/shares", issued.token), 401, "UNAUTHENTICATED")


def test_token_never_outlives_its_policy(lake_settings):
    issued = grant_token(lake_settings, "zj_law_institute", days=100_000)
    assert issued.grant.expires_at.astimezone().date() == policy.load("zj_law_institute").expires_on + timedelta(days=1)


def test_catalog_keeps_only_the_token_hash(lake_settings, tokens):
    import hashlib

    from sqlalchemy import select

    from lawlake.sharing.store import share_grants

    store = ShareStore(lake_settings.catalog_url)
    with store.engine.connect() as c:
        stored = [dict(r) for r in c.execute(select(share_grants)).mappings()]
    flat = json.dumps(stored, default=str)
    assert tokens["hz_procuratorate"] not in flat
    assert hashlib.sha256(tokens["hz_procuratorate"].encode()).hexdigest() in flat


@pytest.fixture
def own_catalog(lake_settings, tmp_path):
    """The same lake with a catalog of its own, so revoking here cannot touch the session's tokens."""
    settings = config.load(lake=lake_settings.lake, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}")
    release(settings.catalog_url, settings.lake, [n for n in tables.published_tables(settings.lake) if n.startswith("share.")])  # the lake's releases, in this catalog
    srv = start_in_thread(settings)
    yield settings, srv
    srv.stop()


def test_revocation_takes_effect_at_once_for_requests_and_file_urls(own_catalog, tmp_path):
    settings, srv = own_catalog
    profile = write_profile(settings, "hz_procuratorate", tmp_path / "hz.share", endpoint=srv.endpoint)
    token = json.loads(profile.read_text())["bearerToken"]
    other = grant_token(settings, "zj_law_institute").token
    assert len(delta_sharing.load_as_pandas(f"{profile}#hz_procuratorate.justice.case_chain")) > 0
    (file_url,) = _file_urls(srv, token)
    assert requests.get(file_url, timeout=30).status_code == 200

    assert revoke_tokens(settings, "hz_procuratorate") == 1
    assert "revoked" in _error(_get(srv, "/shares", token), 401, "UNAUTHENTICATED")
    assert "revoked" in _error(requests.get(file_url, timeout=30), 403, "PERMISSION_DENIED")
    with pytest.raises(requests.HTTPError):
        delta_sharing.load_as_pandas(f"{profile}#hz_procuratorate.justice.case_chain")
    # Another partner's tokens are untouched.
    assert _get(srv, "/shares", other).status_code == 200


def test_grant_refused_once_its_policy_has_expired(lake_settings, server, tmp_path):
    token = grant_token(lake_settings, "zj_law_institute").token
    zj = policy.load("zj_law_institute")
    lapsed = [policy.load("hz_procuratorate"), replace(zj, expires_on=date(2020, 1, 1))]
    with start_in_thread(lake_settings, policies=lapsed) as srv:
        assert "expired on 2020-01-01" in _error(_get(srv, "/shares", token), 403, "PERMISSION_DENIED")
        resp = requests.post(srv.endpoint + "/shares/zj_law_institute/schemas/justice/tables/case_chain/query", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        _error(resp, 403, "PERMISSION_DENIED")
        assert _get(srv, "/shares", grant_token(lake_settings, "hz_procuratorate").token).status_code == 200
    from lawlake.sharing.errors import GrantError

    with pytest.raises(GrantError, match="expired"):
        grant_token(lake_settings, "zj_law_institute", policies=lapsed)


# -- another partner's share ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    ["", "/schemas", "/all-tables", "/schemas/justice/tables", "/schemas/justice/tables/case_chain/metadata", "/schemas/justice/tables/case_chain/version"],
)
def test_another_partners_share_answers_like_a_missing_one(server, tokens, suffix):
    hz = tokens["hz_procuratorate"]
    other = _get(server, f"/shares/zj_law_institute{suffix}", hz)
    missing = _get(server, f"/shares/no_such_share{suffix}", hz)
    assert other.status_code == missing.status_code == 404
    assert other.json() == {"errorCode": "RESOURCE_DOES_NOT_EXIST", "message": "share 'zj_law_institute' does not exist"}
    assert missing.json() == {"errorCode": "RESOURCE_DOES_NOT_EXIST", "message": "share 'no_such_share' does not exist"}


def test_another_partners_query_is_404_and_the_client_cannot_load_it(server, tokens, profiles):
    resp = requests.post(server.endpoint + "/shares/zj_law_institute/schemas/justice/tables/case_chain/query", json={}, headers={"Authorization": f"Bearer {tokens['hz_procuratorate']}"}, timeout=30)
    _error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(requests.HTTPError, match="404"):
        delta_sharing.load_as_pandas(f"{profiles['hz_procuratorate']}#zj_law_institute.justice.case_chain")


def test_missing_schema_and_table_are_404_and_names_are_case_insensitive(server, tokens):
    hz = tokens["hz_procuratorate"]
    _error(_get(server, "/shares/hz_procuratorate/schemas/other/tables", hz), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(_get(server, "/shares/hz_procuratorate/schemas/justice/tables/secret_table/metadata", hz), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _get(server, "/shares/HZ_Procuratorate/schemas/JUSTICE/tables/Case_Chain/version", hz).status_code == 200


# -- malformed requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,code",
    [
        (b"not json", "MALFORMED_REQUEST"),
        (b"[1, 2]", "MALFORMED_REQUEST"),
        (json.dumps({"limitHint": "ten"}).encode(), "INVALID_PARAMETER_VALUE"),
        (json.dumps({"limitHint": -1}).encode(), "INVALID_PARAMETER_VALUE"),
        (json.dumps({"version": 0, "timestamp": "2026-01-01T00:00:00Z"}).encode(), "INVALID_PARAMETER_VALUE"),
        (json.dumps({"timestamp": "yesterday"}).encode(), "INVALID_PARAMETER_VALUE"),
        (json.dumps({"predicateHints": "a = 1"}).encode(), "INVALID_PARAMETER_VALUE"),
        (json.dumps({"startingVersion": 0}).encode(), "UNSUPPORTED_OPERATION"),
    ],
)
def test_bad_query_bodies_are_400(server, tokens, body, code):
    resp = requests.post(server.endpoint + HZ_TABLE + "/query", data=body, headers={"Authorization": f"Bearer {tokens['hz_procuratorate']}"}, timeout=30)
    _error(resp, 400, code)


def test_change_data_feed_is_unsupported(server, tokens):
    _error(_get(server, HZ_TABLE + "/changes?startingVersion=0", tokens["hz_procuratorate"]), 400, "UNSUPPORTED_OPERATION")


# -- path traversal in names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,status,code",
    [
        # Encoded slashes decode into extra path segments: no route has them.
        ("GET", "/delta-sharing/shares/..%2Fzj_law_institute", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/delta-sharing/shares/hz_procuratorate/schemas/justice/tables/..%2F..%2F..%2F_catalog/metadata", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/delta-sharing/shares/hz_procuratorate/schemas/%2Fetc%2Fpasswd/tables", 404, "RESOURCE_DOES_NOT_EXIST"),
        # A name that is a dot segment, a backslash path or absolute is not a name at all.
        ("GET", "/delta-sharing/shares/%2e%2e/schemas", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/delta-sharing/shares/hz_procuratorate/schemas/justice/tables/%2e%2e/metadata", 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/delta-sharing/shares/hz_procuratorate/schemas/justice/tables/../query", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/delta-sharing/shares/hz_procuratorate/schemas/justice/tables/..%5C..%5Csecret/version", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/delta-sharing/shares/hz_procuratorate/schemas/../tables", 400, "INVALID_PARAMETER_VALUE"),
        # Outside the API prefix altogether.
        ("GET", "/delta-sharing/../_catalog/secret.key", 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_path_traversal_in_names_is_refused(lake_settings, server, tokens, method, path, status, code):
    resp = _raw(server, method, path, tokens["hz_procuratorate"])
    _error(resp, status, code)
    assert lake_settings.secret_key not in resp.content


# -- signed file URLs ---------------------------------------------------------------------------------------------


def test_a_signed_file_url_serves_the_file_with_byte_ranges(server, tokens):
    (url,) = _file_urls(server, tokens["hz_procuratorate"])
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content[:4] == whole.content[-4:] == b"PAR1"
    head = requests.head(url, timeout=30)
    assert int(head.headers["content-length"]) == len(whole.content) and head.headers["accept-ranges"] == "bytes"
    first = requests.get(url, headers={"Range": "bytes=0-3"}, timeout=30)
    assert (first.status_code, first.content, first.headers["content-range"]) == (206, b"PAR1", f"bytes 0-3/{len(whole.content)}")
    assert requests.get(url, headers={"Range": "bytes=-4"}, timeout=30).content == b"PAR1"
    beyond = requests.get(url, headers={"Range": "bytes=99999999-"}, timeout=30)
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole.content)}"


def _replace_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    params = dict(p.split("=", 1) for p in parts.query.split("&"))
    params.update({k: str(v) for k, v in changes.items()})
    return parts._replace(query="&".join(f"{k}={v}" for k, v in params.items())).geturl()


def test_tampered_file_urls_are_403(server, tokens):
    (url,) = _file_urls(server, tokens["hz_procuratorate"])
    (other_table_url,) = _file_urls(server, tokens["hz_procuratorate"], "time_limit_warnings")
    sig = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["sig"]
    tampered = [
        _replace_query(url, sig=("0" if sig[0] != "0" else "1") + sig[1:]),  # one hex digit of the signature
        _replace_query(url, expires=int(time.time()) + 10**6),  # a later expiry
        _replace_query(url, grant="0" * 32),  # another grant
        _replace_query(url, sig=""),  # unsigned
        url.replace("/case_chain/", "/time_limit_warnings/"),  # the signature of one table on another
        urlsplit(other_table_url)._replace(query=urlsplit(url).query).geturl(),  # another file with this URL's signature
    ]
    for bad in tampered:
        message = _error(requests.get(bad, timeout=30), 403, "PERMISSION_DENIED")
        assert "signature does not match" in message or "not signed" in message, (bad, message)
    assert requests.get(url, timeout=30).status_code == 200  # the genuine URL still works


def test_an_expired_file_url_is_403(lake_settings, server, tokens):
    (url,) = _file_urls(server, tokens["hz_procuratorate"])
    query = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))
    path = urlsplit(url).path.split("/case_chain/", 1)[1]
    ref = urls.FileRef(query["grant"], "hz_procuratorate", "justice", "case_chain", path, int(time.time()) - 1)
    expired = urls.file_url(server.endpoint, urls.url_key(lake_settings.secret_key), ref)
    assert "expired" in _error(requests.get(expired, timeout=30), 403, "PERMISSION_DENIED")


def _signed(lake_settings, server, grant_id: str, path: str) -> str:
    """A URL for ``path`` signed with the lake's real key, as a signing bug would make it; sent raw."""
    ref = urls.FileRef(grant_id, "hz_procuratorate", "justice", "case_chain", path, int(time.time()) + 600)
    url = urls.file_url(server.endpoint, urls.url_key(lake_settings.secret_key), ref)
    return url[len(f"http://{server.host}:{server.port}") :]


@pytest.mark.parametrize(
    "path,status,code",
    [
        ("../../../_catalog/secret.key", 403, "PERMISSION_DENIED"),
        ("../time_limit_warnings/x.parquet", 403, "PERMISSION_DENIED"),
        ("/etc/passwd", 403, "PERMISSION_DENIED"),
        ("_delta_log/00000000000000000000.json", 403, "PERMISSION_DENIED"),
        ("./part.parquet", 403, "PERMISSION_DENIED"),
        ("part-does-not-exist.parquet", 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_file_paths_outside_the_table_are_refused_even_when_signed(lake_settings, server, tokens, path, status, code):
    (url,) = _file_urls(server, tokens["hz_procuratorate"])
    grant_id = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["grant"]
    resp = _raw(server, "GET", _signed(lake_settings, server, grant_id, path))
    _error(resp, status, code)
    assert lake_settings.secret_key not in resp.content


def test_unsigned_traversal_in_a_file_url_is_refused(lake_settings, server, tokens):
    (url,) = _file_urls(server, tokens["hz_procuratorate"])
    parts = urlsplit(url)
    for evil in ("..%2F..%2F..%2F_catalog%2Fsecret.key", "../../../_catalog/secret.key", "%2Fetc%2Fpasswd"):
        path = parts.path.rsplit("/", 1)[0] + "/" + evil
        resp = _raw(server, "GET", f"{path}?{parts.query}")
        _error(resp, 403, "PERMISSION_DENIED")
        assert lake_settings.secret_key not in resp.content


def test_a_symlink_out_of_the_table_is_refused(lake_settings, server, tokens):
    from lawlake import tables

    table_dir = tables.location(lake_settings.lake, "share.hz_procuratorate.case_chain")
    link = table_dir / "leak.parquet"
    os.symlink(lake_settings.lake / "_catalog" / "secret.key", link)
    try:
        (url,) = _file_urls(server, tokens["hz_procuratorate"])
        grant_id = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["grant"]
        resp = _raw(server, "GET", _signed(lake_settings, server, grant_id, "leak.parquet"))
        _error(resp, 403, "PERMISSION_DENIED")
        assert lake_settings.secret_key not in resp.content
    finally:
        link.unlink()


# -- audit ------------------------------------------------------------------------------------------------------------


def test_every_request_is_audited_served_or_refused(lake_settings, server, tokens):
    hz = tokens["hz_procuratorate"]
    marker = f"/shares/audit_probe_{int(time.time() * 1000)}"
    _get(server, marker)  # no token
    _get(server, marker, hz)  # a share that does not exist
    query = requests.post(server.endpoint + HZ_TABLE + "/query", json={}, headers={"Authorization": f"Bearer {hz}"}, timeout=30)
    url = json.loads(query.text.splitlines()[2])["file"]["url"]
    requests.get(url, timeout=30)
    requests.get(_replace_query(url, sig="0" * 64), timeout=30)

    rows = ShareStore(lake_settings.catalog_url).audit(limit=50)
    probes = [r for r in rows if r["path"].endswith(marker.rsplit("/", 1)[1])]
    assert {(r["partner"], r["status"], r["error_code"]) for r in probes} == {
        (None, 401, "UNAUTHENTICATED"),
        ("hz_procuratorate", 404, "RESOURCE_DOES_NOT_EXIST"),
    }
    served = next(r for r in rows if r["action"] == "query" and r["status"] == 200)
    assert served["partner"] == "hz_procuratorate" and served["table_name"] == "case_chain"
    assert served["version"] == 0 and served["files"] == 1 and served["rows"] == _published_rows(lake_settings)
    assert served["client"] == "127.0.0.1" and served["seconds"] >= 0
    files = [r for r in rows if r["action"] == "file"]
    assert any(r["status"] == 200 and r["partner"] == "hz_procuratorate" and r["bytes"] > 0 for r in files)
    assert any(r["status"] == 403 and r["error_code"] == "PERMISSION_DENIED" for r in files)


def _published_rows(lake_settings) -> int:
    from deltalake import DeltaTable

    from lawlake import tables

    return DeltaTable(str(tables.location(lake_settings.lake, "share.hz_procuratorate.case_chain"))).to_pyarrow_table().num_rows
