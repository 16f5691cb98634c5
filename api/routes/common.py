"""Helpers shared by the routes: scenario checks, size limits, plan rendering, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.responses import Response

from allocator import Scenario
from allocator.lp.build import count_columns

from ..config import Settings
from ..downloads import FastJSON
from ..problems import ApiError
from ..schemas import PlanJobPublic, PlanLinks, ScenarioPublic, ScenarioSummary
from ..store import PlanRow, ScenarioRow

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


def plan_public(row: PlanRow) -> PlanJobPublic:
    base = f"/v1/plans/{row.id}"
    return PlanJobPublic(
        id=row.id,
        scenario_id=row.scenario_id,
        scenario_revision=row.scenario_revision,
        status=row.status,  # type: ignore[arg-type]
        options=row.options,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        error=row.error,
        progress=row.progress,  # type: ignore[arg-type]
        plan=row.result,  # type: ignore[arg-type]
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
    if not as_csv:
        return FastJSON(rows, checked=True)  # a stored plan's rows: read from JSON, finite
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
