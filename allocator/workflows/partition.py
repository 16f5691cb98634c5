"""Partitioned planning in the style of POP (Narayanan et al., SOSP 2021): split the
segments into k groups, give each group 1/k of every pool, plan the groups independently
(in parallel, on any ``concurrent.futures`` executor: local processes or a Dask cluster),
and add the plans up.

For fleets too large for one solve. The merged plan is **feasible** for the whole scenario
(checked by :mod:`allocator.lp.check` like any plan) but not optimal: a group cannot borrow
the GPUs another group leaves idle. How each requirement is shared out:

* pool GPUs, rentable GPUs and GPUs that may be bought: 1/k to each group;
* a segment's own limits (``max_segment_share``, ``max_change_share``) keep their full
  size: the group's share is multiplied by k (at most 1) so the bound in GPUs is unchanged;
* fleet-wide floors and caps (R&D floor, kind caps and floors) go to the groups in
  proportion to the demand they hold of that kind (in GPU-hours at the segments' best
  throughput), so a group without R&D segments carries no R&D floor;
* contract minimums, reservation offers, demand, prices: per segment, unchanged.

Groups are drawn stratified: segments sorted by kind and size, dealt round-robin (after a
seeded shuffle within ties), so every group holds a similar mix. The merged plan has no
shadow prices (each group prices only its own 1/k of a pool); ``PartitionResult.group_prices``
holds the groups' prices, whose spread says how far the groups disagree about a GPU-hour.
Measured gap and speed-up against the whole LP: BENCHMARKS.md.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from allocator.errors import Status
from allocator.lp.arrays import KINDS, ScenarioArrays
from allocator.lp.build import build_lp
from allocator.plan import Plan
from allocator.scenario import Kind, Scenario, per_period, top
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solution


@dataclass
class PartitionResult:
    """The merged plan and what each group did."""

    plan: Plan  # the whole scenario's plan: the groups' decisions added up
    groups: list[list[str]]  # segment ids per group
    objectives: list[float]  # each group's optimum
    times_s: list[float]  # each group's solve, in its worker (build and plan included)
    wall_s: float  # the whole partitioned solve
    group_prices: np.ndarray  # (k, P, T) each group's shadow price per GPU-hour (nominal)
    whole_objective: float | None = None  # the whole LP's optimum, when measured

    @property
    def objective(self) -> float:
        return self.plan.objective

    @property
    def loss_share(self) -> float | None:
        """What the partition gives up against the whole LP, as a share of its optimum
        (None when not measured: see :func:`measure_loss`)."""
        if self.whole_objective is None:
            return None
        return (self.whole_objective - self.objective) / max(1.0, abs(self.whole_objective))

    def price_spread(self) -> float:
        """Largest difference between two groups' prices of the same pool-period."""
        if self.group_prices.size == 0:
            return 0.0
        return float((self.group_prices.max(axis=0) - self.group_prices.min(axis=0)).max())

    def to_dict(self) -> dict[str, Any]:
        return {
            "partitions": len(self.groups),
            "objective": self.objective,
            "group_objectives": self.objectives,
            "group_times_s": self.times_s,
            "wall_s": self.wall_s,
            "price_spread_per_gpu_hour": self.price_spread(),
            "groups": self.groups,
            "whole_objective": self.whole_objective,
            "loss_share": self.loss_share,
        }


# the whole LP is solved beside the partitions to measure their loss up to this many
# columns (about 2 s on two cores at 100k, 10 s at 300k: BENCHMARKS.md)
MEASURE_COLUMNS = 300_000
UNMEASURED_WARNING = (
    "the loss against the whole LP was not measured ({columns:,} columns; measured up to "
    "{limit:,}): it was 0.2-1 % with 2 groups and 0.6-3 % with 4 on the bench fleets, and "
    "can be much larger on small scenarios (11.9 % with 4 groups on data/hyperscaler.json)"
)


def measure_loss(
    result: PartitionResult, scenario: Scenario, time_limit: float | None = None
) -> PartitionResult:
    """``result`` with the whole LP's optimum (one ordinary solve of ``scenario``), so its
    :attr:`~PartitionResult.loss_share` says what the partition gave up."""
    from allocator.engine import solve

    result.whole_objective = solve(scenario, time_limit=time_limit, diagnose=False).objective
    return result


def groups_of(sc: Scenario, k: int, seed: int = 0) -> list[list[int]]:
    """Segment indices per group: sorted by kind and GPU-hours of demand, dealt round-robin."""
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"the number of partitions must be an integer >= 1, got {k!r}")
    k = min(k, len(sc.segments))
    gpu_hours = _gpu_hours(sc)
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(sc.segments))
    kind = np.array([KINDS.index(s.kind) for s in sc.segments])
    order = np.lexsort((tie, -gpu_hours, kind))
    out: list[list[int]] = [[] for _ in range(k)]
    for n, i in enumerate(order.tolist()):
        out[n % k].append(i)
    return [sorted(g) for g in out]


def _gpu_hours(sc: Scenario) -> np.ndarray:
    """Each segment's demand over the horizon in GPU-hours at its best throughput."""
    best = np.array(
        [
            max(top(v) for v in s.throughput.values())
            * max(top(m.throughput_multiplier) for m in s.modes)
            for s in sc.segments
        ]
    )
    return np.array([sum(s.demand) for s in sc.segments]) / np.maximum(best, 1e-12)


def sub_scenarios(sc: Scenario, groups: list[list[int]]) -> list[dict[str, Any]]:
    """The group scenarios (plain data), sharing out pools and fleet-wide limits as the
    module docstring says."""
    k = len(groups)
    data = sc.to_dict()
    T = len(sc.periods)
    kinds = np.array([KINDS.index(s.kind) for s in sc.segments])
    gpu_hours = _gpu_hours(sc)
    pol = sc.policy
    fleet = np.array([p.gpus for p in sc.pools], dtype=float).reshape(len(sc.pools), T).sum(axis=0)
    out = []
    for members in groups:
        d = json.loads(json.dumps(data))  # a deep copy of plain data
        d["name"] = f"{sc.name} [group of {len(members)}/{len(sc.segments)}]"
        d["segments"] = [data["segments"][i] for i in members]
        for p in d["pools"]:
            p["gpus"] = [g / k for g in p["gpus"]]
            if p.get("rentable_gpus") is not None:
                p["rentable_gpus"] = [g / k for g in p["rentable_gpus"]]
            if p.get("expansion") is not None:
                p["expansion"]["max_gpus"] = p["expansion"]["max_gpus"] / k
        weight = {}
        for kind in Kind:
            total = gpu_hours[kinds == KINDS.index(kind)].sum()
            mine = gpu_hours[[i for i in members if kinds[i] == KINDS.index(kind)]].sum()
            weight[kind] = float(mine / total) if total > 0 else 0.0
        dp = d["policy"]
        for name in ("max_segment_share", "max_change_share"):
            if dp.get(name) is not None:
                dp[name] = min(1.0, dp[name] * k)
        floors = {
            kind: np.array(per_period(v, T), dtype=float) for kind, v in pol.kind_floors.items()
        }
        if pol.rnd_min_share > 0:  # the R&D floor, as a floor on the R&D kind of this group
            rnd = pol.rnd_min_share * fleet
            floors[Kind.RND] = np.maximum(floors.get(Kind.RND, 0.0), rnd)
            dp["rnd_min_share"] = 0.0
        dp["kind_floors"] = {kind.value: (v * weight[kind]).tolist() for kind, v in floors.items()}
        dp["kind_caps"] = {
            kind.value: (np.array(per_period(v, T), dtype=float) * weight[kind]).tolist()
            for kind, v in pol.kind_caps.items()
        }
        dp["gpu_hour_budgets"] = _group_budgets(dp.get("gpu_hour_budgets", []), d, weight)
        out.append(d)
    return out


def _group_budgets(
    budgets: list[dict[str, Any]], group: dict[str, Any], weight: dict[Kind, float]
) -> list[dict[str, Any]]:
    """A group's GPU-hour budgets: a segment's in the group holding it; a kind's scaled by
    the group's share of the kind, as the kind caps and floors (so the groups' sum meets it)."""
    ids = {s["id"] for s in group["segments"]}
    out = []
    for b in budgets:
        if b.get("segment") is not None:
            if b["segment"] in ids:
                out.append(b)
            continue
        w = weight[Kind(b["kind"])]
        if w <= 0:
            continue
        scaled = dict(b)
        for name in ("min_gpu_hours", "max_gpu_hours"):
            if scaled.get(name) is not None:
                scaled[name] = scaled[name] * w
        out.append(scaled)
    return out


def solve_group(
    scenario: dict[str, Any], time_limit: float | None, threads: int | None
) -> dict[str, Any]:
    """Plan one group (in a worker): its decisions as arrays keyed by ids, not a Plan."""
    from allocator.engine import solve
    from allocator.solvers.registry import HighsSolver

    t0 = time.perf_counter()
    sc = Scenario.from_dict(scenario)
    plan = solve(sc, time_limit=time_limit, solver=HighsSolver(threads=threads))
    P, T = len(sc.pools), len(sc.periods)
    prices = np.zeros((P, T))
    rented = np.zeros((P, T))
    bought = np.zeros((P, T))
    pool_ix = {p.id: j for j, p in enumerate(sc.pools)}
    period_ix = {label: t for t, label in enumerate(sc.period_labels)}
    for r in plan.pools:
        j, t = pool_ix[r.pool], period_ix[r.period]
        prices[j, t] = r.shadow_price_per_gpu_hour or 0.0
        rented[j, t] = r.rented
        bought[j, t] = r.bought
    return {
        "objective": plan.objective,
        "status": plan.status.value,
        "allocations": [(a.segment, a.mode, a.pool, a.period, a.gpus) for a in plan.allocations],
        "shortfall": [(r.segment, r.period, r.shortfall) for r in plan.segments if r.shortfall > 0],
        "reservations": [(r.segment, r.pool, r.period, r.gpus) for r in plan.reservations],
        "tiers": [(r.segment, int(r.tier), r.period, r.served) for r in plan.tiers if r.served],
        "rented": rented,
        "bought": bought,
        "prices": prices,
        "time_s": time.perf_counter() - t0,
    }


def partitioned_solve(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    k: int,
    *,
    seed: int = 0,
    time_limit: float | None = None,
    executor: cf.Executor | None = None,
) -> PartitionResult:
    """Plan ``scenario`` as ``k`` groups of segments on ``executor`` (default: a local
    process pool over ``min(k, cores)`` processes, HiGHS one thread each) and merge; see
    the module docstring. Raises the engine's errors when a group cannot be planned (an
    infeasible group: a contract minimum larger than 1/k of the pools that serve it)."""
    sc = as_scenario(scenario)
    t0 = time.perf_counter()
    groups = groups_of(sc, k, seed)
    subs = sub_scenarios(sc, groups)
    own = executor is None
    pool = executor or cf.ProcessPoolExecutor(
        max_workers=min(len(subs), multiprocessing.cpu_count() or 1),
        mp_context=multiprocessing.get_context("spawn"),
    )
    threads = 1 if own else None
    try:
        futures = [pool.submit(solve_group, d, time_limit, threads) for d in subs]
        parts = [f.result() for f in futures]
    finally:
        if own:
            pool.shutdown()
    plan = merge(sc, parts, solve_time_s=time.perf_counter() - t0)
    return PartitionResult(
        plan=plan,
        groups=[[sc.segments[i].id for i in g] for g in groups],
        objectives=[float(p["objective"]) for p in parts],
        times_s=[float(p["time_s"]) for p in parts],
        wall_s=time.perf_counter() - t0,
        group_prices=np.stack([p["prices"] for p in parts]) if parts else np.zeros((0, 0, 0)),
    )


def merge(sc: Scenario, parts: list[dict[str, Any]], solve_time_s: float = 0.0) -> Plan:
    """The whole scenario's plan from the groups' decisions (added up), priced by the
    whole scenario's own money lines and checked against its own requirements."""
    t0 = time.perf_counter()
    lp = build_lp(sc)
    arrays = ScenarioArrays.of(sc)
    build_time = time.perf_counter() - t0
    c = lp.columns
    T = len(sc.periods)
    seg_ix = {s.id: i for i, s in enumerate(sc.segments)}
    pool_ix = {p.id: j for j, p in enumerate(sc.pools)}
    period_ix = {label: t for t, label in enumerate(sc.period_labels)}
    mode_ix = {(s, name): m for m, (s, name) in enumerate(c.modes)}
    first = np.nonzero(c.x_period == 0)[0]  # one column per (segment, mode, pool) triple
    triple = {(int(c.x_segment[j]), int(c.x_mode[j]), int(c.x_pool[j])): int(j) for j in first}
    u_col = {
        (int(s), int(t)): c.u_offset + n
        for n, (s, t) in enumerate(zip(c.u_segment, c.u_period, strict=True))
    }
    rsv_col = {
        (int(s), int(p), int(t)): c.rsv_offset + n
        for n, (s, p, t) in enumerate(zip(c.rsv_segment, c.rsv_pool, c.rsv_period, strict=True))
    }
    tier_col = {
        (int(s), int(r), int(t)): c.tier_offset + n
        for n, (s, r, t) in enumerate(zip(c.tier_segment, c.tier_rank, c.tier_period, strict=True))
    }
    x = np.zeros(lp.num_cols)
    rented = np.zeros((len(sc.pools), T))
    bought = np.zeros((len(sc.pools), T))
    for part in parts:
        for seg, mode, pool, period, gpus in part["allocations"]:
            s = seg_ix[seg]
            j = triple[(s, mode_ix[(s, mode)], pool_ix[pool])]
            x[j + period_ix[period]] += gpus
        for seg, period, short in part["shortfall"]:
            key = (seg_ix[seg], period_ix[period])
            if key in u_col:
                x[u_col[key]] += short
        for seg, pool, period, gpus in part["reservations"]:
            x[rsv_col[(seg_ix[seg], pool_ix[pool], period_ix[period])]] += gpus
        for seg, rank, period, units in part.get("tiers", []):  # units sold per price tier
            x[tier_col[(seg_ix[seg], rank, period_ix[period])]] += units
        rented += part["rented"]
        bought += part["bought"]
    x[c.r_offset : c.u_offset] = rented[c.r_pool, c.r_period]
    if c.n_e:
        bought_in = np.diff(bought, axis=1, prepend=0.0)
        x[c.e_offset : c.e_offset + c.n_e] = bought_in[c.e_pool, c.e_period]
    feasible = all(p["status"] == Status.OPTIMAL.value for p in parts)
    sol = Solution(
        status=Status.OPTIMAL if feasible else Status.TIME_LIMIT,
        x=x,
        row_dual=None,
        col_dual=None,
        objective=lp.objective(x),
        solver="highs",
        algorithm=f"partitioned-{len(parts)}",
        time_s=solve_time_s,
        iterations=0,
        message=f"merged plan of {len(parts)} groups (partitioned: feasible, not proven optimal)",
        duals_note="a partitioned plan has no shadow prices of the whole fleet; see the groups' "
        "prices (PartitionResult.group_prices)",
    )
    return Plan.from_solution(sc, lp, sol, build_time_s=build_time, arrays=arrays)


__all__ = ["PartitionResult", "groups_of", "merge", "partitioned_solve", "sub_scenarios"]
