"""Constraint violations of an allocation, recomputed from the scenario itself.

This does not read the solver's row activities nor the constraint matrix: it sums the
allocation by pool, segment and kind from the domain data, so a plan reports how far it
is from feasible whatever the solver claimed.
"""

from __future__ import annotations

import numpy as np

from allocator.lp.arrays import KINDS, ScenarioArrays
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
) -> dict[str, float]:
    """Largest violation per requirement, relative to the size of its bound:
    ``max(0, lhs - rhs) / max(1, |rhs|)``, so 1e-6 means one part in a million.

    ``x`` holds GPUs per allocation column, ``rented`` GPUs rented per (pool, period),
    ``bought`` GPUs bought so far per (pool, period) in expansion mode (usable less headroom),
    ``reserved`` GPUs reserved per reservation column.
    Soft contract minimums are not requirements (a shortfall pays its penalty).
    """
    P, T = arr.gpus.shape
    S = arr.demand.shape[0]
    s, p, t = cols.x_segment, cols.x_pool, cols.x_period
    out: dict[str, float] = {}

    out["nonnegative"] = float(max(0.0, -x.min(initial=0.0), -rented.min(initial=0.0)))
    compatible = arr.throughput[s, p] > 0
    out["compatibility"] = float(np.abs(x[~compatible]).max(initial=0.0))

    ks, kp, kt = cols.rsv_segment, cols.rsv_pool, cols.rsv_period
    held = np.zeros(cols.n_rsv) if reserved is None else reserved
    out["nonnegative"] = max(out["nonnegative"], float(max(0.0, -held.min(initial=0.0))))
    used = np.zeros((P, T))
    np.add.at(used, (p, t), x)
    np.add.at(used, (kp, kt), held)  # reserved GPUs are held whether used or not
    extra = np.zeros_like(used) if bought is None else (1.0 - arr.headroom)[:, None] * bought
    out["pool-capacity"] = _rel(used - rented - extra, arr.usable)
    if bought is not None and arr.expand_max is not None:
        out["pool-expansion"] = _rel(bought[:, -1], arr.expand_max)
    out["rental-limit"] = _rel(rented, arr.rentable)

    # work units from the domain: hours * throughput * mode multiplier
    units = x * arr.hours[t] * arr.throughput[s, p] * arr.mode_mult[cols.x_mode]
    served = np.zeros((S, T))
    np.add.at(served, (s, t), units)
    if cols.n_rsv:
        assert arr.res_max is not None
        out["compatibility"] = max(
            out["compatibility"],
            float(np.abs(held[arr.throughput[ks, kp] <= 0]).max(initial=0.0)),
        )
        per_seg = np.zeros((S, T))
        np.add.at(per_seg, (ks, kt), held)
        out["reservation-limit"] = _rel(per_seg, arr.res_max)
    out["segment-demand"] = _rel(served, arr.demand)
    hard = arr.contract_hard[:, None] & (arr.contract_min > 0)
    out["segment-contract"] = _rel(
        np.where(hard, arr.contract_min, 0.0), np.where(hard, served, 0.0)
    )

    pol = sc.policy
    by_kind = np.zeros((len(KINDS), T))
    np.add.at(by_kind, (arr.kind[s], t), x)
    np.add.at(by_kind, (arr.kind[ks], kt), held)
    if pol.rnd_min_share > 0:
        need = pol.rnd_min_share * arr.gpus.sum(axis=0)
        out["rnd-floor"] = _rel(need, by_kind[KINDS.index(Kind.RND)])
    for k, v in pol.kind_caps.items():
        out[f"kind-cap[{k.value}]"] = _rel(by_kind[KINDS.index(k)], np.array(per_period(v, T)))
    for k, v in pol.kind_floors.items():
        out[f"kind-floor[{k.value}]"] = _rel(np.array(per_period(v, T)), by_kind[KINDS.index(k)])

    if pol.max_change_share is not None or pol.max_segment_share is not None:
        pair = np.zeros((S, P, T))
        np.add.at(pair, (s, p, t), x)
        np.add.at(pair, (ks, kp, kt), held)
        cap = arr.usable + arr.rentable
        if pol.max_change_share is not None and T > 1:
            allowed = pol.max_change_share * np.maximum(cap[:, 1:], cap[:, :-1])
            change = np.abs(np.diff(pair, axis=2))
            out["segment-stability"] = _rel(change, np.broadcast_to(allowed[None], change.shape))
        if pol.max_segment_share is not None:
            limit = np.broadcast_to(pol.max_segment_share * cap[None], pair.shape)
            out["segment-share"] = _rel(pair, limit)
    return out


def _rel(lhs: np.ndarray, rhs: np.ndarray) -> float:
    """Largest ``max(0, lhs - rhs) / max(1, |rhs|)``: lhs <= rhs should hold."""
    v = np.maximum(lhs - rhs, 0.0) / np.maximum(1.0, np.abs(rhs))
    return float(v.max(initial=0.0))
