"""Normalization rules for justice-sector identifiers, as a pure-Python reference.

Each rule exists twice and the two must agree exactly:

- the Python reference in the submodules here — :mod:`~lawlake.rules.case_numbers`
  (SPC 案号 rules 2015, amended 2018), :mod:`~lawlake.rules.id_numbers`
  (GB 11643-1999), :mod:`~lawlake.rules.dates`, :mod:`~lawlake.rules.names` and
  :mod:`~lawlake.rules.reference` (GB/T 2260 regions, criminal charges);
- the Spark column expressions in :mod:`lawlake.rules.spark`, built from the
  constants and regular expressions defined by the reference modules, so that a
  rule is written down once.

This module holds the character tables every rule shares. It imports nothing
heavy: a DAG file or a CLI may import the reference rules without pyspark.

The regular expressions are written in the common subset of Python ``re``, Java
``java.util.regex`` (JVM Spark) and Rust ``regex`` (Sail): explicit ``[0-9]``
classes (``\\d`` and ``\\s`` mean different things in the three), no look-around,
no back-references, anchored with ``^…$`` on text whose surrounding whitespace
and line terminators are already gone (Java's ``$`` also matches before a final
line terminator).
"""

from __future__ import annotations

__all__ = [
    "ASCII_DIGITS",
    "FULLWIDTH_DIGITS",
    "WHITESPACE",
    "halfwidth_digits",
    "remove_whitespace",
    "strip_whitespace",
]

# Every character treated as whitespace by the rules, listed explicitly because
# Python's str.isspace, Java's \s and Rust's \s all disagree: ASCII whitespace,
# the line terminators Java's regex knows (NEL, LS, PS), no-break and typographic
# spaces, zero-width space and BOM (pasted from web pages and Word files), and
# the ideographic space U+3000 typed by Chinese input methods.
WHITESPACE = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)

ASCII_DIGITS = "0123456789"
# Full-width digits U+FF10–U+FF19, produced by Chinese input methods in full-width mode.
FULLWIDTH_DIGITS = "０１２３４５６７８９"

_DELETE_WHITESPACE = str.maketrans("", "", WHITESPACE)
_HALFWIDTH_DIGITS = str.maketrans(FULLWIDTH_DIGITS, ASCII_DIGITS)


def remove_whitespace(text: str) -> str:
    """``text`` with every :data:`WHITESPACE` character removed, wherever it stands."""
    return text.translate(_DELETE_WHITESPACE)


def strip_whitespace(text: str) -> str:
    """``text`` without leading and trailing :data:`WHITESPACE` characters."""
    return text.strip(WHITESPACE)


def halfwidth_digits(text: str) -> str:
    """``text`` with full-width digits replaced by ASCII digits."""
    return text.translate(_HALFWIDTH_DIGITS)
