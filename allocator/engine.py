"""solve(): scenario -> LP -> solver -> Plan, with every outcome in one status vocabulary."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .build import ScenarioArrays, build_lp
from .errors import (
    AllocatorWarning,
    InfeasibleError,
    NumericalError,
    Status,
    TimeLimitError,
    UnboundedError,
)
from .plan import Plan
from .scenario import Scenario
from .solvers.base import Solver
from .solvers.highs import HighsSolver


def as_scenario(scenario: Scenario | Mapping[str, Any] | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(dict(scenario))
    return Scenario.from_file(scenario)


def solve(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    *,
    time_limit: float | None = None,
    algorithm: str = "auto",
    solver: Solver | None = None,
) -> Plan:
    """Plan the fleet for ``scenario`` (a Scenario, a dict, or a JSON file path).

    Returns a :class:`Plan` when the solver holds a feasible plan (status ``optimal``, or
    ``time_limit`` when the limit stopped it early). Raises
    :class:`~allocator.errors.ScenarioError` for invalid input,
    :class:`~allocator.errors.InfeasibleError` when hard requirements conflict,
    :class:`~allocator.errors.TimeLimitError` when no feasible plan was found in time,
    :class:`~allocator.errors.UnboundedError` or :class:`~allocator.errors.NumericalError`
    otherwise. ``algorithm`` is HiGHS' (``auto``, ``simplex``, ``ipm``, ``pdlp``).
    """
    sc = as_scenario(scenario)
    t0 = time.perf_counter()
    arrays = ScenarioArrays.of(sc)
    lp = build_lp(sc)
    build_time = time.perf_counter() - t0
    for w in lp.warnings:
        warnings.warn(w, AllocatorWarning, stacklevel=2)
    backend = solver or HighsSolver(algorithm=algorithm)
    sol = backend.solve(lp, time_limit=time_limit)
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT):
        return Plan.from_solution(sc, lp, sol, build_time_s=build_time, arrays=arrays)
    where = f"scenario {sc.name!r}: "
    if sol.status is Status.INFEASIBLE:
        raise InfeasibleError(
            where
            + sol.message
            + " (check hard contract minimums, the R&D floor, kind floors and the stability "
            "limit against the capacity of the pools that can serve them)"
        )
    if sol.status is Status.TIME_LIMIT_NO_SOLUTION:
        raise TimeLimitError(where + sol.message + f" ({time_limit} s)")
    if sol.status is Status.UNBOUNDED:
        raise UnboundedError(where + sol.message)
    raise NumericalError(where + sol.message)
