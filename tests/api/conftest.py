from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from allocator.scenario.generate import generate_dict
from api.config import Settings
from api.main import create_app

DATA = Path(__file__).resolve().parents[2] / "data"
JSON = {"content-type": "application/json"}


def make_settings(tmp_path: Path, **kw: object) -> Settings:
    base = {"database_url": f"sqlite:///{tmp_path / 'api.db'}", "job_stale_after_s": 5.0}
    return Settings(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
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
