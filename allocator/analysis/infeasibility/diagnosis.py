"""The diagnosis: whether the scenario is feasible, what conflicts and the smallest
relaxation, in one message; and the relaxation written into a copy of the scenario."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from allocator.analysis.infeasibility.conflicts import _find_conflicts
from allocator.analysis.infeasibility.domain import _Domain
from allocator.analysis.infeasibility.relaxation import _Elastic, _smallest_relaxation
from allocator.analysis.infeasibility.results import (
    REQUIREMENTS,
    Conflict,
    ConflictGroup,
    Diagnosis,
    Relaxation,
)
from allocator.analysis.infeasibility.system import _is_feasible, _system
from allocator.analysis.infeasibility.wording import _join, _plural
from allocator.lp.build import build_lp
from allocator.scenario import Scenario, per_period


def _as_scenario(scenario: Scenario | Mapping[str, Any] | str | Path) -> Scenario:
    """The scenario itself, or one read from a mapping or a file."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(dict(scenario))
    return Scenario.from_file(scenario)


def diagnose(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    *,
    order: Sequence[str] = REQUIREMENTS,
    max_conflicts: int = 5,
) -> Diagnosis:
    """Why ``scenario`` is infeasible, in domain words, and the smallest relaxation.

    ``order`` lists the requirements a relaxation may change, most protected first
    (default: ``contract_min``, ``rnd_min_share``, ``kind_floors``, ``max_change_share``);
    one left out is never changed. ``max_conflicts`` bounds the number of minimal
    conflicting sets reported. A feasible scenario gives ``feasible=True`` and nothing to
    change.
    """
    _check_arguments(order, max_conflicts)
    sc = _as_scenario(scenario)
    lp = build_lp(sc)
    whole_units = bool(getattr(lp, "is_mip", False))
    sys_ = _system(lp)  # the LP's rows and bounds; integrality is not passed on
    order = tuple(order)
    if _is_feasible(sys_):
        return _feasible(sc, whole_units, order)

    dom = _Domain(sc, lp)
    conflicts, groups, iis_failed = _find_conflicts(dom, sys_, max_conflicts)
    el, x, relaxation = _smallest_relaxation(dom, sys_, order)

    lines = [f"Scenario {sc.name!r} is infeasible: its hard requirements conflict."]
    if whole_units:
        lines.append("(Diagnosed with fractional GPUs: allocation_unit_gpus is left out.)")
    if iis_failed:
        lines.append("HiGHS could not isolate a minimal conflicting set.")
    periods = list(sc.period_labels)
    lines.extend(_conflict_lines(conflicts, groups, periods))
    lines.extend(_relaxation_lines(order, el, x, relaxation, periods))
    return Diagnosis(
        scenario=sc.name,
        feasible=False,
        conflicts=conflicts,
        groups=groups,
        relaxation=relaxation,
        relaxable=x is not None,
        order=order,
        message="\n".join(lines),
    )


def _check_arguments(order: Sequence[str], max_conflicts: int) -> None:
    """``order`` lists distinct known requirements and ``max_conflicts`` is at least 1."""
    unknown = [r for r in order if r not in REQUIREMENTS]
    if unknown or len(set(order)) != len(order):
        raise ValueError(
            f"order must list distinct requirements among {', '.join(REQUIREMENTS)}; "
            f"got {list(order)}"
        )
    if max_conflicts < 1:
        raise ValueError(f"max_conflicts must be at least 1, got {max_conflicts}")


def _feasible(sc: Scenario, whole_units: bool, order: tuple[str, ...]) -> Diagnosis:
    """The diagnosis of a scenario whose hard requirements can all be met together; with
    whole allocation units, it names them as what may still make it infeasible."""
    msg = f"Scenario {sc.name!r}: the hard requirements can all be met together."
    if whole_units:
        units = [p.id for p in sc.pools if getattr(p, "allocation_unit_gpus", None)]
        msg += (
            " This holds with fractional GPUs; if solve() reports the scenario infeasible, "
            f"the whole allocation units of {_plural('pool', len(units))} {_join(units)} "
            "(allocation_unit_gpus) are what makes the requirements unreachable."
        )
    return Diagnosis(sc.name, True, order=order, message=msg)


_PERIOD = "\x00"  # stands for the period in a text compared across periods


def _by_period(
    items: list[tuple[set[str], list[str]]], periods: list[str]
) -> list[tuple[list[str], list[str]]]:
    """Items (the periods their keys name, their texts) merged where they say the same
    but for the one period they are about: the same conflict in P1, P2 and P3 is told
    once, "in each of P1, P2 and P3". Items about several periods, or none, stay as they
    are."""
    merged: dict[object, tuple[list[str], list[str]]] = {}
    for n, (about, texts) in enumerate(items):
        if len(about) == 1:
            (p,) = about
            pattern = re.compile(rf"(?<![\w.-]){re.escape(p)}(?![\w-])")
            generic = [pattern.sub(_PERIOD, t) for t in texts]
            key: object = tuple(generic)
            if key in merged:
                merged[key][0].append(p)
                continue
            merged[key] = ([p], generic)
        else:
            merged[("item", n)] = ([], texts)
    out = []
    for found, texts in merged.values():
        found.sort(key=lambda p: periods.index(p) if p in periods else len(periods))
        where = _join(found) if len(found) < 2 else "each of " + _join(found)
        out.append((found, [t.replace(_PERIOD, where) for t in texts]))
    return out


def _periods_of(items: Sequence[Conflict | Relaxation]) -> set[str]:
    return {c.key["period"] for c in items if c.key.get("period")}


def _conflict_lines(
    conflicts: list[Conflict], groups: list[ConflictGroup], periods: list[str] | None = None
) -> list[str]:
    """The message's conflicts: each group's headline, then its constraints; a conflict
    that repeats in several periods (the same requirements and limits, the same numbers)
    is told once, naming its periods."""
    items = []
    for grp in groups:
        members = [c for c in conflicts if c.group == grp.group]
        items.append((_periods_of(members), [grp.sentence, *(c.sentence for c in members)]))
    merged = _by_period(items, periods or [])
    lines: list[str] = []
    for n, (_, texts) in enumerate(merged, start=1):
        prefix = f"Conflict {n}: " if len(merged) > 1 else ""
        lines.append(prefix + texts[0])
        lines.extend("  - " + m for m in texts[1:])
    return lines


def _relaxation_lines(
    order: tuple[str, ...],
    el: _Elastic,
    x: np.ndarray | None,
    relaxation: list[Relaxation],
    periods: list[str] | None = None,
) -> list[str]:
    """The message's relaxation: the changes, or why there are none."""
    if x is None:
        return [
            f"No change of {_join(list(order))} alone makes it feasible."
            if order
            else "No requirement may change (order is empty), so nothing is relaxed."
        ]
    tried = [r for r in reversed(order) if el.cols.get(r) is not None]
    how = f" (changing {' before '.join(tried)})" if len(tried) > 1 else ""
    changes = _by_period([(_periods_of([r]), [r.sentence]) for r in relaxation], periods or [])
    lines = [f"Smallest relaxation{how}:"]
    lines += ["  - " + sentence for _, (sentence,) in changes]
    return lines


def apply_relaxation(
    scenario: Scenario | Mapping[str, Any] | str | Path, diagnosis: Diagnosis
) -> Scenario:
    """A copy of ``scenario`` with ``diagnosis.relaxation`` applied: hard contract
    minimums, kind floors, segment GPU floors, GPU-hour budget minimums and the R&D share
    lowered, the stability share raised. A kind floor or GPU floor given as one number
    becomes a list (one per period) when a period changes."""
    sc = _as_scenario(scenario)
    data = sc.to_dict()
    T = len(sc.periods)
    labels = sc.period_labels
    seg_ix = {s.id: i for i, s in enumerate(sc.segments)}
    policy = data.setdefault("policy", {})
    for r in diagnosis.relaxation:
        if r.requirement == "contract_min":
            sid, per = r.key["segment"], r.key["period"]
            if sid not in seg_ix or per not in labels:
                raise ValueError(
                    f"relaxation {r.path} names a segment or period not in {sc.name!r}"
                )
            seg = data["segments"][seg_ix[sid]]
            if not seg.get("contract_min"):
                raise ValueError(f"segment {sid!r} of {sc.name!r} has no contract_min to lower")
            seg["contract_min"][labels.index(per)] = max(0.0, r.relaxed)
        elif r.requirement == "rnd_min_share":
            policy["rnd_min_share"] = max(0.0, r.relaxed)
        elif r.requirement == "kind_floors":
            kind, per = r.key["kind"], r.key["period"]
            floors = policy.get("kind_floors", {})
            if kind not in floors or per not in labels:
                raise ValueError(f"relaxation {r.path} names a floor or period not in {sc.name!r}")
            values = list(per_period(floors[kind], T))
            values[labels.index(per)] = max(0.0, r.relaxed)
            floors[kind] = values
        elif r.requirement == "max_change_share":
            policy["max_change_share"] = min(1.0, r.relaxed)
        elif r.requirement == "gpu_limits":
            sid, per = r.key["segment"], r.key["period"]
            acc = r.key.get("accelerator")
            seg = data["segments"][seg_ix[sid]] if sid in seg_ix else {}
            lims = [lim for lim in seg.get("gpu_limits") or [] if lim.get("accelerator") == acc]
            if not lims or lims[0].get("min_gpus") is None or per not in labels:
                raise ValueError(f"relaxation {r.path} names a GPU floor not in {sc.name!r}")
            values = list(per_period(lims[0]["min_gpus"], T))
            values[labels.index(per)] = max(0.0, r.relaxed)
            lims[0]["min_gpus"] = values
        elif r.requirement == "gpu_hour_budgets":
            found = [b for b in policy.get("gpu_hour_budgets") or [] if b["id"] == r.key["budget"]]
            if not found or found[0].get("min_gpu_hours") is None:
                raise ValueError(f"relaxation {r.path} names a budget minimum not in {sc.name!r}")
            found[0]["min_gpu_hours"] = max(0.0, r.relaxed)
        else:
            raise ValueError(f"unknown requirement {r.requirement!r} in the relaxation")
    return Scenario.from_dict(data)
