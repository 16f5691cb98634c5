"""GET /v1/plans/{id}/quotas: one file, or a zip of several; the same text the library
writes (tests/operations/test_quotas.py checks that text by hand); bad input is a 400
problem."""

from __future__ import annotations

import io
import zipfile

import pytest

from allocator import Plan, Scenario
from allocator.operations import compute_quotas
from allocator.operations.emit import render_all

from .conftest import assert_problem, tiny, wait_done


@pytest.fixture
def plan_id(client) -> str:
    client.put("/v1/scenarios/tiny", json=tiny())
    loc = client.post("/v1/scenarios/tiny/plans").headers["location"]
    return wait_done(client, loc)["id"]


def test_quotas_one_file_and_a_zip_match_the_library(client, plan_id) -> None:
    plan = Plan.from_dict(client.get(f"/v1/plans/{plan_id}/plan").json())
    q = compute_quotas(plan, Scenario.from_dict(tiny()), plan_id=plan_id)
    r = client.get(f"/v1/plans/{plan_id}/quotas?to=slurm&period=P2")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/x-shellscript")
    assert r.text == render_all(q, "slurm", ["P2"])["P2/slurm.sh"]
    r = client.get(f"/v1/plans/{plan_id}/quotas?to=kueue")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        got = {n.split("/", 1)[1]: zf.read(n).decode() for n in zf.namelist()}
    assert got == render_all(q, "kueue")
    assert sorted(got) == [
        "P1/kueue-effective-quotas.yaml",
        "P1/kueue.yaml",
        "P2/kueue-effective-quotas.yaml",
        "P2/kueue.yaml",
    ]


def test_quotas_bad_input(client, plan_id) -> None:
    assert (
        "period 'P9'"
        in assert_problem(client.get(f"/v1/plans/{plan_id}/quotas?to=kai&period=P9"), 400)["detail"]
    )
    assert_problem(client.get(f"/v1/plans/{plan_id}/quotas?to=lsf"), 422)
    assert_problem(client.get("/v1/plans/nope/quotas?to=kai"), 404)


CSV = (
    "segment,gpu_type,region,start,end,gpus\n"
    "chat,H100,east,2026-01-01T00:00:00,2026-01-01T10:00:00,4\n"
    "cloud,B200,,2026-01-05T00:00:00,2026-01-05T08:00:00,2\n"
)


def test_usage_stored_with_the_plan_then_actual(client, plan_id) -> None:
    """The CSV of tests/operations/test_actual.py: chat 40 H100-hours in P1, cloud 8
    B200-hours in each period; the comparison equals the library's (checked by hand there)."""
    assert_problem(client.get(f"/v1/plans/{plan_id}/actual"), 404)
    body = {"format": "csv", "data": CSV, "start": "2026-01-01T00:00:00"}
    r = client.post(f"/v1/plans/{plan_id}/usage", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["jobs"] == 2 and len(r.json()["rows"]) == 3
    rep = client.get(f"/v1/plans/{plan_id}/actual").json()
    assert rep["totals"]["used"] == 56.0 and rep["totals"]["exceeded"] == 16.0
    assert {r["name"]: r["variance_value"] for r in rep["by_kind"]} == {
        "cloud": -3554.0,
        "first_party": -23130.0,
    }
    # a bad upload: 422 naming line and field, and the stored usage is unchanged
    bad = CSV + "ghost,H100,east,2026-01-01T00:00:00,2026-01-01T01:00:00,1\n"
    p = assert_problem(client.post(f"/v1/plans/{plan_id}/usage", json={**body, "data": bad}), 422)
    assert "data:4: segment/queue/account 'ghost'" in p["detail"]
    p = assert_problem(
        client.post(
            f"/v1/plans/{plan_id}/usage", json={**body, "mapping": {"segments": {"x": {}}}}
        ),
        422,
    )
    assert "mapping: segments.x: no such segment" in p["detail"]
    assert_problem(client.post(f"/v1/plans/{plan_id}/usage", json={**body, "format": "xls"}), 422)
    assert client.get(f"/v1/plans/{plan_id}/actual").json() == rep
