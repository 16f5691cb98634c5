"""Honest estimates (issue 26 item 12): ``--partitions`` prints what it gives up against
the whole LP (or warns that it was not measured); ``stochastic`` picks the same method
with or without a Dask scheduler and prints its answer before the scenario table."""

from __future__ import annotations

import re
import sys
import types

import pytest

from allocator import Scenario
from allocator.cli import main
from allocator.workflows import partition
from allocator.workflows.partition import measure_loss, partitioned_solve
from tests.conftest import DATA

HYPERSCALER = DATA / "hyperscaler.json"


def test_partitions_print_their_measured_loss(capsys):
    """The loss printed is (whole optimum - partitioned objective) / whole optimum, both
    recomputed here."""
    assert main(["solve", str(HYPERSCALER), "--partitions", "4"]) == 0
    err = capsys.readouterr().err
    m = re.search(r"a loss of (-?\d+\.\d\d)%", err)
    assert m, err
    sc = Scenario.from_file(HYPERSCALER)
    part = measure_loss(partitioned_solve(sc, 4), sc)
    assert part.loss_share is not None
    assert float(m.group(1)) == pytest.approx(100 * part.loss_share, abs=0.006)
    assert part.to_dict()["loss_share"] == part.loss_share


def test_partitions_warn_when_the_whole_lp_is_too_large_to_measure(capsys, monkeypatch):
    monkeypatch.setattr(partition, "MEASURE_COLUMNS", 0)
    assert main(["solve", str(DATA / "tiny.json"), "--partitions", "2"]) == 0
    err = capsys.readouterr().err
    assert "Warning: the loss against the whole LP was not measured" in err
    assert "much larger on small scenarios" in err


class _NoCluster:
    """A Dask client that must not be used: a small plan is one LP, solved locally."""

    def __init__(self, address: str):
        self.address = address

    def submit(self, *args, **kwargs):  # pragma: no cover - failing is the point
        raise AssertionError("the extensive form does not use the cluster")

    def close(self) -> None:
        pass


def test_stochastic_is_the_same_with_a_scheduler_and_answers_first(capsys, monkeypatch):
    scenario = DATA / "stochastic" / "neocloud-reservations.json"
    demand = DATA / "stochastic" / "demand-growth.json"
    assert main(["stochastic", str(scenario), str(demand)]) == 0
    local = capsys.readouterr().out
    fake = types.ModuleType("distributed")
    fake.Client = _NoCluster  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "distributed", fake)
    assert main(["stochastic", str(scenario), str(demand), "--scheduler", "tcp://x:8786"]) == 0
    assert capsys.readouterr().out == local
    # the answer (decisions now, expected value, VSS) before the scenarios it covers
    assert "extensive form" in local.splitlines()[0]
    answer = local.index("GPUs reserved for customers (decided now)")
    value = local.index("value of the stochastic solution (VSS)")
    scenarios = local.index("Demand scenarios:")
    assert answer < scenarios and value < scenarios
