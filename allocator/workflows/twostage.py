"""What the two-stage workflows share: demand scenarios, the first-stage columns, the
lower-tail CVaR (:mod:`allocator.workflows.stochastic` and
:mod:`allocator.workflows.decomposition`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.lp import LinearProgram
from allocator.scenario import Scenario
from allocator.scenario.overrides import apply_overrides


@dataclass(frozen=True)
class DemandScenario:
    name: str
    probability: float
    demand_scale: dict[str, float | list[float]] = field(default_factory=dict)
    demand: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> DemandScenario:
        unknown = set(d) - {"name", "probability", "demand_scale", "demand"}
        if unknown:
            raise ValueError(f"demand scenario: unknown field(s) {sorted(unknown)}")
        return cls(
            name=str(d.get("name", "")),
            probability=float(d["probability"]),
            demand_scale={
                str(k): [float(x) for x in v] if isinstance(v, list) else float(v)
                for k, v in (d.get("demand_scale") or {}).items()
            },
            demand={str(k): [float(x) for x in v] for k, v in (d.get("demand") or {}).items()},
        )


def scenario_for(base: Scenario, ds: DemandScenario) -> Scenario:
    """``base`` with the demand of ``ds``."""
    sc = apply_overrides(base, {"demand_scale": ds.demand_scale}) if ds.demand_scale else base
    if ds.demand:
        data = sc.to_dict()
        ids = [s["id"] for s in data["segments"]]
        for seg, values in ds.demand.items():
            if seg not in ids:
                raise ValueError(f"demand scenario {ds.name!r}: unknown segment {seg!r}")
            data["segments"][ids.index(seg)]["demand"] = values
        sc = Scenario.from_dict(data)
    return sc


def first_stage_columns(lp: LinearProgram, first_period_allocations: bool) -> np.ndarray:
    c = lp.columns
    # rentals, GPUs bought (expansion mode) and GPUs reserved for customers (take-or-pay)
    # are decided before demand is known
    cols = [
        c.r_offset + np.arange(c.n_r),
        c.e_offset + np.arange(c.n_e),
        c.rsv_offset + np.arange(c.n_rsv),
    ]
    if first_period_allocations:
        cols.insert(0, np.nonzero(c.x_period == 0)[0])
    return np.concatenate(cols).astype(np.int64)


def _cvar(values: np.ndarray, pr: np.ndarray, level: float) -> float:
    """Lower-tail CVaR: the probability-weighted mean of the worst ``1 - level`` of
    outcomes."""
    order = np.argsort(values)
    tail = 1.0 - level
    acc = 0.0
    total = 0.0
    for i in order:
        take = min(pr[i], tail - acc)
        if take <= 0:
            break
        total += take * values[i]
        acc += take
    return float(total / tail) if tail > 0 else float(values.min())
