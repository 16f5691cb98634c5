"""Opportunity-cost analytics over HTTP: explain a segment and value capacity on a
finished plan; sensitivity, frontier and counterfactuals on a stored scenario."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allocator import Plan, Scenario
from allocator.analysis.capacity import capacity_value
from allocator.analysis.explain import explain
from allocator.workflows.counterfactuals import Counterfactual

from ..deps import SettingsDep, StoreDep, SyncDep
from ..jobs import analysis_payload
from ..problems import ApiError, responses
from .common import check_size
from .plans import PlanId
from .scenarios import ScenarioId, _not_found
from .solve import raise_problem

router = APIRouter(prefix="/v1", tags=["analysis"])


def _done_plan(store: StoreDep, plan_id: str) -> tuple[Plan, Scenario]:
    row = store.get_plan(plan_id)
    if row is None:
        raise ApiError(404, "Not found", f"no plan {plan_id!r}", "not-found")
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
)
def capacity(
    plan_id: PlanId,
    store: StoreDep,
    purchase_price_per_gpu_hour: Annotated[
        float | None, Query(ge=0, le=1e6, description="Amortised price of buying a GPU.")
    ] = None,
) -> JSONResponse:
    plan, sc = _done_plan(store, plan_id)
    rows = capacity_value(plan, sc, purchase_price_per_gpu_hour=purchase_price_per_gpu_hour)
    return JSONResponse([r.to_dict() for r in rows])


async def _analysis(
    name: str,
    scenario_id: str,
    params: dict[str, Any],
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
) -> JSONResponse:
    row = store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    check_size(Scenario.from_dict(row.body), settings, name)
    out = await sync.run(analysis_payload, name, row.body, params)
    raise_problem(out)
    return JSONResponse(out["result"])


@router.get(
    "/scenarios/{scenario_id}/sensitivity",
    summary="Ranging: how far capacity and prices can move before the plan changes",
    responses=responses(401, 404, 413, 422, 503),
)
async def sensitivity(
    scenario_id: ScenarioId,
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
    segment: Annotated[list[str] | None, Query(description="Only these segments' prices.")] = None,
) -> JSONResponse:
    return await _analysis("sensitivity", scenario_id, {"segments": segment}, store, sync, settings)


@router.get(
    "/scenarios/{scenario_id}/frontier",
    summary="The efficient frontier of gross margin against LTV over the LTV weight",
    responses=responses(401, 404, 413, 422, 503),
)
async def frontier(
    scenario_id: ScenarioId,
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
    points: Annotated[
        int | None,
        Query(ge=2, le=200, description="Evenly spaced weights; all breakpoints if absent."),
    ] = None,
) -> JSONResponse:
    return await _analysis("frontier", scenario_id, {"points": points}, store, sync, settings)


@router.post(
    "/scenarios/{scenario_id}/counterfactual",
    summary="Solve a counterfactual and compare it with the latest plan",
    description="Transforms applied in order: priority {kind}, new_capacity_to {kind}, "
    "remove_segment {segment}, capacity {pool, gpus, from_period}, scale_demand and price "
    "{target, factor}. The answer has money lines, revenue growth and GPUs by kind, GPUs "
    "moved, and the opportunity cost of the base choice.",
    responses=responses(400, 401, 404, 413, 415, 422, 503),
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
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
) -> JSONResponse:
    row = store.get_scenario(scenario_id)
    latest = store.latest_done_plan(scenario_id, row.revision) if row is not None else None
    params = {"spec": spec.model_dump(mode="json"), "base": latest.result if latest else None}
    return await _analysis("counterfactual", scenario_id, params, store, sync, settings)


class FairRequest(BaseModel):
    """Options of a fair-shares plan (allocator.workflows.fairness.fair_solve)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    by: Literal["segment", "kind"] = Field("segment", description="Entities: segments or kinds.")
    kind: Literal["cloud", "first_party", "rnd", "consumer"] | None = Field(
        None, description="With by=segment: only this kind's segments."
    )
    weights: dict[Annotated[str, Field(max_length=128)], Annotated[float, Field(gt=0, le=1e6)]] = (
        Field(default_factory=dict, description="Weight per segment (or kind) id; 1 if absent.")
    )


@router.post(
    "/scenarios/{scenario_id}/fair",
    summary="Max-min fair shares of demand first, then value; the price of fairness",
    description="Every entity (segment, or kind) gets the largest weighted share of its "
    "demand the fleet allows, max-min fair per period; the plan then maximises the "
    "objective above that floor. The answer has each entity's served shares (fair and "
    "unconstrained), the floor per period, the price of fairness and the fair plan.",
    responses=responses(400, 401, 404, 413, 415, 422, 503),
)
async def fair(
    scenario_id: ScenarioId,
    spec: Annotated[FairRequest, Body(openapi_examples={"equal": {"value": {"by": "kind"}}})],
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
) -> JSONResponse:
    return await _analysis("fair", scenario_id, spec.model_dump(), store, sync, settings)


class AlternativesRequest(BaseModel):
    """Options of near-optimal alternatives (allocator.workflows.alternatives)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    slack: Annotated[float, Field(ge=0, le=1)] = Field(
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
    responses=responses(400, 401, 404, 413, 415, 422, 503),
)
async def alternatives(
    scenario_id: ScenarioId,
    spec: Annotated[
        AlternativesRequest,
        Body(openapi_examples={"cloud": {"value": {"slack": 0.01, "vary": ["kind:cloud"]}}}),
    ],
    store: StoreDep,
    sync: SyncDep,
    settings: SettingsDep,
) -> JSONResponse:
    return await _analysis("alternatives", scenario_id, spec.model_dump(), store, sync, settings)
