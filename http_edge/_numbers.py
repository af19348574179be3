"""Whole numbers a caller writes as text (a query's `limit`, a form's `expires_after[seconds]`),
read by one rule: ASCII digits only ("²" is a digit to `isdigit()` and no number to `int()`),
and never handed to `int()` past what any bound here allows (Python's `int()` refuses more than
4300 digits with a ValueError: a 500 for a caller's typo)."""

from __future__ import annotations

__all__ = ["shown_number", "whole_number"]

_MAX_DIGITS = 18  # any int64 bound here is below a number of more digits
_TOO_LARGE = 10**_MAX_DIGITS  # what a longer one reads as: past every bound


def whole_number(value: str | None) -> int | None:
    """`value` as a whole number (one of more digits than any bound: larger than all of them);
    None when it is no whole number."""
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= _MAX_DIGITS else _TOO_LARGE


def shown_number(value: str) -> str:
    """`value` as an error repeats it: its first few characters when it is long."""
    return repr(value) if len(value) <= 2 * _MAX_DIGITS else repr(value[: 2 * _MAX_DIGITS] + "…")
