"""Persistence through SQLAlchemy: scenarios (with revisions) and plan jobs.

SQLite file by default (WAL mode, so readers never wait on the job writer); any SQLAlchemy
URL by setting (PostgreSQL: ``postgresql+psycopg://…``). Every write is one transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
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
)


class NonFiniteError(ValueError):
    """A value to store holds NaN or infinity, which JSON cannot carry: nothing is written."""


def dumps(obj: Any) -> str:
    """JSON text of ``obj``; NonFiniteError for NaN or infinity (never stored as such)."""
    try:
        return json.dumps(obj, allow_nan=False)
    except ValueError as exc:
        raise NonFiniteError(f"non-finite number (NaN or infinity) refused: {exc}") from None


QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
PENDING = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED)


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


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

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
        return ScenarioRow(r.id, r.revision, r.name, json.loads(r.body), created, updated)

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
    def _insert(sid: str, body: dict[str, Any]) -> Any:
        t = now()
        return scenarios.insert().values(
            id=sid,
            revision=1,
            name=str(body.get("name", sid)),
            body=dumps(body),
            created_at=t,
            updated_at=t,
        )

    def create_scenario(self, sid: str, body: dict[str, Any]) -> ScenarioRow | None:
        """Insert; None if the id is taken."""
        try:
            with self.engine.begin() as c:
                c.execute(self._insert(sid, body))
        except sa.exc.IntegrityError:
            return None
        return self.get_scenario(sid)

    def replace_scenario(self, sid: str, body: dict[str, Any]) -> tuple[ScenarioRow, bool]:
        """Replace (revision + 1) or create; returns the row and whether it was created."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as c:
                    cur = c.execute(
                        sa.select(scenarios.c.revision)
                        .where(scenarios.c.id == sid)
                        .with_for_update()
                    ).first()
                    created = cur is None
                    if cur is None:
                        c.execute(self._insert(sid, body))
                    else:
                        c.execute(
                            scenarios.update()
                            .where(scenarios.c.id == sid)
                            .values(
                                revision=cur.revision + 1,
                                name=str(body.get("name", sid)),
                                body=dumps(body),
                                updated_at=now(),
                            )
                        )
                break
            except sa.exc.IntegrityError:  # a concurrent PUT created it first: replace that
                if attempt == 2:
                    raise
        row = self.get_scenario(sid)
        assert row is not None
        return row, created

    def delete_scenario(self, sid: str) -> bool:
        with self.engine.begin() as c:
            n = c.execute(scenarios.delete().where(scenarios.c.id == sid)).rowcount
            if n:
                c.execute(
                    plans.update()
                    .where(plans.c.scenario_id == sid, plans.c.status == QUEUED)
                    .values(status=CANCELLED, finished_at=now())
                )
        return bool(n)

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
            options=json.loads(m["options"]),
            result=json.loads(result) if result else None,
            error=json.loads(m["error"]) if m["error"] else None,
            created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
            started_at=_utc(m["started_at"]),
            finished_at=_utc(m["finished_at"]),
            idempotency_key=m["idempotency_key"],
            request_hash=m["request_hash"],
        )

    _summary_cols: ClassVar[list[Any]] = [
        c for c in plans.c if c.name not in ("result", "scenario_body")
    ]

    def get_plan(self, pid: str, with_result: bool = True) -> PlanRow | None:
        cols = list(plans.c) if with_result else self._summary_cols
        with self.engine.connect() as c:
            r = c.execute(sa.select(*cols).where(plans.c.id == pid)).first()
        return self._plan(r) if r is not None else None

    def plan_scenario(self, pid: str) -> dict[str, Any] | None:
        """The scenario exactly as the plan was solved from."""
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.scenario_body).where(plans.c.id == pid)).first()
        return json.loads(r.scenario_body) if r else None

    def plan_by_key(self, key: str) -> PlanRow | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.id).where(plans.c.idempotency_key == key)).first()
        return self.get_plan(r.id, with_result=False) if r else None

    def list_plans(
        self, scenario: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[PlanRow], int]:
        q = sa.select(*self._summary_cols)
        n = sa.select(sa.func.count()).select_from(plans)
        if scenario is not None:
            q, n = (
                q.where(plans.c.scenario_id == scenario),
                n.where(plans.c.scenario_id == scenario),
            )
        if status is not None:
            q, n = q.where(plans.c.status == status), n.where(plans.c.status == status)
        q = q.order_by(plans.c.created_at.desc(), plans.c.id).limit(limit).offset(offset)
        with self.engine.connect() as c:
            total = c.execute(n).scalar_one()
            rows = c.execute(q).all()
        return [self._plan(r) for r in rows], int(total)

    def latest_done_plan(self, sid: str, revision: int) -> PlanRow | None:
        with self.engine.connect() as c:
            r = c.execute(
                sa.select(plans.c.id)
                .where(
                    plans.c.scenario_id == sid,
                    plans.c.scenario_revision == revision,
                    plans.c.status == DONE,
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
    ) -> PlanRow:
        pid = str(uuid.uuid4())
        with self.engine.begin() as c:
            c.execute(
                plans.insert().values(
                    id=pid,
                    scenario_id=scenario.id,
                    scenario_revision=scenario.revision,
                    status=QUEUED,
                    options=dumps(options),
                    scenario_body=dumps(scenario.body),
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    created_at=now(),
                )
            )
        row = self.get_plan(pid, with_result=False)
        assert row is not None
        return row

    def delete_plan(self, pid: str) -> bool:
        with self.engine.begin() as c:
            return bool(
                c.execute(
                    plans.delete().where(plans.c.id == pid, plans.c.status.in_(FINISHED))
                ).rowcount
            )

    def cancel_plan(self, pid: str) -> str | None:
        """Mark a queued job cancelled, or ask a running one to stop; returns the status
        after the call (None if unknown)."""
        with self.engine.begin() as c:
            r = c.execute(sa.select(plans.c.status).where(plans.c.id == pid)).first()
            if r is None:
                return None
            if r.status == QUEUED:
                c.execute(
                    plans.update()
                    .where(plans.c.id == pid, plans.c.status == QUEUED)
                    .values(status=CANCELLED, finished_at=now())
                )
                return CANCELLED
            return str(r.status)

    # ------------------------------------------------------------ worker side
    def claim_next(self, owner: str) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """Atomically move the oldest queued job to running; its id, scenario and options."""
        with self.engine.begin() as c:
            r = c.execute(
                sa.select(plans.c.id, plans.c.scenario_body, plans.c.options)
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
                .values(status=RUNNING, started_at=t, heartbeat_at=t, owner=owner)
            ).rowcount
        if not n:
            return None
        return r.id, json.loads(r.scenario_body), json.loads(r.options)

    def heartbeat(self, pids: list[str]) -> None:
        if not pids:
            return
        with self.engine.begin() as c:
            c.execute(
                plans.update()
                .where(plans.c.id.in_(pids), plans.c.status == RUNNING)
                .values(heartbeat_at=now())
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
        with self.engine.begin() as c:
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

    def fail_stale(self, older_than_s: float, error: dict[str, Any]) -> int:
        """Running jobs whose heartbeat stopped (their process died) become failed."""
        cutoff_dt = now() - timedelta(seconds=older_than_s)
        err = dumps(error)
        with self.engine.begin() as c:
            return int(
                c.execute(
                    plans.update()
                    .where(plans.c.status == RUNNING, plans.c.heartbeat_at < cutoff_dt)
                    .values(status=FAILED, error=err, finished_at=now())
                ).rowcount
            )

    def wants_cancel(self, pid: str) -> bool:
        with self.engine.connect() as c:
            r = c.execute(sa.select(plans.c.status).where(plans.c.id == pid)).first()
        return r is None or r.status == CANCELLED

    def request_cancel(self, pid: str) -> None:
        """A running job is marked cancelled; its worker sees it and stops the process."""
        with self.engine.begin() as c:
            c.execute(
                plans.update()
                .where(plans.c.id == pid, plans.c.status == RUNNING)
                .values(status=CANCELLED, finished_at=now())
            )
