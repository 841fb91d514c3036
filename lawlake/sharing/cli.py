"""``lawlake share …`` subcommands (registered by :func:`register`)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add the ``share`` command group to the ``lawlake`` parser."""
    sp = subparsers.add_parser("share", help="partner delivery: Delta Sharing server, tokens, audit, exports")
    sp.set_defaults(func=lambda args: (print("lawlake share: not built yet"), 2)[1])
