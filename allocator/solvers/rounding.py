"""Whole units from the LP relaxation: the rounding step of the MILP heuristic.

A MILP here is the allocation LP with some columns counted in whole units
(``allocation_unit_gpus``: an allocation column counts units of N GPUs;
``rental_unit_gpus`` / ``expansion.unit_gpus``: an integer column ``nr`` / ``ne`` tied to
the GPUs rented / bought by an equality row). From the relaxation's optimum ``x*``:

* allocation units, per (pool, period): every column rounded down, then the units the
  pool had in total (``floor(sum x*)``) less those handed out go one each to the columns
  with the largest remainders (largest-remainder rounding), a unit going only where it
  pushes no row (a segment's demand, a cap, a stability limit) past its bound, counted
  with the units handed out before it (a few vectorised passes); units a pool still owes
  then go to the columns that earn most per unit and still fit. A pool never holds more
  units than in the relaxation;
* rental and purchase units: rounded up (more capacity never breaks a capacity row),
  down where that would pass the column's upper bound;
* any other integer column: to the nearest integer within its bounds.

The caller (``base.solve_milp``) fixes the rounded columns and re-solves the continuous
rest (the repair LP, whose duals become the plan's prices). When that LP is infeasible,
:func:`tighten_violated_rows` moves the bounds of the rows the rounded point broke inward
by the most the rounding can move them (``sum_j |a_ij|`` over the row's integer columns:
every rounded column moves by less than one unit; rows with a continuous column the repair
can move are left alone unless nothing else is broken), the relaxation is solved again with
those rows and rounded afresh — a few rounds at most, then the MILP solver alone.
"""

from __future__ import annotations

import numpy as np

from allocator.lp import LinearProgram

__all__ = ["round_whole_units", "tighten_violated_rows"]

_EPS = 1e-9  # a value within this of an integer counts as that integer


def round_whole_units(lp: LinearProgram, x: np.ndarray) -> np.ndarray:
    """``x`` (a relaxation's solution) with every integer column of ``lp`` rounded as the
    module docstring says; continuous columns keep their values."""
    assert lp.integrality is not None
    out = np.array(x, dtype=float, copy=True)
    integer = lp.integrality
    cols = lp.columns
    unit_cols = np.nonzero(integer[cols.r_offset :])[0] + cols.r_offset
    if unit_cols.size:
        lo = np.ceil(lp.col_lower[unit_cols] - _EPS)
        hi = np.floor(lp.col_upper[unit_cols] + _EPS)
        v = out[unit_cols]
        up = np.where(_unit_tied(lp, unit_cols), np.ceil(v - _EPS), np.round(v))
        out[unit_cols] = np.clip(up, lo, hi)
    alloc = np.nonzero(integer[: cols.n_x])[0]
    if alloc.size:
        v = np.maximum(out[alloc], 0.0)
        floor = np.clip(np.floor(v + _EPS), lp.col_lower[alloc], lp.col_upper[alloc])
        out[alloc] = np.ceil(floor - _EPS)
        rem = v - out[alloc]
        cand = np.nonzero(rem > _EPS)[0]
        cand = cand[np.argsort(-rem[cand], kind="stable")]  # largest remainder first
        group = cols.x_pool[alloc] * (int(cols.x_period.max(initial=0)) + 1) + cols.x_period[alloc]
        owed = _owed(v, out[alloc], group)
        cand = _hand_out(lp, out, alloc, cand, group, owed)
        # units a pool still owes (the rows stopped them where the remainders were) go to
        # the columns that earn most per unit and still fit, whatever their remainder
        value = lp.c[alloc]
        fill = np.nonzero((owed[group] > 0) & (value > 0))[0]
        _hand_out(lp, out, alloc, fill[np.argsort(-value[fill], kind="stable")], group, owed)
    return out


def _hand_out(
    lp: LinearProgram,
    out: np.ndarray,
    alloc: np.ndarray,
    cand: np.ndarray,
    group: np.ndarray,
    owed: np.ndarray,
) -> np.ndarray:
    """One unit more to each of ``alloc[cand]`` (in that order of priority) that fits
    (:func:`_fits`), over a few passes; ``out`` and ``owed`` updated in place. Returns the
    candidates left without a unit."""
    for _ in range(_PASSES):
        cand = cand[owed[group[cand]] > 0]
        if cand.size == 0:
            break
        up = alloc[cand]
        take = _fits(lp, out, up, group[cand], owed) & (out[up] + 1 <= lp.col_upper[up] + _EPS)
        if not take.any():
            break
        out[up[take]] += 1.0
        np.subtract.at(owed, group[cand[take]], 1.0)
        cand = cand[~take]
    return cand


_PASSES = 8  # passes of unit hand-outs (each pass re-reads the rows' room)


def _owed(v: np.ndarray, floor: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Units each (pool, period) group may still get: ``floor(sum v) - sum floor``."""
    n = int(group.max(initial=-1)) + 1
    total = np.bincount(group, weights=v, minlength=n)
    handed = np.bincount(group, weights=floor, minlength=n)
    return np.floor(total - handed + _EPS)


def _fits(
    lp: LinearProgram, x: np.ndarray, up: np.ndarray, group: np.ndarray, owed: np.ndarray
) -> np.ndarray:
    """Which of the columns ``up`` (in priority order) can each take one unit more, all
    taken together: each fits alone (no row pushed past its bound, or further out than at
    ``x``); of those, the first ones of each (pool, period) group up to the units it is
    owed are tried; and for every row, the raises of the tried columns before it and its
    own keep the row within its room (rises and falls of the activity counted apart, so
    whatever subset is taken fits). The rest wait for the next pass."""
    act = lp.A @ x
    tol = 1e-9 * np.maximum(1.0, np.abs(act))
    room_up = np.maximum(lp.row_upper - act, 0.0) + tol
    room_down = np.maximum(act - lp.row_lower, 0.0) + tol
    sub = lp.A[:, up].tocsc()
    pos = np.repeat(np.arange(up.size), np.diff(sub.indptr))
    rows, vals = sub.indices, sub.data
    alone = (vals <= room_up[rows]) & (-vals <= room_down[rows])
    tried = np.ones(up.size, dtype=bool)
    tried[pos[~alone]] = False
    g_order = np.argsort(group, kind="stable")  # priority order kept within a group
    rank = _cumulative_by(group[g_order], tried[g_order].astype(float))
    tried[g_order] &= rank <= owed[group[g_order]]
    keep = tried[pos]  # the columns not tried take no room from those after them
    rows, vals, pos = rows[keep], vals[keep], pos[keep]
    order = np.lexsort((pos, rows))
    rows, vals, pos = rows[order], vals[order], pos[order]
    rise = _cumulative_by(rows, np.maximum(vals, 0.0))
    fall = _cumulative_by(rows, np.maximum(-vals, 0.0))
    ok = (rise <= room_up[rows]) & (fall <= room_down[rows])
    tried[pos[~ok]] = False
    return tried


def _cumulative_by(key: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Running sums of ``v`` restarting at each new value of the sorted ``key``."""
    c = np.cumsum(v)
    if key.size == 0:
        return c
    start = np.r_[0, np.nonzero(np.diff(key))[0] + 1]
    base = np.repeat(c[start] - v[start], np.diff(np.r_[start, key.size]))
    return c - base


def _unit_tied(lp: LinearProgram, cols: np.ndarray) -> np.ndarray:
    """True for columns counted by a ``rental-units`` / ``purchase-units`` row."""
    tied = np.zeros(lp.num_cols, dtype=bool)
    for b in lp.blocks:
        if b.name in ("rental-units", "purchase-units"):
            sub = lp.A[b.start : b.stop]
            tied[sub.indices[sub.data < 0]] = True  # the -N coefficient of the unit column
    return tied[cols]


def _untouched(now: np.ndarray, was: np.ndarray, tol: float) -> np.ndarray:
    """Bounds not moved yet (infinite ones never are)."""
    finite = np.isfinite(was)
    out = ~finite
    out[finite] = np.abs(now[finite] - was[finite]) <= tol * np.maximum(1.0, np.abs(was[finite]))
    return out


def tighten_violated_rows(
    lp: LinearProgram,
    relaxed: LinearProgram,
    x_round: np.ndarray,
    tol: float = 1e-7,
) -> LinearProgram | None:
    """``relaxed`` (``lp``'s relaxation, perhaps tightened already) with rows moved inward
    by the most rounding down can move them: an upper bound by ``sum_j max(-a_ij, 0)``, a
    lower bound by ``sum_j max(a_ij, 0)`` over the row's integer columns (each rounded
    column falls by less than one unit; units handed out back never break a row). Moved:
    each row ``x_round`` violates and, with them, each row with integer coefficients of
    both signs (a stability limit) that ``x_relax`` holds within that distance of a bound.
    Rows with a continuous column the repair LP can move (a shortfall, a rental) are left
    alone unless nothing else is broken. None when ``x_round`` violates no row or a row
    would be left empty (its lower bound above its upper)."""
    assert lp.integrality is not None
    act = lp.A @ x_round
    scale = np.maximum(1.0, np.abs(act))
    over = act - lp.row_upper > tol * scale
    under = lp.row_lower - act > tol * scale
    if not (over.any() or under.any()):
        return None
    integer = lp.integrality.astype(float)
    pos_a, neg_a = lp.A.maximum(0), (-lp.A).maximum(0)
    up_margin = neg_a @ integer  # how far rounding down can raise a row
    down_margin = pos_a @ integer  # and lower it
    only_integer = ((pos_a + neg_a) @ (1.0 - integer)) == 0
    if (over | under)[only_integer].any():
        over &= only_integer
        under &= only_integer
    # every row of integer columns of both signs: a re-solve would make others tight
    both_signs = only_integer & (up_margin > 0) & (down_margin > 0)
    over |= both_signs & np.isfinite(relaxed.row_upper)
    under |= both_signs & np.isfinite(relaxed.row_lower)
    over &= _untouched(relaxed.row_upper, lp.row_upper, tol)  # each row moves once
    under &= _untouched(relaxed.row_lower, lp.row_lower, tol)
    upper = np.where(over, relaxed.row_upper - up_margin, relaxed.row_upper)
    lower = np.where(under, relaxed.row_lower + down_margin, relaxed.row_lower)
    if np.any(lower > upper + tol * np.maximum(1.0, np.abs(upper))):
        return None
    return LinearProgram(
        relaxed.c,
        relaxed.A,
        lower,
        upper,
        relaxed.col_lower,
        relaxed.col_upper,
        relaxed.columns,
        relaxed.blocks,
        relaxed.offset,
        list(relaxed.warnings),
        None,
        relaxed.col_scale,
    )
