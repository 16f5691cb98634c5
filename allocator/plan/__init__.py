"""Stage 4, the plan: the named tables read out of a solution (tables.py), money
formatting (money.py), charts (charts.py) and the text summary (report.py). Imports
scenario, lp and solvers.base."""

from typing import TYPE_CHECKING, Any


def __getattr__(name: str) -> Any:
    # loaded on first use: the command line's formatters (money.py, text.py) stay light
    if name in __all__:
        from allocator.plan import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
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
