"""``count_columns(sc)`` (the API's size check before a synchronous solve) counts exactly
the columns ``build_lp`` makes: allocations x, rentals r, shortfalls u, purchases e,
reserved GPUs k, tier sales y and the integer unit columns nr, ne; GPU limits and
GPU-hour budgets add rows, not columns.

Hand count: one period, one H100 pool renting up to 8 GPUs in whole 8-GPU nodes and
buying up to 16 in whole nodes, one segment with two modes and a reservation offer, one
soft contract: x 2, r 1, u 1, e 1, k 1, nr 1, ne 1 = 8 columns.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import build_lp
from allocator.lp.build import count_columns
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from tests.test_properties import amount, fleets


def hand() -> dict:
    return {
        "periods": [{"label": "t0", "hours": 1}],
        "pools": [
            {
                "id": "p",
                "accelerator": "H100",
                "region": "r",
                "gpus": [8],
                "variable_cost_per_gpu_hour": 0.0,
                "rentable_gpus": [8],
                "rental_price_per_gpu_hour": 1.0,
                "rental_unit_gpus": 8,
                "expansion": {"max_gpus": 16, "cost_per_gpu_hour": 1.0, "unit_gpus": 8},
            }
        ],
        "segments": [
            {
                "id": "s",
                "kind": "cloud",
                "demand": [10],
                "contract_min": [5],
                "shortfall_penalty_per_unit": 1.0,
                "revenue_per_unit": 1.0,
                "throughput": {"H100": 1},
                "modes": [{"name": "full"}, {"name": "fast", "throughput_multiplier": 2}],
                "reservation": {"max_gpus": 4, "price_per_gpu_hour": 2.0},
                "gpu_limits": [{"max_gpus": 12, "min_gpus": 1}],
            }
        ],
        "policy": {"gpu_hour_budgets": [{"id": "b", "segment": "s", "max_gpu_hours": 10}]},
    }


def test_hand_count():
    sc = Scenario.from_dict(hand())
    lp = build_lp(sc)
    assert lp.num_cols == 8
    assert count_columns(sc) == 8
    assert int(lp.integrality.sum()) == 2  # nr and ne


def test_every_example(example_scenario):
    assert count_columns(example_scenario) == build_lp(example_scenario).num_cols


@st.composite
def busy_fleets(draw):
    """fleets() (tiers, subscriptions, contracts, modes, rentals) with, now and then, each
    newer feature: whole-unit rentals and purchases, reservations, GPU limits, budgets."""
    data = draw(fleets())
    T = len(data["periods"])
    labels = [p["label"] for p in data["periods"]]
    for pool in data["pools"]:
        if any(pool.get("rentable_gpus", [])) and draw(st.booleans()):
            pool["rental_unit_gpus"] = draw(st.sampled_from([1, 8]))
        if draw(st.booleans()):
            pool["expansion"] = {"max_gpus": draw(st.floats(1, 50)), "cost_per_gpu_hour": 1.0}
            if draw(st.booleans()):
                pool["expansion"]["unit_gpus"] = draw(st.sampled_from([1, 4]))
            if T > 1 and draw(st.booleans()):
                pool["expansion"]["from_period"] = labels[draw(st.integers(1, T - 1))]
    for seg in data["segments"]:
        if draw(st.integers(0, 2)) == 0:
            seg["reservation"] = {
                "max_gpus": draw(
                    st.one_of(amount(10), st.lists(amount(10), min_size=T, max_size=T))
                ),
                "price_per_gpu_hour": 2.0,
            }
        if draw(st.integers(0, 2)) == 0:
            seg["gpu_limits"] = [{"max_gpus": draw(amount(50))}]
    if draw(st.booleans()):
        data["policy"]["gpu_hour_budgets"] = [
            {"id": "b0", "segment": data["segments"][0]["id"], "max_gpu_hours": 1000.0}
        ]
    return data


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(busy_fleets())
def test_random_fleets(data):
    sc = as_scenario(data)
    assert count_columns(sc) == build_lp(sc).num_cols
