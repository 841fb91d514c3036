"""``lawlake share …`` commands, and the two functions ``make run`` calls."""

from __future__ import annotations

import json
import stat

import delta_sharing
import pytest

from lawlake import config, tables
from lawlake.cli import main
from lawlake.sharing import demo_profile, serve_command
from lawlake.sharing.server import start_in_thread
from lawlake.sharing.store import ShareStore, hash_token

from ..releasing import release


@pytest.fixture
def settings(lake_settings, tmp_path):
    """The shared lake with a catalog of its own (these commands revoke tokens), holding the lake's releases."""
    settings = config.load(lake=lake_settings.lake, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}")
    release(settings.catalog_url, settings.lake, [n for n in tables.published_tables(settings.lake) if n.startswith("share.")])
    return settings


def _share(settings, *args: str) -> int:
    return main(["share", *args, "--lake", str(settings.lake), "--catalog-url", settings.catalog_url])


def test_grant_prints_the_token_once_and_stores_its_hash(settings, capsys):
    assert _share(settings, "grant", "--partner", "hz_procuratorate", "--days", "7") == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    grant = ShareStore(settings.catalog_url).by_token(token)
    assert grant is not None and grant.partner == "hz_procuratorate"
    assert hash_token(token) != token and token.startswith("lls_")


def test_grant_for_an_unknown_partner_fails(settings, capsys):
    assert _share(settings, "grant", "--partner", "nobody") == 2
    assert "no share policy for partner 'nobody'" in capsys.readouterr().err


def test_profile_revoke_grants_and_audit(settings, tmp_path, capsys):
    with start_in_thread(settings) as srv:
        out = tmp_path / "zj.share"
        assert _share(settings, "profile", "--partner", "zj_law_institute", "--out", str(out), "--endpoint", srv.endpoint) == 0
        doc = json.loads(out.read_text())
        assert set(doc) == {"shareCredentialsVersion", "endpoint", "bearerToken", "expirationTime"}
        assert doc["shareCredentialsVersion"] == 1 and doc["endpoint"] == srv.endpoint
        assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds a credential
        assert len(delta_sharing.load_as_pandas(f"{out}#zj_law_institute.justice.case_chain")) > 0

        assert _share(settings, "revoke", "--partner", "zj_law_institute") == 0
        assert "revoked 1 token(s)" in capsys.readouterr().out
        assert _share(settings, "grants", "--partner", "zj_law_institute") == 0
        assert "revoked" in capsys.readouterr().out
        assert _share(settings, "audit", "--partner", "zj_law_institute", "--limit", "30") == 0
        listing = capsys.readouterr().out
        assert "query" in listing and "zj_law_institute.justice.case_chain" in listing


def test_export_command(settings, tmp_path, capsys):
    assert _share(settings, "export", "--partner", "hz_procuratorate", "--out", str(tmp_path / "x")) == 0
    assert (tmp_path / "x" / "manifest.json").exists() and "case_chain" in capsys.readouterr().out


def test_push_command_without_a_url_explains_what_to_set(settings, capsys, monkeypatch):
    monkeypatch.delenv("HZ_PROCURATORATE_DB_URL", raising=False)
    assert _share(settings, "push", "--partner", "hz_procuratorate") == 2
    assert "set HZ_PROCURATORATE_DB_URL" in capsys.readouterr().err


def test_demo_profile_and_serve_command(settings):
    path = demo_profile(settings)
    assert path == settings.lake / "_profiles" / "hz_procuratorate.share"
    doc = json.loads(path.read_text())
    assert doc["endpoint"] == "http://127.0.0.1:8765/delta-sharing"
    assert ShareStore(settings.catalog_url).by_token(doc["bearerToken"]).partner == "hz_procuratorate"
    command = serve_command(settings)
    assert " share serve --lake " in command and "--port 8765" in command and settings.catalog_url in command
    secret = config.load(lake=settings.lake, catalog_url="postgresql+psycopg://lawlake:s3cret@db/catalog")
    assert "s3cret" not in serve_command(secret)
