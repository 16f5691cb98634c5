"""The plan's data path: columns, JSON, Parquet, CSV and the workbook all say the same as
``plan.to_dict()``."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from allocator import solve
from allocator.plan import jsonio
from allocator.plan.columns import Labels, Table
from allocator.plan.rows import Allocation
from allocator.plan.writers import format_of, write_plan
from tests.conftest import DATA


@pytest.fixture(scope="module")
def plan():
    return solve(DATA / "hyperscaler.json")


def test_tables_iterate_as_rows_made_from_columns(plan) -> None:
    rows = list(plan.allocations)
    assert all(isinstance(r, Allocation) for r in rows)
    assert len(rows) == len(plan.allocations) == len(plan.to_dict()["allocations"])
    assert plan.allocations[3] == rows[3] and plan.allocations[-2:] == rows[-2:]
    gpus = plan.allocations.columns["gpus"]
    assert isinstance(gpus, np.ndarray) and gpus.sum() == pytest.approx(sum(r.gpus for r in rows))
    assert isinstance(plan.pools.columns["pool"], Labels)


def test_slices_of_an_unread_table_make_only_those_rows(plan) -> None:
    fresh = Table(Allocation, plan.allocations.columns)
    top = fresh[:3]
    assert fresh._rows is None and top == list(plan.allocations)[:3]
    with pytest.raises(IndexError):
        fresh[len(fresh)]


def test_json_is_compact_by_default_and_indents_on_request(plan) -> None:
    compact = plan.to_json()
    assert "\n" not in compact and json.loads(compact) == json.loads(json.dumps(plan.to_dict()))
    assert plan.to_json(indent=2).startswith('{\n  "scenario"')
    assert json.loads(plan.to_json(indent=4)) == json.loads(compact)


def test_json_refuses_nan_naming_where(plan) -> None:
    cols = dict(plan.allocations.columns)
    cols["gpus"] = cols["gpus"].copy()
    cols["gpus"][0] = math.nan
    broken = type(plan)(**{**plan.__dict__, "allocations": Table(Allocation, cols)})
    with pytest.raises(ValueError, match=r"allocations\.gpus"):
        broken.to_json()
    with pytest.raises(ValueError, match=r"a\[1\]"):
        jsonio.dumps({"a": [1.0, math.inf]})


def test_frames_share_the_plan_arrays(plan) -> None:
    pytest.importorskip("pandas")
    frames = plan.to_frames()
    assert np.shares_memory(frames["pools"]["used"].to_numpy(), plan.pools.columns["used"])
    assert list(frames["pools"]["pool"].astype(str)) == [r.pool for r in plan.pools]


def test_arrow_and_parquet_read_back_equal_the_plan(plan, tmp_path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    d = plan.to_dict()
    files = write_plan(plan, tmp_path / "plan.parquet")
    assert {f.name for f in files} >= {"allocations.parquet", "pools.parquet", "plan.json"}
    for name in ("allocations", "segments", "pools", "reservations"):
        back = pq.read_table(tmp_path / "plan.parquet" / f"{name}.parquet").to_pylist()
        assert back == d[name], name
    binding = pq.read_table(tmp_path / "plan.parquet" / "binding.parquet").to_pylist()
    assert [dict(b, key=json.loads(b["key"])) for b in binding] == d["binding"]
    meta = pq.read_schema(tmp_path / "plan.parquet" / "pools.parquet").metadata
    assert json.loads(meta[b"allocator.plan"])["totals"] == d["totals"]


def test_csv_folder_holds_every_table(plan, tmp_path) -> None:
    import csv

    write_plan(plan, str(tmp_path / "out") + "/")
    pools = list(csv.DictReader((tmp_path / "out" / "pools.csv").read_text().splitlines()))
    assert len(pools) == len(plan.pools)
    first = plan.pools[0]
    assert pools[0]["pool"] == first.pool and float(pools[0]["used"]) == pytest.approx(first.used)
    for name in ("pools", "allocations", "segments"):  # no last-bit float noise
        text = (tmp_path / "out" / f"{name}.csv").read_text()
        assert not re.search(r"\.\d*(0{6,}|9{6,})\d", text), name
    summary = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert summary["totals"] == plan.to_dict()["totals"] and "allocations" not in summary


def test_workbook_values_equal_the_plan(plan, tmp_path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    write_plan(plan, tmp_path / "plan.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "plan.xlsx", read_only=True)
    assert wb.sheetnames[:3] == ["Summary", "By kind", "Prices"]
    d = plan.to_dict()
    alloc = list(wb["Allocations"].iter_rows(values_only=True))
    assert alloc[0][5] == "GPUs" and len(alloc) - 1 == len(d["allocations"])
    assert [r[5] for r in alloc[1:]] == pytest.approx([a["gpus"] for a in d["allocations"]])
    prices = list(wb["Prices"].iter_rows(values_only=True))
    assert list(prices[0][1:]) == d["periods"]
    grid = {row[0]: row[1:] for row in prices[1:]}
    for r in d["pools"]:
        assert grid[r["pool"]][d["periods"].index(r["period"])] == pytest.approx(
            r["shadow_price_per_gpu_hour"]
        )
    summary = {row[0]: row[1] for row in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["gross margin"] == pytest.approx(d["totals"]["gross_margin"])
    kinds = list(wb["By kind"].iter_rows(min_row=2, values_only=True))
    assert {k[0]: k[4] for k in kinds} == pytest.approx(
        {v["kind"]: v["gross_margin"] for v in d["by_kind"].values()}
    )
    wb.close()
    # people's formatting: frozen header, number formats, a colour scale on the prices
    wb = openpyxl.load_workbook(tmp_path / "plan.xlsx")
    assert wb["Allocations"].freeze_panes == "A2"
    assert wb["Allocations"]["F2"].number_format == "#,##0.0"
    assert len(wb["Prices"].conditional_formatting) == 1


def test_format_is_chosen_by_the_path() -> None:
    assert [format_of(p) for p in ("a.json", "a.PARQUET", "b.xlsx", "dir/")] == [
        "json",
        "parquet",
        "xlsx",
        "csv",
    ]
    with pytest.raises(ValueError, match="cannot tell the format"):
        format_of("plan.txt")
