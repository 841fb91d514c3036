"""Dates as written in source systems: the Python reference."""

from __future__ import annotations

import datetime as dt

import pytest

from lawlake.rules.dates import parse

JAN5 = dt.date(2022, 1, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-01-05", JAN5),  # ISO 8601
        ("2022-1-5", JAN5),  # ISO separators, no zero padding
        ("2022/1/5", JAN5),  # slashes
        ("2022/01/05", JAN5),  # slashes, padded
        ("2022.01.05", JAN5),  # dots
        ("2022年1月5日", JAN5),  # Chinese
        ("2022年01月05日", JAN5),  # Chinese, padded
        ("20220105", JAN5),  # compact
        ("２０２２－０１－０５", JAN5),  # full-width digits and hyphens
        ("２０２２年１月５日", JAN5),  # full-width digits, Chinese
        (" 2022-01-05\u3000", JAN5),  # surrounding whitespace
        ("2022-01-05 13:45:00", JAN5),  # with a time
        ("2022-01-05T13:45:00.123", JAN5),  # ISO time with fraction
        ("2022/1/5 8:00", JAN5),  # short time
        ("2022年1月5日 08:00", JAN5),  # Chinese with a time
        ("2022-01-05\u300013：45", JAN5),  # ideographic space, full-width colon
        ("20220105 13:45", JAN5),  # compact with a time
        ("2000-02-29", dt.date(2000, 2, 29)),  # leap day
        ("1900-01-01", dt.date(1900, 1, 1)),  # earliest year
        ("2099-12-31", dt.date(2099, 12, 31)),  # latest year
        ("2022-02-30", None),  # impossible day
        ("1900-02-29", None),  # 1900 was not a leap year
        ("2022-13-01", None),  # month 13
        ("2022-00-10", None),  # month 0
        ("2022-01-00", None),  # day 0
        ("2022-01-05 24:00", None),  # impossible time
        ("2022-01-05 12:60", None),  # impossible minute
        ("2022-01-05 13", None),  # hour without minutes
        ("2022/01-05", None),  # mixed separators
        ("2022-01", None),  # no day
        ("2022105", None),  # seven digits
        ("1899-12-31", None),  # before 1900
        ("2100-01-01", None),  # after 2099
        ("05/01/2022", None),  # day-first forms are ambiguous: rejected
        ("2022 - 01 - 05", None),  # spaces inside the date
        ("yesterday", None),  # not a date
        ("", None),  # empty
        (None, None),  # null
    ],
)
def test_parse(text: str | None, expected: dt.date | None) -> None:
    assert parse(text) == expected
