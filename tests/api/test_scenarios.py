from __future__ import annotations

import json

from tests.api.conftest import JSON, assert_problem, tiny


def test_examples_are_loaded_and_paginated(client):
    page = client.get("/v1/scenarios", params={"limit": 2}).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 0
    assert [s["id"] for s in page["items"]] == ["ai_lab", "hyperscaler"]
    rest = client.get("/v1/scenarios", params={"limit": 2, "offset": 2}).json()
    assert [s["id"] for s in rest["items"]] == ["power_bound", "tiny"]
    assert rest["items"][1]["segments"] == 2 and rest["items"][1]["revision"] == 1
    assert client.get("/v1/scenarios", params={"limit": 1000}).json()["limit"] == 100  # capped
    assert_problem(client.get("/v1/scenarios", params={"limit": 0}), 422)
    assert_problem(client.get("/v1/scenarios", params={"offset": -1}), 422)


def test_create_get_replace_delete(client):
    d = tiny() | {"name": "Q3 plan / draft"}
    r = client.post("/v1/scenarios", json=d)
    assert r.status_code == 201
    sid = r.json()["id"]
    assert sid == "Q3-plan-draft" and r.headers["location"] == f"/v1/scenarios/{sid}"
    assert_problem(client.post("/v1/scenarios", json=d), 409)
    assert client.post("/v1/scenarios", params={"id": "copy"}, json=d).status_code == 201

    got = client.get(f"/v1/scenarios/{sid}").json()
    assert got["scenario"]["segments"][0]["id"] == "chat" and got["revision"] == 1

    d["pools"][0]["gpus"] = [20, 20]
    r = client.put(f"/v1/scenarios/{sid}", json=d)
    assert r.status_code == 200 and r.json()["revision"] == 2
    assert client.get(f"/v1/scenarios/{sid}").json()["scenario"]["pools"][0]["gpus"] == [20, 20]
    r = client.put("/v1/scenarios/brand-new", json=d)
    assert r.status_code == 201 and r.json()["revision"] == 1

    assert client.delete(f"/v1/scenarios/{sid}").status_code == 204
    assert_problem(client.get(f"/v1/scenarios/{sid}"), 404)
    assert_problem(client.delete(f"/v1/scenarios/{sid}"), 404)


def test_invalid_scenario_is_not_stored_and_nothing_is_lost(client):
    before = client.get("/v1/scenarios/tiny").json()
    bad = tiny()
    bad["segments"][1]["throughput"] = {"TPU-v9": 1.0}
    body = assert_problem(
        client.put("/v1/scenarios/tiny", content=json.dumps(bad), headers=JSON), 422
    )
    assert any(e["path"] == "segments[1].throughput.TPU-v9" for e in body["errors"])
    assert client.get("/v1/scenarios/tiny").json() == before  # unchanged, same revision
    assert_problem(client.post("/v1/scenarios", json={"name": "x"}), 422)
    assert_problem(client.get("/v1/scenarios/bad id!"), 422)
