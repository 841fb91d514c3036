"""Person names: the Python reference."""

from __future__ import annotations

import pytest

from lawlake.rules.names import MIDDLE_DOTS, SIMPLIFIED, TRADITIONAL, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三", "张三"),  # already normal
        (" 张 三 ", "张三"),  # ASCII spaces
        ("张\u3000三", "张三"),  # ideographic space
        ("张\t三\n", "张三"),  # tab and newline
        ("買買提·艾力", "買買提·艾力"),  # U+00B7 kept; 買 is not in the table
        ("买买提•艾力", "买买提·艾力"),  # bullet U+2022
        ("买买提・艾力", "买买提·艾力"),  # katakana middle dot U+30FB
        ("买买提･艾力", "买买提·艾力"),  # half-width katakana middle dot U+FF65
        ("买买提‧艾力", "买买提·艾力"),  # hyphenation point U+2027
        ("张 伟", "张伟"),  # simplified stays
        ("張偉", "张伟"),  # traditional surname and given name
        ("陳 國 華", "陈国华"),  # traditional with spaces
        ("歐靈娜", "歐靈娜"),  # characters outside the small table are kept
        ("   ", None),  # only whitespace
        ("", None),  # empty
        (None, None),  # null
    ],
)
def test_normalize(text: str | None, expected: str | None) -> None:
    assert normalize(text) == expected


def test_tables_pair_one_character_to_one() -> None:
    assert len(TRADITIONAL) == len(SIMPLIFIED) == len(set(TRADITIONAL))
    assert not set(TRADITIONAL) & set(SIMPLIFIED)  # mapping is idempotent
    assert len(set(MIDDLE_DOTS)) == len(MIDDLE_DOTS) and "·" not in MIDDLE_DOTS
