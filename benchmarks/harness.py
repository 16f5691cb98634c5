"""The benchmark behind ``make bench`` / ``python -m benchmarks`` / ``allocator bench``.

For each size, one after another in one run:

(a) ``engine``: the engine end to end, scenario JSON text -> validated Scenario -> LP ->
    the default solver -> Plan with shadow prices (exactly what :func:`allocator.solve`
    does, timed phase by phase);
(b) the solvers alone, each handed the finished LP (the build is not timed):
    ``highs-ipm`` (interior point with crossover), ``highs-ipm-nox`` (no crossover),
    ``highs-simplex`` (dual simplex), ``highs-pdlp``, and ``clp`` (COIN-OR CLP dual simplex,
    PuLP's bundled ``cbc`` binary run on an MPS file written by :mod:`allocator.solvers.export`;
    writing the file is reported apart, not counted);
(c) peers a user would pick instead: ``pulp-cbc`` (the same model written as PuLP users
    write it, an ``LpVariable`` per variable and constraints summed in Python loops,
    solved by PuLP's default CBC) and ``linopy-highs`` (the same model in linopy, solved
    with its default HiGHS settings; only when linopy is installed:
    ``pip install 'allocator[bench]'``);
(d) ``warm``: a :class:`~allocator.workflows.planner.Planner` re-solve after a 5 % demand change in
    one period, against its own cold solve and against b's cold solve of the whole LP;
(d') ``whatif``: what-ifs end to end (overrides in, plan and difference out) after a
    planner's cold solve, one period and every period changed, against the engine's own
    cold end-to-end solve in the same process (issue 25);
(e) ``pop-2``, ``pop-4``: the partitioned mode (:mod:`allocator.workflows.partition`, k groups with
    1/k of every pool, in parallel): its objective gap to the engine's optimum and its
    speed-up;
(f) ``plan-io``: the data path around a solve: the read-out and the plan's JSON against
    the solve (target: <= 20 % at 1M), the former standard-library indented JSON, and the
    Parquet, XLSX and CSV writers beside JSON;
(g) ``cli-solve``: the whole ``allocator solve FILE -o plan.json`` process against the
    engine phase (a) and against the ``cbc`` process on the same MPS (the ``clp`` phase).

Each run is a fresh subprocess (``--worker``), so its peak memory (``ru_maxrss``, the
Python interpreter and imports included, about 70-150 MB) is its own; where a ``cbc``
child runs, ``peak_mb`` is the larger of the Python process and the child (whose
``ru_maxrss`` starts at the parent's size, as it forks), both also reported apart. Results go
to ``benchmarks/results/results.json`` and a Markdown table to
``benchmarks/results/results.md``. Sizes are named by
their approximate number of variables (``10k`` … ``1m``); ``100k-tight`` is ``100k`` with
a stability limit ten times tighter (0.01), where the engine's lazy rows give way to
interior point. ``BENCH_SIZES=10k,40k`` or ``--sizes`` picks a subset.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the harness imports allocator lazily, inside each timed phase
    from allocator.lp.arrays import ScenarioArrays

# name: (segments, pools, periods); compatibility 0.3, stability 0.1 (coupled periods)
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (12, 4, 4),
    "10k": (100, 8, 24),
    "40k": (250, 16, 24),
    "100k": (300, 16, 52),
    "100k-tight": (300, 16, 52),
    "300k": (800, 20, 52),
    "1m": (2000, 32, 52),
}
ROOT = Path(__file__).resolve().parents[1]  # the checkout: workers run ``-m benchmarks`` there
COMPATIBILITY = 0.3
STABILITY = 0.1
# sizes whose stability limit differs: "-tight" couples the periods hard (many stability
# rows bind), the case where the engine's lazy rows give way to interior point
STABILITY_OF = {"100k-tight": 0.01}
SOLVERS_ALONE = ("highs-ipm", "highs-ipm-nox", "highs-simplex", "highs-pdlp", "clp")
PEERS = ("pulp-cbc", "linopy-highs")
PARTITIONED = ("pop-2", "pop-4")
DATA_PATH = ("plan-io", "cli-solve")
# two-stage plans over sampled demand scenarios (cv 0.2): the extensive form, the
# decomposition on the local process pool, and on a Dask LocalCluster of 1 and 2 workers
# stoch-decomp-own / -shared: the decomposition with a HiGHS object per scenario against
# one per worker (share_models), side by side (the library's default is the shared one)
STOCHASTIC = (
    "stoch-extensive",
    "stoch-decomp",
    "stoch-decomp-own",
    "stoch-decomp-shared",
    "stoch-dask-1",
    "stoch-dask-2",
)
STOCH_SCENARIOS_OF = {"1m": 20}  # demand scenarios per size (default 10)
STOCH_EXTENSIVE_MAX_COLUMNS = 5_000_000  # bigger extensive forms are skipped (memory)
# whole-unit plans (issue 25): the fleet with allocation_unit_gpus 8 on every pool, within
# a time limit: the engine (the LP relaxation rounded and repaired, then HiGHS' branch and
# cut from it in a child process) against HiGHS' branch and cut alone with the same limit
MILP = ("milp", "milp-highs")
MILP_UNIT_GPUS = 8
MILP_TIME_LIMIT_OF = {"1m": 300.0}  # seconds; 60 for other sizes
# the CLI's two-stage plan (issue 25): `allocator stochastic --sample K` as a process,
# memory summed over its process tree
CLI_STOCHASTIC = ("cli-stochastic",)
PHASES = (
    "engine",
    *SOLVERS_ALONE,
    *PEERS,
    "warm",
    "whatif",
    *PARTITIONED,
    *DATA_PATH,
    *STOCHASTIC,
    *MILP,
    *CLI_STOCHASTIC,
)
OBJ_TOL = 1e-6  # relative objective agreement counted as "the same optimum"


def cbc_path() -> str:
    """PuLP's bundled cbc binary (or a cbc on the PATH)."""
    from allocator.solvers.cbc import cbc_binary

    path = cbc_binary()
    if path is None:
        raise FileNotFoundError("PuLP's bundled cbc binary was not found")
    return path


def scenario_dict(size: str, seed: int = 0) -> dict:
    from allocator.scenario.generate import generate_dict

    S, P, T = SIZES[size]
    stability = STABILITY_OF.get(size, STABILITY)
    return generate_dict(S, P, T, seed=seed, compatibility=COMPATIBILITY, stability=stability)


def peak_mb() -> tuple[float, float]:
    """Peak resident MB of this process and of its largest child (cbc), Linux KiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024.0, kids / 1024.0


# ------------------------------------------------------------------------------ workers
def run_engine(path: Path, time_limit: float) -> dict:
    """(a) JSON text -> Scenario -> LP -> default solver -> Plan, as allocator.solve does."""
    from allocator.lp.arrays import ScenarioArrays
    from allocator.lp.build import build_lp
    from allocator.plan import Plan
    from allocator.scenario import Scenario
    from allocator.solvers.registry import make_solver

    t0 = time.perf_counter()
    sc = Scenario.from_dict(json.loads(path.read_text()))
    t1 = time.perf_counter()
    arrays = ScenarioArrays.of(sc)
    lp = build_lp(sc)
    t2 = time.perf_counter()
    solver = make_solver()
    sol = solver.solve(lp, time_limit=time_limit)
    t3 = time.perf_counter()
    if not sol.has_plan:
        return {"status": sol.status.value, "wall_s": t3 - t0, "algorithm": sol.algorithm}
    plan = Plan.from_solution(sc, lp, sol, build_time_s=t2 - t1, arrays=arrays)
    t4 = time.perf_counter()
    return {
        "status": sol.status.value,
        "objective": plan.objective,
        "has_duals": plan.has_duals,
        "algorithm": sol.algorithm,
        "wall_s": t4 - t0,
        "parse_validate_s": t1 - t0,
        "build_s": t2 - t1,
        "solve_s": t3 - t2,
        "plan_s": t4 - t3,
        "iterations": sol.iterations,
        # the row generation's own account (solvers/rowgen.py): periods, rounds, rows added
        "solver_stats": {k: v for k, v in sol.extra.items() if isinstance(v, int | float)},
    }


def run_plan_io(path: Path, time_limit: float) -> dict:
    """(f) the data path around a solve: the read-out, plan.to_dict(), the plan's JSON
    (orjson, compact) against the standard library's indented JSON of the same dict (the
    former CLI), and the Parquet, XLSX and CSV writers."""
    from allocator.lp.arrays import ScenarioArrays
    from allocator.lp.build import build_lp
    from allocator.plan import Plan
    from allocator.plan.writers import write_plan
    from allocator.scenario import Scenario
    from allocator.solvers.registry import make_solver

    sc = Scenario.from_dict(json.loads(path.read_text()))
    arrays = ScenarioArrays.of(sc)
    lp = build_lp(sc)
    t0 = time.perf_counter()
    sol = make_solver().solve(lp, time_limit=time_limit)
    t1 = time.perf_counter()
    if not sol.has_plan:
        return {"status": sol.status.value, "wall_s": t1 - t0}
    plan = Plan.from_solution(sc, lp, sol, arrays=arrays)
    t2 = time.perf_counter()
    raw = plan.to_json_bytes()
    t3 = time.perf_counter()
    d = plan.to_dict()
    t4 = time.perf_counter()
    json.dumps(d, indent=2, allow_nan=False)
    t5 = time.perf_counter()
    out: dict[str, Any] = {
        "status": sol.status.value,
        "objective": plan.objective,
        "solve_s": t1 - t0,
        "readout_s": t2 - t1,
        "json_s": t3 - t2,
        "json_mb": len(raw) / 1e6,
        "to_dict_s": t4 - t3,
        "stdlib_json_indent_s": t5 - t4,
        "rows": {k: len(t) for k, t in plan.tables().items()},
        "wall_s": t3 - t1,  # read-out plus JSON: what the target compares with the solve
    }
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as tmp:
        for fmt, name in (("parquet", "plan.parquet"), ("xlsx", "plan.xlsx"), ("csv", "csv/")):
            t = time.perf_counter()
            try:
                write_plan(plan, Path(tmp) / name)
            except ImportError as exc:  # pyarrow is optional
                out[f"{fmt}_s"] = f"skipped: {exc}"
                continue
            out[f"{fmt}_s"] = time.perf_counter() - t
    return out


def run_cli_solve(path: Path, time_limit: float) -> dict:
    """(g) the whole command as a new process: ``allocator solve FILE -o plan.json`` and
    ``allocator solve FILE --json`` (stdout to a file): start-up, imports, parse, build,
    solve, read-out and the JSON written; against the same solve in this process
    (``solve()`` + ``plan.to_dict()``, after the processes, so their peaks are their own),
    and ``allocator --help`` against a bare ``python -c pass``."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as tmp:
        target = Path(tmp) / "plan.json"
        base = [sys.executable, "-m", "allocator", "solve", str(path)]
        limit = ["--time-limit", f"{time_limit:g}"]
        for name, args in (("file", ["-o", str(target)]), ("json", ["--json"])):
            with (Path(tmp) / "stdout").open("wb") as sink:
                r = _timed_process([*base, *args, *limit], time_limit + 120, sink)
            written = target if name == "file" else Path(tmp) / "stdout"
            if r.pop("returncode") != 0 or not written.exists():
                return {"status": f"exit: {r.get('stderr', '')[-200:]}", "wall_s": r["wall_s"]}
            plan = json.loads(written.read_bytes())
            out[f"{name}_wall_s"], out[f"{name}_peak_mb"] = r["wall_s"], r["peak_mb"]
            out[f"{name}_mb"] = written.stat().st_size / 1e6
    for name, cmd in (
        ("help", [sys.executable, "-m", "allocator", "--help"]),
        ("python", [sys.executable, "-c", "pass"]),
    ):
        walls = [_timed_process(cmd, 60)["wall_s"] for _ in range(5)]
        out[f"{name}_s"] = statistics.median(walls)
    from allocator import solve

    t0 = time.perf_counter()
    inproc = solve(path, time_limit=time_limit)
    inproc.to_dict()
    out["in_process_s"] = time.perf_counter() - t0
    return {
        "status": plan["status"],
        "objective": plan["totals"]["objective"],
        "wall_s": out["file_wall_s"],
        "json_mb": out["file_mb"],
        **out,
    }


def _timed_process(cmd: list[str], timeout: float, stdout: Any = None) -> dict:
    """Wall time, exit code and peak resident MB of a command (``wait4``: this child's own
    rusage, not the high-water mark of every child so far)."""
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout or subprocess.DEVNULL, stderr=errf, cwd=ROOT)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        errf.seek(0)
        stderr = errf.read().decode(errors="replace")
    return {
        "wall_s": wall,
        "returncode": proc.returncode,
        "peak_mb": usage.ru_maxrss / 1024.0,
        "stderr": stderr,
    }


def _lp_of(path: Path) -> Any:
    from allocator.lp.build import build_lp
    from allocator.scenario import Scenario

    sc = Scenario.from_file(path)
    return sc, build_lp(sc)


def run_highs(path: Path, time_limit: float, algorithm: str, crossover: bool = True) -> dict:
    from allocator.solvers.highs_model import new_highs, read_solution, to_highs_lp

    _, lp = _lp_of(path)
    h = new_highs()
    h.setOptionValue("solver", algorithm)
    if algorithm == "ipm":
        h.setOptionValue("run_crossover", "on" if crossover else "off")
    h.setOptionValue("time_limit", float(time_limit))
    t0 = time.perf_counter()
    h.passModel(to_highs_lp(lp))
    h.run()
    elapsed = time.perf_counter() - t0
    sol = read_solution(h, lp, algorithm, elapsed)
    return {
        "status": sol.status.value,
        "objective": sol.objective,
        "has_duals": sol.row_dual is not None,
        "wall_s": elapsed,
        "iterations": sol.iterations,
    }


def run_clp(path: Path, time_limit: float) -> dict:
    """CLP dual simplex: the bundled cbc binary on the MPS file of allocator.solvers.export."""
    from allocator.solvers.export import model_text

    sc, lp = _lp_of(path)
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as tmp:
        mps, solu = Path(tmp) / "model.mps", Path(tmp) / "sol.txt"
        t0 = time.perf_counter()
        mps.write_text(model_text(sc, lp, "mps"))
        t1 = time.perf_counter()
        cmd = [cbc_path(), str(mps), "-sec", f"{time_limit:g}", "-dualS", "-solu", str(solu)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=time_limit + 120)
        t2 = time.perf_counter()
        head = solu.read_text().split("\n", 1)[0] if solu.exists() else proc.stdout[-300:]
    status = "optimal" if head.startswith("Optimal") else head.strip()[:80]
    objective = None
    if "objective value" in head:
        # the MPS file minimises -objective (see allocator.solvers.export)
        objective = -float(head.rsplit("objective value", 1)[1].strip())
    return {
        "status": status,
        "objective": objective,
        "has_duals": True,  # CLP holds them; printed with -printingOptions all
        "wall_s": t2 - t1,
        "write_mps_s": t1 - t0,
    }


def pulp_model(sc: Any) -> tuple[Any, Any]:
    """The allocator model written the way PuLP users usually write it: an LpVariable per
    variable, constraints summed in Python loops over the scenario."""
    import pulp

    from allocator.lp.arrays import ScenarioArrays

    a = ScenarioArrays.of(sc)
    prob = pulp.LpProblem("allocator", pulp.LpMaximize)
    x, r, u, obj = _pulp_variables(a, sc.policy.ltv_weight)
    offset = -float(np.sum(a.discount[None, :] * a.churn * a.demand))
    prob += pulp.lpSum(obj) + offset
    _pulp_balance_rows(prob, a, x, r, u)
    _pulp_policy_rows(prob, a, sc.policy, x)
    return prob, x


def _pulp_variables(a: ScenarioArrays, w: float) -> tuple[dict, dict, dict, list]:
    """The x (GPUs per segment, mode, pool, period), r (rentals) and u (contract shortfall)
    variables, and the objective's terms (without its constant)."""
    import pulp

    S, T = a.demand.shape
    P = a.gpus.shape[0]
    x: dict[tuple[int, int, int, int], Any] = {}
    obj = []
    for k, s in enumerate(a.mode_segment.tolist()):
        # per-unit numbers per period (issue 15): (T,)
        value = a.revenue[s] * a.mode_rev_share[k] + w * a.ltv[s] * a.mode_ltv_share[k]
        value = value + a.churn[s]
        for p in range(P):
            if not a.compatible[s, p]:
                continue
            for t in range(T):
                v = pulp.LpVariable(f"x_{s}_{k}_{p}_{t}", lowBound=0)
                x[s, k, p, t] = v
                units = a.hours[t] * a.throughput[s, p, t] * a.mode_mult[k, t]
                obj.append(a.discount[t] * (units * value[t] - a.hours[t] * a.var_cost[p, t]) * v)
    r = {}
    for p in range(P):
        for t in range(T):
            if a.rentable[p, t] > 0:
                r[p, t] = pulp.LpVariable(f"r_{p}_{t}", 0, a.rentable[p, t])
                obj.append(-a.discount[t] * a.hours[t] * a.rental_price[p, t] * r[p, t])
    u = {}
    for s in range(S):
        for t in range(T):
            if a.contract_min[s, t] > 0 and not a.contract_hard[s]:
                u[s, t] = pulp.LpVariable(f"u_{s}_{t}", lowBound=0)
                obj.append(-a.discount[t] * a.penalty[s, t] * u[s, t])
    return x, r, u, obj


def _pulp_balance_rows(prob: Any, a: ScenarioArrays, x: dict, r: dict, u: dict) -> None:
    """Pool capacity, demand and contract-minimum rows."""
    import pulp

    S, T = a.demand.shape
    P = a.gpus.shape[0]
    by_pool: dict[tuple[int, int], list] = {}
    by_seg: dict[tuple[int, int], list] = {}
    for (s, k, p, t), v in x.items():
        units = a.hours[t] * a.throughput[s, p, t] * a.mode_mult[k, t]
        by_pool.setdefault((p, t), []).append(v)
        by_seg.setdefault((s, t), []).append(units * v)
    for p in range(P):
        for t in range(T):
            rent = r.get((p, t), 0)
            prob += pulp.lpSum(by_pool.get((p, t), [])) - rent <= a.usable[p, t], f"cap_{p}_{t}"
    for s in range(S):
        for t in range(T):
            prob += pulp.lpSum(by_seg.get((s, t), [])) <= a.demand[s, t], f"dem_{s}_{t}"
            if a.contract_min[s, t] > 0:
                prob += (
                    pulp.lpSum(by_seg.get((s, t), [])) + u.get((s, t), 0) >= a.contract_min[s, t],
                    f"con_{s}_{t}",
                )


def _pulp_policy_rows(prob: Any, a: ScenarioArrays, pol: Any, x: dict) -> None:
    """The R&D floor and stability rows; ``NotImplementedError`` for the policies the
    generated scenarios do not use."""
    import pulp

    from allocator.lp.arrays import KINDS
    from allocator.scenario import Kind

    T = a.demand.shape[1]
    if pol.rnd_min_share > 0:
        rnd = KINDS.index(Kind.RND)
        for t in range(T):
            prob += (
                pulp.lpSum(v for (s, _, _, tt), v in x.items() if tt == t and a.kind[s] == rnd)
                >= pol.rnd_min_share * a.gpus[:, t].sum(),
                f"rnd_{t}",
            )
    cap = a.usable + a.rentable
    if pol.max_change_share is not None and T >= 2:
        pair_modes: dict[tuple[int, int], list[int]] = {}
        for s, k, p, t in x:
            if t == 0:
                pair_modes.setdefault((s, p), []).append(k)
        for (s, p), ks in pair_modes.items():
            for t in range(1, T):
                d = pol.max_change_share * max(cap[p, t], cap[p, t - 1])
                change = pulp.lpSum(x[s, k, p, t] for k in ks) - pulp.lpSum(
                    x[s, k, p, t - 1] for k in ks
                )
                prob += change <= d, f"up_{s}_{p}_{t}"
                prob += change >= -d, f"down_{s}_{p}_{t}"
    if pol.max_segment_share is not None or pol.kind_caps or pol.kind_floors:
        raise NotImplementedError("the PuLP peer model covers the generated scenarios only")


def run_pulp(path: Path, time_limit: float) -> dict:
    import pulp

    from allocator.scenario import Scenario

    t0 = time.perf_counter()
    sc = Scenario.from_dict(json.loads(path.read_text()))
    t1 = time.perf_counter()
    prob, x = pulp_model(sc)
    t2 = time.perf_counter()
    status = prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
    t3 = time.perf_counter()
    duals = [c.pi for c in list(prob.constraints.values())[:10]]
    values = [v.varValue for v in x.values()]
    t4 = time.perf_counter()
    return {
        "status": "optimal" if pulp.LpStatus[status] == "Optimal" else pulp.LpStatus[status],
        "objective": pulp.value(prob.objective),
        "has_duals": all(d is not None for d in duals) and bool(values),
        "wall_s": t4 - t0,
        "parse_validate_s": t1 - t0,
        "build_s": t2 - t1,
        "solve_s": t3 - t2,
        "read_s": t4 - t3,
    }


def run_linopy(path: Path, time_limit: float) -> dict:
    """The same model written in linopy over (pair, period) coordinates, solved with
    linopy's default HiGHS settings."""
    import linopy

    from allocator.lp.arrays import ScenarioArrays
    from allocator.scenario import Scenario

    t0 = time.perf_counter()
    sc = Scenario.from_dict(json.loads(path.read_text()))
    t1 = time.perf_counter()
    a = ScenarioArrays.of(sc)
    co = _linopy_coords(a, sc.policy.ltv_weight)
    m = linopy.Model()
    x, r, u = _linopy_objective(m, a, co)
    _linopy_balance_rows(m, a, co, x, r, u)
    _linopy_policy_rows(m, a, co, x, sc.policy)
    offset = -float(np.sum(a.discount[None, :] * a.churn * a.demand))
    t2 = time.perf_counter()
    status, cond = m.solve(solver_name="highs", time_limit=time_limit)
    t3 = time.perf_counter()
    objective = None if m.objective.value is None else float(m.objective.value) + offset
    return {
        "status": "optimal" if cond == "optimal" else f"{status}/{cond}",
        "objective": objective,
        "has_duals": m.dual is not None,
        "wall_s": t3 - t0,
        "parse_validate_s": t1 - t0,
        "build_s": t2 - t1,
        "solve_s": t3 - t2,
    }


@dataclass
class _LinopyCoords:
    """The linopy model's coordinates: every compatible (mode, pool) pair, the periods,
    pools and segments, and the per-(pair, period) data over them."""

    s_idx: np.ndarray  # the segment of each pair
    p_idx: np.ndarray  # the pool of each pair
    pairs: Any  # pandas RangeIndex "pair"
    period: Any
    pool_c: Any
    seg_c: Any
    hours: Any  # xarray DataArray over period
    disc: Any
    units: Any  # work units per GPU over the period, over (pair, period)
    value: np.ndarray  # value per work unit of each pair, (pair, period)


def _linopy_coords(a: ScenarioArrays, w: float) -> _LinopyCoords:
    """The coordinates and per-pair data of ``a`` (``w``: the LTV weight)."""
    import pandas as pd
    import xarray as xr

    S, T = a.demand.shape
    P = a.gpus.shape[0]
    comp = a.compatible[a.mode_segment]
    k_idx, p_idx = np.nonzero(comp)
    s_idx = a.mode_segment[k_idx]
    pairs = pd.RangeIndex(k_idx.size, name="pair")
    period = pd.RangeIndex(T, name="period")
    pool_c = pd.RangeIndex(P, name="pool")
    seg_c = pd.RangeIndex(S, name="segment")
    hours = xr.DataArray(a.hours, coords=[period])
    disc = xr.DataArray(a.discount, coords=[period])
    units = (
        xr.DataArray(a.throughput[s_idx, p_idx] * a.mode_mult[k_idx], coords=[pairs, period])
        * hours
    )  # work units per GPU over the period
    value = (
        a.revenue[s_idx] * a.mode_rev_share[k_idx][:, None]
        + w * a.ltv[s_idx] * a.mode_ltv_share[k_idx][:, None]
        + a.churn[s_idx]
    )
    return _LinopyCoords(s_idx, p_idx, pairs, period, pool_c, seg_c, hours, disc, units, value)


def _linopy_objective(m: Any, a: ScenarioArrays, co: _LinopyCoords) -> tuple[Any, Any, Any]:
    """Add the x (GPUs per pair and period), r (rentals) and u (contract shortfall)
    variables and the objective (without its constant) to ``m``; return x, r, u."""
    import xarray as xr

    pairs, period, pool_c, seg_c = co.pairs, co.period, co.pool_c, co.seg_c
    x = m.add_variables(lower=0, coords=[pairs, period], name="x")
    rentable = xr.DataArray(a.rentable, coords=[pool_c, period])
    r = m.add_variables(lower=0, upper=rentable, coords=[pool_c, period], name="r")
    soft = (a.contract_min > 0) & ~a.contract_hard[:, None]
    u = m.add_variables(
        lower=0, coords=[seg_c, period], name="u", mask=xr.DataArray(soft, coords=[seg_c, period])
    )
    cx = co.disc * (
        co.units * xr.DataArray(co.value, coords=[pairs, period])
        - co.hours * xr.DataArray(a.var_cost[co.p_idx], coords=[pairs, period])
    )
    cr = -co.disc * co.hours * xr.DataArray(a.rental_price, coords=[pool_c, period])
    cu = -co.disc * xr.DataArray(a.penalty, coords=[seg_c, period])
    m.add_objective((cx * x).sum() + (cr * r).sum() + (cu * u).sum(), sense="max")
    return x, r, u


def _linopy_balance_rows(
    m: Any, a: ScenarioArrays, co: _LinopyCoords, x: Any, r: Any, u: Any
) -> None:
    """Pool capacity, demand and contract-minimum rows."""
    import xarray as xr

    pairs, period, pool_c, seg_c = co.pairs, co.period, co.pool_c, co.seg_c
    pool_of = xr.DataArray(co.p_idx, coords=[pairs], name="pool")
    seg_of = xr.DataArray(co.s_idx, coords=[pairs], name="segment")
    m.add_constraints(
        x.groupby(pool_of).sum() - r <= xr.DataArray(a.usable, coords=[pool_c, period]),
        name="pool-capacity",
    )
    served = (co.units * x).groupby(seg_of).sum()
    m.add_constraints(served <= xr.DataArray(a.demand, coords=[seg_c, period]), name="demand")
    has_contract = xr.DataArray(a.contract_min > 0, coords=[seg_c, period])
    m.add_constraints(
        served + u >= xr.DataArray(a.contract_min, coords=[seg_c, period]),
        name="contract",
        mask=has_contract,
    )


def _linopy_policy_rows(m: Any, a: ScenarioArrays, co: _LinopyCoords, x: Any, pol: Any) -> None:
    """The R&D floor and stability rows; ``NotImplementedError`` for the policies the
    generated scenarios do not use."""
    import pandas as pd
    import xarray as xr

    from allocator.lp.arrays import KINDS
    from allocator.scenario import Kind

    T = a.demand.shape[1]
    P = a.gpus.shape[0]
    pairs, period, s_idx, p_idx = co.pairs, co.period, co.s_idx, co.p_idx
    if pol.rnd_min_share > 0:
        is_rnd = xr.DataArray(a.kind[s_idx] == KINDS.index(Kind.RND), coords=[pairs])
        m.add_constraints(
            x.where(is_rnd).sum("pair")
            >= xr.DataArray(pol.rnd_min_share * a.gpus.sum(axis=0), coords=[period]),
            name="rnd",
        )
    if pol.max_change_share is not None and T >= 2:
        # stability per (segment, pool) pair of modes: sum the modes first
        key = s_idx * P + p_idx
        uniq, pair_of = np.unique(key, return_inverse=True)
        sp_c = pd.RangeIndex(uniq.size, name="sp")
        sp_of = xr.DataArray(pair_of, coords=[pairs], name="sp")
        y = x.groupby(sp_of).sum()
        cap = a.usable + a.rentable
        d = pol.max_change_share * np.maximum(cap[:, 1:], cap[:, :-1])  # (P, T-1)
        dd = np.zeros((uniq.size, T))
        dd[:, 1:] = d[uniq % P]
        bound = xr.DataArray(dd, coords=[sp_c, period])
        later = xr.DataArray(np.arange(T) >= 1, coords=[period]).broadcast_like(bound)
        change = y - y.shift(period=1)
        m.add_constraints(change <= bound, name="up", mask=later)
        m.add_constraints(change >= -bound, name="down", mask=later)
    if pol.max_segment_share is not None or pol.kind_caps or pol.kind_floors:
        raise NotImplementedError("the linopy peer model covers the generated scenarios only")


def run_warm(path: Path, time_limit: float) -> dict:
    """A Planner: cold solve, then a 5 % demand change in one period re-solved warm."""
    from allocator.scenario import Scenario
    from allocator.workflows.planner import Planner

    sc = Scenario.from_file(path)
    planner = Planner(sc, time_limit=time_limit)
    t0 = time.perf_counter()
    planner.solve()
    t1 = time.perf_counter()
    cold = planner.last_solve
    # the segment whose demand binds hardest in the middle period: a change that moves the plan
    T = len(sc.periods)
    t_mid = T // 2
    block = planner.lp.block("segment-demand")
    sol = planner.last_solution
    assert block is not None and sol is not None and sol.row_dual is not None
    duals = sol.row_dual[block.start : block.stop].reshape(-1, T)[:, t_mid]
    seg = sc.segments[int(np.argmax(duals))]
    t2 = time.perf_counter()
    plan = planner.scale_demand(seg.id, 1.05, period=t_mid)
    t3 = time.perf_counter()
    warm = planner.last_solve
    assert cold is not None and warm is not None
    return {
        "status": warm.status,
        "objective": plan.objective,
        "has_duals": plan.has_duals,
        "wall_s": t3 - t2,
        "cold_wall_s": t1 - t0,
        "cold_solver_s": cold.time_s,
        "cold_algorithm": cold.algorithm,
        "warm_solver_s": warm.time_s,
        "warm_iterations": warm.iterations,
        "solver_speedup": cold.time_s / max(warm.time_s, 1e-9),
        "end_to_end_speedup": (t1 - t0) / max(t3 - t2, 1e-9),
    }


def run_whatif(path: Path, time_limit: float, repeats: int = 6) -> dict:
    """(h) What-ifs at interactive speed, end to end: from ``Planner.what_if(overrides)`` to
    the answer (the new Plan and ``compare(base, new)``, the difference), after the
    planner's cold solve. ``one``: the demand of one segment × 1.05 in the middle period
    (the segments whose demand rows bind hardest there, one after another, each what-if
    relative to the base); ``all``: the same segments × 1.05 in every period. The
    baseline is the engine's own cold end-to-end solve (phase a's steps) run first in
    this process, and the ``engine`` phase of the run."""
    from allocator.scenario import Scenario
    from allocator.workflows.planner import Planner
    from allocator.workflows.whatif import compare

    cold = run_engine(path, time_limit)
    if cold.get("status") != "optimal":
        return {"status": cold.get("status"), "wall_s": cold["wall_s"]}
    sc = Scenario.from_file(path)
    planner = Planner(sc, time_limit=time_limit)
    base = planner.solve()
    T = len(sc.periods)
    block = planner.lp.block("segment-demand")
    sol = planner.last_solution
    assert block is not None and sol is not None and sol.row_dual is not None
    duals = sol.row_dual[block.start : block.stop].reshape(-1, T)[:, T // 2]
    segments = [sc.segments[int(i)].id for i in np.argsort(-duals, kind="stable")[:repeats]]
    out: dict[str, Any] = {"status": "optimal", "cold_wall_s": cold["wall_s"]}
    for mode in ("one", "all"):
        runs: list[dict[str, Any]] = []
        for seg in segments:
            factor: Any = (
                [1.05 if t == T // 2 else 1.0 for t in range(T)] if mode == "one" else 1.05
            )
            t0 = time.perf_counter()
            new = planner.what_if({"demand_scale": {seg: factor}})
            compare(base, new)
            wall = time.perf_counter() - t0
            last = planner.last_solution
            assert last is not None and planner.last_solve is not None
            runs.append(
                {
                    "wall_s": wall,
                    "change_s": planner.build_time_s,  # overrides to the LP's numbers
                    "solver_s": last.time_s,
                    "algorithm": last.algorithm,
                    "periods_solved": float(last.extra.get("periods_solved", T)),
                    "iterations": last.iterations,
                    "path": planner.last_change,
                }
            )
        walls = [float(r["wall_s"]) for r in runs]
        out[mode] = {
            "runs": runs,
            "first_s": walls[0],
            "median_s": statistics.median(walls),
            "median_solver_s": statistics.median(float(r["solver_s"]) for r in runs),
            "median_change_s": statistics.median(float(r["change_s"]) for r in runs),
            "speedup_vs_cold": cold["wall_s"] / statistics.median(walls),
        }
    out["objective"] = base.objective
    out["wall_s"] = out["one"]["median_s"]
    return out


def run_partitioned(path: Path, time_limit: float, k: int) -> dict:
    """POP-style: k groups with 1/k of every pool, solved in parallel (a local process pool
    over min(k, cores) processes) and merged (allocator.workflows.partition)."""
    from allocator.scenario import Scenario
    from allocator.workflows.partition import partitioned_solve

    t0 = time.perf_counter()
    sc = Scenario.from_dict(json.loads(path.read_text()))
    r = partitioned_solve(sc, k, time_limit=time_limit)
    return {
        "status": r.plan.status.value,
        "objective": r.objective,
        "has_duals": False,
        "wall_s": time.perf_counter() - t0,
        "group_times_s": r.times_s,
        "max_violation": r.plan.max_violation,
        "price_spread": r.price_spread(),
    }


def _stoch_size(path: Path) -> int:
    size = path.stem
    return int(os.environ.get("BENCH_SCENARIOS", STOCH_SCENARIOS_OF.get(size, 10)))


def run_stochastic(
    path: Path,
    time_limit: float,
    method: str,
    dask_workers: int = 0,
    share: bool | None = None,
) -> dict:
    """A two-stage plan (RP only: no EV/EEV/WS solves) over sampled demand scenarios."""
    from allocator.lp.build import build_lp
    from allocator.scenario import Scenario
    from allocator.workflows.sampling import sample_demand_scenarios
    from allocator.workflows.stochastic import stochastic_plan

    sc = Scenario.from_file(path)
    K = _stoch_size(path)
    demand = sample_demand_scenarios(sc, K, cv=0.2, correlation=0.5, seed=0)
    n_cols = build_lp(sc).num_cols
    if method == "extensive" and n_cols * K > STOCH_EXTENSIVE_MAX_COLUMNS:
        return {"status": f"skipped ({n_cols * K:,} columns)", "wall_s": 0.0}
    client = cluster = None
    t0 = time.perf_counter()
    if dask_workers:
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        )
        client = distributed.Client(cluster)
    t1 = time.perf_counter()
    try:
        # share None: the library's default (share_models=True, one HiGHS object per worker)
        opts: dict[str, Any] = {} if share is None else {"share_models": share}
        r = stochastic_plan(
            sc,
            demand,
            method=method,
            compute_vss=False,
            time_limit=time_limit,
            client=client,
            **opts,
        )
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    out: dict[str, Any] = {
        "status": "optimal" if r.gap <= 1e-4 else f"gap {r.gap:.1e}",
        "objective": r.objective,
        "has_duals": True,
        "wall_s": time.perf_counter() - t1,
        "cluster_start_s": t1 - t0,
        "scenarios": K,
        "columns_per_scenario": n_cols,
        "gap": r.gap,
        "method": r.method,
        "iterations": len(r.iterations),
        "share_models": method != "extensive" and share is not False,
    }
    if r.iterations:
        its, d = r.iterations, r.decomposition
        # the cold round: the wait-and-see one when it ran, else the first candidate's
        ws_round = d["wait_and_see_subproblem_s"]
        cold = ws_round or its[0]["subproblem_s"]
        warm_its = its if ws_round else its[1:]
        warm = [t for it in warm_its for t in it["subproblem_s"]]
        master = sum(it["master_s"] for it in its)
        out["setup_s"] = d["setup_s"]
        out["wait_and_see_round_s"] = d["wait_and_see_round_s"]
        out["subproblem_cold_mean_s"] = float(np.mean(cold))
        out["subproblem_warm_mean_s"] = float(np.mean(warm)) if warm else None
        out["rounds_wall_s"] = [it["subproblems_wall_s"] for it in its]
        out["master_s"] = master
        out["bounds"] = [[it["lower"], it["upper"]] for it in its]
        # 16 workers x 100 scenarios, the same number of rounds: every round takes
        # ceil(100/16) = 7 subproblem solves per worker (the cold round at the measured cold
        # mean, the others at the warm mean); the master's time grows with its cuts
        # (x 100/K); setup (building the LPs) scales with the scenarios per worker
        per = -(-100 // 16)
        per_now = -(-K // max(1, d["workers"]))
        out["projection_16x100_s"] = (
            d["setup_s"] * per / per_now
            + per * (out["subproblem_cold_mean_s"] + len(warm_its) * float(np.mean(warm or [0])))
            + master * 100 / K
        )
    return out


def milp_time_limit(path: Path) -> float:
    return MILP_TIME_LIMIT_OF.get(path.stem, 60.0)


def run_milp(path: Path, time_limit: float, alone: bool) -> dict:
    """The fleet in 8-GPU units within milp_time_limit: the engine's MILP path, or HiGHS'
    branch and cut alone on the same model (in this process, as a user would call it)."""
    from allocator.lp.build import build_lp
    from allocator.scenario import Scenario
    from allocator.solvers.highs import HighsDirectSolver
    from allocator.solvers.registry import make_solver

    limit = milp_time_limit(path)
    data = json.loads(path.read_text())
    for pool in data["pools"]:
        pool["allocation_unit_gpus"] = MILP_UNIT_GPUS
    lp = build_lp(Scenario.from_dict(data))
    t0 = time.perf_counter()
    if alone:
        sol = HighsDirectSolver("simplex").run(lp, limit)
    else:
        sol = make_solver().solve(lp, time_limit=limit)
    wall = time.perf_counter() - t0
    return {
        "status": sol.status.value,
        "objective": sol.objective,
        "has_duals": sol.row_dual is not None,
        "wall_s": wall,
        "time_limit_s": limit,
        "gap": sol.gap,
        "bound": sol.bound,
        "lp_bound": sol.lp_bound,
        "whole_units_from": sol.whole_units_from,
        "bound_from": sol.bound_from,
        "raw_status": sol.raw_status,
        "integer_columns": lp.num_integer,
        "stages_s": {k: v for k, v in sol.extra.items() if k.endswith("_s")},
    }


WORKERS: dict[str, Callable[[Path, float], dict]] = {
    "engine": run_engine,
    "highs-ipm": lambda p, tl: run_highs(p, tl, "ipm"),
    "highs-ipm-nox": lambda p, tl: run_highs(p, tl, "ipm", crossover=False),
    "highs-simplex": lambda p, tl: run_highs(p, tl, "simplex"),
    "highs-pdlp": lambda p, tl: run_highs(p, tl, "pdlp"),
    "clp": run_clp,
    "pulp-cbc": run_pulp,
    "linopy-highs": run_linopy,
    "warm": run_warm,
    "whatif": run_whatif,
    "pop-2": lambda p, tl: run_partitioned(p, tl, 2),
    "pop-4": lambda p, tl: run_partitioned(p, tl, 4),
    "plan-io": run_plan_io,
    "cli-solve": run_cli_solve,
    "stoch-extensive": lambda p, tl: run_stochastic(p, tl, "extensive"),
    "stoch-decomp": lambda p, tl: run_stochastic(p, tl, "decomposition"),
    "stoch-decomp-own": lambda p, tl: run_stochastic(p, tl, "decomposition", share=False),
    "stoch-decomp-shared": lambda p, tl: run_stochastic(p, tl, "decomposition", share=True),
    "stoch-dask-1": lambda p, tl: run_stochastic(p, tl, "decomposition", 1),
    "stoch-dask-2": lambda p, tl: run_stochastic(p, tl, "decomposition", 2),
    "milp": lambda p, tl: run_milp(p, tl, alone=False),
    "milp-highs": lambda p, tl: run_milp(p, tl, alone=True),
}


def worker(phase: str, path: Path, time_limit: float) -> None:
    import warnings

    warnings.simplefilter("ignore")  # scaling notes etc.: not what is measured
    out = WORKERS[phase](path, time_limit)
    own, child = peak_mb()
    # an upper bound on what was resident at once: the Python process plus the cbc child
    # the child's ru_maxrss starts at the parent's size when it forks, so the larger of the
    # two is the honest peak of one process; their sum bounds what was resident at once
    out["peak_mb"], out["peak_python_mb"], out["peak_child_mb"] = max(own, child), own, child
    sys.stdout.flush()
    print("\nBENCH-RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------ orchestration
def run_one(phase: str, path: Path, time_limit: float) -> dict:
    if phase in CLI_STOCHASTIC:
        return run_cli_stochastic(path, time_limit)
    cmd = [sys.executable, "-m", "benchmarks", "--worker", phase, str(path)]
    cmd += ["--time-limit", str(time_limit)]
    if phase in STOCHASTIC:  # the scenario workers' memory counts too
        return run_sampled(cmd, time_limit * 3 + 120)
    if phase in MILP:  # memory of the whole tree (the engine's MILP child); killed at
        # the limit plus a minute, since HiGHS alone may not stop at its own limit
        return run_sampled(cmd, milp_time_limit(path) + 60.0)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=time_limit * 3 + 120, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"status": "killed (timeout)", "wall_s": time.perf_counter() - t0}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return dict(json.loads(line[len("BENCH-RESULT ") :]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
    return {"status": f"error: {tail[0][:200]}", "wall_s": time.perf_counter() - t0}


def run_sampled(cmd: list[str], timeout: float) -> dict:
    """``cmd`` (a benchmark worker or the CLI), its process tree's resident memory sampled
    every 0.2 s (peak of the sum over every process, and the largest single process);
    killed with its children at ``timeout``."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    ps = psutil.Process(proc.pid)
    peak_sum = peak_one = 0.0
    killed = False
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            rss = []
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    rss.append(p.memory_info().rss / 2**20)
            peak_sum, peak_one = max(peak_sum, sum(rss)), max([peak_one, *rss])
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > timeout:
            for p in [*ps.children(recursive=True), ps]:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            killed = True
            break
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {"status": "killed (timeout)"} if killed else {}
    for line in out.splitlines():
        if line.startswith("BENCH-RESULT ") and not killed:
            result = dict(json.loads(line[len("BENCH-RESULT ") :]))
    if not result and proc.returncode == 0:
        result = {"status": "optimal"}  # a CLI run that ended well (no BENCH-RESULT line)
    elif not result:
        tail = (err or out).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        result = {"status": f"error: {tail[0][:200]}"}
    result.setdefault("wall_s", wall)
    result["process_wall_s"] = wall
    result["tree_peak_sum_mb"], result["tree_peak_one_mb"] = peak_sum, peak_one
    return result


def run_cli_stochastic(path: Path, time_limit: float) -> dict:
    """``allocator stochastic FILE --sample K`` as a user runs it (the library bench's
    sampling: cv 0.2, correlation 0.5, seed 0; VSS included, the CLI's default), timed
    from outside, with the memory of its whole process tree (scenario workers included)."""
    k = _stoch_size(path)
    cmd = [sys.executable, "-m", "allocator", "stochastic", str(path), "--sample", str(k)]
    cmd += ["--demand-cv", "0.2", "--correlation", "0.5", "--seed", "0"]
    cmd += ["--time-limit", str(time_limit)]
    r = run_sampled(cmd, time_limit * 2 + 120)
    r["scenarios"] = k
    return r


def available_phases() -> list[str]:
    phases = list(PHASES)
    try:
        import linopy  # noqa: F401
    except ImportError:
        phases.remove("linopy-highs")
    return phases


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    with contextlib.suppress(ValueError, OSError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from importlib.metadata import version

    import pulp

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": None if mem is None else round(mem, 1),
        "python": platform.python_version(),
        "highspy": version("highspy"),
        "pulp": pulp.__version__,
        "platform": platform.platform(),
    }


def _peak(r: dict) -> float:
    if "peak_python_mb" in r:
        return float(max(r["peak_python_mb"], r["peak_child_mb"]))
    return float(r["peak_mb"])


def summarise(size: str, info: dict, runs: dict[str, list[dict]]) -> dict:
    """Medians per phase; b = the fastest solver alone that reached the engine's optimum;
    ratios a/b and c/a."""
    ref = next((r.get("objective") for r in runs.get("engine", []) if r.get("objective")), None)
    phases: dict[str, Any] = {}
    for phase, rs in runs.items():
        ok = [r for r in rs if r.get("status") == "optimal" and r.get("objective") is not None]
        agree = None
        if ok and ref is not None and phase != "warm" and phase not in STOCHASTIC:
            agree = max(abs(r["objective"] - ref) / max(1.0, abs(ref)) for r in ok)
        phases[phase] = {
            "runs": len(rs),
            "optimal_runs": len(ok),
            "median_wall_s": statistics.median(r["wall_s"] for r in ok) if ok else None,
            "min_wall_s": min(r["wall_s"] for r in ok) if ok else None,
            "max_wall_s": max(r["wall_s"] for r in ok) if ok else None,
            "median_peak_mb": statistics.median(_peak(r) for r in ok) if ok else None,
            "objective_rel_diff": agree,
            "status": sorted({str(r.get("status")) for r in rs}),
        }
    alone = {
        p: v["median_wall_s"]
        for p, v in phases.items()
        if p in SOLVERS_ALONE
        and v["median_wall_s"] is not None
        and (v["objective_rel_diff"] is None or v["objective_rel_diff"] <= OBJ_TOL)
    }
    b_phase = min(alone, key=lambda p: alone[p]) if alone else None
    a = phases.get("engine", {}).get("median_wall_s")
    ratios: dict[str, Any] = {"b": b_phase}
    if a is not None and b_phase is not None:
        ratios["a/b"] = a / alone[b_phase]
    for peer in PEERS:
        c = phases.get(peer, {}).get("median_wall_s")
        if a is not None and c is not None:
            ratios[f"{peer}/a"] = c / a
    for pop in PARTITIONED:
        c = phases.get(pop, {}).get("median_wall_s")
        ok = [r for r in runs.get(pop, []) if r.get("objective") is not None]
        if a is not None and c is not None and ok and ref:
            ratios[f"{pop} speed-up"] = a / c
            ratios[f"{pop} gap"] = (ref - ok[0]["objective"]) / abs(ref)
    _data_path_ratios(ratios, runs, a)
    _stochastic_ratios(ratios, phases, runs)
    _whatif_ratios(ratios, runs, a)
    _milp_ratios(ratios, runs)
    warm = [r for r in runs.get("warm", []) if r.get("status") == "optimal"]
    if warm:
        w = statistics.median(r["warm_solver_s"] for r in warm)
        ratios["warm solver s"] = w
        ratios["warm vs engine cold (solver)"] = statistics.median(
            r["cold_solver_s"] for r in warm
        ) / max(w, 1e-9)
        if b_phase is not None:
            ratios["warm vs b cold (solver)"] = alone[b_phase] / max(w, 1e-9)
        ratios["warm end to end s"] = statistics.median(r["wall_s"] for r in warm)
    return {"size": size, **info, "phases": phases, "ratios": ratios}


def _whatif_ratios(ratios: dict[str, Any], runs: dict[str, list[dict]], a: float | None) -> None:
    """End-to-end what-ifs against the cold end-to-end solve in the same process and the
    engine phase (a)."""
    ok = [r for r in runs.get("whatif", []) if r.get("status") == "optimal" and "one" in r]
    for mode in ("one", "all"):
        if not ok:
            return
        med = statistics.median(r[mode]["median_s"] for r in ok)
        ratios[f"whatif {mode}-period s"] = med
        ratios[f"whatif {mode}-period vs cold (same process)"] = statistics.median(
            r[mode]["speedup_vs_cold"] for r in ok
        )
        if a is not None:
            ratios[f"whatif {mode}-period vs engine phase"] = a / med


def _milp_ratios(ratios: dict[str, Any], runs: dict[str, list[dict]]) -> None:
    """Whole units: each MILP phase's time, its gap to the LP relaxation's optimum (the
    engine's run states it; HiGHS alone is measured against the same number) and the peak
    memory summed over its process tree; the CLI's two-stage run likewise."""
    lp_bound = next((r.get("lp_bound") for r in runs.get("milp", []) if r.get("lp_bound")), None)
    for phase in (*MILP, *CLI_STOCHASTIC):
        for r in runs.get(phase, [])[:1]:
            obj = r.get("objective")
            gap = None
            if obj is not None and lp_bound is not None and obj != 0:
                gap = max(lp_bound - obj, 0.0) / abs(obj)
            ratios[phase] = {
                "status": r.get("status"),
                "wall_s": r.get("process_wall_s", r.get("wall_s")),
                "gap_to_lp_bound": gap,
                "reported_gap": r.get("gap"),
                "whole_units_from": r.get("whole_units_from"),
                "tree_peak_sum_mb": r.get("tree_peak_sum_mb"),
                "tree_peak_one_mb": r.get("tree_peak_one_mb"),
            }


def _stochastic_ratios(ratios: dict[str, Any], phases: dict, runs: dict[str, list[dict]]) -> None:
    """Decomposition / extensive form; Dask 1 worker / 2 workers; the 16 x 100 projection;
    the objectives' agreement with the extensive form."""
    ext = phases.get("stoch-extensive", {}).get("median_wall_s")
    ext_obj = next(
        (r["objective"] for r in runs.get("stoch-extensive", []) if "objective" in r), None
    )
    for p in STOCHASTIC[1:]:
        w = phases.get(p, {}).get("median_wall_s")
        ok = [r for r in runs.get(p, []) if r.get("objective") is not None]
        if ext and w:
            ratios[f"{p}/extensive"] = w / ext
        if ok and ext_obj is not None:
            ratios[f"{p} objective diff"] = abs(ok[0]["objective"] - ext_obj) / max(
                1.0, abs(ext_obj)
            )
        if ok and "projection_16x100_s" in ok[0]:
            ratios[f"{p} projection 16x100 s"] = ok[0]["projection_16x100_s"]
    d1 = phases.get("stoch-dask-1", {}).get("median_wall_s")
    d2 = phases.get("stoch-dask-2", {}).get("median_wall_s")
    if d1 and d2:
        ratios["dask 2 vs 1 worker speed-up"] = d1 / d2


def _data_path_ratios(ratios: dict[str, Any], runs: dict[str, list[dict]], a: float | None) -> None:
    """(read-out + JSON) / solve; the whole CLI process / the engine phase (a) and / the
    cbc process on the same MPS (the clp phase); the writers beside JSON."""
    io = [r for r in runs.get("plan-io", []) if r.get("status") == "optimal"]
    if io:
        ratios["(readout+json)/solve"] = statistics.median(
            (r["readout_s"] + r["json_s"]) / r["solve_s"] for r in io
        )
        ratios["stdlib indented json / orjson"] = statistics.median(
            (r["to_dict_s"] + r["stdlib_json_indent_s"]) / r["json_s"] for r in io
        )
        for fmt in ("parquet", "xlsx", "csv"):
            vals = [r[f"{fmt}_s"] for r in io if isinstance(r.get(f"{fmt}_s"), float)]
            if vals:
                ratios[f"{fmt} write / json"] = statistics.median(vals) / statistics.median(
                    r["json_s"] for r in io
                )
    cli_runs = [r for r in runs.get("cli-solve", []) if r.get("status") == "optimal"]
    cli = [r["wall_s"] for r in cli_runs]
    if cli and a is not None:
        ratios["cli process / a"] = statistics.median(cli) / a
    if cli_runs and "in_process_s" in cli_runs[0]:
        for name in ("file", "json"):
            ratios[f"cli {name} process / in-process solve+to_dict"] = statistics.median(
                r[f"{name}_wall_s"] / r["in_process_s"] for r in cli_runs
            )
        ratios["cli --help s"] = statistics.median(r["help_s"] for r in cli_runs)
        ratios["python -c pass s"] = statistics.median(r["python_s"] for r in cli_runs)
    clp = [r["wall_s"] for r in runs.get("clp", []) if r.get("status") == "optimal"]
    if cli and clp:
        ratios["cli process / cbc process"] = statistics.median(cli) / statistics.median(clp)


# the what-if table's columns for each of one period and every period: (ratio key, format)
WHATIF_COLS = (("s", ".3f"), ("vs cold (same process)", ".1f"), ("vs engine phase", ".1f"))


def _cell(r: dict, key: str, fmt: str) -> str:
    return "—" if r.get(key) is None else format(r[key], fmt)


def markdown(results: dict) -> str:
    runs = results.get("runs") or [
        {
            "sizes": [s["size"] for s in results["sizes"]],
            "repeats": results["repeats"],
            "time_limit_s": results["time_limit_s"],
        }
    ]
    settings = "; ".join(
        f"{', '.join(r['sizes'])}: {r['repeats']} repeat(s), time limit {r['time_limit_s']:g} s"
        for r in runs
    )
    lines = [
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gb']} GB; highspy {results['machine']['highspy']}, "
        f"PuLP {results['machine']['pulp']}. Runs: {settings}.",
        "",
        "| size | S×P×T | columns | rows | nnz | phase | median s | min–max s | peak MB "
        "| objective rel. diff | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["sizes"]:
        shape = "×".join(str(v) for v in s["shape"])
        for phase, v in s["phases"].items():
            med = "—" if v["median_wall_s"] is None else f"{v['median_wall_s']:.3g}"
            rng = "—" if v["min_wall_s"] is None else f"{v['min_wall_s']:.3g}–{v['max_wall_s']:.3g}"
            mem = "—" if v["median_peak_mb"] is None else f"{v['median_peak_mb']:.0f}"
            diff = "—" if v["objective_rel_diff"] is None else f"{v['objective_rel_diff']:.1e}"
            lines.append(
                f"| {s['size']} | {shape} | {s['columns']:,} | {s['rows']:,} | {s['nnz']:,} "
                f"| {phase} | {med} | {rng} | {mem} | {diff} | {', '.join(v['status'])} |"
            )
    lines += [
        "",
        "| size | b (fastest alone) | a/b | pulp-cbc/a | linopy-highs/a | warm solver s "
        "| warm vs engine cold | warm vs b cold | pop-2 gap | pop-2 speed-up | pop-4 gap "
        "| pop-4 speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["sizes"]:
        r = s["ratios"]

        def f(key: str, r: dict = r, fmt: str = ".2f") -> str:
            return _cell(r, key, fmt)

        lines.append(
            f"| {s['size']} | {r.get('b') or '—'} | {f('a/b')} | {f('pulp-cbc/a')} "
            f"| {f('linopy-highs/a')} | {f('warm solver s', fmt='.3f')} "
            f"| {f('warm vs engine cold (solver)', fmt='.0f')} "
            f"| {f('warm vs b cold (solver)', fmt='.0f')} | {f('pop-2 gap', fmt='.2%')} "
            f"| {f('pop-2 speed-up')} | {f('pop-4 gap', fmt='.2%')} | {f('pop-4 speed-up')} |"
        )
    lines += [
        "",
        "| size | what-if one period s | vs cold (same process) | vs engine phase | what-if all "
        "periods s | vs cold (same process) | vs engine phase |",
        "|---|---|---|---|---|---|---|",
    ]
    whatif_cells = [(f"whatif {m}-period {k}", f) for m in ("one", "all") for k, f in WHATIF_COLS]
    for s in results["sizes"]:
        if "whatif one-period s" in s["ratios"]:
            row = [_cell(s["ratios"], key, fmt) for key, fmt in whatif_cells]
            lines.append(f"| {s['size']} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def run(
    sizes: Sequence[str],
    phases: Sequence[str],
    repeats: int,
    time_limit: float,
    out_dir: Path,
    log: Callable[[str], None] = print,
) -> dict:
    from allocator.lp.build import build_lp
    from allocator.scenario import Scenario

    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "repeats": repeats,
        "time_limit_s": time_limit,
        "compatibility": COMPATIBILITY,
        "stability": STABILITY,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="allocator-bench-") as tmp:
        for size in sizes:
            data = scenario_dict(size)
            path = Path(tmp) / f"{size}.json"
            path.write_text(json.dumps(data))
            lp = build_lp(Scenario.from_dict(data))
            info = {
                "shape": list(SIZES[size]),
                "columns": lp.num_cols,
                "rows": lp.num_rows,
                "nnz": lp.nnz,
            }
            del lp
            log(f"== {size}: {info}")
            runs: dict[str, list[dict]] = {}
            for phase in phases:
                for k in range(repeats):
                    r = run_one(phase, path, time_limit)
                    runs.setdefault(phase, []).append(r)
                    log(
                        f"   {phase:14s} #{k + 1}: {r.get('status')} {r.get('wall_s', 0):.3f} s "
                        f"obj={r.get('objective')} peak={r.get('peak_mb', 0):.0f} MB"
                    )
                    if r.get("status") != "optimal" and k == 0:
                        break  # one failed or stopped run is enough evidence
            s = summarise(size, info, runs)
            s["raw"] = runs
            results["sizes"].append(s)
            log(f"   ratios: {s['ratios']}")
            (out_dir / "results.json").write_text(json.dumps(results, indent=2))
            (out_dir / "results.md").write_text(markdown(results))
    return results


def merge(paths: Sequence[Path]) -> dict:
    """One result set from several runs of the benchmark (e.g. slow phases run with fewer
    repeats): the raw runs of each size and phase are pooled and summarised again."""
    merged: dict[str, Any] | None = None
    by_size: dict[str, dict[str, Any]] = {}
    for path in paths:
        res = json.loads(Path(path).read_text())
        if merged is None:
            merged = {k: v for k, v in res.items() if k != "sizes"}
            merged["merged_from"] = []
            merged["runs"] = []
        merged["merged_from"].append(str(path))
        merged["runs"].append(
            {
                "sizes": [s["size"] for s in res["sizes"]],
                "repeats": res.get("repeats"),
                "time_limit_s": res.get("time_limit_s"),
                "started": res.get("started"),
            }
        )
        for s in res["sizes"]:
            entry = by_size.setdefault(
                s["size"], {k: s[k] for k in ("shape", "columns", "rows", "nnz")} | {"raw": {}}
            )
            for phase, runs in s["raw"].items():
                entry["raw"].setdefault(phase, []).extend(runs)
    if merged is None:
        raise ValueError("nothing to merge")
    merged["sizes"] = []
    for size in sorted(by_size, key=lambda k: by_size[k]["columns"]):
        e = by_size[size]
        raw = {p: e["raw"][p] for p in PHASES if p in e["raw"]}
        info = {k: e[k] for k in ("shape", "columns", "rows", "nnz")}
        merged["sizes"].append(summarise(size, info, raw) | {"raw": raw})
    return merged


def rest_latency(
    clients: int = 20,
    requests_per_client: int = 25,
    scenario: str = "data/tiny.json",
    rounds: int = int(os.environ.get("BENCH_REST_ROUNDS", "3")),
) -> dict:
    """p50/p99 of ``POST /v1/solve`` (``scenario``) and of plan-job submission
    (``POST /v1/scenarios/tiny/plans``) under ``clients`` concurrent clients against a real
    uvicorn process (``python -m api``, default settings, a scratch SQLite store), for an
    open service and for one with API keys (every request carries a planner key; every job
    submitted is audited, as on the open one): ``rounds`` of the two one after the other, so
    that both see the same machine; each figure is the median over the rounds, with the
    ratios keyed / open and each service's peak RSS (the server and its solver processes)."""
    runs: dict[str, list[dict]] = {"open": [], "keys": []}
    for _ in range(rounds):
        for variant in runs:
            runs[variant].append(
                _rest_variant(variant == "keys", clients, requests_per_client, scenario)
            )
    out: dict[str, Any] = {"clients": clients, "requests_per_client": requests_per_client}
    for variant, rs in runs.items():
        out[variant] = {
            phase: {
                k: statistics.median(r[phase][k] for r in rs)
                for k in ("throughput_rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "server_cpu_ms")
            }
            | {"status_codes": [r[phase]["status_codes"] for r in rs]}
            for phase in ("solve", "plan_job_submit")
        }
        out[variant]["server_peak_rss_mb"] = max(r["server_peak_rss_mb"]["server"] for r in rs)
        out[variant]["child_peak_rss_mb"] = max(
            r["server_peak_rss_mb"]["largest_child"] for r in rs
        )
    out["solve"], out["plan_job_submit"] = out["open"]["solve"], out["open"]["plan_job_submit"]
    out["keys_over_open"] = {
        f"{phase}_{k}": out["keys"][phase][k] / out["open"][phase][k]
        for phase in ("solve", "plan_job_submit")
        for k in ("throughput_rps", "p50_ms", "p99_ms", "server_cpu_ms")
    }
    out["peak_client_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["rounds"] = runs
    return out


def _rest_variant(keyed: bool, clients: int, requests_per_client: int, scenario: str) -> dict:
    """One service (open, or with a planner key made by ``allocator-api keys add`` before it
    starts) under the load of :func:`rest_latency`."""
    body = Path(scenario).read_bytes()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="allocator-rest-") as tmp:
        headers: dict[str, str] = {}
        if keyed:
            key = subprocess.run(
                [sys.executable, "-m", "api", "keys", "add", "bench", "--role", "planner"],
                env={**os.environ, "ALLOCATOR_DATABASE_URL": f"sqlite:///{tmp}/store.db"},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            headers["X-API-Key"] = key
        server = _start_api(port, tmp)
        try:
            _wait_for_api(base, server)
            _load(base, "/v1/solve", body, clients, requests_per_client, headers)  # warm-up
            out: dict[str, Any] = {"keys": keyed}
            for phase, path, data in (
                ("solve", "/v1/solve", body),
                ("plan_job_submit", "/v1/scenarios/tiny/plans", b""),
            ):
                cpu0 = _cpu_s(server.pid)
                out[phase] = _load(base, path, data, clients, requests_per_client, headers)
                # the service's own process (auth, audit, routing; solves run in its pool):
                # CPU time per request, less sensitive to a busy machine than wall time
                out[phase]["server_cpu_ms"] = (
                    (_cpu_s(server.pid) - cpu0) * 1000 / (out[phase]["requests"])
                )
            out["server_peak_rss_mb"] = _tree_peak_mb(server.pid)
            return out
        finally:
            _stop_api(server)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_peak_mb(pid: int) -> dict[str, float]:
    """Peak resident memory (VmHWM, MB) of process ``pid`` and the largest of its
    descendants (Linux /proc; empty elsewhere)."""

    def hwm(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def children(p: int) -> list[int]:
        out: list[int] = []
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        return out

    todo, seen = children(pid), []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return {"server": hwm(pid), "largest_child": max((hwm(p) for p in seen), default=0.0)}


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 (the OS's pick)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_api(port: int, tmp: str) -> subprocess.Popen:
    """``python -m api`` on ``port`` with a scratch SQLite store in ``tmp``."""
    env = {
        **os.environ,
        "ALLOCATOR_PORT": str(port),
        "ALLOCATOR_DATABASE_URL": f"sqlite:///{tmp}/store.db",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_api(base: str, server: subprocess.Popen) -> None:
    """Poll ``/healthz`` until the API answers; ``RuntimeError`` when it exits or has not
    answered within 60 s."""
    import urllib.error
    import urllib.request

    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            break
        except (urllib.error.URLError, OSError):
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("the API did not start") from None
            time.sleep(0.2)


def _load(
    base: str,
    path: str,
    data: bytes,
    clients: int,
    requests_per_client: int,
    headers: dict[str, str] | None = None,
) -> dict:
    """``clients`` threads each POSTing ``data`` to ``path`` ``requests_per_client`` times
    (with ``headers``): latency percentiles, status codes and throughput."""
    import threading
    import urllib.error
    import urllib.request

    times: list[float] = []
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests_per_client):
            req = urllib.request.Request(
                base + path,
                data=data,
                headers={"content-type": "application/json", **(headers or {})},
            )
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    resp.read()
                    code = resp.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            dt = time.perf_counter() - t0
            with lock:
                times.append(dt)
                codes[str(code)] = codes.get(str(code), 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    ms = np.array(times) * 1000
    return {
        "requests": len(times),
        "status_codes": codes,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "throughput_rps": len(times) / wall,
    }


def _stop_api(server: subprocess.Popen) -> None:
    """Terminate the API process (kill it after 20 s)."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="allocator bench", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES", "10k,40k,100k"),
        help=f"comma-separated, from {', '.join(SIZES)} (env BENCH_SIZES; default 10k,40k,100k)",
    )
    ap.add_argument(
        "--phases",
        default=os.environ.get("BENCH_PHASES", ""),
        help=f"comma-separated subset of {', '.join(PHASES)} (default: all available)",
    )
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")))
    ap.add_argument(
        "--time-limit", type=float, default=float(os.environ.get("BENCH_TIME_LIMIT", "300"))
    )
    ap.add_argument(
        "--out", default="benchmarks/results", help="directory for results.json / results.md"
    )
    ap.add_argument(
        "--rest",
        action="store_true",
        help="measure REST latency (POST /v1/solve on data/tiny.json, 20 clients) instead",
    )
    ap.add_argument("--merge", nargs="+", metavar="RESULTS_JSON", help="pool earlier runs")
    ap.add_argument("--worker", nargs=2, metavar=("PHASE", "SCENARIO"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), args.time_limit)
        return 0
    if args.merge:
        res = merge([Path(p) for p in args.merge])
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(res, indent=2))
        (Path(args.out) / "results.md").write_text(markdown(res))
        print(markdown(res))
        return 0
    if args.rest:
        out = rest_latency()
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "rest.json").write_text(json.dumps(out, indent=2))
        print(json.dumps(out, indent=2))
        return 0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()] or available_phases()
    unknown += [p for p in phases if p not in PHASES]
    if unknown or args.repeats < 1:
        print(f"allocator bench: unknown size/phase {unknown} or repeats < 1", file=sys.stderr)
        return 2
    run(sizes, phases, args.repeats, args.time_limit, Path(args.out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
