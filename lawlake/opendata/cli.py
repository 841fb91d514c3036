"""``lawlake open …`` subcommands (registered by :func:`register`).

- ``publish`` — write the portal folder (CSV files, DCAT-AP 3 catalog, index.html) for the
  open datasets published in the lake.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def cmd_publish(args) -> int:
    from lawlake import config
    from lawlake.opendata import dcat
    from lawlake.opendata.policy import load_policy
    from lawlake.opendata.portal import PortalError, publish

    settings = config.load(lake=args.lake, catalog_url=args.catalog_url)
    try:
        portal = publish(settings.lake, args.to, base_url=args.base_url, policy=load_policy(settings.open_min_cell))
    except (PortalError, dcat.MetadataInvalid) as exc:
        print(f"lawlake open publish: {exc}", file=sys.stderr)
        return 2
    print(f"portal written to {portal.folder}: {len(portal.datasets)} datasets, catalog {portal.catalog.name} (DCAT-AP 3, conforms), {portal.index.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("open", help="open data: publish the portal folder")
    osub = p.add_subparsers(dest="open_command", required=True)
    sp = osub.add_parser("publish", help="write the open datasets, their DCAT-AP 3 catalog and an index.html into a folder")
    sp.add_argument("--lake", help="lake root (default: LAWLAKE_LAKE or ./lake)")
    sp.add_argument("--catalog-url", dest="catalog_url", help="catalog SQLAlchemy URL (default: LAWLAKE_CATALOG_URL or SQLite in the lake)")
    sp.add_argument("--to", required=True, help="portal folder (new, empty, or a previous portal, which is replaced)")
    sp.add_argument("--base-url", dest="base_url", required=True, help="absolute URL the folder is served at (every URL in the catalog is under it)")
    sp.set_defaults(func=cmd_publish)
