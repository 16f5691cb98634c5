"""Persistence through SQLAlchemy: scenarios (with revisions) and plan jobs.

SQLite file by default (WAL mode, so readers never wait on the job writer); any SQLAlchemy
URL by setting (PostgreSQL: ``postgresql+psycopg://…``). Every write is one transaction.
"""

from __future__ import annotations

import errno
import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NamedTuple, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from allocator.plan import jsonio

from . import migrations
from .space import Space

metadata = sa.MetaData()
# The tables as the newest revision in api/migrations/versions makes them (a test compares
# the two); a change to them is a new revision there.

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    # 1 for the first scenario stored under the id; one more for each one stored under it
    # after a delete (plans name the generation they were made from)
    sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
)

# an id whose scenario was deleted: its last generation and the highest revision it (or a
# job of it) reached; a scenario stored again under the id continues from there
deleted_scenarios = sa.Table(
    "deleted_scenarios",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("deleted_at", sa.DateTime(), nullable=False),
)

# every revision a scenario had, one row each: a PUT that got revision n wrote row n
scenario_revisions = sa.Table(
    "scenario_revisions",
    metadata,
    sa.Column("scenario_id", sa.String(128), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    # who saved it (a key's name, an OIDC subject; None: saved before identities existed)
    sa.Column("saved_by", sa.String(200)),
)  # the primary key makes (scenario_id, revision) unique: no revision is handed out twice

# a row the readiness check writes and deletes to learn whether the store takes writes
write_probe = sa.Table(
    "write_probe",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pad", sa.Text, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("scenario_id", sa.String(128), nullable=False, index=True),
    sa.Column("scenario_revision", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("scenario_body", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("request_hash", sa.String(64)),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("started_at", sa.DateTime()),
    sa.Column("finished_at", sa.DateTime()),
    sa.Column("heartbeat_at", sa.DateTime()),
    sa.Column("owner", sa.String(64)),
    # how many times a worker claimed it; an interrupted job is re-queued once
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # the running job's latest progress line (JSON: message, phase, round, elapsed_s)
    sa.Column("progress", sa.Text),
    # what the job computes: "plan" (a plan job) or an analysis run as a job ("what-if",
    # "frontier", "sensitivity", "counterfactual", "fair", "alternatives")
    sa.Column("kind", sa.String(32), nullable=False, server_default="plan"),
    # the generation of the scenario the job was made from (0: an earlier scenario under
    # the id, from before generations were recorded)
    sa.Column("scenario_generation", sa.Integer, nullable=False, server_default="1"),
    # who submitted the job (None: submitted before identities existed)
    sa.Column("created_by", sa.String(200)),
)
# results an earlier version stored with NaN or infinity (not JSON), moved aside unchanged
# by revision 0004; their jobs are marked failed
unreadable_results = sa.Table(
    "unreadable_results",
    metadata,
    sa.Column("plan_id", sa.String(36), primary_key=True),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("found_at", sa.DateTime(), nullable=False),
)

# ------------------------------------------------- identities (docs/service-access.md)
# API keys per person or system: only the SHA-256 of the key is stored (the key itself is
# shown once, when it is made); a revoked key keeps its row (the audit names it)
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("revoked_at", sa.DateTime()),
    sa.Column("revoked_by", sa.String(200)),
)

# who did what and when: revisions, jobs, cancels, deletions, approvals, keys; newest = largest id
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("scenario_id", sa.String(128), index=True),
    sa.Column("scenario_revision", sa.Integer),
    sa.Column("target", sa.String(64)),
    sa.Column("detail", sa.Text),
)

# each scenario's approved plan, at most one (the primary key): approving another replaces
# the row; the history of approvals is in audit_log
plan_approvals = sa.Table(
    "plan_approvals",
    metadata,
    sa.Column("scenario_id", sa.String(128), primary_key=True),
    sa.Column("plan_id", sa.String(36), nullable=False, unique=True),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("approved_at", sa.DateTime(), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)
# actual usage read back from the schedulers (POST /v1/plans/{id}/usage): one row per plan,
# GPU-hours per segment, accelerator x region and period as JSON; a new upload replaces it
plan_usage = sa.Table(
    "plan_usage",
    metadata,
    sa.Column("plan_id", sa.String(36), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(200)),
)
PLAN = "plan"  # the kind of a plan job
_QUEUE_LOCK = 0x616C6C6F  # PostgreSQL advisory lock serialising the queue-limit check


class NonFiniteError(ValueError):
    """A value to store holds NaN or infinity, which JSON cannot carry: nothing is written."""


def dumps(obj: Any) -> str:
    """JSON text of ``obj`` (orjson, as the CLI and the API write it); NonFiniteError for
    NaN or infinity (never stored as such)."""
    try:
        return jsonio.dumps(obj).decode()
    except ValueError as exc:
        raise NonFiniteError(f"non-finite number (NaN or infinity) refused: {exc}") from None


def loads(text: str | bytes) -> Any:
    return jsonio.loads(text)


QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
PENDING = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED)


class RevisionMismatch(Exception):
    """A conditional replace found another revision (None: no such scenario)."""

    def __init__(self, current: int | None):
        self.current = current
        super().__init__(f"current revision is {current}")


class QueueFull(Exception):
    """The queued + running jobs reached the limit; nothing was inserted."""


class StoreFull(Exception):
    """The database cannot write: its disk (or its size limit) is full."""


class PlanApproved(Exception):
    """The plan is its scenario's approved plan: it can be superseded, not deleted."""

    def __init__(self, scenario_id: str):
        self.scenario_id = scenario_id
        super().__init__(f"the approved plan of scenario {scenario_id!r}")


class NotApprovable(Exception):
    """A plan that cannot be approved: ``reason`` says why (its status, or its scenario is
    gone)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full", PostgreSQL's disk_full (53100), or ENOSPC."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        orig = exc.orig
        if getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "pgcode", None) == "53100":
            return True
        text = str(orig).lower()
        return "database or disk is full" in text or "no space left on device" in text
    return False


def now() -> datetime:
    """Naive UTC: stored the same way in SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(v: datetime | None) -> datetime | None:
    return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


@dataclass
class ScenarioRow:
    id: str
    revision: int
    name: str
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    generation: int = 1


@dataclass
class PlanRow:
    id: str
    scenario_id: str
    scenario_revision: int
    status: str
    options: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    idempotency_key: str | None
    request_hash: str | None
    attempts: int = 0
    progress: dict[str, Any] | None = None
    kind: str = "plan"
    scenario_generation: int = 1
    created_by: str | None = None


@dataclass
class RevisionRow:
    """One revision of a scenario's history."""

    revision: int
    name: str
    saved_at: datetime
    saved_by: str | None


@dataclass
class Approval:
    """A scenario's approved plan."""

    scenario_id: str
    plan_id: str
    approved_by: str
    approved_at: datetime
    comment: str


@dataclass
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    scenario_id: str | None
    scenario_revision: int | None
    target: str | None
    detail: dict[str, Any] | None


@dataclass
class KeyRow:
    """An API key as stored: its hash, never the key."""

    id: str
    name: str
    role: str
    key_hash: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None


SYSTEM = "system"  # the actor of writes no caller asked for (the bundled examples at start)


def _audit(
    c: sa.Connection,
    actor: str | None,
    action: str,
    scenario_id: str | None = None,
    revision: int | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit entry, written in the transaction ``c`` of the change it records."""
    c.execute(
        audit_log.insert().values(
            at=now(),
            actor=actor or SYSTEM,
            action=action,
            scenario_id=scenario_id,
            scenario_revision=revision,
            target=target,
            detail=dumps(detail) if detail else None,
        )
    )


class Claimed(NamedTuple):
    """A job a worker claimed (:meth:`Store.claim_next`)."""

    id: str
    scenario: dict[str, Any]
    options: dict[str, Any]
    kind: str = PLAN


def make_engine(url: str) -> Engine:
    kw: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            kw["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
    engine = sa.create_engine(url, **kw, pool_pre_ping=True)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


P = ParamSpec("P")
R = TypeVar("R")


def frees_space(method: Callable[P, R]) -> Callable[P, R]:
    """A delete or cancel works on a full disk: if it fails for want of space, the store
    gives up its reserve (api.space) and tries once more."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except StoreFull:
            store = args[0]
            assert isinstance(store, Store)
            if not store.space.release():
                raise
            return method(*args, **kwargs)

    return run


class Store:
    def __init__(self, url: str, reserve_bytes: int = 0, ready_bytes: int = 16384):
        """``reserve_bytes``: the SQLite reserve a delete gives up on a full disk (see
        api.space); ``ready_bytes``: the write :meth:`writable` wants room for."""
        self.url = url
        self.engine = make_engine(url)
        # the last write that failed for want of space, until a write succeeds
        self.write_error: str | None = None
        self.ready_bytes = ready_bytes
        migrations.upgrade(self.engine)  # under a lock: services may start together
        self.space = Space(self.engine, reserve_bytes)
        self.space.keep_reserve()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """A write transaction. A failure for want of space raises StoreFull and is
        remembered (see :meth:`writable`) until a write succeeds."""
        try:
            with self.engine.begin() as c:
                yield c
        except (sa.exc.DBAPIError, OSError) as exc:
            if is_disk_full(exc):
                self.write_error = str(getattr(exc, "orig", exc)) or "disk full"
                raise StoreFull(self.write_error) from exc
            raise

    def _wrote(self) -> None:
        self.write_error = None

    def writable(self) -> bool:
        """Whether a write of ``ready_bytes`` fits: on SQLite, the disk and the database's
        page limit have that room (with the reserve whole); after a write failed for want
        of space, also a probe write of that size succeeds. The reserve is written again
        when there is room for it."""
        room = self.space.room()
        if room is not None and room < self.ready_bytes:
            return False
        if self.write_error is not None:
            key = str(uuid.uuid4())
            try:
                with self._tx() as c:
                    c.execute(write_probe.insert().values(id=key, pad="x" * self.ready_bytes))
                with self._tx() as c:
                    c.execute(write_probe.delete().where(write_probe.c.id == key))
            except (StoreFull, sa.exc.SQLAlchemyError, OSError):
                return False
            self._wrote()
        self.space.keep_reserve()
        return True

    def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ scenarios
    @staticmethod
    def _scenario(r: Any) -> ScenarioRow:
        created, updated = _utc(r.created_at), _utc(r.updated_at)
        assert created is not None and updated is not None
        return ScenarioRow(r.id, r.revision, r.name, loads(r.body), created, updated, r.generation)

    def get_scenario(self, sid: str) -> ScenarioRow | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(scenarios).where(scenarios.c.id == sid)).first()
        return self._scenario(r) if r else None

    def list_scenarios(self, limit: int, offset: int) -> tuple[list[ScenarioRow], int]:
        with self.engine.connect() as c:
            total = c.execute(sa.select(sa.func.count()).select_from(scenarios)).scalar_one()
            rows = c.execute(
                sa.select(scenarios).order_by(scenarios.c.id).limit(limit).offset(offset)
            ).all()
        return [self._scenario(r) for r in rows], int(total)

    @staticmethod
    def _insert(c: sa.Connection, sid: str, body: dict[str, Any]) -> None:
        """Insert a new scenario: revision 1, generation 1, or, under a deleted scenario's
        id, one past that scenario's revision and generation."""
        gone = c.execute(
            sa.select(deleted_scenarios.c.generation, deleted_scenarios.c.revision).where(
                deleted_scenarios.c.id == sid
            )
        ).first()
        t = now()
        c.execute(
            scenarios.insert().values(
                id=sid,
                revision=gone.revision + 1 if gone else 1,
                generation=gone.generation + 1 if gone else 1,
                name=str(body.get("name", sid)),
                body=dumps(body),
                created_at=t,
                updated_at=t,
            )
        )

    @staticmethod
    def _record(c: sa.Connection, sid: str, actor: str | None, created: bool) -> ScenarioRow:
        """The row as this transaction left it, written to the history (saved by
        ``actor``) and the audit too."""
        r = c.execute(sa.select(scenarios).where(scenarios.c.id == sid)).one()
        c.execute(
            scenario_revisions.insert().values(
                scenario_id=sid,
                revision=r.revision,
                name=r.name,
                body=r.body,
                created_at=r.updated_at,
                saved_by=actor or SYSTEM,
            )
        )
        _audit(c, actor, "scenario.create" if created else "scenario.revise", sid, r.revision)
        return Store._scenario(r)

    def create_scenario(
        self, sid: str, body: dict[str, Any], actor: str | None = None
    ) -> ScenarioRow | None:
        """Insert; None if the id is taken. ``actor``: who (in the history and the audit)."""
        try:
            with self._tx() as c:
                self._insert(c, sid, body)
                row = self._record(c, sid, actor, created=True)
        except sa.exc.IntegrityError:
            return None
        self._wrote()
        return row

    def replace_scenario(
        self,
        sid: str,
        body: dict[str, Any],
        expected: int | None = None,
        must_exist: bool = False,
        actor: str | None = None,
    ) -> tuple[ScenarioRow, bool]:
        """Replace (revision + 1) or create; returns the row and whether it was created.

        The revision is raised by the UPDATE itself (``revision = revision + 1``), the first
        statement of the transaction: on SQLite it takes the write lock, on PostgreSQL the
        row lock, so concurrent replaces queue up and each gets the next revision. With
        ``expected`` only that revision is replaced, and ``must_exist`` refuses to create;
        either raises :class:`RevisionMismatch` otherwise."""
        for attempt in (1, 2, 3):
            try:
                with self._tx() as c:
                    q = scenarios.update().where(scenarios.c.id == sid)
                    if expected is not None:
                        q = q.where(scenarios.c.revision == expected)
                    n = c.execute(
                        q.values(
                            revision=scenarios.c.revision + 1,
                            name=str(body.get("name", sid)),
                            body=dumps(body),
                            updated_at=now(),
                        )
                    ).rowcount
                    created = not n
                    if created:
                        if expected is not None or must_exist:
                            cur = c.execute(
                                sa.select(scenarios.c.revision).where(scenarios.c.id == sid)
                            ).first()
                            raise RevisionMismatch(cur.revision if cur else None)
                        self._insert(c, sid, body)
                    row = self._record(c, sid, actor, created)
                break
            except sa.exc.IntegrityError:  # a concurrent PUT created it first: replace that
                if attempt == 3:
                    raise
        self._wrote()
        return row, created

    def scenario_history(self, sid: str) -> list[tuple[int, datetime]]:
        """(revision, written at) of every revision the scenario had, oldest first."""
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(scenario_revisions.c.revision, scenario_revisions.c.created_at)
                .where(scenario_revisions.c.scenario_id == sid)
                .order_by(scenario_revisions.c.revision)
            ).all()
        return [(r.revision, _utc(r.created_at)) for r in rows]  # type: ignore[misc]

    def revisions(self, sid: str, limit: int, offset: int) -> tuple[list[RevisionRow], int]:
        """The scenario's revisions, newest first, with who saved each; and how many."""
        where = scenario_revisions.c.scenario_id == sid
        with self.engine.connect() as c:
            total = c.execute(
                sa.select(sa.func.count()).select_from(scenario_revisions).where(where)
            ).scalar_one()
            rows = c.execute(
                sa.select(
                    scenario_revisions.c.revision,
                    scenario_revisions.c.name,
                    scenario_revisions.c.created_at,
                    scenario_revisions.c.saved_by,
                )
                .where(where)
                .order_by(scenario_revisions.c.revision.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        out = [RevisionRow(r.revision, r.name, _utc(r.created_at), r.saved_by) for r in rows]  # type: ignore[arg-type]
        return out, int(total)

    @frees_space
    def delete_scenario(self, sid: str, actor: str | None = None) -> bool:
        """Delete the scenario and its history, cancel its queued jobs; its finished plans
        stay. The id's tombstone keeps its generation and highest revision. Its approval (if
        any) is dropped; the audit entry names it and the jobs cancelled."""
        with self._tx() as c:
            r = c.execute(
                scenarios.delete()
                .where(scenarios.c.id == sid)
                .returning(scenarios.c.generation, scenarios.c.revision)
            ).first()
            if r is not None:
                top = c.execute(
                    sa.select(sa.func.max(plans.c.scenario_revision)).where(
                        plans.c.scenario_id == sid
                    )
                ).scalar()
                c.execute(deleted_scenarios.delete().where(deleted_scenarios.c.id == sid))
                c.execute(
                    deleted_scenarios.insert().values(
                        id=sid,
                        generation=r.generation,
                        revision=max(r.revision, top or 0),
                        deleted_at=now(),
                    )
                )
                c.execute(
                    scenario_revisions.delete().where(scenario_revisions.c.scenario_id == sid)
                )
                cancelled = c.execute(
                    plans.update()
                    .where(plans.c.scenario_id == sid, plans.c.status == QUEUED)
                    .values(status=CANCELLED, finished_at=now())
                ).rowcount
                approved = c.execute(
                    sa.select(plan_approvals.c.plan_id).where(plan_approvals.c.scenario_id == sid)
                ).first()
                c.execute(plan_approvals.delete().where(plan_approvals.c.scenario_id == sid))
                detail: dict[str, Any] = {"cancelled_jobs": int(cancelled)}
                if approved is not None:
                    detail["approval_dropped"] = approved.plan_id
                _audit(c, actor, "scenario.delete", sid, r.revision, None, detail)
        if r is not None:
            self._wrote()
        return r is not None

    # ---------------------------------------------------------------------- plans
    @staticmethod
    def _plan(r: Any) -> PlanRow:
        m = r._mapping
        result = m.get("result")
        return PlanRow(
            id=m["id"],
            scenario_id=m["scenario_id"],
            scenario_revision=m["scenario_revision"],
            status=m["status"],
            options=loads(m["options"]),
            result=loads(result) if result else None,
            error=loads(m["error"]) if m["error"] else None,
            created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
            started_at=_utc(m["started_at"]),
            finished_at=_utc(m["finished_at"]),
            idempotency_key=m["idempotency_key"],
            request_hash=m["request_hash"],
            attempts=int(m["attempts"] or 0),
            progress=loads(m["progress"]) if m.get("progress") else None,
            kind=m.get("kind") or PLAN,
            scenario_generation=m.get("scenario_generation", 1),
            created_by=m.get("created_by"),
        )

    _summary_cols: ClassVar[list[Any]] = [
        c for c in plans.c if c.name not in ("result", "scenario_body")
    ]

    def get_plan(self, pid: str, with_result: bool = True) -> PlanRow | None:
        cols = list(plans.c) if with_result else self._summary_cols
        with self.engine.connect() as c:
            r = c.execute(sa.select(*cols).where(plans.c.id == pid)).first()
        return self._plan(r) if r is not None else None

    def get_plan_text(self, pid: str) -> tuple[PlanRow, str | None] | None:
        """The job (``result`` None) and its plan as the JSON text stored, unparsed: GET
        sends that text as it is rather than parse and write megabytes again."""
        with self.engine.connect() as c:
            r = c.execute(
                sa.select(*self._summary_cols, plans.c.result.label("result_text")).where(
                    plans.c.id == pid
                )
            ).first()
        if r is None:
            return None
        text = r._mapping["result_text"]
        return self._plan(r), text or None

    def plan_scenario(self, pid: str) -> dict[str, Any] | None:
        """The scenario exactly as the plan was solved from."""
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.scenario_body).where(plans.c.id == pid)).first()
        return loads(r.scenario_body) if r else None

    def plan_by_key(self, key: str) -> PlanRow | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.id).where(plans.c.idempotency_key == key)).first()
        return self.get_plan(r.id, with_result=False) if r else None

    def list_plans(
        self,
        scenario: str | None,
        status: str | None,
        limit: int,
        offset: int,
        kind: str | None = PLAN,
    ) -> tuple[list[PlanRow], int]:
        """Jobs newest first, and how many match; ``kind`` None: jobs of every kind.
        ``scenario``: the jobs of the scenario stored under that id now (of its generation),
        or, if there is none, of the deleted scenarios that had the id."""
        conds = []
        if kind is not None:
            conds.append(plans.c.kind == kind)
        if scenario is not None:
            current = (
                sa.select(scenarios.c.generation)
                .where(scenarios.c.id == scenario)
                .scalar_subquery()
            )
            conds.append(plans.c.scenario_id == scenario)
            conds.append(
                plans.c.scenario_generation
                == sa.func.coalesce(current, plans.c.scenario_generation)
            )
        if status is not None:
            conds.append(plans.c.status == status)
        q = sa.select(*self._summary_cols).where(*conds)
        n = sa.select(sa.func.count()).select_from(plans).where(*conds)
        q = q.order_by(plans.c.created_at.desc(), plans.c.id).limit(limit).offset(offset)
        with self.engine.connect() as c:
            total = c.execute(n).scalar_one()
            rows = c.execute(q).all()
        return [self._plan(r) for r in rows], int(total)

    def latest_done_plan(self, scenario: ScenarioRow) -> PlanRow | None:
        """The newest finished plan of the scenario's revision (never one of an earlier
        scenario stored under the same id)."""
        with self.engine.connect() as c:
            r = c.execute(
                sa.select(plans.c.id)
                .where(
                    plans.c.scenario_id == scenario.id,
                    plans.c.scenario_generation == scenario.generation,
                    plans.c.scenario_revision == scenario.revision,
                    plans.c.status == DONE,
                    plans.c.kind == PLAN,
                )
                .order_by(plans.c.finished_at.desc())
                .limit(1)
            ).first()
        return self.get_plan(r.id) if r else None

    def count_pending(self) -> int:
        with self.engine.connect() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count()).select_from(plans).where(plans.c.status.in_(PENDING))
                ).scalar_one()
            )

    def create_plan(
        self,
        scenario: ScenarioRow,
        options: dict[str, Any],
        idempotency_key: str | None,
        request_hash: str | None,
        max_pending: int | None = None,
        kind: str = PLAN,
        actor: str | None = None,
    ) -> tuple[PlanRow, bool]:
        """Queue a job (a plan job, or an analysis of ``kind``); returns it and whether it
        is new.

        With ``max_pending`` the count of queued + running jobs and the insert are one
        statement (``INSERT … SELECT … WHERE (SELECT count(*) …) < limit``), under SQLite's
        write lock or, on PostgreSQL, a transaction-scoped advisory lock: the limit is hard;
        over it :class:`QueueFull` is raised. A job with the same ``idempotency_key``
        inserted by a concurrent request is returned instead (not new)."""
        pid = str(uuid.uuid4())
        values: dict[str, Any] = {
            "id": pid,
            "scenario_id": scenario.id,
            "scenario_revision": scenario.revision,
            "scenario_generation": scenario.generation,
            "status": QUEUED,
            "options": dumps(options),
            "scenario_body": dumps(scenario.body),
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "created_at": now(),
            "attempts": 0,
            "kind": kind,
            "created_by": actor or SYSTEM,
        }
        try:
            with self._tx() as c:
                if max_pending is None:
                    n = c.execute(plans.insert().values(**values)).rowcount
                else:
                    if self.engine.dialect.name == "postgresql":
                        c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _QUEUE_LOCK})
                    pending = (
                        sa.select(sa.func.count())
                        .select_from(plans)
                        .where(plans.c.status.in_(PENDING))
                        .scalar_subquery()
                    )
                    pg = self.engine.dialect.name == "postgresql"
                    cols = []
                    for k, v in values.items():
                        lit = sa.literal(v, plans.c[k].type)
                        cols.append((sa.cast(lit, plans.c[k].type) if pg else lit).label(k))
                    row_values = sa.select(*cols).where(pending < max_pending)
                    insert = plans.insert().from_select(list(values), row_values)
                    # RETURNING counts the rows (psycopg gives no rowcount for this INSERT)
                    n = len(c.execute(insert.returning(plans.c.id)).all())
                if n:
                    _audit(
                        c, actor, "job.submit", scenario.id, scenario.revision, pid, {"kind": kind}
                    )
        except sa.exc.IntegrityError:
            n = 0  # the same Idempotency-Key, inserted by a concurrent request
            if idempotency_key is None:
                raise
        if not n:
            prior = self.plan_by_key(idempotency_key) if idempotency_key is not None else None
            if prior is None:
                raise QueueFull
            return prior, False
        self._wrote()
        row = self.get_plan(pid, with_result=False)
        assert row is not None
        return row, True

    @staticmethod
    def _lock_plan(c: sa.Connection, pid: str) -> Any:
        """The job's row, locked for this transaction: a no-op UPDATE takes PostgreSQL's row
        lock and SQLite's write lock before anything is read, so an approval and a deletion
        of the same plan run one after the other. None if there is no such job."""
        c.execute(plans.update().where(plans.c.id == pid).values(status=plans.c.status))
        return c.execute(
            sa.select(
                plans.c.scenario_id,
                plans.c.scenario_revision,
                plans.c.scenario_generation,
                plans.c.status,
                plans.c.kind,
            ).where(plans.c.id == pid)
        ).first()

    @frees_space
    def delete_plan(self, pid: str, actor: str | None = None) -> bool:
        """Delete a finished job; :class:`PlanApproved` if it is a scenario's approved plan
        (nothing deleted)."""
        with self._tx() as c:
            r = self._lock_plan(c, pid)
            if r is None or r.status not in FINISHED:
                return False
            approved = c.execute(
                sa.select(plan_approvals.c.scenario_id).where(plan_approvals.c.plan_id == pid)
            ).first()
            if approved is not None:
                raise PlanApproved(approved.scenario_id)
            c.execute(plans.delete().where(plans.c.id == pid))
            c.execute(plan_usage.delete().where(plan_usage.c.plan_id == pid))
            _audit(
                c, actor, "job.delete", r.scenario_id, r.scenario_revision, pid, {"kind": r.kind}
            )
        self._wrote()
        return True

    def put_usage(self, row: PlanRow, usage: dict[str, Any], actor: str | None = None) -> None:
        """Store (or replace) the actual usage of plan ``row``, audited; one transaction."""
        body, pid = dumps(usage), row.id
        with self._tx() as c:
            c.execute(plan_usage.delete().where(plan_usage.c.plan_id == pid))
            c.execute(
                plan_usage.insert().values(
                    plan_id=pid, body=body, created_at=now(), created_by=actor
                )
            )
            _audit(
                c,
                actor,
                "plan.usage",
                row.scenario_id,
                row.scenario_revision,
                pid,
                {"jobs": usage.get("jobs", 0)},
            )
        self._wrote()

    def get_usage(self, pid: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(plan_usage.c.body).where(plan_usage.c.plan_id == pid)).first()
        return loads(r.body) if r else None

    @frees_space
    def cancel_plan(self, pid: str, actor: str | None = None) -> str | None:
        """Mark a queued job cancelled, or ask a running one to stop; returns the status
        after the call (None if unknown)."""
        with self._tx() as c:
            r = self._lock_plan(c, pid)
            if r is None:
                return None
            if r.status == QUEUED:
                c.execute(
                    plans.update()
                    .where(plans.c.id == pid, plans.c.status == QUEUED)
                    .values(status=CANCELLED, finished_at=now())
                )
                _audit(c, actor, "job.cancel", r.scenario_id, r.scenario_revision, pid)
                return CANCELLED
            return str(r.status)

    # ------------------------------------------------------------ worker side
    def claim_next(self, owner: str) -> Claimed | None:
        """Atomically move the oldest queued job to running; its id, scenario, options and
        kind."""
        with self._tx() as c:
            r = c.execute(
                sa.select(plans.c.id, plans.c.scenario_body, plans.c.options, plans.c.kind)
                .where(plans.c.status == QUEUED)
                .order_by(plans.c.created_at)
                .limit(1)
            ).first()
            if r is None:
                return None
            t = now()
            n = c.execute(
                plans.update()
                .where(plans.c.id == r.id, plans.c.status == QUEUED)
                .values(
                    status=RUNNING,
                    started_at=t,
                    heartbeat_at=t,
                    owner=owner,
                    attempts=plans.c.attempts + 1,
                )
            ).rowcount
        if not n:
            return None
        return Claimed(r.id, loads(r.scenario_body), loads(r.options), r.kind or PLAN)

    def heartbeat(self, pids: list[str], progress: dict[str, dict[str, Any]] | None = None) -> None:
        """Mark running jobs alive; ``progress`` {job id: latest progress line} is stored
        with the heartbeat (shown in the job's JSON)."""
        if not pids:
            return
        progress = progress or {}
        with self._tx() as c:
            quiet = [p for p in pids if p not in progress]
            if quiet:
                c.execute(
                    plans.update()
                    .where(plans.c.id.in_(quiet), plans.c.status == RUNNING)
                    .values(heartbeat_at=now())
                )
            for pid, line in progress.items():
                c.execute(
                    plans.update()
                    .where(plans.c.id == pid, plans.c.status == RUNNING)
                    .values(heartbeat_at=now(), progress=dumps(line))
                )

    def finish(
        self, pid: str, status: str, result: dict[str, Any] | None, error: dict[str, Any] | None
    ) -> None:
        try:
            text = dumps(result) if result is not None else None
        except NonFiniteError as exc:  # the job fails rather than store an unreadable plan
            status, text = FAILED, None
            error = {
                "type": "/problems/non-finite",
                "title": "Plan not stored",
                "status": 500,
                "detail": str(exc),
            }
        with self._tx() as c:
            c.execute(
                plans.update()
                .where(plans.c.id == pid, plans.c.status == RUNNING)
                .values(
                    status=status,
                    result=text,
                    error=dumps(error) if error is not None else None,
                    finished_at=now(),
                )
            )

    def fail_stale(
        self, older_than_s: float, error: dict[str, Any], twice: dict[str, Any] | None = None
    ) -> tuple[int, int]:
        """Running jobs whose heartbeat stopped (their process died): one interrupted for
        the first time is queued again; one interrupted before fails (with ``twice`` if
        given, else ``error``). Returns (re-queued, failed)."""
        cutoff_dt = now() - timedelta(seconds=older_than_s)
        stale = sa.and_(plans.c.status == RUNNING, plans.c.heartbeat_at < cutoff_dt)
        with self._tx() as c:
            requeued = c.execute(
                plans.update()
                .where(stale, plans.c.attempts <= 1)
                .values(
                    status=QUEUED, started_at=None, heartbeat_at=None, owner=None, progress=None
                )
            ).rowcount
            failed = c.execute(
                plans.update()
                .where(stale)
                .values(status=FAILED, error=dumps(twice or error), finished_at=now())
            ).rowcount
        return int(requeued), int(failed)

    def requeue_or_fail(self, pid: str, error: dict[str, Any], twice: dict[str, Any]) -> None:
        """A running job this service stops without a result: queued again the first time,
        failed (``twice``) if it was interrupted before."""
        with self._tx() as c:
            c.execute(
                plans.update()
                .where(plans.c.id == pid, plans.c.status == RUNNING, plans.c.attempts <= 1)
                .values(
                    status=QUEUED, started_at=None, heartbeat_at=None, owner=None, progress=None
                )
            )
            c.execute(
                plans.update()
                .where(plans.c.id == pid, plans.c.status == RUNNING)
                .values(status=FAILED, error=dumps(twice), finished_at=now())
            )

    def wants_cancel(self, pid: str) -> bool:
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.status).where(plans.c.id == pid)).first()
        return r is None or r.status == CANCELLED

    @frees_space
    def request_cancel(self, pid: str, actor: str | None = None) -> None:
        """A running job is marked cancelled; its worker sees it and stops the process."""
        with self._tx() as c:
            r = self._lock_plan(c, pid)
            n = c.execute(
                plans.update()
                .where(plans.c.id == pid, plans.c.status == RUNNING)
                .values(status=CANCELLED, finished_at=now())
            ).rowcount
            if n and r is not None:
                _audit(c, actor, "job.cancel", r.scenario_id, r.scenario_revision, pid)

    # ----------------------------------------------------------------- approvals
    @staticmethod
    def _approval(r: Any) -> Approval:
        return Approval(r.scenario_id, r.plan_id, r.approved_by, _utc(r.approved_at), r.comment)  # type: ignore[arg-type]

    def approve_plan(self, pid: str, actor: str, comment: str) -> tuple[Approval, str | None]:
        """Make the finished plan job ``pid`` its scenario's approved plan; returns the
        approval and the plan it supersedes (None if none, or itself again). KeyError for
        an unknown job; :class:`NotApprovable` for a job not done, not a plan job, or whose
        scenario is gone. The superseded approval stays in the audit."""
        for attempt in (1, 2, 3):
            try:
                with self._tx() as c:
                    r = self._lock_plan(c, pid)
                    if r is None:
                        raise KeyError(pid)
                    if r.kind != PLAN:
                        raise NotApprovable(f"{pid!r} is a {r.kind} job, not a plan job")
                    if r.status != DONE:
                        raise NotApprovable(f"the job is {r.status}; only a done plan is approved")
                    # the scenario's row, locked (a no-op UPDATE): approvals of one scenario
                    # run one after the other, each sees the one before it
                    alive = c.execute(
                        scenarios.update()
                        .where(
                            scenarios.c.id == r.scenario_id,
                            scenarios.c.generation == r.scenario_generation,
                        )
                        .values(id=scenarios.c.id)
                    ).rowcount
                    if not alive:
                        raise NotApprovable(
                            f"its scenario {r.scenario_id!r} was deleted (the scenario now "
                            "under that id, if any, is another one)"
                        )
                    where = plan_approvals.c.scenario_id == r.scenario_id
                    prev = c.execute(sa.select(plan_approvals.c.plan_id).where(where)).first()
                    c.execute(plan_approvals.delete().where(where))
                    values = {
                        "scenario_id": r.scenario_id,
                        "plan_id": pid,
                        "approved_by": actor,
                        "approved_at": now(),
                        "comment": comment,
                    }
                    c.execute(plan_approvals.insert().values(**values))
                    supersedes = prev.plan_id if prev is not None and prev.plan_id != pid else None
                    detail = {"comment": comment, "supersedes": supersedes}
                    _audit(
                        c, actor, "plan.approve", r.scenario_id, r.scenario_revision, pid, detail
                    )
                break
            except sa.exc.IntegrityError:  # a concurrent approval of the scenario: again
                if attempt == 3:
                    raise
        self._wrote()
        approved_at = _utc(values["approved_at"])
        assert approved_at is not None
        return Approval(values["scenario_id"], pid, actor, approved_at, comment), supersedes

    def approved_plan(self, sid: str) -> Approval | None:
        with self.engine.connect() as c:
            r = c.execute(
                sa.select(plan_approvals).where(plan_approvals.c.scenario_id == sid)
            ).first()
        return self._approval(r) if r is not None else None

    def approvals(
        self, scenario: str | None, limit: int, offset: int
    ) -> tuple[list[Approval], int]:
        """Approved plans (of ``scenario``, or of every scenario), by scenario id; and how
        many."""
        where = [] if scenario is None else [plan_approvals.c.scenario_id == scenario]
        with self.engine.connect() as c:
            total = c.execute(
                sa.select(sa.func.count()).select_from(plan_approvals).where(*where)
            ).scalar_one()
            rows = c.execute(
                sa.select(plan_approvals)
                .where(*where)
                .order_by(plan_approvals.c.scenario_id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [self._approval(r) for r in rows], int(total)

    def approvals_of(self, pids: list[str]) -> dict[str, Approval]:
        """{plan id: its approval} for those of ``pids`` that are approved."""
        if not pids:
            return {}
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(plan_approvals).where(plan_approvals.c.plan_id.in_(pids))
            ).all()
        return {r.plan_id: self._approval(r) for r in rows}

    # --------------------------------------------------------------------- audit
    def audit(
        self,
        limit: int,
        offset: int,
        scenario: str | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> tuple[list[AuditRow], int]:
        """Audit entries, newest first, and how many match."""
        conds = []
        if scenario is not None:
            conds.append(audit_log.c.scenario_id == scenario)
        if actor is not None:
            conds.append(audit_log.c.actor == actor)
        if action is not None:
            conds.append(audit_log.c.action == action)
        q = sa.select(audit_log).where(*conds).order_by(audit_log.c.id.desc())
        with self.engine.connect() as c:
            total = c.execute(
                sa.select(sa.func.count()).select_from(audit_log).where(*conds)
            ).scalar_one()
            rows = c.execute(q.limit(limit).offset(offset)).all()
        out = [
            AuditRow(
                int(r.id),
                _utc(r.at),  # type: ignore[arg-type]
                r.actor,
                r.action,
                r.scenario_id,
                r.scenario_revision,
                r.target,
                loads(r.detail) if r.detail else None,
            )
            for r in rows
        ]
        return out, int(total)

    # ---------------------------------------------------------------------- keys
    @staticmethod
    def _key(r: Any) -> KeyRow:
        return KeyRow(
            r.id,
            r.name,
            r.role,
            r.key_hash,
            _utc(r.created_at),  # type: ignore[arg-type]
            r.created_by,
            _utc(r.revoked_at),
            r.revoked_by,
        )

    def add_key(self, name: str, role: str, key_hash: str, actor: str | None) -> KeyRow:
        """Store a key by its hash (api.keys makes both)."""
        kid = str(uuid.uuid4())
        with self._tx() as c:
            c.execute(
                api_keys.insert().values(
                    id=kid,
                    name=name,
                    role=role,
                    key_hash=key_hash,
                    created_at=now(),
                    created_by=actor or SYSTEM,
                )
            )
            _audit(c, actor, "key.add", target=kid, detail={"name": name, "role": role})
            r = c.execute(sa.select(api_keys).where(api_keys.c.id == kid)).one()
        self._wrote()
        return self._key(r)

    def list_keys(self, include_revoked: bool = True) -> list[KeyRow]:
        q = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            q = q.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as c:
            return [self._key(r) for r in c.execute(q).all()]

    def revoke_keys(self, ident: str, actor: str | None) -> list[KeyRow]:
        """Revoke the active key with id ``ident`` or, if none has it, every active key
        named ``ident``; returns the keys revoked (none: nothing matched)."""
        active = api_keys.c.revoked_at.is_(None)
        with self._tx() as c:
            ids = [
                r.id
                for r in c.execute(sa.select(api_keys.c.id).where(active, api_keys.c.id == ident))
            ] or [
                r.id
                for r in c.execute(sa.select(api_keys.c.id).where(active, api_keys.c.name == ident))
            ]
            if ids:
                c.execute(
                    api_keys.update()
                    .where(api_keys.c.id.in_(ids), active)
                    .values(revoked_at=now(), revoked_by=actor or SYSTEM)
                )
            rows = c.execute(sa.select(api_keys).where(api_keys.c.id.in_(ids))).all()
            for r in rows:
                _audit(c, actor, "key.revoke", target=r.id, detail={"name": r.name, "role": r.role})
        return [self._key(r) for r in rows]

    def key_by_hash(self, key_hash: str) -> KeyRow | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return self._key(r) if r is not None else None

    def has_keys(self) -> bool:
        """Whether any key was ever added (revoked ones count: revoking the last key does not
        open the service)."""
        with self.engine.connect() as c:
            return c.execute(sa.select(api_keys.c.id).limit(1)).first() is not None
