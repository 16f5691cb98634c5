"""Security headers: the plan explorer's CSP, nosniff/referrer/frame headers on every
response, and /docs and /redoc that load nothing from outside the service."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from .conftest import JSON

BASE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def policy(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in out, f"{name} twice"
        out[name] = values
    return out


def assert_base(r) -> None:
    for k, v in BASE.items():
        assert r.headers.get(k) == v, (r.url, k, r.headers.get(k))


@pytest.mark.parametrize(
    "path", ["/", "/static/app.js", "/static/app.css", "/static/vendor/plotly.min.js"]
)
def test_the_page_and_its_assets_carry_a_strict_csp(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert_base(r)
    p = policy(r.headers["content-security-policy"])
    assert p["default-src"] == ["'none'"]
    assert p["script-src"] == ["'self'"]  # no inline script, no eval
    assert p["object-src"] == ["'none'"]
    assert p["base-uri"] == ["'none'"]
    assert p["frame-ancestors"] == ["'none'"]
    # plotly.js adds <style> rules and style attributes while it draws: only that is inline
    assert p["style-src"] == ["'self'", "'unsafe-inline'"]
    assert p["connect-src"] == ["'self'"]


def test_the_page_has_no_inline_script():
    from api.routes.web import WEB

    html = (WEB / "index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert "javascript:" not in html.lower()


def test_page_script_builds_no_html_from_strings():
    from api.routes.web import WEB

    js = (WEB / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js.replace("no innerHTML", ""), sink
    assert not re.search(r"`\s*<", js), "an HTML template string"


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("GET", "/v1/version", {}, 200),
        ("GET", "/healthz", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/v1/scenarios/nope", {}, 404),  # problem+json from a handler
        (
            "POST",
            "/v1/scenarios",
            {"content": b"x", "headers": {"content-type": "text/plain"}},
            415,
        ),
        ("PUT", "/v1/scenarios/big", {"content": b"{" * (9 * 1024 * 1024), "headers": JSON}, 413),
    ],
)
def test_api_responses_carry_the_headers_too(client, method, path, kw, status):
    r = client.request(method, path, **kw)
    assert r.status_code == status
    assert_base(r)
    p = policy(r.headers["content-security-policy"])
    assert p["default-src"] == ["'none'"] and p["frame-ancestors"] == ["'none'"]


def outside_urls(html: str) -> list[str]:
    return re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", html)


def referenced(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_nothing_from_outside(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert outside_urls(html) == []
    refs = referenced(html)
    assert refs and all(u.startswith("/") for u in refs)
    for url in refs:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    assert_base(r)
    p = policy(r.headers["content-security-policy"])
    assert p["default-src"] == ["'none'"] and p["frame-ancestors"] == ["'none'"]
    assert p["object-src"] == ["'none'"] and p["base-uri"] == ["'none'"]
    # scripts: the service's, and the page's own inline ones by hash; never unsafe-*
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
    ]
    assert p["script-src"] == ["'self'", *hashes]
    assert (path == "/docs") == bool(inline)  # Swagger UI starts from an inline script


def test_docs_assets_are_the_bundled_files(client):
    js = client.get("/static/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in js.content
    assert client.get("/static/docs/redoc.standalone.js").status_code == 200
    assert client.get("/static/docs/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/docs/../main.py").status_code == 404
    assert client.get("/static/docs/core.py").status_code == 404
