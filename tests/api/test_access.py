"""Keys, the audit and approved plans (docs/service-access.md): keys are stored hashed and
revoking one takes effect; the service key is an admin key; an open service stays open
until the first key; every revision, job, cancel, approval and deletion is audited with its
actor; approval rules. On SQLite and on PostgreSQL (ALLOCATOR_TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.__main__ import main as allocator_api
from api.auth import Authenticator, Role
from api.config import Settings
from api.main import create_app
from api.store import Store, metadata

from .conftest import JSON, assert_problem, tiny


def add_key(url: str, name: str, role: str, capsys) -> str:
    """A key made by `allocator-api keys add` (its stdout is the key alone)."""
    capsys.readouterr()
    assert allocator_api(["keys", "add", name, "--role", role, "--database-url", url]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("alk_") and len(key) >= 40
    return key


@pytest.fixture
def url(database_url: str) -> str:
    """An empty database: SQLite, and PostgreSQL (conftest.database_url)."""
    return database_url


def settings_for(url: str, **kw: object) -> Settings:
    return Settings(database_url=url, load_examples=False, job_stale_after_s=5.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def keys(url: str, capsys) -> dict[str, str]:
    return {
        role: add_key(url, f"{role}-1", role, capsys) for role in ("viewer", "planner", "admin")
    }


@pytest.fixture
def client(url: str, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(url))) as c:
        yield c


def as_(role_key: str) -> dict[str, str]:
    return {"X-API-Key": role_key}


def test_keys_are_stored_as_hashes_only(url: str, keys: dict[str, str]):
    """Neither the key nor any 16-character piece of it is in any column of any table (on
    SQLite: anywhere in the database files); its SHA-256 is."""
    store = Store(url)
    dump = []
    with store.engine.connect() as c:
        for table in metadata.sorted_tables:
            dump += [repr(tuple(row)) for row in c.execute(sa.select(table))]
        if url.startswith("sqlite"):  # the WAL into the file read below
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = store.list_keys()
    store.close()
    text = "\n".join(dump).encode()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        text += b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for key in keys.values():
        assert not any(key[i : i + 16].encode() in text for i in range(len(key) - 15))
        digest = hashlib.sha256(key.encode()).hexdigest()
        assert digest.encode() in text
        assert digest in {r.key_hash for r in rows}
    assert {(r.name, r.role) for r in rows} == {
        ("viewer-1", "viewer"),
        ("planner-1", "planner"),
        ("admin-1", "admin"),
    }


def test_key_made_over_rest_is_shown_once_and_works(client, keys):
    r = client.post(
        "/v1/keys", json={"name": "ci bot", "role": "planner"}, headers=as_(keys["admin"])
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["role"] == "planner" and made["created_by"] == "admin-1"
    me = client.get("/v1/me", headers=as_(made["key"])).json()
    assert me == {"name": "ci bot", "role": "planner", "auth": "key"}
    listed = client.get("/v1/keys", headers=as_(keys["admin"])).json()
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert "ci bot" in {k["name"] for k in listed}
    for bad in ({"name": "anonymous", "role": "viewer"}, {"name": "x", "role": "root"}):
        assert_problem(client.post("/v1/keys", json=bad, headers=as_(keys["admin"])), 422)


def test_me_names_the_caller_and_role(client, keys):
    for role, key in keys.items():
        assert client.get("/v1/me", headers=as_(key)).json() == {
            "name": f"{role}-1",
            "role": role,
            "auth": "key",
        }


def test_revoking_over_rest_takes_effect_at_once(url: str, keys):
    """The cache would trust the key for five minutes; revoking through the service drops
    it."""
    with TestClient(create_app(settings_for(url, key_cache_s=300))) as c:
        assert c.get("/v1/scenarios", headers=as_(keys["viewer"])).status_code == 200
        r = c.delete("/v1/keys/viewer-1", headers=as_(keys["admin"]))
        assert r.status_code == 204
        body = assert_problem(c.get("/v1/scenarios", headers=as_(keys["viewer"])), 401)
        assert "revoked" in body["detail"]
        assert_problem(c.delete("/v1/keys/viewer-1", headers=as_(keys["admin"])), 404)


def test_revoking_with_the_cli_takes_effect_within_the_cache_time(url: str, keys):
    """Revoked by another process (the CLI): with no cache at once; with a cache of 5 s the
    key works until its 5 s are over, and not after."""
    with TestClient(create_app(settings_for(url, key_cache_s=0))) as c:
        assert c.get("/v1/me", headers=as_(keys["planner"])).status_code == 200
        assert allocator_api(["keys", "revoke", "planner-1", "--database-url", url]) == 0
        assert_problem(c.get("/v1/me", headers=as_(keys["planner"])), 401)
    assert allocator_api(["keys", "revoke", "planner-1", "--database-url", url]) == 1

    now = [1000.0]
    store = Store(url)
    auth = Authenticator(store, Settings(database_url=url, key_cache_s=5), clock=lambda: now[0])
    assert auth.cached(keys["viewer"]) is None  # never seen: the database decides
    assert auth.lookup(keys["viewer"]).role is Role.VIEWER
    store.revoke_keys("viewer-1", "test")
    now[0] += 4.9
    assert auth.cached(keys["viewer"]).name == "viewer-1"  # within the bound
    now[0] += 0.2
    assert auth.cached(keys["viewer"]) is None  # past it: asks the database again
    assert auth.lookup(keys["viewer"]) is None
    store.close()


def test_the_service_key_is_an_admin_key(url: str, keys):
    with TestClient(create_app(settings_for(url, api_key="legacy-secret"))) as c:
        legacy = {"X-API-Key": "legacy-secret"}
        assert c.get("/v1/me", headers=legacy).json() == {
            "name": "ALLOCATOR_API_KEY",
            "role": "admin",
            "auth": "service-key",
        }
        r = c.put("/v1/scenarios/t", json=tiny(), headers=legacy | JSON)
        assert r.status_code == 201
        assert c.delete("/v1/scenarios/t", headers=legacy).status_code == 204
        assert_problem(c.get("/v1/scenarios"), 401)
        assert_problem(c.get("/v1/scenarios", headers={"X-API-Key": "legacy-secreT"}), 401)
        # personal keys work beside it
        assert c.get("/v1/me", headers=as_(keys["viewer"])).json()["role"] == "viewer"
        entries = c.get("/v1/audit?scenario=t", headers=legacy).json()["items"]
        assert [(e["action"], e["actor"]) for e in entries] == [
            ("scenario.delete", "ALLOCATOR_API_KEY"),
            ("scenario.create", "ALLOCATOR_API_KEY"),
        ]


def test_a_service_without_credentials_stays_open_until_the_first_key(url: str, capsys):
    with TestClient(create_app(settings_for(url, key_cache_s=0))) as c:
        assert c.get("/v1/me").json() == {"name": "anonymous", "role": "admin", "auth": "open"}
        assert c.put("/v1/scenarios/t", json=tiny(), headers=JSON).status_code == 201
        assert c.get("/v1/scenarios/t/revisions").json()["items"][0]["saved_by"] == "anonymous"
        key = add_key(url, "alice", "viewer", capsys)
        assert_problem(c.get("/v1/scenarios"), 401)
        assert c.get("/v1/scenarios", headers=as_(key)).status_code == 200
        assert allocator_api(["keys", "revoke", "alice", "--database-url", url]) == 0
        assert_problem(c.get("/v1/scenarios"), 401)  # revoking every key does not open it


def plan_of(client: TestClient, headers: dict, sid: str = "t") -> str:
    """A done plan job of ``sid``, submitted by the holder of ``headers``."""
    r = client.post(f"/v1/scenarios/{sid}/plans", headers=headers)
    assert r.status_code == 202, r.text
    end = time.monotonic() + 120
    while (job := client.get(r.headers["location"], headers=headers).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < end, job
        time.sleep(0.05)
    assert job["status"] == "done", job
    return job["id"]


def test_audit_records_every_change_with_its_actor(client, keys):
    """A planner stores two revisions and submits a plan job; an admin approves a plan,
    deletes another and deletes the scenario: each is one audit entry naming who, in order,
    and the history shows who saved each revision."""
    planner, admin = as_(keys["planner"]), as_(keys["admin"])
    assert client.put("/v1/scenarios/t", json=tiny(), headers=planner | JSON).status_code == 201
    two = tiny() | {"name": "second"}
    assert client.put("/v1/scenarios/t", json=two, headers=admin | JSON).status_code == 200
    first = plan_of(client, planner)
    second = plan_of(client, planner)
    r = client.post(f"/v1/plans/{first}/approve", json={"comment": "ok"}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.delete(f"/v1/plans/{second}", headers=admin).status_code == 204

    revs = client.get("/v1/scenarios/t/revisions", headers=as_(keys["viewer"])).json()
    assert [(x["revision"], x["saved_by"], x["name"]) for x in revs["items"]] == [
        (2, "admin-1", "second"),
        (1, "planner-1", "tiny"),
    ]
    job = client.get(f"/v1/plans/{first}", headers=planner).json()
    assert job["created_by"] == "planner-1"
    assert job["approval"]["approved_by"] == "admin-1" and job["approval"]["comment"] == "ok"

    assert client.delete("/v1/scenarios/t", headers=admin).status_code == 204
    page = client.get("/v1/audit?scenario=t", headers=admin).json()
    got = [(e["action"], e["actor"], e["scenario_revision"], e["target"]) for e in page["items"]]
    assert got == [
        ("scenario.delete", "admin-1", 2, None),
        ("job.delete", "admin-1", 2, second),
        ("plan.approve", "admin-1", 2, first),
        ("job.submit", "planner-1", 2, second),
        ("job.submit", "planner-1", 2, first),
        ("scenario.revise", "admin-1", 2, None),
        ("scenario.create", "planner-1", 1, None),
    ]
    assert page["total"] == 7
    assert page["items"][0]["detail"] == {"cancelled_jobs": 0, "approval_dropped": first}
    assert page["items"][2]["detail"] == {"comment": "ok", "supersedes": None}
    assert all(e["at"] for e in page["items"])
    # filters and paging
    mine = client.get("/v1/audit?actor=planner-1&limit=2&offset=1", headers=admin).json()
    assert mine["total"] == 3 and [e["action"] for e in mine["items"]] == [
        "job.submit",
        "scenario.create",
    ]
    submits = client.get("/v1/audit?action=job.submit&scenario=t", headers=admin).json()
    assert {e["target"] for e in submits["items"]} == {first, second}
    assert_problem(client.get("/v1/audit", headers=planner), 403)


def test_cancel_is_audited_and_open_to_planners(client, keys, monkeypatch):
    planner, viewer = as_(keys["planner"]), as_(keys["viewer"])
    client.put("/v1/scenarios/t", json=tiny(), headers=planner | JSON)
    store = client.app.state.store
    # the runner takes no job in this test: the job stays queued until it is cancelled
    # (created and cancelled back to back, a busy machine's runner could take it between)
    monkeypatch.setattr(store, "claim_next", lambda owner: None)
    row = store.get_scenario("t")
    job, _ = store.create_plan(row, {"time_limit_s": 5}, None, None, actor="planner-1")
    assert store.cancel_plan(job.id, "planner-1") == "cancelled"
    assert_problem(client.post(f"/v1/plans/{job.id}/cancel", headers=viewer), 403)
    r = client.post(f"/v1/plans/{job.id}/cancel", headers=planner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(client.delete(f"/v1/plans/{job.id}", headers=planner), 403)
    cancels = client.get("/v1/audit?action=job.cancel", headers=as_(keys["admin"])).json()
    assert [(e["actor"], e["target"]) for e in cancels["items"]] == [("planner-1", job.id)]


def test_approval_rules(client, keys):
    """Only a done plan job is approved; the approved plan is what the scenario serves and
    cannot be deleted; approving another supersedes it, and then it can be; a scenario's
    deletion drops its approval."""
    planner, admin, viewer = as_(keys["planner"]), as_(keys["admin"]), as_(keys["viewer"])
    client.put("/v1/scenarios/t", json=tiny(), headers=planner | JSON)
    body = assert_problem(client.get("/v1/scenarios/t/plans/approved", headers=viewer), 404)
    assert body["type"] == "/problems/no-approved-plan"
    none = client.get("/v1/plans?scenario=t&approved=true", headers=viewer).json()
    assert none["items"] == [] and none["total"] == 0
    first, second = plan_of(client, planner), plan_of(client, planner)
    ok = {"comment": "signed off"}
    assert_problem(client.post(f"/v1/plans/{first}/approve", json=ok, headers=planner), 403)
    assert_problem(
        client.post(f"/v1/plans/{first}/approve", json={"comment": ""}, headers=admin), 422
    )
    assert_problem(client.post("/v1/plans/nope/approve", json=ok, headers=admin), 404)

    store = client.app.state.store
    queued, _ = store.create_plan(store.get_scenario("t"), {"time_limit_s": 5}, None, None)
    store.cancel_plan(queued.id)
    body = assert_problem(
        client.post(f"/v1/plans/{queued.id}/approve", json=ok, headers=admin), 409
    )
    assert "cancelled" in body["detail"]
    analysis, _ = store.create_plan(store.get_scenario("t"), {}, None, None, kind="frontier")
    store.cancel_plan(analysis.id)
    assert_problem(client.post(f"/v1/plans/{analysis.id}/approve", json=ok, headers=admin), 404)

    r = client.post(f"/v1/plans/{first}/approve", json=ok, headers=admin)
    assert r.status_code == 200
    assert r.json() | {"approved_at": None} == {
        "scenario_id": "t",
        "plan_id": first,
        "approved_by": "admin-1",
        "approved_at": None,
        "comment": "signed off",
        "supersedes": None,
    }
    listed = client.get("/v1/plans?scenario=t&approved=true", headers=viewer).json()
    assert [j["id"] for j in listed["items"]] == [first] and listed["total"] == 1
    assert listed["items"][0]["approval"]["approved_by"] == "admin-1"
    every = client.get("/v1/plans?approved=true", headers=viewer).json()
    assert [(j["scenario_id"], j["id"]) for j in every["items"]] == [("t", first)]
    served = client.get("/v1/scenarios/t/plans/approved", headers=viewer)
    assert served.status_code == 200
    assert served.headers["content-location"] == f"/v1/plans/{first}"
    assert served.json()["id"] == first and served.json()["plan"]["status"] == "optimal"
    assert served.json()["approval"]["comment"] == "signed off"
    body = assert_problem(client.delete(f"/v1/plans/{first}", headers=admin), 409)
    assert body["type"] == "/problems/approved-plan"
    assert_problem(client.delete(f"/v1/jobs/{first}", headers=admin), 409)

    r = client.post(f"/v1/plans/{second}/approve", json={"comment": "newer"}, headers=admin)
    assert r.json()["supersedes"] == first
    served = client.get("/v1/scenarios/t/plans/approved", headers=viewer).json()
    assert served["id"] == second
    listed = client.get("/v1/plans?scenario=t&status=done", headers=viewer).json()["items"]
    assert {j["id"]: bool(j["approval"]) for j in listed} == {first: False, second: True}
    assert client.delete(f"/v1/plans/{first}", headers=admin).status_code == 204
    history = client.get("/v1/audit?action=plan.approve", headers=admin).json()["items"]
    assert [(e["target"], e["detail"]["supersedes"]) for e in history] == [
        (second, first),
        (first, None),
    ]

    assert client.delete("/v1/scenarios/t", headers=admin).status_code == 204
    assert_problem(client.get("/v1/scenarios/t/plans/approved", headers=viewer), 404)
    body = assert_problem(client.post(f"/v1/plans/{second}/approve", json=ok, headers=admin), 409)
    assert "deleted" in body["detail"]
    # a new scenario under the same id is another scenario: the old plan is not its plan
    assert client.put("/v1/scenarios/t", json=tiny(), headers=planner | JSON).status_code == 201
    body = assert_problem(client.post(f"/v1/plans/{second}/approve", json=ok, headers=admin), 409)
    assert "another one" in body["detail"]
    assert_problem(client.get("/v1/scenarios/t/plans/approved", headers=viewer), 404)
    # the plan of the deleted scenario is no longer approved: it can be deleted
    assert client.delete(f"/v1/plans/{second}", headers=admin).status_code == 204


def test_key_names_and_roles_are_checked_by_the_cli(url, capsys):
    assert allocator_api(["keys", "add", "system", "--role", "admin", "--database-url", url]) == 2
    assert allocator_api(["keys", "add", "bad/name", "--role", "admin", "--database-url", url]) == 2
    with pytest.raises(SystemExit):
        allocator_api(["keys", "add", "bob", "--role", "root", "--database-url", url])
    add_key(url, "bob", "viewer", capsys)
    assert allocator_api(["keys", "list", "--json", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert '"name": "bob"' in out and "alk_" not in out


def done_plans(store: Store, sid: str, n: int) -> list[str]:
    """``n`` plan jobs of scenario ``sid`` marked done (their plan: an empty object)."""
    from api.store import DONE, plans

    row = store.get_scenario(sid)
    ids = [store.create_plan(row, {}, None, None, actor="t")[0].id for _ in range(n)]
    with store.engine.begin() as c:
        c.execute(plans.update().where(plans.c.id.in_(ids)).values(status=DONE, result="{}"))
    return ids


def test_concurrent_approvals_form_one_chain(url: str):
    """Eight approvals of eight plans of one scenario at once: all succeed, one plan ends
    approved, and each approval superseded exactly the one before it (one None, then each
    plan once): they ran one after the other."""
    store = Store(url)
    try:
        store.create_scenario("c", tiny(), "t")
        ids = done_plans(store, "c", 8)
        with ThreadPoolExecutor(8) as pool:
            out = list(pool.map(lambda pid: store.approve_plan(pid, "t", "go"), ids))
        supersedes = [s for _, s in out]
        assert supersedes.count(None) == 1
        assert sorted(s for s in supersedes if s) == sorted(
            set(ids) - {store.approved_plan("c").plan_id}
        )
    finally:
        store.close()


def test_approval_and_deletion_of_one_plan_never_leave_an_approval_without_its_plan(url: str):
    """Approve and delete the same plan at once, 10 times: either it is approved and still
    there (the deletion refused), or it is gone and nothing is approved."""
    from api.store import PlanApproved

    store = Store(url)
    try:
        store.create_scenario("c", tiny(), "t")
        for pid in done_plans(store, "c", 10):

            def approve(pid: str = pid) -> str:
                try:
                    store.approve_plan(pid, "t", "go")
                    return "approved"
                except KeyError:
                    return "gone"

            def delete(pid: str = pid) -> str:
                try:
                    return "deleted" if store.delete_plan(pid, "t") else "missing"
                except PlanApproved:
                    return "refused"

            with ThreadPoolExecutor(2) as pool:
                a, d = pool.submit(approve), pool.submit(delete)
                outcome = (a.result(), d.result())
            approval = store.approved_plan("c")
            if outcome == ("approved", "refused"):
                assert approval.plan_id == pid and store.get_plan(pid) is not None
            else:
                assert outcome == ("gone", "deleted"), outcome
                assert store.get_plan(pid) is None
                assert approval is None or approval.plan_id != pid
                if approval is not None:  # the previous approval stays: clear it for the next
                    with store.engine.begin() as c:
                        from api.store import plan_approvals

                        c.execute(plan_approvals.delete())
    finally:
        store.close()
