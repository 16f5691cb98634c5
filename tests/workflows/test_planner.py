"""Planner: warm re-solves after a change equal a cold solve of the changed scenario."""

from __future__ import annotations

import numpy as np
import pytest

from allocator import solve
from allocator.scenario import Scenario
from allocator.scenario.generate import generate_dict
from allocator.solvers.base import stationarity_error
from allocator.workflows.planner import Planner


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(a), abs(b))


@pytest.fixture
def coupled_scenario() -> Scenario:
    """Contracts, R&D floor, headroom, stability and segment-share rows: every block a
    change can touch."""
    d = generate_dict(
        30, 6, 6, seed=4, compatibility=0.4, stability=0.2, policy={"rnd_min_share": 0.05}
    )
    d["policy"]["headroom"] = 0.02
    d["policy"]["max_segment_share"] = 0.6
    return Scenario.from_dict(d)


def assert_same_as_cold(planner: Planner, plan) -> None:
    assert planner.check_consistent() == 0.0  # the kept LP is the changed scenario's LP
    cold = solve(planner.scenario, algorithm="simplex")
    assert rel(plan.objective, cold.objective) <= 1e-9
    sol = planner.last_solution
    assert sol is not None and sol.row_dual is not None
    # duals of the warm solve are optimal duals of the changed LP
    assert stationarity_error(planner.lp, sol.row_dual, sol.col_dual) <= 1e-7
    assert plan.max_violation <= 1e-6


def assert_same_prices(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for pool in a:
        assert a[pool] == pytest.approx(b[pool], rel=1e-9, abs=1e-9)


def test_first_solve_equals_engine(coupled_scenario: Scenario) -> None:
    planner = Planner(coupled_scenario)
    plan = planner.solve()
    cold = solve(coupled_scenario)
    assert rel(plan.objective, cold.objective) <= 1e-9
    assert planner.last_solve is not None and not planner.last_solve.warm


def test_update_demand_warm_equals_cold(coupled_scenario: Scenario) -> None:
    planner = Planner(coupled_scenario)
    planner.solve()
    seg = coupled_scenario.segments[7]
    plan = planner.update_demand(seg.id, 2, seg.demand[2] * 1.05)
    assert planner.last_solve is not None and planner.last_solve.warm
    assert planner.scenario.segments[7].demand[2] == pytest.approx(seg.demand[2] * 1.05)
    assert coupled_scenario.segments[7].demand[2] == seg.demand[2]  # the input is untouched
    assert_same_as_cold(planner, plan)


def test_scale_demand_with_contract(coupled_scenario: Scenario) -> None:
    planner = Planner(coupled_scenario)
    planner.solve()
    cloud = next(s for s in coupled_scenario.segments if s.contract_min)
    plan = planner.scale_demand(cloud.id, 0.95)  # every period, contract minimums too
    assert planner.scenario.segments[coupled_scenario.segments.index(cloud)].contract_min == (
        pytest.approx([m * 0.95 for m in cloud.contract_min or []])
    )
    assert_same_as_cold(planner, plan)


def test_set_capacity_warm_equals_cold(coupled_scenario: Scenario) -> None:
    planner = Planner(coupled_scenario)
    planner.solve()
    pool = coupled_scenario.pools[1]
    plan = planner.set_capacity(pool.id, coupled_scenario.period_labels[3], pool.gpus[3] * 0.8)
    assert_same_as_cold(planner, plan)
    plan = planner.set_capacity(pool.id, 0, pool.gpus[0] * 1.3)  # first period, by index
    assert_same_as_cold(planner, plan)


def test_a_sequence_of_changes(coupled_scenario: Scenario) -> None:
    planner = Planner(coupled_scenario, algorithm="ipm")  # IPM with crossover leaves a basis
    planner.solve()
    rng = np.random.default_rng(0)
    for k in range(4):
        s = coupled_scenario.segments[int(rng.integers(0, 30))]
        planner.scale_demand(s.id, float(rng.uniform(0.9, 1.1)), period=k)
        p = coupled_scenario.pools[int(rng.integers(0, 6))]
        plan = planner.set_capacity(p.id, k + 1, p.gpus[k + 1] * float(rng.uniform(0.8, 1.2)))
    assert_same_as_cold(planner, plan)


def test_tiny_prices_match_cold(tiny_scenario: Scenario) -> None:
    planner = Planner(tiny_scenario)
    planner.solve()
    plan = planner.set_capacity("h100", "P2", 8)
    cold = solve(planner.scenario)
    assert rel(plan.objective, cold.objective) <= 1e-9
    assert_same_prices(plan.pool_prices, cold.pool_prices)
    assert plan.gross_margin == pytest.approx(cold.gross_margin, rel=1e-9)
    # 18000 is off every kink (at 25000 the h100 price is anything in [3, 5]: degenerate)
    plan = planner.update_demand("chat", "P1", 18000)
    cold = solve(planner.scenario)
    assert rel(plan.objective, cold.objective) <= 1e-9
    assert_same_prices(plan.pool_prices, cold.pool_prices)


def test_bad_changes_are_refused(tiny_scenario: Scenario) -> None:
    planner = Planner(tiny_scenario)
    with pytest.raises(KeyError, match="unknown segment"):
        planner.update_demand("nope", 0, 1.0)
    with pytest.raises(KeyError, match=r"did you mean 'chat'\? \(segments: chat, cloud\)"):
        planner.update_demand("chatt", 0, 1.0)
    with pytest.raises(KeyError, match=r"did you mean 'h100'\?"):
        planner.set_capacity("h10", 0, 1.0)
    with pytest.raises(KeyError, match="unknown period"):
        planner.update_demand("chat", "P9", 1.0)
    with pytest.raises(ValueError, match="contract minimum"):
        planner.update_demand("cloud", "P2", 100.0)
    with pytest.raises(ValueError, match="factor"):
        planner.scale_demand("chat", 0.0)
    with pytest.raises(ValueError, match="gpus"):
        planner.set_capacity("h100", 0, -1)


WHAT_IFS = [
    {"demand_scale": {"cloud": 1.2}, "price_change": {"first_party": 0.8}},
    {"capacity_change": {"pool-0-H100-us-east": -300}},
    {"demand_scale": {"seg-3-consumer": 0.5}, "capacity_change": {"pool-1-H200-us-east": 200}},
]


def test_what_if_is_warm_and_equals_a_cold_solve(coupled_scenario: Scenario) -> None:
    from allocator.scenario.overrides import apply_overrides

    planner = Planner(coupled_scenario)
    planner.solve()
    for ov in WHAT_IFS:
        plan = planner.what_if(ov)
        assert planner.last_solve is not None and planner.last_solve.warm
        want = solve(apply_overrides(coupled_scenario, ov), algorithm="simplex")
        assert rel(plan.objective, want.objective) <= 1e-9  # each relative to the base
        assert_same_as_cold(planner, plan)
    assert planner.base is coupled_scenario


def test_what_if_that_changes_the_model_solves_cold(coupled_scenario: Scenario) -> None:
    from allocator.scenario.overrides import apply_overrides

    planner = Planner(coupled_scenario)
    planner.solve()
    ov = {"kind_caps": {"consumer": 500.0}}  # the base has no cap: a new row block
    plan = planner.what_if(ov)
    assert planner.last_solve is not None and not planner.last_solve.warm
    want = solve(apply_overrides(coupled_scenario, ov), algorithm="simplex")
    assert rel(plan.objective, want.objective) <= 1e-9
    # and the next what-if on the old structure is cold again, then warm
    planner.what_if(WHAT_IFS[0])
    assert not planner.last_solve.warm
    planner.what_if(WHAT_IFS[1])
    assert planner.last_solve.warm


def test_update_demand_scales_a_tiered_segments_tiers() -> None:
    """tests/test_tiers_subscriptions.py's fleet (10 then 5 GPUs, 1 h; api's curve 4 units
    at 10, 4 at 6 + 1 LTV, 10 at 2; chat 3 per unit; optimum 121). Halving api's demand in
    P0 (18 -> 9) halves each tier there: 2 at 10, 2 at 7, 5 at 2. P0: api serves its first
    two tiers (20 + 12 + 2 of LTV), chat the other 6 GPUs (18): 52; P1 unchanged, 47:
    99. Doubling api everywhere from the original (8, 8, 20 units): P0 8 x 10 + 2 x 7 = 94,
    P1 5 x 10 = 50: 144. Both warm (no tier gains or loses its column), both equal to a
    cold solve of the changed scenario."""
    from tests.test_tiers_subscriptions import API_TIERS, CHAT, fleet

    data = fleet([10.0, 5.0], [API_TIERS, CHAT])
    planner = Planner(Scenario.from_dict(data))
    assert planner.solve().objective == pytest.approx(121.0)
    plan = planner.update_demand("api", "P0", 9.0)
    assert plan.objective == pytest.approx(99.0)
    assert planner.last_solve is not None and planner.last_solve.warm
    api = planner.scenario.segments[0]
    assert [t.units for t in api.tiers or []] == [[2.0, 4.0], [2.0, 4.0], [5.0, 10.0]]
    assert api.demand == [9.0, 18.0]
    assert planner.check_consistent() == pytest.approx(0.0, abs=1e-9)
    assert solve(planner.scenario).objective == pytest.approx(99.0)

    again = Planner(Scenario.from_dict(data))
    plan = again.scale_demand("api", 2.0)
    assert plan.objective == pytest.approx(144.0)
    assert solve(again.scenario).objective == pytest.approx(144.0)


def test_tiers_with_nothing_on_offer_are_not_scaled() -> None:
    """A period where api's tiers offer no units has no demand curve to scale: refused.
    Setting it to 0 is fine (nothing to scale): P0 api 4 x 10 + chat 6 x 3, P1 chat 5 x 3:
    73."""
    from tests.test_tiers_subscriptions import API_TIERS, CHAT, fleet

    api = dict(API_TIERS, tiers=[{"units": [4.0, 0.0], "price": 10.0}])
    planner = Planner(Scenario.from_dict(fleet([10.0, 5.0], [api, CHAT])))
    with pytest.raises(ValueError, match="no units in P1"):
        planner.update_demand("api", "P1", 3.0)
    assert planner.update_demand("api", "P1", 0.0).objective == pytest.approx(40 + 18 + 15)
