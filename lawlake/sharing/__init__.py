"""Partner delivery: the Delta Sharing protocol server, tokens, audit, file and database delivery.

- :mod:`lawlake.sharing.server` — the protocol server over the published share tables;
- :mod:`lawlake.sharing.access` — per-partner bearer tokens and profile files;
- :mod:`lawlake.sharing.store` — grants (hashed tokens) and the audit log in the catalog;
- :mod:`lawlake.sharing.delivery` — file export and database push;
- :mod:`lawlake.sharing.purge` — making share table versions that hold withheld records unreadable;
- :mod:`lawlake.sharing.cli` — ``lawlake share …``.

The two functions here are what ``make run`` calls to hand a demo partner a working profile.
The rest of the API is imported on first use, so ``lawlake --help`` does not load the
server's dependencies.
"""

from __future__ import annotations

import importlib
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lawlake.config import Settings

__all__ = [
    "DEMO_HOST",
    "DEMO_PORT",
    "DEMO_ENDPOINT",
    "demo_profile",
    "serve_command",
    "create_app",
    "serve",
    "start_in_thread",
    "grant_token",
    "revoke_tokens",
    "write_profile",
    "export_share",
    "push_share",
    "purge_withheld",
    "PurgeResult",
    "PurgeError",
    "SharingError",
    "GrantError",
    "DeliveryError",
]

_LAZY = {
    "create_app": "server",
    "serve": "server",
    "start_in_thread": "server",
    "grant_token": "access",
    "revoke_tokens": "access",
    "write_profile": "access",
    "export_share": "delivery",
    "push_share": "delivery",
    "purge_withheld": "purge",
    "PurgeResult": "purge",
    "PurgeError": "purge",
    "SharingError": "errors",
    "GrantError": "errors",
    "DeliveryError": "errors",
}

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8765
DEMO_ENDPOINT = f"http://{DEMO_HOST}:{DEMO_PORT}/delta-sharing"


def demo_profile(settings: Settings, partner: str = "hz_procuratorate", endpoint: str = DEMO_ENDPOINT) -> Path:
    """Write ``partner``'s demo profile to ``<lake>/_profiles/<partner>.share`` with a fresh token; return the path.

    The token the profile held before is revoked (rotation), so every ``make run`` leaves
    exactly one live demo token. The folder is the owner's only (0700), the file 0600.
    """
    import os

    from lawlake.sharing.access import write_profile

    folder = settings.lake / "_profiles"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return write_profile(settings, partner, folder / f"{partner}.share", endpoint=endpoint, rotate=True)


def serve_command(settings: Settings, *, host: str = DEMO_HOST, port: int = DEMO_PORT) -> str:
    """The shell command that starts the server for this lake (on the demo endpoint by default)."""
    exe = shutil.which("lawlake") or str(Path(sys.executable).parent / "lawlake")
    args = [exe, "share", "serve", "--lake", str(settings.lake), "--host", host, "--port", str(port)]
    if settings.catalog_url != f"sqlite:///{settings.lake / '_catalog' / 'catalog.db'}":
        from sqlalchemy.engine import make_url

        # A URL holding a password is never printed: the server then takes it from LAWLAKE_CATALOG_URL.
        if make_url(settings.catalog_url).password is None:
            args += ["--catalog-url", settings.catalog_url]
    return shlex.join(args)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"lawlake.sharing.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'lawlake.sharing' has no attribute {name!r}")
