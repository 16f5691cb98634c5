"""Exceptions and the one status vocabulary every solve outcome maps to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of a solve, whatever backend ran it."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"  # stopped by the time limit, holding a feasible plan
    TIME_LIMIT_NO_SOLUTION = "time_limit_no_solution"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NUMERICAL_ERROR = "numerical_error"
    INVALID_INPUT = "invalid_input"


class AllocatorError(Exception):
    """Base class of every error the library raises on purpose."""

    status: Status = Status.NUMERICAL_ERROR


@dataclass(frozen=True)
class Issue:
    """One problem found in a scenario: where (a field path) and why. ``where`` is the
    path as a planner reads it, items named by id next to their index
    (``segments[3] (chat).demand[5]``); ``path`` stays the bare field path."""

    path: str
    message: str
    where: str = field(default="", compare=False)

    def __str__(self) -> str:
        at = self.where or self.path
        return f"{at}: {self.message}" if at else self.message


class ScenarioError(AllocatorError, ValueError):
    """The scenario is not valid. ``issues`` lists every problem with its field path."""

    status = Status.INVALID_INPUT

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        lines = "\n".join(f"  {i}" for i in self.issues)
        super().__init__(f"invalid scenario ({len(self.issues)} problem(s)):\n{lines}")


class WorkbookTooLarge(ScenarioError):
    """A workbook beyond what the reader reads (rows or columns of a sheet, cells, its
    uncompressed size): refused before it costs more than an honest file would. ``issues``
    name the sheet and the limit."""


class SolverUnavailableError(AllocatorError, ValueError):
    """The solver named is not usable here. ``available`` lists the ones that are."""

    status = Status.INVALID_INPUT

    def __init__(self, name: str, available: list[str], reason: str = ""):
        self.name = name
        self.available = list(available)
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(f"{reason or f'solver {name!r} is not available'}; available: {listed}")


class SolveError(AllocatorError, RuntimeError):
    """The solver finished without a plan we can return."""

    def __init__(self, status: Status, message: str):
        self.status = status
        super().__init__(message)


class InfeasibleError(SolveError):
    """Hard requirements (R&D floor, kind floors, hard contracts, stability) conflict.

    ``diagnosis`` (an :class:`allocator.analysis.infeasibility.Diagnosis`, when it could be
    computed) names the conflicting requirements and the smallest relaxation."""

    def __init__(self, message: str, diagnosis: Any = None):
        self.diagnosis = diagnosis
        super().__init__(Status.INFEASIBLE, message)


class UnboundedError(SolveError):
    def __init__(self, message: str):
        super().__init__(Status.UNBOUNDED, message)


class TimeLimitError(SolveError):
    """The time limit was reached before any feasible plan was found."""

    def __init__(self, message: str):
        super().__init__(Status.TIME_LIMIT_NO_SOLUTION, message)


class NumericalError(SolveError):
    def __init__(self, message: str):
        super().__init__(Status.NUMERICAL_ERROR, message)


class AllocatorWarning(UserWarning):
    """Something in the model may hurt the solve (e.g. badly scaled coefficients)."""
