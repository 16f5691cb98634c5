"""Who is calling, and what their role lets them do (docs/service-access.md).

A caller is a :class:`Principal`: a name (what the audit records) and a :class:`Role`.
Credentials, in this order: ``X-API-Key`` (the service's ``ALLOCATOR_API_KEY``, an admin
key, or a key made by ``allocator-api keys add``), then ``Authorization: Bearer`` (an
OpenID Connect token, when ``ALLOCATOR_OIDC_ISSUER`` is set). A service with none of them
configured (no ``ALLOCATOR_API_KEY``, no OIDC, no key ever added) is open: every caller is
``anonymous`` with the admin role, as before there were roles.

Keys are 256-bit random tokens; the store holds their SHA-256 only. A slow password hash
(bcrypt, argon2) protects guessable secrets; a 256-bit token cannot be guessed, and a fast
hash lets the key be found by an indexed lookup instead of hashing against every stored key
(~0.1 s each) on every request. A verified key is trusted for ``key_cache_s`` seconds
without the database (see :class:`Authenticator`).

Roles are enforced in one place: each ``/v1`` route declares one of :data:`VIEWER`,
:data:`PLANNER`, :data:`ADMIN` in its ``dependencies`` (tests/api/test_roles.py walks the
app's routes and fails for a route without one)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from .config import Settings
from .problems import ApiError
from .store import Store


class Role(IntEnum):
    """What a caller may do; each role may do everything the ones below it may."""

    VIEWER = 1  # read scenarios, plans, jobs and analyses of stored plans
    PLANNER = 2  # also store scenarios, solve, run jobs and analyses, cancel jobs
    ADMIN = 3  # also delete, approve plans, read the audit and manage keys

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown role {text!r}: one of {', '.join(r.label for r in cls)}"
            ) from None


@dataclass(frozen=True)
class Principal:
    """The caller: ``name`` goes to the audit; ``via`` says how it was recognised
    (``open``, ``service-key``, ``key``, ``oidc``)."""

    name: str
    role: Role
    via: str


ANONYMOUS = Principal("anonymous", Role.ADMIN, "open")
SERVICE_KEY = Principal("ALLOCATOR_API_KEY", Role.ADMIN, "service-key")
KEY_PREFIX = "alk_"
CACHE_MAX = 10_000  # verified keys remembered at most (then the cache starts again)


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """What the store holds of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    """Turns credentials into a Principal. Verified keys are remembered for
    ``settings.key_cache_s`` seconds: a key revoked elsewhere (the CLI, another service
    process) works at most that much longer here; :meth:`forget` (called when this service
    revokes a key) drops them at once."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.monotonic
    ):
        self.store, self.settings, self.clock = store, settings, clock
        self._keys: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
        self._closed = settings.api_key is not None or settings.oidc_issuer is not None
        self._open_checked = -float("inf")
        self.oidc = OidcVerifier(settings) if settings.oidc_issuer else None

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._open_checked = -float("inf")

    def is_open(self) -> bool:
        """No credentials configured at all. Once any key was added the service stays
        closed (revoking every key does not open it). May read the database."""
        if self._closed:
            return False
        if self.clock() - self._open_checked < self.settings.key_cache_s:
            return True
        if self.store.has_keys():
            self._closed = True
            return False
        self._open_checked = self.clock()
        return True

    def open_known(self) -> bool | None:
        """:meth:`is_open` if known without the database, else None."""
        if self._closed:
            return False
        if self.clock() - self._open_checked < self.settings.key_cache_s:
            return True
        return None

    def cached(self, key: str) -> Principal | None:
        """The service key, or a key verified less than key_cache_s ago; None: ask
        :meth:`lookup`."""
        service = self.settings.api_key
        if service is not None and hmac.compare_digest(key.encode(), service.encode()):
            return SERVICE_KEY
        hit = self._keys.get(hash_key(key))
        if hit is not None and self.clock() < hit[1]:
            return hit[0]
        return None

    def lookup(self, key: str) -> Principal | None:
        """The principal of a stored, unrevoked key (database), remembered; None if none."""
        digest = hash_key(key)
        row = self.store.key_by_hash(digest)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, digest):  # pragma: no cover - found by it
            return None
        principal = Principal(row.name, Role.parse(row.role), "key")
        if self.settings.key_cache_s > 0:
            with self._lock:
                if len(self._keys) >= CACHE_MAX:
                    self._keys.clear()
                self._keys[digest] = (principal, self.clock() + self.settings.key_cache_s)
        return principal


class OidcVerifier:
    """OpenID Connect bearer tokens signed by the issuer's keys (a JWKS file, read at
    start): signature (asymmetric algorithms only), ``iss``, ``exp``, ``aud`` if set; the
    role from ``oidc_role_claim`` (a string or a list: the highest role any value maps to)."""

    ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")

    def __init__(self, settings: Settings):
        try:
            import jwt
        except ImportError as exc:  # pragma: no cover - a configuration error at start
            raise RuntimeError(
                "ALLOCATOR_OIDC_ISSUER needs PyJWT: pip install 'allocator[oidc]'"
            ) from exc
        if settings.oidc_jwks_file is None:
            raise RuntimeError("ALLOCATOR_OIDC_ISSUER needs ALLOCATOR_OIDC_JWKS_FILE")
        self.jwt = jwt
        self.settings = settings
        data = json.loads(settings.oidc_jwks_file.read_text(encoding="utf-8"))
        self.keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(data).keys}
        self.roles = {v.lower(): v.lower() for v in (r.label for r in Role)}
        self.roles |= {k: v.lower() for k, v in settings.oidc_roles.items()}

    def verify(self, token: str) -> Principal:
        """The token's principal; ApiError 401 if it is not valid, 403 if it maps to no
        role."""
        jwt, s = self.jwt, self.settings
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(kid) if kid is not None or len(self.keys) != 1 else None
            if key is None and kid is None and len(self.keys) == 1:
                key = next(iter(self.keys.values()))
            if key is None:
                raise jwt.InvalidTokenError(f"no key {kid!r} in the issuer's JWKS")
            algs = [key.algorithm_name] if key.algorithm_name in self.ALGORITHMS else []
            claims = jwt.decode(
                token,
                key.key,
                algorithms=algs or list(self.ALGORITHMS),
                issuer=s.oidc_issuer,
                audience=s.oidc_audience,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": s.oidc_audience is not None,
                },
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise unauthorized(f"bearer token refused: {exc}", bearer=True) from None
        name = str(claims.get(s.oidc_name_claim) or claims["sub"])
        values = claims.get(s.oidc_role_claim)
        values = values if isinstance(values, list) else [values]
        roles = [
            Role.parse(self.roles[v.lower()])
            for v in values
            if isinstance(v, str) and v.lower() in self.roles
        ]
        if not roles:
            raise ApiError(
                403,
                "Forbidden",
                f"the token of {name!r} has no role in its {s.oidc_role_claim!r} claim",
                "forbidden",
            )
        return Principal(f"oidc:{name}", max(roles), "oidc")


def unauthorized(detail: str, bearer: bool = False) -> ApiError:
    challenge = 'ApiKey, Bearer realm="allocator"' if bearer else "ApiKey"
    return ApiError(
        401, "Unauthorized", detail, "unauthorized", headers={"WWW-Authenticate": challenge}
    )


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A key made by `allocator-api keys add` (its role applies) or the service's "
    "ALLOCATOR_API_KEY (admin). Not needed by a service with no credentials configured.",
)
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An OpenID Connect token of the configured issuer (ALLOCATOR_OIDC_ISSUER).",
)


async def current_principal(
    request: Request,
    key: Annotated[str | None, Depends(api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller, or 401. Runs in the event loop; the database only on a cache miss (in a
    worker thread)."""
    auth: Authenticator = request.app.state.auth
    oidc = auth.oidc is not None
    if key is not None:
        principal = auth.cached(key) or await run_in_threadpool(auth.lookup, key)
        if principal is not None:
            return principal
    elif bearer is not None and auth.oidc is not None:
        return auth.oidc.verify(bearer.credentials)
    is_open = auth.open_known()
    if is_open is None:
        is_open = await run_in_threadpool(auth.is_open)
    if is_open:
        return ANONYMOUS
    if key is not None:
        raise unauthorized("wrong or revoked X-API-Key", oidc)
    raise unauthorized(
        "this service needs an X-API-Key header" + (" or a bearer token" if oidc else ""), oidc
    )


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _requires(role: Role) -> Callable[..., Any]:
    async def dependency(principal: PrincipalDep) -> Principal:
        if principal.role < role:
            raise ApiError(
                403,
                "Forbidden",
                f"{principal.name} has the {principal.role.label} role; this needs {role.label}",
                "forbidden",
            )
        return principal

    dependency.__name__ = f"requires_{role.label}"
    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


# declared on every /v1 route: `dependencies=[VIEWER]`
VIEWER: DependsParam = Depends(_requires(Role.VIEWER))
PLANNER: DependsParam = Depends(_requires(Role.PLANNER))
ADMIN: DependsParam = Depends(_requires(Role.ADMIN))


def required_role(route: Any) -> Role | None:
    """The role a route declares in its dependencies (None: none)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    roles = [getattr(d.call, "required_role", None) for d in dependant.dependencies]
    found = [r for r in roles if r is not None]
    return max(found) if found else None


def api_routes(app: Any) -> Iterator[Any]:
    """The app's routes with their full path, methods and dependencies (FastAPI from 0.16x
    keeps included routers apart; ``iter_route_contexts`` walks into them)."""
    from fastapi import routing

    walk = getattr(routing, "iter_route_contexts", None)
    yield from (walk(app.routes) if walk is not None else app.routes)
