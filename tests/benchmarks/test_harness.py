"""Smoke test of the benchmark runner on its tiny size (no timings asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import main, run, summarise


def test_bench_runs_tiny(tmp_path: Path) -> None:
    phases = ["engine", "clp", "pulp-cbc", "warm", "whatif", "cli-solve"]
    results = run(["tiny"], phases, 1, 30.0, tmp_path, log=lambda _: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["sizes"][0]["size"] == "tiny"
    size = results["sizes"][0]
    for phase in phases:
        v = size["phases"][phase]
        assert v["status"] == ["optimal"], (phase, size["raw"][phase])
    for phase in ("clp", "pulp-cbc"):
        assert size["phases"][phase]["objective_rel_diff"] <= 1e-6  # the same optimum
    assert size["ratios"]["b"] == "clp"
    assert size["ratios"]["a/b"] > 0 and size["ratios"]["pulp-cbc/a"] > 0
    assert "| tiny |" in (tmp_path / "results.md").read_text()
    whatif = size["raw"]["whatif"][0]
    assert abs(whatif["objective"] / size["raw"]["engine"][0]["objective"] - 1) <= 1e-9
    assert {r["path"] for r in whatif["one"]["runs"]} == {"arrays"}
    cli = size["raw"]["cli-solve"][0]
    assert cli["json_mb"] > 0 and cli["file_mb"] > 0 and cli["in_process_s"] > 0
    for key in ("cli json process / in-process solve+to_dict", "cli --help s"):
        assert size["ratios"][key] > 0


def test_summarise_picks_fastest_agreeing_solver() -> None:
    def r(t: float, obj: float = 100.0, status: str = "optimal") -> dict:
        return {"status": status, "wall_s": t, "objective": obj, "peak_mb": 1.0}

    runs = {
        "engine": [r(2.0), r(2.2), r(1.8)],
        "highs-ipm": [r(4.0)],
        "highs-pdlp": [r(0.5, obj=90.0)],  # fast but not the optimum: not b
        "clp": [r(1.0)],
        "pulp-cbc": [r(10.0)],
        "highs-simplex": [r(120.0, status="time_limit")],
    }
    s = summarise("x", {"columns": 1}, runs)
    assert s["ratios"]["b"] == "clp"
    assert s["ratios"]["a/b"] == 2.0
    assert s["ratios"]["pulp-cbc/a"] == 5.0
    assert s["phases"]["highs-simplex"]["median_wall_s"] is None


def test_bench_rejects_unknown_size(capsys) -> None:
    assert main(["--sizes", "huge", "--out", "unused"]) == 2
