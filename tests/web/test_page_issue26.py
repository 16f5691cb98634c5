"""Issue 26, "Every surface tells the same story": the page's frontier, what-if, explain,
compare and start-up in headless Chromium (see test_browser.py)."""

from __future__ import annotations

import json

import pytest

from ..api.test_server import ROOT, Server
from .test_browser import ARGS, CHROMIUM, pytestmark  # noqa: F401
from .test_page_planner import KEY, open_page, run_plan


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("web26") / "web.db", ALLOCATOR_API_KEY="page-key").start()
    hyper = json.loads((ROOT / "data" / "hyperscaler.json").read_text())
    status, _, out = s.request("PUT", "/v1/scenarios/hyper", hyper, headers=KEY)
    assert status == 201, out
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is required in CI: .ci/run installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_the_plan_lies_on_the_drawn_exact_frontier(browser, server):
    """hyperscaler's frontier has 166 vertices; the plan (LTV weight 1) is one of them. The
    page draws the exact frontier thinned to at most 40 points, keeping the plan's own
    point: the star sits on the line (a sampled 12-weight frontier drew 7 points with the
    plan visibly above it)."""
    pg = open_page(browser, server)
    run_plan(pg, "hyper")
    data = pg.evaluate("document.getElementById('chart-frontier').data")
    line, star = data[0], data[1]
    assert "exact" in line["name"] and "166" in line["name"]
    assert 3 <= len(line["x"]) <= 40
    x, y = star["x"][0], star["y"][0]
    xs, ys = line["x"], line["y"]
    assert xs == sorted(xs)
    k = next(i for i in range(len(xs) - 1) if xs[i] <= x <= xs[i + 1])
    on_line = ys[k] + (ys[k + 1] - ys[k]) * (x - xs[k]) / (xs[k + 1] - xs[k] or 1.0)
    assert y == pytest.approx(on_line, rel=1e-9)
    assert any(abs(a - x) <= 1e-6 * abs(x) for a in xs)  # the plan's own vertex is drawn
    assert pg.errors == []  # type: ignore[attr-defined]
