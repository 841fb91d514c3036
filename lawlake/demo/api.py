"""The public legal services API of the demo agencies: paginated JSON over HTTP, on loopback.

``GET /v1/legal-aid/appointments`` and ``GET /v1/mediations`` list the records of
``legal/*.jsonl`` (docs/sources.md), oldest change first, ordered by
(``updated_at``, id):

- ``Authorization: Bearer <token>`` on every call (401 otherwise);
- ``updated_since`` (``YYYY-MM-DD HH:MM:SS``, inclusive): only records changed at or after it;
- ``page_size`` (1–1000, default 100) and ``page_token``: the response is
  ``{"items": [...], "next_page_token": "..." | null}``; a token is opaque (keyset:
  the last (updated_at, id) served), so a page asked for twice is the same page;
- now and then, drawn from a seeded generator, a call is answered 429 or 503 with a
  ``Retry-After`` header instead (``fault_rate``), as the real service does under load.

The store is re-read when its files change, so a test can append records between calls.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lawlake.demo.legal import APPOINTMENTS_FILE, MEDIATIONS_FILE

__all__ = ["ENDPOINTS", "create_app", "serve", "running", "DEFAULT_TOKEN"]

ENDPOINTS = {  # path -> (store file, id field)
    "/v1/legal-aid/appointments": (APPOINTMENTS_FILE, "appointment_id"),
    "/v1/mediations": (MEDIATIONS_FILE, "mediation_id"),
}
DEFAULT_TOKEN = "demo-legal-services-token"  # the demo's; a real deployment passes its own
MAX_PAGE = 1000


def _encode_token(after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(after, ensure_ascii=False).encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> tuple[str, str]:
    after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(v, str) for v in after)):
        raise ValueError("not a page token")
    return after[0], after[1]


@dataclass
class _Store:
    path: Path
    id_field: str
    stamp: tuple[float, int] | None = None
    rows: list[dict] | None = None
    keys: list[tuple[str, str]] | None = None  # order(row) of each row, for finding a page by bisection

    def order(self, row) -> tuple[str, str]:
        """(updated_at, id): the listing order and the keyset of page tokens (a broken record sorts first)."""
        if not isinstance(row, dict):
            return ("", "")
        return (str(row.get("updated_at") or ""), str(row.get(self.id_field) or ""))

    def load(self) -> list:
        st = self.path.stat()
        if self.rows is None or self.stamp != (st.st_mtime, st.st_size):
            rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            rows.sort(key=self.order)
            self.rows, self.keys, self.stamp = rows, [self.order(r) for r in rows], (st.st_mtime, st.st_size)
        return self.rows

    def page(self, *, since: str | None, after: tuple[str, str] | None, size: int) -> tuple[list, bool]:
        """The rows changed at or after ``since`` that sort after ``after``, at most ``size``, and whether more follow.

        Found by bisection on the sorted keys: a page costs the same wherever it starts (a
        listing read to its end is linear in its length, not quadratic).
        """
        rows = self.load()
        assert self.keys is not None
        start = max(bisect.bisect_left(self.keys, (since,)) if since else 0, bisect.bisect_right(self.keys, after) if after is not None else 0)
        return rows[start:start + size], start + size < len(rows)


def create_app(sources: Path, *, token: str = DEFAULT_TOKEN, fault_rate: float = 0.05, seed: int = 13, retry_after: int = 1):
    """The Starlette app serving ``sources/legal``; ``fault_rate`` of the calls get a 429 or 503 (seeded)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    folder = Path(sources) / "legal"
    rng = random.Random(seed)
    lock = threading.Lock()
    stores = {path: _Store(folder / name, id_field) for path, (name, id_field) in ENDPOINTS.items()}

    def error(status: int, code: str, message: str, **headers) -> JSONResponse:
        return JSONResponse({"errorCode": code, "message": message}, status_code=status, headers=headers)

    async def listing(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return error(401, "UNAUTHENTICATED", "a valid bearer token is required")
        with lock:
            fault = rng.random() < fault_rate
            kind = rng.choice((429, 503))
        if fault:
            return error(kind, "TOO_MANY_REQUESTS" if kind == 429 else "UNAVAILABLE", "try again later", **{"Retry-After": str(retry_after)})
        store = stores[request.url.path]
        try:
            size = int(request.query_params.get("page_size", "100"))
            if not 1 <= size <= MAX_PAGE:
                raise ValueError
        except ValueError:
            return error(400, "INVALID_PARAMETER", f"page_size must be an integer from 1 to {MAX_PAGE}")
        since = request.query_params.get("updated_since")
        after = None
        if request.query_params.get("page_token"):
            try:
                after = _decode_token(request.query_params["page_token"])
            except ValueError:
                return error(400, "INVALID_PARAMETER", "page_token is not one this service issued")
        if not store.path.is_file():
            return error(503, "UNAVAILABLE", "the service has no data", **{"Retry-After": str(retry_after)})
        with lock:
            page, more = store.page(since=since, after=after, size=size)
        token_ = _encode_token(store.order(page[-1])) if more and page else None
        return JSONResponse({"items": page, "next_page_token": token_})

    return Starlette(routes=[Route(path, listing) for path in ENDPOINTS])


def serve(sources: Path, *, port: int = 8765, token: str = DEFAULT_TOKEN, fault_rate: float = 0.05, seed: int = 13) -> None:
    """Serve the API on 127.0.0.1:``port`` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(sources, token=token, fault_rate=fault_rate, seed=seed), host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def running(sources: Path, *, port: int = 0, token: str = DEFAULT_TOKEN, fault_rate: float = 0.05, seed: int = 13,
            retry_after: int = 1) -> Iterator[str]:
    """The API served from a background thread while the block runs; yields its base URL (``port=0``: a free one)."""
    import socket
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    app = create_app(sources, token=token, fault_rate=fault_rate, seed=seed, retry_after=retry_after)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="lawlake-demo-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo legal services API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
