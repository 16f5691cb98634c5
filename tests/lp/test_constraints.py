"""Each constraint family on an instance small enough to solve by hand."""

from __future__ import annotations

import pytest

from allocator import InfeasibleError, TimeLimitError, solve
from allocator.scenario.generate import generate_dict


def pool(id="h100", acc="H100", region="east", gpus=(10,), vc=1.0, **kw):
    return {
        "id": id,
        "accelerator": acc,
        "region": region,
        "gpus": list(gpus),
        "variable_cost_per_gpu_hour": vc,
        **kw,
    }


def seg(id, kind="cloud", demand=(1e9,), rev=4.0, thr=None, **kw):
    return {
        "id": id,
        "kind": kind,
        "demand": list(demand),
        "revenue_per_unit": rev,
        "throughput": thr or {"H100": 1.0},
        **kw,
    }


def scenario(pools, segments, periods=1, hours=100.0, policy=None):
    return {
        "periods": [{"label": f"P{t + 1}", "hours": hours} for t in range(periods)],
        "pools": pools,
        "segments": segments,
        "policy": policy or {},
    }


def alloc(plan, segment, period="P1", pool=None, mode=None):
    return sum(
        a.gpus
        for a in plan.allocations
        if a.segment == segment
        and a.period == period
        and (pool is None or a.pool == pool)
        and (mode is None or a.mode == mode)
    )


def price(plan, pool="h100", period="P1"):
    return plan.pool_prices[pool][period]


@pytest.mark.parametrize(
    ("rentable", "used_rented", "objective", "shadow"),
    [
        # rental limit binds: one more own GPU-hour serves one more unit: 4 - 1 = 3
        (5, 5, 1500 * 4 - 1500 * 1 - 500 * 2, 3.0),
        # rental not at its limit: one more own GPU-hour saves a rented one: 2
        (20, 10, 2000 * 4 - 2000 * 1 - 1000 * 2, 2.0),
    ],
)
def test_rental_extends_capacity_at_its_price(rentable, used_rented, objective, shadow):
    sc = scenario(
        [pool(rentable_gpus=[rentable], rental_price_per_gpu_hour=2.0)],
        [seg("c", demand=[2000])],
    )
    plan = solve(sc)
    assert plan.pools[0].rented == pytest.approx(used_rented)
    assert plan.objective == pytest.approx(objective)
    assert plan.totals.rental_cost == pytest.approx(used_rented * 100 * 2.0)
    assert price(plan) == pytest.approx(shadow)


def test_rental_not_worth_its_price_stays_unused():
    sc = scenario([pool(rentable_gpus=[5], rental_price_per_gpu_hour=3.5)], [seg("c")])
    plan = solve(sc)  # value of a GPU-hour is 4 - 1 = 3 < 3.5
    assert plan.pools[0].rented == pytest.approx(0)
    assert price(plan) == pytest.approx(3.0)


def test_headroom_keeps_a_share_free_and_pool_override_wins():
    plan = solve(
        scenario([pool(), pool("b", gpus=[10], headroom=0.5)], [seg("c")], policy={"headroom": 0.1})
    )
    assert alloc(plan, "c", pool="h100") == pytest.approx(9)
    assert alloc(plan, "c", pool="b") == pytest.approx(5)
    h = next(p for p in plan.pools if p.pool == "h100")
    assert h.usable == pytest.approx(9) and h.idle == pytest.approx(0)
    assert h.headroom_gpus == pytest.approx(1)  # kept free, not idle: the price stays 4 - 1
    assert price(plan) == pytest.approx(3.0)


def test_rnd_floor_takes_its_share_at_a_known_cost():
    sc = scenario(
        [pool(vc=0.5)],
        [seg("cloud", rev=3.5), seg("research", kind="rnd", rev=0.0, ltv_per_unit=1.0)],
        policy={"rnd_min_share": 0.3},
    )
    plan = solve(sc)
    assert alloc(plan, "research") == pytest.approx(3)
    assert plan.objective == pytest.approx(7 * 100 * 3 + 3 * 100 * 0.5)
    floor = next(b for b in plan.binding if b.constraint == "rnd-floor")
    assert floor.dual == pytest.approx(-(3.0 - 0.5) * 100)  # per GPU over the period
    assert price(plan) == pytest.approx(3.0)


def test_stability_limits_the_change_between_periods():
    segs = [seg("a", demand=[1000, 200], rev=6.0), seg("b", demand=[1000, 1000], rev=4.0)]
    free = solve(scenario([pool(gpus=[10, 10])], segs, periods=2))
    assert free.objective == pytest.approx(100 * (10 * 5 + 2 * 5 + 8 * 3))
    held = solve(scenario([pool(gpus=[10, 10])], segs, periods=2, policy={"max_change_share": 0.5}))
    assert alloc(held, "a", "P1") == pytest.approx(7)
    assert alloc(held, "b", "P1") == pytest.approx(3)
    assert held.objective == pytest.approx(100 * (7 * 5 + 3 * 3 + 2 * 5 + 8 * 3))
    assert any(b.constraint == "segment-stability" for b in held.binding)


def test_segment_share_limits_any_one_segment():
    plan = solve(
        scenario([pool()], [seg("a", rev=6.0), seg("b")], policy={"max_segment_share": 0.6})
    )
    assert alloc(plan, "a") == pytest.approx(6)
    assert alloc(plan, "b") == pytest.approx(4)


def test_kind_cap_and_floor():
    segs = [seg("app", kind="first_party", rev=6.0), seg("c", kind="cloud")]
    capped = solve(scenario([pool()], segs, policy={"kind_caps": {"first_party": 4}}))
    assert alloc(capped, "app") == pytest.approx(4)
    assert alloc(capped, "c") == pytest.approx(6)
    floored = solve(scenario([pool()], segs, policy={"kind_floors": {"cloud": [7]}}))
    assert alloc(floored, "c") == pytest.approx(7)
    b = next(b for b in floored.binding if b.constraint == "kind-floor")
    assert b.key == {"kind": "cloud", "period": "P1"}
    assert b.dual == pytest.approx(-(5 - 3) * 100)


@pytest.mark.parametrize(
    ("demand", "mode", "revenue"), [(3000, "distilled", 1500), (1000, "full", 1000)]
)
def test_serving_mode_trades_revenue_for_throughput(demand, mode, revenue):
    modes = [
        {"name": "full"},
        {"name": "distilled", "throughput_multiplier": 3.0, "revenue_share": 0.5},
    ]
    plan = solve(scenario([pool(vc=0.0)], [seg("app", "first_party", [demand], 1.0, modes=modes)]))
    assert plan.totals.revenue == pytest.approx(revenue)
    assert alloc(plan, "app", mode=mode) > 0
    assert alloc(plan, "app", mode=mode) == pytest.approx(alloc(plan, "app"))


def test_churn_cost_counts_unserved_demand():
    plan = solve(scenario([pool()], [seg("c", demand=[1500], churn_cost_per_unit=0.5)]))
    assert plan.totals.churn_cost == pytest.approx(500 * 0.5)
    assert plan.objective == pytest.approx(1000 * 3 - 250)
    assert price(plan) == pytest.approx(3.5)  # serving a unit also avoids its churn


def test_regions_restrict_pools():
    plan = solve(
        scenario([pool(), pool("w", region="west")], [seg("eu", regions=["west"], demand=[5000])])
    )
    assert alloc(plan, "eu", pool="h100") == 0
    assert alloc(plan, "eu", pool="w") == pytest.approx(10)


def test_hard_contract_that_cannot_be_met_is_infeasible():
    sc = scenario([pool()], [seg("c", demand=[5000], contract_min=[2000], contract_hard=True)])
    with pytest.raises(InfeasibleError, match="hard"):
        solve(sc)
    sc["segments"][0]["contract_hard"] = False
    sc["segments"][0]["shortfall_penalty_per_unit"] = 2.0
    plan = solve(sc)
    assert plan.totals.shortfall_penalty == pytest.approx(1000 * 2.0)
    assert price(plan) == pytest.approx(5.0)  # 4 - 1 + 2 of avoided penalty


def test_time_limit_without_a_plan_is_a_clear_error():
    sc = generate_dict(150, 8, 12, seed=3, policy={"max_change_share": 0.1})
    with pytest.raises(TimeLimitError, match="time limit"):
        solve(sc, time_limit=1e-6, algorithm="simplex")


def test_badly_scaled_numbers_warn_and_are_reported():
    from allocator import AllocatorWarning, Scenario, ScenarioError

    sc = scenario([pool()], [seg("tokens", demand=[1e12], thr={"H100": 1e-12})])
    with pytest.warns(AllocatorWarning) as caught:
        plan = solve(sc)
    messages = " ".join(str(w.message) for w in caught)
    assert "HiGHS drops values" in messages
    assert plan.warnings == [str(w.message) for w in caught]
    # values HiGHS would take as infinite (>= 1e15) no longer pass validation at all
    with pytest.raises(ScenarioError, match=r"demand\[0\]: must be at most 1,000,000,000,000"):
        Scenario.from_dict(scenario([pool()], [seg("tokens", demand=[1e16], thr={"H100": 1e-12})]))


@pytest.mark.parametrize(
    ("cost", "headroom", "bought", "objective"),
    [
        # a bought GPU earns 3 - 2 = 1 per hour in P2 and P3: buy all 5 at P2
        (2.0, 0.0, 5, 10 * 3 * 300 + 5 * (3 - 2) * 200),
        # dearer than what it earns: buy none
        (3.5, 0.0, 0, 10 * 3 * 300),
        # headroom applies to bought GPUs too: 0.8 * 3 - 2 = 0.4 per hour
        (2.0, 0.2, 5, 0.8 * 10 * 3 * 300 + 5 * (0.8 * 3 - 2) * 200),
    ],
)
def test_expansion_buys_gpus_when_they_pay(cost, headroom, bought, objective):
    sc = scenario(
        [
            pool(
                gpus=[10, 10, 10],
                expansion={"max_gpus": 5, "cost_per_gpu_hour": cost, "from_period": "P2"},
            )
        ],
        [seg("c", demand=[1e9] * 3)],
        periods=3,
        policy={"headroom": headroom},
    )
    plan = solve(sc)
    rows = {p.period: p for p in plan.pools}
    assert [rows[t].bought for t in ("P1", "P2", "P3")] == pytest.approx([0, bought, bought])
    assert plan.objective == pytest.approx(objective)
    assert plan.totals.expansion_cost == pytest.approx(bought * cost * 200)
    t = plan.totals
    assert t.objective == pytest.approx(
        t.gross_margin + t.ltv_weight * t.ltv - t.churn_cost - t.expansion_cost
    )
    assert plan.max_violation <= 1e-9
    if bought:  # the limit binds: one more GPU allowed is worth what it earns net of capex
        limit = next(b for b in plan.binding if b.constraint == "pool-expansion")
        assert limit.dual == pytest.approx((3 * (1 - headroom) - cost) * 200)
        assert price(plan, period="P3") == pytest.approx(3.0)


def test_expansion_period_must_exist():
    from allocator import ScenarioError

    sc = scenario(
        [pool(expansion={"max_gpus": 5, "cost_per_gpu_hour": 1, "from_period": "Q9"})], [seg("c")]
    )
    with pytest.raises(ScenarioError) as info:
        solve(sc)
    assert info.value.issues[0].path == "pools[0].expansion.from_period"
