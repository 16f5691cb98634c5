"""What the documents say is what the engine does (issue 24): each claim is read from the
README (or docs/) and checked against real solves of hand-solvable scenarios, so the two
cannot part again without a test failing.

Every scenario here has one pool "h" (H100), 1-hour periods and throughput 1 work unit per
GPU-hour, so GPUs, GPU-hours and work units are the same number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from allocator import solve
from allocator.errors import ScenarioError
from allocator.scenario import Scenario
from allocator.scenario.generate import generate
from allocator.scenario.overrides import apply_overrides
from allocator.solvers.registry import SMALL_LP_COLUMNS
from allocator.workflows.alternatives import alternatives
from allocator.workflows.fairness import fair_solve
from allocator.workflows.twostage import DemandScenario, scenario_for

ROOT = Path(__file__).resolve().parents[1]


def _text(doc: str = "README.md") -> str:
    """The document with its line breaks and runs of spaces as single spaces."""
    return re.sub(r"\s+", " ", (ROOT / doc).read_text(encoding="utf-8"))


def _pool(gpus: list[float] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "id": "h",
        "accelerator": "H100",
        "region": "r",
        "gpus": gpus or [10],
        "variable_cost_per_gpu_hour": 1.0,
        **kw,
    }


def _seg(sid: str = "a", demand: list[float] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "kind": "cloud",
        "unit": "u",
        "demand": demand or [100],
        "revenue_per_unit": 10.0,
        "throughput": {"H100": 1},
        **kw,
    }


def _scenario(pools: list[dict], segments: list[dict], T: int = 1, **kw: Any) -> dict[str, Any]:
    periods = [{"label": f"P{t + 1}", "hours": 1} for t in range(T)]
    for p in pools:  # one number of GPUs: the same in every period
        p["gpus"] = p["gpus"] * T if len(p["gpus"]) == 1 else p["gpus"]
    return {"name": "doc", "periods": periods, "pools": pools, "segments": segments, **kw}


# ------------------------------------------------------------------ (a) solver.algorithm
def test_the_algorithm_the_readme_names_is_the_one_the_plan_reports() -> None:
    """README: `solver.algorithm` is `row-generation` for the default solve from 1,000
    columns on, `simplex` below, `mip` with whole-unit pools."""
    said = re.search(
        r"`solver\.algorithm` is `([\w-]+)` for the default solve from ([\d,]+) columns on "
        r"\(`ipm-fallback` [^)]*\), `(\w+)` below ([\d,]+) columns, `(\w+)` with whole-unit pools",
        _text(),
    )
    assert said, "the README no longer says which algorithm the default solve reports"
    big, n_big, small, n_small, whole = said.groups()
    assert int(n_big.replace(",", "")) == int(n_small.replace(",", "")) == SMALL_LP_COLUMNS
    tiny = solve(_scenario([_pool()], [_seg()]))
    assert tiny.solver.columns < SMALL_LP_COLUMNS and tiny.solver.algorithm == small
    fleet = generate(segments=40, pools=6, periods=8, seed=3)
    plan = solve(fleet)
    assert plan.solver.columns >= SMALL_LP_COLUMNS and plan.solver.algorithm == big
    nodes = solve(_scenario([_pool([16], allocation_unit_gpus=8)], [_seg()]))
    assert nodes.solver.algorithm == whole
    # and the section that explains the choice says the same three names
    choosing = _text().split("## Choosing the algorithm")[1].split("## ")[0]
    for name in (big, small, whole):
        assert f"`{name}`" in choosing


# ------------------------------------------------------------------ (b) idle and headroom
def _pool_row(plan: Any) -> Any:
    (row,) = plan.pools
    return row


@pytest.mark.parametrize(
    ("demand", "used", "idle", "price"),
    [
        # demand above the 8 usable GPUs (10 less 20 % headroom): all 8 used, none idle,
        # the price is what one more GPU-hour earns: 10 - 1 = 9; 2 GPUs kept free
        (100, 8.0, 0.0, 9.0),
        # demand 5: 3 usable GPUs idle, price 0; the 2 kept free are not idle
        (5, 5.0, 3.0, 0.0),
    ],
)
def test_idle_gpus_are_usable_ones_and_headroom_is_apart(
    demand: float, used: float, idle: float, price: float
) -> None:
    plan = solve(_scenario([_pool(headroom=0.2)], [_seg(demand=[demand])]))
    row = _pool_row(plan)
    assert (row.usable, row.used, row.idle, row.headroom_gpus) == pytest.approx(
        (8.0, used, idle, 2.0)
    )
    assert row.shadow_price_per_gpu_hour == pytest.approx(price)
    readme = _text()
    assert (
        "`idle` (usable + rented − used" in readme and "`headroom_gpus` (GPUs kept free" in readme
    )
    assert "zero where usable GPUs sit idle" in readme


@pytest.mark.parametrize("seed", range(4))
def test_prices_are_zero_wherever_usable_gpus_sit_idle(seed: int) -> None:
    """Random fleets with headroom, rentals and GPUs to buy: idle + headroom = own + bought
    + rented - used, usable = (1 - headroom)(own + bought), and a pool-period with idle
    GPUs has price 0 (its capacity row is slack)."""
    data = generate(segments=6, pools=4, periods=3, seed=seed, scarcity=0.8).to_dict()
    rng = np.random.default_rng(seed)
    for j, p in enumerate(data["pools"]):
        p["headroom"] = float(rng.choice([0.0, 0.1, 0.3]))
        if j % 2:
            p["expansion"] = {"max_gpus": 50.0, "cost_per_gpu_hour": 0.01, "from_period": "W01"}
        else:
            p["rentable_gpus"] = [5.0] * 3
            p["rental_price_per_gpu_hour"] = 0.5
    sc = Scenario.from_dict(data)
    plan = solve(sc)
    h = {p.id: p.headroom for p in sc.pools}
    saw_idle = False
    for r in plan.pools:
        own = r.gpus + r.bought
        assert r.usable == pytest.approx((1 - h[r.pool]) * own, abs=1e-9)
        assert r.headroom_gpus == pytest.approx(h[r.pool] * own, abs=1e-9)
        assert r.idle + r.headroom_gpus == pytest.approx(own + r.rented - r.used, abs=1e-6)
        if r.idle > 1e-6:
            saw_idle = True
            assert r.shadow_price_per_gpu_hour == pytest.approx(0.0, abs=1e-9)
    assert saw_idle  # scarcity 0.8: some usable GPUs sit idle


def test_idle_and_headroom_reach_the_summary_the_workbook_and_the_csv(tmp_path: Path) -> None:
    from allocator.plan.report import summary
    from allocator.plan.workbook import POOLS
    from allocator.plan.writers import write_csv

    plan = solve(_scenario([_pool(headroom=0.2)], [_seg(demand=[5])]))
    text = summary(plan)
    assert "idle GPUs" in text and "headroom GPUs" in text
    assert {"idle", "headroom_gpus"} <= {key for key, _, _ in POOLS}
    write_csv(plan, tmp_path)
    header = (tmp_path / "pools.csv").read_text().splitlines()[0].split(",")
    assert "idle" in header and "headroom_gpus" in header


# ------------------------------------------------------------------ (c) usable with bought
def test_usable_counts_gpus_bought_after_headroom() -> None:
    """3 own GPUs, 25 % headroom, GPUs to buy at 0.5 per GPU-hour, demand 9 worth 10 - 1
    each: buy until (1 - 0.25)(3 + e) = 9, e = 9; usable 9 = used, 3 kept free; one more
    usable GPU-hour saves buying 1/0.75 of a GPU: price 0.5 / 0.75."""
    pool = _pool(
        [3],
        headroom=0.25,
        expansion={"max_gpus": 20, "cost_per_gpu_hour": 0.5, "from_period": "P1"},
    )
    row = _pool_row(solve(_scenario([pool], [_seg(demand=[9])])))
    assert (row.bought, row.usable, row.used) == pytest.approx((9.0, 9.0, 9.0))
    assert (row.idle, row.headroom_gpus) == pytest.approx((0.0, 3.0))
    assert row.shadow_price_per_gpu_hour == pytest.approx(0.5 / 0.75)
    assert "`usable` (own GPUs, bought ones too, after headroom)" in _text()


# ------------------------------------------------------------------ (d) reserved GPUs
def test_reserved_gpus_are_a_count_of_gpus_in_a_whole_unit_pool() -> None:
    """16 GPUs in 8-GPU nodes, no variable cost; a unit on demand earns 1 and a customer
    offers to reserve up to 5 GPUs at 3 a GPU-hour: a reserved GPU (3) beats an allocated
    one (1), so 5 are reserved (not a whole node); the 11 left hold one node of 8 and 3
    GPUs stay idle. Objective 5 x 3 + 8 x 1 = 23."""
    pool = _pool([16], allocation_unit_gpus=8, variable_cost_per_gpu_hour=0.0)
    seg = _seg(revenue_per_unit=1.0, reservation={"max_gpus": 5, "price_per_gpu_hour": 3.0})
    plan = solve(_scenario([pool], [seg]))
    assert plan.objective == pytest.approx(23.0)
    assert [r.gpus for r in plan.reservations] == pytest.approx([5.0])
    assert [a.gpus for a in plan.allocations] == pytest.approx([8.0])
    assert _pool_row(plan).idle == pytest.approx(3.0)
    assert "5 GPUs may be reserved in a pool of 8-GPU nodes" in _text()
    assert "so 5 may be reserved in a pool of 8-GPU nodes" in _text("docs/backends.md")


def _offer(**policy: Any) -> dict[str, Any]:
    """10 GPUs; segment a worth 1 a unit on demand, its customer offering to reserve up to
    10 GPUs at 3 a GPU-hour, variable cost 0: unlimited, it reserves all 10 (30)."""
    seg = _seg(
        revenue_per_unit=1.0,
        reservation={"max_gpus": 10, "price_per_gpu_hour": 3.0},
        **policy.pop("segment", {}),
    )
    return _scenario([_pool(variable_cost_per_gpu_hour=0.0)], [seg], policy=policy)


@pytest.mark.parametrize(
    ("extra", "reserved"),
    [
        ({}, 10.0),
        # a GPU limit of 4 for a counts reserved GPUs: 4 reserved, none allocated
        ({"segment": {"gpu_limits": [{"max_gpus": 4}]}}, 4.0),
        # a GPU-hour budget of 6 for a: 6 reserved
        ({"gpu_hour_budgets": [{"id": "b", "segment": "a", "max_gpu_hours": 6}]}, 6.0),
    ],
)
def test_reserved_gpus_count_in_gpu_limits_and_budgets(extra: dict, reserved: float) -> None:
    plan = solve(_offer(**extra))
    assert sum(r.gpus for r in plan.reservations) == pytest.approx(reserved)
    assert sum(a.gpus for a in plan.allocations) == pytest.approx(0.0, abs=1e-9)
    assert plan.objective == pytest.approx(3.0 * reserved)
    readme = _text()
    assert "the segment's GPU limits (`segment-gpus`) and GPU-hour budgets" in readme


def test_reserved_gpus_count_in_the_gpu_hours_of_alternatives() -> None:
    """The optimum reserves all 10 GPUs for a: a's GPU-hours are 10, all reserved."""
    res = alternatives(_offer(), ["segment:a"], slack=0.0)
    (alt,) = res.alternatives
    assert alt.optimal == pytest.approx(10.0)
    assert "and in the GPU-hours of near-optimal alternatives" in _text()


# ------------------------------------------------------------------ demand left out
def test_demand_may_be_left_out_with_one_number_of_tier_units_or_subscribers() -> None:
    """2 periods, 10 GPUs. Subscription a: 100 subscribers paying 1 each per period, usage
    0.05 each (demand 5), loss 0.1 a unit not served; tiers b: 4 units at 3, 6 at 1 (demand
    10). Per period 10 units fit: b's 4 at 3 and 6 at 1 (18) beat a's 0.1 a unit, so a's 5
    are lost (0.5): 100 + 18 - 0.5 = 117.5 a period, 235 in all. Fees and tier revenue are
    `revenue` (2 x 100 + 2 x 18 = 236), the loss `churn_cost` (1)."""
    sub = {"subscribers": 100, "fee_per_subscriber": 1.0, "usage_per_subscriber": 0.05}
    a = _seg("a", subscription={**sub, "ltv_loss_per_unit": 0.1}, kind="consumer")
    b = _seg("b", tiers=[{"units": 4, "price": 3}, {"units": 6, "price": 1}])
    for s in (a, b):
        del s["demand"], s["revenue_per_unit"]
    data = _scenario([_pool(variable_cost_per_gpu_hour=0.0)], [a, b], T=2)
    sc = Scenario.from_dict(data)
    assert [s.demand for s in sc.segments] == [[5.0, 5.0], [10.0, 10.0]]
    plan = solve(sc)
    assert plan.objective == pytest.approx(235.0)
    assert plan.totals.revenue == pytest.approx(236.0)
    assert plan.totals.churn_cost == pytest.approx(1.0)
    assert plan.totals.shortfall_penalty == pytest.approx(0.0)
    readme = _text()
    assert "one number of units or subscribers then means the same in every period" in readme
    assert "`revenue` also holds subscription fees and tier revenue" in readme


def test_a_subscription_loss_below_its_minimum_share_is_a_shortfall_penalty() -> None:
    """2 GPUs; usage 5 with a minimum service share 0.6 (3 units): 2 served, 1 unit short
    of the minimum at 0.1 = 0.1 in `shortfall_penalty`, nothing in `churn_cost` (the loss
    applies below the minimum share only); fees 100."""
    sub = {
        "subscribers": 100,
        "fee_per_subscriber": 1.0,
        "usage_per_subscriber": 0.05,
        "ltv_loss_per_unit": 0.1,
        "min_service_share": 0.6,
    }
    a = _seg("a", kind="consumer", subscription=sub)
    del a["demand"], a["revenue_per_unit"]
    plan = solve(_scenario([_pool([2], variable_cost_per_gpu_hour=0.0)], [a]))
    assert plan.totals.revenue == pytest.approx(100.0)
    assert plan.totals.shortfall_penalty == pytest.approx(0.1)
    assert plan.totals.churn_cost == pytest.approx(0.0)
    assert "(in `shortfall_penalty` below a `min_service_share`)" in _text()


# ------------------------------------------------------------------ tiers keep the price
def test_tiers_require_every_mode_to_keep_the_whole_price() -> None:
    b = _seg(
        "b",
        tiers=[{"units": 4, "price": 3}],
        modes=[
            {"name": "full"},
            {"name": "lite", "throughput_multiplier": 1.2, "revenue_share": 0.5},
        ],
    )
    del b["demand"], b["revenue_per_unit"]
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_dict(_scenario([_pool()], [b]))
    assert [i.path for i in exc.value.issues] == ["segments[0].modes[1].revenue_share"]
    assert "every mode must keep the whole price: `revenue_share` other than 1 is a validation" in (
        _text()
    )


# ------------------------------------------------------------------ factors multiply
def test_a_segment_named_by_id_and_by_kind_gets_both_factors() -> None:
    sc = Scenario.from_dict(_scenario([_pool()], [_seg(demand=[100])]))
    scale = {"a": 2.0, "cloud": 1.5}
    assert apply_overrides(sc, {"demand_scale": scale}).segments[0].demand == [300.0]
    ds = DemandScenario.of({"name": "k", "probability": 1.0, "demand_scale": scale})
    assert scenario_for(sc, ds).segments[0].demand == [300.0]
    assert "gets both factors, multiplied" in _text()
    batch = _text("docs/batch.md")
    assert batch.count("gets both factors, multiplied") >= 2  # sweeps and demand scenarios


# ------------------------------------------------------------------ fair floors
def test_fair_floor_without_demand_is_zero_and_capped_at_the_smallest_inverse_weight() -> None:
    """a (weight 1) and b (weight 2), demand 3 each in P1 and none in P2, 10 GPUs: both can
    be served whole, but the floor z satisfies w z <= 1 for every weight, so z*_P1 = 1/2;
    P2 has no demand: floor 0."""
    segs = [_seg("a", demand=[3, 0]), _seg("b", demand=[3, 0])]
    r = fair_solve(_scenario([_pool()], segs, T=2), by="segment", weights={"b": 2.0})
    assert r.floor == pytest.approx([0.5, 0.0])
    readme = _text()
    assert "0 ≤ z_t ≤ min_i 1/w_i, and z*_t = 0 in a period where no entity has demand" in readme


def test_the_reported_fair_floor_is_one_the_plan_meets() -> None:
    """Capacity-bound: 10 GPUs, a and b demand 10 each: z* = 1/2. Whatever the 1e-7
    tolerance of step 2 does, every entity's weighted served share is at least the
    floor reported, and the floor is at most z*."""
    for weights in ({}, {"b": 3.0}):
        segs = [_seg("a", demand=[10, 10]), _seg("b", demand=[10, 10], revenue_per_unit=20.0)]
        r = fair_solve(_scenario([_pool()], segs, T=2), by="segment", weights=weights)
        w = {e: r.weights[i] for i, e in enumerate(r.entities)}
        for t, floor in enumerate(r.floor):
            assert 0 < floor <= 1 / (1 + w["b"]) + 1e-9  # w_a z 10 + w_b z 10 <= 10
            assert min(r.shares[e][t] / w[e] for e in r.entities) >= floor
    assert "the `floor` reported is the one the plan meets" in _text()
