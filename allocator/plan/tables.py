"""Plan: what the solve means in the domain. ``Plan.from_solution`` (its steps in
readout.py) is the only place raw solver values become named allocations, money lines and
shadow prices.

Conventions (stated once, here and in the README):

* Per-period lines (allocations, segment and pool results) are **nominal**: money of
  that period. Totals and ``by_kind`` money are **present values** at the scenario's
  discount rate, and so is ``objective``.
* ``shadow_price_per_gpu_hour`` of a pool and period is the opportunity cost of a GPU-hour
  there in that period's money: how much the objective would rise, per GPU-hour, if the
  pool held a little more capacity (>= 0; 0 where GPUs sit idle).
  ``shadow_price_pv_per_gpu_hour`` is the same in present value (d objective / d GPU-hour).
* A binding constraint's ``dual`` is d objective / d right-hand side in the
  maximisation sense, in present value per unit of the constraint (GPUs over the period,
  or work units): positive where loosening helps, negative for a ``>=`` floor that costs.
* With pools allocated in whole units (a MILP) the duals are those of the LP with the
  whole-unit allocations fixed at the plan's values (``solver.duals_from ==
  "fixed_milp"``): what capacity is worth with those allocations held as they are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.plan.readout import read_out
from allocator.plan.rows import (
    ZERO,
    Allocation,
    Binding,
    KindResult,
    PoolResult,
    ReservationResult,
    SegmentResult,
    SolverInfo,
    Totals,
)
from allocator.scenario import Scenario
from allocator.solvers.base import Solution

__all__ = [
    "ZERO",
    "Allocation",
    "Binding",
    "KindResult",
    "Plan",
    "PoolResult",
    "ReservationResult",
    "SegmentResult",
    "SolverInfo",
    "Totals",
]


@dataclass
class Plan:
    scenario: str
    currency: str
    status: Status
    message: str
    periods: list[str]
    totals: Totals
    by_kind: dict[str, KindResult]
    allocations: list[Allocation]
    segments: list[SegmentResult]
    pools: list[PoolResult]
    binding: list[Binding]
    solver: SolverInfo
    has_duals: bool
    max_violation: float
    violations: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    reservations: list[ReservationResult] = field(default_factory=list)

    # ------------------------------------------------------------------ shortcuts
    @property
    def objective(self) -> float:
        return self.totals.objective

    @property
    def gross_margin(self) -> float:
        return self.totals.gross_margin

    @property
    def ltv(self) -> float:
        return self.totals.ltv

    @property
    def pool_prices(self) -> dict[str, dict[str, float | None]]:
        """{pool: {period: shadow price of a GPU-hour (nominal)}}."""
        out: dict[str, dict[str, float | None]] = {}
        for r in self.pools:
            out.setdefault(r.pool, {})[r.period] = r.shadow_price_per_gpu_hour
        return out

    def __repr__(self) -> str:
        return (
            f"Plan({self.scenario!r}, {self.status.value}, objective={self.objective:,.0f} "
            f"{self.currency}, gross_margin={self.gross_margin:,.0f}, "
            f"allocations={len(self.allocations)}, max_violation={self.max_violation:.1e})"
        )

    # ----------------------------------------------------------------- notebooks
    def _repr_html_(self) -> str:
        from allocator.plan.charts import plan_html

        return plan_html(self)

    def plot(self, chart: str = "allocation", by: str = "kind") -> Any:
        """A plotly Figure of the plan: ``allocation`` (by kind, pool or region),
        ``prices``, ``utilisation`` or ``margins``. Needs ``allocator[plot]``."""
        from allocator.plan.charts import plot

        return plot(self, chart, by)

    # ------------------------------------------------------------------- exports
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; keys are stable (documented in the README)."""
        return {
            "scenario": self.scenario,
            "currency": self.currency,
            "status": self.status.value,
            "message": self.message,
            "periods": list(self.periods),
            "totals": asdict(self.totals),
            "by_kind": {k: asdict(v) for k, v in self.by_kind.items()},
            "allocations": [asdict(a) for a in self.allocations],
            "segments": [asdict(s) for s in self.segments],
            "pools": [asdict(p) for p in self.pools],
            "binding": [
                {"constraint": b.constraint, "key": b.key, "bound": b.bound, "dual": b.dual}
                for b in self.binding
            ],
            "solver": asdict(self.solver),
            "has_duals": self.has_duals,
            "max_violation": self.max_violation,
            "violations": dict(self.violations),
            "warnings": list(self.warnings),
            "reservations": [asdict(r) for r in self.reservations],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_frames(self) -> dict[str, Any]:
        """pandas DataFrames of allocations, segments, pools, binding and by_kind.

        Needs pandas (``pip install 'allocator[frames]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Plan.to_frames() needs pandas: pip install 'allocator[frames]'"
            ) from None
        d = self.to_dict()
        binding = [
            {"constraint": b["constraint"], **b["key"], "bound": b["bound"], "dual": b["dual"]}
            for b in d["binding"]
        ]
        kinds = [
            {"kind": k, **{f: v for f, v in r.items() if f != "kind" and not isinstance(v, list)}}
            for k, r in d["by_kind"].items()
        ]
        return {
            "allocations": pd.DataFrame(
                d["allocations"], columns=list(Allocation.__dataclass_fields__)
            ),
            "segments": pd.DataFrame(
                d["segments"], columns=list(SegmentResult.__dataclass_fields__)
            ),
            "pools": pd.DataFrame(d["pools"], columns=list(PoolResult.__dataclass_fields__)),
            "reservations": pd.DataFrame(
                d["reservations"], columns=list(ReservationResult.__dataclass_fields__)
            ),
            "binding": pd.DataFrame(binding),
            "by_kind": pd.DataFrame(kinds),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """The plan back from ``to_dict()`` data (a stored or downloaded plan)."""

        def rows(kind: Any, items: list[dict[str, Any]]) -> list[Any]:
            names = kind.__dataclass_fields__
            return [kind(**{k: v for k, v in item.items() if k in names}) for item in items]

        return cls(
            scenario=d["scenario"],
            currency=d["currency"],
            status=Status(d["status"]),
            message=d["message"],
            periods=list(d["periods"]),
            totals=Totals(**d["totals"]),
            by_kind={k: KindResult(**v) for k, v in d["by_kind"].items()},
            allocations=rows(Allocation, d["allocations"]),
            segments=rows(SegmentResult, d["segments"]),
            pools=rows(PoolResult, d["pools"]),
            binding=rows(Binding, d["binding"]),
            solver=rows(SolverInfo, [d["solver"]])[0],
            has_duals=d["has_duals"],
            max_violation=d["max_violation"],
            violations=dict(d["violations"]),
            warnings=list(d["warnings"]),
            reservations=rows(ReservationResult, d.get("reservations", [])),
        )

    # ------------------------------------------------------------------ building
    @classmethod
    def from_solution(
        cls,
        sc: Scenario,
        lp: LinearProgram,
        sol: Solution,
        build_time_s: float = 0.0,
        arrays: ScenarioArrays | None = None,
    ) -> Plan:
        """The plan of ``sol``, a solution of ``lp`` (built from ``sc``): the only place raw
        solver values become named tables and prices (the steps are in readout.py)."""
        return cls(**read_out(sc, lp, sol, build_time_s, arrays))
