"""Issue 18, hardening the service: bounded error lists, magnitude limits, strict types, safe
ids, media types, the version route's key, 405's Allow, and no non-finite number stored."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.problems import MAX_ERRORS
from api.store import DONE, FAILED, NonFiniteError, Store

from .conftest import JSON, assert_problem, make_settings, tiny


def many_bad_pools(n: int) -> dict:
    bad = {"id": "p", "accelerator": "H100", "region": "e", "gpus": [-1, -1]}
    return tiny() | {"pools": [bad] * n}


def test_error_list_is_capped_and_counts_the_rest(client):
    r = client.post("/v1/scenarios", json=many_bad_pools(1000))
    body = assert_problem(r, 422)
    assert len(body["errors"]) == MAX_ERRORS
    total = int(body["detail"].split()[0])
    assert total > MAX_ERRORS and body["errors_truncated"] == total - MAX_ERRORS
    assert len(r.content) < 20_000
    few = assert_problem(client.post("/v1/solve", json=many_bad_pools(2)), 422)
    # + the variable cost, + the segments' B200 that no pool names (checked although the
    # pools failed their field checks)
    assert "errors_truncated" not in few and len(few["errors"]) == 4 + 2 + 2


@pytest.mark.parametrize("route", ["/v1/solve", "/v1/scenarios?id=huge", "/v1/scenarios/huge"])
def test_huge_number_is_422_naming_field_and_limit_and_nothing_is_stored(client, route):
    d = tiny()
    d["pools"][0]["gpus"][0] = 1e308
    method = client.put if route == "/v1/scenarios/huge" else client.post
    body = assert_problem(method(route, json=d), 422)
    assert any(
        e["path"] == "pools[0].gpus[0]" and "1,000,000,000,000" in e["message"]
        for e in body["errors"]
    ), body
    assert_problem(client.get("/v1/scenarios/huge"), 404)


def test_product_overflow_is_refused(client):
    d = tiny()
    d["periods"][0]["hours"] = 1e6
    d["pools"][0]["variable_cost_per_gpu_hour"] = 1e10  # each fine, the product 1e16 is not
    body = assert_problem(client.post("/v1/solve", json=d), 422)
    (e,) = body["errors"]
    assert e["path"] == "pools[0].variable_cost_per_gpu_hour" and "10^15" in e["message"]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["pools"][0]["gpus"].__setitem__(0, True), "pools[0].gpus[0]"),
        (lambda d: d["segments"][0]["demand"].__setitem__(1, "35000"), "segments[0].demand[1]"),
        (lambda d: d["periods"][0].__setitem__("hours", "100"), "periods[0].hours"),
        (lambda d: d["segments"][1].__setitem__("contract_hard", 0), "segments[1].contract_hard"),
    ],
)
def test_strict_types(client, edit, path):
    d = tiny()
    edit(d)
    body = assert_problem(client.post("/v1/scenarios?id=strict", json=d), 422)
    assert [e["path"] for e in body["errors"]] == [path]
    assert_problem(client.get("/v1/scenarios/strict"), 404)


def test_ints_still_are_numbers(client):
    d = tiny()
    d["pools"][0]["variable_cost_per_gpu_hour"] = 1
    assert client.post("/v1/solve", json=d).status_code == 200


@pytest.mark.parametrize("sid", ["a/b", "..", ".hidden", "-x", "a b", "a:b", "x" * 129])
def test_unsafe_ids_are_refused_on_create(client, sid):
    body = assert_problem(client.post("/v1/scenarios", params={"id": sid}, json=tiny()), 422)
    assert body["errors"][0]["path"] == "query.id"
    assert client.get("/v1/scenarios", params={"limit": 100}).json()["total"] == 4  # examples


def test_safe_ids_round_trip_and_names_become_safe_ids(client):
    for sid in ("a.b_c-1", "X" * 128):
        assert client.put(f"/v1/scenarios/{sid}", json=tiny()).status_code == 201
        assert client.get(f"/v1/scenarios/{sid}").status_code == 200
        assert client.delete(f"/v1/scenarios/{sid}").status_code == 204
    assert_problem(client.put("/v1/scenarios/a:b", json=tiny()), 422)
    r = client.post("/v1/scenarios", json=tiny() | {"name": "fleet/2026: q1"})
    assert r.status_code == 201 and r.json()["id"] == "fleet-2026-q1"
    assert client.get(r.headers["location"]).status_code == 200


def test_media_type_is_case_insensitive(client):
    for ctype in ("Application/JSON", "APPLICATION/JSON; charset=UTF-8"):
        r = client.post("/v1/solve", content=json.dumps(tiny()), headers={"content-type": ctype})
        assert r.status_code == 200, r.text
    assert_problem(
        client.post("/v1/solve", content=b"{}", headers={"content-type": "Text/Plain"}), 415
    )


def test_version_needs_the_key_like_every_v1_route(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, api_key="s3cret"))) as c:
        assert_problem(c.get("/v1/version"), 401)
        assert c.get("/v1/version", headers={"X-API-Key": "s3cret"}).json()["api"] == "v1"
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    schema = create_app(make_settings(tmp_path, api_key="k")).openapi()
    assert "401" in schema["paths"]["/v1/version"]["get"]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/scenarios/tiny", {"GET", "HEAD", "PUT", "DELETE"}),
        ("DELETE", "/v1/scenarios", {"GET", "HEAD", "POST"}),
        ("PUT", "/v1/solve", {"POST"}),
        ("POST", "/v1/plans/abc", {"GET", "HEAD", "DELETE"}),
    ],
)
def test_405_allow_lists_every_method(client, method, path, allowed):
    r = client.request(method, path, headers=JSON)
    assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


def test_store_refuses_non_finite_numbers(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with pytest.raises(NonFiniteError):
            store.create_scenario("nan", tiny() | {"discount_rate": math.nan})
        assert store.get_scenario("nan") is None
        with pytest.raises(NonFiniteError):
            store.replace_scenario("inf", tiny() | {"discount_rate": math.inf})
        assert store.get_scenario("inf") is None
        row = store.create_scenario("ok", tiny())
        plan, _ = store.create_plan(row, {}, None, None)
        claimed = store.claim_next("me")
        assert claimed is not None and claimed[0] == plan.id
        store.finish(plan.id, DONE, {"totals": {"objective": math.inf}}, None)
        got = store.get_plan(plan.id)
        assert got.status == FAILED and got.result is None
        assert got.error["type"] == "/problems/non-finite"
    finally:
        store.close()


def test_whatif_body_is_validated_in_a_thread_too(client):
    body = assert_problem(
        client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"chat": "x"}}), 422
    )
    assert body["errors"][0]["path"] == "demand_scale.chat"
    assert_problem(client.post("/v1/scenarios/tiny/what-if", content=b"{x", headers=JSON), 422)
    r = client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"chat": 1.1}})
    assert r.status_code == 200 and r.json()["difference"]


def test_openapi_states_the_servers_limits(client):
    s = client.get("/openapi.json").json()
    comps, paths = s["components"]["schemas"], s["paths"]
    for path, method in [("/v1/solve", "post"), ("/v1/scenarios", "post")]:
        body = paths[path][method]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Scenario"
        }
    put = paths["/v1/scenarios/{scenario_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Scenario")
    (sid,) = [p for p in put["parameters"] if p["name"] == "scenario_id"]
    (qid,) = [p for p in paths["/v1/scenarios"]["post"]["parameters"] if p["name"] == "id"]
    for p in (sid["schema"], qid["schema"]["anyOf"][0]):
        assert p["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
    per_period, one = comps["Pool"]["properties"]["gpus"]["anyOf"]  # a list, or one number
    assert per_period["items"] == one == {"type": "number", "minimum": 0, "maximum": 1e12}
    assert comps["Segment"]["properties"]["contract_hard"]["type"] == "boolean"
    assert "type" in comps["Capacity"]["required"]  # a tagged union's tag is required
    limit = comps["PlanRequest"]["properties"]["time_limit_s"]["anyOf"][0]
    assert limit["maximum"] == 3600
    assert "errors_truncated" in comps["Problem"]["properties"]
    what_if = paths["/v1/scenarios/{scenario_id}/what-if"]["post"]["requestBody"]
    assert what_if["content"]["application/json"]["schema"]["$ref"].endswith("/WhatIfRequest")
    # either credential: an API key, or an OIDC bearer token (docs/service-access.md)
    assert paths["/v1/version"]["get"]["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}]


def test_big_bodies_are_validated_in_the_validator_process(client):
    from api.bodies import BIG

    raw = json.dumps(many_bad_pools(5000)).encode()
    assert len(raw) > BIG
    r = client.post("/v1/scenarios", content=raw, headers=JSON)
    body = assert_problem(r, 422)
    assert len(body["errors"]) == MAX_ERRORS and body["errors"][0]["path"] == "pools[0].gpus[0]"
    assert body["errors_truncated"] == int(body["detail"].split()[0]) - MAX_ERRORS > 0
    big = tiny() | {"description": "x" * BIG}
    r = client.put("/v1/scenarios/big", json=big)
    assert r.status_code == 201 and r.json()["scenario"]["description"] == big["description"]
    assert client.post("/v1/solve", json=big).status_code == 200
