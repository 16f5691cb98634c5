"""COIN-OR CLP dual simplex through PuLP's bundled ``cbc`` binary, without PuLP's model.

The LinearProgram goes to an MPS file (HiGHS' writer, minimisation form, columns and
rows in the model's order), ``cbc`` solves it with CLP's dual simplex (``-dualS``) and
writes its binary solution file (``saveSolution``: row activities, row duals, column
values and reduced costs as doubles), which is read straight back into arrays. On the
allocator's coupled LPs this is the fastest solver measured (BENCHMARKS.md): CLP takes the
same number of dual simplex iterations as HiGHS, each about 10x cheaper.

LPs only (a MILP goes to HiGHS); duals come back in the maximisation sign used
throughout allocator.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import FEASIBILITY_TOL, MESSAGES, Solution, Solver, primal_violation
from allocator.solvers.cbc import cbc_binary, read_cbc_binary_solution
from allocator.solvers.highs_model import new_highs, to_highs_lp

_OPTIMAL = re.compile(r"^Optimal objective", re.MULTILINE)


class ClpSolver(Solver):
    """CLP dual simplex on an MPS file (see the module docstring)."""

    name = "clp"

    def __init__(self, presolve: bool = True):
        self.presolve = presolve

    @classmethod
    def is_available(cls) -> bool:
        return cbc_binary() is not None

    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        if lp.is_mip:
            raise ValueError("ClpSolver solves LPs; a MILP goes to HiGHS")
        cbc = cbc_binary()
        if cbc is None:
            raise RuntimeError("PuLP's bundled cbc binary is not available")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="allocator-clp-") as tmp:
            mps, sol_path = Path(tmp) / "model.mps", Path(tmp) / "solution.bin"
            h = new_highs()
            h.passModel(to_highs_lp(lp))
            h.writeModel(str(mps))
            del h
            t_write = time.perf_counter() - t0
            cmd = [cbc, str(mps)]
            if time_limit is not None:
                cmd += ["-sec", f"{max(time_limit - t_write, 0.01):g}"]
            if not self.presolve:
                cmd += ["-presolve", "off"]
            cmd += ["-dualS", "-saveSolution", str(sol_path)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            binary = read_cbc_binary_solution(str(sol_path))
        elapsed = time.perf_counter() - t0
        out = proc.stdout
        raw = _raw_status(out, proc.returncode)
        x = row_dual = col_dual = None
        objective = None
        ok = (
            binary is not None
            and binary["x"].size == lp.num_cols
            and binary["pi"].size == lp.num_rows
        )
        if raw == "optimal" and ok:
            status = Status.OPTIMAL
        elif raw == "time_limit" and ok:
            assert binary is not None
            feasible = primal_violation(lp, binary["x"]) <= FEASIBILITY_TOL
            status = Status.TIME_LIMIT if feasible else Status.TIME_LIMIT_NO_SOLUTION
        elif raw == "infeasible":
            status = Status.INFEASIBLE
        elif raw == "unbounded":
            status = Status.UNBOUNDED
        else:
            status = Status.NUMERICAL_ERROR
        if status in (Status.OPTIMAL, Status.TIME_LIMIT) and binary is not None:
            x = binary["x"]
            objective = lp.objective(x)
            if status is Status.OPTIMAL:
                # minimisation duals of -c: the maximisation shadow price is their negative
                row_dual, col_dual = -binary["pi"], -binary["dj"]
        message = MESSAGES[status]
        if status is Status.NUMERICAL_ERROR:
            message += f" (cbc: {raw}; {out.strip().splitlines()[-1:] or ['no output']})"
        return Solution(
            status=status,
            x=x,
            row_dual=row_dual,
            col_dual=col_dual,
            objective=objective,
            solver="clp",
            algorithm="dual-simplex",
            time_s=elapsed,
            iterations=_iterations(out),
            message=message,
            raw_status=raw,
            extra={"write_mps_s": t_write},
            backend="clp",
        )


def _raw_status(out: str, returncode: int) -> str:
    if _OPTIMAL.search(out):
        return "optimal"
    low = out.lower()
    if "stopped on time" in low or "stopped - time" in low or "time limit" in low:
        return "time_limit"
    if "primal infeasible" in low or "problem is infeasible" in low:
        return "infeasible"
    if "dual infeasible" in low or "unbounded" in low:
        return "unbounded"
    return f"unknown (exit {returncode})"


def _iterations(out: str) -> int:
    m = re.search(r"- (\d+) iterations", out)
    return int(m.group(1)) if m else 0
