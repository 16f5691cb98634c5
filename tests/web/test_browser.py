"""The plan explorer in headless Chromium (Debian's package, driven by Playwright) against
a real uvicorn process on loopback. .ci/run installs the browser; locally:
`apt-get install chromium` (or set ALLOCATOR_CHROMIUM to a Chromium binary)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from allocator import Plan, Scenario

from ..api.test_server import ROOT, Server

CHROMIUM = (
    os.environ.get("ALLOCATOR_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
ARTIFACTS = ROOT / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="no Chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("web") / "web.db", ALLOCATOR_API_KEY="page-key").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is required in CI: .ci/run installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1400, "height": 1800}
        )
        pg = context.new_page()
        pg.errors = []  # type: ignore[attr-defined]
        pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
        # the service needs a key: the page keeps the one typed into its key field
        context.add_init_script("localStorage.setItem('allocator-api-key', 'page-key')")
        # every Content-Security-Policy violation of a page, as "directive blocked-uri"
        context.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI))"
        )
        # wait_for_function takes "() => …": a bare expression is eval'd in the page, which
        # its CSP (script-src 'self', no 'unsafe-eval') refuses once an init script is set
        pg.goto(server.base + "/")
        assert pg.input_value("#apikey") == "page-key"
        yield pg
        context.close()
        browser.close()


def test_plan_explorer_end_to_end(page, server):
    page.wait_for_function("() => document.querySelectorAll('#scenario option').length >= 3")
    page.select_option("#scenario", "tiny")
    page.click("#run")
    page.wait_for_selector("#chart-gpus .main-svg", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('solved')"
    )
    objective = page.text_content("[data-kpi='Objective (PV)']")
    assert objective.startswith("30.95k")

    # every chart holds data
    counts = page.evaluate("""() => Object.fromEntries(
        ['chart-gpus','chart-prices','chart-util','chart-money'].map(id =>
            [id, (document.getElementById(id).data || []).length]))""")
    assert all(n > 0 for n in counts.values()), counts
    z = page.evaluate("document.getElementById('chart-prices').data[0].z")
    assert sorted(v for row in z for v in row) == pytest.approx([3.0, 4.5, 10.0, 14.5])
    page.wait_for_function(
        "() => (document.getElementById('chart-frontier').data || []).length > 0"
    )

    # explain a segment
    page.select_option("#segment", "chat")
    page.wait_for_selector("#explain p")
    assert "chat (first_party)" in page.text_content("#explain")

    # a what-if changes the numbers shown
    page.fill("#whatif input[name=cloud]", "2")  # demand and (issue 26) its contract
    page.fill("#whatif input[name=contract_cloud]", "2")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("[data-whatif=objective]")
    assert page.text_content("[data-whatif=objective]") == "-1.80k"
    assert len(page.evaluate("document.getElementById('chart-whatif').data")) == 2

    # downloads work, through the API key
    with page.expect_download() as dl:
        page.click("#dl-csv")
    path = dl.value.path()
    assert Path(path).read_text().startswith("segment,kind,mode,pool,period,gpus")

    with page.expect_download() as dl:
        page.click("#dl-json")
    plan = json.loads(Path(dl.value.path()).read_text())  # the plan itself, not the job
    assert plan["totals"]["objective"] == pytest.approx(30950)
    assert Plan.from_dict(plan).objective == pytest.approx(30950)  # what replan reads

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plan-explorer.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]
    assert page.evaluate("window.__csp") == []  # the page works under its own CSP


def test_assets_are_served_locally(server):
    status, headers, body = server.get("/static/vendor/plotly.min.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert len(body) > 1_000_000
    status, _, body = server.get("/")
    assert status == 200 and b"/static/vendor/plotly.min.js" in body and b"cdn" not in body.lower()


def test_upload_a_scenario(page, tmp_path):
    d = json.loads((ROOT / "data" / "tiny.json").read_text())
    d["pools"][0]["gpus"] = [20, 20]
    f = tmp_path / "bigger-tiny.json"
    f.write_text(json.dumps(d))
    page.set_input_files("#upload", str(f))
    page.wait_for_function("() => document.querySelector('#scenario').value === 'bigger-tiny'")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('no plan yet')"
    )
    d["segments"][0]["demand"][0] = -1
    f.write_text(json.dumps(d))
    page.set_input_files("#upload", str(f))
    page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
    assert "segments[0].demand[0]" in page.text_content("#status")


def test_upload_a_workbook_and_download_the_plan_as_excel(page, tmp_path):
    import io
    import zipfile

    from openpyxl import load_workbook

    seen = len(page.errors)  # type: ignore[attr-defined]
    f = tmp_path / "hyperscaler-book.xlsx"
    f.write_bytes((ROOT / "data" / "hyperscaler.xlsx").read_bytes())
    page.set_input_files("#upload", str(f))
    page.wait_for_function("() => document.querySelector('#scenario').value === 'hyperscaler-book'")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('no plan yet')"
    )
    page.click("#run")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('solved')",
        timeout=60_000,
    )
    with page.expect_download() as dl:
        page.click("#dl-xlsx")
    assert dl.value.suggested_filename == "plan-hyperscaler-book.xlsx"
    path = Path(dl.value.path())
    assert path.read_bytes()[:2] == b"PK" and zipfile.is_zipfile(path)
    book = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    assert "Allocations" in book.sheetnames
    assert page.errors[seen:] == []  # type: ignore[attr-defined]

    # a bad workbook: the problems name their sheet and cell
    from allocator.scenario.workbook import write_workbook

    bad = tmp_path / "bad-book.xlsx"
    write_workbook(Scenario.from_file(ROOT / "data" / "tiny.json"), bad)
    wb = load_workbook(bad)
    wb["demand"]["B2"] = "n/a"
    wb.save(bad)
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
    assert "demand!B2" in page.text_content("#status")
    assert page.evaluate("window.__csp") == []


# ---------------------------------------------------------------------------- XSS
# Free-text fields of a scenario (Scenario.name, description, currency up to 8 characters,
# Segment.unit up to 64) can hold markup; ids (pools, regions, accelerators, segments,
# modes, periods) match allocator.scenario.ID_PATTERN, so they get its odd characters.
PWN = "window.__pwned=1"
NAME = f'<img src=x onerror="{PWN}"><script>{PWN}</script>&amp;'
UNIT_CHAT = f"<img src=x onerror={PWN}>"
UNIT_CLOUD = f"<svg onload={PWN}>"
CURRENCY = "<b>¤</b>"


def hostile_scenario() -> dict:
    d = json.loads((ROOT / "data" / "tiny.json").read_text())
    d["name"] = NAME
    d["description"] = f"<iframe srcdoc='<script>parent.{PWN}</script>'>"
    d["currency"] = CURRENCY
    d["periods"] = [{"label": "P1:a/b+c", "hours": 100}, {"label": "P2.x-y_z", "hours": 100}]
    acc = {"H100": "H100+nv/x:1", "B200": "B.200-y"}
    pools = {"h100": "h100/east:1+a", "b200": "b200.x-y_z"}
    for pool in d["pools"]:
        pool["id"], pool["accelerator"] = pools[pool["id"]], acc[pool["accelerator"]]
        pool["region"] = "east/1:a+b"
    chat, cloud = d["segments"]
    chat["id"], chat["unit"] = "chat/a.b:c+d", UNIT_CHAT
    cloud["id"], cloud["unit"] = "cloud:x/y", UNIT_CLOUD
    chat["modes"] = [
        {"name": "full/a:b+c"},
        {"name": "dist.x-y", "throughput_multiplier": 2, "revenue_share": 0.4, "ltv_share": 0.4},
    ]
    for seg in (chat, cloud):
        seg["throughput"] = {acc[k]: v for k, v in seg["throughput"].items()}
        seg["regions"] = ["east/1:a+b"]
    # a hard contract that a what-if removing the H100 pool breaks (an error naming it all)
    cloud["contract_hard"], cloud["contract_min"] = True, [1100, 1200]
    return d


def test_scenario_text_is_never_markup(page, server):
    status, _, body = server.request(
        "PUT", "/v1/scenarios/xss", hostile_scenario(), headers={"X-API-Key": "page-key"}
    )
    assert status == 201, body
    page.errors.clear()  # type: ignore[attr-defined]
    page.reload()
    page.wait_for_function("() => document.querySelector('#scenario option[value=xss]') !== null")
    page.select_option("#scenario", "xss")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('no plan')"
    )
    page.click("#run")
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('solved')"
    )
    page.wait_for_selector("#chart-prices .main-svg")
    page.wait_for_function(
        "() => (document.getElementById('chart-frontier').data || []).length > 0"
    )

    kpis = page.text_content("#kpis")
    assert f"{CURRENCY}" in kpis
    # plotly shows the currency in its titles as written, not as bold markup
    assert f"{CURRENCY}/GPU-h" in page.text_content("#chart-prices .cbtitle")
    assert f"{CURRENCY} (PV)" in page.text_content("#chart-money .ytitle")
    pools = page.eval_on_selector_all(
        "#whatif select[name=pool] option", "o => o.map(x => x.value)"
    )
    assert pools == ["h100/east:1+a", "b200.x-y_z"]

    for segment, unit in (("chat/a.b:c+d", UNIT_CHAT), ("cloud:x/y", UNIT_CLOUD)):
        page.select_option("#segment", segment)
        page.wait_for_function(
            "([s, u]) => document.querySelector('#explain').textContent.includes(s)"
            " && document.querySelector('#explain').textContent.includes(u)",
            arg=[segment, unit],
        )
        assert CURRENCY in page.text_content("#explain")

    # a what-if that works, then one that breaks the hard contract: its error names the
    # scenario and the unit
    page.fill("#whatif input[name=contract_cloud]", "1")
    page.fill("#whatif input[name=cloud]", "1.5")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("[data-whatif=objective]")
    page.fill("#whatif input[name=cloud]", "1")
    page.select_option("#whatif select[name=pool]", "h100/east:1+a")
    page.fill("#whatif input[name=gpus]", "-10")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("#whatif-result .error")
    error = page.text_content("#whatif-result")
    assert NAME in error and UNIT_CLOUD in error

    for where in ("#kpis", "#explain", "#whatif-result", "#scenario", "#status"):
        assert page.eval_on_selector(where, "e => e.querySelectorAll('*').length") == (
            page.eval_on_selector(
                where,
                "e => e.querySelectorAll('div,span,b,p,pre,table,tr,th,td,option,ul,li,caption,"
                "details,summary,label,select').length",
            )
        ), f"{where} holds an element the page did not make"
    page.wait_for_timeout(300)  # an onerror of a broken image would have fired by now
    assert page.evaluate("window.__pwned") is None
    # the console's only error is the infeasible what-if's 422
    assert [e for e in page.errors if "status of 422" not in e] == []  # type: ignore[attr-defined]
    assert page.evaluate("window.__csp") == []


def test_docs_work_offline_under_their_csp(page, server):
    outside: list[str] = []

    def only_the_service(route):
        if route.request.url.startswith(server.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    try:
        page.errors.clear()  # type: ignore[attr-defined]
        page.goto(server.base + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() > 10
        assert page.evaluate("window.__csp") == [] and page.errors == []  # type: ignore[attr-defined]

        page.goto(server.base + "/redoc")
        page.wait_for_selector("text=Split a GPU fleet", timeout=30_000)
        # ReDoc's only outside request is the "API docs by Redocly" logo, which it hides when
        # it fails to load; the CSP blocks it before it leaves the browser
        logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
        assert set(page.evaluate("window.__csp")) <= {f"img-src {logo}"}
        assert all(logo in e for e in page.errors)  # type: ignore[attr-defined]
        assert outside == []
    finally:
        page.unroute("**/*")
        page.goto(server.base + "/")
