"""Plan: what the solve means in the domain. ``Plan.from_solution`` (its steps in
readout.py) is the only place raw solver values become named allocations, money lines and
shadow prices.

Conventions (stated once, here and in the README):

* Per-period lines (allocations, segment and pool results) are **nominal**: money of
  that period. Totals and ``by_kind`` money are **present values** at the scenario's
  discount rate, and so is ``objective``.
* ``shadow_price_per_gpu_hour`` of a pool and period is the opportunity cost of a GPU-hour
  there in that period's money: how much the objective would rise, per GPU-hour, if the
  pool held a little more capacity (>= 0; 0 where usable GPUs sit idle: ``idle`` > 0).
  ``shadow_price_pv_per_gpu_hour`` is the same in present value (d objective / d GPU-hour).
* A binding constraint's ``dual`` is d objective / d right-hand side in the
  maximisation sense, in present value per unit of the constraint (GPUs over the period,
  or work units): positive where loosening helps, negative for a ``>=`` floor that costs.
* With pools allocated in whole units (a MILP) the duals are those of the LP with the
  whole-unit allocations fixed at the plan's values (``solver.duals_from ==
  "fixed_milp"``): what capacity is worth with those allocations held as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.arrays import ScenarioArrays
from allocator.plan import jsonio
from allocator.plan.columns import Table
from allocator.plan.readout import ReadOutCache, read_out
from allocator.plan.rows import (
    ZERO,
    Allocation,
    Binding,
    KindResult,
    Move,
    PoolResult,
    PowerResult,
    ReservationResult,
    SegmentResult,
    SiteResult,
    SolverInfo,
    SubscriptionResult,
    TierResult,
    Totals,
)
from allocator.scenario import Scenario
from allocator.solvers.base import Solution

__all__ = [
    "ZERO",
    "Allocation",
    "Binding",
    "KindResult",
    "Move",
    "Plan",
    "PoolResult",
    "ReservationResult",
    "SegmentResult",
    "SolverInfo",
    "TierResult",
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
    allocations: Table[Allocation]
    segments: Table[SegmentResult]
    pools: Table[PoolResult]
    binding: Table[Binding]
    solver: SolverInfo
    has_duals: bool
    max_violation: float
    violations: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    reservations: Table[ReservationResult] = field(
        default_factory=lambda: Table.from_rows(ReservationResult, [])
    )
    tiers: Table[TierResult] = field(default_factory=lambda: Table.from_rows(TierResult, []))
    subscriptions: Table[SubscriptionResult] = field(
        default_factory=lambda: Table.from_rows(SubscriptionResult, [])
    )
    moves: Table[Move] = field(default_factory=lambda: Table.from_rows(Move, []))
    # sites and power (issue 27): empty, and left out of to_dict(), without sites
    power: Table[PowerResult] = field(default_factory=lambda: Table.from_rows(PowerResult, []))
    sites: Table[SiteResult] = field(default_factory=lambda: Table.from_rows(SiteResult, []))

    @property
    def has_sites(self) -> bool:
        """The scenario had sites: the plan carries power, sites and the energy cost."""
        return self.totals.energy_cost is not None

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
        ``prices``, ``utilisation`` or ``margins``. Uses plotly (a core dependency)."""
        from allocator.plan.charts import plot

        return plot(self, chart, by)

    # ------------------------------------------------------------------- exports
    def tables(self) -> dict[str, Table[Any]]:
        """The row tables by their JSON key."""
        return {
            "allocations": self.allocations,
            "segments": self.segments,
            "pools": self.pools,
            "binding": self.binding,
            "reservations": self.reservations,
            "tiers": self.tiers,
            "subscriptions": self.subscriptions,
            "moves": self.moves,
            **({"power": self.power, "sites": self.sites} if self.has_sites else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; keys are stable (documented in the README). The tables'
        rows are made from their columns, with no dataclass per row."""
        totals = asdict(self.totals)
        for key in ("energy_cost", "salvage"):
            if totals[key] is None:  # no sites: the keys of plans before issue 27
                del totals[key]
        out = {
            "scenario": self.scenario,
            "currency": self.currency,
            "status": self.status.value,
            "message": self.message,
            "periods": list(self.periods),
            "totals": totals,
            "by_kind": {k: asdict(v) for k, v in self.by_kind.items()},
            "allocations": self.allocations.records(),
            "segments": self.segments.records(),
            "pools": self.pools.records(),
            "binding": self.binding.records(),
            "solver": asdict(self.solver),
            "has_duals": self.has_duals,
            "max_violation": self.max_violation,
            "violations": dict(self.violations),
            "warnings": list(self.warnings),
            "reservations": self.reservations.records(),
            "tiers": self.tiers.records(),
            "subscriptions": self.subscriptions.records(),
            "moves": self.moves.records(),
        }
        if self.has_sites:
            out["power"] = self.power.records()
            out["sites"] = self.sites.records()
        return out

    def check_finite(self) -> None:
        """Raise ValueError naming the first NaN or infinite number (JSON has none)."""
        for name, table in self.tables().items():
            bad = table.non_finite()
            if bad is not None:
                raise ValueError(f"plan {name}.{bad} holds a number that is not finite")
        small = {"totals": asdict(self.totals), "max_violation": self.max_violation}
        small["by_kind"] = {k: asdict(v) for k, v in self.by_kind.items()}
        jsonio.assert_finite(small, "plan")

    def to_json(self, indent: int | None = None) -> str:
        """The plan as JSON text: compact, or indented by ``indent`` spaces."""
        return self.to_json_bytes(indent).decode()

    def to_json_bytes(self, indent: int | None = None) -> bytes:
        """The plan as UTF-8 JSON (orjson; refuses NaN and infinities)."""
        self.check_finite()
        return jsonio.dumps(self.to_dict(), indent=indent, checked=True)

    def to_arrow(self) -> dict[str, Any]:
        """pyarrow Tables of allocations, segments, pools, reservations and binding
        (numbers zero-copy, text as dictionary arrays; binding's key as a JSON string).
        Needs pyarrow (``pip install 'allocator[arrow]'``)."""
        try:
            import pyarrow as pa
        except ImportError:
            raise ImportError(
                "Plan.to_arrow() needs pyarrow: pip install 'allocator[arrow]'"
            ) from None
        out = {k: t.to_arrow() for k, t in self.tables().items() if k != "binding"}
        b = self.binding
        out["binding"] = pa.table(
            {
                "constraint": pa.array(b.columns["constraint"].tolist()),  # type: ignore[union-attr]
                "key": pa.array([jsonio.dumps(k).decode() for k in _keys(b)], pa.string()),
                "bound": pa.array(b.columns["bound"].tolist()),  # type: ignore[union-attr]
                "dual": pa.array(
                    b.columns["dual"] if b.columns["dual"] is not None else [None] * len(b),
                    pa.float64(),
                ),
            }
        )
        return out

    def to_frames(self) -> dict[str, Any]:
        """pandas DataFrames of allocations, segments, pools, reservations, binding and
        by_kind: number columns share the plan's arrays, text columns are categorical.

        Needs pandas (``pip install 'allocator[frames]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Plan.to_frames() needs pandas: pip install 'allocator[frames]'"
            ) from None
        frames = {k: t.to_frame() for k, t in self.tables().items() if k != "binding"}
        b = self.binding
        frames["binding"] = pd.DataFrame(
            [{"constraint": r.constraint, **r.key, "bound": r.bound, "dual": r.dual} for r in b]
        )
        frames["by_kind"] = pd.DataFrame(
            [
                {
                    "kind": k,
                    **{
                        f: v
                        for f, v in asdict(r).items()
                        if f != "kind" and not isinstance(v, list)
                    },
                }
                for k, r in self.by_kind.items()
            ]
        )
        return frames

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        """The plan back from ``to_dict()`` data (a stored or downloaded plan)."""

        def known(kind: Any, item: dict[str, Any]) -> dict[str, Any]:
            names = kind.__dataclass_fields__
            return {k: v for k, v in item.items() if k in names}

        return cls(
            scenario=d["scenario"],
            currency=d["currency"],
            status=Status(d["status"]),
            message=d["message"],
            periods=list(d["periods"]),
            totals=Totals(**d["totals"]),
            by_kind={k: KindResult(**v) for k, v in d["by_kind"].items()},
            allocations=Table.from_rows(Allocation, d["allocations"]),
            segments=Table.from_rows(SegmentResult, d["segments"]),
            pools=Table.from_rows(PoolResult, d["pools"]),
            binding=Table.from_rows(Binding, d["binding"]),
            solver=SolverInfo(**known(SolverInfo, d["solver"])),
            has_duals=d["has_duals"],
            max_violation=d["max_violation"],
            violations=dict(d["violations"]),
            warnings=list(d["warnings"]),
            reservations=Table.from_rows(ReservationResult, d.get("reservations", [])),
            tiers=Table.from_rows(TierResult, d.get("tiers", [])),
            subscriptions=Table.from_rows(SubscriptionResult, d.get("subscriptions", [])),
            moves=Table.from_rows(Move, d.get("moves", [])),
            power=Table.from_rows(PowerResult, d.get("power", [])),
            sites=Table.from_rows(SiteResult, d.get("sites", [])),
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
        cache: ReadOutCache | None = None,
    ) -> Plan:
        """The plan of ``sol``, a solution of ``lp`` (built from ``sc``): the only place raw
        solver values become named tables and prices (the steps are in readout.py). A
        ``cache`` of the previous read-out of the same model patches the periods it marks
        changed instead of reading every period out again."""
        return cls(**read_out(sc, lp, sol, build_time_s, arrays, cache))


def _keys(binding: Table[Binding]) -> list[dict[str, str]]:
    col = binding.columns["key"]
    if col is None:
        return []
    keys: list[dict[str, str]] = list(col.tolist())  # type: ignore[arg-type]
    return keys


def _scalar_field(name: str, value: Any) -> bool:
    return name != "kind" and not isinstance(value, list)
