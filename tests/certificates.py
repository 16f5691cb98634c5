"""The optimality certificate of an LP solution, shared by the tests: primal feasibility,
stationarity, complementary slackness and strong duality, all on the given LP."""

from __future__ import annotations

import numpy as np
import pytest

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import Solution, primal_violation


def assert_optimal(lp: LinearProgram, sol: Solution, tol: float = 1e-7) -> None:
    """``sol`` (duals in the maximisation sign) is an optimal primal-dual pair of ``lp``."""
    assert sol.status is Status.OPTIMAL
    x, y, d = sol.x, sol.row_dual, sol.col_dual
    assert x is not None and y is not None and d is not None
    assert y.size == lp.num_rows and d.size == lp.num_cols
    assert primal_violation(lp, x) <= tol
    scale = max(1.0, float(np.abs(lp.c).max(initial=0.0)))
    # stationarity: c = A'y + d
    assert np.abs(lp.c - lp.A.T @ y - d).max(initial=0.0) <= tol * scale
    # a positive dual sits on an upper bound, a negative one on a lower bound
    act = lp.A @ x
    up, lo = y > 1e-9, y < -1e-9
    assert np.allclose(act[up], lp.row_upper[up], rtol=tol, atol=1e-6)
    assert np.allclose(act[lo], lp.row_lower[lo], rtol=tol, atol=1e-6)
    # the dual objective equals the primal one
    bound = np.where(up, lp.row_upper, np.where(lo, lp.row_lower, 0.0))
    col_b = np.where(d > 1e-9, lp.col_upper, np.where(d < -1e-9, lp.col_lower, 0.0))
    # a reduced cost or dual within the solver's tolerance on an infinite bound is a zero
    # (HiGHS leaves ~1e-9 on columns whose objective coefficient is itself ~1e-9)
    noise = tol * scale
    bound = np.where(np.isinf(bound) & (np.abs(y) <= noise), 0.0, bound)
    col_b = np.where(np.isinf(col_b) & (np.abs(d) <= noise), 0.0, col_b)
    dual_obj = lp.offset + bound @ y + col_b @ d
    assert dual_obj == pytest.approx(sol.objective, rel=tol, abs=tol * scale)
