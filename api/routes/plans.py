"""Plan jobs: get, list, cancel; a finished plan as JSON, an Excel workbook or a zip of
Parquet files (``/plan``), and its tables as JSON, CSV or Parquet (one table per request,
like the CSV views: a Parquet file is one table)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from ..auth import ADMIN, PLANNER, VIEWER, PrincipalDep
from ..bodies import XLSX
from ..deps import PagingDep, RunnerDep, StoreDep
from ..downloads import PARQUET, ZIP, choose, download_name, plan_download, table_parquet
from ..problems import ApiError, responses
from ..schemas import ApprovePublic, ApproveRequest, Page, PlanJobPublic
from ..store import PLAN, QUEUED, RUNNING, NotApprovable, PlanRow
from .common import (
    CSV,
    approval_public,
    cancel_job,
    cancel_or_delete,
    plan_public,
    rows_response,
    spliced,
)

router = APIRouter(prefix="/v1/plans", tags=["plans"])
PlanId = Annotated[str, Path(max_length=64, description="Plan job id.")]
VIEW_FORMATS = ("json", "csv", "parquet")
PLAN_FORMATS = ("json", "xlsx", "parquet")
Format = Annotated[
    str | None,
    Query(
        max_length=16,
        description="json, csv or parquet (one Parquet file); or send Accept: text/csv or "
        f"{PARQUET}. Another value answers 400.",
        json_schema_extra={"enum": list(VIEW_FORMATS)},
    ),
]
PlanFormat = Annotated[
    str | None,
    Query(
        max_length=16,
        description="json (the plan itself, as `allocator replan` reads it), xlsx (the plan "
        "workbook) or parquet (a zip of one Parquet file per table and plan.json); or send "
        f"Accept: {XLSX} or {ZIP}. Another value answers 400.",
        json_schema_extra={"enum": list(PLAN_FORMATS)},
    ),
]


def not_a_plan(pid: str, row: PlanRow | None) -> ApiError | None:
    """404 for an unknown id, or for an analysis job's id (it is under /v1/jobs)."""
    if row is None:
        return ApiError(404, "Not found", f"no plan {pid!r}", "not-found")
    if row.kind != PLAN:
        return ApiError(
            404, "Not found", f"{pid!r} is a {row.kind} job: GET /v1/jobs/{pid}", "not-found"
        )
    return None


def _get(store: StoreDep, pid: str, with_result: bool = True):  # type: ignore[no-untyped-def]
    row = store.get_plan(pid, with_result=with_result)
    if (problem := not_a_plan(pid, row)) is not None:
        raise problem
    return row


@router.get(
    "",
    response_model=Page[PlanJobPublic],
    summary="List plan jobs (newest first)",
    description="Plans themselves are left out of the list: GET a job for its plan.",
    responses=responses(401, 422),
    dependencies=[VIEWER],
)
def list_plans(
    store: StoreDep,
    page: PagingDep,
    scenario: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[
        Literal["queued", "running", "done", "failed", "cancelled"] | None, Query()
    ] = None,
    approved: Annotated[
        bool,
        Query(
            description="true: only approved plans: with scenario, its approved plan (a page "
            "of one, or of none); without, every scenario's, by scenario id."
        ),
    ] = False,
) -> Page[PlanJobPublic]:
    if approved:
        return _approved_page(store, page, scenario, status)
    rows, total = store.list_plans(scenario, status, page.limit, page.offset)
    approvals = store.approvals_of([r.id for r in rows])
    return Page(
        items=[plan_public(r, approvals.get(r.id)) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


def _approved_page(
    store: StoreDep, page: PagingDep, scenario: str | None, status: str | None
) -> Page[PlanJobPublic]:
    """Approved plans (of one scenario, or of all), by scenario id."""
    found, total = store.approvals(scenario, page.limit, page.offset)
    items = []
    for a in found:
        row = store.get_plan(a.plan_id, with_result=False)
        if row is not None and status in (None, row.status):
            items.append(plan_public(row, a))
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{plan_id}",
    response_model=PlanJobPublic,
    summary="A plan job, with the plan when done",
    responses=responses(401, 404, 422),
    dependencies=[VIEWER],
)
def get_plan(plan_id: PlanId, store: StoreDep) -> Response:
    return plan_response(store, plan_id)


def plan_response(store: StoreDep, plan_id: str, headers: dict[str, str] | None = None) -> Response:
    """A plan job as JSON, its stored plan text spliced in (not parsed again)."""
    found = store.get_plan_text(plan_id)
    if (problem := not_a_plan(plan_id, found[0] if found else None)) is not None:
        raise problem
    assert found is not None
    row, text = found
    headers = dict(headers or {})
    if row.status in (QUEUED, RUNNING):
        headers["Retry-After"] = "1"
    approval = store.approvals_of([plan_id]).get(plan_id)
    data = spliced(plan_public(row, approval).model_dump(mode="json"), "plan", text)
    return Response(data, media_type="application/json", headers=headers)


def _not_done(status: str) -> ApiError:
    return ApiError(
        409, "Plan not available", f"the job is {status}; views exist once it is done", "not-done"
    )


def _done(store: StoreDep, pid: str):  # type: ignore[no-untyped-def]
    row = _get(store, pid)
    if row.result is None:
        raise _not_done(row.status)
    return row


@router.get(
    "/{plan_id}/plan",
    summary="The plan itself: JSON, Excel workbook or Parquet (zip)",
    description="JSON is the plan (Plan.to_dict(), what `allocator replan` reads), without "
    "the job around it; xlsx the plan workbook (Summary, By kind, prices, Allocations, "
    "Segments, Pools, Reservations, Binding); parquet a zip of the folder `allocator solve -o "
    "plan.parquet` writes. Parquet needs pyarrow on the service (else 501).",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
                ZIP: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "The plan",
        },
        501: {"description": "Parquet asked for, and the service has no pyarrow"},
        **responses(400, 401, 404, 406, 409, 422),
    },
    dependencies=[VIEWER],
)
def plan_file(
    plan_id: PlanId, request: Request, store: StoreDep, format: PlanFormat = None
) -> Response:
    fmt = choose(request, format, PLAN_FORMATS, media={"parquet": ZIP})
    if fmt == "json":  # the stored text as it is
        found = store.get_plan_text(plan_id)
        if (problem := not_a_plan(plan_id, found[0] if found else None)) is not None:
            raise problem
        assert found is not None
        row, text = found
        if text is None:
            raise _not_done(row.status)
        return Response(
            text.encode(),
            media_type="application/json",
            headers={
                "Content-Disposition": 'inline; filename="'
                + download_name(row.scenario_id, "plan", plan_id)
                + '.json"'
            },
        )
    row = _done(store, plan_id)
    return plan_download(row.result, fmt, download_name(row.scenario_id, "plan", plan_id))


@router.delete(
    "/{plan_id}",
    summary="Cancel a queued or running job; delete a finished one",
    description="A scenario's approved plan cannot be deleted (409): approve another plan "
    "of the scenario first. Planners cancel with POST /v1/plans/{id}/cancel.",
    responses={
        200: {"model": PlanJobPublic, "description": "Cancelled"},
        204: {"description": "Deleted"},
        **responses(401, 404, 409, 422),
    },
    dependencies=[ADMIN],
)
def delete_plan(plan_id: PlanId, store: StoreDep, runner: RunnerDep, who: PrincipalDep) -> Response:
    row = _get(store, plan_id, with_result=False)
    return cancel_or_delete(store, runner, row, plan_public, who.name)


@router.post(
    "/{plan_id}/cancel",
    response_model=PlanJobPublic,
    summary="Cancel a queued job, or stop a running one",
    description="A job already cancelled is answered as it is; a done or failed one is 409.",
    responses=responses(401, 404, 409, 422),
    dependencies=[PLANNER],
)
def cancel_plan(plan_id: PlanId, store: StoreDep, runner: RunnerDep, who: PrincipalDep) -> Response:
    row = _get(store, plan_id, with_result=False)
    return cancel_job(store, runner, row, plan_public, who.name)


@router.post(
    "/{plan_id}/approve",
    response_model=ApprovePublic,
    summary="Approve a finished plan: it becomes its scenario's approved plan",
    description="Only a done plan job is approved; the plan approved before for the same "
    "scenario is superseded (`supersedes` names it; every approval stays in GET /v1/audit). "
    "The approved plan is what GET /v1/scenarios/{id}/plans/approved serves, and it cannot "
    "be deleted while approved. Approving the approved plan again replaces its comment.",
    responses=responses(400, 401, 404, 409, 415, 422),
    dependencies=[ADMIN],
)
def approve_plan(
    plan_id: PlanId, body: ApproveRequest, store: StoreDep, who: PrincipalDep
) -> ApprovePublic:
    _get(store, plan_id, with_result=False)  # 404 for an unknown id or an analysis job
    try:
        approval, supersedes = store.approve_plan(plan_id, who.name, body.comment)
    except KeyError:
        raise ApiError(404, "Not found", f"no plan {plan_id!r}", "not-found") from None
    except NotApprovable as exc:
        raise ApiError(409, "Not approvable", exc.reason, "not-approvable") from None
    return ApprovePublic(**approval_public(approval).model_dump(), supersedes=supersedes)


def _view(name: str):  # type: ignore[no-untyped-def]
    def view(plan_id: PlanId, request: Request, store: StoreDep, format: Format = None) -> Response:
        hint = f"; the whole plan as xlsx is /v1/plans/{plan_id}/plan?format=xlsx"
        fmt = choose(request, format, VIEW_FORMATS, hint)
        row = _done(store, plan_id)
        filename = download_name(row.scenario_id, name, plan_id)
        if fmt == "parquet":
            return table_parquet(row.result, name, filename)
        # CSV cells as the CLI's CSV files write them (allocator.cells.csv_cell)
        return rows_response(row.result[name], fmt == "csv", filename)

    view.__name__ = f"plan_{name}"
    return view


for _name, _summary in (
    ("allocations", "GPUs per segment, mode, pool and period"),
    ("segments", "Demand, served, money lines per segment and period"),
    ("pools", "Use, rentals and shadow prices per pool and period"),
):
    router.add_api_route(
        f"/{{plan_id}}/{_name}",
        _view(_name),
        methods=["GET"],
        summary=_summary,
        response_model=list[dict],
        responses={
            200: {
                "content": {
                    CSV: {"schema": {"type": "string"}},
                    PARQUET: {"schema": {"type": "string", "format": "binary"}},
                }
            },
            501: {"description": "Parquet asked for, and the service has no pyarrow"},
            **responses(400, 401, 404, 406, 409, 422),
        },
        dependencies=[VIEWER],
    )
