"""Schema migrations (api/migrations, Alembic): the revisions make exactly the tables the
store declares; `allocator-api db upgrade|current`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api import migrations
from api.store import Store, metadata

ROOT = Path(__file__).resolve().parents[2]


def test_the_revisions_make_the_schema_the_store_declares(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert migrations.current(store.engine) == migrations.head()
        with store.engine.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c), metadata)
        assert diff == []
    finally:
        store.close()


def test_db_current_and_upgrade_on_the_command_line(tmp_path: Path):
    env = {"ALLOCATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", "db", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    before = run("current")
    assert before.returncode == 1 and before.stdout.startswith("none")
    up = run("upgrade")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"{migrations.head()} (newest)"
    now = run("current")
    assert now.returncode == 0 and now.stdout.strip() == f"{migrations.head()} (newest)"
    engine = sa.create_engine(env["ALLOCATOR_DATABASE_URL"])
    try:
        assert migrations.current(engine) == migrations.head()
    finally:
        engine.dispose()
