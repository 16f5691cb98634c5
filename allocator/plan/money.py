"""Money as people read it: one formatter for the summary, charts, notebooks and CLI."""

from __future__ import annotations


def money(v: float | None) -> str:
    """Money in short form: 1.23B, 4.56M, 7.89k, 12.00 ("n/a" for None)."""
    if v is None:
        return "n/a"
    a = abs(v)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:,.2f}{suffix}"
    return f"{v:,.2f}"
