"""Scenario ids with "/": the first release allowed them, later ones cannot address them in
a URL path (listed, but neither readable nor deletable). Each such scenario is renamed: "/"
becomes "-" ("team/a" -> "team-a"; "-2", "-3"... if that id is taken), in its history and
in its jobs too. Jobs of a deleted scenario keep the id they had (``?scenario=`` finds them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_ID = 128
# (table, column) naming a scenario id
REFERENCES = [("scenarios", "id"), ("scenario_revisions", "scenario_id"), ("plans", "scenario_id")]


def new_id(old: str, taken: set[str]) -> str:
    """``old`` with "-" for "/", made unique against ``taken``."""
    base = old.replace("/", "-")[:MAX_ID]
    out, n = base, 1
    while out in taken:
        n += 1
        suffix = f"-{n}"
        out = base[: MAX_ID - len(suffix)] + suffix
    return out


def upgrade() -> None:
    c = op.get_bind()
    taken = {r[0] for r in c.execute(sa.text("SELECT id FROM scenarios"))}
    taken |= {r[0] for r in c.execute(sa.text("SELECT id FROM deleted_scenarios"))}
    for old in sorted(i for i in taken if "/" in i):
        new = new_id(old, taken)
        taken.add(new)
        for table, column in REFERENCES:
            c.execute(
                sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old"),
                {"new": new, "old": old},
            )


def downgrade() -> None:  # the old ids are not kept: nothing to undo
    pass
