"""A real uvicorn process on a free loopback port: a whole job lifecycle over HTTP, then a
restart that finds everything still there, and crashes mid-solve: the job is queued again
once, then failed, never left "running" forever."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.api.conftest import slow_scenario, tiny

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = (
            os.environ
            | {
                "ALLOCATOR_PORT": str(self.port),
                "ALLOCATOR_DATABASE_URL": f"sqlite:///{db}",
                "ALLOCATOR_JOB_STALE_AFTER_S": "1",
            }
            | env
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if self.get("/readyz")[0] == 200:
                    return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)  # the whole group: service and its solver processes
        self.proc.wait(timeout=30)

    def request(self, method: str, path: str, body: object = None, headers: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        h = {"content-type": "application/json"} if data else {}
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=h | (headers or {})
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path: str, headers: dict | None = None):
        return self.request("GET", path, headers=headers)

    def wait(self, loc: str, until: tuple[str, ...], timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = json.loads(self.get(loc)[2])
            if job["status"] in until:
                return job
            time.sleep(0.1)
        raise AssertionError(f"{loc} never reached {until}: {job}")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "service.db"


def test_lifecycle_survives_a_restart(db):
    s = Server(db).start()
    try:
        status, headers, _ = s.request("PUT", "/v1/scenarios/mine", tiny())
        assert status == 201
        status, headers, body = s.request("POST", "/v1/scenarios/mine/plans", {})
        assert status == 202
        loc = headers["location"]
        job = s.wait(loc, ("done", "failed"))
        assert job["status"] == "done"
        status, headers, body = s.get(loc + "/pools", headers={"Accept": "text/csv"})
        assert status == 200 and headers["content-type"].startswith("text/csv")
        before = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(before) == 4
    finally:
        s.stop()

    s2 = Server(db).start()  # same database, new process
    try:
        scen = json.loads(s2.get("/v1/scenarios/mine")[2])
        assert scen["revision"] == 1 and scen["scenario"]["pools"][0]["id"] == "h100"
        job2 = json.loads(s2.get(loc)[2])
        assert job2["status"] == "done" and job2["plan"] == job["plan"]
        after = list(csv.DictReader(io.StringIO(s2.get(loc + "/pools?format=csv")[2].decode())))
        assert after == before
        listed = json.loads(s2.get("/v1/scenarios")[2])
        assert {i["id"] for i in listed["items"]} >= {"mine", "tiny", "hyperscaler", "ai_lab"}
    finally:
        s2.stop()


def test_a_crash_mid_solve_requeues_the_job_once_then_fails_it(db):
    s = Server(db).start()
    s.request("PUT", "/v1/scenarios/slow", slow_scenario())
    _, headers, _ = s.request("POST", "/v1/scenarios/slow/plans", {})
    loc = headers["location"]
    assert s.wait(loc, ("running",))["attempts"] == 1
    assert s.get("/healthz")[0] == 200  # answering while the solve runs
    s.stop(signal.SIGKILL)  # no clean shutdown

    s2 = Server(db).start()
    try:  # interrupted once: queued again and started a second time
        end = time.monotonic() + 30
        while (job := json.loads(s2.get(loc)[2]))["attempts"] < 2 and time.monotonic() < end:
            time.sleep(0.1)
        assert job["attempts"] == 2 and job["status"] == "running", job
    finally:
        s2.stop(signal.SIGKILL)  # interrupted again

    s3 = Server(db).start()
    try:
        job = s3.wait(loc, ("failed",), timeout=30)
        assert job["error"]["title"] == "Job interrupted twice"
        # the next job runs normally
        _, headers, _ = s3.request("POST", "/v1/scenarios/tiny/plans", {})
        assert s3.wait(headers["location"], ("done",))["plan"]["totals"]["objective"] == 30950
    finally:
        s3.stop()


def test_healthz_answers_while_big_invalid_scenarios_are_validated(db):
    """Four 8 MB invalid scenarios at once: they are parsed and validated off the event
    loop, so /healthz stays fast, and each 422 lists 100 errors and counts the rest."""
    import threading

    bad = {"id": "p", "accelerator": "H100", "region": "e", "gpus": [-1, -1]}
    body = json.dumps(tiny() | {"pools": [bad] * 115_000}).encode()
    assert 7_000_000 < len(body) < 8 * 1024 * 1024
    s = Server(db).start()
    try:
        results: list[tuple[int, int, dict]] = []

        def post() -> None:
            req = urllib.request.Request(
                s.base + "/v1/scenarios",
                data=body,
                method="POST",
                headers={"content-type": "application/json"},
            )
            try:
                urllib.request.urlopen(req, timeout=60)
            except urllib.error.HTTPError as e:
                raw = e.read()
                results.append((e.code, len(raw), json.loads(raw)))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        worst, probes = 0.0, 0
        end = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < end and probes < 600:
            t0 = time.monotonic()
            assert s.get("/healthz")[0] == 200
            worst = max(worst, time.monotonic() - t0)
            probes += 1
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=60)
        print(f"/healthz: {probes} probes under load, worst {worst:.3f} s")
        assert probes >= 5, "the posts finished before /healthz was probed under load"
        assert worst < 0.5, f"/healthz took {worst:.2f} s under load"
        assert len(results) == 4
        for status, size, problem in results:
            assert status == 422 and size < 20_000
            assert len(problem["errors"]) == 100 and problem["errors_truncated"] > 100_000
    finally:
        s.stop()
