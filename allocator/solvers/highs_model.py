"""A LinearProgram as a highspy model, and a HiGHS run read back as a Solution: the CSR
arrays go straight in, duals come back as arrays. No solver choice here: the adapters
(highs.py, rowgen.py, clp.py, pulp.py) and the registry build on it."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.solvers.base import MESSAGES, Solution, relative_gap

try:
    import highspy
except ImportError:  # pragma: no cover - highspy is a hard dependency
    highspy = None  # type: ignore[assignment]

_banner_lock = threading.Lock()
_banner_done = False


def new_highs() -> highspy.Highs:
    """A silent Highs object. highspy prints a banner to C stdout on the first
    construction in a process; keep it off our stdout (``--json`` output must be pure)."""
    global _banner_done
    with _banner_lock:
        if _banner_done:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()
                with contextlib.suppress(OSError, AttributeError):  # non-glibc platforms
                    ctypes.CDLL(None).fflush(None)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_done = True
    if _log_sink is None:
        h.setOptionValue("output_flag", False)
    else:  # the solver's log, line by line, to the sink (never C stdout)
        h.setOptionValue("log_to_console", False)
        sink = _log_sink
        h.cbLogging.subscribe(lambda event: sink(event.message))
    return h


_log_sink: Callable[[str], None] | None = None


@contextlib.contextmanager
def highs_log(sink: Callable[[str], None] | None) -> Iterator[None]:
    """HiGHS objects made inside the block send their log (presolve, iterations, the model
    status) to ``sink`` (e.g. ``sys.stderr.write``); ``None`` keeps them silent (the
    default). Process-wide, like HiGHS' own output settings: meant for a CLI run."""
    global _log_sink
    saved, _log_sink = _log_sink, sink
    try:
        yield
    finally:
        _log_sink = saved


# HiGHS runs every solve of a process on one task scheduler, started with the thread count
# of the first run; a later run that asks for another count fails at once (HighsStatus
# kError, model status kNotset), and so, before this, did solve(sc, solver=HighsSolver(
# threads=1)) after a default solve. run_highs restarts the scheduler when the count asked
# for differs from the one it was started with. The restart must not happen while another
# thread is solving: solves running at the same time should ask for the same count (the row
# generation's two chains do); a run that leaves ``threads`` at 0 (HiGHS' default) uses
# whatever scheduler there is.
_scheduler_lock = threading.Lock()
_scheduler_threads: int | None = None  # the count we last started it with (None: HiGHS' own)


def run_highs(h: highspy.Highs) -> highspy.HighsStatus:
    """``h.run()``, first restarting HiGHS' process-wide scheduler when ``h`` asks for a
    thread count other than the one it runs with."""
    global _scheduler_threads
    option: Any = h.getOptionValue("threads")
    if isinstance(option, tuple):  # highspy returns (status, value)
        option = option[-1]
    threads = int(option)
    if threads > 0:
        with _scheduler_lock:
            if threads != _scheduler_threads:
                highspy.Highs.resetGlobalScheduler(True)
                _scheduler_threads = threads
    return h.run()


def to_highs_lp(lp: LinearProgram) -> highspy.HighsLp:
    """The model in minimisation form (cost -c), row-wise, infinities as kHighsInf, with
    integrality when ``lp`` is a MILP."""
    return highs_lp(
        -lp.c,
        lp.A,
        lp.row_lower,
        lp.row_upper,
        lp.col_lower,
        lp.col_upper,
        offset=-lp.offset,
        integrality=lp.integrality if lp.is_mip else None,
    )


def highs_lp(
    cost: np.ndarray,
    A: sp.csr_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    *,
    offset: float = 0.0,
    integrality: np.ndarray | None = None,
) -> highspy.HighsLp:
    """A HighsLp (minimise ``cost @ x + offset``) from arrays and a CSR matrix."""
    inf = highspy.kHighsInf

    def fin(v: np.ndarray) -> np.ndarray:
        return np.clip(v, -inf, inf)

    h = highspy.HighsLp()
    h.num_col_ = int(cost.size)
    h.num_row_ = int(A.shape[0])
    h.col_cost_ = cost
    h.offset_ = offset
    h.col_lower_ = fin(col_lower)
    h.col_upper_ = fin(col_upper)
    h.row_lower_ = fin(row_lower)
    h.row_upper_ = fin(row_upper)
    h.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    h.a_matrix_.num_col_ = int(cost.size)
    h.a_matrix_.num_row_ = int(A.shape[0])
    h.a_matrix_.start_ = A.indptr.astype(np.int32)
    h.a_matrix_.index_ = A.indices.astype(np.int32)
    h.a_matrix_.value_ = A.data
    if integrality is not None:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        h.integrality_ = [kinds[int(v)] for v in integrality]
    return h


# MIP presolve rules that HiGHS gets wrong on models of ours, switched off for every MILP.
# "Column stuffing" (HiGHS 1.16): in a row x_a + x_b - e <= 0 whose continuous singleton
# columns earn what the integer-linked column e costs, with x_b <= 1e-6 (within
# mip_feasibility_tolerance), it sets x_a and x_b at their upper bounds and so forces a
# whole unit e >= 1: "optimal" -499.999 where buying nothing gives 0
# (tests/solvers/test_purchase_units.py::test_highs_buys_no_gpu_for_a_millionth_of_one).
MIP_RULES_OFF = ("Column stuffing",)
_RULE_LINE = re.compile(r"Rule\s+(\d+)\s+\(set bit\s+(\d+)\s*=\s*\d+\):\s*(.+?)\s*$")
_rule_bits: dict[str, int] | None = None
_rule_lock = threading.Lock()


def presolve_rule_bits() -> dict[str, int]:
    """HiGHS' presolve rules by name -> their bit in ``presolve_rule_off``, read from the
    table HiGHS itself logs (the bits differ between releases; a release without a rule
    simply lacks its name). Read once per process, from a one-column model."""
    global _rule_bits
    with _rule_lock:
        if _rule_bits is None:
            lines: list[str] = []
            try:
                _log_rule_table(lines)
            except Exception:  # an older highspy without the table: switch nothing off
                lines = []
            bits: dict[str, int] = {}
            for line in "".join(lines).splitlines():
                m = _RULE_LINE.search(line)
                if m:
                    bits[m.group(3)] = int(m.group(2))
            _rule_bits = bits
        return dict(_rule_bits)


def _log_rule_table(lines: list[str]) -> None:
    """HiGHS' presolve log of a one-column MILP with every rule switched off, into
    ``lines``: it lists each rule's bit and name."""
    new_highs()  # keeps highspy's one-time banner off stdout
    h = highspy.Highs()
    h.setOptionValue("log_to_console", False)
    h.cbLogging.subscribe(lambda event: lines.append(event.message))
    h.setOptionValue("presolve_rule_off", (1 << 30) - 1)
    h.passModel(
        highs_lp(
            np.ones(1),
            sp.csr_matrix((0, 1)),
            np.zeros(0),
            np.zeros(0),
            np.zeros(1),
            np.ones(1),
            integrality=np.ones(1, dtype=bool),
        )
    )
    h.presolve()


def mip_presolve_rules_off() -> int:
    """The ``presolve_rule_off`` bit mask for a MILP: the rules of :data:`MIP_RULES_OFF`
    this HiGHS has (0 when it has none of them)."""
    bits = presolve_rule_bits()
    return sum(1 << bits[name] for name in MIP_RULES_OFF if name in bits)


def check_mip_gap(mip_gap: float) -> float:
    if not (isinstance(mip_gap, int | float) and 0 <= mip_gap < 1):
        raise ValueError(f"mip_gap must be a relative gap in [0, 1), got {mip_gap!r}")
    return float(mip_gap)


_STATUS = {
    "kOptimal": Status.OPTIMAL,
    "kInfeasible": Status.INFEASIBLE,
    "kUnboundedOrInfeasible": Status.INFEASIBLE,  # every column of ours is bounded
    "kUnbounded": Status.UNBOUNDED,
    "kTimeLimit": Status.TIME_LIMIT,
    # other limits stop early just the same: a plan if one is feasible, else none
    "kIterationLimit": Status.TIME_LIMIT,
    "kSolutionLimit": Status.TIME_LIMIT,
    "kInterrupt": Status.TIME_LIMIT,
    "kHighsInterrupt": Status.TIME_LIMIT,
    "kModelEmpty": Status.OPTIMAL,
}


def map_highs_status(raw: str, primal_feasible: bool) -> Status:
    """One HiGHS model status (its name, e.g. ``"kTimeLimit"``) in allocator's vocabulary.

    A stop at a limit holds a plan only when HiGHS reports a feasible primal solution;
    without one it is ``time_limit_no_solution``. Anything unknown is a numerical error.

    >>> map_highs_status("kTimeLimit", primal_feasible=True).value
    'time_limit'
    >>> map_highs_status("kTimeLimit", primal_feasible=False).value
    'time_limit_no_solution'
    """
    status = _STATUS.get(raw, Status.NUMERICAL_ERROR)
    if status is Status.TIME_LIMIT and not primal_feasible:
        return Status.TIME_LIMIT_NO_SOLUTION
    return status


def status_message(status: Status, raw: str) -> str:
    msg = MESSAGES[status]
    if status is Status.NUMERICAL_ERROR:
        return msg + f" (HiGHS: {raw})"
    if status in (Status.TIME_LIMIT, Status.TIME_LIMIT_NO_SOLUTION) and raw != "kTimeLimit":
        return msg.replace("time limit", f"solver limit ({raw})")
    return msg


def read_solution(h: highspy.Highs, lp: LinearProgram, algorithm: str, elapsed: float) -> Solution:
    """The HiGHS object's result as a Solution: duals negated into maximisation sign, a
    MILP's dual bound likewise."""
    ms = h.getModelStatus()
    raw = ms.name if hasattr(ms, "name") else str(ms)
    info = h.getInfo()
    feasible = int(info.primal_solution_status) == 2
    status = map_highs_status(raw, feasible)
    iterations = int(
        max(info.simplex_iteration_count, 0)
        + max(info.ipm_iteration_count, 0)
        + max(info.crossover_iteration_count, 0)
        + max(info.pdlp_iteration_count, 0)
    )
    x = row_dual = col_dual = None
    objective = bound = gap = None
    extra: dict[str, float] = {}
    if status in (Status.OPTIMAL, Status.TIME_LIMIT):
        sol = h.getSolution()
        x = np.asarray(sol.col_value, dtype=float) if lp.num_cols else np.zeros(0)
        objective = -float(info.objective_function_value) if lp.num_cols else lp.offset
        if sol.dual_valid and not lp.is_mip:
            # minimisation duals of -c: the maximisation shadow price is their negative
            row_dual = -np.asarray(sol.row_dual, dtype=float)
            col_dual = -np.asarray(sol.col_dual, dtype=float)
    if lp.is_mip:
        extra["mip_nodes"] = float(max(info.mip_node_count, 0))
        db = -float(info.mip_dual_bound)
        if math.isfinite(db) and abs(db) < highspy.kHighsInf:
            bound = db
        if objective is not None:
            gap = relative_gap(objective, bound)
    return Solution(
        status=status,
        x=x,
        row_dual=row_dual,
        col_dual=col_dual,
        objective=objective,
        solver="highs",
        algorithm=algorithm,
        time_s=elapsed,
        iterations=iterations,
        message=status_message(status, raw),
        raw_status=raw,
        gap=gap,
        bound=bound,
        extra=extra,
        backend="highs",
    )
