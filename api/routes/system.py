"""Health and readiness (no key: for probes); version (under /v1: needs the key)."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import allocator

from ..auth import VIEWER
from ..problems import responses
from ..schemas import Health, Ready, Version

router = APIRouter(tags=["system"])
v1_router = APIRouter(tags=["system"])  # /v1: a role, like every /v1 route


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:  # in the event loop itself: no thread pool to wait for
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Database reachable and writable, worker pool up",
    description="Not ready (503) while a write of a typical body (ALLOCATOR_READY_WRITE_BYTES, "
    "1 MiB) would not fit: on SQLite, while the disk or the database's page limit lacks "
    "that room (with the storage reserve whole); after a write failed for want of space, "
    "until a probe write of that size succeeds.",
    responses={503: {"model": Ready, "description": "Not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    st = request.app.state
    db = st.store.ping() and st.store.writable()
    workers = st.runner.alive() and st.sync.alive()
    ready = Ready(status="ready" if db and workers else "not ready", database=db, workers=workers)
    return JSONResponse(ready.model_dump(), status_code=200 if ready.status == "ready" else 503)


@v1_router.get(
    "/v1/version",
    response_model=Version,
    summary="Service and solver versions",
    responses=responses(401),
    dependencies=[VIEWER],
)
def version() -> Version:
    return Version(version=allocator.__version__, api="v1", highs=metadata.version("highspy"))
