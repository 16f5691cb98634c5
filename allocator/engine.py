"""solve(): scenario -> LP -> solver -> Plan, with every outcome in one status vocabulary."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from allocator.errors import (
    AllocatorWarning,
    InfeasibleError,
    NumericalError,
    Status,
    TimeLimitError,
    UnboundedError,
)
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solver
from allocator.solvers.registry import BACKENDS, make_solver
from allocator.solvers.stable import solve_stable

__all__ = ["BACKENDS", "as_scenario", "make_solver", "solve"]


def solve(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    *,
    time_limit: float | None = None,
    algorithm: str = "auto",
    backend: str = "highs",
    solver: str | Solver | None = None,
    mip_gap: float | None = None,
    diagnose: bool = True,
    progress: Callable[[str], None] | None = None,
    stable: bool | None = None,
) -> Plan:
    """Plan the fleet for ``scenario`` (a Scenario, a dict, or a JSON file path).

    Returns a :class:`Plan` when the solver holds a feasible plan (status ``optimal``, or
    ``time_limit`` when the limit stopped it early). Raises
    :class:`~allocator.errors.ScenarioError` for invalid input,
    :class:`~allocator.errors.InfeasibleError` when hard requirements conflict,
    :class:`~allocator.errors.TimeLimitError` when no feasible plan was found in time,
    :class:`~allocator.errors.UnboundedError` or :class:`~allocator.errors.NumericalError`
    otherwise. ``algorithm`` is HiGHS' (``auto``, ``simplex``, ``ipm``, ``pdlp``).

    ``backend="pulp"`` solves the same model through PuLP with the solver named by
    ``solver`` (``"CBC"`` by default, ``"HiGHS"``, ``"GUROBI"``, ``"CPLEX"`` …; see
    :func:`make_solver`); ``solver`` may also be a ready :class:`Solver` instance.
    ``mip_gap`` is the relative gap at which a MILP (a pool with ``allocation_unit_gpus``)
    stops, 1e-4 by default. When the scenario is infeasible and ``diagnose`` is true, the
    :class:`InfeasibleError` says which requirements conflict, in domain words, and carries
    the smallest relaxation (``exc.diagnosis``; a few extra LP solves). ``progress``, if
    given, is called with a line for each phase (building, solving, each round of the
    row generation, reading out).

    ``stable`` (``None``: the scenario's ``policy.stable``) adds a second solve: among the
    plans within ``policy.stable_tolerance`` of the optimum, the one that moves the fewest
    GPUs between consecutive periods (docs/stable-plans.md). Its shadow prices are the
    first solve's; it gets what is left of ``time_limit`` (at least a tenth of it).
    """
    if time_limit is not None and not time_limit >= 0:
        raise ValueError(f"time_limit must be a number of seconds >= 0, got {time_limit!r}")
    if isinstance(solver, Solver):
        if mip_gap is not None or algorithm != "auto":
            raise ValueError("pass mip_gap and algorithm to the Solver instance itself")
        backend_solver = solver
    else:
        backend_solver = make_solver(backend, solver, algorithm=algorithm, mip_gap=mip_gap)
        if progress is not None:
            backend_solver.progress = progress
    report = progress or _silent
    sc = as_scenario(scenario)
    report(f"building the LP of {sc.name!r}")
    t0 = time.perf_counter()
    arrays = ScenarioArrays.of(sc)
    lp = build_lp(sc, arrays)
    build_time = time.perf_counter() - t0
    for w in lp.warnings:
        warnings.warn(w, AllocatorWarning, stacklevel=2)
    t_solve = time.perf_counter()
    sol = backend_solver.solve(lp, time_limit=time_limit)
    if (sc.policy.stable if stable is None else stable) and sol.status is Status.OPTIMAL:
        report("stable plan: fewest GPUs moved near the optimum")
        left = _time_left(time_limit, t_solve)
        sol = solve_stable(backend_solver, lp, sol, len(sc.pools), sc.policy.stable_tolerance, left)
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT):
        report("reading out the plan")
        return Plan.from_solution(sc, lp, sol, build_time_s=build_time, arrays=arrays)
    where = f"scenario {sc.name!r}: "
    if sol.status is Status.INFEASIBLE:
        units = (
            ", or whole allocation units (allocation_unit_gpus) that cannot meet them"
            if lp.is_mip
            else ""
        )
        generic = (
            where
            + sol.message
            + " (check hard contract minimums, the R&D floor, kind floors and the stability "
            f"limit against the capacity of the pools that can serve them{units})"
        )
        if diagnose:
            report("infeasible: finding the conflicting requirements")
        diagnosis = _diagnose(sc) if diagnose else None
        if diagnosis is not None and not diagnosis.feasible:
            raise InfeasibleError(diagnosis.message, diagnosis)
        raise InfeasibleError(generic, diagnosis)
    if sol.status is Status.TIME_LIMIT_NO_SOLUTION:
        limit = f" ({time_limit:g} s)" if time_limit is not None else ""
        raise TimeLimitError(where + sol.message + limit)
    if sol.status is Status.UNBOUNDED:
        raise UnboundedError(where + sol.message)
    raise NumericalError(where + sol.message)


def _time_left(time_limit: float | None, t0: float) -> float | None:
    """What the stable plan's second solve may take: what is left of ``time_limit`` since
    ``t0``, and at least a tenth of it (None: no limit)."""
    if time_limit is None:
        return None
    return max(time_limit - (time.perf_counter() - t0), 0.1 * time_limit)


def _silent(_: str) -> None:
    """No progress asked for."""


def _diagnose(sc: Scenario) -> Any:
    """The infeasibility diagnosis, or None if it cannot be computed (never hides the
    original error)."""
    from allocator.analysis.infeasibility import diagnose

    try:
        return diagnose(sc)
    except Exception:  # the diagnosis is a courtesy: the solve's own error still stands
        return None
