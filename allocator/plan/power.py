"""The read-out of sites and power (issue 27): powered GPUs per pool and period, MW used
and free per site, the energy cost, and the price of a MW (the ``site-power`` duals).
Nothing here runs for a scenario without sites, so its plans stay as they were."""

from __future__ import annotations

import numpy as np

from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.plan.columns import Labels, Table
from allocator.plan.rows import PowerResult, SiteResult
from allocator.scenario import Scenario
from allocator.solvers.base import Solution


def powered_gpus(lp: LinearProgram, x: np.ndarray, arr: ScenarioArrays) -> np.ndarray | None:
    """Own GPUs powered per (pool, period): the LP's decision for a pool in a site, every
    GPU on hand elsewhere; None without sites."""
    c = lp.columns
    if arr.site_of is None:
        return None
    out = arr.gpus.copy()
    if c.n_pw:
        w = np.clip(x[c.pw_offset : c.pw_offset + c.n_pw], 0.0, None)
        out[c.pw_pool, c.pw_period] = np.minimum(w, arr.gpus[c.pw_pool, c.pw_period])
    return out


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
    powered: np.ndarray,
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
    kw = arr.power_kw[:, None] * (powered + np.where(arr.sited[:, None], bought, 0.0))
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
            "in_inventory": np.maximum(arr.gpus[pj, pt] - powered[pj, pt], 0.0),
            "bought": bought[pj, pt],
            "power_kw": kw[pj, pt],
            "energy_cost": energy[pj, pt],
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
