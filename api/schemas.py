"""Request and response models of the REST API (``*Request`` in, ``*Public`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from allocator.scenario.overrides import Overrides

from .problems import Problem

T = TypeVar("T")
# ids of scenarios created through the API: safe in a URL path segment, never "." or ".."
SCENARIO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# what reads accept: also ":" and "+", which earlier versions allowed in new ids
LEGACY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$"

PLAN_EXAMPLE = {
    "scenario": "tiny",
    "status": "optimal",
    "totals": {"objective": 30950.0, "gross_margin": 25450.0, "ltv": 5500.0},
    "pools": [{"pool": "b200", "period": "P1", "shadow_price_per_gpu_hour": 10.0}],
}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items in all pages.")
    limit: int
    offset: int


class ScenarioSummary(BaseModel):
    id: str
    name: str
    revision: int = Field(description="1 on creation, +1 at every replace.")
    periods: int
    pools: int
    segments: int
    created_at: datetime
    updated_at: datetime


class ScenarioPublic(ScenarioSummary):
    scenario: dict[str, Any] = Field(description="The scenario as stored.")


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    time_limit_s: float | None = Field(
        None, gt=0, strict=True, description="Solver time limit; the service default when absent."
    )
    algorithm: Literal["auto", "rowgen", "simplex", "ipm", "pdlp", "clp"] = "auto"
    stable: bool | None = Field(
        None,
        description="Return the optimal plan that moves the fewest GPUs between periods (a "
        "second solve, docs/stable-plans.md); absent: the scenario's policy.stable.",
    )


class PlanLinks(BaseModel):
    self: str
    scenario: str
    plan: str = Field(description="The plan itself: JSON, ?format=xlsx or ?format=parquet.")
    allocations: str
    segments: str
    pools: str


class JobProgress(BaseModel):
    message: str = Field(description="The engine's progress line, as the CLI shows it.")
    phase: str = Field(description="building, solving, row generation, reading out, diagnosing")
    round: int | None = Field(None, description="Row-generation round, when in one.")
    elapsed_s: float = Field(description="Seconds since the job's solver process started.")


class ApprovalPublic(BaseModel):
    scenario_id: str
    plan_id: str
    approved_by: str
    approved_at: datetime
    comment: str


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(
        min_length=1, max_length=2000, description="Why this plan (kept with the approval)."
    )


class ApprovePublic(ApprovalPublic):
    supersedes: str | None = Field(
        description="The plan that was the scenario's approved plan until now (null: none)."
    )


class PlanJobPublic(BaseModel):
    id: str
    scenario_id: str
    scenario_revision: int = Field(description="The scenario revision the plan was solved from.")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    options: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = Field(
        0, description="Times a worker started it: a job interrupted once is queued again."
    )
    error: Problem | None = Field(None, description="Why a failed job failed.")
    progress: JobProgress | None = Field(
        None,
        description="The solver's latest progress line, stored with the job's heartbeat "
        "(every 2 s while it runs; the last one once it finished); null before it starts.",
    )
    created_by: str | None = Field(
        None, description="Who submitted it (null: before the service had identities)."
    )
    approval: ApprovalPublic | None = Field(
        None, description="Set while this plan is its scenario's approved plan."
    )
    plan: dict[str, Any] | None = Field(
        None, description="The plan (Plan.to_dict()) once done.", examples=[PLAN_EXAMPLE]
    )
    links: PlanLinks


class JobLinks(BaseModel):
    self: str
    scenario: str
    plan: str | None = Field(None, description="A plan job's plan (its kind is plan).")


class JobPublic(BaseModel):
    """A job of any kind: a plan job, or an analysis run as a job (what-if, frontier,
    sensitivity, counterfactual, fair, alternatives)."""

    id: str
    kind: str = Field(
        description="plan, what-if, frontier, sensitivity, counterfactual, fair or alternatives."
    )
    scenario_id: str
    scenario_revision: int = Field(description="The scenario revision it was computed from.")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    options: dict[str, Any] = Field(description="time_limit_s and the analysis' parameters.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    error: Problem | None = Field(None, description="Why a failed job failed.")
    progress: JobProgress | None = Field(
        None, description="The latest progress line (phase, round, elapsed), as for plan jobs."
    )
    created_by: str | None = Field(
        None, description="Who submitted it (null: before the service had identities)."
    )
    result: dict[str, Any] | list[Any] | None = Field(
        None,
        description="Once done: what the synchronous route answers (a what-if's body with "
        "its difference and plan, the frontier, the ranging …); a plan job's plan.",
    )
    links: JobLinks


class WhatIfRequest(Overrides):
    time_limit_s: float | None = Field(None, gt=0, strict=True)  # true is not 1 s


class Change(BaseModel):
    base: float
    new: float
    change: float


class WhatIfPublic(BaseModel):
    scenario_id: str
    scenario_revision: int
    base_plan_id: str | None = Field(
        description="The stored plan compared against; null when none existed and the base "
        "was solved for this request."
    )
    overrides: dict[str, Any]
    difference: dict[str, Any] = Field(
        description="totals (every term of the objective: objective, revenue, "
        "variable_cost, rental_cost, shortfall_penalty, gross_margin, ltv, ltv_weight, "
        "weighted_ltv, churn_cost, expansion_cost), check (objective = gross_margin + "
        "weighted_ltv - churn_cost - expansion_cost: the terms' change and the residual) and "
        "by_kind (revenue, gross_margin, ltv, gpus_by_period): base, new and change."
    )
    plan: dict[str, Any] = Field(description="The what-if plan.")
    warm: bool = Field(
        False,
        description="Solved warm, from the basis of the previous what-if on this scenario "
        "revision in the same worker (allocator.workflows.planner.Planner); false for the "
        "first one, "
        "or when the overrides change the model's structure.",
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    workers: bool


class Version(BaseModel):
    version: str
    api: str
    highs: str


class RevisionPublic(BaseModel):
    revision: int
    name: str
    saved_at: datetime
    saved_by: str | None = Field(
        description="Who saved it (a key's name, oidc:<user>, anonymous on an open service, "
        "system for the bundled examples; null: saved before the service had identities)."
    )


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="Who: a key's name, oidc:<user>, ALLOCATOR_API_KEY, …")
    action: str = Field(
        description="scenario.create, scenario.revise, scenario.delete, job.submit, "
        "job.cancel, job.delete, plan.approve, key.add, key.revoke."
    )
    scenario_id: str | None = None
    scenario_revision: int | None = None
    target: str | None = Field(None, description="The job, plan or key it concerns.")
    detail: dict[str, Any] | None = None


Role = Literal["viewer", "planner", "admin"]


class MePublic(BaseModel):
    name: str
    role: Role
    auth: Literal["open", "service-key", "key", "oidc"] = Field(
        description="How the caller was recognised; open: the service needs no credentials."
    )


# a key's name: a person or a system, as the audit shows it
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,99}$"


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=KEY_NAME_PATTERN, description="Who holds it (person or system).")
    role: Role


class KeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")
