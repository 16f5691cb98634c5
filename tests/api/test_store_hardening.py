"""Optimistic concurrency (ETag / If-Match); a full disk: 507 and not ready, /readyz wants
room for a typical body, DELETE works on a full disk. Databases of earlier schemas:
test_migrations."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from allocator.scenario.generate import generate_dict
from api.main import create_app
from api.store import Store

from .conftest import assert_problem, make_settings, slow_scenario, tiny


def test_etag_is_the_revision_and_if_match_guards_put(client):
    r = client.post("/v1/scenarios?id=e", json=tiny())
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    assert client.get("/v1/scenarios/e").headers["etag"] == '"1"'
    r = client.put("/v1/scenarios/e", json=tiny() | {"name": "two"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.headers["etag"] == '"2"'
    stale = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": '"1"'})
    body = assert_problem(stale, 412)
    assert body["type"] == "/problems/precondition-failed" and "revision 2" in body["detail"]
    assert stale.headers["etag"] == '"2"'
    weak = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": 'W/"2"'})
    assert_problem(weak, 412)  # If-Match compares strongly
    r = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": '"7", "2"'})
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    r = client.put("/v1/scenarios/e", json=tiny(), headers={"If-Match": "*"})
    assert r.status_code == 200 and r.headers["etag"] == '"4"'
    assert client.get("/v1/scenarios/e").json()["name"] == "tiny"
    assert_problem(client.put("/v1/scenarios/new", json=tiny(), headers={"If-Match": "*"}), 412)
    assert_problem(client.put("/v1/scenarios/new", json=tiny(), headers={"If-Match": '"1"'}), 412)
    assert client.get("/v1/scenarios/new").status_code == 404  # a refused PUT creates nothing
    r = client.put("/v1/scenarios/new", json=tiny())  # unconditional: creates
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    store = client.app.state.store
    assert [rev for rev, _ in store.scenario_history("e")] == [1, 2, 3, 4]


def _limit_pages(store: Store, extra: int | None) -> None:
    """Every connection of the store may grow the file by ``extra`` pages (None: no cap)."""
    with store.engine.connect() as c:
        pages = c.execute(sa.text("PRAGMA page_count")).scalar_one()
    store.engine.dispose()
    cap = 1_073_741_823 if extra is None else pages + extra

    def pragma(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA max_page_count = {cap}")

    if getattr(store, "_test_cap", None) is not None:
        sa.event.remove(store.engine, "connect", store._test_cap)  # type: ignore[attr-defined]
    sa.event.listen(store.engine, "connect", pragma)
    store._test_cap = pragma  # type: ignore[attr-defined]


def test_a_full_disk_answers_507_and_is_not_ready(client):
    assert client.get("/readyz").status_code == 200
    store = client.app.state.store
    _limit_pages(store, 0)  # the database cannot grow: "database or disk is full"
    big = slow_scenario()
    r = client.put("/v1/scenarios/big", json=big)
    body = assert_problem(r, 507)
    assert body["type"] == "/problems/insufficient-storage"
    assert "full" in body["detail"] and "Traceback" not in r.text
    assert_problem(client.post("/v1/scenarios?id=big2", json=big), 507)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] is False
    assert client.get("/v1/scenarios/tiny").status_code == 200  # reads still work
    _limit_pages(store, None)  # space again: the probe write succeeds
    assert client.get("/readyz").status_code == 200
    assert client.put("/v1/scenarios/big", json=big).status_code == 201


def test_readyz_wants_room_for_a_typical_body(tmp_path: Path):
    """Ready means a write of ready_write_bytes fits, not only a few-kB probe: with room
    for small writes only, a 120 kB scenario is refused and /readyz says not ready."""
    settings = make_settings(tmp_path, ready_write_bytes=256 * 1024)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        store = client.app.state.store
        _limit_pages(store, 20)  # 80 kB more at most
        assert_problem(client.put("/v1/scenarios/big", json=slow_scenario()), 507)
        assert client.put("/v1/scenarios/small", json=tiny()).status_code == 201
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] is False
        _limit_pages(store, None)
        assert client.get("/readyz").status_code == 200


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only; skipped where mount is not
    allowed)."""
    where.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], timeout=30, check=False)


def test_delete_works_on_a_full_disk(tmp_path: Path):
    """A real full disk (SQLite's write-ahead log cannot grow): every write is 507, DELETE
    too before the reserve (it answered 507, so space could not be freed). The store gives
    its reserve up for deletes: they succeed, and /readyz stays not ready until the disk
    has room for the reserve and a write again."""
    with small_disk(tmp_path / "disk", "3m") as disk:
        settings = make_settings(
            disk,
            load_examples=False,
            storage_reserve_bytes=512 * 1024,
            ready_write_bytes=64 * 1024,
        )
        with TestClient(create_app(settings)) as client:
            assert (disk / "api.db-reserve").stat().st_size == 512 * 1024
            body = generate_dict(60, 8, 12, seed=1)
            stored = 0
            while (r := client.put(f"/v1/scenarios/s{stored}", json=body)).status_code == 201:
                stored += 1
                assert stored < 500
            assert_problem(r, 507)
            assert stored >= 5
            assert client.get("/readyz").status_code == 503
            for i in range(3):
                assert client.delete(f"/v1/scenarios/s{i}").status_code == 204
                assert client.get(f"/v1/scenarios/s{i}").status_code == 404
            assert not (disk / "api.db-reserve").exists()
            assert client.get("/readyz").status_code == 503
            assert client.get(f"/v1/scenarios/s{stored - 1}").status_code == 200
