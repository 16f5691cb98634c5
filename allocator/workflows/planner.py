"""Planner: a session that keeps the built LP and the HiGHS object between solves, so a
small change (one segment's demand, one pool's GPUs) is re-solved warm from the previous
optimal basis by dual simplex instead of from scratch.

>>> from allocator.scenario.generate import generate
>>> planner = Planner(generate(12, 4, 3, seed=1))
>>> plan = planner.solve()
>>> plan2 = planner.scale_demand(planner.scenario.segments[0].id, 1.05, period=1)
>>> planner.last_solve.warm, planner.last_solve.status
(True, 'optimal')

Each change edits the LP in place (row bounds, the objective constant) and the scenario
copy the planner holds (``planner.scenario``), so the plan's money lines are those of the
changed scenario. The model's structure (its columns and matrix) never changes, so a
change that would add or remove rows or columns (a contract minimum going from 0 to
positive, a pool's GPUs when its rentable capacity is 0 …) is not offered here: build a
new Planner for those. Only LPs: pools with ``allocation_unit_gpus`` (a MILP) are refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from allocator.errors import (
    InfeasibleError,
    Issue,
    NumericalError,
    ScenarioError,
    Status,
    TimeLimitError,
    UnboundedError,
)
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import block_bounds, build_lp, objective_of
from allocator.lp.program import RowBlock
from allocator.plan import Plan
from allocator.plan.readout import ReadOutCache
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.scenario.model import (
    Pool,
    Segment,
    check_items,
    named_issues,
    per_period,
    pydantic_issues,
    unknown_id,
)
from allocator.scenario.overrides import (
    Overrides,
    added_gpus,
    apply_overrides,
    pool_changes,
    scale_segment,
    scaled,
    segment_changes,
)
from allocator.solvers.base import Solution
from allocator.solvers.blocks import PeriodBlocks
from allocator.solvers.highs_model import highspy
from allocator.solvers.rowgen import LoadedModel, RowGenerationSolver, load_whole


@dataclass(frozen=True)
class SolveStats:
    """How the last solve went: ``warm`` is True when it started from the previous basis."""

    warm: bool
    status: str
    algorithm: str
    time_s: float
    iterations: int
    objective: float | None


class Planner:
    """A planning session over one scenario (see the module docstring).

    ``algorithm`` is the first, cold solve's: ``auto`` is what :func:`allocator.solve`
    does (the period split with lazy stability rows, solvers/rowgen.py), ``simplex`` or
    ``ipm`` (with crossover) solve the whole LP in HiGHS. Every later solve is dual simplex
    from the kept basis; a stability row the change makes violated is added and the model
    re-solved, as in the cold solve.
    """

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | str | Path,
        *,
        algorithm: str = "auto",
        time_limit: float | None = None,
        threads: int | None = None,
    ):
        if algorithm not in ("auto", "simplex", "ipm"):
            raise ValueError(f"algorithm must be auto, simplex or ipm, got {algorithm!r}")
        self.scenario: Scenario = as_scenario(scenario)
        self.base: Scenario = self.scenario  # what-if overrides apply to this one
        self.algorithm = algorithm
        self.time_limit = time_limit
        self.threads = threads
        t0 = time.perf_counter()
        self.arrays = ScenarioArrays.of(self.scenario)
        self.lp: LinearProgram = build_lp(self.scenario)
        self.build_time_s = time.perf_counter() - t0
        if self.lp.is_mip:
            raise ValueError(
                "Planner re-solves LPs warm; this scenario has pools allocated in whole units "
                "(allocation_unit_gpus), a MILP: use allocator.solve()"
            )
        self._model: LoadedModel | None = None
        self._blocks: PeriodBlocks | None = None  # the optimum by period (solvers/blocks.py)
        self._changed: np.ndarray | None = None  # (T,) periods changed since the last solve
        self.periods_solved: np.ndarray | None = None  # by the last solve; None: all
        self._readout = ReadOutCache()  # the last plan's sums and binding rows, to patch
        self._full_readout = False  # the next plan is read out whole (set_scenario)
        self._array_periods = np.zeros(len(self.scenario.periods), dtype=bool)
        self._seg = {s.id: i for i, s in enumerate(self.scenario.segments)}
        self._pool = {p.id: j for j, p in enumerate(self.scenario.pools)}
        self._period = {label: t for t, label in enumerate(self.scenario.period_labels)}
        self.last_solution: Solution | None = None
        self.last_solve: SolveStats | None = None
        self.last_change: str | None = None  # how the last what-if reached the LP
        # what-ifs apply to the base: its numbers a what-if changes, kept apart from the
        # arrays that update_demand & co. change in place
        self._base_arrays = replace(self.arrays)
        self._base_numbers = {k: getattr(self.arrays, k).copy() for k in ARRAY_NUMBERS}
        # the kept LP is the base's with only what the array path recomputes changed (costs,
        # the demand and GPU blocks); set_scenario may change any number: the array path
        # is then off for the session
        self._at_base_structure = True
        self._changed_directly = False  # update_demand & co. since the last what-if
        self._dirty: tuple[set[int], set[int]] = (set(), set())  # segments, pools changed

    # ------------------------------------------------------------------ solving
    def solve(self) -> Plan:
        """Solve the current model: cold the first time, warm from the last basis after:
        the blocks of periods the changes since touched alone where the model splits by
        period (solvers/blocks.py), the whole kept model otherwise."""
        warm = self._model is not None
        solver = RowGenerationSolver(threads=self.threads)
        sol = None
        changed = None if self._changed is None else self._changed.copy()
        if self._model is None:
            if self.algorithm == "auto":
                sol, self._model = solver.run_loaded(self.lp, self.time_limit, keep=True)
            else:
                self._model = load_whole(self.lp, self.algorithm, self.threads)
                sol = solver.resolve(self._model, self.lp, self.time_limit)
        elif self._blocks is not None and self._changed is not None:
            deadline = None if self.time_limit is None else time.perf_counter() + self.time_limit
            done = self._blocks.resolve(self.lp, self._changed, deadline)
            if done is not None:
                sol, self.periods_solved = done
        if sol is None:  # the whole kept model, warm from the blocks' basis when they have one
            assert self._model is not None
            self._sync_whole()
            sol = solver.resolve(self._model, self.lp, self.time_limit)
        if sol.algorithm != "period-window":
            assert self._model is not None
            self.periods_solved = None
            self._blocks = (
                PeriodBlocks.of(self.lp, self._model, sol, self.threads)
                if sol.status is Status.OPTIMAL
                else None
            )
        self._changed = None if self._blocks is None else np.zeros(self._blocks.split.periods, bool)
        self.last_solution = sol
        self.last_solve = SolveStats(
            warm, sol.status.value, sol.algorithm, sol.time_s, sol.iterations, sol.objective
        )
        if sol.status not in (Status.OPTIMAL, Status.TIME_LIMIT):
            self._raise(sol)
        # the read-out patches the periods changed or solved again; all after a whole solve
        patch = sol.algorithm == "period-window" and not self._full_readout
        if patch and changed is not None and self.periods_solved is not None:
            self._readout.periods = changed | self.periods_solved | self._array_periods
        else:
            self._readout.periods = None
        self._full_readout = False
        self._array_periods = np.zeros(len(self._period), dtype=bool)
        return Plan.from_solution(
            self.scenario,
            self.lp,
            sol,
            build_time_s=self.build_time_s,
            arrays=self.arrays,
            cache=self._readout,
        )

    def _sync_whole(self) -> None:
        """Before the whole kept model is solved again: the lazy rows the blocks added are
        added to it (its basis is its own last one)."""
        blocks, model = self._blocks, self._model
        if blocks is None or model is None or model.full:
            return
        rows = blocks.lazy_rows[blocks.active & (model.hrow_of[blocks.lazy_rows] < 0)]
        if rows.size:
            model.add(np.sort(rows), self.lp)
        self._blocks = None

    def _mark(self, cols: np.ndarray, rows: np.ndarray) -> None:
        """Note the periods these LP columns and rows belong to as changed."""
        if self._blocks is not None and self._changed is not None:
            self._changed |= self._blocks.periods_of(cols, rows, self.lp)

    def _raise(self, sol: Solution) -> None:
        where = f"scenario {self.scenario.name!r}: "
        if sol.status is Status.INFEASIBLE:
            raise InfeasibleError(where + sol.message)
        if sol.status is Status.TIME_LIMIT_NO_SOLUTION:
            raise TimeLimitError(where + sol.message)
        if sol.status is Status.UNBOUNDED:
            raise UnboundedError(where + sol.message)
        raise NumericalError(where + sol.message)

    # ------------------------------------------------------------------ changes
    def update_demand(self, segment: str, period: str | int, value: float) -> Plan:
        """Set ``segment``'s demand in ``period`` (label or index) to ``value`` work units
        and re-solve. The contract minimum stays; it may not exceed the new demand.

        A segment with price tiers has the tiers' units as its demand: each tier's units in
        the period are scaled by the same factor (new demand / old), so the demand curve
        keeps its shape; a period whose tiers offer nothing cannot be scaled (``ValueError``:
        give the tiers' units with :meth:`set_scenario`)."""
        s, t = self._segment_index(segment), self._period_index(period)
        value = float(value)
        if not (value >= 0 and np.isfinite(value)):
            raise ValueError(f"demand must be a finite number >= 0, got {value!r}")
        if self.arrays.contract_min[s, t] > value:
            raise ValueError(
                f"demand {value:g} of {segment!r} in period {t} is below its contract minimum "
                f"{self.arrays.contract_min[s, t]:g}"
            )
        if self.scenario.segments[s].tiers:
            return self._set_tiered_demand(s, np.array([t]), np.array([value]), None)
        self._set_demand(s, np.array([t]), np.array([value]), None)
        return self.solve()

    def scale_demand(self, segment: str, factor: float, period: str | int | None = None) -> Plan:
        """Multiply ``segment``'s demand and its contract minimum (as the what-if's
        ``demand_scale`` and ``contract_scale`` together do) by ``factor`` > 0 in
        ``period``, or in every period when ``period`` is None, and re-solve. A segment
        with price tiers has its tiers' units scaled (see :meth:`update_demand`)."""
        s = self._segment_index(segment)
        factor = float(factor)
        if not (factor > 0 and np.isfinite(factor)):
            raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
        T = self.arrays.demand.shape[1]
        ts = np.arange(T) if period is None else np.array([self._period_index(period)])
        demand, contract = self.arrays.demand[s, ts] * factor, self.arrays.contract_min[s, ts]
        if self.scenario.segments[s].tiers:
            return self._set_tiered_demand(s, ts, demand, contract * factor)
        self._set_demand(s, ts, demand, contract * factor)
        return self.solve()

    def set_capacity(self, pool: str, period: str | int, gpus: float) -> Plan:
        """Set ``pool``'s GPUs (before headroom) in ``period`` to ``gpus`` and re-solve.
        Updates every row whose bound depends on it: the pool's capacity, the R&D floor,
        the stability limits of the pool in this period and the next, the segment shares."""
        p, t = self._pool_index(pool), self._period_index(period)
        gpus = float(gpus)
        if not (gpus >= 0 and np.isfinite(gpus)):
            raise ValueError(f"gpus must be a finite number >= 0, got {gpus!r}")
        self._set_gpus(p, t, gpus)
        return self.solve()

    def what_if(self, overrides: Overrides | Mapping[str, Any]) -> Plan:
        """Apply what-if ``overrides`` (:mod:`allocator.workflows.whatif`: demand and price factors,
        capacity changes, kind caps and floors) to the planner's **base** scenario (the one
        it was created with, not the last what-if) and re-solve, warm where the model keeps
        its structure (see :meth:`set_scenario`).

        Demand, price, cost and capacity changes of segments without tiers or
        subscriptions take the array path (``last_change`` says which ran): the changed
        items alone are validated again, the costs and the bounds of the blocks they enter
        are recomputed from the scenario's arrays (no matrix, no whole scenario validated)
        and only what differs is pushed. The scenario is the one :func:`apply_overrides`
        gives, and so are the errors."""
        ov = overrides if isinstance(overrides, Overrides) else Overrides.model_validate(overrides)
        if self._model is not None and self._at_base_structure and _array_path(ov):
            t0 = time.perf_counter()
            change = self._array_change(ov)
            if change is not None:
                self.scenario, new_arrays, new_lp, self._dirty = change
                self._changed_directly = False
                self._array_periods |= _periods_changed(self.arrays, new_arrays)
                self._push(new_lp)
                self.arrays, self.build_time_s = new_arrays, time.perf_counter() - t0
                self.last_change = "arrays"
                return self.solve()
        self.last_change = "scenario"
        return self.set_scenario(apply_overrides(self.base, ov))

    def _array_change(
        self, ov: Overrides
    ) -> tuple[Scenario, ScenarioArrays, LinearProgram, tuple[set[int], set[int]]] | None:
        """The base scenario with ``ov`` applied, its arrays and LP (costs and bounds
        recomputed, the matrix shared), and the segments and pools that differ from the
        base; None when the change needs the scenario path (tiers, subscriptions, or a
        row or column that appears or disappears). Raises ScenarioError as
        apply_overrides does."""
        base, T = self.base, len(self.base.periods)
        issues: list[Issue] = []
        seg_changes = list(segment_changes(base, ov, issues))
        pool_ch = list(pool_changes(base, ov, issues))
        if issues:
            raise ScenarioError(issues)
        if (
            ov.contract_scale  # may be refused (a minimum above demand): apply_overrides says so
            or ov.power_change
            or base.sites  # sites: GPUs on hand bound powered columns, not rows
            or any(
                base.segments[i].tiers or base.segments[i].subscription for _, i, _ in seg_changes
            )
        ):
            return None
        arr = replace(self._base_arrays, **{k: v.copy() for k, v in self._base_numbers.items()})
        seg_data: dict[int, dict[str, Any]] = {}
        pool_data: dict[int, dict[str, Any]] = {}
        for name, i, f in seg_changes:
            factor = np.asarray(per_period(f, T), dtype=float)
            if name == "demand_scale":
                arr.demand[i] *= factor
                np.minimum(arr.contract_min[i], arr.demand[i], out=arr.contract_min[i])
            else:
                arr.revenue[i] *= factor
            scale_segment(
                seg_data.setdefault(i, base.segments[i].model_dump(mode="json", exclude_none=True)),
                name,
                f,
            )
        for name, j, f in pool_ch:
            pool = pool_data.setdefault(j, base.pools[j].model_dump(mode="json", exclude_none=True))
            if name == "cost_change":
                arr.var_cost[j] *= np.asarray(per_period(f, T), dtype=float)
                pool["variable_cost_per_gpu_hour"] = scaled(pool["variable_cost_per_gpu_hour"], f)
            else:
                pool["gpus"] = added_gpus(pool["gpus"], f)
                arr.gpus[j] = pool["gpus"]
        sc = self._changed_scenario(seg_data, pool_data)
        direct = self._changed_directly  # update_demand & co.: numbers not in _dirty
        lp = self._lp_of(
            sc,
            arr,
            demand=bool(seg_data) or bool(self._dirty[0]) or direct,
            gpus=bool(pool_data) or bool(self._dirty[1]) or direct,
        )
        if lp is None:
            return None
        return sc, arr, lp, (set(seg_data), set(pool_data))

    def _changed_scenario(
        self, seg_data: dict[int, dict[str, Any]], pool_data: dict[int, dict[str, Any]]
    ) -> Scenario:
        """The base scenario with these segments and pools (their data) validated and put in
        place (the others as in the base, those changed before back to the base's)."""
        base = self.base
        segments: list[Any] = list(base.segments)
        pools: list[Any] = list(base.pools)
        issues: list[Issue] = []
        for items, data, model, key in (
            (segments, seg_data, Segment, "segments"),
            (pools, pool_data, Pool, "pools"),
        ):
            for i, d in data.items():
                try:
                    items[i] = model.model_validate(d)  # type: ignore[attr-defined]
                except ValidationError as exc:
                    issues.extend(pydantic_issues(exc, f"{key}[{i}]", model))
        if issues:
            raise ScenarioError(named_issues(issues, base))
        sc = base.model_copy(update={"segments": segments, "pools": pools})
        issues = check_items(sc, sorted(pool_data), sorted(seg_data))
        if issues:
            raise ScenarioError(named_issues(issues, sc))
        return sc

    def _lp_of(
        self, sc: Scenario, arr: ScenarioArrays, *, demand: bool, gpus: bool
    ) -> LinearProgram | None:
        """The kept LP with ``arr``'s costs, constant and row bounds (the blocks demand and
        GPUs enter, when they changed); None when a block gains or loses rows."""
        old = self.lp
        c, offset = objective_of(sc, arr, old.columns)
        names = (DEMAND_BLOCKS if demand else ()) + (GPU_BLOCKS if gpus else ())
        lower, upper = old.row_lower.copy(), old.row_upper.copy()
        new_blocks = block_bounds(sc, arr, old.columns, names)
        for name in names:
            kept, new = old.block(name), new_blocks.get(name)
            if kept is None and new is None:
                continue
            if kept is None or new is None or not _same_keys(kept, new[0]):
                return None
            lower[kept.start : kept.stop], upper[kept.start : kept.stop] = new[1], new[2]
        return replace(old, c=c, offset=offset, row_lower=lower, row_upper=upper)

    def set_scenario(self, scenario: Scenario | Mapping[str, Any] | str | Path) -> Plan:
        """Plan ``scenario``, a variant of the planner's (same pools, segments, periods),
        warm from the kept basis: its LP is built and, when it has the same rows, columns
        and matrix as the kept one, only what differs (objective, bounds, the constant) is
        pushed into the kept HiGHS object. Prices, demand, capacity, contract minimums,
        kind caps and floors that exist already all qualify. Otherwise (a new row or
        column: a cap on a kind that had none, a contract minimum from zero …) the model is
        rebuilt and solved cold; ``last_solve.warm`` says which happened."""
        sc = as_scenario(scenario)
        t0 = time.perf_counter()
        lp = build_lp(sc)
        if lp.is_mip:
            raise ValueError("Planner re-solves LPs warm; this scenario is a MILP")
        arrays = ScenarioArrays.of(sc)
        build_time = time.perf_counter() - t0
        self._full_readout = True  # any number may have changed: the plan is read out whole
        if self._model is not None and _same_structure(self.lp, lp):
            self._push(lp)
        else:
            self._model = self._blocks = None  # a new structure: the next solve is cold
            self._readout = ReadOutCache()
        self._at_base_structure = False
        self.scenario, self.lp, self.arrays, self.build_time_s = sc, lp, arrays, build_time
        self._seg = {s.id: i for i, s in enumerate(sc.segments)}
        self._pool = {p.id: j for j, p in enumerate(sc.pools)}
        self._period = {label: t for t, label in enumerate(sc.period_labels)}
        return self.solve()

    # ------------------------------------------------------------------ internals
    def _push(self, new: LinearProgram) -> None:
        """Push what differs between the kept LP and ``new`` (same structure) into HiGHS."""
        assert self._model is not None
        h, old = self._model.h, self.lp
        inf = highspy.kHighsInf
        cols = np.nonzero(new.c != old.c)[0]
        self._mark(cols, np.zeros(0, dtype=np.int64))
        if cols.size:
            h.changeColsCost(int(cols.size), cols.astype(np.int32), -new.c[cols])
        cols = np.nonzero((new.col_lower != old.col_lower) | (new.col_upper != old.col_upper))[0]
        self._mark(cols, np.zeros(0, dtype=np.int64))
        if cols.size:
            h.changeColsBounds(
                int(cols.size),
                cols.astype(np.int32),
                np.clip(new.col_lower[cols], -inf, inf),
                np.clip(new.col_upper[cols], -inf, inf),
            )
        rows = np.nonzero((new.row_lower != old.row_lower) | (new.row_upper != old.row_upper))[0]
        self.lp = new  # _change_rows reads the bounds from self.lp
        self._change_rows(rows)
        h.changeObjectiveOffset(-new.offset)

    def _segment_index(self, segment: str) -> int:
        try:
            return self._seg[segment]
        except KeyError:
            raise KeyError(unknown_id("segment", segment, self._seg)) from None

    def _pool_index(self, pool: str) -> int:
        try:
            return self._pool[pool]
        except KeyError:
            raise KeyError(unknown_id("pool", pool, self._pool)) from None

    def _period_index(self, period: str | int) -> int:
        T = len(self._period)
        if isinstance(period, int | np.integer) and not isinstance(period, bool):
            if 0 <= period < T:
                return int(period)
            raise KeyError(f"period index {period} out of range 0..{T - 1}")
        try:
            return self._period[str(period)]
        except KeyError:
            raise KeyError(unknown_id("period", period, self._period)) from None

    def _change_rows(self, rows: np.ndarray) -> None:
        """Push the LP's row bounds of ``rows`` to the kept HiGHS object (stability rows
        not loaded in it are checked against the LP itself at the next solve)."""
        if self._model is None or rows.size == 0:
            return
        self._mark(np.zeros(0, dtype=np.int64), rows)
        hrows = self._model.hrow_of[rows]
        loaded = hrows >= 0
        rows, hrows = rows[loaded], hrows[loaded].astype(np.int32)
        if rows.size == 0:
            return
        inf = highspy.kHighsInf
        lo = np.clip(self.lp.row_lower[rows], -inf, inf)
        hi = np.clip(self.lp.row_upper[rows], -inf, inf)
        self._model.h.changeRowsBounds(int(rows.size), hrows, lo, hi)

    def _set_demand(
        self, s: int, ts: np.ndarray, demand: np.ndarray, contract: np.ndarray | None
    ) -> None:
        self._changed_directly = True
        arr, lp = self.arrays, self.lp
        T = arr.demand.shape[1]
        old = arr.demand[s, ts].copy()
        arr.demand[s, ts] = demand
        # objective constant: - sum_t d_t churn_s demand_st
        lp.offset -= float(np.sum(arr.discount[ts] * arr.churn[s, ts] * (demand - old)))
        changed: list[np.ndarray] = []
        block = lp.block("segment-demand")
        if block is not None:
            rows = block.start + s * T + ts
            lp.row_upper[rows] = demand
            changed.append(rows)
        if contract is not None:
            arr.contract_min[s, ts] = contract
            cb = lp.block("segment-contract")
            if cb is not None:
                ks, kt = cb.keys["segment"], cb.keys["period"]
                hit = np.nonzero((ks == s) & np.isin(kt, ts))[0]
                lp.row_lower[cb.start + hit] = arr.contract_min[s, kt[hit]]
                changed.append(cb.start + hit)
        if changed:
            self._change_rows(np.concatenate(changed))
        if self._model is not None:
            self._model.h.changeObjectiveOffset(-lp.offset)
        seg = self.scenario.segments[s]
        update: dict[str, Any] = {"demand": arr.demand[s].tolist()}
        if contract is not None and seg.contract_min is not None:
            update["contract_min"] = arr.contract_min[s].tolist()
        self._replace_item("segments", s, seg.model_copy(update=update))

    def _set_tiered_demand(
        self, s: int, ts: np.ndarray, demand: np.ndarray, contract: np.ndarray | None
    ) -> Plan:
        """A tiered segment's demand is its tiers' units: scale each tier's units in the
        periods ``ts`` to the new demand, then plan the changed scenario (warm when no tier
        gains or loses its column: see :meth:`set_scenario`)."""
        seg = self.scenario.segments[s]
        T = self.arrays.demand.shape[1]
        old = self.arrays.demand[s, ts]
        empty = (old <= 0) & (demand > 0)
        if np.any(empty):
            label = self.scenario.period_labels[int(ts[np.argmax(empty)])]
            raise ValueError(
                f"segment {seg.id!r} has price tiers with no units in {label}: their demand "
                "cannot be scaled from 0; give the tiers' units with set_scenario()"
            )
        factor = np.divide(demand, old, out=np.zeros_like(demand), where=old > 0)
        tiers = []
        for tr in seg.tiers or []:
            units = np.array(per_period(tr.units, T), dtype=float)
            units[ts] *= factor
            tiers.append(tr.model_copy(update={"units": units.tolist()}))
        total = np.sum([per_period(tr.units, T) for tr in tiers], axis=0)
        update: dict[str, Any] = {"tiers": tiers, "demand": total.tolist()}
        if contract is not None and seg.contract_min is not None:
            cmin = np.array(per_period(seg.contract_min, T), dtype=float)
            cmin[ts] = contract
            update["contract_min"] = cmin.tolist()
        segments = list(self.scenario.segments)
        segments[s] = seg.model_copy(update=update)
        return self.set_scenario(self.scenario.model_copy(update={"segments": segments}))

    def _set_gpus(self, p: int, t: int, gpus: float) -> None:
        self._changed_directly = True
        arr, lp, pol = self.arrays, self.lp, self.scenario.policy
        T = arr.gpus.shape[1]
        arr.gpus[p, t] = gpus
        cap = arr.usable + arr.rentable
        changed: list[np.ndarray] = []
        b = lp.block("pool-capacity")
        if arr.sited[p]:  # a pool in a site (issue 27): its GPUs on hand bound the powered
            self._set_powered_limit(p, t, gpus, changed)
        elif b is not None:
            row = b.start + p * T + t
            lp.row_upper[row] = arr.usable[p, t]
            changed.append(np.array([row]))
        b = lp.block("rnd-floor")
        if b is not None:
            row = b.start + int(np.nonzero(b.keys["period"] == t)[0][0])
            lp.row_lower[row] = pol.rnd_min_share * arr.gpus[:, t].sum()
            changed.append(np.array([row]))
        b = lp.block("segment-stability")
        if b is not None and pol.max_change_share is not None:
            kp, kt = b.keys["pool"], b.keys["period"]
            hit = np.nonzero((kp == p) & ((kt == t) | (kt == t + 1)))[0]
            bound = pol.max_change_share * np.maximum(cap[p, kt[hit]], cap[p, kt[hit] - 1])
            lp.row_lower[b.start + hit] = -bound
            lp.row_upper[b.start + hit] = bound
            changed.append(b.start + hit)
        b = lp.block("segment-share")
        if b is not None and pol.max_segment_share is not None:
            hit = np.nonzero((b.keys["pool"] == p) & (b.keys["period"] == t))[0]
            lp.row_upper[b.start + hit] = pol.max_segment_share * cap[p, t]
            changed.append(b.start + hit)
        if changed:
            self._change_rows(np.concatenate(changed))
        pool = self.scenario.pools[p]
        self._replace_item("pools", p, pool.model_copy(update={"gpus": arr.gpus[p].tolist()}))

    def _set_powered_limit(self, p: int, t: int, gpus: float, changed: list[np.ndarray]) -> None:
        """GPUs on hand of a pool in a site: the upper bound of its powered columns in
        period t (pushed to HiGHS now) and its pool-powered row, if any (in ``changed``)."""
        lp, c = self.lp, self.lp.columns
        cols = c.pw_offset + np.nonzero((c.pw_pool == p) & (c.pw_period == t))[0]
        lp.col_upper[cols] = gpus
        self._mark(cols, np.zeros(0, dtype=np.int64))  # the period window re-solves t
        if self._model is not None and cols.size:
            self._model.h.changeColsBounds(
                int(cols.size), cols.astype(np.int32), lp.col_lower[cols], lp.col_upper[cols]
            )
        b = lp.block("pool-powered")
        if b is not None:
            hit = np.nonzero((b.keys["pool"] == p) & (b.keys["period"] == t))[0]
            lp.row_upper[b.start + hit] = gpus
            changed.append(b.start + hit)

    def _replace_item(self, field: str, index: int, item: Any) -> None:
        items = list(getattr(self.scenario, field))
        items[index] = item
        self.scenario = self.scenario.model_copy(update={field: items})

    def check_consistent(self) -> float:
        """Largest difference between the kept LP and a fresh ``build_lp`` of the planner's
        scenario (bounds, costs, constant): 0 when every change was applied in full. For
        tests; it rebuilds the model."""
        fresh = build_lp(self.scenario)
        if fresh.num_cols != self.lp.num_cols or fresh.num_rows != self.lp.num_rows:
            return float("inf")

        def diff(a: np.ndarray, b: np.ndarray) -> float:
            both = np.isfinite(a) & np.isfinite(b)
            if not np.array_equal(np.isfinite(a), np.isfinite(b)):
                return float("inf")
            return float(np.abs(a[both] - b[both]).max(initial=0.0))

        return max(
            diff(fresh.row_lower, self.lp.row_lower),
            diff(fresh.row_upper, self.lp.row_upper),
            diff(fresh.col_lower, self.lp.col_lower),
            diff(fresh.col_upper, self.lp.col_upper),
            diff(fresh.c, self.lp.c),
            abs(fresh.offset - self.lp.offset) / max(1.0, abs(fresh.offset)),
            float(abs(fresh.A - self.lp.A).max()) if fresh.nnz else 0.0,
        )


# the arrays a what-if on the array path changes, and the row blocks they enter
ARRAY_NUMBERS = ("demand", "contract_min", "revenue", "var_cost", "gpus")
DEMAND_BLOCKS = ("segment-demand", "segment-contract")
GPU_BLOCKS = ("pool-capacity", "rnd-floor", "segment-stability", "segment-share")


def _periods_changed(old: ScenarioArrays, new: ScenarioArrays) -> np.ndarray:
    """(T,) bool: the periods where a number the array path changes differs."""
    out = np.zeros(old.demand.shape[1], dtype=bool)
    for name in ARRAY_NUMBERS:
        out |= np.any(getattr(old, name) != getattr(new, name), axis=0)
    return out


def _array_path(ov: Overrides) -> bool:
    """Overrides the array path takes: numbers of segments and pools, not the policy or a
    throughput (which changes the matrix)."""
    return not ov.throughput_scale and ov.kind_caps is None and ov.kind_floors is None


def _same_keys(a: RowBlock, b: RowBlock) -> bool:
    return a.stop - a.start == b.stop - b.start and all(
        k in b.keys and np.array_equal(a.keys[k], b.keys[k]) for k in a.keys
    )


def _same_structure(a: LinearProgram, b: LinearProgram) -> bool:
    """Same columns, rows (blocks and their keys) and matrix: only bounds and costs differ."""
    if a.num_cols != b.num_cols or a.num_rows != b.num_rows or a.nnz != b.nnz:
        return False
    if [(x.name, x.start, x.stop) for x in a.blocks] != [
        (x.name, x.start, x.stop) for x in b.blocks
    ]:
        return False
    return (
        np.array_equal(a.A.indptr, b.A.indptr)
        and np.array_equal(a.A.indices, b.A.indices)
        and np.array_equal(a.A.data, b.A.data)
        and all(
            np.array_equal(x.keys[k], y.keys[k])
            for x, y in zip(a.blocks, b.blocks, strict=True)
            for k in x.keys
        )
    )


__all__ = ["Planner", "SolveStats"]
