"""Helpers shared by the routes: scenario checks, size limits, plan rendering, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.responses import JSONResponse, Response

from allocator import Scenario
from allocator.cells import csv_cell
from allocator.lp.build import count_columns
from allocator.plan import jsonio

from ..config import Settings
from ..downloads import FastJSON
from ..problems import ApiError
from ..schemas import ApprovalPublic, PlanJobPublic, PlanLinks, ScenarioPublic, ScenarioSummary
from ..store import (
    CANCELLED,
    FINISHED,
    RUNNING,
    Approval,
    PlanApproved,
    PlanRow,
    ScenarioRow,
    Store,
)

CSV = "text/csv"


def check_size(sc: Scenario, settings: Settings, where: str) -> None:
    cols = count_columns(sc)
    if cols > settings.sync_max_columns:
        raise ApiError(
            413,
            "Scenario too large for a synchronous solve",
            f"its LP has {cols:,} columns, more than the {settings.sync_max_columns:,} "
            f"{where} takes; store it (POST /v1/scenarios) and submit a plan job "
            "(POST /v1/scenarios/{id}/plans)",
            "too-large",
        )


def scenario_summary(row: ScenarioRow) -> ScenarioSummary:
    b = row.body
    return ScenarioSummary(
        id=row.id,
        name=row.name,
        revision=row.revision,
        periods=len(b.get("periods", [])),
        pools=len(b.get("pools", [])),
        segments=len(b.get("segments", [])),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def scenario_public(row: ScenarioRow) -> ScenarioPublic:
    return ScenarioPublic(**scenario_summary(row).model_dump(), scenario=row.body)


def job_fields(row: PlanRow) -> dict[str, Any]:
    """What a job's JSON says of any job, plan or analysis: id, status, times, error,
    progress."""
    return {
        "id": row.id,
        "scenario_id": row.scenario_id,
        "scenario_revision": row.scenario_revision,
        "status": row.status,
        "options": row.options,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "attempts": row.attempts,
        "error": row.error,
        "progress": row.progress,
        "created_by": row.created_by,
    }


def spliced(public: dict[str, Any], key: str, text: str | None) -> bytes:
    """A job's JSON with ``key`` (its plan or result) as the JSON text the store holds
    (written by orjson, finite), spliced between the job's other fields: neither parsed
    nor written again."""
    keys = list(public)
    at = keys.index(key)
    head = jsonio.dumps({k: public[k] for k in keys[:at]})
    tail = jsonio.dumps({k: public[k] for k in keys[at + 1 :]})
    value = text.encode() if text is not None else b"null"
    return b"".join((head[:-1], b',"', key.encode(), b'":', value, b",", tail[1:]))


def queue_full(settings: Settings) -> ApiError:
    return ApiError(
        503,
        "Job queue full",
        f"{settings.max_pending_jobs} jobs are queued or running; retry later",
        "queue-full",
        headers={"Retry-After": "10"},
    )


def cancel_or_delete(store: Store, runner: Any, row: PlanRow, public: Any, actor: str) -> Response:
    """DELETE of a job: a finished one is deleted (204; 409 if it is an approved plan), a
    running one asked to stop and a queued one cancelled (200 with ``public(row)`` after
    it)."""
    if row.status in FINISHED:
        try:
            store.delete_plan(row.id, actor)
        except PlanApproved as exc:
            raise ApiError(
                409,
                "Approved plan",
                f"plan {row.id!r} is the approved plan of scenario {exc.scenario_id!r}: approve "
                "another plan of the scenario first (POST /v1/plans/{id}/approve)",
                "approved-plan",
            ) from None
        return Response(status_code=204)
    return cancel_job(store, runner, row, public, actor)


def cancel_job(store: Store, runner: Any, row: PlanRow, public: Any, actor: str) -> Response:
    """Cancel a queued job or ask a running one to stop (200 with the job after it); a job
    already cancelled is answered as it is, a done or failed one is 409."""
    if row.status in FINISHED and row.status != CANCELLED:
        raise ApiError(
            409, "Job finished", f"the job is {row.status}: nothing to cancel", "job-finished"
        )
    if row.status == RUNNING:
        store.request_cancel(row.id, actor)
    elif row.status != CANCELLED:
        store.cancel_plan(row.id, actor)
    runner.notify()
    after = store.get_plan(row.id)
    assert after is not None
    return JSONResponse(public(after).model_dump(mode="json"))


def approval_public(a: Approval) -> ApprovalPublic:
    return ApprovalPublic(
        scenario_id=a.scenario_id,
        plan_id=a.plan_id,
        approved_by=a.approved_by,
        approved_at=a.approved_at,
        comment=a.comment,
    )


def plan_public(row: PlanRow, approval: Approval | None = None) -> PlanJobPublic:
    base = f"/v1/plans/{row.id}"
    return PlanJobPublic(
        **job_fields(row),
        approval=approval_public(approval) if approval is not None else None,
        plan=row.result,
        links=PlanLinks(
            self=base,
            scenario=f"/v1/scenarios/{row.scenario_id}",
            plan=f"{base}/plan",
            allocations=f"{base}/allocations",
            segments=f"{base}/segments",
            pools=f"{base}/pools",
        ),
    )


def rows_response(rows: list[dict[str, Any]], as_csv: bool, filename: str) -> Response:
    """The rows as JSON, or as CSV with every cell by :func:`allocator.cells.csv_cell`
    (floats to 12 significant digits, formula-like text behind a single quote), as the CLI's
    CSV files have them."""
    if not as_csv:
        return FastJSON(rows, checked=True)  # a stored plan's rows: read from JSON, finite
    buf = io.StringIO()
    if rows:
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([csv_cell(k) for k in rows[0]])
        writer.writerows([csv_cell(v) for v in r.values()] for r in rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
