"""What-if: overrides applied to a copy of a scenario (allocator.scenario.overrides, re-exported
here) and the comparison of the two plans."""

from __future__ import annotations

from typing import Any

from allocator.scenario.overrides import Overrides, apply_overrides

__all__ = ["Overrides", "apply_overrides", "compare"]


def compare(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Differences ``other - base`` between two plans given as ``Plan.to_dict()`` data:
    totals, and revenue, gross margin, LTV and GPUs by segment kind."""
    keys = ("objective", "revenue", "gross_margin", "ltv", "variable_cost", "rental_cost")
    totals = {
        k: {
            "base": base["totals"][k],
            "new": other["totals"][k],
            "change": other["totals"][k] - base["totals"][k],
        }
        for k in keys
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
    return {"totals": totals, "by_kind": by_kind}
