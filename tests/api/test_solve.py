from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import JSON, assert_problem, make_settings, tiny


def test_solve_returns_the_plan(client):
    r = client.post("/v1/solve", json=tiny())
    assert r.status_code == 200
    plan = r.json()
    assert plan["totals"]["objective"] == pytest.approx(30950)
    prices = {(p["pool"], p["period"]): p["shadow_price_per_gpu_hour"] for p in plan["pools"]}
    assert prices[("b200", "P2")] == pytest.approx(14.5)


def test_invalid_scenario_names_every_field(client):
    d = tiny()
    d["segments"][0]["demand"][0] = -1
    d["pools"][1]["gpus"] = [1, 2, 3]
    d["segments"][1]["contract_min"] = [0, 9999]
    body = assert_problem(client.post("/v1/solve", content=json.dumps(d), headers=JSON), 422)
    paths = {e["path"]: e["message"] for e in body["errors"]}
    assert "greater than or equal to 0" in paths["segments[0].demand[0]"]
    assert "expected 2" in paths["pools[1].gpus"]
    assert "above demand" in paths["segments[1].contract_min[1]"]


def test_nan_and_bad_json(client):
    d = tiny()
    d["pools"][0]["variable_cost_per_gpu_hour"] = float("nan")
    body = assert_problem(client.post("/v1/solve", content=json.dumps(d), headers=JSON), 422)
    assert body["errors"][0]["path"] == "pools[0].variable_cost_per_gpu_hour"
    body = assert_problem(client.post("/v1/solve", content=b"{oops", headers=JSON), 422)
    assert body["errors"][0]["message"].startswith("not valid JSON")
    assert_problem(client.post("/v1/solve", content=b"[]", headers=JSON), 422)


def test_infeasible_is_422_with_the_engines_explanation(client):
    d = tiny()
    for s in d["segments"]:
        s["contract_min"] = s["demand"]
        s["contract_hard"] = True
    body = assert_problem(client.post("/v1/solve", json=d), 422)
    assert body["type"] == "/problems/infeasible"
    assert "hard requirement" in body["detail"]


def test_too_large_points_to_jobs(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, sync_max_columns=5))) as c:
        body = assert_problem(c.post("/v1/solve", json=tiny()), 413)
        assert "/v1/scenarios/{id}/plans" in body["detail"]


def test_body_limit_and_media_type(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, max_body_bytes=1024))) as c:
        big = tiny() | {"description": "x" * 2000}
        assert_problem(c.post("/v1/solve", json=big), 413)
        chunks = (part for part in [json.dumps(big).encode()])  # no Content-Length: counted
        assert_problem(c.post("/v1/solve", content=chunks, headers=JSON), 413)
        assert c.post("/v1/solve", json=tiny()).status_code == 200
        assert_problem(
            c.post("/v1/solve", content=b"x", headers={"content-type": "text/plain"}), 415
        )


def test_api_key(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, api_key="s3cret"))) as c:
        r = assert_problem(c.post("/v1/solve", json=tiny()), 401)
        assert r["type"] == "/problems/unauthorized"
        assert_problem(c.get("/v1/scenarios", headers={"X-API-Key": "wrong"}), 401)
        assert c.get("/v1/scenarios", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key


def test_cors_closed_unless_configured(tmp_path):
    pre = {"Origin": "https://planner.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(make_settings(tmp_path))) as c:
        r = c.options("/v1/solve", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    with TestClient(
        create_app(make_settings(tmp_path, cors_origins=["https://planner.example"]))
    ) as c:
        r = c.options("/v1/solve", headers=pre)
        assert r.headers["access-control-allow-origin"] == "https://planner.example"


def test_solve_with_a_reservation_offer(client):
    from tests.test_reservations import fleet

    r = client.post("/v1/solve", json=fleet(fee=3.0))
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["reservations"] == [
        {
            "segment": "c",
            "kind": "cloud",
            "pool": "h",
            "period": "P1",
            "gpus": pytest.approx(5.0),
            "gpu_hours": pytest.approx(500.0),
            "revenue": pytest.approx(1500.0),
        }
    ]
    bad = fleet(fee=3.0, max_gpus=[1.0, 2.0])
    body = assert_problem(client.post("/v1/solve", json=bad), 422)
    assert body["errors"][0]["path"] == "segments[0].reservation.max_gpus"
