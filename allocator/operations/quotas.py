"""A plan's quota tuples: per (segment, flavor = accelerator type x region, period) the
guaranteed GPUs (whole GPUs, or whole nodes where the pool allocates in units), the cap
(guarantee plus what the borrow policy allows), the lend limit, a weight and a GPU-hour
budget where the scenario has one. Built as dense (segment, pool, period) arrays.

Rounding, per pool and period: the plan's GPUs in whole units are floored, then the units
left (the pool's rounded total, never more than the pool has) go one each to the largest
remainders: Σ guaranteed stays within half a unit of the plan's, and no pool is exceeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.errors import AllocatorError
from allocator.operations.mapping import Mapping, rfc1123
from allocator.plan.tables import Plan
from allocator.scenario import Scenario

EPS = 1e-6


class QuotaError(AllocatorError, ValueError):
    """The plan and scenario do not fit together, or a check before writing failed."""


@dataclass
class QuotaSet:
    """Quota rows (one per segment x flavor x period a segment may use), as columns."""

    plan_id: str
    scenario: str
    periods: list[str]
    segments: list[str]
    kinds: list[str]  # per segment
    flavors: list[tuple[str, str]]  # (accelerator, region)
    flavor_gpus: np.ndarray  # (F, T) whole GPUs of each flavor
    hours: np.ndarray  # (T,)
    # row columns: indexes into segments / flavors / periods, then the tuple
    seg: np.ndarray
    flv: np.ndarray
    per: np.ndarray
    planned: np.ndarray  # the plan's GPUs (fractional)
    guaranteed: np.ndarray  # int
    cap: np.ndarray  # int
    lend_limit: np.ndarray  # int
    weight: np.ndarray  # int >= 1
    budget_gpu_hours: np.ndarray  # float, NaN where no budget applies
    rounding: list[dict[str, Any]] = field(default_factory=list)  # per pool and period
    mapping: Mapping = field(default_factory=Mapping)

    def flavor_name(self, f: int) -> str:
        acc, region = self.flavors[f]
        return rfc1123(f"{acc}-{region}")

    def rows(self, period: str | None = None) -> list[dict[str, Any]]:
        keep = np.ones(self.seg.size, bool)
        if period is not None:
            keep = self.per == self.periods.index(period)
        out = []
        for i in np.flatnonzero(keep).tolist():
            acc, region = self.flavors[int(self.flv[i])]
            b = float(self.budget_gpu_hours[i])
            out.append(
                {
                    "segment": self.segments[int(self.seg[i])],
                    "kind": self.kinds[int(self.seg[i])],
                    "accelerator": acc,
                    "region": region,
                    "period": self.periods[int(self.per[i])],
                    "planned_gpus": float(self.planned[i]),
                    "guaranteed": int(self.guaranteed[i]),
                    "cap": int(self.cap[i]),
                    "lend_limit": int(self.lend_limit[i]),
                    "weight": int(self.weight[i]),
                    "budget_gpu_hours": None if np.isnan(b) else b,
                }
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "scenario": self.scenario,
            "rows": self.rows(),
            "rounding": self.rounding,
        }


def _index(names: list[str], values: list[str], what: str) -> np.ndarray:
    pos = {n: i for i, n in enumerate(names)}
    try:
        return np.array([pos[v] for v in values], dtype=np.int64)
    except KeyError as exc:
        raise QuotaError(f"the plan names {what} {exc.args[0]!r}, not in the scenario") from None


def planned_gpus(plan: Plan, sc: Scenario) -> np.ndarray:
    """The plan's GPUs as a dense (segment, pool, period) array, modes summed."""
    a = plan.allocations.columns
    S, P, T = len(sc.segments), len(sc.pools), len(sc.periods)
    x = np.zeros((S, P, T))
    if len(plan.allocations):
        s = _index([q.id for q in sc.segments], a["segment"].tolist(), "segment")  # type: ignore[union-attr]
        p = _index([q.id for q in sc.pools], a["pool"].tolist(), "pool")  # type: ignore[union-attr]
        t = _index([q.label for q in sc.periods], a["period"].tolist(), "period")  # type: ignore[union-attr]
        np.add.at(x, (s, p, t), np.asarray(a["gpus"], dtype=float))
    return x


def pool_capacity(plan: Plan, sc: Scenario) -> np.ndarray:
    """GPUs each pool has in each period (own + rented + bought), (pool, period)."""
    c = plan.pools.columns
    P, T = len(sc.pools), len(sc.periods)
    cap = np.zeros((P, T))
    p = _index([q.id for q in sc.pools], c["pool"].tolist(), "pool")  # type: ignore[union-attr]
    t = _index([q.label for q in sc.periods], c["period"].tolist(), "period")  # type: ignore[union-attr]
    total = np.asarray(c["gpus"], float) + np.asarray(c["rented"], float)
    total = total + np.asarray(c["bought"], float)
    np.add.at(cap, (p, t), total)
    return cap


def round_largest_remainder(x: np.ndarray, unit: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Whole units of ``x`` (segment, pool, period): per (pool, period) the floors plus one
    unit for each of the largest remainders until the pool's rounded total (at most
    ``cap`` in whole units) is reached. Returns GPUs (units x unit size).

    >>> x = np.array([[[1.5]], [[1.5]], [[0.6]]])  # three segments, one pool, one period
    >>> round_largest_remainder(x, np.array([1]), np.array([[3.6]]))[:, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    """
    u = unit.astype(float)[None, :, None]
    q = x / u
    floor = np.floor(q + EPS)
    rem = np.where(q - floor > EPS, q - floor, 0.0)
    cap_units = np.floor(cap / unit.astype(float)[:, None] + EPS)  # (P, T)
    target = np.minimum(np.floor(q.sum(axis=0) + 0.5), cap_units)
    extra = np.maximum(target - floor.sum(axis=0), 0.0)  # (P, T)
    order = np.argsort(-rem, axis=0, kind="stable")
    rank = np.argsort(order, axis=0, kind="stable")
    bonus = (rank < extra[None, :, :]) & (rem > 0)
    return (floor + bonus) * u


def _weights(plan: Plan, sc: Scenario, m: Mapping, x: np.ndarray) -> np.ndarray:
    """An integer weight >= 1 per segment: value per GPU-hour scaled to 1..100, the kind's
    priority, or 1; a weight in the mapping wins."""
    ids = [s.id for s in sc.segments]
    if m.weight == "kind":
        w = np.array([m.kind_weight(s.kind.value) for s in sc.segments], float)
    elif m.weight == "equal":
        w = np.ones(len(ids))
    else:
        c = plan.segments.columns
        s = _index(ids, c["segment"].tolist(), "segment")  # type: ignore[union-attr]
        value = np.zeros(len(ids))
        np.add.at(value, s, np.asarray(c["revenue"], float) + np.asarray(c["ltv"], float))
        hours = np.array([p.hours for p in sc.periods])
        gpu_hours = (x * hours[None, None, :]).sum(axis=(1, 2))
        per_hour = np.divide(value, gpu_hours, out=np.zeros_like(value), where=gpu_hours > 0)
        top = per_hour.max() if per_hour.size and per_hour.max() > 0 else 1.0
        w = np.maximum(np.rint(100 * per_hour / top), 1)
    for i, sid in enumerate(ids):
        if sid in m.segments and m.segments[sid].weight is not None:
            w[i] = m.segments[sid].weight
    return w.astype(np.int64)


def _budgets(sc: Scenario, G: np.ndarray, acc_of_flavor: list[str]) -> np.ndarray:
    """GPU-hour budget per (segment, flavor, period): each max budget of the scenario split
    over the rows it covers in proportion to their guaranteed GPU-hours (floored), NaN where
    none applies. Several budgets on one row: the smallest share."""
    S, F, T = G.shape
    out = np.full((S, F, T), np.nan)
    hours = np.array([p.hours for p in sc.periods])
    labels = [p.label for p in sc.periods]
    for b in sc.policy.gpu_hour_budgets:
        if b.max_gpu_hours is None:
            continue
        seg = np.array(
            [(s.id == b.segment) if b.segment else (s.kind == b.kind) for s in sc.segments]
        )
        flv = np.array([b.accelerator in (None, a) for a in acc_of_flavor])
        t0 = labels.index(b.from_period) if b.from_period else 0
        t1 = labels.index(b.to_period) if b.to_period else T - 1
        per = (np.arange(T) >= t0) & (np.arange(T) <= t1)
        mask = seg[:, None, None] & flv[None, :, None] & per[None, None, :]
        gh = np.where(mask, G * hours[None, None, :], 0.0)
        total = gh.sum()
        share = np.floor(b.max_gpu_hours * gh / total) if total > 0 else np.zeros_like(gh)
        out = np.where(mask, np.fmin(out, share), out)
    return out


def compute_quotas(
    plan: Plan, sc: Scenario, mapping: Mapping | None = None, plan_id: str = "plan"
) -> QuotaSet:
    """The quota tuples of ``plan`` (solved from ``sc``) under ``mapping``."""
    m = mapping or Mapping()
    if plan.periods != [p.label for p in sc.periods]:
        raise QuotaError(f"the plan's periods {plan.periods} are not the scenario's")
    x = planned_gpus(plan, sc)
    cap = pool_capacity(plan, sc)
    unit = np.array([p.allocation_unit_gpus or 1 for p in sc.pools], dtype=np.int64)
    g_pool = round_largest_remainder(x, unit, cap)
    flavors = sorted({(p.accelerator, p.region) for p in sc.pools})
    f_of_pool = np.array([flavors.index((p.accelerator, p.region)) for p in sc.pools])
    P, T = x.shape[1:]
    F = len(flavors)
    onehot = np.zeros((P, F))
    onehot[np.arange(P), f_of_pool] = 1.0
    G = np.einsum("spt,pf->sft", g_pool, onehot)
    X = np.einsum("spt,pf->sft", x, onehot)
    unit_cap = np.floor(cap / unit[:, None] + EPS) * unit[:, None]
    flavor_gpus = onehot.T @ unit_cap  # (F, T)
    free = flavor_gpus - G.sum(axis=0)
    if m.borrow.policy == "headroom":
        borrow = np.broadcast_to(free[None], G.shape)
    elif m.borrow.policy == "share":
        borrow = np.broadcast_to(np.floor(m.borrow.share * flavor_gpus + EPS)[None], G.shape)
    else:
        borrow = np.zeros_like(G)
    caps = np.minimum(G + borrow, flavor_gpus[None])
    lend = np.floor(m.lend_share * G + EPS)
    eligible = np.array(
        [
            [(a in s.throughput) and (s.regions is None or r in s.regions) for a, r in flavors]
            for s in sc.segments
        ]
    )
    keep = (eligible[:, :, None] | (G > 0) | (X > EPS)) & np.ones((1, 1, T), bool)
    s_i, f_i, t_i = np.nonzero(keep)
    w = _weights(plan, sc, m, x)
    budgets = _budgets(sc, G, [a for a, _ in flavors])
    rounding = _rounding_report(sc, x, g_pool, cap)
    return QuotaSet(
        plan_id=plan_id,
        scenario=sc.name,
        periods=[p.label for p in sc.periods],
        segments=[s.id for s in sc.segments],
        kinds=[s.kind.value for s in sc.segments],
        flavors=flavors,
        flavor_gpus=flavor_gpus.astype(np.int64),
        hours=np.array([p.hours for p in sc.periods]),
        seg=s_i,
        flv=f_i,
        per=t_i,
        planned=X[s_i, f_i, t_i],
        guaranteed=G[s_i, f_i, t_i].astype(np.int64),
        cap=caps[s_i, f_i, t_i].astype(np.int64),
        lend_limit=lend[s_i, f_i, t_i].astype(np.int64),
        weight=w[s_i],
        budget_gpu_hours=budgets[s_i, f_i, t_i],
        rounding=rounding,
        mapping=m,
    )


def _rounding_report(
    sc: Scenario, x: np.ndarray, g: np.ndarray, cap: np.ndarray
) -> list[dict[str, Any]]:
    """Per pool and period: the plan's GPUs, the guaranteed whole GPUs, the difference and
    the largest change of one segment's GPUs."""
    planned, rounded = x.sum(axis=0), g.sum(axis=0)
    worst = np.abs(g - x).max(axis=0) if x.shape[0] else np.zeros_like(planned)
    return [
        {
            "pool": p.id,
            "period": t.label,
            "gpus": float(cap[i, j]),
            "planned": float(planned[i, j]),
            "guaranteed": float(rounded[i, j]),
            "difference": float(rounded[i, j] - planned[i, j]),
            "largest_change": float(worst[i, j]),
        }
        for i, p in enumerate(sc.pools)
        for j, t in enumerate(sc.periods)
    ]
