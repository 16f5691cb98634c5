"""What-if overrides applied to a copy of a scenario, and the comparison of two plans.

Overrides (all optional, all applied to a copy; the stored scenario is never touched):

* ``demand_scale``  {segment id or kind: factor}: demand (and contract minimums) × factor;
* ``capacity_change`` {pool id: GPUs added (negative removes), one number for every
  period or a list per period}; removing more GPUs than a pool has in a period is refused
  (an error naming ``capacity_change.<pool>[period]``), never clamped at zero;
* ``price_change`` {segment id or kind: factor}: revenue per unit × factor;
* ``kind_caps`` / ``kind_floors`` {kind: GPUs or a list per period}: replace the policy's.

A segment id is matched first; otherwise the key must be a kind (``cloud``,
``first_party``, ``rnd``, ``consumer``). Unknown keys are errors naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from allocator.errors import Issue, ScenarioError
from allocator.scenario.model import Kind, Scenario

PerPeriod = list[Annotated[float, Field(ge=0)]] | Annotated[float, Field(ge=0)]


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    demand_scale: dict[str, Annotated[float, Field(ge=0, le=1e6)]] = Field(
        default_factory=dict, description="Demand × factor, by segment id or kind."
    )
    capacity_change: dict[str, list[float] | float] = Field(
        default_factory=dict,
        description="GPUs added to a pool (negative removes): one number or one per period.",
    )
    price_change: dict[str, Annotated[float, Field(ge=0, le=1e6)]] = Field(
        default_factory=dict, description="Revenue per unit × factor, by segment id or kind."
    )
    kind_caps: dict[Kind, PerPeriod] | None = Field(
        None, description="Replace the policy's caps (GPUs per kind)."
    )
    kind_floors: dict[Kind, PerPeriod] | None = Field(
        None, description="Replace the policy's floors (GPUs per kind)."
    )

    @property
    def is_empty(self) -> bool:
        return not (
            self.demand_scale
            or self.capacity_change
            or self.price_change
            or self.kind_caps is not None
            or self.kind_floors is not None
        )


def _targets(sc: Scenario, key: str, field: str, issues: list[Issue]) -> list[int]:
    ids = [s.id for s in sc.segments]
    if key in ids:
        return [ids.index(key)]
    if key in Kind._value2member_map_:
        return [i for i, s in enumerate(sc.segments) if s.kind.value == key]
    issues.append(Issue(f"{field}.{key}", f"{key!r} is neither a segment id nor a kind"))
    return []


def apply_overrides(sc: Scenario, overrides: Overrides | dict[str, Any]) -> Scenario:
    """A validated copy of ``sc`` with ``overrides`` applied."""
    ov = overrides if isinstance(overrides, Overrides) else Overrides.model_validate(overrides)
    data = sc.to_dict()
    issues: list[Issue] = []
    T = len(sc.periods)
    for key, factor in ov.demand_scale.items():
        for i in _targets(sc, key, "demand_scale", issues):
            seg = data["segments"][i]
            seg["demand"] = [d * factor for d in seg["demand"]]
            if seg.get("contract_min") is not None:
                seg["contract_min"] = [m * factor for m in seg["contract_min"]]
    for key, factor in ov.price_change.items():
        for i in _targets(sc, key, "price_change", issues):
            data["segments"][i]["revenue_per_unit"] *= factor
    pool_ids = [p.id for p in sc.pools]
    for pool_id, change in ov.capacity_change.items():
        if pool_id not in pool_ids:
            issues.append(Issue(f"capacity_change.{pool_id}", f"unknown pool {pool_id!r}"))
            continue
        deltas = change if isinstance(change, list) else [change] * T
        if len(deltas) != T:
            issues.append(
                Issue(f"capacity_change.{pool_id}", f"has {len(deltas)} entries, expected {T}")
            )
            continue
        pool = data["pools"][pool_ids.index(pool_id)]
        short = [
            t for t, (g, d) in enumerate(zip(pool["gpus"], deltas, strict=True)) if g + d < -1e-9
        ]
        for t in short:
            where = f"capacity_change.{pool_id}" + (f"[{t}]" if isinstance(change, list) else "")
            issues.append(
                Issue(
                    where,
                    f"removes {-deltas[t]:g} GPUs from pool {pool_id!r}, which has "
                    f"{pool['gpus'][t]:g} in {sc.periods[t].label}",
                )
            )
            if not isinstance(change, list):
                break
        pool["gpus"] = [max(0.0, g + d) for g, d in zip(pool["gpus"], deltas, strict=True)]
    for name in ("kind_caps", "kind_floors"):
        value = getattr(ov, name)
        if value is not None:
            data["policy"][name] = {k.value: v for k, v in value.items()}
    if issues:
        raise ScenarioError(issues)
    return Scenario.from_dict(data)
