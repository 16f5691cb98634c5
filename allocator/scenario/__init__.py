"""Stage 1, the scenario: the pydantic models (model.py), how a scenario is read
(load.py), what-if overrides applied to a copy (overrides.py) and synthetic fleets
(generate.py). Imports nothing of allocator but errors."""

from allocator.scenario.load import as_scenario
from allocator.scenario.model import (
    FULL_MODE,
    ID_PATTERN,
    MAX_ALLOCATION_UNIT_GPUS,
    Expansion,
    GpuHourBudget,
    GpuLimit,
    Kind,
    Mode,
    Ownership,
    Period,
    Policy,
    Pool,
    Reservation,
    Scenario,
    ScenarioHeader,
    Segment,
    cross_check,
    discount_factors,
    per_period,
    validate_scenario,
)

__all__ = [
    "FULL_MODE",
    "ID_PATTERN",
    "MAX_ALLOCATION_UNIT_GPUS",
    "Expansion",
    "GpuHourBudget",
    "GpuLimit",
    "Kind",
    "Mode",
    "Ownership",
    "Period",
    "Policy",
    "Pool",
    "Reservation",
    "Scenario",
    "ScenarioHeader",
    "Segment",
    "as_scenario",
    "cross_check",
    "discount_factors",
    "per_period",
    "validate_scenario",
]
