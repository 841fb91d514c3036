"""Calendar dates as written in the agencies' systems.

Accepted forms (ISO 8601 and the common Chinese renderings), with an optional
time of day after a space, an ideographic space or ISO's "T" (the time is
checked, then dropped):

    2022-01-05   2022/1/5   2022.01.05   2022年1月5日   20220105
    2022-01-05 13:45:00   2022/1/5 8:00   2022-01-05T13:45:00.123

Full-width digits and separators are accepted; surrounding whitespace is
ignored. Years 1900–2099. A day that does not exist (2022-02-30) or any other
text gives None, never an error. The pattern is shared with
:mod:`lawlake.rules.spark`.
"""

from __future__ import annotations

import datetime as dt
import re

from lawlake.rules import ASCII_DIGITS, FULLWIDTH_DIGITS, strip_whitespace

__all__ = ["DATE_PATTERN", "DATE_REPLACEMENT", "normalize_text", "parse"]

_MD = "([0-9]{1,2})"
_TIME = "(?:[0-1]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?"

# Groups: 1 year; then month and day as 2-3 (-), 4-5 (/), 6-7 (.), 8-9 (年月日), 10-11 (compact).
# Alternatives rather than one separator class so that 2022/01-05 stays invalid.
DATE_PATTERN = (
    "^(19[0-9]{2}|20[0-9]{2})"
    f"(?:-{_MD}-{_MD}|/{_MD}/{_MD}|\\.{_MD}\\.{_MD}|年{_MD}月{_MD}日|([0-9]{{2}})([0-9]{{2}}))"
    f"(?:[ T\u3000]+{_TIME})?$"
)
# Java/Spark replacement syntax: an unmatched group contributes nothing, so this
# always gives year-month-day from whichever alternative matched.
DATE_REPLACEMENT = "$1-$2$4$6$8$10-$3$5$7$9$11"

# Full-width digits and separators (－ ／ ． ：) typed by Chinese input methods.
NORMALIZE_FROM = FULLWIDTH_DIGITS + "－／．："
NORMALIZE_TO = ASCII_DIGITS + "-/.:"
_NORMALIZE = str.maketrans(NORMALIZE_FROM, NORMALIZE_TO)

_DATE = re.compile(DATE_PATTERN)


def normalize_text(text: str) -> str:
    """``text`` without surrounding whitespace, with ASCII digits and separators."""
    return strip_whitespace(text).translate(_NORMALIZE)


def parse(text: str | None) -> dt.date | None:
    """The date written in ``text``, or None when it is not a date (or not a real one)."""
    if text is None:
        return None
    m = _DATE.match(normalize_text(text))
    if m is None:
        return None
    groups = m.groups()
    month = next(g for g in groups[1::2] if g is not None)
    day = next(g for g in groups[2::2] if g is not None)
    try:
        return dt.date(int(groups[0]), int(month), int(day))
    except ValueError:  # 2022-02-30, month 13, day 0
        return None
