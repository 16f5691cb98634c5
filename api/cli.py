"""``allocator-api keys add|list|revoke``: API keys per person or system
(docs/service-access.md). They act on the database of
``ALLOCATOR_DATABASE_URL`` (or ``--database-url``).

Exit codes: 0 done; 1 nothing matched (``keys revoke`` of an unknown key); 2 bad usage (an
unknown role, a reserved or malformed name)."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from typing import Any

from .auth import Role, hash_key, new_key
from .config import get_settings
from .routes.access import check_key_name, key_public
from .schemas import KEY_NAME_PATTERN
from .store import Store


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no user name in this environment
        return "cli"


def _store(args: argparse.Namespace) -> Store:
    return Store(args.database_url or get_settings().database_url)


def keys_add(args: argparse.Namespace) -> int:
    try:
        role = Role.parse(args.role)
        if re.fullmatch(KEY_NAME_PATTERN, args.name) is None:
            raise ValueError(
                f"name {args.name!r}: letters, digits, space and . _ @ + -, at most 100, "
                "starting with a letter or digit"
            )
        check_key_name(args.name)
    except ValueError as exc:
        print(f"allocator-api keys add: {exc}", file=sys.stderr)
        return 2
    key = new_key()
    store = _store(args)
    try:
        row = store.add_key(args.name, role.label, hash_key(key), _actor())
    finally:
        store.close()
    print(
        f"key {row.id} for {row.name!r} ({row.role}); shown this once, only its hash is kept:",
        file=sys.stderr,
    )
    print(key)
    return 0


def keys_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.list_keys(include_revoked=args.all)
    finally:
        store.close()
    if args.json:
        print(json.dumps([key_public(r) for r in rows], default=str, indent=2))
        return 0
    print(f"{'id':36}  {'role':7}  {'created':19}  {'revoked':19}  name")
    for r in rows:
        revoked = f"{r.revoked_at:%Y-%m-%d %H:%M:%S}" if r.revoked_at else "-"
        print(f"{r.id:36}  {r.role:7}  {r.created_at:%Y-%m-%d %H:%M:%S}  {revoked:19}  {r.name}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.revoke_keys(args.key, _actor())
    finally:
        store.close()
    if not rows:
        print(f"allocator-api keys revoke: no active key {args.key!r}", file=sys.stderr)
        return 1
    for r in rows:
        print(f"revoked {r.id} ({r.name}, {r.role})")
    return 0


def add_keys_parser(sub: Any) -> None:
    """``keys add|list|revoke`` under ``allocator-api`` (api/__main__.py)."""
    keys = sub.add_parser("keys", help="API keys per person or system")
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--database-url", help="default: ALLOCATOR_DATABASE_URL")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    add = ks.add_parser("add", parents=[db], help="make a key (printed once on stdout)")
    add.add_argument("name", help="who holds it: a person or a system")
    add.add_argument("--role", required=True, choices=[r.label for r in Role])
    add.set_defaults(func=keys_add)
    ls = ks.add_parser("list", parents=[db], help="the keys (never the keys themselves)")
    ls.add_argument("--all", action="store_true", help="revoked keys too")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ls.set_defaults(func=keys_list)
    rv = ks.add_parser(
        "revoke", parents=[db], help="revoke a key by id, or every active key of a name"
    )
    rv.add_argument("key", metavar="ID_OR_NAME")
    rv.set_defaults(func=keys_revoke)
