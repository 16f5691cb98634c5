"""Constraint violations of an allocation, recomputed from the scenario itself.

This does not read the solver's row activities nor the constraint matrix: it sums the
allocation by pool, segment and kind from the domain data, so a plan reports how far it
is from feasible whatever the solver claimed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from allocator.lp.arrays import KINDS, BudgetArrays, GpuLimitArrays, ScenarioArrays, add_at
from allocator.lp.program import ColumnIndex
from allocator.scenario import Kind, Scenario, per_period


def violations(
    sc: Scenario,
    arr: ScenarioArrays,
    cols: ColumnIndex,
    x: np.ndarray,
    rented: np.ndarray,
    bought: np.ndarray | None = None,
    reserved: np.ndarray | None = None,
    tiers: np.ndarray | None = None,
    power: Any = None,
) -> dict[str, float]:
    """Largest violation per requirement, relative to the size of its bound:
    ``max(0, lhs - rhs) / max(1, |rhs|)``, so 1e-6 means one part in a million.

    ``x`` holds GPUs per allocation column, ``rented`` GPUs rented per (pool, period),
    ``bought`` GPUs bought so far per (pool, period) in expansion mode (usable less headroom),
    ``reserved`` GPUs reserved per reservation column, ``tiers`` work units sold per
    price-tier column, ``power`` with sites the solution's power use per (pool, period)
    (``allocator.plan.power.PowerUse``: powered GPUs, their full-power throughput
    equivalent, kW drawn, GPUs retired; a pool in a site can use only powered GPUs).
    Soft contract minimums are not requirements (a shortfall pays its penalty).
    """
    held = np.zeros(cols.n_rsv) if reserved is None else reserved
    return {
        **_sign_and_compatibility(arr, cols, x, rented, held),
        **_capacity_violations(arr, cols, x, rented, held, bought, power),
        **_work_violations(arr, cols, x, held),
        **_kind_violations(sc, arr, cols, x, held),
        **_pair_violations(sc, arr, cols, x, held),
        **_tier_violations(arr, cols, x, tiers),
        **_segment_gpu_violations(sc, cols, x, held),
        **_budget_violations(sc, arr, cols, x, held),
        **_power_violations(arr, bought, power),
    }


def _sign_and_compatibility(
    arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, rented: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """GPUs below zero (allocated, rented or reserved), and GPUs allocated or reserved on a
    pool the segment cannot use."""
    s, p = cols.x_segment, cols.x_pool
    nonnegative = float(max(0.0, -x.min(initial=0.0), -rented.min(initial=0.0)))
    nonnegative = max(nonnegative, float(max(0.0, -held.min(initial=0.0))))
    compatible = arr.compatible[s, p]
    compatibility = float(np.abs(x[~compatible]).max(initial=0.0))
    if cols.n_rsv:
        ks, kp = cols.rsv_segment, cols.rsv_pool
        compatibility = max(
            compatibility, float(np.abs(held[~arr.compatible[ks, kp]]).max(initial=0.0))
        )
    return {"nonnegative": nonnegative, "compatibility": compatibility}


def _capacity_violations(
    arr: ScenarioArrays,
    cols: ColumnIndex,
    x: np.ndarray,
    rented: np.ndarray,
    held: np.ndarray,
    bought: np.ndarray | None,
    power: Any = None,
) -> dict[str, float]:
    """GPUs used (allocated or reserved) beyond a pool's usable (with sites: powered),
    rented and bought GPUs; GPUs bought beyond the expansion limit, rented beyond the
    rentable ones."""
    P, T = arr.gpus.shape
    out: dict[str, float] = {}
    used = np.zeros((P, T))
    add_at(used, (cols.x_pool, cols.x_period), x)
    add_at(used, (cols.rsv_pool, cols.rsv_period), held)  # held whether used or not
    extra = np.zeros_like(used) if bought is None else (1.0 - arr.headroom)[:, None] * bought
    usable = arr.usable if power is None else (1.0 - arr.headroom)[:, None] * power.effective
    out["pool-capacity"] = _rel(used - rented - extra, usable)
    if bought is not None and arr.expand_max is not None:
        out["pool-expansion"] = _rel(bought[:, -1], arr.expand_max)
    out["rental-limit"] = _rel(rented, arr.rentable)
    return out


def _work_violations(
    arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """Reservations beyond what a customer offers; work served (hours × throughput × mode
    multiplier, from the domain) beyond demand, or short of a hard contract minimum."""
    S, T = arr.demand.shape[0], arr.gpus.shape[1]
    s, p, t = cols.x_segment, cols.x_pool, cols.x_period
    out: dict[str, float] = {}
    units = x * arr.hours[t] * arr.throughput[s, p, t] * arr.mode_mult[cols.x_mode, t]
    served = np.zeros((S, T))
    add_at(served, (s, t), units)
    if cols.n_rsv:
        assert arr.res_max is not None
        per_seg = np.zeros((S, T))
        add_at(per_seg, (cols.rsv_segment, cols.rsv_period), held)
        out["reservation-limit"] = _rel(per_seg, arr.res_max)
    out["segment-demand"] = _rel(served, arr.demand)
    hard = arr.contract_hard[:, None] & (arr.contract_min > 0)
    out["segment-contract"] = _rel(
        np.where(hard, arr.contract_min, 0.0), np.where(hard, served, 0.0)
    )
    return out


def _kind_violations(
    sc: Scenario, arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """GPUs per segment kind against the policy: the R&D floor (a share of the fleet),
    the kind caps and the kind floors."""
    T = arr.gpus.shape[1]
    pol = sc.policy
    out: dict[str, float] = {}
    by_kind = np.zeros((len(KINDS), T))
    add_at(by_kind, (arr.kind[cols.x_segment], cols.x_period), x)
    add_at(by_kind, (arr.kind[cols.rsv_segment], cols.rsv_period), held)
    if pol.rnd_min_share > 0:
        need = pol.rnd_min_share * arr.gpus.sum(axis=0)
        out["rnd-floor"] = _rel(need, by_kind[KINDS.index(Kind.RND)])
    for k, v in pol.kind_caps.items():
        out[f"kind-cap[{k.value}]"] = _rel(by_kind[KINDS.index(k)], np.array(per_period(v, T)))
    for k, v in pol.kind_floors.items():
        out[f"kind-floor[{k.value}]"] = _rel(np.array(per_period(v, T)), by_kind[KINDS.index(k)])
    return out


def _pair_violations(
    sc: Scenario, arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """GPUs per (segment, pool) against the policy: the stability limit on their change
    from one period to the next, and the largest share of a pool one segment may hold."""
    pol = sc.policy
    out: dict[str, float] = {}
    if pol.max_change_share is None and pol.max_segment_share is None:
        return out
    P, T = arr.gpus.shape
    S = arr.demand.shape[0]
    pair = np.zeros((S, P, T))
    add_at(pair, (cols.x_segment, cols.x_pool, cols.x_period), x)
    add_at(pair, (cols.rsv_segment, cols.rsv_pool, cols.rsv_period), held)
    cap = arr.usable + arr.rentable
    if pol.max_change_share is not None and T > 1:
        allowed = pol.max_change_share * np.maximum(cap[:, 1:], cap[:, :-1])
        change = np.abs(np.diff(pair, axis=2))
        out["segment-stability"] = _rel(change, np.broadcast_to(allowed[None], change.shape))
    if pol.max_segment_share is not None:
        limit = np.broadcast_to(pol.max_segment_share * cap[None], pair.shape)
        out["segment-share"] = _rel(pair, limit)
    return out


def _tier_violations(
    arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, tiers: np.ndarray | None
) -> dict[str, float]:
    """Units sold in price tiers beyond the units served (hours x throughput x multiplier
    from the domain), or beyond what a tier offers."""
    if tiers is None or cols.n_tier == 0 or arr.tier_units is None:
        return {}
    S, T = arr.demand.shape
    s, p, t = cols.x_segment, cols.x_pool, cols.x_period
    served = np.zeros((S, T))
    add_at(
        served, (s, t), x * arr.hours[t] * arr.throughput[s, p, t] * arr.mode_mult[cols.x_mode, t]
    )
    sold = np.zeros((S, T))
    add_at(sold, (cols.tier_segment, cols.tier_period), tiers)
    offered = arr.tier_units[cols.tier_index, cols.tier_period]
    return {
        "segment-tiers": max(_rel(sold, served), _rel(tiers, offered)),
    }


def _segment_gpu_violations(
    sc: Scenario, cols: ColumnIndex, x: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """GPUs a segment holds (of one accelerator type or of all) against its gpu_limits."""
    if not any(s.gpu_limits for s in sc.segments):
        return {}
    lim = GpuLimitArrays.of(sc)
    seg = np.concatenate([cols.x_segment, cols.rsv_segment])
    pool = np.concatenate([cols.x_pool, cols.rsv_pool])
    per = np.concatenate([cols.x_period, cols.rsv_period])
    gpus = np.concatenate([x, held])
    pos, which = lim.held(seg, pool)
    total = np.zeros(lim.lower.shape)
    add_at(total, (which, per[pos]), gpus[pos])
    upper = np.where(np.isfinite(lim.upper), lim.upper, np.inf)
    return {
        "segment-gpus": max(_rel(total, upper), _rel(lim.lower, total)),
    }


def _budget_violations(
    sc: Scenario, arr: ScenarioArrays, cols: ColumnIndex, x: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """GPU-hours (GPUs × hours of each period) over a budget's window against its bounds."""
    if not sc.policy.gpu_hour_budgets:
        return {}
    bud = BudgetArrays.of(sc)
    seg = np.concatenate([cols.x_segment, cols.rsv_segment])
    pool = np.concatenate([cols.x_pool, cols.rsv_pool])
    per = np.concatenate([cols.x_period, cols.rsv_period])
    hours = np.concatenate([x, held]) * arr.hours[per]
    types = GpuLimitArrays.of(sc).pool_accelerator
    pos, which = bud.counted(seg, types[pool], per)
    total = np.zeros(len(bud.ids))
    add_at(total, which, hours[pos])
    lower = np.where(np.isfinite(bud.lower), bud.lower, 0.0)
    return {"gpu-hour-budget": max(_rel(total, bud.upper), _rel(lower, total))}


def _power_violations(
    arr: ScenarioArrays, bought: np.ndarray | None, power: Any
) -> dict[str, float]:
    """With sites: GPUs powered and retired beyond those on hand, and the IT power of a
    site's powered GPUs (kW x the share of their level) and bought GPUs (full kW) beyond
    its power."""
    if power is None or arr.site_of is None:
        return {}
    assert arr.power_kw is not None and arr.site_kw is not None
    drawn = power.kw + arr.power_kw[:, None] * (0.0 if bought is None else bought)
    pools = np.nonzero(arr.sited)[0]
    kw = np.zeros(arr.site_kw.shape)
    np.add.at(kw, arr.site_of[pools], drawn[pools])
    return {
        "powered-limit": _rel(power.powered + power.retired, arr.gpus),
        "site-power": _rel(kw, arr.site_kw),
    }


def _rel(lhs: np.ndarray, rhs: np.ndarray) -> float:
    """Largest ``max(0, lhs - rhs) / max(1, |rhs|)``: lhs <= rhs should hold."""
    v = np.maximum(lhs - rhs, 0.0) / np.maximum(1.0, np.abs(rhs))
    return float(v.max(initial=0.0))
