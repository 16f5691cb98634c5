"""RFC 9457 problem details. Domain exceptions map to HTTP here, once."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from allocator import InfeasibleError, ScenarioError, SolveError
from allocator.errors import Issue

from .store import StoreFull, is_disk_full

log = logging.getLogger("allocator.api")
PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_ERRORS = 100  # field errors listed in a problem; the rest are counted in errors_truncated


class FieldError(BaseModel):
    path: str = Field(description="Where, e.g. segments[3].demand[5] (empty: the whole body).")
    message: str


class Problem(BaseModel):
    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        None, description=f"Each bad field and why: the first {MAX_ERRORS}."
    )
    errors_truncated: int | None = Field(
        None, description=f"How many more problems there were beyond the {MAX_ERRORS} listed."
    )
    diagnosis: dict[str, Any] | None = Field(
        None,
        description="For an infeasible scenario: the conflicting requirements in domain words "
        "and the smallest relaxation that makes it feasible.",
    )


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        kind: str | None = None,
        errors: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.extra = extra or {}
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}
        super().__init__(detail or title)


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    kind: str | None = None,
    errors: list[Issue] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{kind}" if kind else "about:blank",
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [{"path": e.path, "message": e.message} for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            body["errors_truncated"] = len(errors) - MAX_ERRORS
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (
            part.startswith(("list[", "float", "function-")) or part == "[key]"
        ):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _validation_issues(exc: RequestValidationError) -> list[Issue]:
    """Field paths for a rejected request (scenario bodies are validated by api.bodies)."""
    issues = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        where = loc[0] if loc else ""
        path = loc_path(loc[1:]) if where == "body" else loc_path(loc)
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e.get("type") == "json_invalid":
            path = ""
            msg = f"not valid JSON: {e.get('ctx', {}).get('error', msg)}"
        issues.append(Issue(path, msg))
    return issues


def _insufficient_storage(request: Request, reason: str) -> JSONResponse:
    log.error("storage full on %s %s: %s", request.method, request.url.path, reason)
    return problem_response(
        request,
        507,
        "Insufficient storage",
        f"the service's database cannot write: its storage is full ({reason}); nothing was "
        "changed. Free space (or raise the database's size limit) and retry",
        "insufficient-storage",
        headers={"Retry-After": "60"},
    )


def install(app: FastAPI) -> None:
    """Every error the service answers, as problem+json: request errors, the engine's
    errors, storage errors and bugs."""
    _install_request_errors(app)
    _install_engine_errors(app)
    _install_storage_errors(app)


HTTP_TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request body too large",
}


def _install_request_errors(app: FastAPI) -> None:
    """The service's own errors, invalid requests and HTTP errors (a 405 with Allow)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        resp = problem_response(
            request, exc.status, exc.title, exc.detail, exc.kind, exc.errors, exc.headers
        )
        if exc.extra:
            body = json.loads(bytes(resp.body)) | exc.extra
            resp = JSONResponse(body, exc.status, media_type=PROBLEM_JSON, headers=exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = _validation_issues(exc)
        return problem_response(
            request,
            422,
            "Invalid request",
            f"{len(issues)} problem(s) in the request",
            "invalid-request",
            issues,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request, headers.get("Allow", "")))
        return problem_response(
            request,
            exc.status_code,
            HTTP_TITLES.get(exc.status_code, "HTTP error"),
            str(exc.detail) if exc.detail else None,
            headers=headers or None,
        )


def _install_engine_errors(app: FastAPI) -> None:
    """Invalid and infeasible scenarios, solver failures: 422 in the engine's words."""

    @app.exception_handler(ScenarioError)
    async def _scenario(request: Request, exc: ScenarioError) -> JSONResponse:
        return problem_response(
            request,
            422,
            "Invalid scenario",
            f"{len(exc.issues)} problem(s)",
            "invalid-scenario",
            exc.issues,
        )

    @app.exception_handler(InfeasibleError)
    async def _infeasible(request: Request, exc: InfeasibleError) -> JSONResponse:
        resp = problem_response(request, 422, "Infeasible scenario", str(exc), "infeasible")
        diagnosis = getattr(exc, "diagnosis", None)
        if diagnosis is not None:
            body = json.loads(bytes(resp.body)) | {"diagnosis": diagnosis.to_dict()}
            resp = JSONResponse(body, 422, media_type=PROBLEM_JSON)
        return resp

    @app.exception_handler(SolveError)
    async def _solve(request: Request, exc: SolveError) -> JSONResponse:
        return problem_response(
            request, 422, "Solve failed", str(exc), exc.status.value.replace("_", "-")
        )


def _install_storage_errors(app: FastAPI) -> None:
    """Numbers JSON cannot hold, a full disk (507), and anything unforeseen (500)."""
    from .store import NonFiniteError

    @app.exception_handler(NonFiniteError)
    async def _non_finite(request: Request, exc: NonFiniteError) -> JSONResponse:
        log.error("refused to store a non-finite number on %s: %s", request.url.path, exc)
        return problem_response(
            request, 500, "Not stored", f"{exc}; nothing was stored", "non-finite"
        )

    @app.exception_handler(StoreFull)
    async def _full(request: Request, exc: StoreFull) -> JSONResponse:
        return _insufficient_storage(request, str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        if is_disk_full(exc):  # e.g. ENOSPC writing anywhere else
            return _insufficient_storage(request, str(exc))
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request, 500, "Internal error", "the server failed; the error is logged", "internal"
        )


def allowed_methods(request: Request, fallback: str = "") -> list[str]:
    """Every method the API answers on this path (a 405's Allow), from its OpenAPI paths."""
    app = request.app
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            rx = re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template))
            methods = {m.upper() for m in item if m.upper() in HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((re.compile(f"^{rx}$"), methods))
        app.state.allow_table = table
    found: set[str] = set()
    for rx, methods in table:
        if rx.match(request.url.path):
            found |= methods
    if not found:
        found = {m.strip() for m in fallback.split(",") if m.strip()}
    return sorted(found, key=lambda m: (HTTP_METHODS.index(m) if m in HTTP_METHODS else 99, m))


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    text = {
        400: "Bad request",
        401: "Missing or wrong credentials (X-API-Key, or a bearer token)",
        403: "The caller's role may not do this",
        404: "Unknown id",
        406: "Not acceptable",
        409: "Conflict",
        413: "Too large",
        415: "Unsupported media type",
        422: "Invalid input, or an infeasible scenario",
        412: "If-Match names another revision than the current one",
        429: "Too many requests",
        503: "Job queue full or service not ready",
        507: "The database's storage is full",
    }
    schema = {"$ref": "#/components/schemas/Problem"}
    if 401 in codes:  # every route that needs credentials also needs a role
        codes = tuple(sorted({*codes, 403}))
    return {
        c: {"description": text[c], "content": {PROBLEM_JSON: {"schema": schema}}} for c in codes
    }
