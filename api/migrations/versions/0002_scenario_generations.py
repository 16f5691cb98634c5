"""Scenario generations: plans and jobs belong to the scenario they were made from, whatever
happens to its id (defect 4: a scenario stored under a deleted one's id took over its plans).

* ``scenarios.generation``: 1 for the first scenario stored under an id, one more for each
  scenario stored under it after a delete;
* ``plans.scenario_generation``: the generation of the scenario a job was made from;
* ``deleted_scenarios``: per deleted id, its last generation and the highest revision it or
  its jobs reached, so that a scenario stored again under the id goes on counting (its
  revisions, hence ETags and plans' revisions, never repeat an earlier one's).

An older database cannot say which scenario a job came from but by time: a job created
before the scenario now under its id was stored belongs to an earlier one (generation 0);
an id whose scenario is gone and whose jobs remain gets its tombstone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "scenarios", sa.Column("generation", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column(
        "plans",
        sa.Column("scenario_generation", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_table(
        "deleted_scenarios",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
    )
    op.execute(
        "UPDATE plans SET scenario_generation = 0 WHERE EXISTS (SELECT 1 FROM scenarios s"
        " WHERE s.id = plans.scenario_id AND plans.created_at < s.created_at)"
    )
    op.execute(
        "INSERT INTO deleted_scenarios (id, generation, revision, deleted_at)"
        " SELECT p.scenario_id, 1, MAX(p.scenario_revision), MAX(p.created_at) FROM plans p"
        " WHERE NOT EXISTS (SELECT 1 FROM scenarios s WHERE s.id = p.scenario_id)"
        " GROUP BY p.scenario_id"
    )


def downgrade() -> None:
    op.drop_table("deleted_scenarios")
    with op.batch_alter_table("plans") as b:
        b.drop_column("scenario_generation")
    with op.batch_alter_table("scenarios") as b:
        b.drop_column("generation")
