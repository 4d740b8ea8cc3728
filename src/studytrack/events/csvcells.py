"""One rule for every CSV this service writes: a text cell a spreadsheet would run as a formula is defused."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """`text`, prefixed with `'` when it starts like a formula (the prefix shows; the formula never runs)."""
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text
