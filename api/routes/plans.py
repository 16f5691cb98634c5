"""Plan jobs: get, list, cancel; views of a finished plan as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from ..deps import PagingDep, RunnerDep, StoreDep
from ..problems import ApiError, responses
from ..schemas import Page, PlanJobPublic
from ..store import FINISHED, QUEUED, RUNNING
from .common import CSV, plan_public, rows_response, wants_csv

router = APIRouter(prefix="/v1/plans", tags=["plans"])
PlanId = Annotated[str, Path(max_length=64, description="Plan job id.")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="Or send Accept: text/csv.")]


def _get(store: StoreDep, pid: str, with_result: bool = True):  # type: ignore[no-untyped-def]
    row = store.get_plan(pid, with_result=with_result)
    if row is None:
        raise ApiError(404, "Not found", f"no plan {pid!r}", "not-found")
    return row


@router.get(
    "",
    response_model=Page[PlanJobPublic],
    summary="List plan jobs (newest first)",
    description="Plans themselves are left out of the list: GET a job for its plan.",
    responses=responses(401, 422),
)
def list_plans(
    store: StoreDep,
    page: PagingDep,
    scenario: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[
        Literal["queued", "running", "done", "failed", "cancelled"] | None, Query()
    ] = None,
) -> Page[PlanJobPublic]:
    rows, total = store.list_plans(scenario, status, page.limit, page.offset)
    return Page(
        items=[plan_public(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get(
    "/{plan_id}",
    response_model=PlanJobPublic,
    summary="A plan job, with the plan when done",
    responses=responses(401, 404, 422),
)
def get_plan(plan_id: PlanId, store: StoreDep, response: Response) -> PlanJobPublic:
    row = _get(store, plan_id)
    if row.status in (QUEUED, RUNNING):
        response.headers["Retry-After"] = "1"
    return plan_public(row)


@router.delete(
    "/{plan_id}",
    summary="Cancel a queued or running job; delete a finished one",
    responses={
        200: {"model": PlanJobPublic, "description": "Cancelled"},
        204: {"description": "Deleted"},
        **responses(401, 404, 422),
    },
)
def delete_plan(plan_id: PlanId, store: StoreDep, runner: RunnerDep) -> Response:
    row = _get(store, plan_id, with_result=False)
    if row.status in FINISHED:
        store.delete_plan(plan_id)
        return Response(status_code=204)
    if row.status == RUNNING:
        store.request_cancel(plan_id)
    else:
        store.cancel_plan(plan_id)
    runner.notify()
    return JSONResponse(plan_public(_get(store, plan_id)).model_dump(mode="json"))


def _view(name: str):  # type: ignore[no-untyped-def]
    def view(plan_id: PlanId, request: Request, store: StoreDep, format: Format = None) -> Response:
        row = _get(store, plan_id)
        if row.result is None:
            raise ApiError(
                409,
                "Plan not available",
                f"the job is {row.status}; views exist once it is done",
                "not-done",
            )
        rows, as_csv = row.result[name], wants_csv(request, format)
        if as_csv:  # floats as the CLI's CSV files write them: 12 significant digits
            from allocator.plan.writers import csv_cell

            rows = [{k: csv_cell(v) for k, v in r.items()} for r in rows]
        return rows_response(rows, as_csv, f"{plan_id}-{name}")

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
            200: {"content": {CSV: {"schema": {"type": "string"}}}},
            **responses(401, 404, 409, 422),
        },
    )
