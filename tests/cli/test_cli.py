from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from allocator import solve
from allocator.cli import main
from allocator.cli.common import EXIT_INFEASIBLE, EXIT_INVALID
from tests.conftest import DATA


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
    err = capsys.readouterr().err
    assert "hard requirements conflict" in err and "Smallest relaxation" in err
    assert "Lower the hard contract minimum of segment" in err


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


def test_analysis_commands(capsys):
    hyper, tiny = str(DATA / "hyperscaler.json"), str(DATA / "tiny.json")
    assert main(["explain", tiny, "--segment", "chat"]) == 0
    out = capsys.readouterr().out
    assert "P1: chat (first_party) is served 20,000 of 20,000 Mtok" in out
    assert main(["counterfactual", hyper, "--seeds-case", "--json"]) == 0
    seeds = json.loads(capsys.readouterr().out)
    assert seeds["growth_last_period"]["counterfactual"] > seeds["growth_last_period"]["optimal"]
    assert main(["counterfactual", tiny, "--capacity", "b200:1:P2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["opportunity_cost"] == pytest.approx(-1450)
    assert main(["capacity", tiny, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["pool"], r["period"]): r["value_per_gpu"] for r in rows}[
        ("b200", "P1")
    ] == pytest.approx(1000)
    assert main(["frontier", tiny]) == 0
    assert "frontier of 'tiny'" in capsys.readouterr().out
    assert main(["sensitivity", tiny, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["objective"] == pytest.approx(30950)
    assert main(["diagnose", tiny]) == 0
    assert "can all be met" in capsys.readouterr().out


def test_analysis_errors_exit_codes(tmp_path, capsys):
    tiny = str(DATA / "tiny.json")
    assert main(["explain", tiny, "--segment", "nobody"]) == 2
    assert "no segment 'nobody'" in capsys.readouterr().err
    assert main(["counterfactual", tiny, "--remove-segment", "nobody"]) == EXIT_INVALID
    assert "transforms[0].segment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["counterfactual", tiny, "--capacity", "b200"])


def test_json_through_pulp_highs_is_only_json():
    """PuLP's HiGHS prints its banner on C stdout: --json must still print JSON alone."""
    from allocator.solvers.pulp import available_solvers

    if "HiGHS" not in available_solvers():
        pytest.skip("PuLP's HiGHS interface is not available")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "allocator",
            "solve",
            str(DATA / "tiny.json"),
            "--json",
            "--backend",
            "pulp",
            "--solver",
            "HiGHS",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["totals"]["objective"] == pytest.approx(30950.0)


def test_stochastic_prints_tables_not_dicts(capsys):
    scenario = DATA / "stochastic" / "neocloud-reservations.json"
    demand = DATA / "stochastic" / "demand-growth.json"
    assert main(["stochastic", str(scenario), str(demand)]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    assert re.search(r"scenario\s+probability\s+objective \(USD\)", out)
    assert re.search(r"cloud-enterprise\s+h100-us-east\s+2027-Q1\s+440\.1", out)
    assert re.search(r"value of the stochastic solution \(VSS\)\s+145\.\d\dk", out)


def test_sensitivity_prints_aligned_tables_with_units(capsys):
    assert main(["sensitivity", str(DATA / "tiny.json")]) == 0
    out = capsys.readouterr().out
    assert "=" not in out.replace("==", "")  # no key=value dump
    assert re.search(r"h100\s+P1\s+3\.000\s+10\s+5 – 20", out)
    assert re.search(r"cloud\s+USD/H100-hour\s+4\.0000\s+1\.0000 – 4\.5000", out)


def test_stochastic_shares_one_model_per_worker_unless_told(capsys, monkeypatch):
    """The CLI's two-stage plan keeps one HiGHS model per worker by default (issue 25:
    one per scenario held 19.7 GB at 1.15M × 20); --own-models asks for one per scenario.
    Both print the same plan (decomposition, inline)."""
    import allocator.workflows.stochastic as stochastic

    seen: list[bool] = []
    real = stochastic.stochastic_plan

    def spy(*args, **kwargs):
        seen.append(kwargs["share_models"])
        return real(*args, **{**kwargs, "executor": "inline"})

    monkeypatch.setattr(stochastic, "stochastic_plan", spy)
    scenario = DATA / "stochastic" / "neocloud-reservations.json"
    demand = DATA / "stochastic" / "demand-growth.json"
    outs = []
    for extra in ([], ["--own-models"]):
        args = ["stochastic", str(scenario), str(demand), "--method", "decomposition"]
        assert main([*args, *extra, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert seen == [True, False]
    assert outs[0]["objective"] == pytest.approx(outs[1]["objective"], rel=1e-6)
