"""CLP through the bundled cbc binary (solvers/clp.py) and the automatic choice of it."""

from __future__ import annotations

import pytest

from allocator import InfeasibleError, solve
from allocator.errors import Status
from allocator.lp.build import build_lp
from allocator.scenario.generate import generate
from allocator.solvers import clp as clp_module
from allocator.solvers.base import primal_violation, stationarity_error
from allocator.solvers.clp import ClpSolver
from allocator.solvers.registry import HighsSolver

pytestmark = pytest.mark.skipif(not ClpSolver.is_available(), reason="no bundled cbc")


@pytest.fixture(scope="module")
def coupled_lp():
    sc = generate(40, 6, 8, seed=2, compatibility=0.4, stability=0.1)
    return sc, build_lp(sc)


def test_clp_matches_highs(coupled_lp) -> None:
    _, lp = coupled_lp
    ours = ClpSolver().solve(lp)
    ref = HighsSolver(algorithm="simplex").solve(lp)
    assert ours.status is Status.OPTIMAL
    assert ours.objective == pytest.approx(ref.objective, rel=1e-9)
    assert ours.row_dual is not None
    assert stationarity_error(lp, ours.row_dual, ours.col_dual) <= 1e-7  # max-sense duals
    assert primal_violation(lp, ours.x) <= 1e-9


def test_clp_plan_through_solve(coupled_lp) -> None:
    sc, _ = coupled_lp
    plan = solve(sc, solver=ClpSolver())
    ref = solve(sc, algorithm="simplex")
    assert plan.objective == pytest.approx(ref.objective, rel=1e-9)
    assert plan.has_duals and plan.max_violation <= 1e-6
    assert plan.solver.solver == "clp"


def test_clp_infeasible() -> None:
    sc = {
        "periods": [{"label": "P1", "hours": 100}],
        "pools": [
            {
                "id": "h",
                "accelerator": "H100",
                "region": "e",
                "gpus": [10],
                "variable_cost_per_gpu_hour": 1.0,
            }
        ],
        "segments": [
            {
                "id": "c",
                "kind": "cloud",
                "demand": [5000],
                "revenue_per_unit": 4.0,
                "throughput": {"H100": 1.0},
                "contract_min": [2000],
                "contract_hard": True,
            }
        ],
    }
    with pytest.raises(InfeasibleError):
        solve(sc, solver=ClpSolver(), diagnose=False)


def test_algorithm_choice() -> None:
    big = build_lp(generate(60, 8, 24, seed=0, compatibility=0.3, stability=0.1))
    assert HighsSolver().choose(big) == "rowgen"  # auto: the period split (solvers/rowgen.py)
    assert HighsSolver(algorithm="clp").choose(big) == "clp"
    assert HighsSolver(algorithm="ipm").choose(big) == "ipm"  # an explicit choice stands
    assert HighsSolver(options={"presolve": "off"}).choose(big) == "simplex"  # HiGHS tuning


def test_explicit_clp_falls_back_to_highs_when_cbc_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    big = build_lp(generate(60, 8, 24, seed=0, compatibility=0.3, stability=0.1))
    monkeypatch.setattr(clp_module, "cbc_binary", lambda: "/bin/false")
    sol = HighsSolver(algorithm="clp").solve(big)
    assert sol.status is Status.OPTIMAL and sol.solver == "highs" and sol.algorithm == "ipm"
