"""/docs (Swagger UI) and /redoc (ReDoc), with their scripts and styles served by the
service itself from the fastapi-offline package (no CDN: they work offline).

FastAPI's Swagger UI page starts the UI with an inline script: its CSP allows exactly that
script by its SHA-256 hash and scripts of the service, nothing else. Swagger UI and ReDoc
style their elements at run time, so their pages allow inline styles."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..problems import ApiError
from ..security import csp, sha256_source

router = APIRouter(include_in_schema=False)
PREFIX = "/static/docs"
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


@cache
def assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:  # pragma: no cover - fastapi-offline is a dependency of the service
        return None
    path = Path(fastapi_offline.__file__).resolve().parent / "static"
    return path if path.is_dir() else None


def docs_csp(html: str) -> str:
    """Scripts: the service's and the page's own inline ones (by hash); styles: the service's
    and inline (Swagger UI and ReDoc add style elements and attributes as they render)."""
    scripts = " ".join(sha256_source(s) for s in INLINE_SCRIPT.findall(html))
    return csp(
        script_src=f"'self' {scripts}".strip(),
        style_src="'self' 'unsafe-inline'",
        img_src="'self' data:",
        font_src="'self'",
        connect_src="'self'",
        # ReDoc runs its search index in a Web Worker made from a blob: URL
        worker_src="'self' blob:",
    )


def _page(resp: HTMLResponse) -> HTMLResponse:
    html = bytes(resp.body).decode()
    return HTMLResponse(
        html, headers={"Content-Security-Policy": docs_csp(html), "Cache-Control": "no-cache"}
    )


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return _page(
        get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{PREFIX}/favicon.png",
            # no "valid" badge fetched from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return _page(
        get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{PREFIX}/favicon.png",
            with_google_fonts=False,
        )
    )


@router.get(PREFIX + "/{name}")
def docs_asset(name: str) -> Response:
    base = assets()
    if name not in FILES:
        raise ApiError(404, "Not found", f"no file {name!r}", "not-found")
    if base is None or not (base / name).is_file():  # pragma: no cover
        raise ApiError(503, "Docs unavailable", "install fastapi-offline", "no-docs-assets")
    return FileResponse(
        base / name, media_type=FILES[name], headers={"Cache-Control": "public, max-age=86400"}
    )
