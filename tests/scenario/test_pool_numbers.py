"""A pool's ``gpus`` (and ``rentable_gpus``) as one number, the same in every period, like
the other per-period fields (issue 26 item 14): validation, the plan, workbooks,
overrides and the REST schema."""

from __future__ import annotations

import pytest

from allocator import Scenario, solve
from allocator.errors import ScenarioError
from allocator.scenario.overrides import apply_overrides
from allocator.scenario.workbook import read_workbook, write_workbook


def _one_number(data: dict) -> dict:
    """tiny with the h100 pool's capacity (10 GPUs in both periods) as one number."""
    out = {**data, "pools": [dict(p) for p in data["pools"]]}
    assert out["pools"][0]["gpus"] == [10, 10]
    out["pools"][0]["gpus"] = 10
    return out


def test_one_number_is_every_period(tiny_dict):
    sc = Scenario.from_dict(_one_number(tiny_dict))
    assert sc.pools[0].gpus == [10, 10]
    assert solve(sc).objective == pytest.approx(solve(tiny_dict).objective, rel=1e-12)
    # the model validates the same way as from_dict
    assert Scenario.model_validate(_one_number(tiny_dict)).pools[0].gpus == [10, 10]


def test_rentable_gpus_takes_one_number(tiny_dict):
    data = _one_number(tiny_dict)
    data["pools"][0] |= {"rentable_gpus": 3, "rental_price_per_gpu_hour": 1.0}
    assert Scenario.from_dict(data).pools[0].rentable_gpus == [3, 3]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "greater than or equal to 0"),
        (True, "valid"),
        ("10", "valid"),
        (1e13, r"at most 1,000,000,000,000"),
    ],
)
def test_a_bad_number_is_named(tiny_dict, value, message):
    data = _one_number(tiny_dict)
    data["pools"][0]["gpus"] = value
    with pytest.raises(ScenarioError, match=message) as exc:
        Scenario.from_dict(data)
    assert "pools[0] (h100).gpus" in str(exc.value)


def test_workbook_and_overrides(tiny_dict, tmp_path):
    data = _one_number(tiny_dict)
    path = tmp_path / "s.xlsx"
    write_workbook(data, path)  # the raw data, one number and all
    assert Scenario.from_dict(read_workbook(path)).pools[0].gpus == [10, 10]
    sc = apply_overrides(Scenario.from_dict(data), {"capacity_change": {"h100": -2}})
    assert sc.pools[0].gpus == [8, 8]


def test_the_rest_schema_says_one_number_or_a_list():
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app()) as client:
        schema = client.get("/openapi.json").json()
    gpus = schema["components"]["schemas"]["Pool"]["properties"]["gpus"]
    assert {s["type"] for s in gpus["anyOf"]} == {"array", "number"}
