"""Reservations: a customer's take-or-pay offer of GPUs the plan may accept (dedicated,
paid every hour), decided before demand is known in a stochastic plan. Hand-solved."""

from __future__ import annotations

import numpy as np
import pytest

from allocator import ScenarioError, solve
from allocator.lp.build import build_lp
from allocator.scenario import Scenario
from allocator.scenario.generate import generate_dict
from allocator.solvers.registry import HighsSolver
from allocator.workflows.stochastic import stochastic_plan


def fleet(fee: float, cloud_demand: float = 300.0, max_gpus: float | list = 5.0) -> dict:
    """10 GPUs for 100 hours at 0.5 a GPU-hour. Cloud: 4 per unit on demand (1 unit per
    GPU-hour), and a customer offering to reserve GPUs at ``fee``; first party: 2.5 per
    unit, demand for 20 GPUs."""
    return {
        "name": "reserve",
        "periods": [{"label": "P1", "hours": 100}],
        "pools": [
            {
                "id": "h",
                "accelerator": "H100",
                "region": "r",
                "gpus": [10],
                "variable_cost_per_gpu_hour": 0.5,
            }
        ],
        "segments": [
            {
                "id": "c",
                "kind": "cloud",
                "demand": [cloud_demand],
                "revenue_per_unit": 4.0,
                "throughput": {"H100": 1},
                "reservation": {"max_gpus": max_gpus, "price_per_gpu_hour": fee},
            },
            {
                "id": "f",
                "kind": "first_party",
                "demand": [2000],
                "revenue_per_unit": 2.5,
                "throughput": {"H100": 1},
            },
        ],
    }


def test_reservation_accepted_when_its_fee_beats_the_marginal_use() -> None:
    # net per GPU-hour: cloud on demand 3.5 (3 GPUs of demand), reserved 2.5, first party 2.0
    plan = solve(fleet(fee=3.0))
    assert [(r.segment, r.pool, r.gpus, r.gpu_hours, r.revenue) for r in plan.reservations] == [
        ("c", "h", pytest.approx(5.0), pytest.approx(500.0), pytest.approx(1500.0))
    ]
    gpus = {(a.segment, a.pool): a.gpus for a in plan.allocations}
    assert gpus == pytest.approx({("c", "h"): 3.0, ("f", "h"): 2.0})
    assert plan.objective == pytest.approx(3 * 350 + 5 * 250 + 2 * 200)  # 2700
    t = plan.totals
    assert t.reservation_revenue == pytest.approx(1500)
    assert t.revenue == pytest.approx(1500 + 1200 + 500)
    assert t.variable_cost == pytest.approx(10 * 100 * 0.5)  # reserved GPUs run too
    pool = plan.pools[0]
    assert pool.used == pytest.approx(10) and pool.shadow_price_per_gpu_hour == pytest.approx(2.0)
    seg = {r.segment: r for r in plan.segments}
    assert seg["c"].gpus == pytest.approx(8.0) and seg["c"].served == pytest.approx(300)
    # the offer binds: one more GPU offered is worth (2.5 - 2.0) x 100 hours
    lim = {b.constraint: b.dual for b in plan.binding}
    assert lim["reservation-limit"] == pytest.approx(50.0)
    assert plan.max_violation <= 1e-9


def test_reservation_declined_when_the_fleet_has_better_uses() -> None:
    plan = solve(fleet(fee=2.4))  # net 1.9 < first party's 2.0
    assert plan.reservations == []
    assert plan.totals.reservation_revenue == 0
    assert plan.objective == pytest.approx(3 * 350 + 7 * 200)


def test_reservations_agree_between_backends_and_with_stability() -> None:
    d = generate_dict(24, 4, 6, seed=3, compatibility=0.5, stability=0.1)
    for i, seg in enumerate(d["segments"]):
        if seg["kind"] == "cloud":
            seg["reservation"] = {"max_gpus": 40.0 + 10 * i, "price_per_gpu_hour": 2.0 + 0.1 * i}
    sc = Scenario.from_dict(d)
    lp = build_lp(sc)
    assert lp.columns.n_rsv > 0 and lp.block("reservation-limit") is not None
    auto = solve(sc)
    whole = solve(sc, algorithm="simplex")
    cbc = solve(sc, backend="pulp", solver="CBC")
    assert auto.objective == pytest.approx(whole.objective, rel=1e-9)
    assert cbc.objective == pytest.approx(whole.objective, rel=1e-7)
    assert auto.reservations and auto.max_violation <= 1e-6
    # reserved GPUs are held in their pools: capacity covers them
    held = {}
    for r in auto.reservations:
        held[(r.pool, r.period)] = held.get((r.pool, r.period), 0.0) + r.gpus
    for p in auto.pools:
        assert held.get((p.pool, p.period), 0.0) <= p.used + 1e-6
        assert p.used <= p.usable + p.rented + 1e-6 * max(1.0, p.usable)
    sol = HighsSolver().solve(lp)
    assert lp.objective(sol.x) == pytest.approx(auto.objective, rel=1e-9)


def test_stochastic_plan_reserves_before_demand_is_known() -> None:
    """10 GPUs, 100 hours, no variable cost. Cloud on demand earns 4 per GPU-hour, its demand
    is 2 or 8 GPUs (even odds); first party earns 1; a customer would reserve up to 10 GPUs
    at 3 per GPU-hour. A reserved GPU gives up a first-party GPU (1) in both scenarios up to
    2 GPUs, a cloud one (4) in the high scenario from 2 to 8, in both beyond 8: expected
    marginal values 3-1 = 2, 3-0.5-2 = 0.5, 3-4 = -1, so 8 GPUs are reserved: 2400 in fees
    plus 2 GPUs of cloud (800) in either scenario = 3200. Planned for expected demand (5 GPUs)
    it reserves 5 (EV 3500) and earns 1500 + (800 + 300 + 2000) / 2 = 3050 (EEV): VSS 150."""
    d = fleet(fee=3.0, cloud_demand=500.0, max_gpus=10.0)
    d["pools"][0]["variable_cost_per_gpu_hour"] = 0.0
    d["segments"][1]["revenue_per_unit"] = 1.0
    scenarios = [
        {"name": "low", "probability": 0.5, "demand": {"c": [200.0]}},
        {"name": "high", "probability": 0.5, "demand": {"c": [800.0]}},
    ]
    r = stochastic_plan(d, scenarios)
    assert r.first_stage["reservations"] == {"c": {"h": {"P1": pytest.approx(8.0)}}}
    assert r.objective == pytest.approx(3200)
    assert [p.objective for p in r.plans] == pytest.approx([3200, 3200])
    assert r.ev_objective == pytest.approx(3500)
    assert r.eev == pytest.approx(3050)
    assert r.vss == pytest.approx(150)
    for p in r.plans:  # the same reservation in every scenario
        assert [x.gpus for x in p.reservations] == pytest.approx([8.0])


def test_reservation_offers_are_validated() -> None:
    d = fleet(fee=3.0, max_gpus=[5.0, 6.0])
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict(d)
    assert [i.path for i in e.value.issues] == ["segments[0].reservation.max_gpus"]
    d = fleet(fee=-1.0)
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict(d)
    assert e.value.issues[0].path == "segments[0].reservation.price_per_gpu_hour"


def test_reservation_per_period_offer_and_export_names() -> None:
    from allocator.solvers.export import column_names

    d = fleet(fee=3.0, max_gpus=[0.0, 4.0])
    d["periods"].append({"label": "P2", "hours": 100})
    d["pools"][0]["gpus"] = [10, 10]
    for seg in d["segments"]:
        seg["demand"] = seg["demand"] * 2
    sc = Scenario.from_dict(d)
    lp = build_lp(sc)
    assert lp.columns.n_rsv == 1 and lp.columns.rsv_period.tolist() == [1]
    assert column_names(sc, lp)[-1] == "k[c,h,P2]"
    plan = solve(sc)
    assert [(r.period, r.gpus) for r in plan.reservations] == [("P2", pytest.approx(4.0))]
    assert np.isclose(plan.totals.reservation_revenue, 1200)


def test_bundled_stochastic_example_reserves_more_than_the_expected_demand_plan(capsys) -> None:
    """The numbers docs/batch.md and the README quote."""
    import json

    from allocator.cli import main

    base, demand = (
        "data/stochastic/neocloud-reservations.json",
        "data/stochastic/demand-growth.json",
    )
    assert main(["stochastic", base, demand, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    reserved = out["first_stage"]["reservations"]["cloud-enterprise"]["h100-us-east"]
    assert reserved == pytest.approx({"2027-Q1": 440.1, "2027-Q2": 509.9}, abs=0.1)
    assert out["expected_objective"] == pytest.approx(17_203_120.8, rel=1e-6)
    assert out["vss"] == pytest.approx(145_440.5, rel=1e-4)
    assert out["eev"] == pytest.approx(17_057_680.3, rel=1e-6)
