"""Issue 19, "What a planner sees": the plan explorer's charts, what-if terms, errors,
explain table and phone layout, in headless Chromium (see test_browser.py)."""

from __future__ import annotations

import json

import pytest

from ..api.test_server import ROOT, Server
from .test_browser import ARGS, ARTIFACTS, CHROMIUM, pytestmark  # noqa: F401

KEY = {"X-API-Key": "page-key"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("web19") / "web.db", ALLOCATOR_API_KEY="page-key").start()
    tiny = json.loads((ROOT / "data" / "tiny.json").read_text())
    # a pool with no GPUs in P2, and a hard contract a what-if can break
    empty = json.loads(json.dumps(tiny))
    empty["pools"][1]["gpus"] = [5, 0]
    hard = json.loads(json.dumps(tiny))
    hard["segments"][1]["contract_hard"], hard["segments"][1]["contract_min"] = True, [1100, 1200]
    from allocator.scenario.generate import generate

    long = generate(segments=12, pools=6, periods=52, seed=3).to_dict()
    from ..api.conftest import slow_scenario

    bodies = (
        ("tiny-empty", empty),
        ("tiny-hard", hard),
        ("weekly", long),
        ("slow", slow_scenario()),
        ("edit-me", tiny),
        ("rev-me", tiny),
    )
    for sid, body in bodies:
        status, _, out = s.request("PUT", f"/v1/scenarios/{sid}", body, headers=KEY)
        assert status == 201, out
    yield s
    s.stop()


def open_page(browser, server, width=1400, height=1800):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script("localStorage.setItem('allocator-api-key', 'page-key')")
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI))"
    )
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
    pg.goto(server.base + "/")
    pg.wait_for_function("() => document.querySelectorAll('#scenario option').length >= 3")
    return pg


def what_if(pg, pool, gpus, **fields):
    """Fill the page's what-if form (``fields``: input name -> value; ``segment``, ``from``
    are selects) with ``gpus`` added to ``pool``, and submit it."""
    for name, value in fields.items():
        if name in ("segment", "from"):
            pg.select_option(f"#whatif select[name={name}]", value)
        else:
            pg.fill(f"#whatif input[name={name}]", value)
    pg.select_option("#whatif select[name=pool]", pool)
    pg.fill("#whatif input[name=gpus]", gpus)
    pg.click("#whatif button[type=submit]")


def run_plan(pg, scenario):
    pg.select_option("#scenario", scenario)
    # the page opens on some plan: wait until what it shows is this scenario's (a plan, or
    # none yet), not the plan it opened on
    pg.wait_for_function(
        """(id) => state.scenario === id && (state.planScenario === id
            || /^no plan/.test(document.querySelector('#status').textContent))""",
        arg=scenario,
    )
    if pg.text_content("#status").startswith("no plan"):
        pg.click("#run")
        pg.wait_for_function(
            "() => document.querySelector('#status').textContent.startsWith('solved')",
            timeout=60_000,
        )
    pg.wait_for_function(
        "() => (document.getElementById('chart-frontier').data || []).length > 1", timeout=90_000
    )


def titles(pg, chart):
    return pg.evaluate(
        """(id) => { const c = document.getElementById(id); const t = (s) =>
            [...c.querySelectorAll(s)].map(e => e.textContent);
            return {x: t('.xtitle'), y: t('.ytitle'), cb: t('.cbtitle')}; }""",
        chart,
    )


def test_every_chart_names_its_axes_and_units(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny-empty")
    assert titles(pg, "chart-gpus") == {"x": ["period"], "y": ["GPUs"], "cb": []}
    prices = titles(pg, "chart-prices")
    assert prices["x"] == ["period"] and prices["y"] == ["pool"]
    assert prices["cb"] == ["USD/GPU-h"]
    util = titles(pg, "chart-util")
    assert util["y"] == ["pool"] and util["cb"] == ["% of usable"]
    assert titles(pg, "chart-money") == {"x": ["segment kind"], "y": ["USD (PV)"], "cb": []}
    frontier = titles(pg, "chart-frontier")
    assert frontier["x"] == ["LTV (USD, PV)"]
    assert frontier["y"] == ["gross margin − churn cost (USD, PV)"]
    # the frontier marks the scenario's own plan
    own = pg.evaluate("document.getElementById('chart-frontier').data[1]")
    assert own["name"].startswith("this plan")
    assert own["x"] == [pytest.approx(pg.evaluate("state.plan.totals.ltv"))]

    # a pool with no GPUs (b200 in P2) is a gap, not 0 %
    z = pg.evaluate("document.getElementById('chart-util').data[0].z")
    ys = pg.evaluate("document.getElementById('chart-util').data[0].y")
    assert z[ys.index("b200")][1] is None and z[ys.index("b200")][0] is not None
    # the colour is the share of usable capacity, as the plan reports it
    usable = pg.evaluate(
        "state.plan.pools.filter(r => r.pool === 'h100').map(r => r.utilisation_of_usable)"
    )
    assert z[ys.index("h100")] == pytest.approx([100 * u for u in usable])

    # by pool: the title follows the choice, one colour per pool
    pg.select_option("#gpus-by", "pool")
    assert pg.text_content("#gpus-title") == "GPUs by pool"
    colours = pg.evaluate("document.getElementById('chart-gpus').data.map(t => t.marker.color)")
    assert len(colours) == 2 and len(set(colours)) == 2
    pg.select_option("#gpus-by", "region")
    assert pg.text_content("#gpus-title") == "GPUs by region"
    assert pg.errors == [] and pg.evaluate("window.__csp") == []  # type: ignore[attr-defined]
    pg.context.close()


def test_what_if_shows_every_term_and_refuses_the_impossible(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    pg.fill("#whatif input[name=cloud]", "2")  # demand and (issue 26) its contract
    pg.fill("#whatif input[name=contract_cloud]", "2")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_selector("[data-whatif=objective]")
    terms = pg.eval_on_selector_all(
        "#whatif-result tr[data-term]", "r => r.map(x => x.dataset.term)"
    )
    for t in ("gross_margin", "weighted_ltv", "churn_cost", "expansion_cost", "objective"):
        assert t in terms
    assert pg.text_content("[data-whatif=objective]") == "-1.80k"
    # impossible: more GPUs removed than the pool has
    pg.fill("#whatif input[name=cloud]", "1")
    pg.fill("#whatif input[name=contract_cloud]", "1")
    pg.select_option("#whatif select[name=pool]", "h100")
    pg.fill("#whatif input[name=gpus]", "-999999")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_selector("#whatif-result .error li")
    assert "capacity_change.h100" in pg.text_content("#whatif-result .error li")
    pg.context.close()


def test_errors_look_like_errors_and_a_diagnosis_is_a_list(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny-hard")
    pg.select_option("#whatif select[name=pool]", "h100")
    pg.fill("#whatif input[name=gpus]", "-10")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_selector("#whatif-result .error")
    items = pg.eval_on_selector_all("#whatif-result .error li", "l => l.map(x => x.textContent)")
    assert len(items) >= 2 and any("contract" in x.lower() for x in items)
    red = "rgb(180, 35, 24)"
    assert pg.eval_on_selector("#whatif-result .error", "e => getComputedStyle(e).color") == red
    pg.evaluate("() => { const s = document.querySelector('#status'); s.textContent = 'x'; }")
    pg.evaluate("() => status('failed: something', true)")
    assert pg.eval_on_selector("#status", "e => getComputedStyle(e).color") == red
    pg.screenshot(path=str(ARTIFACTS / "plan-explorer-error.png"), full_page=True)
    pg.context.close()


def test_explain_is_a_table_per_period_and_a_long_scenario_fits(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "weekly")
    pg.wait_for_selector("#explain table.explain tr td")
    heads = pg.eval_on_selector_all("#explain table.explain th", "h => h.map(x => x.textContent)")
    assert any("with contract min" in h for h in heads) and any("price" in h for h in heads)
    periods = pg.eval_on_selector_all("#explain-period option", "o => o.map(x => x.value)")
    assert len(periods) == 52
    pg.select_option("#explain-period", periods[30])
    assert periods[30] in pg.text_content("#explain .explain-head")
    height = pg.evaluate("document.scrollingElement.scrollHeight")
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "plan-explorer-52.png"), full_page=True)
    assert height < 3500, height
    pg.context.close()


def test_phone_width_has_no_horizontal_scroll(browser, server):
    pg = open_page(browser, server, width=390, height=844)
    run_plan(pg, "tiny")
    pg.fill("#whatif input[name=cloud]", "2")
    pg.click("#whatif button[type=submit]")
    pg.wait_for_selector("[data-whatif=objective]")
    pg.wait_for_selector("#explain table.explain tr td")
    pg.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "plan-explorer-phone.png"), full_page=True)
    width = pg.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, width
    charts = pg.evaluate(
        "[...document.querySelectorAll('.chart')].map(c => c.getBoundingClientRect().right)"
    )
    assert max(charts) <= 390
    pg.context.close()


def test_edit_a_scenario_and_save_it_with_if_match(browser, server):
    pg = open_page(browser, server)
    pg.select_option("#scenario", "edit-me")
    pg.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('no plan')"
    )
    pg.click("#editor summary")
    pg.wait_for_selector("#editor-body input[data-pool='1']")
    pg.fill("#editor-body input[data-pool='1'][data-period='0']", "6")  # one cell per period
    pg.fill("#editor-body input[data-price='0']", "1.5")
    pg.click("#editor-save")
    pg.wait_for_function(
        "() => document.querySelector('#editor-status').textContent.startsWith('saved')"
    )
    status, _, body = server.request("GET", "/v1/scenarios/edit-me", headers=KEY)
    out = json.loads(body)
    assert out["revision"] == 2 and out["scenario"]["pools"][1]["gpus"] == [6, 10]
    assert out["scenario"]["segments"][0]["revenue_per_unit"] == 1.5
    # someone else saves revision 3: the page's save (If-Match: "2") is refused, visibly
    status, _, _ = server.request("PUT", "/v1/scenarios/edit-me", out["scenario"], headers=KEY)
    assert status == 200
    pg.fill("#editor-body input[data-pool='1'][data-period='0']", "7")
    pg.click("#editor-save")
    pg.wait_for_selector("#editor-status .error")
    assert "412" in pg.text_content("#editor-status") or "revision" in pg.text_content(
        "#editor-status"
    )
    status, _, body = server.request("GET", "/v1/scenarios/edit-me", headers=KEY)
    assert json.loads(body)["scenario"]["pools"][1]["gpus"] == [6, 10]
    pg.context.close()


def test_compare_two_plans_side_by_side(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    run_plan(pg, "tiny-empty")
    pg.click("#compare summary")
    pg.wait_for_function("() => document.querySelectorAll('#compare-b option').length >= 2")
    # the other side: tiny's plan (other tests' plans of other scenarios may be newer)
    _, _, jobs = server.request("GET", "/v1/plans?scenario=tiny&status=done&limit=1", headers=KEY)
    pg.select_option("#compare-b", json.loads(jobs)["items"][0]["id"])
    for by in ("kind", "pool", "period"):
        pg.select_option("#compare-by", by)
        pg.click("#compare-go")
        pg.wait_for_function(
            "(by) => document.querySelector('#compare-result th')?.textContent === by",
            arg=by,
            timeout=60_000,
        )
        keys = pg.eval_on_selector_all(
            "#compare-result tr[data-key]", "r => r.map(x => x.dataset.key)"
        )
        want = {"kind": ["cloud", "first_party"], "pool": ["b200", "h100"], "period": ["P1", "P2"]}
        assert keys == want[by]
    assert "change" in pg.text_content("#compare-result")
    assert pg.errors == []  # type: ignore[attr-defined]
    pg.context.close()


def test_save_a_what_if_as_a_new_scenario(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    what_if(pg, "b200", "1", cloud="2")
    pg.wait_for_selector("#whatif-save")
    pg.fill("#whatif-save-id", "tiny-cloud2")
    pg.click("#whatif-save")
    pg.wait_for_function("() => document.querySelector('#scenario').value === 'tiny-cloud2'")
    _, _, body = server.request("GET", "/v1/scenarios/tiny-cloud2", headers=KEY)
    sc = json.loads(body)["scenario"]
    tiny = json.loads((ROOT / "data" / "tiny.json").read_text())
    assert sc["pools"][1]["gpus"] == [g + 1 for g in tiny["pools"][1]["gpus"]]
    cloud = next(s for s in sc["segments"] if s["kind"] == "cloud")
    want = next(s for s in tiny["segments"] if s["kind"] == "cloud")["demand"]
    assert cloud["demand"] == [2 * d for d in want]
    pg.context.close()


def test_save_a_what_if_as_the_next_revision(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "rev-me")
    what_if(pg, "h100", "2")
    pg.wait_for_selector("#whatif-save-revision")
    pg.click("#whatif-save-revision")
    pg.wait_for_function(
        "() => /revision 2/.test(document.querySelector('#whatif-save-status').textContent)"
    )
    _, _, body = server.request("GET", "/v1/scenarios/rev-me", headers=KEY)
    got = json.loads(body)
    assert got["revision"] == 2 and got["scenario"]["pools"][0]["gpus"] == [12, 12]  # h100 10 + 2
    # the what-if was computed on revision 1: saving it again is refused (412), not applied twice
    pg.click("#whatif-save-revision")
    pg.wait_for_function("() => document.querySelector('#whatif-save-status .error') !== null")
    assert "Precondition" in pg.text_content("#whatif-save-status")
    _, _, body = server.request("GET", "/v1/scenarios/rev-me", headers=KEY)
    assert json.loads(body)["revision"] == 2
    pg.context.close()


def test_what_if_by_segment_and_capacity_from_a_period(browser, server):
    pg = open_page(browser, server)
    run_plan(pg, "tiny")
    # from P2 on
    what_if(pg, "b200", "1", segment="chat", seg_demand="0.5", seg_price="2", **{"from": "1"})
    pg.wait_for_selector("[data-whatif=objective]", timeout=60_000)
    sent = pg.evaluate("state.whatIf.overrides")
    assert sent == {
        "demand_scale": {"chat": 0.5},
        "price_change": {"chat": 2},
        "capacity_change": {"b200": [0, 1]},
    }
    # the page shows what the API answers for those overrides
    status, _, body = server.request("POST", "/v1/scenarios/tiny/what-if", sent, headers=KEY)
    assert status == 200, body
    change = json.loads(body)["difference"]["totals"]["objective"]["change"]
    shown = pg.evaluate(
        "[...document.querySelectorAll('tr[data-term=objective] td')].map(t => t.textContent)"
    )
    assert shown[3].lstrip("+") == pg.evaluate(f"money({change})")
    assert pg.errors == []  # type: ignore[attr-defined]
    pg.context.close()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A service whose synchronous limit (5 columns) is below tiny.json's 9: the page's
    what-if and frontier run as jobs there."""
    s = Server(
        tmp_path_factory.mktemp("web19small") / "web.db",
        ALLOCATOR_API_KEY="page-key",
        ALLOCATOR_SYNC_MAX_COLUMNS="5",
    ).start()
    yield s
    s.stop()


def test_what_if_and_frontier_beyond_the_synchronous_size_run_as_jobs(browser, small_server):
    pg = open_page(browser, small_server)
    run_plan(pg, "tiny")
    pg.wait_for_selector("#chart-frontier .main-svg", timeout=60_000)  # the frontier job's
    what_if(pg, "b200", "1")
    pg.wait_for_selector("[data-whatif=objective]", timeout=60_000)
    # +1 B200 GPU in both periods, as a job: the same change the synchronous what-if gives
    _, _, jobs = small_server.request("GET", "/v1/jobs?kind=what-if", headers=KEY)
    (job,) = json.loads(jobs)["items"]
    _, _, full = small_server.request("GET", f"/v1/jobs/{job['id']}", headers=KEY)
    change = json.loads(full)["result"]["difference"]["totals"]["objective"]["change"]
    shown = pg.text_content("[data-whatif=objective]")
    assert shown.startswith("+") and change > 0
    assert pg.errors == []  # type: ignore[attr-defined]
    pg.context.close()


# last: the page then asks for the frontier of this larger scenario, which keeps the
# synchronous worker busy for a while after the test
def test_a_running_job_is_shown_with_its_progress(browser, server):
    pg = open_page(browser, server)
    status, _, job = server.request("POST", "/v1/scenarios/slow/plans", {}, headers=KEY)
    assert status == 202, job
    job = json.loads(job)
    pg.select_option("#scenario", "slow")
    # the page follows the job already running instead of offering a second one
    pg.wait_for_function("() => document.querySelector('#status').textContent.startsWith('job ')")
    assert pg.is_disabled("#run")
    pg.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('solved')",
        timeout=120_000,
    )
    status, _, jobs = server.request("GET", "/v1/plans?scenario=slow", headers=KEY)
    assert [j["id"] for j in json.loads(jobs)["items"]] == [job["id"]]
    pg.context.close()
