"""Stage 3, the solvers: one adapter per solver (highs.py, rowgen.py, clp.py, pulp.py),
the shared HiGHS model glue (highs_model.py) and CBC program glue (cbc.py), the registry
that names backends and chooses the algorithm (registry.py), and model export
(export.py). Imports lp and errors; no adapter imports another."""

from typing import Any

from allocator.solvers.base import Solution, Solver
from allocator.solvers.registry import HighsSolver

__all__ = ["HighsSolver", "PulpSolver", "Solution", "Solver"]


def __getattr__(name: str) -> Any:
    # PuLP takes a quarter of a second to import: load it only when asked for
    if name in ("PulpSolver", "available_solvers"):
        from allocator.solvers import pulp

        return getattr(pulp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
