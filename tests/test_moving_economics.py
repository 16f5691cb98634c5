"""Issue 15, item 1: every per-unit number of a segment or a pool may be one number or one
per period. Hand-solved cases where a falling price, a rising throughput or a falling
purchase price changes the optimal plan; constant lists give exactly today's results on
every example; validation, overrides, the workbook, the planner and the analyses take
per-period values."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from allocator import Scenario, Status, build_lp, solve
from allocator.errors import ScenarioError
from allocator.scenario.overrides import apply_overrides
from allocator.solvers import HighsSolver
from tests.certificates import assert_optimal

POOL_FIELDS = ("variable_cost_per_gpu_hour", "fixed_cost_per_gpu_hour", "rental_price_per_gpu_hour")
SEGMENT_FIELDS = (
    "revenue_per_unit",
    "ltv_per_unit",
    "shortfall_penalty_per_unit",
    "churn_cost_per_unit",
)


def constant_lists(data: dict) -> dict:
    """``data`` with every per-unit number written as a list of T equal values."""
    out = copy.deepcopy(data)
    T = len(out["periods"])

    def listify(obj: dict, key: str) -> None:
        if key in obj and obj[key] is not None and not isinstance(obj[key], list):
            obj[key] = [obj[key]] * T

    for p in out["pools"]:
        for f in POOL_FIELDS:
            listify(p, f)
        if p.get("expansion"):
            listify(p["expansion"], "cost_per_gpu_hour")
    for s in out["segments"]:
        for f in SEGMENT_FIELDS:
            listify(s, f)
        for acc in s["throughput"]:
            listify(s["throughput"], acc)
        for m in s.get("modes") or []:
            listify(m, "throughput_multiplier")
    return out


def strip_timing(d):
    if isinstance(d, dict):
        return {
            k: strip_timing(v)
            for k, v in d.items()
            if not any(w in k for w in ("time", "seconds", "elapsed", "iterations"))
        }
    if isinstance(d, list):
        return [strip_timing(v) for v in d]
    return d


def test_constant_lists_give_exactly_todays_results(example_scenario):
    data = example_scenario.to_dict()
    listed = Scenario.from_dict(constant_lists(data))
    a, b = build_lp(example_scenario), build_lp(listed)
    for name in ("c", "row_lower", "row_upper", "col_lower", "col_upper"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.offset == b.offset
    assert (a.A != b.A).nnz == 0
    pa, pb = solve(example_scenario), solve(listed)
    assert pa.objective == pb.objective
    assert strip_timing(pa.to_dict()) == strip_timing(pb.to_dict())


# --------------------------------------------------------------------- hand cases
def two_segments(T: int = 2, **seg_a) -> dict:
    """One pool of 10 H100 (1 hour per period, no cost), two segments with demand enough
    for the whole pool: 'api' (1 unit per GPU-hour, 5 per unit unless overridden) and
    'chat' (1 unit per GPU-hour, 3 per unit)."""
    a = {
        "id": "api",
        "kind": "cloud",
        "demand": [100.0] * T,
        "revenue_per_unit": 5.0,
        "throughput": {"H100": 1.0},
    }
    a.update(seg_a)
    return {
        "periods": [{"label": f"P{t}", "hours": 1.0} for t in range(T)],
        "pools": [
            {
                "id": "h100",
                "accelerator": "H100",
                "region": "r",
                "gpus": [10.0] * T,
                "variable_cost_per_gpu_hour": 0.0,
            }
        ],
        "segments": [
            a,
            {
                "id": "chat",
                "kind": "first_party",
                "demand": [100.0] * T,
                "revenue_per_unit": 3.0,
                "throughput": {"H100": 1.0},
            },
        ],
    }


def gpus(plan, segment, period):
    return sum(a.gpus for a in plan.allocations if (a.segment, a.period) == (segment, period))


def solved(data):
    sc = Scenario.from_dict(data)
    lp = build_lp(sc)
    assert_optimal(lp, HighsSolver().solve(lp))
    plan = solve(sc)
    assert plan.status is Status.OPTIMAL and plan.max_violation <= 1e-9
    return plan


def test_a_falling_price_moves_the_pool_to_the_other_segment():
    """api's price falls from 5 to 2 per unit; chat pays 3. A GPU-hour earns api's price
    on api and 3 on chat (1 unit per GPU-hour each), so in P0 all 10 GPUs serve api
    (5 > 3) and in P1 all serve chat (2 < 3): objective 10*5 + 10*3 = 80, the pool's shadow
    price 5 then 3. At a constant 5 api keeps the pool: 100."""
    plan = solved(two_segments(revenue_per_unit=[5.0, 2.0]))
    assert gpus(plan, "api", "P0") == pytest.approx(10) and gpus(plan, "chat", "P0") == 0
    assert gpus(plan, "chat", "P1") == pytest.approx(10) and gpus(plan, "api", "P1") == 0
    assert plan.objective == pytest.approx(80)
    assert plan.pool_prices["h100"] == {"P0": pytest.approx(5), "P1": pytest.approx(3)}
    api = {s.period: s for s in plan.segments if s.segment == "api"}
    assert api["P0"].revenue == pytest.approx(50) and api["P1"].revenue == 0
    assert solve(two_segments()).objective == pytest.approx(100)


def test_a_rising_throughput_moves_the_pool_to_the_segment_it_speeds_up():
    """api earns 1 per unit and serving improvements raise its throughput 1 -> 2 -> 4
    units per GPU-hour; chat earns 3 per GPU-hour (3 per unit, 1 unit per GPU-hour). A
    GPU-hour is worth 1, 2, 4 on api against 3 on chat: chat gets the pool in P0 and P1,
    api in P2. Objective 30 + 30 + 40 = 100; api serves 40 units in P2."""
    plan = solved(two_segments(3, revenue_per_unit=1.0, throughput={"H100": [1.0, 2.0, 4.0]}))
    assert [gpus(plan, "chat", f"P{t}") for t in range(3)] == pytest.approx([10, 10, 0])
    assert [gpus(plan, "api", f"P{t}") for t in range(3)] == pytest.approx([0, 0, 10])
    assert plan.objective == pytest.approx(100)
    api = next(s for s in plan.segments if (s.segment, s.period) == ("api", "P2"))
    assert api.served == pytest.approx(40)


def test_a_mode_multiplier_that_rises_changes_the_mode():
    """api has a 'small' mode at half revenue whose multiplier rises 1.5 -> 3: per GPU-hour
    full earns 5, small 2.5*1.5 = 3.75 then 2.5*3 = 7.5. Full serves P0, small P1:
    objective 50 + 75 = 125."""
    modes = [
        {"name": "full"},
        {"name": "small", "throughput_multiplier": [1.5, 3.0], "revenue_share": 0.5},
    ]
    plan = solved(two_segments(modes=modes))
    by_mode = {(a.mode, a.period): a.gpus for a in plan.allocations if a.segment == "api"}
    assert by_mode.get(("full", "P0")) == pytest.approx(10)
    assert by_mode.get(("small", "P1")) == pytest.approx(10)
    assert plan.objective == pytest.approx(125)


def test_falling_costs_and_rental_prices():
    """Variable cost 1 then 4 per GPU-hour; 10 more GPUs rentable at 1 then 0.5. api 5
    per GPU-hour, chat 3. P0: own GPUs earn 5-1 on api; a rented one 5-1-1 = 3 on api (api
    takes 20). P1: 5-4 = 1 on api, 3-4 < 0 on chat; a rented one 5-4-0.5 = 0.5 on api:
    rent all. Objective 10*4 + 10*3 + 10*1 + 10*0.5 = 85."""
    data = two_segments()
    pool = data["pools"][0]
    pool.update(
        variable_cost_per_gpu_hour=[1.0, 4.0],
        rentable_gpus=[10.0, 10.0],
        rental_price_per_gpu_hour=[1.0, 0.5],
        fixed_cost_per_gpu_hour=[2.0, 1.0],
    )
    plan = solved(data)
    assert [gpus(plan, "api", p) for p in ("P0", "P1")] == pytest.approx([20, 20])
    assert plan.objective == pytest.approx(85)
    pools = {p.period: p for p in plan.pools}
    assert pools["P0"].rental_cost == pytest.approx(10) and pools["P1"].rental_cost == 5
    assert plan.totals.fixed_cost == pytest.approx(10 * 2 + 10 * 1)


def test_a_falling_purchase_price_is_locked_in_the_period_bought():
    """No GPUs of its own; up to 10 may be bought, at 3 per GPU-hour if bought in P0 and 1
    if bought in P1 (a GPU pays the price of the period it is bought in, every period
    from then on). api earns 2.5 per GPU-hour in both periods. Bought in P0 a GPU earns
    2*(2.5-3) < 0; bought in P1 2.5-1 = 1.5: buy 10 in P1, objective 15. (Had every GPU
    held paid the period's own price, buying in P0 would earn 2.5-3 + 2.5-1 = 1 more.)"""
    data = two_segments(revenue_per_unit=2.5)
    data["segments"] = data["segments"][:1]
    data["pools"][0].update(
        gpus=[0.0, 0.0], expansion={"max_gpus": 10.0, "cost_per_gpu_hour": [3.0, 1.0]}
    )
    plan = solved(data)
    bought = {p.period: p.bought for p in plan.pools}
    assert bought == {"P0": pytest.approx(0), "P1": pytest.approx(10)}
    assert plan.objective == pytest.approx(15)
    assert plan.totals.expansion_cost == pytest.approx(10)


def test_per_period_penalty_churn_and_ltv():
    """api (5 per unit, 1 per GPU-hour) has a soft contract of 100 units a period (above
    what the pool serves) with a penalty 0 then 4 per unit short, churn 1 per unit unserved
    and LTV 0 then 1; chat earns 3. P0: api 5+1 = 6 > 3: api. P1: api 5+1+1 (+4 of
    penalty avoided) > 3: api. Objective: revenue 10*5*2 = 100, LTV 10*1 = 10, churn
    90*1*2 = 180, penalty 90*0 + 90*4 = 360: 100 + 10 - 180 - 360 = -430."""
    data = two_segments(
        contract_min=[100.0, 100.0],
        shortfall_penalty_per_unit=[0.0, 4.0],
        churn_cost_per_unit=1.0,
        ltv_per_unit=[0.0, 1.0],
    )
    plan = solved(data)
    assert [gpus(plan, "api", p) for p in ("P0", "P1")] == pytest.approx([10, 10])
    assert plan.objective == pytest.approx(-430)
    assert plan.totals.shortfall_penalty == pytest.approx(360)
    assert plan.totals.ltv == pytest.approx(10)


# --------------------------------------------------------------------- validation
def test_validation_names_the_period_of_a_bad_value():
    data = two_segments(3)
    data["segments"][0]["throughput"] = {"H100": [1.0, 2.0, float("nan")]}
    data["segments"][1]["revenue_per_unit"] = [1.0, -1.0, 1.0]
    data["pools"][0]["variable_cost_per_gpu_hour"] = [1.0, 2e12, 1.0]
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data)
    paths = {i.path: i.message for i in info.value.issues}
    assert "NaN" in paths["segments[0].throughput.H100[2]"]
    assert "greater than or equal to 0" in paths["segments[1].revenue_per_unit[1]"]
    assert "at most 1,000,000,000,000" in paths["pools[0].variable_cost_per_gpu_hour[1]"]
    assert len(paths) == 3, paths


def test_validation_checks_lengths_and_magnitudes():
    data = two_segments(3)
    data["segments"][0]["revenue_per_unit"] = [1.0, 2.0]
    data["segments"][0]["modes"] = [{"name": "full", "throughput_multiplier": [1.0]}]
    data["pools"][0]["expansion"] = {"max_gpus": 1.0, "cost_per_gpu_hour": [1.0] * 4}
    data["segments"][1]["throughput"] = {"H100": [1.0, 1e12, 1.0]}
    data["periods"][0]["hours"] = 1e4
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data)
    paths = {i.path: i.message for i in info.value.issues}
    assert "has 2 entries, expected 3" in paths["segments[0].revenue_per_unit"]
    assert "has 1 entries, expected 3" in paths["segments[0].modes[0].throughput_multiplier"]
    assert "has 4 entries" in paths["pools[0].expansion.cost_per_gpu_hour"]
    assert "limit is 1 × 10^15" in paths["segments[1].throughput.H100"]


def test_a_string_in_a_list_is_reported_once():
    data = two_segments()
    data["segments"][0]["revenue_per_unit"] = [1.0, "2"]
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data)
    assert [i.path for i in info.value.issues] == ["segments[0].revenue_per_unit[1]"]


# ----------------------------------------------------------------- overrides, tools
def test_overrides_take_per_period_factors():
    sc = Scenario.from_dict(two_segments())
    out = apply_overrides(
        sc,
        {
            "price_change": {"api": [1.0, 0.4]},
            "throughput_scale": {"chat": [1.0, 2.0]},
            "cost_change": {"H100": [1.0, 0.5]},
            "demand_scale": {"cloud": [1.0, 0.5]},
        },
    )
    api, chat = out.segment("api"), out.segment("chat")
    assert api.revenue_per_unit == [5.0, 2.0] and api.demand == [100.0, 50.0]
    assert chat.throughput["H100"] == [1.0, 2.0]
    assert out.pools[0].variable_cost_per_gpu_hour == [0.0, 0.0]
    # one factor on one number stays one number
    assert apply_overrides(sc, {"price_change": {"api": 2.0}}).segment("api").revenue_per_unit == 10
    with pytest.raises(ScenarioError) as info:
        apply_overrides(sc, {"price_change": {"api": [1.0]}, "cost_change": {"TPU": 2.0}})
    assert {i.path for i in info.value.issues} == {"price_change.api", "cost_change.TPU"}


def test_a_per_period_price_change_equals_the_list_given_directly():
    sc = Scenario.from_dict(two_segments())
    a = solve(apply_overrides(sc, {"price_change": {"api": [1.0, 0.4]}}))
    b = solve(two_segments(revenue_per_unit=[5.0, 2.0]))
    assert a.objective == pytest.approx(b.objective) == pytest.approx(80)


def test_planner_pushes_per_period_prices_warm():
    from allocator.workflows.planner import Planner

    sc = Scenario.from_dict(two_segments())
    planner = Planner(sc)
    planner.solve()
    plan = planner.what_if({"price_change": {"api": [1.0, 0.4]}})
    assert planner.last_solve is not None and planner.last_solve.warm
    assert plan.objective == pytest.approx(80)
    assert planner.check_consistent() == 0
    plan = planner.what_if({"throughput_scale": {"chat": [1.0, 2.0]}})  # the matrix changes
    assert plan.objective == pytest.approx(50 + 60)


def test_counterfactual_price_path():
    from allocator.workflows.counterfactuals import Price, apply

    sc = Scenario.from_dict(two_segments())
    out = apply(sc, [Price(target="api", factor=[1.0, 0.4])])
    assert out.segment("api").revenue_per_unit == [5.0, 2.0]


def test_workbook_round_trip_keeps_per_period_numbers(tmp_path):
    from allocator.scenario.workbook import read_workbook, write_workbook

    data = two_segments(
        revenue_per_unit=[5.0, 2.0],
        throughput={"H100": [1.0, 2.0]},
        modes=[{"name": "full", "throughput_multiplier": [1.0, 1.5]}],
    )
    data["pools"][0].update(
        variable_cost_per_gpu_hour=[1.0, 0.5],
        expansion={"max_gpus": 5.0, "cost_per_gpu_hour": [3.0, 2.0]},
    )
    sc = Scenario.from_dict(data)
    write_workbook(sc, tmp_path / "s.xlsx")
    back = Scenario.from_dict(read_workbook(tmp_path / "s.xlsx"))
    assert back.to_dict() == sc.to_dict()


def test_analyses_use_the_numbers_of_each_period():
    from allocator.analysis.capacity import capacity_value
    from allocator.analysis.explain import explain
    from allocator.analysis.frontier import frontier
    from allocator.analysis.sensitivity import sensitivity

    data = two_segments(revenue_per_unit=[5.0, 2.0], ltv_per_unit=[0.0, 0.5])
    data["pools"][0]["fixed_cost_per_gpu_hour"] = [1.0, 2.0]
    sc = Scenario.from_dict(data)
    plan = solve(sc)
    ex = explain(sc, "api", plan)
    value = {v.period: v.value_per_gpu_hour for v in ex.values}
    assert value == {"P0": pytest.approx(5.0), "P1": pytest.approx(2.5)}
    caps = {r.period: r for r in capacity_value(plan, sc)}
    assert caps["P1"].fixed_cost_per_gpu == pytest.approx(2.0)
    assert caps["P1"].purchase_price_per_gpu_hour == pytest.approx(2.0)
    price = next(p for p in sensitivity(sc).prices if p.segment == "api")
    assert price.revenue_per_unit_by_period == [5.0, 2.0]
    assert price.revenue_per_unit == pytest.approx(3.5)
    # api holds P0 while a shift keeps 5 + d >= 3 and does not take P1 before 2.5 + d > 3
    assert price.lower == pytest.approx(3.5 - 2.0)
    assert price.upper == pytest.approx(3.5 + 0.5)
    # P1: api earns 2 + w * 0.5 per GPU-hour against chat's 3: it takes P1 above w = 2,
    # with 10 units of LTV 0.5
    f = frontier(sc)
    assert max(p.ltv for p in f.points) == pytest.approx(5.0)
    assert min(p.ltv for p in f.points) == pytest.approx(0.0)


def test_cbc_agrees_on_the_hand_cases():
    from allocator.solvers.pulp import PulpSolver, available_solvers

    if "CBC" not in available_solvers():
        pytest.skip("PuLP's CBC is not available")
    cases = [
        two_segments(revenue_per_unit=[5.0, 2.0]),
        two_segments(3, revenue_per_unit=1.0, throughput={"H100": [1.0, 2.0, 4.0]}),
        two_segments(
            contract_min=[100.0, 100.0],
            shortfall_penalty_per_unit=[0.0, 4.0],
            churn_cost_per_unit=1.0,
            ltv_per_unit=[0.0, 1.0],
        ),
    ]
    for data in cases:
        lp = build_lp(Scenario.from_dict(data))
        h, c = HighsSolver().solve(lp), PulpSolver("CBC").solve(lp)
        assert c.objective == pytest.approx(h.objective, rel=1e-9, abs=1e-9)
        assert np.allclose(c.x, h.x, atol=1e-7)


def test_sweeps_and_stochastic_scenarios_take_per_period_factors():
    from allocator.workflows.batch import expand_sweep
    from allocator.workflows.stochastic import DemandScenario, scenario_for

    runs = expand_sweep({"base": "data/tiny.json", "grid": {"price_change.cloud": [[1, 0.5]]}})
    out = apply_overrides(Scenario.from_dict(runs[0].scenario), runs[0].overrides)
    assert out.segment("cloud").revenue_per_unit == [4.0, 2.0]
    sc = Scenario.from_dict(two_segments())
    ds = DemandScenario.of({"name": "fade", "probability": 1.0, "demand_scale": {"api": [1, 0.2]}})
    assert scenario_for(sc, ds).segment("api").demand == [100.0, 20.0]
