"""Optimistic concurrency (ETag / If-Match), a full disk (507, not ready), and a database
made by the previous schema opening with everything in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from api.store import QUEUED, Store

from .conftest import assert_problem, slow_scenario, tiny


def test_etag_is_the_revision_and_if_match_guards_put(client):
    r = client.post("/v1/scenarios?id=e", json=tiny())
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    assert client.get("/v1/scenarios/e").headers["etag"] == '"1"'
    r = client.put("/v1/scenarios/e", json=tiny() | {"name": "two"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.headers["etag"] == '"2"'
    stale = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": '"1"'})
    body = assert_problem(stale, 412)
    assert body["type"] == "/problems/precondition-failed" and "revision 2" in body["detail"]
    assert stale.headers["etag"] == '"2"'
    weak = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": 'W/"2"'})
    assert_problem(weak, 412)  # If-Match compares strongly
    r = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": '"7", "2"'})
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    r = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": "*"})
    assert r.status_code == 200 and r.headers["etag"] == '"4"'
    assert client.get("/v1/scenarios/e").json()["name"] == "tiny"
    assert_problem(client.put("/v1/scenarios/new", json=tiny(), headers={"If-Match": "*"}), 412)
    assert_problem(client.put("/v1/scenarios/new", json=tiny(), headers={"If-Match": '"1"'}), 412)
    assert client.get("/v1/scenarios/new").status_code == 404  # a refused PUT creates nothing
    r = client.put("/v1/scenarios/new", json=tiny())  # unconditional: creates
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    store = client.app.state.store
    assert [rev for rev, _ in store.scenario_history("e")] == [1, 2, 3, 4]


def _limit_pages(store: Store, extra: int | None) -> None:
    """Every connection of the store may grow the file by ``extra`` pages (None: no cap)."""
    with store.engine.connect() as c:
        pages = c.execute(sa.text("PRAGMA page_count")).scalar_one()
    store.engine.dispose()
    cap = 1_073_741_823 if extra is None else pages + extra

    def pragma(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA max_page_count = {cap}")

    if getattr(store, "_test_cap", None) is not None:
        sa.event.remove(store.engine, "connect", store._test_cap)  # type: ignore[attr-defined]
    sa.event.listen(store.engine, "connect", pragma)
    store._test_cap = pragma  # type: ignore[attr-defined]


def test_a_full_disk_answers_507_and_is_not_ready(client):
    assert client.get("/readyz").status_code == 200
    store = client.app.state.store
    _limit_pages(store, 0)  # the database cannot grow: "database or disk is full"
    big = slow_scenario()
    r = client.put("/v1/scenarios/big", json=big)
    body = assert_problem(r, 507)
    assert body["type"] == "/problems/insufficient-storage"
    assert "full" in body["detail"] and "Traceback" not in r.text
    assert_problem(client.post("/v1/scenarios?id=big2", json=big), 507)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] is False
    assert client.get("/v1/scenarios/tiny").status_code == 200  # reads still work
    _limit_pages(store, None)  # space again: the probe write succeeds
    assert client.get("/readyz").status_code == 200
    assert client.put("/v1/scenarios/big", json=big).status_code == 201


OLD_SCHEMA = """
CREATE TABLE plans (
    id VARCHAR(36) NOT NULL, scenario_id VARCHAR(128) NOT NULL,
    scenario_revision INTEGER NOT NULL, status VARCHAR(16) NOT NULL, options TEXT NOT NULL,
    scenario_body TEXT NOT NULL, result TEXT, error TEXT, idempotency_key VARCHAR(200),
    request_hash VARCHAR(64), created_at DATETIME NOT NULL, started_at DATETIME,
    finished_at DATETIME, heartbeat_at DATETIME, owner VARCHAR(64),
    PRIMARY KEY (id), UNIQUE (idempotency_key));
CREATE INDEX ix_plans_status ON plans (status);
CREATE INDEX ix_plans_scenario_id ON plans (scenario_id);
CREATE TABLE scenarios (
    id VARCHAR(128) NOT NULL, revision INTEGER NOT NULL, name VARCHAR(200) NOT NULL,
    body TEXT NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
    PRIMARY KEY (id));
"""


def test_a_database_of_the_previous_schema_opens_with_everything_kept(tmp_path: Path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(OLD_SCHEMA)
    body = '{"name": "kept", "periods": []}'
    t = "2026-01-02 03:04:05.000000"
    con.execute("INSERT INTO scenarios VALUES ('old', 3, 'kept', ?, ?, ?)", (body, t, t))
    con.execute(
        "INSERT INTO plans (id, scenario_id, scenario_revision, status, options, scenario_body,"
        " created_at, started_at, heartbeat_at, owner)"
        " VALUES ('p1', 'old', 3, 'running', '{}', ?, ?, ?, ?, 'gone:1:x')",
        (body, t, t, t),
    )
    con.commit()
    con.close()

    store = Store(f"sqlite:///{path}")
    try:
        row = store.get_scenario("old")
        assert row is not None and row.revision == 3 and row.body == {"name": "kept", "periods": []}
        assert [rev for rev, _ in store.scenario_history("old")] == [3]
        plan = store.get_plan("p1")
        assert plan is not None and plan.attempts == 0 and plan.status == "running"
        assert plan.kind == "plan"  # a job of before analysis jobs is a plan job
        assert store.latest_done_plan("old", 3) is None
        assert [p.id for p in store.list_plans("old", None, 10, 0)[0]] == ["p1"]
        # the old running job was interrupted: queued again, once
        assert store.fail_stale(1.0, {"title": "x"}, {"title": "y"}) == (1, 0)
        assert store.get_plan("p1").status == QUEUED
        row2, created = store.replace_scenario("old", {"name": "next"})
        assert not created and row2.revision == 4
        assert [rev for rev, _ in store.scenario_history("old")] == [3, 4]
    finally:
        store.close()
    reopened = Store(f"sqlite:///{path}")  # a second start changes nothing
    try:
        assert reopened.get_scenario("old").revision == 4
        assert [rev for rev, _ in reopened.scenario_history("old")] == [3, 4]
    finally:
        reopened.close()
