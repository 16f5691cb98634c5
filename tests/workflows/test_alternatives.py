"""Near-optimal alternatives (allocator.workflows.alternatives): modelling to generate
alternatives within a slack of the optimum.

Hand-solved fleet, one period of 100 h: pools ``east`` and ``west`` of 10 H100 each at no
cost, ``west`` can rent 5 more at 2.95 $/GPU-h. ``app`` (first party) earns 3 $/GPU-h and
wants 10 GPUs; ``cl`` (cloud) earns 2.9 $/GPU-h and wants 20. Optimum: app 10, cl 10, no
rental: 5,900 $. At 1 % slack the objective may fall by 59 $:

* cloud least: leaving a cloud GPU idle loses 290 $: 59/290 = 0.2034 GPUs fewer:
  1000 − 20.34 = 979.66 GPU-hours; most: renting a GPU for cloud loses 5 $ (all 5: 25 $),
  moving one from app 10 $ (3.4 more: 34 $): 10 + 5 + 3.4 = 18.4 GPUs = 1,840 GPU-hours.
* region west: 979.66 (idle) to 1,500 GPU-hours (its 10 GPUs and the 5 rentable);
* rentals: 0 to 500 GPU-hours.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from allocator.cli import main
from allocator.solvers.pulp import PulpSolver, available_solvers
from allocator.workflows.alternatives import alternatives, parse_vary
from tests.certificates import assert_optimal
from tests.test_properties import fleets

FLEET = {
    "periods": [{"label": "P1", "hours": 100}],
    "pools": [
        {
            "id": "east",
            "accelerator": "H100",
            "region": "east",
            "gpus": [10],
            "variable_cost_per_gpu_hour": 0.0,
        },
        {
            "id": "west",
            "accelerator": "H100",
            "region": "west",
            "gpus": [10],
            "variable_cost_per_gpu_hour": 0.0,
            "rentable_gpus": [5],
            "rental_price_per_gpu_hour": 2.95,
        },
    ],
    "segments": [
        {
            "id": "app",
            "kind": "first_party",
            "demand": [1000],
            "revenue_per_unit": 3.0,
            "throughput": {"H100": 1},
        },
        {
            "id": "cl",
            "kind": "cloud",
            "demand": [2000],
            "revenue_per_unit": 2.9,
            "throughput": {"H100": 1},
        },
    ],
}
REL = 1e-6


def by_name(res):
    return {a.quantity: a for a in res.alternatives}


def test_hand_solved_ranges():
    res = alternatives(FLEET, "kind:cloud,region:west,rentals", slack=0.01, keep_plans=True)
    assert res.optimum == pytest.approx(5_900)
    assert res.floor == pytest.approx(5_841)
    a = by_name(res)
    assert a["kind:cloud"].optimal == pytest.approx(1_000)
    assert a["kind:cloud"].min.value == pytest.approx(1000 - 5900 * 0.01 / 2.9, rel=REL)
    assert a["kind:cloud"].max.value == pytest.approx(1_840, rel=REL)
    assert a["region:west"].min.value == pytest.approx(1000 - 59 / 2.9, rel=REL)
    assert a["region:west"].max.value == pytest.approx(1_500, rel=REL)
    assert a["rentals"].min.value == pytest.approx(0, abs=1e-6)
    assert a["rentals"].max.value == pytest.approx(500, rel=REL)
    # at the ends the objective is at the floor, and the end's plan is a real plan
    end = a["kind:cloud"].max
    assert end.objective == pytest.approx(5_841, rel=REL)
    assert end.values["rentals"] == pytest.approx(500, rel=REL)
    assert end.plan is not None and end.plan.objective == pytest.approx(5_841, rel=REL)
    assert end.plan.max_violation <= 1e-6


def test_zero_slack_pins_what_the_optimum_pins():
    a = by_name(alternatives(FLEET, ["kind:cloud", "rentals"], slack=0.0))
    assert a["kind:cloud"].min.value == pytest.approx(1_000, rel=1e-6)
    assert a["kind:cloud"].max.value == pytest.approx(1_000, rel=1e-6)
    assert a["rentals"].max.value == pytest.approx(0, abs=1e-3)


def test_each_end_is_an_optimal_lp_certificate():
    res = alternatives(FLEET, "kind:cloud,accelerator:H100,pool:east,segment:app", slack=0.02)
    for lp, sol in res.solved.values():
        assert_optimal(lp, sol)


@pytest.mark.parametrize(
    "vary, match",
    [("vendor:nvidia", "unknown quantity"), ("", "at least one"), ("kind:", "unknown quantity")],
)
def test_bad_quantities(vary, match):
    with pytest.raises(ValueError, match=match):
        parse_vary(vary)


def test_unknown_target_and_slack():
    with pytest.raises(ValueError, match="no pool matches"):
        alternatives(FLEET, "region:mars")
    with pytest.raises(ValueError, match="slack"):
        alternatives(FLEET, "kind:cloud", slack=-0.1)


def test_cli_and_rest(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from api.main import create_app

    f = tmp_path / "f.json"
    f.write_text(json.dumps(FLEET))
    assert (
        main(
            [
                "alternatives",
                str(f),
                "--slack",
                "0.01",
                "--vary",
                "kind:cloud,region:west",
                "--vary",
                "rentals",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    got = {a["quantity"]: a["range"] for a in out["alternatives"]}
    assert got["rentals"] == pytest.approx([0, 500], abs=1e-6)
    assert main(["alternatives", str(f), "--vary", "kind:cloud"]) == 0
    assert "kind:cloud" in capsys.readouterr().out
    with TestClient(create_app()) as client:
        assert client.put("/v1/scenarios/alt-test", json=FLEET).status_code in (200, 201)
        r = client.post(
            "/v1/scenarios/alt-test/alternatives", json={"slack": 0.01, "vary": ["kind:cloud"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["alternatives"][0]["range"] == pytest.approx([979.655, 1840], rel=1e-5)
        r = client.post("/v1/scenarios/alt-test/alternatives", json={"vary": ["vendor:x"]})
        assert r.status_code == 422


# ----------------------------------------------------------------- random fleets
ALT = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ALT
@given(fleets())
def test_random_fleets_ranges_hold_the_optimum_and_are_certified(data):
    kinds = sorted({s["kind"] for s in data["segments"]})
    vary = [f"kind:{kinds[0]}", f"pool:{data['pools'][0]['id']}", "rentals"]
    res = alternatives(data, vary, slack=0.05)
    scale = max(1.0, abs(res.optimum))
    for a in res.alternatives:
        assert a.min.value <= a.optimal + 1e-6 * max(1.0, abs(a.optimal))
        assert a.max.value >= a.optimal - 1e-6 * max(1.0, abs(a.optimal))
        for end in (a.min, a.max):
            assert end.objective >= res.floor - 1e-6 * scale
    for lp, sol in res.solved.values():
        assert_optimal(lp, sol, tol=1e-6)


@pytest.mark.skipif("CBC" not in available_solvers(), reason="no CBC")
@ALT
@given(fleets())
def test_random_fleets_cbc_agrees(data):
    kinds = sorted({s["kind"] for s in data["segments"]})
    vary = [f"kind:{kinds[0]}", "rentals"]
    h = alternatives(data, vary, slack=0.05)
    c = alternatives(data, vary, slack=0.05, solver=PulpSolver("CBC"))
    for a, b in zip(h.alternatives, c.alternatives, strict=True):
        for x, y in ((a.min.value, b.min.value), (a.max.value, b.max.value)):
            assert y == pytest.approx(x, rel=1e-5, abs=1e-5 * max(1.0, abs(a.optimal)))
