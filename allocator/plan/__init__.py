"""Stage 4, the plan: the named tables read out of a solution (tables.py), money
formatting (money.py), charts (charts.py) and the text summary (report.py). Imports
scenario, lp and solvers.base."""

from allocator.plan.tables import (
    ZERO,
    Allocation,
    Binding,
    KindResult,
    Plan,
    PoolResult,
    ReservationResult,
    SegmentResult,
    SolverInfo,
    Totals,
)

__all__ = [
    "ZERO",
    "Allocation",
    "Binding",
    "KindResult",
    "Plan",
    "PoolResult",
    "ReservationResult",
    "SegmentResult",
    "SolverInfo",
    "Totals",
]
