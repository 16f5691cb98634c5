"""create_app(): the FastAPI application, its lifespan (store, job runner, solver pool)
and its middleware (body size limit, content type, CORS, security headers)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import allocator
from allocator import Scenario, ScenarioError

from . import bodies, problems
from .auth import Authenticator, api_routes, current_principal, required_role
from .config import Settings, get_settings
from .jobs import JobRunner, SyncSolver
from .routes import access, analysis, docs, jobs, operations, plans, scenarios, solve, system, web
from .schemas import WhatIfRequest
from .security import SecurityHeaders
from .store import Store

log = logging.getLogger("allocator.api")


def load_examples(store: Store, settings: Settings) -> int:
    """Store data/*.json under their file names when the store has no scenario yet."""
    if not settings.load_examples or store.list_scenarios(1, 0)[1] > 0:
        return 0
    n = 0
    for path in sorted(settings.examples_dir.glob("*.json")):
        try:
            sc = Scenario.from_file(path)
        except ScenarioError as exc:
            log.warning("skipping example %s: %s", path.name, exc)
            continue
        if store.create_scenario(path.stem, sc.to_dict()) is not None:
            n += 1
    return n


# (method, path) that also take a scenario workbook as the body
WORKBOOK_ROUTES = re.compile(r"^(POST /v1/scenarios/?|PUT /v1/scenarios/[^/]+)$")


class BodyPolicy:
    """/v1 writes: 415 for a body that is not JSON (or, where a scenario is stored, a
    workbook); 413 for a body over the limit, by its Content-Length or counted while it
    streams in (both as problem+json)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()  # RFC 9110
        length = headers.get("content-length")
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        is_json = ctype == "application/json" or ctype.endswith("+json")
        workbook_ok = WORKBOOK_ROUTES.match(f"{scope['method']} {scope['path']}") is not None
        if has_body and not (is_json or (workbook_ok and ctype == bodies.XLSX)):
            also = f" or {bodies.XLSX} (a scenario workbook)" if workbook_ok else ""
            await _problem(
                scope,
                send,
                415,
                "Unsupported media type",
                f"send the body as application/json{also}",
                "unsupported-media-type",
            )
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _problem(
                scope,
                send,
                413,
                "Request body too large",
                f"the limit is {self.max_bytes:,} bytes",
                "body-too-large",
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"the limit is {self.max_bytes:,} bytes")
            return msg

        await self.app(scope, counted, send)


async def _problem(
    scope: Scope, send: Send, status: int, title: str, detail: str, kind: str
) -> None:
    body = json.dumps(
        {
            "type": f"/problems/{kind}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", problems.PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _require_discriminators(comps: dict[str, Any]) -> None:
    """A tagged union's tag has a default in each member's schema, yet the server needs it to
    pick the member: mark it required so the schema promises no more than the server takes."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            disc = node.get("discriminator")
            if isinstance(disc, dict):
                for ref in disc.get("mapping", {}).values():
                    member = comps.get(ref.rsplit("/", 1)[-1])
                    if member is not None:
                        req = member.setdefault("required", [])
                        if disc["propertyName"] not in req:
                            req.insert(0, disc["propertyName"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(comps)


def _document_roles(app: FastAPI, schema: dict[str, Any]) -> None:
    """Each operation says the role it needs (``x-required-role`` and a line of its
    description), read from the route's own dependency."""
    for route in api_routes(app):
        role = required_role(route)
        if role is None:
            continue
        for method in getattr(route, "methods", ()):
            op = schema["paths"].get(route.path, {}).get(method.lower())  # type: ignore[attr-defined]
            if op is None:
                continue
            op["x-required-role"] = role.label
            note = f"Role: {role.label}" + ("." if role.label == "admin" else " or above.")
            op["description"] = f"{op.get('description', '')}\n\n{note}".strip()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(
            settings.database_url,
            reserve_bytes=settings.storage_reserve_bytes,
            ready_bytes=settings.ready_write_bytes,
        )
        n = load_examples(store, settings)
        if n:
            log.info("stored %d example scenario(s)", n)
        runner = JobRunner(
            store, settings.job_workers, settings.job_time_limit_s, settings.job_stale_after_s
        )
        sync = SyncSolver(settings.sync_workers)
        app.state.settings, app.state.store = settings, store
        app.state.auth = Authenticator(store, settings)
        app.state.runner, app.state.sync = runner, sync
        runner.start()
        bodies.start_validator(app)
        try:
            yield
        finally:
            runner.stop()
            sync.stop()
            bodies.stop_validator(app)
            store.close()

    app = FastAPI(
        title="allocator",
        version=allocator.__version__,
        description="Split a GPU fleet between cloud customers, first-party apps, R&D and "
        "consumer tiers; see the opportunity cost of every GPU-hour. Errors are RFC 9457 "
        "problem+json.",
        lifespan=lifespan,
        # served by routes/docs.py from local files, under their own CSP
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    problems.install(app)
    app.include_router(system.router)
    app.include_router(web.router)
    app.include_router(docs.router)
    # every /v1 route declares its role (api.auth.VIEWER/PLANNER/ADMIN); a caller must be
    # known even on a route that forgot it (tests/api/test_roles.py fails for such a route)
    known = [Depends(current_principal)]
    for r in (
        system.v1_router,
        access.router,
        solve.router,
        scenarios.router,
        plans.router,
        jobs.router,
        analysis.router,
        operations.router,
    ):
        app.include_router(r, dependencies=known)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyPolicy, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: its headers are on every response

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            # bodies parsed off the event loop (api.bodies) are declared here, with every
            # limit of their pydantic model
            for model in (problems.Problem, Scenario, WhatIfRequest):
                extra = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in extra.pop("$defs", {}).items():
                    comps.setdefault(name, sub)
                comps[model.__name__] = extra
            _require_discriminators(comps)
            _document_roles(app, schema)
            # limits that are settings of this service
            limit = comps["PlanRequest"]["properties"]["time_limit_s"]["anyOf"][0]
            limit["maximum"] = settings.job_time_limit_max_s
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
