"""What-if overrides applied to a copy of a scenario, and the comparison of two plans.

Overrides (all optional, all applied to a copy; the stored scenario is never touched):

* ``demand_scale``  {segment id or kind: factor}: demand × factor (a price-tiered
  segment's tiers' units and a subscription's subscribers too); a factor is one number or
  a list with one per period (also for the scales below). Contract minimums stay as they
  are, lowered to the scaled demand where it falls below them (a customer is never owed
  more than it asks for);
* ``contract_scale`` {segment id or kind: factor}: contract minimums × factor (applied
  after ``demand_scale``); a minimum scaled above the demand is refused (an error naming
  ``contract_scale.<key>``). Until issue 26, ``demand_scale`` also scaled contract
  minimums: the same factor under both keys gives that old behaviour;
* ``capacity_change`` {pool id: GPUs added (negative removes), one number for every
  period or a list per period}; removing more GPUs than a pool has in a period is refused
  (an error naming ``capacity_change.<pool>[period]``), never clamped at zero;
* ``price_change`` {segment id or kind: factor}: revenue per unit × factor (and every
  tier's price, and a subscription's fee; ``demand_scale`` scales tiers' units and
  subscribers too);
* ``throughput_scale`` {segment id or kind: factor}: every throughput of the segment ×
  factor (serving improvements);
* ``cost_change`` {pool id or accelerator type: factor}: variable cost per GPU-hour × factor;
* ``kind_caps`` / ``kind_floors`` {kind: GPUs or a list per period}: replace the policy's;
* ``power_change`` {site id: MW of IT power added (negative removes), one number or a list
  per period} (issue 27); removing more than a site has in a period is refused (an error
  naming ``power_change.<site>[period]``).

A segment id is matched first; otherwise the key must be a kind (``cloud``,
``first_party``, ``rnd``, ``consumer``). Unknown keys are errors naming the field and the
closest segment id or kind ("did you mean 'cloud'?"). A segment named by its id and by its
kind (or a pool by its id and its accelerator type) gets both factors, multiplied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from allocator.errors import Issue, ScenarioError
from allocator.numbers import short
from allocator.scenario.model import Kind, Scenario, did_you_mean

# numbers are numbers: "1.2" (a string) or true is refused, not read as 1.2 or 1
Number = Annotated[float, Field(strict=True)]
PerPeriod = (
    list[Annotated[float, Field(ge=0, strict=True)]] | Annotated[float, Field(ge=0, strict=True)]
)
Factor = Annotated[float, Field(ge=0, le=1e6, strict=True)]
# one factor for every period, or one per period
Factors = list[Factor] | Factor


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    demand_scale: dict[str, Factors] = Field(
        default_factory=dict,
        description="Demand × factor (one, or one per period), by segment id or kind "
        "(both: the factors multiply); contract minimums stay (lowered to the scaled demand "
        "where it falls below them).",
    )
    contract_scale: dict[str, Factors] = Field(
        default_factory=dict,
        description="Contract minimums × factor (one, or one per period), by segment id or "
        "kind; never above the demand.",
    )
    capacity_change: dict[str, list[Number] | Number] = Field(
        default_factory=dict,
        description="GPUs added to a pool (negative removes): one number or one per period.",
    )
    price_change: dict[str, Factors] = Field(
        default_factory=dict,
        description="Revenue per unit × factor (one, or one per period), by segment id or kind.",
    )
    kind_caps: dict[Kind, PerPeriod] | None = Field(
        None, description="Replace the policy's caps (GPUs per kind)."
    )
    kind_floors: dict[Kind, PerPeriod] | None = Field(
        None, description="Replace the policy's floors (GPUs per kind)."
    )

    throughput_scale: dict[str, Factors] = Field(
        default_factory=dict,
        description="Every throughput × factor (one, or one per period), by segment id or kind.",
    )
    cost_change: dict[str, Factors] = Field(
        default_factory=dict,
        description="Variable cost per GPU-hour × factor (one, or one per period), by pool id "
        "or accelerator type.",
    )

    power_change: dict[str, list[Number] | Number] = Field(
        default_factory=dict,
        description="MW of IT power added to a site (negative removes): one number or one "
        "per period.",
    )

    @property
    def is_empty(self) -> bool:
        return not (
            self.power_change
            or self.demand_scale
            or self.contract_scale
            or self.capacity_change
            or self.price_change
            or self.throughput_scale
            or self.cost_change
            or self.kind_caps is not None
            or self.kind_floors is not None
        )


def _targets(sc: Scenario, key: str, field: str, issues: list[Issue]) -> list[int]:
    ids = [s.id for s in sc.segments]
    if key in ids:
        return [ids.index(key)]
    if key in Kind._value2member_map_:
        return [i for i, s in enumerate(sc.segments) if s.kind.value == key]
    hint = did_you_mean(key, [*ids, *Kind._value2member_map_])
    issues.append(Issue(f"{field}.{key}", f"{key!r} is neither a segment id nor a kind{hint}"))
    return []


def _pool_targets(sc: Scenario, key: str, issues: list[Issue]) -> list[int]:
    ids = [p.id for p in sc.pools]
    if key in ids:
        return [ids.index(key)]
    hit = [j for j, p in enumerate(sc.pools) if p.accelerator == key]
    if not hit:
        hint = did_you_mean(key, [*ids, *(p.accelerator for p in sc.pools)])
        issues.append(
            Issue(
                f"cost_change.{key}",
                f"{key!r} is neither a pool id nor an accelerator type{hint}",
            )
        )
    return hit


def _factors(
    factor: float | list[float], T: int, path: str, issues: list[Issue]
) -> float | list[float] | None:
    """A factor as given (one number), or its list checked to have one entry per period."""
    if isinstance(factor, list) and len(factor) != T:
        issues.append(Issue(path, f"has {len(factor)} entries, expected {T} (one per period)"))
        return None
    return factor


def scaled(value: float | list[float], factor: float | list[float]) -> float | list[float]:
    """A scalar-or-per-period number times a scalar-or-per-period factor: a scalar stays a
    scalar (so one factor on one number gives exactly what it gave before)."""
    if not isinstance(value, list) and not isinstance(factor, list):
        return value * factor
    T = len(value) if isinstance(value, list) else len(factor)  # type: ignore[arg-type]
    v = value if isinstance(value, list) else [value] * T
    f = factor if isinstance(factor, list) else [factor] * T
    return [a * b for a, b in zip(v, f, strict=True)]


def capped(value: float | list[float], cap: float | list[float]) -> float | list[float]:
    """``min(value, cap)`` per period, a scalar staying a scalar."""
    if not isinstance(value, list) and not isinstance(cap, list):
        return min(value, cap)
    T = len(value) if isinstance(value, list) else len(cap)  # type: ignore[arg-type]
    v = value if isinstance(value, list) else [value] * T
    c = cap if isinstance(cap, list) else [cap] * T
    return [min(a, b) for a, b in zip(v, c, strict=True)]


def _check_contracts(
    sc: Scenario, data: dict[str, Any], by_key: dict[str, Any], issues: list[Issue]
) -> None:
    """``contract_scale``: a contract minimum scaled above the demand is refused, naming the
    key, the segment and the period (bad keys were reported by :func:`segment_changes`)."""
    labels = [p.label for p in sc.periods]
    T = len(labels)
    for key in by_key:
        for i in _targets(sc, key, "contract_scale", []):
            seg = data["segments"][i]
            if seg.get("contract_min") is None:
                continue
            mins = seg["contract_min"]
            mins = mins if isinstance(mins, list) else [mins] * T
            demand = seg["demand"] if isinstance(seg["demand"], list) else [seg["demand"]] * T
            over = [t for t in range(T) if mins[t] > demand[t] * (1 + 1e-12)]
            if over:
                t = over[0]
                issues.append(
                    Issue(
                        f"contract_scale.{key}",
                        f"puts {seg['id']!r}'s contract minimum {short(mins[t])} above its demand "
                        f"{short(demand[t])} in {labels[t]}: scale demand_scale.{key} too",
                    )
                )


def _segment_factors(
    sc: Scenario, by_key: dict[str, Any], field: str, issues: list[Issue]
) -> Iterator[tuple[int, Any]]:
    """(segment index, its factor or factors per period) for every segment each key of an
    override names (a segment id or a kind); bad keys and factor lists go to ``issues``."""
    T = len(sc.periods)
    for key, factor in by_key.items():
        f = _factors(factor, T, f"{field}.{key}", issues)
        if f is None:
            continue
        for i in _targets(sc, key, field, issues):
            yield i, f


def _power_change(
    sc: Scenario, data: dict[str, Any], change: dict[str, Any], issues: list[Issue]
) -> None:
    """MW added to (or removed from) sites' IT power, one number or one per period."""
    T = len(sc.periods)
    sites = {q["id"]: q for q in data.get("sites") or []}
    for site_id, mw in change.items():
        where = f"power_change.{site_id}"
        if site_id not in sites:
            known = ", ".join(sites) or "none"
            issues.append(Issue(where, f"unknown site {site_id!r} (sites: {known})"))
            continue
        deltas = mw if isinstance(mw, list) else [mw] * T
        if len(deltas) != T:
            issues.append(Issue(where, f"has {len(deltas)} entries, expected {T}"))
            continue
        site = sites[site_id]
        now = site["power_mw"] if isinstance(site["power_mw"], list) else [site["power_mw"]] * T
        for t, (p, d) in enumerate(zip(now, deltas, strict=True)):
            if p + d < -1e-9:
                at = where + (f"[{t}]" if isinstance(mw, list) else "")
                issues.append(
                    Issue(
                        at,
                        f"removes {-d:g} MW from site {site_id!r}, which has {p:g} in "
                        f"{sc.periods[t].label}",
                    )
                )
                break
        site["power_mw"] = [max(0.0, p + d) for p, d in zip(now, deltas, strict=True)]


SEGMENT_FIELDS = ("demand_scale", "contract_scale", "price_change", "throughput_scale")


def segment_changes(
    sc: Scenario, ov: Overrides, issues: list[Issue]
) -> Iterator[tuple[str, int, Any]]:
    """(override, segment index, factor) in the order :func:`apply_overrides` applies
    them; bad keys and factor lists go to ``issues``."""
    for name in SEGMENT_FIELDS:
        for i, f in _segment_factors(sc, getattr(ov, name), name, issues):
            yield name, i, f


def pool_changes(
    sc: Scenario, ov: Overrides, issues: list[Issue]
) -> Iterator[tuple[str, int, Any]]:
    """("cost_change", pool index, factor) and ("capacity_change", pool index, GPUs added
    per period) in the order :func:`apply_overrides` applies them; bad keys, lengths and
    removals of more GPUs than a pool has go to ``issues``."""
    T = len(sc.periods)
    for key, factor in ov.cost_change.items():
        f = _factors(factor, T, f"cost_change.{key}", issues)
        if f is None:
            continue
        for j in _pool_targets(sc, key, issues):
            yield "cost_change", j, f
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
        j = pool_ids.index(pool_id)
        gpus = sc.pools[j].gpus
        below = [t for t, (g, d) in enumerate(zip(gpus, deltas, strict=True)) if g + d < -1e-9]
        for t in below:
            where = f"capacity_change.{pool_id}" + (f"[{t}]" if isinstance(change, list) else "")
            issues.append(
                Issue(
                    where,
                    f"removes {short(-deltas[t])} GPUs from pool {pool_id!r}, which has "
                    f"{short(gpus[t])} in {sc.periods[t].label}",
                )
            )
            if not isinstance(change, list):
                break
        yield "capacity_change", j, deltas


def added_gpus(gpus: list[float], deltas: list[float]) -> list[float]:
    """A pool's GPUs after ``capacity_change`` (never below zero: removing more is refused)."""
    return [max(0.0, g + d) for g, d in zip(gpus, deltas, strict=True)]


def apply_overrides(sc: Scenario, overrides: Overrides | dict[str, Any]) -> Scenario:
    """A validated copy of ``sc`` with ``overrides`` applied."""
    ov = overrides if isinstance(overrides, Overrides) else Overrides.model_validate(overrides)
    data = sc.to_dict()
    issues: list[Issue] = []
    for name, i, f in segment_changes(sc, ov, issues):
        scale_segment(data["segments"][i], name, f)
    _check_contracts(sc, data, ov.contract_scale, issues)
    for name, j, f in pool_changes(sc, ov, issues):
        pool = data["pools"][j]
        if name == "cost_change":
            pool["variable_cost_per_gpu_hour"] = scaled(pool["variable_cost_per_gpu_hour"], f)
        else:
            pool["gpus"] = added_gpus(pool["gpus"], f)
    _power_change(sc, data, ov.power_change, issues)
    for name in ("kind_caps", "kind_floors"):
        value = getattr(ov, name)
        if value is not None:
            data["policy"][name] = {k.value: v for k, v in value.items()}
    if issues:
        raise ScenarioError(issues)
    return Scenario.from_dict(data)


def scale_segment(seg: dict[str, Any], name: str, f: Any) -> None:
    """One segment's data after one of ``SEGMENT_FIELDS`` with factor(s) ``f``."""
    if name == "demand_scale":
        seg["demand"] = scaled(seg["demand"], f)
        if seg.get("contract_min") is not None:  # never owed more than it asks for
            seg["contract_min"] = capped(seg["contract_min"], seg["demand"])
        for tier in seg.get("tiers") or []:  # the demand curve moves with the demand
            tier["units"] = scaled(tier["units"], f)
        if seg.get("subscription"):  # as many more subscribers
            sub = seg["subscription"]
            sub["subscribers"] = scaled(sub["subscribers"], f)
    elif name == "contract_scale":
        if seg.get("contract_min") is not None:
            seg["contract_min"] = scaled(seg["contract_min"], f)
    elif name == "price_change":
        seg["revenue_per_unit"] = scaled(seg["revenue_per_unit"], f)
        for tier in seg.get("tiers") or []:  # every tier's price
            tier["price"] = scaled(tier["price"], f)
        if seg.get("subscription"):  # and the subscription fee
            sub = seg["subscription"]
            sub["fee_per_subscriber"] = scaled(sub["fee_per_subscriber"], f)
    else:
        seg["throughput"] = {a: scaled(v, f) for a, v in seg["throughput"].items()}
