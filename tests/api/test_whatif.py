from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem, wait_done


def test_what_if_against_the_latest_plan(client):
    job = wait_done(client, client.post("/v1/scenarios/tiny/plans").headers["location"])
    r = client.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"b200": [1, 0]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["base_plan_id"] == job["id"] and out["scenario_revision"] == 1
    # one more B200 GPU in P1 = 100 GPU-hours at the shadow price of 10: it serves 3,000
    # Mtok of chat, which frees 3 H100 GPUs for cloud (data/README.md derives the price)
    assert out["difference"]["totals"]["objective"]["change"] == pytest.approx(1000)
    kinds = out["difference"]["by_kind"]
    assert kinds["first_party"]["gpus_by_period"]["change"] == pytest.approx([1 - 3, 0])
    assert kinds["cloud"]["gpus_by_period"]["change"] == pytest.approx([3, 0])
    assert client.get("/v1/scenarios/tiny").json()["revision"] == 1  # stored one untouched


def test_what_if_without_a_plan_solves_the_base_and_scales_by_kind(client):
    r = client.post(
        "/v1/scenarios/tiny/what-if",
        json={"demand_scale": {"first_party": 0.5}, "price_change": {"cloud": 2}},
    )
    assert r.status_code == 200
    out = r.json()
    assert out["base_plan_id"] is None
    assert out["difference"]["by_kind"]["cloud"]["revenue"]["change"] > 0
    assert out["overrides"] == {
        "demand_scale": {"first_party": 0.5},
        "price_change": {"cloud": 2.0},
    }


def test_bad_overrides_name_the_field(client):
    body = assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"nope": 3}}), 422
    )
    assert body["errors"] == [{"path": "capacity_change.nope", "message": "unknown pool 'nope'"}]
    body = assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"martians": 2}}), 422
    )
    assert body["errors"][0]["path"] == "demand_scale.martians"
    assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"cloud": -1}}), 422
    )
    assert_problem(client.post("/v1/scenarios/nope/what-if", json={}), 404)


def test_second_what_if_is_warm_and_equals_a_cold_solve(client):
    from allocator import Scenario, solve
    from allocator.scenario.overrides import apply_overrides

    first = client.post("/v1/scenarios/hyperscaler/what-if", json={"demand_scale": {"cloud": 1.1}})
    assert first.status_code == 200, first.text
    assert first.json()["warm"] is False  # the first what-if of a revision starts the session
    base = Scenario.from_dict(client.get("/v1/scenarios/hyperscaler").json()["scenario"])
    for ov in (
        {"demand_scale": {"cloud": 1.3}, "price_change": {"first_party": 0.9}},
        {"capacity_change": {base.pools[0].id: -100}},
    ):
        r = client.post("/v1/scenarios/hyperscaler/what-if", json=ov)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["warm"] is True
        cold = solve(apply_overrides(base, ov), algorithm="simplex")
        assert out["plan"]["totals"]["objective"] == pytest.approx(cold.objective, rel=1e-9)
    # a new revision is a new session
    assert client.put("/v1/scenarios/hyperscaler", json=base.to_dict()).status_code == 200
    r = client.post("/v1/scenarios/hyperscaler/what-if", json={"demand_scale": {"cloud": 1.1}})
    assert r.json()["warm"] is False and r.json()["scenario_revision"] == 2


def test_infeasible_what_if_keeps_its_diagnosis(client):
    client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"cloud": 1.1}})
    body = assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"kind_floors": {"rnd": 1e6}}), 422
    )
    assert "diagnosis" in body
    ok = client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"cloud": 1.2}})
    assert ok.status_code == 200


def test_what_if_difference_reconciles(client):
    """Issue 19: cloud × 1.2 and +2,000 GPUs showed objective −140.65M, gross margin
    +123.79M with the churn term hidden; every term is in the totals and they add up."""
    r = client.post(
        "/v1/scenarios/hyperscaler/what-if",
        json={"demand_scale": {"cloud": 1.2}, "capacity_change": {"gb200-eastus": 2000}},
    )
    assert r.status_code == 200, r.text
    d = r.json()["difference"]
    t = {k: v["change"] for k, v in d["totals"].items()}
    for k in ("ltv", "churn_cost", "expansion_cost", "weighted_ltv", "ltv_weight"):
        assert k in t
    terms = t["gross_margin"] + t["weighted_ltv"] - t["churn_cost"] - t["expansion_cost"]
    assert t["objective"] == pytest.approx(terms, rel=1e-6, abs=1.0)
    assert d["check"]["terms_change"] == pytest.approx(terms)
    assert abs(d["check"]["residual"]) <= 1e-6 * max(1.0, abs(t["objective"])) + 1.0
    assert d["totals"]["churn_cost"]["change"] != 0  # more cloud demand: more churn


def test_impossible_capacity_change_is_refused(client):
    body = assert_problem(
        client.post(
            "/v1/scenarios/hyperscaler/what-if",
            json={"capacity_change": {"h100-eastus": -999_999}},
        ),
        422,
    )
    assert body["errors"][0]["path"] == "capacity_change.h100-eastus"
    assert "999,999" in body["errors"][0]["message"] and "48,000" in body["errors"][0]["message"]
    body = assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"capacity_change": {"b200": [0, -99]}}),
        422,
    )
    assert [e["path"] for e in body["errors"]] == ["capacity_change.b200[1]"]


def test_numbers_given_as_strings_are_refused(client):
    """A factor of "1.2" (a string) or true is refused naming the field, not read as 1.2."""
    for body, path in (
        ({"demand_scale": {"chat": "1.2"}}, "demand_scale.chat"),
        ({"capacity_change": {"b200": True}}, "capacity_change.b200"),
        ({"kind_caps": {"cloud": "5"}}, "kind_caps.cloud"),
    ):
        problem = assert_problem(client.post("/v1/scenarios/tiny/what-if", json=body), 422)
        assert problem["errors"][0]["path"] == path, problem
    ok = client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"chat": 2}})
    assert ok.status_code == 200  # an integer is a number
