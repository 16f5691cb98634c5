"""Results with NaN or infinity: versions before the store refused them wrote them as
``NaN`` / ``Infinity``, which is not JSON (GET answered invalid JSON with 200, views and
downloads 500). Each such job is marked failed with a problem naming the first such number
and saying to solve again (its scenario stays with it); the stored text moves, unchanged,
to ``unreadable_results`` (nothing is lost).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def first_non_finite(text: str) -> str | None:
    """Where the first NaN or infinity is in the JSON-with-NaN ``text`` ("totals.gap");
    None if it is JSON after all; "(unparsable)" if even Python's reader refuses it."""
    try:
        orjson.loads(text)
        return None
    except orjson.JSONDecodeError:
        pass
    try:
        stack: list[tuple[str, Any]] = [("", json.loads(text))]
    except ValueError:
        return "(unparsable)"
    while stack:
        path, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return path or "(the value)"
        items: list[tuple[str, Any]] = []
        if isinstance(v, dict):
            items = [(f"{path}.{k}" if path else str(k), x) for k, x in v.items()]
        elif isinstance(v, list):
            items = [(f"{path}[{i}]", x) for i, x in enumerate(v)]
        stack.extend(reversed(items))  # depth first, in the text's order
    return "(unparsable)"


def upgrade() -> None:
    op.create_table(
        "unreadable_results",
        sa.Column("plan_id", sa.String(36), primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
    )
    c = op.get_bind()
    suspects = c.execute(
        sa.text(
            "SELECT id FROM plans WHERE result IS NOT NULL"
            " AND (result LIKE '%Infinity%' OR result LIKE '%NaN%')"
        )
    ).all()
    found_at = datetime.now(UTC).replace(tzinfo=None)
    for (pid,) in suspects:
        text = c.execute(sa.text("SELECT result FROM plans WHERE id = :p"), {"p": pid}).scalar()
        where = first_non_finite(str(text))
        if where is None:
            continue
        error = {
            "type": "/problems/non-finite",
            "title": "Plan not readable",
            "status": 500,
            "detail": f"an earlier version stored this result with NaN or an infinity (at "
            f"{where}), which JSON cannot carry; solve the scenario again",
        }
        c.execute(
            sa.text("INSERT INTO unreadable_results VALUES (:p, :r, :t)"),
            {"p": pid, "r": text, "t": found_at},
        )
        c.execute(
            sa.text(
                "UPDATE plans SET status = 'failed', result = NULL, error = :e,"
                " finished_at = COALESCE(finished_at, :t) WHERE id = :p"
            ),
            {"p": pid, "e": json.dumps(error), "t": found_at},
        )


def downgrade() -> None:
    op.drop_table("unreadable_results")
