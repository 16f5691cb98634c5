"""Any solver PuLP can drive (CBC bundled with PuLP, HiGHS, Gurobi, CPLEX …), fed from the
same LinearProgram arrays as the HiGHS path: one formulation, built here row by row from
the CSR matrix (PuLP needs one Python object per variable and per constraint: that is
inherent to PuLP, and why HiGHS stays the fast default).

Sign conventions. The PuLP problem is built in minimisation form (cost ``-c``, constant
``-offset``), because PuLP's adapters disagree on maximisation problems (measured: CBC
fills ``.pi`` in the sign of the maximisation, PuLP + HiGHS in the opposite sign) but agree
on minimisation: ``.pi`` is d(min objective)/d(rhs). The maximisation dual is then
``-pi`` for every solver, and ``-dj`` for reduced costs. Duals that fail the stationarity
check ``c = A'y + d`` are dropped with a note rather than reported with a wrong sign.

Ranged rows (``lo <= a'x <= hi``, the stability rows) become two PuLP constraints; the
row's dual is the sum of theirs.

Precision. CBC's text solution file, which PuLP reads, holds 8 significant digits: enough
for the objective, not for a plan whose rows cancel (200,000 GPUs used less 199,990 rented
is off by 1e-3 GPUs). For an LP solved by CBC the adapter also asks CBC for its binary
solution file (``saveSolution``: row and column values and duals as doubles) and reads
that instead, falling back to PuLP's values if the file does not match the model.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from typing import Any

import numpy as np

from allocator.errors import SolverUnavailableError, Status
from allocator.lp import LinearProgram
from allocator.solvers.base import (
    DEFAULT_MIP_GAP,
    FEASIBILITY_TOL,
    MESSAGES,
    Solution,
    Solver,
    primal_violation,
    relative_gap,
    stationarity_error,
)
from allocator.solvers.cbc import quiet_deprecations, read_cbc_binary_solution
from allocator.solvers.highs_model import (
    check_mip_gap,
    map_highs_status,
    mip_presolve_rules_off,
    status_message,
)

try:
    import pulp
except ImportError:  # pragma: no cover - pulp is a dependency
    pulp = None  # type: ignore[assignment]

# Short names users type -> PuLP solver classes, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "cbc": ("PULP_CBC_CMD", "COIN_CMD"),
    "highs": ("HiGHS", "HiGHS_CMD"),
    "gurobi": ("GUROBI", "GUROBI_CMD"),
    "cplex": ("CPLEX_PY", "CPLEX_CMD"),
    "glpk": ("GLPK_CMD", "PYGLPK"),
    "scip": ("SCIP_PY", "SCIP_CMD", "FSCIP_CMD"),
    "xpress": ("XPRESS_PY", "XPRESS"),
    "copt": ("COPT", "COPT_DLL", "COPT_CMD"),
    "mosek": ("MOSEK",),
}
DUAL_TOL = 1e-6  # stationarity error above which duals are dropped
CBC_CLASSES = ("PULP_CBC_CMD", "COIN_CMD")
CBC_MIP_OPTIONS = ("preprocess off",)  # see PulpSolver._pulp_solver


def _solver_class(name: str) -> Any:
    return getattr(pulp, name, None) or pulp.apis.__dict__.get(name)


def _is_available(name: str) -> bool:
    cls = _solver_class(name)
    if cls is None:
        return False
    try:
        with quiet_deprecations():
            return bool(cls(msg=False).available())
    except Exception:  # a solver whose library is missing can fail in many ways
        return False


def available_solvers() -> list[str]:
    """PuLP solvers usable here, by the names :class:`PulpSolver` accepts (an alias such
    as ``CBC`` when one of its classes is available, else the PuLP class name)."""
    if pulp is None:  # pragma: no cover
        return []
    out: list[str] = []
    seen: set[str] = set()
    for alias, names in ALIASES.items():
        for n in names:
            seen.add(n)
            if _is_available(n):
                out.append(_display(alias))
                break
    with quiet_deprecations():
        others = [n for n in pulp.listSolvers() if n not in seen]
    out += [n for n in dict.fromkeys(others) if _is_available(n)]
    return out


def _display(alias: str) -> str:
    return {"cbc": "CBC", "highs": "HiGHS"}.get(alias, alias.upper())


def resolve_solver(name: str) -> str:
    """The PuLP class name to use for ``name`` (``"CBC"``, ``"HiGHS"``, ``"GUROBI"``,
    ``"CPLEX"`` … or an exact PuLP class name such as ``"GUROBI_CMD"``); raises
    :class:`SolverUnavailableError` listing the available ones when it is not usable."""
    if pulp is None:  # pragma: no cover
        raise SolverUnavailableError(name, [], "PuLP is not installed (pip install pulp)")
    candidates = ALIASES.get(name.lower(), (name,))
    for n in candidates:
        if _is_available(n):
            return n
    with quiet_deprecations():
        known = set(pulp.listSolvers()) | set(ALIASES)
    if name.lower() not in {k.lower() for k in known}:
        reason = f"PuLP has no solver called {name!r}"
    else:
        reason = f"PuLP solver {name!r} is not available here (not installed or not licensed)"
    raise SolverUnavailableError(name, available_solvers(), reason)


class PulpSolver(Solver):
    """Solve through PuLP with the solver named ``solver`` (default ``"CBC"``, bundled with
    PuLP). ``mip_gap`` is the relative MIP gap at which a MILP stops; ``threads`` and
    ``msg`` go to the PuLP solver, and so do ``options`` (keyword arguments of the PuLP
    solver class, e.g. ``{"presolve": False}`` for CBC)."""

    name = "pulp"

    def __init__(
        self,
        solver: str = "CBC",
        mip_gap: float = DEFAULT_MIP_GAP,
        threads: int | None = None,
        msg: bool = False,
        options: dict[str, Any] | None = None,
    ):
        self.solver = resolve_solver(solver)
        self.requested = solver
        self.mip_gap = check_mip_gap(mip_gap)
        self.threads = threads
        self.msg = msg
        self.options = dict(options or {})

    @classmethod
    def is_available(cls) -> bool:
        return pulp is not None

    def _pulp_solver(
        self, mip: bool, time_limit: float | None, binary_solution: str | None = None
    ) -> Any:
        kwargs: dict[str, Any] = {"msg": self.msg, "mip": mip}
        if time_limit is not None:
            kwargs["timeLimit"] = float(time_limit)
        if mip:
            kwargs["gapRel"] = self.mip_gap
        if self.threads:
            kwargs["threads"] = int(self.threads)
        cbc = self.solver in CBC_CLASSES
        if mip and cbc:
            # CBC 2.10's preprocessing (CglPreProcess) loses the optimum of tiny models of
            # ours: max 2x - 0.5r, x <= r, x <= 0.5, r whole gives 0, not 0.5 at r = 1
            # (tests/solvers/test_purchase_units.py::test_cbc_rents_the_one_gpu_it_needs).
            # The user's own options come after, so "preprocess on" there wins.
            kwargs["options"] = list(CBC_MIP_OPTIONS)
        if mip and self.solver == "HiGHS":  # highspy through PuLP: as HighsDirectSolver
            rules_off = mip_presolve_rules_off()
            if rules_off:
                kwargs["presolve_rule_off"] = rules_off
        user = dict(self.options)
        if cbc and "options" in user:
            kwargs["options"] = list(kwargs.get("options") or []) + list(user.pop("options"))
        kwargs.update(user)
        if binary_solution is not None:
            # CBC runs its commands in order and PuLP puts options before its own solve
            # command: solve, save the doubles, then PuLP's solve restarts at the optimum
            # (no iterations) and writes the text file PuLP reads.
            extra = ["initialSolve", f"saveSolution {binary_solution}"]
            kwargs["options"] = list(kwargs.get("options") or []) + extra
        with quiet_deprecations():
            return _solver_class(self.solver)(**kwargs)

    def run(self, lp: LinearProgram, time_limit: float | None = None) -> Solution:
        t0 = time.perf_counter()
        model = build_pulp_model(lp)
        build_s = time.perf_counter() - t0
        binary = log = None
        cbc = self.solver in CBC_CLASSES and " " not in tempfile.gettempdir()
        if cbc and not lp.is_mip:
            binary = _temp_path(".sol")
        if cbc and lp.is_mip and not self.msg and "logPath" not in self.options:
            log = _temp_path(".log")  # CBC's log is the only place it states its bound
        solver = self._pulp_solver(lp.is_mip, time_limit, binary)
        if log is not None:
            solver.optionsDict["logPath"] = log
        t1 = time.perf_counter()
        try:
            model.problem.solve(solver)
            if binary is not None:
                model.binary = read_cbc_binary_solution(binary)
            if log is not None:
                model.mip_gap_abs = read_cbc_log_gap(log)
        except Exception as exc:  # PulpSolverError, or an adapter tripping on a status
            if _highs_of(model.problem) is not None:
                # PuLP's HiGHS adapter raises KeyError on statuses it does not list (e.g.
                # kSolutionLimit) after it has read the values: HiGHS itself knows
                elapsed = time.perf_counter() - t1
                return read_pulp_solution(
                    model, lp, self.solver, time_limit, elapsed, build_s, self.mip_gap
                )
            return Solution(
                Status.NUMERICAL_ERROR,
                None,
                None,
                None,
                None,
                solver=self.solver,
                algorithm="mip" if lp.is_mip else "lp",
                time_s=time.perf_counter() - t1,
                message=f"{MESSAGES[Status.NUMERICAL_ERROR]} ({self.solver}: "
                f"{type(exc).__name__}: {exc})",
                raw_status=type(exc).__name__,
                backend="pulp",
            )
        finally:
            for path in (binary, log):
                if path is not None and os.path.exists(path):
                    os.unlink(path)
        elapsed = time.perf_counter() - t1
        return read_pulp_solution(
            model, lp, self.solver, time_limit, elapsed, build_s, self.mip_gap
        )


def _temp_path(suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix="allocator-cbc-", suffix=suffix)
    os.close(fd)
    os.unlink(path)  # CBC creates it; its absence afterwards means "not written"
    return path


_CBC_OBJECTIVE = re.compile(r"^Objective value:\s*(\S+)", re.MULTILINE)
_CBC_BOUND = re.compile(r"^Lower bound:\s*(\S+)", re.MULTILINE)


def read_cbc_log_gap(path: str) -> float | None:
    """The absolute gap CBC states at the end of a stopped search ("Objective value:" less
    "Lower bound:", minimisation form), or None when its log does not state one (a
    completed search prints no bound)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    obj, bound = _CBC_OBJECTIVE.findall(text), _CBC_BOUND.findall(text)
    try:
        gap = float(obj[-1]) - float(bound[-1])
    except (IndexError, ValueError):
        return None
    return max(gap, 0.0) if np.isfinite(gap) else None


class PulpModel:
    """The PuLP problem and the objects that map back to the LinearProgram's arrays."""

    def __init__(self, problem: Any, variables: list[Any], rows: list[tuple[int, Any]]):
        self.problem = problem
        self.variables = variables
        self.rows = rows  # (row index in lp, PuLP constraint): two entries for a ranged row
        self.binary: dict[str, np.ndarray] | None = None  # CBC's doubles, when read
        self.mip_gap_abs: float | None = None  # CBC's stated gap, when it stopped early


def build_pulp_model(lp: LinearProgram) -> PulpModel:
    """The PuLP problem of ``lp`` in minimisation form: variable ``v{j}`` per column
    (zero-padded, so PuLP's name order is column order), constraint ``c{i}`` per row
    (``c{i}_lo`` and ``c{i}_up`` for a ranged row), each row's expression taken from its
    slice of the CSR matrix."""
    prob = pulp.LpProblem("allocator", pulp.LpMinimize)
    lower = [None if not np.isfinite(v) else float(v) for v in lp.col_lower]
    upper = [None if not np.isfinite(v) else float(v) for v in lp.col_upper]
    integer = lp.integrality.tolist() if lp.integrality is not None else [False] * lp.num_cols
    cont, intg = pulp.LpContinuous, pulp.LpInteger
    variables = [
        prob.add_variable(f"v{j:09d}", lower[j], upper[j], intg if integer[j] else cont)
        for j in range(lp.num_cols)
    ]
    prob.setObjective(
        pulp.LpAffineExpression(zip(variables, (-lp.c).tolist(), strict=True), -lp.offset)
    )
    A = lp.A.tocsr()
    indptr, indices, data = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
    rows: list[tuple[int, Any]] = []
    le, ge, eq = pulp.LpConstraintLE, pulp.LpConstraintGE, pulp.LpConstraintEQ
    for i, (lo, hi) in enumerate(zip(lp.row_lower.tolist(), lp.row_upper.tolist(), strict=True)):
        has_lo, has_hi = lo > -np.inf, hi < np.inf
        if not (has_lo or has_hi):
            continue  # a free row constrains nothing; its dual is 0
        s, e = indptr[i], indptr[i + 1]
        expr = pulp.LpAffineExpression(
            [(variables[k], v) for k, v in zip(indices[s:e], data[s:e], strict=True)]
        )
        parts: list[tuple[str, int, float]]
        if has_lo and has_hi and lo == hi:
            parts = [(f"c{i}", eq, lo)]
        elif has_lo and has_hi:
            parts = [(f"c{i}_lo", ge, lo), (f"c{i}_up", le, hi)]
        else:
            parts = [(f"c{i}", ge, lo)] if has_lo else [(f"c{i}", le, hi)]
        for name, sense, rhs in parts:
            con = pulp.LpConstraint(expr, sense, name, rhs)
            prob.addConstraint(con)
            rows.append((i, con))
    return PulpModel(prob, variables, rows)


def map_pulp_status(status: int, sol_status: int, time_limited: bool) -> Status:
    """PuLP's ``(problem.status, problem.sol_status)`` in allocator's vocabulary.

    ``sol_status`` says more than ``status``: CBC stopped by its time limit holding a
    solution reports status "Optimal" with sol_status "integer feasible"; PuLP + HiGHS does
    the same for any limit. A stop without a solution is ``time_limit_no_solution`` when a
    time limit was set, a numerical error otherwise.

    >>> map_pulp_status(1, 2, time_limited=True).value  # Optimal, IntegerFeasible
    'time_limit'
    >>> map_pulp_status(0, 0, time_limited=True).value  # Not Solved, no solution
    'time_limit_no_solution'
    """
    if sol_status == 1:  # LpSolutionOptimal
        return Status.OPTIMAL
    if sol_status == 2:  # LpSolutionIntegerFeasible: stopped early with a solution
        return Status.TIME_LIMIT
    if sol_status == -1 or status == -1:  # Infeasible
        return Status.INFEASIBLE
    if sol_status == -2 or status == -2:  # Unbounded
        return Status.UNBOUNDED
    if status == 1:  # "Optimal" without a solution status: trust the status
        return Status.OPTIMAL
    if status == 0 and time_limited:  # Not Solved
        return Status.TIME_LIMIT_NO_SOLUTION
    return Status.NUMERICAL_ERROR


def _highs_of(prob: Any) -> Any:
    """The highspy object PuLP's HiGHS adapter solved, once it has run; else None."""
    h = getattr(prob, "solverModel", None)
    if h is None or not (hasattr(h, "getModelStatus") and hasattr(h, "getInfo")):
        return None
    ms = h.getModelStatus()
    return None if getattr(ms, "name", "") == "kNotset" else h


def read_pulp_solution(
    model: PulpModel,
    lp: LinearProgram,
    solver_name: str,
    time_limit: float | None,
    elapsed: float,
    build_s: float = 0.0,
    mip_gap: float | None = None,
) -> Solution:
    """Values, duals (negated from minimisation form), status and, where the solver is
    HiGHS through its Python API, HiGHS' own model status and MIP bound."""
    prob = model.problem
    raw = f"{pulp.LpStatus.get(prob.status, prob.status)}/" + str(
        pulp.LpSolution.get(prob.sol_status, prob.sol_status)
    )
    status = map_pulp_status(prob.status, prob.sol_status, time_limit is not None)
    bound = None
    highs = _highs_of(prob)
    if highs is not None:
        # PuLP maps every HiGHS limit to "Optimal": ask HiGHS itself
        ms = highs.getModelStatus()
        raw = "HiGHS:" + (ms.name if hasattr(ms, "name") else str(ms))
        info = highs.getInfo()
        status = map_highs_status(raw.removeprefix("HiGHS:"), info.primal_solution_status == 2)
        if lp.is_mip and np.isfinite(info.mip_dual_bound) and abs(info.mip_dual_bound) < 1e300:
            bound = -float(info.mip_dual_bound)

    x = row_dual = col_dual = None
    objective = gap = None
    note = ""
    binary = model.binary if status is Status.OPTIMAL else None
    if binary is not None:
        text_x = np.array([v.varValue or 0.0 for v in model.variables], dtype=float)
        if binary["x"].size != lp.num_cols or binary["pi"].size != len(model.rows):
            binary = None  # PuLP wrote a different model (a dummy column …): use its text
        elif not np.allclose(binary["x"], text_x, rtol=1e-7, atol=1e-6):
            binary = None  # not the solution PuLP read
    if status in (Status.OPTIMAL, Status.TIME_LIMIT):
        x = (
            binary["x"]
            if binary is not None
            else np.array([v.varValue or 0.0 for v in model.variables], dtype=float)
        )
        if status is Status.TIME_LIMIT and primal_violation(lp, x) > FEASIBILITY_TOL:
            # an LP stopped mid-simplex, or a solver that called a non-solution feasible
            status, x = Status.TIME_LIMIT_NO_SOLUTION, None
    if x is not None:
        objective = lp.objective(x)
        if not lp.is_mip:
            row_dual, col_dual, note = _duals(model, lp, binary)
        else:
            if bound is None and model.mip_gap_abs is not None:
                bound = objective + model.mip_gap_abs  # CBC's own bound, constant-free
            if bound is None and status is Status.OPTIMAL and mip_gap is not None:
                # proven optimal to within the gap asked for; the solver states no bound
                bound = objective + mip_gap * abs(objective)
            gap = relative_gap(objective, bound)
    return Solution(
        status=status,
        x=x,
        row_dual=row_dual,
        col_dual=col_dual,
        objective=objective,
        solver=solver_name,
        algorithm="mip" if lp.is_mip else "lp",
        time_s=elapsed,
        message=(
            status_message(status, raw.removeprefix("HiGHS:"))
            if raw.startswith("HiGHS:")
            else MESSAGES[status]
            + (f" ({solver_name}: {raw})" if status is Status.NUMERICAL_ERROR else "")
        ),
        raw_status=raw,
        gap=gap,
        bound=bound,
        extra={"pulp_build_s": build_s},
        backend="pulp",
        duals_note=note,
    )


def _duals(
    model: PulpModel, lp: LinearProgram, binary: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Row duals (a ranged row's two parts summed) and reduced costs, negated from the
    minimisation form into maximisation sign, and checked."""
    if binary is not None:
        pis: Any = binary["pi"]
        djs: Any = binary["dj"]
    else:
        pis = [con.pi for _, con in model.rows]
        djs = [v.dj for v in model.variables]
    if any(p is None for p in pis):
        return None, None, "the PuLP solver gave no duals"
    row_dual = np.zeros(lp.num_rows)
    np.add.at(row_dual, [i for i, _ in model.rows], -np.asarray(pis, dtype=float))
    col_dual = None if any(d is None for d in djs) else -np.asarray(djs, dtype=float)
    err = stationarity_error(lp, row_dual, col_dual)
    if err > DUAL_TOL:
        return (
            None,
            None,
            f"the duals failed the optimality check c = A'y + d (error {err:.2g}): "
            "not reported rather than reported with a wrong sign",
        )
    return row_dual, col_dual, ""
