"""Utilisation one way on every surface (summary, charts, workbook; the page mirrors it in
JavaScript): the share of a pool's usable capacity (own GPUs after headroom, bought and
rented ones) the plan uses. A pool-period with no GPUs at all has **no** utilisation
(None: a gap in a chart, a blank cell, left out of averages), never 0 % or the share of
some other period.

>>> from allocator.plan.rows import PoolResult
>>> row = dict(pool="p", accelerator="H100", region="r", period="P1", usable=8.0, rented=0.0,
...            idle=0.0, variable_cost=0.0, rental_cost=0.0, fixed_cost=0.0,
...            shadow_price_per_gpu_hour=None, shadow_price_pv_per_gpu_hour=None)
>>> full = PoolResult(gpus=10.0, used=6.0, utilisation=0.6, utilisation_of_usable=0.75, **row)
>>> use_of_usable(full)
0.75
>>> row["usable"] = 0.0
>>> empty = PoolResult(gpus=0.0, used=0.0, utilisation=0.0, utilisation_of_usable=0.0, **row)
>>> use_of_usable(empty) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NO_GPUS = 1e-9  # a pool-period with at most this many GPUs (own + bought + rented) has none


def has_gpus(r: Any) -> bool:
    """The pool has GPUs (own, bought or rented) in the row's period."""
    return (r.gpus + (r.bought or 0.0) + (r.rented or 0.0)) > NO_GPUS


def use_of_usable(r: Any) -> float | None:
    """Used / usable capacity of a pool-period row (``utilisation`` for a plan stored
    before ``utilisation_of_usable``); None where the pool has no GPUs."""
    if not has_gpus(r):
        return None
    return r.utilisation if r.utilisation_of_usable is None else r.utilisation_of_usable


def mean_use(rows: Iterable[Any]) -> float | None:
    """Mean use of usable capacity over the rows that have GPUs (None: none has)."""
    shares = [s for s in map(use_of_usable, rows) if s is not None]
    return sum(shares) / len(shares) if shares else None
