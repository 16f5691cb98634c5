"""A what-if at interactive speed (issue 25, item 3): the planner's array path, the window
of periods re-solved alone (solvers/blocks.py) and the plan patched where it changed
(plan/readout.py's ReadOutCache) give what a cold solve and a whole read-out give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from allocator import Plan, solve
from allocator.errors import ScenarioError
from allocator.lp.arrays import ScenarioArrays
from allocator.scenario import Scenario
from allocator.scenario.generate import generate_dict
from allocator.scenario.overrides import apply_overrides
from allocator.workflows.planner import Planner
from allocator.workflows.whatif import compare
from tests.certificates import assert_optimal


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(a), abs(b))


def without_timing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "solver"}


def assert_exact(planner: Planner, plan: Plan, base: Scenario, ov: dict[str, Any]) -> None:
    """The what-if's plan is (1) the whole read-out of its solution, to the last bit, (2)
    optimal for the changed scenario's LP (certificate, duals included), (3) the cold
    solve's objective, and its scenario is apply_overrides'."""
    changed = apply_overrides(base, ov)
    assert planner.scenario.to_dict() == changed.to_dict()
    assert planner.check_consistent() == 0.0
    sol = planner.last_solution
    assert sol is not None
    whole = Plan.from_solution(changed, planner.lp, sol, arrays=ScenarioArrays.of(changed))
    assert without_timing(plan.to_dict()) == without_timing(whole.to_dict())
    assert_optimal(planner.lp, sol)
    cold = solve(changed)
    assert rel(plan.objective, cold.objective) <= 1e-9
    assert plan.max_violation <= 1e-6


def fleet(seed: int, stability: float = 0.1) -> Scenario:
    d = generate_dict(30, 5, 16, seed=seed, compatibility=0.4, stability=stability)
    d["policy"]["rnd_min_share"] = 0.03
    return Scenario.from_dict(d)


def random_override(sc: Scenario, rng: np.random.Generator, kind: int) -> dict[str, Any]:
    """A what-if of ``kind``: 0 one segment's demand in one period, 1 in every period, 2
    a price in one period and a cost, 3 a pool's GPUs in one period, 4 a kind's demand
    and a pool's GPUs in one period."""
    T = len(sc.periods)
    seg = sc.segments[int(rng.integers(len(sc.segments)))].id
    pool = sc.pools[int(rng.integers(len(sc.pools)))]
    t = int(rng.integers(T))
    one = [1.0] * T
    one[t] = float(rng.uniform(0.8, 1.25))
    if kind == 0:
        return {"demand_scale": {seg: one}}  # one period
    if kind == 1:
        return {"demand_scale": {seg: float(rng.uniform(0.8, 1.25))}}  # every period
    if kind == 2:
        return {"price_change": {seg: one}, "cost_change": {pool.accelerator: 1.1}}
    gpus = [0.0] * T
    gpus[t] = -float(rng.integers(0, int(pool.gpus[t]) + 1))
    if kind == 3:
        return {"capacity_change": {pool.id: gpus}}
    return {"demand_scale": {"cloud": one}, "capacity_change": {pool.id: gpus}}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_what_ifs_equal_cold_and_whole_read_out(seed: int) -> None:
    """Sequences of random one-period, every-period, price, cost and capacity what-ifs on
    random fleets with coupled periods: each plan is exact (assert_exact), the windows
    and the whole-model solves both occur."""
    sc = fleet(seed)
    planner = Planner(sc)
    planner.solve()
    rng = np.random.default_rng(seed)
    algorithms = set()
    for kind in (0, 2, 0, 3, 4, 0, 1, 0, 0):  # each reverts the one before (base-relative)
        ov = random_override(sc, rng, kind)
        plan = planner.what_if(ov)
        assert planner.last_change == "arrays"
        assert planner.last_solution is not None
        algorithms.add(planner.last_solution.algorithm)
        assert_exact(planner, plan, sc, ov)
    assert "period-window" in algorithms


def test_window_alone_on_a_middle_period() -> None:
    """A 2 % change of one segment's demand in one middle period of a loosely coupled
    fleet re-solves a window of periods, not the model, and patches the plan; a change
    back to the base gives the base plan again."""
    sc = fleet(7, stability=0.5)
    planner = Planner(sc)
    base = planner.solve()
    T = len(sc.periods)
    ov = {"demand_scale": {sc.segments[3].id: [1.02 if t == T // 2 else 1.0 for t in range(T)]}}
    plan = planner.what_if(ov)
    sol = planner.last_solution
    assert sol is not None and sol.algorithm == "period-window"
    assert planner.periods_solved is not None and planner.periods_solved.sum() < T
    assert_exact(planner, plan, sc, ov)
    again = planner.what_if({})
    assert rel(again.objective, base.objective) <= 1e-12
    assert without_timing(again.to_dict())["totals"] == pytest.approx(base.to_dict()["totals"])


def test_hand_case_prices_after_a_one_period_change() -> None:
    """One pool of 10 GPUs, 1 h periods, two segments on it in three periods, stability
    0.5 of the pool (5 GPUs between periods). ``a`` pays 3 per work unit, ``b`` 2, each
    GPU does one unit per hour; demand a = 6, b = 10 in every period. Optimum: a gets its
    6 GPUs, b the other 4, every period; the pool's GPU-hour is worth b's 2 (the marginal
    user), a's demand row 3 - 2 = 1. Raise a's demand in the middle period to 8: a gets 8
    there and b 2 — b moves by 2 <= 5 (stability holds), the price stays 2 in every
    period and a's demand dual 1: the same as a cold solve, duals included (unique here:
    the pool binds, b is strictly between 0 and its demand)."""
    sc = Scenario.from_dict(
        {
            "name": "hand",
            "periods": [{"label": f"P{t}", "hours": 1} for t in range(3)],
            "pools": [
                {
                    "id": "h",
                    "accelerator": "H100",
                    "region": "r",
                    "gpus": [10] * 3,
                    "variable_cost_per_gpu_hour": 0,
                }
            ],
            "segments": [
                {
                    "id": s,
                    "kind": "cloud",
                    "unit": "u",
                    "demand": [d] * 3,
                    "revenue_per_unit": r,
                    "throughput": {"H100": 1},
                }
                for s, d, r in (("a", 6, 3.0), ("b", 10, 2.0))
            ],
            "discount_rate": 0.0,
            "policy": {"max_change_share": 0.5},
        }
    )
    planner = Planner(sc)
    planner.solve()
    ov = {"demand_scale": {"a": [1.0, 8 / 6, 1.0]}}
    plan = planner.what_if(ov)
    assert planner.last_solution is not None
    assert planner.last_solution.algorithm == "period-window"  # P1 alone
    assert_exact(planner, plan, sc, ov)
    gpus = {(r.segment, r.period): r.gpus for r in plan.allocations}
    assert gpus[("a", "P1")] == pytest.approx(8) and gpus[("b", "P1")] == pytest.approx(2)
    cold = solve(apply_overrides(sc, ov))
    assert plan.pool_prices == cold.pool_prices
    assert [r.shadow_price_per_gpu_hour for r in plan.pools] == pytest.approx([2.0] * 3)
    duals = {(b.constraint, b.key.get("segment"), b.key["period"]): b.dual for b in plan.binding}
    assert duals[("segment-demand", "a", "P1")] == pytest.approx(1.0)
    assert {k: v for k, v in duals.items()} == pytest.approx(
        {(b.constraint, b.key.get("segment"), b.key["period"]): b.dual for b in cold.binding}
    )


def test_errors_are_apply_overrides_errors() -> None:
    """The array path refuses what apply_overrides refuses, with the same issues."""
    sc = fleet(1)
    planner = Planner(sc)
    planner.solve()
    pool = sc.pools[0]
    for ov in (
        {"demand_scale": {"nope": 1.1}},
        {"capacity_change": {pool.id: -(max(pool.gpus) + 1)}},
        {"price_change": {sc.segments[0].id: [1.0, 2.0]}},
        {"price_change": {sc.segments[0].id: 1e6, sc.segments[0].kind.value: 1e6}},
    ):
        with pytest.raises(ScenarioError) as slow:
            apply_overrides(sc, ov)
        with pytest.raises(ScenarioError) as fast:
            planner.what_if(ov)
        assert [str(i) for i in fast.value.issues] == [str(i) for i in slow.value.issues]


def test_compare_takes_plans() -> None:
    """The difference from two Plans equals the one from their dicts (what REST sends)."""
    sc = fleet(2)
    planner = Planner(sc)
    base = planner.solve()
    new = planner.what_if({"demand_scale": {"cloud": 1.1}})
    assert compare(base, new) == compare(base.to_dict(), new.to_dict())


def test_what_if_after_direct_changes_is_relative_to_the_base() -> None:
    """update_demand / set_capacity change the kept model in place; the next what-if still
    applies to the base (the demand and GPU blocks recomputed from the base's arrays), and
    after set_scenario (any number may differ) what-ifs take the scenario path."""
    sc = fleet(3)
    planner = Planner(sc)
    planner.solve()
    seg, pool = sc.segments[4], sc.pools[1]
    planner.update_demand(seg.id, 2, seg.demand[2] * 1.2)
    planner.set_capacity(pool.id, 3, pool.gpus[3] + 8)
    ov = {"price_change": {sc.segments[0].id: 1.1}}
    plan = planner.what_if(ov)
    assert planner.last_change == "arrays"
    assert_exact(planner, plan, sc, ov)
    planner.set_scenario(apply_overrides(sc, {"kind_caps": {"cloud": 1e6}}))
    ov = {"demand_scale": {seg.id: 1.1}}
    plan = planner.what_if(ov)
    assert planner.last_change == "scenario"
    assert planner.scenario.to_dict() == apply_overrides(sc, ov).to_dict()
    assert planner.check_consistent() == 0.0
