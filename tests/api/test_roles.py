"""Every /v1 route × every kind of caller. The routes come from the app itself and their
roles from the table in docs/service-access.md: a new route missing from the table, or one
that declares no role or another role than the table, fails here; so does a route that
answers a caller it should refuse (no credential or a wrong key: 401; a role below the
route's: 403) or refuses one it should serve."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth import Role, api_routes, hash_key, required_role
from api.config import Settings
from api.main import create_app
from api.store import Store

from .conftest import assert_problem

DOC = Path(__file__).resolve().parents[2] / "docs" / "service-access.md"
KEYS = {"viewer": "alk_test-viewer", "planner": "alk_test-planner", "admin": "alk_test-admin"}


def documented_roles() -> dict[tuple[str, str], str]:
    """{(method, path): role} from the role table of docs/service-access.md."""
    text = DOC.read_text(encoding="utf-8").split("<!-- role table", 1)[1]
    rows = re.findall(r"^\| `([A-Z]+) (/v1[^`]*)` \| (viewer|planner|admin) \|$", text, re.M)
    return {(m, p): role for m, p, role in rows}


def v1_routes(app) -> Iterator[tuple[str, str, object]]:
    for route in api_routes(app):
        path = getattr(route, "path", "")
        if path.startswith("/v1"):
            for method in sorted(getattr(route, "methods", ()) or ()):
                if method != "HEAD":
                    yield method, path, route


APP = create_app(Settings(database_url="sqlite://"))  # only read for its routes
ROUTES = sorted((m, p) for m, p, _ in v1_routes(APP))
DOCUMENTED = documented_roles()


def test_the_table_and_the_app_list_the_same_routes():
    assert len(DOCUMENTED) > 30  # the table was found and read
    assert set(ROUTES) == set(DOCUMENTED), (
        f"in the app, not in docs/service-access.md: {sorted(set(ROUTES) - set(DOCUMENTED))}; "
        f"in the table, not in the app: {sorted(set(DOCUMENTED) - set(ROUTES))}"
    )


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_each_route_declares_its_documented_role(method, path):
    (route,) = [r for m, p, r in v1_routes(APP) if (m, p) == (method, path)]
    role = required_role(route)
    assert role is not None, f"{method} {path} declares no role (dependencies=[VIEWER] …)"
    assert role.label == DOCUMENTED.get((method, path)), f"{method} {path}: {role.label}"
    op = APP.openapi()["paths"][path][method.lower()]
    assert op["x-required-role"] == role.label
    assert "403" in op["responses"] and "401" in op["responses"]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("roles")
    url = f"sqlite:///{tmp / 'roles.db'}"
    store = Store(url)
    for role, key in KEYS.items():
        store.add_key(f"{role}-person", role, hash_key(key), "test")
    store.close()
    app = create_app(Settings(database_url=url, load_examples=False, sync_max_columns=2000))
    with TestClient(app) as c:
        yield c


def request(client: TestClient, method: str, path: str, key: str | None):
    """The route called with ids that exist nowhere and an empty JSON body: a caller the
    route serves gets past the role check (then 404 or 422), one it refuses does not."""
    url = re.sub(r"\{[a-z_]+\}", "no-such-id", path)
    headers = {"X-API-Key": key} if key is not None else {}
    body = {"json": {}} if method in ("POST", "PUT") else {}
    return client.request(method, url, headers=headers, **body)


CALLERS = ["none", "wrong-key", "viewer", "planner", "admin"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_by_caller(client, method, path, caller):
    key = {"none": None, "wrong-key": "alk_not-a-key"}.get(caller, KEYS.get(caller))
    r = request(client, method, path, key)
    needed = Role.parse(DOCUMENTED[(method, path)])
    if caller in ("none", "wrong-key"):
        body = assert_problem(r, 401)
        assert body["type"] == "/problems/unauthorized"
        assert r.headers["www-authenticate"].startswith("ApiKey")
    elif Role.parse(caller) < needed:
        body = assert_problem(r, 403)
        assert body["type"] == "/problems/forbidden"
        assert f"{caller}-person" in body["detail"] and needed.label in body["detail"]
    else:
        assert r.status_code not in (401, 403), (r.status_code, r.text)
        assert r.status_code < 500, r.text


def test_a_route_without_a_role_is_found():
    """The check above is not vacuous: a router route added without a role is reported."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/forgotten")
    def forgotten() -> dict:  # pragma: no cover - never called
        return {}

    app = create_app(Settings(database_url="sqlite://"))
    app.include_router(router)
    missing = [(m, p) for m, p, r in v1_routes(app) if required_role(r) is None]
    assert missing == [("GET", "/v1/forgotten")]
