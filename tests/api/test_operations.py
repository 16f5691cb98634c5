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
