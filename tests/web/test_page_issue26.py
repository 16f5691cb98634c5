"""Issue 26, "Every surface tells the same story": the page's frontier, what-if, explain,
compare and start-up in headless Chromium (see test_browser.py)."""

from __future__ import annotations

import json

import pytest

from ..api.test_server import ROOT, Server
from .test_browser import pytestmark  # noqa: F401
from .test_page_planner import KEY, open_page, run_plan


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("web26") / "web.db", ALLOCATOR_API_KEY="page-key").start()
    hyper = json.loads((ROOT / "data" / "hyperscaler.json").read_text())
    status, _, out = s.request("PUT", "/v1/scenarios/hyper", hyper, headers=KEY)
    assert status == 201, out
    yield s
    s.stop()


def test_the_page_opens_on_a_plan_not_empty_charts(browser, server):
    """The module's first page: no plan in the store, so the page starts the first
    scenario's plan and shows it; until a plan is there, no empty chart frames. The
    largest violation is a footnote, not a headline card."""
    pg = open_page(browser, server)
    pg.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('solved')",
        timeout=60_000,
    )
    assert pg.evaluate("document.getElementById('charts').hidden") is False
    assert pg.evaluate("(document.getElementById('chart-gpus').data || []).length") > 0
    kpis = pg.eval_on_selector_all("#kpis .label", "l => l.map(x => x.textContent)")
    assert "Max violation" not in kpis and kpis[0] == "Objective (PV)"
    assert "largest constraint violation 0.000000" in pg.text_content("#plan-note")
    # a second visitor opens on the scenario of the latest finished plan, without a new run
    first = pg.input_value("#scenario")
    pg.context.close()
    pg = open_page(browser, server)
    pg.wait_for_function("() => /^plan /.test(document.querySelector('#status').textContent)")
    assert pg.input_value("#scenario") == first
    # a scenario without a plan: a hint, not five empty frames
    status, _, _ = server.request(
        "PUT",
        "/v1/scenarios/fresh",
        json.loads((ROOT / "data" / "tiny.json").read_text()),
        headers=KEY,
    )
    assert status == 201
    pg.evaluate("loadScenarios('fresh')")
    pg.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('no plan yet')"
    )
    assert pg.evaluate("document.getElementById('charts').hidden") is True
    assert pg.evaluate("document.getElementById('no-plan').hidden") is False
    pg.context.close()


def test_errors_once_near_the_upload_with_and_n_more(browser, server, tmp_path):
    """An upload with 12 problems: the status line next to the upload control lists 3 and
    says "and 9 more"; nothing else on the page repeats them."""
    pg = open_page(browser, server)
    d = json.loads((ROOT / "data" / "tiny.json").read_text())
    d["segments"][0]["demand"] = [-1, -2]
    d["segments"][1]["demand"] = [-1, -2]
    d["pools"][0]["gpus"] = [-1, -2]
    d["pools"][1]["gpus"] = [-1, -2]
    d["pools"][0]["variable_cost_per_gpu_hour"] = -1
    d["pools"][1]["variable_cost_per_gpu_hour"] = -1
    d["segments"][0]["revenue_per_unit"] = -1
    d["segments"][1]["revenue_per_unit"] = -1
    f = tmp_path / "broken.json"
    f.write_text(json.dumps(d))
    status, _, body = server.request("PUT", "/v1/scenarios/broken-probe", d, headers=KEY)
    n = len(json.loads(body)["errors"])
    assert status == 422 and n > 3
    pg.set_input_files("#upload", str(f))
    pg.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
    text = pg.text_content("#status")
    assert f"and {n - 3} more" in text
    first = json.loads(body)["errors"][0]["path"]
    assert pg.evaluate("(p) => document.body.innerText.split(p).length - 1", first) == 1
    assert pg.text_content("#problem") == ""
    pg.context.close()


def test_editor_is_a_table_of_numbers_per_period_with_units(browser, server):
    pg = open_page(browser, server)
    pg.select_option("#scenario", "fresh")
    pg.wait_for_function("() => document.querySelector('#scenario').value === 'fresh'")
    pg.click("#editor summary")
    pg.wait_for_selector("#editor-body input[data-pool='0'][data-period='1']")
    heads = pg.eval_on_selector_all("#editor-body th", "h => h.map(x => x.textContent)")
    assert "revenue (USD per unit)" in heads and heads.count("P2") == 2
    units = pg.eval_on_selector_all("#editor-body td.unit", "c => c.map(x => x.textContent)")
    assert units == ["Mtok", "H100-hour"]
    kinds = pg.eval_on_selector_all(
        "#editor-body input[data-period]", "i => [...new Set(i.map(x => x.type))]"
    )
    assert kinds == ["number"]
    pg.fill("#editor-body input[data-demand='0'][data-period='1']", "30000")
    pg.click("#editor-save")
    pg.wait_for_function(
        "() => document.querySelector('#editor-status').textContent.startsWith('saved')"
    )
    _, _, body = server.request("GET", "/v1/scenarios/fresh", headers=KEY)
    sc = json.loads(body)["scenario"]
    assert sc["segments"][0]["demand"] == [20000, 30000] and sc["pools"][0]["gpus"] == [10, 10]
    pg.context.close()


def test_plotly_is_served_compressed_and_downloads_are_named_after_the_scenario(server):
    import gzip

    status, headers, body = server.get(
        "/static/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    plain = server.get("/static/vendor/plotly.min.js")[2]
    assert gzip.decompress(body) == plain and len(body) < len(plain) / 2
    _, _, out = server.request("GET", "/v1/plans?status=done&limit=1", headers=KEY)
    job = json.loads(out)["items"][0]
    pid, sid = job["id"], job["scenario_id"]
    for path, name in (
        (f"/v1/plans/{pid}/plan", f"{sid}-plan-{pid[:8]}.json"),
        (f"/v1/plans/{pid}/plan?format=xlsx", f"{sid}-plan-{pid[:8]}.xlsx"),
        (f"/v1/plans/{pid}/allocations?format=csv", f"{sid}-allocations-{pid[:8]}.csv"),
    ):
        status, headers, _ = server.get(path, headers=KEY)
        assert status == 200 and f'filename="{name}"' in headers["content-disposition"], path


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


def test_what_if_separates_demand_from_contracts_and_colours_by_effect(browser, server):
    """tiny: cloud's demand × 2 alone changes nothing (the plan serves cloud its contract
    minimum, 1,200 H100-hours in P2, and no more: chat pays more per GPU-hour; the minimum
    stays). Its contract minimum × 2 (2,400, below the doubled demand) is served as before
    and the other 1,200 H100-hours are paid as shortfall at 1.50: a penalty 1,800 USD
    higher, a cost that rises: red, though its change is positive; gross margin and the
    objective fall 1.8k: red too."""
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    pg.fill("#whatif input[name=cloud]", "2")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_selector("[data-whatif=objective]")
    assert pg.text_content("[data-whatif=objective]") == "0.00"  # no sign on zero
    legends = pg.eval_on_selector_all("#whatif legend", "l => l.map(x => x.textContent)")
    assert any("contract minimums stay" in x for x in legends)
    assert any(x.startswith("Contract minimums × factor") for x in legends)
    pg.fill("#whatif input[name=contract_cloud]", "2")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_function(
        "() => document.querySelector('[data-whatif=objective]')?.textContent === '-1.80k'"
    )
    change = pg.eval_on_selector_all(
        "#whatif-result tr[data-term]",
        """rows => Object.fromEntries(rows.map(r => { const s = r.lastElementChild
            .querySelector('span'); return [r.dataset.term, [s.textContent, s.className,
            s.dataset.effect || '']]; }))""",
    )
    assert change["shortfall_penalty"] == ["+1.80k", "neg", "worse"]
    assert change["gross_margin"] == ["-1.80k", "neg", "worse"]
    assert change["objective"] == ["-1.80k", "neg", "worse"]
    pg.context.close()


def test_explain_says_why_a_pool_is_unused_with_units(browser, server):
    """hyperscaler's 1p-office-copilot is fully served; pools it does not use earn more
    than their price per GPU-hour (distilled mode, 85 % of the price): the row says its
    demand is already served, shows the mode's revenue share, and the head says served of
    demand; without a contract minimum there is no "with contract" column; the duals carry
    their unit."""
    pg = open_page(browser, server)
    run_plan(pg, "hyper")
    plan_id = pg.evaluate("state.planId")
    status, _, body = server.request(
        "GET", f"/v1/plans/{plan_id}/explain?segment=1p-office-copilot", headers=KEY
    )
    assert status == 200
    ex = json.loads(body)
    assert ex["has_contract"] is False
    idle = [v for v in ex["values"] if v["gpus"] <= 1e-6 and v["margin_over_price"] > 1e-6]
    assert idle and all(v["why_unused"] == "demand already served" for v in idle)
    per = idle[0]["period"]
    svc = next(p for p in ex["periods"] if p["period"] == per)
    assert svc["served"] == pytest.approx(svc["demand"])
    pg.select_option("#segment", "1p-office-copilot")
    pg.wait_for_function(
        "() => (document.querySelector('#explain .explain-head') || {}).textContent"
        "?.startsWith('1p-office-copilot')"
    )
    pg.select_option("#explain-period", per)
    pg.wait_for_selector(f"#explain tr[data-pool='{idle[0]['pool']}']")
    heads = pg.eval_on_selector_all("#explain table.explain th", "h => h.map(x => x.textContent)")
    assert "revenue share" in heads and not any("contract" in h for h in heads)
    row = pg.eval_on_selector_all(
        f"#explain table.explain tr[data-pool='{idle[0]['pool']}'] td",
        "c => c.map(x => x.textContent)",
    )
    assert row[0] == idle[0]["pool"] and row[2] == f"{round(idle[0]['revenue_share'] * 100)} %"
    assert row[-1] == "demand already served"
    head = pg.text_content("#explain .explain-head")
    assert "served" in head and "demand fully served" in head
    duals = pg.eval_on_selector_all(
        "#explain table.binding td:last-child", "c => c.map(x => x.textContent)"
    )
    assert duals and all(" USD per " in d for d in duals)
    pg.context.close()


def test_compare_by_pool_averages_gpus_and_names_who_gained(browser, server):
    """tiny against tiny with b200 empty in P2: by pool, b200 has 2.5 own GPUs on average
    per period against 7.5 (5 and 0 against 5 and 10; summed over periods it read 5 and
    15); the segments' changes listed for a pool add up to the change in GPUs used, and
    GPUs used never exceed own + rented GPUs."""
    empty = json.loads((ROOT / "data" / "tiny.json").read_text())
    empty["pools"][1]["gpus"] = [5, 0]
    assert server.request("PUT", "/v1/scenarios/tiny-empty", empty, headers=KEY)[0] == 201
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    run_plan(pg, "tiny-empty")
    pg.click("#compare summary")
    pg.wait_for_function("() => document.querySelectorAll('#compare-b option').length >= 2")
    ids = {}
    for sid in ("tiny", "tiny-empty"):
        _, _, jobs = server.request(
            "GET", f"/v1/plans?scenario={sid}&status=done&limit=1", headers=KEY
        )
        ids[sid] = json.loads(jobs)["items"][0]["id"]
    pg.select_option("#compare-a", ids["tiny-empty"])
    pg.select_option("#compare-b", ids["tiny"])
    pg.select_option("#compare-by", "pool")
    pg.click("#compare-go")
    pg.wait_for_function(
        "() => document.querySelector('#compare-result th')?.textContent === 'pool'"
    )
    heads = pg.eval_on_selector_all("#compare-result th", "h => h.map(x => x.textContent)")
    assert (
        "own GPUs (average per period): base" in heads
        and "rented GPUs (average per period): base" in heads
    )
    rows = pg.eval_on_selector_all(
        "#compare-result tr[data-key]",
        "r => Object.fromEntries(r.map(x => [x.dataset.key,"
        " [...x.children].map(c => c.textContent)]))",
    )
    col = {h: i for i, h in enumerate(heads)}
    b200 = rows["b200"]
    assert b200[col["own GPUs (average per period): base"]] == "2.5"
    assert b200[col["own GPUs (average per period): base"] + 1] == "7.5"
    for cells in rows.values():
        base = col["own GPUs (average per period): base"]
        rent = col["rented GPUs (average per period): base"]
        used = col["GPUs used (average per period): base"]
        for side in (0, 1):
            assert (
                float(cells[used + side])
                <= float(cells[base + side]) + float(cells[rent + side]) + 1e-9
            )
    moves = b200[-1]
    assert moves != "no change"
    listed = [m.strip() for m in moves.split(",")]
    total = sum(float(m[1:].split()[0]) * (1 if m[0] == "+" else -1) for m in listed)
    used = col["GPUs used (average per period): base"]
    assert total == pytest.approx(float(b200[used + 2].lstrip("+")), abs=0.11)
    assert all(m.endswith(")") for m in listed)  # "… chat (first_party)"
    pg.context.close()
