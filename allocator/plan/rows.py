"""The rows of a plan's tables (allocations, segments, pools, reservations, binding rows)
and its summaries (totals, by kind, solver). Units are in the field names' comments; the
conventions (nominal per period, present value in totals) are in tables.py."""

from __future__ import annotations

from dataclasses import dataclass

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
class TierResult:
    """Units of one price tier of a segment in a period (a demand curve), nominal money."""

    segment: str
    kind: str
    tier: float  # rank in the segment's tiers, from 0 (the highest price)
    period: str
    price: float  # per unit
    units: float  # offered at that price
    served: float
    revenue: float  # served x price
    clearing_price: float  # the segment's marginal tier's price in the period


@dataclass(frozen=True)
class PowerResult:
    """A pool in a site in a period (issue 27): GPUs on hand, powered, left in inventory."""

    pool: str
    site: str
    period: str
    gpus: float  # own GPUs on hand
    powered: float  # own GPUs powered (plugged in): only they can be allocated
    in_inventory: float  # gpus - powered - retired: on hand, not plugged in
    bought: float  # GPUs bought so far (expansion mode): always powered
    power_kw: float  # IT power drawn: kW per GPU x (powered + bought)
    energy_cost: float  # nominal: GPU-hours used x kW x PUE x price / 1000
    capped: float = 0.0  # of the powered GPUs, those run at a power cap (power_levels)
    retired: float = 0.0  # GPUs retired so far (retirement): gone for good
    salvage: float = 0.0  # nominal: salvage of the GPUs retired in this period


@dataclass(frozen=True)
class SiteResult:
    """A site in a period (issue 27): its IT power, what the plan draws, the price of a MW."""

    site: str
    region: str
    period: str
    power_mw: float  # IT power available
    used_mw: float  # IT power drawn by powered and bought GPUs
    free_mw: float  # power_mw - used_mw
    facility_mw: float  # used_mw x PUE
    energy_cost: float  # nominal, the site's pools
    # d objective / d MW-hour of the site's IT power (the site-power row's dual), in the
    # period's money and in present value; None without duals
    shadow_price_per_mwh: float | None
    shadow_price_pv_per_mwh: float | None


@dataclass(frozen=True)
class SubscriptionResult:
    """A subscription segment in a period: fees, how much of its usage is served, and how
    hard it can be throttled before that costs more than its GPUs are worth elsewhere."""

    segment: str
    kind: str
    period: str
    subscribers: float
    fees: float  # subscribers x fee: earned whether usage is served or not
    usage: float  # work units wanted (the demand)
    served: float
    served_share: float  # served / usage (1 when there is no usage)
    min_service_share: float  # below it the loss applies (0: on every unit not served)
    ltv_lost: float  # loss per unit x units not served (below the minimum share)
    # what a GPU-hour of its best pool earns serving usage above / below the minimum share
    value_above_floor_per_gpu_hour: float
    value_below_floor_per_gpu_hour: float
    pool: str  # that pool
    gpu_price_elsewhere: float  # the pool's shadow price per GPU-hour (0 without duals)
    # the lowest served share worth keeping at that price: 1 (serve it all), the minimum
    # share (throttle down to it), or 0 (the GPUs are worth more even with the loss)
    throttle_to: float


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
    usable: float  # own GPUs, bought ones too, less headroom (before issue 24: not bought)
    rented: float
    used: float  # allocated and reserved GPUs
    idle: float  # usable + rented - used: GPUs the plan could use but does not (price 0)
    utilisation: float  # used / (own GPUs + rented)
    variable_cost: float
    rental_cost: float
    fixed_cost: float
    shadow_price_per_gpu_hour: float | None
    shadow_price_pv_per_gpu_hour: float | None
    bought: float = 0.0  # GPUs bought into the pool so far (expansion mode), in use from then
    expansion_cost: float = 0.0  # their amortised capex in the period
    # used / usable capacity (own GPUs after headroom, bought ones too, plus rented): how
    # full the pool is against what the plan may use; None in plans stored before it
    utilisation_of_usable: float | None = None
    # GPUs kept free by headroom (own and bought GPUs x headroom): apart from ``idle``
    # since issue 24 (before, ``idle`` included them); None in plans stored before
    headroom_gpus: float | None = None


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
    # energy of GPU-hours in sites (part of variable_cost); None (and left out of the
    # plan's JSON) in a scenario without sites
    energy_cost: float | None = None
    # salvage of GPUs retired (sites' retirement; part of the objective); None without sites
    salvage: float | None = None


# by_kind's line for the rental cost, which no kind is charged (rented GPUs add to a pool
# that every kind on it shares): with it the lines add up to the totals
RENTALS = "rentals"
RENTALS_LABEL = "rentals (not by kind)"


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
    ``"none"``. ``whole_units_from`` says which whole-unit plan came back: ``"rounding"``
    (the LP relaxation rounded to whole units per pool and period and repaired) or
    ``"mip"`` (HiGHS' branch and cut, started from the rounded plan), and ``bound_from``
    which bound ``gap`` is measured against: ``"lp_relaxation"`` or ``"mip"`` (the
    solver's proven bound, when lower).
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
    whole_units_from: str | None = None
    bound_from: str | None = None
    # the stable plan (policy.stable, solve(stable=True)): the optimum of the first solve,
    # which the shadow prices come from, and the seconds of the second (fewest GPUs moved)
    first_stage_objective: float | None = None
    stable_time_s: float | None = None


@dataclass(frozen=True)
class Move:
    """GPUs a segment's holding in a pool changes by between consecutive periods (churn a
    customer sees): ``moved_gpus`` is the sum over periods of |held[t] - held[t-1]|, held
    = allocations over every mode plus reservations; the largest single change and the
    period it lands in. One row per (segment, pool) pair that moves at all."""

    segment: str
    kind: str
    pool: str
    moved_gpus: float
    largest_move_gpus: float  # the largest |held[t] - held[t-1]|
    largest_move_period: str  # the period t of that change
