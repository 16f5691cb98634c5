"""The read-out of a solution, in the order it happens: the decisions (GPUs per column,
rented, bought, reserved), the money they make per column, those sums by segment and by
pool, the shadow prices, the totals and kind summaries, then the named rows. Every step is
whole numpy arrays; only the last turns them into rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays, add_at, extra_key_names
from allocator.lp.build import held_changes
from allocator.lp.check import violations
from allocator.lp.program import row_spans
from allocator.plan.columns import Labels, Table
from allocator.plan.power import PowerUse, energy_by_pool, power_tables, power_use
from allocator.plan.rows import (
    RENTALS,
    RENTALS_LABEL,
    ZERO,
    Allocation,
    Binding,
    KindResult,
    Move,
    PoolResult,
    ReservationResult,
    SegmentResult,
    SolverInfo,
    SubscriptionResult,
    TierResult,
    Totals,
)
from allocator.scenario import Scenario, per_period
from allocator.solvers.base import Solution


@dataclass
class Decisions:
    """What the solution decides, in GPUs: ``x`` per allocation column; ``rented``,
    ``bought`` (the stock bought so far) per (pool, period); ``k`` per reservation column."""

    x: np.ndarray
    rented: np.ndarray
    bought: np.ndarray
    k: np.ndarray
    y: np.ndarray | None = None  # work units served per tier column (price tiers)
    power: PowerUse | None = None  # powered, capped, retired GPUs; None without sites


@dataclass
class Flows:
    """Per-column quantities and money (nominal, per period) of the decisions."""

    gpu_hours: np.ndarray
    units: np.ndarray
    revenue: np.ndarray
    ltv: np.ndarray
    variable_cost: np.ndarray
    k_hours: np.ndarray
    k_fee: np.ndarray
    k_variable_cost: np.ndarray


@dataclass
class SegmentSums:
    """(S, T) arrays: what each segment was served and earned in each period."""

    served: np.ndarray
    revenue: np.ndarray
    ltv: np.ndarray
    compute_cost: np.ndarray
    gpus: np.ndarray
    shortfall: np.ndarray
    penalty: np.ndarray
    unserved: np.ndarray
    churn: np.ndarray
    margin: np.ndarray


@dataclass
class PoolSums:
    """(P, T) arrays: how each pool was used and what it cost in each period."""

    used: np.ndarray
    variable_cost: np.ndarray
    rental_cost: np.ndarray
    fixed_cost: np.ndarray
    expansion_cost: np.ndarray
    price_pv: np.ndarray | None  # shadow price per GPU-hour, present value
    price_nominal: np.ndarray | None


@dataclass
class ReadOutCache:
    """What one read-out of a model leaves for the next of the same model (a Planner's
    what-ifs): the sums of column values by (segment or pool, period), and the binding
    rows with their keys. ``periods`` ((T,) bool) marks the periods whose numbers or
    solution changed since: only those are summed and checked again; None reads out all."""

    periods: np.ndarray | None = None
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    # binding rows kept: LP rows (ascending), their keys, at their upper bound
    binding: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    row_span: np.ndarray | None = None  # (rows, 2) first and last period of each row

    def reusable(self, name: str) -> np.ndarray | None:
        return self.sums.get(name) if self.periods is not None else None


def read_out(
    sc: Scenario,
    lp: LinearProgram,
    sol: Solution,
    build_time_s: float = 0.0,
    arrays: ScenarioArrays | None = None,
    cache: ReadOutCache | None = None,
) -> dict[str, Any]:
    """The fields of a Plan for ``sol``, a solution of ``lp`` built from ``sc``; with a
    ``cache`` of the previous read-out of the same model, the sums and binding rows of
    the periods it marks changed are patched into the previous ones (the same values a
    full read-out gives, tests/plan/test_readout_patch.py)."""
    if sol.x is None or not sol.has_plan:
        raise ValueError(f"solution has no plan (status {sol.status.value})")
    arr = arrays or ScenarioArrays.of(sc)
    dec = decisions(lp, sol, arr)
    flows = column_flows(lp, arr, dec)
    seg = segment_sums(lp, arr, dec, flows, cache)
    pool = pool_sums(lp, sol, arr, dec, flows, cache)
    viol = violations(
        sc, arr, lp.columns, dec.x, dec.rented, dec.bought, dec.k, dec.y, power=dec.power
    )
    total = totals(sc, lp, sol, arr, flows, seg, pool)
    if dec.power is not None:  # sites (issue 27): only then, so other plans stay as they were
        energy = energy_by_pool(lp, arr, dec.x, dec.k)
        total = replace(
            total,
            energy_cost=float(np.sum(energy * arr.discount[None, :])),
            salvage=float(np.sum(dec.power.salvage * arr.discount[None, :])),
        )
    out: dict[str, Any] = {
        "scenario": sc.name,
        "currency": sc.currency,
        "status": sol.status,
        "message": sol.message,
        "periods": sc.period_labels,
        "totals": total,
        "by_kind": by_kind(arr, seg) | rentals_line(arr, pool),
        "allocations": allocation_rows(sc, lp, arr, dec, flows),
        "segments": segment_rows(sc, arr, seg),
        "pools": pool_rows(sc, arr, dec, pool),
        "binding": binding_rows(sc, lp, sol, x_full=sol.x, cache=cache),
        "solver": solver_info(lp, sol, build_time_s),
        "has_duals": sol.row_dual is not None,
        "max_violation": max(viol.values(), default=0.0),
        "violations": viol,
        "warnings": plan_warnings(lp, sol, viol),
        "reservations": reservation_rows(sc, lp, arr, dec, flows),
        "tiers": tier_rows(sc, lp, arr, dec),
        "subscriptions": subscription_rows(sc, arr, seg, pool),
        "moves": move_rows(sc, lp, arr, dec),
    }
    if dec.power is not None:
        out["power"], out["sites"] = power_tables(sc, lp, sol, arr, dec.power, dec.bought, energy)
    return out


def decisions(lp: LinearProgram, sol: Solution, arr: ScenarioArrays) -> Decisions:
    """The solution's columns as GPUs (whatever the column units), negatives clipped."""
    assert sol.x is not None
    cols = lp.columns
    P, T = arr.gpus.shape
    rented = np.zeros((P, T))
    rented[cols.r_pool, cols.r_period] = np.maximum(sol.x[cols.r_offset : cols.u_offset], 0.0)
    bought_in = np.zeros((P, T))  # expansion: GPUs bought per (pool, period)
    if cols.n_e:
        e = np.maximum(sol.x[cols.e_offset : cols.e_offset + cols.n_e], 0.0)
        bought_in[cols.e_pool, cols.e_period] = e
    return Decisions(
        x=np.maximum(lp.x_gpus(sol.x), 0.0),
        rented=rented,
        bought=np.cumsum(bought_in, axis=1),
        k=np.maximum(sol.x[cols.rsv_offset : cols.rsv_offset + cols.n_rsv], 0.0),
        y=np.maximum(sol.x[cols.tier_offset : cols.tier_offset + cols.n_tier], 0.0),
        power=power_use(lp, sol.x, arr),
    )


def column_flows(lp: LinearProgram, arr: ScenarioArrays, dec: Decisions) -> Flows:
    """Work, revenue, LTV and variable cost of every allocation column; GPU-hours, fees
    and variable cost of every reservation column (a fee every hour, GPUs dedicated)."""
    cols = lp.columns
    s, m, p, t = cols.x_segment, cols.x_mode, cols.x_pool, cols.x_period
    gpu_hours = dec.x * arr.hours[t]
    units = dec.x * cols.x_units_per_gpu
    k_hours = dec.k * arr.hours[cols.rsv_period]
    k_fee = np.zeros(cols.n_rsv)
    if cols.n_rsv:
        assert arr.res_price is not None
        k_fee = k_hours * arr.res_price[cols.rsv_segment]
    return Flows(
        gpu_hours=gpu_hours,
        units=units,
        revenue=units * arr.revenue[s, t] * arr.mode_rev_share[m],
        ltv=units * arr.ltv[s, t] * arr.mode_ltv_share[m],
        variable_cost=gpu_hours * arr.var_cost[p, t],
        k_hours=k_hours,
        k_fee=k_fee,
        k_variable_cost=k_hours * arr.var_cost[cols.rsv_pool, cols.rsv_period],
    )


def _sum_by(
    lp: LinearProgram,
    shape: tuple[int, int],
    by: str,
    v: np.ndarray,
    kv: np.ndarray | None = None,
    cache: ReadOutCache | None = None,
    name: str = "",
) -> np.ndarray:
    """Allocation column values ``v`` (and reservation column values ``kv``) summed by
    (segment, period) when ``by == "segment"`` or by (pool, period). With a ``cache``
    holding this sum (``name``), only the columns of the periods it marks are summed and
    the other periods are the cached sums (the same numbers: a cell's columns are all of
    its period)."""
    cols = lp.columns
    T = shape[1]
    first = cols.x_segment if by == "segment" else cols.x_pool
    cells, values = [first * T + cols.x_period], [v]
    if kv is not None and cols.n_rsv:
        k_first = cols.rsv_segment if by == "segment" else cols.rsv_pool
        cells.append(k_first * T + cols.rsv_period)
        values.append(kv)
    cell, value = np.concatenate(cells), np.concatenate(values)
    kept = cache.reusable(name) if cache is not None else None
    if kept is not None and cache is not None and cache.periods is not None:
        on = cache.periods[cell % T]
        cell, value = cell[on], value[on]
    out = np.bincount(cell, weights=value, minlength=shape[0] * T).reshape(shape)
    if kept is not None and cache is not None and cache.periods is not None:
        out[:, ~cache.periods] = kept[:, ~cache.periods]
    if cache is not None:
        cache.sums[name] = out
    return out


def segment_sums(
    lp: LinearProgram,
    arr: ScenarioArrays,
    dec: Decisions,
    flows: Flows,
    cache: ReadOutCache | None = None,
) -> SegmentSums:
    """Served work, money, GPUs, contract shortfall and churn per (segment, period)."""
    shape = arr.demand.shape

    def by_segment(name: str, v: np.ndarray, kv: np.ndarray | None = None) -> np.ndarray:
        return _sum_by(lp, shape, "segment", v, kv, cache, "segment." + name)

    served = by_segment("served", flows.units)
    revenue = by_segment("revenue", flows.revenue, flows.k_fee)
    compute_cost = by_segment("compute_cost", flows.variable_cost, flows.k_variable_cost)
    extra_rev, extra_ltv = tier_money(lp, arr, dec)
    if arr.sub_fees is not None:
        extra_rev = extra_rev + arr.sub_fees  # subscribers pay whether served or not
    revenue = revenue + extra_rev
    shortfall = np.maximum(arr.contract_min - served, 0.0)
    penalty = np.where(arr.contract_hard[:, None], 0.0, shortfall * arr.penalty)
    unserved = np.maximum(arr.demand - served, 0.0)
    return SegmentSums(
        served=served,
        revenue=revenue,
        ltv=by_segment("ltv", flows.ltv) + extra_ltv,
        compute_cost=compute_cost,
        gpus=by_segment("gpus", dec.x, dec.k),
        shortfall=shortfall,
        penalty=penalty,
        unserved=unserved,
        churn=unserved * arr.churn,
        margin=revenue - compute_cost - penalty,
    )


def tier_money(
    lp: LinearProgram, arr: ScenarioArrays, dec: Decisions
) -> tuple[np.ndarray, np.ndarray]:
    """Revenue and LTV of the units served in price tiers, per (segment, period)."""
    cols = lp.columns
    rev, ltv = np.zeros(arr.demand.shape), np.zeros(arr.demand.shape)
    if cols.n_tier and dec.y is not None:
        assert arr.tier_price is not None and arr.tier_ltv is not None
        i, t = cols.tier_index, cols.tier_period
        add_at(rev, (cols.tier_segment, t), dec.y * arr.tier_price[i, t])
        add_at(ltv, (cols.tier_segment, t), dec.y * arr.tier_ltv[i, t])
    return rev, ltv


def tier_rows(
    sc: Scenario, lp: LinearProgram, arr: ScenarioArrays, dec: Decisions
) -> Table[TierResult]:
    """One row per (segment with tiers, tier, period): units offered and served, the
    tier's price and revenue, and the clearing price of the segment in the period: the
    price of its marginal tier (the cheapest tier served; the first when none is)."""
    if arr.tier_segment is None or arr.tier_segment.size == 0:
        return Table.from_rows(TierResult, [])
    assert arr.tier_units is not None and arr.tier_price is not None
    assert arr.tier_rank is not None
    cols = lp.columns
    N, T = arr.tier_units.shape
    served = np.zeros((N, T))
    if cols.n_tier and dec.y is not None:
        served[cols.tier_index, cols.tier_period] = dec.y
    seg = arr.tier_segment
    # the marginal tier: the last (cheapest) tier of the segment with units served
    on = served > ZERO * np.maximum(1.0, arr.tier_units)
    rank_on = np.where(on, arr.tier_rank[:, None], -1)
    S = arr.demand.shape[0]
    last = np.full((S, T), -1, dtype=np.int64)
    np.maximum.at(last, seg, rank_on)
    last = np.maximum(last, 0)  # none served: the first tier's price
    first_of = np.full(S, 0, dtype=np.int64)
    starts = np.nonzero(arr.tier_rank == 0)[0]
    first_of[seg[starts]] = starts
    marginal = first_of[:, None] + last  # (S, T) global tier index
    clearing = arr.tier_price[marginal, np.arange(T)[None, :]]  # (S, T)
    ni, ti = np.divmod(np.arange(N * T), T)
    seg_ids, _, periods = _ids(sc)
    return Table(
        TierResult,
        {
            "segment": Labels(seg[ni], seg_ids),
            "kind": Labels(arr.kind[seg[ni]], KIND_NAMES),
            "tier": arr.tier_rank[ni].astype(float),
            "period": Labels(ti, periods),
            "price": arr.tier_price.ravel(),
            "units": arr.tier_units.ravel(),
            "served": served.ravel(),
            "revenue": (served * arr.tier_price).ravel(),
            "clearing_price": clearing[seg[ni], ti],
        },
    )


def subscription_rows(
    sc: Scenario, arr: ScenarioArrays, seg: SegmentSums, pool: PoolSums
) -> Table[SubscriptionResult]:
    """One row per (subscription segment, period): see :class:`SubscriptionResult`. The
    value of a GPU-hour is that of the segment's best mode on each compatible pool
    (usage price, weighted LTV and churn per unit x units per GPU-hour, less the variable
    cost), the loss per unit added below the minimum share; the pool kept is the one
    where serving below the floor beats the pool's shadow price by the most."""
    rows: list[SubscriptionResult] = []
    T = arr.hours.size
    w = sc.policy.ltv_weight
    price = pool.price_nominal if pool.price_nominal is not None else np.zeros(arr.gpus.shape)
    labels = sc.period_labels
    for i, s in enumerate(sc.segments):
        sub = s.subscription
        if sub is None:
            continue
        n = per_period(sub.subscribers, T)
        loss = np.array(per_period(sub.ltv_loss_per_unit, T), dtype=float)
        share = sub.min_service_share
        modes = np.nonzero(arr.mode_segment == i)[0]
        base_churn = arr.churn[i] - (loss if share is None else 0.0)
        per_unit = (
            arr.revenue[i][None, :] * arr.mode_rev_share[modes][:, None]
            + w * arr.ltv[i][None, :] * arr.mode_ltv_share[modes][:, None]
            + base_churn[None, :]
        )  # (M_s, T)
        pools = np.nonzero(arr.compatible[i])[0]
        for t in range(T):
            best: tuple[float, float, float, int] | None = None
            for jj in pools.tolist():
                j = int(jj)
                tp = arr.throughput[i, j, t] * arr.mode_mult[modes, t]  # (M_s,)
                above = float(np.max(per_unit[:, t] * tp) - arr.var_cost[j, t])
                below = float(np.max((per_unit[:, t] + loss[t]) * tp) - arr.var_cost[j, t])
                if share is None:  # the loss applies to every unit not served
                    above = below
                key = below - float(price[j, t])
                if best is None or key > best[0]:
                    best = (key, above, below, int(j))
            assert best is not None  # a segment has a compatible pool (validated)
            _, above, below, j = best
            p = float(price[j, t])
            floor = share if share is not None else 0.0
            # strictly above a value: throttling pays (a tie keeps the service)
            if p > below + PRICE_TOL * max(1.0, abs(below)):
                throttle = 0.0
            elif p > above + PRICE_TOL * max(1.0, abs(above)):
                throttle = floor
            else:
                throttle = 1.0
            usage = float(arr.demand[i, t])
            served = float(seg.served[i, t])
            lost_units = max(floor * usage - served, 0.0) if share is not None else usage - served
            rows.append(
                SubscriptionResult(
                    segment=s.id,
                    kind=s.kind.value,
                    period=labels[t],
                    subscribers=float(n[t]),
                    fees=float(arr.sub_fees[i, t]) if arr.sub_fees is not None else 0.0,
                    usage=usage,
                    served=served,
                    served_share=served / usage if usage > 0 else 1.0,
                    min_service_share=floor,
                    ltv_lost=float(loss[t] * max(lost_units, 0.0)),
                    value_above_floor_per_gpu_hour=above,
                    value_below_floor_per_gpu_hour=below,
                    pool=sc.pools[j].id,
                    gpu_price_elsewhere=p,
                    throttle_to=throttle,
                )
            )
    return Table.from_rows(SubscriptionResult, rows)


PRICE_TOL = 1e-7


def shadow_prices(
    lp: LinearProgram, sol: Solution, arr: ScenarioArrays
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """d objective / d (GPUs of a pool in a period) per GPU-hour, in present value and in
    the period's own money; (None, None) without duals."""
    if sol.row_dual is None:
        return None, None
    cap = lp.block("pool-capacity")
    assert cap is not None
    dual = sol.row_dual[cap.start : cap.stop].reshape(arr.gpus.shape)
    price_pv = np.maximum(dual, 0.0) / arr.hours[None, :]
    return price_pv, price_pv / arr.discount[None, :]


def pool_sums(
    lp: LinearProgram,
    sol: Solution,
    arr: ScenarioArrays,
    dec: Decisions,
    flows: Flows,
    cache: ReadOutCache | None = None,
) -> PoolSums:
    """GPUs used, costs and shadow prices per (pool, period)."""
    shape = arr.gpus.shape
    hours = arr.hours[None, :]
    # a GPU bought in tau pays the capex per GPU-hour of tau in every period from tau on
    expansion = (
        np.cumsum(np.diff(dec.bought, axis=1, prepend=0.0) * arr.expand_cost, axis=1) * hours
        if arr.expand_cost is not None
        else np.zeros(shape)
    )
    price_pv, price_nominal = shadow_prices(lp, sol, arr)
    return PoolSums(
        used=_sum_by(lp, shape, "pool", dec.x, dec.k, cache, "pool.used"),
        variable_cost=_sum_by(
            lp, shape, "pool", flows.variable_cost, flows.k_variable_cost, cache, "pool.cost"
        ),
        rental_cost=dec.rented * hours * arr.rental_price,
        fixed_cost=arr.gpus * hours * arr.fixed_cost,
        expansion_cost=expansion,
        price_pv=price_pv,
        price_nominal=price_nominal,
    )


def totals(
    sc: Scenario,
    lp: LinearProgram,
    sol: Solution,
    arr: ScenarioArrays,
    flows: Flows,
    seg: SegmentSums,
    pool: PoolSums,
) -> Totals:
    """Present values over the horizon; the objective is the solver's where it has one."""
    df = arr.discount

    def pv(a: np.ndarray) -> float:
        return float(np.sum(a * df))  # a is (.., T) nominal by period

    revenue, ltv, churn = pv(seg.revenue), pv(seg.ltv), pv(seg.churn)
    gm = revenue - pv(pool.variable_cost) - pv(pool.rental_cost) - pv(seg.penalty)
    fixed, expansion = pv(pool.fixed_cost), pv(pool.expansion_cost)
    w = sc.policy.ltv_weight
    objective = gm + w * ltv - churn - expansion if sol.objective is None else sol.objective
    return Totals(
        revenue=revenue,
        variable_cost=pv(pool.variable_cost),
        rental_cost=pv(pool.rental_cost),
        shortfall_penalty=pv(seg.penalty),
        gross_margin=gm,
        fixed_cost=fixed,
        margin_after_depreciation=gm - fixed - expansion,
        ltv=ltv,
        ltv_weight=w,
        churn_cost=churn,
        objective=float(objective),
        expansion_cost=expansion,
        reservation_revenue=float(np.sum(flows.k_fee * df[lp.columns.rsv_period])),
    )


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole in [0, 1]; 1 where there is nothing to serve."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.divide(part, whole, out=np.ones_like(whole), where=whole > 0)
    return np.clip(out, 0.0, 1.0)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a]


def by_kind(arr: ScenarioArrays, seg: SegmentSums) -> dict[str, KindResult]:
    """Money (present value) and GPUs, revenue and served share by period, per kind."""
    df = arr.discount

    def pv(a: np.ndarray) -> float:
        return float(np.sum(a * df))

    out: dict[str, KindResult] = {}
    for k_ix, kind in enumerate(KINDS):
        sel = arr.kind == k_ix
        if not sel.any():
            continue
        out[kind.value] = KindResult(
            kind=kind.value,
            revenue=pv(seg.revenue[sel]),
            compute_cost=pv(seg.compute_cost[sel]),
            shortfall_penalty=pv(seg.penalty[sel]),
            gross_margin=pv(seg.margin[sel]),
            ltv=pv(seg.ltv[sel]),
            churn_cost=pv(seg.churn[sel]),
            revenue_by_period=_floats(seg.revenue[sel].sum(axis=0)),
            gpus_by_period=_floats(seg.gpus[sel].sum(axis=0)),
            served_share_by_period=_floats(
                _share(seg.served[sel].sum(axis=0), arr.demand[sel].sum(axis=0))
            ),
        )
    return out


def rentals_line(arr: ScenarioArrays, pool: PoolSums) -> dict[str, KindResult]:
    """by_kind's ``rentals`` line when a pool can rent: the rental cost (present value) as
    a compute cost and a negative gross margin, no revenue, LTV or GPUs (rented GPUs are
    counted in the kinds that use them), and no served share. The kinds' lines and this
    one add up to the totals' revenue, compute (variable + rental) cost and gross margin.

    Rentals are not charged to kinds: a rented GPU adds to a pool every kind on it shares,
    and which kind it serves is a choice among optimal plans, not a fact of the plan."""
    if not (arr.rentable > 0).any():
        return {}
    T = arr.hours.size
    rent = float(np.sum(pool.rental_cost * arr.discount))
    zeros = [0.0] * T
    return {
        RENTALS: KindResult(
            kind=RENTALS_LABEL,
            revenue=0.0,
            compute_cost=rent,
            shortfall_penalty=0.0,
            gross_margin=-rent,
            ltv=0.0,
            churn_cost=0.0,
            revenue_by_period=zeros,
            gpus_by_period=list(zeros),
            served_share_by_period=[],
        )
    }


def _ids(sc: Scenario) -> tuple[list[str], list[str], list[str]]:
    return [s.id for s in sc.segments], [p.id for p in sc.pools], sc.period_labels


KIND_NAMES = [k.value for k in KINDS]


def allocation_rows(
    sc: Scenario, lp: LinearProgram, arr: ScenarioArrays, dec: Decisions, flows: Flows
) -> Table[Allocation]:
    """One row per allocation column holding more than ZERO GPUs."""
    cols = lp.columns
    nz = np.nonzero(dec.x > ZERO)[0]
    seg_ids, pool_ids, periods = _ids(sc)
    seg = cols.x_segment[nz]
    return Table(
        Allocation,
        {
            "segment": Labels(seg, seg_ids),
            "kind": Labels(arr.kind[seg], KIND_NAMES),
            "mode": Labels.encode(arr.mode_names).take(cols.x_mode[nz]),
            "pool": Labels(cols.x_pool[nz], pool_ids),
            "period": Labels(cols.x_period[nz], periods),
            "gpus": dec.x[nz],
            "gpu_hours": flows.gpu_hours[nz],
            "units": flows.units[nz],
        },
    )


def segment_rows(sc: Scenario, arr: ScenarioArrays, seg: SegmentSums) -> Table[SegmentResult]:
    """One row per (segment, period), segments in scenario order."""
    S, T = arr.demand.shape
    seg_ids, _, periods = _ids(sc)
    si, ti = np.divmod(np.arange(S * T), T)
    units = Labels.encode(s.unit for s in sc.segments)
    return Table(
        SegmentResult,
        {
            "segment": Labels(si, seg_ids),
            "kind": Labels(arr.kind[si], KIND_NAMES),
            "period": Labels(ti, periods),
            "unit": units.take(si),
            "demand": arr.demand.ravel(),
            "served": seg.served.ravel(),
            "unserved": seg.unserved.ravel(),
            "gpus": seg.gpus.ravel(),
            "revenue": seg.revenue.ravel(),
            "compute_cost": seg.compute_cost.ravel(),
            "shortfall_penalty": seg.penalty.ravel(),
            "gross_margin": seg.margin.ravel(),
            "ltv": seg.ltv.ravel(),
            "churn_cost": seg.churn.ravel(),
            "contract_min": arr.contract_min.ravel(),
            "shortfall": seg.shortfall.ravel(),
        },
    )


def pool_rows(
    sc: Scenario, arr: ScenarioArrays, dec: Decisions, pool: PoolSums
) -> Table[PoolResult]:
    """One row per (pool, period), pools in scenario order."""
    P, T = arr.gpus.shape
    pj, pt = np.divmod(np.arange(P * T), T)
    _, pool_ids, periods = _ids(sc)
    own = arr.gpus + dec.bought
    capacity = own + dec.rented
    # own GPUs (bought ones too) after headroom; with rented ones what the plan may use
    usable_own = arr.usable + (1.0 - arr.headroom[:, None]) * dec.bought
    kept = own  # what headroom applies to: GPUs on hand; with sites, powered ones
    if dec.power is not None:  # a pool in a site can use its powered GPUs only
        kept = dec.power.effective + dec.bought
        usable_own = (1.0 - arr.headroom[:, None]) * kept
    usable = usable_own + dec.rented
    with np.errstate(divide="ignore", invalid="ignore"):
        utilisation = np.where(capacity > 0, pool.used / np.where(capacity > 0, capacity, 1), 0.0)
        of_usable = np.where(usable > 0, pool.used / np.where(usable > 0, usable, 1), 0.0)
    nominal, pv = pool.price_nominal, pool.price_pv
    return Table(
        PoolResult,
        {
            "pool": Labels(pj, pool_ids),
            "accelerator": Labels.encode(p.accelerator for p in sc.pools).take(pj),
            "region": Labels.encode(p.region for p in sc.pools).take(pj),
            "period": Labels(pt, periods),
            "gpus": arr.gpus.ravel().astype(float),
            "usable": usable_own.ravel().astype(float),
            "rented": dec.rented.ravel(),
            "used": pool.used.ravel(),
            "idle": np.maximum(usable - pool.used, 0.0).ravel(),
            "utilisation": utilisation.ravel(),
            "variable_cost": pool.variable_cost.ravel(),
            "rental_cost": pool.rental_cost.ravel(),
            "fixed_cost": pool.fixed_cost.ravel(),
            "shadow_price_per_gpu_hour": None if nominal is None else nominal.ravel(),
            "shadow_price_pv_per_gpu_hour": None if pv is None else pv.ravel(),
            "bought": dec.bought.ravel(),
            "expansion_cost": pool.expansion_cost.ravel(),
            "utilisation_of_usable": of_usable.ravel(),
            "headroom_gpus": (kept - usable_own).ravel(),
        },
    )


def reservation_rows(
    sc: Scenario, lp: LinearProgram, arr: ScenarioArrays, dec: Decisions, flows: Flows
) -> Table[ReservationResult]:
    """One row per reservation column holding more than ZERO GPUs."""
    cols = lp.columns
    keep = np.nonzero(dec.k > ZERO)[0]
    seg_ids, pool_ids, periods = _ids(sc)
    seg = cols.rsv_segment[keep]
    return Table(
        ReservationResult,
        {
            "segment": Labels(seg, seg_ids),
            "kind": Labels(arr.kind[seg], KIND_NAMES),
            "pool": Labels(cols.rsv_pool[keep], pool_ids),
            "period": Labels(cols.rsv_period[keep], periods),
            "gpus": dec.k[keep],
            "gpu_hours": flows.k_hours[keep],
            "revenue": flows.k_fee[keep],
        },
    )


def plan_warnings(lp: LinearProgram, sol: Solution, viol: dict[str, float]) -> list[str]:
    """The LP's scaling warnings, a violated requirement, missing duals."""
    out = list(lp.warnings)
    worst = max(viol.values(), default=0.0)
    if worst > 1e-6:
        out.append(
            f"the plan violates a requirement by {worst:.2e} (relative): "
            f"{max(viol, key=lambda k: viol[k])}"
        )
    if sol.row_dual is None:
        out.append(
            "the solver returned no duals: shadow prices are not available"
            + (f" ({sol.duals_note})" if sol.duals_note else "")
        )
    return out


def solver_info(lp: LinearProgram, sol: Solution, build_time_s: float) -> SolverInfo:
    """How the plan was solved, and the model's size."""
    return SolverInfo(
        solver=sol.solver,
        algorithm=sol.algorithm,
        raw_status=sol.raw_status,
        time_s=sol.time_s,
        build_time_s=build_time_s,
        iterations=sol.iterations,
        columns=lp.num_cols,
        rows=lp.num_rows,
        nonzeros=lp.nnz,
        backend=sol.backend,
        integer_columns=lp.num_integer,
        gap=sol.gap,
        bound=sol.bound,
        lp_relaxation_objective=sol.lp_bound,
        duals_from=sol.duals_from if sol.row_dual is not None else "none",
        whole_units_from=sol.whole_units_from,
        bound_from=sol.bound_from,
        first_stage_objective=sol.extra.get("first_stage_objective"),
        stable_time_s=sol.extra.get("stable_s"),
    )


def binding_rows(
    sc: Scenario,
    lp: LinearProgram,
    sol: Solution,
    x_full: np.ndarray,
    cache: ReadOutCache | None = None,
) -> Table[Binding]:
    """Rows at one of their bounds, with a non-zero dual where duals exist; the largest
    duals first (ties in row order). With a ``cache``, the rows of the periods it marks
    are checked again and the others' verdicts and keys kept."""
    check = _rows_to_check(lp, sc, cache)
    A = lp.A if check is None else lp.A[check]
    act = A @ x_full if lp.num_rows else np.zeros(0)
    rows = np.arange(lp.num_rows) if check is None else check
    hi, lo = lp.row_upper[rows], lp.row_lower[rows]
    tol = 1e-7 * np.maximum(1.0, np.abs(act))
    at_upper = np.isfinite(hi) & (np.abs(act - hi) <= tol)
    tight = at_upper | (np.isfinite(lo) & (np.abs(act - lo) <= tol))
    if sol.row_dual is not None:
        tight &= np.abs(sol.row_dual[rows]) > 1e-9
    rows, at_upper = rows[tight], at_upper[tight]
    keys = _binding_keys(sc, lp, rows)
    if check is not None and cache is not None and cache.binding is not None:
        old_rows, old_keys, old_upper = cache.binding
        keep = np.ones(old_rows.size, dtype=bool)
        keep[np.isin(old_rows, check)] = False
        rows = np.concatenate([old_rows[keep], rows])
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        keys = np.concatenate([old_keys[keep], keys])[order]
        at_upper = np.concatenate([old_upper[keep], at_upper])[order]
    if cache is not None:
        cache.binding = (rows, keys, at_upper)
    dual = None if sol.row_dual is None else sol.row_dual[rows]
    order = np.argsort(-np.abs(dual), kind="stable") if dual is not None else np.arange(rows.size)
    block_of = np.searchsorted([b.start for b in lp.blocks], rows, side="right") - 1
    used = np.unique(block_of)  # the blocks with a binding row, in the model's order
    return Table(
        Binding,
        {
            "constraint": Labels(
                np.searchsorted(used, block_of)[order], [lp.blocks[i].name for i in used]
            ),
            "key": keys[order],
            "bound": Labels(np.where(at_upper, 0, 1)[order], ["upper", "lower"]),
            "dual": None if dual is None else dual[order],
        },
        n=rows.size,
    )


def _rows_to_check(
    lp: LinearProgram, sc: Scenario, cache: ReadOutCache | None
) -> np.ndarray | None:
    """The rows touching the periods the cache marks changed (None: every row)."""
    if cache is None or cache.binding is None or cache.periods is None:
        return None
    T = len(sc.periods)
    if cache.row_span is None or cache.row_span.shape[0] != lp.num_rows:
        cache.row_span = row_spans(lp, T)
    lo, hi = cache.row_span[:, 0], cache.row_span[:, 1]
    changed = np.concatenate([[0], np.cumsum(cache.periods)])
    return np.nonzero(changed[hi + 1] - changed[lo] > 0)[0]


def _binding_keys(sc: Scenario, lp: LinearProgram, rows: np.ndarray) -> np.ndarray:
    """{dimension: id} of each of ``rows`` (ascending), as an object array."""
    names = {
        "pool": [p.id for p in sc.pools],
        "segment": [s.id for s in sc.segments],
        "period": sc.period_labels,
        "kind": KIND_NAMES,
        **extra_key_names(sc),
    }
    keys: list[dict[str, str]] = []
    for b in lp.blocks:
        lo, hi = np.searchsorted(rows, [b.start, b.stop])
        if hi == lo:
            continue
        at = rows[lo:hi] - b.start
        cols = [(dim, [names[dim][k] for k in ix[at].tolist()]) for dim, ix in b.keys.items()]
        keys += [dict(zip(dims, vals, strict=True)) for dims, vals in _key_rows(cols, at.size)]
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    return out


def _key_rows(
    cols: list[tuple[str, list[str]]], n: int
) -> Iterator[tuple[list[str], tuple[str, ...]]]:
    """(dimension names, values) of each of ``n`` rows of a block."""
    dims = [dim for dim, _ in cols]
    if not cols:
        return ((dims, ()) for _ in range(n))
    return ((dims, vals) for vals in zip(*(v for _, v in cols), strict=True))


def move_rows(sc: Scenario, lp: LinearProgram, arr: ScenarioArrays, dec: Decisions) -> Table[Move]:
    """GPUs moved per (segment, pool) between consecutive periods, from the same change
    rows the stability limit and the stable plan use; pairs that never move are left out."""
    cols = lp.columns
    T = arr.hours.size
    rows, col, vals, ps, pp = held_changes(cols, arr.gpus.shape[0], T)
    held = np.zeros(cols.n_columns)
    held[: cols.n_x] = dec.x
    held[cols.rsv_offset : cols.rsv_offset + cols.n_rsv] = dec.k
    n = int(ps.size)
    change = np.bincount(rows, weights=vals * held[col], minlength=n * max(T - 1, 0))
    size = np.abs(change).reshape(n, max(T - 1, 0))
    moved = size.sum(axis=1)
    keep = np.nonzero(moved > ZERO * max(1.0, float(moved.max(initial=0.0))))[0]
    largest = size.argmax(axis=1)[keep] if T > 1 else np.zeros(0, dtype=np.int64)
    seg_ids, pool_ids, periods = _ids(sc)
    return Table(
        Move,
        {
            "segment": Labels(ps[keep], seg_ids),
            "kind": Labels(arr.kind[ps[keep]], KIND_NAMES),
            "pool": Labels(pp[keep], pool_ids),
            "moved_gpus": moved[keep],
            "largest_move_gpus": size[keep, largest] if keep.size else np.zeros(0),
            "largest_move_period": Labels(largest + 1, periods),
        },
    )
