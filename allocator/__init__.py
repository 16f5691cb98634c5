"""allocator: split a fixed, heterogeneous GPU fleet between competing demand.

>>> from allocator import Scenario, solve
>>> plan = solve(Scenario.from_file("data/tiny.json"))
>>> round(plan.objective, 2)
30950.0
>>> {t: round(v, 9) for t, v in plan.pool_prices["b200"].items()}
{'P1': 10.0, 'P2': 14.5}
"""

from typing import TYPE_CHECKING, Any

from allocator import _compat
from allocator.version import __version__ as __version__

_compat.install()

# The public names load on first use (PEP 562), so `allocator --help`, `validate` and the
# service's start-up import only what they need; `from allocator import solve` works as ever.
_PUBLIC = {
    "solve": "allocator.engine",
    "write_model": "allocator.solvers.export",
    "LinearProgram": "allocator.lp",
    "build_lp": "allocator.lp",
    "Plan": "allocator.plan",
    **dict.fromkeys(
        ("Kind", "Mode", "Period", "Policy", "Pool", "Scenario", "Segment", "validate_scenario"),
        "allocator.scenario",
    ),
    **dict.fromkeys(
        (
            "AllocatorError",
            "AllocatorWarning",
            "InfeasibleError",
            "Issue",
            "NumericalError",
            "ScenarioError",
            "SolveError",
            "SolverUnavailableError",
            "Status",
            "TimeLimitError",
            "UnboundedError",
        ),
        "allocator.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'allocator' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


if TYPE_CHECKING:
    from allocator.engine import solve
    from allocator.errors import (
        AllocatorError,
        AllocatorWarning,
        InfeasibleError,
        Issue,
        NumericalError,
        ScenarioError,
        SolveError,
        SolverUnavailableError,
        Status,
        TimeLimitError,
        UnboundedError,
    )
    from allocator.lp import LinearProgram, build_lp
    from allocator.plan import Plan
    from allocator.scenario import (
        Kind,
        Mode,
        Period,
        Policy,
        Pool,
        Scenario,
        Segment,
        validate_scenario,
    )
    from allocator.solvers.export import write_model

__all__ = [
    "AllocatorError",
    "AllocatorWarning",
    "InfeasibleError",
    "Issue",
    "Kind",
    "LinearProgram",
    "Mode",
    "NumericalError",
    "Period",
    "Plan",
    "Policy",
    "Pool",
    "Scenario",
    "ScenarioError",
    "Segment",
    "SolveError",
    "SolverUnavailableError",
    "Status",
    "TimeLimitError",
    "UnboundedError",
    "build_lp",
    "solve",
    "validate_scenario",
    "write_model",
]
