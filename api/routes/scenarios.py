"""Scenarios: create, list, get, replace, delete; plan jobs and what-if on a stored one."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from allocator import Scenario, ScenarioError
from allocator.scenario.overrides import apply_overrides
from allocator.workflows.whatif import compare

from ..auth import ADMIN, PLANNER, VIEWER, PrincipalDep
from ..bodies import body_openapi, model_body, scenario_or_workbook_body
from ..deps import PagingDep, RunnerDep, SettingsDep, StoreDep, SyncDep
from ..downloads import FastJSON
from ..problems import ApiError, responses
from ..schemas import (
    LEGACY_ID_PATTERN,
    SCENARIO_ID_PATTERN,
    JobPublic,
    Page,
    PlanJobPublic,
    PlanRequest,
    RevisionPublic,
    ScenarioPublic,
    ScenarioSummary,
    WhatIfPublic,
    WhatIfRequest,
)
from ..store import QueueFull, RevisionMismatch, ScenarioRow
from .common import plan_public, queue_full, scenario_public, scenario_summary
from .jobs import Prefer, as_job, job_time_limit, submit_job
from .plans import plan_response
from .solve import TINY, raise_problem, run_solve

router = APIRouter(prefix="/v1/scenarios", tags=["scenarios"])
# a new scenario's id (PUT, POST ?id=) is URL-safe; reads also take the ids earlier versions
# allowed (":" and "+"), so that such scenarios stay readable and deletable
NewScenarioId = Annotated[
    str, Path(pattern=SCENARIO_ID_PATTERN, max_length=128, description="Scenario id.")
]
ScenarioId = Annotated[
    str, Path(pattern=LEGACY_ID_PATTERN, max_length=128, description="Scenario id.")
]
ScenarioBody = Annotated[Scenario, Depends(scenario_or_workbook_body)]
SCENARIO_REQUEST = body_openapi("Scenario", examples={"tiny": {"value": TINY}}, workbook=True)
WORKBOOK_NOTE = (
    " The body may also be a scenario workbook (.xlsx) sent as "
    "`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`: its problems name "
    "their sheet and cell (`demand!F7`)."
)


def _not_found(sid: str) -> ApiError:
    return ApiError(404, "Not found", f"no scenario {sid!r}", "not-found")


def etag(revision: int) -> str:
    """The strong ETag of a scenario revision."""
    return f'"{revision}"'


def parse_if_match(value: str) -> set[int] | None:
    """The revisions an If-Match header names; None for ``*`` (any current one). Weak
    tags never match (If-Match compares strongly, RFC 9110 13.1.1)."""
    if value.strip() == "*":
        return None
    out = set()
    for part in value.split(","):
        tag = part.strip()
        if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
            out.add(int(tag[1:-1]))
    return out


def _precondition_failed(sid: str, current: int | None) -> ApiError:
    detail = (
        f"scenario {sid!r} does not exist"
        if current is None
        else f"scenario {sid!r} is at revision {current} (ETag {etag(current)}); "
        "GET it, merge, and PUT again with that If-Match"
    )
    headers = {"ETag": etag(current)} if current is not None else {}
    return ApiError(412, "Precondition failed", detail, "precondition-failed", headers=headers)


def _overridden(row: ScenarioRow, changes: dict[str, Any]) -> Scenario:
    """The stored scenario revision with what-if overrides applied (on a copy); 422
    naming each bad override."""
    try:
        return apply_overrides(Scenario.from_dict(row.body), changes)
    except ScenarioError as exc:
        raise ApiError(
            422,
            "Invalid overrides",
            f"{len(exc.issues)} problem(s)",
            "invalid-overrides",
            exc.issues,
        ) from None


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-._")
    return s[:128] or "scenario"


@router.get(
    "",
    response_model=Page[ScenarioSummary],
    summary="List stored scenarios",
    responses=responses(401, 422),
    dependencies=[VIEWER],
)
def list_scenarios(store: StoreDep, page: PagingDep) -> Page[ScenarioSummary]:
    rows, total = store.list_scenarios(page.limit, page.offset)
    return Page(
        items=[scenario_summary(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "",
    status_code=201,
    response_model=ScenarioPublic,
    summary="Store a new scenario",
    description="The body is a scenario (as in data/*.json). Its id is `?id=` or, "
    "without it, made from its name. Validated on the way in." + WORKBOOK_NOTE,
    responses=responses(400, 401, 409, 413, 415, 422, 507),
    openapi_extra=SCENARIO_REQUEST,
    dependencies=[PLANNER],
)
def create_scenario(
    scenario: ScenarioBody,
    store: StoreDep,
    response: Response,
    who: PrincipalDep,
    id: Annotated[
        str | None,
        Query(
            pattern=SCENARIO_ID_PATTERN,
            max_length=128,
            description="Id of the new scenario: letters, digits, '.', '_', '-'.",
        ),
    ] = None,
) -> ScenarioPublic:
    sid = id or _slug(scenario.name)
    row = store.create_scenario(sid, scenario.to_dict(), who.name)
    if row is None:
        raise ApiError(409, "Conflict", f"scenario {sid!r} exists; PUT replaces it", "conflict")
    response.headers["Location"] = f"/v1/scenarios/{sid}"
    response.headers["ETag"] = etag(row.revision)
    return scenario_public(row)


@router.get(
    "/{scenario_id}",
    response_model=ScenarioPublic,
    summary="Get a scenario",
    responses=responses(401, 404, 422),
    dependencies=[VIEWER],
)
def get_scenario(scenario_id: ScenarioId, store: StoreDep, response: Response) -> ScenarioPublic:
    row = store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    response.headers["ETag"] = etag(row.revision)
    return scenario_public(row)


@router.put(
    "/{scenario_id}",
    response_model=ScenarioPublic,
    summary="Replace (or create) a scenario",
    description="Replacing raises the revision by one, atomically: concurrent PUTs each "
    "get their own revision; plans keep the revision they were solved from. The response's "
    'ETag is the revision (`"3"`); send it back as `If-Match` to replace only that revision '
    "(412 if the scenario has moved on); `If-Match: *` replaces only an existing scenario."
    + WORKBOOK_NOTE,
    responses={
        201: {"model": ScenarioPublic, "description": "Created"},
        **responses(400, 401, 412, 413, 415, 422, 507),
    },
    openapi_extra=SCENARIO_REQUEST,
    dependencies=[PLANNER],
)
def replace_scenario(
    scenario_id: NewScenarioId,
    scenario: ScenarioBody,
    store: StoreDep,
    who: PrincipalDep,
    if_match: Annotated[
        str | None,
        Header(max_length=1000, description='The ETag (revision, e.g. "3") to replace, or *.'),
    ] = None,
) -> JSONResponse:
    expected: int | None = None
    if if_match is not None:
        tags = parse_if_match(if_match)
        current = store.get_scenario(scenario_id)
        if current is None or (tags is not None and current.revision not in tags):
            raise _precondition_failed(scenario_id, current.revision if current else None)
        expected = None if tags is None else current.revision
    try:
        row, created = store.replace_scenario(
            scenario_id,
            scenario.to_dict(),
            expected,
            must_exist=if_match is not None,
            actor=who.name,
        )
    except RevisionMismatch as exc:
        raise _precondition_failed(scenario_id, exc.current) from None
    body = scenario_public(row).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=201 if created else 200,
        headers={"Location": f"/v1/scenarios/{scenario_id}", "ETag": etag(row.revision)},
    )


@router.delete(
    "/{scenario_id}",
    status_code=204,
    summary="Delete a scenario",
    description="Its queued plan jobs are cancelled; finished plans stay readable. Its "
    "approved plan, if any, is no longer approved (the audit entry names it).",
    responses=responses(401, 404, 422),
    dependencies=[ADMIN],
)
def delete_scenario(scenario_id: ScenarioId, store: StoreDep, who: PrincipalDep) -> Response:
    if not store.delete_scenario(scenario_id, who.name):
        raise _not_found(scenario_id)
    return Response(status_code=204)


@router.get(
    "/{scenario_id}/revisions",
    response_model=Page[RevisionPublic],
    summary="The scenario's revisions, newest first, with who saved each and when",
    responses=responses(401, 404, 422),
    dependencies=[VIEWER],
)
def revisions(scenario_id: ScenarioId, store: StoreDep, page: PagingDep) -> Page[RevisionPublic]:
    rows, total = store.revisions(scenario_id, page.limit, page.offset)
    if total == 0 and store.get_scenario(scenario_id) is None:
        raise _not_found(scenario_id)
    items = [
        RevisionPublic(revision=r.revision, name=r.name, saved_at=r.saved_at, saved_by=r.saved_by)
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/{scenario_id}/plans/approved",
    response_model=PlanJobPublic,
    summary="The scenario's approved plan: what downstream consumers read",
    description="The plan job (with its plan and `approval`: who approved it, when, why), "
    "as GET /v1/plans/{id} answers it; `Content-Location` names that URL. 404 while the "
    "scenario has no approved plan.",
    responses=responses(401, 404, 422),
    dependencies=[VIEWER],
)
def approved_plan(scenario_id: ScenarioId, store: StoreDep) -> Response:
    approval = store.approved_plan(scenario_id)
    if approval is None:
        detail = (
            f"scenario {scenario_id!r} has no approved plan (POST /v1/plans/{{id}}/approve)"
            if store.get_scenario(scenario_id) is not None
            else f"no scenario {scenario_id!r}"
        )
        raise ApiError(404, "Not found", detail, "no-approved-plan")
    location = f"/v1/plans/{approval.plan_id}"
    return plan_response(store, approval.plan_id, {"Content-Location": location})


@router.post(
    "/{scenario_id}/plans",
    status_code=202,
    response_model=PlanJobPublic,
    summary="Submit a plan job",
    description="Answers 202 with the job and its Location; poll GET /v1/plans/{id} "
    "(Retry-After says when). An Idempotency-Key makes retries safe: the same key and body "
    "return the same job, the same key with another body answers 409.",
    responses=responses(400, 401, 404, 409, 413, 415, 422, 503, 507),
    dependencies=[PLANNER],
)
def submit_plan(
    scenario_id: ScenarioId,
    store: StoreDep,
    runner: RunnerDep,
    settings: SettingsDep,
    who: PrincipalDep,
    body: Annotated[PlanRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    req = body or PlanRequest()
    row = store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    options = {
        "time_limit_s": job_time_limit(req.time_limit_s, settings),
        "algorithm": req.algorithm,
    }
    if req.stable is not None:  # absent keeps the request hash of plans asked before
        options["stable"] = req.stable
    digest = hashlib.sha256(
        json.dumps({"scenario": scenario_id, "options": options}, sort_keys=True).encode()
    ).hexdigest()
    headers = {"Retry-After": "1"}
    if idempotency_key is not None:
        prior = store.plan_by_key(idempotency_key)
        if prior is not None:
            if prior.request_hash != digest:
                raise ApiError(
                    409,
                    "Conflict",
                    "this Idempotency-Key was used with another request",
                    "idempotency-conflict",
                )
            return JSONResponse(
                plan_public(prior).model_dump(mode="json"),
                status_code=202,
                headers=headers | {"Location": f"/v1/plans/{prior.id}"},
            )
    try:
        plan, new = store.create_plan(
            row,
            options,
            idempotency_key,
            digest if idempotency_key else None,
            max_pending=settings.max_pending_jobs,
            actor=who.name,
        )
    except QueueFull:
        raise queue_full(settings) from None
    if not new and plan.request_hash != digest:  # a concurrent request took the key
        raise ApiError(
            409,
            "Conflict",
            "this Idempotency-Key was used with another request",
            "idempotency-conflict",
        )
    runner.notify()
    return JSONResponse(
        plan_public(plan).model_dump(mode="json"),
        status_code=202,
        headers=headers | {"Location": f"/v1/plans/{plan.id}"},
    )


@router.post(
    "/{scenario_id}/what-if",
    response_model=WhatIfPublic,
    summary="Solve a copy with overrides and compare with the latest plan",
    description="Overrides: demand_scale, contract_scale, price_change and throughput_scale "
    "{segment id or kind: factor, one number or one per period; demand_scale leaves contract "
    "minimums as they are (lowered to the demand where it falls below them), contract_scale "
    "scales them}, cost_change {pool id or accelerator type: "
    "factor on the variable cost, one or one per period}, "
    "capacity_change {pool id: GPUs added, one number or one per period}, kind_caps / "
    "kind_floors {kind: GPUs}, power_change {site id: MW of IT power added, one number or "
    "one per period}. The stored scenario is not changed. The base is the latest "
    "finished plan of the scenario's current revision, solved now if there is none. The "
    "what-if is solved warm from the previous what-if on the same revision where the model "
    "keeps its structure (`warm` says so).",
    responses={
        202: {
            "model": JobPublic,
            "description": "Run as a job (beyond the synchronous size, or Prefer: "
            "respond-async): poll GET /v1/jobs/{id}; its result is this body.",
        },
        **responses(400, 401, 404, 415, 422, 503),
    },
    openapi_extra=body_openapi("WhatIfRequest"),
    dependencies=[PLANNER],
)
async def what_if(
    scenario_id: ScenarioId,
    overrides: Annotated[WhatIfRequest, Depends(model_body(WhatIfRequest))],
    store: StoreDep,
    sync: SyncDep,
    runner: RunnerDep,
    settings: SettingsDep,
    who: PrincipalDep,
    prefer: Prefer = None,
) -> Response:
    changes = overrides.model_dump(exclude={"time_limit_s"})

    def prepare() -> tuple[ScenarioRow, Scenario, bool]:
        """The stored scenario with the overrides applied (validation: in a thread), and
        whether it runs as a job."""
        row = store.get_scenario(scenario_id)
        if row is None:
            raise _not_found(scenario_id)
        new_sc = _overridden(row, changes)
        return row, new_sc, as_job(new_sc, settings, prefer)

    row, new_sc, job = await run_in_threadpool(prepare)
    shown = overrides.model_dump(exclude_none=True, exclude_defaults=True, mode="json")
    if job:
        latest = await run_in_threadpool(store.latest_done_plan, row)
        base_id = latest.id if latest is not None else None
        params = {
            "overrides": shown,  # as the answer shows them; time_limit_s is the job's
            "scenario_id": scenario_id,
            "scenario_revision": row.revision,
        }
        return submit_job(
            store,
            runner,
            settings,
            row,
            "what-if",
            params,
            who.name,
            overrides.time_limit_s,
            base_id,
            prefer,
        )

    limit = min(overrides.time_limit_s or settings.sync_time_limit_s, settings.sync_time_limit_s)
    options = {"time_limit_s": limit}
    latest = await run_in_threadpool(store.latest_done_plan, row)
    base_plan = latest.result if latest is not None else None
    if base_plan is None:
        base_plan = await run_solve(sync, row.body, options)
    # warm from this worker's session of the scenario revision (allocator.workflows.planner)
    out = await sync.what_if(
        f"{scenario_id}@{row.revision}",
        new_sc.to_dict(),
        {**options, "sessions": settings.whatif_sessions},
    )
    raise_problem(out)
    new_plan = out["plan"]
    body = WhatIfPublic(
        scenario_id=scenario_id,
        scenario_revision=row.revision,
        base_plan_id=latest.id if latest is not None else None,
        overrides=shown,
        difference=compare(base_plan, new_plan),
        plan={},
        warm=out["warm"],
    ).model_dump(mode="json")
    body["plan"] = new_plan  # as the worker made it, through orjson (NaN refused)
    return FastJSON(body)


@router.post(
    "/{scenario_id}/what-if/save",
    response_model=ScenarioPublic,
    summary="Store a what-if: as a new scenario (?as=id) or as the scenario's next revision",
    description="The same overrides as POST /what-if (time_limit_s is ignored), applied to "
    "the current revision as the what-if applies them (tiers, subscriptions and contract "
    "minimums move with demand and price), then stored: with `?as=` under that new id "
    "(201; an id that exists answers 409, nothing is overwritten), without it as the next "
    "revision of this scenario (200), only if the scenario is still at the revision the "
    "overrides were applied to: `If-Match` names it (412 otherwise); without If-Match, the "
    "current one at the time of the request.",
    responses={
        201: {"model": ScenarioPublic, "description": "Stored as a new scenario"},
        **responses(400, 401, 404, 409, 412, 415, 422, 507),
    },
    openapi_extra=body_openapi("WhatIfRequest"),
    dependencies=[PLANNER],
)
def save_what_if(
    scenario_id: ScenarioId,
    overrides: Annotated[WhatIfRequest, Depends(model_body(WhatIfRequest))],
    store: StoreDep,
    who: PrincipalDep,
    as_id: Annotated[
        str | None,
        Query(
            alias="as",
            pattern=SCENARIO_ID_PATTERN,
            max_length=128,
            description="Store as a new scenario with this id (else: a new revision).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        Query(max_length=200, description="The new scenario's name; '<name> (what-if)' if absent."),
    ] = None,
    if_match: Annotated[
        str | None,
        Header(max_length=1000, description='With a new revision: the ETag it replaces ("3").'),
    ] = None,
) -> JSONResponse:
    row = store.get_scenario(scenario_id)
    if row is None:
        raise _not_found(scenario_id)
    if as_id is None and if_match is not None:
        tags = parse_if_match(if_match)
        if tags is not None and row.revision not in tags:
            raise _precondition_failed(scenario_id, row.revision)
    body = _overridden(row, overrides.model_dump(exclude={"time_limit_s"})).to_dict()
    if as_id is not None:
        body["name"] = name or f"{row.name} (what-if)"
        new = store.create_scenario(as_id, body, who.name)
        if new is None:
            raise ApiError(
                409, "Conflict", f"scenario {as_id!r} exists; choose another id", "conflict"
            )
        out, status, sid = new, 201, as_id
    else:
        if name is not None:
            body["name"] = name
        try:
            out, _ = store.replace_scenario(
                scenario_id, body, row.revision, must_exist=True, actor=who.name
            )
        except RevisionMismatch as exc:
            raise _precondition_failed(scenario_id, exc.current) from None
        status, sid = 200, scenario_id
    return JSONResponse(
        scenario_public(out).model_dump(mode="json"),
        status_code=status,
        headers={"Location": f"/v1/scenarios/{sid}", "ETag": etag(out.revision)},
    )
