"""Numbers and lists as a planner reads them in the diagnosis's sentences."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _num(x: float) -> str:
    """A number as a planner reads it: thousands separated, few decimals."""
    if not math.isfinite(x):
        return str(x)
    a = abs(x)
    if 0 < a < 0.005:
        return f"{x:.2g}"
    digits = 0 if a >= 1000 else 1 if a >= 100 else 2
    s = f"{x:,.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pct(x: float) -> str:
    s = f"{100 * x:.2f}".rstrip("0").rstrip(".")
    return f"{s}%"


def _gpus(x: float) -> str:
    s = _num(x)
    return f"{s} GPU" if s == "1" else f"{s} GPUs"


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"
