"""`python -m api` (`allocator-api`): serve the API with uvicorn, settings from
ALLOCATOR_* variables; `allocator-api keys …` manages API keys (api/cli.py)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from . import cli
from .config import get_settings
from .main import create_app


def main() -> None:
    code = cli.main(sys.argv[1:])
    if code >= 0:
        sys.exit(code)
    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    print(f"allocator: plan explorer page at {base}/  (API docs: {base}/docs)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
