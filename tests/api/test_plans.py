from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import (
    assert_problem,
    make_settings,
    slow_scenario,
    tiny,
    wait_done,
    wait_status,
)


def test_job_lifecycle_and_views(client):
    r = client.post("/v1/scenarios/tiny/plans")
    assert r.status_code == 202
    loc = r.headers["location"]
    assert r.headers["retry-after"] == "1" and r.json()["status"] in ("queued", "running")
    job = wait_done(client, loc)
    assert job["status"] == "done" and job["scenario_revision"] == 1
    assert job["plan"]["totals"]["objective"] == pytest.approx(30950)
    assert job["started_at"] <= job["finished_at"]

    pools = client.get(f"{loc}/pools").json()
    assert {(p["pool"], p["period"]): p["shadow_price_per_gpu_hour"] for p in pools}[
        ("h100", "P1")
    ] == 3
    for url, headers in (
        (f"{loc}/allocations?format=csv", {}),
        (f"{loc}/allocations", {"Accept": "text/csv"}),
    ):
        r = client.get(url, headers=headers)
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 6 and float(rows[0]["gpus"]) == pytest.approx(5.0)
    seg = client.get(f"{loc}/segments?format=csv").text
    assert seg.splitlines()[0].startswith("segment,kind,period")

    listed = client.get("/v1/plans", params={"scenario": "tiny"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    assert listed["items"][0]["plan"] is None  # lists stay light
    assert client.get("/v1/plans", params={"scenario": "hyperscaler"}).json()["total"] == 0


def test_plans_keep_their_revision(db_client):
    client = db_client  # on SQLite and PostgreSQL
    first = wait_done(client, client.post("/v1/scenarios/tiny/plans").headers["location"])
    d = tiny()
    d["pools"][0]["gpus"] = [20, 20]
    client.put("/v1/scenarios/tiny", json=d)
    second = wait_done(client, client.post("/v1/scenarios/tiny/plans").headers["location"])
    assert (first["scenario_revision"], second["scenario_revision"]) == (1, 2)
    assert second["plan"]["totals"]["objective"] > first["plan"]["totals"]["objective"]
    again = client.get(f"/v1/plans/{first['id']}").json()
    assert again["plan"]["totals"]["objective"] == pytest.approx(30950)


def test_unknown_ids_and_unfinished_views(client):
    assert_problem(client.get("/v1/plans/nope"), 404)
    assert_problem(client.get("/v1/plans/nope/pools"), 404)
    assert_problem(client.delete("/v1/plans/nope"), 404)
    assert_problem(client.post("/v1/scenarios/nope/plans"), 404)
    assert_problem(client.post("/v1/scenarios/tiny/plans", json={"time_limit_s": -1}), 422)
    assert_problem(client.post("/v1/scenarios/tiny/plans", json={"time_limit_s": 1e9}), 422)
    assert_problem(client.post("/v1/scenarios/tiny/plans", json={"speed": "max"}), 422)
    assert_problem(client.get("/v1/plans", params={"status": "weird"}), 422)


def test_infeasible_job_fails_with_the_explanation(client):
    d = tiny()
    for s in d["segments"]:
        s["contract_min"], s["contract_hard"] = s["demand"], True
    client.put("/v1/scenarios/stuck", json=d)
    job = wait_done(client, client.post("/v1/scenarios/stuck/plans").headers["location"])
    assert job["status"] == "failed"
    assert (
        job["error"]["type"] == "/problems/infeasible"
        and "hard requirement" in job["error"]["detail"]
    )
    assert_problem(client.get(f"/v1/plans/{job['id']}/pools"), 409)


def test_idempotency_key(db_client):
    client = db_client  # on SQLite and PostgreSQL
    h = {"Idempotency-Key": "nightly-2026-11-25"}
    a = client.post("/v1/scenarios/tiny/plans", json={"time_limit_s": 60}, headers=h)
    b = client.post("/v1/scenarios/tiny/plans", json={"time_limit_s": 60}, headers=h)
    assert a.status_code == b.status_code == 202 and a.json()["id"] == b.json()["id"]
    assert a.headers["location"] == b.headers["location"]
    c = client.post("/v1/scenarios/tiny/plans", json={"time_limit_s": 30}, headers=h)
    assert_problem(c, 409)
    assert client.get("/v1/plans").json()["total"] == 1


def test_cancel_queued_and_running_and_queue_bound(tmp_path):
    settings = make_settings(tmp_path, max_pending_jobs=2, load_examples=False)
    with TestClient(create_app(settings)) as c:
        assert c.put("/v1/scenarios/slow", json=slow_scenario()).status_code == 201
        c.put("/v1/scenarios/tiny", json=tiny())
        running = c.post("/v1/scenarios/slow/plans").headers["location"]
        wait_status(c, running, "running")
        queued = c.post("/v1/scenarios/tiny/plans").headers["location"]
        assert c.get(queued).json()["status"] == "queued"  # one worker, busy
        full = assert_problem(c.post("/v1/scenarios/tiny/plans"), 503)
        assert full["type"] == "/problems/queue-full"
        # the service answers while the solve runs
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").json()["status"] == "ready"

        r = c.delete(queued)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = c.delete(running)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        # the worker is free again: a new job runs to the end
        job = wait_done(c, c.post("/v1/scenarios/tiny/plans").headers["location"])
        assert job["status"] == "done"
        assert c.get(running).json()["status"] == "cancelled"  # not overwritten
        assert c.delete(f"/v1/plans/{job['id']}").status_code == 204
        assert_problem(c.get(f"/v1/plans/{job['id']}"), 404)


def test_deleting_a_scenario_cancels_its_queued_jobs(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, load_examples=False))) as c:
        c.put("/v1/scenarios/slow", json=slow_scenario())
        c.put("/v1/scenarios/tiny", json=tiny())
        running = c.post("/v1/scenarios/slow/plans").headers["location"]
        wait_status(c, running, "running")
        queued = c.post("/v1/scenarios/tiny/plans").headers["location"]
        assert c.delete("/v1/scenarios/tiny").status_code == 204
        assert c.get(queued).json()["status"] == "cancelled"
        c.delete(running)


def test_a_job_reports_its_progress(client):
    """Issue 19: the engine's progress (phase, round, elapsed) is stored with the job."""
    loc = client.post("/v1/scenarios/hyperscaler/plans").headers["location"]
    seen = []
    job = client.get(loc).json()
    while job["status"] in ("queued", "running"):
        if job.get("progress"):
            seen.append(job["progress"])
        job = client.get(loc).json()
    assert job["status"] == "done"
    last = job["progress"]
    assert set(last) == {"message", "phase", "round", "elapsed_s"}
    assert last["phase"] == "reading out" and last["elapsed_s"] >= 0
    assert all(p["phase"] in ("building", "solving", "row generation", "reading out") for p in seen)


def test_progress_lines():
    from api.jobs import progress_line

    line = progress_line("round 2: +12 stability rows of 3,000", 1.234)
    assert line == {
        "message": "round 2: +12 stability rows of 3,000",
        "phase": "row generation",
        "round": 2,
        "elapsed_s": 1.23,
    }
    assert progress_line("building the LP of 'x'", 0)["phase"] == "building"
