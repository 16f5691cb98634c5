"""Opportunity-cost analytics over HTTP: explain a segment and value capacity on a
finished plan; sensitivity, frontier and counterfactuals on a stored scenario."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from allocator import Plan, Scenario
from allocator.analysis.capacity import capacity_value, parse_purchase_prices
from allocator.analysis.explain import explain
from allocator.workflows.counterfactuals import Counterfactual

from ..auth import PLANNER, VIEWER, PrincipalDep
from ..deps import RunnerDep, SettingsDep, StoreDep, SyncDep
from ..jobs import analysis_payload
from ..problems import ApiError, responses
from ..schemas import JobPublic
from ..store import PlanRow
from .jobs import Prefer, as_job, submit_job
from .plans import PlanId, not_a_plan
from .scenarios import ScenarioId, _not_found
from .solve import raise_problem

router = APIRouter(prefix="/v1", tags=["analysis"])


def _done_plan(store: StoreDep, plan_id: str) -> tuple[Plan, Scenario]:
    row = store.get_plan(plan_id)
    if (problem := not_a_plan(plan_id, row)) is not None:
        raise problem
    assert row is not None
    if row.result is None:
        raise ApiError(409, "Plan not available", f"the job is {row.status}", "not-done")
    body = store.plan_scenario(plan_id)
    assert body is not None
    return Plan.from_dict(row.result), Scenario.from_dict(body)


@router.get(
    "/plans/{plan_id}/explain",
    summary="Explain a segment's allocation in a plan",
    description="For each pool the segment can use: what a GPU-hour earns it against the "
    "pool's shadow price, which of its constraints bind, and sentences saying so.",
    responses=responses(401, 404, 409, 422),
    dependencies=[VIEWER],
)
def explain_segment(
    plan_id: PlanId,
    store: StoreDep,
    segment: Annotated[str, Query(max_length=128, description="Segment id.")],
) -> JSONResponse:
    plan, sc = _done_plan(store, plan_id)
    try:
        ex = explain(sc, segment, plan)
    except KeyError as exc:
        raise ApiError(422, "Invalid request", str(exc.args[0]), "invalid-request") from None
    return JSONResponse(ex.to_dict())


@router.get(
    "/plans/{plan_id}/capacity",
    summary="Buy, rent or leave idle: the value of one more GPU per pool and period",
    responses=responses(401, 404, 409, 422),
    dependencies=[VIEWER],
)
def capacity(
    plan_id: PlanId,
    store: StoreDep,
    purchase_price_per_gpu_hour: Annotated[
        float | None, Query(ge=0, le=1e6, description="Amortised price of buying a GPU.")
    ] = None,
    purchase_prices: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Amortised purchase prices per GPU-hour by accelerator type or pool "
            "id: H100=2.1,B200=3.4 (pools it does not name: purchase_price_per_gpu_hour, "
            "else their depreciation).",
        ),
    ] = None,
) -> JSONResponse:
    plan, sc = _done_plan(store, plan_id)
    price: float | dict[str, float] | None = purchase_price_per_gpu_hour
    try:
        if purchase_prices:
            given = parse_purchase_prices(purchase_prices)
            price = _by_pool(sc, given, purchase_price_per_gpu_hour)
        rows = capacity_value(plan, sc, purchase_price_per_gpu_hour=price)
    except ValueError as exc:
        raise ApiError(422, "Invalid request", str(exc), "invalid-request") from None
    return JSONResponse([r.to_dict() for r in rows])


def _by_pool(
    sc: Scenario, given: float | dict[str, float], default: float | None
) -> float | dict[str, float]:
    """Purchase prices by pool id: a pool's own, else its accelerator type's, else
    ``default``; keys that are neither stay (capacity_value refuses them, naming them)."""
    if not isinstance(given, dict):
        return given
    known = {p.id for p in sc.pools} | {p.accelerator for p in sc.pools}
    out = {k: v for k, v in given.items() if k not in known}
    for p in sc.pools:
        v = given.get(p.id, given.get(p.accelerator, default))
        if v is not None:
            out[p.id] = v
    return out


class Context:
    """What every analysis route needs to answer at once or as a job."""

    def __init__(
        self,
        store: StoreDep,
        sync: SyncDep,
        runner: RunnerDep,
        settings: SettingsDep,
        who: PrincipalDep,
        prefer: Prefer = None,
    ):
        self.store, self.sync, self.runner = store, sync, runner
        self.settings, self.prefer, self.actor = settings, prefer, who.name


ContextDep = Annotated[Context, Depends(Context)]


async def _analysis(
    name: str,
    scenario_id: str,
    params: dict[str, Any],
    ctx: Context,
    base_plan: PlanRow | None = None,
) -> JSONResponse:
    """Answer analysis ``name`` at once (200, in the solver pool) or, for a scenario beyond
    the synchronous size or with ``Prefer: respond-async``, as a job (202)."""
    row = ctx.store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    # reading and sizing a large scenario takes a while: not in the event loop
    job = await run_in_threadpool(
        lambda: as_job(Scenario.from_dict(row.body), ctx.settings, ctx.prefer)
    )
    if job:
        base_id = base_plan.id if base_plan is not None else None
        return submit_job(
            ctx.store,
            ctx.runner,
            ctx.settings,
            row,
            name,
            params,
            ctx.actor,
            None,
            base_id,
            ctx.prefer,
        )
    if base_plan is not None:
        params = {**params, "base": base_plan.result}
    out = await ctx.sync.run(analysis_payload, name, row.body, params)
    raise_problem(out)
    return JSONResponse(out["result"])


ASYNC: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobPublic,
        "description": "Run as a job (beyond the synchronous size, or Prefer: respond-async): "
        "poll the Location, GET /v1/jobs/{id}; its result is this route's answer.",
    }
}


@router.get(
    "/scenarios/{scenario_id}/sensitivity",
    summary="Ranging: how far capacity and prices can move before the plan changes",
    responses=ASYNC | responses(401, 404, 422, 503),
    dependencies=[PLANNER],
)
async def sensitivity(
    scenario_id: ScenarioId,
    ctx: ContextDep,
    segment: Annotated[list[str] | None, Query(description="Only these segments' prices.")] = None,
) -> JSONResponse:
    return await _analysis("sensitivity", scenario_id, {"segments": segment}, ctx)


@router.get(
    "/scenarios/{scenario_id}/frontier",
    summary="The efficient frontier of gross margin against LTV over the LTV weight",
    responses=ASYNC | responses(401, 404, 422, 503),
    dependencies=[PLANNER],
)
async def frontier(
    scenario_id: ScenarioId,
    ctx: ContextDep,
    points: Annotated[
        int | None,
        Query(ge=2, le=200, description="Evenly spaced weights; all breakpoints if absent."),
    ] = None,
) -> Response:
    row = ctx.store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    answer = lambda: _analysis("frontier", scenario_id, {"points": points}, ctx)  # noqa: E731
    if ctx.prefer:  # Prefer: respond-async asks for a job, not a kept answer
        return await answer()
    key = (scenario_id, row.revision, row.updated_at.isoformat(), points)
    return await _memo(key, answer)


# A frontier is the same for the same scenario revision: the page asks for it each time a
# plan is shown, so answers (200s) are kept per (scenario, revision and when it was stored:
# services in one process keep apart, points), the last
# FRONTIERS_KEPT of them, and a request arriving while the same one runs waits for it.
FRONTIERS_KEPT = 8
FrontierKey = tuple[str, int, str, int | None]
_frontiers: OrderedDict[FrontierKey, asyncio.Future[Response]] = OrderedDict()


async def _memo(key: FrontierKey, make: Callable[[], Awaitable[Response]]) -> Response:
    fut = _frontiers.get(key)
    if fut is None:
        fut = asyncio.ensure_future(make())
        _frontiers[key] = fut
        while len(_frontiers) > FRONTIERS_KEPT:
            _frontiers.popitem(last=False)
    else:
        _frontiers.move_to_end(key)
    try:
        out = await asyncio.shield(fut)
    except BaseException:
        if _frontiers.get(key) is fut:
            del _frontiers[key]
        raise
    if out.status_code != 200 and _frontiers.get(key) is fut:
        del _frontiers[key]  # a job (202) is not an answer to keep
    headers = {k: v for k, v in out.headers.items() if k.lower() != "content-length"}
    return Response(out.body, out.status_code, headers, out.media_type)


@router.post(
    "/scenarios/{scenario_id}/counterfactual",
    summary="Solve a counterfactual and compare it with the latest plan",
    description="Transforms applied in order: priority {kind}, new_capacity_to {kind}, "
    "remove_segment {segment}, capacity {pool, gpus, from_period}, scale_demand and price "
    "{target, factor}. The answer has money lines, revenue growth and GPUs by kind, GPUs "
    "moved, and the opportunity cost of the base choice.",
    responses=ASYNC | responses(400, 401, 404, 415, 422, 503),
    dependencies=[PLANNER],
)
async def counterfactual(
    scenario_id: ScenarioId,
    spec: Annotated[
        Counterfactual,
        Body(
            openapi_examples={
                "cloud first": {
                    "value": {
                        "name": "all new capacity to cloud",
                        "transforms": [{"type": "new_capacity_to", "kind": "cloud"}],
                    }
                }
            }
        ),
    ],
    ctx: ContextDep,
) -> JSONResponse:
    row = ctx.store.get_scenario(scenario_id)
    latest = ctx.store.latest_done_plan(row) if row is not None else None
    return await _analysis(
        "counterfactual", scenario_id, {"spec": spec.model_dump(mode="json")}, ctx, latest
    )


class FairRequest(BaseModel):
    """Options of a fair-shares plan (allocator.workflows.fairness.fair_solve)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    by: Literal["segment", "kind"] = Field("segment", description="Entities: segments or kinds.")
    kind: Literal["cloud", "first_party", "rnd", "consumer"] | None = Field(
        None, description="With by=segment: only this kind's segments."
    )
    weights: dict[
        Annotated[str, Field(max_length=128)], Annotated[float, Field(gt=0, le=1e6, strict=True)]
    ] = Field(default_factory=dict, description="Weight per segment (or kind) id; 1 if absent.")


@router.post(
    "/scenarios/{scenario_id}/fair",
    summary="Max-min fair shares of demand first, then value; the price of fairness",
    description="Every entity (segment, or kind) gets the largest weighted share of its "
    "demand the fleet allows, max-min fair per period; the plan then maximises the "
    "objective above that floor. The answer has each entity's served shares (fair and "
    "unconstrained), the floor per period, the price of fairness and the fair plan.",
    responses=ASYNC | responses(400, 401, 404, 415, 422, 503),
    dependencies=[PLANNER],
)
async def fair(
    scenario_id: ScenarioId,
    spec: Annotated[FairRequest, Body(openapi_examples={"equal": {"value": {"by": "kind"}}})],
    ctx: ContextDep,
) -> JSONResponse:
    return await _analysis("fair", scenario_id, spec.model_dump(), ctx)


class AlternativesRequest(BaseModel):
    """Options of near-optimal alternatives (allocator.workflows.alternatives)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    slack: Annotated[float, Field(ge=0, le=1, strict=True)] = Field(  # false is not 0
        0.01, description="Share of the optimal objective given up (0.01 = 1 %)."
    )
    vary: Annotated[
        list[Annotated[str, Field(max_length=200)]], Field(min_length=1, max_length=50)
    ] = Field(
        description="Quantities (GPU-hours over the horizon): kind:K, segment:S, region:R, "
        "accelerator:A, pool:P, rentals, rentals:P."
    )


@router.post(
    "/scenarios/{scenario_id}/alternatives",
    summary="Near-optimal alternatives: the range of quantities within a slack of the optimum",
    description="Modelling to generate alternatives: among plans whose objective is within "
    "`slack` of the optimum, each quantity in `vary` is minimised and maximised. The answer "
    "has, per quantity, its optimal value, both ends (with the objective there and every "
    "other quantity's value) and the range in GPU-hours and in average GPUs.",
    responses=ASYNC | responses(400, 401, 404, 415, 422, 503),
    dependencies=[PLANNER],
)
async def alternatives(
    scenario_id: ScenarioId,
    spec: Annotated[
        AlternativesRequest,
        Body(openapi_examples={"cloud": {"value": {"slack": 0.01, "vary": ["kind:cloud"]}}}),
    ],
    ctx: ContextDep,
) -> JSONResponse:
    return await _analysis("alternatives", scenario_id, spec.model_dump(), ctx)
