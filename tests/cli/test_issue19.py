"""Issue 19, "What a planner sees": the CLI's output, messages and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allocator.cli import main
from tests.conftest import DATA


def test_bench_help_prints_help_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    assert "usage: allocator bench" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    """`allocator solve x --json | head`: no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocator", "solve", str(DATA / "tiny.json"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the plan is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_solve_verbose_shows_the_solver_log_on_stderr(capsys):
    assert main(["solve", str(DATA / "tiny.json"), "--verbose", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "optimal"  # stdout stays the JSON alone
    assert "Presolving model" in err or "Model status" in err  # HiGHS' own log
    assert "[allocator] solving" in err  # the engine's phases
    assert main(["solve", str(DATA / "tiny.json")]) == 0
    assert "Model status" not in capsys.readouterr().err  # silent by default


def test_time_limit_without_a_plan_says_what_to_try(capsys):
    from allocator.cli.common import EXIT_TIME_LIMIT

    assert main(["solve", str(DATA / "tiny.json"), "--time-limit", "0"]) == EXIT_TIME_LIMIT
    err = capsys.readouterr().err
    assert "longer --time-limit" in err and "--algorithm ipm" in err and "--partitions" in err


def _rule_columns(lines: list[str], header_start: str) -> list[str]:
    """The header line of the first table whose header starts with ``header_start``."""
    return [ln for ln in lines if ln.strip().startswith(header_start)]


def test_explain_prints_a_table_per_period_with_effective_value_and_price(capsys):
    assert main(["explain", str(DATA / "tiny.json"), "--segment", "cloud"]) == 0
    lines = capsys.readouterr().out.splitlines()
    headers = _rule_columns(lines, "pool")
    assert len(headers) == 2  # one table per period (P1, P2)
    for h in ("value (USD/GPU-h)", "with contract (USD/GPU-h)", "price (USD/GPU-h)"):
        assert h in headers[0]
    # P2: the contract minimum lifts h100's 3.00 to 4.50, exactly its price there
    p2 = lines[lines.index(next(ln for ln in lines if ln.startswith("P2:"))) :]
    h100 = next(ln for ln in p2 if ln.strip().startswith("h100"))
    assert h100.split()[-4:] == ["3.00", "4.50", "4.50", "0.00"]
    assert any("short of its contract minimum by 700 H100-hour" in ln for ln in p2)


def test_explanation_keeps_its_sentences(tiny_scenario):
    from allocator import solve
    from allocator.analysis.explain import explain

    ex = explain(tiny_scenario, "chat", solve(tiny_scenario))
    assert ex.text.startswith("P1: chat (first_party) is served 20,000 of 20,000 Mtok")
    assert "pool" in ex.table_text and ex.periods[0].demand == pytest.approx(20000)


def test_capacity_headers_carry_units(capsys):
    assert main(["capacity", str(DATA / "tiny.json")]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    for col in ("value", "owned GPU value", "rent", "buy"):
        assert f"{col} (USD/GPU-period)" in header


def test_solve_summary_shows_use_of_usable_capacity_and_no_echo(tiny_scenario, capsys):
    from allocator import solve

    plan = solve(tiny_scenario)
    for r in plan.pools:  # the documented key keeps its meaning
        assert r.utilisation == pytest.approx(r.used / (r.gpus + r.bought + r.rented))
        assert r.utilisation_of_usable == pytest.approx(r.used / (r.usable + r.rented))
    assert "utilisation_of_usable" in plan.to_dict()["pools"][0]
    assert main(["solve", str(DATA / "tiny.json")]) == 0
    out = capsys.readouterr().out
    assert "used (% of usable)" in out
    assert out.splitlines()[0] == "Plan for 'tiny': optimal"
    assert "plan found" not in out


def test_batch_ends_with_tables(tmp_path, capsys):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "base": str(DATA / "tiny.json"),
                "grid": {"demand_scale.cloud": [1.0, 1.5]},
            }
        )
    )
    assert (
        main(["batch", str(sweep), "-o", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 0
    )
    out = capsys.readouterr().out
    assert "2 of 2 runs finished" in out
    assert "figure (USD, present value)" in out and "median" in out
    assert any(ln.split()[:2] == ["optimal", "2"] for ln in out.splitlines())


def _infeasible_every_period(tiny_dict: dict) -> dict:
    """tiny with the same hard contracts and capacity in both periods: one conflict, twice."""
    tiny_dict["pools"][1]["gpus"] = [10, 10]
    chat, cloud = tiny_dict["segments"]
    chat.update(demand=[35000, 35000], contract_min=[35000, 35000], contract_hard=True)
    cloud.update(demand=[3000, 3000], contract_min=[3000, 3000], contract_hard=True)
    return tiny_dict


def test_diagnose_exits_3_when_infeasible_and_tells_a_repeated_conflict_once(
    tiny_dict, tmp_path, capsys
):
    from allocator.cli.common import EXIT_INFEASIBLE

    f = tmp_path / "s.json"
    f.write_text(json.dumps(_infeasible_every_period(tiny_dict)))
    assert main(["diagnose", str(f)]) == EXIT_INFEASIBLE
    out = capsys.readouterr().out
    assert "Conflict 2" not in out
    assert out.count("Segment chat (first_party) has a hard contract") == 1
    assert "in each of P1 and P2" in out
    assert out.count("Lower the hard contract minimum of segment chat") == 1
    assert main(["diagnose", str(f), "--json"]) == EXIT_INFEASIBLE
    d = json.loads(capsys.readouterr().out)
    assert len(d["groups"]) == 2 and not d["feasible"]  # the data keeps every period
    assert main(["diagnose", str(DATA / "tiny.json")]) == 0


def _write(tmp_path, name: str, data: object) -> str:
    f = tmp_path / name
    f.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(f)


def test_validation_reports_everything_with_names_and_suggestions(tiny_dict, tmp_path, capsys):
    from allocator.scenario import validate_scenario

    tiny_dict["segments"][0]["revenue_per_unt"] = 0.5  # a typo of a field
    tiny_dict["segments"][1]["revenue_per_unit"] = "4"  # a type error …
    tiny_dict["segments"][1]["throughput"] = {"H10": 1}  # … must not hide an unknown type
    tiny_dict["segments"][1]["demand"] = [1500]  # … nor a list one period short
    _, issues = validate_scenario(tiny_dict)
    text = [str(i) for i in issues]
    assert (
        "segments[0] (chat).revenue_per_unt: unknown field 'revenue_per_unt'; "
        "did you mean 'revenue_per_unit'?" in text
    )
    assert any(t.startswith("segments[1] (cloud).revenue_per_unit: must be a number") for t in text)
    assert any(
        t.startswith(
            "segments[1] (cloud).throughput.H10: unknown accelerator type 'H10'; "
            "did you mean 'H100'?"
        )
        for t in text
    )
    assert "segments[1] (cloud).demand: has 1 entries, expected 2 (one per period)" in text
    assert {i.path for i in issues} >= {"segments[1].throughput.H10", "segments[0].revenue_per_unt"}
    assert main(["validate", _write(tmp_path, "s.json", tiny_dict)]) == 1
    assert "did you mean 'H100'?" in capsys.readouterr().err


def test_json_syntax_errors_keep_line_and_column(tmp_path, capsys):
    from allocator.errors import ScenarioError
    from allocator.scenario import Scenario

    bad = _write(tmp_path, "bad.json", '{"name": "x",\n  "periods": [1,]\n}')
    with pytest.raises(ScenarioError, match="line 2, column 17"):
        Scenario.from_file(bad)
    assert main(["validate", bad]) == 1
    assert "not valid JSON: Expecting value at line 2, column 17" in capsys.readouterr().err


def test_validate_recognises_sweeps_and_demand_files(tmp_path, capsys):
    sweeps = DATA / "sweeps" / "hyperscaler-growth.json"
    demand = DATA / "stochastic" / "demand-growth.json"
    assert main(["validate", str(sweeps), str(demand)]) == 0
    out = capsys.readouterr().out
    assert "ok (sweep: 36 runs" in out and "ok (3 demand scenarios)" in out
    sweep = {"base": str(DATA / "tiny.json"), "grdi": {}}
    assert main(["validate", _write(tmp_path, "a.json", sweep)]) == 1
    assert "unknown sweep field 'grdi'; did you mean 'grid'?" in capsys.readouterr().err
    sweep = {"base": str(DATA / "tiny.json"), "grid": {"capacity_change.h10": [0, 1]}}
    assert main(["validate", _write(tmp_path, "b.json", sweep)]) == 1
    assert "unknown pool 'h10'; did you mean 'h100'?" in capsys.readouterr().err
    ds = {
        "scenarios": [
            {"name": "a", "probability": 0.5, "demand_scale": {"chatt": 1.2}},
            {"name": "b", "probabilty": 0.5},
        ]
    }
    path = _write(tmp_path, "d.json", ds)
    assert main(["validate", path, "--scenario", str(DATA / "tiny.json")]) == 1
    err = capsys.readouterr().err
    assert "scenarios[1] (b).probabilty: unknown field 'probabilty'; did you mean" in err
    assert (
        "scenarios[0] (a).demand_scale.chatt: unknown segment or kind 'chatt'; did you mean 'chat'?"
        in err
    )


def test_an_unknown_segment_lists_the_valid_ids(capsys):
    assert main(["explain", str(DATA / "tiny.json"), "--segment", "chatt"]) == 2
    assert "did you mean 'chat'? (segments: chat, cloud)" in capsys.readouterr().err
