"""Sensitivity: how far each pool's capacity and each segment's price can move before the
plan's structure changes, and over what range each shadow price holds.

>>> from allocator import Scenario
>>> s = sensitivity(Scenario.from_file("data/tiny.json"))
>>> r = s.capacity_range("h100", "P1")
>>> r.shadow_price_per_gpu_hour, r.lower_gpus, r.usable_gpus, r.upper_gpus
(3.0, 5.0, 10.0, 20.0)
>>> p = s.price_range("cloud")
>>> p.lower, p.revenue_per_unit, p.upper
(1.0, 4.0, 4.5)

Everything refers to one optimal basis of the scenario's LP (dual simplex, or interior
point with crossover), the one the plan's shadow prices come from. Two kinds of range are
reported for each item:

* the **structure range** (``lower*`` / ``upper*``): the optimal basis stays optimal, so
  the same allocations stay positive, the same constraints bind and every shadow price
  stays the same;
* the **wider range** (``price_holds_*`` for capacity, ``allocation_*`` for prices): where
  the plan is degenerate (ties between equally good plans, or a basic allocation at 0),
  the basis can change while the thing a planner watches does not. These ranges say how
  far the current shadow prices (capacity) or the current allocation (prices) stay
  optimal; they contain the structure range and are often much wider.

Capacity (right-hand side of ``pool-capacity[p,t]``, usable GPUs after headroom): the
structure range is HiGHS' row-bound ranging (``Highs.getRanging()``); inside it the
objective moves by exactly the shadow price per GPU. The wider range is exact too: the
current duals stay optimal while some feasible allocation is complementary to them, which
one small LP per end finds (maximise / minimise the capacity subject to that).

Price (``revenue_per_unit`` of a segment): the price enters the objective coefficient of
every allocation column of the segment at once (discount x units per GPU x the mode's
revenue share), so one column's cost ranging is not the answer. The structure range is
exact parametric cost analysis along that direction ``d``: with the optimal basis ``B``,
the duals move as ``y(t) = y + t B^-T d_B`` and every non-basic reduced cost as
``r_j(t) = r_j + t (d_j - a_j' B^-T d_B)``; the basis stays optimal while all keep their
sign, which one ratio test over the non-basic variables gives, after one solve with
HiGHS' own factorisation (``getBasisTransposeSolve``). The wider range is the exact range
over which the current allocation stays optimal: a dual solution complementary to it
must exist, one small LP per end.

Domain units throughout: GPUs (average over the period) for capacity, currency per work
unit for prices; bounds absolute and as a percentage of the current value; ``inf`` where
nothing changes in that direction (``None`` in :meth:`Sensitivity.to_dict`). Lower bounds
are clipped at 0: a capacity or a price cannot be negative.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from allocator.errors import InfeasibleError, NumericalError, Status, UnboundedError
from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays, extra_key_names
from allocator.lp.build import build_lp
from allocator.scenario import Scenario
from allocator.solvers.highs_model import map_highs_status, new_highs, to_highs_lp

# HighsBasisStatus values
_LOWER, _BASIC, _UPPER, _ZERO = 0, 1, 2, 3
REL_ZERO = 1e-9  # a rate of change this small relative to its terms is no change
AT_BOUND = 1e-9  # a value this close (relative) to its bound is at the bound
DUAL_ZERO = 1e-9  # a dual or reduced cost this small relative to the largest cost is 0


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CapacityRange:
    """Ranges of the usable capacity of one pool in one period (GPUs after headroom, the
    bound of its ``pool-capacity`` row)."""

    pool: str
    period: str
    usable_gpus: float  # current usable capacity
    used_gpus: float  # own GPUs in use (allocations less rented GPUs)
    binding: bool  # the capacity row is non-basic (at its bound) in the optimal basis
    shadow_price_per_gpu_hour: float  # nominal, money of that period
    shadow_price_pv_per_gpu_hour: float  # present value
    # structure range: the basis, every shadow price and the set of positive allocations
    # stay the same; the objective moves at the shadow price
    lower_gpus: float
    upper_gpus: float  # inf: for any increase
    lower_pct: float | None  # (bound - current) / current * 100; None when current is 0
    upper_pct: float | None
    objective_at_lower: float  # present value, at the bound
    objective_at_upper: float
    lower_limit: str  # what changes below the structure range
    upper_limit: str  # what changes above it
    # wider range: the current shadow prices stay optimal (the objective still moves at
    # exactly this pool's price), though allocations may change structure; None if not
    # computed
    price_holds_lower_gpus: float | None = None
    price_holds_upper_gpus: float | None = None
    price_holds_lower_pct: float | None = None
    price_holds_upper_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _json_ready(asdict(self))


@dataclass(frozen=True)
class PriceRange:
    """Ranges of a segment's price (``revenue_per_unit``)."""

    segment: str
    kind: str
    unit: str
    revenue_per_unit: float  # current price
    # structure range: the optimal basis stays optimal, so the allocation, the binding
    # constraints and (the price aside) the set of positive columns stay the same
    lower: float
    upper: float  # inf: for any increase
    lower_pct: float | None  # (bound - current) / current * 100; None when current is 0
    upper_pct: float | None
    units_sold_pv: float  # present-value units served x revenue share: d objective / d price
    objective_at_lower: float  # present value, at the bound
    objective_at_upper: float
    lower_limit: str  # what changes below the structure range
    upper_limit: str  # what changes above it
    # wider range: the current allocation stays optimal (shadow prices may change);
    # None if not computed
    allocation_lower: float | None = None
    allocation_upper: float | None = None
    allocation_lower_pct: float | None = None
    allocation_upper_pct: float | None = None
    # a price that moves over the horizon: its value per period; ``revenue_per_unit`` is
    # then their mean and every range is of one shift added to every period's price
    revenue_per_unit_by_period: list[float] | None = None
    # what is ranged: "revenue_per_unit", or "tiers" for a segment with price tiers: one
    # shift added to every tier's price; revenue_per_unit is then the clearing price (the
    # marginal tier's) averaged over the periods, revenue_per_unit_by_period per period
    priced_by: str = "revenue_per_unit"

    def to_dict(self) -> dict[str, Any]:
        return _json_ready(asdict(self))


@dataclass(frozen=True)
class PowerRange:
    """Ranging of a site's IT power in one period (issue 27: the bound of its
    ``site-power`` row), in MW: over the structure range the price of a MW-hour holds and
    the objective moves by it."""

    site: str
    period: str
    power_mw: float  # current IT power
    used_mw: float
    binding: bool  # the site-power row is at its bound in the optimal basis
    shadow_price_per_mwh: float  # nominal
    shadow_price_pv_per_mwh: float  # present value
    lower_mw: float
    upper_mw: float  # inf: for any increase
    objective_at_lower: float  # present value
    objective_at_upper: float
    lower_limit: str
    upper_limit: str

    def to_dict(self) -> dict[str, Any]:
        return _json_ready(asdict(self))


@dataclass
class Sensitivity:
    """Ranging of one optimal plan: ``capacity`` has one row per pool and period,
    ``prices`` one per segment."""

    scenario: str
    currency: str
    objective: float  # present value
    capacity: list[CapacityRange]
    prices: list[PriceRange]
    method: str = (
        "capacity: HiGHS row-bound ranging of the pool-capacity rows; prices: exact "
        "parametric cost ranging on the optimal basis along each segment's price direction; "
        "wider ranges: one complementarity LP per range end"
    )
    solve_time_s: float = 0.0
    ranging_time_s: float = 0.0
    iterations: int = 0
    notes: list[str] = field(default_factory=list)
    power: list[PowerRange] = field(default_factory=list)  # sites' power (issue 27)

    def power_range(self, site: str, period: str) -> PowerRange:
        for r in self.power:
            if (r.site, r.period) == (site, period):
                return r
        raise KeyError((site, period))

    def capacity_range(self, pool: str, period: str) -> CapacityRange:
        for r in self.capacity:
            if (r.pool, r.period) == (pool, period):
                return r
        raise KeyError((pool, period))

    def price_range(self, segment: str) -> PriceRange:
        for r in self.prices:
            if r.segment == segment:
                return r
        raise KeyError(segment)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; unbounded ends (``inf``) become ``None``."""
        return {
            "scenario": self.scenario,
            "currency": self.currency,
            "objective": self.objective,
            "method": self.method,
            "capacity": [r.to_dict() for r in self.capacity],
            "prices": [r.to_dict() for r in self.prices],
            "solve_time_s": self.solve_time_s,
            "ranging_time_s": self.ranging_time_s,
            "iterations": self.iterations,
            "notes": list(self.notes),
            # only with sites, so other scenarios keep their keys
            **({"power": [r.to_dict() for r in self.power]} if self.power else {}),
        }

    def __repr__(self) -> str:
        return (
            f"Sensitivity({self.scenario!r}, objective={self.objective:,.0f} {self.currency}, "
            f"capacity={len(self.capacity)} rows, prices={len(self.prices)} segments)"
        )


def _json_ready(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in d.items()}


def _pct(bound: float | None, current: float) -> float | None:
    if bound is None or current == 0:
        return None
    if math.isinf(bound):
        return bound
    return 100.0 * (bound - current) / current


# ------------------------------------------------------------------------ HiGHS tools
def highs_lp(
    cost: np.ndarray,
    A: sp.csr_matrix,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
) -> highspy.HighsLp:
    """A minimisation HighsLp from arrays (row-wise matrix, infinities clipped)."""
    inf = highspy.kHighsInf
    h = highspy.HighsLp()
    h.num_col_, h.num_row_ = int(A.shape[1]), int(A.shape[0])
    h.col_cost_ = np.asarray(cost, dtype=float)
    h.col_lower_ = np.clip(col_lower, -inf, inf)
    h.col_upper_ = np.clip(col_upper, -inf, inf)
    h.row_lower_ = np.clip(row_lower, -inf, inf)
    h.row_upper_ = np.clip(row_upper, -inf, inf)
    h.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    h.a_matrix_.num_col_, h.a_matrix_.num_row_ = h.num_col_, h.num_row_
    h.a_matrix_.start_ = A.indptr.astype(np.int32)
    h.a_matrix_.index_ = A.indices.astype(np.int32)
    h.a_matrix_.value_ = A.data.astype(float)
    return h


def range_highs(lp: highspy.HighsLp) -> highspy.Highs:
    """A Highs object for a range LP: only its objective and one column's bounds change
    between solves, so the basis stays primal feasible and primal simplex (measured 2.5x
    faster here than HiGHS' default dual) finishes each from the last."""
    h = new_highs()
    h.setOptionValue("simplex_strategy", 4)
    h.passModel(lp)
    return h


def model_status(h: highspy.Highs) -> str:
    ms = h.getModelStatus()
    return ms.name if hasattr(ms, "name") else str(ms)


def check_optimal(h: highspy.Highs) -> None:
    """Raise the engine's error unless ``h`` holds an optimal solution with a basis."""
    raw = model_status(h)
    status = map_highs_status(raw, int(h.getInfo().primal_solution_status) == 2)
    if status is Status.OPTIMAL and h.getBasis().valid:
        return
    if status is Status.INFEASIBLE:
        raise InfeasibleError("no plan meets every hard requirement: nothing to analyse")
    if status is Status.UNBOUNDED:
        raise UnboundedError("the objective is unbounded: nothing to analyse")
    raise NumericalError(f"HiGHS ended {raw} without an optimal basis: nothing to analyse")


def solve_for_basis(lp: LinearProgram, algorithm: str = "simplex") -> highspy.Highs:
    """A Highs object holding ``lp`` solved to an optimal basis (dual simplex, or
    interior point with crossover for ``algorithm="ipm"``); the engine's errors otherwise."""
    if lp.is_mip:
        raise ValueError(
            "sensitivity and frontier analyse a linear program: this scenario has pools with "
            "allocation_unit_gpus (a MILP), whose optimum has no basis to range"
        )
    if algorithm not in ("simplex", "ipm"):
        raise ValueError(f"algorithm must be 'simplex' or 'ipm', got {algorithm!r}")
    h = new_highs()
    h.setOptionValue("solver", algorithm)
    if algorithm == "ipm":
        h.setOptionValue("run_crossover", "on")
    h.passModel(to_highs_lp(lp))
    h.run()
    check_optimal(h)
    return h


class OptimalBasis:
    """An optimal basis held in a Highs object, read in HiGHS' minimisation form (cost
    ``-c``). The Highs object must not change while this is in use."""

    def __init__(self, h: highspy.Highs, lp: LinearProgram):
        self.h = h
        self.lp = lp
        basis = h.getBasis()
        self.col_status = np.array([int(s) for s in basis.col_status], dtype=np.int64)
        self.row_status = np.array([int(s) for s in basis.row_status], dtype=np.int64)
        sol = h.getSolution()
        self.x = np.asarray(sol.col_value, dtype=float)
        self.row_value = np.asarray(sol.row_value, dtype=float)
        self.col_dual = np.asarray(sol.col_dual, dtype=float)  # min form
        self.row_dual = np.asarray(sol.row_dual, dtype=float)  # min form
        _, basic = h.getBasicVariables()  # type: ignore[attr-defined]
        self.basic = np.asarray(basic, dtype=np.int64)  # >= 0 column, < 0 row -1-k
        # a non-basic variable whose bounds are equal is optimal with either sign
        self.col_fixed = lp.col_lower == lp.col_upper
        self.row_fixed = lp.row_lower == lp.row_upper

    def same_as(self, other: OptimalBasis) -> bool:
        """The same basis (a fixed variable counts as one status, at lower or upper)."""

        def norm(status: np.ndarray, fixed: np.ndarray) -> np.ndarray:
            return np.where(fixed & (status == _UPPER), _LOWER, status)

        return bool(
            np.array_equal(
                norm(self.col_status, self.col_fixed), norm(other.col_status, other.col_fixed)
            )
            and np.array_equal(
                norm(self.row_status, self.row_fixed), norm(other.row_status, other.row_fixed)
            )
        )

    def dual_direction(self, direction: np.ndarray) -> np.ndarray:
        """``B^-T d_B``: how the row duals (min form) move per unit step of the
        minimisation cost vector along ``direction``."""
        basic = self.basic
        d_b = np.where(basic >= 0, direction[np.maximum(basic, 0)], 0.0)
        if not d_b.any():
            return np.zeros(self.lp.num_rows)
        status, pi = self.h.getBasisTransposeSolve(d_b)  # type: ignore[attr-defined]
        if status != highspy.HighsStatus.kOk:
            raise NumericalError("HiGHS could not solve with the optimal basis")
        return np.asarray(pi, dtype=float)

    def cost_range(self, direction: np.ndarray) -> tuple[float, float, int | None, int | None]:
        """Exact parametric cost ranging: ``(down, up, blocking_down, blocking_up)`` such
        that the basis stays optimal for the minimisation cost ``cost + t * direction``
        with ``-down <= t <= up`` (``inf`` when unbounded). ``blocking_*`` is the non-basic
        variable whose reduced cost reaches zero first (HiGHS convention: column ``j``,
        row ``-1 - i``), or None."""
        lp = self.lp
        pi = self.dual_direction(direction)
        if lp.num_rows:
            g_col = direction - lp.A.T @ pi
            scale_col = np.abs(direction) + abs(lp.A).T @ np.abs(pi)
        else:
            g_col, scale_col = direction.copy(), np.abs(direction)
        # rounding noise is relative to the whole direction, not just to a column's terms
        size = float(np.abs(direction).max(initial=0.0)) + float(np.abs(pi).max(initial=0.0))
        g_col[np.abs(g_col) <= REL_ZERO * (scale_col + size)] = 0.0
        g_row = pi.copy()  # a row's reduced cost is its dual
        g_row[np.abs(g_row) <= REL_ZERO * size] = 0.0
        r = np.concatenate([self.col_dual, self.row_dual])
        g = np.concatenate([g_col, g_row])
        st = np.concatenate([self.col_status, self.row_status])
        fixed = np.concatenate([self.col_fixed, self.row_fixed])
        at_lower = (st == _LOWER) & ~fixed  # optimal while r(t) >= 0
        at_upper = (st == _UPPER) & ~fixed  # optimal while r(t) <= 0
        free = st == _ZERO  # optimal while r(t) == 0
        room = np.where(at_lower, np.maximum(r, 0.0), 0.0)
        room = np.where(at_upper, np.maximum(-r, 0.0), room)
        # how fast the room shrinks as t goes up (down)
        shrink_up = np.where(at_lower, -g, np.where(at_upper, g, 0.0))
        shrink_dn = -shrink_up
        shrink_up = np.where(free, np.abs(g), shrink_up)
        shrink_dn = np.where(free, np.abs(g), shrink_dn)
        up, k_up = _ratio(room, shrink_up)
        dn, k_dn = _ratio(room, shrink_dn)
        return dn, up, self._highs_index(k_dn), self._highs_index(k_up)

    def _highs_index(self, k: int | None) -> int | None:
        if k is None:
            return None
        n = self.lp.num_cols
        return k if k < n else -1 - (k - n)

    # -------------------------------------------------------- classification (max sense)
    def column_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(at_lower, at_upper)`` masks of the columns at their bounds in the optimal
        solution (both for a fixed column)."""
        lp, x = self.lp, self.x
        lo, up = lp.col_lower, lp.col_upper
        tol_lo = AT_BOUND * np.maximum(1.0, np.abs(np.where(np.isfinite(lo), lo, 0.0)))
        tol_up = AT_BOUND * np.maximum(1.0, np.abs(np.where(np.isfinite(up), up, 0.0)))
        at_lower = (self.col_status == _LOWER) | (np.isfinite(lo) & (x - lo <= tol_lo))
        at_upper = (self.col_status == _UPPER) | (np.isfinite(up) & (up - x <= tol_up))
        return at_lower, at_upper

    def row_classes(self) -> tuple[np.ndarray, np.ndarray]:
        lp, a = self.lp, self.row_value
        lo, up = lp.row_lower, lp.row_upper
        tol_lo = AT_BOUND * np.maximum(1.0, np.abs(np.where(np.isfinite(lo), lo, 0.0)))
        tol_up = AT_BOUND * np.maximum(1.0, np.abs(np.where(np.isfinite(up), up, 0.0)))
        at_lower = (self.row_status == _LOWER) | (np.isfinite(lo) & (a - lo <= tol_lo))
        at_upper = (self.row_status == _UPPER) | (np.isfinite(up) & (up - a <= tol_up))
        return at_lower, at_upper


def _ratio(room: np.ndarray, shrink: np.ndarray) -> tuple[float, int | None]:
    sel = np.nonzero(shrink > 0)[0]
    if sel.size == 0:
        return math.inf, None
    ratios = room[sel] / shrink[sel]
    k = int(np.argmin(ratios))
    return float(ratios[k]), int(sel[k])


def _optimise(h: highspy.Highs, col: int, sense: int, what: str) -> float:
    """Maximise (``sense=1``) or minimise (``sense=-1``) column ``col`` of a range LP:
    its optimal value, ``sense * inf`` when unbounded."""
    h.changeColCost(col, -float(sense))
    h.run()
    raw = model_status(h)
    value = float(h.getSolution().col_value[col])
    h.changeColCost(col, 0.0)
    if raw in ("kUnbounded", "kUnboundedOrInfeasible"):
        return sense * math.inf
    if raw != "kOptimal":
        raise NumericalError(f"the LP for the {what} ended {raw}")
    return value


class AllocationHolds:
    """Exact range of step ``t`` along cost directions (maximisation sense) over which the
    current allocation ``x*`` stays optimal: some dual ``y`` must be complementary to it,

        z = c + t d - A'y,  z_j <= 0 at a lower bound, >= 0 at an upper, = 0 in between,
        y_i >= 0 for a row at its upper bound, <= 0 at its lower, = 0 in between,

    an LP in ``(y, t)``. All directions share one Highs object (one ``t`` column each,
    fixed at 0 unless it is the one being ranged), so every range end is a warm start."""

    def __init__(self, basis: OptimalBasis, directions: list[np.ndarray]):
        lp = basis.lp
        m, n, k = lp.num_rows, lp.num_cols, len(directions)
        self.m, self.k = m, k
        c = lp.c
        at_lo, at_up = basis.column_classes()
        lo = np.where(at_lo & ~at_up, -np.inf, -c)  # z <= 0  ->  -A'y + d t <= -c
        up = np.where(at_up & ~at_lo, np.inf, -c)
        both = at_lo & at_up
        lo[both], up[both] = -np.inf, np.inf
        r_lo, r_up = basis.row_classes()
        y_lo = np.where(r_up & ~r_lo, 0.0, -np.inf)
        y_up = np.where(r_lo & ~r_up, 0.0, np.inf)
        between = ~r_lo & ~r_up
        y_lo[between], y_up[between] = 0.0, 0.0
        D = np.column_stack(directions) if k else np.zeros((n, 0))
        A = sp.hstack([-lp.A.T, sp.csr_matrix(D)], format="csr")
        self.h = range_highs(
            highs_lp(
                np.zeros(m + k),
                A,
                np.concatenate([y_lo, np.zeros(k)]),
                np.concatenate([y_up, np.zeros(k)]),
                lo,
                up,
            )
        )

    def range(self, s: int) -> tuple[float, float]:
        """``(down, up)``: ``x*`` stays optimal for steps ``-down <= t <= up`` along
        direction ``s``."""
        h, col = self.h, self.m + s
        h.changeColBounds(col, 0.0, highspy.kHighsInf)
        up = _optimise(h, col, 1, "allocation range")
        h.changeColBounds(col, -highspy.kHighsInf, 0.0)
        dn = -_optimise(h, col, -1, "allocation range")
        h.changeColBounds(col, 0.0, 0.0)
        return max(dn, 0.0), max(up, 0.0)


class PriceHolds:
    """Exact range of the upper bound of chosen rows over which the current duals ``y*``
    stay optimal: some feasible allocation must be complementary to them (columns with a
    non-zero reduced cost at their bound, rows with a non-zero dual binding), an LP in
    ``(x, beta)`` with ``beta`` the row's bound. One Highs object for all rows."""

    def __init__(self, basis: OptimalBasis, rows: np.ndarray):
        lp = basis.lp
        n, k = lp.num_cols, rows.size
        self.n, self.rows = n, rows
        z = -basis.col_dual  # max sense
        y = -basis.row_dual
        tol = DUAL_ZERO * max(1.0, float(np.abs(lp.c).max(initial=0.0)))
        x_lo = np.where(z > tol, lp.col_upper, lp.col_lower)
        x_up = np.where(z < -tol, lp.col_lower, lp.col_upper)
        r_lo = np.where(y > tol, lp.row_upper, lp.row_lower)
        r_up = np.where(y < -tol, lp.row_lower, lp.row_upper)
        # the chosen rows: a x - beta <= 0, or = 0 where the row's dual is non-zero
        sel_lo = np.where(y[rows] > tol, 0.0, -np.inf)
        r_lo[rows], r_up[rows] = sel_lo, 0.0
        B = sp.csr_matrix((-np.ones(k), (rows, np.arange(k))), shape=(lp.num_rows, k))
        A = sp.hstack([lp.A, B], format="csr")
        self.bound = lp.row_upper[rows].astype(float)
        self.h = range_highs(
            highs_lp(
                np.zeros(n + k),
                A,
                np.concatenate([x_lo, self.bound]),
                np.concatenate([x_up, self.bound]),
                r_lo,
                r_up,
            )
        )

    def range(self, r: int) -> tuple[float, float]:
        """``(lower, upper)`` bound of chosen row ``r`` (an index into ``rows``) over which
        the duals stay optimal; the lower end is at least 0."""
        h, col, b = self.h, self.n + r, float(self.bound[r])
        h.changeColBounds(col, 0.0, highspy.kHighsInf)
        upper = _optimise(h, col, 1, "shadow price range")
        lower = _optimise(h, col, -1, "shadow price range")
        h.changeColBounds(col, b, b)
        return min(lower, b) + 0.0, max(upper, b) + 0.0


# --------------------------------------------------------------------------- labels
class Labels:
    """Readable names of LP columns and rows, e.g. ``x[chat/full@h100,P1]`` (GPUs of
    pool h100 for segment chat in mode full in period P1) and ``pool-capacity[h100,P1]``."""

    def __init__(self, sc: Scenario, lp: LinearProgram):
        self.lp = lp
        self.names = {
            "pool": [p.id for p in sc.pools],
            "segment": [s.id for s in sc.segments],
            "period": sc.period_labels,
            "kind": [k.value for k in KINDS],
            **extra_key_names(sc),
        }

    def column(self, j: int) -> str:
        c, n = self.lp.columns, self.names
        if j < c.n_x:
            seg = n["segment"][c.x_segment[j]]
            mode = c.modes[c.x_mode[j]][1]
            return f"x[{seg}/{mode}@{n['pool'][c.x_pool[j]]},{n['period'][c.x_period[j]]}]"
        if j < c.u_offset:
            k = j - c.r_offset
            return f"rented[{n['pool'][c.r_pool[k]]},{n['period'][c.r_period[k]]}]"
        if j < c.e_offset:
            k = j - c.u_offset
            return f"shortfall[{n['segment'][c.u_segment[k]]},{n['period'][c.u_period[k]]}]"
        if j < c.rsv_offset:
            k = j - c.e_offset
            return f"bought[{n['pool'][c.e_pool[k]]},{n['period'][c.e_period[k]]}]"
        if j >= c.rt_offset:  # sites (issue 27): GPUs retired
            k = j - c.rt_offset
            return f"retired[{n['pool'][c.rt_pool[k]]},{n['period'][c.rt_period[k]]}]"
        if j >= c.pw_offset:  # sites: GPUs powered (at a level)
            k = j - c.pw_offset
            level = "" if c.pw_level[k] < 0 else f"#{c.pw_level[k]}"
            return f"powered[{n['pool'][c.pw_pool[k]]}{level},{n['period'][c.pw_period[k]]}]"
        if j >= c.tier_offset:
            k = j - c.tier_offset
            seg = n["segment"][c.tier_segment[k]]
            return f"tier[{seg}#{c.tier_rank[k]},{n['period'][c.tier_period[k]]}]"
        k = j - c.rsv_offset
        seg, pool = n["segment"][c.rsv_segment[k]], n["pool"][c.rsv_pool[k]]
        return f"reserved[{seg}@{pool},{n['period'][c.rsv_period[k]]}]"

    def row(self, i: int) -> str:
        for b in self.lp.blocks:
            if b.start <= i < b.stop:
                r = i - b.start
                keys = ",".join(self.names[d][int(ix[r])] for d, ix in b.keys.items())
                return f"{b.name}[{keys}]"
        return f"row[{i}]"

    def entering(self, k: int | None) -> str:
        """A non-basic variable whose reduced cost reaches zero (price ranging; HiGHS
        convention: column ``k >= 0``, row ``-1 - k``)."""
        if k is None:
            return "none: the plan stays optimal"
        if k >= 0:
            return f"{self.column(k)} becomes worth moving off its bound (enters the plan)"
        return f"{self.row(-1 - k)} stops being worth binding (its dual reaches 0)"

    def leaving(self, k: int | None) -> str:
        """A basic variable that reaches a bound (capacity ranging; HiGHS' ``ou_var_``:
        columns, then rows from ``num_cols``)."""
        if k is None or k < 0:
            return "none: the shadow price holds"
        if k < self.lp.num_cols:
            return f"{self.column(k)} reaches a bound (drops to 0 or hits its limit)"
        return f"{self.row(k - self.lp.num_cols)} becomes binding"


# ------------------------------------------------------------------------- analysis
def price_directions(lp: LinearProgram, arr: ScenarioArrays) -> list[np.ndarray]:
    """Per segment, ``d c / d price`` over all columns (maximisation form): discount x
    units per GPU x the mode's revenue share on the segment's allocation columns, 0
    elsewhere. A segment with price tiers earns on its tier columns alone (its
    ``revenue_per_unit`` is 0): its price moves as one shift of every tier's price, so its
    direction is the discount on each of its tier columns."""
    cols = lp.columns
    n_x = cols.n_x
    scale = lp.col_scale if lp.col_scale is not None else np.ones(lp.num_cols)
    per_col = arr.discount[cols.x_period] * cols.x_units_per_gpu * arr.mode_rev_share[cols.x_mode]
    per_col = per_col * scale[:n_x]
    tier_cols = cols.tier_offset + np.arange(cols.n_tier)
    per_tier = arr.discount[cols.tier_period] * scale[tier_cols]
    out = []
    for s in range(arr.demand.shape[0]):
        d = np.zeros(lp.num_cols)
        mine = np.nonzero(cols.tier_segment == s)[0]
        if mine.size:
            d[tier_cols[mine]] = per_tier[mine]
        else:
            sel = np.nonzero(cols.x_segment == s)[0]
            d[sel] = per_col[sel]
        out.append(d)
    return out


def _clearing_prices(lp: LinearProgram, arr: ScenarioArrays, x: np.ndarray, s: int) -> list[float]:
    """Per period, the price of tiered segment ``s``'s marginal tier in the plan ``x``
    (scaled columns): the cheapest tier with units served, the first when none is (as
    the plan's ``tiers`` rows and ``explain`` say)."""
    assert arr.tier_segment is not None and arr.tier_rank is not None
    assert arr.tier_price is not None
    cols = lp.columns
    scale = lp.col_scale if lp.col_scale is not None else np.ones(lp.num_cols)
    T = arr.tier_price.shape[1]
    mine = np.nonzero(arr.tier_segment == s)[0]
    first = int(mine[np.argmin(arr.tier_rank[mine])])
    marginal = [first] * T
    best = [-1] * T
    for k in np.nonzero(cols.tier_segment == s)[0]:
        j = cols.tier_offset + int(k)
        i, t = int(cols.tier_index[k]), int(cols.tier_period[k])
        if x[j] * scale[j] > 1e-9 and arr.tier_rank[i] > best[t]:
            best[t], marginal[t] = int(arr.tier_rank[i]), i
    return [float(arr.tier_price[marginal[t], t]) for t in range(T)]


def sensitivity(
    scenario: Scenario,
    *,
    segments: Sequence[str] | None = None,
    wider_ranges: bool = True,
    algorithm: str = "simplex",
) -> Sensitivity:
    """Capacity and price ranging of the optimal plan of ``scenario``.

    ``segments`` limits the price ranging to those segment ids (all by default).
    ``wider_ranges`` also computes the ranges over which the shadow prices (capacity) and
    the allocation (prices) stay optimal, two small warm-started LPs per item; without it
    those fields are None. ``algorithm`` is ``simplex`` (dual simplex, the default) or
    ``ipm`` (interior point with crossover, faster on large coupled LPs; the ranges then
    refer to the crossover basis). Raises ``ValueError`` for a MILP scenario or an
    unknown segment, and the engine's errors when the scenario has no optimal plan.
    """
    known = {s.id for s in scenario.segments}
    unknown = sorted(set(segments or ()) - known)
    if unknown:
        from allocator.scenario.model import unknown_id

        ids = [s.id for s in scenario.segments]
        raise ValueError("; ".join(unknown_id("segment", u, ids) for u in unknown))
    t0 = time.perf_counter()
    arr = ScenarioArrays.of(scenario)
    lp = build_lp(scenario)
    h = solve_for_basis(lp, algorithm)
    solve_time = time.perf_counter() - t0
    iterations = int(max(h.getInfo().simplex_iteration_count, 0))
    t1 = time.perf_counter()
    basis = OptimalBasis(h, lp)
    labels = Labels(scenario, lp)
    objective = -float(h.getInfo().objective_function_value)
    capacity = _capacity_ranges(scenario, lp, arr, h, basis, labels, objective, wider_ranges)
    power = _power_ranges(scenario, lp, arr, h, basis, labels, objective)
    wanted = set(segments) if segments is not None else known
    prices = _price_ranges(scenario, lp, arr, basis, labels, objective, wanted, wider_ranges)
    notes = []
    if any(r.lower_pct == 0 or r.upper_pct == 0 for r in prices):
        notes.append(
            "some price ranges have zero width on one side: the optimum is degenerate (other "
            "optimal plans tie with this one, or an allocation sits at 0 in the basis); the "
            "allocation_* range says how far the allocation itself stays optimal"
        )
    return Sensitivity(
        scenario=scenario.name,
        currency=scenario.currency,
        objective=objective,
        capacity=capacity,
        prices=prices,
        solve_time_s=solve_time,
        ranging_time_s=time.perf_counter() - t1,
        iterations=iterations,
        notes=notes,
        power=power,
    )


def _power_ranges(
    scenario: Scenario,
    lp: LinearProgram,
    arr: ScenarioArrays,
    h: highspy.Highs,
    basis: OptimalBasis,
    labels: Labels,
    objective: float,
) -> list[PowerRange]:
    """HiGHS' row-bound ranging of the site-power rows (kW), in MW."""
    blk = lp.block("site-power")
    if blk is None:
        return []
    _, ranging = h.getRanging()
    rb_up, rb_dn = ranging.row_bound_up, ranging.row_bound_dn
    out = []
    for k, i in enumerate(range(blk.start, blk.stop)):
        q, t = int(blk.keys["site"][k]), int(blk.keys["period"][k])
        kw = float(lp.row_upper[i])
        dual_pv = max(-float(basis.row_dual[i]), 0.0)  # per kW over the period
        binding = bool(basis.row_status[i] != _BASIC)
        if binding:
            lower, upper = max(float(rb_dn.value_[i]), 0.0), float(rb_up.value_[i])
            obj_lo, obj_up = -float(rb_dn.objective_[i]), -float(rb_up.objective_[i])
            if lower > rb_dn.value_[i]:
                obj_lo = objective - dual_pv * kw
            lim_lo = labels.leaving(int(rb_dn.ou_var_[i])) if rb_dn.value_[i] > 0 else "0 MW"
            lim_up = labels.leaving(int(rb_up.ou_var_[i]) if math.isfinite(upper) else None)
        else:
            lower, upper = max(float(basis.row_value[i]), 0.0), math.inf
            obj_lo = obj_up = objective
            lim_lo = f"{labels.row(int(i))} becomes binding (power below what is drawn)"
            lim_up = labels.leaving(None)
        hours, disc = float(arr.hours[t]), float(arr.discount[t])
        out.append(
            PowerRange(
                site=(scenario.sites or [])[q].id,
                period=scenario.period_labels[t],
                power_mw=kw / 1000.0,
                used_mw=float(basis.row_value[i]) / 1000.0,
                binding=binding,
                shadow_price_per_mwh=1000.0 * dual_pv / hours / disc,
                shadow_price_pv_per_mwh=1000.0 * dual_pv / hours,
                lower_mw=lower / 1000.0,
                upper_mw=upper / 1000.0,
                objective_at_lower=obj_lo,
                objective_at_upper=obj_up,
                lower_limit=lim_lo,
                upper_limit=lim_up,
            )
        )
    return out


def _capacity_ranges(
    scenario: Scenario,
    lp: LinearProgram,
    arr: ScenarioArrays,
    h: highspy.Highs,
    basis: OptimalBasis,
    labels: Labels,
    objective: float,
    wider: bool,
) -> list[CapacityRange]:
    status, ranging = h.getRanging()
    if status != highspy.HighsStatus.kOk or not ranging.valid:
        raise NumericalError("HiGHS could not range the optimal basis")
    cap = lp.block("pool-capacity")
    if cap is None:
        return []
    rows = np.arange(cap.start, cap.stop)
    holds = PriceHolds(basis, rows) if wider else None
    up_val = np.asarray(ranging.row_bound_up.value_, dtype=float)
    up_obj = np.asarray(ranging.row_bound_up.objective_, dtype=float)
    up_out = np.asarray(ranging.row_bound_up.ou_var_, dtype=np.int64)
    dn_val = np.asarray(ranging.row_bound_dn.value_, dtype=float)
    dn_obj = np.asarray(ranging.row_bound_dn.objective_, dtype=float)
    dn_out = np.asarray(ranging.row_bound_dn.ou_var_, dtype=np.int64)
    periods = scenario.period_labels
    out = []
    for k, i in enumerate(rows):
        p, t = int(cap.keys["pool"][k]), int(cap.keys["period"][k])
        usable = float(lp.row_upper[i])
        used = float(basis.row_value[i])
        dual_pv = max(-float(basis.row_dual[i]), 0.0)  # max sense, per GPU over the period
        binding = bool(basis.row_status[i] != _BASIC)
        if binding:
            lower, upper = max(float(dn_val[i]), 0.0) + 0.0, float(up_val[i]) + 0.0
            obj_lo, obj_up = -float(dn_obj[i]), -float(up_obj[i])
            if lower > dn_val[i]:  # clipped at 0 GPUs
                obj_lo = objective - dual_pv * usable
            lim_lo = labels.leaving(int(dn_out[i])) if dn_val[i] > 0 else "none above 0 GPUs"
            lim_up = labels.leaving(int(up_out[i]) if math.isfinite(upper) else None)
        else:
            # idle GPUs: a price of 0 holds down to the GPUs in use and for any increase
            lower, upper = max(used, 0.0), math.inf
            obj_lo = obj_up = objective
            lim_lo = f"{labels.row(int(i))} becomes binding (capacity below the GPUs in use)"
            lim_up = labels.leaving(None)
        hold_lo = hold_up = None
        if holds is not None:
            hold_lo, hold_up = holds.range(k)
            hold_lo, hold_up = min(hold_lo, lower), max(hold_up, upper)
        hours = float(arr.hours[t])
        out.append(
            CapacityRange(
                pool=scenario.pools[p].id,
                period=periods[t],
                usable_gpus=usable,
                used_gpus=used,
                binding=binding,
                shadow_price_per_gpu_hour=dual_pv / hours / float(arr.discount[t]),
                shadow_price_pv_per_gpu_hour=dual_pv / hours,
                lower_gpus=lower,
                upper_gpus=upper,
                lower_pct=_pct(lower, usable),
                upper_pct=_pct(upper, usable),
                objective_at_lower=obj_lo,
                objective_at_upper=obj_up,
                lower_limit=lim_lo,
                upper_limit=lim_up,
                price_holds_lower_gpus=hold_lo,
                price_holds_upper_gpus=hold_up,
                price_holds_lower_pct=_pct(hold_lo, usable),
                price_holds_upper_pct=_pct(hold_up, usable),
            )
        )
    return out


def _price_ranges(
    scenario: Scenario,
    lp: LinearProgram,
    arr: ScenarioArrays,
    basis: OptimalBasis,
    labels: Labels,
    objective: float,
    wanted: set[str],
    wider: bool,
) -> list[PriceRange]:
    chosen = [s for s, seg in enumerate(scenario.segments) if seg.id in wanted]
    directions = price_directions(lp, arr)
    holds = AllocationHolds(basis, [directions[s] for s in chosen]) if wider else None
    out = []
    for k, s in enumerate(chosen):
        seg, d = scenario.segments[s], directions[s]
        down, up, b_dn, b_up = basis.cost_range(-d)  # min form: the cost -c moves by -d
        path: list[float] | None
        if seg.tiers:
            # every tier's price moves by one shift: the price shown is the clearing price
            # (the marginal tier's) per period, and it reaches 0 when the cheapest tier does
            path = _clearing_prices(lp, arr, basis.x, s)
            rev = float(np.mean(path))
            assert arr.tier_price is not None and arr.tier_units is not None
            offered = arr.tier_price[arr.tier_segment == s][
                arr.tier_units[arr.tier_segment == s] > 0
            ]
            floor = rev - float(offered.min(initial=rev))
        else:
            given = seg.revenue_per_unit
            path = list(given) if isinstance(given, list) else None
            rev = float(np.mean(given)) if isinstance(given, list) else float(given)
            # a price path shifts as a whole: it reaches 0 when its lowest period does
            floor = rev - min(path) if path else 0.0
        lower, upper = max(rev - down, floor) + 0.0, rev + up
        slope = float(d @ basis.x)
        alloc_lo = alloc_up = None
        if holds is not None:
            a_dn, a_up = holds.range(k)
            alloc_lo = min(max(rev - a_dn, floor), lower)
            alloc_up = max(rev + a_up, upper)
        obj_up = objective + (upper - rev) * slope if math.isfinite(upper) else math.inf
        out.append(
            PriceRange(
                segment=seg.id,
                kind=seg.kind.value,
                unit=seg.unit,
                revenue_per_unit=rev,
                lower=lower,
                upper=upper,
                lower_pct=_pct(lower, rev),
                upper_pct=_pct(upper, rev),
                units_sold_pv=slope,
                objective_at_lower=objective + (lower - rev) * slope,
                objective_at_upper=obj_up if slope > 0 else objective,
                lower_limit=(
                    labels.entering(b_dn)
                    if rev - down > floor
                    else "its cheapest tier's price reaches 0"
                    if seg.tiers
                    else "none above a price of 0"
                ),
                upper_limit=labels.entering(b_up),
                allocation_lower=alloc_lo,
                allocation_upper=alloc_up,
                allocation_lower_pct=_pct(alloc_lo, rev),
                allocation_upper_pct=_pct(alloc_up, rev),
                revenue_per_unit_by_period=path,
                priced_by="tiers" if seg.tiers else "revenue_per_unit",
            )
        )
    return out
