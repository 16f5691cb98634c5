"""Which solver runs: the backends by name and the algorithm choice for an LP, in one place.

The adapters (highs.py, rowgen.py, clp.py, pulp.py) each wrap one solver and import none
of each other; this module is the only one that knows them all.

``auto`` for an LP: the period split with lazy stability rows (rowgen.py). Measured
(BENCHMARKS.md, ``make bench``): 1.5-12x faster than the fastest solver alone on the whole
LP (COIN-OR CLP's dual simplex) from 10k to 1M columns, 9-12x from 100k, and 4-34x faster
than HiGHS' own simplex and interior point. "clp", "simplex", "ipm", "pdlp" run that
solver on the whole LP, as asked. Below ``SMALL_LP_COLUMNS`` columns one dual simplex run
on the whole LP is quicker (tiny.json 1.2 ms against 4.3 ms; equal at about 1,000
columns, hyperscaler.json).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import DEFAULT_MIP_GAP, Solution, Solver
from allocator.solvers.clp import ClpSolver
from allocator.solvers.highs import HighsDirectSolver
from allocator.solvers.highs_model import check_mip_gap, highspy
from allocator.solvers.names import ALGORITHMS, BACKENDS
from allocator.solvers.rowgen import RowGenerationSolver

SMALL_LP_COLUMNS = 1_000


def choose_algorithm(
    lp: LinearProgram, algorithm: str = "auto", options: dict | None = None
) -> str:
    """The algorithm that solves ``lp``: ``mip`` for a MILP, the one asked for, or for
    ``auto`` one simplex run below SMALL_LP_COLUMNS (and whenever HiGHS options are given,
    since they tune HiGHS' own algorithms) and the row generation otherwise."""
    if lp.is_mip:
        return "mip"
    if algorithm != "auto":
        return algorithm
    if options or lp.num_cols < SMALL_LP_COLUMNS:
        return "simplex"
    return "rowgen"


class HighsSolver(Solver):
    """The default backend: HiGHS for LPs and MILPs, with the algorithm chosen per LP.
    ``algorithm`` (LPs): ``auto``/``rowgen`` (the period split with lazy stability rows,
    rowgen.py), or one solver on the whole LP: ``simplex`` (HiGHS dual simplex), ``ipm``
    (interior point with crossover, so duals come from a basis), ``pdlp`` (first order),
    ``clp`` (COIN-OR CLP, clp.py; HiGHS' interior point if CLP fails); a MILP uses HiGHS'
    branch and cut, stopping at the relative gap ``mip_gap``. ``options`` are passed to
    HiGHS as they are (``setOptionValue``)."""

    name = "highs"

    def __init__(
        self,
        algorithm: str = "auto",
        threads: int | None = None,
        options: dict | None = None,
        mip_gap: float = DEFAULT_MIP_GAP,
        progress: Callable[[str], None] | None = None,
    ):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
        self.algorithm = algorithm
        self.threads = threads
        self.options = dict(options or {})
        self.mip_gap = check_mip_gap(mip_gap)
        self.progress = progress  # told of each phase of a long solve

    @classmethod
    def is_available(cls) -> bool:
        return highspy is not None

    whole_lp = False  # never the period split (rowgen): interior point on the whole LP

    def choose(self, lp: LinearProgram) -> str:
        algorithm = choose_algorithm(lp, self.algorithm, self.options)
        return "ipm" if algorithm == "rowgen" and self.whole_lp else algorithm

    def for_coupled_periods(self) -> Solver:
        """This solver without the period split, which assumes only the stability rows
        couple periods: for ``auto`` the large LPs go to the interior point (on the stable
        plan's second stage at 100k columns, 66 s against 74 s for CLP and 356 s for dual
        simplex; docs/stable-plans.md)."""
        if self.algorithm not in ("auto", "rowgen"):
            return self
        other = copy.copy(self)
        other.whole_lp = True
        return other

    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        algorithm = self.choose(lp)
        if self.progress is not None:
            self.progress(f"solving {lp.num_cols:,} columns × {lp.num_rows:,} rows ({algorithm})")
        if algorithm == "rowgen":
            solver = RowGenerationSolver(threads=self.threads, progress=self.progress)
            return solver.run(lp, time_limit)
        if algorithm == "clp":
            sol = ClpSolver().run(lp, time_limit)
            if sol.status is not Status.NUMERICAL_ERROR:
                return sol
            algorithm = "ipm"  # CLP failed (a broken binary, an unreadable file): HiGHS
            if time_limit is not None:
                time_limit = max(time_limit - sol.time_s, 0.0)
        direct = HighsDirectSolver(algorithm, self.threads, self.options, self.mip_gap)
        return direct.run(lp, time_limit)

    def run_mip(
        self, lp: LinearProgram, time_limit: float | None, start: np.ndarray | None = None
    ) -> Solution:
        """HiGHS' branch and cut from ``start`` (HighsDirectSolver.run_mip: in a child
        process killed at the time limit plus a grace on a large MILP)."""
        if self.progress is not None:
            self.progress(f"branch and cut on {lp.num_cols:,} columns × {lp.num_rows:,} rows")
        direct = HighsDirectSolver("simplex", self.threads, self.options, self.mip_gap)
        return direct.run_mip(lp, time_limit, start)


def make_solver(
    backend: str = "highs",
    solver: str | None = None,
    *,
    algorithm: str = "auto",
    mip_gap: float | None = None,
) -> Solver:
    """The Solver for ``backend``: ``"highs"`` (highspy, the default and fastest path) or
    ``"pulp"`` with the PuLP solver named ``solver`` (default ``"CBC"``, bundled with PuLP;
    ``"HiGHS"``, ``"GUROBI"``, ``"CPLEX"`` … where installed). Raises
    :class:`~allocator.errors.SolverUnavailableError` listing the available solvers when
    the named one is not usable, ``ValueError`` for an unknown backend or an option that
    does not apply to it."""
    gap = DEFAULT_MIP_GAP if mip_gap is None else mip_gap
    if backend == "highs":
        if solver is not None and solver.lower() != "highs":
            raise ValueError(
                f"solver={solver!r} names a PuLP solver: use backend='pulp' (--backend pulp) "
                "with it; the 'highs' backend is HiGHS itself"
            )
        return HighsSolver(algorithm=algorithm, mip_gap=gap)
    if backend == "pulp":
        if algorithm != "auto":
            raise ValueError(
                f"algorithm={algorithm!r} applies to the 'highs' backend only "
                f"({', '.join(ALGORITHMS)}); the PuLP solver chooses its own"
            )
        from allocator.solvers.pulp import PulpSolver  # PuLP loads only when asked for

        return PulpSolver(solver or "CBC", mip_gap=gap)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
