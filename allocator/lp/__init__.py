"""Stage 2, the linear program: the scenario as arrays (arrays.py), the LinearProgram
container (program.py), the ordered ``define_*`` constraint blocks (build.py) and the
independent check of a plan against the scenario (check.py). Imports scenario and errors."""

from allocator.lp.arrays import KINDS, ScenarioArrays
from allocator.lp.build import build_lp, count_columns
from allocator.lp.program import ColumnIndex, LinearProgram, RowBlock

__all__ = [
    "KINDS",
    "ColumnIndex",
    "LinearProgram",
    "RowBlock",
    "ScenarioArrays",
    "build_lp",
    "count_columns",
]
