"""The read-out of sites and power (issue 27): powered GPUs per pool and period, MW used
and free per site, the energy cost, and the price of a MW (the ``site-power`` duals).
Nothing here runs for a scenario without sites, so its plans stay as they were."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.plan.columns import Labels, Table
from allocator.plan.rows import PowerResult, SiteResult
from allocator.scenario import Scenario
from allocator.solvers.base import Solution


@dataclass
class PowerUse:
    """(P, T) arrays of a solution's power decisions, in GPUs: own GPUs powered (every
    level), their full-power throughput equivalent (what can be allocated before
    headroom), those run below full power, kW they draw, GPUs retired so far and the
    salvage earned in each period (nominal)."""

    powered: np.ndarray
    effective: np.ndarray
    capped: np.ndarray
    kw: np.ndarray
    retired: np.ndarray
    salvage: np.ndarray


def power_use(lp: LinearProgram, x: np.ndarray, arr: ScenarioArrays) -> PowerUse | None:
    """The solution's powered, capped and retired GPUs per (pool, period), from the
    domain's shares and kW; every GPU on hand counts as powered outside sites. None
    without sites."""
    c = lp.columns
    if arr.site_of is None:
        return None
    assert arr.power_kw is not None
    shape = arr.gpus.shape
    sited = arr.sited[:, None]
    powered = np.where(sited, 0.0, arr.gpus)
    effective, capped = powered.copy(), np.zeros(shape)
    w = np.clip(x[c.pw_offset : c.pw_offset + c.n_pw], 0.0, None)
    tp = np.ones(c.n_pw) if arr.level_throughput is None else arr.level_throughput
    ps = np.ones(c.n_pw) if arr.level_power is None else arr.level_power
    full = c.pw_level < 0
    lv = np.maximum(c.pw_level, 0)
    tp_share = np.where(full, 1.0, tp[lv] if tp.size else 1.0)
    kw_share = np.where(full, 1.0, ps[lv] if ps.size else 1.0)
    at = (c.pw_pool, c.pw_period)
    np.add.at(powered, at, w)
    np.add.at(effective, at, w * tp_share)
    np.add.at(capped, at, np.where(full, 0.0, w))
    kw = np.zeros(shape)
    np.add.at(kw, at, w * kw_share * arr.power_kw[c.pw_pool])
    retired_in = np.zeros(shape)
    if c.n_rt:
        retired_in[c.rt_pool, c.rt_period] = np.clip(
            x[c.rt_offset : c.rt_offset + c.n_rt], 0.0, None
        )
    salvage = retired_in * (arr.salvage if arr.salvage is not None else 0.0)
    return PowerUse(powered, effective, capped, kw, np.cumsum(retired_in, axis=1), salvage)


def site_prices(
    lp: LinearProgram, sol: Solution, arr: ScenarioArrays
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """d objective / d MW-hour of a site's IT power per (site, period), present value and
    nominal. The ``site-power`` row is in kW over the period: its dual y (present value
    per kW) is worth 1000 * y / h_t per MW-hour, divided by d_t in the period's money."""
    blk = lp.block("site-power")
    if sol.row_dual is None or arr.site_kw is None:
        return None, None
    if blk is None:  # no pool draws a site's power: a MW is worth nothing
        dual = np.zeros(arr.site_kw.shape)
    else:
        dual = sol.row_dual[blk.start : blk.stop].reshape(arr.site_kw.shape)
    pv = 1000.0 * np.maximum(dual, 0.0) / arr.hours[None, :]
    return pv, pv / arr.discount[None, :]


def energy_by_pool(
    lp: LinearProgram, arr: ScenarioArrays, x: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Nominal energy cost per (pool, period): GPU-hours allocated or reserved x the
    energy cost of a GPU-hour."""
    c = lp.columns
    out = np.zeros(arr.gpus.shape)
    if arr.energy_cost is None:
        return out
    t = c.x_period
    np.add.at(out, (c.x_pool, t), x * arr.hours[t] * arr.energy_cost[c.x_pool, t])
    if c.n_rsv:
        kt = c.rsv_period
        np.add.at(out, (c.rsv_pool, kt), k * arr.hours[kt] * arr.energy_cost[c.rsv_pool, kt])
    return out


def power_tables(
    sc: Scenario,
    lp: LinearProgram,
    sol: Solution,
    arr: ScenarioArrays,
    use: PowerUse,
    bought: np.ndarray,
    energy: np.ndarray,
) -> tuple[Table[PowerResult], Table[SiteResult]]:
    """One row per (pool in a site, period) and one per (site, period)."""
    assert arr.site_of is not None and arr.power_kw is not None
    assert arr.site_kw is not None and arr.site_pue is not None
    T = arr.hours.size
    sites = sc.sites or []
    site_ids = [q.id for q in sites]
    periods = sc.period_labels
    pools = np.nonzero(arr.sited)[0]
    powered = use.powered
    kw = use.kw + arr.power_kw[:, None] * np.where(arr.sited[:, None], bought, 0.0)
    pj = np.repeat(pools, T)
    pt = np.tile(np.arange(T), pools.size)
    power = Table(
        PowerResult,
        {
            "pool": Labels(pj, [p.id for p in sc.pools]),
            "site": Labels(arr.site_of[pj], site_ids),
            "period": Labels(pt, periods),
            "gpus": arr.gpus[pj, pt],
            "powered": powered[pj, pt],
            "in_inventory": np.maximum(
                arr.gpus[pj, pt] - powered[pj, pt] - use.retired[pj, pt], 0.0
            ),
            "bought": bought[pj, pt],
            "power_kw": kw[pj, pt],
            "energy_cost": energy[pj, pt],
            "capped": use.capped[pj, pt],
            "retired": use.retired[pj, pt],
            "salvage": use.salvage[pj, pt],
        },
    )
    Q = len(sites)
    used_kw = np.zeros((Q, T))
    site_energy = np.zeros((Q, T))
    np.add.at(used_kw, arr.site_of[pools], kw[pools])
    np.add.at(site_energy, arr.site_of[pools], energy[pools])
    pv, nominal = site_prices(lp, sol, arr)
    qj, qt = np.divmod(np.arange(Q * T), T)
    used_mw = used_kw / 1000.0
    return power, Table(
        SiteResult,
        {
            "site": Labels(qj, site_ids),
            "region": Labels.encode(q.region for q in sites).take(qj),
            "period": Labels(qt, periods),
            "power_mw": (arr.site_kw / 1000.0).ravel(),
            "used_mw": used_mw.ravel(),
            "free_mw": np.maximum(arr.site_kw / 1000.0 - used_mw, 0.0).ravel(),
            "facility_mw": (used_mw * arr.site_pue[:, None]).ravel(),
            "energy_cost": site_energy.ravel(),
            "shadow_price_per_mwh": None if nominal is None else nominal.ravel(),
            "shadow_price_pv_per_mwh": None if pv is None else pv.ravel(),
        },
    )
