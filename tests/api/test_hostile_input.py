"""Hostile and malformed bodies are client errors: a workbook beyond the reader's limits is
413 naming the sheet; malformed XML and JSON nested 100k deep are 4xx problems that log no
traceback; a slow workbook is cut off at the validation time limit (413, its process
replaced) and neither a JSON body nor another workbook waits behind it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bodies import BIG
from api.main import create_app
from tests.scenario.test_workbook_limits import (
    far_right,
    malformed,
    rewrite,
    sheet_part,
    tiny_workbook,
)

from .conftest import JSON, assert_problem, make_settings, tiny

BOOK = {"content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing the service logged carries an exception (a client error is not a bug)."""
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def test_a_cell_at_xfd_is_413_naming_the_sheet_and_nothing_is_stored(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = far_right(tmp_path / "x.xlsx", "demand", 2)
    r = client.put("/v1/scenarios/xfd", content=raw, headers=BOOK)
    body = assert_problem(r, 413)
    assert body["type"] == "/problems/workbook-too-large"
    assert body["errors"][0]["path"] == "demand"
    assert "demand!XFD" in body["errors"][0]["message"] and "demand" in body["detail"]
    assert client.get("/v1/scenarios/xfd").status_code == 404
    # on a sheet the reader does not use, the same cells cost nothing: stored
    raw = far_right(tmp_path / "y.xlsx", "notes", 500)
    r = client.put("/v1/scenarios/xfd", content=raw, headers=BOOK)
    assert r.status_code == 201, r.text
    assert (
        r.json()["scenario"]["segments"]
        == client.get("/v1/scenarios/tiny").json()["scenario"]["segments"]
    )
    no_traceback(caplog)


@pytest.mark.parametrize("kind", ["truncated", "dtd entity", "billion laughs"])
def test_malformed_workbook_xml_is_422_without_a_traceback(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    where, raw = malformed(tiny_workbook(tmp_path / "t.xlsx").read_bytes())[kind]
    r = client.post("/v1/scenarios?id=bad", content=raw, headers=BOOK)
    body = assert_problem(r, 422)
    assert body["errors"][0]["path"] == where
    assert client.get("/v1/scenarios/bad").status_code == 404
    no_traceback(caplog)


NESTED = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000]


@pytest.mark.parametrize("raw", NESTED, ids=["open", "objects", "closed"])
def test_json_nested_100k_deep_is_4xx_without_a_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    """Bodies parsed by the service (small in a thread, beyond BIG in the validator process)
    are 422 saying so; those FastAPI parses are its 400 ("error parsing the body")."""
    padded = raw + b" " * BIG  # whitespace after the value: the validator process's path
    for method, url in (
        ("POST", "/v1/solve"),
        ("PUT", "/v1/scenarios/deep"),
        ("POST", "/v1/scenarios"),
        ("POST", "/v1/scenarios/tiny/what-if"),
    ):
        for body in (raw, padded):
            r = client.request(method, url, content=body, headers=JSON)
            problem = assert_problem(r, 422)
            assert problem["errors"][0]["path"] == "", (url, problem)
            assert "nested too deeply" in problem["errors"][0]["message"], (url, problem)
    for url in ("/v1/scenarios/tiny/alternatives", "/v1/scenarios/tiny/plans"):
        assert_problem(client.post(url, content=raw, headers=JSON), 400)
    assert client.get("/v1/scenarios/deep").status_code == 404
    no_traceback(caplog)


def slow_workbook(tmp_path: Path, rows: int = 40_000) -> bytes:
    """tiny.json's workbook with ``rows`` rows of 10 numbers added to its periods sheet:
    ~0.4M cells, within every read limit, that take seconds to read (and are 0.4M
    problems: duplicate periods)."""
    raw = tiny_workbook(tmp_path / "slow.xlsx").read_bytes()
    cells = "".join(f'<c r="{chr(65 + j)}{{r}}"><v>1</v></c>' for j in range(10))
    extra = "".join(
        f'<row r="{r}">' + cells.replace("{r}", str(r)) + "</row>" for r in range(10, 10 + rows)
    ).encode()
    return rewrite(
        raw,
        sheet_part(raw, "periods"),
        lambda d: d.replace(b"</sheetData>", extra + b"</sheetData>"),
    )


def test_a_slow_workbook_is_cut_off_and_delays_neither_json_nor_other_workbooks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The slow workbook holds one of the two workbook processes; while it is held, a big
    JSON PUT (its own process) and an honest workbook (the other process) are stored; then
    the slow one ends at the 1 s limit with a 413, its process killed and replaced."""
    slow = slow_workbook(tmp_path)
    honest = tiny_workbook(tmp_path / "h.xlsx").read_bytes()
    big = tiny() | {"description": "x" * BIG}
    settings = make_settings(tmp_path, validation_time_limit_s=1.0, load_examples=False)
    with TestClient(create_app(settings)) as c:
        books = c.app.state.validators.groups["xlsx"]  # type: ignore[attr-defined]
        pids = {s.pool.submit(_pid).result() for s in books.slots}
        out: dict[str, object] = {}
        started = threading.Event()

        def put_slow() -> None:
            started.set()
            out["slow"] = c.put("/v1/scenarios/slow", content=slow, headers=BOOK)

        t = threading.Thread(target=put_slow)
        t.start()
        started.wait()
        while books.free.qsize() == len(books.slots):  # until it holds a process
            t.join(0.01)
        r = c.put("/v1/scenarios/big", json=big)
        assert r.status_code == 201 and t.is_alive()  # the JSON did not wait
        r = c.put("/v1/scenarios/honest", content=honest, headers=BOOK)
        assert r.status_code == 201 and t.is_alive()  # nor did another workbook
        t.join(60)
        body = assert_problem(out["slow"], 413)  # type: ignore[arg-type]
        assert body["type"] == "/problems/validation-time-limit"
        assert "longer than 1 s" in body["detail"] and "the workbook" in body["detail"]
        assert c.get("/v1/scenarios/slow").status_code == 404
        # the process that read it was replaced; the service keeps validating workbooks
        after = {s.pool.submit(_pid).result() for s in books.slots}
        assert len(after) == 2 and len(after & pids) == 1
        r = c.put("/v1/scenarios/honest", content=honest, headers=BOOK)
        assert r.status_code == 200 and r.json()["revision"] == 2
    assert not [r for r in caplog.records if r.exc_info]


def _pid() -> int:
    import os

    return os.getpid()


def test_workbook_limits_are_settings(tmp_path: Path) -> None:
    raw = tiny_workbook(tmp_path / "t.xlsx").read_bytes()
    for kw, path, words in (
        ({"workbook_max_rows": 3}, "scenario", "more than 3 rows"),  # the first, 5 rows
        ({"workbook_max_columns": 2}, "scenario", "scenario!D1 is beyond column B"),
        ({"workbook_max_cells": 20}, "", "over 20 cells"),
    ):
        with TestClient(create_app(make_settings(tmp_path, load_examples=False, **kw))) as c:
            body = assert_problem(c.put("/v1/scenarios/t", content=raw, headers=BOOK), 413)
            issue = body["errors"][0]
            assert words in issue["message"] and (not path or issue["path"] == path), issue


def test_a_null_body_is_422_naming_the_body(client: TestClient) -> None:
    for url in ("/v1/scenarios/tiny/what-if", "/v1/scenarios/tiny/what-if/save?as=copy"):
        body = assert_problem(client.post(url, content=b"null", headers=JSON), 422)
        assert body["errors"] == [
            {"path": "", "message": "the body is null: send a JSON object ({} for none)"}
        ]
    assert client.get("/v1/scenarios/copy").status_code == 404


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/v1/scenarios/tiny/alternatives", {"slack": False, "vary": ["kind:cloud"]}, "slack"),
        ("/v1/scenarios/tiny/fair", {"weights": {"chat": True}}, "weights.chat"),
        ("/v1/scenarios/tiny/plans", {"time_limit_s": True}, "time_limit_s"),
        ("/v1/scenarios/tiny/what-if", {"time_limit_s": True}, "time_limit_s"),
        (
            "/v1/scenarios/tiny/counterfactual",
            {"name": "x", "transforms": [{"type": "capacity", "pool": "h100", "gpus": True}]},
            "transforms[0].capacity.gpus",
        ),
    ],
)
def test_numbers_are_strict_in_every_request_body(
    client: TestClient, url: str, body: dict, path: str
) -> None:
    """true and false are not 1 and 0 (the scenario's numbers already were strict)."""
    problem = assert_problem(client.post(url, json=body), 422)
    assert [e["path"] for e in problem["errors"]] == [path]
    assert client.get("/v1/jobs").json()["total"] == 0  # nothing was queued


def scenario_schema(client: TestClient) -> Any:
    """A JSON Schema validator of the published Scenario schema (OpenAPI 3.1 schemas are
    JSON Schema 2020-12), with the document's components to resolve its $refs."""
    import jsonschema_rs  # schemathesis' validator (the dev extra)

    doc = client.get("/openapi.json").json()
    root = {"$ref": "#/components/schemas/Scenario", "components": doc["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def test_the_published_schema_refuses_what_the_service_refuses(client: TestClient) -> None:
    """Each body below is refused by the service (422 at the path given); the published
    schema refuses it too, where it used to accept it. tiny.json passes both."""
    comps = client.get("/openapi.json").json()["components"]["schemas"]
    assert comps["Segment"]["properties"]["throughput"]["minProperties"] == 1
    assert len(comps["GpuLimit"]["anyOf"]) == 2 and len(comps["GpuHourBudget"]["oneOf"]) == 2
    schema = scenario_schema(client)
    assert schema.is_valid(tiny())

    def seg0(**kw: object) -> dict:
        d = tiny()
        d["segments"][0].update(kw)
        return d

    def budget(**kw: object) -> dict:
        return tiny() | {"policy": {"gpu_hour_budgets": [{"id": "b"} | kw]}}

    cases = [
        (seg0(throughput={}), "segments[0].throughput"),
        (seg0(gpu_limits=[{"accelerator": "H100"}]), "segments[0].gpu_limits[0]"),
        (seg0(gpu_limits=[{"max_gpus": None}]), "segments[0].gpu_limits[0]"),
        (budget(kind="cloud"), "policy.gpu_hour_budgets[0]"),  # no bound
        (budget(min_gpu_hours=1), "policy.gpu_hour_budgets[0]"),  # no segment, no kind
        (budget(kind="cloud", segment="chat", min_gpu_hours=1), "policy.gpu_hour_budgets[0]"),
    ]
    for body, path in cases:
        assert not schema.is_valid(body), body
        r = client.put("/v1/scenarios/loose", json=body)
        problem = assert_problem(r, 422)
        assert path in [e["path"] for e in problem["errors"]], (path, problem["errors"])
    ok = budget(kind="cloud", min_gpu_hours=1)
    assert schema.is_valid(ok) and client.put("/v1/scenarios/loose", json=ok).status_code == 201


def test_a_body_beyond_the_validators_memory_is_413(tmp_path: Path) -> None:
    """With 10 MB of address space over its start, the validator cannot hold 20,000 parsed
    pools (a 1.4 MB body): 413 saying so, nothing stored, the service answers on."""
    bad = {"id": "p", "accelerator": "H100", "region": "e", "gpus": [-1, -1]}
    body = tiny() | {"pools": [bad] * 20_000}
    settings = make_settings(tmp_path, validator_memory_mb=10, load_examples=False)
    with TestClient(create_app(settings)) as c:
        problem = assert_problem(c.put("/v1/scenarios/fat", json=body), 413)
        assert problem["title"] == "Too large to validate"
        assert "memory" in problem["detail"] and "nothing was stored" in problem["detail"]
        assert c.get("/v1/scenarios/fat").status_code == 404
        assert c.put("/v1/scenarios/small", json=tiny()).status_code == 201  # in a thread
