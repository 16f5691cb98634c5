"""Rolling horizon: re-planning from the current allocation with a migration cost.

Hand-solved instance: one pool of 10 H100s for one period of 100 hours, no costs.
Segment ``a`` (cloud) earns 1 per unit, 1 unit per GPU-hour: 100 per GPU; segment ``b``
(first party) earns 1.5 per unit: 150 per GPU, demand 750 units = 7.5 GPUs. All 10 GPUs
run ``a`` now. Moving a GPU from ``a`` to ``b`` gains 150 - 100 = 50: worth it when the
migration cost is below 50 (move 7.5 GPUs, gain 7.5 * (50 - c)), not when above.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from allocator import Scenario, build_lp, solve
from allocator.cli import main
from allocator.workflows.replan import current_matrix, extend_with_migration, read_current, replan

DATA = Path(__file__).resolve().parents[2] / "data"


def two_segments(demand_a: float = 100_000, demand_b: float = 750, gpus: float = 10) -> dict:
    return {
        "name": "replan",
        "periods": [{"label": "P1", "hours": 100}, {"label": "P2", "hours": 100}],
        "pools": [
            {
                "id": "h",
                "accelerator": "H100",
                "region": "r",
                "ownership": "owned",
                "gpus": [gpus, 10],
                "variable_cost_per_gpu_hour": 0,
                "fixed_cost_per_gpu_hour": 0,
            }
        ],
        "segments": [
            {
                "id": "a",
                "kind": "cloud",
                "unit": "u",
                "demand": [demand_a, demand_a],
                "revenue_per_unit": 1.0,
                "throughput": {"H100": 1},
            },
            {
                "id": "b",
                "kind": "first_party",
                "unit": "u",
                "demand": [demand_b, demand_b],
                "revenue_per_unit": 1.5,
                "throughput": {"H100": 1},
            },
        ],
    }


ALL_ON_A = {"a": {"h": 10}}
# period 2 is free in both plans: 7.5 GPUs to b (1125) + 2.5 to a (250) = 1375
P2 = 1375.0


def test_a_move_worth_more_than_its_cost_happens() -> None:
    r = replan(two_segments(), ALL_ON_A, migration_cost=40)
    assert r.gpus_moved == pytest.approx(7.5)
    assert r.migration_cost == pytest.approx(300)
    # period 1: 2.5 * 100 + 7.5 * 150 - 7.5 * 40
    assert r.objective == pytest.approx(250 + 1125 - 300 + P2)
    assert r.keep_objective == pytest.approx(1000 + P2)
    assert r.margin_gained == pytest.approx(7.5 * (50 - 40))
    moves = {(m.segment, m.pool): m for m in r.moves}
    assert moves["a", "h"].current_gpus == 10 and moves["a", "h"].new_gpus == pytest.approx(2.5)
    assert moves["a", "h"].moved_gpus == pytest.approx(7.5)
    assert moves["b", "h"].change == pytest.approx(7.5)
    assert r.plan.max_violation < 1e-9
    # the migration cost is the dual of keeping a GPU where it is
    row = next(b for b in r.plan.binding if b.constraint == "current-allocation")
    assert row.dual == pytest.approx(-40)


def test_a_move_worth_less_than_its_cost_does_not_happen() -> None:
    r = replan(two_segments(), ALL_ON_A, migration_cost=60)
    assert r.gpus_moved == pytest.approx(0, abs=1e-9)
    assert r.objective == pytest.approx(1000 + P2)
    assert r.margin_gained == pytest.approx(0, abs=1e-9)
    # from period 2 on the plan is free to move
    p2 = {a.segment: a.gpus for a in r.plan.allocations if a.period == "P2"}
    assert p2 == pytest.approx({"a": 2.5, "b": 7.5})


def test_free_migration_is_the_plain_optimum() -> None:
    r = replan(two_segments(), ALL_ON_A, migration_cost=0)
    assert r.objective == pytest.approx(solve(two_segments()).objective)


def test_gpus_left_idle_by_a_demand_drop_are_not_charged() -> None:
    # a now needs 6 GPUs, b nothing: 4 GPUs stay idle with a, nothing is moved
    r = replan(two_segments(demand_a=600, demand_b=0), ALL_ON_A, migration_cost=40)
    assert r.gpus_moved == pytest.approx(0, abs=1e-9)
    (m,) = [m for m in r.moves if m.segment == "a"]
    assert m.new_gpus == pytest.approx(6) and m.held_idle_gpus == pytest.approx(4)
    assert r.margin_gained == pytest.approx(0, abs=1e-9)


def test_keep_baseline_impossible_when_the_pool_shrank() -> None:
    r = replan(two_segments(gpus=8), ALL_ON_A, migration_cost=40)
    assert r.keep_objective is None and r.margin_gained is None
    assert "not possible" in r.keep_reason
    assert r.gpus_moved >= 2 - 1e-9  # at least the 2 GPUs that are gone


def test_extension_keeps_the_original_columns_and_rows_first() -> None:
    sc = Scenario.from_file(DATA / "tiny.json")
    lp = build_lp(sc)
    cur = current_matrix(sc, {"chat": {"h100": 4, "b200": 5}, "cloud": {"h100": 6}})
    ext, mc = extend_with_migration(lp, cur, 10.0)
    assert mc.size == 3
    assert ext.num_cols == lp.num_cols + 6 and ext.num_rows == lp.num_rows + 3
    assert (ext.A[: lp.num_rows, : lp.num_cols] != lp.A).nnz == 0
    np.testing.assert_array_equal(ext.c[: lp.num_cols], lp.c)
    np.testing.assert_array_equal(ext.c[mc.m_offset : mc.m_offset + 3], -10.0)
    assert ext.blocks[-1].name == "current-allocation"
    # h occupies capacity in period 1 only
    cap = lp.block("pool-capacity")
    assert cap is not None
    h_cols = ext.A[cap.start : cap.stop, mc.h_offset : mc.h_offset + 3].toarray()
    assert h_cols.sum() == 3 and h_cols[1::2].sum() == 0


def test_replan_from_its_own_plan_changes_nothing(tmp_path: Path) -> None:
    sc = Scenario.from_file(DATA / "tiny.json")
    plan = solve(sc)
    current = read_current(plan.to_dict())
    r = replan(sc, current, migration_cost=1.0)
    assert r.objective == pytest.approx(plan.objective, rel=1e-9)
    assert r.margin_gained == pytest.approx(0, abs=1e-6)


def test_whole_gpu_pools_extend_too() -> None:
    data = two_segments()
    data["pools"][0]["allocation_unit_gpus"] = 1
    r = replan(data, ALL_ON_A, migration_cost=40)
    # whole GPUs: 7 move (7 * 10 gain), b's 8th GPU would serve half a GPU of demand
    assert r.gpus_moved == pytest.approx(7)
    assert r.margin_gained == pytest.approx(70)


def test_read_current_from_a_plan_sums_modes_and_picks_the_period() -> None:
    plan = {
        "periods": ["P1", "P2"],
        "allocations": [
            {"segment": "s", "pool": "p", "mode": "full", "period": "P1", "gpus": 2.0},
            {"segment": "s", "pool": "p", "mode": "lite", "period": "P1", "gpus": 1.0},
            {"segment": "s", "pool": "p", "mode": "full", "period": "P2", "gpus": 7.0},
        ],
    }
    assert read_current(plan) == {"s": {"p": 3.0}}
    assert read_current(plan, period="P2") == {"s": {"p": 7.0}}
    with pytest.raises(ValueError, match="not in the plan"):
        read_current(plan, period="P9")


def test_unknown_ids_and_bad_costs_are_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown segment 'zz'.*unknown pool 'q'"):
        replan(two_segments(), {"zz": {"h": 1}, "a": {"q": 1}}, 1.0)
    with pytest.raises(ValueError, match="migration_cost"):
        replan(two_segments(), ALL_ON_A, -1.0)


def test_cli_replan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps(two_segments()))
    current = tmp_path / "now.json"
    current.write_text(json.dumps(ALL_ON_A))
    assert main(["replan", str(current), str(scenario), "--migration-cost", "40"]) == 0
    text = capsys.readouterr().out
    assert "GPUs moved 7.5" in text and "margin gained by moving: 75.00" in text
    assert re.search(r"^  a\s+h\s+10\.0\s+2\.5\s+7\.5\s+0\.0$", text, re.M)
    argv = ["replan", str(current), str(scenario), "--migration-cost", "40", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gpus_moved"] == pytest.approx(7.5) and out["plan"]["status"] == "optimal"
    current.write_text(json.dumps({"nobody": {"h": 1}}))
    assert main(["replan", str(current), str(scenario), "--migration-cost", "1"]) == 2
    assert "unknown segment" in capsys.readouterr().err
