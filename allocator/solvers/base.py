"""Solver interface: every backend takes a LinearProgram and returns a Solution whose
duals are in the sign of the **maximisation** problem (d objective / d rhs).

A backend implements :meth:`Solver.run` (solve exactly the model given: an LP, or a MILP
when ``lp.integrality`` is set). :meth:`Solver.solve` is the same for every backend: an LP
is one run; a MILP is three (the LP relaxation for its bound, the MILP, then the LP with
the integer columns fixed at the MILP's values, whose duals become the shadow prices).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.rounding import round_whole_units, tighten_violated_rows

DEFAULT_MIP_GAP = 1e-4  # relative; HiGHS' default, passed to every backend alike
FEASIBILITY_TOL = 1e-6  # relative violation above which a "stopped early" point is rejected

MESSAGES = {
    Status.OPTIMAL: "optimal plan found",
    Status.TIME_LIMIT: "time limit reached: the plan is feasible but may not be optimal",
    Status.TIME_LIMIT_NO_SOLUTION: "no feasible plan found within the time limit",
    Status.INFEASIBLE: "no plan meets every hard requirement at once",
    Status.UNBOUNDED: "the objective can grow without limit (a price or bound is missing)",
    Status.NUMERICAL_ERROR: "the solver ran into numerical trouble",
}

DUALS_FROM = ("lp", "fixed_milp", "none")


@dataclass
class Solution:
    status: Status
    x: np.ndarray | None  # column values, in the model's column units
    row_dual: np.ndarray | None  # d objective / d row bound, maximisation sense
    col_dual: np.ndarray | None  # reduced costs, maximisation sense
    objective: float | None
    solver: str
    algorithm: str
    time_s: float
    iterations: int = 0
    message: str = ""
    raw_status: str = ""
    gap: float | None = None  # relative MIP gap of ``objective`` against ``bound``
    extra: dict[str, float] = field(default_factory=dict)
    backend: str = "highs"
    bound: float | None = None  # best proven upper bound on the objective (MILP)
    lp_bound: float | None = None  # optimum of the LP relaxation (MILP)
    duals_from: str = "lp"  # one of DUALS_FROM
    duals_note: str = ""  # why there are no duals, when there are none
    whole_units_from: str | None = None  # MILP: "rounding" (the relaxation rounded) or "mip"
    bound_from: str | None = None  # MILP: "lp_relaxation" or "mip" (the solver's dual bound)

    @property
    def has_plan(self) -> bool:
        return self.x is not None and self.status in (Status.OPTIMAL, Status.TIME_LIMIT)

    def __repr__(self) -> str:
        obj = "None" if self.objective is None else f"{self.objective:.6g}"
        gap = "" if self.gap is None else f", gap={self.gap:.2e}"
        return (
            f"Solution({self.status.value}, objective={obj}{gap}, solver={self.solver}/"
            f"{self.algorithm}, {self.time_s:.3f}s, {self.iterations} it)"
        )


class Solver(ABC):
    name: str = "solver"
    mip_gap: float = DEFAULT_MIP_GAP
    # told of each phase of a long solve (the row generation's rounds); None: silent
    progress: Callable[[str], None] | None = None

    @classmethod
    def is_available(cls) -> bool:
        return True

    @abstractmethod
    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        """Solve exactly ``lp`` (integrality included) once; duals in maximisation sign
        where the solver gives them."""

    def for_coupled_periods(self) -> Solver:
        """The solver for a model whose rows couple periods beyond the stability limit
        (the stable plan's second stage): this one, unless it splits the LP by period."""
        return self

    def solve(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        """Solve ``lp``: an LP directly, a MILP with a bound and fixed-integer duals."""
        if not lp.is_mip:
            sol = self.run(lp, time_limit)
            sol.duals_from = "lp" if sol.row_dual is not None else "none"
            return sol
        return solve_milp(self, lp, time_limit)

    def run_mip(
        self, lp: LinearProgram, time_limit: float | None, start: np.ndarray | None = None
    ) -> Solution:
        """The MILP ``lp`` by the solver's branch and cut, from the feasible whole-unit
        plan ``start`` where the solver takes one (this default ignores it)."""
        return self.run(lp, time_limit)


def solve_milp(solver: Solver, lp: LinearProgram, time_limit: float | None) -> Solution:
    """LP relaxation (its optimum bounds the MILP's), whole units rounded from it and
    repaired (:mod:`allocator.solvers.rounding`), then the MILP solver started from that
    plan within what is left of the time limit, then the LP with the integer columns fixed
    at the best plan's values.

    The rounded plan always runs first (one LP solve more, a few when rows must be
    tightened): it is the answer when its gap to the relaxation is within ``mip_gap`` (no
    MILP run at all) and when the MILP solver finds nothing better within the limit;
    otherwise it is the MILP solver's start (``setSolution`` in HiGHS).
    ``whole_units_from`` says which plan came back (``"rounding"`` or ``"mip"``),
    ``bound_from`` which bound its gap is measured against (``"lp_relaxation"`` or
    ``"mip"``, the lower of the two). The returned plan is the fixed LP's solution (the
    same whole units, the continuous decisions re-optimised), with that LP's duals:
    ``duals_from = "fixed_milp"``.
    """
    t0 = time.perf_counter()
    relax = solver.run(lp.relaxed(), time_limit)
    if relax.status in (Status.INFEASIBLE, Status.UNBOUNDED, Status.NUMERICAL_ERROR):
        relax.message += " (in the LP relaxation, so also with whole allocation units)"
        relax.duals_from, relax.x = "none", None
        return relax
    lp_bound = relax.objective if relax.status is Status.OPTIMAL else None
    extra = {"lp_relaxation_s": relax.time_s}
    rounded = None
    if lp_bound is not None and relax.x is not None:
        t1 = time.perf_counter()
        rounded = round_and_repair(solver, lp, relax.x, time_limit, t0)
        extra["rounding_s"] = time.perf_counter() - t1
    remaining = _time_left(time_limit, t0)
    if rounded is not None and (
        _gap_within(rounded.objective, lp_bound, solver.mip_gap)
        or (remaining is not None and remaining <= 0)
    ):
        return _rounded_plan(lp, relax, rounded, None, lp_bound, extra, t0, solver.mip_gap)
    if remaining is not None and remaining <= 0:
        return _no_time_for_the_milp(relax, lp_bound, t0)
    # keep time for the fixed LP after the MILP (about as long as the repair LP took)
    reserve = 1.5 * rounded.time_s if rounded is not None else 0.0
    mip_limit = None if remaining is None else max(remaining - reserve, 0.5 * remaining)
    start = rounded.x if rounded is not None else None
    mip = solver.run_mip(lp, mip_limit, start)
    extra["milp_s"] = mip.time_s
    better = mip.has_plan and mip.x is not None
    if better and rounded is not None:
        assert mip.objective is not None and rounded.objective is not None
        better = mip.objective > rounded.objective + 1e-9 * max(1.0, abs(rounded.objective))
    if not better:
        if rounded is not None:
            return _rounded_plan(lp, relax, rounded, mip, lp_bound, extra, t0, solver.mip_gap)
        return replace(
            mip,
            time_s=time.perf_counter() - t0,
            lp_bound=lp_bound,
            bound=_lower_bound(mip.bound, lp_bound),
            bound_from=_bound_from(mip.bound, lp_bound),
            duals_from="none",
            extra={**mip.extra, **extra},
        )
    assert mip.x is not None
    fixed_limit = (
        None if time_limit is None else max(_time_left(time_limit, t0) or 0.0, 0.1 * time_limit)
    )
    fixed = solver.run(lp.with_integers_fixed(mip.x), fixed_limit)
    extra["fixed_lp_s"] = fixed.time_s
    bound = _lower_bound(mip.bound, lp_bound)
    return _with_fixed_duals(lp, relax, mip, fixed, bound, lp_bound, extra, t0)


ROUNDING_ROUNDS = 3  # round, repair; at most twice more with the violated rows tightened


def round_and_repair(
    solver: Solver, lp: LinearProgram, x_relax: np.ndarray, time_limit: float | None, t0: float
) -> Solution | None:
    """The whole-unit plan rounded from the relaxation's ``x_relax`` and repaired: the LP
    with the rounded columns fixed (its solution and duals), or None when no round of
    :data:`ROUNDING_ROUNDS` gave a feasible one (or time ran out)."""
    relaxed = lp.relaxed()
    x = x_relax
    for _ in range(ROUNDING_ROUNDS):
        xi = round_whole_units(lp, x)
        left = _time_left(time_limit, t0)
        if left is not None and left <= 0:
            return None
        fixed = solver.run(lp.with_integers_fixed(xi), left)
        if fixed.status is Status.OPTIMAL and fixed.x is not None:
            fixed.x[lp.integrality] = xi[lp.integrality]  # exact whole units
            if fixed.objective is None:
                fixed.objective = lp.objective(fixed.x)
            return fixed
        tighter = tighten_violated_rows(lp, relaxed, xi)
        if tighter is None:
            return None
        relaxed = tighter
        again = solver.run(relaxed, _time_left(time_limit, t0))
        if again.status is not Status.OPTIMAL or again.x is None:
            return None
        x = again.x
    return None


def _gap_within(objective: float | None, bound: float | None, mip_gap: float) -> bool:
    if objective is None:
        return False
    gap = relative_gap(objective, bound)
    return gap is not None and gap <= mip_gap


def _lower_bound(mip_bound: float | None, lp_bound: float | None) -> float | None:
    bounds = [b for b in (mip_bound, lp_bound) if b is not None]
    return min(bounds) if bounds else None


def _bound_from(mip_bound: float | None, lp_bound: float | None) -> str | None:
    if mip_bound is not None and (lp_bound is None or mip_bound < lp_bound):
        return "mip"
    return "lp_relaxation" if lp_bound is not None else None


def _rounded_plan(
    lp: LinearProgram,
    relax: Solution,
    rounded: Solution,
    mip: Solution | None,
    lp_bound: float | None,
    extra: dict[str, float],
    t0: float,
    mip_gap: float,
) -> Solution:
    """The rounded and repaired plan as the answer: its gap against the lower of the
    relaxation's optimum and the MILP solver's proven bound (when it ran)."""
    assert rounded.objective is not None and rounded.x is not None
    mip_bound = mip.bound if mip is not None else None
    bound = _lower_bound(mip_bound, lp_bound)
    bound_from = _bound_from(mip_bound, lp_bound)
    if bound is not None:
        bound = max(bound, rounded.objective)  # a bound is never below a feasible plan
    gap = relative_gap(rounded.objective, bound)
    done = gap is not None and gap <= mip_gap
    status = Status.OPTIMAL if done else Status.TIME_LIMIT
    if mip is not None and mip.status is Status.OPTIMAL:
        status = Status.OPTIMAL  # the MILP solver proved nothing better exists (within gap)
    message = MESSAGES[status]
    if gap is not None:
        message += f" (whole units rounded from the LP relaxation, relative gap {gap:.2g})"
    iterations = relax.iterations + rounded.iterations + (mip.iterations if mip else 0)
    return replace(
        rounded,
        status=status,
        algorithm="mip",
        time_s=time.perf_counter() - t0,
        iterations=iterations,
        message=message,
        raw_status=mip.raw_status if mip is not None else "rounding",
        gap=gap,
        bound=bound,
        lp_bound=lp_bound,
        duals_from="fixed_milp" if rounded.row_dual is not None else "none",
        whole_units_from="rounding",
        bound_from=bound_from,
        extra={**(mip.extra if mip is not None else {}), **extra},
    )


def _time_left(time_limit: float | None, t0: float) -> float | None:
    """Seconds left of ``time_limit`` since ``t0`` (never below 0); None without a limit."""
    if time_limit is None:
        return None
    return max(time_limit - (time.perf_counter() - t0), 0.0)


def _no_time_for_the_milp(relax: Solution, lp_bound: float | None, t0: float) -> Solution:
    """The LP relaxation used up the time limit: no plan, only the relaxation's bound."""
    return Solution(
        Status.TIME_LIMIT_NO_SOLUTION,
        None,
        None,
        None,
        None,
        solver=relax.solver,
        algorithm="mip",
        time_s=time.perf_counter() - t0,
        message=MESSAGES[Status.TIME_LIMIT_NO_SOLUTION],
        raw_status=relax.raw_status,
        backend=relax.backend,
        lp_bound=lp_bound,
        duals_from="none",
    )


def _with_fixed_duals(
    lp: LinearProgram,
    relax: Solution,
    mip: Solution,
    fixed: Solution,
    bound: float | None,
    lp_bound: float | None,
    extra: dict[str, float],
    t0: float,
) -> Solution:
    """The MILP's plan with the fixed LP's values and duals (the MILP's own values, and no
    duals, when the fixed LP did not solve to optimality), its bound and gap."""
    assert mip.x is not None
    if fixed.status is Status.OPTIMAL and fixed.x is not None:
        x, objective = fixed.x, fixed.objective
        row_dual, col_dual = fixed.row_dual, fixed.col_dual
        note = fixed.duals_note
    else:
        x, objective, row_dual, col_dual = mip.x, mip.objective, None, None
        note = f"the LP with the whole-unit allocations fixed ended {fixed.status.value}"
    if objective is None:
        objective = lp.objective(x)
    if bound is not None:
        bound = max(bound, objective)  # a bound is never below a feasible plan
    gap = relative_gap(objective, bound)
    message = mip.message
    if gap is not None:
        message += f" (MILP, relative gap {gap:.2g})"
    mip_bound = mip.bound
    return replace(
        mip,
        x=x,
        row_dual=row_dual,
        col_dual=col_dual,
        objective=objective,
        time_s=time.perf_counter() - t0,
        iterations=relax.iterations + mip.iterations + fixed.iterations,
        message=message,
        gap=gap,
        bound=bound,
        lp_bound=lp_bound,
        duals_from="fixed_milp" if row_dual is not None else "none",
        duals_note=note if row_dual is None else "",
        whole_units_from="mip",
        bound_from=_bound_from(mip_bound, lp_bound),
        extra={**mip.extra, **extra},
    )


def relative_gap(objective: float, bound: float | None) -> float | None:
    """``(bound - objective) / |objective|`` for a maximisation (0 when they agree to
    1e-9 relative); None without a bound or when the objective is 0 and the bound is not."""
    if bound is None or not math.isfinite(bound):
        return None
    diff = max(bound - objective, 0.0)
    if diff <= 1e-9 * max(1.0, abs(bound), abs(objective)):
        return 0.0
    if objective == 0:
        return None
    return diff / abs(objective)


def primal_violation(lp: LinearProgram, x: np.ndarray) -> float:
    """Largest violation of a row or column bound (and of integrality) by ``x``, relative
    to the size of the bound: ``max(0, lhs - rhs) / max(1, |rhs|)``."""
    if x.size != lp.num_cols or not np.all(np.isfinite(x)):
        return math.inf
    act = lp.A @ x if lp.num_rows else np.zeros(0)

    def rel(over: np.ndarray, rhs: np.ndarray) -> float:
        with np.errstate(invalid="ignore"):
            v = np.where(np.isfinite(rhs), np.maximum(over, 0.0) / np.maximum(1.0, np.abs(rhs)), 0)
        return float(v.max(initial=0.0))

    worst = max(
        rel(act - lp.row_upper, lp.row_upper),
        rel(lp.row_lower - act, lp.row_lower),
        rel(x - lp.col_upper, lp.col_upper),
        rel(lp.col_lower - x, lp.col_lower),
    )
    if lp.integrality is not None:
        xi = x[lp.integrality]
        worst = max(worst, float(np.abs(xi - np.round(xi)).max(initial=0.0)))
    return worst


def stationarity_error(
    lp: LinearProgram, row_dual: np.ndarray, col_dual: np.ndarray | None
) -> float:
    """How far duals in maximisation sign are from ``c = A' y + d``, relative per column
    to the size of its terms. Near 0 for duals in the right sign; a dual vector of the wrong
    sign (a solver convention not normalised) gives about 2 on every column with a cost."""
    if col_dual is None or lp.num_cols == 0:
        return 0.0
    aty = lp.A.T @ row_dual if lp.num_rows else np.zeros(lp.num_cols)
    scale = np.maximum.reduce(
        [
            np.ones(lp.num_cols),
            np.abs(lp.c),
            abs(lp.A).T @ np.abs(row_dual) if lp.num_rows else np.zeros(lp.num_cols),
            np.abs(col_dual),
        ]
    )
    return float((np.abs(lp.c - aty - col_dual) / scale).max(initial=0.0))
