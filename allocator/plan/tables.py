"""Plan: what the solve means in the domain. ``Plan.from_solution`` is the only place raw
solver values become named allocations, money lines and shadow prices.

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

import numpy as np

from allocator.errors import Status
from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays
from allocator.lp.check import violations
from allocator.scenario import Scenario
from allocator.solvers.base import Solution

ZERO = 1e-9  # allocations below this many GPUs are reported as none


@dataclass(frozen=True)
class Allocation:
    segment: str
    kind: str
    mode: str
    pool: str
    period: str
    gpus: float
    gpu_hours: float
    units: float


@dataclass(frozen=True)
class ReservationResult:
    """GPUs of a pool reserved for a segment (take-or-pay) in a period, nominal money."""

    segment: str
    kind: str
    pool: str
    period: str
    gpus: float  # GPUs reserved: dedicated to the customer, paid used or not
    gpu_hours: float
    revenue: float  # the fee: GPU-hours x price per GPU-hour


@dataclass(frozen=True)
class SegmentResult:
    segment: str
    kind: str
    period: str
    unit: str
    demand: float
    served: float
    unserved: float
    gpus: float
    revenue: float
    compute_cost: float
    shortfall_penalty: float
    gross_margin: float  # revenue - compute_cost - shortfall_penalty
    ltv: float
    churn_cost: float
    contract_min: float
    shortfall: float  # contract_min - served where positive


@dataclass(frozen=True)
class PoolResult:
    pool: str
    accelerator: str
    region: str
    period: str
    gpus: float  # own GPUs
    usable: float  # own GPUs less headroom
    rented: float
    used: float
    idle: float  # own GPUs not used (headroom included)
    utilisation: float  # used / (own GPUs + rented)
    variable_cost: float
    rental_cost: float
    fixed_cost: float
    shadow_price_per_gpu_hour: float | None
    shadow_price_pv_per_gpu_hour: float | None
    bought: float = 0.0  # GPUs bought into the pool so far (expansion mode), in use from then
    expansion_cost: float = 0.0  # their amortised capex in the period


@dataclass(frozen=True)
class Binding:
    constraint: str  # block name, e.g. "pool-capacity"
    key: dict[str, str]
    bound: str  # "upper" or "lower"
    dual: float | None

    @property
    def label(self) -> str:
        return f"{self.constraint}[{','.join(self.key.values())}]"


@dataclass(frozen=True)
class Totals:
    """Present values over the horizon."""

    revenue: float
    variable_cost: float
    rental_cost: float
    shortfall_penalty: float
    gross_margin: float  # revenue - variable_cost - rental_cost - shortfall_penalty
    fixed_cost: float
    margin_after_depreciation: float
    ltv: float
    ltv_weight: float
    churn_cost: float
    objective: float  # gross_margin + ltv_weight * ltv - churn_cost - expansion_cost
    expansion_cost: float = 0.0  # amortised capex of GPUs bought (expansion mode)
    reservation_revenue: float = 0.0  # fees of reserved GPUs (part of revenue)


@dataclass(frozen=True)
class KindResult:
    kind: str
    revenue: float  # present value
    compute_cost: float
    shortfall_penalty: float
    gross_margin: float
    ltv: float
    churn_cost: float
    revenue_by_period: list[float]  # nominal
    gpus_by_period: list[float]
    served_share_by_period: list[float]  # served / demand


@dataclass(frozen=True)
class SolverInfo:
    """How the plan was solved.

    For a MILP (a pool with ``allocation_unit_gpus``): ``integer_columns`` > 0, ``gap`` is
    the relative gap ``(bound - objective) / |objective|`` of the returned plan, ``bound``
    the best proven upper bound on the objective (the solver's MIP dual bound or the LP
    relaxation, whichever is lower), ``lp_relaxation_objective`` the optimum with fractional
    GPUs, and ``duals_from`` says where the shadow prices come from: ``"lp"`` (the LP
    itself), ``"fixed_milp"`` (the LP left when the whole-unit allocations are fixed at the
    plan's values: prices of the continuous decisions given those allocations) or
    ``"none"``.
    """

    solver: str
    algorithm: str
    raw_status: str
    time_s: float
    build_time_s: float
    iterations: int
    columns: int
    rows: int
    nonzeros: int
    backend: str = "highs"
    integer_columns: int = 0
    gap: float | None = None
    bound: float | None = None
    lp_relaxation_objective: float | None = None
    duals_from: str = "lp"


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
        if sol.x is None or not sol.has_plan:
            raise ValueError(f"solution has no plan (status {sol.status.value})")
        arr = arrays or ScenarioArrays.of(sc)
        cols = lp.columns
        P, T = arr.gpus.shape
        S = arr.demand.shape[0]
        periods = sc.period_labels
        seg_ids = [s.id for s in sc.segments]
        pool_ids = [p.id for p in sc.pools]
        w = sc.policy.ltv_weight
        df = arr.discount

        x = np.maximum(lp.x_gpus(sol.x), 0.0)  # GPUs, whatever the column units
        rented = np.zeros((P, T))
        rented[cols.r_pool, cols.r_period] = np.maximum(sol.x[cols.r_offset : cols.u_offset], 0.0)
        # expansion: GPUs bought per (pool, period), and the stock bought so far
        bought_in = np.zeros((P, T))
        if cols.n_e:
            e = np.maximum(sol.x[cols.e_offset : cols.e_offset + cols.n_e], 0.0)
            bought_in[cols.e_pool, cols.e_period] = e
        bought = np.cumsum(bought_in, axis=1)
        expand_cost = (
            bought * arr.hours[None, :] * arr.expand_cost[:, None]
            if arr.expand_cost is not None
            else np.zeros((P, T))
        )

        s, m, p, t = cols.x_segment, cols.x_mode, cols.x_pool, cols.x_period
        gpu_hours = x * arr.hours[t]
        units = x * cols.x_units_per_gpu
        rev = units * arr.revenue[s] * arr.mode_rev_share[m]
        ltv = units * arr.ltv[s] * arr.mode_ltv_share[m]
        vcost = gpu_hours * arr.var_cost[p]
        # reservations: k GPUs reserved for a customer (a fee every hour, dedicated to it)
        ks, kp, kt = cols.rsv_segment, cols.rsv_pool, cols.rsv_period
        k = np.maximum(sol.x[cols.rsv_offset : cols.rsv_offset + cols.n_rsv], 0.0)
        k_hours = k * arr.hours[kt]
        k_fee = np.zeros(cols.n_rsv)
        if cols.n_rsv:
            assert arr.res_price is not None
            k_fee = k_hours * arr.res_price[ks]
        k_vcost = k_hours * arr.var_cost[kp]

        def by_st(v: np.ndarray, kv: np.ndarray | None = None) -> np.ndarray:
            out = np.zeros((S, T))
            np.add.at(out, (s, t), v)
            if kv is not None and cols.n_rsv:
                np.add.at(out, (ks, kt), kv)
            return out

        def by_pt(v: np.ndarray, kv: np.ndarray | None = None) -> np.ndarray:
            out = np.zeros((P, T))
            np.add.at(out, (p, t), v)
            if kv is not None and cols.n_rsv:
                np.add.at(out, (kp, kt), kv)
            return out

        served, seg_rev, seg_ltv, seg_cost, seg_gpus = (
            by_st(units),
            by_st(rev, k_fee),
            by_st(ltv),
            by_st(vcost, k_vcost),
            by_st(x, k),
        )
        shortfall = np.maximum(arr.contract_min - served, 0.0)
        penalty = np.where(arr.contract_hard[:, None], 0.0, shortfall * arr.penalty[:, None])
        unserved = np.maximum(arr.demand - served, 0.0)
        churn = unserved * arr.churn[:, None]
        seg_margin = seg_rev - seg_cost - penalty

        used = by_pt(x, k)
        pool_vcost = by_pt(vcost, k_vcost)
        rental_cost = rented * arr.hours[None, :] * arr.rental_price[:, None]
        fixed = arr.gpus * arr.hours[None, :] * arr.fixed_cost[:, None]

        # shadow prices: d objective / d (GPUs in the period) -> per GPU-hour
        price_pv = price_nom = None
        has_duals = sol.row_dual is not None
        if has_duals:
            cap = lp.block("pool-capacity")
            assert cap is not None and sol.row_dual is not None
            dual = sol.row_dual[cap.start : cap.stop].reshape(P, T)
            price_pv = np.maximum(dual, 0.0) / arr.hours[None, :]
            price_nom = price_pv / df[None, :]

        def pv(a: np.ndarray) -> float:
            return float(np.sum(a * df))  # a is (.., T) nominal by period

        totals_rev = pv(seg_rev)
        totals_vcost = pv(pool_vcost)
        totals_rent = pv(rental_cost)
        totals_pen = pv(penalty)
        totals_ltv = pv(seg_ltv)
        totals_churn = pv(churn)
        gm = totals_rev - totals_vcost - totals_rent - totals_pen
        fixed_pv = pv(fixed)
        totals_expand = pv(expand_cost)
        totals = Totals(
            revenue=totals_rev,
            variable_cost=totals_vcost,
            rental_cost=totals_rent,
            shortfall_penalty=totals_pen,
            gross_margin=gm,
            fixed_cost=fixed_pv,
            margin_after_depreciation=gm - fixed_pv - totals_expand,
            ltv=totals_ltv,
            ltv_weight=w,
            churn_cost=totals_churn,
            objective=float(sol.objective)
            if sol.objective is not None
            else gm + w * totals_ltv - totals_churn - totals_expand,
            expansion_cost=totals_expand,
            reservation_revenue=float(np.sum(k_fee * df[kt])),
        )

        by_kind: dict[str, KindResult] = {}
        for k_ix, kind in enumerate(KINDS):
            sel = arr.kind == k_ix
            if not sel.any():
                continue
            dem = arr.demand[sel].sum(axis=0)
            by_kind[kind.value] = KindResult(
                kind=kind.value,
                revenue=pv(seg_rev[sel]),
                compute_cost=pv(seg_cost[sel]),
                shortfall_penalty=pv(penalty[sel]),
                gross_margin=pv(seg_margin[sel]),
                ltv=pv(seg_ltv[sel]),
                churn_cost=pv(churn[sel]),
                revenue_by_period=_floats(seg_rev[sel].sum(axis=0)),
                gpus_by_period=_floats(seg_gpus[sel].sum(axis=0)),
                served_share_by_period=_floats(_share(served[sel].sum(axis=0), dem)),
            )

        nz = np.nonzero(x > ZERO)[0]
        kind_of = [KINDS[k].value for k in arr.kind.tolist()]
        allocations = [
            Allocation(
                segment=seg_ids[si],
                kind=kind_of[si],
                mode=arr.mode_names[mi],
                pool=pool_ids[pi],
                period=periods[ti],
                gpus=g,
                gpu_hours=gh,
                units=u,
            )
            for si, mi, pi, ti, g, gh, u in zip(
                s[nz].tolist(),
                m[nz].tolist(),
                p[nz].tolist(),
                t[nz].tolist(),
                x[nz].tolist(),
                gpu_hours[nz].tolist(),
                units[nz].tolist(),
                strict=True,
            )
        ]
        units_of = [seg.unit for seg in sc.segments]
        si_all, ti_all = np.divmod(np.arange(S * T), T)
        segments = [
            SegmentResult(
                segment=seg_ids[i],
                kind=kind_of[i],
                period=periods[tt],
                unit=units_of[i],
                demand=dem,
                served=srv,
                unserved=uns,
                gpus=g,
                revenue=rv,
                compute_cost=cc,
                shortfall_penalty=pen,
                gross_margin=gm_,
                ltv=lt,
                churn_cost=ch,
                contract_min=cm,
                shortfall=sf,
            )
            for i, tt, dem, srv, uns, g, rv, cc, pen, gm_, lt, ch, cm, sf in zip(
                si_all.tolist(),
                ti_all.tolist(),
                *(
                    a.ravel().tolist()
                    for a in (
                        arr.demand,
                        served,
                        unserved,
                        seg_gpus,
                        seg_rev,
                        seg_cost,
                        penalty,
                        seg_margin,
                        seg_ltv,
                        churn,
                        arr.contract_min,
                        shortfall,
                    )
                ),
                strict=True,
            )
        ]
        own = arr.gpus + bought
        capacity = own + rented
        pools = [
            PoolResult(
                pool=pool_ids[j],
                accelerator=sc.pools[j].accelerator,
                region=sc.pools[j].region,
                period=periods[tt],
                gpus=float(arr.gpus[j, tt]),
                usable=float(arr.usable[j, tt]),
                rented=float(rented[j, tt]),
                used=float(used[j, tt]),
                idle=float(max(own[j, tt] - (used[j, tt] - rented[j, tt]), 0.0)),
                utilisation=float(used[j, tt] / capacity[j, tt]) if capacity[j, tt] > 0 else 0.0,
                variable_cost=float(pool_vcost[j, tt]),
                rental_cost=float(rental_cost[j, tt]),
                fixed_cost=float(fixed[j, tt]),
                shadow_price_per_gpu_hour=None if price_nom is None else float(price_nom[j, tt]),
                shadow_price_pv_per_gpu_hour=None if price_pv is None else float(price_pv[j, tt]),
                bought=float(bought[j, tt]),
                expansion_cost=float(expand_cost[j, tt]),
            )
            for j in range(P)
            for tt in range(T)
        ]

        reservations = [
            ReservationResult(
                segment=seg_ids[si],
                kind=kind_of[si],
                pool=pool_ids[pi],
                period=periods[ti],
                gpus=kk,
                gpu_hours=kh,
                revenue=fee,
            )
            for si, pi, ti, kk, kh, fee in zip(
                ks.tolist(),
                kp.tolist(),
                kt.tolist(),
                k.tolist(),
                k_hours.tolist(),
                k_fee.tolist(),
                strict=True,
            )
            if kk > ZERO
        ]
        viol = violations(sc, arr, cols, x, rented, bought, k)
        max_viol = max(viol.values(), default=0.0)
        warnings = list(lp.warnings)
        if max_viol > 1e-6:
            warnings.append(
                f"the plan violates a requirement by {max_viol:.2e} (relative): "
                f"{max(viol, key=lambda k: viol[k])}"
            )
        if not has_duals:
            warnings.append(
                "the solver returned no duals: shadow prices are not available"
                + (f" ({sol.duals_note})" if sol.duals_note else "")
            )

        return cls(
            scenario=sc.name,
            currency=sc.currency,
            status=sol.status,
            message=sol.message,
            periods=periods,
            totals=totals,
            by_kind=by_kind,
            allocations=allocations,
            segments=segments,
            pools=pools,
            binding=_binding(sc, lp, sol, x_full=sol.x),
            solver=SolverInfo(
                solver=sol.solver,
                algorithm=sol.algorithm,
                raw_status=sol.raw_status,
                time_s=sol.time_s,
                build_time_s=build_time_s,
                iterations=sol.iterations,
                columns=lp.num_cols,
                rows=lp.num_rows,
                nonzeros=lp.nnz,
                backend=sol.backend,
                integer_columns=lp.num_integer,
                gap=sol.gap,
                bound=sol.bound,
                lp_relaxation_objective=sol.lp_bound,
                duals_from=sol.duals_from if has_duals else "none",
            ),
            has_duals=has_duals,
            max_violation=max_viol,
            violations=viol,
            warnings=warnings,
            reservations=reservations,
        )


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole in [0, 1]; 1 where there is nothing to serve."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.divide(part, whole, out=np.ones_like(whole), where=whole > 0)
    return np.clip(out, 0.0, 1.0)


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in a]


def _binding(sc: Scenario, lp: LinearProgram, sol: Solution, x_full: np.ndarray) -> list[Binding]:
    """Rows at one of their bounds, with a non-zero dual where duals exist; the largest
    duals first."""
    if lp.num_rows == 0:
        return []
    act = lp.A @ x_full
    tol = 1e-7 * np.maximum(1.0, np.abs(act))
    at_upper = np.isfinite(lp.row_upper) & (np.abs(act - lp.row_upper) <= tol)
    at_lower = np.isfinite(lp.row_lower) & (np.abs(act - lp.row_lower) <= tol)
    tight = at_upper | at_lower
    if sol.row_dual is not None:
        tight &= np.abs(sol.row_dual) > 1e-9
    names = {
        "pool": [p.id for p in sc.pools],
        "segment": [s.id for s in sc.segments],
        "period": sc.period_labels,
        "kind": [k.value for k in KINDS],
    }
    out: list[Binding] = []
    duals = None if sol.row_dual is None else sol.row_dual.tolist()
    for b in lp.blocks:
        rows = np.nonzero(tight[b.start : b.stop])[0]
        if rows.size == 0:
            continue
        keys = [(dim, [names[dim][k] for k in ix[rows].tolist()]) for dim, ix in b.keys.items()]
        upper = at_upper[b.start + rows].tolist()
        for n, i in enumerate((b.start + rows).tolist()):
            out.append(
                Binding(
                    constraint=b.name,
                    key={dim: col[n] for dim, col in keys},
                    bound="upper" if upper[n] else "lower",
                    dual=None if duals is None else duals[i],
                )
            )
    out.sort(key=lambda b: -abs(b.dual or 0.0))
    return out
