"""Re-plan from actuals on data/tiny.json, by hand. Usage in P1 (the CSV of
test_actual.py): chat 40 H100-hours = 0.4 H100 on average over P1's 100 hours; cloud 8
B200-hours = 0.08 B200. Pinned through P1, the re-plan's P1 is exactly that.

Without rescaling, P2 is the original plan's (nothing couples the periods in tiny): chat
10 B200 + 5 H100, cloud 5 H100. Rescaled: chat used 40 of its planned 1,000 GPU-hours in
P1 (ratio 0.04), so its P2 demand is 35,000 x 0.04 = 1,400 Mtok, served on B200 (cheaper
per Mtok: $2/30 against $1/10): 1,400 / 30 / 100 h = 0.4667 B200; cloud used 8 of 500
(0.016): 3,000 x 0.016 = 48 units, all served (its contract minimum 1,200 is lowered to
the demand)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from allocator.cli import main
from allocator.engine import solve
from allocator.operations.replan import pin_actuals
from allocator.operations.usage import parse_usage
from allocator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "data" / "tiny.json"
CSV = """segment,gpu_type,region,start,end,gpus
chat,H100,east,2026-01-01T00:00:00,2026-01-01T10:00:00,4
cloud,B200,,2026-01-05T00:00:00,2026-01-05T08:00:00,2
"""


def gpus(plan, period):
    return {
        (a.segment, a.pool): round(a.gpus, 4)
        for a in plan.allocations
        if a.period == period and a.gpus > 1e-9
    }


@pytest.fixture(scope="module")
def setup():
    sc = Scenario.from_file(TINY)
    return sc, parse_usage(CSV, "u", "csv", sc, start=datetime(2026, 1, 1)), solve(sc)


def test_past_periods_pinned(setup) -> None:
    sc, usage, plan = setup
    again = solve(pin_actuals(sc, usage, "P1"))
    assert gpus(again, "P1") == {("chat", "h100"): 0.4, ("cloud", "b200"): 0.08}
    assert (
        gpus(again, "P2")
        == gpus(plan, "P2")
        == {("chat", "b200"): 10.0, ("chat", "h100"): 5.0, ("cloud", "h100"): 5.0}
    )


def test_demand_ahead_rescaled(setup) -> None:
    sc, usage, plan = setup
    again = solve(pin_actuals(sc, usage, "P1", plan, rescale_demand=True))
    seg = {(r.segment, r.period): (r.demand, round(r.served, 6)) for r in again.segments}
    assert seg[("chat", "P2")] == (1400.0, 1400.0) and seg[("cloud", "P2")] == (48.0, 48.0)
    assert gpus(again, "P2")[("chat", "b200")] == 0.4667
    with pytest.raises(ValueError, match="needs the plan"):
        pin_actuals(sc, usage, "P1", rescale_demand=True)
    with pytest.raises(ValueError, match="'P7'"):
        pin_actuals(sc, usage, "P7")


def test_cli_replan_with_actuals(tmp_path, capsys) -> None:
    plan_file, usage_csv, usage = tmp_path / "plan.json", tmp_path / "u.csv", tmp_path / "u.json"
    usage_csv.write_text(CSV)
    assert main(["solve", str(TINY), "-o", str(plan_file)]) == 0
    assert (
        main(
            [
                "usage",
                "import",
                str(usage_csv),
                "--format",
                "csv",
                "--scenario",
                str(TINY),
                "--start",
                "2026-01-01",
                "-o",
                str(usage),
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = ["replan", str(plan_file), str(TINY), "--migration-cost", "0", "--actual", str(usage)]
    assert main(args) == 2
    assert "--through" in capsys.readouterr().err
    assert main([*args, "--through", "P1", "--rescale-demand", "--json"]) == 0
    moves = {
        (m["segment"], m["pool"]): m["new_gpus"]
        for m in json.loads(capsys.readouterr().out)["moves"]
    }
    assert moves[("chat", "h100")] == pytest.approx(0.4)  # the first period: pinned
