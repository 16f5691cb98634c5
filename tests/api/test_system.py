from __future__ import annotations


def test_health_ready_version(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "database": True,
        "workers": True,
    }
    v = client.get("/v1/version").json()
    assert v["api"] == "v1" and v["version"] and v["highs"].count(".") == 2


def test_openapi_documents_problems_and_routes(client):
    spec = client.get("/openapi.json").json()
    assert "Problem" in spec["components"]["schemas"]
    for path in (
        "/v1/solve",
        "/v1/scenarios",
        "/v1/scenarios/{scenario_id}",
        "/v1/scenarios/{scenario_id}/plans",
        "/v1/scenarios/{scenario_id}/what-if",
        "/v1/plans",
        "/v1/plans/{plan_id}",
        "/v1/plans/{plan_id}/pools",
    ):
        assert path in spec["paths"], path
    solve = spec["paths"]["/v1/solve"]["post"]
    assert "application/problem+json" in solve["responses"]["422"]["content"]
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method_are_problems(client):
    from .conftest import assert_problem

    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.delete("/healthz"), 405)
