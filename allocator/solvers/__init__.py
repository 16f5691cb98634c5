from typing import Any

from .base import Solution, Solver
from .highs import HighsSolver

__all__ = ["HighsSolver", "PulpSolver", "Solution", "Solver"]


def __getattr__(name: str) -> Any:
    # PuLP takes a quarter of a second to import: load it only when asked for
    if name in ("PulpSolver", "available_solvers"):
        from . import pulp

        return getattr(pulp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
