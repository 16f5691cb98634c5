from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem, tiny, wait_done


def test_explain_and_capacity_on_a_finished_plan(client):
    loc = client.post("/v1/scenarios/tiny/plans").headers["location"]
    wait_done(client, loc)
    ex = client.get(f"{loc}/explain", params={"segment": "chat"}).json()
    values = {(v["pool"], v["period"]): v for v in ex["values"]}
    assert values[("b200", "P1")]["value_per_gpu_hour"] == pytest.approx(16)
    assert values[("b200", "P1")]["shadow_price_per_gpu_hour"] == pytest.approx(10)
    assert ex["sentences"][0].startswith("P1: chat (first_party)")
    assert_problem(client.get(f"{loc}/explain", params={"segment": "nobody"}), 422)
    assert_problem(client.get(f"{loc}/explain"), 422)
    rows = client.get(f"{loc}/capacity").json()
    assert {(r["pool"], r["period"]): r["value_per_gpu"] for r in rows}[("h100", "P2")] == 450
    assert_problem(client.get("/v1/plans/nope/explain", params={"segment": "chat"}), 404)


def test_sensitivity_frontier_counterfactual(client):
    s = client.get("/v1/scenarios/tiny/sensitivity").json()
    assert s["objective"] == pytest.approx(30950)
    f = client.get("/v1/scenarios/tiny/frontier").json()
    margins = [p["margin"] for p in f["points"]]
    assert margins == sorted(margins, reverse=True)
    c = client.post(
        "/v1/scenarios/tiny/counterfactual",
        json={"transforms": [{"type": "capacity", "pool": "b200", "gpus": 1, "from_period": "P2"}]},
    )
    assert c.status_code == 200 and c.json()["opportunity_cost"] == pytest.approx(-1450)
    bad = assert_problem(
        client.post(
            "/v1/scenarios/tiny/counterfactual",
            json={"transforms": [{"type": "remove_segment", "segment": "nope"}]},
        ),
        422,
    )
    assert bad["errors"][0]["path"] == "transforms[0].segment"
    assert_problem(client.post("/v1/scenarios/tiny/counterfactual", json={"transforms": []}), 422)
    assert_problem(client.get("/v1/scenarios/nope/frontier"), 404)


def test_infeasible_422_carries_the_diagnosis(client):
    d = tiny()
    for s in d["segments"]:
        s["contract_min"], s["contract_hard"] = s["demand"], True
    body = assert_problem(client.post("/v1/solve", json=d), 422)
    assert body["type"] == "/problems/infeasible"
    diag = body["diagnosis"]
    assert not diag["feasible"] and diag["relaxation"]
    assert {c["constraint"] for c in diag["conflicts"]} >= {"segment-contract", "pool-capacity"}
    client.put("/v1/scenarios/stuck", json=d)
    job = wait_done(client, client.post("/v1/scenarios/stuck/plans").headers["location"])
    assert job["status"] == "failed" and job["error"]["diagnosis"]["relaxation"]
