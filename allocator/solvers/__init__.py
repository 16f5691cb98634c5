"""Stage 3, the solvers: one adapter per solver (highs.py, rowgen.py, clp.py, pulp.py),
the shared HiGHS model glue (highs_model.py) and CBC program glue (cbc.py), the registry
that names backends and chooses the algorithm (registry.py), and model export
(export.py). Imports lp and errors; no adapter imports another."""

from typing import TYPE_CHECKING, Any

__all__ = ["HighsSolver", "PulpSolver", "Solution", "Solver", "available_solvers"]

_LAZY = {
    "HighsSolver": "allocator.solvers.registry",
    "Solution": "allocator.solvers.base",
    "Solver": "allocator.solvers.base",
    # PuLP takes a quarter of a second to import: it loads only when asked for
    "PulpSolver": "allocator.solvers.pulp",
    "available_solvers": "allocator.solvers.pulp",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from allocator.solvers.base import Solution, Solver
    from allocator.solvers.pulp import PulpSolver, available_solvers
    from allocator.solvers.registry import HighsSolver
