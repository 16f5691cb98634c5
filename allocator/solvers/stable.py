"""The stable plan: solve, then among the (near-)optimal plans take the one that moves the
fewest GPUs between consecutive periods (the model of stage 2 is in ``lp/stable.py``).

The returned Solution holds stage 2's values with stage 1's duals: the shadow prices are
those of the optimum itself (stage 2's duals price the objective floor and the moves, not
capacity). Any optimal dual is complementary to every optimal primal, so the prices stay
exact for a stage-2 plan at the optimum and hold to within the tolerance otherwise.
"""

from __future__ import annotations

import time
from dataclasses import replace

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.stable import DEFAULT_TOLERANCE, objective_floor, optimal_face, stable_lp
from allocator.solvers.base import Solution, Solver

__all__ = ["DEFAULT_TOLERANCE", "FACE_TOLERANCE", "solve_stable"]

# up to this relative tolerance stage 2 searches the optimal face (a much smaller LP: at
# 100k columns 66 s against more than 600 s on the whole LP with the objective row)
FACE_TOLERANCE = 1e-6


def solve_stable(
    solver: Solver,
    lp: LinearProgram,
    first: Solution,
    n_pools: int,
    tolerance: float = DEFAULT_TOLERANCE,
    time_limit: float | None = None,
) -> Solution:
    """Stage 2 after ``first`` (an optimal solution of ``lp``): the plan within
    ``tolerance * max(1, |z*|)`` of the optimum ``z*`` that moves the fewest GPUs.

    Falls back to ``first`` (saying so in ``message``) when ``first`` is not optimal or
    stage 2 does not finish with a plan. ``extra`` records ``first_stage_objective``,
    ``objective_floor``, ``stable_s`` (stage 2's seconds) and ``stable_tolerance``."""
    if first.status is not Status.OPTIMAL or first.x is None or first.objective is None:
        return replace(first, message=first.message + " (not stabilised: stage 1 not optimal)")
    if lp.num_cols == 0 or lp.columns.n_x == 0:
        return first
    z_star = first.objective
    t0 = time.perf_counter()
    y, d = first.row_dual, first.col_dual
    on_face = tolerance <= FACE_TOLERANCE and not lp.is_mip and y is not None and d is not None
    face = optimal_face(lp, first.x, y, d) if on_face and y is not None and d is not None else lp
    model = stable_lp(face, z_star, tolerance, n_pools)
    second = solver.for_coupled_periods().solve(model, time_limit)
    t2 = time.perf_counter() - t0
    extra = {
        **first.extra,
        "first_stage_objective": z_star,
        "objective_floor": objective_floor(z_star, tolerance),
        "stable_s": t2,
        "stable_tolerance": tolerance,
    }
    if not second.has_plan or second.x is None:
        return replace(
            first,
            message=first.message + f" (not stabilised: stage 2 ended {second.status.value})",
            extra=extra,
        )
    x = second.x[: lp.num_cols]
    return replace(
        first,
        x=x,
        objective=lp.objective(x),
        time_s=first.time_s + t2,
        iterations=first.iterations + second.iterations,
        message=first.message + " (stable: the plan that moves fewest GPUs near the optimum)",
        extra=extra,
    )
