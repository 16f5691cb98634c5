"""Baseline: the schema as the service had it before Alembic (scenarios with their revision
history, plan and analysis jobs, the readiness probe's table).

An empty database gets these tables. A database written by an older version has no version
table; it is recognised by its shape and completed to this schema, nothing in it lost:

* first release: ``scenarios`` and ``plans`` only; jobs without ``attempts``, ``progress``
  and ``kind``, no revision history;
* + ``scenario_revisions``, ``write_probe`` and ``plans.attempts`` (the hardening release);
* + ``plans.progress`` (job progress);
* + ``plans.kind`` (analysis jobs): the shape of this revision.

A scenario without its current revision in the history gets it (written at its update time).

Revision ID: 0001
Revises:
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _scenarios() -> None:
    op.create_table(
        "scenarios",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def _scenario_revisions() -> None:
    op.create_table(
        "scenario_revisions",
        sa.Column("scenario_id", sa.String(128), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def _write_probe() -> None:
    op.create_table(
        "write_probe",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pad", sa.Text, nullable=False),
    )


# columns the first release's jobs lack, in the order later releases added them
def plan_columns() -> list[sa.Column]:
    return [
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("progress", sa.Text),
        sa.Column("kind", sa.String(32), nullable=False, server_default="plan"),
    ]


def _plans() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("scenario_id", sa.String(128), nullable=False),
        sa.Column("scenario_revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("scenario_body", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("heartbeat_at", sa.DateTime()),
        sa.Column("owner", sa.String(64)),
        *plan_columns(),
    )
    op.create_index("ix_plans_scenario_id", "plans", ["scenario_id"])
    op.create_index("ix_plans_status", "plans", ["status"])


TABLES: dict[str, Callable[[], None]] = {
    "scenarios": _scenarios,
    "scenario_revisions": _scenario_revisions,
    "write_probe": _write_probe,
    "plans": _plans,
}


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    existing = set(insp.get_table_names())
    for name, create in TABLES.items():
        if name not in existing:
            create()
    if "plans" in existing:  # an older version's jobs: add what they lack
        have = {c["name"] for c in insp.get_columns("plans")}
        for col in plan_columns():
            if col.name not in have:
                op.add_column("plans", col)
    if "scenarios" in existing:  # every scenario's current revision is in its history
        op.execute(
            "INSERT INTO scenario_revisions (scenario_id, revision, name, body, created_at)"
            " SELECT s.id, s.revision, s.name, s.body, s.updated_at FROM scenarios s"
            " WHERE NOT EXISTS (SELECT 1 FROM scenario_revisions r"
            " WHERE r.scenario_id = s.id AND r.revision = s.revision)"
        )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
