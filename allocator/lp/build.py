"""build_lp(scenario) -> LinearProgram, with whole numpy blocks, never an object per variable.

Notation (see the README's "Formulation"): x[s,m,p,t] GPUs of pool p given to segment s in
mode m during period t; r[p,t] rented GPUs; u[s,t] contract shortfall in work units.
h_t hours, d_t = (1+rate)^-t, a[s,m,p,t] = h_t * throughput[s, type(p)] * multiplier[m]
(work units one GPU delivers over the period).

Each ``define_*`` function adds one constraint family (its docstring states the
inequality) and returns early when nothing applies; :func:`build_lp` is the ordered list
of those calls. Every family is written in GPUs; :func:`define_allocation_units` then
substitutes x = N * n (n integer) for pools allocated in whole units of N GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from allocator.lp.arrays import KINDS, BudgetArrays, GpuLimitArrays, ScenarioArrays
from allocator.lp.program import ColumnIndex, LinearProgram, RowBlock
from allocator.scenario import Kind, Scenario, per_period

INF = np.inf


class _Rows:
    """Collects COO triplets and row bounds block by block."""

    def __init__(self) -> None:
        self.n = 0
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.blocks: list[RowBlock] = []

    def add(
        self,
        name: str,
        doc: str | None,
        keys: dict[str, np.ndarray],
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        size = int(lower.size)
        if size == 0:
            return
        self.rows.append(rows.astype(np.int64) + self.n)
        self.cols.append(cols.astype(np.int64))
        self.vals.append(np.asarray(vals, dtype=float))
        self.lower.append(np.asarray(lower, dtype=float))
        self.upper.append(np.asarray(upper, dtype=float))
        self.blocks.append(
            RowBlock(name, self.n, self.n + size, keys, (doc or "").strip().split("\n")[0])
        )
        self.n += size

    def matrix(self, n_cols: int) -> sp.csr_matrix:
        if not self.rows:
            return sp.csr_matrix((0, n_cols))
        coo = sp.coo_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.n, n_cols),
        )
        A = coo.tocsr()
        A.sum_duplicates()
        return A


@dataclass
class _Ctx:
    sc: Scenario
    arr: ScenarioArrays
    cols: ColumnIndex
    rows: _Rows

    @property
    def T(self) -> int:
        return len(self.sc.periods)


# ----------------------------------------------------------------------------- columns
def define_columns(arr: ScenarioArrays) -> ColumnIndex:
    """x for each compatible (segment, mode, pool) and every period; r where rentable;
    u where a soft contract minimum is positive."""
    T = arr.hours.size
    M = arr.mode_segment.size
    comp = arr.compatible[arr.mode_segment]  # (M, P)
    m_idx, p_idx = np.nonzero(comp)
    n_pairs = m_idx.size
    x_mode = np.repeat(m_idx, T)
    x_pool = np.repeat(p_idx, T)
    x_period = np.tile(np.arange(T), n_pairs)
    x_segment = arr.mode_segment[x_mode]
    units = (
        arr.hours[x_period]
        * arr.throughput[x_segment, x_pool, x_period]
        * arr.mode_mult[x_mode, x_period]
    )
    r_pool, r_period = np.nonzero(arr.rentable > 0)
    soft = (arr.contract_min > 0) & ~arr.contract_hard[:, None]
    u_segment, u_period = np.nonzero(soft)
    modes = [(int(arr.mode_segment[k]), arr.mode_names[k]) for k in range(M)]
    # expansion: one column per (pool, period >= its first period): GPUs bought then
    e_pool, e_period = _expansion_columns(arr, T)
    # reservations: (segment, compatible pool, period with an offer)
    res = arr.res_max if arr.res_max is not None else np.zeros((0, T))
    k_seg, k_per = np.nonzero(res > 0)
    o_idx, k_pool = np.nonzero(arr.compatible[k_seg])  # (offers, P)
    k_seg, k_per = k_seg[o_idx], k_per[o_idx]
    y_tier, y_period = _tier_columns(arr, T)
    w_pool, w_level, w_period = _powered_columns(arr, T)
    rt_pool, rt_period = _retirement_columns(arr, T)
    return ColumnIndex(
        x_segment,
        x_mode,
        x_pool,
        x_period,
        units,
        r_pool,
        r_period,
        u_segment,
        u_period,
        modes,
        e_pool,
        e_period,
        k_seg.astype(np.int64),
        k_pool.astype(np.int64),
        k_per.astype(np.int64),
        arr.tier_segment[y_tier] if arr.tier_segment is not None else y_tier,
        y_tier,
        y_period,
        arr.tier_rank[y_tier] if arr.tier_rank is not None else y_tier,
        w_pool,
        w_period,
        w_level,
        rt_pool,
        rt_period,
    )


def _powered_columns(arr: ScenarioArrays, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column per (pool in a site, power level, period): GPUs powered at that level
    (-1: full power; else a power cap of ScenarioArrays' levels), ordered by pool, then
    level (full first), then period."""
    sited = np.nonzero(arr.sited)[0]
    lp_ = arr.level_pool if arr.level_pool is not None else np.zeros(0, dtype=np.int64)
    pools = np.concatenate([sited, lp_])
    levels = np.concatenate([np.full(sited.size, -1), np.arange(lp_.size)])
    order = np.lexsort((levels, pools))
    pools, levels = pools[order], levels[order]
    return (
        np.repeat(pools, T).astype(np.int64),
        np.repeat(levels, T).astype(np.int64),
        np.tile(np.arange(T, dtype=np.int64), pools.size),
    )


def _retirement_columns(arr: ScenarioArrays, T: int) -> tuple[np.ndarray, np.ndarray]:
    """One column per (pool with retirement, period from its first): GPUs retired then."""
    if arr.retire_from is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    start = arr.retire_from
    grid = (np.arange(T)[None, :] >= start[:, None]) & (start >= 0)[:, None]
    p, t = np.nonzero(grid)
    return p.astype(np.int64), t.astype(np.int64)


def _tier_columns(arr: ScenarioArrays, T: int) -> tuple[np.ndarray, np.ndarray]:
    """One column per (tier, period) with units on offer: work units served in the tier."""
    if arr.tier_units is None or arr.tier_units.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n, t = np.nonzero(arr.tier_units > 0)
    return n.astype(np.int64), t.astype(np.int64)


def _expansion_columns(arr: ScenarioArrays, T: int) -> tuple[np.ndarray, np.ndarray]:
    start = arr.expand_from if arr.expand_from is not None else np.zeros(0, dtype=np.int64)
    ok = start >= 0
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    grid = np.arange(T)[None, :] >= start[:, None]  # (P, T)
    grid &= ok[:, None]
    e_pool, e_period = np.nonzero(grid)
    return e_pool.astype(np.int64), e_period.astype(np.int64)


def define_objective(ctx: _Ctx) -> tuple[np.ndarray, float]:
    """max sum_t d_t [ sum x*a*((rev*rs + w*ltv*ls + churn)) - x*h_t*varcost
    - r*h_t*rent - u*penalty + k*h_t*(fee - varcost) ] - capex of e
    + y*(tier price + w*tier ltv) - sum_t d_t churn*demand + sum_t d_t fees
    (the last two terms are the offset; k GPUs reserved; y units served in a price tier;
    fees of subscribers, earned whether served or not).
    Every per-unit number is the one of the column's period (rev[s,t], varcost[p,t] …);
    a GPU bought in tau pays the capex of tau in every period from tau on."""
    a, c, w = ctx.arr, ctx.cols, ctx.sc.policy.ltv_weight
    s, m, p, t = c.x_segment, c.x_mode, c.x_pool, c.x_period
    value_per_unit = (
        a.revenue[s, t] * a.mode_rev_share[m]
        + w * a.ltv[s, t] * a.mode_ltv_share[m]
        + a.churn[s, t]
    )
    cx = a.discount[t] * (c.x_units_per_gpu * value_per_unit - a.hours[t] * a.var_cost[p, t])
    cr = -a.discount[c.r_period] * a.hours[c.r_period] * a.rental_price[c.r_pool, c.r_period]
    cu = -a.discount[c.u_period] * a.penalty[c.u_segment, c.u_period]
    # a GPU bought in period tau costs its amortised capex in every period from tau on
    ce = np.zeros(c.n_e)
    if c.n_e:
        assert a.expand_cost is not None
        tail = np.cumsum((a.discount * a.hours)[::-1])[::-1]  # sum_{t >= tau} d_t h_t
        ce = -a.expand_cost[c.e_pool, c.e_period] * tail[c.e_period]
    # a reserved GPU earns its fee every hour and runs the customer's work (variable cost)
    ks, kp, kt = c.rsv_segment, c.rsv_pool, c.rsv_period
    ck = np.zeros(c.n_rsv)
    if c.n_rsv:
        assert a.res_price is not None
        ck = a.discount[kt] * a.hours[kt] * (a.res_price[ks] - a.var_cost[kp, kt])
    offset = -float(np.sum(a.discount[None, :] * a.churn * a.demand))
    # price tiers: a unit served in tier i earns its price (and LTV) in its period
    cy = np.zeros(c.n_tier)
    if c.n_tier:
        assert a.tier_price is not None and a.tier_ltv is not None
        i, ty = c.tier_index, c.tier_period
        cy = a.discount[ty] * (a.tier_price[i, ty] + w * a.tier_ltv[i, ty])
    # subscribers' fees are earned whether usage is served or not: a constant
    if a.sub_fees is not None:
        offset += float(np.sum(a.discount[None, :] * a.sub_fees))
    # powered GPUs cost nothing themselves: the energy of a GPU-hour is in var_cost
    cw = np.zeros(c.n_pw)
    # a GPU retired in t earns its salvage once, then nothing
    crt = np.zeros(c.n_rt)
    if c.n_rt:
        assert a.salvage is not None
        crt = a.discount[c.rt_period] * a.salvage[c.rt_pool, c.rt_period]
    return np.concatenate([cx, cr, cu, ce, ck, cy, cw, crt]), offset


def define_bounds(ctx: _Ctx) -> tuple[np.ndarray, np.ndarray]:
    """x >= 0; 0 <= r <= rentable; u >= 0.

    x gets no upper bound on purpose: a bound that repeats a capacity or demand row
    (one-pool segments) makes the optimum degenerate and moves the shadow price from the
    row to the bound, where a planner would not find it."""
    a, c = ctx.arr, ctx.cols
    ux = np.full(c.n_x, INF)
    ur = a.rentable[c.r_pool, c.r_period]
    uu = np.full(c.n_u, INF)
    ue = np.full(c.n_e, INF)  # limited by the pool-expansion row
    uk = np.full(c.n_rsv, INF)  # limited by the reservation-limit row
    uy = (
        a.tier_units[c.tier_index, c.tier_period]
        if a.tier_units is not None and c.n_tier
        else np.zeros(0)
    )  # 0 <= y <= units of the tier
    uw = a.gpus[c.pw_pool, c.pw_period]  # powered GPUs <= GPUs on hand
    urt = np.full(c.n_rt, INF)  # limited by the pool-powered row
    n = c.n_columns
    return np.zeros(n), np.concatenate([ux, ur, uu, ue, uk, uy, uw, urt])


# ------------------------------------------------------------------------- constraints
def define_pool_capacity(ctx: _Ctx) -> None:
    """pool-capacity[p,t]:  sum_{s,m} x[s,m,p,t] + sum_s k[s,p,t] - r[p,t]
    - (1 - headroom_p) sum_{tau<=t} e[p,tau] <= (1 - headroom_p) * gpus[p,t]
    (e: GPUs bought, expansion mode; k: GPUs reserved, used or not); for a pool in a
    site the powered GPUs replace its GPUs on hand, in full-power throughput:
    ... - (1 - headroom_p) * sum_l ts_l * w[p,l,t] <= 0 (ts_l: the throughput share of
    power level l, 1 at full power; see define_site_power, define_pool_powered)."""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    P = a.gpus.shape[0]
    # a GPU bought in tau adds capacity in every period t >= tau
    e_cols, e_p, e_t = _stock_entries(c, T)
    rows = np.concatenate(
        [
            c.x_pool * T + c.x_period,
            c.r_pool * T + c.r_period,
            e_p * T + e_t,
            c.rsv_pool * T + c.rsv_period,
        ]
    )
    cols = np.concatenate(
        [
            np.arange(c.n_x),
            c.r_offset + np.arange(c.n_r),
            e_cols,
            c.rsv_offset + np.arange(c.n_rsv),
        ]
    )
    vals = np.concatenate(
        [np.ones(c.n_x), -np.ones(c.n_r), -(1.0 - a.headroom[e_p]), np.ones(c.n_rsv)]
    )
    upper = a.usable.ravel()
    if c.n_pw:  # powered GPUs, not GPUs on hand, bound a sited pool
        rows = np.concatenate([rows, c.pw_pool * T + c.pw_period])
        cols = np.concatenate([cols, c.pw_offset + np.arange(c.n_pw)])
        vals = np.concatenate([vals, -(1.0 - a.headroom[c.pw_pool]) * _level_share(a, c, "tp")])
        upper = np.where(np.repeat(a.sited, T), 0.0, upper)
    pp, tt = np.divmod(np.arange(P * T), T)
    ctx.rows.add(
        "pool-capacity",
        define_pool_capacity.__doc__,
        {"pool": pp, "period": tt},
        rows,
        cols,
        vals,
        np.full(P * T, -INF),
        upper,
    )


def _from_then_on(
    offset: int, pool: np.ndarray, period: np.ndarray, T: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For columns ``offset + i`` of a (pool, period) family whose value counts in every
    period t >= its own (GPUs bought, GPUs retired): (column, pool, t) of every such pair."""
    later = T - period
    cols = np.repeat(offset + np.arange(pool.size), later)
    t = np.repeat(period, later) + (
        np.arange(int(later.sum())) - np.repeat(np.cumsum(later) - later, later)
    )
    return cols, np.repeat(pool, later), t


def _stock_entries(c: ColumnIndex, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every expansion column e[p,tau] and every period t >= tau it adds GPUs to:
    (column, pool, t)."""
    return _from_then_on(c.e_offset, c.e_pool, c.e_period, T)


def _level_share(a: ScenarioArrays, c: ColumnIndex, what: str) -> np.ndarray:
    """Per powered column: the share of throughput ("tp") or of kW ("kw") of its level
    (1 at full power)."""
    share = a.level_throughput if what == "tp" else a.level_power
    if share is None or share.size == 0:
        return np.ones(c.n_pw)
    return np.where(c.pw_level < 0, 1.0, share[np.maximum(c.pw_level, 0)])


def define_pool_powered(ctx: _Ctx) -> None:
    """pool-powered[p,t]:  sum_l w[p,l,t] + sum_{tau<=t} z[p,tau] <= gpus[p,t]
    (GPUs powered at every level and GPUs retired so far, within the GPUs on hand); only
    for pools with power levels or retirement (otherwise w's own bound says it)."""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    if c.n_pw == 0:
        return
    P = a.gpus.shape[0]
    need = np.zeros(P, dtype=bool)
    need[c.pw_pool[c.pw_level >= 0]] = True
    need[c.rt_pool] = True
    pools = np.nonzero(need)[0]
    if pools.size == 0:
        return
    row_of = np.full(P, -1, dtype=np.int64)
    row_of[pools] = np.arange(pools.size)
    on = need[c.pw_pool]
    # a GPU retired in tau is gone in every period t >= tau
    rt_cols, rt_p, rt_t = _from_then_on(c.rt_offset, c.rt_pool, c.rt_period, T)
    ctx.rows.add(
        "pool-powered",
        define_pool_powered.__doc__,
        {"pool": np.repeat(pools, T), "period": np.tile(np.arange(T), pools.size)},
        np.concatenate([row_of[c.pw_pool[on]] * T + c.pw_period[on], row_of[rt_p] * T + rt_t]),
        np.concatenate([c.pw_offset + np.nonzero(on)[0], rt_cols]),
        np.ones(int(on.sum()) + rt_cols.size),
        np.full(pools.size * T, -INF),
        a.gpus[pools].ravel(),
    )


def define_site_power(ctx: _Ctx) -> None:
    """site-power[q,t]:  sum_{p in site q} kw_p * (sum_l ps_l w[p,l,t] + sum_{tau<=t} e[p,tau])
    <= 1000 * power_mw[q,t]  (w: GPUs powered at level l drawing the share ps_l of their
    kW; e: GPUs bought, which need full power too); in kW, so its dual is the value of
    one more kW over the period (present value)."""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    if c.n_pw == 0:
        return
    assert a.site_of is not None and a.power_kw is not None and a.site_kw is not None
    e_cols, e_p, e_t = _stock_entries(c, T)
    bought = a.sited[e_p]
    pools = np.concatenate([c.pw_pool, e_p[bought]])
    per = np.concatenate([c.pw_period, e_t[bought]])
    Q = a.site_kw.shape[0]
    qq, tt = np.divmod(np.arange(Q * T), T)
    ctx.rows.add(
        "site-power",
        define_site_power.__doc__,
        {"site": qq, "period": tt},
        a.site_of[pools] * T + per,
        np.concatenate([c.pw_offset + np.arange(c.n_pw), e_cols[bought]]),
        a.power_kw[pools] * np.concatenate([_level_share(a, c, "kw"), np.ones(int(bought.sum()))]),
        np.full(Q * T, -INF),
        a.site_kw.ravel(),
    )


def define_pool_expansion(ctx: _Ctx) -> None:
    """pool-expansion[p]:  sum_tau e[p,tau] <= expansion.max_gpus of p"""
    a, c = ctx.arr, ctx.cols
    if c.n_e == 0:
        return
    assert a.expand_max is not None
    pools = np.unique(c.e_pool)
    row_of = np.full(a.gpus.shape[0], -1, dtype=np.int64)
    row_of[pools] = np.arange(pools.size)
    ctx.rows.add(
        "pool-expansion",
        define_pool_expansion.__doc__,
        {"pool": pools},
        row_of[c.e_pool],
        c.e_offset + np.arange(c.n_e),
        np.ones(c.n_e),
        np.full(pools.size, -INF),
        a.expand_max[pools],
    )


def define_segment_demand(ctx: _Ctx) -> None:
    """segment-demand[s,t]:  sum_{m,p} a[s,m,p,t] * x[s,m,p,t] <= demand[s,t]"""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    S = a.demand.shape[0]
    ss, tt = np.divmod(np.arange(S * T), T)
    ctx.rows.add(
        "segment-demand",
        define_segment_demand.__doc__,
        {"segment": ss, "period": tt},
        c.x_segment * T + c.x_period,
        np.arange(c.n_x),
        c.x_units_per_gpu,
        np.full(S * T, -INF),
        a.demand.ravel(),
    )


def define_segment_contract(ctx: _Ctx) -> None:
    """segment-contract[s,t]:  sum_{m,p} a * x[s,m,p,t] + u[s,t] >= contract_min[s,t]
    (u only when the contract is soft; a hard contract has no u)."""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    ss, tt = np.nonzero(a.contract_min > 0)
    if ss.size == 0:
        return
    row_of = np.full(a.contract_min.size, -1, dtype=np.int64)
    row_of[ss * T + tt] = np.arange(ss.size)
    xr = row_of[c.x_segment * T + c.x_period]
    keep = xr >= 0
    rows = np.concatenate([xr[keep], row_of[c.u_segment * T + c.u_period]])
    cols = np.concatenate([np.nonzero(keep)[0], c.u_offset + np.arange(c.n_u)])
    vals = np.concatenate([c.x_units_per_gpu[keep], np.ones(c.n_u)])
    ctx.rows.add(
        "segment-contract",
        define_segment_contract.__doc__,
        {"segment": ss, "period": tt},
        rows,
        cols,
        vals,
        a.contract_min[ss, tt],
        np.full(ss.size, INF),
    )


def define_rnd_floor(ctx: _Ctx) -> None:
    """rnd-floor[t]:  sum_{s in R&D, m, p} x[s,m,p,t] (+ k reserved) >= rnd_min_share *
    sum_p gpus[p,t]"""
    share = ctx.sc.policy.rnd_min_share
    if share <= 0:
        return
    a, c, T = ctx.arr, ctx.cols, ctx.T
    cols, seg, per = _held(c)
    sel = a.kind[seg] == KINDS.index(Kind.RND)
    ctx.rows.add(
        "rnd-floor",
        define_rnd_floor.__doc__,
        {"period": np.arange(T)},
        per[sel],
        cols[sel],
        np.ones(int(sel.sum())),
        share * a.gpus.sum(axis=0),
        np.full(T, INF),
    )


def _held(c: ColumnIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns of GPUs a segment holds (allocations x and reservations k), with their
    segment and period: what floors, caps and shares count."""
    return (
        np.concatenate([np.arange(c.n_x), c.rsv_offset + np.arange(c.n_rsv)]),
        np.concatenate([c.x_segment, c.rsv_segment]),
        np.concatenate([c.x_period, c.rsv_period]),
    )


def _rsv_pairs(c: ColumnIndex, P: int, ps: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """The (segment, pool) pair index (of :func:`_pairs`) of each reservation column: a
    reservation's pool always serves its segment, so the pair has x columns too."""
    return np.searchsorted(ps * P + pp, c.rsv_segment * P + c.rsv_pool)


def _pairs(c: ColumnIndex, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment, pool) pairs that have x columns: pair id per x column, and the pairs."""
    key = c.x_segment * P + c.x_pool
    uniq, pair = np.unique(key, return_inverse=True)
    return pair, uniq // P, uniq % P


def held_changes(
    c: ColumnIndex, P: int, T: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The change y[s,p,t] - y[s,p,t-1] of the GPUs a segment holds in a pool (allocations
    over every mode plus reservations), t >= 1, as COO triplets ``(rows, cols, vals)`` over
    one row per (pair, period): row ``pair * (T - 1) + t - 1``; with the pairs' segments
    and pools ``(ps, pp)``. Shared by the stability limit and the stable plan's moves."""
    pair, ps, pp = _pairs(c, P)
    later = c.x_period >= 1
    row = pair * (T - 1) + c.x_period - 1
    cols_now = np.nonzero(later)[0]
    rows = [row[later], row[later]]
    cols = [cols_now, cols_now - 1]  # x ordered by period within a triple
    vals = [np.ones(cols_now.size), -np.ones(cols_now.size)]
    if c.n_rsv:  # reserved GPUs are held by the segment in the pool too
        kpair = _rsv_pairs(c, P, ps, pp)
        kcol = c.rsv_offset + np.arange(c.n_rsv)
        now, nxt = c.rsv_period >= 1, c.rsv_period <= T - 2
        rows += [
            kpair[now] * (T - 1) + c.rsv_period[now] - 1,
            kpair[nxt] * (T - 1) + c.rsv_period[nxt],
        ]
        cols += [kcol[now], kcol[nxt]]
        vals += [np.ones(int(now.sum())), -np.ones(int(nxt.sum()))]
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), ps, pp


def define_stability(ctx: _Ctx) -> None:
    """segment-stability[s,p,t], t >= 1:
    -D[p,t] <= y[s,p,t] - y[s,p,t-1] <= D[p,t],  y = sum_m x[s,m,p,t] + k[s,p,t] (held),
    D[p,t] = max_change_share * max(capacity[p,t], capacity[p,t-1]) (capacity incl. rentable),
    one ranged row per pair and period."""
    share = ctx.sc.policy.max_change_share
    T = ctx.T
    if share is None or T < 2:
        return
    a = ctx.arr
    cap = a.usable + a.rentable
    rows, cols, vals, ps, pp = held_changes(ctx.cols, cap.shape[0], T)
    rp = np.repeat(pp, T - 1)
    rt = np.tile(np.arange(1, T), ps.size)
    bound = share * np.maximum(cap[rp, rt], cap[rp, rt - 1])
    ctx.rows.add(
        "segment-stability",
        define_stability.__doc__,
        {"segment": np.repeat(ps, T - 1), "pool": rp, "period": rt},
        rows,
        cols,
        vals,
        -bound,
        bound,
    )


def define_segment_share(ctx: _Ctx) -> None:
    """segment-share[s,p,t]:  sum_m x[s,m,p,t] + k[s,p,t] <= max_segment_share * capacity[p,t]
    (capacity = GPUs after headroom + rentable)."""
    share = ctx.sc.policy.max_segment_share
    if share is None:
        return
    a, c, T = ctx.arr, ctx.cols, ctx.T
    cap = a.usable + a.rentable
    P = cap.shape[0]
    pair, ps, pp = _pairs(c, P)
    rp = np.repeat(pp, T)
    rt = np.tile(np.arange(T), ps.size)
    kpair = _rsv_pairs(c, P, ps, pp)
    ctx.rows.add(
        "segment-share",
        define_segment_share.__doc__,
        {"segment": np.repeat(ps, T), "pool": rp, "period": rt},
        np.concatenate([pair * T + c.x_period, kpair * T + c.rsv_period]),
        np.concatenate([np.arange(c.n_x), c.rsv_offset + np.arange(c.n_rsv)]),
        np.ones(c.n_x + c.n_rsv),
        np.full(rp.size, -INF),
        share * cap[rp, rt],
    )


def _define_kind_rows(ctx: _Ctx, name: str, limits: dict[Kind, object], floor: bool) -> None:
    a, c, T = ctx.arr, ctx.cols, ctx.T
    kinds = [k for k in KINDS if k in limits]
    if not kinds:
        return
    row_of_kind = np.full(len(KINDS), -1, dtype=np.int64)
    row_of_kind[[KINDS.index(k) for k in kinds]] = np.arange(len(kinds))
    cols, seg, per = _held(c)
    kr = row_of_kind[a.kind[seg]]
    keep = kr >= 0
    bound = np.array([per_period(limits[k], T) for k in kinds], dtype=float).ravel()  # type: ignore[arg-type,type-var]
    inf = np.full(bound.size, INF)
    ctx.rows.add(
        name,
        (define_kind_floors if floor else define_kind_caps).__doc__,
        {
            "kind": np.repeat([KINDS.index(k) for k in kinds], T),
            "period": np.tile(np.arange(T), len(kinds)),
        },
        kr[keep] * T + per[keep],
        cols[keep],
        np.ones(int(keep.sum())),
        bound if floor else -inf,
        inf if floor else bound,
    )


def define_kind_caps(ctx: _Ctx) -> None:
    """kind-cap[k,t]:  sum_{s of kind k, m, p} x[s,m,p,t] <= cap[k,t]"""
    _define_kind_rows(ctx, "kind-cap", dict(ctx.sc.policy.kind_caps), floor=False)


def define_kind_floors(ctx: _Ctx) -> None:
    """kind-floor[k,t]:  sum_{s of kind k, m, p} x[s,m,p,t] >= floor[k,t]"""
    _define_kind_rows(ctx, "kind-floor", dict(ctx.sc.policy.kind_floors), floor=True)


def define_reservations(ctx: _Ctx) -> None:
    """reservation-limit[s,t]:  sum_p k[s,p,t] <= reservation.max_gpus[s,t]"""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    if c.n_rsv == 0:
        return
    assert a.res_max is not None
    uniq, row = np.unique(c.rsv_segment * T + c.rsv_period, return_inverse=True)
    ss, tt = np.divmod(uniq, T)
    ctx.rows.add(
        "reservation-limit",
        define_reservations.__doc__,
        {"segment": ss, "period": tt},
        row,
        c.rsv_offset + np.arange(c.n_rsv),
        np.ones(c.n_rsv),
        np.full(uniq.size, -INF),
        a.res_max[ss, tt],
    )


def define_segment_tiers(ctx: _Ctx) -> None:
    """segment-tiers[s,t]:  sum_i y[s,i,t] - sum_{m,p} a[s,m,p,t] * x[s,m,p,t] <= 0
    (units sold in the price tiers are units served; tiers fill in falling price since
    the LP maximises: revenue concave in what is served). Its dual is the clearing price."""
    a, c, T = ctx.arr, ctx.cols, ctx.T
    if c.n_tier == 0:
        return
    uniq, row = np.unique(c.tier_segment * T + c.tier_period, return_inverse=True)
    ss, tt = np.divmod(uniq, T)
    row_of = np.full(a.demand.size, -1, dtype=np.int64)
    row_of[uniq] = np.arange(uniq.size)
    xr = row_of[c.x_segment * T + c.x_period]
    keep = xr >= 0
    ctx.rows.add(
        "segment-tiers",
        define_segment_tiers.__doc__,
        {"segment": ss, "period": tt},
        np.concatenate([row, xr[keep]]),
        np.concatenate([c.tier_offset + np.arange(c.n_tier), np.nonzero(keep)[0]]),
        np.concatenate([np.ones(c.n_tier), -c.x_units_per_gpu[keep]]),
        np.full(uniq.size, -INF),
        np.zeros(uniq.size),
    )


def define_segment_gpu_limits(ctx: _Ctx) -> None:
    """segment-gpus[s,a,t]:  min_gpus[s,a,t] <= sum_{m, p of type a} x[s,m,p,t] (+ k reserved)
    <= max_gpus[s,a,t]  (a = one accelerator type, or every type: "any"); one ranged row."""
    if not any(s.gpu_limits for s in ctx.sc.segments):
        return
    c, T = ctx.cols, ctx.T
    lim = GpuLimitArrays.of(ctx.sc)
    cols, seg, per = _held(c)
    pool = np.concatenate([c.x_pool, c.rsv_pool])
    pos, which = lim.held(seg, pool)
    L = lim.segment.size
    acc = np.where(lim.accelerator < 0, len(lim.accelerators), lim.accelerator)
    lower = np.where(lim.lower > 0, lim.lower, -INF).ravel()
    upper = lim.upper.ravel()
    # a period with neither a floor above 0 nor a cap has no row (a free row's dual is noise)
    kept = np.nonzero(np.isfinite(lower) | np.isfinite(upper))[0]
    if kept.size == 0:
        return
    row_of = np.full(L * T, -1, dtype=np.int64)
    row_of[kept] = np.arange(kept.size)
    r = row_of[which * T + per[pos]]
    on = r >= 0
    ctx.rows.add(
        "segment-gpus",
        define_segment_gpu_limits.__doc__,
        {
            "segment": np.repeat(lim.segment, T)[kept],
            "accelerator": np.repeat(acc, T)[kept],
            "period": np.tile(np.arange(T), L)[kept],
        },
        r[on],
        cols[pos][on],
        np.ones(int(on.sum())),
        lower[kept],
        upper[kept],
    )


def define_gpu_hour_budgets(ctx: _Ctx) -> None:
    """gpu-hour-budget[b]:  min_gpu_hours[b] <= sum_{t in window b} h_t sum_{s of b, m,
    p of b's type} x[s,m,p,t] (+ h_t k reserved) <= max_gpu_hours[b]; one ranged row per
    budget, spanning its periods (a lazy row of the period split)."""
    if not ctx.sc.policy.gpu_hour_budgets:
        return
    a, c = ctx.arr, ctx.cols
    bud = BudgetArrays.of(ctx.sc)
    cols, seg, per = _held(c)
    pool = np.concatenate([c.x_pool, c.rsv_pool])
    types = GpuLimitArrays.of(ctx.sc).pool_accelerator
    pos, which = bud.counted(seg, types[pool], per)
    ctx.rows.add(
        "gpu-hour-budget",
        define_gpu_hour_budgets.__doc__,
        {"budget": np.arange(len(bud.ids))},
        which,
        cols[pos],
        a.hours[per[pos]],
        bud.lower,
        bud.upper,
    )


CONSTRAINTS = (
    define_pool_capacity,
    define_pool_expansion,
    define_segment_demand,
    define_segment_contract,
    define_rnd_floor,
    define_stability,
    define_segment_share,
    define_kind_caps,
    define_kind_floors,
    define_reservations,
    define_segment_tiers,
    define_segment_gpu_limits,
    define_gpu_hour_budgets,
    define_site_power,
    define_pool_powered,
)


def build_lp(sc: Scenario, arrays: ScenarioArrays | None = None) -> LinearProgram:
    """The scenario's LP, in time and memory proportional to its non-zeros. ``arrays`` is
    ``ScenarioArrays.of(sc)`` when the caller has it already (the read-out needs it too)."""
    arr = arrays if arrays is not None else ScenarioArrays.of(sc)
    cols = define_columns(arr)
    ctx = _Ctx(sc, arr, cols, _Rows())
    c, offset = define_objective(ctx)
    col_lower, col_upper = define_bounds(ctx)
    for define in CONSTRAINTS:
        define(ctx)
    rows = ctx.rows
    A = rows.matrix(c.size)
    lower = np.concatenate(rows.lower) if rows.lower else np.zeros(0)
    upper = np.concatenate(rows.upper) if rows.upper else np.zeros(0)
    lp = LinearProgram(c, A, lower, upper, col_lower, col_upper, cols, rows.blocks, offset)
    define_allocation_units(lp, arr)
    define_purchase_units(lp, sc)
    lp.warnings.extend(scaling_warnings(lp))
    return lp


def objective_of(sc: Scenario, arr: ScenarioArrays, cols: ColumnIndex) -> tuple[np.ndarray, float]:
    """The objective (costs, constant) :func:`build_lp` gives the scenario whose numbers
    are ``arr`` and whose columns are ``cols``, without building a row (an LP only: no
    allocation units). For a what-if that changes prices, costs or demand."""
    return define_objective(_Ctx(sc, arr, cols, _Rows()))


# the family each row block comes from, for blocks whose bounds a what-if changes
# (demand, contract minimums, GPUs): recomputed without assembling the matrix
BOUNDS_OF = {
    "segment-demand": define_segment_demand,
    "segment-contract": define_segment_contract,
    "pool-capacity": define_pool_capacity,
    "rnd-floor": define_rnd_floor,
    "segment-stability": define_stability,
    "segment-share": define_segment_share,
}


def block_bounds(
    sc: Scenario, arr: ScenarioArrays, cols: ColumnIndex, names: Sequence[str]
) -> dict[str, tuple[RowBlock, np.ndarray, np.ndarray]]:
    """{block name: (the block, its rows' lower and upper bounds)} for the named blocks
    (keys of ``BOUNDS_OF``) as :func:`build_lp` makes them from ``arr``, the matrix not
    assembled (the block's keys say whether it kept its rows). A block the scenario does
    not have is absent."""
    ctx = _Ctx(sc, arr, cols, _Rows())
    for define in dict.fromkeys(BOUNDS_OF[n] for n in names):
        define(ctx)
    rows = ctx.rows
    return {
        b.name: (b, lo, hi) for b, lo, hi in zip(rows.blocks, rows.lower, rows.upper, strict=True)
    }


def define_allocation_units(lp: LinearProgram, arr: ScenarioArrays) -> None:
    """x[s,m,p,t] = N_p * n[s,m,p,t], n integer, for every pool p with an allocation unit
    of N_p GPUs: the column then counts units (its matrix column and cost times N_p, its
    bounds over N_p) and is marked integer; ``lp.col_scale`` holds N_p. Nothing changes
    when no pool has a unit (the model stays an LP)."""
    unit = arr.alloc_unit
    if unit is None or not (unit > 0).any():
        return
    cols = lp.columns
    per_x = unit[cols.x_pool]
    integer = np.zeros(lp.num_cols, dtype=bool)
    integer[: cols.n_x] = per_x > 0
    scale = np.ones(lp.num_cols)
    scale[: cols.n_x] = np.where(per_x > 0, per_x, 1.0)
    lp.A = (lp.A @ sp.diags(scale)).tocsr()
    lp.c = lp.c * scale
    lp.col_lower = lp.col_lower / scale
    lp.col_upper = lp.col_upper / scale
    lp.integrality = integer
    lp.col_scale = scale


UNIT_BLOCKS = {"rental-units": "nr", "purchase-units": "ne"}  # block -> its columns' prefix


def define_purchase_units(lp: LinearProgram, sc: Scenario) -> None:
    """rental-units[p,t]:  r[p,t] - N_p * nr[p,t] = 0, nr integer (``rental_unit_gpus``);
    purchase-units[p,tau]:  e[p,tau] - N_p * ne[p,tau] = 0, ne integer (``expansion.unit_gpus``).

    GPUs rented or bought in whole units of N_p, shared by every segment of the pool: one
    integer column per rental or purchase column, appended after the scenario's columns,
    tied to it by an equality row (its dual, with the units fixed, is the value of one more
    GPU rented or bought). Nothing changes when no pool has such a unit."""
    rent = np.array([p.rental_unit_gpus or 0 for p in sc.pools], dtype=float)
    buy = np.array(
        [p.expansion.unit_gpus or 0 if p.expansion else 0 for p in sc.pools], dtype=float
    )
    c = lp.columns
    families = [
        ("rental-units", c.r_offset, c.r_pool, c.r_period, rent),
        ("purchase-units", c.e_offset, c.e_pool, c.e_period, buy),
    ]
    for name, offset, pool, period, unit in families:
        sel = np.nonzero(unit[pool] > 0)[0]
        if sel.size == 0:
            continue
        n0, m0, k = lp.num_cols, lp.num_rows, int(sel.size)
        N = unit[pool[sel]]
        tie = sp.csr_matrix(
            (
                np.concatenate([np.ones(k), -N]),
                (np.tile(np.arange(k), 2), np.concatenate([offset + sel, n0 + np.arange(k)])),
            ),
            shape=(k, n0 + k),
        )
        lp.A = sp.vstack([sp.hstack([lp.A, sp.csr_matrix((m0, k))]), tie]).tocsr()
        lp.c = np.concatenate([lp.c, np.zeros(k)])
        lp.col_lower = np.concatenate([lp.col_lower, np.zeros(k)])
        lp.col_upper = np.concatenate(
            [lp.col_upper, np.floor(lp.col_upper[offset + sel] / N + 1e-9)]
        )
        lp.row_lower = np.concatenate([lp.row_lower, np.zeros(k)])
        lp.row_upper = np.concatenate([lp.row_upper, np.zeros(k)])
        integer = np.zeros(n0, dtype=bool) if lp.integrality is None else lp.integrality
        lp.integrality = np.concatenate([integer, np.ones(k, dtype=bool)])
        if lp.col_scale is not None:
            lp.col_scale = np.concatenate([lp.col_scale, np.ones(k)])
        doc = (define_purchase_units.__doc__ or "").split("\n")[0 if name == "rental-units" else 1]
        lp.blocks.append(
            RowBlock(name, m0, m0 + k, {"pool": pool[sel], "period": period[sel]}, doc.strip())
        )


def scaling_warnings(lp: LinearProgram) -> list[str]:
    """Warn where numbers are beyond what HiGHS handles well: any value >= 1e15 (HiGHS
    reads it as infinite), matrix coefficients spanning more than 1e9, or below 1e-9
    (HiGHS drops them)."""
    out: list[str] = []
    checks = {
        "constraint matrix": np.abs(lp.A.data),
        "objective": np.abs(lp.c),
        "bounds": np.abs(np.concatenate([lp.row_lower, lp.row_upper, lp.col_upper])),
    }
    for what, v in checks.items():
        v = v[np.isfinite(v) & (v > 0)]
        if v.size and v.max() >= 1e15:
            out.append(
                f"{what} has a value of {v.max():.3g}: HiGHS treats values >= 1e15 as infinite; "
                "change units (e.g. million tokens instead of tokens)"
            )
    a = checks["constraint matrix"]
    a = a[a > 0]
    if a.size:
        hi, lo = float(a.max()), float(a.min())
        if lo <= 1e-9:
            out.append(
                f"constraint matrix has a coefficient of {lo:.3g} (work units per GPU over a "
                "period): HiGHS drops values <= 1e-9; use a smaller work unit"
            )
        elif hi / lo > 1e9:
            out.append(
                f"constraint matrix coefficients span {lo:.3g} to {hi:.3g} (ratio {hi / lo:.2g} "
                "> 1e9): throughputs differ too much between segments; rescale their units"
            )
    return out


def count_columns(sc: Scenario) -> int:
    """Columns the LP of ``sc`` will have, without building it (for size limits): exactly
    ``build_lp(sc).num_cols`` (x, r, u, e, k, y as :func:`define_columns` makes them, and
    the integer unit columns nr, ne of :func:`define_purchase_units`). The GPU limits and
    the GPU-hour budgets add rows only."""
    T = len(sc.periods)
    x = sum(len(s.modes) * sum(1 for p in sc.pools if sc.compatible(s, p)) for s in sc.segments) * T
    r = sum(1 for p in sc.pools for g in (p.rentable_gpus or []) if g > 0)
    u = sum(1 for s in sc.segments if not s.contract_hard for m in (s.contract_min or []) if m > 0)
    u += sum(
        1
        for s in sc.segments
        if s.subscription is not None and s.subscription.min_service_share
        for d in s.demand
        if d > 0
    )
    labels = sc.period_labels
    bought = {
        p.id: T - (labels.index(p.expansion.from_period) if p.expansion.from_period else 0)
        for p in sc.pools
        if p.expansion is not None
    }
    e = sum(bought.values())
    k = sum(
        sum(1 for p in sc.pools if sc.compatible(s, p))
        * sum(1 for v in per_period(s.reservation.max_gpus, T) if v > 0)
        for s in sc.segments
        if s.reservation is not None
    )
    y = sum(
        1 for s in sc.segments for tr in s.tiers or [] for v in per_period(tr.units, T) if v > 0
    )
    w = T * sum(1 + len(p.power_levels or []) for p in sc.pools if p.site is not None)
    labels = sc.period_labels
    w += sum(
        T - (labels.index(p.retirement.from_period) if p.retirement.from_period else 0)
        for p in sc.pools
        if p.retirement is not None
    )
    nr = sum(1 for p in sc.pools if p.rental_unit_gpus for g in (p.rentable_gpus or []) if g > 0)
    ne = sum(bought[p.id] for p in sc.pools if p.expansion is not None and p.expansion.unit_gpus)
    return x + r + u + e + k + y + w + nr + ne
