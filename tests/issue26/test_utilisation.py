"""Issue 26 item 7: a pool with no GPUs in a period has no utilisation on any surface (the
text summary, the notebook chart, the workbook; the page: tests/web), and the summary's
top opportunity costs leave such pool-periods out and say so."""

from __future__ import annotations

import io
import json

import pytest

from allocator import Scenario, solve
from allocator.plan.report import summary
from allocator.plan.workbook import write_plan_workbook
from tests.conftest import DATA


@pytest.fixture(scope="module")
def empty_plan():
    """tiny with b200 holding 5 GPUs in P1 and none in P2: every GPU is used where there
    are any (the capacity rows bind: 100 %); b200 in P2 has a price (16 USD: what a first
    GPU would earn) but no GPUs."""
    d = json.loads((DATA / "tiny.json").read_text())
    d["pools"][1]["gpus"] = [5, 0]
    return solve(Scenario.from_dict(d))


def test_summary_averages_only_periods_with_gpus_and_skips_empty_prices(empty_plan):
    text = summary(empty_plan)
    b200 = next(ln for ln in text.splitlines() if ln.strip().startswith("b200") and "%" in ln)
    assert "100%" in b200  # P1 only; (100 % + 0 %) / 2 = 50 % before
    head = next(ln for ln in text.splitlines() if ln.startswith("Top opportunity costs"))
    assert "1 pool-period without GPUs left out" in head
    top = text.split(head)[1].split("\n\n")[0]
    assert "b200  P2" not in top and "16.000" not in top


def test_chart_is_a_heatmap_with_a_gap_and_axis_titles(empty_plan):
    fig = empty_plan.plot("utilisation")
    (trace,) = fig.data
    assert trace.type == "heatmap"
    z = {(p, t): trace.z[i][j] for i, p in enumerate(trace.y) for j, t in enumerate(trace.x)}
    assert z[("b200", "P2")] is None and z[("b200", "P1")] == pytest.approx(100)
    assert fig.layout.xaxis.title.text == "period" and fig.layout.yaxis.title.text == "pool"
    prices = empty_plan.plot("prices")
    assert prices.layout.xaxis.title.text == "period"
    html = empty_plan._repr_html_()
    assert "<td>b200</td><td>P2</td>" not in html  # the dearest GPU-hours skip it too


def test_workbook_leaves_utilisation_blank_without_gpus(empty_plan):
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(write_plan_workbook(empty_plan)))
    ws = wb["Pools"]
    head = [c.value for c in ws[1]]
    rows = [dict(zip(head, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    col = "use of usable capacity"
    b200 = {r["period"]: r for r in rows if r["pool"] == "b200"}
    assert b200["P2"][col] is None and b200["P1"][col] == pytest.approx(1.0)
    assert b200["P2"]["utilisation (of own + rented GPUs)"] is None
