"""Issue 26 item 10: a counterfactual reads in words for any change: a title instead of
raw JSON, and "the change would earn X more/less" (or the same)."""

from __future__ import annotations

from allocator.cli import main
from allocator.workflows.counterfactuals import Counterfactual, title, verdict
from tests.conftest import DATA


def test_titles_and_verdicts():
    cf = Counterfactual.model_validate(
        {
            "transforms": [
                {"type": "scale_demand", "target": "cloud", "factor": 1.2},
                {"type": "capacity", "pool": "b200", "gpus": -2000, "from_period": "P2"},
                {"type": "price", "target": "chat", "factor": [1, 0.9]},
                {"type": "priority", "kind": "rnd"},
            ]
        }
    )
    assert title(cf.transforms) == (
        "cloud demand × 1.2, then −2,000 GPUs in b200 from P2, then chat prices × 1, 0.9 by "
        "period, then rnd first on all capacity"
    )
    assert (
        verdict(163_600_000, "USD")
        == "the change would earn 163.60M USD less than the optimal plan"
    )
    assert (
        verdict(-61_300_000, "USD") == "the change would earn 61.30M USD more than the optimal plan"
    )
    assert verdict(0.001, "EUR") == "the change would earn the same as the optimal plan"


def test_cli_counterfactual_says_what_changed_and_what_it_earns(capsys):
    """tiny: cloud's contract minimum × 2 leaves 1,200 H100-hours short at 1.50 (see
    test_whatif_overrides): the change earns 1.80k USD less."""
    f = str(DATA / "tiny.json")
    assert main(["counterfactual", f, "--scale-contract", "cloud:2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Counterfactual on 'tiny': cloud contract minimums × 2"
    assert "{" not in out[0]
    assert out[-1].endswith(
        "the change would earn 1.80k USD less than the optimal plan (objective, present value)"
    )
