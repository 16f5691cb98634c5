"""A scenario id outlives its scenario: plans and jobs stay with the scenario they were made
from (defect 4), and a scenario stored again under a deleted id goes on counting."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import tiny, wait_done


def small() -> dict:
    """tiny with a tenth of its demand: a much smaller objective than tiny's."""
    sc = tiny()
    for seg in sc["segments"]:
        seg["demand"] = [d / 10 for d in seg["demand"]]
        if "contract_min" in seg:
            seg["contract_min"] = [m / 10 for m in seg["contract_min"]]
    return sc | {"name": "small"}


def plan_of(client: TestClient, sid: str) -> dict:
    r = client.post(f"/v1/scenarios/{sid}/plans", json={})
    assert r.status_code == 202, r.text
    job = wait_done(client, r.headers["location"])
    assert job["status"] == "done", job
    return job


def test_a_scenario_stored_under_a_deleted_id_has_none_of_its_plans(db_client: TestClient):
    client = db_client
    assert client.post("/v1/scenarios?id=x", json=tiny()).status_code == 201
    old = plan_of(client, "x")
    assert old["scenario_revision"] == 1
    assert client.delete("/v1/scenarios/x").status_code == 204

    r = client.post("/v1/scenarios?id=x", json=small())
    assert r.status_code == 201
    # the new scenario goes on counting: revision 2, so an ETag of the deleted one
    # ("1") can never replace it
    assert r.json()["revision"] == 2 and r.headers["etag"] == '"2"'
    stale = client.put("/v1/scenarios/x", json=small(), headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert client.get("/v1/plans", params={"scenario": "x"}).json()["total"] == 0

    # an empty what-if compares the scenario with itself: no change, and no base plan
    # borrowed from the deleted scenario (which reported -95 %)
    w = client.post("/v1/scenarios/x/what-if", json={})
    assert w.status_code == 200, w.text
    body = w.json()
    assert body["base_plan_id"] is None and body["scenario_revision"] == 2
    objective = body["difference"]["totals"]["objective"]
    assert abs(objective["change"]) <= 1e-6 * abs(objective["base"])
    old_objective = client.get(f"/v1/plans/{old['id']}").json()["plan"]["totals"]["objective"]
    assert objective["base"] < 0.5 * old_objective  # the base is small's, not tiny's

    new = plan_of(client, "x")
    assert new["scenario_revision"] == 2
    listed = client.get("/v1/plans", params={"scenario": "x"}).json()
    assert [p["id"] for p in listed["items"]] == [new["id"]]
    assert client.post("/v1/scenarios/x/what-if", json={}).json()["base_plan_id"] == new["id"]
    # the deleted scenario's plan is still there, with the revision it was made from
    kept = client.get(f"/v1/plans/{old['id']}").json()
    assert kept["status"] == "done" and kept["scenario_revision"] == 1

    # deleted again: its id lists the plans of every scenario that had it
    assert client.delete("/v1/scenarios/x").status_code == 204
    listed = client.get("/v1/plans", params={"scenario": "x"}).json()
    assert {p["id"] for p in listed["items"]} == {old["id"], new["id"]}
    assert client.put("/v1/scenarios/x", json=tiny()).json()["revision"] == 3
