"""Actual usage stored with a plan (POST /v1/plans/{id}/usage, docs/operations.md):

* ``plan_usage``: plan_id (primary key), body (JSON: GPU-hours per segment, accelerator x
  region and period), created_at, created_by.

Only a new table: services of the previous version keep working on a database upgraded
to it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_usage",
        sa.Column("plan_id", sa.String(36), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200)),
    )


def downgrade() -> None:
    op.drop_table("plan_usage")
