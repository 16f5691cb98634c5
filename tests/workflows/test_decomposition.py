"""Two-stage plans by scenario decomposition (L-shaped, multi-cut) against the extensive
form: the hand-solved newsvendor of test_stochastic.py (RP 2, EEV 0.5, VSS 1.5; with CVaR
RP 4, VSS 7.5; EVPI: knowing demand earns 3 * 2 - 2 * 2 = 2 or 3 * 8 - 2 * 8 = 8, so
WS = 5 and EVPI = 3), random fleets, the bundled example; executors inline, process pool
and a Dask LocalCluster; sampled scenarios; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from allocator.cli import main
from allocator.scenario import Scenario
from allocator.scenario.generate import generate
from allocator.workflows.decomposition import InlinePool, ScenarioWorker, decompose, make_pool
from allocator.workflows.sampling import sample_demand_scenarios
from allocator.workflows.stochastic import choose_method, stochastic_plan

from .test_stochastic import LOW_HIGH, newsvendor

DATA = Path(__file__).resolve().parents[2] / "data"
EXAMPLE = DATA / "stochastic" / "neocloud-reservations.json"
GAP = 1e-4


def _same(a: float | None, b: float | None, gap: float = GAP) -> bool:
    assert a is not None and b is not None
    return abs(a - b) <= 1.01 * gap * max(1.0, abs(a)) + 1e-9


def _agree(ext: object, dec: object) -> None:
    for what in ("objective", "ev_objective", "eev", "vss", "wait_and_see"):
        a, b = getattr(ext, what), getattr(dec, what)
        if a is None:
            assert b is None, what
        else:
            assert _same(a, b), (what, a, b)


@pytest.mark.parametrize(
    ("kw", "rp", "vss"),
    [({}, 2.0, 1.5), ({"cvar_weight": 1.0, "cvar_level": 0.5}, 4.0, 7.5)],
)
def test_hand_solved_newsvendor(kw: dict, rp: float, vss: float) -> None:
    progress: list[str] = []
    r = stochastic_plan(
        newsvendor(),
        LOW_HIGH,
        method="decomposition",
        executor="inline",
        progress=progress.append,
        **kw,
    )
    assert r.method == "decomposition" and r.gap <= GAP
    assert r.objective == pytest.approx(rp) and r.vss == pytest.approx(vss)
    assert r.eev == pytest.approx(rp - vss) and r.ev_objective == pytest.approx(5.0)
    assert r.wait_and_see == pytest.approx(5.0) and r.evpi == pytest.approx(3.0)
    assert r.first_stage["rentals"] == {"h": {"P1": pytest.approx(2.0)}}
    assert [p.objective for p in r.plans] == pytest.approx([2.0, 2.0])
    assert any("gap" in m for m in progress)
    assert r.iterations[-1]["upper"] >= r.iterations[-1]["lower"]
    _agree(stochastic_plan(newsvendor(), LOW_HIGH, method="extensive", **kw), r)


def test_first_period_allocations_and_an_infeasible_expected_plan() -> None:
    ext = stochastic_plan(newsvendor(), LOW_HIGH, method="extensive", first_period_allocations=True)
    dec = stochastic_plan(
        newsvendor(),
        LOW_HIGH,
        method="decomposition",
        executor="inline",
        first_period_allocations=True,
    )
    _agree(ext, dec)
    assert dec.vss is None and "unbounded" in dec.vss_note
    assert (
        dec.first_stage["first_period_allocations"] == ext.first_stage["first_period_allocations"]
    )


@pytest.mark.parametrize("seed", range(5))
def test_random_fleets_match_the_extensive_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sc = generate(segments=8, pools=4, periods=3, seed=seed, scarcity=3.0)
    scenarios = sample_demand_scenarios(sc, 4, cv=0.5, correlation=0.3, seed=seed)
    kw = {"cvar_weight": float(rng.choice([0.0, 0.5]))}
    ext = stochastic_plan(sc, scenarios, method="extensive", **kw)
    for multicut in (True, False):
        dec = stochastic_plan(
            sc, scenarios, method="decomposition", executor="inline", multicut=multicut, **kw
        )
        assert dec.gap <= GAP
        _agree(ext, dec)
        assert all(p.max_violation < 1e-6 for p in dec.plans)


def test_process_pool_on_the_bundled_example() -> None:
    sc = Scenario.from_file(EXAMPLE)
    scenarios = json.loads((DATA / "stochastic" / "demand-growth.json").read_text())
    if isinstance(scenarios, dict):
        scenarios = scenarios["scenarios"]
    ext = stochastic_plan(sc, scenarios, method="extensive")
    dec = stochastic_plan(sc, scenarios, method="decomposition", executor="process", workers=2)
    _agree(ext, dec)
    assert dec.vss is not None and dec.vss > 0


def test_workers_keep_their_models_warm() -> None:
    sc = Scenario.from_file(EXAMPLE)
    demand = sample_demand_scenarios(sc, 4, seed=3)
    pool = make_pool(sc.to_dict(), demand, False, executor="process", workers=2)
    try:
        free = pool.solve(None)
        assert sorted(r.k for r in free) == [0, 1, 2, 3]
        assert not any(r.warm for r in free)
        again = pool.solve(np.mean([r.y for r in free], axis=0))
        assert all(r.warm for r in again)  # each scenario stayed in the process that built it
    finally:
        pool.close()


def test_own_models_per_scenario_give_the_same_plan() -> None:
    sc = Scenario.from_file(EXAMPLE)
    demand = sample_demand_scenarios(sc, 3, seed=5)
    pr = np.full(3, 1 / 3)
    out = []
    for shared in (True, False):
        w = ScenarioWorker(sc.to_dict(), demand, [0, 1, 2], False, 0, shared=shared)
        pool = InlinePool.__new__(InlinePool)
        pool.worker = w
        out.append(decompose(pool, pr))
    assert _same(out[0].objective, out[1].objective)
    assert [p.objective for p in out[0].plans] == pytest.approx(
        [p.objective for p in out[1].plans], rel=2 * GAP
    )


def test_stopped_early_the_best_plan_comes_with_its_proven_gap() -> None:
    sc = Scenario.from_file(EXAMPLE)
    scenarios = json.loads((DATA / "stochastic" / "demand-growth.json").read_text())
    if isinstance(scenarios, dict):
        scenarios = scenarios["scenarios"]
    ext = stochastic_plan(sc, scenarios, method="extensive", compute_vss=False)
    pr = np.array([d["probability"] for d in scenarios])
    pool = InlinePool(sc.to_dict(), scenarios, False)
    r = decompose(pool, pr, max_iterations=1)
    assert not r.converged and r.gap > GAP
    assert r.objective <= ext.objective * (1 + 1e-9) <= r.bound * (1 + 1e-9)
    assert r.gap == pytest.approx((r.bound - r.objective) / abs(r.objective))
    assert [p.objective for p in r.plans] == pytest.approx(list(r.values))


def test_dask_local_cluster_matches_the_extensive_form(capsys: pytest.CaptureFixture[str]) -> None:
    distributed = pytest.importorskip("distributed")
    sc = Scenario.from_file(EXAMPLE)
    demand = sample_demand_scenarios(sc, 6, cv=0.2, seed=1)
    ext = stochastic_plan(sc, demand, method="extensive")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dec = stochastic_plan(sc, demand, method="decomposition", client=client)
        assert dec.gap <= GAP
        _agree(ext, dec)
        # the CLI connects to the same cluster with --scheduler
        argv = ["stochastic", str(EXAMPLE), "--sample", "6", "--demand-cv", "0.2", "--seed", "1"]
        assert main([*argv, "--json", "--scheduler", cluster.scheduler_address]) == 0


def test_sampling_is_seeded_with_mean_one_and_correlated_kinds() -> None:
    sc = Scenario.from_file(EXAMPLE)
    a = sample_demand_scenarios(sc, 400, cv=0.3, correlation=0.8, seed=7)
    assert a == sample_demand_scenarios(sc, 400, cv=0.3, correlation=0.8, seed=7)
    assert sum(d["probability"] for d in a) == pytest.approx(1.0)
    kinds = sorted(a[0]["demand_scale"])
    f = np.array([[d["demand_scale"][k] for k in kinds] for d in a])
    assert f.mean(axis=0) == pytest.approx(np.ones(len(kinds)), abs=0.06)
    assert f.std(axis=0) == pytest.approx(np.full(len(kinds), 0.3), abs=0.06)
    if len(kinds) > 1:
        assert np.corrcoef(np.log(f).T)[0, 1] > 0.6
    b = sample_demand_scenarios(sc, 400, cv=0.1, kind_cv={kinds[0]: 0.5}, seed=7)
    g = np.array([[d["demand_scale"][k] for k in kinds] for d in b])
    assert g[:, 0].std() > 3 * g[:, -1].std() or len(kinds) == 1
    with pytest.raises(ValueError, match="kind"):
        sample_demand_scenarios(sc, 3, kind_cv={"nope": 0.1})


def test_auto_picks_the_extensive_form_for_small_cases() -> None:
    sc = Scenario.from_dict(newsvendor())
    assert choose_method(sc, 2) == "extensive"
    assert stochastic_plan(newsvendor(), LOW_HIGH).method == "extensive"


def test_cli_sample_and_decomposition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stochastic", str(EXAMPLE), "--sample", "6", "--demand-cv", "0.2", "--seed", "1"]
    assert main([*argv, "--json", "--method", "extensive"]) == 0
    ext = json.loads(capsys.readouterr().out)
    assert main([*argv, "--json", "--method", "decomposition", "--workers", "1"]) == 0
    dec = json.loads(capsys.readouterr().out)
    assert dec["method"] == "decomposition" and dec["gap"] <= GAP
    assert _same(ext["objective"], dec["objective"]) and _same(ext["evpi"], dec["evpi"], 1e-3)
    assert main([*argv, "--method", "decomposition", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "EVPI" in text and "proven gap" in text
    assert main(["stochastic", str(EXAMPLE)]) == 2  # neither DEMAND nor --sample


def test_without_vss_the_wait_and_see_round_is_skipped() -> None:
    sc = Scenario.from_file(EXAMPLE)
    demand = sample_demand_scenarios(sc, 5, cv=0.3, seed=4)
    ext = stochastic_plan(sc, demand, method="extensive", compute_vss=False)
    dec = stochastic_plan(sc, demand, method="decomposition", executor="inline", compute_vss=False)
    assert _same(ext.objective, dec.objective) and dec.gap <= GAP
    assert dec.wait_and_see is None and dec.evpi is None and dec.vss is None
    assert dec.decomposition["wait_and_see_subproblem_s"] == []
