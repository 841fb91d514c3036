"""Resident identity numbers (公民身份号码) under GB 11643-1999.

An 18-character number is a 6-digit GB/T 2260 region code (of the place of
first registration), the birth date YYYYMMDD, a 3-digit sequence whose parity
gives the sex (odd = male, even = female) and a check character: with weights
7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 over the first 17 digits, S mod 11 indexes
"10X98765432".

15-digit numbers (the 1989 standard GB 11643-1989) have a YYMMDD date in the
1900s and no check character; they are upgraded by inserting "19" before the
date and computing the check character, and flagged ``is_legacy``.

Accepted variants: surrounding whitespace, full-width digits and Ｘ, lower-case
x. Anything else inside the number makes it invalid. The region code is kept
as written (GB/T 2260 codes of abolished counties stay in valid numbers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

from lawlake.rules import ASCII_DIGITS, FULLWIDTH_DIGITS, strip_whitespace

__all__ = [
    "CHECK_CHARACTERS",
    "EARLIEST_BIRTH_DATE",
    "ID15_PATTERN",
    "ID18_PATTERN",
    "WEIGHTS",
    "IdNumber",
    "check_character",
    "mask",
    "normalize_text",
    "parse",
    "pseudonym",
]

WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"  # indexed by S mod 11
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)

# Applied to normalize_text output: region, birth date, sequence, check character.
ID18_PATTERN = "^([0-9]{6})([0-9]{8})([0-9]{3})([0-9X])$"
ID15_PATTERN = "^([0-9]{6})([0-9]{6})([0-9]{3})$"

# Full-width digits and X (Ｘ ｘ) and lower-case x all become the canonical form.
NORMALIZE_FROM = FULLWIDTH_DIGITS + "Ｘｘx"
NORMALIZE_TO = ASCII_DIGITS + "XXX"
_NORMALIZE = str.maketrans(NORMALIZE_FROM, NORMALIZE_TO)

_ID18 = re.compile(ID18_PATTERN)
_ID15 = re.compile(ID15_PATTERN)

Sex = Literal["M", "F"]


@dataclass(frozen=True, slots=True)
class IdNumber:
    """One valid identity number, always in its 18-character form."""

    number: str
    region_code: str
    birth_date: dt.date
    sex: Sex
    is_legacy: bool  # upgraded from a 15-digit number


def check_character(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits of a number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def normalize_text(text: str) -> str:
    """``text`` without surrounding whitespace, with ASCII digits and an upper-case X."""
    return strip_whitespace(text).translate(_NORMALIZE)


def _birth_date(yyyymmdd: str) -> dt.date | None:
    try:
        born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:  # a day that does not exist (19990230) or year 0000
        return None
    return born if born >= EARLIEST_BIRTH_DATE else None


def parse(text: str | None) -> IdNumber | None:
    """The identity number written in ``text``, or None when it is not a valid one."""
    if text is None:
        return None
    s = normalize_text(text)
    if _ID18.match(s):
        first17, is_legacy = s[:17], False
        if s[17] != check_character(first17):
            return None
    elif _ID15.match(s):
        first17, is_legacy = s[:6] + "19" + s[6:], True
    else:
        return None
    born = _birth_date(first17[6:14])
    if born is None:
        return None
    return IdNumber(
        number=first17 + check_character(first17),
        region_code=first17[:6],
        birth_date=born,
        sex="M" if int(first17[16]) % 2 == 1 else "F",
        is_legacy=is_legacy,
    )


def _valid_number(number: str) -> str:
    parsed = parse(number)
    if parsed is None:
        raise ValueError("not a valid identity number")  # never echo the value: it is personal data
    return parsed.number


def mask(number: str) -> str:
    """The 18-character number with the birth date and sequence hidden: ``330102********123X``.

    Raises ValueError for an invalid number.
    """
    valid = _valid_number(number)
    return valid[:6] + "*" * 8 + valid[-4:]


def pseudonym(number: str, key: bytes) -> str:
    """A keyed pseudonym: the first 32 hex characters of HMAC-SHA256(key, 18-character number).

    The same person gets the same pseudonym from any source spelling (15 or 18
    digits, full-width, lower-case x). Raises ValueError for an invalid number.
    """
    valid = _valid_number(number)
    return hmac.new(key, valid.encode("ascii"), hashlib.sha256).hexdigest()[:32]
