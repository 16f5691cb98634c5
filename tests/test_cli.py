from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allocator import solve
from allocator.cli import EXIT_INFEASIBLE, EXIT_INVALID, main

from .conftest import DATA


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "nope.json")]) == EXIT_INVALID
    assert "cannot read" in capsys.readouterr().err


def test_infeasible_exits_3_with_reason(tiny_dict, tmp_path, capsys):
    tiny_dict["segments"][1]["contract_min"] = [1500, 3000]
    tiny_dict["segments"][1]["contract_hard"] = True
    tiny_dict["segments"][0]["contract_min"] = [20000, 35000]
    tiny_dict["segments"][0]["contract_hard"] = True
    f = tmp_path / "s.json"
    f.write_text(json.dumps(tiny_dict))
    assert main(["solve", str(f)]) == EXIT_INFEASIBLE
    assert "no plan meets every hard requirement" in capsys.readouterr().err


def test_json_stdout_is_pure_json_in_a_fresh_process():
    """highspy prints a banner on first use; it must not reach --json output."""
    out = subprocess.run(
        [sys.executable, "-m", "allocator", "solve", str(DATA / "tiny.json"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["totals"]["objective"] == pytest.approx(30950)


def test_to_frames_without_pandas_says_how_to_install(tiny_scenario, monkeypatch):
    plan = solve(tiny_scenario)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"allocator\[frames\]"):
        plan.to_frames()
