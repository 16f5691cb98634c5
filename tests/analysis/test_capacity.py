"""Buy, rent or leave idle, with numbers checked by hand on data/tiny.json.

tiny.json (see data/README.md): 100-hour periods, no discounting, no headroom. Shadow
prices per GPU-hour: h100 3 (P1) and 4.5 (P2, cloud short of its contract: 3 + the 1.5
penalty), b200 10 and 14.5. Fixed costs (depreciation) 2 (h100) and 4 (b200) per GPU-hour.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from allocator import Scenario, solve
from allocator.analysis.capacity import (
    BUY,
    FULLY_USED,
    LEAVE_IDLE,
    RECOMMENDATIONS,
    RENT_AS_NEEDED,
    RENT_MORE,
    CapacityValue,
    capacity_table,
    capacity_value,
)


def rows_of(data: dict[str, Any], **kw: Any) -> dict[tuple[str, str], CapacityValue]:
    sc = Scenario.from_dict(data)
    return {(r.pool, r.period): r for r in capacity_value(solve(sc), sc, **kw)}


def test_tiny_values_and_default_buy(tiny_dict: dict[str, Any]) -> None:
    rows = rows_of(tiny_dict)
    expected = {  # shadow price, value of one more GPU, purchase (fixed cost) per GPU
        ("h100", "P1"): (3.0, 300.0, 200.0),
        ("h100", "P2"): (4.5, 450.0, 200.0),
        ("b200", "P1"): (10.0, 1000.0, 400.0),
        ("b200", "P2"): (14.5, 1450.0, 400.0),
    }
    assert rows.keys() == expected.keys()
    for k, (price, value, purchase) in expected.items():
        r = rows[k]
        assert r.shadow_price_per_gpu_hour == pytest.approx(price)
        assert r.value_per_gpu == pytest.approx(value)
        assert r.value_per_owned_gpu == pytest.approx(value)  # no headroom, no R&D floor
        assert r.purchase_price_source == "fixed_cost"
        assert r.purchase_cost_per_gpu == pytest.approx(purchase)
        assert r.buy_value_per_gpu == pytest.approx(value - purchase)
        assert r.fixed_cost_per_gpu == pytest.approx(purchase)
        assert r.rental_price_per_gpu_hour is None and r.rental_cost_per_gpu is None
        assert r.periods_worth_buying == 2
        assert r.recommendation == BUY
        assert r.surplus == pytest.approx(0.0)


def test_buy_needs_most_periods(tiny_dict: dict[str, Any]) -> None:
    """At 4 per GPU-hour an h100 pays only in P2 (4.5), a b200 at 12 only in P2 (14.5):
    one period of two is not most."""
    rows = rows_of(tiny_dict, purchase_price_per_gpu_hour={"H100": 4.0, "b200": 12.0})
    for k in rows:
        assert rows[k].recommendation == FULLY_USED
        assert rows[k].periods_worth_buying == 1
        assert rows[k].purchase_price_source == "input"
    assert rows[("h100", "P1")].buy_value_per_gpu == pytest.approx(300 - 400)
    assert rows[("b200", "P2")].buy_value_per_gpu == pytest.approx(1450 - 1200)
    assert "no rental is offered" in rows[("h100", "P1")].reason
    # a pool id beats its accelerator type; buy_share 0 makes one period enough
    rows = rows_of(tiny_dict, purchase_price_per_gpu_hour={"H100": 4.0, "h100": 1.0}, buy_share=0.0)
    assert rows[("h100", "P1")].purchase_price_per_gpu_hour == 1.0
    assert rows[("b200", "P1")].purchase_price_source == "fixed_cost"


def test_rent_more_when_rentals_are_exhausted(tiny_dict: dict[str, Any]) -> None:
    """2 rentable h100 GPUs at 2.5 per GPU-hour: cloud earns 3 (P1) and 4.5 (P2) per
    GPU-hour on them, so both are rented and one more would earn 0.5 and 2 more than its
    rent: 50 and 200 per GPU over the period."""
    tiny_dict["pools"][0].update(rentable_gpus=[2, 2], rental_price_per_gpu_hour=2.5)
    rows = rows_of(tiny_dict, purchase_price_per_gpu_hour=10.0)
    for period, worth in (("P1", 50.0), ("P2", 200.0)):
        r = rows[("h100", period)]
        assert r.rented == pytest.approx(2.0) and r.rental_exhausted
        assert r.rental_cost_per_gpu == pytest.approx(250.0)
        assert r.recommendation == RENT_MORE
        assert r.rent_more_value_per_gpu == pytest.approx(worth)
    # with the default proxy (fixed cost 2 per GPU-hour) buying also pays: said, not chosen
    r = rows_of(tiny_dict)[("h100", "P1")]
    assert r.recommendation == RENT_MORE and "buying also pays" in r.reason


def test_not_worth_renting_then_rent_more(tiny_dict: dict[str, Any]) -> None:
    """At 3.5 per GPU-hour renting does not pay in P1 (a GPU earns 3) but does in P2 (4.5,
    cloud short of its contract even with both rented GPUs)."""
    tiny_dict["pools"][0].update(rentable_gpus=[2, 2], rental_price_per_gpu_hour=3.5)
    rows = rows_of(tiny_dict, purchase_price_per_gpu_hour=10.0)
    p1, p2 = rows[("h100", "P1")], rows[("h100", "P2")]
    assert p1.rented == pytest.approx(0.0) and p1.recommendation == FULLY_USED
    assert p1.rent_more_value_per_gpu is None
    assert p2.recommendation == RENT_MORE
    assert p2.rent_more_value_per_gpu == pytest.approx(100.0)


def test_rent_as_needed_when_renting_is_the_marginal_supply(tiny_dict: dict[str, Any]) -> None:
    """10 rentable h100 GPUs in P2 at 4: cloud rents until its contract (1,200 units) is met,
    7 GPUs, and the h100 shadow price equals the rental price."""
    tiny_dict["pools"][0].update(rentable_gpus=[0, 10], rental_price_per_gpu_hour=4.0)
    rows = rows_of(tiny_dict, purchase_price_per_gpu_hour=10.0)
    r = rows[("h100", "P2")]
    assert r.rented == pytest.approx(7.0) and not r.rental_exhausted
    assert r.shadow_price_per_gpu_hour == pytest.approx(4.0)
    assert r.value_per_gpu == pytest.approx(r.rental_cost_per_gpu)
    assert r.recommendation == RENT_AS_NEEDED
    assert rows[("h100", "P1")].rental_price_per_gpu_hour is None  # nothing rentable in P1


def test_leave_idle_when_demand_is_short(tiny_dict: dict[str, Any]) -> None:
    tiny_dict["segments"][0]["demand"] = [3000, 3000]  # chat: 1 b200 GPU of work
    tiny_dict["segments"][1].update(demand=[100, 100], contract_min=[0, 100])
    rows = rows_of(tiny_dict)
    for r in rows.values():
        assert r.shadow_price_per_gpu_hour == pytest.approx(0.0)
        assert r.recommendation == LEAVE_IDLE
        assert r.surplus > 0 and "idle" in r.reason
        assert r.periods_worth_buying == 0


def test_owned_gpu_pays_headroom_and_raises_the_rnd_floor(tiny_dict: dict[str, Any]) -> None:
    """An R&D floor of 20% of the fleet (3 GPUs in P1, 4 in P2) filled by a segment losing
    0.5 per GPU-hour on h100 costs 3 + 0.5 (P1) and 4.5 + 0.5 (P2) per GPU-hour of floor:
    an owned GPU also raises the floor by 0.2 GPU."""
    tiny_dict["policy"] = {"rnd_min_share": 0.2}
    tiny_dict["segments"].append(
        {"id": "train", "kind": "rnd", "unit": "GPU-hour", "demand": [1000, 1000],
         "revenue_per_unit": 0.5, "throughput": {"H100": 1}}
    )  # fmt: skip
    rows = rows_of(tiny_dict)
    assert rows[("h100", "P1")].value_per_gpu == pytest.approx(300.0)
    assert rows[("h100", "P1")].value_per_owned_gpu == pytest.approx(300 - 0.2 * 350)
    assert rows[("h100", "P2")].value_per_owned_gpu == pytest.approx(450 - 0.2 * 500)
    assert rows[("b200", "P1")].value_per_owned_gpu == pytest.approx(1000 - 0.2 * 350)

    tiny_dict["policy"] = {"headroom": 0.1}
    tiny_dict["segments"].pop()
    rows = rows_of(tiny_dict)
    r = rows[("h100", "P1")]
    assert r.value_per_gpu == pytest.approx(300.0)
    assert r.value_per_owned_gpu == pytest.approx(270.0)  # 90% of a new GPU is usable


def test_example_rows_are_consistent() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "data" / "hyperscaler.json"
    sc = Scenario.from_file(path)
    plan = solve(sc)
    rows = capacity_value(plan, sc)
    assert len(rows) == len(sc.pools) * len(sc.periods)
    hours = {p.label: p.hours for p in sc.periods}
    for r in rows:
        assert r.recommendation in RECOMMENDATIONS
        assert r.value_per_gpu == pytest.approx(r.shadow_price_per_gpu_hour * hours[r.period])
        if r.recommendation == RENT_MORE:
            assert r.rental_exhausted and r.rent_more_value_per_gpu is not None
            assert r.rent_more_value_per_gpu > 0
        if r.recommendation == LEAVE_IDLE:
            assert r.shadow_price_per_gpu_hour == pytest.approx(0.0, abs=1e-6)
        if r.rental_price_per_gpu_hour is None:
            assert r.recommendation not in (RENT_MORE, RENT_AS_NEEDED)
        if r.recommendation == BUY:
            assert r.buy_value_per_gpu is not None and r.buy_value_per_gpu > 0
            assert r.periods_worth_buying > len(sc.periods) / 2
    out = json.loads(json.dumps([r.to_dict() for r in rows]))
    assert out[0]["pool"] == sc.pools[0].id
    table = capacity_table(rows)
    assert table.splitlines()[0].startswith("pool") and sc.pools[0].id in table


def test_bad_inputs_raise_clear_errors(tiny_scenario: Scenario, tiny_dict: dict) -> None:
    plan = solve(tiny_scenario)
    with pytest.raises(ValueError, match="neither a pool id nor an accelerator"):
        capacity_value(plan, tiny_scenario, purchase_price_per_gpu_hour={"TPU": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        capacity_value(plan, tiny_scenario, purchase_price_per_gpu_hour=-1.0)
    with pytest.raises(ValueError, match="buy_share"):
        capacity_value(plan, tiny_scenario, buy_share=1.0)
    tiny_dict["pools"][0]["id"] = "other"
    with pytest.raises(ValueError, match="not made from scenario"):
        capacity_value(plan, Scenario.from_dict(tiny_dict))
