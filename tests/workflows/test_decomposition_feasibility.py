"""Decomposition never calls a feasible two-stage problem infeasible (issue 24).

The reproducer of the issue (data/decomposition-ext-60034.json: 2 periods, 4 pools, one
reservation offer) made the master propose 155 GPUs reserved in a pool of 134: no
first-stage-only row said so, the scenario's subproblem was infeasible there, and the
loop raised "infeasible at the master's first stage" (exit 3) where the extensive form
finds 416,570.2211. The master now starts from what every row implies for the first stage
(pool-capacity with allocations >= 0 gives reserved - rented - bought <= usable), and a
candidate some scenario still cannot live with gets a feasibility cut; both paths are
checked here against the extensive form, on the reproducer and on random scenarios with
reservations, rentals, GPUs bought, first-period allocations and CVaR.

Hand cases for a problem that really is infeasible (one pool "h" of 10 GPUs, throughput 1
unit per GPU-hour, 1-hour periods):

* newsvendor with a cloud floor of 4 GPUs: scenario "low" has demand 0.4 x 5 = 2 units, so
  at most 2 GPUs serve it, below the floor whatever is rented: no plan even with its first
  stage free; the error names "low" and gives the engine's diagnosis (the floor and the
  demand).
* "swing": segments a and b (cloud, demand 10 in both periods), a cloud floor of 8 GPUs
  and max_change_share 0.2 (an allocation moves by at most 2 GPUs between periods), the
  first period's allocations decided now. In "a-stays" b's P2 demand is 0, so x_b,P1 <= 2
  and then x_a,P1 >= 8 - 2 = 6 (x_a,P2 >= 8 needs x_a,P1 >= 6); "b-stays" is the mirror:
  x_a,P1 <= 2. Each scenario alone has a plan (8 GPUs to the segment that stays), together
  x_a,P1 >= 6 and <= 2: the error names both scenarios and the first-period allocations.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.cli import main
from allocator.errors import InfeasibleError
from allocator.workflows import decomposition
from allocator.workflows.decomposition import InlinePool, TwoStageInfeasibleError, decompose
from allocator.workflows.stochastic import stochastic_plan

from .test_stochastic import LOW_HIGH, newsvendor

CASE = Path(__file__).resolve().parent / "data" / "decomposition-ext-60034.json"


def _cuts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master without the implied rows: every infeasible candidate must be cut off."""
    rows = functools.partial(decomposition._first_stage_rows, implied=False)
    monkeypatch.setattr(decomposition, "_first_stage_rows", rows)


def test_the_issue_reproducer_solves_as_the_extensive_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = json.loads(CASE.read_text())
    (tmp_path / "s.json").write_text(json.dumps(case["scenario"]))
    (tmp_path / "d.json").write_text(json.dumps({"scenarios": case["demand"]}))
    argv = ["stochastic", str(tmp_path / "s.json"), str(tmp_path / "d.json"), "--json"]
    assert main([*argv, "--method", "extensive"]) == 0
    ext = json.loads(capsys.readouterr().out)["objective"]
    assert ext == pytest.approx(416_570.2211, abs=1e-4)  # the issue's independent value
    assert main([*argv, "--method", "decomposition", "--workers", "1"]) == 0
    dec = json.loads(capsys.readouterr().out)
    assert dec["objective"] == pytest.approx(ext, rel=1e-7)


def test_the_reproducer_by_feasibility_cuts_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    case = json.loads(CASE.read_text())
    pr = np.array([d["probability"] for d in case["demand"]])
    ext = stochastic_plan(case["scenario"], case["demand"], method="extensive")
    _cuts_only(monkeypatch)
    said: list[str] = []
    r = decompose(InlinePool(case["scenario"], case["demand"], False), pr, progress=said.append)
    assert r.objective == pytest.approx(ext.objective, rel=1e-7)
    assert any("feasibility cut" in m for m in said)  # the path was taken
    assert all(p.max_violation < 1e-6 for p in r.plans)


def test_the_feasibility_cut_is_the_distance_and_its_slope() -> None:
    """The swing case's "b-stays" at the first stage x_a,P1 = 9, x_b,P1 = 1: there
    x_a,P2 = 0 (a's P2 demand), so x_a,P1 <= 2 (moves of at most 2 GPUs), and the floor of
    8 in P2 falls to b, so x_b,P1 >= 6. The nearest first stage it can live with in L1 is
    (2, 6) (the P1 floor and capacity, 8 <= x_a + x_b <= 10, hold there): v = 7 + 5 = 12,
    with slope +1 on x_a,P1 (more of it, farther) and -1 on x_b,P1."""
    sc = _swing()
    lp = decomposition.build_lp(
        decomposition.scenario_for(
            decomposition.Scenario.from_dict(sc),
            decomposition.DemandScenario.of(SWING[1]),
        )
    )
    first = decomposition.first_stage_columns(lp, True)
    c = lp.columns
    seg = c.x_segment[first]
    y = np.where(seg == 0, 9.0, 1.0)
    bounds = (lp.col_lower[first].copy(), lp.col_upper[first].copy())
    lp.col_lower[first] = lp.col_upper[first] = y
    dist, grad = decomposition._feasibility_cut(lp, first, bounds, y)
    # nearest first stage b-stays can live with: x_a,P1 <= 2, x_b,P1 >= 6 (8 - 2)
    assert dist == pytest.approx(7.0 + 5.0)
    assert grad[seg == 0] == pytest.approx([1.0])
    assert grad[seg == 1] == pytest.approx([-1.0])


# ------------------------------------------------------------- really infeasible
def _swing() -> dict[str, Any]:
    def seg(i: str) -> dict[str, Any]:
        return {
            "id": i,
            "kind": "cloud",
            "unit": "u",
            "demand": [10, 10],
            "revenue_per_unit": 3.0,
            "throughput": {"H100": 1},
        }

    return {
        "name": "swing",
        "periods": [{"label": "P1", "hours": 1}, {"label": "P2", "hours": 1}],
        "pools": [
            {
                "id": "h",
                "accelerator": "H100",
                "region": "r",
                "ownership": "owned",
                "gpus": [10, 10],
                "variable_cost_per_gpu_hour": 0,
                "fixed_cost_per_gpu_hour": 0,
            }
        ],
        "segments": [seg("a"), seg("b")],
        "policy": {"kind_floors": {"cloud": 8}, "max_change_share": 0.2, "headroom": 0.0},
    }


SWING = [
    {"name": "a-stays", "probability": 0.5, "demand": {"b": [10, 0]}},
    {"name": "b-stays", "probability": 0.5, "demand": {"a": [10, 0]}},
]


def test_scenarios_that_each_have_a_plan_but_need_conflicting_first_stages() -> None:
    for name in ("a-stays", "b-stays"):  # each alone has a plan
        alone = [dict(d, probability=1.0) for d in SWING if d["name"] == name]
        assert stochastic_plan(_swing(), alone, first_period_allocations=True).objective > 0
    # with the first period's allocations decided later, each scenario gives P1's 10 GPUs
    # mostly (>= 8) to the segment that stays and all 10 in P2: 3 x 20 = 60 in each
    free = stochastic_plan(_swing(), SWING, method="decomposition", executor="inline")
    assert free.objective == pytest.approx(60.0)
    with pytest.raises(InfeasibleError, match="no plan meets"):
        stochastic_plan(_swing(), SWING, method="extensive", first_period_allocations=True)
    with pytest.raises(InfeasibleError) as exc:
        stochastic_plan(
            _swing(),
            SWING,
            method="decomposition",
            executor="inline",
            first_period_allocations=True,
        )
    msg = str(exc.value)
    assert "no first-stage decisions suit every demand scenario" in msg
    assert "'a-stays' needs more GPUs of pool h for a (full) in P1" in msg
    assert "'b-stays'" in msg and "GPUs of pool h for a (full) in P1" in msg.split("'b-stays'")[1]


def test_a_scenario_with_no_plan_at_all_is_named_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = newsvendor()
    sc["policy"] = {"kind_floors": {"cloud": 4}}
    with pytest.raises(InfeasibleError) as exc:  # found in a worker process, said here
        stochastic_plan(sc, LOW_HIGH, method="decomposition", executor="process", workers=2)
    msg = str(exc.value)
    assert "demand scenario 'low' has no feasible plan even with the first-stage" in msg
    assert "cloud floor in P1 needs 4 GPUs" in msg and "allows only 2" in msg
    assert exc.value.diagnosis is not None
    (tmp_path / "s.json").write_text(json.dumps(sc))
    (tmp_path / "d.json").write_text(json.dumps(LOW_HIGH))
    argv = ["stochastic", str(tmp_path / "s.json"), str(tmp_path / "d.json")]
    assert main([*argv, "--method", "decomposition", "--workers", "1"]) == 3
    assert "'low'" in capsys.readouterr().err


# ------------------------------------------------------------- random scenarios
@st.composite
def two_stage_cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:
    """2-3 periods, 2-3 pools (some rentable, some with GPUs to buy, some headroom), 2-3
    segments (some with a reservation offer or a second mode), 2-3 demand scenarios that
    scale each segment's demand in [0.3, 1.8]; CVaR sometimes, first-period allocations
    sometimes, a hard cloud floor and stability rows sometimes (then some problems have no
    plan: a scenario's demand below the floor, or scenarios that need conflicting first
    periods)."""
    T = draw(st.integers(2, 3))
    n_pools, n_segs = draw(st.integers(2, 3)), draw(st.integers(2, 3))
    accs = ["H100", "B200"]
    fl = functools.partial(st.floats, allow_nan=False, allow_infinity=False)
    pools = []
    for j in range(n_pools):
        pool: dict[str, Any] = {
            "id": f"p{j}",
            "accelerator": accs[j % 2],
            "region": "r",
            "ownership": "owned",
            "gpus": [draw(fl(0, 40)) for _ in range(T)],
            "variable_cost_per_gpu_hour": draw(fl(0.1, 2.0)),
            "fixed_cost_per_gpu_hour": 0.5,
        }
        if draw(st.booleans()):
            pool["rentable_gpus"] = [draw(fl(0, 30)) for _ in range(T)]
            pool["rental_price_per_gpu_hour"] = draw(fl(0.5, 4.0))
        if draw(st.booleans()):
            pool["expansion"] = {
                "max_gpus": draw(fl(1, 30)),
                "cost_per_gpu_hour": draw(fl(0.2, 3.0)),
                "from_period": f"P{draw(st.integers(1, T))}",
            }
        if draw(st.booleans()):
            pool["headroom"] = draw(fl(0.0, 0.3))
        pools.append(pool)
    segs = []
    for i in range(n_segs):
        seg: dict[str, Any] = {
            "id": f"s{i}",
            "kind": ["cloud", "consumer", "rnd"][i % 3],
            "unit": "u",
            "demand": [draw(fl(100, 6000)) for _ in range(T)],
            "revenue_per_unit": draw(fl(0.0, 1.0)),
            "ltv_per_unit": draw(fl(0.0, 0.5)),
            "throughput": {a: draw(fl(0.5, 8.0)) for a in accs if draw(st.booleans())}
            or {"H100": 1.0},
        }
        if draw(st.booleans()):
            seg["reservation"] = {
                "max_gpus": [draw(fl(1, 60)) for _ in range(T)],
                "price_per_gpu_hour": draw(fl(0.5, 5.0)),
            }
        if draw(st.booleans()):
            seg["modes"] = [
                {"name": "full"},
                {"name": "lite", "throughput_multiplier": 1.3, "revenue_share": 0.6},
            ]
        segs.append(seg)
    sc: dict[str, Any] = {
        "name": "random-two-stage",
        "periods": [{"label": f"P{t + 1}", "hours": 24.0} for t in range(T)],
        "pools": pools,
        "segments": segs,
    }
    if draw(st.booleans()):  # hard requirements: some problems have no plan at all
        sc["policy"] = {
            "kind_floors": {"cloud": draw(fl(0, 40))},
            "max_change_share": draw(st.sampled_from([0.05, 0.2, 1.0])),
        }
    K = draw(st.integers(2, 3))
    raw = [draw(fl(0.2, 1.0)) for _ in range(K)]
    demand = [
        {
            "name": f"k{k}",
            "probability": raw[k] / sum(raw),
            "demand_scale": {s["id"]: draw(fl(0.3, 1.8)) for s in segs},
        }
        for k in range(K)
    ]
    opts = {
        "cvar_weight": draw(st.sampled_from([0.0, 0.0, 0.5])),
        "cvar_level": 0.7,
        "first_period_allocations": draw(st.booleans()),
    }
    return sc, demand, opts


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=two_stage_cases(), implied=st.booleans())
def test_random_two_stage_problems_match_the_extensive_form(
    case: tuple[dict[str, Any], list[dict[str, Any]], dict], implied: bool
) -> None:
    sc, demand, opts = case
    fpa = opts["first_period_allocations"]
    rows = functools.partial(decomposition._first_stage_rows, implied=implied)
    pr = np.array([d["probability"] for d in demand])
    cvar = {"cvar_weight": opts["cvar_weight"], "cvar_level": opts["cvar_level"]}
    try:
        ext = stochastic_plan(sc, demand, method="extensive", compute_vss=False, **opts)
    except InfeasibleError:  # then, and only then, decomposition says so too
        with pytest.MonkeyPatch.context() as mp, pytest.raises(TwoStageInfeasibleError):
            mp.setattr(decomposition, "_first_stage_rows", rows)
            decompose(InlinePool(sc, demand, fpa), pr, gap=1e-9, **cvar)
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decomposition, "_first_stage_rows", rows)
        r = decompose(InlinePool(sc, demand, fpa), pr, gap=1e-9, **cvar)
    assert r.objective == pytest.approx(ext.objective, rel=1e-7, abs=1e-6)
    assert r.objective <= r.bound + 1e-9 * max(1.0, abs(r.bound))
    assert all(p.max_violation < 1e-6 for p in r.plans)
