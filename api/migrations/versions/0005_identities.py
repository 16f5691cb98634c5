"""Identities, audit and approved plans (docs/service-access.md): API keys per person or
system, stored as SHA-256 hashes; an audit log of every change with its actor; each
scenario's approved plan; who saved each revision and who submitted each job.

* ``api_keys``: id, name, role, key_hash (unique), created_at/by, revoked_at/by;
* ``audit_log``: id (ascending), at, actor, action, scenario_id, scenario_revision, target,
  detail (JSON);
* ``plan_approvals``: one row per scenario with an approved plan (scenario_id primary key,
  plan_id unique), approved_by, approved_at, comment;
* ``scenario_revisions.saved_by`` and ``plans.created_by``: nullable; rows written before
  this revision say null (unknown).

Only new tables and nullable columns: services of the previous version keep working on a
database upgraded to it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scenario_revisions", sa.Column("saved_by", sa.String(200)))
    op.add_column("plans", sa.Column("created_by", sa.String(200)))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("revoked_at", sa.DateTime()),
        sa.Column("revoked_by", sa.String(200)),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("scenario_id", sa.String(128), index=True),
        sa.Column("scenario_revision", sa.Integer),
        sa.Column("target", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "plan_approvals",
        sa.Column("scenario_id", sa.String(128), primary_key=True),
        sa.Column("plan_id", sa.String(36), nullable=False, unique=True),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plan_approvals")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    with op.batch_alter_table("plans") as b:
        b.drop_column("created_by")
    with op.batch_alter_table("scenario_revisions") as b:
        b.drop_column("saved_by")
