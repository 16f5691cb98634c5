"""Seeded synthetic scenarios of a given size, with the structure of a real fleet:
several accelerator types and regions, capacity growing over time, sparse compatibility,
contract minimums on cloud segments, demand growth, serving modes on some segments."""

from __future__ import annotations

from typing import Any

import numpy as np

from allocator.scenario import Scenario

ACCELERATORS = {  # name: (relative speed, variable cost, fixed cost per GPU-hour)
    "H100": (1.0, 0.25, 1.6),
    "H200": (1.4, 0.28, 2.0),
    "B200": (2.2, 0.35, 2.8),
    "MI300X": (1.2, 0.27, 1.5),
    "TPU-like": (1.3, 0.20, 1.4),
    "Trainium-like": (0.9, 0.18, 1.0),
}
REGIONS = ["us-east", "us-west", "eu-west", "asia-east"]
KINDS = ["cloud", "first_party", "rnd", "consumer"]


def generate_dict(
    segments: int = 20,
    pools: int = 6,
    periods: int = 8,
    *,
    seed: int = 0,
    compatibility: float = 0.5,
    hours: float = 168.0,
    scarcity: float = 1.3,
    policy: dict | None = None,
    contract_share: float = 0.4,
    max_growth: float = 0.06,
    stability: float | None = None,
) -> dict:
    """A scenario as plain data. ``compatibility`` is the expected share of pools each
    segment can use; ``scarcity`` is total demand over total capacity (in GPU terms);
    ``contract_share`` is a cloud segment's contract minimum as a share of its demand
    (0: no contracts); ``max_growth`` the largest demand growth per period (each segment
    draws its own in [0, max_growth)); ``stability``, when given, sets the policy's
    ``max_change_share`` (the coupling between periods)."""
    rng = np.random.default_rng(seed)
    acc_names = list(ACCELERATORS)
    n_types = min(len(acc_names), max(1, pools // 2))
    types = acc_names[:n_types]
    regions = REGIONS[: max(1, min(len(REGIONS), pools // max(1, n_types)))]

    pool_list = [_pool(rng, j, types, regions, periods) for j in range(pools)]
    total_cap = np.zeros(periods)
    for pool in pool_list:
        total_cap += pool["gpus"]
    share = scarcity * total_cap / max(1, segments)  # GPUs of demand per segment per period
    seg_list = [
        _segment(rng, i, types, regions, share, hours, compatibility, contract_share, max_growth)
        for i in range(segments)
    ]
    _make_servable(seg_list, pool_list)
    return {
        "name": f"generated-{segments}x{pools}x{periods}-seed{seed}",
        "description": "synthetic scenario from allocator.scenario.generate",
        "periods": [{"label": f"W{t + 1:02d}", "hours": hours} for t in range(periods)],
        "discount_rate": 0.001,
        "pools": pool_list,
        "segments": seg_list,
        "policy": _policy(policy, stability),
    }


def _pool(
    rng: np.random.Generator, j: int, types: list[str], regions: list[str], periods: int
) -> dict[str, Any]:
    """Pool ``j``: the next accelerator type and region in turn, a random size growing by
    up to 4% a period, costs near its type's, and rentable GPUs for about 3 pools in 10."""
    n_types = len(types)
    acc = types[j % n_types]
    region = regions[(j // n_types) % len(regions)]
    _, vcost, fcost = ACCELERATORS[acc]
    base = float(rng.integers(200, 4000))
    growth = 1.0 + rng.uniform(0.0, 0.04)
    gpus = [round(base * growth**t) for t in range(periods)]
    pool: dict[str, Any] = {
        "id": f"pool-{j}-{acc}-{region}",
        "accelerator": acc,
        "region": region,
        "ownership": ["owned", "leased", "rented"][int(rng.integers(0, 3))],
        "gpus": gpus,
        "variable_cost_per_gpu_hour": round(vcost * rng.uniform(0.9, 1.1), 4),
        "fixed_cost_per_gpu_hour": round(fcost * rng.uniform(0.9, 1.1), 4),
    }
    if rng.random() < 0.3:
        pool["rentable_gpus"] = [round(0.2 * g) for g in gpus]
        pool["rental_price_per_gpu_hour"] = round(fcost * 2.2, 4)
    return pool


def _segment(
    rng: np.random.Generator,
    i: int,
    types: list[str],
    regions: list[str],
    share: np.ndarray,
    hours: float,
    compatibility: float,
    contract_share: float,
    max_growth: float,
) -> dict[str, Any]:
    """Segment ``i``: its kind (each kind once first, then at random), the accelerator
    types it runs on, its demand and prices, and for some an allowed region set, a
    contract minimum (cloud) or a distilled serving mode (first-party and consumer)."""
    kind = KINDS[i % len(KINDS)] if i < len(KINDS) else KINDS[int(rng.integers(0, 4))]
    throughput = _throughput(rng, kind, types, compatibility)
    mean_tp = float(np.mean(list(throughput.values())))
    growth = rng.uniform(0.0, max_growth)
    demand = [
        round(float(share[t] * rng.uniform(0.5, 1.5) * hours * mean_tp * (1 + growth) ** t), 2)
        for t in range(len(share))
    ]
    revenue, ltv = _prices(rng, kind, mean_tp)
    seg: dict[str, Any] = {
        "id": f"seg-{i}-{kind}",
        "kind": kind,
        "unit": "H100-hour" if kind == "cloud" else "Mtok",
        "demand": demand,
        "revenue_per_unit": round(float(revenue), 4),
        "ltv_per_unit": round(float(ltv), 4),
        "throughput": throughput,
    }
    if rng.random() < 0.3:
        seg["regions"] = sorted(set(rng.choice(regions, size=min(2, len(regions)), replace=False)))
    if kind == "cloud":
        if contract_share > 0:
            seg["contract_min"] = [round(d * contract_share, 2) for d in demand]
        seg["shortfall_penalty_per_unit"] = round(float(revenue) * 0.5, 4)
        seg["churn_cost_per_unit"] = round(float(revenue) * 0.1, 4)
    if kind in ("first_party", "consumer") and rng.random() < 0.5:
        seg["modes"] = [
            {"name": "full"},
            {
                "name": "distilled",
                "throughput_multiplier": 3.0,
                "revenue_share": 0.8,
                "ltv_share": 0.7,
            },
        ]
    return seg


def _throughput(
    rng: np.random.Generator, kind: str, types: list[str], compatibility: float
) -> dict[str, float]:
    """Work units per GPU-hour on each accelerator type a segment can use (at least one
    type; cloud work is counted in H100-hours, so its base throughput is 1)."""
    n_types = len(types)
    k_types = [t for t in types if rng.random() < max(compatibility, 1.0 / n_types)] or [
        types[int(rng.integers(0, n_types))]
    ]
    base_tp = float(rng.uniform(2.0, 12.0)) if kind != "cloud" else 1.0
    return {t: round(base_tp * ACCELERATORS[t][0] * rng.uniform(0.8, 1.2), 4) for t in k_types}


def _prices(rng: np.random.Generator, kind: str, mean_tp: float) -> tuple[float, float]:
    """Revenue and LTV per unit of a segment of ``kind``; a cloud segment's scale with its
    mean throughput (a unit of its work is an H100-hour, not a token)."""
    if kind == "cloud":
        revenue, ltv = rng.uniform(1.8, 3.2), rng.uniform(0.0, 0.3)
    elif kind == "first_party":
        revenue, ltv = rng.uniform(0.3, 1.2), rng.uniform(0.1, 0.5)
    elif kind == "rnd":
        revenue, ltv = 0.0, rng.uniform(0.1, 0.6)
    else:
        revenue, ltv = rng.uniform(0.01, 0.08), rng.uniform(0.05, 0.3)
    if kind == "cloud":
        revenue, ltv = revenue * mean_tp, ltv * mean_tp
    return revenue, ltv


def _make_servable(seg_list: list[dict[str, Any]], pool_list: list[dict[str, Any]]) -> None:
    """Every segment must be servable: drop a segment's regions where no pool of its types
    is, and give it the first pool's type when none of its types exists."""
    for seg in seg_list:
        regs = seg.get("regions")
        if regs and not any(
            p["accelerator"] in seg["throughput"] and p["region"] in regs for p in pool_list
        ):
            del seg["regions"]
        if not any(p["accelerator"] in seg["throughput"] for p in pool_list):
            seg["throughput"] = {pool_list[0]["accelerator"]: 1.0}


def _policy(policy: dict | None, stability: float | None) -> dict:
    out = dict(policy) if policy is not None else {"rnd_min_share": 0.05, "headroom": 0.02}
    if stability is not None:
        out["max_change_share"] = stability
    return out


def generate(segments: int = 20, pools: int = 6, periods: int = 8, **kw: object) -> Scenario:
    return Scenario.from_dict(generate_dict(segments, pools, periods, **kw))  # type: ignore[arg-type]
