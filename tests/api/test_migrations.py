"""Schema migrations (api/migrations, Alembic): the revisions make exactly the tables the
store declares; a database of every earlier schema upgrades with everything in it; services
starting together on one database all start; `allocator-api db upgrade|current`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from api import __main__ as cli
from api import migrations
from api.config import get_settings
from api.main import create_app
from api.store import QUEUED, Store, metadata, unreadable_results

from . import old_schemas
from .conftest import assert_problem, make_settings


def test_the_revisions_make_the_schema_the_store_declares(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert migrations.current(store.engine) == migrations.head()
        with store.engine.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c), metadata)
        assert diff == []
    finally:
        store.close()


def test_db_current_and_upgrade_on_the_command_line(tmp_path: Path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ALLOCATOR_DATABASE_URL", url)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str]:
        code = cli.main(["db", *args])
        return code, capsys.readouterr().out.strip()

    try:
        assert run("current") == (
            1,
            f"none (empty, or written before migrations) (behind: "
            f"this version's newest is {migrations.head()})",
        )
        assert run("upgrade", "--revision", "0001") == (
            0,
            f"0001 (behind: this version's newest is {migrations.head()})",
        )
        assert run("current")[0] == 1
        assert run("upgrade") == (0, f"{migrations.head()} (newest)")
        assert run("current") == (0, f"{migrations.head()} (newest)")
    finally:
        get_settings.cache_clear()
    engine = sa.create_engine(url)
    try:
        assert migrations.current(engine) == migrations.head()
    finally:
        engine.dispose()


def test_a_database_of_a_newer_version_is_refused_clearly(tmp_path: Path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    Store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(migrations.NewerSchema, match="revision 9999, which this version"):
        Store(url)
    monkeypatch.setenv("ALLOCATOR_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert cli.main(["db", "current"]) == 1
        assert "9999 (newer than this version" in capsys.readouterr().out
        assert cli.main(["db", "upgrade"]) == 1
        assert "run the newer version" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("schema", list(old_schemas.SCHEMAS))
def test_a_database_of_each_earlier_schema_upgrades_with_everything_kept(
    database_url: str, schema: str
):
    """No version table: the shape says which release wrote it; after the upgrade the
    scenario, its history, the plan with its result and Idempotency-Key, and the queued
    jobs are all there and usable, and a second start changes nothing."""
    old_schemas.write(database_url, schema)
    store = Store(database_url)
    try:
        assert migrations.current(store.engine) == migrations.head()
        with store.engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), metadata) == []
        row = store.get_scenario("old")
        assert row is not None and (row.revision, row.name) == (3, "kept")
        assert row.body == {"name": "kept", "periods": []}
        history = [rev for rev, _ in store.scenario_history("old")]
        assert history == ([2, 3] if old_schemas.SCHEMAS[schema][2] else [3])
        done = store.plan_by_key("key-1")
        assert done is not None and done.id == "done-1" and done.request_hash == "h1"
        assert store.get_plan("done-1").result == {"objective": 12.5, "status": "optimal"}
        assert done.kind == "plan" and done.options == {"time_limit_s": 5}
        assert store.latest_done_plan(row).id == "done-1"
        jobs = {p.id: p for p in store.list_plans("old", None, 10, 0, kind=None)[0]}
        expected = {"done-1", "queued-1", "running-1", "inf-1", "nan-name-1"}
        if "kind" in old_schemas.SCHEMAS[schema][1]:
            expected.add("whatif-1")
            assert jobs["whatif-1"].kind == "what-if"
        assert set(jobs) == expected
        assert jobs["running-1"].attempts == 0
        # a result with NaN or infinity is moved aside unchanged, its job failed
        assert jobs["inf-1"].status == "failed" and store.get_plan("inf-1").result is None
        assert jobs["inf-1"].error["type"] == "/problems/non-finite"
        assert "totals.gap" in jobs["inf-1"].error["detail"]
        with store.engine.connect() as c:
            moved = c.execute(sa.select(unreadable_results)).all()
        assert [(r.plan_id, r.result) for r in moved] == [("inf-1", old_schemas.INF_RESULT)]
        assert store.get_plan("nan-name-1").result["segments"] == ["NaNa", "Infinity war"]
        # an id with "/" is renamed, its plan with it ("team-a" was taken)
        assert store.get_scenario("team/a") is None
        assert store.get_scenario("team-a-2").name == "kept"
        assert store.get_plan("slash-1").scenario_id == "team-a-2"
        # the queued jobs run first come, first served, with their scenario and options
        claimed = store.claim_next("w")
        assert claimed is not None and claimed.id == "queued-1"
        assert claimed.scenario == row.body and claimed.options == {"time_limit_s": 7}
        # the old running job was interrupted (its service is gone): queued again, once
        assert store.fail_stale(1.0, {"title": "x"}, {"title": "y"}) == (1, 0)
        assert store.get_plan("running-1").status == QUEUED
        row2, created = store.replace_scenario("old", {"name": "next"})
        assert not created and row2.revision == 4
        # the plan of an earlier scenario under the id is kept, but not this one's
        assert store.get_plan("early-1").scenario_generation == 0
        # the deleted scenario's id goes on counting past its plans' revisions
        assert store.list_plans("gone", None, 10, 0)[1] == 1
        again_gone = store.create_scenario("gone", {"name": "new"})
        assert again_gone is not None and again_gone.revision == 8
        assert again_gone.generation == 2
        assert store.list_plans("gone", None, 10, 0)[1] == 0
    finally:
        store.close()
    again = Store(database_url)  # a second start changes nothing
    try:
        assert again.get_scenario("old").revision == 4
        assert [r for r, _ in again.scenario_history("old")][-2:] == [3, 4]
        assert migrations.current(again.engine) == migrations.head()
    finally:
        again.close()


SERVICES = 6


@pytest.mark.parametrize("schema", ["first-release", None])
def test_services_starting_together_all_start(database_url: str, schema: str | None):
    """Defect 6: several services (each with its own engine and connections) start at the
    same moment on an older database (or an empty one); each migrates or waits for the
    lock and finds the schema done, none fails with DuplicateColumn."""
    if schema is not None:
        old_schemas.write(database_url, schema)
    barrier = threading.Barrier(SERVICES, timeout=60)

    def start(_: int) -> str | None:
        barrier.wait()
        store = Store(database_url)
        try:
            return migrations.current(store.engine)
        finally:
            store.close()

    with ThreadPoolExecutor(SERVICES) as pool:
        revisions = list(pool.map(start, range(SERVICES), timeout=120))
    assert revisions == [migrations.head()] * SERVICES
    store = Store(database_url)
    try:
        with store.engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), metadata) == []
            versions = c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one()
        assert versions == 1
        if schema is not None:
            assert store.get_scenario("old").revision == 3
            assert store.plan_by_key("key-1").id == "done-1"
    finally:
        store.close()


def test_an_older_database_through_the_api(database_url: str, tmp_path: Path):
    """What an older version left that the API could not serve: a scenario id with "/"
    (listed, but neither readable nor deletable) and a plan with infinity in it (invalid
    JSON with 200, its views 500) are readable, deletable and clean problems."""
    old_schemas.write(database_url, "first-release")
    settings = make_settings(tmp_path, database_url=database_url, load_examples=False)
    with TestClient(create_app(settings)) as client:
        ids = [s["id"] for s in client.get("/v1/scenarios").json()["items"]]
        assert sorted(ids) == ["old", "team-a", "team-a-2"]
        assert client.get("/v1/scenarios/team-a-2").json()["name"] == "kept"
        plans = client.get("/v1/plans", params={"scenario": "team-a-2"}).json()["items"]
        assert [p["id"] for p in plans] == ["slash-1"]
        assert client.delete("/v1/scenarios/team-a-2").status_code == 204
        r = client.get("/v1/plans/inf-1")
        assert r.status_code == 200 and r.json()["status"] == "failed"  # valid JSON
        assert r.json()["error"]["type"] == "/problems/non-finite"
        for view in ("/plan", "/plan?format=xlsx", "/allocations", "/explain?segment=chat"):
            assert_problem(client.get(f"/v1/plans/inf-1{view}"), 409)
        assert client.delete("/v1/plans/inf-1").status_code == 204
