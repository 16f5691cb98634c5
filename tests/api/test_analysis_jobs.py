"""What-if and the scenario analyses beyond the synchronous size (or with
``Prefer: respond-async``) run as jobs: 202, ``/v1/jobs/{id}``, and once done the same
answer the synchronous route gives. Saving a what-if as a scenario or a revision."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from allocator import Scenario
from allocator.scenario.overrides import apply_overrides
from api.main import create_app
from tests.api.conftest import assert_problem, make_settings, tiny, wait_done

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def small(tmp_path):
    """A service whose synchronous limit (5 columns) is below tiny.json's 9: every
    analysis of a stored scenario runs as a job."""
    with TestClient(create_app(make_settings(tmp_path, sync_max_columns=5))) as c:
        yield c


def untimed(x):
    """``x`` without its timings (``time_s``, ``solve_time_s`` …), which differ run to run."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if not k.endswith("time_s")}
    if isinstance(x, list):
        return [untimed(v) for v in x]
    return x


def accepted(r) -> str:
    assert r.status_code == 202, r.text
    loc = r.headers["location"]
    assert loc.startswith("/v1/jobs/") and r.json()["status"] in ("queued", "running", "done")
    return loc


def test_what_if_beyond_the_synchronous_size_is_a_job_with_the_same_answer(small):
    plan = wait_done(small, small.post("/v1/scenarios/tiny/plans").headers["location"])
    r = small.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"b200": [1, 0]}})
    job = wait_done(small, accepted(r))
    assert job["status"] == "done" and job["kind"] == "what-if", job
    out = job["result"]
    assert out["base_plan_id"] == plan["id"] and out["scenario_revision"] == 1
    # one more B200 GPU in P1: 100 GPU-hours at the shadow price of 10 (data/README.md)
    assert out["difference"]["totals"]["objective"]["change"] == pytest.approx(1000)
    kinds = out["difference"]["by_kind"]
    assert kinds["first_party"]["gpus_by_period"]["change"] == pytest.approx([1 - 3, 0])
    assert out["overrides"] == {"capacity_change": {"b200": [1.0, 0.0]}}
    assert out["plan"]["totals"]["objective"] == pytest.approx(30950 + 1000)
    # a job of another kind is not a plan: the plan routes and "latest plan" skip it
    listed = small.get("/v1/plans", params={"scenario": "tiny"}).json()
    assert [j["id"] for j in listed["items"]] == [plan["id"]]
    body = assert_problem(small.get(f"/v1/plans/{job['id']}"), 404)
    assert f"/v1/jobs/{job['id']}" in body["detail"]
    assert_problem(small.get(f"/v1/plans/{job['id']}/explain", params={"segment": "chat"}), 404)
    kinds_listed = {j["kind"] for j in small.get("/v1/jobs").json()["items"]}
    assert kinds_listed == {"plan", "what-if"}
    again = wait_done(
        small,
        accepted(small.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"chat": 1}})),
    )
    assert again["result"]["base_plan_id"] == plan["id"]  # not the first what-if job
    assert again["result"]["difference"]["totals"]["objective"]["change"] == pytest.approx(0)


def test_what_if_job_without_a_plan_solves_the_base_too(small):
    job = wait_done(
        small,
        accepted(
            small.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"b200": [1, 0]}})
        ),
    )
    out = job["result"]
    assert out["base_plan_id"] is None and out["warm"] is False
    totals = out["difference"]["totals"]["objective"]
    assert totals["base"] == pytest.approx(30950)  # tiny.json's optimum (data/README.md)
    assert totals["change"] == pytest.approx(1000)  # 100 GPU-hours at the B200 price of 10
    assert job["progress"]["message"]  # the last progress line stays with the job


def test_analyses_as_jobs_give_what_the_synchronous_routes_give(client):
    """The same service answers at once, and as a job when asked (Prefer: respond-async)."""
    for path in ("/v1/scenarios/tiny/frontier", "/v1/scenarios/tiny/sensitivity"):
        now = client.get(path)
        assert now.status_code == 200
        r = client.get(path, headers=ASYNC)
        assert r.headers["preference-applied"] == "respond-async"
        job = wait_done(client, accepted(r))
        assert job["status"] == "done"
        assert untimed(job["result"]) == untimed(now.json())
    spec = {"transforms": [{"type": "capacity", "pool": "b200", "gpus": 1, "from_period": "P2"}]}
    now = client.post("/v1/scenarios/tiny/counterfactual", json=spec).json()
    job = wait_done(
        client, accepted(client.post("/v1/scenarios/tiny/counterfactual", json=spec, headers=ASYNC))
    )
    assert job["result"]["opportunity_cost"] == pytest.approx(-1450) == now["opportunity_cost"]
    fair = {"by": "kind"}
    now = client.post("/v1/scenarios/tiny/fair", json=fair).json()
    job = wait_done(
        client, accepted(client.post("/v1/scenarios/tiny/fair", json=fair, headers=ASYNC))
    )
    assert job["result"]["price_of_fairness"] == pytest.approx(now["price_of_fairness"])


def test_bad_analysis_input_fails_the_job_with_the_reason(small):
    # names checked in the worker (an unknown segment to range) fail the job with a 422 problem
    r = small.get("/v1/scenarios/tiny/sensitivity", params={"segment": "martians"})
    job = wait_done(small, accepted(r))
    assert job["status"] == "failed" and job["error"]["status"] == 422
    assert "martians" in job["error"]["detail"]
    # overrides are checked before anything is queued
    body = assert_problem(
        small.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"nope": 3}}), 422
    )
    assert body["errors"][0]["path"] == "capacity_change.nope"
    body = assert_problem(
        small.post("/v1/scenarios/tiny/what-if", json={"time_limit_s": 10**7}), 422
    )
    assert body["errors"][0]["path"] == "time_limit_s"
    assert_problem(small.get("/v1/jobs/nope"), 404)


def test_a_finished_job_is_deleted_and_the_list_filters_by_kind(small):
    job = wait_done(small, accepted(small.get("/v1/scenarios/tiny/frontier")))
    assert [
        j["id"] for j in small.get("/v1/jobs", params={"kind": "frontier"}).json()["items"]
    ] == [job["id"]]
    assert small.get("/v1/jobs", params={"kind": "what-if"}).json()["total"] == 0
    assert small.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert_problem(small.get(f"/v1/jobs/{job['id']}"), 404)


def test_save_a_what_if_as_a_new_scenario_or_revision(client):
    overrides = {"demand_scale": {"first_party": 0.5}, "capacity_change": {"b200": [1, 0]}}
    expected = apply_overrides(Scenario.from_dict(tiny()), overrides).to_dict()
    r = client.post("/v1/scenarios/tiny/what-if/save", params={"as": "tiny-half"}, json=overrides)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/scenarios/tiny-half" and r.headers["etag"] == '"1"'
    stored = client.get("/v1/scenarios/tiny-half").json()["scenario"]
    assert stored["pools"][1]["gpus"] == [6, 10]  # b200: 5 + 1, then 10
    assert stored["segments"][0]["demand"] == [10_000, 17_500]  # chat × 0.5
    assert stored == expected | {"name": f"{expected['name']} (what-if)"}
    assert client.get("/v1/scenarios/tiny").json()["revision"] == 1  # the source untouched
    again = client.post("/v1/scenarios/tiny/what-if/save", params={"as": "tiny-half"}, json={})
    assert_problem(again, 409)
    # a new revision, only of the revision the overrides were applied to
    stale = client.post(
        "/v1/scenarios/tiny/what-if/save", json=overrides, headers={"If-Match": '"7"'}
    )
    assert_problem(stale, 412)
    r = client.post("/v1/scenarios/tiny/what-if/save", json=overrides, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.headers["etag"] == '"2"'
    assert client.get("/v1/scenarios/tiny").json()["scenario"]["pools"][1]["gpus"] == [6, 10]
    bad = assert_problem(
        client.post("/v1/scenarios/tiny/what-if/save", json={"demand_scale": {"x": 2}}), 422
    )
    assert bad["errors"][0]["path"] == "demand_scale.x"
    assert client.get("/v1/scenarios/tiny").json()["revision"] == 2  # nothing stored
