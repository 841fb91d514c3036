"""bench/plan_cost.py: its identity numbers cover every form the parser tells apart, and its two forms of the check
character agree on them (the figure it prints is only worth reading if they do)."""

from __future__ import annotations

import sys

from .scripts import load

plan_cost = load("plan_cost")


def test_the_sample_holds_valid_15_digit_mistyped_and_empty_numbers() -> None:
    from lawlake.rules import id_numbers

    numbers = [row[0] for row in plan_cost._strings(2000, seed=7)]
    parsed = [id_numbers.parse(n) if n else None for n in numbers]
    assert sum(1 for n in numbers if n == "") > 10
    assert sum(1 for n, p in zip(numbers, parsed, strict=True) if len(n) == 15 and p is not None) > 50
    assert sum(1 for n, p in zip(numbers, parsed, strict=True) if len(n) == 18 and p is None) > 50  # mistyped: a wrong check character
    assert sum(1 for n, p in zip(numbers, parsed, strict=True) if len(n) == 18 and p is not None) > 1000


def test_both_forms_of_the_check_character_give_the_same_rows(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["plan_cost.py", "--rows", "3000", "--runs", "1"])
    plan_cost.main()  # exits 1 when the two forms differ
    out = capsys.readouterr().out
    assert "3,000 rows" in out
    assert "id_number, the two forms: 0 differing rows" in out
    assert "id_number (17 terms, before)" in out and "case_number" in out
