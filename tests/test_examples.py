"""Properties that must hold on every bundled example."""

from __future__ import annotations

import json

import numpy as np
import pytest

from allocator import Status, build_lp, solve
from allocator.cli import main
from allocator.lp.arrays import ScenarioArrays
from allocator.solvers import HighsSolver
from tests.certificates import assert_optimal

TOL = 1e-6


@pytest.fixture
def example_plan(example_scenario):
    return solve(example_scenario)


def test_requirements_hold(example_scenario, example_plan):
    plan, sc = example_plan, example_scenario
    assert plan.status is Status.OPTIMAL
    assert plan.max_violation <= TOL, plan.violations
    # and again from the plan's own tables, not from the checker
    usable = {(p.pool, p.period): p.usable + p.rented for p in plan.pools}
    used: dict = {}
    for a in plan.allocations:
        used[(a.pool, a.period)] = used.get((a.pool, a.period), 0.0) + a.gpus
        assert sc.compatible(sc.segment(a.segment), sc.pool(a.pool))
    for key, u in used.items():
        assert u <= usable[key] * (1 + TOL) + TOL
    for s in plan.segments:
        assert s.served <= s.demand * (1 + TOL) + TOL
    ms = sc.policy.max_change_share
    if ms is not None:
        pools = {p.id: p for p in sc.pools}
        per_pair: dict = {}
        for a in plan.allocations:
            per_pair.setdefault((a.segment, a.pool), {}).setdefault(a.period, 0.0)
            per_pair[(a.segment, a.pool)][a.period] += a.gpus
        labels = sc.period_labels
        arr = ScenarioArrays.of(sc)
        cap = arr.usable + arr.rentable
        for (_seg, pool), by_t in per_pair.items():
            j = list(pools).index(pool)
            for t in range(1, len(labels)):
                change = abs(by_t.get(labels[t], 0.0) - by_t.get(labels[t - 1], 0.0))
                assert change <= ms * max(cap[j, t], cap[j, t - 1]) * (1 + TOL) + TOL


def test_objective_is_the_sum_of_the_money_lines(example_scenario, example_plan):
    plan, sc = example_plan, example_scenario
    df = {p: 1 / (1 + sc.discount_rate) ** t for t, p in enumerate(sc.period_labels)}
    w = sc.policy.ltv_weight
    seg_part = sum(
        df[s.period] * (s.revenue - s.compute_cost - s.shortfall_penalty + w * s.ltv - s.churn_cost)
        for s in plan.segments
    )
    rental = sum(df[p.period] * p.rental_cost for p in plan.pools)
    salvage = sum(df[p.period] * p.salvage for p in plan.power)  # sites' retirement
    assert plan.objective == pytest.approx(seg_part - rental + salvage, rel=1e-9)
    t = plan.totals
    assert t.objective == pytest.approx(
        t.gross_margin + w * t.ltv - t.churn_cost + (t.salvage or 0.0), rel=1e-9
    )
    assert sum(k.revenue for k in plan.by_kind.values()) == pytest.approx(t.revenue, rel=1e-9)
    # the LP objective evaluated at the reported allocation
    lp = build_lp(sc)
    sol = HighsSolver().solve(lp)
    assert lp.objective(sol.x) == pytest.approx(plan.objective, rel=1e-9)


def test_strong_duality_and_complementary_slackness(example_scenario):
    lp = build_lp(example_scenario)
    assert_optimal(lp, HighsSolver().solve(lp))


def test_shadow_prices_are_finite_differences(example_scenario, example_plan):
    """One more usable GPU-hour in a pool-period (its capacity row, after headroom) changes
    the objective by the shadow price. The optimum is concave in capacity, so
    (f(b+e)-f(b))/e <= price <= (f(b)-f(b-e))/e, equal where it is not degenerate.
    Checked on the dearest, a middle and the cheapest pool-period of each example."""
    sc, plan = example_scenario, example_plan
    lp = build_lp(sc)
    cap = lp.block("pool-capacity")
    T = len(sc.periods)
    ranked = sorted(plan.pools, key=lambda p: p.shadow_price_pv_per_gpu_hour)
    pool_ids = [p.id for p in sc.pools]
    for r in (ranked[-1], ranked[len(ranked) // 2], ranked[0]):
        row = cap.start + pool_ids.index(r.pool) * T + sc.period_labels.index(r.period)
        hours = sc.periods[sc.period_labels.index(r.period)].hours
        eps = max(1e-3, 1e-5 * r.usable)
        slopes = []
        for sign in (+1, -1):
            lp.row_upper[row] += sign * eps
            sol = HighsSolver().solve(lp)
            lp.row_upper[row] -= sign * eps
            if sol.status is Status.INFEASIBLE:  # less capacity breaks a floor: slope +inf
                slopes.append(np.inf)
                continue
            slopes.append((sol.objective - plan.objective) * sign / (eps * hours))
        up, down = slopes
        price = r.shadow_price_pv_per_gpu_hour
        slack = 1e-6 * max(1.0, abs(price))
        assert up - slack <= price <= down + slack, (r, up, down)
        if price > 0:
            assert r.used == pytest.approx(r.usable + r.rented, rel=1e-7)  # a price only where full


def test_plan_json_is_stable_and_complete(example_plan):
    d = json.loads(example_plan.to_json())
    # a scenario with sites (issue 27) adds its power and sites tables at the end
    assert list(d)[20:] == (["power", "sites"] if example_plan.has_sites else [])
    assert list(d)[:20] == [
        "scenario",
        "currency",
        "status",
        "message",
        "periods",
        "totals",
        "by_kind",
        "allocations",
        "segments",
        "pools",
        "binding",
        "solver",
        "has_duals",
        "max_violation",
        "violations",
        "warnings",
        "reservations",
        "tiers",
        "subscriptions",
        "moves",
    ]
    assert set(d["allocations"][0]) == {
        "segment",
        "kind",
        "mode",
        "pool",
        "period",
        "gpus",
        "gpu_hours",
        "units",
    }
    assert d["pools"][0]["shadow_price_per_gpu_hour"] is not None


def test_frames(example_plan):
    pd = pytest.importorskip("pandas")
    frames = example_plan.to_frames()
    assert set(frames) == {
        "allocations",
        "segments",
        "pools",
        "binding",
        "by_kind",
        "reservations",
        "tiers",
        "subscriptions",
        "moves",
        *(("power", "sites") if example_plan.has_sites else ()),  # issue 27
    }
    assert len(frames["allocations"]) == len(example_plan.allocations)
    assert frames["pools"]["used"].sum() == pytest.approx(sum(p.used for p in example_plan.pools))
    assert isinstance(frames["segments"], pd.DataFrame)


def test_cli_solve_summary_and_json(example_path, capsys):
    assert main(["solve", str(example_path)]) == 0
    out = capsys.readouterr().out
    assert "By segment kind" in out and "Top opportunity costs" in out
    assert main(["solve", str(example_path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["status"] == "optimal" and plan["max_violation"] <= TOL


def test_plan_round_trips_through_its_dict(example_plan):
    from allocator import Plan

    again = Plan.from_dict(json.loads(example_plan.to_json()))
    assert again.to_dict() == example_plan.to_dict()
    assert again.pool_prices == example_plan.pool_prices
