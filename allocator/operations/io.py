"""Reading a command's inputs: a plan JSON (``allocator solve -o plan.json``, which names its
scenario but does not hold it: the scenario comes with it) or a scenario, solved here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from allocator.operations.quotas import QuotaError
from allocator.plan.tables import Plan
from allocator.scenario import Scenario


def plan_and_scenario(
    path: str | Path, scenario: str | Path | None = None
) -> tuple[Plan, Scenario]:
    """(plan, scenario) from ``path``: a plan JSON with ``scenario`` (its scenario file), or
    a scenario file (JSON or workbook), solved."""
    p = Path(path)
    data: Any = None
    if p.suffix.lower() == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "allocations" in data:
        if scenario is None:
            raise QuotaError(
                f"{p}: a plan JSON names its scenario ({data.get('scenario')!r}) but does not "
                "hold it: give the scenario file with --scenario"
            )
        sc = Scenario.from_file(scenario)
        plan = Plan.from_dict(data)
        if plan.scenario != sc.name:
            raise QuotaError(f"{p}: the plan is of scenario {plan.scenario!r}, not {sc.name!r}")
        return plan, sc
    from allocator.engine import solve

    sc = Scenario.from_file(p) if data is None else Scenario.from_dict(data)
    return solve(sc), sc


def write_files(files: dict[str, str], out: str | Path) -> list[Path]:
    """Write {relative name: text} under ``out``; the paths written."""
    root = Path(out)
    written = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
