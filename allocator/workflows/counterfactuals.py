"""Counterfactuals: named, composable scenario transforms, each solved and compared with
the base plan.

Transforms (applied in order to a copy of the scenario):

* ``priority`` {kind}: the kind gets first call on all capacity: every other kind is held
  to its contract minimums (its demand is cut to the minimum), or to its policy floor where
  one applies (the R&D share of the fleet, kind floors: capped at the floor).
* ``new_capacity_to`` {kind}: every GPU added after the first period goes to the kind:
  every other kind is capped at the GPUs it has in the base plan's first period (or its
  policy floor, where that is higher: the R&D floor grows with the fleet).
* ``remove_segment`` {segment}.
* ``capacity`` {pool, gpus, from_period}: add (or, negative, remove) GPUs in a pool from a
  period on.
* ``power`` {site, mw, from_period}: add (or, negative, remove) MW of IT power in a site from
  a period on ("had the site got 50 MW more from 2026-Q3"; issue 27).
* ``scale_demand`` {target, factor}, ``scale_contract`` {target, factor} and ``price``
  {target, factor}: a segment id or a kind; the factor is one number or a list with one per
  period. As the what-if's ``demand_scale`` and ``contract_scale``: scaling demand leaves
  contract minimums as they are (lowered to the demand where it falls below them).

The comparison reports, for base and counterfactual: money lines by kind (present value),
revenue per period and its growth period over period by kind, GPUs moved between kinds,
and the **opportunity cost of the base choice**: what the counterfactual objective falls
short of (or exceeds) the optimum.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from allocator.engine import solve
from allocator.errors import Issue, ScenarioError
from allocator.numbers import money, short
from allocator.plan import Plan
from allocator.scenario import Kind, Scenario, per_period
from allocator.scenario.overrides import apply_overrides


class _T(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Priority(_T):
    type: Literal["priority"] = "priority"
    kind: Kind


class NewCapacityTo(_T):
    type: Literal["new_capacity_to"] = "new_capacity_to"
    kind: Kind


class RemoveSegment(_T):
    type: Literal["remove_segment"] = "remove_segment"
    segment: str


class Capacity(_T):
    type: Literal["capacity"] = "capacity"
    pool: str
    gpus: float = Field(strict=True)
    from_period: str | None = Field(None, description="First period affected (default: all).")


class Power(_T):
    type: Literal["power"] = "power"
    site: str
    mw: float
    from_period: str | None = Field(None, description="First period affected (default: all).")


Factor = Annotated[float, Field(ge=0, le=1e6, strict=True)]  # numbers: true is not 1


class ScaleDemand(_T):
    type: Literal["scale_demand"] = "scale_demand"
    target: str = Field(description="Segment id or kind.")
    factor: list[Factor] | Factor = Field(description="One factor, or one per period.")


class ScaleContract(_T):
    type: Literal["scale_contract"] = "scale_contract"
    target: str = Field(description="Segment id or kind.")
    factor: list[Factor] | Factor = Field(description="One factor, or one per period.")


class Price(_T):
    type: Literal["price"] = "price"
    target: str = Field(description="Segment id or kind.")
    factor: list[Factor] | Factor = Field(description="One factor, or one per period.")


Transform = Annotated[
    Priority
    | NewCapacityTo
    | RemoveSegment
    | Capacity
    | Power
    | ScaleDemand
    | ScaleContract
    | Price,
    Field(discriminator="type"),
]


class Counterfactual(_T):
    name: str = "counterfactual"
    transforms: list[Transform] = Field(min_length=1)


def _kind_gpus(plan: Plan, kind: str) -> list[float]:
    k = plan.by_kind.get(kind)
    return list(k.gpus_by_period) if k else [0.0] * len(plan.periods)


def apply(sc: Scenario, transforms: list[Any], base: Plan | None = None) -> Scenario:
    """``sc`` with ``transforms`` applied in order (a validated copy)."""
    out = sc
    for i, tr in enumerate(transforms):
        where = f"transforms[{i}]"
        data = out.to_dict()
        T = len(out.periods)
        if isinstance(tr, Priority):
            need = _policy_floors(out)
            caps = dict(data["policy"].get("kind_caps", {}))
            for seg in data["segments"]:
                kind = Kind(seg["kind"])
                if kind is tr.kind:
                    continue
                if kind in need:  # a policy floor still holds: keep the demand, cap at it
                    caps[kind.value] = need[kind]
                else:
                    seg["demand"] = list(seg.get("contract_min") or [0.0] * T)
            data["policy"]["kind_caps"] = caps
            out = Scenario.from_dict(data)
        elif isinstance(tr, NewCapacityTo):
            if base is None:
                base = solve(out)
            caps = dict(data["policy"].get("kind_caps", {}))
            need = _policy_floors(out)
            for kind in Kind:
                if kind is tr.kind or kind.value not in base.by_kind:
                    continue
                first = _kind_gpus(base, kind.value)[0]
                caps[kind.value] = [max(first, n) for n in need.get(kind, [0.0] * T)]
            data["policy"]["kind_caps"] = caps
            out = Scenario.from_dict(data)
        elif isinstance(tr, RemoveSegment):
            ids = [s["id"] for s in data["segments"]]
            if tr.segment not in ids:
                from allocator.scenario.model import unknown_id

                msg = unknown_id("segment", tr.segment, ids)
                raise ScenarioError([Issue(f"{where}.segment", msg)])
            data["segments"] = [s for s in data["segments"] if s["id"] != tr.segment]
            out = Scenario.from_dict(data)
        elif isinstance(tr, Capacity | Power):
            start = 0
            if tr.from_period is not None:
                if tr.from_period not in out.period_labels:
                    raise ScenarioError(
                        [Issue(f"{where}.from_period", f"unknown period {tr.from_period!r}")]
                    )
                start = out.period_labels.index(tr.from_period)
            if isinstance(tr, Capacity):
                deltas = [0.0] * start + [tr.gpus] * (T - start)
                out = _overrides(out, {"capacity_change": {tr.pool: deltas}}, where)
            else:
                deltas = [0.0] * start + [tr.mw] * (T - start)
                out = _overrides(out, {"power_change": {tr.site: deltas}}, where)
        elif isinstance(tr, ScaleDemand):
            out = _overrides(out, {"demand_scale": {tr.target: tr.factor}}, where)
        elif isinstance(tr, ScaleContract):
            out = _overrides(out, {"contract_scale": {tr.target: tr.factor}}, where)
        elif isinstance(tr, Price):
            out = _overrides(out, {"price_change": {tr.target: tr.factor}}, where)
        else:  # pragma: no cover - the union is closed
            raise TypeError(tr)
    return out


def _policy_floors(sc: Scenario) -> dict[Kind, list[float]]:
    """GPUs per period each kind must get by policy (kind floors; R&D's share of the fleet)."""
    T = len(sc.periods)
    out = {k: per_period(v, T) for k, v in sc.policy.kind_floors.items()}
    if sc.policy.rnd_min_share > 0:
        fleet = [sum(p.gpus[t] for p in sc.pools) for t in range(T)]
        rnd = [sc.policy.rnd_min_share * f for f in fleet]
        out[Kind.RND] = [max(a, b) for a, b in zip(out.get(Kind.RND, rnd), rnd, strict=True)]
    return out


def _overrides(sc: Scenario, ov: dict[str, Any], where: str) -> Scenario:
    try:
        return apply_overrides(sc, ov)
    except ScenarioError as exc:
        raise ScenarioError([Issue(f"{where}.{i.path}", i.message) for i in exc.issues]) from None


def _growth(series: list[float]) -> list[float | None]:
    return [None] + [(b - a) / a if a > 0 else None for a, b in itertools.pairwise(series)]


def compare_plans(base: Plan, other: Plan, name: str = "counterfactual") -> dict[str, Any]:
    """Money lines, revenue growth and GPUs by kind, GPUs moved, opportunity cost."""
    kinds = sorted(set(base.by_kind) | set(other.by_kind))
    T = len(base.periods)
    by_kind: dict[str, Any] = {}
    moved = [0.0] * T
    for k in kinds:
        b, o = base.by_kind.get(k), other.by_kind.get(k)
        row: dict[str, Any] = {}
        for f in ("revenue", "gross_margin", "ltv", "compute_cost", "shortfall_penalty"):
            bv = getattr(b, f) if b else 0.0
            ov = getattr(o, f) if o else 0.0
            row[f] = {"base": bv, "counterfactual": ov, "change": ov - bv}
        rb = list(b.revenue_by_period) if b else [0.0] * T
        ro = list(o.revenue_by_period) if o else [0.0] * T
        row["revenue_by_period"] = {"base": rb, "counterfactual": ro}
        row["revenue_growth"] = {"base": _growth(rb), "counterfactual": _growth(ro)}
        gb, go = _kind_gpus(base, k), _kind_gpus(other, k)
        row["gpus_by_period"] = {
            "base": gb,
            "counterfactual": go,
            "change": [y - x for x, y in zip(gb, go, strict=True)],
        }
        moved = [m + abs(y - x) / 2 for m, x, y in zip(moved, gb, go, strict=True)]
        by_kind[k] = row
    tb, to = base.totals, other.totals
    totals = {
        f: {
            "base": getattr(tb, f),
            "counterfactual": getattr(to, f),
            "change": getattr(to, f) - getattr(tb, f),
        }
        for f in (
            "objective",
            "revenue",
            "gross_margin",
            "ltv",
            "variable_cost",
            "rental_cost",
            "shortfall_penalty",
            "churn_cost",
            "expansion_cost",
            "ltv_weight",
        )
    }
    # every term of the objective, so that the changes add up (as in whatif.compare)
    wb, wo = tb.ltv_weight * tb.ltv, to.ltv_weight * to.ltv
    totals["weighted_ltv"] = {"base": wb, "counterfactual": wo, "change": wo - wb}
    return {
        "name": name,
        "totals": totals,
        "by_kind": by_kind,
        "gpus_moved_by_period": moved,
        "opportunity_cost": tb.objective - to.objective,
        "periods": list(base.periods),
    }


def counterfactual(
    scenario: Scenario,
    spec: Counterfactual | dict[str, Any],
    base: Plan | None = None,
) -> dict[str, Any]:
    """Solve ``scenario`` with ``spec``'s transforms and compare with the base plan."""
    cf = spec if isinstance(spec, Counterfactual) else Counterfactual.model_validate(spec)
    base = base or solve(scenario)
    changed = apply(scenario, list(cf.transforms), base)
    other = solve(changed)
    out = compare_plans(base, other, cf.name)
    out["transforms"] = [t.model_dump(mode="json") for t in cf.transforms]
    out["title"] = title(cf.transforms)
    out["verdict"] = verdict(out["opportunity_cost"], scenario.currency)
    return out


def describe(tr: Any) -> str:
    """One transform in words: ``cloud demand × 1.2``, ``+2,000 GPUs in b200 from P2``."""

    def factor(f: float | list[float]) -> str:
        return ", ".join(short(x) for x in f) + " by period" if isinstance(f, list) else short(f)

    if isinstance(tr, Priority):
        return f"{tr.kind.value} first on all capacity"
    if isinstance(tr, NewCapacityTo):
        return f"every new GPU to {tr.kind.value}"
    if isinstance(tr, RemoveSegment):
        return f"without segment {tr.segment}"
    if isinstance(tr, Capacity):
        when = f" from {tr.from_period}" if tr.from_period else ""
        return f"{'+' if tr.gpus >= 0 else '−'}{short(abs(tr.gpus))} GPUs in {tr.pool}{when}"
    if isinstance(tr, ScaleDemand):
        return f"{tr.target} demand × {factor(tr.factor)}"
    if isinstance(tr, ScaleContract):
        return f"{tr.target} contract minimums × {factor(tr.factor)}"
    if isinstance(tr, Price):
        return f"{tr.target} prices × {factor(tr.factor)}"
    return str(tr)  # pragma: no cover - the union is closed


def title(transforms: list[Any]) -> str:
    """The transforms in words, in the order they apply."""
    return ", then ".join(describe(t) for t in transforms)


def verdict(opportunity_cost: float, currency: str) -> str:
    """What the change earns against the optimal plan, for any change: "the change would
    earn 163.60M USD less than the optimal plan" (or more, or the same)."""
    if abs(opportunity_cost) < 0.005:
        return "the change would earn the same as the optimal plan"
    side = "less" if opportunity_cost > 0 else "more"
    amount = f"{money(abs(opportunity_cost))} {currency}"
    return f"the change would earn {amount} {side} than the optimal plan"


def seeds_case(
    scenario: Scenario, kind: str = "cloud", rival: str = "first_party"
) -> dict[str, Any]:
    """The seeds' question on a scenario: ``kind``'s revenue growth in the last period under
    the optimal plan against "every new GPU to ``kind``", and what that would cost in
    ``rival`` margin and in total."""
    base = solve(scenario)
    cmp = counterfactual(
        scenario,
        {
            "name": f"all new capacity to {kind}",
            "transforms": [{"type": "new_capacity_to", "kind": kind}],
        },
        base,
    )
    k, r = cmp["by_kind"][kind], cmp["by_kind"].get(rival)
    return {
        "kind": kind,
        "rival": rival,
        "last_period": base.periods[-1],
        "growth_last_period": {
            "optimal": k["revenue_growth"]["base"][-1],
            "counterfactual": k["revenue_growth"]["counterfactual"][-1],
        },
        "revenue_growth_over_horizon": {
            "optimal": _total_growth(k["revenue_by_period"]["base"]),
            "counterfactual": _total_growth(k["revenue_by_period"]["counterfactual"]),
        },
        "rival_margin_change": None if r is None else r["gross_margin"]["change"],
        "opportunity_cost": cmp["opportunity_cost"],
        "comparison": cmp,
    }


def _total_growth(series: list[float]) -> float | None:
    return (series[-1] - series[0]) / series[0] if series and series[0] > 0 else None
