"""From plan to operations: a finished plan's quotas as a scheduler's files
(``GET /v1/plans/{id}/quotas``), usage stored with the plan and plan vs actual."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import PLANNER, VIEWER, PrincipalDep
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


class UsageRequest(BaseModel):
    """A usage file's text, how to read it, and when the plan's first period starts."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["slurm", "kueue", "csv"]
    data: str = Field(max_length=50_000_000, description="The file's text.")
    start: datetime = Field(description="When the plan's first period starts (ISO 8601).")
    mapping: dict[str, Any] | None = Field(None, description="As a mapping file, as JSON.")


@router.post(
    "/{plan_id}/usage",
    summary="Store what really ran with the plan (replaces what was stored)",
    description="`data` is `sacct --parsable2` output (slurm), `kubectl get pods|workloads -A "
    "-o json` (kueue) or a CSV (segment, gpu_type, region, start, end, gpus), read into "
    "GPU-hours per segment, accelerator x region and period. A bad row answers 422 naming the "
    "line and field, and nothing stored changes.",
    responses=responses(400, 401, 403, 404, 409, 415, 422),
    dependencies=[PLANNER],
)
def post_usage(
    plan_id: PlanId, body: UsageRequest, store: StoreDep, who: PrincipalDep
) -> dict[str, Any]:
    from allocator.operations.mapping import MappingError, parse_mapping
    from allocator.operations.usage import UsageError, parse_usage

    row = _done(store, plan_id)
    _, sc = _plan_and_scenario(store, plan_id)
    try:
        m = parse_mapping(body.mapping, "mapping")
        m.check_against(sc, "mapping")
        u = parse_usage(body.data, "data", body.format, sc, m, body.start)
    except (UsageError, MappingError) as exc:
        raise ApiError(422, "Usage not readable", str(exc), "bad-usage") from None
    usage = {"scenario": sc.name, **u.to_dict()}
    store.put_usage(row, usage, who.name)
    return usage


@router.get(
    "/{plan_id}/actual",
    summary="Plan vs actual: planned and used GPU-hours, variance, quota unused and exceeded",
    description="From the usage stored with POST /v1/plans/{id}/usage (404 without one); the "
    "variance priced at the plan's shadow prices. As `allocator actual --json`.",
    responses=responses(401, 404, 409, 422),
    dependencies=[VIEWER],
)
def plan_actual(plan_id: PlanId, store: StoreDep) -> dict[str, Any]:
    from allocator.operations.actual import plan_vs_actual
    from allocator.operations.usage import Usage

    plan, sc = _plan_and_scenario(store, plan_id)
    stored = store.get_usage(plan_id)
    if stored is None:
        raise ApiError(
            404, "Not found", f"no usage stored for plan {plan_id!r}: POST it first", "not-found"
        )
    return plan_vs_actual(plan, sc, Usage.from_dict(stored, sc))
