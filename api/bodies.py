"""Request bodies parsed and validated off the event loop.

A scenario body can be 8 MB of JSON whose validation takes seconds: it is read in the
event loop (that only awaits the socket), then parsed and validated elsewhere, so that
/healthz and every other request keep being answered. Small bodies go to a worker thread
(``run_in_threadpool``, at most ``PARSERS`` at a time); bodies over ``BIG`` bytes go to a
validator process, because ``json.loads`` of megabytes holds the GIL for a long stretch in
which the event loop could not run. The process sends back the scenario, or the first
``MAX_ERRORS`` problems and their count. The routes declare their body schema with
:func:`body_openapi`.

``POST /v1/scenarios`` and ``PUT /v1/scenarios/{id}`` also take a scenario workbook
(:data:`XLSX`, the raw bytes): read with openpyxl, which is pure Python and holds the GIL
however small the file, so every workbook goes to the validator process. Its problems name
their sheet and cell (``demand!F7``); once it reads, the scenario's checks keep their field
paths. The zip's declared uncompressed size is capped (:data:`MAX_UNZIPPED`) before
openpyxl opens it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from allocator import Issue, Scenario, ScenarioError, validate_scenario

from .problems import MAX_ERRORS, ApiError, loc_path

log = logging.getLogger("allocator.api")
M = TypeVar("M", bound=BaseModel)
PARSERS = 2  # small bodies parsed at once in threads; the others wait (without blocking)
BIG = 256 * 1024  # scenario bodies from this size on are validated in a validator process
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UNZIPPED = 128 * 1024 * 1024  # a workbook's parts, uncompressed (a zip bomb stops here)


def media_type(request: Request) -> str:
    """The body's media type, lower case, without parameters (RFC 9110)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


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


def parse_workbook(raw: bytes) -> Scenario:
    """Workbook bytes to a validated scenario, or a 422 listing every problem (each at its
    sheet and cell while the workbook does not read; then at the scenario's field paths)."""
    if not raw:
        raise invalid([Issue("", "a workbook body is required")])
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            size = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise invalid([Issue("", f"not an Excel workbook (.xlsx): {exc}")]) from None
    if size > MAX_UNZIPPED:
        raise invalid([Issue("", f"the workbook unpacks to {size:,} bytes, over {MAX_UNZIPPED:,}")])
    from allocator.scenario.workbook import read_workbook

    try:
        data = read_workbook(io.BytesIO(raw))
    except ScenarioError as exc:
        raise invalid(exc.issues) from None
    scenario, issues = validate_scenario(data)
    if issues or scenario is None:
        raise invalid(issues)
    return scenario


PARSERS_BY_TYPE = {"json": parse_scenario, "xlsx": parse_workbook}


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


def check_scenario(raw: bytes, kind: str = "json") -> tuple[Scenario | None, list[Issue], int]:
    """In a validator process: the scenario, or its first problems and how many in all."""
    try:
        return PARSERS_BY_TYPE[kind](raw), [], 0
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
    """Dependency: the request body (JSON) as a validated :class:`Scenario`."""
    return await _scenario(request, "json")


async def scenario_or_workbook_body(request: Request) -> Scenario:
    """Dependency: the request body, JSON or a workbook (:data:`XLSX`), as a Scenario."""
    return await _scenario(request, "xlsx" if media_type(request) == XLSX else "json")


async def _scenario(request: Request, kind: str) -> Scenario:
    raw = await request.body()
    parse = PARSERS_BY_TYPE[kind]
    if len(raw) < BIG and kind == "json":
        async with _limiter(request):
            return await run_in_threadpool(parse, raw)
    loop = asyncio.get_running_loop()
    try:
        scenario, issues, total = await loop.run_in_executor(
            _validator(request.app), check_scenario, raw, kind
        )
    except BrokenProcessPool:
        log.warning("the validator process died; validating in a thread")
        async with _limiter(request):
            return await run_in_threadpool(parse, raw)
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
    schema_name: str,
    required: bool = True,
    examples: dict[str, Any] | None = None,
    workbook: bool = False,
) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of components/schemas/<schema_name>
    (and, with ``workbook``, the same as an Excel workbook's raw bytes)."""
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
    if examples:
        content["examples"] = examples
    media: dict[str, Any] = {"application/json": content}
    if workbook:
        media[XLSX] = {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "A scenario workbook (.xlsx, as `allocator convert` or "
                "`allocator template` write it); problems name their sheet and cell.",
            }
        }
    return {"requestBody": {"required": required, "content": media}}
