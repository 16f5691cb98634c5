"""`allocator template` and `convert`, and every scenario command taking a workbook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from allocator import Scenario
from allocator.cli import main
from allocator.cli.common import EXIT_INVALID, EXIT_USAGE
from allocator.workflows.batch import file_runs
from tests.conftest import DATA


def test_template_writes_a_workbook_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    t = tmp_path / "fleet.xlsx"
    assert main(["template", str(t), "--periods", "2026-Q1, 2026-Q2", "--currency", "EUR"]) == 0
    wb = load_workbook(t)
    assert [c.value for c in wb["capacity"][1]] == ["pool (GPUs)", "2026-Q1", "2026-Q2"]
    assert wb["pools"]["E1"].value == "variable_cost (EUR/GPU-hour)"
    assert main(["template", str(t)]) == EXIT_USAGE
    assert "exists" in capsys.readouterr().err
    assert main(["template", str(t), "--force"]) == 0
    assert main(["template", str(tmp_path / "fleet.csv")]) == EXIT_USAGE
    # the empty template is not a scenario yet, and says why
    assert main(["validate", str(t)]) == EXIT_INVALID
    assert "pools: no pools: add one row per pool" in capsys.readouterr().err


def test_convert_json_to_workbook_and_back(tmp_path: Path, capsys) -> None:
    x, j = tmp_path / "h.xlsx", tmp_path / "h.json"
    assert main(["convert", str(DATA / "hyperscaler.json"), str(x)]) == 0
    assert main(["convert", str(x), str(j)]) == 0
    want = Scenario.from_file(DATA / "hyperscaler.json").to_dict()
    assert json.loads(j.read_text()) == want
    assert "wrote" in capsys.readouterr().err
    assert main(["validate", str(x)]) == 0
    assert "ok (8 periods, 11 pools, 10 segments)" in capsys.readouterr().out


def test_convert_errors_exit_codes(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(DATA / "tiny.json"), str(tmp_path / "t.csv")]) == EXIT_USAGE
    assert "suffix" in capsys.readouterr().err
    bad = tmp_path / "bad.xlsx"
    main(["convert", str(DATA / "tiny.json"), str(bad)])
    wb = load_workbook(bad)
    wb["demand"]["C2"] = "lots"
    wb.save(bad)
    capsys.readouterr()
    assert main(["convert", str(bad), str(tmp_path / "t.json")]) == EXIT_INVALID
    assert "demand!C2: not a number: 'lots'" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
    assert main(["solve", str(bad)]) == EXIT_INVALID
    assert "demand!C2" in capsys.readouterr().err


def test_solve_from_the_workbook_equals_the_solve_from_json(capsys) -> None:
    assert main(["solve", str(DATA / "hyperscaler.json"), "--json"]) == 0
    from_json = json.loads(capsys.readouterr().out)
    assert main(["solve", str(DATA / "hyperscaler.xlsx"), "--json"]) == 0
    from_xlsx = json.loads(capsys.readouterr().out)
    assert from_xlsx["totals"]["objective"] == pytest.approx(
        from_json["totals"]["objective"], rel=1e-12
    )
    assert from_xlsx["totals"] == from_json["totals"]


def test_other_commands_take_a_workbook(tmp_path: Path, capsys) -> None:
    x = tmp_path / "tiny.xlsx"
    assert main(["convert", str(DATA / "tiny.json"), str(x)]) == 0
    assert main(["explain", str(x), "--segment", "chat"]) == 0
    assert "P1: chat (first_party) is served 20,000 of 20,000 Mtok" in capsys.readouterr().out
    assert main(["export", str(x), "-o", str(tmp_path / "m.lp")]) == 0
    # a batch of scenario files reads workbooks too (same run as the JSON: same run id)
    (w,), (j,) = file_runs([x]), file_runs([DATA / "tiny.json"])
    assert w.scenario == j.scenario and w.run_id == j.run_id
