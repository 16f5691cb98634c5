"""The service's schema migrations (Alembic): one revision per change in ``versions/``, the
applied one recorded in the database's ``alembic_version`` table.

:func:`upgrade` runs at every start of the service (and as ``allocator-api db upgrade``)
under a lock held for the whole migration transaction, so any number of services may start
together on one database: PostgreSQL takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock``), SQLite its own write lock (``BEGIN IMMEDIATE``); the services
that wait find the schema up to date and change nothing. A database written before Alembic
(no version table) is recognised by its shape and completed by the baseline revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

HERE = Path(__file__).resolve().parent
MIGRATION_LOCK = 0x616C6D67  # PostgreSQL advisory lock key held while migrating


def config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration without an ini file: the scripts here, on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision of this version of the service."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def known(revision: str | None) -> bool:
    """Whether this version of the service has ``revision`` (None: an empty database)."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except CommandError:
        return False


class NewerSchema(RuntimeError):
    """The database was migrated by a newer version of the service."""


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at (None: not under Alembic yet, or empty)."""
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


@contextmanager
def locked(c: sa.Connection) -> Iterator[None]:
    """A transaction on ``c`` that holds the migration lock until it commits."""
    raw = c.connection.driver_connection if c.dialect.name == "sqlite" else None
    level = getattr(raw, "isolation_level", None)
    if raw is not None:
        # pysqlite would issue its own deferred BEGIN: take SQLite's write lock ourselves
        raw.isolation_level = None
        c.exec_driver_sql("BEGIN IMMEDIATE")
    elif c.dialect.name == "postgresql":
        c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    else:
        c.begin()
    try:
        yield
        c.commit()
    except BaseException:
        c.rollback()
        raise
    finally:
        if raw is not None:
            raw.isolation_level = level


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (every step in one transaction, under the lock);
    nothing to do when it is there already."""
    now = current(engine)
    if revision == "head" and now == head():
        return
    if not known(now):
        raise NewerSchema(
            f"the database is at schema revision {now}, which this version of the service "
            f"does not know (its newest is {head()}): run the newer version"
        )
    with engine.connect() as c, locked(c):
        command.upgrade(config(c), revision)
