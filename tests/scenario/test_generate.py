"""`allocator generate`: seeded, reproducible synthetic scenarios of a given size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocator import Scenario
from allocator.cli import main
from allocator.lp.build import build_lp
from allocator.scenario.generate import generate_dict


def test_same_seed_same_scenario() -> None:
    assert generate_dict(40, 8, 6, seed=3) == generate_dict(40, 8, 6, seed=3)
    assert generate_dict(40, 8, 6, seed=3) != generate_dict(40, 8, 6, seed=4)


def test_options_shape_the_scenario() -> None:
    d = generate_dict(40, 8, 6, seed=1, contract_share=0.0, max_growth=0.0, stability=0.1)
    assert not any("contract_min" in s for s in d["segments"])
    assert d["policy"]["max_change_share"] == 0.1
    sc = Scenario.from_dict(d)
    assert build_lp(sc).block("segment-stability") is not None
    d = generate_dict(40, 8, 6, seed=1, contract_share=0.25)
    cloud = [s for s in d["segments"] if s["kind"] == "cloud"]
    assert cloud and all(
        m == pytest.approx(0.25 * x, abs=0.01)
        for s in cloud
        for m, x in zip(s["contract_min"], s["demand"], strict=True)
    )


def test_defaults_unchanged_by_the_new_options() -> None:
    """The generator's defaults are what tests elsewhere were written against."""
    d = generate_dict(20, 6, 4, seed=1)
    assert all("contract_min" in s for s in d["segments"] if s["kind"] == "cloud")
    assert "max_change_share" not in d["policy"]


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.json"
    argv = ["generate", "--segments", "30", "--pools", "6", "--periods", "5", "--seed", "2"]
    assert main([*argv, "--compatibility", "0.3", "--stability", "0.1", "-o", str(out)]) == 0
    sc = Scenario.from_file(out)
    assert (len(sc.segments), len(sc.pools), len(sc.periods)) == (30, 6, 5)
    assert sc.policy.max_change_share == 0.1
    capsys.readouterr()
    assert main([*argv, "--compatibility", "0.3", "--stability", "0.1"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())


def test_cli_generate_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--compatibility", "1.5"])
    assert exc.value.code == 2
    assert main(["generate", "--scarcity", "0"]) == 2
