"""Partitioned (POP-style) planning: the merged plan is feasible for the whole scenario,
adds up its groups, and never beats the whole LP; one group is the whole LP."""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest

from allocator import solve
from allocator.lp.arrays import KINDS
from allocator.scenario import Scenario
from allocator.scenario.generate import generate, generate_dict
from allocator.workflows.partition import groups_of, partitioned_solve, sub_scenarios


@pytest.fixture(scope="module")
def fleet() -> Scenario:
    d = generate_dict(40, 6, 6, seed=7, compatibility=0.5, stability=0.2)
    d["policy"].update(rnd_min_share=0.05, max_segment_share=0.5, kind_caps={"consumer": 2000.0})
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def full(fleet: Scenario):
    return solve(fleet)


def test_groups_cover_every_segment_once_with_a_mix_of_kinds(fleet: Scenario) -> None:
    groups = groups_of(fleet, 4)
    members = sorted(i for g in groups for i in g)
    assert members == list(range(len(fleet.segments)))
    assert max(map(len, groups)) - min(map(len, groups)) <= 1
    for g in groups:  # 10 of each kind among 40 segments: every group has every kind
        assert {KINDS[KINDS.index(fleet.segments[i].kind)] for i in g} == set(KINDS)
    assert groups_of(fleet, 4, seed=0) == groups


def test_sub_scenarios_share_out_pools_and_floors(fleet: Scenario) -> None:
    groups = groups_of(fleet, 4)
    subs = sub_scenarios(fleet, groups)
    for j, p in enumerate(fleet.pools):
        assert sum(np.array(s["pools"][j]["gpus"]) for s in subs) == pytest.approx(p.gpus)
    fleet_gpus = np.array([p.gpus for p in fleet.pools]).sum(axis=0)
    rnd = sum(np.array(s["policy"]["kind_floors"]["rnd"]) for s in subs)
    assert rnd == pytest.approx(0.05 * fleet_gpus)  # the R&D floor, shared out whole
    caps = sum(np.array(s["policy"]["kind_caps"]["consumer"]) for s in subs)
    assert caps == pytest.approx(2000.0)
    assert all(s["policy"]["max_segment_share"] == 1.0 for s in subs)  # 0.5 x 4, at most 1


@pytest.mark.parametrize("k", [2, 3])
def test_merged_plan_is_feasible_and_below_the_whole_lp(fleet: Scenario, full, k: int) -> None:
    with cf.ThreadPoolExecutor(2) as ex:  # any Executor: a Dask client works the same way
        r = partitioned_solve(fleet, k, executor=ex)
    assert r.plan.max_violation <= 1e-6, r.plan.violations
    assert r.objective == pytest.approx(sum(r.objectives), rel=1e-9)
    assert r.objective <= full.objective * (1 + 1e-9)
    assert r.objective >= 0.8 * full.objective  # a loss, not a collapse (measured: < 3 %)
    for p in r.plan.pools:
        assert p.used <= p.usable + p.rented + 1e-6 * max(1.0, p.usable)
    assert not r.plan.has_duals and r.group_prices.shape == (k, 6, 6)
    assert r.plan.solver.algorithm == f"partitioned-{k}"


def test_one_group_is_the_whole_lp(fleet: Scenario, full) -> None:
    with cf.ThreadPoolExecutor(1) as ex:
        r = partitioned_solve(fleet, 1, executor=ex)
    assert r.objective == pytest.approx(full.objective, rel=1e-9)


def test_default_executor_is_a_process_pool() -> None:
    sc = generate(16, 4, 4, seed=2, stability=0.2)
    r = partitioned_solve(sc, 2)
    with cf.ThreadPoolExecutor(2) as ex:
        same = partitioned_solve(sc, 2, executor=ex)
    assert r.objective == pytest.approx(same.objective, rel=1e-9)
    assert len(r.times_s) == 2 and r.wall_s > 0


def test_bad_k_is_a_clear_error(fleet: Scenario) -> None:
    with pytest.raises(ValueError, match="partitions"):
        groups_of(fleet, 0)


def test_cli_solve_partitions(tmp_path, capsys) -> None:
    import json

    from allocator.cli import main

    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(generate_dict(16, 4, 4, seed=2, stability=0.2)))
    assert main(["solve", str(path), "--partitions", "2", "--json"]) == 0
    out = capsys.readouterr()
    plan = json.loads(out.out)
    assert plan["solver"]["algorithm"] == "partitioned-2" and plan["has_duals"] is False
    assert plan["max_violation"] <= 1e-6
    assert "partitioned into 2 groups" in out.err
    assert main(["solve", str(path), "--partitions", "0"]) == 2


def test_merged_plan_carries_the_groups_reservations() -> None:
    d = generate_dict(16, 4, 4, seed=5, compatibility=0.6, stability=0.3)
    for seg in d["segments"]:
        if seg["kind"] == "cloud":
            seg["reservation"] = {"max_gpus": 60.0, "price_per_gpu_hour": 2.5}
    sc = Scenario.from_dict(d)
    with cf.ThreadPoolExecutor(2) as ex:
        r = partitioned_solve(sc, 2, executor=ex)
    assert r.plan.reservations and r.plan.max_violation <= 1e-6
    assert r.objective == pytest.approx(sum(r.objectives), rel=1e-9)
    assert r.objective <= solve(sc).objective * (1 + 1e-9)
