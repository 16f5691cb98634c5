from .base import Solution, Solver
from .highs import HighsSolver

__all__ = ["HighsSolver", "Solution", "Solver"]
