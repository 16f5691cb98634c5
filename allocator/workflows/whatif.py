"""What-if: overrides applied to a copy of a scenario (allocator.scenario.overrides, re-exported
here) and the comparison of the two plans."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from allocator.scenario.overrides import Overrides, apply_overrides

if TYPE_CHECKING:
    from allocator.plan import Plan

__all__ = ["TERMS", "Overrides", "apply_overrides", "compare"]


def compare(base: Plan | dict[str, Any], other: Plan | dict[str, Any]) -> dict[str, Any]:
    """Differences ``other - base`` between two plans, given as Plans or as
    ``Plan.to_dict()`` data (a Plan is read for its totals and kinds only, not turned into
    a dict: what a what-if answers without its tables): totals, and revenue, gross
    margin, LTV and GPUs by segment kind.

    ``totals`` holds every term of the objective, so that the changes add up:
    objective = gross_margin + weighted_ltv - churn_cost - expansion_cost, where
    weighted_ltv = ltv_weight × ltv (``check`` gives the sum of the terms and what is left
    over: the solver's objective against the one computed from the plan, ~0)."""
    base, other = _summary(base), _summary(other)
    keys = (
        "objective",
        "revenue",
        "gross_margin",
        "ltv",
        "variable_cost",
        "rental_cost",
        "shortfall_penalty",
        "ltv_weight",
        "weighted_ltv",
        "churn_cost",
        "expansion_cost",
    )
    bt, ot = _with_weighted(base["totals"]), _with_weighted(other["totals"])
    totals = {k: {"base": bt[k], "new": ot[k], "change": ot[k] - bt[k]} for k in keys}
    terms = {k: totals[k]["change"] for k in TERMS}
    total = sum(sign * terms[k] for k, sign in TERMS.items())
    check = {
        "formula": "objective = gross_margin + weighted_ltv - churn_cost - expansion_cost",
        "terms_change": total,
        "objective_change": totals["objective"]["change"],
        "residual": totals["objective"]["change"] - total,
    }
    kinds = sorted(set(base["by_kind"]) | set(other["by_kind"]))
    by_kind: dict[str, Any] = {}
    for k in kinds:
        b, o = base["by_kind"].get(k), other["by_kind"].get(k)
        row: dict[str, Any] = {}
        for f in ("revenue", "gross_margin", "ltv"):
            bv, ov = (b or {}).get(f, 0.0), (o or {}).get(f, 0.0)
            row[f] = {"base": bv, "new": ov, "change": ov - bv}
        bg = (b or {}).get("gpus_by_period") or [0.0] * len(other["periods"])
        og = (o or {}).get("gpus_by_period") or [0.0] * len(base["periods"])
        row["gpus_by_period"] = {
            "base": bg,
            "new": og,
            "change": [y - x for x, y in zip(bg, og, strict=False)],
        }
        by_kind[k] = row
    return {"totals": totals, "check": check, "by_kind": by_kind}


# the objective's terms and their signs: objective = Σ sign × term
TERMS = {"gross_margin": 1.0, "weighted_ltv": 1.0, "churn_cost": -1.0, "expansion_cost": -1.0}


def _summary(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    """The parts of a plan :func:`compare` reads, as ``Plan.to_dict()`` has them."""
    if isinstance(plan, dict):
        return plan
    return {
        "totals": asdict(plan.totals),
        "by_kind": {k: asdict(v) for k, v in plan.by_kind.items()},
        "periods": list(plan.periods),
    }


def _with_weighted(t: dict[str, Any]) -> dict[str, float]:
    """A plan's totals with the terms an older plan may lack (0) and weighted_ltv."""
    out = {k: float(t.get(k, 0.0)) for k in t if isinstance(t.get(k), (int, float))}
    for k in ("shortfall_penalty", "churn_cost", "expansion_cost"):
        out.setdefault(k, 0.0)
    out.setdefault("ltv_weight", 1.0)
    out["weighted_ltv"] = out["ltv_weight"] * out["ltv"]
    return out
