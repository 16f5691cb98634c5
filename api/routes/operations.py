"""From plan to operations: a finished plan's quotas as a scheduler's files
(``GET /v1/plans/{id}/quotas``), usage stored with the plan and plan vs actual."""

from __future__ import annotations

import io
import zipfile
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ..auth import VIEWER
from ..deps import StoreDep
from ..downloads import ZIP, attachment
from ..problems import ApiError, responses
from .plans import PlanId, _done

router = APIRouter(prefix="/v1/plans", tags=["operations"])
MEDIA = {".yaml": "application/yaml", ".sh": "text/x-shellscript"}


def _plan_and_scenario(store: StoreDep, plan_id: str):  # type: ignore[no-untyped-def]
    from allocator import Plan, Scenario

    row = _done(store, plan_id)
    body = store.plan_scenario(plan_id)
    if body is None:  # pragma: no cover - every stored plan keeps its scenario
        raise ApiError(404, "Not found", f"plan {plan_id!r} has no scenario", "not-found")
    return Plan.from_dict(row.result), Scenario.from_dict(body)


@router.get(
    "/{plan_id}/quotas",
    summary="The plan's quotas as a scheduler's files (one file, or a zip of several)",
    description="Kueue (ResourceFlavors, Cohorts, ClusterQueues, LocalQueues, and the "
    "status.effectiveQuotas patch), Volcano Queues, YuniKorn queues.yaml, KAI Queues or Slurm "
    "sacctmgr commands, with the default mapping (docs/operations.md); every file is checked "
    "before it is sent. Without `period`, every period: a zip of one folder per period.",
    responses={
        200: {
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "text/x-shellscript": {"schema": {"type": "string"}},
                ZIP: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The files",
        },
        **responses(400, 401, 404, 409, 422),
    },
    dependencies=[VIEWER],
)
def plan_quotas(
    plan_id: PlanId,
    store: StoreDep,
    to: Annotated[Literal["kueue", "volcano", "yunikorn", "kai", "slurm"], Query()],
    period: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    from allocator.operations import QuotaError, compute_quotas
    from allocator.operations.emit import render_all

    plan, sc = _plan_and_scenario(store, plan_id)
    try:
        q = compute_quotas(plan, sc, plan_id=plan_id)
        files = render_all(q, to, [period] if period is not None else None)
    except QuotaError as exc:
        raise ApiError(400, "Quotas not possible", str(exc), "bad-quotas") from None
    if len(files) == 1:
        name, text = next(iter(files.items()))
        ext = name[name.rindex(".") :]
        flat = name.replace("/", "-")
        return attachment(text.encode(), MEDIA[ext], f"{plan_id}-{flat}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(f"{plan_id}-{to}/{name}", text)
    return attachment(buf.getvalue(), ZIP, f"{plan_id}-{to}.zip")
