"""POST /v1/solve: a scenario in, the plan back (small scenarios)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from allocator import Issue, Scenario

from ..auth import PLANNER
from ..bodies import body_openapi, scenario_body
from ..deps import SettingsDep, SyncDep
from ..downloads import FastJSON
from ..problems import ApiError, responses
from ..schemas import PLAN_EXAMPLE
from .common import check_size

router = APIRouter(prefix="/v1", tags=["solve"])

TINY = {
    "name": "one pool",
    "periods": [{"label": "P1", "hours": 100}],
    "pools": [
        {
            "id": "h100",
            "accelerator": "H100",
            "region": "east",
            "gpus": [10],
            "variable_cost_per_gpu_hour": 1.0,
        }
    ],
    "segments": [
        {
            "id": "chat",
            "kind": "first_party",
            "demand": [5000],
            "revenue_per_unit": 0.5,
            "throughput": {"H100": 10},
        }
    ],
}


def raise_problem(out: dict[str, Any]) -> None:
    """A worker's problem becomes the HTTP problem response."""
    if out["ok"]:
        return
    p = out["problem"]
    raise ApiError(
        p["status"],
        p["title"],
        p.get("detail"),
        p["type"].rsplit("/", 1)[-1],
        None if "errors" not in p else [Issue(e["path"], e["message"]) for e in p["errors"]],
        extra={"diagnosis": p["diagnosis"]} if "diagnosis" in p else None,
    )


async def run_solve(
    sync: SyncDep, scenario: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """Solve in the worker pool; a failure becomes the problem response."""
    out = await sync.solve(scenario, options)
    raise_problem(out)
    return out["plan"]  # type: ignore[no-any-return]


@router.post(
    "/solve",
    summary="Solve a scenario and return the plan",
    description="For small scenarios (a limit on LP columns, ALLOCATOR_SYNC_MAX_COLUMNS); "
    "larger ones answer 413: store them and submit a plan job instead.",
    responses={
        200: {"content": {"application/json": {"example": PLAN_EXAMPLE}}},
        **responses(400, 401, 413, 415, 422, 503),
    },
    openapi_extra=body_openapi("Scenario", examples={"tiny": {"value": TINY}}),
    dependencies=[PLANNER],
)
async def solve_now(
    scenario: Annotated[Scenario, Depends(scenario_body)],
    settings: SettingsDep,
    sync: SyncDep,
    time_limit_s: Annotated[
        float | None, Query(gt=0, le=3600, description="Solver time limit.")
    ] = None,
) -> FastJSON:
    await run_in_threadpool(check_size, scenario, settings, "POST /v1/solve")
    limit = min(time_limit_s or settings.sync_time_limit_s, settings.sync_time_limit_s)
    body = await run_in_threadpool(scenario.to_dict)
    plan = await run_solve(sync, body, {"time_limit_s": limit})
    return FastJSON(plan)  # orjson; NaN or infinity refused
