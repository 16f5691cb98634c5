"""Plan downloads: which format a request asks for, and the plan (or one of its tables)
in it. JSON responses that carry plans go through orjson (:class:`FastJSON`).

``?format=`` wins over ``Accept``; an unknown ``?format=`` is a 400 problem naming the
formats the route offers, an ``Accept`` that names none of them (and no wildcard) a 406.
Parquet needs pyarrow (the ``arrow`` extra): without it, 501.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from allocator.plan import jsonio

from .bodies import XLSX
from .problems import ApiError

CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
ZIP = "application/zip"
MEDIA = {"json": "application/json", "csv": CSV, "parquet": PARQUET, "xlsx": XLSX}
WILDCARDS = ("*/*", "application/*")


class FastJSON(JSONResponse):
    """JSON through orjson (``allocator.plan.jsonio``): several times faster than the
    standard library on a plan; NaN and infinity are refused (a ValueError: 500), as
    Starlette's ``allow_nan=False`` did. ``checked`` skips that walk for content read back
    from JSON (the store's plans), which cannot hold them."""

    def __init__(self, content: Any, *args: Any, checked: bool = False, **kw: Any):
        self._checked = checked
        super().__init__(content, *args, **kw)

    def render(self, content: Any) -> bytes:
        return jsonio.dumps(content, checked=getattr(self, "_checked", False))


def choose(
    request: Request,
    fmt: str | None,
    offered: tuple[str, ...],
    hint: str = "",
    media: dict[str, str] | None = None,
) -> str:
    """The format to answer in: ``fmt`` if given (400 unless offered), else by Accept
    (``media`` overrides a format's media type: the whole plan's parquet is a zip)."""
    media = MEDIA | (media or {})
    if fmt is not None:
        if fmt.lower() in offered:
            return fmt.lower()
        raise ApiError(
            400,
            "Unknown format",
            f"format {fmt!r} is not offered here; use one of: {', '.join(offered)}{hint}",
            "unknown-format",
        )
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return offered[0]
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "application/json" in types:
        return "json"
    for f in offered:
        if media[f] in types:
            return f
    if any(t in WILDCARDS or t.endswith("+json") for t in types):
        return offered[0]
    raise ApiError(
        406,
        "Not acceptable",
        f"this resource is offered as {', '.join(media[f] for f in offered)} "
        f"(or ?format={'|'.join(offered)})",
        "not-acceptable",
    )


def download_name(scenario_id: str, what: str, plan_id: str) -> str:
    """A download's file name (no suffix) that says what it holds:
    ``hyperscaler-plan-1a2b3c4d`` (the scenario, the table, the plan id's first 8
    characters); characters a file name should not carry become ``-``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", scenario_id).strip(".-") or "scenario"
    return f"{safe}-{what}-{plan_id[:8]}"


def attachment(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _parquet(plan: Any, tables: tuple[str, ...]) -> dict[str, bytes]:
    from allocator.plan.writers import parquet_files

    try:
        return parquet_files(plan, tables)
    except ImportError:
        raise ApiError(
            501,
            "Parquet not available",
            "this service has no pyarrow: install it with pip install 'allocator[arrow]', "
            "or ask for format=json, csv or xlsx",
            "parquet-unavailable",
        ) from None


def table_parquet(plan_dict: dict[str, Any], name: str, filename: str) -> Response:
    """One table of the plan as a Parquet file (the plan's summary in its metadata)."""
    from allocator import Plan

    files = _parquet(Plan.from_dict(plan_dict), (name,))
    return attachment(files[f"{name}.parquet"], PARQUET, f"{filename}.parquet")


def plan_download(plan_dict: dict[str, Any], fmt: str, filename: str) -> Response:
    """The whole plan: JSON (what ``allocator replan`` reads), the plan workbook, or a zip
    of the Parquet folder ``allocator solve -o plan.parquet`` writes."""
    if fmt == "json":
        return FastJSON(
            plan_dict,
            checked=True,
            headers={"Content-Disposition": f'inline; filename="{filename}.json"'},
        )
    from allocator import Plan

    plan = Plan.from_dict(plan_dict)
    if fmt == "xlsx":
        from allocator.plan.workbook import write_plan_workbook

        return attachment(write_plan_workbook(plan), XLSX, f"{filename}.xlsx")
    files = _parquet(plan, ("allocations", "segments", "pools", "reservations", "binding"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # Parquet is compressed
        for name, data in files.items():
            zf.writestr(f"{filename}.parquet/{name}", data)
    return attachment(buf.getvalue(), ZIP, f"{filename}.parquet.zip")
