"""Fair shares (allocator.workflows.fairness): the max-min fairness floor, value above it,
the price of fairness.

Hand-solved: one period of 100 h, one pool of 10 GPUs at no cost. ``big`` earns 5 $ per
unit and wants 1,000 units (10 GPUs at 1 unit/GPU-h), ``small`` earns 1 $ and wants 500
(5 GPUs); ``cloud`` (another kind) earns 2 $ and wants nothing here.

* unconstrained: big takes the 10 GPUs: 5,000 $; small gets nothing.
* max-min fair, equal weights: both get the share z of their demand, 10z + 5z = 10 GPUs:
  z = 2/3; big 666.7 units, small 333.3: 3,333.3 + 333.3 = 3,666.7 $; price of fairness
  1,333.3 $ (26.7 %). small's floor costs 5 − 1 = 4 $ per unit: dual −4.
* weights big 2, small 1: 2z·10 + z·5 = 10, z = 0.4: big 80 %, small 40 %: 4,000 + 200 =
  4,200 $, price 800 $.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings

from allocator import solve
from allocator.cli import main
from allocator.solvers.pulp import PulpSolver, available_solvers
from allocator.solvers.rowgen import RowGenerationSolver
from allocator.workflows.fairness import fair_solve
from tests.certificates import assert_optimal
from tests.test_properties import fleets

FLEET = {
    "periods": [{"label": "P1", "hours": 100}],
    "pools": [
        {
            "id": "h100",
            "accelerator": "H100",
            "region": "east",
            "gpus": [10],
            "variable_cost_per_gpu_hour": 0.0,
        }
    ],
    "segments": [
        {
            "id": "big",
            "kind": "first_party",
            "demand": [1000],
            "revenue_per_unit": 5.0,
            "throughput": {"H100": 1},
        },
        {
            "id": "small",
            "kind": "first_party",
            "demand": [500],
            "revenue_per_unit": 1.0,
            "throughput": {"H100": 1},
        },
    ],
}


def test_equal_weights_floor_and_price_of_fairness():
    res = fair_solve(FLEET, by="segment", kind="first_party")
    assert res.floor == pytest.approx([2 / 3], rel=1e-6)
    assert res.shares["big"] == pytest.approx([2 / 3], rel=1e-6)
    assert res.shares["small"] == pytest.approx([2 / 3], rel=1e-6)
    assert res.unconstrained_objective == pytest.approx(5_000)
    assert res.fair_objective == pytest.approx(3_666.667, rel=1e-6)
    assert res.price_of_fairness == pytest.approx(1_333.333, rel=1e-6)
    assert res.price_of_fairness_share == pytest.approx(0.26667, rel=1e-4)
    rows = {b.key["segment"]: b for b in res.plan.binding if b.constraint == "fair-share"}
    assert rows["small"].dual == pytest.approx(-4, rel=1e-6)


def test_weights():
    res = fair_solve(FLEET, weights={"big": 2})
    assert res.floor == pytest.approx([0.4], rel=1e-6)
    assert res.shares["big"] == pytest.approx([0.8], rel=1e-6)
    assert res.fair_objective == pytest.approx(4_200, rel=1e-6)
    assert res.price_of_fairness == pytest.approx(800, rel=1e-5)


def test_by_kind_with_spare_capacity_goes_by_value():
    d = json.loads(json.dumps(FLEET))
    d["pools"][0]["gpus"] = [20]
    d["segments"].append(
        {
            "id": "cl",
            "kind": "cloud",
            "demand": [1000],
            "revenue_per_unit": 2.0,
            "throughput": {"H100": 1},
        }
    )
    # kinds: first_party wants 15 GPUs, cloud 10; 20 GPUs: 15z + 10z = 20, z = 0.8
    res = fair_solve(d, by="kind")
    assert res.entities == ["cloud", "first_party"]
    assert res.floor == pytest.approx([0.8], rel=1e-6)
    # above the floor nothing is left; inside first_party the floor goes to big first
    fp = {a.segment: a.gpus for a in res.plan.allocations}
    assert fp["big"] == pytest.approx(10) and fp["small"] == pytest.approx(2)
    assert res.fair_objective == pytest.approx(5_000 + 200 + 1_600, rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="by must be"):
        fair_solve(FLEET, by="pool")
    with pytest.raises(ValueError, match="unknown segments"):
        fair_solve(FLEET, weights={"nope": 1})
    with pytest.raises(ValueError, match="positive"):
        fair_solve(FLEET, weights={"big": 0})


def test_cli_and_rest(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from api.main import create_app

    f = tmp_path / "f.json"
    f.write_text(json.dumps(FLEET))
    assert main(["fair", str(f), "--weight", "big=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["price_of_fairness"] == pytest.approx(800, rel=1e-5)
    assert main(["fair", str(f)]) == 0
    assert "price of fairness" in capsys.readouterr().out.lower()
    with TestClient(create_app()) as client:
        r = client.put("/v1/scenarios/fair-test", json=FLEET)
        assert r.status_code in (200, 201), r.text
        r = client.post("/v1/scenarios/fair-test/fair", json={"weights": {"big": 2}})
        assert r.status_code == 200, r.text
        assert r.json()["price_of_fairness"] == pytest.approx(800, rel=1e-5)


# ----------------------------------------------------------------- random fleets
FAIR = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAIR
@given(fleets())
def test_random_fleets_fair_plan_is_certified_and_costs_at_most_the_optimum(data):
    res = fair_solve(data, solver=RowGenerationSolver())
    assert res.price_of_fairness >= -1e-6 * max(1.0, abs(res.unconstrained_objective))
    assert res.plan.max_violation <= 1e-6
    demand = {(r.segment, r.period): r.demand for r in res.plan.segments}
    for e in res.entities:
        for t, z in enumerate(res.floor):
            # the floor rows hold to the solver's absolute tolerance on served units (the
            # certificate below), so a share may sit below the floor by that much over the
            # segment's demand: 1e-4 units (a segment with 0.3 units of demand: 3e-4 of a share)
            d = demand[(e, res.plan.periods[t])]
            assert res.shares[e][t] >= z - 1.5e-4 - 1e-4 / max(d, 1e-9)
    # the default solver's plan above the floor is optimal for that LP (certificate)
    assert_optimal(res.lp, res.solution, tol=1e-6)
    assert solve(data).objective == pytest.approx(res.unconstrained_objective, rel=1e-6, abs=1e-6)


@pytest.mark.skipif("CBC" not in available_solvers(), reason="no CBC")
@FAIR
@given(fleets())
def test_random_fleets_cbc_agrees(data):
    h = fair_solve(data)
    # an optimum below 1e-4 sits inside the solvers' own tolerances (as in test_backends)
    for v in (h.unconstrained_objective, h.fair_objective):
        assume(abs(v) >= 1e-4 or v == 0)
    c = fair_solve(data, solver=PulpSolver("CBC"))
    scale = max(1.0, abs(h.unconstrained_objective))
    assert c.fair_objective == pytest.approx(h.fair_objective, rel=1e-5, abs=1e-5 * scale)
    assert c.floor == pytest.approx(h.floor, rel=1e-5, abs=1e-6)
