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
