from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from allocator import Scenario

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLES = sorted(DATA.glob("*.json"))


@pytest.fixture
def tiny_dict() -> dict:
    return json.loads((DATA / "tiny.json").read_text())


@pytest.fixture
def tiny_scenario() -> Scenario:
    return Scenario.from_file(DATA / "tiny.json")


@pytest.fixture(params=EXAMPLES, ids=[p.stem for p in EXAMPLES])
def example_path(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture
def example_scenario(example_path: Path) -> Scenario:
    return Scenario.from_file(example_path)


def edit(data: dict, **changes: object) -> dict:
    """A deep copy of scenario data with top-level keys replaced."""
    out = copy.deepcopy(data)
    out.update(changes)
    return out
