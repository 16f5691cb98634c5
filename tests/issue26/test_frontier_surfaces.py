"""Issue 26 item 2: the frontier drawn for a chart keeps the current plan on its line, and
the CLI's frontier table says what its margin column holds, marks the plan, groups rows."""

from __future__ import annotations

import itertools

import pytest

from allocator.analysis.frontier import frontier, thin
from allocator.cli import main
from allocator.scenario import Scenario
from tests.conftest import DATA


def test_thin_drops_the_flattest_vertices_and_keeps_the_protected_ones():
    """Triangle areas (raw units; scaling the axes multiplies them all alike) of
    (0,0) (1,1) (2,2) (3,2.5) (4,2.6) (5,2.6): at 1: 0 (collinear), at 2: 0.25, at 3: 0.2,
    at 4: 0.05. Without 1, the triangle at 2 is (0,0)-(2,2)-(3,2.5): 0.5."""
    xy = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 2.5), (4.0, 2.6), (5.0, 2.6)]
    assert thin(xy, keep={0, 5}, max_points=5) == [0, 2, 3, 4, 5]
    assert thin(xy, keep={0, 5}, max_points=4) == [0, 2, 3, 5]
    assert thin(xy, keep={0, 1, 5}, max_points=5) == [0, 1, 2, 3, 5]
    assert thin(xy, keep={0, 1, 4, 5}, max_points=4) == [0, 1, 4, 5]
    assert thin(xy, keep={0, 5}, max_points=10) == list(range(6))
    assert thin(xy, keep=set(range(6)), max_points=2) == list(range(6))  # nothing free


@pytest.fixture(scope="module")
def hyperscaler_frontier():
    return frontier(Scenario.from_file(DATA / "hyperscaler.json"))


def test_drawn_frontier_keeps_the_plan_and_its_neighbours(hyperscaler_frontier):
    f = hyperscaler_frontier
    drawn = f.drawn()
    assert len(f.points) == 166 and len(drawn) == 40
    assert drawn == sorted(drawn) and drawn[0] == 0 and drawn[-1] == len(f.points) - 1
    k = f.current_point
    assert {k - 1, k, k + 1} <= set(drawn)
    assert f.points[k].weight_low <= 1.0 <= f.points[k].weight_high
    assert f.to_dict()["drawn"] == drawn


def test_cli_frontier_labels_margin_minus_churn_marks_the_plan_and_groups(capsys):
    assert main(["frontier", str(DATA / "hyperscaler.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gross margin − churn (USD)" in lines[1] and "plans" in lines[1]
    marked = [ln for ln in lines if "this plan" in ln]
    assert len(marked) == 1 and "14.60B" in marked[0] and "5.52B" in marked[0]
    rows = lines[3:]
    cells = [ln.split("←")[0].split()[-3:] for ln in rows]  # margin, LTV, plans
    shown = [(m, v) for m, v, _ in cells]
    assert all(a != b for a, b in itertools.pairwise(shown))  # equal rows grouped
    assert sum(int(n) for *_, n in cells) == 166  # ... and counted
