"""Period decomposition with lazy stability rows: the default way to solve the allocator's LPs.

Every row of the model but one family belongs to a single period, and so does every column
(allocations, rentals, contract shortfalls). The exception is ``segment-stability``, the
only rows that join two periods, and they rarely bind: a segment seldom wants to move more
than ``max_change_share`` of a pool between two periods. So:

1. **Relax.** Leave the stability rows out. What is left splits into one LP per period;
   solve them in period order by HiGHS dual simplex, each starting from the optimal basis
   of the period before (consecutive periods differ by a few percent of demand, so a
   warm period takes tens of iterations instead of hundreds). With two cores the periods
   run as two chains in parallel (highspy releases the GIL while it solves).
2. **Add what is violated.** Check the stability rows against that plan. Load the relaxed
   model into one HiGHS object with the bases of the periods as its basis, add the violated
   stability rows (their slacks basic, so the basis stays dual feasible) and re-solve by dual
   simplex from there. Repeat until no stability row is violated.
3. **Exact.** The last LP holds every non-lazy row and the stability rows that were
   violated on the way; its optimum satisfies all the others. With zero duals on the rows
   never added, its duals are feasible for the whole LP and complementary to its optimum:
   the pair is optimal for the whole LP, shadow prices included (tests check both against
   a solve of the whole LP).
4. **Tight coupling.** When the added rows pass ``max_lazy_share`` of the stability rows,
   most of them bind and the rounds would re-solve a growing LP many times; the rest of
   the time goes to HiGHS interior point (with crossover, so a basis) on the whole LP,
   the fastest solver measured on such LPs (BENCHMARKS.md).

A model that does not split by period (expansion columns buy GPUs for every later period;
the stochastic and re-planning models add columns of their own) skips the split: its
relaxation is solved whole, then step 2 runs as above. Measured numbers, and the
comparison with every solver alone on the whole LP: BENCHMARKS.md.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import MESSAGES, Solution, Solver
from allocator.solvers.highs_model import (
    highs_lp,
    highspy,
    map_highs_status,
    new_highs,
    read_solution,
    run_highs,
    to_highs_lp,
)

# gpu-hour-budget rows span the periods of their window: lazy too (few, added when the
# periods alone violate them; measured against no split in tests/lp/test_gpu_hour_budgets.py)
LAZY_BLOCKS = ("segment-stability", "gpu-hour-budget")
# Share of the lazy rows added before the rounds give way to interior point on the whole
# LP. Measured: loosely coupled LPs (max_change_share 0.1) add 0.2-3 % of them; at
# max_change_share 0.01, 9 % in the first round and 19 % by the second, after which each
# round took 10-20 s against 52 s for interior point on the whole LP (BENCHMARKS.md).
MAX_LAZY_SHARE = 0.10
MIN_LAZY_FOR_FALLBACK = 1_000  # below this many rows added, rounds are cheap whatever the share
VIOLATION_TOL = 1e-7  # relative to max(1, |bound|), as HiGHS' own feasibility tolerance
_STATUS_OF = sorted(highspy.HighsBasisStatus.__members__.values(), key=int)  # by its number


@dataclass
class PeriodSplit:
    """The relaxed model's rows and columns grouped by period (``None`` where the model
    does not split)."""

    col_period: np.ndarray  # (num_cols,)
    base_rows: np.ndarray  # rows kept in the relaxation, in period order
    row_starts: np.ndarray  # (T + 1,) offsets into base_rows per period
    col_order: np.ndarray  # columns in period order
    col_starts: np.ndarray  # (T + 1,)
    A: sp.csr_matrix  # the matrix rows of base_rows, in that order (sliced once)

    @property
    def periods(self) -> int:
        return int(self.row_starts.size - 1)


def lazy_mask(lp: LinearProgram) -> np.ndarray:
    """True for the rows left out of the relaxation (the stability rows)."""
    mask = np.zeros(lp.num_rows, dtype=bool)
    for b in lp.blocks:
        if b.name in LAZY_BLOCKS:
            mask[b.start : b.stop] = True
    return mask


def column_periods(lp: LinearProgram) -> np.ndarray:
    """The period of each column, -1 where a column is not tied to one period (expansion
    columns, and columns a derived model appends beyond the scenario's)."""
    c = lp.columns
    out = np.full(lp.num_cols, -1, dtype=np.int64)
    out[: c.e_offset] = np.concatenate([c.x_period, c.r_period, c.u_period])
    if c.n_rsv and lp.num_cols >= c.n_columns:
        out[c.rsv_offset : c.tier_offset] = c.rsv_period
    if c.n_tier and lp.num_cols >= c.n_columns:
        out[c.tier_offset : c.pw_offset] = c.tier_period
    if c.n_pw and lp.num_cols >= c.n_columns:
        out[c.pw_offset : c.rt_offset] = c.pw_period
    # retirement columns (rt) stay -1: a GPU retired stays retired (the pool-powered rows
    # join the periods), so a model with retirement is solved whole
    return out


def row_periods(lp: LinearProgram) -> np.ndarray:
    """The period of each row from its block's ``period`` key, -1 where a block has none."""
    out = np.full(lp.num_rows, -1, dtype=np.int64)
    for b in lp.blocks:
        if "period" in b.keys:
            out[b.start : b.stop] = b.keys["period"]
    return out


def split_by_period(lp: LinearProgram, lazy: np.ndarray) -> PeriodSplit | None:
    """How the relaxation splits into one LP per period, or None when it does not (a
    column or row without a period, or a non-zero joining two periods)."""
    col_period = column_periods(lp)
    row_period = row_periods(lp)
    base = np.nonzero(~lazy)[0]
    if (col_period < 0).any() or (row_period[base] < 0).any():
        return None
    T = int(max(col_period.max(initial=-1), row_period.max(initial=-1)) + 1)
    if T <= 0:
        return None
    base = base[np.argsort(row_period[base], kind="stable")]
    sub = lp.A[base]
    nz_rows = np.repeat(row_period[base], np.diff(sub.indptr))
    if not np.array_equal(nz_rows, col_period[sub.indices]):
        return None
    col_order = np.argsort(col_period, kind="stable")
    return PeriodSplit(
        col_period=col_period,
        base_rows=base,
        row_starts=np.searchsorted(row_period[base], np.arange(T + 1)),
        col_order=col_order,
        col_starts=np.searchsorted(col_period[col_order], np.arange(T + 1)),
        A=sub,
    )


@dataclass
class LoadedModel:
    """A HiGHS object holding the relaxation and the lazy rows added so far, with its
    optimal basis: what a :class:`~allocator.workflows.planner.Planner` keeps between solves.

    ``hrow_of[i]`` is the HiGHS row of LP row ``i`` (-1 while a lazy row is not loaded).
    """

    h: Any  # highspy.Highs
    hrows: list[np.ndarray]  # LP rows in HiGHS order, by batch
    hrow_of: np.ndarray
    lazy_rows: np.ndarray  # every lazy row of the LP
    lazy_A: sp.csr_matrix  # their rows of the matrix (the model's structure never changes)
    full: bool = False  # the whole LP is loaded (the interior-point fallback)

    def violated(self, lp: LinearProgram, x: np.ndarray) -> np.ndarray:
        """The lazy rows not loaded yet that ``x`` violates (bounds read from ``lp``)."""
        hit = _violated(lp, self.lazy_rows, x, self.lazy_A)
        return hit[self.hrow_of[hit] < 0]

    @property
    def loaded_rows(self) -> np.ndarray:
        return np.concatenate(self.hrows) if self.hrows else np.zeros(0, dtype=np.int64)

    def add(self, rows: np.ndarray, lp: LinearProgram) -> None:
        """Add LP rows ``rows`` (lazy, not yet loaded) to the HiGHS object."""
        R = self.lazy_A[np.searchsorted(self.lazy_rows, rows)]
        inf = highspy.kHighsInf
        self.h.addRows(
            int(rows.size),
            np.clip(lp.row_lower[rows], -inf, inf),
            np.clip(lp.row_upper[rows], -inf, inf),
            int(R.nnz),
            R.indptr[:-1].astype(np.int32),
            R.indices.astype(np.int32),
            R.data,
        )
        n = sum(r.size for r in self.hrows)
        self.hrow_of[rows] = n + np.arange(rows.size)
        self.hrows.append(rows)


def load_whole(lp: LinearProgram, algorithm: str, threads: int | None = None) -> LoadedModel:
    """The whole LP in one HiGHS object set to ``algorithm`` (``simplex``, or ``ipm``
    with crossover) for its first run, dual simplex for the runs after (``LoadedModel.full``)."""
    h = new_highs()
    h.setOptionValue("solver", algorithm)
    if algorithm == "ipm":
        h.setOptionValue("run_crossover", "on")
    if threads:
        h.setOptionValue("threads", int(threads))
    h.passModel(to_highs_lp(lp))
    lazy_rows = np.nonzero(lazy_mask(lp))[0]
    return LoadedModel(
        h,
        [np.arange(lp.num_rows)],
        np.arange(lp.num_rows),
        lazy_rows,
        lp.A[lazy_rows],
        full=True,
    )


class RowGenerationSolver(Solver):
    """HiGHS on the period split with lazy stability rows (see the module docstring).
    LPs only. ``threads`` is HiGHS' thread option (1 in batch workers: one core each; HiGHS
    runs one scheduler per process, restarted by ``run_highs`` when a solve asks for
    another count, so solves running at the same time in threads should ask for the same);
    ``chains`` the number of period chains run in parallel (default: 2 on two or more cores,
    1 when ``threads`` is 1). ``max_lazy_share`` is the share of lazy rows added after
    which the whole LP goes to interior point."""

    name = "highs"

    def __init__(
        self,
        threads: int | None = None,
        max_lazy_share: float = MAX_LAZY_SHARE,
        chains: int | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.threads = threads
        self.progress = progress  # told of each phase and round
        self.max_lazy_share = float(max_lazy_share)
        if chains is None:
            chains = 1 if threads == 1 else min(2, os.cpu_count() or 1)
        if chains < 1:
            raise ValueError(f"chains must be >= 1, got {chains!r}")
        self.chains = int(chains)

    @classmethod
    def is_available(cls) -> bool:
        return highspy is not None

    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        sol, _ = self.run_loaded(lp, time_limit, keep=False)
        return sol

    # ------------------------------------------------------------------ the phases
    def run_loaded(
        self, lp: LinearProgram, time_limit: float | None = None, *, keep: bool = True
    ) -> tuple[Solution, LoadedModel | None]:
        """Solve ``lp``; with ``keep`` also return the loaded HiGHS object (for warm
        re-solves, :meth:`resolve`)."""
        if lp.is_mip:
            raise ValueError("RowGenerationSolver solves LPs; a MILP goes to HiGHS' MIP solver")
        t0 = time.perf_counter()
        deadline = None if time_limit is None else t0 + time_limit
        lazy = lazy_mask(lp)
        lazy_rows = np.nonzero(lazy)[0]
        lazy_A = lp.A[lazy_rows]
        split = split_by_period(lp, lazy)
        stats: dict[str, float] = {"lazy_rows": float(lazy_rows.size), "rounds": 0.0}
        if split is not None:
            stats["periods"] = float(split.periods)
            self._report(f"solving {split.periods} periods without the stability rows")
            rel = self._periods(lp, split, deadline)
            stats["relaxation_s"] = time.perf_counter() - t0
            if rel.status is not Status.OPTIMAL:
                return self._finish(lp, rel.solution(lp, split), t0, stats), None
            violated = _violated(lp, lazy_rows, rel.x, lazy_A)
            if violated.size == 0 and not keep:
                return self._finish(lp, rel.solution(lp, split), t0, stats), None
            model = self._load(
                lp,
                split.base_rows,
                lazy_rows,
                lazy_A,
                (rel.col_status, rel.row_status),
                split.A,
            )
            iterations = rel.iterations
            # the relaxation's basis is optimal: add what it violates before the first run
            if self._too_many(violated.size, lazy_rows.size):
                return self._fallback(lp, model, deadline, t0, iterations, stats), model
            if violated.size:
                model.add(violated, lp)
                stats["rounds"] += 1
                self._report(f"round 1: +{violated.size:,} stability rows of {lazy_rows.size:,}")
                _devex(model.h)
        else:
            model = self._load(lp, np.nonzero(~lazy)[0], lazy_rows, lazy_A, None)
            iterations = 0
        sol = self.resolve(model, lp, deadline=deadline, t0=t0, iterations=iterations, stats=stats)
        return sol, model

    def resolve(
        self,
        model: LoadedModel,
        lp: LinearProgram,
        time_limit: float | None = None,
        *,
        deadline: float | None = None,
        t0: float | None = None,
        iterations: int = 0,
        stats: dict[str, float] | None = None,
    ) -> Solution:
        """Dual simplex on the loaded model from its basis, adding violated lazy rows until
        none is; the whole LP by interior point past ``max_lazy_share`` of them."""
        t0 = time.perf_counter() if t0 is None else t0
        if deadline is None and time_limit is not None:
            deadline = t0 + time_limit
        h = model.h
        n_lazy = model.lazy_rows.size
        if stats is None:  # a re-solve of a kept model (Planner)
            stats = {"lazy_rows": float(n_lazy), "rounds": 0.0}
        while True:
            _set_time_limit(h, deadline)
            t_run = time.perf_counter()
            run_highs(h)
            stats["rounds_s"] = stats.get("rounds_s", 0.0) + time.perf_counter() - t_run
            h.setOptionValue("solver", "simplex")  # the next run starts from this basis
            h.setOptionValue("simplex_strategy", 1)
            iterations += _iterations(h)
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break
            # between rounds only the primal values are needed
            violated = model.violated(lp, np.asarray(h.getSolution().col_value))
            if violated.size == 0:
                break
            loaded = int((model.hrow_of[model.lazy_rows] >= 0).sum())
            if self._too_many(loaded + violated.size, n_lazy) and not model.full:
                stats["lazy_rows_added"] = float(loaded)
                return self._fallback(lp, model, deadline, t0, iterations, stats)
            model.add(violated, lp)
            stats["rounds"] += 1
            self._report(
                f"round {int(stats['rounds'])}: +{violated.size:,} stability rows "
                f"({loaded + violated.size:,} of {n_lazy:,})"
            )
            _devex(h)
        sol = read_solution(h, lp, "row-generation", 0.0)
        if sol.status is Status.TIME_LIMIT and sol.x is not None and model.violated(lp, sol.x).size:
            # feasible for the rows loaded so far, not for the whole LP
            sol = replace(
                sol,
                status=Status.TIME_LIMIT_NO_SOLUTION,
                x=None,
                row_dual=None,
                col_dual=None,
                objective=None,
                message=MESSAGES[Status.TIME_LIMIT_NO_SOLUTION],
            )
        stats["lazy_rows_added"] = float(
            (model.hrow_of[model.lazy_rows] >= 0).sum() if not model.full else n_lazy
        )
        return self._finish(lp, _to_full(sol, lp, model), t0, stats, iterations)

    def _report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def _too_many(self, added: int, n_lazy: int) -> bool:
        return added > max(self.max_lazy_share * n_lazy, MIN_LAZY_FOR_FALLBACK)

    def _fallback(
        self,
        lp: LinearProgram,
        model: LoadedModel,
        deadline: float | None,
        t0: float,
        iterations: int,
        stats: dict[str, float],
    ) -> Solution:
        """The whole LP by HiGHS interior point with crossover (tight coupling)."""
        self._report("tightly coupled: the whole LP by interior point")
        h = new_highs()
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "on")
        if self.threads:
            h.setOptionValue("threads", int(self.threads))
        _set_time_limit(h, deadline)
        h.passModel(to_highs_lp(lp))
        t_run = time.perf_counter()
        run_highs(h)
        stats["fallback_ipm_s"] = time.perf_counter() - t_run
        model.h = h
        model.hrows = [np.arange(lp.num_rows)]
        model.hrow_of = np.arange(lp.num_rows)
        model.full = True
        sol = read_solution(h, lp, "row-generation+ipm", 0.0)
        h.setOptionValue("solver", "simplex")  # later re-solves: dual simplex, warm
        h.setOptionValue("simplex_strategy", 1)
        return self._finish(lp, sol, t0, stats, iterations + sol.iterations)

    def _finish(
        self,
        lp: LinearProgram,
        sol: Solution,
        t0: float,
        stats: dict[str, float],
        iterations: int | None = None,
    ) -> Solution:
        sol.time_s = time.perf_counter() - t0
        if iterations is not None:
            sol.iterations = iterations
        if sol.x is not None and sol.status is Status.OPTIMAL:
            sol.objective = lp.objective(sol.x)
        sol.algorithm = "ipm-fallback" if "fallback_ipm_s" in stats else "row-generation"
        sol.extra = {**sol.extra, **stats}
        return sol

    def _load(
        self,
        lp: LinearProgram,
        base_rows: np.ndarray,
        lazy_rows: np.ndarray,
        lazy_A: sp.csr_matrix,
        basis: tuple[np.ndarray, np.ndarray] | None,
        A: sp.csr_matrix | None = None,
    ) -> LoadedModel:
        """One HiGHS object with the relaxation (rows ``base_rows``, whose matrix rows are
        ``A`` when already sliced), from ``basis`` (column and row statuses, rows in
        ``base_rows`` order) when given."""
        A = lp.A[base_rows] if A is None else A
        h = new_highs()
        h.setOptionValue("solver", "simplex")
        h.setOptionValue("simplex_strategy", 1)  # dual
        if self.threads:
            h.setOptionValue("threads", int(self.threads))
        h.passModel(
            highs_lp(
                -lp.c,
                A,
                lp.row_lower[base_rows],
                lp.row_upper[base_rows],
                lp.col_lower,
                lp.col_upper,
                offset=-lp.offset,
            )
        )
        if basis is not None:
            _set_basis(h, *basis)
        hrow_of = np.full(lp.num_rows, -1, dtype=np.int64)
        hrow_of[base_rows] = np.arange(base_rows.size)
        return LoadedModel(h, [base_rows], hrow_of, lazy_rows, lazy_A)

    # ------------------------------------------------------------------ per period
    def _periods(self, lp: LinearProgram, split: PeriodSplit, deadline: float | None) -> _Relaxed:
        T = split.periods
        chains = min(self.chains, T)
        edges = np.linspace(0, T, chains + 1).round().astype(int)
        out = _Relaxed.empty(lp.num_cols, split.base_rows.size)
        args = [
            (lp, split, split.A, range(edges[k], edges[k + 1]), deadline, out, self.threads)
            for k in range(chains)
        ]
        if chains == 1:
            _chain(*args[0])
            return out
        workers = [threading.Thread(target=_chain, args=a) for a in args]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return out


@dataclass
class _Relaxed:
    """The relaxation's solution, written period by period (each chain writes only its
    own periods' entries of the shared arrays)."""

    x: np.ndarray
    col_dual: np.ndarray
    row_dual: np.ndarray  # over PeriodSplit.base_rows (period order)
    col_status: np.ndarray
    row_status: np.ndarray
    status: Status = Status.OPTIMAL
    raw_status: str = ""
    message: str = ""
    iterations: int = 0

    @classmethod
    def empty(cls, n_cols: int, n_rows: int) -> _Relaxed:
        return cls(
            np.zeros(n_cols),
            np.zeros(n_cols),
            np.zeros(n_rows),
            np.zeros(n_cols, dtype=np.int8),
            np.ones(n_rows, dtype=np.int8),
        )

    def fail(self, status: Status, raw: str, message: str) -> None:
        if self.status is Status.OPTIMAL:
            self.status, self.raw_status, self.message = status, raw, message

    def solution(self, lp: LinearProgram, split: PeriodSplit) -> Solution:
        """As a Solution of the whole LP: duals in the LP's row order, zero on the lazy
        rows (none of them is violated when this is the answer)."""
        ok = self.status is Status.OPTIMAL
        row_dual = np.zeros(lp.num_rows)
        row_dual[split.base_rows] = self.row_dual
        return Solution(
            status=self.status,
            x=self.x if ok else None,
            row_dual=row_dual if ok else None,
            col_dual=self.col_dual if ok else None,
            objective=lp.objective(self.x) if ok else None,
            solver="highs",
            algorithm="row-generation",
            time_s=0.0,
            iterations=self.iterations,
            message=self.message or MESSAGES[self.status],
            raw_status=self.raw_status or "kOptimal",
        )


def _chain(
    lp: LinearProgram,
    split: PeriodSplit,
    A: sp.csr_matrix,
    periods: range,
    deadline: float | None,
    out: _Relaxed,
    threads: int | None,
) -> None:
    """Solve ``periods`` in order, each from the previous one's basis; results into ``out``."""
    local = np.empty(lp.num_cols, dtype=np.int64)
    prev: tuple[np.ndarray, np.ndarray] | None = None
    iterations = 0
    for t in periods:
        if out.status is not Status.OPTIMAL:  # another chain failed: the whole LP has
            break
        r0, r1 = int(split.row_starts[t]), int(split.row_starts[t + 1])
        cols = split.col_order[split.col_starts[t] : split.col_starts[t + 1]]
        rows = split.base_rows[r0:r1]
        local[cols] = np.arange(cols.size)
        block = A[r0:r1]
        sub = sp.csr_matrix(
            (block.data, local[block.indices], block.indptr), shape=(r1 - r0, cols.size)
        )
        h = new_highs()
        h.setOptionValue("solver", "simplex")  # serial dual simplex: one core per chain
        if threads:
            h.setOptionValue("threads", int(threads))
        _set_time_limit(h, deadline)
        h.passModel(
            highs_lp(
                -lp.c[cols],
                sub,
                lp.row_lower[rows],
                lp.row_upper[rows],
                lp.col_lower[cols],
                lp.col_upper[cols],
            )
        )
        if prev is not None and prev[0].size == cols.size and prev[1].size == rows.size:
            _set_basis(h, *prev)
        run_highs(h)
        info = h.getInfo()
        iterations += int(max(info.simplex_iteration_count, 0))
        ms = h.getModelStatus()
        raw = ms.name if hasattr(ms, "name") else str(ms)
        status = map_highs_status(raw, int(info.primal_solution_status) == 2)
        if status is not Status.OPTIMAL:
            if status is Status.TIME_LIMIT:  # a period unfinished: no plan for the whole
                status = Status.TIME_LIMIT_NO_SOLUTION
            where = (
                f" (period {t} alone, before the stability limits join the periods)"
                if status is Status.INFEASIBLE
                else ""
            )
            out.fail(status, raw, MESSAGES[status] + where)
            break
        s = h.getSolution()
        out.x[cols] = s.col_value
        out.col_dual[cols] = -np.asarray(s.col_dual)  # maximisation sign
        out.row_dual[r0:r1] = -np.asarray(s.row_dual)
        b = h.getBasis()
        cs = np.fromiter((int(v) for v in b.col_status), np.int8, cols.size)
        rs = np.fromiter((int(v) for v in b.row_status), np.int8, rows.size)
        out.col_status[cols] = cs
        out.row_status[r0:r1] = rs
        prev = (cs, rs)
    with _lock:
        out.iterations += iterations


_lock = threading.Lock()


def _iterations(h: Any) -> int:
    info = h.getInfo()
    return int(
        max(info.simplex_iteration_count, 0)
        + max(info.ipm_iteration_count, 0)
        + max(info.crossover_iteration_count, 0)
    )


def _devex(h: Any) -> None:
    """Devex pricing for the re-solves: with its default (dual steepest edge) HiGHS
    recomputes the edge weight of every row after rows are added, which cost seconds at 1M
    columns for a handful of iterations."""
    h.setOptionValue("simplex_dual_edge_weight_strategy", 1)


def _set_basis(h: Any, col_status: np.ndarray, row_status: np.ndarray) -> None:
    basis = highspy.HighsBasis()
    basis.col_status = [_STATUS_OF[v] for v in col_status.tolist()]
    basis.row_status = [_STATUS_OF[v] for v in row_status.tolist()]
    basis.valid = True
    h.setBasis(basis)


def _set_time_limit(h: Any, deadline: float | None) -> None:
    """What is left until ``deadline``; none (a kept object may carry an earlier limit)."""
    left = highspy.kHighsInf if deadline is None else max(deadline - time.perf_counter(), 0.0)
    h.setOptionValue("time_limit", float(left))


def _violated(
    lp: LinearProgram, rows: np.ndarray, x: np.ndarray, A_rows: sp.csr_matrix
) -> np.ndarray:
    """The rows of ``rows`` (whose matrix rows are ``A_rows``) that ``x`` violates beyond
    the feasibility tolerance."""
    if rows.size == 0:
        return rows
    act = A_rows @ x
    lo, hi = lp.row_lower[rows], lp.row_upper[rows]
    with np.errstate(invalid="ignore"):
        over = np.maximum(act - hi, lo - act)
        scale = np.maximum(1.0, np.minimum(np.abs(lo), np.abs(hi)))
    return rows[over > VIOLATION_TOL * scale]


def _to_full(sol: Solution, lp: LinearProgram, model: LoadedModel) -> Solution:
    """Row duals of the loaded rows put back in the LP's row order; zero on lazy rows that
    were never added (they do not bind)."""
    if sol.row_dual is not None:
        full = np.zeros(lp.num_rows)
        full[model.loaded_rows] = sol.row_dual
        sol.row_dual = full
    return sol
