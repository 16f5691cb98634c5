"""Issue 26 item 11: capacity advice gives its reason in text, takes a purchase price per
accelerator type (CLI, library, REST), and says where one more GPU is worth more than its
shadow price (it also loosens binding share and stability limits)."""

from __future__ import annotations

import json

import pytest

from allocator import Scenario, solve
from allocator.analysis.capacity import capacity_value, parse_purchase_prices
from allocator.cli import main
from tests.api.conftest import assert_problem, wait_done
from tests.conftest import DATA


def test_parse_purchase_prices():
    assert parse_purchase_prices("2.5") == 2.5
    assert parse_purchase_prices("H100=2.1, B200=3.4") == {"H100": 2.1, "B200": 3.4}
    for bad in ("H100=x", "H100", "=2", "H100=-1"):
        with pytest.raises(ValueError):
            parse_purchase_prices(bad if bad != "H100" else "H100=2,B200")


@pytest.fixture(scope="module")
def hyperscaler():
    sc = Scenario.from_file(DATA / "hyperscaler.json")
    return sc, solve(sc)


def test_purchase_price_by_type_and_the_limits_a_gpu_loosens(hyperscaler):
    sc, plan = hyperscaler
    rows = capacity_value(plan, sc, purchase_price_per_gpu_hour={"H100": 2.1, "GB200": 3.4})
    acc = {p.id: p.accelerator for p in sc.pools}
    for r in rows:
        want = {"H100": 2.1, "GB200": 3.4}.get(acc[r.pool])
        if want is not None:
            assert r.purchase_price_per_gpu_hour == pytest.approx(want)
            assert r.purchase_cost_per_gpu == pytest.approx(want * r.hours)
    # the binding share and stability rows of the plan, by pool and period
    caps = {
        (b.key["pool"], b.key["period"])
        for b in plan.binding
        if b.constraint in ("segment-share", "segment-stability")
    }
    assert caps  # hyperscaler has some
    loosening = {(r.pool, r.period) for r in rows if r.loosens}
    assert loosening == caps
    for r in rows:
        assert ("worth more than its shadow price says" in r.reason) == bool(r.loosens)


def test_cli_text_has_the_reason_and_takes_prices_by_type(capsys):
    f = str(DATA / "hyperscaler.json")
    assert main(["capacity", f, "--purchase-price", "H100=2.1,GB200=3.4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "reason"
    h100 = next(ln for ln in lines if ln.startswith("h100-eastus"))
    assert "amortised" in h100 or "idle" in h100 or "rent" in h100
    assert main(["capacity", f, "--purchase-price", "H100=2.1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["purchase_price_per_gpu_hour"] for r in rows if r["accelerator"] == "H100"} == {2.1}
    with pytest.raises(SystemExit):
        main(["capacity", f, "--purchase-price", "H100=lots"])


def test_rest_takes_purchase_prices_by_type(client):
    loc = client.post("/v1/scenarios/tiny/plans").headers["location"]
    wait_done(client, loc)
    rows = client.get(f"{loc}/capacity", params={"purchase_prices": "H100=2.5"}).json()
    by = {(r["pool"], r["period"]): r for r in rows}
    assert by[("h100", "P1")]["purchase_price_per_gpu_hour"] == 2.5
    assert by[("h100", "P1")]["purchase_price_source"] == "input"
    assert by[("b200", "P1")]["purchase_price_source"] == "fixed_cost"  # not named: default
    both = client.get(
        f"{loc}/capacity", params={"purchase_prices": "H100=2.5", "purchase_price_per_gpu_hour": 9}
    ).json()
    assert {(r["pool"], r["purchase_price_per_gpu_hour"]) for r in both} == {
        ("h100", 2.5),
        ("b200", 9),
    }
    body = assert_problem(client.get(f"{loc}/capacity", params={"purchase_prices": "H10=1"}), 422)
    assert "H10" in body["detail"]
