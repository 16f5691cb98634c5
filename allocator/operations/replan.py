"""Re-plan from actuals: the periods already past pinned to what ran, and optionally the
demand ahead rescaled by each segment's observed used/planned GPU-hours.

Pinning is a scenario transform: per past period, segment and accelerator type, the GPUs
that ran on average (GPU-hours / the period's hours) become a GPU limit with
``min_gpus = max_gpus`` (``Segment.gpu_limits``), so the model keeps its shape and every
solver and workflow (``allocator replan`` with its migration cost) takes the result as it is.
Regions are not pinned apart (a GPU limit counts an accelerator type over every region).
"""

from __future__ import annotations

import numpy as np

from allocator.operations.quotas import planned_gpus
from allocator.operations.usage import Usage
from allocator.plan.tables import Plan
from allocator.scenario import Scenario


def observed_ratio(plan: Plan, sc: Scenario, usage: Usage, past: int) -> np.ndarray:
    """Used / planned GPU-hours per segment over the first ``past`` periods (1 where the
    plan had none)."""
    hours = np.array([p.hours for p in sc.periods])[:past]
    planned = (planned_gpus(plan, sc)[:, :, :past] * hours).sum(axis=(1, 2))
    used = usage.gpu_hours[:, :, :past].sum(axis=(1, 2))
    return np.divide(used, planned, out=np.ones_like(used), where=planned > 1e-9)


def pin_actuals(
    sc: Scenario,
    usage: Usage,
    through: str,
    plan: Plan | None = None,
    rescale_demand: bool = False,
) -> Scenario:
    """``sc`` with every period up to and including ``through`` pinned to ``usage``; with
    ``rescale_demand`` (needs ``plan``) the demand of later periods multiplied by the
    segment's used/planned ratio over the pinned periods (segments priced by tiers or a
    subscription keep theirs: their demand is not one list); a contract minimum above the
    rescaled demand is lowered to it (the scenario refuses a minimum above demand)."""
    labels = [p.label for p in sc.periods]
    if through not in labels:
        raise ValueError(f"--through {through!r}: not one of the periods {labels}")
    past, T = labels.index(through) + 1, len(labels)
    hours = np.array([p.hours for p in sc.periods])
    accs = sorted({p.accelerator for p in sc.pools})
    acc_of_flavor = np.array([accs.index(a) for a, _ in usage.flavors])
    onehot = np.zeros((len(usage.flavors), len(accs)))
    onehot[np.arange(len(usage.flavors)), acc_of_flavor] = 1.0
    by_acc = np.einsum("sft,fa->sat", usage.gpu_hours, onehot)  # regions summed
    gpus = by_acc / hours[None, None, :]
    fleet = {a: float(sum(max(p.gpus) for p in sc.pools if p.accelerator == a)) for a in accs}
    ratio = None
    if rescale_demand:
        if plan is None:
            raise ValueError("rescaling demand needs the plan the usage is compared with")
        ratio = observed_ratio(plan, sc, usage, past)
    data = sc.to_dict()
    for s, seg in enumerate(data["segments"]):
        limits = list(seg.get("gpu_limits") or [])
        for a, acc in enumerate(accs):
            if acc not in seg["throughput"]:
                continue
            pinned = gpus[s, a, :past].round(9).tolist()
            limits.append(
                {
                    "accelerator": acc,
                    "min_gpus": pinned + [0.0] * (T - past),
                    # periods ahead: no limit (more than the type's GPUs could ever be)
                    "max_gpus": pinned + [fleet[acc] * 1e3 + 1.0] * (T - past),
                }
            )
        seg["gpu_limits"] = limits
        if (
            ratio is not None
            and isinstance(seg.get("demand"), list)
            and not (seg.get("tiers") or seg.get("subscription"))
        ):
            seg["demand"] = seg["demand"][:past] + [
                float(d) * float(ratio[s]) for d in seg["demand"][past:]
            ]
            if isinstance(seg.get("contract_min"), list):  # a minimum above demand is refused
                seg["contract_min"] = [
                    min(c, d) for c, d in zip(seg["contract_min"], seg["demand"], strict=True)
                ]
    return Scenario.from_dict(data)
