"""A scenario from whatever the caller holds: a Scenario, a dict, or a file path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from allocator.scenario.model import Scenario


def as_scenario(scenario: Scenario | Mapping[str, Any] | str | Path) -> Scenario:
    """``scenario`` itself, validated from a dict, or read from a file (JSON, or an Excel
    workbook by its suffix: .xlsx)."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(dict(scenario))
    return Scenario.from_file(scenario)
