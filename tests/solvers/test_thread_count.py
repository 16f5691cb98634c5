"""HiGHS runs one task scheduler per process: solves asking for different thread counts
in one process must all work (issue 19)."""

from __future__ import annotations

import pytest

from allocator import solve
from allocator.solvers import HighsSolver


@pytest.mark.parametrize("algorithm", ["auto", "simplex"])
def test_solves_with_different_thread_counts_in_one_process(tiny_scenario, algorithm):
    base = solve(tiny_scenario)  # HiGHS' default thread count
    for threads in (1, 2, None, 1):
        plan = solve(tiny_scenario, solver=HighsSolver(algorithm=algorithm, threads=threads))
        assert plan.objective == pytest.approx(base.objective)
