"""explain() agrees with the solution: GPUs only where a GPU-hour is worth at least the
pool's price, none where it is worth less, wherever nothing else binds."""

from __future__ import annotations

import pytest

from allocator import Scenario, solve
from allocator.analysis.explain import explain

from ..conftest import DATA, EXAMPLES

COUPLING = {"segment-stability", "segment-share", "kind-cap", "kind-floor", "rnd-floor"}


def test_tiny_explained_by_hand():
    sc = Scenario.from_file(DATA / "tiny.json")
    plan = solve(sc)
    ex = explain(sc, "chat", plan)
    v = {(r.pool, r.period): r for r in ex.values}
    assert v[("b200", "P1")].value_per_gpu_hour == pytest.approx(16.0)  # 0.6 * 30 - 2
    assert v[("h100", "P1")].value_per_gpu_hour == pytest.approx(5.0)
    assert v[("b200", "P1")].shadow_price_per_gpu_hour == pytest.approx(10.0)
    assert v[("b200", "P2")].gpus == pytest.approx(10.0)
    demand = [b for b in ex.binding if b.constraint == "segment-demand"]
    assert [b.dual for b in demand] == pytest.approx([0.2, 0.05])
    assert "one more unit of demand would be worth 0.20" in ex.text
    cloud = explain(sc, "cloud", plan)
    p2 = {(r.pool, r.period): r for r in cloud.values}[("h100", "P2")]
    # short of its contract: each unit also avoids the 1.5 credit: 4 - 1 + 1.5 = 4.5
    assert p2.effective_value_per_gpu_hour == pytest.approx(4.5)
    assert p2.margin_over_price == pytest.approx(0.0)
    assert "gets nothing on b200" in cloud.sentences[0]
    with pytest.raises(KeyError, match="no segment"):
        explain(sc, "nobody", plan)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_gpus_only_where_worth_the_price(path):
    sc = Scenario.from_file(path)
    plan = solve(sc)
    checked = 0
    for seg in sc.segments:
        ex = explain(sc, seg.id, plan)
        coupled = {b.key.get("period") for b in ex.binding if b.constraint in COUPLING}
        coupled |= {None} if any("period" not in b.key for b in ex.binding) else set()
        # a stability row of period t also holds the allocation of t - 1
        labels = sc.period_labels
        coupled |= {
            labels[labels.index(b.key["period"]) - 1]
            for b in ex.binding
            if b.constraint == "segment-stability" and b.key.get("period") in labels[1:]
        }
        demand_binds = {b.key["period"] for b in ex.binding if b.constraint == "segment-demand"}
        for v in ex.values:
            if v.period in coupled or v.shadow_price_per_gpu_hour is None:
                continue
            # compare per GPU-hour; relative tolerance for large numbers
            tol = 1e-6 * max(1.0, abs(v.shadow_price_per_gpu_hour))
            if v.gpus > 1e-6:
                assert v.effective_value_per_gpu_hour >= v.shadow_price_per_gpu_hour - tol, v
                checked += 1
            elif v.period not in demand_binds:
                assert v.effective_value_per_gpu_hour <= v.shadow_price_per_gpu_hour + tol, v
                checked += 1
    assert checked > 0


def test_the_mode_shown_is_the_one_the_plan_uses():
    """One H100 pool (10 GPUs x 100 h, no variable cost). chat: 1,000 Mtok at 1 per Mtok,
    2 Mtok per GPU-hour in mode `full`, or 4 in `fast` keeping 60 % of revenue: fast earns
    more per GPU-hour (2.4 against 2), full more per Mtok. cloud pays 1.5 per GPU-hour for
    all it can get, so a GPU-hour is worth 1.5 (the price). Per Mtok, full earns
    1 - 0.5 h x 1.5 = 0.25 net of the GPU-hours it takes, fast 0.6 - 0.25 x 1.5 = 0.225:
    chat is served in full on 500 GPU-hours (5 GPUs), cloud gets the other 500. Objective
    1,000 + 750 = 1,750 (all fast: 600 + 750 x 1.5 = 1,725). Explain shows full's 2.0
    against the price of 1.5 (= 1.5 + 2 Mtok x the demand dual 0.25), not fast's 2.4."""
    sc = Scenario.from_dict(
        {
            "name": "modes",
            "periods": [{"label": "P1", "hours": 100}],
            "pools": [
                {
                    "id": "h100",
                    "accelerator": "H100",
                    "region": "east",
                    "gpus": [10],
                    "variable_cost_per_gpu_hour": 0.0,
                }
            ],
            "segments": [
                {
                    "id": "chat",
                    "kind": "first_party",
                    "unit": "Mtok",
                    "demand": [1000],
                    "revenue_per_unit": 1.0,
                    "throughput": {"H100": 2},
                    "modes": [
                        {"name": "full"},
                        {"name": "fast", "throughput_multiplier": 2.0, "revenue_share": 0.6},
                    ],
                },
                {
                    "id": "cloud",
                    "kind": "cloud",
                    "unit": "H100-hour",
                    "demand": [5000],
                    "revenue_per_unit": 1.5,
                    "throughput": {"H100": 1},
                },
            ],
        }
    )
    plan = solve(sc)
    assert plan.objective == pytest.approx(1750.0)
    (v,) = explain(sc, "chat", plan).values
    assert (v.mode, v.gpus) == ("full", pytest.approx(5.0))
    assert v.value_per_gpu_hour == pytest.approx(2.0)
    assert v.shadow_price_per_gpu_hour == pytest.approx(1.5)
    assert "it gets 5.0 GPUs (full)" in explain(sc, "chat", plan).text


def test_a_tiered_segment_is_priced_at_its_marginal_tier():
    """tests/test_tiers_subscriptions.py's fleet: api's demand curve is 4 units at 10, 4 at
    6 (LTV 1), 10 at 2; chat pays 3 for any number; 1 unit per GPU-hour, 1 hour, no
    variable cost; 10 GPUs in P0, 5 in P1. P0: api serves tiers 0 and 1 in full (8 units),
    so its marginal tier is tier 1 and a GPU-hour is worth 6 + 1 = 7 to it, against the
    pool's price of 3 (chat's, which takes the other 2 GPUs). P1: api takes all 5 GPUs, 1
    unit into tier 1: marginal tier 1 again, value 7 = the pool's price. The segment's own
    revenue_per_unit is 0 and would have given 0 + 0 = 0 (LTV defaults to 0)."""
    from tests.test_tiers_subscriptions import API_TIERS, CHAT, fleet

    sc = Scenario.from_dict(fleet([10.0, 5.0], [API_TIERS, CHAT]))
    plan = solve(sc)
    ex = explain(sc, "api", plan)
    v = {r.period: r for r in ex.values}
    assert v["P0"].value_per_gpu_hour == pytest.approx(7.0)
    assert v["P0"].shadow_price_per_gpu_hour == pytest.approx(3.0)
    assert v["P1"].value_per_gpu_hour == pytest.approx(7.0)
    assert v["P1"].margin_over_price == pytest.approx(0.0)
    assert [(p.marginal_tier, p.tier_price) for p in ex.periods] == [(1, 6.0), (1, 6.0)]
    assert "priced at its marginal tier (tier 1): 6.00 USD" in ex.sentences[0]
    assert "marginal tier (tier 1)" in ex.table_text
    # a segment without tiers says nothing of tiers
    assert all(p.marginal_tier is None for p in explain(sc, "chat", plan).periods)


def test_nothing_served_prices_a_tiered_segment_at_its_first_tier():
    """No GPUs: nothing is served, the marginal tier is the first (10, no LTV)."""
    from tests.test_tiers_subscriptions import API_TIERS, fleet

    sc = Scenario.from_dict(fleet([0.0, 0.0], [API_TIERS]))
    ex = explain(sc, "api", solve(sc))
    assert {(p.marginal_tier, p.tier_price) for p in ex.periods} == {(0, 10.0)}
    assert [v.value_per_gpu_hour for v in ex.values] == pytest.approx([10.0, 10.0])
