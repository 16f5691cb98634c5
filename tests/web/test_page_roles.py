"""The plan explorer with personal keys, in headless Chromium against a real service: the key
stays in the tab (sessionStorage) unless "remember" is ticked (localStorage); the page shows
the caller's name and role from GET /v1/me and hides what the role may not do; an admin
approves the plan shown; the history names who saved each revision."""

from __future__ import annotations

import json
import time

import pytest

from api.auth import hash_key
from api.store import Store

from ..api.test_server import Server
from .test_browser import pytestmark  # noqa: F401  (skipped without Chromium)

KEYS = {"viewer": "alk_page-viewer", "planner": "alk_page-planner", "admin": "alk_page-admin"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("roles-page") / "web.db"
    store = Store(f"sqlite:///{db}")
    for role, key in KEYS.items():
        store.add_key(f"{role}-1", role, hash_key(key), "test")
    store.close()
    s = Server(db).start()
    # a finished plan of tiny, run by the planner, for the viewer to look at
    planner = {"X-API-Key": KEYS["planner"]}
    status, headers, _ = s.request("POST", "/v1/scenarios/tiny/plans", headers=planner)
    assert status == 202
    end = time.monotonic() + 60
    while json.loads(s.get(headers["location"], planner)[2])["status"] != "done":
        assert time.monotonic() < end
        time.sleep(0.1)
    yield s
    s.stop()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    yield ctx
    ctx.close()


def open_page(context, server):
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.goto(server.base + "/")
    return page


def type_key(page, key: str) -> None:
    page.fill("#apikey", key)
    page.dispatch_event("#apikey", "change")


def storage(page) -> tuple[str | None, str | None]:
    """The key in (sessionStorage, localStorage)."""
    return tuple(
        page.evaluate(
            "() => [sessionStorage.getItem('allocator-api-key'),"
            " localStorage.getItem('allocator-api-key')]"
        )
    )


def test_a_viewer_sees_plans_and_none_of_the_actions(context, server):
    page = open_page(context, server)
    page.wait_for_function(
        "() => document.querySelector('#who').textContent.includes('needs a key')"
    )
    type_key(page, KEYS["viewer"])
    page.wait_for_function(
        "() => document.querySelector('#who').textContent === 'viewer-1 · viewer'"
    )
    page.wait_for_function("() => document.querySelectorAll('#scenario option').length >= 3")
    for sel in (
        "#run",
        "label.upload",
        "#whatif button[type=submit]",
        "#editor-save",
        "#approve-form",
    ):
        assert page.is_hidden(sel), sel
    page.select_option("#scenario", "tiny")
    page.wait_for_selector("#chart-gpus .main-svg", timeout=30_000)
    assert page.is_visible("#whatif ~ p.hint")  # why there is no Compare button
    assert page.is_visible("#dl-json") and page.is_visible("#compare")
    page.wait_for_function(
        "() => document.querySelector('#chart-frontier').textContent.includes('planner role')"
    )
    # the key is this tab's only: sessionStorage, not localStorage
    assert storage(page) == (KEYS["viewer"], None)
    page.reload()
    assert page.input_value("#apikey") == KEYS["viewer"]
    other = open_page(context, server)  # another tab of the same browser: no key
    assert other.input_value("#apikey") == ""
    assert storage(other) == (None, None)
    assert page.errors == [] and other.errors == []  # type: ignore[attr-defined]


def test_remember_keeps_the_key_in_local_storage(context, server):
    page = open_page(context, server)
    type_key(page, KEYS["planner"])
    page.wait_for_function(
        "() => document.querySelector('#who').textContent === 'planner-1 · planner'"
    )
    assert storage(page) == (KEYS["planner"], None)
    page.check("#remember-key")
    assert storage(page) == (None, KEYS["planner"])
    other = open_page(context, server)  # a remembered key is there in a new tab
    assert other.input_value("#apikey") == KEYS["planner"]
    assert other.is_checked("#remember-key")
    other.wait_for_function("() => document.querySelector('#who').textContent.endsWith('planner')")
    assert other.is_visible("#run") and other.is_hidden("#approve-form")
    other.uncheck("#remember-key")
    assert storage(other) == (KEYS["planner"], None)


def test_an_admin_approves_the_plan_shown_and_the_history_names_who_saved(context, server):
    # a planner saves a revision of tiny through the API: the history must name them
    status, _, raw = server.get("/v1/scenarios/tiny", headers={"X-API-Key": KEYS["admin"]})
    assert status == 200
    sc = json.loads(raw)["scenario"]
    status, _, _ = server.request("PUT", "/v1/scenarios/tiny", sc, {"X-API-Key": KEYS["planner"]})
    assert status == 200
    page = open_page(context, server)
    type_key(page, KEYS["admin"])
    page.wait_for_function("() => document.querySelector('#who').textContent === 'admin-1 · admin'")
    page.wait_for_function("() => document.querySelectorAll('#scenario option').length >= 3")
    page.select_option("#scenario", "tiny")
    page.wait_for_function(
        "() => document.querySelector('#approval').textContent.includes('no approved plan')"
    )
    page.click("#run")
    page.wait_for_selector("#chart-gpus .main-svg", timeout=60_000)
    page.wait_for_function("() => !document.querySelector('#approve').disabled")
    page.fill("#approve-comment", "signed off <b>by</b> finance")
    page.click("#approve")
    page.wait_for_function(
        "() => (document.querySelector('#approved-line') || {})"
        ".textContent?.includes('approved by admin-1')"
    )
    assert "“signed off <b>by</b> finance”" in page.text_content("#approval")  # as text
    assert page.is_disabled("#approve")  # the plan shown is the approved one
    page.click("#history summary")
    page.wait_for_selector("#history-body tr[data-revision]")
    rows = page.eval_on_selector_all(
        "#history-body tr[data-revision]",
        "rs => rs.map(r => [r.dataset.revision, r.children[1].textContent])",
    )
    assert rows[:2] == [["2", "planner-1"], ["1", "system"]]
    assert page.errors == []  # type: ignore[attr-defined]
