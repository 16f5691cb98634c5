"""HiGHS' branch and cut where it can be stopped: in a child process, killed at the time
limit plus a grace whatever HiGHS is doing.

HiGHS checks its time limit between steps; some steps of its root node (randomized
rounding, then objective propagation, on a 300k-column MILP) ran for minutes without
checking it (issue 25: no plan after 605 s with ``--time-limit 300``). So a large MILP runs
in a child process (``python -m allocator.solvers.mip_process FOLDER``: a fresh
interpreter, no inherited HiGHS threads, and no re-import of the caller's main module as
``multiprocessing`` would do); the model goes to it as a pickle in a temporary folder; every
improving solution HiGHS finds is written by its callback to a file (values, objective,
proven bound), replaced atomically; the parent waits until the limit plus
:data:`GRACE_S`, kills the child if it is still running and returns the last solution
written (status ``time_limit``) with the bound proven so far, or the child's own final
answer when it ended in time. The MIP start (the rounded plan, ``setSolution``) goes in
with the model.

Below :data:`PROCESS_FROM_COLUMNS` columns the MILP runs in this process (HiGHS stops on
time there: the slow root-node steps grow with the model, and a child costs about a
second to start).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import MESSAGES, Solution, relative_gap

__all__ = ["GRACE_S", "PROCESS_FROM_COLUMNS", "mip_in_child", "set_start"]

GRACE_S = 3.0  # past the time limit before the child is killed (its start, the write-out)
PROCESS_FROM_COLUMNS = 2_000  # MILPs this big run in a child process


def set_start(h: Any, start: np.ndarray) -> None:
    """Hand HiGHS the feasible whole-unit plan ``start`` as its MIP start."""
    import highspy

    sol = highspy.HighsSolution()
    sol.col_value = np.asarray(start, dtype=float).tolist()
    sol.value_valid = True
    h.setSolution(sol)


def _write(folder: Path, name: str, x: np.ndarray | None, info: dict[str, Any]) -> None:
    """``name.npy`` and ``name.json`` in ``folder``, each replaced atomically (values
    first, so the JSON never names values not yet written)."""
    if x is not None:
        tmp = folder / f"{name}.tmp.npy"
        np.save(tmp, np.asarray(x, dtype=float))
        os.replace(tmp, folder / f"{name}.npy")
    tmp_json = folder / f"{name}.tmp.json"
    tmp_json.write_text(json.dumps(info))
    os.replace(tmp_json, folder / f"{name}.json")


def _child(folder: str) -> None:
    """The child process: HiGHS' branch and cut on the model in ``folder``/job.pkl, each
    improving solution and the final answer written to ``folder``. The job's
    ``highs_time_limit`` False leaves HiGHS without its own limit (a test of the kill)."""
    from allocator.solvers.highs_model import new_highs, read_solution, run_highs, to_highs_lp

    out = Path(folder)
    with open(out / "job.pkl", "rb") as f:
        job = pickle.load(f)
    lp: LinearProgram = job["lp"]
    time_limit, start = job["time_limit"], job["start"]
    (out / "job.pkl").unlink()
    h = new_highs()
    for k, v in job["options"].items():
        h.setOptionValue(k, v)
    if time_limit is not None and job["highs_time_limit"]:
        h.setOptionValue("time_limit", float(time_limit))
    h.passModel(to_highs_lp(lp))
    if start is not None:
        set_start(h, start)
    t0 = time.perf_counter()

    def improving(event: Any) -> None:
        d = event.data_out
        info = {
            "objective": -float(d.objective_function_value),
            "bound": -float(d.mip_dual_bound),
            "time_s": time.perf_counter() - t0,
        }
        _write(out, "best", np.asarray(d.mip_solution, dtype=float), info)

    h.cbMipImprovingSolution.subscribe(improving)
    run_highs(h)
    sol = read_solution(h, lp, "mip", time.perf_counter() - t0)
    final = {
        "status": sol.status.value,
        "objective": sol.objective,
        "bound": sol.bound,
        "raw_status": sol.raw_status,
        "message": sol.message,
        "iterations": sol.iterations,
        "extra": sol.extra,
        "time_s": sol.time_s,
    }
    _write(out, "final", sol.x, final)


def mip_in_child(
    lp: LinearProgram,
    time_limit: float | None,
    start: np.ndarray | None,
    options: dict[str, Any],
    *,
    grace_s: float = GRACE_S,
    highs_time_limit: bool = True,
) -> Solution:
    """HiGHS' branch and cut on ``lp`` in a child process (``options`` set on it),
    answered within ``time_limit + grace_s`` seconds whatever HiGHS does: the child's own
    answer when it ends in time, else the last improving solution it wrote and the bound
    proven with it (``raw_status`` ``killed at the time limit``)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="allocator-mip-") as folder:
        out = Path(folder)
        job = {
            "lp": lp,
            "time_limit": time_limit,
            "start": start,
            "options": options,
            "highs_time_limit": highs_time_limit,
        }
        with open(out / "job.pkl", "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        cmd = [sys.executable, "-m", "allocator.solvers.mip_process", folder]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            limit = None if time_limit is None else time_limit + grace_s
            proc.wait(limit)
            killed = False
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            if proc.poll() is None:  # timed out, or this process was interrupted
                proc.kill()
                proc.wait()
        elapsed = time.perf_counter() - t0
        if not killed and (out / "final.json").exists():
            return _final(lp, out, elapsed)
        return _best_so_far(lp, out, elapsed, killed, proc.returncode)


def _mip_solution(
    status: Status,
    x: np.ndarray | None,
    objective: float | None,
    bound: float | None,
    elapsed: float,
    message: str,
    raw: str,
    iterations: int = 0,
    extra: dict[str, float] | None = None,
) -> Solution:
    """The child's branch and cut as a Solution (no duals: the fixed LP gives them)."""
    if bound is not None and not np.isfinite(bound):
        bound = None
    return Solution(
        status=status,
        x=x,
        row_dual=None,
        col_dual=None,
        objective=objective,
        solver="highs",
        algorithm="mip",
        time_s=elapsed,
        iterations=iterations,
        message=message,
        raw_status=raw,
        gap=None if objective is None else relative_gap(objective, bound),
        bound=bound,
        extra={**(extra or {}), "mip_process": 1.0},
    )


def _final(lp: LinearProgram, out: Path, elapsed: float) -> Solution:
    """The answer the child wrote when HiGHS ended by itself."""
    info = json.loads((out / "final.json").read_text())
    x = np.load(out / "final.npy") if (out / "final.npy").exists() else None
    return _mip_solution(
        Status(info["status"]),
        x,
        info["objective"],
        info["bound"],
        elapsed,
        info["message"],
        info["raw_status"],
        int(info["iterations"]),
        info["extra"],
    )


def _best_so_far(
    lp: LinearProgram, out: Path, elapsed: float, killed: bool, exitcode: int | None
) -> Solution:
    """The last improving solution the child wrote (or none) after it was killed or
    died."""
    raw = "killed at the time limit" if killed else f"the MILP process ended ({exitcode})"
    x = objective = bound = None
    if (out / "best.json").exists():
        info = json.loads((out / "best.json").read_text())
        x = np.load(out / "best.npy")
        objective, bound = float(info["objective"]), float(info["bound"])
    if not killed:
        status = Status.NUMERICAL_ERROR
    else:
        status = Status.TIME_LIMIT if x is not None else Status.TIME_LIMIT_NO_SOLUTION
    return _mip_solution(status, x, objective, bound, elapsed, MESSAGES[status] + f" ({raw})", raw)


if __name__ == "__main__":  # the child: python -m allocator.solvers.mip_process FOLDER
    _child(sys.argv[1])
