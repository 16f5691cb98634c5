"""Concurrent requests against a real uvicorn process (loopback, bounded): PUTs each get
their own revision, one Idempotency-Key makes one job for everyone, the job-queue limit is
hard, and no solver process outlives a killed service. On SQLite and on PostgreSQL (a
database of its own, see conftest)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from api.store import Store

from . import old_schemas
from .conftest import own_postgres_database, slow_scenario, tiny
from .test_server import Server

N = 20


def at_once(n: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for i < n from n threads released together; bounded by the requests'
    own 30 s timeout."""
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> Any:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n), timeout=120))


@contextlib.contextmanager
def serve(url: str, tmp_path: Path, **env: str) -> Iterator[tuple[Server, str]]:
    """A service on the database ``url``."""
    s = Server(tmp_path / "c.db", ALLOCATOR_DATABASE_URL=url, ALLOCATOR_LOAD_EXAMPLES="false")
    s.env |= env
    s.start()
    try:
        yield s, url
    finally:
        s.stop()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    with serve(database_url, tmp_path) as out:
        yield out


def put(s: Server, sid: str, name: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    status, h, body = s.request("PUT", f"/v1/scenarios/{sid}", tiny() | {"name": name}, headers)
    return status, h, json.loads(body)


def test_concurrent_puts_each_get_their_own_revision(served):
    s, url = served
    assert put(s, "c", "v0")[0] == 201
    results = at_once(N, lambda i: put(s, "c", f"v{i + 1}"))
    assert all(status == 200 for status, _, _ in results), [r[2] for r in results]
    revisions = [body["revision"] for _, _, body in results]
    assert len(set(revisions)) == N  # nobody's update was lost
    assert sorted(revisions) == list(range(2, N + 2))
    for _, headers, body in results:
        assert headers["etag"] == f'"{body["revision"]}"'
    final = json.loads(s.get("/v1/scenarios/c")[2])
    assert final["revision"] == 1 + N
    last = next(body for _, _, body in results if body["revision"] == final["revision"])
    assert final["name"] == last["name"]  # the stored body is the last revision's
    store = Store(url)
    try:
        assert [r for r, _ in store.scenario_history("c")] == list(range(1, N + 2))
    finally:
        store.close()


def test_concurrent_conditional_puts_one_wins(served):
    s, _ = served
    assert put(s, "c", "v0")[0] == 201
    results = at_once(N, lambda i: put(s, "c", f"v{i + 1}", {"If-Match": '"1"'}))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * (N - 1)
    for status, headers, body in results:
        if status == 412:
            assert headers["content-type"].startswith("application/problem+json")
            assert body["status"] == 412 and headers["etag"] == '"2"'
    assert json.loads(s.get("/v1/scenarios/c")[2])["revision"] == 2


def test_one_idempotency_key_sent_at_once_makes_one_job(served):
    s, _ = served
    assert put(s, "c", "v0")[0] == 201

    def submit(_: int) -> tuple[int, dict]:
        status, _h, body = s.request(
            "POST", "/v1/scenarios/c/plans", {}, {"Idempotency-Key": "same-key"}
        )
        return status, json.loads(body)

    results = at_once(N, submit)
    assert {status for status, _ in results} <= {200, 202}, results
    assert len({body["id"] for _, body in results}) == 1
    assert json.loads(s.get("/v1/plans?scenario=c")[2])["total"] == 1


def test_the_job_queue_limit_is_hard(database_url: str, tmp_path: Path):
    limit, n = 6, 30
    with serve(database_url, tmp_path, ALLOCATOR_MAX_PENDING_JOBS=str(limit)) as (s, url):
        assert s.request("PUT", "/v1/scenarios/slow", slow_scenario())[0] == 201

        def submit(_: int) -> tuple[int, dict, dict]:
            status, h, body = s.request("POST", "/v1/scenarios/slow/plans", {})
            return status, h, json.loads(body)

        results = at_once(n, submit)
        store = Store(url)
        try:
            pending = store.count_pending()
            finished = store.list_plans("slow", None, 1, 0)[1] - pending
        finally:
            store.close()
        accepted = [r for r in results if r[0] == 202]
        refused = [r for r in results if r[0] != 202]
        assert pending <= limit
        assert len(accepted) <= limit + finished  # only a freed slot takes one more
        assert len(accepted) + len(refused) == n and len(accepted) >= limit
        for status, headers, body in refused:
            assert status == 503 and headers["content-type"].startswith("application/problem+json")
            assert body["type"] == "/problems/queue-full" and headers["retry-after"]
        for _, _, body in accepted:  # stop the solves
            s.request("DELETE", f"/v1/plans/{body['id']}")


def _procs() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        out[int(d)] = (int(rest[1]), rest[0], rest[19])
    return out


def _descendants(root: int) -> dict[int, str]:
    procs, found, todo = _procs(), {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _state, start) in procs.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def _alive(procs: dict[int, str]) -> list[int]:
    now = _procs()
    return [p for p, start in procs.items() if p in now and now[p][2] == start and now[p][1] != "Z"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_no_solver_process_outlives_a_killed_service(tmp_path: Path):
    s = Server(tmp_path / "k.db", ALLOCATOR_LOAD_EXAMPLES="false").start()
    assert s.proc is not None
    try:
        assert s.request("POST", "/v1/solve", tiny())[0] == 200  # the pool's worker is up
        s.request("PUT", "/v1/scenarios/slow", slow_scenario())
        _, headers, _ = s.request("POST", "/v1/scenarios/slow/plans", {})
        s.wait(headers["location"], ("running",))
        children = _descendants(s.proc.pid)
        assert len(children) >= 3  # forkserver, pool worker, the job (and a resource tracker)
        os.kill(s.proc.pid, signal.SIGKILL)  # the service only, not its process group
        s.proc.wait(timeout=10)
        end = time.monotonic() + 5
        while _alive(children) and time.monotonic() < end:
            time.sleep(0.1)
        assert _alive(children) == []
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever survived: the suite goes on
            os.killpg(s.proc.pid, signal.SIGKILL)


def test_two_services_start_together_on_an_older_postgresql_database(tmp_path: Path):
    """Defect 6: two service processes started at once on a PostgreSQL database of the
    first release; one died with DuplicateColumn "attempts". Both must come up, and see the
    old data."""
    with own_postgres_database() as url:
        old_schemas.write(url, "first-release")
        servers = [
            Server(
                tmp_path / f"{i}.db", ALLOCATOR_DATABASE_URL=url, ALLOCATOR_LOAD_EXAMPLES="false"
            )
            for i in range(2)
        ]
        try:
            at_once(2, lambda i: servers[i].start())
            for s in servers:
                assert json.loads(s.get("/v1/scenarios/old")[2])["revision"] == 3
                assert s.get("/readyz")[0] == 200
        finally:
            for s in servers:
                if s.proc is not None:
                    s.stop()
