"""One number format for every text surface (CLI, summaries, sentences, charts' labels,
workbook display formats): money as ``20.13B``, counts with thousands separators, small
figures with a few significant digits, never scientific notation and never ``-0.00``.
Full precision stays in JSON, CSV, Parquet and workbook cells; these are for reading.

>>> money(20_125_535_610.28), money(-1_234.5), money(-0.001), money(None)
('20.13B', '-1.23k', '0.00', 'n/a')
>>> number(1234.5), number(-0.0004, 2), number(3, 1)
('1,234', '0.00', '3.0')
>>> short(0.0024861), short(1.0), short(14176.4), short(1.2e-05), short(2.5e12), short(-3e300)
('0.002486', '1', '14,176', '0.000012', '2,500,000,000,000', '-3 × 10^300')
"""

from __future__ import annotations

import math
from typing import Any

MAX_DECIMALS = 12  # short(): smaller magnitudes round to 0
HUGE = 1e15  # short(): from here on, "1.5 × 10^300"


def _unsigned_zero(text: str) -> str:
    """``-0.00`` -> ``0.00``: a value that rounds to zero has no sign."""
    if text.startswith("-") and not any(c in "123456789" for c in text):
        return text[1:]
    return text


def money(v: float | None) -> str:
    """Money in short form: 1.23B, 4.56M, 7.89k, 12.00 ("n/a" for None)."""
    if v is None:
        return "n/a"
    a = abs(v)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return _unsigned_zero(f"{v / div:,.2f}") + suffix
    return _unsigned_zero(f"{v:,.2f}")


def number(v: Any, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals (``n/a`` for None)."""
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return _unsigned_zero(f"{v:,.{digits}f}")


def short(v: Any, significant: int = 4) -> str:
    """A number with about ``significant`` significant digits and no exponent: whole
    numbers from 1,000 up with thousands separators, smaller ones with as many decimals
    as those digits need (at most 12), trailing zeros dropped."""
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return "∞" if v > 0 else "−∞" if v < 0 else "n/a"
    a = abs(v)
    if a >= HUGE:  # a hostile 1e300 is not printed as 301 digits
        e = math.floor(math.log10(a))
        return f"{v / 10**e:.3g} × 10^{e}"
    if a >= 1000:
        return _unsigned_zero(f"{v:,.0f}")
    if a == 0:
        return "0"
    decimals = min(MAX_DECIMALS, max(0, significant - 1 - math.floor(math.log10(a))))
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _unsigned_zero(text) if text not in ("-0", "") else "0"


def violation(v: float) -> str:
    """A relative violation of the plan's constraints as a share: ``0.000000`` below one
    in ten million, else six decimals (``0.000120``), never an exponent."""
    return number(max(v, 0.0), 6)
