"""Two-stage stochastic plans by scenario decomposition (L-shaped / Benders, multi-cut).

The extensive form (:mod:`allocator.workflows.stochastic`) stacks every scenario's LP
into one. Here the first-stage decisions ``y`` (rentals, GPUs bought, reservations, and
the first period's allocations when asked) live in a small **master** LP

    max  sum_k p_k theta_k  [+ lambda (eta - 1/(1-alpha) sum_k p_k s_k),  s_k >= eta - theta_k]
    s.t. theta_k <= Z_k(y^i) + g_k^i (y - y^i)      (one cut per scenario and iteration)
         theta_k <= WS_k                           (scenario k's wait-and-see optimum)
         rows of the scenario LPs that involve first-stage columns only
         bounds of y

and each scenario's LP, with ``y`` fixed by its column bounds, is a **subproblem**
``Z_k(y)`` (gross margin + w * LTV - churn, first-stage costs included) kept loaded in
HiGHS by a worker and re-solved warm by dual simplex when only those bounds change. The
reduced costs of the fixed columns are a supergradient ``g_k`` of the concave ``Z_k``: a
cut. The master's optimum is an upper bound on the stochastic optimum (RP); every
candidate ``y`` evaluated in all scenarios gives a lower bound (its objective, CVaR term
included). The loop stops when ``(upper - lower) / max(1, |lower|) <= gap`` or at the time
limit, returning the best candidate and its proven gap.

The first candidate is the expected-demand plan's first stage, so its evaluation is the
EEV (VSS = RP - EEV) at no extra cost; the wait-and-see round (every scenario with its
first stage free: the theta bounds and EVPI = WS - RP) runs when asked, when there is no
start, or when the master is unbounded without it. Out of time mid-round, the best plan
so far is returned with its gap.

Subproblems run where :class:`SubproblemPool` says: ``inline`` (this process),
``process`` (one single-process pool per worker slot, scenarios pinned to slots so each
model is built once, in that process) or ``dask`` (one actor per Dask worker, holding its
scenarios' models between iterations). Only ``y`` (and, at the end, the plans) cross
process boundaries.

Feasibility: the master starts with what every scenario row implies for the first stage
alone (:func:`_first_stage_rows`: pool-capacity with allocations ``>= 0`` bounds what is
reserved by what is usable, rented and bought), and a candidate at which some scenario
still has no plan gets that scenario's feasibility cut (:func:`_feasibility_cut`: the
candidate's L1 distance from the first stages the scenario can live with, and its slope)
instead of a lower bound; the loop goes on. Only when no first stage is left does it raise
:class:`TwoStageInfeasibleError`: a scenario with no plan even with its first stage free,
or an irreducible set of scenarios whose needs of the first stage conflict.

Limits: LPs only (no whole-unit pools). Each worker keeps one HiGHS object for all its
scenarios (``share_models``, the default: :class:`SharedModel`), or one per scenario with
``share_models=False``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import InfeasibleError, NumericalError, Status, TimeLimitError
from allocator.lp import LinearProgram
from allocator.lp.build import build_lp
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.solvers.base import Solution
from allocator.solvers.highs_model import highs_lp, highspy, new_highs
from allocator.solvers.rowgen import LoadedModel, RowGenerationSolver
from allocator.workflows.twostage import DemandScenario, _cvar, first_stage_columns, scenario_for

DEFAULT_GAP = 1e-4


# ----------------------------------------------------------------------- subproblems
@dataclass
class SubResult:
    """One scenario solved at one candidate: its objective Z_k and the supergradient
    (reduced costs of the first-stage columns, maximisation sense). When the scenario has
    no plan at that candidate (``feasible`` false), ``objective`` is instead the candidate's
    L1 distance ``v_k(y) > 0`` from the first stages the scenario can live with and
    ``grad`` a subgradient of that convex distance: a feasibility cut
    ``v_k(y^i) + grad (y - y^i) <= 0`` (:func:`_feasibility_cut`)."""

    k: int
    objective: float
    grad: np.ndarray
    y: np.ndarray  # the first-stage values it was solved at
    time_s: float
    iterations: int
    warm: bool
    feasible: bool = True


class Subproblem:
    """Scenario ``k``'s LP loaded in HiGHS; :meth:`solve` fixes the first-stage columns
    (or frees them: ``y=None``) by pushing only their bounds, then re-solves warm."""

    def __init__(self, scenario: Scenario, first_period_allocations: bool, threads: int = 1):
        self.scenario = scenario
        self.lp: LinearProgram = build_lp(scenario)
        if self.lp.is_mip:
            raise ValueError("scenario decomposition solves LPs: this scenario is a MILP")
        self.first = first_stage_columns(self.lp, first_period_allocations)
        self.lower0 = self.lp.col_lower[self.first].copy()
        self.upper0 = self.lp.col_upper[self.first].copy()
        self.bounds0 = (self.lower0, self.upper0)
        self.threads = threads
        self.model: LoadedModel | None = None
        self.last: Solution | None = None

    def solve(self, y: np.ndarray | None, k: int, time_limit: float | None = None) -> SubResult:
        lo = self.lower0 if y is None else np.clip(y, self.lower0, self.upper0)
        up = self.upper0 if y is None else lo
        self.lp.col_lower[self.first] = lo
        self.lp.col_upper[self.first] = up
        solver = RowGenerationSolver(threads=self.threads, chains=1)
        warm = self.model is not None
        if self.model is None:
            sol, self.model = solver.run_loaded(self.lp, time_limit, keep=True)
        else:
            inf = highspy.kHighsInf
            self.model.h.changeColsBounds(
                int(self.first.size),
                self.first.astype(np.int32),
                np.clip(lo, -inf, inf),
                np.clip(up, -inf, inf),
            )
            sol = solver.resolve(self.model, self.lp, time_limit)
        self.last = sol
        return _result(sol, self.lp, self.first, self.scenario, k, warm, self.bounds0)

    def first_stage_rows(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """The rows whose every nonzero is on a first-stage column, over those columns."""
        return _first_stage_rows(self.lp, self.first)

    def plan(self) -> Plan:
        assert self.last is not None
        return Plan.from_solution(self.scenario, self.lp, self.last)


class SharedModel:
    """Several scenarios whose LPs differ only in costs and bounds (demand changes row
    bounds and the constant), in **one** HiGHS object: switching scenario pushes what
    differs and restores that scenario's last basis (rows added since are basic), so a
    worker holds one model whatever its number of scenarios. A scenario's first solve
    starts from the previous scenario's basis (dual simplex, warm)."""

    def __init__(self, first: np.ndarray, threads: int = 1):
        self.first = first
        self.threads = threads
        self.lp: LinearProgram | None = None  # the current scenario's LP
        self.vec: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}
        self.scenarios: dict[int, Scenario] = {}
        self.basis: dict[int, tuple[Any, int]] = {}
        self.sols: dict[int, Solution] = {}
        self.current: int | None = None
        self.model: LoadedModel | None = None

    def add(self, k: int, scenario: Scenario, lp: LinearProgram) -> None:
        """Scenario ``k`` (``ValueError`` when its LP's structure or column bounds differ)."""
        from allocator.workflows.planner import _same_structure

        if self.lp is None:
            self.lp = replace(lp, col_lower=lp.col_lower.copy(), col_upper=lp.col_upper.copy())
            self.lower0 = lp.col_lower[self.first].copy()
            self.upper0 = lp.col_upper[self.first].copy()
            self.bounds0 = (self.lower0, self.upper0)
            self.col_lower0, self.col_upper0 = lp.col_lower, lp.col_upper
            self.current = k
        elif not (
            _same_structure(self.lp, lp)
            and np.array_equal(lp.col_lower, self.col_lower0)
            and np.array_equal(lp.col_upper, self.col_upper0)
        ):
            raise ValueError("scenario structures differ")
        self.vec[k] = (lp.c, lp.row_lower, lp.row_upper, lp.offset)
        self.scenarios[k] = scenario

    def _switch(self, k: int) -> None:
        assert self.lp is not None
        if self.current == k:
            return
        c, rl, ru, off = self.vec[k]
        old = self.lp
        if self.model is not None:
            h = self.model.h
            cols = np.nonzero(c != old.c)[0]
            if cols.size:
                h.changeColsCost(int(cols.size), cols.astype(np.int32), -c[cols])
            rows = np.nonzero((rl != old.row_lower) | (ru != old.row_upper))[0]
            hrows = self.model.hrow_of[rows]
            keep = hrows >= 0
            rows, hrows = rows[keep], hrows[keep].astype(np.int32)
            if rows.size:
                inf = highspy.kHighsInf
                h.changeRowsBounds(
                    int(rows.size),
                    hrows,
                    np.clip(rl[rows], -inf, inf),
                    np.clip(ru[rows], -inf, inf),
                )
            h.changeObjectiveOffset(-off)
            saved = self.basis.get(k)
            if saved is not None and saved[1] == id(h):
                b = saved[0]
                n_rows = h.getNumRow()
                if len(b.row_status) < n_rows:
                    b.row_status = list(b.row_status) + [highspy.HighsBasisStatus.kBasic] * (
                        n_rows - len(b.row_status)
                    )
                h.setBasis(b)
        self.lp = replace(old, c=c, row_lower=rl, row_upper=ru, offset=off)
        self.current = k

    def solve(self, y: np.ndarray | None, k: int, time_limit: float | None = None) -> SubResult:
        self._switch(k)
        assert self.lp is not None
        lo = self.lower0 if y is None else np.clip(y, self.lower0, self.upper0)
        up = self.upper0 if y is None else lo
        self.lp.col_lower[self.first] = lo
        self.lp.col_upper[self.first] = up
        solver = RowGenerationSolver(threads=self.threads, chains=1)
        warm = self.model is not None and k in self.basis
        if self.model is None:
            sol, self.model = solver.run_loaded(self.lp, time_limit, keep=True)
            if self.model is not None:
                self.basis[k] = (self.model.h.getBasis(), id(self.model.h))
        else:
            inf = highspy.kHighsInf
            self.model.h.changeColsBounds(
                int(self.first.size),
                self.first.astype(np.int32),
                np.clip(lo, -inf, inf),
                np.clip(up, -inf, inf),
            )
            if warm:
                sol = solver.resolve(self.model, self.lp, time_limit)
                self.basis[k] = (self.model.h.getBasis(), id(self.model.h))
            else:
                sol = self._first_solve(solver, k, time_limit)
        self.sols[k] = sol
        return _result(sol, self.lp, self.first, self.scenarios[k], k, warm, self.bounds0)

    def _first_solve(
        self, solver: RowGenerationSolver, k: int, time_limit: float | None
    ) -> Solution:
        """Scenario ``k``'s first solve: cold in a HiGHS object of its own (the period
        split is faster than dual simplex from another scenario's basis), its optimal basis
        then moved into the shared object (the lazy rows it loaded added there too)."""
        assert self.model is not None and self.lp is not None
        sol, tmp = solver.run_loaded(self.lp, time_limit, keep=True)
        if tmp is None or sol.status is not Status.OPTIMAL:
            return sol
        shared = self.model
        tmp_rows = tmp.loaded_rows
        missing = tmp_rows[shared.hrow_of[tmp_rows] < 0]
        if missing.size:
            shared.add(np.sort(missing), self.lp)
        b = tmp.h.getBasis()
        rows = np.full(shared.h.getNumRow(), highspy.HighsBasisStatus.kBasic, dtype=object)
        rows[shared.hrow_of[tmp_rows]] = np.asarray(b.row_status, dtype=object)
        nb = highspy.HighsBasis()
        nb.col_status = b.col_status
        nb.row_status = rows.tolist()
        nb.valid = True
        del tmp
        shared.h.setBasis(nb)
        self.basis[k] = (nb, id(shared.h))
        return sol

    def plan(self, k: int) -> Plan:
        assert self.lp is not None
        c, rl, ru, off = self.vec[k]
        sol = self.sols[k]
        assert sol.x is not None
        cl, cu = self.lp.col_lower.copy(), self.lp.col_upper.copy()
        cl[self.first] = cu[self.first] = sol.x[self.first]
        lp = replace(
            self.lp, c=c, row_lower=rl, row_upper=ru, offset=off, col_lower=cl, col_upper=cu
        )
        return Plan.from_solution(self.scenarios[k], lp, sol)


def _result(
    sol: Solution,
    lp: LinearProgram,
    first: np.ndarray,
    sc: Scenario,
    k: int,
    warm: bool,
    bounds0: tuple[np.ndarray, np.ndarray],
) -> SubResult:
    """The subproblem's value and supergradient, a feasibility cut when it has no plan
    at this first stage, or the error of its status."""
    if sol.status is Status.INFEASIBLE:
        y = lp.col_lower[first].copy()
        dist, grad = _feasibility_cut(lp, first, bounds0, y)
        if not np.isfinite(dist):
            raise TwoStageInfeasibleError(
                f"demand scenario {k} has no plan even with the first stage free", [k], True
            )
        if dist <= _FEASIBILITY_TOL:  # HiGHS' phase 1 and this LP disagree: no cut to add
            raise NumericalError(
                f"scenario {sc.name!r} (subproblem {k}): infeasible at the master's first "
                f"stage, yet {dist:.1e} from a first stage it can live with"
            )
        return SubResult(k, dist, grad, y, sol.time_s, sol.iterations, warm, feasible=False)
    if sol.status is not Status.OPTIMAL or sol.x is None or sol.col_dual is None:
        where = f"scenario {sc.name!r} (subproblem {k}): "
        if sol.status in (Status.TIME_LIMIT, Status.TIME_LIMIT_NO_SOLUTION):
            raise TimeLimitError(where + sol.message)
        raise NumericalError(where + sol.message)
    return SubResult(
        k,
        float(lp.objective(sol.x)),
        sol.col_dual[first].copy(),
        sol.x[first].copy(),
        sol.time_s,
        sol.iterations,
        warm,
    )


_FEASIBILITY_TOL = 1e-9


def _feasibility_cut(
    lp: LinearProgram,
    first: np.ndarray,
    bounds0: tuple[np.ndarray, np.ndarray],
    y: np.ndarray,
) -> tuple[float, np.ndarray]:
    """``v(y)``, the L1 distance from ``y`` to the first stages at which ``lp`` (every row,
    the lazy ones too) has a plan, and ``pi``, a subgradient of that convex function:

        v(y) = min sum_j (d+_j + d-_j)   s.t.  rows of lp,  z_j - d+_j + d-_j = y_j,
               z (the first-stage columns) within their own bounds, d+, d- >= 0

    ``pi`` is the dual of the linking rows, each within [-1, 1]. Every first stage ``y'``
    a scenario can live with has ``v(y') = 0 >= v(y) + pi (y' - y)``: the cut."""
    F, n = first.size, lp.num_cols
    lo, up = lp.col_lower.copy(), lp.col_upper.copy()
    lo[first], up[first] = bounds0
    link = sp.csr_matrix((np.ones(F), (np.arange(F), first)), shape=(F, n))
    eye = sp.identity(F, format="csr")
    A = sp.bmat([[lp.A, None, None], [link, -eye, eye]], format="csr")
    cost = np.concatenate([np.zeros(n), np.ones(2 * F)])
    h = new_highs()
    h.passModel(
        highs_lp(
            cost,
            A,
            np.concatenate([lp.row_lower, y]),
            np.concatenate([lp.row_upper, y]),
            np.concatenate([lo, np.zeros(2 * F)]),
            np.concatenate([up, np.full(2 * F, np.inf)]),
        )
    )
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return np.inf, np.zeros(F)  # no first stage at all gives the scenario a plan
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise NumericalError(
            "feasibility cut: the distance LP is " + h.modelStatusToString(h.getModelStatus())
        )
    dual = np.asarray(h.getSolution().row_dual)[lp.num_rows :]
    return float(h.getInfo().objective_function_value), dual.copy()


class ScenarioWorker:
    """The subproblems of some scenarios, kept between iterations (one per process, or a
    Dask actor). Built from the base scenario and the demand scenarios as dicts, once.
    Each scenario has its own HiGHS object; with ``shared`` scenarios of the same structure
    share one (:class:`SharedModel`: a scenario's first solve runs cold in an object of
    its own, then its basis moves into the shared one; 100k columns x 10 scenarios on 2
    workers: 68 s and 831 MB in all processes against 66 s and 1,385 MB, so
    :func:`make_pool` and ``stochastic_plan`` share by default)."""

    def __init__(
        self,
        base: dict[str, Any],
        demand: list[dict[str, Any]],
        ks: list[int],
        first_period_allocations: bool,
        threads: int = 1,
        shared: bool = False,
    ):
        sc = Scenario.from_dict(base)
        self.subs: dict[int, Subproblem] = {}
        self.shared: SharedModel | None = None
        self.order = list(ks)
        for k in ks:
            sck = scenario_for(sc, DemandScenario.of(demand[k]))
            if not shared:
                self.subs[k] = Subproblem(sck, first_period_allocations, threads)
                continue
            lp = build_lp(sck)
            if lp.is_mip:
                raise ValueError("scenario decomposition solves LPs: this scenario is a MILP")
            if self.shared is None:
                first = first_stage_columns(lp, first_period_allocations)
                self.shared = SharedModel(first, threads)
            try:
                self.shared.add(k, sck, lp)
            except ValueError:
                self.subs[k] = Subproblem(sck, first_period_allocations, threads)
            del lp

    def info(self) -> dict[str, Any]:
        """First-stage size and bounds, and each scenario's first-stage-only rows."""
        rows = {}
        for k in self.order:
            if k in self.subs:
                rows[k] = self.subs[k].first_stage_rows()
            else:
                assert self.shared is not None and self.shared.lp is not None
                _c, rl, ru, _off = self.shared.vec[k]
                lp = replace(self.shared.lp, row_lower=rl, row_upper=ru)
                rows[k] = _first_stage_rows(lp, self.shared.first)
        one: Any = self.shared if self.shared is not None else next(iter(self.subs.values()))
        return {
            "n_first": int(one.first.size),
            "lower": one.lower0,
            "upper": one.upper0,
            "rows": rows,
        }

    def solve(self, y: np.ndarray | None, time_limit: float | None = None) -> list[SubResult]:
        out = []
        for k in self.order:
            if k in self.subs:
                out.append(self.subs[k].solve(y, k, time_limit))
            else:
                assert self.shared is not None
                out.append(self.shared.solve(y, k, time_limit))
        return out

    def plans(self) -> dict[int, Plan]:
        out = {}
        for k in self.order:
            if k in self.subs:
                out[k] = self.subs[k].plan()
            else:
                assert self.shared is not None
                out[k] = self.shared.plan(k)
        return out


def _first_stage_rows(
    lp: LinearProgram, first: np.ndarray, implied: bool = True
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """What the rows of ``lp`` imply for the first-stage columns alone, over those columns.

    A row ``lo <= a y + b z <= up`` (``y`` first stage, ``z`` the rest within their
    bounds) implies ``lo - max(b z) <= a y <= up - min(b z)``: every row with a first-stage
    nonzero and a finite side of that, e.g. pool-capacity with allocations ``x >= 0``:
    ``reserved - rented - (1 - headroom) bought <= usable``. Rows on first-stage columns
    only come out as they are. The master starts with these so that its candidates already
    respect them (a reservation above its pool, say); the rest is feasibility cuts.
    ``implied=False``: the rows on first-stage columns only."""
    A = lp.A.tocsr()
    is_first = np.zeros(lp.num_cols, dtype=bool)
    is_first[first] = True
    on_first = is_first[A.indices]
    a = np.where(on_first, 0.0, A.data)  # the second-stage part b
    lo_c, up_c = lp.col_lower[A.indices], lp.col_upper[A.indices]
    with np.errstate(invalid="ignore"):
        t_lo = np.where(a > 0, a * lo_c, a * up_c)
        t_up = np.where(a > 0, a * up_c, a * lo_c)
    t_lo[a == 0] = 0.0
    t_up[a == 0] = 0.0
    m = A.shape[0]
    rows_of = np.repeat(np.arange(m), np.diff(A.indptr))
    zmin = np.bincount(rows_of, weights=t_lo, minlength=m)  # never +inf: a side at -inf
    zmax = np.bincount(rows_of, weights=t_up, minlength=m)
    n_first = np.bincount(rows_of, weights=on_first, minlength=m)
    up, lo = lp.row_upper - zmin, lp.row_lower - zmax
    useful = (n_first > 0) & (np.isfinite(up) | np.isfinite(lo))
    if not implied:
        useful &= n_first == np.diff(A.indptr)
    rows = np.nonzero(useful)[0]
    pos = np.full(lp.num_cols, -1, dtype=np.int64)
    pos[first] = np.arange(first.size)
    sub = A[rows]
    keep = is_first[sub.indices]
    row_id = np.repeat(np.arange(rows.size), np.diff(sub.indptr))[keep]
    sub = sp.csr_matrix(
        (sub.data[keep], (row_id, pos[sub.indices[keep]])), shape=(rows.size, first.size)
    )
    return sub, lo[rows].copy(), up[rows].copy()


# ----------------------------------------------------------------------- executors
class SubproblemPool:
    """Where the scenario workers live. ``solve(y)`` returns every scenario's result."""

    name = "inline"
    n_workers = 1

    def info(self) -> dict[str, Any]:
        raise NotImplementedError

    def solve(self, y: np.ndarray | None, time_limit: float | None = None) -> list[SubResult]:
        raise NotImplementedError

    def plans(self) -> dict[int, Plan]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the workers."""


def _assign(K: int, n: int) -> list[list[int]]:
    """Scenarios round-robin over ``n`` workers."""
    return [list(range(i, K, n)) for i in range(n) if i < K]


def _merge_info(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = dict(infos[0])
    out["rows"] = {k: v for inf in infos for k, v in inf["rows"].items()}
    return out


class InlinePool(SubproblemPool):
    name = "inline"

    def __init__(
        self,
        base: dict,
        demand: list[dict],
        fpa: bool,
        threads: int | None = None,
        share: bool = False,
    ):
        ks = list(range(len(demand)))
        self.worker = ScenarioWorker(base, demand, ks, fpa, threads or 0, share)

    def info(self) -> dict[str, Any]:
        return self.worker.info()

    def solve(self, y: np.ndarray | None, time_limit: float | None = None) -> list[SubResult]:
        return self.worker.solve(y, time_limit)

    def plans(self) -> dict[int, Plan]:
        return self.worker.plans()


_WORKER: ScenarioWorker | None = None  # this process's scenarios (process pool)


def _init_process(
    base: dict, demand: list[dict], ks: list[int], fpa: bool, share: bool = False
) -> None:
    import warnings

    global _WORKER
    warnings.simplefilter("ignore")
    _WORKER = ScenarioWorker(base, demand, ks, fpa, 1, share)


def _proc_info() -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER.info()


def _proc_solve(y: np.ndarray | None, time_limit: float | None) -> list[SubResult]:
    assert _WORKER is not None
    return _WORKER.solve(y, time_limit)


def _proc_plans() -> dict[int, Plan]:
    assert _WORKER is not None
    return _WORKER.plans()


class ProcessPool(SubproblemPool):
    """One single-process executor per slot; slot i holds scenarios i, i+n, … for good
    (its initializer builds them), so nothing but ``y`` is sent per iteration."""

    name = "process"

    def __init__(
        self, base: dict, demand: list[dict], fpa: bool, workers: int, share: bool = False
    ):
        ctx = multiprocessing.get_context("spawn")
        self.groups = _assign(len(demand), workers)
        self.n_workers = len(self.groups)
        self.pools = [
            cf.ProcessPoolExecutor(
                max_workers=1,
                mp_context=ctx,
                initializer=_init_process,
                initargs=(base, demand, ks, fpa, share),
            )
            for ks in self.groups
        ]

    def _all(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        futs = [p.submit(fn, *args) for p in self.pools]
        return [f.result() for f in futs]

    def info(self) -> dict[str, Any]:
        return _merge_info(self._all(_proc_info))

    def solve(self, y: np.ndarray | None, time_limit: float | None = None) -> list[SubResult]:
        return [r for rs in self._all(_proc_solve, y, time_limit) for r in rs]

    def plans(self) -> dict[int, Plan]:
        return {k: p for d in self._all(_proc_plans) for k, p in d.items()}

    def close(self) -> None:
        for p in self.pools:
            p.shutdown(wait=True, cancel_futures=True)


class DaskPool(SubproblemPool):
    """One :class:`ScenarioWorker` actor per Dask worker (``distributed.Client``), pinned
    there: each worker builds and keeps its scenarios' models."""

    name = "dask"

    def __init__(
        self,
        client: Any,
        base: dict,
        demand: list[dict],
        fpa: bool,
        workers: int | None = None,
        share: bool = False,
    ):
        addrs = sorted(client.scheduler_info()["workers"])
        if workers:
            addrs = addrs[:workers]
        if not addrs:
            raise ValueError("the Dask cluster has no workers")
        self.groups = _assign(len(demand), len(addrs))
        self.n_workers = len(self.groups)
        futs = [
            client.submit(
                ScenarioWorker,
                base,
                demand,
                ks,
                fpa,
                1,
                share,
                actor=True,
                workers=[a],
                allow_other_workers=False,
                pure=False,
            )
            for ks, a in zip(self.groups, addrs, strict=False)
        ]
        self.actors = [f.result() for f in futs]
        self._futs = futs  # the actors live as long as their futures

    def _all(self, method: str, *args: Any) -> list[Any]:
        futs = [getattr(a, method)(*args) for a in self.actors]
        return [f.result() for f in futs]

    def info(self) -> dict[str, Any]:
        return _merge_info(self._all("info"))

    def solve(self, y: np.ndarray | None, time_limit: float | None = None) -> list[SubResult]:
        return [r for rs in self._all("solve", y, time_limit) for r in rs]

    def plans(self) -> dict[int, Plan]:
        return {k: p for d in self._all("plans") for k, p in d.items()}

    def close(self) -> None:
        for f in self._futs:
            f.release()
        self.actors = []


def make_pool(
    base: dict,
    demand: list[dict],
    fpa: bool,
    *,
    executor: str = "process",
    workers: int | None = None,
    client: Any = None,
    share: bool = True,
) -> SubproblemPool:
    """``inline``, ``process`` (``workers`` processes, default min(cores, scenarios)) or
    ``dask`` (``client``: a ``distributed.Client``); ``share`` (the default): one HiGHS
    object per worker (:class:`SharedModel`), else one per scenario."""
    if client is not None or executor == "dask":
        if client is None:
            raise ValueError("executor 'dask' needs a distributed.Client")
        return DaskPool(client, base, demand, fpa, workers, share)
    n = workers or min(os.cpu_count() or 1, len(demand))
    if executor == "inline" or n <= 1:
        return InlinePool(base, demand, fpa, share=share)
    if executor != "process":
        raise ValueError(f"executor must be inline, process or dask, got {executor!r}")
    return ProcessPool(base, demand, fpa, n, share)


# ----------------------------------------------------------------------- the master
class _Unbounded(Exception):
    """The master is unbounded (no theta bounds yet)."""


class _MasterInfeasible(Exception):
    """No first stage meets the first-stage rows and the feasibility cuts."""


class TwoStageInfeasibleError(InfeasibleError):
    """No first stage gives every demand scenario a plan. ``alone``: scenarios without a
    plan even with their first stage free; otherwise ``scenarios`` is an irreducible set
    of scenarios whose needs of the first stage conflict, and ``needs[k]`` is scenario
    k's last feasibility cut ``(pi, rhs)``: ``pi y <= rhs`` over the first-stage columns."""

    def __init__(
        self,
        message: str,
        scenarios: list[int],
        alone: bool,
        needs: dict[int, tuple[np.ndarray, float]] | None = None,
    ):
        super().__init__(message)
        self.scenarios = scenarios
        self.alone = alone
        self.needs = needs or {}

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker process, read in this one
        return (type(self), (str(self), self.scenarios, self.alone, self.needs))


class Master:
    """The master LP in HiGHS (maximisation), cuts added as rows, re-solved warm."""

    def __init__(
        self,
        info: dict[str, Any],
        pr: np.ndarray,
        ws: np.ndarray,
        *,
        cvar_weight: float,
        cvar_level: float,
        multicut: bool,
    ):
        self.F = int(info["n_first"])
        self.K = pr.size
        self.pr = pr
        self.multicut = multicut or cvar_weight > 0
        n_theta = self.K if self.multicut else 1
        self.theta0 = self.F
        inf = highspy.kHighsInf
        h = new_highs()
        h.setOptionValue("solver", "simplex")
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        lo = np.clip(np.asarray(info["lower"], float), -inf, inf)
        up = np.clip(np.asarray(info["upper"], float), -inf, inf)
        c = np.zeros(self.F)
        th_c = pr.copy() if self.multicut else np.ones(1)
        th_up = ws.copy() if self.multicut else np.array([float(pr @ ws)])
        self.n_cols = self.F + n_theta
        costs = np.concatenate([c, th_c])
        lower = np.concatenate([lo, np.full(n_theta, -inf)])
        upper = np.clip(np.concatenate([up, th_up]), -inf, inf)
        self.eta: int | None = None
        if cvar_weight > 0:
            self.eta = self.n_cols
            costs = np.concatenate([costs, [cvar_weight], -cvar_weight * pr / (1 - cvar_level)])
            lower = np.concatenate([lower, [-inf], np.zeros(self.K)])
            upper = np.concatenate([upper, [inf], np.full(self.K, inf)])
            self.n_cols += 1 + self.K
        n = self.n_cols
        h.addVars(n, lower, upper)
        h.changeColsCost(n, np.arange(n, dtype=np.int32), costs)
        self.h = h
        if self.eta is not None:  # s_k - eta + theta_k >= 0
            rows = []
            for k in range(self.K):
                rows.append(([self.eta + 1 + k, self.eta, self.theta0 + k], [1.0, -1.0, 1.0]))
            self._add_rows(rows, np.zeros(self.K), np.full(self.K, inf))
        # first-stage-only rows of every scenario (duplicates dropped)
        seen: set[bytes] = set()
        for _k, (A, rlo, rup) in sorted(info["rows"].items()):
            A = sp.csr_matrix(A)
            for i in range(A.shape[0]):
                s, e = A.indptr[i], A.indptr[i + 1]
                key = (
                    A.indices[s:e].tobytes()
                    + A.data[s:e].tobytes()
                    + np.array([rlo[i], rup[i]]).tobytes()
                )
                if key in seen:
                    continue
                seen.add(key)
                self._add_rows(
                    [(A.indices[s:e].tolist(), A.data[s:e].tolist())],
                    np.array([rlo[i]]),
                    np.array([rup[i]]),
                )
        self.n_cuts = 0
        self.feasibility_rows: dict[int, list[int]] = {}  # scenario -> its cut rows
        self.needs: dict[int, tuple[np.ndarray, float]] = {}  # its last cut: pi y <= rhs

    def _add_rows(self, rows: list[tuple[Any, Any]], lo: np.ndarray, up: np.ndarray) -> None:
        inf = highspy.kHighsInf
        starts = np.cumsum([0] + [len(r[0]) for r in rows[:-1]]).astype(np.int32)
        idx = np.concatenate([np.asarray(r[0], dtype=np.int32) for r in rows]).astype(np.int32)
        val = np.concatenate([np.asarray(r[1], dtype=float) for r in rows])
        self.h.addRows(
            len(rows), np.clip(lo, -inf, inf), np.clip(up, -inf, inf), idx.size, starts, idx, val
        )

    def add_cuts(self, results: Sequence[SubResult]) -> None:
        """theta_k - g y <= Z_k(y^i) - g y^i (aggregated with probabilities in single-cut,
        which needs every scenario's result)."""
        tol = 1e-12
        if not results or (not self.multicut and len(results) < self.K):
            return
        if self.multicut:
            rows, rhs = [], []
            for r in results:
                nz = np.nonzero(np.abs(r.grad) > tol)[0]
                rows.append(([*nz.tolist(), self.theta0 + r.k], [*(-r.grad[nz]).tolist(), 1.0]))
                rhs.append(r.objective - float(r.grad[nz] @ r.y[nz]))
        else:
            g = sum(self.pr[r.k] * r.grad for r in results)
            z = sum(self.pr[r.k] * (r.objective - float(r.grad @ r.y)) for r in results)
            nz = np.nonzero(np.abs(g) > tol)[0]
            rows = [([*nz.tolist(), self.theta0], [*(-g[nz]).tolist(), 1.0])]
            rhs = [z]
        self._add_rows(rows, np.full(len(rows), -np.inf), np.array(rhs))
        self.n_cuts += len(rows)

    def add_feasibility_cuts(self, results: Sequence[SubResult]) -> None:
        """pi y <= pi y^i - v(y^i) for each scenario with no plan at y^i."""
        for r in results:
            nz = np.nonzero(np.abs(r.grad) > 1e-12)[0]
            rhs = float(r.grad[nz] @ r.y[nz]) - r.objective
            self.feasibility_rows.setdefault(r.k, []).append(self.h.getNumRow())
            self.needs[r.k] = (r.grad.copy(), rhs)
            self._add_rows(
                [(nz.tolist(), r.grad[nz].tolist())], np.array([-np.inf]), np.array([rhs])
            )
            self.n_cuts += 1

    def conflicting_scenarios(self) -> list[int]:
        """An irreducible set of scenarios whose feasibility cuts (with the first-stage
        rows) leave no first stage: a deletion filter over scenarios."""
        h: Any = self.h
        keep = sorted(self.feasibility_rows)
        for k in list(keep):
            rows = np.asarray(self.feasibility_rows[k], dtype=np.int32)
            saved = np.asarray(h.getLp().row_upper_)[rows]
            free = np.full(rows.size, highspy.kHighsInf)
            h.changeRowsBounds(rows.size, rows, -free, free)
            h.run()
            if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
                keep.remove(k)  # no first stage even without k's cuts: k is not needed
            else:
                h.changeRowsBounds(rows.size, rows, -free, saved)
        return keep

    def bound_theta(self, ws: np.ndarray) -> None:
        """theta_k <= WS_k (the sum in single-cut)."""
        n = self.K if self.multicut else 1
        up = ws if self.multicut else np.array([float(self.pr @ ws)])
        idx = (self.theta0 + np.arange(n)).astype(np.int32)
        self.h.changeColsBounds(n, idx, np.full(n, -highspy.kHighsInf), up.astype(float))

    def solve(self) -> tuple[float, np.ndarray]:
        self.h.run()
        status = self.h.getModelStatus()
        if status in (
            highspy.HighsModelStatus.kUnbounded,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        ):
            raise _Unbounded
        if status == highspy.HighsModelStatus.kInfeasible:
            raise _MasterInfeasible
        if status != highspy.HighsModelStatus.kOptimal:
            raise NumericalError(
                f"master problem: {self.h.modelStatusToString(self.h.getModelStatus())}"
            )
        x = np.asarray(self.h.getSolution().col_value)
        return float(self.h.getInfo().objective_function_value), x[: self.F].copy()


# ----------------------------------------------------------------------- the loop
@dataclass
class Iteration:
    iteration: int
    lower: float
    upper: float
    gap: float
    time_s: float
    sub_time_s: float  # wall time of the subproblem round
    sub_times_s: list[float]  # each subproblem's solver time
    master_s: float = 0.0  # the master's solve after this round's cuts


@dataclass
class DecompositionResult:
    plans: list[Plan]
    values: np.ndarray  # Z_k at the returned first stage
    first: np.ndarray  # first-stage values
    objective: float  # lower bound: the returned plan's objective (CVaR term included)
    bound: float  # upper bound
    gap: float
    iterations: list[Iteration]
    wait_and_see: float | None  # sum_k p_k WS_k (None: the round was skipped)
    eev: float | None  # the objective of the first candidate given (the EV plan)
    eev_values: np.ndarray | None
    executor: str
    workers: int
    converged: bool
    setup_s: float = 0.0  # starting the workers, building the scenario LPs
    free_round_s: float = 0.0  # the wait-and-see round (cold solves), wall
    free_times_s: list[float] = field(default_factory=list)  # its solver time per scenario


def _value(values: np.ndarray, pr: np.ndarray, cvar_weight: float, cvar_level: float) -> float:
    v = float(pr @ values)
    if cvar_weight > 0:
        v += cvar_weight * _cvar(values, pr, cvar_level)
    return v


def relative_gap(lower: float, upper: float) -> float:
    return max(0.0, upper - lower) / max(1.0, abs(lower))


def _free_round(pool: SubproblemPool, time_limit: float | None) -> list[SubResult]:
    """Every scenario with its first stage free (wait-and-see); a scenario with no plan
    even so makes the two-stage problem infeasible."""
    res = sorted(pool.solve(None, time_limit), key=lambda r: r.k)
    alone = [r.k for r in res if not r.feasible]
    if alone:
        raise TwoStageInfeasibleError(
            f"demand scenario(s) {alone} have no plan even with the first stage free",
            alone,
            alone=True,
        )
    return res


def _conflict(master: Master) -> TwoStageInfeasibleError:
    """Every scenario has a plan alone, yet no first stage suits them all."""
    ks = master.conflicting_scenarios()
    return TwoStageInfeasibleError(
        f"no first stage gives every demand scenario a plan: scenarios {ks} need "
        "conflicting first-stage decisions",
        ks,
        alone=False,
        needs={k: master.needs[k] for k in ks if k in master.needs},
    )


def decompose(
    pool: SubproblemPool,
    pr: np.ndarray,
    *,
    start: np.ndarray | None = None,
    cvar_weight: float = 0.0,
    cvar_level: float = 0.9,
    gap: float = DEFAULT_GAP,
    time_limit: float | None = None,
    max_iterations: int = 500,
    multicut: bool = True,
    progress: Callable[[str], None] | None = None,
    wait_and_see: bool = True,
) -> DecompositionResult:
    """The L-shaped loop over ``pool``'s scenarios (see the module docstring). ``start``:
    the first candidate's first stage (the expected-demand plan's), evaluated first.
    ``wait_and_see=False`` skips the round that solves every scenario with its first stage
    free (its values bound theta and give the EVPI) when ``start`` is given and every
    first-stage column has finite bounds (so the master is bounded without it)."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit

    def left() -> float | None:
        return None if deadline is None else max(1.0, deadline - time.perf_counter())

    info = pool.info()
    setup_s = time.perf_counter() - t0
    say(
        f"decomposition: {pr.size} scenarios on {pool.n_workers} {pool.name} worker(s); "
        f"{info['n_first']} first-stage columns"
    )
    free: list[SubResult] = []
    ws_value: float | None = None
    if wait_and_see or start is None:
        free = _free_round(pool, left())
        ws = np.array([r.objective for r in free])
        ws_value = float(pr @ ws)
    else:
        ws = np.full(pr.size, np.inf)
    free_round_s = time.perf_counter() - t0 - setup_s
    master = Master(info, pr, ws, cvar_weight=cvar_weight, cvar_level=cvar_level, multicut=multicut)
    if free:
        master.add_cuts(free)

    def solve_master() -> tuple[float, np.ndarray]:
        nonlocal free, ws_value, free_round_s
        try:
            return master.solve()
        except _MasterInfeasible:
            if not free:
                _free_round(pool, left())  # a scenario with no plan at all says so
            raise _conflict(master) from None
        except _Unbounded:
            if free:
                raise NumericalError("master problem: unbounded") from None
        # the cuts so far do not bound it: the wait-and-see round after all
        t = time.perf_counter()
        free = _free_round(pool, left())
        ws = np.array([r.objective for r in free])
        ws_value = float(pr @ ws)
        free_round_s += time.perf_counter() - t
        master.bound_theta(ws)
        master.add_cuts(free)
        return master.solve()

    lower, upper = -np.inf, np.inf
    best_y: np.ndarray | None = None
    best_values: np.ndarray | None = None
    best_iter = -1
    eev = eev_values = None
    iters: list[Iteration] = []
    # no start given: the probability-weighted mean of the wait-and-see first stages
    y: np.ndarray | None = (
        pr @ np.array([r.y for r in free]) if start is None else np.asarray(start, dtype=float)
    )
    it = 0
    converged = stopped = False
    while True:
        if y is None:
            upper, y = solve_master()
        t_sub = time.perf_counter()
        try:
            res = sorted(pool.solve(y, left()), key=lambda r: r.k)
        except TimeLimitError:
            if best_y is None:
                raise
            stopped = True  # out of time mid-round: the best plan so far, its gap
            break
        sub_wall = time.perf_counter() - t_sub
        cut_off = [r for r in res if not r.feasible]
        if cut_off:  # no plan in some scenario at y: cut y off, keep the others' cuts
            master.add_feasibility_cuts(cut_off)
            master.add_cuts([r for r in res if r.feasible])
            say(
                f"round {it + 1}: {len(cut_off)} scenario(s) have no plan at this first "
                "stage: feasibility cut(s) added"
            )
        else:
            values = np.array([r.objective for r in res])
            val = _value(values, pr, cvar_weight, cvar_level)
            if it == 0 and start is not None:
                eev, eev_values = val, values
            if val > lower:
                lower, best_y, best_values, best_iter = val, y, values, it
            master.add_cuts(res)
        t_master = time.perf_counter()
        upper, y_next = solve_master()
        t_master = time.perf_counter() - t_master
        g = relative_gap(lower, upper) if best_y is not None else np.inf
        if best_y is not None:  # rounds before the first feasible candidate have no bounds
            iters.append(
                Iteration(
                    it,
                    lower,
                    upper,
                    g,
                    time.perf_counter() - t0,
                    sub_wall,
                    [r.time_s for r in res],
                    t_master,
                )
            )
            say(f"iteration {it + 1}: lower {lower:,.2f}  upper {upper:,.2f}  gap {g:.2e}")
        it += 1
        if g <= gap:
            converged = True
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
        if it >= max_iterations:
            break
        y = y_next
    if best_y is None or best_values is None:
        raise TimeLimitError(
            f"decomposition: no first stage that every scenario can live with in {it} rounds"
        )
    if stopped or best_iter != it - 1:  # the models are at a later candidate: back to the best
        pool.solve(best_y, None)
    plans_by_k = pool.plans()
    plans = [plans_by_k[k] for k in range(pr.size)]
    return DecompositionResult(
        plans=plans,
        values=best_values,
        first=best_y,
        objective=lower,
        bound=upper,
        gap=relative_gap(lower, upper),
        iterations=iters,
        wait_and_see=ws_value,
        eev=eev,
        eev_values=eev_values,
        executor=pool.name,
        workers=pool.n_workers,
        converged=converged,
        setup_s=setup_s,
        free_round_s=free_round_s,
        free_times_s=[r.time_s for r in free],
    )


__all__ = [
    "DEFAULT_GAP",
    "DaskPool",
    "DecompositionResult",
    "InlinePool",
    "Iteration",
    "ProcessPool",
    "ScenarioWorker",
    "Subproblem",
    "SubproblemPool",
    "decompose",
    "make_pool",
    "relative_gap",
]
