"""Issue 26 item 4: demand and contract minimums are separate what-if controls; an
unknown key gets the closest id or kind."""

from __future__ import annotations

import pytest

from allocator import Scenario, solve
from allocator.cli import main
from allocator.errors import ScenarioError
from allocator.scenario.overrides import apply_overrides
from tests.conftest import DATA


@pytest.fixture(scope="module")
def tiny():
    return Scenario.from_file(DATA / "tiny.json")


def cloud(sc: Scenario):
    return next(s for s in sc.segments if s.id == "cloud")


def test_demand_scale_leaves_contract_minimums(tiny):
    """tiny's cloud: demand [1500, 3000], contract minimum [0, 1200]."""
    up = cloud(apply_overrides(tiny, {"demand_scale": {"cloud": 2}}))
    assert up.demand == [3000, 6000] and up.contract_min == [0, 1200]
    # × 0.3: demand [450, 900] falls below the minimum 1200 in P2: lowered to it
    down = cloud(apply_overrides(tiny, {"demand_scale": {"cloud": 0.3}}))
    assert down.demand == pytest.approx([450, 900]) and down.contract_min == pytest.approx([0, 900])


def test_contract_scale_scales_minimums_never_above_demand(tiny):
    both = cloud(
        apply_overrides(tiny, {"demand_scale": {"cloud": 2}, "contract_scale": {"cloud": 2}})
    )
    assert both.demand == [3000, 6000] and both.contract_min == [0, 2400]
    with pytest.raises(ScenarioError) as info:
        apply_overrides(tiny, {"contract_scale": {"cloud": 3}})  # 3600 > 3000 in P2
    (issue,) = info.value.issues
    assert issue.path == "contract_scale.cloud"
    assert "3,600 above its demand 3,000 in P2" in issue.message


def test_demand_alone_costs_nothing_the_contract_costs_its_penalty(tiny):
    """The plan serves cloud only its minimum (chat earns more per GPU-hour), so doubling
    cloud's demand alone changes nothing; doubling the minimum too (the old demand_scale)
    leaves 1200 H100-hours of P2 unserved at 1.50 penalty: objective − 1,800."""
    base = solve(tiny).objective
    assert solve(apply_overrides(tiny, {"demand_scale": {"cloud": 2}})).objective == pytest.approx(
        base
    )
    old = {"demand_scale": {"cloud": 2}, "contract_scale": {"cloud": 2}}
    assert solve(apply_overrides(tiny, old)).objective == pytest.approx(base - 1800)


def test_unknown_key_names_the_closest(tiny):
    with pytest.raises(ScenarioError) as info:
        apply_overrides(tiny, {"demand_scale": {"clod": 1.2}})
    assert info.value.issues[0].path == "demand_scale.clod"
    assert "did you mean 'cloud'?" in info.value.issues[0].message
    with pytest.raises(ScenarioError) as info:
        apply_overrides(tiny, {"cost_change": {"H10": 1.2}})
    assert "did you mean 'H100'?" in info.value.issues[0].message


def test_cli_counterfactual_scales_contracts(capsys):
    argv = ["counterfactual", str(DATA / "tiny.json"), "--scale-demand", "cloud:2"]
    assert main([*argv, "--scale-contract", "cloud:2", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"scale_contract"' in out
