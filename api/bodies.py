"""Request bodies parsed and validated off the event loop.

A scenario body can be 8 MB of JSON whose validation takes seconds: it is read in the
event loop (that only awaits the socket) and then parsed and validated in a worker thread
(``run_in_threadpool``), at most ``PARSERS`` at a time, so that /healthz and every other
request keep being answered. The routes declare their body schema with :func:`body_openapi`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import anyio
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from allocator import Issue, Scenario, validate_scenario

from .problems import ApiError, loc_path

M = TypeVar("M", bound=BaseModel)
PARSERS = 2  # bodies parsed at once; the others wait (without blocking the loop)


def _limiter(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    lim = getattr(state, "parse_limiter", None)
    if lim is None:
        lim = state.parse_limiter = anyio.CapacityLimiter(PARSERS)
    return lim  # type: ignore[no-any-return]


def invalid(issues: list[Issue]) -> ApiError:
    return ApiError(
        422,
        "Invalid request",
        f"{len(issues)} problem(s) in the request",
        "invalid-request",
        issues,
    )


def _json(raw: bytes, required: bool) -> Any:
    if not raw.strip():
        if required:
            raise invalid([Issue("", "a JSON body is required")])
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid([Issue("", f"not valid JSON: {exc}")]) from None


def parse_scenario(raw: bytes) -> Scenario:
    """JSON bytes to a validated scenario, or a 422 listing every problem (in a thread)."""
    scenario, issues = validate_scenario(_json(raw, required=True))
    if issues or scenario is None:
        raise invalid(issues)
    return scenario


def parse_model(model: type[M], raw: bytes, required: bool) -> M | None:
    data = _json(raw, required)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for e in exc.errors(include_url=False):
            msg = str(e["msg"]).removeprefix("Value error, ")
            issues.append(Issue(loc_path(tuple(e["loc"])), msg))
        raise invalid(list(dict.fromkeys(issues))) from None


async def scenario_body(request: Request) -> Scenario:
    """Dependency: the request body as a validated :class:`Scenario`."""
    raw = await request.body()
    async with _limiter(request):
        return await run_in_threadpool(parse_scenario, raw)


def model_body(model: type[M], required: bool = True) -> Any:
    """Dependency factory: the request body as ``model`` (None when optional and empty)."""

    async def dep(request: Request) -> M | None:
        raw = await request.body()
        async with _limiter(request):
            return await run_in_threadpool(parse_model, model, raw, required)

    return dep


def body_openapi(
    schema_name: str, required: bool = True, examples: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of components/schemas/<schema_name>."""
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
    if examples:
        content["examples"] = examples
    return {"requestBody": {"required": required, "content": {"application/json": content}}}
