"""The stable plan (issue 26 item 1): of the optimal plans, the one that moves the fewest
GPUs between consecutive periods, with the first solve's shadow prices."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from allocator import Scenario, solve
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.lp.stable import objective_floor
from allocator.plan.report import summary
from allocator.plan.tables import Plan
from allocator.plan.writers import write_csv
from allocator.solvers.base import primal_violation
from allocator.solvers.registry import make_solver
from allocator.solvers.stable import solve_stable
from tests.certificates import assert_optimal
from tests.conftest import DATA

# Two segments share one pool of 10 GPUs over two periods of 100 hours. "anchor" wants
# 10 GPUs (1,000 GPU-hours) in both periods; "newcomer" wants 10 only in P2. Both pay
# 2 USD per GPU-hour, nothing else costs, so P1 gives anchor all 10 GPUs and in P2 every
# split a + b = 10 (a to anchor) is optimal: objective 2 * (1,000 + 1,000) = 4,000 USD.
# GPUs moved: |a - 10| + |b - 0| = 2 (10 - a), least (0) at a = 10: anchor keeps its GPUs.
TWO_OPTIMA = {
    "name": "two-optima",
    "periods": [{"label": "P1", "hours": 100}, {"label": "P2", "hours": 100}],
    "pools": [
        {
            "id": "pool",
            "accelerator": "H100",
            "region": "east",
            "gpus": 10,
            "variable_cost_per_gpu_hour": 0.0,
        }
    ],
    "segments": [
        {
            "id": "newcomer",
            "kind": "cloud",
            "unit": "GPU-hour",
            "demand": [0, 1000],
            "revenue_per_unit": 2.0,
            "throughput": {"H100": 1},
        },
        {
            "id": "anchor",
            "kind": "cloud",
            "unit": "GPU-hour",
            "demand": [1000, 1000],
            "revenue_per_unit": 2.0,
            "throughput": {"H100": 1},
        },
    ],
}


def held(plan: Plan) -> dict[tuple[str, str], list[float]]:
    """GPUs per (segment, pool) by period, from the allocations."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * len(plan.periods))
    at = {p: k for k, p in enumerate(plan.periods)}
    for a in plan.allocations:
        out[(a.segment, a.pool)][at[a.period]] += a.gpus
    return out


def moved(plan: Plan) -> float:
    """GPUs moved, recomputed from the allocations (not from the moves table)."""
    return sum(abs(v[t] - v[t - 1]) for v in held(plan).values() for t in range(1, len(v)))


def test_of_two_optimal_plans_the_one_that_moves_least():
    """Derivation above: objective 4,000 either way; the stable plan keeps anchor at 10."""
    plan = solve(TWO_OPTIMA, stable=True)
    assert plan.objective == pytest.approx(4000, rel=1e-7)
    g = held(plan)
    assert g[("anchor", "pool")] == pytest.approx([10, 10], abs=1e-6)
    assert sum(g[("newcomer", "pool")]) == pytest.approx(0, abs=1e-6)
    assert moved(plan) == pytest.approx(0, abs=1e-6)
    assert len(plan.moves) == 0
    # the scenario's policy asks for it the same way
    by_policy = solve({**TWO_OPTIMA, "policy": {"stable": True}})
    assert held(by_policy)[("anchor", "pool")] == pytest.approx([10, 10], abs=1e-6)


def test_the_moves_table_counts_what_the_allocations_move():
    """On hyperscaler (not stabilised): the table's sum is the moves recomputed from the
    allocations, and its largest move is the largest period-to-period change."""
    plan = solve(DATA / "hyperscaler.json", stable=False)
    assert sum(m.moved_gpus for m in plan.moves) == pytest.approx(moved(plan), rel=1e-9)
    g = held(plan)
    for m in plan.moves:
        v = g[(m.segment, m.pool)]
        steps = [abs(v[t] - v[t - 1]) for t in range(1, len(v))]
        assert m.largest_move_gpus == pytest.approx(max(steps), rel=1e-9, abs=1e-9)
        assert m.largest_move_period == plan.periods[1 + int(np.argmax(steps))]


def test_on_hyperscaler_the_stable_plan_moves_fewer_gpus_at_the_same_objective():
    """The anchor AI lab's 27,360 -> ... -> 0 -> ... -> 27,360 on h100-eastus is one of many
    optimal plans: the stable plan is within the tolerance of the optimum and moves fewer
    GPUs (measured: 572k -> 183k), the anchor's swing on h100-eastus included."""
    sc = Scenario.from_file(DATA / "hyperscaler.json")
    today, stable = solve(sc, stable=False), solve(sc, stable=True)
    tol = sc.policy.stable_tolerance
    # the floor holds to the solver's row tolerance
    assert stable.objective >= objective_floor(today.objective, tol) - 1e-9 * abs(today.objective)
    assert stable.objective <= today.objective + 1e-6 * abs(today.objective)
    assert stable.solver.first_stage_objective == pytest.approx(today.objective, rel=1e-9)
    assert moved(stable) < 0.5 * moved(today)
    anchor = ("cloud-anchor-ailab", "h100-eastus")
    swing = [np.abs(np.diff(held(p)[anchor])).sum() for p in (today, stable)]
    assert swing[1] < swing[0]
    assert stable.max_violation <= 1e-7
    # the shadow prices are the first solve's
    assert [r.shadow_price_per_gpu_hour for r in stable.pools] == pytest.approx(
        [r.shadow_price_per_gpu_hour for r in today.pools], rel=1e-7, abs=1e-9
    )


@pytest.mark.parametrize("name", ["tiny", "hyperscaler", "ai_lab"])
def test_stage_one_keeps_its_certificate_and_gives_the_duals(name):
    """Stage 1 is an optimal primal-dual pair of the LP (the certificate); the stable
    solution is feasible for the same LP, within the objective floor, and carries stage 1's
    duals unchanged."""
    sc = Scenario.from_file(DATA / f"{name}.json")
    lp = build_lp(sc, ScenarioArrays.of(sc))
    solver = make_solver("highs", None, algorithm="simplex")
    first = solver.solve(lp)
    assert_optimal(lp, first)
    second = solve_stable(solver, lp, first, len(sc.pools), sc.policy.stable_tolerance)
    assert second.x is not None and first.objective is not None
    assert primal_violation(lp, second.x) <= 1e-7
    assert second.objective == pytest.approx(lp.objective(second.x))
    floor = objective_floor(first.objective, sc.policy.stable_tolerance)
    assert second.objective >= floor - 1e-9 * max(1.0, abs(first.objective))
    assert second.row_dual is first.row_dual and second.col_dual is first.col_dual
    assert second.extra["first_stage_objective"] == first.objective


def test_moves_reach_every_surface(tmp_path: Path):
    """to_dict / from_dict, the CSV folder, the workbook and the text summary."""
    plan = solve(DATA / "hyperscaler.json", stable=True)
    d = plan.to_dict()
    assert len(d["moves"]) == len(plan.moves) > 0
    assert Plan.from_dict(d).moves.records() == d["moves"]
    write_csv(plan, tmp_path)
    assert (tmp_path / "moves.csv").read_text().splitlines()[0].startswith("segment,kind,pool")
    from openpyxl import load_workbook

    from allocator.plan.workbook import write_plan_workbook

    wb = load_workbook(io.BytesIO(write_plan_workbook(plan)), read_only=True)
    assert wb["Moves"].max_row == len(plan.moves) + 1
    text = summary(plan)
    assert "Largest moves" in text and "stable plan" in text
    assert "Stable plan: a second solve" in text
    frames = pytest.importorskip("pandas") and plan.to_frames()
    assert len(frames["moves"]) == len(plan.moves)


def test_stable_tolerance_is_validated():
    from allocator.errors import ScenarioError

    with pytest.raises(ScenarioError, match="stable_tolerance"):
        Scenario.from_dict({**TWO_OPTIMA, "policy": {"stable_tolerance": -1}})


def test_the_policy_reaches_the_scenario_workbook(tmp_path: Path):
    from allocator.scenario.workbook import read_workbook, write_workbook

    data = {**TWO_OPTIMA, "policy": {"stable": True, "stable_tolerance": 1e-6}}
    write_workbook(data, tmp_path / "s.xlsx")
    sc = Scenario.from_dict(read_workbook(tmp_path / "s.xlsx"))
    assert sc.policy.stable is True and sc.policy.stable_tolerance == 1e-6
    assert sc.pools[0].gpus == [10, 10]  # written from one number
