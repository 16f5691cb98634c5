"""Databases as earlier versions of the service wrote them (before Alembic), for the
migration tests: the DDL SQLAlchemy's ``create_all`` emitted for each version's tables
(``git log -p api/store.py``), and a few rows of every kind written into them."""

from __future__ import annotations

import sqlalchemy as sa

PLANS_V1 = """
CREATE TABLE plans (
    id VARCHAR(36) NOT NULL, scenario_id VARCHAR(128) NOT NULL,
    scenario_revision INTEGER NOT NULL, status VARCHAR(16) NOT NULL, options TEXT NOT NULL,
    scenario_body TEXT NOT NULL, result TEXT, error TEXT, idempotency_key VARCHAR(200),
    request_hash VARCHAR(64), created_at {ts} NOT NULL, started_at {ts},
    finished_at {ts}, heartbeat_at {ts}, owner VARCHAR(64){more},
    PRIMARY KEY (id), UNIQUE (idempotency_key))"""
SCENARIOS = """
CREATE TABLE scenarios (
    id VARCHAR(128) NOT NULL, revision INTEGER NOT NULL, name VARCHAR(200) NOT NULL,
    body TEXT NOT NULL, created_at {ts} NOT NULL, updated_at {ts} NOT NULL,
    PRIMARY KEY (id))"""
INDEXES = [
    "CREATE INDEX ix_plans_status ON plans (status)",
    "CREATE INDEX ix_plans_scenario_id ON plans (scenario_id)",
]
HISTORY = """
CREATE TABLE scenario_revisions (
    scenario_id VARCHAR(128) NOT NULL, revision INTEGER NOT NULL, name VARCHAR(200) NOT NULL,
    body TEXT NOT NULL, created_at {ts} NOT NULL, PRIMARY KEY (scenario_id, revision))"""
PROBE = "CREATE TABLE write_probe (id VARCHAR(36) NOT NULL, pad TEXT NOT NULL, PRIMARY KEY (id))"
ATTEMPTS = ",\n    attempts INTEGER DEFAULT '0' NOT NULL"
PROGRESS = ",\n    progress TEXT"
KIND = ",\n    kind VARCHAR(32) DEFAULT 'plan' NOT NULL"

# each earlier schema: (its name, the commit that introduced it, the jobs' added columns,
# whether it had the revision history and probe tables)
SCHEMAS = {
    "first-release": ("0435da4", "", False),
    "attempts": ("d2a892d", ATTEMPTS, True),
    "progress": ("dda102b", ATTEMPTS + PROGRESS, True),
    "kind": ("ebf2780", ATTEMPTS + PROGRESS + KIND, True),
}

BODY = '{"name": "kept", "periods": []}'
EARLY, T0, T1, LATE = (f"2026-01-0{d} 03:04:05" for d in (1, 2, 3, 4))
RESULT = '{"objective": 12.5, "status": "optimal"}'
INF_RESULT = '{"objective": 12.5, "totals": {"gap": Infinity, "x": [1, NaN]}}'
NAN_NAME = '{"objective": 1.0, "segments": ["NaNa", "Infinity war"]}'


def write(url: str, schema: str) -> None:
    """Create ``schema``'s tables in the empty database ``url`` and store: scenario "old"
    at revision 3, a done plan of it (with an Idempotency-Key), a queued and a running job,
    a plan of an earlier scenario "old" and one of a deleted scenario "gone"; where the
    schema has them, revisions 2 and 3 in the history and a what-if job."""
    _commit, plan_cols, history = SCHEMAS[schema]
    engine = sa.create_engine(url)
    ts = "DATETIME" if engine.dialect.name == "sqlite" else "TIMESTAMP WITHOUT TIME ZONE"
    ddl = [SCENARIOS, PLANS_V1.replace("{more}", plan_cols), *INDEXES]
    ddl += [HISTORY, PROBE] if history else []
    plan = (
        "INSERT INTO plans (id, scenario_id, scenario_revision, status, options, scenario_body,"
        " result, idempotency_key, request_hash, created_at, started_at, finished_at,"
        " heartbeat_at, owner{kind}) VALUES (:id, :sid, :rev, :status, :options, :body, :result,"
        " :key, :hash, :created, :started, :finished, :started, :owner{kind_value})"
    )
    with_kind = "kind" in plan_cols
    plan = plan.replace("{kind}", ", kind" if with_kind else "")
    plan = plan.replace("{kind_value}", ", :kind" if with_kind else "")
    rows = [  # id, scenario, revision, status, options, result, key, hash, created,
        # started, finished, owner
        (
            "done-1",
            "old",
            3,
            "done",
            '{"time_limit_s": 5}',
            RESULT,
            "key-1",
            "h1",
            T0,
            T0,
            T1,
            "w:1",
        ),
        (
            "queued-1",
            "old",
            3,
            "queued",
            '{"time_limit_s": 7}',
            None,
            None,
            None,
            T0,
            None,
            None,
            None,
        ),
        ("running-1", "old", 3, "running", "{}", None, "key-2", "h2", T0, T1, None, "gone:1:x"),
        # made from an earlier scenario "old" (deleted, then "old" stored again), finished
        # after it: not the current scenario's plan, though of the same revision number
        ("early-1", "old", 3, "done", "{}", RESULT, None, None, EARLY, EARLY, LATE, "w:1"),
        # the plan of a scenario deleted since
        ("gone-1", "gone", 7, "done", "{}", RESULT, None, None, T0, T0, T1, "w:1"),
        # a scenario id with "/" (the first release allowed it) and its plan
        ("slash-1", "team/a", 1, "done", "{}", RESULT, None, None, T0, T0, T1, "w:1"),
        # results Python's json wrote with infinity and NaN, and one that only says "NaN"
        ("inf-1", "old", 3, "done", "{}", INF_RESULT, None, None, T0, T0, T1, "w:1"),
        ("nan-name-1", "old", 3, "done", "{}", NAN_NAME, None, None, T0, T0, EARLY, "w:1"),
    ]
    try:
        with engine.begin() as c:
            for stmt in ddl:
                c.exec_driver_sql(stmt.replace("{ts}", ts))
            for sid, rev in (("old", 3), ("team/a", 1), ("team-a", 1)):
                c.execute(
                    sa.text("INSERT INTO scenarios VALUES (:s, :r, 'kept', :b, :t0, :t1)"),
                    {"s": sid, "r": rev, "b": BODY, "t0": T0, "t1": T1},
                )
            if history:
                for rev in (2, 3):
                    c.execute(
                        sa.text(
                            "INSERT INTO scenario_revisions VALUES ('old', :r, 'kept', :b, :t)"
                        ),
                        {"r": rev, "b": BODY, "t": T1},
                    )
            names = "id sid rev status options result key hash created started finished owner"
            for values in rows:
                params = dict(zip(names.split(), values, strict=True))
                c.execute(sa.text(plan), params | {"body": BODY, "kind": "plan"})
            if with_kind:
                c.execute(
                    sa.text(
                        "INSERT INTO plans (id, scenario_id, scenario_revision, status, options,"
                        " scenario_body, created_at, kind)"
                        " VALUES ('whatif-1', 'old', 3, 'queued', '{}', :b, :t, 'what-if')"
                    ),
                    {"b": BODY, "t": T1},
                )
    finally:
        engine.dispose()
