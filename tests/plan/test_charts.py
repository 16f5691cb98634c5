from __future__ import annotations

import sys

import pytest

from allocator import solve


@pytest.fixture
def example_plan(example_scenario):
    return solve(example_scenario)


def test_html_summary(example_plan):
    out = example_plan._repr_html_()
    assert out.startswith("<div class='allocator-plan'>")
    assert f"Plan for {example_plan.scenario}" in out
    for line in example_plan.by_kind.values():  # each kind, and rentals (not by kind)
        assert f"<td>{line.kind}</td>" in out


@pytest.mark.parametrize("chart", ["allocation", "prices", "utilisation", "margins"])
def test_plots_hold_the_plan(example_plan, chart):
    fig = example_plan.plot(chart)
    assert len(fig.data) > 0
    if chart == "allocation":
        total = sum(sum(trace.y) for trace in fig.data)
        assert total == pytest.approx(sum(a.gpus for a in example_plan.allocations))
    if chart == "prices":
        assert len(fig.data[0].z) == len({p.pool for p in example_plan.pools})


def test_plot_by_pool_and_region_and_errors(example_plan, monkeypatch):
    pools = example_plan.plot("allocation", by="pool")
    assert {t.name for t in pools.data} <= {p.pool for p in example_plan.pools}
    regions = example_plan.plot("allocation", by="region")
    assert sum(sum(t.y) for t in regions.data) == pytest.approx(sum(sum(t.y) for t in pools.data))
    with pytest.raises(ValueError, match="chart must be"):
        example_plan.plot("pie")
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"needs plotly"):
        example_plan.plot()
