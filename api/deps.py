"""Dependencies: settings, store, runners, API key, paging."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader

from .config import Settings
from .jobs import JobRunner, SyncSolver
from .problems import ApiError
from .store import Store

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Set when the service has ALLOCATOR_API_KEY."
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner  # type: ignore[no-any-return]


def get_sync(request: Request) -> SyncSolver:
    return request.app.state.sync  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
SyncDep = Annotated[SyncSolver, Depends(get_sync)]


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    if settings.api_key is None:
        return
    if key is None or not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise ApiError(
            401,
            "Unauthorized",
            "missing or wrong X-API-Key header",
            "unauthorized",
            headers={"WWW-Authenticate": "ApiKey"},
        )


class Paging:
    def __init__(
        self,
        settings: SettingsDep,
        limit: Annotated[
            int, Query(ge=1, le=1000, description="Page size (capped by the service).")
        ] = 20,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ):
        self.limit = min(limit, settings.page_size_max)
        self.offset = offset


PagingDep = Annotated[Paging, Depends(Paging)]
