"""The HiGHS adapter: one HiGHS run on the whole LP (dual simplex, interior point with
crossover, PDLP, or branch and cut for a MILP). Which algorithm runs for a given LP is
decided in registry.py, not here."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from allocator.lp import LinearProgram
from allocator.solvers.base import DEFAULT_MIP_GAP, Solution, Solver
from allocator.solvers.highs_model import (
    check_mip_gap,
    highspy,
    map_highs_status,
    mip_presolve_rules_off,
    new_highs,
    read_solution,
    run_highs,
    to_highs_lp,
)
from allocator.solvers.mip_process import PROCESS_FROM_COLUMNS, mip_in_child, set_start

__all__ = ["WHOLE_LP_ALGORITHMS", "HighsDirectSolver", "map_highs_status"]

WHOLE_LP_ALGORITHMS = ("simplex", "ipm", "pdlp", "mip")


class HighsDirectSolver(Solver):
    """One HiGHS run on the whole LP with ``algorithm``: ``simplex`` (dual simplex),
    ``ipm`` (interior point with crossover, so duals come from a basis), ``pdlp`` (first
    order) or ``mip`` (branch and cut, stopping at the relative gap ``mip_gap``).
    ``options`` go to HiGHS as they are (``setOptionValue``)."""

    name = "highs"

    def __init__(
        self,
        algorithm: str = "simplex",
        threads: int | None = None,
        options: dict | None = None,
        mip_gap: float = DEFAULT_MIP_GAP,
    ):
        if algorithm not in WHOLE_LP_ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {', '.join(WHOLE_LP_ALGORITHMS)}, got {algorithm!r}"
            )
        self.algorithm = algorithm
        self.threads = threads
        self.options = dict(options or {})
        self.mip_gap = check_mip_gap(mip_gap)

    @classmethod
    def is_available(cls) -> bool:
        return highspy is not None

    def _options(self, algorithm: str) -> dict[str, Any]:
        """The HiGHS options of one run with ``algorithm`` (time limit aside)."""
        opts: dict[str, Any] = {}
        if algorithm == "mip":
            opts["mip_rel_gap"] = float(self.mip_gap)
            rules_off = mip_presolve_rules_off()  # presolve rules that are wrong on ours
            if rules_off:
                opts["presolve_rule_off"] = rules_off
        else:
            opts["solver"] = algorithm
        if algorithm == "ipm":
            opts["run_crossover"] = "on"
        if self.threads:
            opts["threads"] = int(self.threads)
        return {**opts, **self.options}

    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        return self._run(lp, time_limit, None)

    def run_mip(
        self, lp: LinearProgram, time_limit: float | None, start: np.ndarray | None = None
    ) -> Solution:
        """Branch and cut from the whole-unit plan ``start``: in a child process killed at
        the time limit plus a grace from PROCESS_FROM_COLUMNS columns (mip_process.py),
        in this process below."""
        sol = self._mip(lp, time_limit, start)
        if start is None or sol.x is None or sol.objective is None:
            return sol
        tol = 1e-7 * max(1.0, abs(sol.objective))
        if abs(lp.objective(sol.x) - sol.objective) <= tol:
            return sol
        # HiGHS 1.16 can report a MILP optimal at its optimum's objective while handing
        # back the start's values (seen when presolve and the root node end the search):
        # solved again without the start, the values match
        left = None if time_limit is None else max(time_limit - sol.time_s, 0.0)
        again = self._mip(lp, left, None)
        again.time_s += sol.time_s
        return again

    def _mip(
        self, lp: LinearProgram, time_limit: float | None, start: np.ndarray | None
    ) -> Solution:
        if lp.num_cols >= PROCESS_FROM_COLUMNS:
            return mip_in_child(lp, time_limit, start, self._options("mip"))
        return self._run(lp, time_limit, start)

    def _run(
        self, lp: LinearProgram, time_limit: float | None, start: np.ndarray | None
    ) -> Solution:
        algorithm = "mip" if lp.is_mip else self.algorithm
        h = new_highs()
        for k, v in self._options(algorithm).items():
            h.setOptionValue(k, v)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        t0 = time.perf_counter()
        h.passModel(to_highs_lp(lp))
        if start is not None and lp.is_mip:
            set_start(h, start)
        run_highs(h)
        elapsed = time.perf_counter() - t0
        return read_solution(h, lp, algorithm, elapsed)
