"""Request bodies parsed and validated off the event loop.

A scenario body can be 8 MB of JSON whose validation takes seconds: it is read in the
event loop (that only awaits the socket), then parsed and validated elsewhere, so that
/healthz and every other request keep being answered. Small bodies go to a worker thread
(``run_in_threadpool``, at most ``PARSERS`` at a time); bodies over ``BIG`` bytes go to a
validator process, because ``json.loads`` of megabytes holds the GIL for a long stretch in
which the event loop could not run. The process sends back the scenario, or the first
``MAX_ERRORS`` problems and their count. The routes declare their body schema with
:func:`body_openapi`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from allocator import Issue, Scenario, validate_scenario

from .problems import MAX_ERRORS, ApiError, loc_path

log = logging.getLogger("allocator.api")
M = TypeVar("M", bound=BaseModel)
PARSERS = 2  # small bodies parsed at once in threads; the others wait (without blocking)
BIG = 256 * 1024  # scenario bodies from this size on are validated in a validator process


def _limiter(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    lim = getattr(state, "parse_limiter", None)
    if lim is None:
        lim = state.parse_limiter = anyio.CapacityLimiter(PARSERS)
    return lim  # type: ignore[no-any-return]


def invalid(issues: list[Issue], total: int | None = None) -> ApiError:
    """The 422 for ``issues``; ``total`` when they are the first of more (counted, not sent)."""
    n = len(issues) if total is None else total
    extra = {"errors_truncated": n - len(issues)} if n > len(issues) else None
    detail = f"{n} problem(s) in the request"
    return ApiError(422, "Invalid request", detail, "invalid-request", issues, extra=extra)


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


def check_scenario(raw: bytes) -> tuple[Scenario | None, list[Issue], int]:
    """In a validator process: the scenario, or its first problems and how many in all."""
    try:
        return parse_scenario(raw), [], 0
    except ApiError as exc:
        issues = exc.errors or []
        return None, issues[:MAX_ERRORS], len(issues)


def _validator(app: Any) -> ProcessPoolExecutor:
    pool = getattr(app.state, "validator", None)
    if pool is None or getattr(pool, "_broken", False):
        from .jobs import _context
        from .lifeline import die_with_parent

        pool = app.state.validator = ProcessPoolExecutor(
            max_workers=1, mp_context=_context(), initializer=die_with_parent
        )
    return pool  # type: ignore[no-any-return]


def start_validator(app: Any) -> None:
    """Start the validator process now (at startup), not on the first big body."""
    _validator(app).submit(check_scenario, b"{}")


def stop_validator(app: Any) -> None:
    pool = getattr(app.state, "validator", None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
        app.state.validator = None


async def scenario_body(request: Request) -> Scenario:
    """Dependency: the request body as a validated :class:`Scenario`."""
    raw = await request.body()
    if len(raw) < BIG:
        async with _limiter(request):
            return await run_in_threadpool(parse_scenario, raw)
    loop = asyncio.get_running_loop()
    try:
        scenario, issues, total = await loop.run_in_executor(
            _validator(request.app), check_scenario, raw
        )
    except BrokenProcessPool:
        log.warning("the validator process died; validating in a thread")
        async with _limiter(request):
            return await run_in_threadpool(parse_scenario, raw)
    if scenario is None:
        raise invalid(issues, total)
    return scenario


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
