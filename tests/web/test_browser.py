"""The plan explorer in headless Chromium (Debian's package, driven by Playwright) against
a real uvicorn process on loopback. .ci/run installs the browser; locally:
`apt-get install chromium` (or set ALLOCATOR_CHROMIUM to a Chromium binary)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

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
        pg.goto(server.base + "/")
        assert pg.input_value("#apikey") == "page-key"
        yield pg
        context.close()
        browser.close()


def test_plan_explorer_end_to_end(page, server):
    page.wait_for_function("document.querySelectorAll('#scenario option').length >= 3")
    page.select_option("#scenario", "tiny")
    page.click("#run")
    page.wait_for_selector("#chart-gpus .main-svg", timeout=30_000)
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('solved')")
    objective = page.text_content("[data-kpi='Objective (PV)']")
    assert objective.startswith("30.95k")

    # every chart holds data
    counts = page.evaluate("""() => Object.fromEntries(
        ['chart-gpus','chart-prices','chart-util','chart-money'].map(id =>
            [id, (document.getElementById(id).data || []).length]))""")
    assert all(n > 0 for n in counts.values()), counts
    z = page.evaluate("document.getElementById('chart-prices').data[0].z")
    assert sorted(v for row in z for v in row) == pytest.approx([3.0, 4.5, 10.0, 14.5])
    page.wait_for_function("(document.getElementById('chart-frontier').data || []).length > 0")

    # explain a segment
    page.select_option("#segment", "chat")
    page.wait_for_selector("#explain p")
    assert "chat (first_party)" in page.text_content("#explain")

    # a what-if changes the numbers shown
    page.fill("#whatif input[name=cloud]", "2")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("[data-whatif=objective]")
    assert page.text_content("[data-whatif=objective]") == "-1.8k"
    assert len(page.evaluate("document.getElementById('chart-whatif').data")) == 2

    # downloads work, through the API key
    with page.expect_download() as dl:
        page.click("#dl-csv")
    path = dl.value.path()
    assert Path(path).read_text().startswith("segment,kind,mode,pool,period,gpus")

    with page.expect_download() as dl:
        page.click("#dl-json")
    job = json.loads(Path(dl.value.path()).read_text())
    assert job["plan"]["totals"]["objective"] == pytest.approx(30950)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plan-explorer.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


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
    page.wait_for_function("document.querySelector('#scenario').value === 'bigger-tiny'")
    page.wait_for_function(
        "document.querySelector('#status').textContent.startsWith('no plan yet')"
    )
    d["segments"][0]["demand"][0] = -1
    f.write_text(json.dumps(d))
    page.set_input_files("#upload", str(f))
    page.wait_for_function("document.querySelector('#status').classList.contains('error')")
    assert "segments[0].demand[0]" in page.text_content("#status")
