"""Scenario workbooks in (POST/PUT /v1/scenarios), plans out as JSON, Excel and Parquet,
and the orjson responses."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import pytest
from openpyxl import load_workbook
from starlette.responses import JSONResponse

from allocator import Plan, Scenario
from allocator.plan.workbook import ALLOCATIONS
from allocator.scenario.workbook import write_workbook
from api.downloads import FastJSON
from api.routes.common import plan_public

from .conftest import DATA, JSON, make_settings, tiny, wait_done

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOOK = {"content-type": XLSX}


def bad_workbook(tmp_path) -> bytes:
    """tiny.json as a workbook with text in a demand cell and a duplicate pool row."""
    path = tmp_path / "bad.xlsx"
    write_workbook(Scenario.from_dict(tiny()), path)
    wb = load_workbook(path)
    wb["demand"]["B2"] = "n/a"
    pools = wb["pools"]
    pools.append([c.value for c in pools[2]])  # row 2's pool again
    wb.save(path)
    return path.read_bytes()


def test_workbook_post_and_put_store_the_json_scenario(client) -> None:
    raw = (DATA / "hyperscaler.xlsx").read_bytes()
    expected = client.get("/v1/scenarios/hyperscaler").json()["scenario"]  # from the JSON
    r = client.post("/v1/scenarios?id=from-book", content=raw, headers=BOOK)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/scenarios/from-book" and r.headers["etag"] == '"1"'
    assert r.json()["scenario"] == expected
    assert client.get("/v1/scenarios/from-book").json()["scenario"] == expected

    r = client.put("/v1/scenarios/put-book", content=raw, headers=BOOK)
    assert r.status_code == 201 and r.json()["scenario"] == expected
    # media types match case-insensitively, parameters ignored
    r = client.put(
        "/v1/scenarios/put-book",
        content=raw,
        headers={"content-type": XLSX.upper() + "; name=x.xlsx", "if-match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.headers["etag"] == '"2"'


def test_a_bad_workbook_is_422_naming_sheet_and_cell_and_nothing_is_stored(
    client, tmp_path
) -> None:
    raw = bad_workbook(tmp_path)
    for method, url in (("POST", "/v1/scenarios?id=bad"), ("PUT", "/v1/scenarios/bad")):
        r = client.request(method, url, content=raw, headers=BOOK)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        paths = {e["path"]: e["message"] for e in r.json()["errors"]}
        assert "not a number" in paths["demand!B2"]
        assert "duplicate pool" in paths["pools!A4"]
        assert r.json()["detail"] == "2 problem(s) in the request"
    assert client.get("/v1/scenarios/bad").status_code == 404

    # not a workbook at all; an empty body
    r = client.post("/v1/scenarios?id=bad", content=b"PK not really", headers=BOOK)
    assert r.status_code == 422 and "not an Excel workbook" in r.json()["errors"][0]["message"]
    r = client.put("/v1/scenarios/bad", content=b"", headers=BOOK)
    assert r.status_code == 422
    # a workbook that reads, with a scenario problem: the scenario's field path
    path = tmp_path / "neg.xlsx"
    d = tiny()
    d["segments"][0]["demand"][0] = -1
    write_workbook(d, path)
    r = client.put("/v1/scenarios/bad", content=path.read_bytes(), headers=BOOK)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "segments[0].demand[0]"
    assert client.get("/v1/scenarios/bad").status_code == 404


def test_a_workbook_that_unpacks_too_big_is_refused(client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("xl/big.xml", "w") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(130):
            f.write(chunk)
    r = client.post("/v1/scenarios?id=bomb", content=buf.getvalue(), headers=BOOK)
    assert r.status_code == 413 and "unpacks to" in r.json()["errors"][0]["message"]


def test_workbooks_only_where_scenarios_are_stored_and_within_the_size_limit(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    raw = (DATA / "hyperscaler.xlsx").read_bytes()
    with TestClient(create_app(make_settings(tmp_path, max_body_bytes=10_000))) as c:
        r = c.post("/v1/scenarios?id=big", content=raw, headers=BOOK)
        assert r.status_code == 413
        r = c.post("/v1/solve", content=raw[:5000], headers=BOOK)
        assert r.status_code == 415 and XLSX not in r.json()["detail"]
        r = c.post("/v1/scenarios", content=b"a,b", headers={"content-type": "text/csv"})
        assert r.status_code == 415 and XLSX in r.json()["detail"]


@pytest.fixture
def done(client) -> dict:
    loc = client.post("/v1/scenarios/hyperscaler/plans").headers["location"]
    job = wait_done(client, loc)
    assert job["status"] == "done"
    return job


def test_the_plan_itself_as_json_and_excel(client, done) -> None:
    base, plan = done["links"]["self"], done["plan"]
    assert done["links"]["plan"] == f"{base}/plan"
    r = client.get(f"{base}/plan")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == plan and Plan.from_dict(r.json()).objective == pytest.approx(
        plan["totals"]["objective"]
    )

    for r in (
        client.get(f"{base}/plan?format=xlsx"),
        client.get(f"{base}/plan", headers={"Accept": XLSX}),
    ):
        assert r.status_code == 200 and r.headers["content-type"] == XLSX
        assert (
            r.headers["content-disposition"]
            == f'attachment; filename="{done["scenario_id"]}-plan-{done["id"][:8]}.xlsx"'
        )
        wb = load_workbook(io.BytesIO(r.content), read_only=True)
        rows = list(wb["Allocations"].iter_rows(values_only=True))
        assert len(rows) - 1 == len(plan["allocations"])
        for got, a in zip(rows[1:], plan["allocations"], strict=True):
            want = [a[f] for f, _, _ in ALLOCATIONS]
            assert [g for g in got[: len(want)]] == pytest.approx(want)


def test_parquet_tables_and_the_whole_plan_as_a_zip(client, done) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    base = done["links"]["self"]
    for name in ("allocations", "segments", "pools"):
        for r in (
            client.get(f"{base}/{name}?format=parquet"),
            client.get(f"{base}/{name}", headers={"Accept": "application/vnd.apache.parquet"}),
        ):
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/vnd.apache.parquet"
            assert r.headers["content-disposition"] == (
                f'attachment; filename="{done["scenario_id"]}-{name}-{done["id"][:8]}.parquet"'
            )
            table = pq.read_table(io.BytesIO(r.content))
            assert table.to_pylist() == done["plan"][name]
            meta = json.loads(table.schema.metadata[b"allocator.plan"])
            assert meta["totals"] == done["plan"]["totals"]

    r = client.get(f"{base}/plan?format=parquet")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{done["scenario_id"]}-plan-{done["id"][:8]}.parquet.zip"'
    )
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    folder = f"{done['scenario_id']}-plan-{done['id'][:8]}.parquet"
    tables = ("allocations", "segments", "pools", "reservations", "binding")
    assert sorted(zf.namelist()) == sorted(
        [f"{folder}/{n}.parquet" for n in tables] + [f"{folder}/plan.json"]
    )
    table = pq.read_table(io.BytesIO(zf.read(f"{folder}/allocations.parquet")))
    assert table.to_pylist() == done["plan"]["allocations"]
    assert client.get(f"{base}/plan", headers={"Accept": "application/zip"}).status_code == 200


def test_unknown_formats_are_problems(client, done) -> None:
    base = done["links"]["self"]
    for url in (f"{base}/allocations?format=xml", f"{base}/plan?format=csv"):
        r = client.get(url)
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/unknown-format"
    r = client.get(f"{base}/pools?format=xlsx")
    assert r.status_code == 400 and f"{base}/plan?format=xlsx" in r.json()["detail"]
    r = client.get(f"{base}/pools", headers={"Accept": "application/xml"})
    assert r.status_code == 406 and r.json()["type"] == "/problems/not-acceptable"
    # wildcards and the CSV Accept still work as before
    assert client.get(f"{base}/pools", headers={"Accept": "*/*"}).json() == done["plan"]["pools"]
    r = client.get(f"{base}/pools", headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")


def test_without_pyarrow_parquet_is_501(client, done, monkeypatch) -> None:
    for mod in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails
    base = done["links"]["self"]
    for url in (f"{base}/allocations?format=parquet", f"{base}/plan?format=parquet"):
        r = client.get(url)
        assert r.status_code == 501 and r.json()["type"] == "/problems/parquet-unavailable"
        assert "allocator[arrow]" in r.json()["detail"]


def test_orjson_responses_carry_the_same_content_as_before(client, done) -> None:
    row = client.app.state.store.get_plan(done["id"])
    before = json.loads(JSONResponse(plan_public(row).model_dump(mode="json")).body)
    r = client.get(done["links"]["self"])
    assert r.headers["content-type"] == "application/json"
    assert r.json() == before
    assert r.json()["plan"] == row.result

    r = client.post("/v1/solve", json=tiny())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["totals"]["objective"] == pytest.approx(30950)
    r = client.post("/v1/scenarios/tiny/what-if", json={"demand_scale": {"cloud": 2}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "scenario_id",
        "scenario_revision",
        "base_plan_id",
        "overrides",
        "difference",
        "plan",
        "warm",
    }
    assert body["overrides"] == {"demand_scale": {"cloud": 2.0}}
    assert body["plan"]["scenario"] == "tiny" or body["plan"]["totals"]
    r = client.post("/v1/solve", content=json.dumps(tiny()), headers=JSON)
    assert r.status_code == 200


def test_fast_json_refuses_nan_and_renders_like_json() -> None:
    with pytest.raises(ValueError, match="NaN"):
        FastJSON({"plan": {"totals": {"objective": float("nan")}}})
    content = {"a": [1, 2.5, 1e-05, None, True], "b": "é<>&", "c": {"d": 1e300}}
    assert json.loads(FastJSON(content).body) == json.loads(JSONResponse(content).body)
