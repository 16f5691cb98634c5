"""`allocator quotas`: the files it writes are the library's (checked by hand in
tests/operations/test_quotas.py); a plan JSON needs its scenario; bad mappings exit 2
naming the field."""

from __future__ import annotations

import json

from allocator.cli import main
from allocator.operations.emit import render_all
from allocator.operations.io import plan_and_scenario
from allocator.operations.quotas import compute_quotas
from tests.conftest import DATA

TINY = str(DATA / "tiny.json")


def test_quotas_from_a_plan_json_and_from_a_scenario(tmp_path, capsys) -> None:
    plan_file = tmp_path / "plan.json"
    assert main(["solve", TINY, "-o", str(plan_file)]) == 0
    out = tmp_path / "q"
    assert main(["quotas", str(plan_file), "--to", "kueue", "-o", str(out)]) == 2
    assert "give the scenario file with --scenario" in capsys.readouterr().err
    args = ["quotas", str(plan_file), "--scenario", TINY, "--to", "volcano", "--all-periods"]
    assert main([*args, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == [str(out / "P1" / "volcano.yaml"), str(out / "P2" / "volcano.yaml")]
    plan, sc = plan_and_scenario(plan_file, TINY)
    want = render_all(compute_quotas(plan, sc, plan_id=plan.scenario), "volcano")
    assert (out / "P2" / "volcano.yaml").read_text() == want["P2/volcano.yaml"]
    assert main(["quotas", TINY, "--to", "slurm", "--period", "P2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Rounding to whole GPUs: planned 35.0, guaranteed 35 (0.0)" in text
    assert (out / "P2" / "slurm.sh").read_text() == render_all(
        compute_quotas(plan, sc, plan_id=plan.scenario), "slurm", ["P2"]
    )["P2/slurm.sh"]


def test_quotas_bad_mapping_exits_2_naming_the_field(tmp_path, capsys) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("segments:\n  chat: {queue: x}\n  ghost: {queue: y}\n")
    assert main(["quotas", TINY, "--to", "kai", "--map", str(m), "-o", str(tmp_path)]) == 2
    assert f"{m}: segments.ghost: no such segment in scenario 'tiny'" in capsys.readouterr().err
