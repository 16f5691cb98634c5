"""Margin–LTV frontier: Pareto-ordered, its ends are the direct optima, each point is the
engine's plan at its weights, and warm starts give the cold solves' objectives."""

from __future__ import annotations

import functools
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import highspy
import numpy as np
import pytest

from allocator import Scenario, solve
from allocator.analysis.frontier import Frontier, _Sweep, frontier
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.solvers.highs_model import new_highs, to_highs_lp

from ..conftest import DATA, EXAMPLES, edit

REL = 1e-9


def with_weight(sc: Scenario, w: float) -> Scenario:
    return sc.model_copy(update={"policy": sc.policy.model_copy(update={"ltv_weight": w})})


def lp_optimum(sc: Scenario, cost: np.ndarray, offset: float = 0.0) -> float:
    """max cost @ x + offset over the scenario's feasible plans, cold."""
    lp = replace(build_lp(sc), c=cost, offset=offset)
    h = new_highs()
    h.passModel(to_highs_lp(lp))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return -float(h.getInfo().objective_function_value)


def assert_pareto_ordered(f: Frontier) -> None:
    pts = f.points
    assert pts, "a feasible scenario has at least one efficient plan"
    scale = max(abs(p.margin) + abs(p.ltv) for p in pts)
    for a, b in itertools.pairwise(pts):
        assert b.ltv > a.ltv + REL * scale  # LTV rises strictly
        assert b.margin < a.margin - REL * scale  # margin falls strictly
    assert pts[0].weight_low == 0.0 and math.isinf(pts[-1].weight_high)
    for k, step in enumerate(f.steps):
        a, b = pts[k], pts[k + 1]
        assert a.weight_high == b.weight_low == step.weight
        # the breakpoint is the margin given up per unit of LTV gained
        assert -step.margin_change / step.ltv_change == pytest.approx(step.weight, rel=1e-9)
    assert all(a < b for a, b in itertools.pairwise(f.breakpoints))
    for p in pts:
        assert p.weight_low <= p.weight_high
        if f.margin_axis == "gross_margin - churn_cost":
            assert p.margin == pytest.approx(
                p.gross_margin - p.churn_cost + (p.salvage or 0.0), rel=REL
            )
        else:
            assert p.margin == pytest.approx(p.gross_margin + (p.salvage or 0.0), rel=REL)
        assert sum(k.ltv for k in p.by_kind.values()) == pytest.approx(p.ltv, rel=1e-9)


# --------------------------------------------------------------------------- tiny
def test_tiny_frontier_by_hand():
    """Chat's H100-hour earns 10 x (0.5 + 0.1 w) - 1 = 4 + w; cloud's in P2, short of its
    contract, 4 - 1 + 1.5 = 4.5. Below w = 0.5 cloud takes P2's 5 contested H100s; above,
    chat does: 500 GPU-hours, 5,000 Mtok, 500 of LTV for 250 of margin."""
    f = frontier(Scenario.from_file(DATA / "tiny.json"))
    assert f.exact and f.margin_axis == "gross_margin - churn_cost"
    assert [(p.margin, p.ltv) for p in f.points] == [
        pytest.approx((25700, 5000)),
        pytest.approx((25450, 5500)),
    ]
    assert f.breakpoints == pytest.approx([0.5])
    assert f.current_weight == 1.0 and f.current_point == 1
    step = f.steps[0]
    assert step.segments_gaining == [("chat", pytest.approx(500))]
    assert step.segments_losing == [("cloud", pytest.approx(-500))]
    assert step.by_kind["first_party"].gpus_by_period == pytest.approx([0, 5])
    assert step.by_kind["cloud"].gpus_by_period == pytest.approx([0, -5])
    assert step.by_kind["first_party"].ltv == pytest.approx(500)
    # cloud loses 500 units at 4, saves 500 H100-hours at 1 and pays 1.5 more penalty on
    # each unit; chat sells 5,000 Mtok at 0.5 on those H100-hours
    assert step.by_kind["cloud"].gross_margin == pytest.approx(-500 * 4 + 500 - 500 * 1.5)
    assert step.by_kind["first_party"].gross_margin == pytest.approx(5000 * 0.5 - 500)
    assert f.points[1].gpu_hours_by_segment == pytest.approx({"chat": 2500, "cloud": 1000})
    assert_pareto_ordered(f)


# -------------------------------------------------------------------- hyperscaler
@pytest.fixture(scope="module")
def hyperscaler() -> Scenario:
    return Scenario.from_file(DATA / "hyperscaler.json")


@pytest.fixture(scope="module")
def hyperscaler_frontier() -> Frontier:
    return exact_frontier(DATA / "hyperscaler.json")


def test_hyperscaler_frontier_is_pareto_ordered(hyperscaler_frontier):
    f = hyperscaler_frontier
    assert f.exact and len(f.points) > 10
    assert_pareto_ordered(f)
    # the dichotomic scheme: one solve per point and per edge, plus the search for the
    # plan with the most LTV, plus one warm re-solve per point (the walk)
    assert f.solves <= 3 * len(f.points) + 8
    assert f.points[f.current_point].weight_low <= 1.0 <= f.points[f.current_point].weight_high
    # the example's own weight, 1, lies inside one plan's interval, not at a breakpoint
    cur = f.points[f.current_point]
    assert cur.weight_low < 1.0 < cur.weight_high
    assert not any("is a breakpoint" in n for n in f.notes)


def test_weight_zero_point_maximises_margin(hyperscaler, hyperscaler_frontier):
    first = hyperscaler_frontier.points[0]
    direct = solve(with_weight(hyperscaler, 0.0))
    assert first.margin == pytest.approx(direct.objective, rel=REL)
    assert first.margin == pytest.approx(direct.gross_margin - direct.totals.churn_cost, rel=REL)
    # of the plans with the most margin, the first point has the most LTV
    assert first.ltv >= direct.ltv * (1 - REL)


def test_last_point_maximises_ltv(hyperscaler, hyperscaler_frontier):
    lp = build_lp(hyperscaler)
    sweep = _Sweep(lp, ScenarioArrays.of(hyperscaler), 1.0, True, True)
    assert hyperscaler_frontier.points[-1].ltv == pytest.approx(
        lp_optimum(hyperscaler, sweep.c_ltv), rel=REL
    )


def test_points_are_the_engines_plans_at_their_weights(hyperscaler, hyperscaler_frontier):
    pts = hyperscaler_frontier.points
    for k in np.linspace(0, len(pts) - 1, 4).astype(int):
        p = pts[k]
        w = (
            2 * p.weight_low + 1
            if math.isinf(p.weight_high)
            else (p.weight_low + p.weight_high) / 2
        )
        plan = solve(with_weight(hyperscaler, w))
        assert plan.objective == pytest.approx(p.margin + w * p.ltv, rel=REL)
        # inside its weight interval the point is the unique optimum
        assert plan.ltv == pytest.approx(p.ltv, rel=1e-7)
        assert plan.gross_margin == pytest.approx(p.gross_margin, rel=1e-7)


def test_gross_margin_axis_without_churn(hyperscaler):
    f = frontier(hyperscaler, count_churn=False)
    assert f.margin_axis == "gross_margin"
    assert_pareto_ordered(f)
    lp = build_lp(hyperscaler)
    sweep = _Sweep(lp, ScenarioArrays.of(hyperscaler), 1.0, False, True)
    # the weight-0 point has the most gross margin any plan can have
    assert f.points[0].gross_margin == pytest.approx(
        lp_optimum(hyperscaler, sweep.c_margin), rel=REL
    )


def test_warm_start_gives_the_cold_objectives(hyperscaler):
    # 1.0, 2.0 and 3.0 are breakpoints of this example: two plans tie there, and a warm
    # and a cold solve may return different ones, with the same objective
    weights = [0.0, 0.3, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 9.0, 20.0]
    warm = frontier(hyperscaler, weights, warm_start=True)
    cold = frontier(hyperscaler, weights, warm_start=False)
    assert warm.solves == cold.solves == len(weights)
    assert [w for w, _ in warm.solved] == [w for w, _ in cold.solved] == weights
    assert [v for _, v in warm.solved] == pytest.approx([v for _, v in cold.solved], rel=REL)
    for w, v in warm.solved[::3]:
        assert solve(with_weight(hyperscaler, w)).objective == pytest.approx(v, rel=REL)
    assert not warm.exact and warm.notes
    assert warm.iterations < cold.iterations


def test_exact_warm_and_cold_frontiers_agree():
    sc = Scenario.from_file(DATA / "ai_lab.json")
    warm, cold = frontier(sc), frontier(sc, warm_start=False)
    assert len(warm.points) == len(cold.points)
    for a, b in zip(warm.points, cold.points, strict=True):
        assert (a.margin, a.ltv) == (
            pytest.approx(b.margin, rel=REL),
            pytest.approx(b.ltv, rel=REL),
        )
    assert warm.breakpoints == pytest.approx(cold.breakpoints, rel=1e-7)


@functools.cache
def exact_frontier(path: Path) -> Frontier:
    return frontier(Scenario.from_file(path))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_grid_points_lie_on_the_exact_frontier(path):
    sc = Scenario.from_file(path)
    exact = exact_frontier(path)
    grid = frontier(sc, 7)
    assert_pareto_ordered(grid)
    assert len(grid.points) <= len(exact.points)
    on = {(round(p.margin, 3), round(p.ltv, 3)) for p in exact.points}
    for p in grid.points:
        assert (round(p.margin, 3), round(p.ltv, 3)) in on
    assert exact.points[-1].ltv == pytest.approx(grid.points[-1].ltv, rel=REL)


# ---------------------------------------------------------------------- interface
def test_to_dict_is_json(hyperscaler_frontier):
    d = hyperscaler_frontier.to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert back["points"][-1]["weight_high"] is None
    assert back["breakpoints"] == pytest.approx(hyperscaler_frontier.breakpoints)
    assert set(back["steps"][0]) >= {"weight", "by_kind", "segments_gaining", "segments_losing"}
    assert "Frontier('hyperscaler'" in repr(hyperscaler_frontier)


def test_errors(tiny_dict):
    sc = Scenario.from_dict(tiny_dict)
    with pytest.raises(ValueError, match="weights"):
        frontier(sc, [-1.0])
    with pytest.raises(ValueError, match="at least 2"):
        frontier(sc, 1)
    milp = edit(tiny_dict)
    milp["pools"][0]["allocation_unit_gpus"] = 1
    with pytest.raises(ValueError, match="MILP"):
        frontier(Scenario.from_dict(milp))
