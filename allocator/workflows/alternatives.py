"""Near-optimal alternatives: modelling to generate alternatives (MGA), in the style of
PyPSA's ``optimize_mga``.

Solve the scenario's LP for its optimum V*, then add the row

  ``near-optimal:  c·x + offset ≥ V* − slack·|V*|``

(every plan within ``slack`` of the optimal objective) and, for each named quantity g
(GPU-hours over the horizon to a kind, a segment, a region, an accelerator type or a
pool, or GPU-hours rented), minimise and then maximise g over that set: the range each
quantity can take at that slack, with the plan at each end and every other quantity's
value there (what moves with it). The near-optimal row spans every period, so these
LPs do not split by period: the default solver solves each relaxation whole and adds the
stability rows lazily as they bind (measured, two quantities at 1 %: 9.4 s against 11.5 s
for HiGHS dual simplex on the whole LP at 200 segments x 8 pools x 13 periods; 0.46 s
against 0.65 s on data/hyperscaler.json).

A quantity is ``kind:K``, ``segment:S``, ``region:R``, ``accelerator:A`` (the fleet's
stand-in for a vendor: pools carry an accelerator type, not a vendor), ``pool:P``, or
``rentals`` / ``rentals:P`` (rented GPU-hours, of every pool or one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import InfeasibleError, NumericalError, Status
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.lp.program import RowBlock
from allocator.numbers import short
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solution, Solver
from allocator.solvers.registry import make_solver

DIMENSIONS = ("kind", "segment", "region", "accelerator", "pool", "rentals")
MAX_SLACK = 1.0


@dataclass
class End:
    """One end of a quantity's range: its value, the plan's objective, every quantity."""

    value: float  # GPU-hours
    objective: float
    values: dict[str, float]  # every quantity at this plan (GPU-hours)
    plan: Plan | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "objective": self.objective, "values": self.values}


@dataclass
class Alternative:
    """The range of one quantity over the plans within the slack."""

    quantity: str
    optimal: float  # its value in the optimal plan
    min: End
    max: End

    def to_dict(self, hours: float) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "unit": "GPU-hours",
            "optimal": self.optimal,
            "min": self.min.to_dict(),
            "max": self.max.to_dict(),
            "range": [self.min.value, self.max.value],
            "range_avg_gpus": [self.min.value / hours, self.max.value / hours],
        }


@dataclass
class AlternativesResult:
    slack: float
    optimum: float
    floor: float  # the least objective allowed: optimum - slack * |optimum|
    hours: float  # hours of the horizon (GPU-hours / hours = average GPUs)
    alternatives: list[Alternative]
    plan: Plan = field(repr=False)  # the optimal plan
    time_s: float = 0.0
    # the near-optimal LPs and their solutions, (quantity, "min"|"max") -> (lp, solution)
    solved: dict[tuple[str, str], tuple[LinearProgram, Solution]] = field(
        default_factory=dict, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slack": self.slack,
            "optimum": self.optimum,
            "objective_floor": self.floor,
            "horizon_hours": self.hours,
            "alternatives": [a.to_dict(self.hours) for a in self.alternatives],
            "time_s": self.time_s,
        }


def parse_vary(items: Sequence[str] | str) -> list[str]:
    """``"kind:cloud,region:eastus"`` or a list of such: the quantity names, checked."""
    raw = [items] if isinstance(items, str) else list(items)
    out: list[str] = []
    for item in raw:
        for q in str(item).split(","):
            q = q.strip()
            if not q:
                continue
            dim, _, target = q.partition(":")
            if dim not in DIMENSIONS or (dim != "rentals" and not target):
                raise ValueError(
                    f"unknown quantity {q!r}: use kind:K, segment:S, region:R, accelerator:A, "
                    "pool:P, rentals or rentals:P"
                )
            if q not in out:
                out.append(q)
    if not out:
        raise ValueError("name at least one quantity to vary (e.g. kind:cloud)")
    return out


def quantity_vector(sc: Scenario, lp: LinearProgram, arr: ScenarioArrays, q: str) -> np.ndarray:
    """g with g·x = the quantity's GPU-hours over the horizon (x in the LP's column units)."""
    dim, _, target = q.partition(":")
    c = lp.columns
    g = np.zeros(lp.num_cols)
    pools, segs = sc.pools, sc.segments
    if dim == "rentals":
        ok = np.ones(c.n_r, dtype=bool)
        if target:
            ids = [p.id for p in pools]
            if target not in ids:
                raise ValueError(f"unknown pool {target!r} in {q!r}")
            ok = c.r_pool == ids.index(target)
        g[c.r_offset : c.r_offset + c.n_r] = np.where(ok, arr.hours[c.r_period], 0.0)
        return g
    seg_of = {
        "kind": np.array([s.kind.value == target for s in segs]),
        "segment": np.array([s.id == target for s in segs]),
    }
    pool_of = {
        "region": np.array([p.region == target for p in pools]),
        "accelerator": np.array([p.accelerator == target for p in pools]),
        "pool": np.array([p.id == target for p in pools]),
    }
    if dim in seg_of:
        mask = seg_of[dim]
        if not mask.any():
            raise ValueError(f"no segment matches {q!r}")
        x_ok, k_ok = mask[c.x_segment], mask[c.rsv_segment]
    else:
        mask = pool_of[dim]
        if not mask.any():
            raise ValueError(f"no pool matches {q!r}")
        x_ok, k_ok = mask[c.x_pool], mask[c.rsv_pool]
    scale = np.ones(c.n_x) if lp.col_scale is None else lp.col_scale[: c.n_x]
    g[: c.n_x] = np.where(x_ok, arr.hours[c.x_period] * scale, 0.0)
    g[c.rsv_offset : c.rsv_offset + c.n_rsv] = np.where(k_ok, arr.hours[c.rsv_period], 0.0)
    return g


def _check(sol: Solution, sc: Scenario, what: str) -> None:
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sol.x is not None:
        return
    if sol.status is Status.INFEASIBLE:
        raise InfeasibleError(f"scenario {sc.name!r} ({what}): {sol.message}")
    raise NumericalError(f"scenario {sc.name!r} ({what}): {sol.status.value}: {sol.message}")


def alternatives(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    vary: Sequence[str] | str,
    *,
    slack: float = 0.01,
    solver: Solver | None = None,
    time_limit: float | None = None,
    keep_plans: bool = False,
) -> AlternativesResult:
    """The range of each quantity in ``vary`` over the plans whose objective is within
    ``slack`` (a share of |optimum|, 0.01 = 1 %) of the optimum (module docstring).
    ``keep_plans`` keeps each end's whole plan (``End.plan``)."""
    if not (isinstance(slack, int | float) and 0 <= slack <= MAX_SLACK):
        raise ValueError(
            f"slack must be a share of the optimum in [0, {short(MAX_SLACK)}], got {slack!r}"
        )
    t0 = time.perf_counter()
    sc = as_scenario(scenario)
    names = parse_vary(vary)
    lp = build_lp(sc)
    arr = ScenarioArrays.of(sc)
    G = {q: quantity_vector(sc, lp, arr, q) for q in names}
    first = (solver or make_solver("highs", None)).solve(lp, time_limit=time_limit)
    _check(first, sc, "the optimum")
    assert first.x is not None
    optimum = float(lp.objective(first.x))
    plan = Plan.from_solution(sc, lp, first, arrays=arr)
    floor = optimum - slack * abs(optimum)
    # a hair of the solver's tolerance below the floor, so the optimum itself stays inside
    tol = 1e-9 * max(1.0, abs(optimum))
    m0 = lp.num_rows
    near = replace(
        lp,
        A=sp.vstack([lp.A, sp.csr_matrix(lp.c.reshape(1, -1))]).tocsr(),
        row_lower=np.concatenate([lp.row_lower, [floor - lp.offset - tol]]),
        row_upper=np.concatenate([lp.row_upper, [np.inf]]),
        blocks=[
            *lp.blocks,
            RowBlock(
                "near-optimal", m0, m0 + 1, {}, "near-optimal: c.x + offset >= V* - slack|V*|"
            ),
        ],
        warnings=list(lp.warnings),
    )
    backend = solver or make_solver("highs", None)
    result = AlternativesResult(slack, optimum, floor, float(arr.hours.sum()), [], plan)
    for q in names:
        ends = {}
        for sense, sign in (("min", -1.0), ("max", 1.0)):
            mga = replace(near, c=sign * G[q], offset=0.0, warnings=list(lp.warnings))
            sol = backend.solve(mga, time_limit=time_limit)
            _check(sol, sc, f"the {sense} of {q}")
            assert sol.x is not None
            result.solved[(q, sense)] = (mga, sol)
            x = sol.x
            end_plan = None
            if keep_plans:
                as_plan = replace(
                    sol, row_dual=None, col_dual=None, objective=float(lp.objective(x))
                )
                end_plan = Plan.from_solution(sc, near, as_plan, arrays=arr)
            ends[sense] = End(
                value=float(G[q] @ x),
                objective=float(lp.objective(x)),
                values={n: float(G[n] @ x) for n in names},
                plan=end_plan,
            )
        result.alternatives.append(Alternative(q, float(G[q] @ first.x), ends["min"], ends["max"]))
    result.time_s = time.perf_counter() - t0
    return result
