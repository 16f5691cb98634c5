from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from allocator.scenario.generate import generate_dict
from api.config import Settings
from api.main import create_app

DATA = Path(__file__).resolve().parents[2] / "data"
JSON = {"content-type": "application/json"}


# PostgreSQL for the tests: a server URL whose user may create databases (make postgres
# prints one); each test gets a database of its own, created and dropped here
PG_ENV = "ALLOCATOR_TEST_DATABASE_URL"
DATABASES = ["sqlite", "postgresql"]


@contextlib.contextmanager
def own_postgres_database() -> Iterator[str]:
    """A fresh database ``test_<random>`` on the server ALLOCATOR_TEST_DATABASE_URL names,
    dropped afterwards; its URL. Unset: skipped, but a failure under CI=true. No URL or
    password ever goes into a message."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        why = f'PostgreSQL tests need {PG_ENV} (run: eval "$(make -s postgres)")'
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {why}", pytrace=False)
        pytest.skip(why)
    url = sa.make_url(admin)
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        engine.dispose()
        where = f"{url.host}:{url.port}"
        pytest.fail(f"PostgreSQL at {where} ({PG_ENV}): {type(exc.orig).__name__}", pytrace=False)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``tmp_path`` or ("postgresql") a
    database of its own on the test server."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        with own_postgres_database() as url:
            yield url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on SQLite and on PostgreSQL (test ids: [sqlite], [postgresql])."""
    with database(request.param, tmp_path) as url:
        yield url


def make_settings(tmp_path: Path, **kw: object) -> Settings:
    base = {
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "job_stale_after_s": 5.0,
        "storage_reserve_bytes": 256 * 1024,  # not the 8 MiB default in every test's folder
    }
    return Settings(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def db_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The ``client`` service (examples loaded) on SQLite and on PostgreSQL."""
    settings = make_settings(tmp_path, database_url=database_url)
    with TestClient(create_app(settings)) as c:
        yield c


def tiny() -> dict:
    return json.loads((DATA / "tiny.json").read_text())


def slow_scenario() -> dict:
    """A scenario whose solve takes a few seconds (stability rows, ~30k columns)."""
    return generate_dict(
        200, 16, 24, seed=1, compatibility=0.3, policy={"max_change_share": 0.1, "headroom": 0.02}
    )


def wait_done(client: TestClient, location: str, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(location).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {location} still {job['status']} after {timeout}s")


def wait_status(client: TestClient, location: str, status: str, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(location).json()
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {location} never {status}")


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"]
    assert "Traceback" not in r.text
    return body
