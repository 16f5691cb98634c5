"""Fair shares: a max-min fair floor of served demand before surplus goes by value.

Each *entity* (every segment, the segments of one kind, or every kind) gets a weighted
share of its demand served, max-min fair in the style of Gavel's policy, as a
**fairness floor** in two LPs:

1. **The floor.** The scenario's LP with its objective replaced by Σ_t z_t and, for every
   entity i and period t with demand, the row
   ``fair-share[i,t]:  Σ_{s in i} q[s,t] ≥ w_i · z_t · D[i,t]``  (q served work units):
   z*_t is the largest least weighted served share in period t that the fleet, the
   contracts and every policy allow, with ``0 <= z_t <= 1 / max_i w_i`` (the smallest
   1/weight: the heaviest entity's floor, w_i · z_t, is then at most all its demand); a
   period where no entity has demand has z*_t = 0.
2. **Value with the floor.** The scenario's own objective with the rows
   ``Σ_{s in i} q[s,t] ≥ w_i · z*_t · D[i,t]`` (the floor, less a 1e-7 tolerance):
   whatever the floor leaves goes where it earns most. Their duals (binding table,
   ``fair-share``) are what the floor costs per work unit. The ``floor`` reported is the
   one the plan meets: z*_t, or the plan's least weighted served share where the
   tolerance left it below z*_t (by at most 1e-7 relative).

The **price of fairness** is the objective lost against the unconstrained optimum
(present value, and as a share of it). Rows of step 2 each belong to one period, so the
default period split solves it as any scenario; step 1's z columns are not scenario
columns, so its LP is solved whole (then the stability rows as they bind).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import InfeasibleError, NumericalError, Status
from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays
from allocator.lp.build import build_lp
from allocator.lp.program import RowBlock
from allocator.plan import Plan
from allocator.scenario import Kind, Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solution, Solver
from allocator.solvers.registry import make_solver

BY = ("segment", "kind")
FLOOR_TOL = 1e-7  # relative slack on the floor in step 2, so rounding cannot make it infeasible


@dataclass
class FairResult:
    """The fair plan, the floor per period and what it cost."""

    plan: Plan  # value maximised above the fairness floor
    by: str
    entities: list[str]
    weights: list[float]
    floor: list[float]  # z*_t: the least weighted served share, per period
    shares: dict[str, list[float]]  # served share of demand per entity and period (fair plan)
    unconstrained_shares: dict[str, list[float]]
    unconstrained_objective: float
    fair_objective: float
    time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    lp: LinearProgram | None = field(default=None, repr=False)  # step 2's LP, for checks
    solution: Solution | None = field(default=None, repr=False)  # and its solution

    @property
    def price_of_fairness(self) -> float:
        """Objective lost against the unconstrained optimum (present value, ≥ 0)."""
        return self.unconstrained_objective - self.fair_objective

    @property
    def price_of_fairness_share(self) -> float | None:
        base = abs(self.unconstrained_objective)
        return None if base == 0 else self.price_of_fairness / base

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "entities": [
                {
                    "id": e,
                    "weight": w,
                    "served_share": self.shares[e],
                    "unconstrained_served_share": self.unconstrained_shares[e],
                }
                for e, w in zip(self.entities, self.weights, strict=True)
            ],
            "periods": self.plan.periods,
            "floor": self.floor,
            "unconstrained_objective": self.unconstrained_objective,
            "fair_objective": self.fair_objective,
            "price_of_fairness": self.price_of_fairness,
            "price_of_fairness_share": self.price_of_fairness_share,
            "time_s": self.time_s,
            "plan": self.plan.to_dict(),
        }


def _entities(
    sc: Scenario, by: str, kind: str | None, weights: Mapping[str, float] | None
) -> tuple[list[str], np.ndarray, list[float]]:
    """Entity ids, the (E, S) membership matrix, and each entity's weight."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    kinds = [k.value for k in KINDS]
    if kind is not None and kind not in kinds:
        raise ValueError(f"unknown kind {kind!r} (kinds: {', '.join(kinds)})")
    if by == "segment":
        ids = [s.id for s in sc.segments if kind is None or s.kind.value == kind]
        member = np.array([[s.id == e for s in sc.segments] for e in ids], dtype=bool)
    else:
        ids = [k for k in kinds if any(s.kind.value == k for s in sc.segments)]
        if kind is not None:
            raise ValueError("kind= picks the segments of one kind: use it with by='segment'")
        member = np.array([[s.kind.value == e for s in sc.segments] for e in ids], dtype=bool)
    w = dict(weights or {})
    unknown = sorted(set(w) - set(ids))
    if unknown:
        raise ValueError(
            f"weights name unknown {by}s: {', '.join(unknown)} (have: {', '.join(ids)})"
        )
    bad = [e for e, v in w.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"weights must be positive numbers: {', '.join(bad)}")
    if not ids:
        raise ValueError(f"no segment of kind {kind!r}")
    return ids, member.reshape(len(ids), len(sc.segments)), [float(w.get(e, 1.0)) for e in ids]


def _served_matrix(lp: LinearProgram, member: np.ndarray, T: int) -> sp.csr_matrix:
    """(E·T, n_cols): row e·T + t sums the work units served to entity e in period t."""
    c = lp.columns
    scale = np.ones(c.n_x) if lp.col_scale is None else lp.col_scale[: c.n_x]
    ent, col = np.nonzero(member[:, c.x_segment])
    rows = ent * T + c.x_period[col]
    vals = c.x_units_per_gpu[col] * scale[col]
    return sp.csr_matrix((vals, (rows, col)), shape=(member.shape[0] * T, lp.num_cols))


def _with_rows(
    lp: LinearProgram,
    R: sp.csr_matrix,
    lower: np.ndarray,
    keys: dict[str, np.ndarray],
) -> LinearProgram:
    m0 = lp.num_rows
    block = RowBlock(
        "fair-share",
        m0,
        m0 + R.shape[0],
        keys,
        "fair-share[i,t]: sum_{s in i} q[s,t] >= w_i * floor_t * demand[i,t]",
    )
    return replace(
        lp,
        A=sp.vstack([lp.A, R]).tocsr(),
        row_lower=np.concatenate([lp.row_lower, lower]),
        row_upper=np.concatenate([lp.row_upper, np.full(R.shape[0], np.inf)]),
        blocks=[*lp.blocks, block],
        warnings=list(lp.warnings),
    )


def _check(sol: Solution, sc: Scenario, what: str) -> None:
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sol.x is not None:
        return
    if sol.status is Status.INFEASIBLE:
        raise InfeasibleError(f"scenario {sc.name!r} ({what}): {sol.message}")
    raise NumericalError(f"scenario {sc.name!r} ({what}): {sol.status.value}: {sol.message}")


def fair_solve(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    *,
    by: str = "segment",
    kind: str | None = None,
    weights: Mapping[str, float] | None = None,
    solver: Solver | None = None,
    time_limit: float | None = None,
) -> FairResult:
    """The max-min fair floor of served demand, then the best plan above it (module
    docstring). ``by="segment"`` makes each segment an entity (only those of ``kind`` when
    given), ``by="kind"`` each kind; ``weights`` {entity id: weight > 0}, 1 by default:
    a weight-2 entity is guaranteed twice the share of a weight-1 one."""
    t0 = time.perf_counter()
    sc = as_scenario(scenario)
    ids, member, w = _entities(sc, by, kind, weights)
    backend = solver or make_solver("highs", None)
    lp = build_lp(sc)
    arr = ScenarioArrays.of(sc)
    T = len(sc.periods)
    E = len(ids)
    demand = (member.astype(float) @ arr.demand).ravel()  # (E·T,)
    Q = _served_matrix(lp, member, T)
    has = demand > 0
    rows = np.nonzero(has)[0]
    ent_key, per_key = np.divmod(rows, T)
    key_name = "segment" if by == "segment" else "kind"
    key_index = (
        np.array([[s.id for s in sc.segments].index(e) for e in ids])
        if by == "segment"
        else np.array([[k.value for k in KINDS].index(e) for e in ids])
    )
    keys = {key_name: key_index[ent_key], "period": per_key}
    weight = np.repeat(np.asarray(w), T)[rows]

    # 1. the floor: maximise sum_t z_t subject to Q x - w D z_t >= 0
    n0 = lp.num_cols
    Z = sp.csr_matrix(
        (-weight * demand[rows], (np.arange(rows.size), n0 + per_key)), shape=(rows.size, n0 + T)
    )
    R1 = (sp.hstack([Q[rows], sp.csr_matrix((rows.size, T))]) + Z).tocsr()
    wide = replace(
        lp,
        A=sp.hstack([lp.A, sp.csr_matrix((lp.num_rows, T))]).tocsr(),
        c=np.concatenate([np.zeros(n0), np.ones(T)]),
        offset=0.0,
        col_lower=np.concatenate([lp.col_lower, np.zeros(T)]),
        col_upper=np.concatenate([lp.col_upper, np.full(T, 1.0 / max(w))]),
        integrality=None
        if lp.integrality is None
        else np.concatenate([lp.integrality, np.zeros(T, dtype=bool)]),
        col_scale=None if lp.col_scale is None else np.concatenate([lp.col_scale, np.ones(T)]),
        warnings=list(lp.warnings),
    )
    floor_lp = _with_rows(wide, R1, np.zeros(rows.size), keys)
    first = backend.solve(floor_lp, time_limit=time_limit)
    _check(first, sc, "the fairness floor")
    assert first.x is not None
    z = np.clip(first.x[n0:], 0.0, None)
    # periods where no entity has demand have no floor
    z[~np.isin(np.arange(T), per_key)] = 0.0

    # 2. value above the floor
    need = weight * z[per_key] * demand[rows]
    need = np.maximum(need * (1 - FLOOR_TOL) - FLOOR_TOL, 0.0)
    fair_lp = _with_rows(lp, Q[rows], need, keys)
    fair = backend.solve(fair_lp, time_limit=time_limit)
    _check(fair, sc, "the plan above the fairness floor")
    free = backend.solve(lp, time_limit=time_limit)
    _check(free, sc, "the unconstrained plan")
    assert fair.x is not None and free.x is not None
    plan = Plan.from_solution(sc, fair_lp, fair, build_time_s=0.0, arrays=arr)

    def shares(x: np.ndarray) -> dict[str, list[float]]:
        served = Q @ x
        s = np.where(has, served / np.where(has, demand, 1.0), 1.0).reshape(E, T)
        return {e: [float(v) for v in s[i]] for i, e in enumerate(ids)}

    # the floor the plan meets: z*_t, or the least weighted served share when the
    # tolerance left the plan a hair below it
    met = np.full(T, np.inf)
    np.minimum.at(met, per_key, (Q[rows] @ fair.x) / (weight * demand[rows]))
    floor = np.where(np.isfinite(met), np.minimum(z, np.maximum(met, 0.0)), z)

    return FairResult(
        plan=plan,
        by=by,
        entities=ids,
        weights=w,
        floor=[float(v) for v in floor],
        shares=shares(fair.x),
        unconstrained_shares=shares(free.x),
        unconstrained_objective=float(lp.objective(free.x)),
        fair_objective=float(plan.objective),
        time_s=time.perf_counter() - t0,
        extra={"kind": Kind(kind).value if kind else None},
        lp=fair_lp,
        solution=fair,
    )
