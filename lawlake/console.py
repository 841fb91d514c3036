"""Printing for the command line: rows as an aligned text table (CJK characters take two columns)."""

from __future__ import annotations

import sys

__all__ = ["print_table"]


def print_table(rows: list[dict], columns: list[str] | None = None, *, out=None) -> None:
    """Rows as an aligned text table."""
    out = out or sys.stdout  # the current stdout, not the one at import time
    if not rows:
        print("(no rows)", file=out)
        return
    columns = columns or list(rows[0])
    text = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(_width(c), *(_width(t[i]) for t in text)) for i, c in enumerate(columns)]
    print("  ".join(_pad(c, w) for c, w in zip(columns, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for t in text:
        print("  ".join(_pad(v, w) for v, w in zip(t, widths)), file=out)


def _width(s: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))
