"""Properties over the examples and over random small fleets (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import Status, build_lp, solve
from allocator.solvers import HighsSolver
from tests.certificates import assert_optimal

REL = 1e-7


def served_pv(plan, segment, discount_rate):
    return sum(
        s.served / (1 + discount_rate) ** plan.periods.index(s.period)
        for s in plan.segments
        if s.segment == segment
    )


def test_more_capacity_never_lowers_the_optimum(example_scenario):
    # An R&D floor is a share of the fleet: more GPUs raise the floor too, so the
    # monotonicity holds for capacity itself; take the floor out to test it.
    d = example_scenario.to_dict()
    d["policy"]["rnd_min_share"] = 0.0
    base = solve(d).objective
    for j in range(len(d["pools"])):
        more = example_scenario.to_dict()
        more["policy"]["rnd_min_share"] = 0.0
        more["pools"][j]["gpus"] = [g * 1.1 + 1 for g in more["pools"][j]["gpus"]]
        assert solve(more).objective >= base - REL * abs(base)


def test_higher_price_never_lowers_what_a_segment_is_served(example_scenario):
    """If a segment's revenue per unit rises, its discounted work served cannot fall
    (exchange argument on the two optima); GPUs may move between pools, units cannot."""
    sc = example_scenario
    base = solve(sc)
    for i in sorted({0, len(sc.segments) // 2, len(sc.segments) - 1}):
        d = sc.to_dict()
        seg = d["segments"][i]
        rev = seg["revenue_per_unit"]  # one number, or one per period
        seg["revenue_per_unit"] = (
            [r * 1.5 + 0.01 for r in rev] if isinstance(rev, list) else rev * 1.5 + 0.01
        )
        before = served_pv(base, seg["id"], sc.discount_rate)
        after = served_pv(solve(d), seg["id"], sc.discount_rate)
        assert after >= before * (1 - 1e-7) - 1e-6


# ----------------------------------------------------------------- random small fleets
TYPES = ["A", "B", "C"]
KINDS = ["cloud", "first_party", "rnd", "consumer"]


def amount(hi: float) -> st.SearchStrategy[float]:
    """0, or a quantity from 1e-3 up: sub-micro GPUs or units are below solver tolerances."""
    return st.one_of(st.just(0.0), st.floats(1e-3, hi))


money = amount(10.0)


def per_unit(
    draw, strategy: st.SearchStrategy[float], T: int, moving: bool = True
) -> float | list[float]:
    """One number, or sometimes one per period (issue 15: economics that move)."""
    if moving and T > 1 and draw(st.integers(0, 3)) == 0:
        return draw(st.lists(strategy, min_size=T, max_size=T))
    return draw(strategy)


@st.composite
def fleets(draw, moving: bool = True):
    """Random small fleets; ``moving`` also draws per-period economics, price tiers and
    subscriptions sometimes (issue 15)."""
    T = draw(st.integers(1, 3))
    P = draw(st.integers(1, 3))
    S = draw(st.integers(1, 4))
    pools = []
    for j in range(P):
        pool = {
            "id": f"p{j}",
            "accelerator": TYPES[j % 3],
            "region": draw(st.sampled_from(["r1", "r2"])),
            "gpus": draw(st.lists(amount(100), min_size=T, max_size=T)),
            "variable_cost_per_gpu_hour": per_unit(draw, amount(2), T, moving),
        }
        if draw(st.booleans()):
            pool["rentable_gpus"] = draw(st.lists(amount(20), min_size=T, max_size=T))
            pool["rental_price_per_gpu_hour"] = per_unit(draw, amount(6), T, moving)
        pools.append(pool)
    types = sorted({p["accelerator"] for p in pools})
    segments = []
    for i in range(S):
        thr = {
            t: per_unit(draw, st.floats(0.1, 20), T, moving) for t in types if draw(st.booleans())
        } or {types[0]: 1.0}
        demand = draw(st.lists(amount(5000), min_size=T, max_size=T))
        seg = {
            "id": f"s{i}",
            "kind": draw(st.sampled_from(KINDS)),
            "demand": demand,
            "revenue_per_unit": per_unit(draw, money, T, moving),
            "ltv_per_unit": per_unit(draw, money, T, moving),
            "throughput": thr,
            "churn_cost_per_unit": per_unit(draw, amount(1), T, moving),
        }
        if draw(st.booleans()):
            seg["contract_min"] = [d * draw(st.floats(0, 1)) for d in demand]
            seg["shortfall_penalty_per_unit"] = per_unit(draw, money, T, moving)
        if draw(st.booleans()):
            seg["modes"] = [
                {"name": "full"},
                {
                    "name": "small",
                    "throughput_multiplier": per_unit(draw, st.floats(1, 4), T, moving),
                    "revenue_share": draw(st.floats(0, 1)),
                },
            ]
        if not moving:
            pass
        elif "modes" not in seg and "contract_min" not in seg and draw(st.integers(0, 5)) == 0:
            # a demand curve: tiers in falling price instead of one price (issue 15)
            prices = sorted(draw(st.lists(money, min_size=1, max_size=3)), reverse=True)
            seg["tiers"] = [
                {"units": draw(st.lists(amount(2000), min_size=T, max_size=T)), "price": p}
                for p in prices
            ]
            del seg["demand"], seg["revenue_per_unit"]
        elif "contract_min" not in seg and draw(st.integers(0, 5)) == 0:
            seg["subscription"] = {
                "subscribers": draw(st.lists(amount(1000), min_size=T, max_size=T)),
                "fee_per_subscriber": draw(money),
                "usage_per_subscriber": draw(st.floats(0.1, 5)),
                "ltv_loss_per_unit": draw(money),
                "min_service_share": draw(st.one_of(st.none(), st.floats(0, 1))),
            }
            del seg["demand"]
        segments.append(seg)
    policy = {"headroom": draw(st.floats(0, 0.3)), "ltv_weight": draw(st.floats(0, 2))}
    if T > 1 and draw(st.booleans()):
        policy["max_change_share"] = draw(st.floats(0.05, 1))
    if draw(st.booleans()):
        policy["max_segment_share"] = draw(st.floats(0.2, 1))
    return {
        "periods": [{"label": f"t{t}", "hours": draw(st.floats(1, 1000))} for t in range(T)],
        "discount_rate": draw(st.floats(0, 0.2)),
        "pools": pools,
        "segments": segments,
        "policy": policy,
    }


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(fleets())
def test_random_fleets_respect_every_requirement(data):
    plan = solve(data)  # no hard requirement: always feasible
    assert plan.status is Status.OPTIMAL
    assert plan.max_violation <= 1e-6, plan.violations
    for p in plan.pools:
        assert p.used <= p.usable + p.rented + 1e-6 * max(1, p.usable)
        assert p.shadow_price_per_gpu_hour >= 0
    t = plan.totals
    assert t.objective == pytest.approx(
        t.gross_margin + t.ltv_weight * t.ltv - t.churn_cost, rel=1e-6, abs=1e-6
    )


@SETTINGS
@given(fleets())
def test_random_fleets_strong_duality(data):
    lp = build_lp(solve.__globals__["as_scenario"](data))
    assert_optimal(lp, HighsSolver().solve(lp), tol=1e-6)
