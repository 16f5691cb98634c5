"""Security headers of every response, and the Content-Security-Policies of the pages.

Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``X-Frame-Options: DENY``, and, unless its route chose another, the CSP of a JSON API:
nothing may load from it and nobody may frame it (``API_CSP``). The plan explorer and its
static files carry ``PAGE_CSP``; /docs and /redoc carry their own (see routes/docs.py)."""

from __future__ import annotations

import base64
import hashlib

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def csp(**directives: str) -> str:
    """A policy that denies by default and frames nowhere, plus ``directives``
    (``script_src="'self'"`` becomes ``script-src 'self'``)."""
    base = {
        "default-src": "'none'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    }
    base |= {k.replace("_", "-"): v for k, v in directives.items()}
    return "; ".join(f"{k} {v}" for k, v in base.items())


# The plan explorer: our own script, style and plotly's bundle, all from the service. Scripts
# are 'self' only. Styles need 'unsafe-inline': plotly.js adds a <style> element of its rules
# (modebar, hover labels) and sets style attributes as it draws; under style-src 'self' it
# logs "Cannot addRelatedStyleRule, probably due to strict CSP" and the charts lose styling.
PAGE_CSP = csp(
    script_src="'self'",
    style_src="'self' 'unsafe-inline'",
    img_src="'self' data: blob:",
    font_src="'self'",
    connect_src="'self'",
)


def sha256_source(text: str) -> str:
    """The CSP source expression ``'sha256-…'`` that allows one inline script or style."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class SecurityHeaders:
    """ASGI middleware: adds BASE_HEADERS to every HTTP response and API_CSP to those
    that set no Content-Security-Policy of their own."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in BASE_HEADERS.items():
                    if k not in headers:
                        headers[k] = v
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = API_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)
