"""The LP as a feasibility system for HiGHS: built from the LP's rows and bounds,
checked for feasibility, and searched for an irreducible infeasible subsystem (IIS)."""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from allocator.errors import NumericalError
from allocator.lp import LinearProgram
from allocator.solvers.highs_model import new_highs

# the sides of an IIS row or column bound
LOWER = int(highspy.IisBoundStatus.kIisBoundStatusLower)
UPPER = int(highspy.IisBoundStatus.kIisBoundStatusUpper)
BOXED = int(highspy.IisBoundStatus.kIisBoundStatusBoxed)


@dataclass
class _System:
    """A feasibility system L <= A x <= U, l <= x <= u (CSR A)."""

    A: sp.csr_matrix
    rl: np.ndarray
    ru: np.ndarray
    cl: np.ndarray
    cu: np.ndarray


def _highs(sys_: _System, cost: np.ndarray | None = None) -> highspy.Highs:
    """A HiGHS instance holding ``sys_`` (row-wise), minimising ``cost`` (0 if None)."""
    inf = highspy.kHighsInf
    A = sp.csr_matrix(sys_.A)
    m, n = A.shape
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = np.zeros(n) if cost is None else np.asarray(cost, dtype=float)
    lp.col_lower_ = np.clip(sys_.cl, -inf, inf)
    lp.col_upper_ = np.clip(sys_.cu, -inf, inf)
    lp.row_lower_ = np.clip(sys_.rl, -inf, inf)
    lp.row_upper_ = np.clip(sys_.ru, -inf, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    h = new_highs()
    h.passModel(lp)
    return h


def _run(h: highspy.Highs) -> bool:
    """Solve; True if optimal (feasible), False if infeasible; raise otherwise."""
    h.run()
    status = h.getModelStatus()
    if status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kModelEmpty):
        return True
    if status in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    ):
        return False
    raise NumericalError(f"infeasibility analysis: HiGHS stopped with {status.name}")


def _is_feasible(sys_: _System) -> bool:
    """Whether ``sys_`` has a solution."""
    return _run(_highs(sys_))


def _iis(sys_: _System) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows and columns of an IIS with their bound sides (2 lower, 3 upper, 4 both), or
    None when HiGHS cannot find one."""
    h = _highs(sys_)
    # from an elastic LP, then a deletion filter over its rows: irreducible, and fast
    # (the deletion filter over the whole LP took 1.7 s on hyperscaler.json, this 0.04 s)
    strategy = int(highspy.IisStrategy.kIisStrategyFromLp) | int(
        highspy.IisStrategy.kIisStrategyIrreducible
    )
    h.setOptionValue("iis_strategy", strategy)
    if _run(h):
        return None
    status, iis = h.getIis()
    if status == highspy.HighsStatus.kError or not iis.valid_ or len(iis.row_index_) == 0:
        return None
    return (
        np.asarray(iis.row_index_, dtype=np.int64),
        np.asarray(iis.row_bound_, dtype=np.int64),
        np.asarray(iis.col_index_, dtype=np.int64),
        np.asarray(iis.col_bound_, dtype=np.int64),
    )


def _system(lp: LinearProgram) -> _System:
    """The rows and bounds of ``lp`` as a feasibility system (the bounds copied: safe to change)."""
    return _System(
        sp.csr_matrix(lp.A),
        np.asarray(lp.row_lower, dtype=float).copy(),
        np.asarray(lp.row_upper, dtype=float).copy(),
        np.asarray(lp.col_lower, dtype=float).copy(),
        np.asarray(lp.col_upper, dtype=float).copy(),
    )
