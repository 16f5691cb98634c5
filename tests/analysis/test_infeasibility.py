"""Infeasibility in domain words: crafted conflicts with known minimal sets and repairs.

Every crafted scenario below has exactly one minimal conflicting set (worked out by hand in
each builder's docstring), so the diagnosis must name exactly those constraints; the
relaxation must make ``solve()`` succeed, and be minimal: undoing 1% of any one change
leaves the scenario infeasible.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from allocator import InfeasibleError, Kind, Scenario, build_lp, solve
from allocator.analysis.infeasibility import (
    REQUIREMENTS,
    Diagnosis,
    _is_feasible,
    _system,
    apply_relaxation,
    diagnose,
)

DATA = Path(__file__).resolve().parents[2] / "data"


# ----------------------------------------------------------------------------- builders
def base() -> dict[str, Any]:
    """Two periods of 100 hours. h100 and b200 hold 10 GPUs each, 9 after 10% headroom;
    mi (50 GPUs) serves only the consumer and R&D segments. Cloud segments a and b run
    1 GPU-hour of work per GPU-hour on H100 and B200."""
    return {
        "name": "crafted",
        "periods": [{"label": "P1", "hours": 100}, {"label": "P2", "hours": 100}],
        "pools": [
            {"id": "h100", "accelerator": "H100", "region": "east", "gpus": [10, 10],
             "variable_cost_per_gpu_hour": 1.0, "fixed_cost_per_gpu_hour": 2.0,
             "headroom": 0.1},
            {"id": "b200", "accelerator": "B200", "region": "east", "gpus": [10, 10],
             "variable_cost_per_gpu_hour": 2.0, "fixed_cost_per_gpu_hour": 4.0,
             "headroom": 0.1},
            {"id": "mi", "accelerator": "MI300X", "region": "east", "gpus": [50, 50],
             "variable_cost_per_gpu_hour": 1.0, "fixed_cost_per_gpu_hour": 1.5},
        ],
        "segments": [
            {"id": "a", "kind": "cloud", "unit": "GPU-hour", "demand": [2000, 2000],
             "revenue_per_unit": 4.0, "throughput": {"H100": 1, "B200": 1}},
            {"id": "b", "kind": "cloud", "unit": "GPU-hour", "demand": [2000, 2000],
             "revenue_per_unit": 3.0, "throughput": {"H100": 1, "B200": 1}},
            {"id": "chat", "kind": "consumer", "unit": "Mtok", "demand": [1e5, 1e5],
             "revenue_per_unit": 0.1, "throughput": {"H100": 10, "MI300X": 12}},
            {"id": "train", "kind": "rnd", "unit": "GPU-hour", "demand": [500, 5000],
             "revenue_per_unit": 0.0, "ltv_per_unit": 1.0,
             "throughput": {"H100": 1, "MI300X": 1}},
        ],
    }  # fmt: skip


def seg(data: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in data["segments"] if s["id"] == sid)


def two_contracts() -> dict[str, Any]:
    """Hard contracts of a (1,000) and b (900) in P2 need 19 GPUs; the pools they can use,
    h100 and b200, hold 18 after headroom."""
    d = base()
    seg(d, "a").update(contract_min=[0, 1000], contract_hard=True)
    seg(d, "b").update(contract_min=[0, 900], contract_hard=True)
    return d


def rnd_floor() -> dict[str, Any]:
    """The R&D floor is 30% of 70 GPUs = 21 GPUs; in P1 R&D wants only 500 GPU-hours,
    5 GPUs of work (in P2 its demand is ample)."""
    d = base()
    d["policy"] = {"rnd_min_share": 0.3}
    return d


def kind_floor_and_contract() -> dict[str, Any]:
    """The consumer floor (8 GPUs in P1) and cloud segment a's hard contract (500 GPU-hours,
    5 GPUs) must both fit in h100, the only pool either can use: 9 GPUs after headroom."""
    d = base()
    d["policy"] = {"kind_floors": {"consumer": [8, 0]}}
    seg(d, "chat")["throughput"] = {"H100": 10}
    seg(d, "a").update(contract_min=[500, 0], contract_hard=True, throughput={"H100": 1})
    return d


def stability_ramp() -> dict[str, Any]:
    """Segment a runs only on b200 (10 GPUs, no headroom). It wants 1 GPU of work in P1 and
    has a hard contract for 8 GPUs in P2; stability (20% of 10 GPUs) lets it grow by 2."""
    d = base()
    d["policy"] = {"max_change_share": 0.2}
    seg(d, "a").update(
        demand=[100, 2000], contract_min=[0, 800], contract_hard=True, throughput={"B200": 1}
    )
    d["pools"][1]["headroom"] = 0.0
    return d


def key(block: str, **k: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (block, tuple(sorted(k.items())))


CASES = {
    "hard contracts over capacity": (
        two_contracts,
        {
            key("segment-contract", segment="a", period="P2"),
            key("segment-contract", segment="b", period="P2"),
            key("pool-capacity", pool="h100", period="P2"),
            key("pool-capacity", pool="b200", period="P2"),
        },
        (19.0, 18.0, "GPUs"),
        # equal shares of both contracts, 1 GPU (100 GPU-hours) in all
        {
            ("contract_min", "segments[0].contract_min[1]"): 1000 * 18 / 19,
            ("contract_min", "segments[1].contract_min[1]"): 900 * 18 / 19,
        },
    ),
    "R&D floor above what R&D can use": (
        rnd_floor,
        {key("rnd-floor", period="P1"), key("segment-demand", segment="train", period="P1")},
        (21.0, 5.0, "GPUs"),
        {("rnd_min_share", "policy.rnd_min_share"): 5 / 70},
    ),
    "kind floor plus another kind's hard contract": (
        kind_floor_and_contract,
        {
            key("kind-floor", kind="consumer", period="P1"),
            key("segment-contract", segment="a", period="P1"),
            key("pool-capacity", pool="h100", period="P1"),
        },
        (13.0, 9.0, "GPUs"),
        # policy gives way before contracts: the floor falls from 8 to 4 GPUs
        {("kind_floors", "policy.kind_floors.consumer[0]"): 4.0},
    ),
    "stability prevents a needed ramp": (
        stability_ramp,
        {
            key("segment-contract", segment="a", period="P2"),
            key("segment-demand", segment="a", period="P1"),
            key("segment-stability", segment="a", pool="b200", period="P2"),
        },
        (8.0, 3.0, "GPUs"),
        # 1 GPU in P1 + 70% of 10 GPUs = 8 GPUs in P2
        {("max_change_share", "policy.max_change_share"): 0.7},
    ),
}


def undo_one_percent(diagnosis: Diagnosis, i: int) -> Diagnosis:
    """The diagnosis with its i-th change made 1% smaller."""
    r = diagnosis.relaxation[i]
    smaller = replace(r, relaxed=r.current + 0.99 * r.change, change=0.99 * r.change)
    items = list(diagnosis.relaxation)
    items[i] = smaller
    return replace(diagnosis, relaxation=items)


def assert_repairs_minimally(data: dict[str, Any], diagnosis: Diagnosis) -> None:
    sc = Scenario.from_dict(data)
    with pytest.raises(InfeasibleError):
        solve(sc)
    plan = solve(apply_relaxation(sc, diagnosis))
    assert plan.max_violation < 1e-6
    for i in range(len(diagnosis.relaxation)):
        with pytest.raises(InfeasibleError):
            solve(apply_relaxation(sc, undo_one_percent(diagnosis, i)))


# -------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_crafted_conflict_set_and_minimal_relaxation(case: str) -> None:
    build, expected, (need, allow, unit), changes = CASES[case]
    data = build()
    d = diagnose(data)
    assert not d.feasible and d.relaxable
    assert d.conflict_set == expected
    assert len(d.groups) == 1
    g = d.groups[0]
    assert (g.need, g.allow, g.unit) == (pytest.approx(need), pytest.approx(allow), unit)
    assert g.shortfall == pytest.approx(need - allow)
    got = {(r.requirement, r.path): r.relaxed for r in d.relaxation}
    assert got.keys() == changes.keys()
    for k, v in changes.items():
        assert got[k] == pytest.approx(v, rel=1e-5)
    assert_repairs_minimally(data, d)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_reported_set_is_irreducible(case: str) -> None:
    """Dropping any one constraint of the reported set (its side in conflict) leaves the
    rest of the set satisfiable: the set is minimal, not just infeasible."""
    build, *_ = CASES[case]
    sc = Scenario.from_dict(build())
    lp = build_lp(sc)
    names = {
        "pool": [p.id for p in sc.pools],
        "segment": [s.id for s in sc.segments],
        "period": sc.period_labels,
        "kind": ["cloud", "first_party", "rnd", "consumer"],
    }
    rows: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for b in lp.blocks:
        for j in range(b.size):
            k = {dim: names[dim][int(ix[j])] for dim, ix in b.keys.items()}
            rows[key(b.name, **k)] = b.start + j
    conflict = diagnose(sc).conflict_set
    in_set = np.array([rows[c] for c in conflict])
    # the set alone (all other rows dropped) is infeasible ...
    full = _system(lp)
    only = _system(lp)
    others = np.setdiff1d(np.arange(lp.num_rows), in_set)
    only.rl[others], only.ru[others] = -np.inf, np.inf
    assert not _is_feasible(only)
    # ... and any proper subset is feasible
    for r in in_set:
        sub = _system(lp)
        sub.rl[others], sub.ru[others] = -np.inf, np.inf
        sub.rl[r], sub.ru[r] = -np.inf, np.inf
        assert _is_feasible(sub), f"row {r} is not needed in the conflict"
    assert not _is_feasible(full)


def test_headline_reads_like_a_planner() -> None:
    d = diagnose(two_contracts())
    assert d.groups[0].sentence == (
        "The hard contracts of segments a and b in P2 need 19 GPUs, but the usable capacity "
        "of pools h100 and b200 in P2 allows only 18 (1 short)."
    )
    assert "Pool h100 has 9 usable GPUs in P2, 10 GPUs less 10% headroom." in d.message
    assert "Segment a (cloud) has a hard contract for at least 1,000 GPU-hour in P2" in d.message
    assert "Lower the hard contract minimum of segment a in P2 from 1,000 to 947.4" in d.message
    by_label = {c.label: c for c in d.conflicts}
    assert by_label["segment-contract[a,P2]"].gpus == pytest.approx(10.0)
    assert by_label["segment-contract[a,P2]"].role == "requirement"
    assert by_label["segment-contract[a,P2]"].requirement == "contract_min"
    assert by_label["pool-capacity[h100,P2]"].role == "limit"
    assert by_label["pool-capacity[h100,P2]"].value == pytest.approx(9.0)


def test_feasible_scenario_has_nothing_to_relax(tiny_scenario: Scenario) -> None:
    d = diagnose(tiny_scenario)
    assert d.feasible and not d.conflicts and not d.relaxation
    assert "can all be met" in d.message
    assert apply_relaxation(tiny_scenario, d) == tiny_scenario


def test_two_independent_conflicts_are_both_reported() -> None:
    data = two_contracts()
    data["policy"] = {"rnd_min_share": 0.3}
    d = diagnose(data)
    assert len(d.groups) == 2
    assert (
        d.conflict_set
        == CASES["hard contracts over capacity"][1] | CASES["R&D floor above what R&D can use"][1]
    )
    groups = {c.group for c in d.conflicts}
    assert groups == {1, 2}
    assert {r.requirement for r in d.relaxation} == {"contract_min", "rnd_min_share"}
    assert_repairs_minimally(data, d)
    assert diagnose(data, max_conflicts=1).groups == d.groups[:1]


def test_rental_limit_is_part_of_the_conflict() -> None:
    data = two_contracts()
    data["pools"][0].update(rentable_gpus=[0, 1], rental_price_per_gpu_hour=5.0)
    seg(data, "b")["contract_min"] = [0, 1000]
    d = diagnose(data)
    assert key("pool-rentable", pool="h100", period="P2") in d.conflict_set
    assert (d.groups[0].need, d.groups[0].allow) == (pytest.approx(20), pytest.approx(19))
    assert "Pool h100 can rent at most 1 GPU in P2" in d.message
    assert_repairs_minimally(data, d)


def test_stability_blocking_a_ramp_down() -> None:
    """a's hard contract needs 8 b200 GPUs in P1; b200 drops to 2 GPUs in P2 and stability
    lets a shrink by only 20% of 10 GPUs."""
    data = base()
    data["policy"] = {"max_change_share": 0.2}
    seg(data, "a").update(contract_min=[800, 0], contract_hard=True, throughput={"B200": 1})
    data["pools"][1].update(gpus=[10, 2], headroom=0.0)
    d = diagnose(data)
    assert d.conflict_set == {
        key("segment-contract", segment="a", period="P1"),
        key("pool-capacity", pool="b200", period="P2"),
        key("segment-stability", segment="a", pool="b200", period="P2"),
    }
    stab = next(c for c in d.conflicts if c.constraint == "segment-stability")
    assert stab.bound == "lower" and "shrink by at most 2" in stab.sentence
    [r] = d.relaxation
    assert r.requirement == "max_change_share" and r.relaxed == pytest.approx(0.6, rel=1e-5)
    assert_repairs_minimally(data, d)


def test_order_decides_what_gives_way() -> None:
    data = kind_floor_and_contract()
    d = diagnose(data, order=("kind_floors", "contract_min"))  # protect the floor
    [r] = d.relaxation
    assert (r.requirement, r.path) == ("contract_min", "segments[0].contract_min[0]")
    assert r.relaxed == pytest.approx(100.0, rel=1e-5)  # 4 GPUs (400 GPU-hours) less
    assert r.gpus == pytest.approx(4.0, rel=1e-5)
    assert_repairs_minimally(data, d)


def test_no_relaxation_when_the_cause_may_not_change() -> None:
    d = diagnose(rnd_floor(), order=("contract_min", "kind_floors"))
    assert not d.feasible and not d.relaxable and d.relaxation == []
    assert d.conflict_set == CASES["R&D floor above what R&D can use"][1]
    assert "No change of contract_min and kind_floors alone makes it feasible." in d.message


def test_unequal_pools_count_in_gpu_equivalents() -> None:
    """a does 3 GPU-hours of work per b200 GPU-hour, b runs only on h100: the conflict is
    counted in b200-equivalents, an h100 GPU worth a third of one."""
    data = two_contracts()
    seg(data, "a").update(
        throughput={"H100": 1, "B200": 3}, contract_min=[0, 3000], demand=[4000, 4000]
    )
    seg(data, "b")["throughput"] = {"H100": 1}
    d = diagnose(data)
    g = d.groups[0]
    assert g.unit == "GPU-equivalents"
    assert (g.need, g.allow) == (pytest.approx(13.0), pytest.approx(12.0))
    assert "h100 0.33, b200 1" in g.sentence
    assert_repairs_minimally(data, d)


def test_realistic_scenario_is_fast_and_repaired() -> None:
    data = json.loads((DATA / "hyperscaler.json").read_text())
    data["policy"]["kind_floors"] = {"consumer": 30000}
    for s in data["segments"]:
        if s["id"] == "cloud-anchor-ailab":
            s["contract_min"] = [0.95 * x for x in s["demand"]]
            s["contract_hard"] = True
    t0 = time.perf_counter()
    d = diagnose(data)
    assert time.perf_counter() - t0 < 5.0
    assert not d.feasible and d.groups
    for c in d.conflicts:
        assert c.constraint in ("kind-floor", "segment-demand")
        assert c.key.get("kind", "consumer") == "consumer"
    assert {r.requirement for r in d.relaxation} == {"kind_floors"}
    solve(apply_relaxation(Scenario.from_dict(data), d))


def test_whole_units_are_named_when_fractional_gpus_fit() -> None:
    data = base()
    data["pools"][1].update(gpus=[12, 12], headroom=0.0, allocation_unit_gpus=8)
    seg(data, "a").update(contract_min=[0, 1000], contract_hard=True, throughput={"B200": 1})
    d = diagnose(data)
    assert d.feasible
    assert "allocation_unit_gpus" in d.message and "b200" in d.message


def test_to_dict_is_json(tiny_dict: dict[str, Any]) -> None:
    d = diagnose(two_contracts())
    out = json.loads(json.dumps(d.to_dict()))
    assert set(out) == {
        "scenario", "feasible", "conflicts", "groups", "relaxation", "relaxable", "order",
        "message",
    }  # fmt: skip
    assert out["order"] == list(REQUIREMENTS)
    assert {"constraint", "key", "sentence", "gpus", "role"} <= set(out["conflicts"][0])
    assert {"requirement", "path", "current", "relaxed", "change", "unit"} <= set(
        out["relaxation"][0]
    )
    assert str(d) == d.message and "Diagnosis('crafted'" in repr(d)


def test_bad_arguments_raise_clear_errors(tiny_scenario: Scenario) -> None:
    with pytest.raises(ValueError, match="order must list"):
        diagnose(tiny_scenario, order=("contract_min", "bogus"))
    with pytest.raises(ValueError, match="max_conflicts"):
        diagnose(tiny_scenario, max_conflicts=0)
    d = diagnose(two_contracts())
    other = copy.deepcopy(d)
    other.relaxation[0] = replace(other.relaxation[0], key={"segment": "zz", "period": "P2"})
    with pytest.raises(ValueError, match="not in"):
        apply_relaxation(Scenario.from_dict(two_contracts()), other)


def test_scalar_kind_floor_becomes_a_list_when_one_period_changes() -> None:
    data = kind_floor_and_contract()
    data["policy"] = {"kind_floors": {"consumer": 8}}  # P2 has room: only P1 conflicts
    d = diagnose(data)
    [r] = d.relaxation
    assert r.path == "policy.kind_floors.consumer[0]"
    relaxed = apply_relaxation(Scenario.from_dict(data), d)
    assert relaxed.policy.kind_floors[Kind.CONSUMER] == [pytest.approx(4.0, rel=1e-5), 8.0]
    assert_repairs_minimally(data, d)


# ------------------------------------- segment GPU floors and GPU-hour budget minimums
def floor_and_budget() -> dict[str, Any]:
    """One period of 100 hours, one pool of 10 H100s. Segment chat must hold at least 8
    GPUs (gpu_limits min_gpus); budget lab-hours needs 500 GPU-hours for segment lab
    (5 GPUs over the period). 8 + 5 = 13 > 10: 3 GPUs short, and the only conflict is the
    floor, the budget and the pool. Lowering the budget to 200 GPU-hours (2 GPUs) or the
    floor to 5 GPUs repairs it; by default the floor (more protected) stays."""
    return {
        "name": "floors",
        "periods": [{"label": "Q1", "hours": 100}],
        "pools": [
            {
                "id": "h100",
                "accelerator": "H100",
                "region": "r",
                "gpus": [10],
                "variable_cost_per_gpu_hour": 0.0,
            }
        ],
        "segments": [
            {
                "id": "chat",
                "kind": "first_party",
                "demand": [10000],
                "revenue_per_unit": 1.0,
                "throughput": {"H100": 10},
                "gpu_limits": [{"min_gpus": 8}],
            },
            {
                "id": "lab",
                "kind": "rnd",
                "demand": [10000],
                "revenue_per_unit": 0.5,
                "throughput": {"H100": 10},
            },
        ],
        "policy": {
            "gpu_hour_budgets": [{"id": "lab-hours", "segment": "lab", "min_gpu_hours": 500}]
        },
    }


def test_gpu_floor_and_budget_conflict_with_capacity_and_are_relaxed() -> None:
    data = floor_and_budget()
    d = diagnose(data)
    assert not d.feasible and d.relaxable
    assert d.conflict_set == {
        key("segment-gpus", segment="chat", accelerator="any", period="Q1"),
        key("gpu-hour-budget", budget="lab-hours"),
        key("pool-capacity", pool="h100", period="Q1"),
    }
    (g,) = d.groups
    assert (g.need, g.allow, g.unit) == (pytest.approx(13), pytest.approx(10), "GPUs")
    roles = {c.constraint: (c.role, c.requirement) for c in d.conflicts}
    assert roles["segment-gpus"] == ("requirement", "gpu_limits")
    assert roles["gpu-hour-budget"] == ("requirement", "gpu_hour_budgets")
    assert "segments[0].gpu_limits[0].min_gpus" in d.message
    assert "policy.gpu_hour_budgets[0].min_gpu_hours" in d.message
    ((path, relaxed),) = [(r.path, r.relaxed) for r in d.relaxation]
    assert path == "policy.gpu_hour_budgets[0].min_gpu_hours"
    assert relaxed == pytest.approx(200, rel=1e-5)
    assert "Lower the minimum of GPU-hour budget lab-hours from 500 to 200" in d.message
    assert_repairs_minimally(data, d)


def test_the_order_can_lower_the_gpu_floor_instead() -> None:
    data = floor_and_budget()
    d = diagnose(data, order=("gpu_hour_budgets", "gpu_limits"))
    ((r),) = d.relaxation
    assert (r.requirement, r.path) == ("gpu_limits", "segments[0].gpu_limits[0].min_gpus[0]")
    assert r.relaxed == pytest.approx(5, rel=1e-5)
    fixed = apply_relaxation(data, d)
    assert fixed.segments[0].gpu_limits[0].min_gpus == [pytest.approx(5, rel=1e-5)]
    assert_repairs_minimally(data, d)
    # neither may change: named, not relaxed
    d = diagnose(data, order=("contract_min",))
    assert not d.relaxable
    assert "GPU floor (gpu_limits) of segment chat" in d.message


def test_a_gpu_cap_is_a_limit_not_a_requirement() -> None:
    """chat does 10 units per GPU-hour, 1,000 per GPU over the 100 h; a hard contract of
    500 units needs 0.5 GPU, but its GPU cap is 0.4 GPU (400 units). The cap is a limit
    (not relaxed); the contract gives way, to 400 units."""
    data = floor_and_budget()
    data["policy"].pop("gpu_hour_budgets")
    chat = data["segments"][0]
    chat["gpu_limits"] = [{"max_gpus": 0.4}]
    chat.update(contract_min=[500], contract_hard=True)
    d = diagnose(data)
    cap = [c for c in d.conflicts if c.constraint == "segment-gpus"]
    assert [(c.role, c.requirement, c.bound) for c in cap] == [("limit", None, "upper")]
    ((r),) = d.relaxation
    assert r.requirement == "contract_min" and r.relaxed == pytest.approx(400, rel=1e-5)
    assert_repairs_minimally(data, d)
