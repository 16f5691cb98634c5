"""`allocator-api` / `python -m api`: serve the API with uvicorn, settings from ALLOCATOR_*
variables; `allocator-api db upgrade|current` migrates or shows the database's schema;
`allocator-api keys add|list|revoke` manages API keys (api/cli.py)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from . import cli
from .config import get_settings
from .main import create_app


def serve() -> int:
    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    print(f"allocator: plan explorer page at {base}/  (API docs: {base}/docs)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def db(action: str, revision: str) -> int:
    """``upgrade``: migrate ALLOCATOR_DATABASE_URL to ``revision`` (the service does it to
    the newest at start too); ``current``: print its revision and whether it is the newest.
    Exit 1 when the database is not at this version's newest revision (``current``) or
    is at a newer one (both), else 0."""
    from . import migrations
    from .store import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        if action == "upgrade":
            try:
                migrations.upgrade(engine, revision)
            except migrations.NewerSchema as exc:
                print(f"allocator-api: {exc}", file=sys.stderr)
                return 1
        cur, head = migrations.current(engine), migrations.head()
    finally:
        engine.dispose()
    if cur == head:
        state = "newest"
    elif migrations.known(cur):
        state = f"behind: this version's newest is {head}"
    else:
        state = f"newer than this version, whose newest is {head}"
    print(f"{cur or 'none (empty, or written before migrations)'} ({state})")
    return 0 if cur == head or action == "upgrade" else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="allocator-api",
        description="Serve the allocator REST API (no command), or manage its database or "
        "its API keys.",
    )
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("db", help="the database's schema (ALLOCATOR_DATABASE_URL)")
    dsub = d.add_subparsers(dest="action", required=True)
    up = dsub.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head", help="target revision (default: newest)")
    dsub.add_parser("current", help="print the schema revision; exit 1 if behind")
    cli.add_keys_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "db":
        return db(args.action, getattr(args, "revision", "head"))
    if args.command == "keys":
        return int(args.func(args))
    return serve()


if __name__ == "__main__":
    sys.exit(main())
