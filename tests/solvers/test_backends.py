"""The PuLP backend solves the very model the HiGHS path solves (built from the same
LinearProgram arrays) and must agree with it: objective, plan, and shadow prices where the
dual is unique; where it is not, both must be valid optimal duals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings

from allocator import LinearProgram, Plan, SolverUnavailableError, Status, build_lp, solve
from allocator.cli import main
from allocator.cli.common import EXIT_USAGE
from allocator.lp import ColumnIndex
from allocator.scenario.load import as_scenario
from allocator.solvers import HighsSolver
from allocator.solvers.base import stationarity_error
from allocator.solvers.pulp import PulpSolver, available_solvers, map_pulp_status, read_cbc_log_gap
from allocator.solvers.registry import make_solver
from tests.conftest import DATA
from tests.test_properties import fleets

# fleets hypothesis found where CBC's primal tolerance buys something (primal_tolerance_value)
SOLVER_DATA = Path(__file__).parent / "data"

AVAILABLE = available_solvers()
PULP_SOLVERS = [s for s in ("CBC", "HiGHS") if s in AVAILABLE]
needs_cbc = pytest.mark.skipif("CBC" not in AVAILABLE, reason="PuLP's CBC is not available")
REL = 1e-6


def scale_of(lp: LinearProgram) -> float:
    """The size of the objective's coefficients: solvers' tolerances (about 1e-7) are
    absolute, so duals and prices are compared to 1e-6 of this (at least 1e-6)."""
    return max(1.0, float(np.abs(lp.c).max(initial=0)))


def valid_duals(lp: LinearProgram, x: np.ndarray, y: np.ndarray, d: np.ndarray):
    """(x, y, d) is an optimal primal-dual pair of the maximisation, within solver
    tolerances: stationarity c = A'y + d; every dual above the noise sits on the bound its
    sign says (a positive row dual on a finite upper bound that is met, a negative one on a
    lower bound; the same for reduced costs and column bounds). Together with a feasible x
    that is complementary slackness, hence strong duality."""
    tol = 1e-6 * scale_of(lp)
    assert stationarity_error(lp, y, d) <= 1e-7
    act = lp.A @ x
    for val, lo, hi, dual in (
        (act, lp.row_lower, lp.row_upper, y),
        (x, lp.col_lower, lp.col_upper, d),
    ):
        up, down = dual > tol, dual < -tol
        assert np.all(np.isfinite(hi[up])) and np.all(np.isfinite(lo[down]))
        assert np.allclose(val[up], hi[up], rtol=1e-7, atol=1e-6)
        assert np.allclose(val[down], lo[down], rtol=1e-7, atol=1e-6)


def objectives_agree(lp: LinearProgram, a, b) -> None:
    """To 1e-6 relative, and near zero to 1e-7 of the size of the objective's terms or of
    its largest coefficient: a row met to the solvers' primal tolerance (1e-7 GPUs) is worth
    up to 1e-7 of a GPU's value (seen: a pool of 0.001 GPUs with a 0.99999 segment share;
    HiGHS 0.010499895, CBC 0.0105, the share row 7.5e-9 GPUs over)."""
    terms = 1.0 + float(np.abs(lp.c) @ np.abs(a.x)) + abs(lp.offset)
    near_zero = 1e-7 * max(terms, scale_of(lp))
    assert b.objective == pytest.approx(a.objective, rel=REL, abs=near_zero)


def assert_prices_agree_or_kink(lp: LinearProgram, a, b) -> int:
    """Pool prices (duals of the pool-capacity rows) of two optimal solutions agree,
    except where the dual is not unique: there the optimum has a kink in that capacity
    (its right derivative ``up`` is below its left derivative ``down``, measured by
    re-solving with the capacity moved by +-eps) and both prices lie between the two.
    Returns how many rows differed."""
    cap = lp.block("pool-capacity")
    assert cap is not None
    differ = 0
    floor = 1e-6 * scale_of(lp)
    for row in range(cap.start, cap.stop):
        pa, pb = a.row_dual[row], b.row_dual[row]
        if pb == pytest.approx(pa, rel=REL, abs=floor):
            continue
        differ += 1
        eps = max(1e-3, 1e-5 * abs(lp.row_upper[row]))
        slopes = []
        for sign in (+1, -1):
            lp.row_upper[row] += sign * eps
            s = HighsSolver().solve(lp)
            lp.row_upper[row] -= sign * eps
            obj = s.objective if s.status is Status.OPTIMAL else -np.inf
            slopes.append((obj - a.objective) * sign / eps)
        up, down = slopes
        tol = max(floor, 1e-6 * max(abs(pa), abs(pb)))
        assert down - up > tol, (row, pa, pb, up, down)  # not unique here
        for price in (pa, pb):
            assert up - tol <= price <= down + tol, (row, price, up, down)
    return differ


# --------------------------------------------------------------------- known duals
@pytest.mark.parametrize("name", PULP_SOLVERS)
def test_tiny_through_pulp_gives_the_hand_derived_plan_and_prices(tiny_scenario, name):
    plan = solve(tiny_scenario, backend="pulp", solver=name)
    assert isinstance(plan, Plan) and plan.status is Status.OPTIMAL
    assert plan.solver.backend == "pulp" and plan.solver.duals_from == "lp"
    assert plan.objective == pytest.approx(30950, rel=1e-12)
    assert plan.pool_prices == {
        "h100": {"P1": pytest.approx(3.0), "P2": pytest.approx(4.5)},
        "b200": {"P1": pytest.approx(10.0), "P2": pytest.approx(14.5)},
    }
    duals = {b.label: b.dual for b in plan.binding}
    assert duals["segment-contract[cloud,P2]"] == pytest.approx(-1.5)  # a floor: negative
    assert duals["segment-demand[chat,P1]"] == pytest.approx(0.2)
    assert plan.max_violation <= 1e-9 and plan.warnings == []


def one_row_lp(sense_upper: bool) -> LinearProgram:
    """max 2 x  s.t.  x <= 1 (or -x >= -1): the dual is +2 (or -2) in maximisation sign."""
    import scipy.sparse as sp

    e = np.zeros(0, dtype=np.int64)
    cols = ColumnIndex(
        np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64),
        np.zeros(1, np.int64), np.ones(1), e, e, e, e, [(0, "full")],
    )  # fmt: skip
    a = 1.0 if sense_upper else -1.0
    lo, hi = (-np.inf, 1.0) if sense_upper else (-1.0, np.inf)
    return LinearProgram(
        np.array([2.0]), sp.csr_matrix([[a]]), np.array([lo]), np.array([hi]),
        np.zeros(1), np.array([np.inf]), cols, [],
    )  # fmt: skip


@pytest.mark.parametrize("name", PULP_SOLVERS)
@pytest.mark.parametrize("upper", [True, False])
def test_dual_sign_is_normalised_for_each_pulp_solver(name, upper):
    """SOLVER_NOTES: on maximisation problems CBC fills .pi in the max sign and PuLP +
    HiGHS in the opposite one; the adapter builds the minimisation form, where both agree,
    and negates. d objective / d rhs is +2 for x <= 1 and -2 for -x >= -1."""
    lp = one_row_lp(upper)
    sol = PulpSolver(name).solve(lp)
    assert sol.objective == pytest.approx(2.0)
    assert sol.row_dual == pytest.approx([2.0 if upper else -2.0])
    assert sol.col_dual == pytest.approx([0.0], abs=1e-12)
    assert HighsSolver().solve(lp).row_dual == pytest.approx(sol.row_dual)


def test_stationarity_check_catches_a_flipped_sign():
    lp = one_row_lp(True)
    y, d = np.array([2.0]), np.array([0.0])
    assert stationarity_error(lp, y, d) == 0.0
    assert stationarity_error(lp, -y, -d) == pytest.approx(2.0)


# ------------------------------------------------------------------------ examples
@needs_cbc
def test_examples_agree_between_highs_and_cbc(example_scenario):
    """Same objective; CBC's duals are optimal duals; pool prices equal wherever they are
    unique, and where they differ the optimum has a kink there (left and right
    derivatives in that capacity differ) and both prices lie between them."""
    sc = example_scenario
    lp = build_lp(sc)
    highs = solve(sc)
    cbc = solve(sc, backend="pulp", solver="CBC")
    assert cbc.objective == pytest.approx(highs.objective, rel=REL)
    assert cbc.max_violation <= 1e-6 and cbc.warnings == []
    h, c = HighsSolver().solve(lp), PulpSolver("CBC").solve(lp)
    valid_duals(lp, c.x, c.row_dual, c.col_dual)
    assert_prices_agree_or_kink(lp, h, c)


@needs_cbc
def test_cli_solves_with_cbc(capsys):
    assert main(["solve", str(DATA / "tiny.json"), "--backend", "pulp", "--solver", "cbc"]) == 0
    out = capsys.readouterr().out
    assert "pulp:PULP_CBC_CMD/lp" in out and "Top opportunity costs" in out


# --------------------------------------------------------------- random small fleets
# Found by hypothesis with per-period economics: one period of 717 h, LTV weight 1e-7, a
# cloud segment whose tiers offer 2,000 units at price 0 with LTV 0.001 per unit. Each unit
# adds 1e-10 to the objective: below CBC's default dual (reduced-cost) tolerance of 1e-7,
# so CBC leaves the tier unsold and stops 2,000 x 1e-10 = 2e-7 below HiGHS' optimum
# (1.3522e-4 against 1.3502e-4: 1.5e-3 relative). With CBC's primalT/dualT at 1e-9 the two
# agree to 1e-13.
TINY_REDUCED_COSTS = {
    "periods": [{"label": "t0", "hours": 717.2577146920087}],
    "discount_rate": 0.060578127974943566,
    "pools": [
        {
            "id": "p0",
            "accelerator": "A",
            "region": "r1",
            "gpus": [14.68594640431209],
            "variable_cost_per_gpu_hour": 0.0,
        },
        {
            "id": "p1",
            "accelerator": "B",
            "region": "r1",
            "gpus": [13.942330798129063],
            "variable_cost_per_gpu_hour": 0.0,
        },
    ],
    "segments": [
        {
            "id": "s0",
            "kind": "first_party",
            "demand": [449.90732009753265],
            "revenue_per_unit": 0.0,
            "ltv_per_unit": 3.0009999999999994,
            "throughput": {"B": 2.326770927093044},
            "churn_cost_per_unit": 0.0,
            "contract_min": [0.0],
            "shortfall_penalty_per_unit": 0.0,
        },
        {
            "id": "s1",
            "kind": "cloud",
            "ltv_per_unit": 0.001,
            "throughput": {"A": 1.0},
            "churn_cost_per_unit": 0.0,
            "tiers": [{"units": [0.0], "price": 0.0}],
        },
        {
            "id": "s2",
            "kind": "cloud",
            "ltv_per_unit": 0.001,
            "throughput": {"A": 1.0},
            "churn_cost_per_unit": 0.0,
            "tiers": [
                {"units": [0.0], "price": 0.0},
                {"units": [1999.9999999999998], "price": 0.0},
            ],
        },
    ],
    "policy": {
        "headroom": 1.401298464324817e-45,
        "ltv_weight": 1e-07,
        "max_segment_share": 0.7903233308924273,
    },
}


def primal_tolerance_value(lp: LinearProgram, h, c) -> float:
    """What CBC's primal tolerance can be worth: CBC meets rows and bounds to 1e-7
    (primalT), and where a GPU serves hours x throughput = 1e4 units a row met 1e-7 short
    serves 1e-3 units of demand from a pool with no GPUs (found: 0 against -2e-4, served
    for free from an empty pool). Relaxing the rows by delta raises the optimum by at most
    sum |y| delta at an optimal dual y (HiGHS'): y stays dual feasible for the relaxed LP
    and its dual objective grows by that much."""
    ax = lp.A @ c.x
    rows = np.maximum(ax - lp.row_upper, 0.0) + np.maximum(lp.row_lower - ax, 0.0)
    cols = np.maximum(c.x - lp.col_upper, 0.0) + np.maximum(lp.col_lower - c.x, 0.0)
    value = float(np.abs(h.row_dual) @ rows)
    if h.col_dual is not None:
        value += float(np.abs(h.col_dual) @ cols)
    return value


def objectives_agree_to_reduced_cost_tolerance(
    lp: LinearProgram, h, c, primal_value: float = 0.0
) -> None:
    """HiGHS' and CBC's objectives to 1e-6 relative, or to what their dual (reduced-cost)
    tolerances allow: both treat a reduced cost below 1e-7 as zero, so each may leave a
    column whose whole objective coefficient is smaller than that at its bound, and an
    optimum may then be short by up to 1e-7 per unit of that column: 1e-7 x sum |x| over
    both solutions. (Objective terms near zero: 1e-7 of their size, as objectives_agree.)
    CBC may be above by ``primal_value`` more (primal_tolerance_value)."""
    terms = 1.0 + float(np.abs(lp.c) @ np.abs(h.x)) + abs(lp.offset)
    size = float(np.abs(h.x).sum() + np.abs(c.x).sum())
    tol = 1e-7 * (terms + size)
    if c.objective > h.objective:
        tol += primal_value
    assert c.objective == pytest.approx(h.objective, rel=REL, abs=tol)


@needs_cbc
def test_cbc_stops_short_by_its_dual_tolerance_on_tiny_reduced_costs():
    lp = build_lp(as_scenario(TINY_REDUCED_COSTS))
    h, c = HighsSolver().solve(lp), PulpSolver("CBC").solve(lp)
    assert h.objective == pytest.approx(1.3522e-4, rel=1e-4)
    assert h.objective - c.objective == pytest.approx(2e-7, rel=1e-3)
    objectives_agree_to_reduced_cost_tolerance(lp, h, c)
    tight = PulpSolver("CBC", options={"options": ["primalT 1e-9", "dualT 1e-9"]}).solve(lp)
    assert tight.objective == pytest.approx(h.objective, rel=1e-9)


@needs_cbc
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
@example(TINY_REDUCED_COSTS)
@example(json.loads((SOLVER_DATA / "cbc-primal-tolerance-objective.json").read_text()))
@example(json.loads((SOLVER_DATA / "cbc-primal-tolerance-price.json").read_text()))
def test_random_fleets_agree_between_highs_and_cbc(data):
    """Objectives agree to 1e-6, or within the solvers' reduced-cost tolerance (see
    objectives_agree_to_reduced_cost_tolerance; per-period economics, tiers and
    subscriptions make columns with tiny objective coefficients, e.g. TINY_REDUCED_COSTS);
    CBC's duals are optimal duals (stationarity, dual feasibility, complementary
    slackness); pool prices agree wherever they are unique."""
    lp = build_lp(as_scenario(data))
    h = HighsSolver().solve(lp)
    c = PulpSolver("CBC").solve(lp)
    assert h.status is Status.OPTIMAL and c.status is Status.OPTIMAL
    # a fleet whose whole optimum is below 1e-4 (money of 1e-7 per column) sits inside the
    # solvers' own tolerances (CBC's 1e-7 on reduced costs): seen once, 0 against -1.2e-7
    assume(abs(h.objective) >= 1e-4 or h.objective == 0)
    primal_value = primal_tolerance_value(lp, h, c)
    objectives_agree_to_reduced_cost_tolerance(lp, h, c, primal_value)
    assert c.row_dual is not None and c.col_dual is not None, c.duals_note
    valid_duals(lp, c.x, c.row_dual, c.col_dual)
    if primal_value <= 1e-7 * max(1.0, abs(h.objective)):
        # CBC's prices are those of its own point; where its primal tolerance bought
        # something, that point is off the LP's feasible set and its prices need not be
        # the LP's (found: 0 on a pool whose capacity is worth 0.2 per GPU-hour)
        assert_prices_agree_or_kink(lp, h, c)


# ------------------------------------------------------------ choosing a solver
def test_unknown_or_missing_solver_lists_the_available_ones():
    with pytest.raises(SolverUnavailableError, match="available: ") as err:
        solve(DATA / "tiny.json", backend="pulp", solver="NO-SUCH-SOLVER")
    assert "NO-SUCH-SOLVER" in str(err.value)
    assert err.value.available == AVAILABLE
    if "GUROBI" not in AVAILABLE:
        with pytest.raises(SolverUnavailableError, match=r"'GUROBI' is not available here"):
            make_solver("pulp", "GUROBI")


def test_backend_options_are_checked():
    with pytest.raises(ValueError, match="backend must be one of highs, pulp"):
        make_solver("gurobi")
    with pytest.raises(ValueError, match="backend='pulp'"):
        make_solver("highs", "CBC")
    with pytest.raises(ValueError, match="applies to the 'highs' backend only"):
        make_solver("pulp", "CBC", algorithm="ipm")
    with pytest.raises(ValueError, match="mip_gap"):
        make_solver("highs", mip_gap=1.5)
    assert isinstance(make_solver("highs", "HiGHS"), HighsSolver)


def test_cli_unavailable_solver_is_a_usage_error(capsys):
    code = main(["solve", str(DATA / "tiny.json"), "--backend", "pulp", "--solver", "nope"])
    assert code == EXIT_USAGE
    assert "available: " in capsys.readouterr().err


# ------------------------------------------------------------- status mapping
@pytest.mark.parametrize(
    ("status", "sol_status", "time_limited", "expected"),
    [
        (1, 1, False, Status.OPTIMAL),
        (1, 2, True, Status.TIME_LIMIT),  # CBC "Stopped on time - objective value …"
        (1, 2, False, Status.TIME_LIMIT),  # PuLP + HiGHS: any limit reads "Optimal"
        (0, 0, True, Status.TIME_LIMIT_NO_SOLUTION),  # CBC "Stopped on time" without one
        (0, 0, False, Status.NUMERICAL_ERROR),
        (-1, -1, False, Status.INFEASIBLE),
        (-1, 0, False, Status.INFEASIBLE),  # CBC "Integer infeasible"
        (-2, -2, False, Status.UNBOUNDED),
        (-3, 0, False, Status.NUMERICAL_ERROR),
    ],
)
def test_pulp_status_mapping(status, sol_status, time_limited, expected):
    assert map_pulp_status(status, sol_status, time_limited) is expected


CBC_STOPPED_LOG = """\
Cbc0020I Exiting on maximum time
Cbc0005I Partial search - best objective -46190803 (best possible -46317424), took 9058 \
iterations and 192 nodes (2.99 seconds)

Result - Stopped on time limit

Objective value:                -46190803.03881480
Lower bound:                    -46317424.038
Gap:                            0.00
Enumerated nodes:               192
"""


def test_cbc_log_gives_the_bound_of_a_stopped_search(tmp_path):
    log = tmp_path / "cbc.log"
    log.write_text(CBC_STOPPED_LOG)
    assert read_cbc_log_gap(str(log)) == pytest.approx(46317424.038 - 46190803.03881480)
    log.write_text("Result - Optimal solution found\n\nObjective value: 12\n")
    assert read_cbc_log_gap(str(log)) is None
    assert read_cbc_log_gap(str(tmp_path / "missing.log")) is None


@needs_cbc
def test_duals_that_fail_the_check_are_dropped_and_the_plan_says_so(tiny_scenario, monkeypatch):
    import allocator.solvers.pulp as pulp_adapter

    monkeypatch.setattr(pulp_adapter, "DUAL_TOL", -1.0)  # every dual vector now "fails"
    plan = solve(tiny_scenario, backend="pulp", solver="CBC")
    assert plan.objective == pytest.approx(30950)
    assert not plan.has_duals and plan.solver.duals_from == "none"
    assert plan.pool_prices == {"h100": {"P1": None, "P2": None}, "b200": {"P1": None, "P2": None}}
    assert any("optimality check" in w for w in plan.warnings)
