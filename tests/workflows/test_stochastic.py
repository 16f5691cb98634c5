"""Two-stage stochastic plan.

Hand-solved newsvendor: one pool with no GPUs of its own and up to 10 rentable at 2 per
GPU-hour, one period of 1 hour, one segment paying 3 per unit (1 unit per GPU-hour).
Demand is 2 or 8 units with probability 1/2 each; rentals are decided first.
Renting one more GPU beyond 2 earns 3 only in the high scenario: 0.5 * 3 - 2 < 0, so the
stochastic plan rents R = 2 and earns 3 * 2 - 2 * 2 = 2 in both scenarios (RP = 2). The
plan for expected demand (5) rents 5: it earns 6 - 10 = -4 or 15 - 10 = 5, EEV = 0.5,
so VSS = 1.5. With a CVaR term (weight 1, level 0.5: the worse half of outcomes) the
stochastic plan still rents 2 (CVaR 2, objective 2 + 2 = 4); the expected-demand plan's
CVaR is -4, its objective 0.5 - 4 = -3.5: VSS = 7.5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from allocator import solve
from allocator.cli import main
from allocator.scenario.generate import generate
from allocator.workflows.stochastic import stochastic_plan

DATA = Path(__file__).resolve().parents[2] / "data"


def newsvendor() -> dict:
    return {
        "name": "newsvendor",
        "periods": [{"label": "P1", "hours": 1}],
        "pools": [
            {
                "id": "h",
                "accelerator": "H100",
                "region": "r",
                "ownership": "rented",
                "gpus": [0],
                "variable_cost_per_gpu_hour": 0,
                "fixed_cost_per_gpu_hour": 0,
                "rentable_gpus": [10],
                "rental_price_per_gpu_hour": 2.0,
            }
        ],
        "segments": [
            {
                "id": "a",
                "kind": "cloud",
                "unit": "u",
                "demand": [5],
                "revenue_per_unit": 3.0,
                "throughput": {"H100": 1},
            }
        ],
    }


LOW_HIGH = [
    {"name": "low", "probability": 0.5, "demand_scale": {"a": 0.4}},
    {"name": "high", "probability": 0.5, "demand": {"a": [8]}},
]


def test_hand_solved_newsvendor() -> None:
    r = stochastic_plan(newsvendor(), LOW_HIGH)
    assert r.first_stage["rentals"] == {"h": {"P1": pytest.approx(2.0)}}
    assert r.objective == pytest.approx(2.0)
    assert r.expected_objective == pytest.approx(2.0)
    assert [p.objective for p in r.plans] == pytest.approx([2.0, 2.0])
    assert r.ev_objective == pytest.approx(3 * 5 - 2 * 5)
    assert r.eev == pytest.approx(0.5)
    assert r.vss == pytest.approx(1.5)
    # scenario plans: the high scenario serves 2 of its 8 units
    high = r.plans[1]
    assert high.segments[0].served == pytest.approx(2.0)
    assert high.max_violation < 1e-9


def test_hand_solved_newsvendor_with_cvar() -> None:
    r = stochastic_plan(newsvendor(), LOW_HIGH, cvar_weight=1.0, cvar_level=0.5)
    assert r.first_stage["rentals"]["h"]["P1"] == pytest.approx(2.0)
    assert r.cvar == pytest.approx(2.0)
    assert r.objective == pytest.approx(4.0)
    assert r.eev == pytest.approx(-3.5)
    assert r.vss == pytest.approx(7.5)


def test_one_scenario_with_probability_one_is_the_deterministic_plan() -> None:
    plan = solve(DATA / "tiny.json")
    for first_period in (False, True):
        r = stochastic_plan(
            DATA / "tiny.json",
            [{"name": "only", "probability": 1}],
            first_period_allocations=first_period,
        )
        assert r.objective == pytest.approx(plan.objective, rel=1e-9)
        assert r.vss == pytest.approx(0, abs=1e-6)
        for pool, prices in plan.pool_prices.items():
            assert r.plans[0].pool_prices[pool] == pytest.approx(prices)
        got = {(a.segment, a.pool, a.period): a.gpus for a in r.plans[0].allocations}
        want = {(a.segment, a.pool, a.period): a.gpus for a in plan.allocations}
        assert got == pytest.approx(want)


@pytest.mark.parametrize("seed", range(6))
def test_vss_is_not_negative_on_random_fleets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sc = generate(segments=8, pools=4, periods=3, seed=seed, scarcity=3.0)
    scenarios = [
        {
            "name": f"s{k}",
            "probability": p,
            "demand_scale": {
                kind: float(rng.uniform(0.3, 1.8)) for kind in ("cloud", "first_party", "consumer")
            },
        }
        for k, p in enumerate(rng.dirichlet(np.ones(3)))
    ]
    scenarios[-1]["probability"] = 1.0 - sum(s["probability"] for s in scenarios[:-1])
    r = stochastic_plan(sc, scenarios, cvar_weight=float(rng.choice([0.0, 0.5])))
    assert r.vss is not None and r.eev is not None
    assert r.vss >= -1e-7 * max(1.0, abs(r.objective))
    assert r.expected_objective == pytest.approx(
        sum(p * plan.objective for p, plan in zip(r.probabilities, r.plans, strict=True))
    )
    assert all(plan.max_violation < 1e-6 for plan in r.plans)


def test_bad_probabilities_are_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        stochastic_plan(newsvendor(), [{"name": "x", "probability": 0.5}])
    with pytest.raises(ValueError, match="unknown segment"):
        stochastic_plan(newsvendor(), [{"name": "x", "probability": 1, "demand": {"zz": [1]}}])


def test_cli_stochastic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sc = tmp_path / "s.json"
    sc.write_text(json.dumps(newsvendor()))
    ds = tmp_path / "d.json"
    ds.write_text(json.dumps({"scenarios": LOW_HIGH}))
    assert main(["stochastic", str(sc), str(ds)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"value of the stochastic solution \(VSS\)\s+1\.50\n", text)
    assert re.search(r"^  low\s+0\.500\s", text, re.M)
    assert (
        main(
            ["stochastic", str(sc), str(ds), "--json", "--cvar-weight", "1", "--cvar-level", "0.5"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["vss"] == pytest.approx(7.5) and len(out["scenarios"]) == 2


def test_first_period_allocations_decided_first() -> None:
    r = stochastic_plan(newsvendor(), LOW_HIGH, first_period_allocations=True)
    assert r.objective == pytest.approx(2.0)
    (alloc,) = r.first_stage["first_period_allocations"]
    assert alloc["gpus"] == pytest.approx(2.0)
    # the expected-demand plan serves 5 units now: more than the low scenario's demand
    assert r.vss is None and "unbounded" in r.vss_note


def test_gpus_bought_are_decided_before_demand_is_known() -> None:
    """The newsvendor with buying (expansion mode) instead of renting: the same numbers."""
    sc = newsvendor()
    pool = sc["pools"][0]
    del pool["rentable_gpus"], pool["rental_price_per_gpu_hour"]
    pool["ownership"] = "owned"
    pool["expansion"] = {"max_gpus": 10, "cost_per_gpu_hour": 2.0}
    r = stochastic_plan(sc, LOW_HIGH)
    assert r.first_stage["expansions"] == {"h": {"P1": pytest.approx(2.0)}}
    assert r.first_stage["rentals"] == {}
    assert [p.pools[0].bought for p in r.plans] == pytest.approx([2.0, 2.0])
    assert r.expected_objective == pytest.approx(2.0)
    assert r.vss == pytest.approx(1.5)
