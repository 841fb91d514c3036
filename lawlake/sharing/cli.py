"""``lawlake share …`` subcommands (registered by :func:`register`).

- ``serve``   — run the Delta Sharing server over the lake's published share tables;
- ``grant``   — issue a partner a bearer token (printed once, stored hashed);
- ``profile`` — issue a token and write the partner's profile file;
- ``revoke``  — revoke every token of a partner, at once;
- ``grants``  — list issued tokens (never the tokens themselves);
- ``audit``   — the audit log of requests and deliveries;
- ``export``  — write a partner's share as Parquet + CSV with a manifest;
- ``push``    — push a partner's share into its own database.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def _settings(args):
    from lawlake import config

    return config.load(lake=args.lake, catalog_url=args.catalog_url)


def _table(rows: list[dict], columns: list[str]) -> None:
    from lawlake.console import print_table as _print_table  # the CLI's one table printer

    _print_table(rows, columns, out=sys.stdout)  # the current stdout, not the one at import time


def _fail(message: str) -> int:
    print(f"lawlake share: {message}", file=sys.stderr)
    return 2


def cmd_serve(args) -> int:
    from lawlake.sharing.server import serve

    settings = _settings(args)
    endpoint = args.public_url or f"http://{args.host}:{args.port}/delta-sharing"
    print(f"Delta Sharing server for {settings.lake} at {endpoint} (Ctrl-C stops it)")
    print(f"  give a partner access with: lawlake share profile --lake {settings.lake} --partner NAME --out NAME.share --endpoint {endpoint}")
    serve(settings, host=args.host, port=args.port, root=args.root, public_url=args.public_url, url_ttl_seconds=args.url_ttl)
    return 0


def cmd_grant(args) -> int:
    from lawlake.sharing.access import grant_token
    from lawlake.sharing.errors import GrantError

    try:
        issued = grant_token(_settings(args), args.partner, days=args.days)
    except GrantError as exc:
        return _fail(str(exc))
    print(f"token for {args.partner} (grant {issued.grant.grant_id}, expires {issued.grant.expires_at:%Y-%m-%d %H:%M} UTC)")
    print("it is shown only this once; the catalog keeps only its SHA-256:")
    print(issued.token)
    return 0


def cmd_profile(args) -> int:
    from lawlake.sharing.access import write_profile
    from lawlake.sharing.errors import GrantError

    try:
        path = write_profile(_settings(args), args.partner, args.out, endpoint=args.endpoint, days=args.days)
    except GrantError as exc:
        return _fail(str(exc))
    doc = json.loads(path.read_text(encoding="utf-8"))
    print(f"wrote {path} for {args.partner} (endpoint {doc['endpoint']}, expires {doc['expirationTime']}); it holds a bearer token: hand it over securely")
    print(f"  python: delta_sharing.load_as_pandas('{path}#{args.partner}.justice.<table>')")
    return 0


def cmd_revoke(args) -> int:
    from lawlake.sharing.access import revoke_tokens

    n = revoke_tokens(_settings(args), args.partner)
    print(f"revoked {n} token(s) of {args.partner}; their requests and file URLs are refused from now on")
    return 0


def cmd_grants(args) -> int:
    from lawlake.catalog import utcnow
    from lawlake.sharing.store import ShareStore

    now = utcnow()
    rows = [
        {"grant": g.grant_id, "partner": g.partner, "issued": f"{g.issued_at:%Y-%m-%d %H:%M}", "expires": f"{g.expires_at:%Y-%m-%d %H:%M}",
         "state": "revoked" if g.revoked_at else ("active" if g.is_active(now) else "expired")}
        for g in ShareStore(_settings(args).catalog_url).grants(args.partner)
    ]
    _table(rows, ["grant", "partner", "issued", "expires", "state"])
    return 0


def cmd_audit(args) -> int:
    from lawlake.sharing.store import ShareStore

    rows = ShareStore(_settings(args).catalog_url).audit(partner=args.partner, limit=args.limit)
    for r in rows:
        r["at"] = f"{r['at']:%Y-%m-%d %H:%M:%S}"
        r["table"] = ".".join(x for x in (r["share_name"], r["schema_name"], r["table_name"]) if x)
        r["partner"] = r["partner"] or "-"
    _table(rows, ["at", "partner", "action", "table", "version", "rows", "files", "bytes", "status", "error_code", "client"])
    return 0


def cmd_export(args) -> int:
    from lawlake.sharing.delivery import export_share
    from lawlake.sharing.errors import DeliveryError

    try:
        manifest = export_share(_settings(args), args.partner, args.out)
    except DeliveryError as exc:
        return _fail(str(exc))
    for t in manifest["tables"]:
        print(f"  {t['name']}: {t['rows']:,} rows (Delta version {t['delta_version']}) → " + ", ".join(f["path"] for f in t["files"]))
    print(f"exported {args.partner}'s share to {args.out} (checksums in manifest.json)")
    return 0


def cmd_push(args) -> int:
    from lawlake.sharing.delivery import push_share
    from lawlake.sharing.errors import DeliveryError

    try:
        result = push_share(_settings(args), args.partner, url=args.url)
    except DeliveryError as exc:
        return _fail(str(exc))
    for name, t in result.tables.items():
        print(f"  {name}: {t['rows']:,} rows (Delta version {t['delta_version']})")
    print(f"pushed {args.partner}'s share to {result.target} (tables replaced in one transaction)")
    return 0


def register(subparsers) -> None:
    """Add the ``share`` command group to the ``lawlake`` parser."""
    from lawlake.sharing import DEMO_ENDPOINT, DEMO_HOST, DEMO_PORT

    group = subparsers.add_parser("share", help="partner delivery: Delta Sharing server, tokens, audit, exports")
    sub = group.add_subparsers(dest="share_command", required=True)

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--lake", help="lake root (default: LAWLAKE_LAKE or ./lake)")
        sp.add_argument("--catalog-url", dest="catalog_url", help="catalog SQLAlchemy URL (default: LAWLAKE_CATALOG_URL or SQLite in the lake)")
        sp.set_defaults(func=func)
        return sp

    sp = command("serve", "run the Delta Sharing server over the published share tables", cmd_serve)
    sp.add_argument("--host", default=DEMO_HOST, help=f"address to listen on (default {DEMO_HOST})")
    sp.add_argument("--port", type=int, default=DEMO_PORT, help=f"port (default {DEMO_PORT})")
    sp.add_argument("--public-url", dest="public_url", help="the endpoint as partners reach it, when behind a proxy (used in file URLs)")
    sp.add_argument("--root", help="read share tables from here instead of the lake, e.g. s3://bucket/lake (credentials from AWS_* variables)")
    sp.add_argument("--url-ttl", dest="url_ttl", type=int, default=900, help="seconds a signed file URL stays valid (default 900)")

    sp = command("grant", "issue a partner a bearer token (printed once)", cmd_grant)
    sp.add_argument("--partner", required=True)
    sp.add_argument("--days", type=int, default=30, help="validity in days, capped at the policy's expiry (default 30)")

    sp = command("profile", "issue a new token and write the partner's Delta Sharing profile file", cmd_profile)
    sp.add_argument("--partner", required=True)
    sp.add_argument("--out", required=True, help="profile file to write (mode 0600)")
    sp.add_argument("--endpoint", default=DEMO_ENDPOINT, help=f"server endpoint the partner uses (default {DEMO_ENDPOINT})")
    sp.add_argument("--days", type=int, default=30, help="validity in days, capped at the policy's expiry (default 30)")

    sp = command("revoke", "revoke every token of a partner (takes effect at once)", cmd_revoke)
    sp.add_argument("--partner", required=True)

    sp = command("grants", "list issued tokens: partner, issued, expires, state", cmd_grants)
    sp.add_argument("--partner")

    sp = command("audit", "the audit log of sharing requests and deliveries, newest first", cmd_audit)
    sp.add_argument("--partner")
    sp.add_argument("--limit", type=int, default=50)

    sp = command("export", "write a partner's share as Parquet and CSV with manifest.json (row counts, SHA-256)", cmd_export)
    sp.add_argument("--partner", required=True)
    sp.add_argument("--out", required=True, help="folder to write")

    sp = command("push", "replace a partner's share tables in its own database (policy delivery.database)", cmd_push)
    sp.add_argument("--partner", required=True)
    sp.add_argument("--url", help="the database's SQLAlchemy URL (default: the environment variable the policy names)")
