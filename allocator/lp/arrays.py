"""The scenario as dense numpy arrays (S segments, P pools, T periods): what every later
stage (LP build, independent check, plan read-out, analysis) indexes by position."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allocator.scenario import Kind, Scenario, discount_factors, per_period

KINDS = list(Kind)


@dataclass
class ScenarioArrays:
    """The scenario as dense numpy arrays (S segments, P pools, T periods)."""

    hours: np.ndarray  # (T,)
    discount: np.ndarray  # (T,)
    gpus: np.ndarray  # (P, T)
    rentable: np.ndarray  # (P, T)
    rental_price: np.ndarray  # (P, T)
    headroom: np.ndarray  # (P,)
    var_cost: np.ndarray  # (P, T)
    fixed_cost: np.ndarray  # (P, T)
    demand: np.ndarray  # (S, T)
    contract_min: np.ndarray  # (S, T), zeros where none
    contract_hard: np.ndarray  # (S,) bool
    revenue: np.ndarray  # (S, T)
    ltv: np.ndarray  # (S, T)
    penalty: np.ndarray  # (S, T)
    churn: np.ndarray  # (S, T)
    kind: np.ndarray  # (S,) index into KINDS
    throughput: np.ndarray  # (S, P, T): units per GPU-hour of s on p, 0 where incompatible
    mode_segment: np.ndarray  # (M,) segment of each global mode
    mode_mult: np.ndarray  # (M, T)
    mode_rev_share: np.ndarray  # (M,)
    mode_ltv_share: np.ndarray  # (M,)
    mode_names: list[str] = field(default_factory=list)
    alloc_unit: np.ndarray | None = None  # (P,) GPUs per allocation unit, 0 = fractional
    # expansion mode: (P,) GPUs that may be bought, (P, T) capex per GPU-hour of a GPU
    # bought in each period, (P,) first period (-1 where the pool cannot be expanded)
    expand_max: np.ndarray | None = None
    expand_cost: np.ndarray | None = None
    expand_from: np.ndarray | None = None
    # reservations, (S, T) GPUs a segment's customer would reserve at most (0 where none),
    # (S,) fee per reserved GPU-hour
    res_max: np.ndarray | None = None
    res_price: np.ndarray | None = None
    # price tiers, one entry per tier of every segment with tiers (N,): its segment and its
    # rank within the segment; (N, T) units offered, price and LTV per unit
    tier_segment: np.ndarray | None = None
    tier_rank: np.ndarray | None = None
    tier_units: np.ndarray | None = None
    tier_price: np.ndarray | None = None
    tier_ltv: np.ndarray | None = None
    # subscriptions: (S, T) fees earned (subscribers x fee, 0 without a subscription),
    # minimum service share (S,) (-1: none); the loss of usage not served is in churn or,
    # with a minimum service share, in contract_min/penalty (a soft minimum)
    sub_fees: np.ndarray | None = None
    sub_min_share: np.ndarray | None = None
    # sites and power (issue 27), None without sites: (P,) site of each pool (-1: none),
    # (P,) kW per GPU at full power, (Q, T) IT power per site in kW, (Q,) PUE, (P, T)
    # energy cost per GPU-hour (kW x PUE x price / 1000; already part of var_cost)
    site_of: np.ndarray | None = None
    power_kw: np.ndarray | None = None
    site_kw: np.ndarray | None = None
    site_pue: np.ndarray | None = None
    energy_cost: np.ndarray | None = None
    # power levels below full power (N,): pool, share of kW drawn, share of throughput
    # delivered, name; retirement: (P,) first period (-1: none), (P, T) salvage per GPU
    level_pool: np.ndarray | None = None
    level_power: np.ndarray | None = None
    level_throughput: np.ndarray | None = None
    level_names: list[str] = field(default_factory=list)
    retire_from: np.ndarray | None = None
    salvage: np.ndarray | None = None

    @property
    def sited(self) -> np.ndarray:
        """(P,) bool: the pool draws a site's power (its powered GPUs are a decision)."""
        P = self.gpus.shape[0]
        return np.zeros(P, dtype=bool) if self.site_of is None else self.site_of >= 0

    @property
    def compatible(self) -> np.ndarray:
        """(S, P) bool: pool p can serve segment s."""
        return self.throughput[:, :, 0] > 0

    @property
    def usable(self) -> np.ndarray:
        """GPUs a pool can hand out per period: own GPUs less headroom (P, T)."""
        return (1.0 - self.headroom)[:, None] * self.gpus

    @classmethod
    def of(cls, sc: Scenario) -> ScenarioArrays:
        T = len(sc.periods)
        pol = sc.policy
        pools, segs = sc.pools, sc.segments
        throughput = np.zeros((len(segs), len(pools), T))
        for i, s in enumerate(segs):
            for j, p in enumerate(pools):
                if sc.compatible(s, p):
                    throughput[i, j] = per_period(s.throughput[p.accelerator], T)

        def pp(values: list[float | list[float] | None]) -> np.ndarray:
            """One row per item of scalar-or-per-period numbers (None = 0): (n, T)."""
            out = [per_period(0.0 if v is None else v, T) for v in values]
            return np.array(out, dtype=float).reshape(len(values), T)

        modes = [(i, m) for i, s in enumerate(segs) for m in s.modes]
        tiers = [(i, r, tr) for i, s in enumerate(segs) for r, tr in enumerate(s.tiers or [])]
        out = cls(
            hours=np.array([p.hours for p in sc.periods], dtype=float),
            discount=np.array(discount_factors(sc)),
            gpus=np.array([p.gpus for p in pools], dtype=float).reshape(len(pools), T),
            rentable=np.array([p.rentable_gpus or [0.0] * T for p in pools], dtype=float).reshape(
                len(pools), T
            ),
            rental_price=pp([p.rental_price_per_gpu_hour for p in pools]),
            headroom=np.array(
                [pol.headroom if p.headroom is None else p.headroom for p in pools], dtype=float
            ),
            var_cost=pp([p.variable_cost_per_gpu_hour for p in pools]),
            fixed_cost=pp([p.fixed_cost_per_gpu_hour for p in pools]),
            demand=np.array([s.demand for s in segs], dtype=float).reshape(len(segs), T),
            contract_min=np.array([s.contract_min or [0.0] * T for s in segs], dtype=float).reshape(
                len(segs), T
            ),
            contract_hard=np.array([s.contract_hard for s in segs], dtype=bool),
            revenue=pp([s.revenue_per_unit for s in segs]),
            ltv=pp([s.ltv_per_unit for s in segs]),
            penalty=pp([s.shortfall_penalty_per_unit for s in segs]),
            churn=pp([s.churn_cost_per_unit for s in segs]),
            kind=np.array([KINDS.index(s.kind) for s in segs], dtype=np.int64),
            throughput=throughput,
            mode_segment=np.array([i for i, _ in modes], dtype=np.int64),
            mode_mult=pp([m.throughput_multiplier for _, m in modes]),
            mode_rev_share=np.array([m.revenue_share for _, m in modes]),
            mode_ltv_share=np.array([m.ltv_share for _, m in modes]),
            mode_names=[m.name for _, m in modes],
            alloc_unit=np.array([p.allocation_unit_gpus or 0 for p in pools], dtype=float),
            expand_max=np.array([p.expansion.max_gpus if p.expansion else 0.0 for p in pools]),
            expand_cost=pp([p.expansion.cost_per_gpu_hour if p.expansion else 0.0 for p in pools]),
            expand_from=np.array(
                [
                    -1
                    if p.expansion is None
                    else (
                        0
                        if p.expansion.from_period is None
                        else sc.period_labels.index(p.expansion.from_period)
                    )
                    for p in pools
                ],
                dtype=np.int64,
            ),
            res_max=np.array(
                [
                    per_period(s.reservation.max_gpus, T) if s.reservation else [0.0] * T
                    for s in segs
                ],
                dtype=float,
            ).reshape(len(segs), T),
            res_price=np.array(
                [s.reservation.price_per_gpu_hour if s.reservation else 0.0 for s in segs]
            ),
            tier_segment=np.array([i for i, _, _ in tiers], dtype=np.int64),
            tier_rank=np.array([r for _, r, _ in tiers], dtype=np.int64),
            tier_units=pp([tr.units for _, _, tr in tiers]),
            tier_price=pp([tr.price for _, _, tr in tiers]),
            tier_ltv=pp([tr.ltv_per_unit for _, _, tr in tiers]),
        )
        out._subscriptions(sc)
        out._sites(sc)
        return out

    def _sites(self, sc: Scenario) -> None:
        """Sites' power and the energy cost of a GPU-hour, which joins the variable cost
        (nothing changes without sites: the arrays stay None, var_cost untouched)."""
        if not sc.sites:
            return
        T = self.hours.size
        ids = [q.id for q in sc.sites]
        self.site_of = np.array(
            [ids.index(p.site) if p.site is not None else -1 for p in sc.pools], dtype=np.int64
        )
        self.power_kw = np.array([p.power_kw_per_gpu or 0.0 for p in sc.pools], dtype=float)
        self.site_kw = 1000.0 * np.array(
            [per_period(q.power_mw, T) for q in sc.sites], dtype=float
        ).reshape(len(ids), T)
        self.site_pue = np.array([q.pue for q in sc.sites], dtype=float)
        price = np.array(
            [per_period(q.energy_price_per_mwh or 0.0, T) for q in sc.sites], dtype=float
        ).reshape(len(ids), T)
        sited = self.site_of >= 0
        q = np.where(sited, self.site_of, 0)
        self.energy_cost = np.where(
            sited[:, None],
            self.power_kw[:, None] * self.site_pue[q][:, None] * price[q] / 1000.0,
            0.0,
        )
        self.var_cost = self.var_cost + self.energy_cost
        levels = [(j, lv) for j, p in enumerate(sc.pools) for lv in p.power_levels or []]
        self.level_pool = np.array([j for j, _ in levels], dtype=np.int64)
        self.level_power = np.array([lv.power_share for _, lv in levels], dtype=float)
        self.level_throughput = np.array([lv.throughput_share for _, lv in levels], dtype=float)
        self.level_names = [lv.name for _, lv in levels]
        labels = sc.period_labels
        self.retire_from = np.array(
            [
                -1
                if p.retirement is None
                else (
                    0
                    if p.retirement.from_period is None
                    else labels.index(p.retirement.from_period)
                )
                for p in sc.pools
            ],
            dtype=np.int64,
        )
        self.salvage = np.array(
            [
                per_period(p.retirement.salvage_per_gpu if p.retirement else 0.0, T)
                for p in sc.pools
            ],
            dtype=float,
        ).reshape(len(sc.pools), T)

    def _subscriptions(self, sc: Scenario) -> None:
        """Subscribers' fees, and what under-serving their usage costs: with a minimum
        service share sigma, a soft minimum sigma * demand with the loss as its penalty;
        without, the loss on every unit not served (churn)."""
        T = self.hours.size
        S = len(sc.segments)
        self.sub_fees = np.zeros((S, T))
        self.sub_min_share = np.full(S, -1.0)
        for i, s in enumerate(sc.segments):
            sub = s.subscription
            if sub is None:
                continue
            n = np.array(per_period(sub.subscribers, T), dtype=float)
            self.sub_fees[i] = n * np.array(per_period(sub.fee_per_subscriber, T))
            loss = np.array(per_period(sub.ltv_loss_per_unit, T), dtype=float)
            if sub.min_service_share is None:
                self.churn[i] = self.churn[i] + loss
            else:
                self.sub_min_share[i] = sub.min_service_share
                self.contract_min[i] = sub.min_service_share * self.demand[i]
                self.contract_hard[i] = False
                self.penalty[i] = loss


@dataclass
class GpuLimitArrays:
    """Segments' GPU limits (``segments[].gpu_limits``), one entry per limit (L of them)."""

    accelerators: list[str]  # the fleet's accelerator types, sorted
    pool_accelerator: np.ndarray  # (P,) index into accelerators
    segment: np.ndarray  # (L,)
    accelerator: np.ndarray  # (L,) index into accelerators, -1 = every type
    lower: np.ndarray  # (L, T) GPUs, 0 where no floor
    upper: np.ndarray  # (L, T) GPUs, inf where no cap

    @classmethod
    def of(cls, sc: Scenario) -> GpuLimitArrays:
        T = len(sc.periods)
        types = sorted({p.accelerator for p in sc.pools})
        lims = [(i, lim) for i, s in enumerate(sc.segments) for lim in s.gpu_limits]

        def grid(name: str, default: float) -> np.ndarray:
            rows = [
                per_period(v, T) if (v := getattr(lim, name)) is not None else [default] * T
                for _, lim in lims
            ]
            return np.array(rows, dtype=float).reshape(len(lims), T)

        return cls(
            accelerators=types,
            pool_accelerator=np.array(
                [types.index(p.accelerator) for p in sc.pools], dtype=np.int64
            ),
            segment=np.array([i for i, _ in lims], dtype=np.int64),
            accelerator=np.array(
                [
                    -1 if lim.accelerator is None else types.index(lim.accelerator)
                    for _, lim in lims
                ],
                dtype=np.int64,
            ),
            lower=grid("min_gpus", 0.0),
            upper=grid("max_gpus", np.inf),
        )

    def held(self, seg: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For columns of segment ``seg`` on pool ``pool``: (column position, limit index)
        of every (column, limit) pair where the limit counts the column."""
        S = int(max(seg.max(initial=-1), self.segment.max(initial=-1))) + 1
        A = len(self.accelerators)
        of_all = np.full(S, -1, dtype=np.int64)
        of_type = np.full((S, A), -1, dtype=np.int64)
        every = self.accelerator < 0
        of_all[self.segment[every]] = np.nonzero(every)[0]
        of_type[self.segment[~every], self.accelerator[~every]] = np.nonzero(~every)[0]
        la = of_all[seg]
        lt = of_type[seg, self.pool_accelerator[pool]]
        pos = np.arange(seg.size)
        return (
            np.concatenate([pos[la >= 0], pos[lt >= 0]]),
            np.concatenate([la[la >= 0], lt[lt >= 0]]),
        )


@dataclass
class BudgetArrays:
    """GPU-hour budgets (``policy.gpu_hour_budgets``), B of them."""

    ids: list[str]
    segments: np.ndarray  # (B, S) bool: the budget counts this segment's GPUs
    accelerator: np.ndarray  # (B,) index into GpuLimitArrays.accelerators, -1 = every type
    window: np.ndarray  # (B, T) bool: the budget's periods
    lower: np.ndarray  # (B,) GPU-hours, -inf where no floor
    upper: np.ndarray  # (B,) GPU-hours, inf where no cap

    @classmethod
    def of(cls, sc: Scenario) -> BudgetArrays:
        budgets = sc.policy.gpu_hour_budgets
        labels = sc.period_labels
        T = len(labels)
        types = sorted({p.accelerator for p in sc.pools})
        segs = np.array(
            [
                [s.id == b.segment if b.kind is None else s.kind == b.kind for s in sc.segments]
                for b in budgets
            ],
            dtype=bool,
        ).reshape(len(budgets), len(sc.segments))
        window = np.zeros((len(budgets), T), dtype=bool)
        for j, b in enumerate(budgets):
            lo = 0 if b.from_period is None else labels.index(b.from_period)
            hi = T - 1 if b.to_period is None else labels.index(b.to_period)
            window[j, lo : hi + 1] = True
        return cls(
            ids=[b.id for b in budgets],
            segments=segs,
            accelerator=np.array(
                [-1 if b.accelerator is None else types.index(b.accelerator) for b in budgets],
                dtype=np.int64,
            ),
            window=window,
            lower=np.array(
                [-np.inf if b.min_gpu_hours is None else b.min_gpu_hours for b in budgets]
            ),
            upper=np.array(
                [np.inf if b.max_gpu_hours is None else b.max_gpu_hours for b in budgets]
            ),
        )

    def counted(
        self, seg: np.ndarray, pool_type: np.ndarray, per: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For columns of segment ``seg``, pool type ``pool_type`` and period ``per``: the
        (column position, budget index) of every pair where the budget counts the column."""
        pos, which = [], []
        for j in range(len(self.ids)):
            ok = self.segments[j, seg] & self.window[j, per]
            if self.accelerator[j] >= 0:
                ok &= pool_type == self.accelerator[j]
            hit = np.nonzero(ok)[0]
            pos.append(hit)
            which.append(np.full(hit.size, j, dtype=np.int64))
        if not pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(pos), np.concatenate(which)


def extra_key_names(sc: Scenario) -> dict[str, list[str]]:
    """Names of the row-key dimensions beyond pool, segment, period and kind: accelerator
    types (``any`` for every type, the last index), GPU-hour budget ids and site ids."""
    return {
        "accelerator": [*sorted({p.accelerator for p in sc.pools}), "any"],
        "budget": [b.id for b in sc.policy.gpu_hour_budgets],
        "site": [q.id for q in sc.sites or []],
    }


def add_at(out: np.ndarray, index: tuple[np.ndarray, ...] | np.ndarray, values: Any) -> None:
    """``np.add.at(out, index, values)`` through ``np.bincount`` (several times faster on
    100k entries): each cell's values are summed in order, then added to the cell."""
    flat = np.ravel_multi_index(index, out.shape) if isinstance(index, tuple) else index
    weights = np.broadcast_to(np.asarray(values, dtype=float), np.shape(flat))
    out += np.bincount(np.ravel(flat), weights=np.ravel(weights), minlength=out.size).reshape(
        out.shape
    )
