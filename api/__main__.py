"""`python -m api`: serve the API with uvicorn, settings from ALLOCATOR_* variables."""

from __future__ import annotations

import logging

import uvicorn

from .config import get_settings
from .main import create_app


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"allocator API on http://{settings.host}:{settings.port}  (docs: /docs)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
