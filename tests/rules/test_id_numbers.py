"""Resident identity numbers: the Python reference (GB 11643-1999)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from lawlake.rules.id_numbers import IdNumber, check_character, mask, parse, pseudonym

# The worked example of GB 11643-1999 (a woman born 1949-12-31 in Beijing's Chaoyang district).
STANDARD = IdNumber("11010519491231002X", "110105", dt.date(1949, 12, 31), "F", False)
KEY = b"test-key"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11010519491231002X", STANDARD),  # valid 18 characters, check X
        ("11010519491231002x", STANDARD),  # lower-case x
        (" １１０１０５１９４９１２３１００２Ｘ\u3000", STANDARD),  # full-width digits and Ｘ, surrounding spaces
        (
            "110105491231002",
            IdNumber("11010519491231002X", "110105", dt.date(1949, 12, 31), "F", True),
        ),  # 15-digit upgrade
        (
            "44030419851126341X",
            IdNumber("44030419851126341X", "440304", dt.date(1985, 11, 26), "M", False),
        ),  # odd 17th digit: male
        (
            "330102200002290023",
            IdNumber("330102200002290023", "330102", dt.date(2000, 2, 29), "F", False),
        ),  # leap day 2000
        ("110105194912310021", None),  # wrong check character
        ("110105199902300015", None),  # impossible date 1999-02-30 (check character right)
        ("330102190002290019", None),  # 1900 was not a leap year (check character right)
        ("110105189912310015", None),  # born before 1900 (check character right)
        ("11010519491231002A", None),  # a letter other than X
        ("1101051949123100X2", None),  # X not in the check position
        ("110105 19491231002X", None),  # a space inside
        ("11010519491231002", None),  # 17 characters
        ("1101051949123100", None),  # 16 characters
        ("", None),  # empty
        (None, None),  # null
    ],
)
def test_parse(text: str | None, expected: IdNumber | None) -> None:
    assert parse(text) == expected


def test_check_character_of_the_standard_example() -> None:
    assert check_character("11010519491231002") == "X"


def test_mask_keeps_region_and_last_four() -> None:
    assert mask("11010519491231002x") == "110105********002X"
    assert mask("110105491231002") == "110105********002X"  # upgraded first


def test_pseudonym_is_hmac_of_the_normalized_number() -> None:
    expected = hmac.new(KEY, b"11010519491231002X", hashlib.sha256).hexdigest()[:32]
    assert pseudonym("110105491231002", KEY) == expected  # 15-digit form: same person, same pseudonym
    assert pseudonym(" 11010519491231002x ", KEY) == expected
    assert pseudonym("11010519491231002X", b"other-key") != expected


@pytest.mark.parametrize("bad", ["110105194912310021", "not a number", ""])
def test_mask_and_pseudonym_reject_invalid_numbers(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid identity number"):
        mask(bad)
    with pytest.raises(ValueError, match="not a valid identity number"):
        pseudonym(bad, KEY)
