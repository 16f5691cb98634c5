"""Rolling horizon: re-plan from what is running now, paying for every GPU moved.

Given the current allocation ``C[s,p]`` (GPUs of pool *p* serving segment *s* now) and a
scenario with new demand figures, the scenario's LP (``build_lp``, unchanged) is extended
at the end of its column vector and row list with, for every pair (s, p) with
``C[s,p] > 0``:

* ``m[s,p]`` in [0, C[s,p]]: GPUs taken away from segment *s* on pool *p* in the first
  period, objective coefficient ``-migration_cost`` (per GPU moved, money of the first
  period, which is not discounted);
* ``h[s,p]`` in [0, C[s,p]]: GPUs left with *s* but idle (its demand fell); free, but they
  still occupy the pool: ``h`` enters the first period's ``pool-capacity`` row;
* the row ``current-allocation[s,p]``:  sum_mode x[s,mode,p,t0] + h[s,p] + m[s,p] >= C[s,p].

So a GPU counts as moved when it is taken from its segment to serve another one (or to
make room for one); a GPU whose segment no longer needs it may stay idle where it is at no
charge. Moves into a segment cost nothing of their own: each is the other end of a move
out, or a GPU that was idle. The **keep** baseline is the same model with ``m = 0``: every
GPU stays with its current segment in the first period (later periods are free in both).
The margin gained by moving is ``objective(replan) - objective(keep)``, both net of
migration cost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import InfeasibleError, SolveError, Status
from allocator.lp import LinearProgram, RowBlock
from allocator.lp.build import build_lp
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solver
from allocator.solvers.registry import HighsSolver

BLOCK = "current-allocation"


@dataclass(frozen=True)
class Move:
    """One (segment, pool) pair in the first period: GPUs now, GPUs in the new plan, GPUs
    taken away (charged), GPUs left idle with the segment (free)."""

    segment: str
    pool: str
    current_gpus: float
    new_gpus: float
    moved_gpus: float
    held_idle_gpus: float

    @property
    def change(self) -> float:
        return self.new_gpus - self.current_gpus


@dataclass
class ReplanResult:
    plan: Plan  # the re-plan; its objective is net of migration cost
    migration_cost_per_gpu: float
    gpus_moved: float
    migration_cost: float  # total paid, first period's money
    objective: float  # net of migration cost (= plan.objective)
    keep_plan: Plan | None  # the plan with every current GPU kept in period 1
    keep_objective: float | None
    margin_gained: float | None  # objective - keep_objective
    moves: list[Move] = field(default_factory=list)
    keep_reason: str = ""  # why there is no keep plan

    def to_dict(self) -> dict[str, Any]:
        return {
            "migration_cost_per_gpu": self.migration_cost_per_gpu,
            "gpus_moved": self.gpus_moved,
            "migration_cost": self.migration_cost,
            "objective": self.objective,
            "keep_objective": self.keep_objective,
            "margin_gained": self.margin_gained,
            "keep_reason": self.keep_reason,
            "moves": [asdict(m) | {"change": m.change} for m in self.moves],
            "plan": self.plan.to_dict(),
        }


# ----------------------------------------------------------------------------- input
def read_current(
    data: Mapping[str, Any] | str | Path, period: str | None = None
) -> dict[str, dict[str, float]]:
    """The current allocation ``{segment: {pool: gpus}}`` from a JSON file or data: either
    that mapping itself, or a plan (``Plan.to_dict()``, ``allocator solve --json``) whose
    allocations in ``period`` (default: its first period) are summed over serving modes."""
    if not isinstance(data, Mapping):
        import json

        data = json.loads(Path(data).read_text(encoding="utf-8"))
    assert isinstance(data, Mapping)
    if "allocations" in data:
        periods = list(data.get("periods") or [])
        label = period if period is not None else (periods[0] if periods else None)
        if period is not None and periods and period not in periods:
            raise ValueError(f"period {period!r} is not in the plan (it has {periods})")
        out: dict[str, dict[str, float]] = {}
        for a in data["allocations"]:
            if label is None or a["period"] == label:
                pools = out.setdefault(a["segment"], {})
                pools[a["pool"]] = pools.get(a["pool"], 0.0) + float(a["gpus"])
        return out
    out = {}
    for seg, pools in data.items():
        if not isinstance(pools, Mapping):
            raise ValueError(f"current allocation of {seg!r} must be {{pool: gpus}}")
        out[str(seg)] = {str(p): float(g) for p, g in pools.items()}
    return out


def current_matrix(sc: Scenario, current: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """``current`` as an (S, P) array of GPUs; ``ValueError`` naming unknown ids or bad
    amounts."""
    seg_ix = {s.id: i for i, s in enumerate(sc.segments)}
    pool_ix = {p.id: j for j, p in enumerate(sc.pools)}
    out = np.zeros((len(seg_ix), len(pool_ix)))
    problems = []
    for seg, pools in current.items():
        if seg not in seg_ix:
            problems.append(f"unknown segment {seg!r}")
            continue
        for pool, gpus in pools.items():
            if pool not in pool_ix:
                problems.append(f"{seg}: unknown pool {pool!r}")
            elif not (np.isfinite(gpus) and gpus >= 0):
                problems.append(f"{seg}.{pool}: GPUs must be a finite number >= 0, got {gpus}")
            else:
                out[seg_ix[seg], pool_ix[pool]] += gpus
    if problems:
        raise ValueError("current allocation: " + "; ".join(problems))
    return out


# ----------------------------------------------------------------------------- model
@dataclass(frozen=True)
class MigrationColumns:
    """Where the extension sits in the extended LP."""

    segment: np.ndarray  # (K,) segment index of each pair
    pool: np.ndarray  # (K,) pool index
    current: np.ndarray  # (K,) GPUs now
    m_offset: int  # m columns: m_offset .. m_offset + K
    h_offset: int  # h columns: h_offset .. h_offset + K

    @property
    def size(self) -> int:
        return int(self.segment.size)


def extend_with_migration(
    lp: LinearProgram, current: np.ndarray, migration_cost: float, *, keep: bool = False
) -> tuple[LinearProgram, MigrationColumns]:
    """``lp`` with the move (``m``) and held-idle (``h``) columns appended after every
    existing column, and the ``current-allocation`` rows after every existing row (see the
    module docstring). ``keep=True`` fixes ``m = 0``. The first ``lp.num_cols`` columns
    and ``lp.num_rows`` rows are those of ``lp``, so Plan.from_solution reads the extended
    solution as it reads the original one."""
    cols = lp.columns
    S, P = current.shape
    seg, pool = np.nonzero(current > 0)
    K = int(seg.size)
    cur = current[seg, pool]
    n0, r0 = lp.num_cols, lp.num_rows
    pair = np.full((S, P), -1, dtype=np.int64)
    pair[seg, pool] = np.arange(K)

    # x in the first period of a current pair: coefficient = GPUs per column unit
    xj = np.nonzero(cols.x_period == 0)[0]
    k_of_x = pair[cols.x_segment[xj], cols.x_pool[xj]]
    xj, k_of_x = xj[k_of_x >= 0], k_of_x[k_of_x >= 0]
    scale = np.ones(n0) if lp.col_scale is None else lp.col_scale
    new_rows = [r0 + k_of_x, r0 + np.arange(K), r0 + np.arange(K)]
    new_cols = [xj, n0 + np.arange(K), n0 + K + np.arange(K)]
    new_vals = [scale[xj], np.ones(K), np.ones(K)]

    # h occupies its pool in the first period
    cap = lp.block("pool-capacity")
    if cap is not None and K:
        first = np.nonzero(cap.keys["period"] == 0)[0]
        row_of_pool = np.full(P, -1, dtype=np.int64)
        row_of_pool[cap.keys["pool"][first]] = cap.start + first
        rows_h = row_of_pool[pool]
        ok = rows_h >= 0
        new_rows.append(rows_h[ok])
        new_cols.append(n0 + K + np.arange(K)[ok])
        new_vals.append(np.ones(int(ok.sum())))

    old = lp.A.tocoo()
    A = sp.csr_matrix(
        (
            np.concatenate([old.data, *new_vals]),
            (
                np.concatenate([old.row, *new_rows]),
                np.concatenate([old.col, *new_cols]),
            ),
        ),
        shape=(r0 + K, n0 + 2 * K),
    )
    upper_m = np.zeros(K) if keep else cur
    ext = replace(
        lp,
        c=np.concatenate([lp.c, np.full(K, -float(migration_cost)), np.zeros(K)]),
        A=A,
        row_lower=np.concatenate([lp.row_lower, cur]),
        row_upper=np.concatenate([lp.row_upper, np.full(K, np.inf)]),
        col_lower=np.concatenate([lp.col_lower, np.zeros(2 * K)]),
        col_upper=np.concatenate([lp.col_upper, upper_m, cur]),
        blocks=[
            *lp.blocks,
            RowBlock(
                BLOCK,
                r0,
                r0 + K,
                {"segment": seg, "pool": pool},
                "sum_mode x[s,mode,p,t0] + h[s,p] + m[s,p] >= current[s,p]",
            ),
        ],
        integrality=None
        if lp.integrality is None
        else np.concatenate([lp.integrality, np.zeros(2 * K, dtype=bool)]),
        col_scale=None if lp.col_scale is None else np.concatenate([lp.col_scale, np.ones(2 * K)]),
        warnings=list(lp.warnings),
    )
    return ext, MigrationColumns(seg, pool, cur, n0, n0 + K)


def _solve(
    sc: Scenario, lp: LinearProgram, solver: Solver, time_limit: float | None
) -> tuple[Plan, np.ndarray]:
    t0 = time.perf_counter()
    sol = solver.solve(lp, time_limit=time_limit)
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sol.x is not None:
        plan = Plan.from_solution(sc, lp, sol, build_time_s=time.perf_counter() - t0)
        return plan, sol.x
    if sol.status is Status.INFEASIBLE:
        raise InfeasibleError(f"scenario {sc.name!r}: {sol.message}")
    from allocator.errors import NumericalError, TimeLimitError, UnboundedError

    kind = {
        Status.TIME_LIMIT_NO_SOLUTION: TimeLimitError,
        Status.UNBOUNDED: UnboundedError,
    }.get(sol.status, NumericalError)
    raise kind(f"scenario {sc.name!r}: {sol.message}")


def replan(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    current: Mapping[str, Mapping[str, float]] | np.ndarray,
    migration_cost: float,
    *,
    time_limit: float | None = None,
    solver: Solver | None = None,
    compare_keep: bool = True,
) -> ReplanResult:
    """Re-plan ``scenario`` from the ``current`` allocation ({segment: {pool: gpus}} or an
    (S, P) array), paying ``migration_cost`` per GPU taken away from its segment in the
    first period. Returns the plan, the moves, and (``compare_keep``) the margin gained
    against keeping every current GPU where it is in the first period.

    Raises ``ValueError`` for an unknown segment or pool in ``current`` or a negative
    cost, and the :func:`allocator.solve` errors when the re-plan itself cannot be
    solved; a keep baseline that is infeasible (e.g. a pool shrank below what runs on it)
    is reported in ``keep_reason`` instead."""
    if not (np.isfinite(migration_cost) and migration_cost >= 0):
        raise ValueError(f"migration_cost must be a finite number >= 0, got {migration_cost!r}")
    sc = as_scenario(scenario)
    cur = current if isinstance(current, np.ndarray) else current_matrix(sc, current)
    if cur.shape != (len(sc.segments), len(sc.pools)):
        raise ValueError(f"current allocation has shape {cur.shape}, expected (segments, pools)")
    backend = solver or HighsSolver()
    base = build_lp(sc)
    lp, mc = extend_with_migration(base, cur, migration_cost)
    plan, x = _solve(sc, lp, backend, time_limit)

    m = x[mc.m_offset : mc.m_offset + mc.size]
    h = x[mc.h_offset : mc.h_offset + mc.size]
    new = np.zeros_like(cur)
    cols = base.columns
    first = cols.x_period == 0
    np.add.at(
        new, (cols.x_segment[first], cols.x_pool[first]), base.x_gpus(x[: base.num_cols])[first]
    )
    moved_by_pair = np.zeros_like(cur)
    held = np.zeros_like(cur)
    moved_by_pair[mc.segment, mc.pool] = np.maximum(m, 0.0)
    held[mc.segment, mc.pool] = np.maximum(h, 0.0)
    seg_ids, pool_ids = [s.id for s in sc.segments], [p.id for p in sc.pools]
    moves = [
        Move(
            seg_ids[i],
            pool_ids[j],
            float(cur[i, j]),
            float(new[i, j]),
            float(moved_by_pair[i, j]),
            float(held[i, j]),
        )
        for i, j in zip(*np.nonzero((cur > 1e-9) | (new > 1e-9)), strict=True)
    ]
    gpus_moved = float(np.maximum(m, 0.0).sum())

    keep_plan = None
    keep_obj = None
    reason = ""
    if compare_keep:
        klp, _ = extend_with_migration(base, cur, migration_cost, keep=True)
        try:
            keep_plan, _x = _solve(sc, klp, backend, time_limit)
            keep_obj = keep_plan.objective
        except SolveError as exc:
            reason = f"keeping the current allocation is not possible: {exc}"
    return ReplanResult(
        plan=plan,
        migration_cost_per_gpu=float(migration_cost),
        gpus_moved=gpus_moved,
        migration_cost=gpus_moved * float(migration_cost),
        objective=plan.objective,
        keep_plan=keep_plan,
        keep_objective=keep_obj,
        margin_gained=None if keep_obj is None else plan.objective - keep_obj,
        moves=moves,
        keep_reason=reason,
    )
