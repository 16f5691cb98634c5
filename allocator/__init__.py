"""allocator: split a fixed, heterogeneous GPU fleet between competing demand.

>>> from allocator import Scenario, solve
>>> plan = solve(Scenario.from_file("data/tiny.json"))
>>> round(plan.objective, 2)
30950.0
>>> {t: round(v, 9) for t, v in plan.pool_prices["b200"].items()}
{'P1': 10.0, 'P2': 14.5}
"""

from allocator import _compat
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
from allocator.version import __version__ as __version__

_compat.install()


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
