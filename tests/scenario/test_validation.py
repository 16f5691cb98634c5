"""Every validation error names its field path and reason: in the library and the CLI."""

from __future__ import annotations

import json
import math
import re

import pytest

from allocator import Scenario, ScenarioError, validate_scenario
from allocator.cli import main
from tests.conftest import edit


def _unnamed(text: str) -> str:
    """The printed issues without the ids shown next to item indexes."""
    return re.sub(r"(\]) \([^)]*\)", r"\1", text)


def break_demand_nan(d):
    d["segments"][1]["demand"][1] = math.nan


def break_demand_inf(d):
    d["pools"][0]["variable_cost_per_gpu_hour"] = math.inf


def break_negative(d):
    d["segments"][0]["demand"][0] = -5


def break_length(d):
    d["pools"][1]["gpus"] = [5, 10, 15]


def break_duplicate(d):
    d["segments"][1]["id"] = "chat"


def break_unknown_type(d):
    d["segments"][0]["throughput"]["TPU-v9"] = 4.0


def break_unservable(d):
    d["segments"][1]["regions"] = ["east"]
    d["pools"][0]["region"] = "west"
    d["pools"][1]["region"] = "west"


def break_contract(d):
    d["segments"][1]["contract_min"] = [0, 3001]


def break_share(d):
    d["policy"] = {"rnd_min_share": 1.5}


def break_rental(d):
    d["pools"][0]["rentable_gpus"] = [1, 1]


def break_huge_gpus(d):
    d["pools"][0]["gpus"][0] = 1e308


def break_product(d):
    d["segments"][0]["throughput"]["H100"] = 1e12  # x 100 hours: 1e14 ok; x 10 000: too big
    d["periods"][1]["hours"] = 10_000


def break_bool_number(d):
    d["pools"][1]["gpus"][0] = True


def break_string_number(d):
    d["segments"][0]["revenue_per_unit"] = "0.5"


def break_int_bool(d):
    d["segments"][1]["contract_hard"] = 1


CASES = [
    (break_huge_gpus, "pools[0].gpus[0]", "at most 1,000,000,000,000"),
    (break_product, "segments[0].throughput.H100", "the limit is 1 × 10^15"),
    (break_bool_number, "pools[1].gpus[0]", "must be a number"),
    (break_string_number, "segments[0].revenue_per_unit", "must be a number"),
    (break_int_bool, "segments[1].contract_hard", "must be true or false"),
    (break_demand_nan, "segments[1].demand[1]", "finite"),
    (break_demand_inf, "pools[0].variable_cost_per_gpu_hour", "finite"),
    (break_negative, "segments[0].demand[0]", "greater than or equal to 0"),
    (break_length, "pools[1].gpus", "has 3 entries, expected 2"),
    (break_duplicate, "segments[1].id", "duplicate id 'chat'"),
    (break_unknown_type, "segments[0].throughput.TPU-v9", "unknown accelerator type"),
    (break_unservable, "segments[1].regions[0]", "unknown region 'east'"),
    (break_contract, "segments[1].contract_min[1]", "above demand 3,000"),
    (break_share, "policy.rnd_min_share", "less than or equal to 1"),
    (break_rental, "pools[0].rental_price_per_gpu_hour", "required"),
]


@pytest.mark.parametrize(("breaker", "path", "reason"), CASES, ids=[c[0].__name__ for c in CASES])
def test_library_names_field_and_reason(tiny_dict, breaker, path, reason):
    breaker(tiny_dict)
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(tiny_dict)
    assert any(i.path == path and reason in i.message for i in info.value.issues), info.value.issues
    assert path in _unnamed(str(info.value))


@pytest.mark.parametrize(("breaker", "path", "reason"), CASES, ids=[c[0].__name__ for c in CASES])
def test_cli_validate_prints_field_and_exits_1(tiny_dict, tmp_path, capsys, breaker, path, reason):
    breaker(tiny_dict)
    f = tmp_path / "bad.json"
    # NaN/inf are not JSON: write them the way Python (and many tools) do
    f.write_text(json.dumps(tiny_dict))
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: " in _unnamed(err) and reason in err


def test_ints_are_numbers_and_examples_satisfy_the_limits(tiny_dict):
    tiny_dict["pools"][0]["variable_cost_per_gpu_hour"] = 1  # an int is a number
    tiny_dict["pools"][0]["gpus"] = [10**12, 0]  # the limit itself is allowed
    assert validate_scenario(tiny_dict)[1] == []


def test_unservable_segment_is_named(tiny_dict):
    d = edit(tiny_dict)
    d["segments"][1]["throughput"] = {"B200": 2.0}
    d["pools"][1]["region"] = "west"
    d["segments"][1]["regions"] = ["east"]
    _, issues = validate_scenario(d)
    assert any(
        i.path == "segments[1]" and "cannot be served by any pool" in i.message for i in issues
    )


def test_every_problem_is_reported_at_once(tiny_dict):
    for breaker, _, _ in CASES:
        if breaker not in (break_unservable, break_duplicate):
            breaker(tiny_dict)
    _, issues = validate_scenario(tiny_dict)
    paths = {i.path for i in issues}
    assert {
        "segments[1].demand[1]",
        "segments[0].demand[0]",
        "pools[1].gpus",
        "pools[0].variable_cost_per_gpu_hour",
        "policy.rnd_min_share",
    } <= paths


def test_missing_and_malformed_top_level(tmp_path, capsys):
    _, issues = validate_scenario({"periods": [], "pools": "many"})
    paths = {i.path: i.message for i in issues}
    assert paths["periods"] == "must have at least one entry"
    assert paths["pools"] == "must be a list"
    assert paths["segments"] == "Field required"
    assert validate_scenario([1, 2])[1][0].message.startswith("a scenario must be a JSON object")
    f = tmp_path / "broken.json"
    f.write_text("{ not json")
    assert main(["validate", str(f)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_unknown_field_is_rejected_not_ignored(tiny_dict):
    tiny_dict["pools"][0]["gpu"] = [1, 2]  # a typo of "gpus" must not pass silently
    _, issues = validate_scenario(tiny_dict)
    assert any(
        i.path == "pools[0].gpu" and "unknown field 'gpu'; did you mean 'gpus'?" in i.message
        for i in issues
    )


def test_pydantic_path_also_validates(tiny_dict):
    """Scenario.model_validate (used by the REST layer) enforces the cross checks too."""
    break_contract(tiny_dict)
    with pytest.raises(ValueError, match=r"contract_min\[1\]"):
        Scenario.model_validate(tiny_dict)


def test_valid_files_pass(capsys, example_path):
    assert main(["validate", str(example_path)]) == 0
    assert "ok" in capsys.readouterr().out
