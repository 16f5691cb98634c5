from __future__ import annotations

import pytest

from allocator import Scenario, ScenarioError, solve
from allocator.workflows.counterfactuals import counterfactual, seeds_case

from ..conftest import DATA, EXAMPLES


def tiny() -> Scenario:
    return Scenario.from_file(DATA / "tiny.json")


def test_capacity_from_a_period_is_worth_the_shadow_price():
    # +1 B200 GPU from P2 on: 100 GPU-hours at B200's P2 price of 14.5 (data/README.md)
    out = counterfactual(
        tiny(),
        {"transforms": [{"type": "capacity", "pool": "b200", "gpus": 1, "from_period": "P2"}]},
    )
    assert out["totals"]["objective"]["change"] == pytest.approx(1450)
    assert out["opportunity_cost"] == pytest.approx(-1450)
    assert out["by_kind"]["cloud"]["gpus_by_period"]["change"] == pytest.approx([0, 3])


def test_transforms_compose_in_order():
    both = counterfactual(
        tiny(),
        {
            "name": "both",
            "transforms": [
                {"type": "remove_segment", "segment": "chat"},
                {"type": "price", "target": "cloud", "factor": 2.0},
            ],
        },
    )
    assert set(both["by_kind"]) == {"cloud", "first_party"}
    assert both["by_kind"]["first_party"]["revenue"]["counterfactual"] == 0
    # cloud alone, at $8/unit: all 15 (P1) and 20 (P2) GPUs, on B200 first (2 units/GPU-hour)
    cloud = both["by_kind"]["cloud"]["revenue_by_period"]["counterfactual"]
    assert cloud == pytest.approx([8 * 1500, 8 * 3000])


def test_bad_transforms_name_the_field():
    with pytest.raises(ScenarioError) as info:
        counterfactual(tiny(), {"transforms": [{"type": "remove_segment", "segment": "nope"}]})
    assert info.value.issues[0].path == "transforms[0].segment"
    with pytest.raises(ScenarioError) as info:
        counterfactual(
            tiny(),
            {"transforms": [{"type": "capacity", "pool": "b200", "gpus": 1, "from_period": "P9"}]},
        )
    assert info.value.issues[0].path == "transforms[0].from_period"
    with pytest.raises(ScenarioError) as info:
        counterfactual(
            tiny(), {"transforms": [{"type": "scale_demand", "target": "x", "factor": 2}]}
        )
    assert info.value.issues[0].path == "transforms[0].demand_scale.x"
    with pytest.raises(ValueError):
        counterfactual(tiny(), {"transforms": [{"type": "teleport"}]})


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_priority_to_cloud_money_lines_add_up(path):
    sc = Scenario.from_file(path)
    base = solve(sc)
    out = counterfactual(sc, {"transforms": [{"type": "priority", "kind": "cloud"}]}, base)
    by_kind = out["by_kind"]
    for line in ("revenue", "gross_margin", "ltv"):
        # the rentals line (not by kind) carries the rental cost: the lines add up
        total = sum(k[line]["change"] for k in by_kind.values())
        assert total == pytest.approx(out["totals"][line]["change"], rel=1e-9, abs=1e-6)
    # the optimum is the best plan: any other choice earns no more
    assert out["opportunity_cost"] >= -1e-6 * abs(base.objective)
    assert out["opportunity_cost"] == pytest.approx(-out["totals"]["objective"]["change"])
    cloud = by_kind["cloud"]["revenue"]
    assert cloud["counterfactual"] >= cloud["base"] * (1 - 1e-9)


def test_seeds_case_on_the_hyperscaler():
    """Giving every new GPU to cloud customers grows cloud revenue faster in the last
    quarter, costs first-party margin, and costs the company more than cloud gains."""
    r = seeds_case(Scenario.from_file(DATA / "hyperscaler.json"))
    g = r["growth_last_period"]
    assert g["counterfactual"] > g["optimal"] > 0
    assert r["rival_margin_change"] < 0
    assert r["opportunity_cost"] > 0
    cloud_gain = r["comparison"]["by_kind"]["cloud"]["gross_margin"]["change"]
    assert cloud_gain > 0 and r["opportunity_cost"] > 0
