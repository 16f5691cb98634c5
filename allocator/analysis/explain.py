"""Explain a segment's allocation: what a GPU-hour earns it in each pool against the
pool's opportunity cost (its shadow price), and which of its constraints bind.

The value of a GPU-hour of pool p to segment s in mode m, period t (nominal money):

    value = (revenue·revenue_share + w·LTV·ltv_share + churn) · throughput · multiplier
            − variable cost of p

(churn counts because each unit served avoids it). LP optimality says, for an allocation
that is positive, value = price + (the duals of the segment's own rows) per GPU-hour:

* a binding demand cap adds its (positive) dual: the segment earns more than the price
  there but has nothing more to buy;
* a soft contract below its minimum adds the penalty per unit (value rises);
* stability, share and kind limits add their duals, either sign.

So where nothing else binds, a segment gets GPUs only where value ≥ price, and none where
value < price. :func:`explain` reports the numbers and says it in sentences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from allocator.lp.arrays import ScenarioArrays
from allocator.numbers import money, number
from allocator.plan import Plan
from allocator.scenario import Scenario

TOL = 1e-6


@dataclass(frozen=True)
class PoolValue:
    pool: str
    period: str
    mode: str  # the mode the plan uses there (most GPUs); unused: the one earning most
    value_per_gpu_hour: float  # nominal
    effective_value_per_gpu_hour: float  # value + what its binding contract minimum adds
    shadow_price_per_gpu_hour: float | None  # the pool's opportunity cost (nominal)
    gpus: float  # what the plan gives the segment there (all modes)
    margin_over_price: float | None  # effective value - price
    revenue_share: float = 1.0  # the mode's share of the segment's price (revenue_share)
    # what one more unit of demand is worth, per GPU-hour of this pool (> 0 only where the
    # demand is fully served): a pool with value above its price but no GPUs has this
    demand_value_per_gpu_hour: float = 0.0
    why_unused: str = ""  # for a pool the segment does not use: the reason, in words


@dataclass(frozen=True)
class BindingRow:
    constraint: str
    key: dict[str, str]
    dual: float | None  # nominal (money of its period), maximisation sense
    meaning: str


@dataclass(frozen=True)
class PeriodService:
    """What the plan gives the segment in one period."""

    period: str
    served: float  # work units
    demand: float
    gpus: float
    shortfall: float  # below its contract minimum, work units
    shortfall_penalty: float  # SLA credits (nominal)
    # a segment with price tiers: the tier its value is priced at (the marginal one: the
    # cheapest tier served, the first when none is) and that tier's price (nominal)
    marginal_tier: int | None = None
    tier_price: float | None = None


@dataclass
class Explanation:
    segment: str
    kind: str
    unit: str
    values: list[PoolValue]
    binding: list[BindingRow]
    sentences: list[str] = field(default_factory=list)
    currency: str = "USD"
    periods: list[PeriodService] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The explanation in sentences, one paragraph per period."""
        return "\n".join(self.sentences)

    @property
    def table_text(self) -> str:
        """The explanation as one table per period: each pool the segment can use, what a
        GPU-hour there earns it (and with what its contract minimum adds: the value the LP
        weighs) against the pool's price (its shadow price), then the constraints that
        bind. Columns in ``currency`` per GPU-hour."""
        return "\n".join(self.table_lines())

    @property
    def has_contract(self) -> bool:
        """A contract minimum moves some value (else no "with contract" column)."""
        return any(
            abs(v.effective_value_per_gpu_hour - v.value_per_gpu_hour) > TOL for v in self.values
        ) or any(p.shortfall > TOL for p in self.periods)

    def table_lines(self) -> list[str]:
        from allocator.plan.text import number, percent, table

        cur = f"{self.currency}/GPU-h"
        contract = self.has_contract
        headers = [
            "pool",
            "mode",
            "revenue share",
            "GPUs",
            f"value ({cur})",
            *([f"with contract ({cur})"] if contract else []),
            f"price ({cur})",
            f"over price ({cur})",
            "why no GPUs",
        ]
        lines: list[str] = []
        for r in self.periods:
            if lines:
                lines.append("")
            lines.append(
                f"{r.period}: {self.segment} ({self.kind}) is served {r.served:,.0f} of "
                f"{r.demand:,.0f} {self.unit} with {r.gpus:,.1f} GPUs"
                + (" (its demand is fully served)" if r.served >= r.demand - TOL else "")
            )
            rows = sorted(
                (v for v in self.values if v.period == r.period),
                key=lambda v: (-v.gpus, -(v.margin_over_price or 0.0), v.pool),
            )
            lines += table(
                headers,
                [
                    [
                        v.pool,
                        v.mode,
                        percent(v.revenue_share),
                        number(v.gpus, 1),
                        number(v.value_per_gpu_hour, 2),
                        *([number(v.effective_value_per_gpu_hour, 2)] if contract else []),
                        number(v.shadow_price_per_gpu_hour, 2),
                        number(v.margin_over_price, 2),
                        v.why_unused,
                    ]
                    for v in rows
                ],
                "llrrr" + ("r" if contract else "") + "rrl",
                "  ",
            )
            if r.marginal_tier is not None:
                lines.append(f"  {_tier_note(r, self.currency, self.unit)}")
            for b in self.binding:
                if b.key.get("period") in (r.period, None):
                    lines.append(f"  binds: {b.meaning}")
            if r.shortfall > TOL:
                lines.append(
                    f"  short of its contract minimum by {r.shortfall:,.0f} {self.unit} "
                    f"({r.shortfall_penalty:,.0f} {self.currency} in SLA credits)"
                )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "kind": self.kind,
            "unit": self.unit,
            "currency": self.currency,
            "has_contract": self.has_contract,
            "periods": [asdict(p) for p in self.periods],
            "values": [asdict(v) for v in self.values],
            "binding": [asdict(b) for b in self.binding],
            "sentences": list(self.sentences),
        }


_MEANING = {
    "segment-demand": "its demand is fully served: one more unit of demand would be worth {d}"
    " {per_unit}",
    "segment-contract": "its contract minimum holds it up: each unit of the minimum costs the "
    "plan {d} {per_unit} (what its GPU-hours would earn elsewhere, net)",
    "segment-stability": "the stability limit on {pool} holds its change between periods",
    "segment-share": "it already takes the most one segment may of {pool}",
    "segment-tiers": "its tiers sell all the work its GPUs do: one more unit of work would "
    "be worth {d} {per_unit}",
    "kind-cap": "the cap on {kind} GPUs binds",
    "kind-floor": "the floor on {kind} GPUs binds",
    "rnd-floor": "the R&D floor binds",
}


def _fmt(v: float) -> str:
    return number(v, 2) if abs(v) < 1e6 else money(v)


def explain(scenario: Scenario, segment: str, plan: Plan) -> Explanation:
    """Explain ``segment``'s allocation in ``plan`` (solved from ``scenario``)."""
    try:
        s_ix = [s.id for s in scenario.segments].index(segment)
    except ValueError:
        from allocator.scenario.model import id_hint

        ids = [s.id for s in scenario.segments]
        raise KeyError(
            f"no segment {segment!r} in scenario {scenario.name!r}"
            + id_hint("segment", segment, ids)
        ) from None
    seg = scenario.segments[s_ix]
    arr = ScenarioArrays.of(scenario)
    periods = scenario.period_labels
    T = len(periods)
    w = scenario.policy.ltv_weight
    price = {(r.pool, r.period): r.shadow_price_per_gpu_hour for r in plan.pools}
    gpus: dict[tuple[str, str], float] = {}
    by_mode: dict[tuple[str, str], dict[str, float]] = {}
    for a in plan.allocations:
        if a.segment == segment:
            gpus[(a.pool, a.period)] = gpus.get((a.pool, a.period), 0.0) + a.gpus
            m = by_mode.setdefault((a.pool, a.period), {})
            m[a.mode] = m.get(a.mode, 0.0) + a.gpus
    df = dict(zip(periods, arr.discount, strict=True))
    # the contract row's dual, nominal, per work unit (<= 0: the minimum holds it up)
    contract = _duals(plan, "segment-contract", segment, df)
    # the demand row's dual, nominal, per work unit (>= 0: fully served)
    demand_dual = _duals(plan, "segment-demand", segment, df)

    modes = np.nonzero(arr.mode_segment == s_ix)[0]
    mode_row = {arr.mode_names[m]: i for i, m in enumerate(modes)}
    revenue, ltv, marginal = arr.revenue[s_ix], arr.ltv[s_ix], None
    if seg.tiers:
        # revenue_per_unit is 0 for a tiered segment: price its units at the marginal tier
        marginal, revenue, ltv = _marginal_tier(arr, s_ix, segment, plan, periods)
    # per-unit numbers may move over the horizon: everything below is per (mode, period)
    per_unit = (
        revenue[None, :] * arr.mode_rev_share[modes][:, None]
        + w * ltv[None, :] * arr.mode_ltv_share[modes][:, None]
        + arr.churn[s_ix][None, :]
    )  # (M_s, T)
    values: list[PoolValue] = []
    for j, pool in enumerate(scenario.pools):
        if not arr.compatible[s_ix, j]:
            continue
        tp = arr.throughput[s_ix, j][None, :] * arr.mode_mult[modes]  # (M_s, T)
        v_modes = per_unit * tp - arr.var_cost[j][None, :]
        for t in range(T):
            # the mode the plan uses (a demand-capped segment may use one that earns less
            # per GPU-hour but more per unit); where it gets nothing, the best earner
            used = by_mode.get((pool.id, periods[t]))
            if used and max(used.values()) > TOL:
                best = mode_row[max(used, key=lambda k: used[k])]
            else:
                best = int(np.argmax(v_modes[:, t]))
            units_per_gpu_hour = tp[best, t]
            v = float(v_modes[best, t])
            eff = v - contract.get(periods[t], 0.0) * units_per_gpu_hour
            p = price.get((pool.id, periods[t]))
            n = gpus.get((pool.id, periods[t]), 0.0)
            margin = None if p is None else eff - p
            dv = max(0.0, demand_dual.get(periods[t], 0.0)) * units_per_gpu_hour
            values.append(
                PoolValue(
                    pool=pool.id,
                    period=periods[t],
                    mode=arr.mode_names[modes[best]],
                    value_per_gpu_hour=v,
                    effective_value_per_gpu_hour=eff,
                    shadow_price_per_gpu_hour=p,
                    gpus=n,
                    margin_over_price=margin,
                    revenue_share=float(arr.mode_rev_share[modes[best]]),
                    demand_value_per_gpu_hour=dv,
                    why_unused="" if n > TOL else _why_unused(margin, dv),
                )
            )

    kind = seg.kind.value
    binding: list[BindingRow] = []
    for b in plan.binding:
        mine = b.key.get("segment") == segment or (
            "segment" not in b.key
            and (b.key.get("kind") == kind or (b.constraint == "rnd-floor" and kind == "rnd"))
        )
        if not mine:
            continue
        period = b.key.get("period")
        nominal = None if b.dual is None else b.dual / (df[period] if period else 1.0)
        d = "" if nominal is None else _fmt(abs(nominal))
        text = _MEANING.get(b.constraint, b.constraint).format(
            d=d,
            pool=b.key.get("pool", ""),
            kind=b.key.get("kind", ""),
            per_unit=f"{scenario.currency} per {seg.unit}",
        )
        binding.append(BindingRow(b.constraint, dict(b.key), nominal, text))

    ex = Explanation(segment, kind, seg.unit, values, binding, currency=scenario.currency)
    t_of = {p: t for t, p in enumerate(periods)}
    ex.periods = [
        PeriodService(
            r.period,
            r.served,
            r.demand,
            r.gpus,
            r.shortfall,
            r.shortfall_penalty,
            None if marginal is None else int(marginal[t_of[r.period]]),
            None if marginal is None else float(revenue[t_of[r.period]]),
        )
        for r in plan.segments
        if r.segment == segment
    ]
    ex.sentences = _sentences(scenario, ex, plan)
    return ex


def _duals(plan: Plan, constraint: str, segment: str, df: dict[str, float]) -> dict[str, float]:
    """The segment's ``constraint`` row duals by period, nominal, per work unit."""
    return {
        b.key["period"]: (b.dual or 0.0) / df[b.key["period"]]
        for b in plan.binding
        if b.constraint == constraint and b.key.get("segment") == segment
    }


def _why_unused(margin: float | None, demand_value: float) -> str:
    """Why a pool the segment could use gets none of its GPUs: priced out (others value
    its GPU-hours more), or its demand is already served elsewhere (the value above the
    price is what one more unit of demand would be worth), or a limit or a tie."""
    if margin is None:
        return "no GPUs in the pool"
    if margin < -TOL:
        return "priced out"
    if demand_value > TOL and margin <= demand_value + TOL * max(1.0, demand_value):
        return "demand already served"
    if margin <= TOL:
        return "indifferent (value = price)"
    return "a limit binds"


def _marginal_tier(
    arr: ScenarioArrays, s_ix: int, segment: str, plan: Plan, periods: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per period: the rank of the segment's marginal tier (the cheapest with units
    served, as the plan's clearing price; the first when none is), its price and LTV."""
    assert arr.tier_segment is not None and arr.tier_rank is not None
    assert arr.tier_price is not None and arr.tier_ltv is not None
    mine = arr.tier_segment == s_ix
    first = int(np.nonzero(mine & (arr.tier_rank == 0))[0][0])
    t_of = {p: t for t, p in enumerate(periods)}
    rank = np.zeros(len(periods), dtype=np.int64)
    for r in plan.tiers:
        if r.segment == segment and r.served > TOL * max(1.0, r.units):
            t = t_of[r.period]
            rank[t] = max(rank[t], int(r.tier))
    idx, cols = first + rank, np.arange(len(periods))
    return rank, arr.tier_price[idx, cols], arr.tier_ltv[idx, cols]


def _tier_note(r: PeriodService, cur: str, unit: str) -> str:
    return (
        f"its units are priced at its marginal tier (tier {r.marginal_tier}): "
        f"{_fmt(r.tier_price or 0.0)} {cur} per {unit}, not its revenue_per_unit"
    )


def _sentences(sc: Scenario, ex: Explanation, plan: Plan) -> list[str]:
    cur = sc.currency
    out: list[str] = []
    served = {r.period: r for r in plan.segments if r.segment == ex.segment}
    for period in sc.period_labels:
        rows = [v for v in ex.values if v.period == period]
        got = [v for v in rows if v.gpus > TOL]
        r = served[period]
        head = (
            f"{period}: {ex.segment} ({ex.kind}) is served {r.served:,.0f} of "
            f"{r.demand:,.0f} {ex.unit} with {r.gpus:,.1f} GPUs."
        )
        parts = [head]
        ps = next((p for p in ex.periods if p.period == period), None)
        if ps is not None and ps.marginal_tier is not None:
            note = _tier_note(ps, cur, ex.unit)
            parts.append(note[0].upper() + note[1:] + ".")
        for v in sorted(got, key=lambda v: -v.gpus):
            earns = f"{_fmt(v.value_per_gpu_hour)} {cur}"
            if abs(v.effective_value_per_gpu_hour - v.value_per_gpu_hour) > TOL:
                earns += f" ({_fmt(v.effective_value_per_gpu_hour)} with its contract minimum)"
            parts.append(
                f"On {v.pool} it gets {v.gpus:,.1f} GPUs ({v.mode}): a GPU-hour earns it "
                f"{earns} against the pool's opportunity cost of "
                f"{_fmt(v.shadow_price_per_gpu_hour or 0.0)}."
            )
        parts += _power_notes(sc, plan, got, period)
        priced_out = [
            v
            for v in rows
            if v.gpus <= TOL and v.margin_over_price is not None and v.margin_over_price < -TOL
        ]
        if priced_out:
            best = max(priced_out, key=lambda v: v.margin_over_price or 0.0)
            parts.append(
                f"It gets nothing on {', '.join(v.pool for v in priced_out)}: others value "
                f"those GPU-hours more (on {best.pool} it would earn "
                f"{_fmt(best.effective_value_per_gpu_hour)} against "
                f"{_fmt(best.shadow_price_per_gpu_hour or 0.0)})."
            )
        served_elsewhere = [v for v in rows if v.why_unused == "demand already served"]
        if served_elsewhere:
            parts.append(
                f"It gets nothing on {', '.join(v.pool for v in served_elsewhere)} though a "
                "GPU-hour there earns more than the price: its demand is already served, so "
                "more GPUs would have nothing to serve."
            )
        for b in ex.binding:
            if b.key.get("period") == period:
                parts.append(b.meaning[0].upper() + b.meaning[1:] + ".")
        if r.shortfall > TOL:
            parts.append(
                f"It is {r.shortfall:,.0f} {ex.unit} short of its contract minimum "
                f"({r.shortfall_penalty:,.0f} {cur} in SLA credits)."
            )
        out.append(" ".join(parts))
    return out


def _power_notes(sc: Scenario, plan: Plan, got: list[PoolValue], period: str) -> list[str]:
    """Sites (issue 27): for each pool in a site where the segment gets GPUs, what its
    GPU-hour earns per kWh of the site's IT power (at full power) against what the site's
    marginal user earns per kWh: the price of a MWh / 1000 (both nominal)."""
    if not plan.has_sites:
        return []
    price = {(r.site, r.period): r.shadow_price_per_mwh for r in plan.sites}
    out = []
    for v in sorted(got, key=lambda v: -v.gpus):
        pool = sc.pool(v.pool)
        if pool.site is None or not pool.power_kw_per_gpu:
            continue
        mwh = price.get((pool.site, period))
        marginal = "n/a" if mwh is None else _fmt(mwh / 1000.0)
        out.append(
            f"This segment earns {_fmt(v.value_per_gpu_hour / pool.power_kw_per_gpu)} "
            f"{sc.currency} per kWh of {pool.site}'s power on {v.pool} "
            f"({pool.power_kw_per_gpu:g} kW a GPU); the site's marginal user earns {marginal}."
        )
    return out


__all__ = ["BindingRow", "Explanation", "PeriodService", "PoolValue", "explain"]
