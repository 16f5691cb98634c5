"""Analysis jobs: what-if, frontier, sensitivity, counterfactual, fair shares and
alternatives for scenarios beyond the synchronous size (or asked for with
``Prefer: respond-async``) run in the job queue, as plan jobs do. Their routes answer 202
with the job; ``GET /v1/jobs/{id}`` has its progress and, once done, the same body the
synchronous route gives."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from allocator import Issue, Scenario
from allocator.lp.build import count_columns

from ..auth import ADMIN, PLANNER, VIEWER, PrincipalDep
from ..config import Settings
from ..deps import PagingDep, RunnerDep, StoreDep
from ..jobs import ANALYSES
from ..problems import ApiError, responses
from ..schemas import JobLinks, JobPublic, Page
from ..store import PLAN, QUEUED, RUNNING, PlanRow, QueueFull, ScenarioRow, Store
from .common import cancel_job, cancel_or_delete, job_fields, queue_full, spliced

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[str, Path(max_length=64, description="Job id.")]
Prefer = Annotated[
    str | None,
    Header(
        max_length=200,
        description="`respond-async`: run it as a job (202) whatever its size (RFC 7240).",
    ),
]
Kind = Literal[
    "plan", "what-if", "sensitivity", "frontier", "counterfactual", "fair", "alternatives"
]


def as_job(sc: Scenario, settings: Settings, prefer: str | None) -> bool:
    """Whether an analysis runs as a job: its LP is beyond the synchronous size, or the
    client asked for it (``Prefer: respond-async``)."""
    if prefer is not None and "respond-async" in prefer.lower():
        return True
    return count_columns(sc) > settings.sync_max_columns


def job_time_limit(requested: float | None, settings: Settings) -> float:
    limit = requested or settings.job_time_limit_s
    if limit > settings.job_time_limit_max_s:
        raise ApiError(
            422,
            "Invalid request",
            None,
            "invalid-request",
            [Issue("time_limit_s", f"at most {settings.job_time_limit_max_s:g} s on this service")],
        )
    return limit


def job_public(row: PlanRow) -> JobPublic:
    base = f"/v1/jobs/{row.id}"
    return JobPublic(
        **job_fields(row),
        kind=row.kind,
        result=row.result,
        links=JobLinks(
            self=base,
            scenario=f"/v1/scenarios/{row.scenario_id}",
            plan=f"/v1/plans/{row.id}/plan" if row.kind == PLAN else None,
        ),
    )


def submit_job(
    store: Store,
    runner: Any,
    settings: Settings,
    row: ScenarioRow,
    kind: str,
    params: dict[str, Any],
    actor: str,
    time_limit_s: float | None = None,
    base_plan_id: str | None = None,
    prefer: str | None = None,
) -> JSONResponse:
    """Queue analysis ``kind`` of scenario revision ``row`` for ``actor``: 202, Location,
    the job."""
    assert kind in ANALYSES
    options: dict[str, Any] = {
        "time_limit_s": job_time_limit(time_limit_s, settings),
        "params": params,
    }
    if base_plan_id is not None:
        options["base_plan_id"] = base_plan_id
    try:
        job, _ = store.create_plan(
            row,
            options,
            None,
            None,
            max_pending=settings.max_pending_jobs,
            kind=kind,
            actor=actor,
        )
    except QueueFull:
        raise queue_full(settings) from None
    runner.notify()
    headers = {"Location": f"/v1/jobs/{job.id}", "Retry-After": "1"}
    if prefer is not None and "respond-async" in prefer.lower():
        headers["Preference-Applied"] = "respond-async"
    return JSONResponse(job_public(job).model_dump(mode="json"), status_code=202, headers=headers)


def _get(store: Store, job_id: str, with_result: bool = True) -> PlanRow:
    row = store.get_plan(job_id, with_result=with_result)
    if row is None:
        raise ApiError(404, "Not found", f"no job {job_id!r}", "not-found")
    return row


@router.get(
    "",
    response_model=Page[JobPublic],
    summary="List jobs of every kind (newest first)",
    description="Results are left out of the list: GET a job for its result.",
    responses=responses(401, 422),
    dependencies=[VIEWER],
)
def list_jobs(
    store: StoreDep,
    page: PagingDep,
    kind: Annotated[Kind | None, Query(description="Only jobs of this kind.")] = None,
    scenario: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[
        Literal["queued", "running", "done", "failed", "cancelled"] | None, Query()
    ] = None,
) -> Page[JobPublic]:
    rows, total = store.list_plans(scenario, status, page.limit, page.offset, kind=kind)
    return Page(
        items=[job_public(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="A job, with its result when done",
    responses=responses(401, 404, 422),
    dependencies=[VIEWER],
)
def get_job(job_id: JobId, store: StoreDep) -> Response:
    found = store.get_plan_text(job_id)
    if found is None:
        raise ApiError(404, "Not found", f"no job {job_id!r}", "not-found")
    row, text = found
    headers = {"Retry-After": "1"} if row.status in (QUEUED, RUNNING) else {}
    # the result as the store holds it (a what-if's plan is megabytes at fleet size)
    data = spliced(job_public(row).model_dump(mode="json"), "result", text)
    return Response(data, media_type="application/json", headers=headers)


@router.delete(
    "/{job_id}",
    summary="Cancel a queued or running job; delete a finished one",
    description="An approved plan cannot be deleted (409). Planners cancel with "
    "POST /v1/jobs/{id}/cancel.",
    responses={
        200: {"model": JobPublic, "description": "Cancelled"},
        204: {"description": "Deleted"},
        **responses(401, 404, 409, 422),
    },
    dependencies=[ADMIN],
)
def delete_job(job_id: JobId, store: StoreDep, runner: RunnerDep, who: PrincipalDep) -> Response:
    row = _get(store, job_id, with_result=False)
    return cancel_or_delete(store, runner, row, job_public, who.name)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a queued job, or stop a running one",
    description="A job already cancelled is answered as it is; a done or failed one is 409.",
    responses=responses(401, 404, 409, 422),
    dependencies=[PLANNER],
)
def cancel(job_id: JobId, store: StoreDep, runner: RunnerDep, who: PrincipalDep) -> Response:
    return cancel_job(store, runner, _get(store, job_id, with_result=False), job_public, who.name)


__all__ = ["Prefer", "as_job", "job_public", "router", "submit_job"]
