"""Cells of exported CSV files that a spreadsheet program cannot run.

OWASP's rule for CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is read as a formula by Excel, WPS and LibreOffice, so it is prefixed with
a single quote and shown as text. A plain number ("-3", "+1.5") is left alone: it cannot
be a formula, and the quote would turn it into text.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
