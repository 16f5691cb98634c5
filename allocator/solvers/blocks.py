"""Re-solving only the periods a change touches: what a planning session
(:class:`~allocator.workflows.planner.Planner`) does after a what-if that changes one
period's numbers.

The whole LP is one LP per period joined by the lazy rows (stability, GPU-hour budgets;
solvers/rowgen.py). Keep its optimum: the plan, the duals, the reduced costs and the basis.

* **The window.** The periods a change touches, and those joined to them by lazy rows in
  the model with a non-zero dual, form a window of consecutive periods. It is solved as
  one LP with every other column fixed at its value: its periods' rows, and the lazy rows
  in the model touching it (a row across its edge keeps the outside part as a constant in
  its bounds), by dual simplex from the kept basis restricted to the window (made square:
  see ``_square``), adding the lazy rows touching the window that its new plan violates,
  as the cold solve does.
* **The certificate.** The window's LP is optimal for its columns; the rows outside it
  keep their duals, and the only reduced costs its new duals change are those of the
  outside columns in the lazy rows across its edge. If each keeps the sign its bound
  status asks (zero for a basic column), the plan and duals are primal feasible, dual
  feasible and complementary on the whole LP: optimal, shadow prices included.
  Otherwise the window widens to the periods of the columns that fail, and is solved
  again.
* When the window passes ``max_share`` of the periods (a change in every period), or
  is not optimal (with the outside fixed it can be infeasible where the whole LP is not),
  ``resolve`` returns None and the caller solves the whole kept model instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.program import spans
from allocator.solvers.base import MESSAGES, Solution
from allocator.solvers.highs_model import highs_lp, highspy, run_highs
from allocator.solvers.rowgen import (
    LoadedModel,
    PeriodSplit,
    _set_basis,
    _set_time_limit,
    dual_simplex,
    lazy_mask,
    split_by_period,
    violated_mask,
)

BASIC = 1  # HighsBasisStatus.kBasic
MAX_SHARE = 0.5  # past this share of the periods, the whole kept model is re-solved
DUAL_TOL = 1e-9  # a smaller dual or reduced cost counts as zero (as binding rows' 1e-9)
DUAL_FEAS_TOL = 1e-7  # HiGHS' dual feasibility tolerance


def basis_arrays(h: Any, n_cols: int, n_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The HiGHS object's basis as int8 arrays (columns, its rows), None if it has none."""
    b = h.getBasis()
    if not b.valid:
        return None
    return (
        np.fromiter(map(int, b.col_status), np.int8, n_cols),
        np.fromiter(map(int, b.row_status), np.int8, n_rows),
    )


@dataclass
class PeriodBlocks:
    """The whole LP's optimum and basis, kept for re-solving blocks of periods."""

    split: PeriodSplit
    lazy_rows: np.ndarray  # every lazy row of the LP
    lazy_A: sp.csr_matrix  # their matrix rows
    span: np.ndarray  # (n_lazy, 2): the first and last period of each lazy row's columns
    active: np.ndarray  # (n_lazy,) bool: in the model
    x: np.ndarray
    row_dual: np.ndarray  # every LP row, maximisation sign; 0 on lazy rows left out
    col_dual: np.ndarray
    col_status: np.ndarray  # int8 HiGHS basis status per column
    row_status: np.ndarray  # per LP row; a lazy row left out is basic
    threads: int | None = None
    max_share: float = MAX_SHARE
    _local: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _basis_from: LoadedModel | None = None  # the model whose basis is read on first need
    # a column's HiGHS status: 0 at lower, 1 basic, 2 at upper, 3 zero (free), 4 nonbasic

    @classmethod
    def of(
        cls, lp: LinearProgram, model: LoadedModel, sol: Solution, threads: int | None = None
    ) -> PeriodBlocks | None:
        """From the kept model after an optimal solve of ``lp``; None when the LP does not
        split by period or the solve left no basis or duals."""
        if sol.status is not Status.OPTIMAL or sol.x is None or sol.row_dual is None:
            return None
        split = split_by_period(lp, lazy_mask(lp))
        if split is None or sol.col_dual is None:
            return None
        lazy_A = model.lazy_A
        span = spans(lazy_A, split.col_period, split.periods)
        return cls(
            split=split,
            lazy_rows=model.lazy_rows,
            lazy_A=lazy_A,
            span=span,
            active=model.hrow_of[model.lazy_rows] >= 0,
            x=sol.x.copy(),
            row_dual=sol.row_dual.copy(),
            col_dual=sol.col_dual.copy(),
            col_status=np.zeros(0, dtype=np.int8),
            row_status=np.zeros(0, dtype=np.int8),
            threads=threads,
            _local=np.zeros(lp.num_cols, dtype=np.int64),
            _basis_from=model,
        )

    def _ensure_basis(self) -> bool:
        """Read the kept model's basis on first need (a change in every period never needs
        it); False if it has none."""
        model = self._basis_from
        if model is None:
            return True
        self._basis_from = None
        loaded = model.loaded_rows
        basis = basis_arrays(model.h, self.x.size, loaded.size)
        if basis is None:
            return False
        self.col_status = basis[0]
        self.row_status = np.full(self.row_dual.size, BASIC, dtype=np.int8)
        self.row_status[loaded] = basis[1]
        return True

    # ------------------------------------------------------------------ which periods
    def periods_of(self, cols: np.ndarray, rows: np.ndarray, lp: LinearProgram) -> np.ndarray:
        """(T,) bool: the periods whose LP changes when these columns and rows do."""
        T = self.split.periods
        out = np.zeros(T, dtype=bool)
        out[self.split.col_period[cols]] = True
        if rows.size:
            lazy_at = np.searchsorted(self.lazy_rows, rows)
            is_lazy = np.zeros(rows.size, dtype=bool)
            if self.lazy_rows.size:
                last = self.lazy_rows.size - 1
                is_lazy = (lazy_at <= last) & (self.lazy_rows[np.minimum(lazy_at, last)] == rows)
            for lo, hi in self.span[lazy_at[is_lazy]]:
                out[lo : hi + 1] = True
            base = rows[~is_lazy]
            where = np.searchsorted(self.split.row_starts, self._row_pos(base), side="right") - 1
            out[where] = True
        return out

    def _row_pos(self, rows: np.ndarray) -> np.ndarray:
        """Positions of base rows in ``split.base_rows`` (period order)."""
        order = np.argsort(self.split.base_rows)
        return order[np.searchsorted(self.split.base_rows, rows, sorter=order)]

    # ------------------------------------------------------------------ solving
    def resolve(
        self, lp: LinearProgram, changed: np.ndarray, deadline: float | None = None
    ) -> tuple[Solution, np.ndarray] | None:
        """Solve the window of periods spanning the ``changed`` ones again (``lp`` holds
        the new numbers), the other periods fixed, widened until the optimality check on
        the columns next to it passes; the whole LP's solution and the periods solved, or
        None when the window passes ``max_share`` of the periods or is not optimal (the
        caller then solves the whole model)."""
        t0 = time.perf_counter()
        T = self.split.periods
        solved = np.zeros(T, dtype=bool)
        iterations = windows = 0
        if changed.any():
            a, b = self._joined(changed)
            if b - a + 1 > max(1, self.max_share * T) or not self._ensure_basis():
                return None
            while True:
                if b - a + 1 > max(1, self.max_share * T):
                    return None
                done = self._solve_window(lp, a, b, deadline)
                if done is None:
                    return None
                iterations, windows = iterations + done[0], windows + 1
                if done[1:] == (a, b):
                    break
                a, b = done[1], done[2]
            solved[a : b + 1] = True
        sol = Solution(
            status=Status.OPTIMAL,
            x=self.x.copy(),
            row_dual=self.row_dual.copy(),
            col_dual=self.col_dual.copy(),
            objective=lp.objective(self.x),
            solver="highs",
            algorithm="period-window",
            time_s=time.perf_counter() - t0,
            iterations=iterations,
            message=MESSAGES[Status.OPTIMAL],
            raw_status="kOptimal",
            extra={"windows": float(windows), "periods_solved": float(solved.sum())},
        )
        return sol, solved

    def _joined(self, changed: np.ndarray) -> tuple[int, int]:
        """The first and last period of the window to start from: the changed periods and
        those joined to them by lazy rows in the model with a non-zero dual (rows that
        bind across periods; the rest starts with the window's edge there)."""
        T = self.split.periods
        join = self.active & (np.abs(self.row_dual[self.lazy_rows]) > DUAL_TOL)
        cover = np.zeros(T + 1, dtype=np.int64)
        np.add.at(cover, self.span[join, 0], 1)
        np.add.at(cover, self.span[join, 1], -1)
        linked = np.cumsum(cover)[: T - 1] > 0  # t and t + 1 joined
        label = np.concatenate([[0], np.cumsum(~linked)])
        at = np.nonzero(np.isin(label, label[changed]))[0]
        return int(at[0]), int(at[-1])

    def _window_lp(
        self, lp: LinearProgram, a: int, b: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Periods a..b as one LP, the other columns fixed at their values: its columns,
        LP rows (the periods' rows, then the lazy rows in the model touching them), the
        lazy rows' indexes, and the HiGHS object."""
        sp_ = self.split
        cols = sp_.col_order[sp_.col_starts[a] : sp_.col_starts[b + 1]]
        r0, r1 = int(sp_.row_starts[a]), int(sp_.row_starts[b + 1])
        lazy = np.nonzero(self.active & self._touching(a, b))[0]
        rows = np.concatenate([sp_.base_rows[r0:r1], self.lazy_rows[lazy]])
        local = self._local
        local[cols] = np.arange(cols.size)
        base = sp_.A[r0:r1]
        base = sp.csr_matrix((base.data, local[base.indices], base.indptr), (r1 - r0, cols.size))
        lo, hi = self._lazy_bounds(lp, lazy, cols)
        h = dual_simplex(self.threads)
        h.passModel(
            highs_lp(
                -lp.c[cols],
                sp.vstack([base, self.lazy_A[lazy][:, cols]], format="csr"),
                np.concatenate([lp.row_lower[rows[: r1 - r0]], lo]),
                np.concatenate([lp.row_upper[rows[: r1 - r0]], hi]),
                lp.col_lower[cols],
                lp.col_upper[cols],
            )
        )
        _set_basis(h, *self._square(cols, rows, r1 - r0))
        return cols, rows, lazy, h

    def _touching(self, a: int, b: int) -> np.ndarray:
        return (self.span[:, 0] <= b) & (self.span[:, 1] >= a)

    def _lazy_bounds(
        self, lp: LinearProgram, lazy: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of lazy rows on a window's columns: the part of the other columns (fixed)
        moved to the bounds."""
        outside = self.x.copy()
        outside[cols] = 0.0
        fixed = self.lazy_A[lazy] @ outside
        rows = self.lazy_rows[lazy]
        return lp.row_lower[rows] - fixed, lp.row_upper[rows] - fixed

    def _square(
        self, cols: np.ndarray, rows: np.ndarray, n_base: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The kept basis on a window's columns and rows. The columns outside may hold more
        basic variables than their own rows need (a lazy row across the edge, at a bound,
        is then carried by an outside column): as many rows or columns of the window with a
        zero dual or reduced cost become basic, lazy rows first, keeping the old optimum
        dual feasible. Should that be singular, HiGHS puts slacks in: only the warm start
        suffers, never the result."""
        cs, rs = self.col_status[cols].copy(), self.row_status[rows].copy()
        missing = rows.size - int((cs == BASIC).sum() + (rs == BASIC).sum())
        if missing > 0:
            zero = (rs != BASIC) & (np.abs(self.row_dual[rows]) <= DUAL_TOL)
            order = np.concatenate([np.arange(rows.size - 1, n_base - 1, -1), np.arange(n_base)])
            take = order[zero[order]][:missing]
            rs[take] = BASIC
            missing -= take.size
            free = np.nonzero((cs != BASIC) & (np.abs(self.col_dual[cols]) <= DUAL_TOL))[0]
            cs[free[:missing]] = BASIC
        return cs, rs

    def _solve_window(
        self, lp: LinearProgram, a: int, b: int, deadline: float | None
    ) -> tuple[int, int, int] | None:
        """Solve periods a..b (the others fixed) from the kept basis, adding the lazy rows
        touching them that the new plan violates. If the columns outside whose reduced
        costs the new duals change stay optimal, keep the result and return (iterations,
        a, b); otherwise return the wider window they ask for (nothing kept). None if the
        window is not optimal."""
        cols, rows, lazy, h = self._window_lp(lp, a, b)
        check = np.nonzero(~self.active & self._touching(a, b))[0]
        iterations = 0
        while True:
            _set_time_limit(h, deadline)
            run_highs(h)
            iterations += int(max(h.getInfo().simplex_iteration_count, 0))
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            x = self.x.copy()
            x[cols] = np.asarray(h.getSolution().col_value)
            bad = check[violated_mask(lp, self.lazy_rows[check], x, self.lazy_A[check])]
            if bad.size == 0:
                break
            lo, hi = self._lazy_bounds(lp, bad, cols)
            R = self.lazy_A[bad][:, cols]
            inf = highspy.kHighsInf
            h.addRows(
                int(bad.size),
                np.clip(lo, -inf, inf),
                np.clip(hi, -inf, inf),
                int(R.nnz),
                R.indptr[:-1].astype(np.int32),
                R.indices.astype(np.int32),
                R.data,
            )
            rows = np.concatenate([rows, self.lazy_rows[bad]])
            lazy = np.concatenate([lazy, bad])
            check = np.setdiff1d(check, bad)
        s = h.getSolution()
        row_dual = -np.asarray(s.row_dual)
        wider = self._certify(lazy, rows, row_dual, a, b)
        if wider is not None:
            return iterations, wider[0], wider[1]
        basis = basis_arrays(h, cols.size, rows.size)
        if basis is None:
            return None
        self.x = x
        self.col_dual[cols] = -np.asarray(s.col_dual)
        self.row_dual[rows] = row_dual
        self.col_status[cols], self.row_status[rows] = basis
        self.active[lazy] = True
        return iterations, a, b

    def _certify(
        self, lazy: np.ndarray, rows: np.ndarray, row_dual: np.ndarray, a: int, b: int
    ) -> tuple[int, int] | None:
        """The optimality check outside the window: the new duals of the lazy rows across
        its edge change the reduced costs of the outside columns in them; each must keep
        the sign its bound status asks (0 if basic). Updates those reduced costs and
        returns None when all do; otherwise the window widened to their periods."""
        n_base = rows.size - lazy.size
        change = row_dual[n_base:] - self.row_dual[rows[n_base:]]
        moved = np.abs(change) > 0
        if not moved.any():
            return None
        R = self.lazy_A[lazy[moved]]
        delta = R.T @ change[moved]  # (num_cols,) a_j . dy
        period = self.split.col_period
        out = np.nonzero((delta != 0) & ((period < a) | (period > b)))[0]
        d = self.col_dual[out] - delta[out]
        st = self.col_status[out]
        bad = np.where(
            st == 0,
            d > DUAL_FEAS_TOL,  # at its lower bound: raising it must not pay
            np.where(st == 2, d < -DUAL_FEAS_TOL, np.abs(d) > DUAL_FEAS_TOL),
        )
        if bad.any():
            p = period[out[bad]]
            return min(a, int(p.min())), max(b, int(p.max()))
        self.col_dual[out] = d
        return None
