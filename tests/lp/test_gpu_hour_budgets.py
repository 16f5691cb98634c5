"""GPU-hour budgets over windows of periods (``policy.gpu_hour_budgets``, rows
``gpu-hour-budget``): hand-solved instances, validation, the period split's lazy rows
(certificates on random fleets), CBC agreeing.

Hand-solved fleet: two periods of 100 h, pool ``h100`` of 10 GPUs at no variable cost.
``app`` (first party) earns 3 $ per GPU-hour and wants 10 GPUs in P1, 5 in P2; ``lab``
(R&D) earns 1 $ per GPU-hour and would take any GPU. Without a budget: app 10 + 5 GPUs,
lab the 5 spare GPUs of P2: 3,000 + 1,500 + 500 = 5,000 $, lab 500 GPU-hours.

* lab ≥ 800 GPU-hours over P1–P2: 500 come free in P2, the other 300 displace app in P1
  (3 → 1 $): 5,000 − 600 = 4,400 $; one more budgeted hour costs 2 $: dual −2.
* lab ≤ 200 GPU-hours: lab gets 2 GPUs of P2's spare 5: 5,000 − 300 = 4,700 $; one more
  allowed hour earns 1 $: dual +1.
* rnd kind ≥ 800 GPU-hours in P2 alone: lab 8 GPUs in P2, app 2: 3,000 + 600 + 800 =
  4,400 $, dual −2.
"""

from __future__ import annotations

import copy
import json
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from allocator import Status, build_lp, solve
from allocator.cli import main
from allocator.errors import ScenarioError
from allocator.scenario import Scenario
from allocator.scenario.generate import generate
from allocator.scenario.load import as_scenario
from allocator.solvers import HighsSolver
from allocator.solvers.pulp import PulpSolver, available_solvers
from allocator.solvers.rowgen import RowGenerationSolver, lazy_mask, split_by_period
from tests.certificates import assert_optimal
from tests.test_properties import fleets


def amount(hi: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(1.0, hi))


BASE = {
    "periods": [{"label": "P1", "hours": 100}, {"label": "P2", "hours": 100}],
    "pools": [
        {
            "id": "h100",
            "accelerator": "H100",
            "region": "east",
            "gpus": [10, 10],
            "variable_cost_per_gpu_hour": 0.0,
        },
    ],
    "segments": [
        {
            "id": "app",
            "kind": "first_party",
            "demand": [1000, 500],
            "revenue_per_unit": 3.0,
            "throughput": {"H100": 1},
        },
        {
            "id": "lab",
            "kind": "rnd",
            "demand": [1e6, 1e6],
            "revenue_per_unit": 1.0,
            "throughput": {"H100": 1},
        },
    ],
}


def with_budgets(*budgets):
    d = copy.deepcopy(BASE)
    d["policy"] = {"gpu_hour_budgets": list(budgets)}
    return d


def lab_hours(plan):
    return sum(a.gpu_hours for a in plan.allocations if a.segment == "lab")


def budget_row(plan):
    (row,) = [b for b in plan.binding if b.constraint == "gpu-hour-budget"]
    return row


def test_no_budget():
    plan = solve(BASE)
    assert plan.objective == pytest.approx(5_000)
    assert lab_hours(plan) == pytest.approx(500)


@pytest.mark.parametrize("algorithm", ["auto", "simplex"])
def test_floor_over_the_window_and_its_dual(algorithm):
    plan = solve(
        with_budgets({"id": "lab-q", "segment": "lab", "min_gpu_hours": 800}), algorithm=algorithm
    )
    assert plan.objective == pytest.approx(4_400)
    assert lab_hours(plan) == pytest.approx(800)
    row = budget_row(plan)
    assert row.key == {"budget": "lab-q"} and row.bound == "lower"
    assert row.dual == pytest.approx(-2)
    assert plan.max_violation <= 1e-9


def test_cap_and_its_dual():
    plan = solve(with_budgets({"id": "cap", "segment": "lab", "max_gpu_hours": 200}))
    assert plan.objective == pytest.approx(4_700)
    assert lab_hours(plan) == pytest.approx(200)
    assert budget_row(plan).dual == pytest.approx(1)


def test_kind_budget_in_a_window_of_one_period():
    plan = solve(
        with_budgets(
            {
                "id": "rnd-p2",
                "kind": "rnd",
                "accelerator": "H100",
                "from_period": "P2",
                "to_period": "P2",
                "min_gpu_hours": 800,
            }
        )
    )
    assert plan.objective == pytest.approx(4_400)
    p2 = sum(a.gpu_hours for a in plan.allocations if a.segment == "lab" and a.period == "P2")
    assert p2 == pytest.approx(800)
    assert budget_row(plan).dual == pytest.approx(-2)


def test_unreachable_budget_is_infeasible():
    from allocator.errors import InfeasibleError

    with pytest.raises(InfeasibleError):
        solve(with_budgets({"id": "x", "segment": "lab", "min_gpu_hours": 2001}))


@pytest.mark.parametrize(
    "budget, path",
    [
        ({"id": "b", "min_gpu_hours": 1}, "policy.gpu_hour_budgets[0]"),
        (
            {"id": "b", "segment": "lab", "kind": "rnd", "min_gpu_hours": 1},
            "policy.gpu_hour_budgets[0]",
        ),
        ({"id": "b", "segment": "nope", "min_gpu_hours": 1}, "policy.gpu_hour_budgets[0].segment"),
        ({"id": "b", "segment": "lab"}, "policy.gpu_hour_budgets[0]"),
        (
            {"id": "b", "segment": "lab", "accelerator": "TPU", "min_gpu_hours": 1},
            "policy.gpu_hour_budgets[0].accelerator",
        ),
        (
            {"id": "b", "segment": "lab", "from_period": "P9", "min_gpu_hours": 1},
            "policy.gpu_hour_budgets[0].from_period",
        ),
        (
            {
                "id": "b",
                "segment": "lab",
                "from_period": "P2",
                "to_period": "P1",
                "min_gpu_hours": 1,
            },
            "policy.gpu_hour_budgets[0].to_period",
        ),
        (
            {"id": "b", "segment": "lab", "min_gpu_hours": 2, "max_gpu_hours": 1},
            "policy.gpu_hour_budgets[0].min_gpu_hours",
        ),
    ],
)
def test_validation_names_the_field(budget, path):
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_dict(with_budgets(budget))
    assert path in [i.path for i in exc.value.issues]


def test_cli_and_rest_report_the_budget_dual(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from api.main import create_app

    data = with_budgets({"id": "lab-q", "segment": "lab", "min_gpu_hours": 800})
    f = tmp_path / "s.json"
    f.write_text(json.dumps(data))
    assert main(["solve", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = [b for b in out["binding"] if b["constraint"] == "gpu-hour-budget"]
    assert row["dual"] == pytest.approx(-2)
    with TestClient(create_app()) as client:
        r = client.post("/v1/solve", json=data)
    assert r.status_code == 200, r.text
    (row,) = [b for b in r.json()["binding"] if b["constraint"] == "gpu-hour-budget"]
    assert row["dual"] == pytest.approx(-2)


# ---------------------------------------------------- the period split keeps the budgets lazy
def budgeted_fleet(segments=200, pools=8, periods=13, seed=5):
    sc = generate(segments, pools, periods, seed=seed)
    d = sc.to_dict()
    hours = sum(p["hours"] for p in d["periods"])
    cap = sum(sum(p["gpus"]) for p in d["pools"]) / periods
    d["policy"]["gpu_hour_budgets"] = [
        {
            "id": "rnd-h1",
            "kind": "rnd",
            "to_period": d["periods"][periods // 2]["label"],
            "min_gpu_hours": 0.1 * cap * hours / 2,
        },
        {"id": "cloud-cap", "kind": "cloud", "max_gpu_hours": 0.2 * cap * hours},
    ]
    return as_scenario(d)


def test_split_stays_and_is_exact_with_budgets():
    lp = build_lp(budgeted_fleet(60, 5, 6))
    assert split_by_period(lp, lazy_mask(lp)) is not None  # budgets are lazy, periods split
    sol = RowGenerationSolver().solve(lp)
    whole = HighsSolver(algorithm="simplex").solve(lp)
    assert sol.objective == pytest.approx(whole.objective, rel=1e-9)
    assert sol.algorithm == "row-generation" and sol.extra["periods"] == 6
    assert_optimal(lp, sol)


def test_lazy_budgets_measured_against_the_whole_lp():
    """The choice (budget rows lazy in the split, not the split turned off) measured:
    on 200 segments × 8 pools × 13 periods the split with lazy budgets is faster than one
    dual simplex on the whole LP (printed with -s)."""
    lp = build_lp(budgeted_fleet())
    t0 = time.perf_counter()
    sol = RowGenerationSolver().solve(lp)
    t_split = time.perf_counter() - t0
    t0 = time.perf_counter()
    whole = HighsSolver(algorithm="simplex").solve(lp)
    t_whole = time.perf_counter() - t0
    print(
        f"\n{lp.num_cols} columns: split with lazy budgets {t_split:.2f} s, whole {t_whole:.2f} s"
    )
    assert sol.objective == pytest.approx(whole.objective, rel=1e-8)


# ----------------------------------------------------------------- random fleets
@st.composite
def budgeted_fleets(draw):
    data = draw(fleets())
    T = len(data["periods"])
    labels = [p["label"] for p in data["periods"]]
    budgets = []
    for j in range(draw(st.integers(1, 2))):
        lo = draw(st.integers(0, T - 1))
        hi = draw(st.integers(lo, T - 1))
        b = {"id": f"b{j}", "from_period": labels[lo], "to_period": labels[hi]}
        if draw(st.booleans()):
            b["segment"] = draw(st.sampled_from([s["id"] for s in data["segments"]]))
        else:
            b["kind"] = draw(st.sampled_from(sorted({s["kind"] for s in data["segments"]})))
        if draw(st.booleans()):
            # 0, or from 1 GPU-hour up: a budget of 1e-3 GPU-hours is 1e-6 GPUs over a
            # period, inside the solvers' feasibility tolerances (one solver then calls it
            # feasible, the other infeasible: seen once)
            b["max_gpu_hours"] = draw(amount(5000))
        else:
            b["min_gpu_hours"] = draw(amount(500))
        budgets.append(b)
    data["policy"]["gpu_hour_budgets"] = budgets
    return data


BUDGETED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@BUDGETED
@given(budgeted_fleets())
def test_random_budgeted_fleets_default_solver_certificate(data):
    lp = build_lp(as_scenario(data))
    sol = RowGenerationSolver().solve(lp)
    assume(sol.status is not Status.INFEASIBLE)
    assert_optimal(lp, sol, tol=1e-6)
    whole = HighsSolver(algorithm="simplex").solve(lp)
    assert sol.objective == pytest.approx(whole.objective, rel=1e-7, abs=1e-6)
    assert solve(data).max_violation <= 1e-6


@pytest.mark.skipif("CBC" not in available_solvers(), reason="PuLP's CBC is not available")
@BUDGETED
@given(budgeted_fleets())
def test_random_budgeted_fleets_agree_with_cbc(data):
    lp = build_lp(as_scenario(data))
    h = HighsSolver().solve(lp)
    assume(h.status is Status.OPTIMAL and (abs(h.objective) >= 1e-4 or h.objective == 0))
    c = PulpSolver("CBC").solve(lp)
    assert c.status is Status.OPTIMAL
    scale = max(1.0, float(abs(lp.c).max()))
    assert c.objective == pytest.approx(h.objective, rel=1e-6, abs=1e-6 * scale)


def test_partitioned_solve_splits_the_budgets():
    from allocator.workflows.partition import partitioned_solve

    d = budgeted_fleet(40, 4, 4).to_dict()
    seg = d["segments"][0]["id"]
    d["policy"]["gpu_hour_budgets"].append({"id": "one", "segment": seg, "max_gpu_hours": 1.0})
    merged = partitioned_solve(as_scenario(d), 2)
    whole = solve(d)
    assert merged.objective <= whole.objective * (1 + 1e-9) + 1e-6
    assert merged.plan.max_violation <= 1e-6, merged.plan.violations
