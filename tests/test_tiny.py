"""data/tiny.json solved by hand (derivation in data/README.md): the LP must agree on the
allocation, every money line, and every shadow price."""

from __future__ import annotations

import pytest

from allocator import Status, solve
from allocator.lp.build import build_lp
from tests.conftest import edit


def gpus(plan, segment, pool, period):
    return sum(
        a.gpus for a in plan.allocations if (a.segment, a.pool, a.period) == (segment, pool, period)
    )


def test_allocation_matches_hand_solution(tiny_scenario):
    plan = solve(tiny_scenario)
    assert plan.status is Status.OPTIMAL
    expected = {
        ("chat", "b200", "P1"): 5,
        ("chat", "h100", "P1"): 5,
        ("cloud", "h100", "P1"): 5,
        ("chat", "b200", "P2"): 10,
        ("chat", "h100", "P2"): 5,
        ("cloud", "h100", "P2"): 5,
        ("cloud", "b200", "P1"): 0,
        ("cloud", "b200", "P2"): 0,
    }
    for (seg, pool, period), want in expected.items():
        assert gpus(plan, seg, pool, period) == pytest.approx(want, abs=1e-7)


def test_objective_and_money_lines(tiny_scenario):
    plan = solve(tiny_scenario)
    t = plan.totals
    assert t.objective == pytest.approx(30950)
    assert t.revenue == pytest.approx(0.5 * 55000 + 4 * 1000)  # chat 55k Mtok, cloud 1k units
    assert t.ltv == pytest.approx(0.1 * 55000)
    assert t.variable_cost == pytest.approx(1 * 2000 + 2 * 1500)
    assert t.shortfall_penalty == pytest.approx(1.5 * 700)
    assert t.gross_margin == pytest.approx(25450)
    assert t.fixed_cost == pytest.approx(2 * 2000 + 4 * 1500)
    assert t.margin_after_depreciation == pytest.approx(15450)
    cloud_p2 = next(s for s in plan.segments if (s.segment, s.period) == ("cloud", "P2"))
    assert cloud_p2.served == pytest.approx(500)
    assert cloud_p2.shortfall == pytest.approx(700)
    assert cloud_p2.unserved == pytest.approx(2500)


def test_shadow_prices_match_hand_derivation(tiny_scenario):
    plan = solve(tiny_scenario)
    # P1: H100's marginal use is cloud (3/GPU-h); a B200 hour moves 30 Mtok of chat off
    # 3 H100 hours that then serve cloud: 16 - 15 + 9 = 10.
    # P2: cloud is short of its contract, so a cloud unit is worth 4 + 1.5 of avoided
    # penalty: H100 = 5.5 - 1 = 4.5, B200 = 16 - (5 - 4.5) * 3 = 14.5.
    assert plan.pool_prices == {
        "h100": {"P1": pytest.approx(3.0), "P2": pytest.approx(4.5)},
        "b200": {"P1": pytest.approx(10.0), "P2": pytest.approx(14.5)},
    }
    duals = {b.label: b.dual for b in plan.binding}
    assert duals["segment-demand[chat,P1]"] == pytest.approx(0.2)
    assert duals["segment-demand[chat,P2]"] == pytest.approx(0.05)
    assert duals["segment-contract[cloud,P2]"] == pytest.approx(-1.5)
    assert "segment-demand[cloud,P1]" not in duals  # cloud demand is not met: slack


def test_one_more_gpu_hour_is_worth_the_shadow_price(tiny_dict):
    base = solve(tiny_dict).objective
    more = edit(tiny_dict)
    more["pools"][1]["gpus"] = [5.01, 10]  # +0.01 B200 GPU in P1 = +1 GPU-hour
    assert solve(more).objective - base == pytest.approx(10.0, rel=1e-9)


def test_discounting_scales_period_two(tiny_dict):
    plan = solve(edit(tiny_dict, discount_rate=0.25))
    # same allocation; P2 money counts 1/1.25
    assert plan.objective == pytest.approx(12000 + 18950 / 1.25)
    # nominal prices are unchanged, present-value prices are discounted
    p2 = next(p for p in plan.pools if (p.pool, p.period) == ("b200", "P2"))
    assert p2.shadow_price_per_gpu_hour == pytest.approx(14.5)
    assert p2.shadow_price_pv_per_gpu_hour == pytest.approx(14.5 / 1.25)


def test_lp_has_a_column_per_compatible_combination(tiny_scenario):
    lp = build_lp(tiny_scenario)
    # 2 segments x 2 pools x 2 periods allocation columns + 1 shortfall column (cloud P2)
    assert lp.columns.n_x == 8 and lp.columns.n_u == 1 and lp.columns.n_r == 0
    assert [b.name for b in lp.blocks] == ["pool-capacity", "segment-demand", "segment-contract"]
    assert lp.nnz == 8 + 8 + 2 + 1  # capacity, demand, contract (x of cloud P2 + u)


def test_count_columns_matches_the_built_lp(tiny_dict):
    from allocator import Scenario
    from allocator.lp.build import count_columns

    d = edit(tiny_dict)
    d["pools"][0]["expansion"] = {"max_gpus": 4, "cost_per_gpu_hour": 1, "from_period": "P2"}
    d["pools"][1]["rentable_gpus"] = [0, 3]
    d["pools"][1]["rental_price_per_gpu_hour"] = 5
    for data in (tiny_dict, d):
        sc = Scenario.from_dict(data)
        assert count_columns(sc) == build_lp(sc).num_cols
