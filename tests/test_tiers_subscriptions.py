"""Issue 15, items 2 and 3: price tiers (a demand curve) and subscriptions, solved by hand."""

from __future__ import annotations

import numpy as np
import pytest

from allocator import Scenario, Status, build_lp, solve
from allocator.errors import ScenarioError
from allocator.solvers import HighsSolver
from tests.certificates import assert_optimal


def fleet(gpus: list[float], segments: list[dict]) -> dict:
    """One H100 pool, 1 hour per period, no variable cost."""
    T = len(gpus)
    return {
        "periods": [{"label": f"P{t}", "hours": 1.0} for t in range(T)],
        "pools": [
            {
                "id": "h100",
                "accelerator": "H100",
                "region": "r",
                "gpus": gpus,
                "variable_cost_per_gpu_hour": 0.0,
            }
        ],
        "segments": segments,
    }


CHAT = {
    "id": "chat",
    "kind": "first_party",
    "demand": [100.0, 100.0],
    "revenue_per_unit": 3.0,
    "throughput": {"H100": 1.0},
}
API_TIERS = {
    "id": "api",
    "kind": "cloud",
    "throughput": {"H100": 1.0},
    "tiers": [
        {"units": [4.0, 4.0], "price": 10.0},
        {"units": [4.0, 4.0], "price": 6.0, "ltv_per_unit": 1.0},
        {"units": [10.0, 10.0], "price": 2.0},
    ],
}


def solved(data: dict):
    sc = Scenario.from_dict(data)
    lp = build_lp(sc)
    assert_optimal(lp, HighsSolver().solve(lp))
    plan = solve(sc)
    assert plan.status is Status.OPTIMAL and plan.max_violation <= 1e-9, plan.violations
    return sc, plan


def test_tiers_fill_in_falling_price_and_clear_at_the_marginal_tier():
    """api's demand curve: 4 units at 10, 4 at 6 (LTV 1), 10 at 2; chat pays 3 for any
    number of units; 1 unit per GPU-hour for both. P0 (10 GPUs): api's first two tiers
    (10, 6 + 1) beat chat's 3, its third (2) does not: api serves 8 units, demand clears
    at 6 (tier 1), chat gets 2 GPUs and prices the pool at 3. P1 (5 GPUs): api takes all 5:
    tier 0 in full, 1 unit of tier 1: clearing at 6; a GPU-hour is then worth tier 1's
    6 + 1 of LTV = 7, the pool's price.
    Objective: P0 40 + 24 + 4 (LTV) + 6 = 74; P1 40 + 6 + 1 = 47; total 121."""
    _, plan = solved(fleet([10.0, 5.0], [API_TIERS, CHAT]))
    rows = {(r.segment, int(r.tier), r.period): r for r in plan.tiers}
    assert [rows["api", i, "P0"].served for i in range(3)] == pytest.approx([4, 4, 0])
    assert [rows["api", i, "P1"].served for i in range(3)] == pytest.approx([4, 1, 0])
    assert {rows["api", i, "P0"].clearing_price for i in range(3)} == {6.0}
    assert {rows["api", i, "P1"].clearing_price for i in range(3)} == {6.0}
    assert rows["api", 1, "P0"].revenue == pytest.approx(24)
    assert plan.objective == pytest.approx(121)
    assert plan.pool_prices["h100"] == {"P0": pytest.approx(3), "P1": pytest.approx(7)}
    api = {s.period: s for s in plan.segments if s.segment == "api"}
    assert api["P0"].demand == 18 and api["P0"].served == pytest.approx(8)
    assert api["P0"].revenue == pytest.approx(64) and api["P0"].ltv == pytest.approx(4)
    # the plan round-trips with its tiers
    again = type(plan).from_dict(plan.to_dict())
    assert again.tiers.records() == plan.tiers.records()


def test_nothing_served_clears_at_the_first_tier():
    """With no GPUs at all nothing is served: the clearing price is the first tier's."""
    _, plan = solved(fleet([0.0, 0.0], [API_TIERS]))
    assert {r.clearing_price for r in plan.tiers} == {10.0}
    assert all(r.served == 0 for r in plan.tiers)


def test_tier_prices_may_fall_over_the_horizon():
    """Tier 0 costs 10 then 2.5 (token prices falling): in P1 chat's 3 beats it, so api
    serves nothing in P1 (5 GPUs to chat: 15) and clears at 2.5."""
    api = dict(API_TIERS, tiers=[{"units": [4.0, 4.0], "price": [10.0, 2.5]}])
    _, plan = solved(fleet([10.0, 5.0], [api, CHAT]))
    rows = {(r.segment, int(r.tier), r.period): r for r in plan.tiers}
    assert rows["api", 0, "P0"].served == pytest.approx(4)
    assert rows["api", 0, "P1"].served == pytest.approx(0)
    assert plan.objective == pytest.approx(40 + 18 + 15)


def test_tier_validation():
    bad = dict(API_TIERS)
    bad["tiers"] = [{"units": [4.0, 4.0], "price": 2.0}, {"units": [1.0], "price": [3.0, 1.0]}]
    bad["revenue_per_unit"] = 1.0
    bad["demand"] = [5.0, 5.0]
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(fleet([1.0, 1.0], [bad]))
    paths = {i.path: i.message for i in info.value.issues}
    assert "has 1 entries" in paths["segments[0].tiers[1].units"]
    assert "must be 0" in paths["segments[0].revenue_per_unit"]
    bad["tiers"][1]["units"] = [1.0, 1.0]
    bad["revenue_per_unit"] = 0.0
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(fleet([1.0, 1.0], [bad]))
    paths = {i.path: i.message for i in info.value.issues}
    assert "falling price" in paths["segments[0].tiers[1].price"]
    assert "is not the tiers' units 5" not in paths.get("segments[0].demand[0]", "")


def test_demand_defaults_to_the_tiers_units():
    sc = Scenario.from_dict(fleet([1.0, 1.0], [API_TIERS]))
    assert sc.segments[0].demand == [18.0, 18.0] and sc.segments[0].revenue_per_unit == 0.0


# ------------------------------------------------------------------- subscriptions
def subscribers(**sub) -> dict:
    """100 subscribers paying 5 a period, each using 1 unit (1 unit per GPU-hour); usage
    itself earns nothing; below 60 % of usage served each unit short loses 4 of LTV."""
    s = {
        "subscribers": 100.0,
        "fee_per_subscriber": 5.0,
        "usage_per_subscriber": 1.0,
        "ltv_loss_per_unit": 4.0,
        "min_service_share": 0.6,
    }
    s.update(sub)
    return {
        "id": "plus",
        "kind": "consumer",
        "demand": [100.0, 100.0],
        "throughput": {"H100": 1.0},
        "subscription": s,
    }


def test_subscribers_are_throttled_to_the_minimum_share_when_gpus_earn_more_elsewhere():
    """100 GPUs; chat pays 3 per GPU-hour for up to 100 units. Subscribers' usage above
    the 60 % floor is worth 0 per GPU-hour (fees are paid anyway), below it 4 (the loss
    avoided): chat's 3 lies between, so the plan throttles subscribers to 60 units and
    gives chat 40 GPUs; the pool's price is 3. Per period: fees 500 + chat 120 = 620;
    total 1240. The throttling point is the minimum share, 0.6; were chat to pay more
    than 4 the plan would throttle to 0."""
    _, plan = solved(fleet([100.0, 100.0], [subscribers(), CHAT]))
    rows = {r.period: r for r in plan.subscriptions}
    r = rows["P0"]
    assert r.served == pytest.approx(60) and r.served_share == pytest.approx(0.6)
    assert r.fees == 500 and r.ltv_lost == pytest.approx(0)
    assert r.value_above_floor_per_gpu_hour == pytest.approx(0)
    assert r.value_below_floor_per_gpu_hour == pytest.approx(4)
    assert r.gpu_price_elsewhere == pytest.approx(3)
    assert r.throttle_to == pytest.approx(0.6)
    assert plan.objective == pytest.approx(1240)
    plus = next(s for s in plan.segments if (s.segment, s.period) == ("plus", "P0"))
    assert plus.revenue == pytest.approx(500)


def test_subscribers_are_throttled_to_zero_when_the_loss_is_below_the_gpu_price():
    """chat pays 5 per unit: more than the 4 lost per unit under-served. Every GPU goes
    to chat (100 x 5 = 500), subscribers get nothing and lose 60 x 4 = 240: per period
    500 + 500 - 240 = 760."""
    chat = dict(CHAT, revenue_per_unit=5.0)
    _, plan = solved(fleet([100.0, 100.0], [subscribers(), chat]))
    r = next(iter(plan.subscriptions))
    assert r.served == pytest.approx(0) and r.throttle_to == 0
    assert r.ltv_lost == pytest.approx(240)
    assert plan.objective == pytest.approx(2 * 760)


def test_without_a_minimum_share_every_unit_not_served_costs_the_loss():
    """No minimum share: each unit not served loses 4 (> chat's 3), so subscribers are
    served in full (100 GPUs), chat gets none: per period fees 500, objective 1000."""
    _, plan = solved(fleet([100.0, 100.0], [subscribers(min_service_share=None), CHAT]))
    r = next(iter(plan.subscriptions))
    assert r.served == pytest.approx(100) and r.throttle_to == 1.0
    assert plan.objective == pytest.approx(1000)


def test_subscription_validation_and_defaults():
    seg = subscribers(subscribers=[100.0, 50.0])
    del seg["demand"]
    sc = Scenario.from_dict(fleet([1.0, 1.0], [seg]))
    assert sc.segments[0].demand == [100.0, 50.0]
    seg["demand"] = [100.0, 100.0]
    seg["contract_min"] = [1.0, 1.0]
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(fleet([1.0, 1.0], [seg]))
    paths = {i.path: i.message for i in info.value.issues}
    assert "subscribers x usage 50" in paths["segments[0].demand[1]"]
    assert "cannot be combined" in paths["segments[0].subscription.min_service_share"]


def test_overrides_move_tiers_and_subscriptions():
    from allocator.scenario.overrides import apply_overrides

    sc = Scenario.from_dict(fleet([10.0, 5.0], [API_TIERS, subscribers()]))
    out = apply_overrides(sc, {"demand_scale": {"api": 2.0, "plus": [1.0, 0.5]}})
    assert out.segment("api").tiers[0].units == [8.0, 8.0]
    assert out.segment("plus").subscription.subscribers == [100.0, 50.0]
    assert out.segment("plus").demand == [100.0, 50.0]
    out = apply_overrides(sc, {"price_change": {"api": 0.5, "plus": 2.0}})
    assert out.segment("api").tiers[0].price == 5.0
    assert out.segment("plus").subscription.fee_per_subscriber == 10.0


def test_cbc_agrees_on_tiers_and_subscriptions():
    from allocator.solvers.pulp import PulpSolver, available_solvers

    if "CBC" not in available_solvers():
        pytest.skip("PuLP's CBC is not available")
    for data in (
        fleet([10.0, 5.0], [API_TIERS, CHAT]),
        fleet([100.0, 100.0], [subscribers(), CHAT]),
    ):
        lp = build_lp(Scenario.from_dict(data))
        h, c = HighsSolver().solve(lp), PulpSolver("CBC").solve(lp)
        assert c.objective == pytest.approx(h.objective, rel=1e-9)
        assert np.allclose(lp.A @ c.x, lp.A @ h.x, atol=1e-6)


def test_tiers_and_subscriptions_keep_the_period_split():
    from allocator.solvers.rowgen import split_by_period

    lp = build_lp(Scenario.from_dict(fleet([10.0, 5.0], [API_TIERS, CHAT, subscribers()])))
    assert split_by_period(lp, np.zeros(lp.num_rows, dtype=bool)) is not None


def test_a_partitioned_plan_keeps_the_tiers_revenue():
    from allocator.workflows.partition import partitioned_solve

    plus = subscribers(subscribers=5.0)
    plus["demand"] = [5.0, 5.0]
    data = fleet([10.0, 5.0], [API_TIERS, CHAT, plus])
    res = partitioned_solve(Scenario.from_dict(data), 2)
    plan = res.plan if hasattr(res, "plan") else res
    assert plan.max_violation <= 1e-9
    sold = sum(r.served for r in plan.tiers)
    served = sum(s.served for s in plan.segments if s.segment == "api")
    assert sold == pytest.approx(served) and sold > 0
    assert plan.objective == pytest.approx(plan.totals.objective)


def test_column_count_and_workbooks(tmp_path):
    from allocator.lp.build import count_columns
    from allocator.scenario.workbook import write_workbook

    sc = Scenario.from_dict(fleet([10.0, 5.0], [API_TIERS, CHAT, subscribers()]))
    assert count_columns(sc) == build_lp(sc).num_cols
    write_workbook(sc, tmp_path / "tiers.xlsx")  # the tiers and subscriptions sheets
    assert Scenario.from_file(tmp_path / "tiers.xlsx") == sc


def test_price_ranging_of_a_tiered_segment_shifts_every_tier():
    """One period, 10 GPUs: api's tiers 4 units at 10, 4 at 6, 10 at 2; chat pays 5 for any
    number of units (1 unit per GPU-hour for both). api serves 8 (its first two tiers beat
    chat's 5, its third does not) and clears at 6; chat gets 2 GPUs. Objective 40 + 24 + 10
    = 74. Shifting every api tier price by d keeps that plan while 6 + d > 5 and 2 + d < 5:
    d in (-1, 3), a clearing price from 5 to 9; the objective moves by 8 units per 1 of d
    (74 - 8 = 66 at 5, 74 + 24 = 98 at 9). The cheapest tier's price (2) would reach 0 at a
    clearing price of 4, below 5: it does not limit the range."""
    from allocator.analysis.sensitivity import sensitivity

    chat = dict(CHAT, demand=[100.0], revenue_per_unit=5.0)
    api = dict(API_TIERS, tiers=[dict(t, units=[t["units"][0]]) for t in API_TIERS["tiers"]])
    api["tiers"][1].pop("ltv_per_unit")
    sc, plan = solved(fleet([10.0], [api, chat]))
    assert plan.objective == pytest.approx(74)
    s = sensitivity(sc, segments=["api"])
    (r,) = s.prices
    assert r.priced_by == "tiers" and r.revenue_per_unit == pytest.approx(6)
    assert r.revenue_per_unit_by_period == pytest.approx([6])
    assert (r.lower, r.upper) == (pytest.approx(5), pytest.approx(9))
    assert r.units_sold_pv == pytest.approx(8)
    assert r.objective_at_lower == pytest.approx(66) and r.objective_at_upper == pytest.approx(98)
    # the plain segment still ranges its revenue_per_unit: chat's 5 holds from 2 (api's
    # third tier) to 6 (api's second), 2 units sold
    (c,) = sensitivity(sc, segments=["chat"]).prices
    assert c.priced_by == "revenue_per_unit"
    assert (c.lower, c.upper, c.units_sold_pv) == (
        pytest.approx(2),
        pytest.approx(6),
        pytest.approx(2),
    )
    # with chat at 3, api's plan would hold down to a clearing price of 3, but its cheapest
    # tier (2) reaches 0 at a clearing price of 4 first: tier prices are never negative
    sc3 = Scenario.from_dict(fleet([10.0], [api, dict(chat, revenue_per_unit=3.0)]))
    (r3,) = sensitivity(sc3, segments=["api"]).prices
    assert r3.lower == pytest.approx(4) and r3.lower_limit == "its cheapest tier's price reaches 0"
