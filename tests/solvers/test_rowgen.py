"""The period split with lazy stability rows (solvers/rowgen.py) against one solve of the
whole LP: the same optimum, and a primal-dual pair that certifies it for the whole LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from allocator import solve
from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.build import build_lp
from allocator.scenario import Scenario
from allocator.scenario.generate import generate, generate_dict
from allocator.solvers import rowgen
from allocator.solvers.base import Solution, primal_violation
from allocator.solvers.registry import SMALL_LP_COLUMNS, HighsSolver
from allocator.solvers.rowgen import RowGenerationSolver, lazy_mask, split_by_period
from allocator.workflows.planner import Planner
from tests.certificates import assert_optimal
from tests.test_properties import fleets


def assert_optimal_for_whole_lp(lp: LinearProgram, sol: Solution) -> None:
    """x feasible for every row (the lazy ones never loaded included), duals optimal for the
    whole LP: the certificate is checked on ``lp`` itself, not on the rows HiGHS held."""
    assert_optimal(lp, sol)


@pytest.mark.parametrize("stability", [0.3, 0.1, 0.02])
@pytest.mark.parametrize("chains", [1, 2])
def test_same_optimum_as_the_whole_lp(stability: float, chains: int) -> None:
    lp = build_lp(generate(40, 6, 10, seed=3, compatibility=0.4, stability=stability))
    whole = HighsSolver(algorithm="simplex").solve(lp)
    sol = RowGenerationSolver(chains=chains).solve(lp)
    assert sol.objective == pytest.approx(whole.objective, rel=1e-9)
    assert sol.algorithm == "row-generation" and sol.extra["periods"] == 10
    assert_optimal_for_whole_lp(lp, sol)
    # stability rows never loaded carry no dual; some were needed, not all
    assert 0 < sol.extra["lazy_rows_added"] < sol.extra["lazy_rows"]
    lazy = np.nonzero(lazy_mask(lp))[0]
    assert (sol.row_dual[lazy] != 0).sum() <= sol.extra["lazy_rows_added"]


def test_tight_coupling_falls_back_to_interior_point(monkeypatch: pytest.MonkeyPatch) -> None:
    lp = build_lp(generate(40, 6, 10, seed=3, compatibility=0.4, stability=0.02))
    whole = HighsSolver(algorithm="simplex").solve(lp)
    # below MIN_LAZY_FOR_FALLBACK added rows the rounds always go on: lift it for this LP
    monkeypatch.setattr(rowgen, "MIN_LAZY_FOR_FALLBACK", 0)
    sol = RowGenerationSolver(max_lazy_share=0.0).solve(lp)  # any added row is too many
    assert sol.algorithm == "ipm-fallback" and "fallback_ipm_s" in sol.extra
    assert sol.objective == pytest.approx(whole.objective, rel=1e-9)
    assert_optimal_for_whole_lp(lp, sol)


def test_uncoupled_lp_is_the_periods_alone() -> None:
    lp = build_lp(generate(30, 5, 6, seed=1))
    assert split_by_period(lp, lazy_mask(lp)) is not None
    sol = RowGenerationSolver().solve(lp)
    assert sol.extra["lazy_rows"] == 0 and sol.extra["rounds"] == 0
    assert sol.objective == pytest.approx(
        HighsSolver(algorithm="ipm").solve(lp).objective, rel=1e-9
    )
    assert_optimal_for_whole_lp(lp, sol)


def test_expansion_does_not_split_and_still_agrees() -> None:
    d = generate_dict(20, 4, 6, seed=2, compatibility=0.5, stability=0.1)
    d["pools"][0]["expansion"] = {"max_gpus": 500, "cost_per_gpu_hour": 0.3}
    lp = build_lp(Scenario.from_dict(d))
    assert lp.columns.n_e > 0 and split_by_period(lp, lazy_mask(lp)) is None
    sol = RowGenerationSolver().solve(lp)
    assert "periods" not in sol.extra
    assert sol.objective == pytest.approx(
        HighsSolver(algorithm="simplex").solve(lp).objective, rel=1e-9
    )
    assert_optimal_for_whole_lp(lp, sol)


def test_a_period_that_cannot_be_planned_is_infeasible(tiny_dict: dict) -> None:
    tiny_dict["segments"][0]["contract_min"] = [0, 1e9]
    tiny_dict["segments"][0]["demand"] = [tiny_dict["segments"][0]["demand"][0], 1e9]
    tiny_dict["segments"][0]["contract_hard"] = True
    lp = build_lp(Scenario.from_dict(tiny_dict))
    sol = RowGenerationSolver().solve(lp)
    assert sol.status is Status.INFEASIBLE and sol.x is None
    assert "period 1" in sol.message


def test_time_limit_never_returns_an_infeasible_plan() -> None:
    lp = build_lp(generate(60, 6, 12, seed=5, compatibility=0.4, stability=0.05))
    for limit in (0.0, 0.02):
        sol = RowGenerationSolver().solve(lp, time_limit=limit)
        if sol.has_plan:
            assert sol.x is not None and primal_violation(lp, sol.x) <= 1e-6
        else:
            assert sol.status is Status.TIME_LIMIT_NO_SOLUTION


def test_row_generation_on_every_example(example_scenario: Scenario) -> None:
    lp = build_lp(example_scenario)
    sol = RowGenerationSolver().solve(lp)
    whole = HighsSolver(algorithm="simplex").solve(lp)
    assert sol.objective == pytest.approx(whole.objective, rel=1e-9)
    assert_optimal_for_whole_lp(lp, sol)
    # auto: one simplex run below SMALL_LP_COLUMNS columns, the period split above
    expected = "simplex" if lp.num_cols < SMALL_LP_COLUMNS else "row-generation"
    assert solve(example_scenario).solver.algorithm == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_random_fleets_row_generation_is_optimal_for_the_whole_lp(data: dict) -> None:
    lp = build_lp(Scenario.from_dict(data))
    sol = RowGenerationSolver().solve(lp)
    whole = HighsSolver(algorithm="simplex").solve(lp)
    assert sol.status is Status.OPTIMAL
    assert sol.objective == pytest.approx(whole.objective, rel=1e-7, abs=1e-6)
    assert_optimal_for_whole_lp(lp, sol)


def test_planner_adds_stability_rows_a_change_violates() -> None:
    sc = generate(40, 6, 10, seed=3, compatibility=0.4, stability=0.05)
    planner = Planner(sc)
    planner.solve()
    assert planner._model is not None
    before = int((planner._model.hrow_of[planner._model.lazy_rows] >= 0).sum())
    # a big jump in one segment's demand in one period pulls its GPUs across periods
    seg = max(sc.segments, key=lambda s: s.demand[5])
    plan = planner.scale_demand(seg.id, 3.0, period=5)
    cold = solve(planner.scenario, algorithm="simplex")
    assert plan.objective == pytest.approx(cold.objective, rel=1e-9)
    assert plan.max_violation <= 1e-6
    after = int((planner._model.hrow_of[planner._model.lazy_rows] >= 0).sum())
    assert after >= before
    sol = planner.last_solution
    assert sol is not None
    assert_optimal_for_whole_lp(planner.lp, sol)


def test_a_kept_model_forgets_an_earlier_time_limit() -> None:
    sc = generate(40, 6, 10, seed=3, compatibility=0.4, stability=0.1)
    planner = Planner(sc, time_limit=30.0)
    planner.solve()
    planner.time_limit = None  # the next re-solve has no limit: not the one left from before
    planner.scale_demand(sc.segments[0].id, 1.1)
    assert planner.last_solve is not None and planner.last_solve.status == "optimal"
    h = planner._model.h
    assert h.getOptionValue("time_limit")[1] >= 1e30
