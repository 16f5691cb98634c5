"""The stable plan's second stage: among the plans whose objective is within a tolerance
of the optimum, the one that moves the fewest GPUs between consecutive periods.

Stage 1 is the scenario's LP, solved as usual (optimum z*). Stage 2 is the same LP with

* two columns per (segment, pool, period t >= 1), ``up`` and ``down`` >= 0, and one row
  (:func:`define_moves`)::

      moves[s,p,t]:  y[s,p,t] - y[s,p,t-1] - up[s,p,t] + down[s,p,t] = 0

  where ``y = sum_m x[s,m,p,t] + k[s,p,t]`` are the GPUs the segment holds in the pool
  (allocations over every mode plus reservations, as the stability limit counts them);
* one row keeping the objective near the optimum (:func:`define_objective_floor`)::

      objective-floor:  c @ x + offset >= z* - tolerance

* and the objective ``maximise -sum(up + down)``: at the optimum ``up + down`` is
  ``|y[t] - y[t-1]|`` (a solution with both positive is never better), so stage 2 minimises
  the GPUs moved, summed over pairs and periods, each GPU counted once per period it moves.

:func:`stable_lp` returns that derived model; its first ``lp.num_cols`` columns are the
scenario's, so its solution restricted to them is a plan of the scenario.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from allocator.lp.build import held_changes
from allocator.lp.program import LinearProgram, RowBlock

DEFAULT_TOLERANCE = 1e-7  # relative to max(1, |z*|): what stage 2 may give up
SOLVER_SLACK = 1e-9  # relative: above the solvers' own objective noise, so stage 2 is feasible


def objective_floor(z_star: float, tolerance: float) -> float:
    """The lowest objective stage 2 may reach: ``z* - tolerance * max(1, |z*|)`` less a
    slack of ``1e-9 * max(1, |z*|)`` for the solver's own rounding (stage 1's ``z*`` is
    itself only optimal to the solver's tolerances)."""
    scale = max(1.0, abs(z_star))
    return z_star - (tolerance + SOLVER_SLACK) * scale


def define_moves(
    lp: LinearProgram, n_pools: int, n_periods: int
) -> tuple[sp.csr_matrix, dict[str, np.ndarray]]:
    """moves[s,p,t], t >= 1:  y[s,p,t] - y[s,p,t-1] - up[s,p,t] + down[s,p,t] = 0.

    Returns the block's matrix over ``lp``'s columns followed by the ``up`` then ``down``
    columns (one of each per row), and its keys (segment, pool, period per row)."""
    T = n_periods
    rows, cols, vals, ps, pp = held_changes(lp.columns, n_pools, T)
    if lp.col_scale is not None:  # a whole-unit column counts units of N GPUs
        vals = vals * lp.col_scale[cols]
    n = int(ps.size) * (T - 1)
    ident = np.arange(n)
    A = sp.csr_matrix(
        (
            np.concatenate([vals, -np.ones(n), np.ones(n)]),
            (
                np.concatenate([rows, ident, ident]),
                np.concatenate([cols, lp.num_cols + ident, lp.num_cols + n + ident]),
            ),
        ),
        shape=(n, lp.num_cols + 2 * n),
    )
    keys = {
        "segment": np.repeat(ps, T - 1),
        "pool": np.repeat(pp, T - 1),
        "period": np.tile(np.arange(1, T), ps.size),
    }
    return A, keys


def define_objective_floor(lp: LinearProgram, n_cols: int) -> sp.csr_matrix:
    """objective-floor:  c @ x + offset >= floor, as the row ``c`` over ``n_cols`` columns
    (the caller sets its lower bound ``floor - offset``)."""
    c = np.zeros(n_cols)
    c[: lp.num_cols] = lp.c
    return sp.csr_matrix(c[None, :])


def optimal_face(
    lp: LinearProgram, x: np.ndarray, row_dual: np.ndarray, col_dual: np.ndarray
) -> LinearProgram:
    """``lp`` restricted to its optimal face, given an optimal primal-dual pair: every
    optimal plan is complementary to every optimal dual, so a column with a non-zero
    reduced cost keeps its value in every optimal plan, and a row with a non-zero dual
    stays at its bound. Those columns are fixed at ``x`` and those rows at their activity
    (so ``x`` stays feasible); "non-zero" is above ``1e-7 * max(1, max |c|)``, the
    solvers' dual tolerance."""
    eps = 1e-7 * max(1.0, float(np.abs(lp.c).max(initial=0.0)))
    fix_col = np.abs(col_dual) > eps
    fix_row = np.abs(row_dual) > eps
    xc = np.clip(x, lp.col_lower, lp.col_upper)
    act = np.clip(lp.A @ x, lp.row_lower, lp.row_upper)
    return replace(
        lp,
        col_lower=np.where(fix_col, xc, lp.col_lower),
        col_upper=np.where(fix_col, xc, lp.col_upper),
        row_lower=np.where(fix_row, act, lp.row_lower),
        row_upper=np.where(fix_row, act, lp.row_upper),
        warnings=list(lp.warnings),
    )


def stable_lp(lp: LinearProgram, z_star: float, tolerance: float, n_pools: int) -> LinearProgram:
    """Stage 2 of the stable plan for ``lp`` (a model built from a scenario of ``n_pools``
    pools) whose optimum is ``z_star``: minimise the GPUs moved subject to the objective
    staying at least :func:`objective_floor`. Its extra columns come after ``lp``'s."""
    T = int(lp.columns.x_period.max(initial=0)) + 1
    moves, keys = define_moves(lp, n_pools, T)
    n_new = 2 * moves.shape[0]
    n_cols = lp.num_cols + n_new
    floor = objective_floor(z_star, tolerance)
    obj_row = define_objective_floor(lp, n_cols)
    m0 = lp.num_rows
    A = sp.vstack([sp.hstack([lp.A, sp.csr_matrix((m0, n_new))]), moves, obj_row]).tocsr()
    c = np.concatenate([np.zeros(lp.num_cols), -np.ones(n_new)])
    integrality = (
        None
        if lp.integrality is None
        else np.concatenate([lp.integrality, np.zeros(n_new, dtype=bool)])
    )
    scale = None if lp.col_scale is None else np.concatenate([lp.col_scale, np.ones(n_new)])
    m1 = m0 + moves.shape[0]
    blocks = [
        *lp.blocks,
        RowBlock("moves", m0, m1, keys, (define_moves.__doc__ or "").split("\n")[0]),
        RowBlock("objective-floor", m1, m1 + 1, {}, "c @ x + offset >= z* - tolerance"),
    ]
    return replace(
        lp,
        c=c,
        A=A,
        row_lower=np.concatenate([lp.row_lower, np.zeros(moves.shape[0]), [floor - lp.offset]]),
        row_upper=np.concatenate([lp.row_upper, np.zeros(moves.shape[0]), [np.inf]]),
        col_lower=np.concatenate([lp.col_lower, np.zeros(n_new)]),
        col_upper=np.concatenate([lp.col_upper, np.full(n_new, np.inf)]),
        blocks=blocks,
        offset=0.0,
        warnings=list(lp.warnings),
        integrality=integrality,
        col_scale=scale,
    )
