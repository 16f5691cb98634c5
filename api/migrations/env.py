"""Alembic's environment: migrations run on the connection :func:`api.migrations.upgrade`
opened, inside the transaction that holds the migration lock (never from a URL of its own)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations with `allocator-api db upgrade` (api.migrations.upgrade)")
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
