"""Request bodies parsed and validated off the event loop.

A scenario body can be 8 MB of JSON whose validation takes seconds: it is read in the
event loop (that only awaits the socket), then parsed and validated elsewhere, so that
/healthz and every other request keep being answered. Small bodies go to a worker thread
(``run_in_threadpool``, at most ``PARSERS`` at a time); bodies over ``BIG`` bytes go to a
validator process (:mod:`api.validators`: one for JSON, others for workbooks, each
validation within a time limit), because ``json.loads`` of megabytes holds the GIL for a
long stretch in which the event loop could not run. The process sends back the scenario, or
the first ``MAX_ERRORS`` problems and their count. The routes declare their body schema with
:func:`body_openapi`.

``POST /v1/scenarios`` and ``PUT /v1/scenarios/{id}`` also take a scenario workbook
(:data:`XLSX`, the raw bytes): read with openpyxl, which is pure Python and holds the GIL
however small the file, so every workbook goes to a validator process. Its problems name
their sheet and cell (``demand!F7``); once it reads, the scenario's checks keep their field
paths. The reader's limits (:class:`~allocator.scenario.workbook.ReadLimits`: uncompressed
size, rows, columns and cells of the sheets it reads) are the service's settings; beyond
them the answer is 413 naming the sheet.
"""

from __future__ import annotations

import io
import json
from typing import Any, TypeVar

import anyio
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from allocator import Issue, Scenario, ScenarioError, validate_scenario
from allocator.errors import WorkbookTooLarge
from allocator.scenario.workbook import ReadLimits

from .config import MIB, Settings
from .problems import MAX_ERRORS, ApiError, loc_path
from .validators import Validators

M = TypeVar("M", bound=BaseModel)
PARSERS = 2  # small bodies parsed at once in threads; the others wait (without blocking)
BIG = 256 * 1024  # scenario bodies from this size on are validated in a validator process
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


def too_large(issues: list[Issue], title: str = "Workbook too large") -> ApiError:
    """The 413 for a body beyond the limits of what is read (``issues`` name the sheet)."""
    detail = "; ".join(str(i) for i in issues) + "; nothing was stored"
    return ApiError(413, title, detail, title.lower().replace(" ", "-"), issues)


def _json(raw: bytes, required: bool) -> Any:
    if not raw.strip():
        if required:
            raise invalid([Issue("", "a JSON body is required")])
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid([Issue("", f"not valid JSON: {exc}")]) from None
    except RecursionError:  # the decoder's limit (about 1,000 levels); no scenario is deep
        raise invalid([Issue("", "not valid JSON here: nested too deeply")]) from None


def parse_scenario(raw: bytes) -> Scenario:
    """JSON bytes to a validated scenario, or a 422 listing every problem (in a thread)."""
    scenario, issues = validate_scenario(_json(raw, required=True))
    if issues or scenario is None:
        raise invalid(issues)
    return scenario


def parse_workbook(raw: bytes, limits: ReadLimits | None = None) -> Scenario:
    """Workbook bytes to a validated scenario, or a 422 listing every problem (each at its
    sheet and cell while the workbook does not read; then at the scenario's field paths),
    or a 413 naming the sheet beyond the reader's ``limits``."""
    if not raw:
        raise invalid([Issue("", "a workbook body is required")])
    from allocator.scenario.workbook import read_workbook

    try:
        data = read_workbook(io.BytesIO(raw), limits)
    except WorkbookTooLarge as exc:
        raise too_large(exc.issues) from None
    except ScenarioError as exc:
        raise invalid(exc.issues) from None
    scenario, issues = validate_scenario(data)
    if issues or scenario is None:
        raise invalid(issues)
    return scenario


def parse_model(model: type[M], raw: bytes, required: bool) -> M | None:
    data = _json(raw, required)
    if data is None and required:  # the body is the JSON value null
        raise invalid([Issue("", "the body is null: send a JSON object ({} for none)")])
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


def read_limits(settings: Settings) -> ReadLimits:
    """The workbook reader's limits, from the service's settings."""
    return ReadLimits(
        rows=settings.workbook_max_rows,
        columns=settings.workbook_max_columns,
        cells=settings.workbook_max_cells,
        unzipped_bytes=settings.workbook_max_unzipped_mb * MIB,
    )


Checked = tuple[Scenario | None, int, str, list[Issue], int]


def check_scenario(raw: bytes, kind: str = "json", limits: ReadLimits | None = None) -> Checked:
    """In a validator process: the scenario, or the status, title, first problems and how
    many in all."""
    try:
        if kind == "xlsx":
            return parse_workbook(raw, limits), 200, "", [], 0
        return parse_scenario(raw), 200, "", [], 0
    except ApiError as exc:
        issues = exc.errors or []
        return None, exc.status, exc.title, issues[:MAX_ERRORS], len(issues)
    except MemoryError:
        issue = Issue("", "reading it needs more memory than a validator process may use")
        return None, 413, "Too large to validate", [issue], 1


def start_validator(app: Any) -> None:
    """Start the validator processes now (at startup), not on the first big body."""
    s: Settings = app.state.settings
    v = Validators(s.workbook_validators, s.validation_time_limit_s, s.validator_memory_mb)
    app.state.validators = v
    v.warm_up(check_scenario, b"{}")


def stop_validator(app: Any) -> None:
    v: Validators | None = getattr(app.state, "validators", None)
    if v is not None:
        v.stop()
        app.state.validators = None


async def scenario_body(request: Request) -> Scenario:
    """Dependency: the request body (JSON) as a validated :class:`Scenario`."""
    return await _scenario(request, "json")


async def scenario_or_workbook_body(request: Request) -> Scenario:
    """Dependency: the request body, JSON or a workbook (:data:`XLSX`), as a Scenario."""
    return await _scenario(request, "xlsx" if media_type(request) == XLSX else "json")


async def _scenario(request: Request, kind: str) -> Scenario:
    raw = await request.body()
    if len(raw) < BIG and kind == "json":
        async with _limiter(request):
            return await run_in_threadpool(parse_scenario, raw)
    settings: Settings = request.app.state.settings
    what = "the workbook" if kind == "xlsx" else "the JSON body"
    validators: Validators = request.app.state.validators
    scenario, status, title, issues, total = await validators.run(
        kind, what, check_scenario, raw, kind, read_limits(settings)
    )
    if scenario is not None:
        return scenario
    if status == 413:
        raise too_large(issues, title)
    raise invalid(issues, total)


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
