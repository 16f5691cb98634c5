"""Dependencies: settings, store, runners, paging (the caller and roles: api.auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from .config import Settings
from .jobs import JobRunner, SyncSolver
from .store import Store


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
