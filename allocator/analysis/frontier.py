"""Margin–LTV frontier: what each unit of lifetime value costs in margin, and the plans that
make up the trade-off.

>>> from allocator import Scenario
>>> f = frontier(Scenario.from_file("data/tiny.json"))
>>> [(round(p.margin), round(p.ltv)) for p in f.points]
[(25700, 5000), (25450, 5500)]
>>> f.breakpoints  # chat's H100-hour (4 + w) beats cloud's short-contract 4.5 above w = 0.5
[0.5]

The engine maximises ``margin + w * LTV`` with ``w = policy.ltv_weight``. Its optimum is
convex and piecewise linear in ``w``; between breakpoints one plan (one vertex) stays
optimal, and the frontier is the list of those plans, ordered by rising LTV and falling
margin. Here *margin* is what the engine trades against LTV: gross margin less churn cost
(the objective at ``w = 0``); with ``count_churn=False`` churn is left out of the sweep
and the margin axis is gross margin proper.

``weights=None`` (default) finds every breakpoint exactly, by the dichotomic (Aneja–Nair)
scheme for bi-objective LPs: solve at ``w = 0`` (most margin) and at a weight past the
last breakpoint (most LTV: found by exact cost ranging of the optimal basis along the LTV
direction, doubling until no breakpoint is left above); between two frontier plans A and
B solve at the weight where they tie, ``w* = (margin_A - margin_B) / (LTV_B - LTV_A)``;
a plan strictly better there lies between them (recurse), otherwise A–B is an edge of the
frontier and ``w*`` its breakpoint. That is ``2k - 1`` solves for ``k`` plans, each a
warm start on one Highs object (only the costs of the allocation columns change).
Where ties leave several optimal allocations with the same margin and LTV (R&D
indifferent between two pools, say), the solver may return any of them; so each point is
then re-solved inside its weight interval, in order, warm from its neighbour's basis:
primal simplex only moves what the trade-off needs, and the steps between neighbours
show the trade rather than an arbitrary reshuffle (one more warm solve per point).
``weights=<int>`` sweeps that many evenly spaced weights from 0 to a quarter past the last
breakpoint instead; ``weights=<list>`` solves those weights. Both give the distinct
efficient plans among those solves (``exact=False``).

Each point carries its present-value money lines from :meth:`Plan.from_solution` (gross
margin, LTV, churn, revenue, by segment kind) and GPU-hours by segment; each step between
neighbours says which segments and kinds gain or lose GPUs and what that does to margin
and LTV by kind.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import highspy
import numpy as np

from allocator.analysis.sensitivity import OptimalBasis, check_optimal
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.plan import Plan
from allocator.scenario import Scenario
from allocator.solvers.base import Solution
from allocator.solvers.highs_model import new_highs, read_solution, to_highs_lp

SAME = 1e-9  # relative: two frontier values closer than this are the same
GRID_PAST_LAST = 1.25  # a weight grid ends this far past the last breakpoint
PRIMAL_SIMPLEX = 4  # HiGHS simplex_strategy
DRAWN_POINTS = 40  # a chart of the frontier draws at most this many of its points


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class KindTotals:
    """One segment kind in one frontier plan; money in present value."""

    gross_margin: float
    ltv: float
    revenue: float
    churn_cost: float
    gpu_hours: float  # over the horizon
    gpus_by_period: list[float]  # average GPUs per period


@dataclass(frozen=True)
class FrontierPoint:
    """One efficient plan: optimal for LTV weights in ``[weight_low, weight_high]``."""

    weight_low: float
    weight_high: float  # inf for the plan with the most LTV
    margin: float  # the frontier's margin axis (see Frontier.margin_axis), present value
    ltv: float  # present value
    gross_margin: float
    churn_cost: float
    revenue: float
    by_kind: dict[str, KindTotals]
    gpu_hours_by_segment: dict[str, float]
    weights_solved: list[float]  # the weights at which the solver returned this plan
    # salvage of GPUs retired (sites, issue 27), present value: part of the margin axis;
    # None (and left out of to_dict) in a scenario without retirement
    salvage: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["salvage"] is None:
            del d["salvage"]
        return _json_ready(d)


@dataclass(frozen=True)
class KindChange:
    """How one segment kind changes from one frontier plan to the next."""

    gross_margin: float
    ltv: float
    revenue: float
    gpu_hours: float
    gpus_by_period: list[float]


@dataclass(frozen=True)
class FrontierStep:
    """From point ``index`` to point ``index + 1``: at LTV weight ``weight`` both are
    optimal; above it the next plan gives ``-margin_change / ltv_change = weight`` of margin
    for each unit of LTV."""

    index: int
    weight: float
    margin_change: float
    ltv_change: float
    gross_margin_change: float
    churn_cost_change: float
    by_kind: dict[str, KindChange]
    segments_gaining: list[tuple[str, float]]  # (segment, GPU-hours gained), largest first
    segments_losing: list[tuple[str, float]]  # (segment, GPU-hours lost, negative), largest first

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments_gaining"] = [list(t) for t in self.segments_gaining]
        d["segments_losing"] = [list(t) for t in self.segments_losing]
        return _json_ready(d)


@dataclass
class Frontier:
    """The efficient frontier of (margin, LTV), by rising LTV."""

    scenario: str
    currency: str
    margin_axis: str  # "gross_margin - churn_cost" or "gross_margin"
    exact: bool  # every breakpoint found (weights=None)
    points: list[FrontierPoint]
    steps: list[FrontierStep]
    current_weight: float  # the scenario's ltv_weight
    current_point: int  # index of the point optimal at current_weight
    warm_start: bool
    solves: int
    iterations: int
    solve_time_s: float  # in the solver
    time_s: float  # whole call
    notes: list[str] = field(default_factory=list)
    solved: list[tuple[float, float]] = field(default_factory=list)  # (weight, optimum) per solve

    @property
    def breakpoints(self) -> list[float]:
        return [s.weight for s in self.steps]

    def drawn(self, max_points: int = DRAWN_POINTS) -> list[int]:
        """Indices of the points a chart draws: at most ``max_points`` (never fewer than the
        ones kept below) of the frontier's vertices, by rising LTV. The ends, the current
        plan's point and its two neighbours are always kept, so the current plan lies on
        the drawn line with its own edges on either side; the others go by
        Visvalingam-Whyatt (drop the vertex whose triangle with its neighbours is smallest,
        on axes scaled to their ranges). A subset of the vertices of a concave frontier
        draws a line under the dropped ones and through every kept one: the kept points,
        the plan among them, stay on it."""
        return thin(
            [(p.ltv, p.margin) for p in self.points],
            keep={0, len(self.points) - 1, *range(self.current_point - 1, self.current_point + 2)},
            max_points=max_points,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; an unbounded ``weight_high`` becomes ``None``."""
        return {
            "scenario": self.scenario,
            "currency": self.currency,
            "margin_axis": self.margin_axis,
            "exact": self.exact,
            "points": [p.to_dict() for p in self.points],
            "steps": [s.to_dict() for s in self.steps],
            "breakpoints": self.breakpoints,
            "drawn": self.drawn(),
            "current_weight": self.current_weight,
            "current_point": self.current_point,
            "warm_start": self.warm_start,
            "solves": self.solves,
            "iterations": self.iterations,
            "solve_time_s": self.solve_time_s,
            "time_s": self.time_s,
            "notes": list(self.notes),
            "solved": [list(t) for t in self.solved],
        }

    def __repr__(self) -> str:
        return (
            f"Frontier({self.scenario!r}, {len(self.points)} points, breakpoints="
            f"{[round(w, 4) for w in self.breakpoints]}, {self.solves} solves, "
            f"{'warm' if self.warm_start else 'cold'}, {self.time_s:.3f}s)"
        )


def thin(xy: Sequence[tuple[float, float]], keep: set[int], max_points: int) -> list[int]:
    """Indices of a polyline's points left after dropping, one at a time, the point (not in
    ``keep``) whose triangle with its two remaining neighbours has the least area, until at
    most ``max_points`` remain (Visvalingam-Whyatt; x and y scaled to their ranges)."""
    n = len(xy)
    if n <= max_points:
        return list(range(n))
    a = np.asarray(xy, dtype=float)
    span = np.ptp(a, axis=0)
    a = (a - a.min(axis=0)) / np.where(span > 0, span, 1.0)
    alive = list(range(n))
    protected = {i for i in keep if 0 <= i < n}

    def area(k: int) -> float:  # k: position in alive, not an end
        (x0, y0), (x1, y1), (x2, y2) = a[alive[k - 1]], a[alive[k]], a[alive[k + 1]]
        return abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)) / 2

    while len(alive) > max_points:
        free = [k for k in range(1, len(alive) - 1) if alive[k] not in protected]
        if not free:
            break
        del alive[min(free, key=area)]
    return alive


def _json_ready(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- sweep
@dataclass
class _Solved:
    weight: float
    margin: float  # c_margin @ x + offset
    ltv: float  # c_ltv @ x
    solution: Solution
    weights: list[float] = field(default_factory=list)
    basis: highspy.HighsBasis | None = None  # warm sweeps only

    def value(self, w: float) -> float:
        return self.margin + w * self.ltv


class _Sweep:
    """Solves the scenario's LP at LTV weight ``w``: cost ``c_margin + w * c_ltv``.

    Warm: one Highs object, only the allocation columns' costs change between solves
    (HiGHS restarts from the last basis). Cold: a new Highs object and model each time."""

    def __init__(
        self,
        lp: LinearProgram,
        arr: ScenarioArrays,
        ltv_weight: float,
        count_churn: bool,
        warm: bool,
    ):
        if lp.is_mip:
            raise ValueError(
                "the frontier sweeps a linear program: this scenario has pools with "
                "allocation_unit_gpus (a MILP)"
            )
        cols = lp.columns
        s, m, t = cols.x_segment, cols.x_mode, cols.x_period
        per_unit = arr.discount[t] * cols.x_units_per_gpu
        self.c_ltv = np.zeros(lp.num_cols)
        self.c_ltv[: cols.n_x] = per_unit * arr.ltv[s, t] * arr.mode_ltv_share[m]
        self.c_margin = lp.c - ltv_weight * self.c_ltv  # the objective at weight 0
        self.offset = lp.offset
        if not count_churn:
            self.c_margin[: cols.n_x] -= per_unit * arr.churn[s, t]
            self.offset = 0.0
        self.lp = replace(lp, c=self.c_margin.copy(), offset=self.offset)
        self.cols = np.nonzero(self.c_ltv)[0].astype(np.int32)
        self.warm = warm
        self.h: highspy.Highs | None = None
        self.solves = 0
        self.iterations = 0
        self.solve_time = 0.0
        self.log: list[tuple[float, float]] = []  # (weight, optimal objective) per solve

    def solve(
        self, w: float, start: highspy.HighsBasis | None = None
    ) -> tuple[_Solved, highspy.Highs]:
        """Solve at weight ``w`` (warm: from ``start`` if given, else the last basis)."""
        cost = self.c_margin + w * self.c_ltv
        t0 = time.perf_counter()
        if self.warm and self.h is not None:
            h = self.h
            h.changeColsCost(self.cols.size, self.cols, -cost[self.cols])
            if start is not None:
                h.setBasis(start)
            # the last basis stays primal feasible when only costs change: primal simplex
            # picks up from it (measured: 25x fewer iterations than dual simplex here)
            h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
        else:
            h = new_highs()
            h.setOptionValue("solver", "simplex")
            h.passModel(to_highs_lp(replace(self.lp, c=cost)))
            if self.warm:
                self.h = h
        h.run()
        elapsed = time.perf_counter() - t0
        self.solve_time += elapsed
        self.solves += 1
        check_optimal(h)
        sol = read_solution(h, self.lp, "simplex", elapsed)
        self.iterations += sol.iterations
        assert sol.x is not None
        x = sol.x
        basis = h.getBasis() if self.warm else None
        solved = _Solved(
            w, float(self.c_margin @ x + self.offset), float(self.c_ltv @ x), sol, [w], basis
        )
        self.log.append((w, solved.value(w)))
        return solved, h

    def ltv_range(self, h: highspy.Highs) -> tuple[float, float]:
        """How far the weight can go down and up with the basis in ``h`` still optimal
        (exact cost ranging along the LTV direction)."""
        down, up, _, _ = OptimalBasis(h, self.lp).cost_range(-self.c_ltv)
        return down, up


def frontier(
    scenario: Scenario,
    weights: int | Sequence[float] | None = None,
    *,
    count_churn: bool = True,
    warm_start: bool = True,
) -> Frontier:
    """The efficient frontier of (margin, LTV) of ``scenario`` over LTV weights.

    ``weights``: None (every breakpoint, exactly), an int (that many evenly spaced weights
    from 0 to a quarter past the last breakpoint) or a list of weights >= 0.
    ``count_churn``: the margin axis is gross margin less churn cost (the engine's own
    objective at weight 0: each point is the plan ``solve()`` returns at its weights);
    False leaves churn out of the sweep (margin axis = gross margin).
    ``warm_start``: one Highs object for all solves (False: a new one each time, to compare).
    Raises ``ValueError`` for a MILP scenario or bad weights, and the engine's errors when
    the scenario has no optimal plan.
    """
    t_start = time.perf_counter()
    grid: list[float] | None = None
    n_grid: int | None = None
    if isinstance(weights, int | np.integer):
        n_grid = int(weights)
        if n_grid < 2:
            raise ValueError(f"a weight grid needs at least 2 weights, got {n_grid}")
    elif weights is not None:
        grid = sorted({float(w) for w in weights})
        if not grid or not all(math.isfinite(w) and w >= 0 for w in grid):
            raise ValueError("weights must be finite numbers >= 0 (at least one)")
    arr = ScenarioArrays.of(scenario)
    lp = build_lp(scenario)
    sweep = _Sweep(lp, arr, scenario.policy.ltv_weight, count_churn, warm_start)
    if grid is not None:
        found = [sweep.solve(w)[0] for w in grid]
    else:
        left, _ = sweep.solve(0.0)
        right, last = _most_ltv(sweep, scenario.policy.ltv_weight)
        if n_grid is None:
            found = _dichotomic(sweep, left, right)
        else:
            # the ends are exact; the grid runs from 0 to a quarter past the last breakpoint
            top = GRID_PAST_LAST * last if last > 0 else 1.0
            inner = np.linspace(0.0, top, n_grid)[1:]
            found = [left, right, *(sweep.solve(float(w))[0] for w in inner)]
    points = _efficient(found)
    walked = weights is None and warm_start
    if walked:
        points, walked = _walk(sweep, points)
    result = _assemble(scenario, arr, sweep, points, weights is None, count_churn)
    if not walked:
        result.notes.append(
            "where ties leave several optimal allocations, each point's plan is the one the "
            "solver returned, so a step may also show an arbitrary reshuffle between them"
        )
    result.time_s = time.perf_counter() - t_start
    return result


def _most_ltv(sweep: _Sweep, start: float) -> tuple[_Solved, float]:
    """The plan with the most LTV (of those, the most margin) and the weight from which it
    is optimal: from ``start``, jump past the basis' upper weight limit until there is
    none (finite: every jump passes at least one basis)."""
    w = max(start, 1.0)
    while True:
        solved, h = sweep.solve(w)
        down, up = sweep.ltv_range(h)
        if math.isinf(up):
            return solved, max(w - down, 0.0)
        w = 2.0 * (w + up)


def _dichotomic(sweep: _Sweep, left: _Solved, right: _Solved) -> list[_Solved]:
    """Every frontier vertex between ``left`` (most margin) and ``right`` (most LTV)."""
    scale = 1.0 + max(abs(left.margin), abs(right.margin), abs(left.ltv), abs(right.ltv))
    tol = SAME * scale
    out = [left]
    stack = [(left, right)]
    while stack:
        a, b = stack.pop()
        if b.ltv - a.ltv <= tol:
            out.append(b)
            continue
        w = (a.margin - b.margin) / (b.ltv - a.ltv)
        if w <= 0:  # b has as much margin and more LTV: a is not efficient
            out.append(b)
            continue
        p, _ = sweep.solve(w)
        if p.value(w) > max(a.value(w), b.value(w)) + tol * (1.0 + w):
            stack.append((p, b))
            stack.append((a, p))
        else:
            # a and b tie at w: the edge between them; w is their breakpoint
            out.append(b)
    return out


def _efficient(found: list[_Solved]) -> list[_Solved]:
    """The distinct extreme efficient points of ``found`` by rising LTV: drop dominated
    points, duplicates (merging the weights they were found at) and points on the segment
    between their neighbours."""
    if not found:
        return []
    scale = 1.0 + max(max(abs(p.margin), abs(p.ltv)) for p in found)
    tol = SAME * scale
    pts = sorted(found, key=lambda p: (p.ltv, p.margin))
    merged: list[_Solved] = []
    for p in pts:
        if (
            merged
            and abs(p.ltv - merged[-1].ltv) <= tol
            and abs(p.margin - merged[-1].margin) <= tol
        ):
            merged[-1].weights.extend(p.weights)
            continue
        merged.append(p)
    # Pareto: keep a point only if no point with at least its LTV has at least its margin
    efficient: list[_Solved] = []
    best_margin = -math.inf
    for p in reversed(merged):
        if p.margin > best_margin + tol:
            efficient.append(p)
            best_margin = p.margin
        else:
            _absorb(efficient, p)
    efficient.reverse()
    # extreme points only: the slopes (margin given up per unit of LTV) must rise
    hull: list[_Solved] = []
    for p in efficient:
        while len(hull) >= 2 and _slope(hull[-2], hull[-1]) >= _slope(hull[-1], p) - SAME * (
            1.0 + abs(_slope(hull[-1], p))
        ):
            hull.pop()
        hull.append(p)
    return hull


def _walk(sweep: _Sweep, points: list[_Solved]) -> tuple[list[_Solved], bool]:
    """Re-solve each point inside its weight interval, in order, warm from the previous
    point's basis. The frontier does not change (inside its interval a point's margin and
    LTV are the only optimal ones), but where ties leave several optimal allocations
    (e.g. R&D indifferent between two pools), primal simplex from the neighbour's basis
    only moves what the trade-off needs, so the differences between neighbours show the
    trade and not an arbitrary reshuffle the solver happened to return."""
    if len(points) < 2:
        return points, True
    breaks = [_slope(a, b) for a, b in itertools.pairwise(points)]
    mids = [breaks[0] / 2]
    mids += [(lo + hi) / 2 for lo, hi in itertools.pairwise(breaks)]
    mids.append(2.0 * breaks[-1])
    out: list[_Solved] = []
    start = points[0].basis
    for p, w in zip(points, mids, strict=True):
        q, _ = sweep.solve(w, start)
        scale = 1.0 + abs(p.margin) + abs(p.ltv)
        if abs(q.margin - p.margin) > SAME * scale or abs(q.ltv - p.ltv) > SAME * scale:
            return points, False  # numerically not the same point: keep the plans as found
        q.weights = sorted({*p.weights, w})
        out.append(q)
        start = q.basis
    return out, True


def _absorb(efficient: list[_Solved], p: _Solved) -> None:
    """A dominated plan found at some weights: the dominating neighbour is optimal there."""
    if efficient:
        efficient[-1].weights.extend(p.weights)


def _slope(a: _Solved, b: _Solved) -> float:
    """Margin given up per unit of LTV gained from ``a`` to ``b`` (the tie weight)."""
    return (a.margin - b.margin) / (b.ltv - a.ltv)


def _assemble(
    sc: Scenario,
    arr: ScenarioArrays,
    sweep: _Sweep,
    points: list[_Solved],
    exact: bool,
    count_churn: bool,
) -> Frontier:
    breaks = [_slope(a, b) for a, b in itertools.pairwise(points)]
    lows = [0.0, *breaks]
    highs = [*breaks, math.inf]
    seg_ids = [s.id for s in sc.segments]
    built: list[FrontierPoint] = []
    for p, lo, hi in zip(points, lows, highs, strict=True):
        w = p.weight
        sc_w = sc.model_copy(update={"policy": sc.policy.model_copy(update={"ltv_weight": w})})
        plan = Plan.from_solution(sc_w, sweep.lp, replace(p.solution, objective=None), arrays=arr)
        t = plan.totals
        by_kind = {
            k: KindTotals(
                gross_margin=r.gross_margin,
                ltv=r.ltv,
                revenue=r.revenue,
                churn_cost=r.churn_cost,
                gpu_hours=float(np.dot(r.gpus_by_period, arr.hours)),
                gpus_by_period=list(r.gpus_by_period),
            )
            for k, r in plan.by_kind.items()
        }
        gpu_hours = dict.fromkeys(seg_ids, 0.0)
        for a in plan.allocations:
            gpu_hours[a.segment] += a.gpu_hours
        built.append(
            FrontierPoint(
                weight_low=lo,
                weight_high=hi,
                # the salvage of GPUs retired (sites, issue 27) is margin the LP weighs too
                margin=(t.gross_margin - t.churn_cost if count_churn else t.gross_margin)
                + (t.salvage or 0.0),
                ltv=t.ltv,
                gross_margin=t.gross_margin,
                churn_cost=t.churn_cost,
                revenue=t.revenue,
                by_kind=by_kind,
                gpu_hours_by_segment=gpu_hours,
                weights_solved=sorted(set(p.weights)),
                salvage=t.salvage if t.salvage else None,
            )
        )
    steps = [_step(k, built[k], built[k + 1], breaks[k]) for k in range(len(breaks))]
    w_now = sc.policy.ltv_weight
    current = next((k for k, p in enumerate(built) if p.weight_low <= w_now <= p.weight_high), 0)
    notes = []
    ties = [k for k, w in enumerate(breaks) if abs(w - w_now) <= SAME * max(1.0, w_now)]
    if ties:
        notes.append(
            f"the scenario's LTV weight {w_now:g} is a breakpoint: points {ties[0]} and "
            f"{ties[0] + 1} are both optimal there (solve() returns one of them)"
        )
    if not exact:
        notes.append(
            "weights were sampled: plans optimal only between sampled weights are missing, "
            "and weight_low / weight_high are the tie weights of the plans found"
        )
    return Frontier(
        scenario=sc.name,
        currency=sc.currency,
        margin_axis="gross_margin - churn_cost" if count_churn else "gross_margin",
        exact=exact,
        points=built,
        steps=steps,
        current_weight=w_now,
        current_point=current,
        warm_start=sweep.warm,
        solves=sweep.solves,
        iterations=sweep.iterations,
        solve_time_s=sweep.solve_time,
        time_s=0.0,
        notes=notes,
        solved=list(sweep.log),
    )


def _change(before: float, after: float, scale: float) -> float:
    """``after - before``, 0 where it is rounding noise against ``scale``."""
    d = after - before
    return 0.0 if abs(d) <= SAME * max(1.0, scale) else d


def _step(k: int, a: FrontierPoint, b: FrontierPoint, weight: float) -> FrontierStep:
    kinds = sorted(set(a.by_kind) | set(b.by_kind))
    n_periods = len(next(iter(a.by_kind.values())).gpus_by_period)
    empty = KindTotals(0.0, 0.0, 0.0, 0.0, 0.0, [0.0] * n_periods)
    money = max(abs(a.gross_margin), abs(a.ltv), abs(a.revenue))
    gpus = max((max(v.gpus_by_period, default=0.0) for v in a.by_kind.values()), default=0.0)
    hours = max(a.gpu_hours_by_segment.values(), default=0.0)
    by_kind = {}
    for kind in kinds:
        ka, kb = a.by_kind.get(kind, empty), b.by_kind.get(kind, empty)
        by_kind[kind] = KindChange(
            gross_margin=_change(ka.gross_margin, kb.gross_margin, money),
            ltv=_change(ka.ltv, kb.ltv, money),
            revenue=_change(ka.revenue, kb.revenue, money),
            gpu_hours=_change(ka.gpu_hours, kb.gpu_hours, hours),
            gpus_by_period=[
                _change(x, y, gpus)
                for x, y in zip(ka.gpus_by_period, kb.gpus_by_period, strict=True)
            ],
        )
    moved = {
        s: b.gpu_hours_by_segment[s] - a.gpu_hours_by_segment[s] for s in a.gpu_hours_by_segment
    }
    tol = SAME * max(1.0, hours)
    gaining = sorted(((s, v) for s, v in moved.items() if v > tol), key=lambda t: -t[1])
    losing = sorted(((s, v) for s, v in moved.items() if v < -tol), key=lambda t: t[1])
    return FrontierStep(
        index=k,
        weight=weight,
        margin_change=b.margin - a.margin,
        ltv_change=b.ltv - a.ltv,
        gross_margin_change=b.gross_margin - a.gross_margin,
        churn_cost_change=b.churn_cost - a.churn_cost,
        by_kind=by_kind,
        segments_gaining=gaining,
        segments_losing=losing,
    )
