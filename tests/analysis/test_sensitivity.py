"""Sensitivity ranges, confirmed by re-solving just inside and just outside each of them.

Structure ranges (the optimal basis) are checked by warm re-solves from the optimal basis
on one Highs object: inside, HiGHS keeps the basis (so the positive allocations and every
shadow price stay); outside, it must change it. Wider ranges (shadow prices / allocation
stay optimal) are checked by cold solves, independently of any basis: inside, the
optimum moves exactly linearly (at the shadow price, or by the units sold); outside, it
does not.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import highspy
import numpy as np
import pytest

from allocator import InfeasibleError, Scenario, solve
from allocator.analysis.sensitivity import (
    OptimalBasis,
    Sensitivity,
    price_directions,
    sensitivity,
    solve_for_basis,
)
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.lp.build import build_lp
from allocator.solvers.highs_model import new_highs, to_highs_lp

from ..conftest import DATA, edit

INSIDE = 1e-3  # share of the range's width to stay inside a bound
OUTSIDE = 1e-3  # step past a bound, relative to max(1, width, |bound|) * this
REL_TOL = 1e-11  # objective agreement of two solves, relative (simplex vertices)


class Resolver:
    """The base LP held at its optimal basis; each re-solve starts from that basis."""

    def __init__(self, lp: LinearProgram):
        self.lp = lp
        self.h = solve_for_basis(lp)
        self.start = self.h.getBasis()
        self.base = OptimalBasis(self.h, lp)
        self.cost = -lp.c

    def _run(self) -> OptimalBasis | None:
        self.h.setBasis(self.start)
        self.h.run()
        ok = self.h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return OptimalBasis(self.h, self.lp) if ok else None

    def row_upper(self, i: int, value: float) -> OptimalBasis | None:
        lo, up = float(self.lp.row_lower[i]), float(self.lp.row_upper[i])
        self.h.changeRowBounds(i, max(lo, -highspy.kHighsInf), value)
        try:
            return self._run()
        finally:
            self.h.changeRowBounds(i, max(lo, -highspy.kHighsInf), up)

    def cost_step(self, d_max: np.ndarray, t: float) -> OptimalBasis | None:
        idx = np.nonzero(d_max)[0].astype(np.int32)
        self.h.changeColsCost(idx.size, idx, self.cost[idx] - t * d_max[idx])
        try:
            return self._run()
        finally:
            self.h.changeColsCost(idx.size, idx, self.cost[idx])


def same_structure(a: OptimalBasis | None, b: OptimalBasis) -> bool:
    """Same basis (so the allocations that can be positive are the same: the basic ones;
    a degenerate basic allocation at exactly 0 in the base plan turns positive inside the
    range) and the same duals."""
    if a is None or not a.same_as(b):
        return False
    scale = max(1.0, float(np.abs(b.row_dual).max()))
    pos = a.x > 1e-7
    positive_as_before = bool(np.all((b.col_status[pos] == 1) | (b.x[pos] > 1e-7)))
    return positive_as_before and bool(
        np.allclose(a.row_dual, b.row_dual, rtol=1e-7, atol=1e-9 * scale)
    )


def inside_outside(
    current: float, bound: float, side: int, min_step: float = 0.0
) -> tuple[float | None, float | None]:
    """(just inside, just outside) the end ``bound`` of a range around ``current`` on
    ``side`` (-1 lower, +1 upper): ``INSIDE`` of the width in, ``OUTSIDE`` of the larger of
    width and bound (at least ``min_step``) out; None where there is no such point (no
    room inside, or a lower end at 0: a capacity or price cannot be negative)."""
    if math.isinf(bound):
        return current + side * 10.0 * max(1.0, abs(current)), None
    width = bound - current
    inside = bound - INSIDE * width if width != 0 else None
    outside: float | None = bound + side * max(OUTSIDE * max(1.0, abs(width), abs(bound)), min_step)
    if side < 0 and bound <= 0:
        outside = None
    return inside, outside


def check_capacity_structure(sc: Scenario, s: Sensitivity, rows: list[int]) -> None:
    lp = build_lp(sc)
    cap = lp.block("pool-capacity")
    assert cap is not None
    res = Resolver(lp)
    for k in rows:
        r, i = s.capacity[k], cap.start + k
        assert r.lower_gpus <= r.usable_gpus <= r.upper_gpus
        for end, side in ((r.lower_gpus, -1), (r.upper_gpus, 1)):
            inside, outside = inside_outside(r.usable_gpus, end, side)
            if inside is not None and end != r.usable_gpus:
                assert same_structure(res.row_upper(i, inside), res.base), (r, inside)
            if outside is not None:
                assert not same_structure(res.row_upper(i, outside), res.base), (r, outside)


def check_price_structure(sc: Scenario, s: Sensitivity) -> None:
    lp = build_lp(sc)
    dirs = price_directions(lp, ScenarioArrays.of(sc))
    res = Resolver(lp)
    ids = [seg.id for seg in sc.segments]
    for p in s.prices:
        d = dirs[ids.index(p.segment)]
        assert p.lower <= p.revenue_per_unit <= p.upper
        for end, side in ((p.lower, -1), (p.upper, 1)):
            inside, outside = inside_outside(p.revenue_per_unit, end, side)
            if inside is not None and end != p.revenue_per_unit:
                got = res.cost_step(d, inside - p.revenue_per_unit)
                assert same_structure_x(got, res.base), (p, inside)
            if outside is not None:
                got = res.cost_step(d, outside - p.revenue_per_unit)
                assert got is None or not got.same_as(res.base), (p, outside)


def same_structure_x(a: OptimalBasis | None, b: OptimalBasis) -> bool:
    """Same basis and the very same allocation (a price change inside its range moves the
    duals, not the plan)."""
    return (
        a is not None
        and a.same_as(b)
        and bool(np.allclose(a.x, b.x, rtol=1e-9, atol=1e-7 * max(1.0, float(np.abs(b.x).max()))))
    )


def optimum(lp: LinearProgram) -> float:
    h = new_highs()
    h.passModel(to_highs_lp(lp))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return -float(h.getInfo().objective_function_value)


def check_wider_capacity(sc: Scenario, s: Sensitivity, rows: list[int]) -> None:
    """Inside [price_holds_lower, price_holds_upper] the optimum is exactly linear at the
    shadow price; outside it falls below that line (the value of capacity is concave)."""
    lp0 = build_lp(sc)
    cap = lp0.block("pool-capacity")
    assert cap is not None
    v0 = s.objective
    for k in rows:
        r, i = s.capacity[k], cap.start + k
        hours = sc.periods[sc.period_labels.index(r.period)].hours
        y = r.shadow_price_pv_per_gpu_hour * hours
        lo, up = r.price_holds_lower_gpus, r.price_holds_upper_gpus
        assert lo is not None and up is not None
        assert lo <= r.lower_gpus and up >= r.upper_gpus
        for end, side in ((lo, -1), (up, 1)):
            inside, outside = inside_outside(r.usable_gpus, end, side, min_step=1.0)
            for b, linear in ((inside, True), (outside, False)):
                if b is None:
                    continue
                lp = build_lp(sc)
                lp.row_upper[i] = b
                gap = optimum(lp) - (v0 + y * (b - r.usable_gpus))
                tol = REL_TOL * abs(v0)
                assert (abs(gap) <= tol) if linear else (gap < -tol), (r, b, gap)


def check_wider_prices(sc: Scenario, s: Sensitivity) -> None:
    """Inside [allocation_lower, allocation_upper] the base allocation stays optimal (the
    optimum is linear in the price); outside another plan does strictly better."""
    data = sc.to_dict()
    for p in s.prices:
        lo, up = p.allocation_lower, p.allocation_upper
        assert lo is not None and up is not None
        assert lo <= p.lower and up >= p.upper
        for end, side in ((lo, -1), (up, 1)):
            inside, outside = inside_outside(p.revenue_per_unit, end, side)
            for price, linear in ((inside, True), (outside, False)):
                if price is None:
                    continue
                changed = json.loads(json.dumps(data))
                for seg in changed["segments"]:
                    if seg["id"] == p.segment:
                        seg["revenue_per_unit"] = shifted(seg["revenue_per_unit"], p, price)
                v = optimum(build_lp(Scenario.from_dict(changed)))
                gap = v - (s.objective + p.units_sold_pv * (price - p.revenue_per_unit))
                tol = REL_TOL * abs(s.objective)
                assert (abs(gap) <= tol) if linear else (gap > tol), (p, price, gap)


# --------------------------------------------------------------------------- tiny
@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return Scenario.from_file(DATA / "tiny.json")


@pytest.fixture(scope="module")
def tiny_sensitivity(tiny: Scenario) -> Sensitivity:
    return sensitivity(tiny)


def shifted(rev, p, price):
    """The segment's price moved to ``price``: a price path moves as a whole (its mean is
    what the ranging reports)."""
    if isinstance(rev, list):
        return [r + (price - p.revenue_per_unit) for r in rev]
    return price


def test_tiny_capacity_ranges_by_hand(tiny_sensitivity):
    got = {
        (r.pool, r.period): (r.shadow_price_per_gpu_hour, r.lower_gpus, r.upper_gpus)
        for r in tiny_sensitivity.capacity
    }
    # h100 P1 is worth cloud's 4 - 1 per GPU-hour while cloud has H100s (5 of them) and
    # demand left (up to 15 GPUs): 5..20. b200 P1 is worth 10 while chat can shift
    # between H100 and B200: all of chat's 200 Mtok/h on B200 at 20/3 GPUs, all cloud's
    # H100s taken by chat at 10/3.
    assert got == {
        ("h100", "P1"): pytest.approx((3.0, 5.0, 20.0)),
        ("h100", "P2"): pytest.approx((4.5, 5.0, 17.0)),
        ("b200", "P1"): pytest.approx((10.0, 10 / 3, 20 / 3)),
        ("b200", "P2"): pytest.approx((14.5, 25 / 3, 35 / 3)),
    }
    r = tiny_sensitivity.capacity_range("h100", "P1")
    assert r.binding and r.used_gpus == pytest.approx(10)
    assert r.lower_pct == pytest.approx(-50) and r.upper_pct == pytest.approx(100)
    assert r.objective_at_upper == pytest.approx(30950 + 3 * 100 * 10)
    assert r.objective_at_lower == pytest.approx(30950 - 3 * 100 * 5)
    assert r.upper_limit == "segment-demand[cloud,P1] becomes binding"
    # tiny's duals are unique: the wider ranges are the same
    for r in tiny_sensitivity.capacity:
        assert (r.price_holds_lower_gpus, r.price_holds_upper_gpus) == pytest.approx(
            (r.lower_gpus, r.upper_gpus)
        )


def test_tiny_price_ranges_by_hand(tiny_sensitivity):
    chat = tiny_sensitivity.price_range("chat")
    # chat's P2 demand is worth 0.05 per Mtok above its marginal use: down to 0.45; more
    # revenue never changes a fully served segment's plan
    assert (chat.lower, chat.upper) == pytest.approx((0.45, math.inf))
    assert chat.units_sold_pv == pytest.approx(55000)
    cloud = tiny_sensitivity.price_range("cloud")
    # H100 P1 earns 3 = cloud's 4 - 1: down to a price of 1; in P2 a cloud unit (price
    # + 1.5 penalty avoided) beats chat's 10 x 0.6 per H100-hour above 4.5
    assert (cloud.lower, cloud.upper) == pytest.approx((1.0, 4.5))
    assert (cloud.lower_pct, cloud.upper_pct) == pytest.approx((-75.0, 12.5))
    assert cloud.objective_at_upper == pytest.approx(30950 + 0.5 * 1000)
    for p in tiny_sensitivity.prices:
        assert (p.allocation_lower, p.allocation_upper) == pytest.approx((p.lower, p.upper))


def test_tiny_ranges_confirmed_by_warm_resolves(tiny, tiny_sensitivity):
    check_capacity_structure(tiny, tiny_sensitivity, list(range(len(tiny_sensitivity.capacity))))
    check_price_structure(tiny, tiny_sensitivity)


def test_tiny_ranges_confirmed_on_the_scenario(tiny_dict, tiny_sensitivity):
    """Through the public solve(): change the scenario itself (tiny has no headroom and no
    rows that depend on raw GPUs) and compare plans."""
    base = solve(tiny_dict)

    def support(plan):
        return {(a.segment, a.pool, a.period) for a in plan.allocations if a.gpus > 1e-7}

    def prices(plan):
        return [r.shadow_price_per_gpu_hour for r in plan.pools]

    pools = [p["id"] for p in tiny_dict["pools"]]
    for r in tiny_sensitivity.capacity:
        j, t = pools.index(r.pool), ["P1", "P2"].index(r.period)
        for end, side in ((r.lower_gpus, -1), (r.upper_gpus, 1)):
            inside, outside = inside_outside(r.usable_gpus, end, side)
            for gpus, same in ((inside, True), (outside, False)):
                data = edit(tiny_dict)
                data["pools"][j]["gpus"][t] = gpus
                plan = solve(data)
                prices_same = np.allclose(prices(plan), prices(base), rtol=1e-9)
                assert (prices_same and support(plan) == support(base)) == same, (r, gpus)
    segs = [s["id"] for s in tiny_dict["segments"]]
    for p in tiny_sensitivity.prices:
        for end, side in ((p.lower, -1), (p.upper, 1)):
            inside, outside = inside_outside(p.revenue_per_unit, end, side)
            for price, same in ((inside, True), (outside, False)):
                if price is None:
                    continue
                data = edit(tiny_dict)
                data["segments"][segs.index(p.segment)]["revenue_per_unit"] = price
                plan = solve(data)
                moved = [
                    (a.segment, a.pool, a.period, round(a.gpus, 9)) for a in plan.allocations
                ] != [(a.segment, a.pool, a.period, round(a.gpus, 9)) for a in base.allocations]
                assert moved != same, (p, price)


def test_tiny_wider_ranges_confirmed_by_cold_solves(tiny, tiny_sensitivity):
    check_wider_capacity(tiny, tiny_sensitivity, list(range(len(tiny_sensitivity.capacity))))
    check_wider_prices(tiny, tiny_sensitivity)


# -------------------------------------------------------------------- hyperscaler
@pytest.fixture(scope="module")
def hyperscaler() -> Scenario:
    return Scenario.from_file(DATA / "hyperscaler.json")


@pytest.fixture(scope="module")
def hyperscaler_sensitivity(hyperscaler: Scenario) -> Sensitivity:
    return sensitivity(hyperscaler)


def sample_rows(s: Sensitivity, n: int = 10) -> list[int]:
    """An even sample of capacity rows, plus every row whose structure range has zero
    width on one side (degenerate) and every row where the wider range differs."""
    rows = set(np.linspace(0, len(s.capacity) - 1, n).astype(int).tolist())
    rows |= {
        k
        for k, r in enumerate(s.capacity)
        if r.lower_gpus == r.usable_gpus or r.upper_gpus == r.usable_gpus
    }
    return sorted(rows)


def test_hyperscaler_structure_ranges_confirmed(hyperscaler, hyperscaler_sensitivity):
    s = hyperscaler_sensitivity
    check_capacity_structure(hyperscaler, s, sample_rows(s))
    check_price_structure(hyperscaler, s)


def test_hyperscaler_wider_ranges_confirmed(hyperscaler, hyperscaler_sensitivity):
    s = hyperscaler_sensitivity
    check_wider_capacity(hyperscaler, s, sample_rows(s, 6)[:8])
    sample = ["cloud-payg-startups", "cloud-sovereign-eu", "1p-office-copilot", "rnd-research"]
    check_wider_prices(hyperscaler, replace(s, prices=[s.price_range(i) for i in sample]))


def test_hyperscaler_degenerate_prices_explained(hyperscaler_sensitivity):
    s = hyperscaler_sensitivity
    # no two segments tie on price (every price range has width, so no note), but the
    # basis is degenerate in capacity: some pool-capacity rows cannot move one way (or
    # either way) without changing the basis
    assert not s.notes
    assert all(p.upper is None or p.lower < p.upper for p in s.prices)
    flat = [r for r in s.capacity if r.usable_gpus > 0 and r.lower_gpus == r.upper_gpus]
    one_sided = [r for r in s.capacity if r.lower_gpus == r.usable_gpus < r.upper_gpus]
    assert flat and one_sided
    # every range contains the current value and the wider one contains the structure one
    for p in s.prices:
        assert p.allocation_lower <= p.lower <= p.revenue_per_unit <= p.upper
        assert p.upper <= p.allocation_upper
    for r in s.capacity:
        assert r.price_holds_lower_gpus <= r.lower_gpus <= r.usable_gpus <= r.upper_gpus
        assert r.upper_gpus <= r.price_holds_upper_gpus
        assert r.shadow_price_per_gpu_hour > 0  # every pool is full in this example


# ---------------------------------------------------------------------- interface
def test_to_dict_is_json_with_none_for_unbounded(tiny_sensitivity):
    d = tiny_sensitivity.to_dict()
    text = json.dumps(d, allow_nan=False)
    chat = next(p for p in json.loads(text)["prices"] if p["segment"] == "chat")
    assert chat["upper"] is None and chat["upper_pct"] is None
    assert set(d) >= {"scenario", "currency", "objective", "capacity", "prices", "method"}
    assert "Sensitivity('tiny'" in repr(tiny_sensitivity)


def test_options_and_errors(tiny, tiny_dict):
    only = sensitivity(tiny, segments=["cloud"], wider_ranges=False)
    assert [p.segment for p in only.prices] == ["cloud"]
    assert only.prices[0].allocation_lower is None
    assert only.capacity[0].price_holds_upper_gpus is None
    ipm = sensitivity(tiny, algorithm="ipm")
    assert ipm.price_range("cloud").upper == pytest.approx(4.5)
    with pytest.raises(ValueError, match="unknown segment"):
        sensitivity(tiny, segments=["nobody"])
    with pytest.raises(ValueError, match="algorithm"):
        sensitivity(tiny, algorithm="pdlp")
    milp = edit(tiny_dict)
    milp["pools"][0]["allocation_unit_gpus"] = 1
    with pytest.raises(ValueError, match="MILP"):
        sensitivity(Scenario.from_dict(milp))
    hard = edit(tiny_dict)
    hard["segments"][1]["demand"] = [1500, 4000]
    hard["segments"][1]["contract_min"] = [0, 3500]  # P2 holds 1000 + 2 x 1000 units
    hard["segments"][1]["contract_hard"] = True
    with pytest.raises(InfeasibleError):
        sensitivity(Scenario.from_dict(hard))
