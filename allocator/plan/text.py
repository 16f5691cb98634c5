"""Plain-text tables for terminals and logs: each column as wide as its widest cell, so
long ids never push the columns out of line. No colours or box characters, so the text
reads the same in a pipe, a file or a notebook.

>>> print("\\n".join(table(["pool", "GPUs"], [["pool-4-TPU-like-us-east", 1200.0], ["b", 3]])))
pool                      GPUs
-----------------------  -----
pool-4-TPU-like-us-east  1,200
b                            3
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from allocator.numbers import number

__all__ = ["number", "percent", "table"]

Cell = Any
GAP = "  "


def percent(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else number(v * 100, digits) + "%"


def _cell(v: Cell) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float | int) and not isinstance(v, bool):
        return number(v, 0 if float(v).is_integer() or abs(v) >= 100 else 2)
    return str(v)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    align: str | None = None,
    indent: str = "",
    formats: Sequence[Callable[[Any], str] | None] | None = None,
) -> list[str]:
    """Lines of a table: a header row, a rule, then one line per row. ``align`` has one
    letter per column, ``l`` or ``r``; by default text columns align left and columns
    whose cells are all numbers (or None) align right. ``formats`` optionally holds one
    formatter per column (None keeps the default: thousands separators)."""
    raw = [list(r) for r in rows]
    n = len(headers)
    if align is None:
        align = "".join(
            "r"
            if raw
            and all(
                r[i] is None or (isinstance(r[i], int | float) and not isinstance(r[i], bool))
                for r in raw
            )
            else "l"
            for i in range(n)
        )
    fmts = list(formats) if formats is not None else [None] * n
    cells = [
        [
            (fmts[i] or _cell)(r[i]) if fmts[i] is None or r[i] is not None else "n/a"
            for i in range(n)
        ]
        for r in raw
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if a == "r" else v.ljust(w)
            for v, w, a in zip(values, widths, align, strict=True)
        ]
        return (indent + GAP.join(parts)).rstrip()

    return [line(headers), indent + GAP.join("-" * w for w in widths)] + [line(c) for c in cells]
