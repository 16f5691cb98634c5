"""Solver interface: every backend takes a LinearProgram and returns a Solution whose
duals are in the sign of the **maximisation** problem (d objective / d rhs)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ..errors import Status
from ..lp import LinearProgram


@dataclass
class Solution:
    status: Status
    x: np.ndarray | None  # column values
    row_dual: np.ndarray | None  # d objective / d row bound, maximisation sense
    col_dual: np.ndarray | None  # reduced costs, maximisation sense
    objective: float | None
    solver: str
    algorithm: str
    time_s: float
    iterations: int = 0
    message: str = ""
    raw_status: str = ""
    gap: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def has_plan(self) -> bool:
        return self.x is not None and self.status in (Status.OPTIMAL, Status.TIME_LIMIT)

    def __repr__(self) -> str:
        obj = "None" if self.objective is None else f"{self.objective:.6g}"
        return (
            f"Solution({self.status.value}, objective={obj}, solver={self.solver}/"
            f"{self.algorithm}, {self.time_s:.3f}s, {self.iterations} it)"
        )


class Solver(ABC):
    name: str = "solver"

    @classmethod
    def is_available(cls) -> bool:
        return True

    @abstractmethod
    def solve(self, lp: LinearProgram, time_limit: float | None = None) -> Solution: ...
