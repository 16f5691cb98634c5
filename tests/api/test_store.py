"""The store on SQLite and on PostgreSQL (a database of its own, see conftest)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from api.store import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Store
from tests.api.conftest import tiny


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.close()


def test_sqlite_runs_in_wal_mode(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'w.db'}")
    with s.engine.connect() as c:
        assert c.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_revisions_and_plans(store):
    row = store.create_scenario("a", tiny())
    assert row.revision == 1 and store.create_scenario("a", tiny()) is None
    row2, created = store.replace_scenario("a", tiny() | {"name": "renamed"})
    assert not created and row2.revision == 2 and row2.name == "renamed"
    assert row2.created_at == row.created_at and row2.updated_at >= row.updated_at
    plan = store.create_plan(row2, {"time_limit_s": 5}, "key-1", "hash-1")[0]
    assert plan.status == QUEUED and plan.scenario_revision == 2
    assert store.plan_by_key("key-1").id == plan.id
    assert store.count_pending() == 1


def test_claim_is_atomic_and_fifo(store):
    row = store.create_scenario("a", tiny())
    first = store.create_plan(row, {}, None, None)[0]
    second = store.create_plan(row, {}, None, None)[0]
    got = store.claim_next("w1")
    assert got is not None and got[0] == first.id and got[1]["name"] == "tiny"
    assert store.claim_next("w2")[0] == second.id
    assert store.claim_next("w3") is None
    store.finish(first.id, DONE, {"ok": 1}, None)
    assert store.get_plan(first.id).result == {"ok": 1}
    assert store.latest_done_plan(row).id == first.id


def test_stale_running_jobs_fail_and_cancel_wins(store):
    row = store.create_scenario("a", tiny())
    p = store.create_plan(row, {}, None, None)[0]
    store.claim_next("w")
    time.sleep(0.05)
    err, twice = {"title": "Job interrupted"}, {"title": "Job interrupted twice"}
    assert store.fail_stale(10.0, err, twice) == (0, 0)  # heartbeat is fresh
    assert store.fail_stale(0.01, err, twice) == (1, 0)  # interrupted once: queued again
    assert store.get_plan(p.id).status == QUEUED
    assert store.claim_next("w2")[0] == p.id
    time.sleep(0.05)
    assert store.fail_stale(0.01, err, twice) == (0, 1)  # interrupted twice: failed
    assert store.get_plan(p.id).status == FAILED
    assert store.get_plan(p.id).error == twice
    q = store.create_plan(row, {}, None, None)[0]
    assert store.cancel_plan(q.id) == CANCELLED
    r = store.create_plan(row, {}, None, None)[0]
    store.claim_next("w")
    store.request_cancel(r.id)
    store.finish(r.id, DONE, {"late": True}, None)  # a late result does not undo a cancel
    assert store.get_plan(r.id).status == CANCELLED and store.get_plan(r.id).result is None
    assert store.get_plan(r.id, with_result=False).status == CANCELLED
    assert RUNNING not in {x.status for x in store.list_plans("a", None, 10, 0)[0]}
