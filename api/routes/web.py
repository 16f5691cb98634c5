"""The plan explorer page at `/`: static files of our own plus plotly's browser bundle,
served from the plotly package installed with the service (no CDN: works offline), all
under the page's Content-Security-Policy (api/security.py)."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..problems import ApiError
from ..security import PAGE_CSP

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parent.parent / "web"
FILES = {"app.js": "text/javascript", "app.css": "text/css"}


def plotly_bundle() -> Path | None:
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is a dependency of the service
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/")
def index() -> HTMLResponse:
    return HTMLResponse(
        (WEB / "index.html").read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


@router.get("/static/vendor/plotly.min.js")
def plotly_js(request: Request) -> Response:
    """plotly's bundle (4.6 MB), gzip-compressed (1.4 MB) for a browser that accepts it:
    compressed once per process and kept (plotly is not upgraded under a running
    service); ``Vary: Accept-Encoding`` so a cache keeps both."""
    path = plotly_bundle()
    if path is None:
        raise ApiError(503, "Charts unavailable", "install plotly: pip install plotly", "no-plotly")
    headers = {
        "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": PAGE_CSP,
        "Vary": "Accept-Encoding",
    }
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        return Response(
            _gzipped(str(path)),
            media_type="text/javascript",
            headers=headers | {"Content-Encoding": "gzip"},
        )
    return FileResponse(path, media_type="text/javascript", headers=headers)


@functools.lru_cache(maxsize=1)
def _gzipped(path: str) -> bytes:
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in FILES:
        raise ApiError(404, "Not found", f"no file {name!r}", "not-found")
    return FileResponse(
        WEB / name,
        media_type=FILES[name],
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP},
    )
