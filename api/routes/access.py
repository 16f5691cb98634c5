"""Identities: who am I (/v1/me), the audit (/v1/audit), API keys (/v1/keys): see
docs/service-access.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ..auth import ADMIN, VIEWER, Authenticator, PrincipalDep, hash_key, new_key
from ..deps import PagingDep, StoreDep
from ..problems import ApiError, responses
from ..schemas import AuditEntry, KeyCreate, KeyCreated, KeyPublic, MePublic, Page
from ..store import KeyRow

router = APIRouter(prefix="/v1", tags=["access"])
RESERVED_NAMES = {"anonymous", "system", "allocator_api_key"}


@router.get(
    "/me",
    response_model=MePublic,
    summary="Who the caller is and their role",
    responses=responses(401),
    dependencies=[VIEWER],
)
def me(who: PrincipalDep) -> MePublic:
    return MePublic(name=who.name, role=who.role.label, auth=who.via)  # type: ignore[arg-type]


@router.get(
    "/audit",
    response_model=Page[AuditEntry],
    summary="Who did what and when, newest first",
    description="Every stored revision, job submitted, cancelled or deleted, approval, "
    "scenario deleted and key added or revoked, written in the same transaction as the "
    "change. Filters: `scenario`, `actor`, `action`.",
    responses=responses(401, 422),
    dependencies=[ADMIN],
)
def audit(
    store: StoreDep,
    page: PagingDep,
    scenario: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[AuditEntry]:
    rows, total = store.audit(page.limit, page.offset, scenario, actor, action)
    items = [
        AuditEntry(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            scenario_id=r.scenario_id,
            scenario_revision=r.scenario_revision,
            target=r.target,
            detail=r.detail,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def key_public(row: KeyRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
    }


def check_key_name(name: str) -> None:
    if name.strip().lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved: the audit uses it for callers without a key")


@router.get(
    "/keys",
    response_model=list[KeyPublic],
    summary="API keys (never the keys themselves), revoked ones too",
    responses=responses(401),
    dependencies=[ADMIN],
)
def list_keys(store: StoreDep) -> list[KeyPublic]:
    return [KeyPublic.model_validate(key_public(r)) for r in store.list_keys()]


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    summary="Make an API key for a person or a system",
    description="The answer holds the key, this once: the service stores its SHA-256 only.",
    responses=responses(400, 401, 415, 422),
    dependencies=[ADMIN],
)
def add_key(body: KeyCreate, store: StoreDep, who: PrincipalDep) -> KeyCreated:
    try:
        check_key_name(body.name)
    except ValueError as exc:
        raise ApiError(422, "Invalid request", str(exc), "invalid-request") from None
    key = new_key()
    row = store.add_key(body.name, body.role, hash_key(key), who.name)
    return KeyCreated.model_validate(key_public(row) | {"key": key})


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    summary="Revoke a key (by its id, or every active key of that name)",
    description="It stops working at once on this service; on other service processes "
    "sharing the database within ALLOCATOR_KEY_CACHE_S seconds.",
    responses=responses(401, 404, 422),
    dependencies=[ADMIN],
)
def revoke_key(
    key_id: Annotated[str, Path(max_length=200)],
    store: StoreDep,
    who: PrincipalDep,
    request: Request,
) -> Response:
    revoked = store.revoke_keys(key_id, who.name)
    auth: Authenticator = request.app.state.auth
    auth.forget()
    if not revoked:
        raise ApiError(404, "Not found", f"no active key {key_id!r}", "not-found")
    return Response(status_code=204)
