"""Cells the project writes to spreadsheets and CSV files: text stays text, never a formula.

A spreadsheet that opens a CSV file takes a cell starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return for a formula (CSV injection: a scenario name or a segment's
``unit`` of ``=HYPERLINK(...)`` would run when a planner opens the download). Every CSV the
project writes (``allocator solve -o plan/``, the REST API's ``?format=csv`` views,
``allocator batch``'s results.csv) passes each cell through :func:`csv_cell`, which
prefixes such text with a single quote, as OWASP recommends; numbers are written as numbers
(``-1.5`` is a number, not text). Workbooks write text cells as strings: the plan workbook
with xlsxwriter's ``strings_to_formulas`` off (:data:`XLSXWRITER_OPTIONS`), scenario
workbooks through :func:`no_formulas` (openpyxl takes any text starting with ``=`` for a
formula).

>>> [csv_cell(v) for v in ("=1+2", "-x", "@SUM(A1)", "chat", -1.5, None, 2)]
["'=1+2", "'-x", "'@SUM(A1)", 'chat', '-1.5', '', 2]
"""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection
# xlsxwriter.Workbook options: every string written is a string (no formula, no link)
XLSXWRITER_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False}


def safe_text(text: str) -> str:
    """``text`` as a spreadsheet shows it, never run: a leading single quote when it
    would start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_cell(v: Any) -> Any:
    """A value as a CSV cell: text made safe (:func:`safe_text`), floats to 12 significant
    digits (no last-bit noise such as ``45600.00000000001``), None as an empty cell."""
    if v is None:
        return ""
    if isinstance(v, str):
        return safe_text(v)
    if isinstance(v, float):
        return f"{v:.12g}"
    return v


def no_formulas(wb: Any) -> None:
    """Mark every cell of openpyxl workbook ``wb`` that openpyxl took for a formula (text
    starting with ``=``) as a string: the writers here write values, never formulas."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
