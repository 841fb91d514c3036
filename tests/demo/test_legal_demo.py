"""The demo's legal services: the generated store, the transfer channel, and `lawlake run` serving the API."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from lawlake import cli, connections
from lawlake.demo import api, generate


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    generate(root / "a", scale=0.1, seed=7)
    generate(root / "b", scale=0.1, seed=7)
    return root


def test_legal_store_is_deterministic_and_logged_in_the_truth(demo):
    for name in ("legal_aid_appointments.jsonl", "mediation_records.jsonl"):
        assert (demo / "a" / "legal" / name).read_bytes() == (demo / "b" / "legal" / name).read_bytes()  # same seed: same bytes
    aids = [json.loads(line) for line in (demo / "a" / "legal" / "legal_aid_appointments.jsonl").read_text(encoding="utf-8").splitlines()]
    summary = json.loads((demo / "a" / "_truth" / "summary.json").read_text(encoding="utf-8"))
    assert summary["records"]["legal.appointments"] == len(aids) > 0
    assert all(a["appointed_on"] <= a["updated_at"][:10] for a in aids)  # recorded in the batch of the day or a later one
    assert len({a["updated_at"] for a in aids}) < len(aids)  # nightly batches: many records share one updated_at


def _json(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None


def test_transfers_are_mostly_online(demo):
    con = sqlite3.connect(demo / "a" / "police" / "police.db")
    channels = [r[0] for r in con.execute("SELECT transfer_channel FROM transfers")]
    con.close()
    assert set(channels) <= {"online", "paper"} and 0.95 <= channels.count("online") / len(channels) < 1.0 + 1e-9
    court = [_json(line) for p in sorted((demo / "a" / "courts").glob("*.jsonl")) for line in p.read_text(encoding="utf-8", errors="replace").splitlines()]
    court = [c for c in court if c is not None]  # the dumps hold a few broken lines on purpose
    assert {c.get("transfer_channel") for c in court if c["trial_level"] == "first_instance"} <= {"online", "paper"}
    assert all("transfer_channel" not in c for c in court if c["trial_level"] == "appeal")  # only the procuratorate's transfers carry one


def test_run_serves_the_demo_api_and_restores_the_environment(demo, monkeypatch):
    monkeypatch.delenv("LAWLAKE_LEGAL_API_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_LAWLAKE_LEGAL_SERVICES", raising=False)
    with cli.demo_legal_api(demo / "a", echo=lambda _: None) as url:
        endpoint = connections.legal_services()
        assert endpoint == {"url": url, "token": api.DEFAULT_TOKEN}
        conn = json.loads(connections.os.environ["AIRFLOW_CONN_LAWLAKE_LEGAL_SERVICES"])  # what the DAG's tasks read
        assert (conn["host"], conn["password"]) == ("127.0.0.1", api.DEFAULT_TOKEN)
        resp = httpx.get(url + "/v1/mediations", params={"page_size": 1}, headers={"Authorization": "Bearer nope"})
        assert resp.status_code == 401  # the token is required
    assert connections.legal_services() is None  # stopped, and nothing left configured
    with cli.demo_legal_api(demo, echo=lambda _: None) as url:  # no legal/ folder: nothing served
        assert url is None


def test_gather_reads_the_api_through_the_airflow_connection_alone(demo, tmp_path, monkeypatch):
    """Under Airflow the credentials come from the connection ``lawlake_legal_services``; no LAWLAKE_LEGAL_API_* is needed."""
    from deltalake import DeltaTable

    from lawlake import config, pipeline, tables

    with api.running(demo / "a") as url:
        port = int(url.rsplit(":", 1)[1])
        monkeypatch.delenv("LAWLAKE_LEGAL_API_URL", raising=False)
        monkeypatch.delenv("LAWLAKE_LEGAL_API_TOKEN", raising=False)
        monkeypatch.setenv("AIRFLOW_CONN_LAWLAKE_LEGAL_SERVICES", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "password": api.DEFAULT_TOKEN}))
        assert connections.legal_services() == {"url": url, "token": api.DEFAULT_TOKEN}  # from the connection
        monkeypatch.setenv("LAWLAKE_LEGAL_API_URL", "http://127.0.0.1:9/nowhere")
        assert connections.legal_services()["url"] == url  # the connection wins over the environment
        monkeypatch.delenv("LAWLAKE_LEGAL_API_URL")
        settings = config.load(lake=tmp_path / "lake")
        pipeline.run_lifecycle(settings, "via-connection", sources=demo / "a", stages=("gather",))
    aids = (demo / "a" / "legal" / "legal_aid_appointments.jsonl").read_text(encoding="utf-8").splitlines()
    bronze = DeltaTable(str(tables.location(settings.lake, "bronze.legal_aid_appointments"))).to_pandas()
    assert len(bronze) == len(aids)  # every appointment the API served, read with the connection's token
    missing = DeltaTable(str(tables.location(settings.lake, "quarantine.records"))).to_pandas()
    assert not (missing["rule"] == "gather.source_missing").any()
