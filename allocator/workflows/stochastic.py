"""Two-stage stochastic plan: decide rentals (and, optionally, the first period's
allocations) before demand is known, the rest per demand scenario.

Demand scenarios ``k`` with probabilities ``p_k`` each change the base scenario's demand
(``demand_scale`` {segment id or kind: factor}, as in what-if: a segment named by its id
and by its kind gets both factors, multiplied; and/or ``demand`` {segment id: [per
period]}); contract minimums scale with demand as in what-if. Each
scenario's LP comes from ``build_lp`` unchanged; the deterministic equivalent stacks them
block-diagonally and adds

* ``non-anticipativity`` rows ``y^k_j - y^1_j = 0`` for every first-stage column ``j``
  (rentals r[p,t] in every period, and x[s,m,p,t0] when ``first_period_allocations``),
  so those decisions are the same in every scenario;
* objective ``sum_k p_k Z_k`` with ``Z_k = c_k y^k + offset_k`` (scenario k's objective:
  gross margin + w * LTV - churn, present value);
* with ``cvar_weight = lambda > 0``: ``+ lambda * CVaR_alpha(Z)``, the mean of the worst
  ``1 - alpha`` of outcomes, as ``eta - 1/(1-alpha) sum_k p_k s_k`` with
  ``s_k >= eta - Z_k``, ``s_k >= 0`` (Rockafellar-Uryasev).

The first stage is rentals, GPUs bought (expansion mode, a pool's ``expansion``) and GPUs
reserved for customers (a segment's ``reservation``: take-or-pay GPUs dedicated to the
customer), plus the first period's allocations with ``first_period_allocations=True``.
The CVaR term is on the scenario objective (gross margin + w * LTV - churn), not gross margin alone.

The value of the stochastic solution ``VSS = RP - EEV`` compares the stochastic optimum
(RP) with the plan made for expected demand (its first-stage decisions fixed, then every
scenario re-optimised: EEV), on the same objective. It is >= 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from allocator.errors import (
    InfeasibleError,
    Issue,
    NumericalError,
    SolveError,
    Status,
    TimeLimitError,
)
from allocator.lp import LinearProgram
from allocator.lp.build import build_lp
from allocator.numbers import short
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.base import Solution, Solver
from allocator.solvers.registry import HighsSolver
from allocator.workflows.twostage import (
    DemandScenario,
    _cvar,
    first_stage_columns,
    scenario_for,
)

DEMAND_FIELDS = ("name", "probability", "demand_scale", "demand")


def is_demand_file(data: Any) -> bool:
    """Does ``data`` look like demand scenarios (a list of them, or ``{"scenarios": …}``)?"""
    if isinstance(data, Mapping):
        return "scenarios" in data and "segments" not in data
    return isinstance(data, list) and all(
        isinstance(d, Mapping) and "probability" in d for d in data
    )


def validate_demand_scenarios(data: Any, base: Scenario | None = None) -> list[Issue]:
    """Every problem of a demand-scenario file (a list of ``{name, probability,
    demand_scale, demand}``, or ``{"scenarios": [...]}``): unknown fields (the closest
    one suggested), probabilities that are not numbers in [0, 1] or do not sum to 1,
    factors and demands that are not numbers >= 0, duplicate names; with ``base``, also
    segment ids or kinds it does not have and demand lists of the wrong length."""
    from allocator.scenario.model import did_you_mean

    prefix = ""
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {"scenarios"})
        issues = [Issue(k, f"unknown field {k!r}{did_you_mean(k, ['scenarios'])}") for k in unknown]
        data, prefix = data.get("scenarios"), "scenarios"
    else:
        issues = []
    if not isinstance(data, list) or not data:
        return [*issues, Issue(prefix, "must be a non-empty list of demand scenarios")]
    targets = None
    if base is not None:
        targets = [s.id for s in base.segments] + sorted({s.kind.value for s in base.segments})
    total, names = 0.0, dict[str, int]()

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    for i, ds in enumerate(data):
        at = f"{prefix}[{i}]"
        if not isinstance(ds, Mapping):
            issues.append(Issue(at, "must be an object {name, probability, demand_scale, demand}"))
            continue
        name = ds.get("name")
        where = f"{at} ({name})" if isinstance(name, str) and name else at
        here: list[Issue] = []
        for k in sorted(set(ds) - set(DEMAND_FIELDS)):
            here.append(Issue(f"{at}.{k}", f"unknown field {k!r}{did_you_mean(k, DEMAND_FIELDS)}"))
        if isinstance(name, str) and name in names:
            here.append(Issue(f"{at}.name", f"duplicate name {name!r} (also at [{names[name]}])"))
        elif isinstance(name, str):
            names[name] = i
        p: Any = ds.get("probability")
        if not number(p) or not 0 <= p <= 1:
            here.append(Issue(f"{at}.probability", f"must be a number in [0, 1], got {p!r}"))
        else:
            total += float(p)
        scale = ds.get("demand_scale") or {}
        if not isinstance(scale, Mapping):
            here.append(
                Issue(f"{at}.demand_scale", "must be an object {segment id or kind: factor}")
            )
            scale = {}
        for k, v in scale.items():
            if not number(v) or v < 0:
                here.append(Issue(f"{at}.demand_scale.{k}", f"must be a number >= 0, got {v!r}"))
            if targets is not None and k not in targets:
                here.append(
                    Issue(
                        f"{at}.demand_scale.{k}",
                        f"unknown segment or kind {k!r}{did_you_mean(k, targets)}",
                    )
                )
        demand = ds.get("demand") or {}
        if not isinstance(demand, Mapping):
            here.append(
                Issue(f"{at}.demand", "must be an object {segment id: [demand per period]}")
            )
            demand = {}
        for k, v in demand.items():
            if not isinstance(v, list) or not all(number(x) and x >= 0 for x in v):
                here.append(Issue(f"{at}.demand.{k}", "must be a list of numbers >= 0"))
            if base is not None:
                ids = [s.id for s in base.segments]
                if k not in ids:
                    here.append(
                        Issue(f"{at}.demand.{k}", f"unknown segment {k!r}{did_you_mean(k, ids)}")
                    )
                elif isinstance(v, list) and len(v) != len(base.periods):
                    here.append(
                        Issue(
                            f"{at}.demand.{k}",
                            f"has {len(v)} entries, expected {len(base.periods)} (one per period)",
                        )
                    )
        issues += [Issue(x.path, x.message, where=where + x.path[len(at) :]) for x in here]
    if not any(x.path.endswith(".probability") for x in issues) and abs(total - 1.0) > 1e-9:
        issues.append(Issue(prefix, f"the probabilities sum to {short(total)}, not 1"))
    return issues


def expected_scenario(base: Scenario, scenarios: Sequence[DemandScenario]) -> Scenario:
    """``base`` with every segment's demand and contract minimum at their expected values."""
    data = base.to_dict()
    per = [scenario_for(base, ds).to_dict() for ds in scenarios]
    for i, seg in enumerate(data["segments"]):
        seg["demand"] = [
            sum(
                ds.probability * d["segments"][i]["demand"][t]
                for ds, d in zip(scenarios, per, strict=True)
            )
            for t in range(len(seg["demand"]))
        ]
        if seg.get("contract_min") is not None:
            seg["contract_min"] = [
                min(
                    seg["demand"][t],
                    sum(
                        ds.probability * d["segments"][i]["contract_min"][t]
                        for ds, d in zip(scenarios, per, strict=True)
                    ),
                )
                for t in range(len(seg["contract_min"]))
            ]
    data["name"] = f"{base.name} (expected demand)"
    return Scenario.from_dict(data)


@dataclass
class StochasticModel:
    lp: LinearProgram  # the deterministic equivalent
    parts: list[LinearProgram]  # each scenario's own LP
    col_start: list[int]  # where each scenario's block of columns starts
    row_start: list[int]
    first_stage: np.ndarray  # column indices (within one scenario's LP) of first-stage columns
    eta: int | None  # the CVaR threshold column, when there is a CVaR term


def deterministic_equivalent(
    parts: Sequence[LinearProgram],
    probabilities: Sequence[float] | np.ndarray,
    first_stage: np.ndarray,
    *,
    cvar_weight: float = 0.0,
    cvar_level: float = 0.9,
    fixed: np.ndarray | None = None,
) -> StochasticModel:
    """Stack the scenario LPs (same columns) into one; see the module docstring.
    ``fixed`` gives values for the first-stage columns (the EEV evaluation)."""
    _check_same_columns(parts)
    n = parts[0].num_cols
    K = len(parts)
    pr = np.asarray(probabilities, dtype=float)
    col_start = [k * n for k in range(K)]
    row_start = list(np.cumsum([0] + [p.num_rows for p in parts[:-1]]))
    st = _stack_blocks(parts, pr, col_start, first_stage, fixed)
    _add_non_anticipativity(st, K, n, first_stage)
    eta = None
    n_extra_cols = 0
    if cvar_weight > 0:
        eta, n_extra_cols = _add_cvar(st, parts, pr, col_start, cvar_weight, cvar_level)
    if st.rows:
        st.A = sp.vstack([st.A, *st.rows], format="csr")
        st.lo = np.concatenate([st.lo, *st.rows_lo])
        st.up = np.concatenate([st.up, *st.rows_up])
    lp = LinearProgram(
        c=st.c,
        A=st.A,
        row_lower=st.lo,
        row_upper=st.up,
        col_lower=st.cl,
        col_upper=st.cu,
        columns=parts[0].columns,  # of the first block only: not for Plan.from_solution
        blocks=[],
        offset=st.offset,
        integrality=_stacked_integrality(parts, n_extra_cols),
    )
    return StochasticModel(lp, list(parts), col_start, row_start, first_stage, eta)


@dataclass
class _Stack:
    """The deterministic equivalent under construction: the block-diagonal scenario LPs
    and the rows still to append below them."""

    A: Any  # scipy sparse matrix
    c: np.ndarray
    offset: float
    lo: np.ndarray
    up: np.ndarray
    cl: np.ndarray
    cu: np.ndarray
    rows: list[Any] = field(default_factory=list)  # sparse blocks of extra rows
    rows_lo: list[np.ndarray] = field(default_factory=list)
    rows_up: list[np.ndarray] = field(default_factory=list)


def _check_same_columns(parts: Sequence[LinearProgram]) -> None:
    """Raise ``ValueError`` unless every scenario LP has the first one's columns."""
    n = parts[0].num_cols
    if any(p.num_cols != n for p in parts) or any(
        not np.array_equal(p.columns.x_pool, parts[0].columns.x_pool)
        or p.columns.n_u != parts[0].columns.n_u
        or p.columns.n_rsv != parts[0].columns.n_rsv
        for p in parts
    ):
        raise ValueError(
            "demand scenarios must keep the model's columns (e.g. a contract minimum scaled "
            "to zero removes its shortfall column)"
        )


def _stack_blocks(
    parts: Sequence[LinearProgram],
    pr: np.ndarray,
    col_start: Sequence[int],
    first_stage: np.ndarray,
    fixed: np.ndarray | None,
) -> _Stack:
    """The scenario LPs block-diagonally, costs weighted by probability, the first-stage
    columns of every block fixed to ``fixed`` when given."""
    A = sp.block_diag([p.A for p in parts], format="csr")
    c = np.concatenate([pk * p.c for pk, p in zip(pr, parts, strict=True)])
    offset = float(sum(pk * p.offset for pk, p in zip(pr, parts, strict=True)))
    lo = np.concatenate([p.row_lower for p in parts])
    up = np.concatenate([p.row_upper for p in parts])
    cl = np.concatenate([p.col_lower for p in parts])
    cu = np.concatenate([p.col_upper for p in parts])
    if fixed is not None:
        for k in range(len(parts)):
            cl[col_start[k] + first_stage] = fixed
            cu[col_start[k] + first_stage] = fixed
    return _Stack(A, c, offset, lo, up, cl, cu)


def _add_non_anticipativity(st: _Stack, K: int, n: int, first_stage: np.ndarray) -> None:
    """Rows ``y^k_j - y^1_j = 0`` for every later scenario ``k`` and first-stage column
    ``j``."""
    F = first_stage.size
    if not (K > 1 and F):
        return
    rows = np.arange((K - 1) * F)
    ks = np.repeat(np.arange(1, K), F)
    js = np.tile(first_stage, K - 1)
    data = np.concatenate([np.ones(rows.size), -np.ones(rows.size)])
    cols_ = np.concatenate([ks * n + js, js])
    na = sp.csr_matrix((data, (np.concatenate([rows, rows]), cols_)), shape=(rows.size, K * n))
    st.rows.append(na)
    st.rows_lo.append(np.zeros(rows.size))
    st.rows_up.append(np.zeros(rows.size))


def _add_cvar(
    st: _Stack,
    parts: Sequence[LinearProgram],
    pr: np.ndarray,
    col_start: Sequence[int],
    cvar_weight: float,
    cvar_level: float,
) -> tuple[int, int]:
    """The Rockafellar-Uryasev CVaR term: columns ``eta`` (free) and ``s_1..s_K >= 0``,
    rows ``s_k - eta + c_k y^k >= -offset_k``; returns ``eta``'s column and the number of
    columns added."""
    if not 0 <= cvar_level < 1:
        raise ValueError(f"cvar_level must be in [0, 1), got {cvar_level!r}")
    K = len(parts)
    n = parts[0].num_cols
    n_total = K * n
    eta = n_total
    n_extra_cols = 1 + K
    r = []
    for k, p in enumerate(parts):
        cols_k = col_start[k] + np.arange(n)
        nz = p.c != 0
        idx = np.concatenate([cols_k[nz], [eta, eta + 1 + k]])
        val = np.concatenate([p.c[nz], [-1.0, 1.0]])
        r.append((idx, val, -p.offset))
    rr = np.concatenate([np.full(idx.size, k) for k, (idx, _v, _o) in enumerate(r)])
    cc = np.concatenate([idx for idx, _v, _o in r])
    vv = np.concatenate([v for _i, v, _o in r])
    cv = sp.csr_matrix((vv, (rr, cc)), shape=(K, n_total + n_extra_cols))
    st.rows = [sp.hstack([m, sp.csr_matrix((m.shape[0], n_extra_cols))]) for m in st.rows]
    st.A = sp.hstack([st.A, sp.csr_matrix((st.A.shape[0], n_extra_cols))], format="csr")
    st.rows.append(cv)
    st.rows_lo.append(np.array([o for _i, _v, o in r]))
    st.rows_up.append(np.full(K, np.inf))
    st.c = np.concatenate([st.c, [cvar_weight], -cvar_weight * pr / (1.0 - cvar_level)])
    st.cl = np.concatenate([st.cl, [-np.inf], np.zeros(K)])
    st.cu = np.concatenate([st.cu, [np.inf], np.full(K, np.inf)])
    return eta, n_extra_cols


def _stacked_integrality(parts: Sequence[LinearProgram], n_extra_cols: int) -> np.ndarray | None:
    """The blocks' integrality side by side (the CVaR columns continuous), or ``None``
    when every block is continuous."""
    if not any(p.integrality is not None for p in parts):
        return None
    n = parts[0].num_cols
    ints = [p.integrality if p.integrality is not None else np.zeros(n, dtype=bool) for p in parts]
    return np.concatenate([*ints, np.zeros(n_extra_cols, dtype=bool)])


@dataclass
class StochasticResult:
    names: list[str]
    probabilities: list[float]
    plans: list[Plan]  # per scenario; objective = that scenario's Z_k
    objective: float  # the stochastic program's optimum (RP), CVaR term included
    expected_objective: float  # sum_k p_k Z_k
    cvar: float | None  # CVaR_alpha of Z at the optimum, when a CVaR term is used
    first_stage: dict[str, Any]  # rentals [pool][period] GPUs (and first-period allocations)
    ev_objective: float | None  # the expected-demand problem's own optimum
    eev: float | None  # the expected-demand plan evaluated over the scenarios
    vss: float | None  # objective - eev
    vss_note: str = ""
    method: str = "extensive"  # or "decomposition"
    gap: float = 0.0  # proven relative gap of ``objective`` (decomposition)
    bound: float | None = None  # upper bound on the optimum (decomposition)
    wait_and_see: float | None = None  # sum_k p_k (scenario k's optimum, demand known)
    evpi: float | None = None  # wait_and_see - expected objective (no CVaR term)
    iterations: list[dict[str, Any]] = field(default_factory=list)  # decomposition
    decomposition: dict[str, Any] = field(default_factory=dict)  # workers, timings

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "gap": self.gap,
            "bound": self.bound,
            "wait_and_see": self.wait_and_see,
            "evpi": self.evpi,
            "iterations": self.iterations,
            "decomposition": self.decomposition,
            "objective": self.objective,
            "expected_objective": self.expected_objective,
            "cvar": self.cvar,
            "ev_objective": self.ev_objective,
            "eev": self.eev,
            "vss": self.vss,
            "vss_note": self.vss_note,
            "first_stage": self.first_stage,
            "scenarios": [
                {
                    "name": n,
                    "probability": p,
                    "objective": plan.objective,
                    "gross_margin": plan.gross_margin,
                    "ltv": plan.ltv,
                    "plan": plan.to_dict(),
                }
                for n, p, plan in zip(self.names, self.probabilities, self.plans, strict=True)
            ],
        }


def _run(solver: Solver, lp: LinearProgram, time_limit: float | None, what: str) -> Solution:
    sol = solver.solve(lp, time_limit=time_limit)
    if sol.status in (Status.OPTIMAL, Status.TIME_LIMIT) and sol.x is not None:
        return sol
    if sol.status is Status.INFEASIBLE:
        raise InfeasibleError(f"{what}: {sol.message}")
    if sol.status is Status.TIME_LIMIT_NO_SOLUTION:
        raise TimeLimitError(f"{what}: {sol.message}")
    raise NumericalError(f"{what}: {sol.message}")


def stochastic_plan(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    demand_scenarios: Sequence[DemandScenario | Mapping[str, Any]],
    *,
    first_period_allocations: bool = False,
    cvar_weight: float = 0.0,
    cvar_level: float = 0.9,
    time_limit: float | None = None,
    solver: Solver | None = None,
    compute_vss: bool = True,
    progress: Callable[[str], None] | None = None,
    method: str = "auto",
    gap: float = 1e-4,
    executor: str = "process",
    workers: int | None = None,
    client: Any = None,
    multicut: bool = True,
    share_models: bool = True,
) -> StochasticResult:
    """The two-stage plan of ``scenario`` over ``demand_scenarios`` (probabilities summing
    to 1); see the module docstring. Raises ``ValueError`` for bad probabilities or
    scenarios, and the solve errors of :func:`allocator.solve`. ``progress``, when given,
    is called with a one-line message as each step starts (default: silent).

    ``method``: ``extensive`` (one LP), ``decomposition`` (multi-cut L-shaped,
    :mod:`allocator.workflows.decomposition`: stops at relative ``gap`` or ``time_limit``;
    subproblems on ``executor`` ``process`` / ``inline``, or on a Dask ``client``) or
    ``auto`` (decomposition from :data:`AUTO_COLUMNS` stacked columns on, LPs only).
    ``share_models`` (default True): each decomposition worker keeps one HiGHS model for
    all its scenarios (as fast, a fraction of the memory); False: one per scenario."""
    say = progress or _silent
    base = as_scenario(scenario)
    scs, pr = _checked_scenarios(demand_scenarios, cvar_weight)
    if method not in ("auto", "extensive", "decomposition"):
        raise ValueError(f"method must be auto, extensive or decomposition, got {method!r}")
    auto = method == "auto"
    if auto:
        method = choose_method(base, len(scs), solver)
    if method == "decomposition":
        return _decomposed_plan(
            base,
            scs,
            pr,
            first_period_allocations=first_period_allocations,
            cvar_weight=cvar_weight,
            cvar_level=cvar_level,
            time_limit=time_limit,
            compute_vss=compute_vss,
            say=say,
            gap=gap,
            executor=executor,
            workers=workers,
            client=client,
            multicut=multicut,
            share_models=share_models,
        )
    backend = solver or HighsSolver()
    say(f"building the LPs of {len(scs)} demand scenarios")
    scenarios = [scenario_for(base, d) for d in scs]
    parts = [build_lp(s) for s in scenarios]
    first = first_stage_columns(parts[0], first_period_allocations)
    model = deterministic_equivalent(
        parts, pr, first, cvar_weight=cvar_weight, cvar_level=cvar_level
    )
    say(
        f"extensive form: {len(parts)} scenarios, {model.lp.num_cols} columns, "
        f"{model.lp.num_rows} rows ({first.size} first-stage columns per scenario)"
    )
    say("solving the extensive form")
    sol = _run(backend, model.lp, time_limit, f"stochastic plan of {base.name!r}")
    assert sol.x is not None and sol.objective is not None
    say("reading each scenario's plan")
    plans, values = _plans(model, scenarios, pr, sol)
    expected = float(pr @ values)
    cvar = None
    if model.eta is not None:
        cvar = _cvar(values, pr, cvar_level)
    first_stage = _first_stage_decisions(
        base, parts[0], sol.x[: parts[0].num_cols], plans[0], first_period_allocations
    )
    ev_obj = eev = vss = None
    note = ""
    if compute_vss:
        ev_obj, eev, vss, note = _value_of_stochastic_solution(
            backend,
            base,
            scs,
            parts,
            pr,
            first,
            float(sol.objective),
            cvar_weight=cvar_weight,
            cvar_level=cvar_level,
            time_limit=time_limit,
            say=say,
        )
    ws = None
    if compute_vss:
        say(f"wait-and-see: each of the {len(parts)} scenarios with its demand known (EVPI)")
        try:
            ws = float(
                sum(
                    pk * float(_run(backend, p, time_limit, "wait-and-see").objective or 0.0)
                    for pk, p in zip(pr, parts, strict=True)
                )
            )
        except SolveError:
            ws = None
    return StochasticResult(
        wait_and_see=ws,
        evpi=None if ws is None else ws - expected,
        names=[d.name or f"s{k}" for k, d in enumerate(scs)],
        probabilities=pr.tolist(),
        plans=plans,
        objective=float(sol.objective),
        expected_objective=expected,
        cvar=cvar,
        first_stage=first_stage,
        ev_objective=ev_obj,
        eev=eev,
        vss=vss,
        vss_note=note,
    )


AUTO_COLUMNS = 30_000
"""``method="auto"`` decomposes from this many columns in the extensive form (scenarios ×
one scenario's columns) on; below it the extensive form is solved (see docs/batch.md for
the measurements)."""


def choose_method(base: Scenario, n_scenarios: int, solver: Solver | None = None) -> str:
    """``extensive`` or ``decomposition`` for ``n_scenarios`` copies of ``base``'s LP."""
    if solver is not None or n_scenarios < 2:
        return "extensive"
    lp = build_lp(base)
    if lp.is_mip or lp.num_cols * n_scenarios < AUTO_COLUMNS:
        return "extensive"
    return "decomposition"


def _silent(message: str) -> None:
    """The default progress callback: report nothing."""


def _checked_scenarios(
    demand_scenarios: Sequence[DemandScenario | Mapping[str, Any]], cvar_weight: float
) -> tuple[list[DemandScenario], np.ndarray]:
    """The demand scenarios and their probabilities, checked (``ValueError`` if bad)."""
    scs = [d if isinstance(d, DemandScenario) else DemandScenario.of(d) for d in demand_scenarios]
    if not scs:
        raise ValueError("give at least one demand scenario")
    pr = np.array([d.probability for d in scs])
    if np.any(~np.isfinite(pr)) or np.any(pr < 0) or abs(pr.sum() - 1.0) > 1e-9:
        raise ValueError(f"probabilities must be >= 0 and sum to 1, got {pr.tolist()}")
    if cvar_weight < 0:
        raise ValueError(f"cvar_weight must be >= 0, got {cvar_weight!r}")
    return scs, pr


def _first_stage_decisions(
    base: Scenario,
    lp: LinearProgram,
    xs: np.ndarray,
    plan: Plan,
    first_period_allocations: bool,
) -> dict[str, Any]:
    """The decisions taken before demand is known, read from the first scenario's block
    ``xs`` (and its ``plan``): rentals, GPUs bought and reserved [pool][period] GPUs."""
    r0 = lp.columns
    pool_ids, labels = [p.id for p in base.pools], base.period_labels
    rentals: dict[str, dict[str, float]] = {}
    for j in range(r0.n_r):
        v = float(xs[r0.r_offset + j])
        if v > 1e-9:
            rentals.setdefault(pool_ids[r0.r_pool[j]], {})[labels[r0.r_period[j]]] = v
    bought: dict[str, dict[str, float]] = {}
    for j in range(r0.n_e):
        v = float(xs[r0.e_offset + j])
        if v > 1e-9:
            bought.setdefault(pool_ids[r0.e_pool[j]], {})[labels[r0.e_period[j]]] = v
    reserved: dict[str, dict[str, dict[str, float]]] = {}
    seg_ids = [sg.id for sg in base.segments]
    for j in range(r0.n_rsv):
        v = float(xs[r0.rsv_offset + j])
        if v > 1e-9:
            by_pool = reserved.setdefault(seg_ids[r0.rsv_segment[j]], {})
            by_pool.setdefault(pool_ids[r0.rsv_pool[j]], {})[labels[r0.rsv_period[j]]] = v
    first_stage: dict[str, Any] = {
        "rentals": rentals,
        "expansions": bought,
        "reservations": reserved,
    }
    if first_period_allocations:
        first_stage["first_period_allocations"] = [
            {"segment": a.segment, "mode": a.mode, "pool": a.pool, "gpus": a.gpus}
            for a in plan.allocations
            if a.period == labels[0]
        ]
    return first_stage


def _value_of_stochastic_solution(
    backend: Solver,
    base: Scenario,
    scs: Sequence[DemandScenario],
    parts: Sequence[LinearProgram],
    pr: np.ndarray,
    first: np.ndarray,
    rp: float,
    *,
    cvar_weight: float,
    cvar_level: float,
    time_limit: float | None,
    say: Callable[[str], None],
) -> tuple[float | None, float | None, float | None, str]:
    """The expected-demand plan's own optimum (EV), its first stage evaluated over the
    scenarios (EEV) and ``VSS = rp - EEV``, or a note saying why there is no VSS."""
    ev_obj = eev = vss = None
    note = ""
    say("expected-value plan: solving for expected demand")
    ev_sc = expected_scenario(base, scs)
    ev_lp = build_lp(ev_sc)
    try:
        ev_sol = _run(backend, ev_lp, time_limit, "expected-demand plan")
        assert ev_sol.x is not None and ev_sol.objective is not None
        ev_obj = float(ev_sol.objective)
        fixed_model = deterministic_equivalent(
            parts,
            pr,
            first,
            cvar_weight=cvar_weight,
            cvar_level=cvar_level,
            fixed=ev_sol.x[first],
        )
        say(f"evaluating the expected-value plan in the {len(parts)} scenarios (EEV)")
        eev_sol = _run(backend, fixed_model.lp, time_limit, "expected-demand plan")
        assert eev_sol.objective is not None
        eev = float(eev_sol.objective)
        vss = rp - eev
    except InfeasibleError:
        note = (
            "the expected-demand plan's first-stage decisions are infeasible in some "
            "scenario (e.g. first-period allocations above a scenario's demand): "
            "the VSS is unbounded"
        )
    except SolveError as exc:
        note = f"no VSS: {exc}"
    return ev_obj, eev, vss, note


def _plans(
    model: StochasticModel, scenarios: Sequence[Scenario], pr: np.ndarray, sol: Solution
) -> tuple[list[Plan], np.ndarray]:
    """Each scenario's plan from its block of the solution: duals divided by the
    scenario's probability (so shadow prices are those given that scenario)."""
    assert sol.x is not None
    plans, values = [], []
    for k, (sc, lp) in enumerate(zip(scenarios, model.parts, strict=True)):
        xs = sol.x[model.col_start[k] : model.col_start[k] + lp.num_cols]
        z = float(lp.c @ xs + lp.offset)
        duals = None
        if sol.row_dual is not None and pr[k] > 0:
            duals = sol.row_dual[model.row_start[k] : model.row_start[k] + lp.num_rows] / pr[k]
        part = replace(
            sol,
            x=xs,
            row_dual=duals,
            col_dual=None,
            objective=z,
            duals_note="" if duals is not None else "scenario of probability 0",
        )
        plans.append(Plan.from_solution(sc, lp, part))
        values.append(z)
    return plans, np.array(values)


def _in_domain_words(
    exc: Any, base: Scenario, scs: Sequence[Any], first_period_allocations: bool
) -> InfeasibleError:
    """The decomposition's proof that no first stage suits every demand scenario
    (:class:`~allocator.workflows.decomposition.TwoStageInfeasibleError`), said with the
    scenarios' names: a scenario with no plan at all gets the engine's diagnosis; scenarios
    that each have a plan but need conflicting first-stage decisions get those decisions."""
    from allocator.engine import solve

    names = [d.name or f"s{k}" for k, d in enumerate(scs)]
    if exc.alone:
        k = exc.scenarios[0]
        try:
            solve(scenario_for(base, scs[k]))
        except InfeasibleError as why:
            return InfeasibleError(
                f"demand scenario {names[k]!r} has no feasible plan even with the "
                f"first-stage decisions free: {why}",
                getattr(why, "diagnosis", None),
            )
        return InfeasibleError(str(exc))
    lp0 = build_lp(base)
    labels = _first_stage_labels(base, lp0, first_period_allocations)
    parts = []
    for k in exc.scenarios:
        pi, _rhs = exc.needs[k]
        order = np.argsort(-np.abs(pi))
        big = [j for j in order[:3] if abs(pi[j]) > 1e-9]
        more = [labels[j] for j in big if pi[j] < 0]
        less = [labels[j] for j in big if pi[j] > 0]
        said = [f"more {', '.join(more)}"] if more else []
        said += [f"fewer {', '.join(less)}"] if less else []
        parts.append(f"scenario {names[k]!r} needs {' and '.join(said) or 'other decisions'}")
    return InfeasibleError(
        "no first-stage decisions suit every demand scenario at once (each has a plan "
        "alone): " + "; ".join(parts)
    )


def _first_stage_labels(
    base: Scenario, lp: LinearProgram, first_period_allocations: bool
) -> list[str]:
    """Each first-stage column of ``lp`` in words, in :func:`first_stage_columns` order."""
    c = lp.columns
    pools, segs, t = [p.id for p in base.pools], [s.id for s in base.segments], base.period_labels
    out = []
    if first_period_allocations:
        for j in np.nonzero(c.x_period == 0)[0]:
            mode = c.modes[c.x_mode[j]][1]
            out.append(
                f"GPUs of pool {pools[c.x_pool[j]]} for {segs[c.x_segment[j]]} ({mode}) in {t[0]}"
            )
    out += [
        f"GPUs rented in {pools[p]} in {t[q]}" for p, q in zip(c.r_pool, c.r_period, strict=True)
    ]
    out += [
        f"GPUs bought for {pools[p]} in {t[q]}" for p, q in zip(c.e_pool, c.e_period, strict=True)
    ]
    out += [
        f"GPUs of {pools[p]} reserved for {segs[g]} in {t[q]}"
        for g, p, q in zip(c.rsv_segment, c.rsv_pool, c.rsv_period, strict=True)
    ]
    return out


def _decomposed_plan(
    base: Scenario,
    scs: Sequence[Any],
    pr: np.ndarray,
    *,
    first_period_allocations: bool,
    cvar_weight: float,
    cvar_level: float,
    time_limit: float | None,
    compute_vss: bool,
    say: Callable[[str], None],
    gap: float = 1e-4,
    executor: str = "process",
    workers: int | None = None,
    client: Any = None,
    multicut: bool = True,
    share_models: bool = True,
) -> StochasticResult:
    """:func:`stochastic_plan` by decomposition (:mod:`allocator.workflows.decomposition`)."""
    from allocator.workflows.decomposition import TwoStageInfeasibleError, decompose, make_pool

    t0 = time.perf_counter()
    start = ev_obj = None
    note = ""
    # the expected-demand plan: the first candidate (its evaluation is the EEV)
    say("expected-value plan: solving for expected demand")
    ev_lp = build_lp(expected_scenario(base, scs))
    try:
        ev_sol = _run(HighsSolver(), ev_lp, time_limit, "expected-demand plan")
        assert ev_sol.x is not None and ev_sol.objective is not None
        ev_obj = float(ev_sol.objective) if compute_vss else None
        start = ev_sol.x[first_stage_columns(ev_lp, first_period_allocations)]
    except SolveError as exc:
        note = f"no VSS: {exc}"
    del ev_lp
    rest = None if time_limit is None else max(1.0, time_limit - (time.perf_counter() - t0))
    demand = [
        {
            "name": d.name,
            "probability": d.probability,
            "demand_scale": d.demand_scale,
            "demand": d.demand,
        }
        for d in scs
    ]
    say("starting the scenario workers")
    pool = make_pool(
        base.to_dict(),
        demand,
        first_period_allocations,
        executor=executor,
        workers=workers,
        client=client,
        share=share_models,
    )
    try:
        opts: dict[str, Any] = {
            "cvar_weight": cvar_weight,
            "cvar_level": cvar_level,
            "gap": gap,
            "time_limit": rest,
            "multicut": multicut,
            "progress": say,
            "wait_and_see": compute_vss,
        }
        try:
            r = decompose(pool, pr, start=start, **opts)
        except TwoStageInfeasibleError as exc:
            raise _in_domain_words(exc, base, scs, first_period_allocations) from None
    finally:
        pool.close()
    if start is not None and r.eev is None:  # the first candidate was cut off
        note = (
            "the expected-demand plan's first-stage decisions are infeasible in some "
            "scenario (e.g. first-period allocations above a scenario's demand): "
            "the VSS is unbounded"
        )
    expected = float(pr @ r.values)
    cvar = _cvar(r.values, pr, cvar_level) if cvar_weight > 0 else None
    lp0 = build_lp(base)  # the columns' meaning (every scenario has the same columns)
    xs = np.zeros(lp0.num_cols)
    xs[first_stage_columns(lp0, first_period_allocations)] = r.first
    first_stage = _first_stage_decisions(base, lp0, xs, r.plans[0], first_period_allocations)
    del lp0, xs
    eev = r.eev if compute_vss else None
    return StochasticResult(
        names=[d.name or f"s{k}" for k, d in enumerate(scs)],
        probabilities=pr.tolist(),
        plans=r.plans,
        objective=r.objective,
        expected_objective=expected,
        cvar=cvar,
        first_stage=first_stage,
        ev_objective=ev_obj,
        eev=eev,
        vss=None if eev is None else r.objective - eev,
        vss_note=note,
        method="decomposition",
        gap=r.gap,
        bound=r.bound,
        wait_and_see=r.wait_and_see,
        evpi=None if r.wait_and_see is None else r.wait_and_see - expected,
        iterations=[
            {
                "iteration": i.iteration + 1,
                "lower": i.lower,
                "upper": i.upper,
                "gap": i.gap,
                "time_s": i.time_s,
                "subproblems_wall_s": i.sub_time_s,
                "subproblem_s": i.sub_times_s,
                "master_s": i.master_s,
            }
            for i in r.iterations
        ],
        decomposition={
            "executor": r.executor,
            "workers": r.workers,
            "converged": r.converged,
            "setup_s": r.setup_s,
            "wait_and_see_round_s": r.free_round_s,
            "wait_and_see_subproblem_s": r.free_times_s,
        },
    )
