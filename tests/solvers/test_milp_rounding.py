"""Whole-unit plans at fleet size (issue 25): the LP relaxation rounded per pool and period
and repaired, its gap to the relaxation's bound, and HiGHS' branch and cut in a child
process that comes back within the time limit plus a grace whatever HiGHS does."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import Status, build_lp, solve
from allocator.lp import LinearProgram
from allocator.lp.program import ColumnIndex
from allocator.scenario.generate import generate_dict
from allocator.solvers import HighsSolver
from allocator.solvers.base import relative_gap
from allocator.solvers.mip_process import GRACE_S, PROCESS_FROM_COLUMNS, mip_in_child
from allocator.solvers.rounding import round_whole_units
from tests.solvers.test_milp import NODES, WHOLE_GPUS, gpus, units_of
from tests.test_properties import fleets


# ------------------------------------------------------------ hand-derived roundings
def test_rounded_whole_gpus_skip_a_unit_that_breaks_demand():
    """WHOLE_GPUS (test_milp.py): 10 GPUs allocated whole; a worth 10 per GPU-hour with
    demand 2.6 GPUs, b worth 4 with demand 10 GPUs; 100 hours.

    LP relaxation: a 2.6, b 7.4 -> 100 x (26 + 29.6) = 5,560 (the bound).
    Rounding: both down (a 2, b 7); the pool held 10 units, 9 are handed out, so one is
    owed; the largest remainder is a's (0.6) but a 3rd GPU for a serves 300 > 260 units
    (its demand row), so the unit goes to b (remainder 0.4): (2, 8) -> 100 x (20 + 32) =
    5,200, which is also the MILP optimum. Gap to the bound: 360 / 5,200 = 6.92 %, so
    with mip_gap 0.1 the rounded plan is the answer (no branch and cut)."""
    plan = solve(WHOLE_GPUS, mip_gap=0.1)
    s = plan.solver
    assert plan.status is Status.OPTIMAL
    assert plan.objective == pytest.approx(5200, rel=1e-9)
    assert (gpus(plan, "a"), gpus(plan, "b")) == (pytest.approx(2), pytest.approx(8))
    assert s.whole_units_from == "rounding" and s.bound_from == "lp_relaxation"
    assert s.bound == pytest.approx(5560) and s.lp_relaxation_objective == pytest.approx(5560)
    assert s.gap == pytest.approx(360 / 5200, rel=1e-9)
    assert plan.max_violation <= 1e-9  # allocator/lp/check.py, from the scenario itself
    assert s.duals_from == "fixed_milp" and plan.has_duals


def test_rounded_nodes_rent_what_the_units_need():
    """NODES (test_milp.py): 14 GPUs in 8-GPU nodes, 4 more rentable at 3 per GPU-hour.
    LP: a 12 GPUs (1.5 nodes), b 6 (0.75 node, 4 of them rented): 14,400.
    Rounding: down to (1, 0) nodes; the pool held 2.25 nodes, so 2 are owed and 1 is
    handed out; the largest remainder is b's (0.75): a 2nd node for b needs 16 GPUs
    <= 14 + 4 rentable (its capacity row with the relaxation's 4 rented), so (1, 1). The
    repair LP rents only the 2 GPUs the nodes need: 100 x (8 x 10 + 8 x 6 - 2 x 3) =
    12,200, the MILP optimum; the pool's price is the rental price, 3. Gap to the
    relaxation: 2,200 / 12,200 = 18.0 %: the answer with mip_gap 0.2."""
    plan = solve(NODES, mip_gap=0.2)
    s = plan.solver
    assert s.whole_units_from == "rounding" and plan.status is Status.OPTIMAL
    assert plan.objective == pytest.approx(12200, rel=1e-9)
    assert plan.pools[0].rented == pytest.approx(2)
    assert plan.pools[0].shadow_price_per_gpu_hour == pytest.approx(3.0)
    assert s.gap == pytest.approx(2200 / 12200, rel=1e-9)
    assert plan.max_violation <= 1e-9


def test_largest_remainder_never_gives_a_pool_more_units_than_the_relaxation():
    """Per (pool, period) the rounded units are floor(sum x*) at most, and each column is
    its relaxed value rounded down or up."""
    d = units_of(8, generate_dict(30, 5, 6, seed=3, policy={"max_change_share": 0.2}))
    lp = build_lp(validate(d))
    relax = HighsSolver().run(lp.relaxed())
    assert relax.x is not None
    xi = round_whole_units(lp, relax.x)
    n = lp.columns.n_x
    ints = np.nonzero(lp.integrality[:n])[0]
    assert np.array_equal(xi[ints], np.round(xi[ints]))
    assert np.all(xi[ints] >= np.floor(relax.x[ints] - 1e-9))
    group = lp.columns.x_pool[ints] * 6 + lp.columns.x_period[ints]
    total_round = np.bincount(group, weights=xi[ints])
    total_relax = np.bincount(group, weights=relax.x[ints])
    assert np.all(total_round <= np.floor(total_relax + 1e-9))


def validate(d: dict):
    from allocator.scenario import Scenario

    return Scenario.model_validate(d)


# ----------------------------------------------- agreement with the exact MILP optimum
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.data())
def test_rounded_plans_are_within_their_gap_of_the_exact_optimum(data, draw):
    """On random small fleets, the plan solve() returns with mip_gap 1 (the rounded plan
    whenever rounding finds one) is feasible (the independent check), whole units, and
    the exact optimum (mip_gap 0) lies between its objective and its bound."""
    for pool in data["pools"]:
        pool["allocation_unit_gpus"] = draw.draw(st.sampled_from([None, 1, 2, 8]))
    exact = solve(data, mip_gap=0)
    quick = solve(data, mip_gap=0.99)
    s = quick.solver
    assert quick.max_violation <= 1e-6, quick.violations
    if not s.integer_columns:
        return
    slack = 1e-7 * max(1.0, abs(exact.objective))
    assert quick.objective <= exact.objective + slack
    assert exact.objective <= s.bound + slack
    assert s.gap == pytest.approx(relative_gap(quick.objective, s.bound), abs=1e-12)
    if s.gap is not None and quick.objective != 0:
        assert (exact.objective - quick.objective) / abs(quick.objective) <= s.gap + 1e-7


# ----------------------------------------------------------- the time limit that holds
def market_split(m: int, n: int, seed: int = 0) -> LinearProgram:
    """Cornuéjols-Dawande market split: sum_j a_ij x_j = floor(sum_j a_ij / 2), x binary,
    a_ij in [0, 99]: tiny, and out of reach of branch and cut at m = 5, n = 50."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m, n)).astype(float)
    rhs = np.floor(a.sum(axis=1) / 2)
    e = np.zeros(0, dtype=np.int64)
    cols = ColumnIndex(
        np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
        np.zeros(n, np.int64), np.ones(n), e, e, e, e, [(0, "full")],
    )  # fmt: skip
    return LinearProgram(
        rng.normal(size=n), sp.csr_matrix(a), rhs, rhs, np.zeros(n), np.ones(n), cols, [],
        integrality=np.ones(n, dtype=bool),
    )  # fmt: skip


def test_a_milp_that_cannot_finish_comes_back_within_the_limit_and_grace():
    """The child runs HiGHS without its own time limit (as when HiGHS sits in a step that
    does not check it): the parent kills it at the limit plus the grace and answers with
    what it has; the child is gone. The bound limit + grace is the spec, not a speed."""
    lp = market_split(5, 50)
    limit = 2.0
    before = _children()
    t0 = time.monotonic()
    sol = mip_in_child(lp, limit, None, {"threads": 1}, highs_time_limit=False)
    elapsed = time.monotonic() - t0
    assert elapsed <= limit + GRACE_S + 1.0  # + 1 s: the parent's own kill and clean-up
    assert sol.raw_status == "killed at the time limit"
    assert sol.status in (Status.TIME_LIMIT, Status.TIME_LIMIT_NO_SOLUTION)
    if sol.x is not None:  # a plan found before the kill is feasible
        assert np.allclose(lp.A @ sol.x, lp.row_lower)
    assert _children() <= before  # the MILP's child is gone (other tests' may remain)


def _children() -> set[str]:
    """Pids of this process's children still running (not zombies)."""
    me = str(os.getpid())
    out: set[str] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            out.add(pid)
    return out


def test_a_fleet_milp_under_a_time_limit_returns_the_rounded_plan_or_better():
    """A fleet MILP big enough for the child process, with a limit: the answer is
    feasible whole nodes, its gap measured against the bound it names."""
    d = units_of(8, generate_dict(40, 6, 12, seed=2, policy={"max_change_share": 0.1}))
    assert build_lp(validate(d)).num_cols >= PROCESS_FROM_COLUMNS
    plan = solve(d, time_limit=20, mip_gap=0)
    s = plan.solver
    assert s.whole_units_from in ("rounding", "mip")
    assert s.bound_from in ("lp_relaxation", "mip")
    assert plan.max_violation <= 1e-6
    assert all(a.gpus % 8 == pytest.approx(0, abs=1e-9) for a in plan.allocations)
    assert plan.objective <= s.bound + 1e-9 * abs(s.bound)
    assert s.gap == pytest.approx(relative_gap(plan.objective, s.bound), abs=1e-12)


def test_a_milp_solved_from_a_start_hands_back_its_own_values():
    """A random fleet (found by test_purchase_units' agreement with CBC) where HiGHS 1.16,
    given the rounded plan as its start, reported the optimum's objective (207.22, CBC's
    too) with the start's values (100.34): the adapter sees the two disagree and solves
    again without the start."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "data" / "mip-start-values.json").read_text())
    lp = build_lp(validate(data))
    plan = solve(data, mip_gap=0)
    assert plan.objective == pytest.approx(207.22453944581383, rel=1e-9)
    assert plan.solver.whole_units_from == "mip"
    relax = HighsSolver().run(lp.relaxed())
    assert relax.x is not None
    start = round_whole_units(lp, relax.x)
    sol = HighsSolver(mip_gap=0).run_mip(lp, None, start)
    assert sol.x is not None and sol.objective is not None
    assert lp.objective(sol.x) == pytest.approx(sol.objective, rel=1e-9)
