"""Plan vs actual: per (segment, accelerator x region, period) the plan's GPU-hours, the
GPU-hours used, the variance (used - planned), the quota left unused (guaranteed GPU-hours
not used) and the quota exceeded (used beyond the guarantee: borrowed), and the variance
priced at the plan's shadow price of a GPU-hour there (the flavor's pools' prices weighted
by their GPUs): what the deviation cost (positive: GPU-hours taken from their best use
elsewhere) or freed. Sums by segment, kind, flavor and period."""

from __future__ import annotations

from typing import Any

import numpy as np

from allocator.operations.mapping import Mapping
from allocator.operations.quotas import compute_quotas, planned_gpus, pool_capacity
from allocator.operations.usage import Usage, flavors_of
from allocator.plan.tables import Plan
from allocator.scenario import Scenario

FIELDS = ("planned", "used", "variance", "quota", "unused", "exceeded", "variance_value")


def flavor_prices(plan: Plan, sc: Scenario) -> np.ndarray:
    """Shadow price per GPU-hour (F, T): the flavor's pools' prices weighted by GPUs (0
    where the plan has no duals)."""
    fl = flavors_of(sc)
    c = plan.pools.columns
    P, T = len(sc.pools), len(sc.periods)
    price = np.zeros((P, T))
    if plan.has_duals and c["shadow_price_per_gpu_hour"] is not None:
        ids = {p.id: i for i, p in enumerate(sc.pools)}
        labels = {t.label: i for i, t in enumerate(sc.periods)}
        p = np.array([ids[x] for x in c["pool"].tolist()])  # type: ignore[union-attr]
        t = np.array([labels[x] for x in c["period"].tolist()])  # type: ignore[union-attr]
        v = np.asarray(c["shadow_price_per_gpu_hour"], dtype=float)
        price[p, t] = np.nan_to_num(v)
    cap = np.maximum(pool_capacity(plan, sc), 1e-12)
    onehot = np.zeros((P, len(fl)))
    onehot[np.arange(P), [fl.index((x.accelerator, x.region)) for x in sc.pools]] = 1.0
    return (onehot.T @ (price * cap)) / (onehot.T @ cap)


def plan_vs_actual(
    plan: Plan, sc: Scenario, usage: Usage, mapping: Mapping | None = None
) -> dict[str, Any]:
    fl = flavors_of(sc)
    if usage.flavors != fl or usage.segments != [s.id for s in sc.segments]:
        raise ValueError("the usage was read against another scenario")
    q = compute_quotas(plan, sc, mapping)
    hours = q.hours[None, None, :]
    onehot = np.zeros((len(sc.pools), len(fl)))
    onehot[np.arange(len(sc.pools)), [fl.index((p.accelerator, p.region)) for p in sc.pools]] = 1
    planned = np.einsum("spt,pf->sft", planned_gpus(plan, sc), onehot) * hours
    quota = np.zeros_like(planned)
    quota[q.seg, q.flv, q.per] = q.guaranteed * q.hours[q.per]
    used = usage.gpu_hours
    var = used - planned
    cube = {
        "planned": planned,
        "used": used,
        "variance": var,
        "quota": quota,
        "unused": np.maximum(quota - used, 0.0),
        "exceeded": np.maximum(used - quota, 0.0),
        "variance_value": var * flavor_prices(plan, sc)[None],
    }
    kinds = [s.kind.value for s in sc.segments]
    s_i, f_i, t_i = np.nonzero((planned > 1e-9) | (used > 1e-9) | (quota > 0))
    rows = [
        {
            "segment": sc.segments[s].id,
            "kind": kinds[s],
            "accelerator": fl[f][0],
            "region": fl[f][1],
            "period": sc.periods[t].label,
            **{k: float(cube[k][s, f, t]) for k in FIELDS},
        }
        for s, f, t in zip(s_i.tolist(), f_i.tolist(), t_i.tolist(), strict=True)
    ]

    def by(axis_names: list[str], reduce: tuple[int, ...]) -> list[dict[str, Any]]:
        sums = {k: v.sum(axis=reduce) for k, v in cube.items()}
        return [
            {"name": n, **{k: float(sums[k][i]) for k in FIELDS}} for i, n in enumerate(axis_names)
        ]

    kind_ids = sorted(set(kinds))
    k_of = np.array([kind_ids.index(k) for k in kinds])
    by_kind = [
        {"name": k, **{f: float(cube[f][k_of == i].sum()) for f in FIELDS}}
        for i, k in enumerate(kind_ids)
    ]
    return {
        "plan": plan.scenario,
        "currency": sc.currency,
        "outside_gpu_hours": usage.outside_gpu_hours,
        "rows": rows,
        "by_segment": by([s.id for s in sc.segments], (1, 2)),
        "by_kind": by_kind,
        "by_pool": by([f"{a}/{r}" for a, r in fl], (0, 2)),
        "by_period": by([p.label for p in sc.periods], (0, 1)),
        "totals": {k: float(v.sum()) for k, v in cube.items()},
    }


def actual_text(report: dict[str, Any]) -> list[str]:
    """Aligned tables: by segment, kind, pool and period, then every row."""
    from allocator.plan.text import table

    heads = [
        "planned GPU-h",
        "used GPU-h",
        "variance",
        "quota GPU-h",
        "unused",
        "exceeded",
        f"variance value ({report['currency']})",
    ]
    lines = [f"Plan vs actual ({report['plan']}):"]
    for key, title in (
        ("by_segment", "segment"),
        ("by_kind", "kind"),
        ("by_pool", "pool"),
        ("by_period", "period"),
    ):
        rows = [[r["name"], *(r[f] for f in FIELDS)] for r in report[key]]
        lines += ["", *table([title, *heads], rows)]
    rows = [
        [r["segment"], f"{r['accelerator']}/{r['region']}", r["period"], *(r[f] for f in FIELDS)]
        for r in report["rows"]
    ]
    lines += ["", *table(["segment", "pool", "period", *heads], rows)]
    if report["outside_gpu_hours"]:
        lines.append(f"\nGPU-hours outside the plan's periods: {report['outside_gpu_hours']:,.1f}")
    return lines
