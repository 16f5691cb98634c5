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
