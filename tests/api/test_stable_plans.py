"""REST: a plan job takes ``stable`` (issue 26 item 1); a scenario stored with a pool's
GPUs as one number comes back as one number per period (item 14)."""

from __future__ import annotations

from tests.api.conftest import tiny, wait_done
from tests.test_stable import TWO_OPTIMA


def test_a_plan_job_can_ask_for_the_stable_plan(client):
    assert client.put("/v1/scenarios/two-optima", json=TWO_OPTIMA).status_code in (200, 201)
    r = client.post("/v1/scenarios/two-optima/plans", json={"stable": True})
    assert r.status_code == 202
    plan = wait_done(client, r.headers["location"])["plan"]
    assert plan["moves"] == []  # anchor keeps its 10 GPUs: nothing moves
    assert plan["solver"]["first_stage_objective"] is not None
    plain = wait_done(client, client.post("/v1/scenarios/two-optima/plans").headers["location"])
    assert plain["plan"]["solver"]["first_stage_objective"] is None


def test_one_number_is_stored_per_period(client):
    d = tiny()
    d["pools"][0]["gpus"] = 12
    assert client.put("/v1/scenarios/tiny", json=d).status_code == 200
    assert client.get("/v1/scenarios/tiny").json()["scenario"]["pools"][0]["gpus"] == [12, 12]
