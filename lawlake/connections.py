"""Where the agencies' online systems are and the credentials to call them, resolved once per run.

The public legal services API (``legal``): under Airflow, the connection
``lawlake_legal_services`` (its host/schema/port give the base URL, its password the
bearer token); in-process, the environment: ``LAWLAKE_LEGAL_API_URL`` and
``LAWLAKE_LEGAL_API_TOKEN``. Neither: the source is not configured, and gather reports it
missing (fail closed). Jobs receive the result as a run parameter, never read it themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

__all__ = ["LEGAL_CONNECTION", "endpoints", "legal_services"]

LEGAL_CONNECTION = "lawlake_legal_services"
log = logging.getLogger("lawlake")


def _from_airflow(conn_id: str) -> dict[str, str] | None:
    if not (os.environ.get("AIRFLOW_CTX_DAG_ID") or os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")):
        return None  # not inside an Airflow task, and no connection defined for one
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # no such connection, or not in a task context
        log.info("[lawlake] Airflow connection %s not available (%s): trying the environment", conn_id, type(exc).__name__)
        return None
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "http"
    url = conn.host if conn.host and "://" in conn.host else f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    if conn.schema:
        url = url.rstrip("/") + "/" + conn.schema.strip("/")
    return {"url": url, "token": conn.password or ""}


def legal_services(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """``{"url", "token"}`` of the legal services API, or None when it is not configured."""
    env = os.environ if environ is None else environ
    found = _from_airflow(LEGAL_CONNECTION) if environ is None else None
    if found:
        return found
    url = env.get("LAWLAKE_LEGAL_API_URL")
    if not url:
        return None
    return {"url": url, "token": env.get("LAWLAKE_LEGAL_API_TOKEN", "")}


def endpoints() -> dict[str, dict[str, str]]:
    """Every configured online source: ``{"legal": {"url", "token"}}`` (absent when not configured)."""
    legal = legal_services()
    return {"legal": legal} if legal else {}
