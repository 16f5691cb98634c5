"""Buy, rent or leave idle: what one more GPU is worth in each pool and period, against
what renting or buying one costs.

The value of one more GPU for a period is the pool's shadow price per GPU-hour times the
period's hours (nominal: money of that period). The shadow price is net of the variable
cost (the LP pays it for every GPU-hour used), so it compares directly with

* the **rental price** per GPU-hour (paid on top of the variable cost): when the plan rents
  some but not all of a pool's rentable GPUs, renting is the marginal supply and the shadow
  price equals the rental price; when it rents them all and the shadow price is higher,
  more rental capacity would pay — by the difference, per GPU-hour;
* an **amortised purchase price** per GPU-hour (an input, by pool id or accelerator type;
  by default the pool's ``fixed_cost_per_gpu_hour``, its depreciation or lease, as a proxy).
  A GPU bought into a pool is usable only after headroom, and it raises the R&D floor
  (a share of the fleet's raw GPUs), so it is worth
  ``value_per_owned_gpu = shadow × hours × (1 − headroom) + rnd_min_share × R&D floor dual``
  (the dual, in the period's money, is ≤ 0 when the floor binds).

:func:`capacity_value` returns one :class:`CapacityValue` per pool and period with a
recommendation:

* ``"leave idle"`` — the shadow price is zero: usable GPUs sit idle, one more adds nothing;
* ``"rent more"`` — every rentable GPU is rented and one more is worth more than its price;
* ``"buy"`` — one more owned GPU is worth more than its amortised price in this period and
  in most periods of the horizon (more than ``buy_share`` of them);
* ``"rent as needed"`` — the plan rents part of what it may: renting is the marginal supply;
* ``"fully used, not worth renting"`` — capacity binds, but renting (if offered) costs at
  least what a GPU earns, and buying does not pay in most periods.

Limits: the value is a marginal one (it holds for small changes, within the shadow price's
range; see the sensitivity analysis for how far); the bounds of the stability and
segment-share rows also grow with a pool's capacity and are left out of the value: where
such a row binds on the pool in the period, a GPU is worth **more** than its shadow price
says, and the row's ``loosens`` names those limits and its reason says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from allocator.lp.arrays import ScenarioArrays
from allocator.numbers import short
from allocator.plan import Plan
from allocator.plan.text import table
from allocator.scenario import Pool, Scenario, per_period, top

LEAVE_IDLE = "leave idle"
RENT_MORE = "rent more"
BUY = "buy"
RENT_AS_NEEDED = "rent as needed"
FULLY_USED = "fully used, not worth renting"
RECOMMENDATIONS = (LEAVE_IDLE, RENT_MORE, BUY, RENT_AS_NEEDED, FULLY_USED)

PRICE_TOL = 1e-6  # relative tolerance on prices per GPU-hour
GPU_TOL = 1e-6  # relative tolerance on GPU counts


@dataclass(frozen=True)
class CapacityValue:
    """One pool in one period. Money is nominal (that period's); ``*_per_gpu`` is per GPU
    for the whole period (per GPU-hour × hours)."""

    pool: str
    accelerator: str
    region: str
    ownership: str
    period: str
    hours: float
    gpus: float  # own GPUs
    usable: float  # own GPUs after headroom
    used: float
    rented: float
    rentable: float
    surplus: float  # usable + rented - used: GPUs idle beyond the headroom
    shadow_price_per_gpu_hour: float
    value_per_gpu: float  # one more usable (or rented) GPU for the period
    value_per_owned_gpu: float  # one more GPU of the pool's own (headroom, R&D floor)
    rental_price_per_gpu_hour: float | None  # None when nothing is rentable in the period
    rental_cost_per_gpu: float | None
    rental_exhausted: bool
    rent_more_value_per_gpu: float | None  # value_per_gpu - rental cost, when renting more
    fixed_cost_per_gpu: float  # depreciation or lease over the period
    purchase_price_per_gpu_hour: float | None  # amortised; None when unknown
    purchase_price_source: str | None  # "input", "fixed_cost" or None
    purchase_cost_per_gpu: float | None
    buy_value_per_gpu: float | None  # value_per_owned_gpu - purchase cost
    periods_worth_buying: int  # periods of this pool where buying pays
    recommendation: str
    reason: str
    # binding limits that grow with the pool's GPUs ("segment-share of <segment>",
    # "segment-stability of <segment>"): one more GPU is worth more than value_per_gpu
    loosens: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _purchase_prices(
    sc: Scenario, price: float | Mapping[str, float] | None
) -> tuple[list[float | list[float] | None], list[str | None]]:
    """Amortised purchase price per GPU-hour of every pool, and where it came from."""
    prices: list[float | list[float] | None] = []
    sources: list[str | None] = []
    if isinstance(price, Mapping):
        known = {p.id for p in sc.pools} | {p.accelerator for p in sc.pools}
        unknown = sorted(set(price) - known)
        if unknown:
            raise ValueError(
                f"purchase_price_per_gpu_hour names {unknown}: neither a pool id nor an "
                f"accelerator type of scenario {sc.name!r}"
            )
    for p in sc.pools:
        given = price.get(p.id, price.get(p.accelerator)) if isinstance(price, Mapping) else price
        if given is not None:
            if not (np.isfinite(given) and given >= 0):
                raise ValueError(
                    f"purchase price per GPU-hour of pool {p.id!r} must be a finite number "
                    f">= 0, got {given!r}"
                )
            prices.append(float(given))
            sources.append("input")
        elif top(p.fixed_cost_per_gpu_hour) > 0 and p.ownership.value != "rented":
            fc = p.fixed_cost_per_gpu_hour  # one number, or one per period
            prices.append(list(fc) if isinstance(fc, list) else float(fc))
            sources.append("fixed_cost")
        else:
            prices.append(None)
            sources.append(None)
    return prices, sources


def _money(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def capacity_value(
    plan: Plan,
    scenario: Scenario,
    *,
    purchase_price_per_gpu_hour: float | Mapping[str, float] | None = None,
    buy_share: float = 0.5,
) -> list[CapacityValue]:
    """The value of one more GPU per pool and period against renting and buying it.

    ``plan`` must be a plan of ``scenario`` with shadow prices. ``purchase_price_per_gpu_hour``
    is the amortised price of buying (or leasing) a GPU, per GPU-hour: one number for every
    pool, or a mapping by pool id or accelerator type (pool id first); pools it does not
    name fall back on their ``fixed_cost_per_gpu_hour`` (not for rented pools). ``buy``
    is recommended where buying pays in more than ``buy_share`` of the pool's periods.
    """
    _check_plan(plan, scenario, buy_share)
    m = _margins(plan, scenario, purchase_price_per_gpu_hour, buy_share)
    caps = _capacity_caps(plan)
    rows = []
    for j, pool in enumerate(scenario.pools):
        for t, label in enumerate(scenario.period_labels):
            row = _capacity_row(m, pool, j, t, label)
            loosens = caps.get((pool.id, label), ())
            if loosens:
                limits = (
                    "binding limits that grow" if len(loosens) > 1 else "binding limit that grows"
                )
                note = (
                    f"; worth more than its shadow price says: it also loosens {len(loosens)} "
                    f"{limits} with the pool "
                    f"({', '.join(loosens[:3])}{', …' if len(loosens) > 3 else ''})"
                )
                row = replace(row, loosens=tuple(loosens), reason=row.reason + note)
            rows.append(row)
    return rows


CAPACITY_CAPS = ("segment-share", "segment-stability")  # rows whose bounds grow with GPUs


def _capacity_caps(plan: Plan) -> dict[tuple[str, str], list[str]]:
    """The binding rows whose bounds grow with a pool's GPUs, by (pool, period)."""
    out: dict[tuple[str, str], list[str]] = {}
    for b in plan.binding:
        k = b.key
        if b.constraint in CAPACITY_CAPS and "pool" in k and "period" in k:
            what = f"{b.constraint.removeprefix('segment-')} of {k.get('segment', '?')}"
            out.setdefault((k["pool"], k["period"]), []).append(what)
    return out


def parse_purchase_prices(text: str) -> float | dict[str, float]:
    """``"2.1"`` (every pool) or ``"H100=2.1,B200=3.4"`` (by accelerator type or pool id),
    per GPU-hour; a ValueError names what is wrong."""
    text = text.strip()
    if "=" not in text:
        return _price_number(text, "purchase price")
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"purchase price {part.strip()!r}: expected TYPE=PRICE (e.g. H100=2.1)"
            )
        out[key.strip()] = _price_number(value, f"purchase price of {key.strip()}")
    return out


def _price_number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text.strip()!r} is not a number") from None
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {text.strip()!r}")
    return v


def _check_plan(plan: Plan, scenario: Scenario, buy_share: float) -> None:
    """``buy_share`` is a share below 1, and ``plan`` is a plan of ``scenario`` (the same
    pools and periods) with shadow prices."""
    if not 0 <= buy_share < 1:
        raise ValueError(f"buy_share must be in [0, 1), got {buy_share!r}")
    labels = scenario.period_labels
    pool_ids = [p.id for p in scenario.pools]
    if list(plan.periods) != labels or {r.pool for r in plan.pools} != set(pool_ids):
        raise ValueError(
            f"plan {plan.scenario!r} was not made from scenario {scenario.name!r}: its pools "
            "or periods differ"
        )
    if not plan.has_duals or any(r.shadow_price_per_gpu_hour is None for r in plan.pools):
        raise ValueError(
            "the plan has no shadow prices (the solver returned no duals): "
            "capacity value needs them"
        )


@dataclass
class _Margins:
    """What one more GPU of each pool is worth in each period, what renting or buying
    one costs, and the conditions the recommendation reads: arrays of shape (P, T)
    (per pool: ``purchase``, ``source``, ``has_price``, ``worth_periods``)."""

    arr: ScenarioArrays
    T: int
    price: np.ndarray  # shadow price per GPU-hour, nominal, >= 0
    used: np.ndarray
    rented: np.ndarray
    usable: np.ndarray
    surplus: np.ndarray
    value: np.ndarray  # one more usable GPU for the period
    value_owned: np.ndarray  # one more owned GPU (headroom, R&D floor)
    rent_price: np.ndarray
    can_rent: np.ndarray
    exhausted: np.ndarray
    partly: np.ndarray
    tol: np.ndarray  # price tolerance against the rental price
    idle: np.ndarray
    rent_more: np.ndarray
    purchase: list[float | list[float] | None]
    source: list[str | None]
    has_price: np.ndarray
    purchase_cost: np.ndarray
    worth_periods: np.ndarray
    buy: np.ndarray


def _plan_grid(plan: Plan, scenario: Scenario, attr: str) -> np.ndarray:
    """One attribute of the plan's pool rows as a (P, T) array (None counts 0)."""
    labels = scenario.period_labels
    pool_ids = [p.id for p in scenario.pools]
    row_of = {(r.pool, r.period): r for r in plan.pools}
    rows = [[row_of[(p, t)] for t in labels] for p in pool_ids]
    return np.array([[float(getattr(r, attr) or 0.0) for r in rs] for rs in rows]).reshape(
        len(pool_ids), len(labels)
    )


def _rnd_floor_dual(plan: Plan, scenario: Scenario, arr: ScenarioArrays) -> np.ndarray:
    """The R&D floor's dual per period in nominal money per GPU of floor (<= 0 when it
    binds): the floor rises by ``rnd_min_share`` for every GPU added to the fleet."""
    labels = scenario.period_labels
    rnd_dual = np.zeros(len(labels))
    for b in plan.binding:
        if b.constraint == "rnd-floor" and b.dual is not None and b.key.get("period") in labels:
            t = labels.index(b.key["period"])
            rnd_dual[t] = min(b.dual, 0.0) / arr.discount[t]
    return rnd_dual


def _margins(
    plan: Plan,
    scenario: Scenario,
    purchase_price: float | Mapping[str, float] | None,
    buy_share: float,
) -> _Margins:
    """The value of one more GPU from the plan's shadow prices, the state of renting
    (exhausted, partly used) and where buying pays (in more than ``buy_share`` of the
    periods)."""
    T = len(scenario.period_labels)
    arr = ScenarioArrays.of(scenario)
    hours = arr.hours[None, :]
    price = np.maximum(_plan_grid(plan, scenario, "shadow_price_per_gpu_hour"), 0.0)
    used, rented, usable = (_plan_grid(plan, scenario, a) for a in ("used", "rented", "usable"))
    value = price * hours
    rnd_dual = _rnd_floor_dual(plan, scenario, arr)
    value_owned = value * (1.0 - arr.headroom)[:, None] + scenario.policy.rnd_min_share * rnd_dual

    rentable = arr.rentable
    rent_price = arr.rental_price  # (P, T)
    can_rent = rentable > 0
    exhausted = can_rent & (rented >= rentable * (1 - GPU_TOL) - GPU_TOL)
    partly = can_rent & ~exhausted & (rented > GPU_TOL * np.maximum(1.0, rentable))
    tol = PRICE_TOL * np.maximum(1.0, rent_price)
    idle = price <= PRICE_TOL
    rent_more = exhausted & (price > rent_price + tol)

    purchase, source = _purchase_prices(scenario, purchase_price)
    has_price = np.array([v is not None for v in purchase])
    purchase_h = np.array([per_period(0.0 if v is None else v, T) for v in purchase]).reshape(
        len(purchase), T
    )
    purchase_cost = purchase_h * hours
    pays = has_price[:, None] & (value_owned > purchase_cost * (1 + PRICE_TOL) + PRICE_TOL)
    worth_periods = pays.sum(axis=1)
    buy_pool = worth_periods > buy_share * T
    buy = buy_pool[:, None] & pays & ~idle
    return _Margins(
        arr=arr,
        T=T,
        price=price,
        used=used,
        rented=rented,
        usable=usable,
        surplus=np.maximum(usable + rented - used, 0.0),
        value=value,
        value_owned=value_owned,
        rent_price=rent_price,
        can_rent=can_rent,
        exhausted=exhausted,
        partly=partly,
        tol=tol,
        idle=idle,
        rent_more=rent_more,
        purchase=purchase,
        source=source,
        has_price=has_price,
        purchase_cost=purchase_cost,
        worth_periods=worth_periods,
        buy=buy,
    )


def _recommend(
    m: _Margins,
    j: int,
    t: int,
    rp: float | None,
    pc: float | None,
    rent_net: float | None,
    buy_net: float | None,
) -> tuple[str, str]:
    """The recommendation for pool ``j`` in period ``t`` and the reason, in numbers:
    leave idle, rent more, buy, rent as needed, or fully used (the first that holds)."""
    T, price, rentable = m.T, m.price, m.arr.rentable
    buy_note = (
        f"; buying also pays: an owned GPU earns {_money(float(m.value_owned[j, t]))} "
        f"against {_money(pc or 0.0)} amortised"
        if m.buy[j, t]
        else ""
    )
    if m.idle[j, t]:
        return LEAVE_IDLE, (
            f"{short(m.surplus[j, t])} usable GPUs idle: one more GPU adds nothing"
            if m.surplus[j, t] > GPU_TOL * max(1.0, float(m.usable[j, t]))
            else "fully used, but one more GPU would add nothing"
        )
    if m.rent_more[j, t]:
        assert rp is not None and rent_net is not None
        return RENT_MORE, (
            f"all {short(rentable[j, t])} rentable GPUs are rented and one more is worth "
            f"{short(price[j, t])} per GPU-hour against {short(rp)} rent: "
            f"{_money(rent_net)} per GPU over the period{buy_note}"
        )
    if m.buy[j, t]:
        assert pc is not None and buy_net is not None
        return BUY, (
            f"an owned GPU earns {_money(float(m.value_owned[j, t]))} over the period "
            f"against {_money(pc)} amortised ({int(m.worth_periods[j])} of {T} periods "
            f"pay): {_money(buy_net)} per GPU"
        )
    if m.partly[j, t]:
        return RENT_AS_NEEDED, (
            f"{short(m.rented[j, t])} of {short(rentable[j, t])} rentable GPUs rented: "
            f"renting is the marginal supply, worth its price ({short(rp)} per GPU-hour)"
        )
    return FULLY_USED, _fully_used_reason(m, j, t, rp, pc)


def _fully_used_reason(m: _Margins, j: int, t: int, rp: float | None, pc: float | None) -> str:
    """Why a pool whose capacity binds is not worth more rentals or purchases."""
    price = m.price
    if rp is None:
        reason = f"capacity binds ({short(price[j, t])} per GPU-hour) and no rental is offered"
    else:
        even = abs(price[j, t] - rp) <= m.tol[j, t]
        reason = (
            f"one more GPU is worth {short(price[j, t])} per GPU-hour, renting one "
            f"costs {short(rp)}" + (": renting more breaks even" if even else "")
        )
    if pc is not None:
        reason += (
            f"; buying pays in {int(m.worth_periods[j])} of {m.T} periods"
            if m.worth_periods[j]
            else "; buying does not pay"
        )
    return reason


def _capacity_row(m: _Margins, pool: Pool, j: int, t: int, label: str) -> CapacityValue:
    """The row of pool ``j`` (``pool``) in period ``t`` (``label``), in money of the period."""
    arr = m.arr
    v, h = float(m.value[j, t]), float(arr.hours[t])
    rp = float(m.rent_price[j, t]) if m.can_rent[j, t] else None
    pc = float(m.purchase_cost[j, t]) if m.has_price[j] else None
    buy_net = float(m.value_owned[j, t]) - pc if pc is not None else None
    rent_net = v - rp * h if rp is not None else None
    rec, reason = _recommend(m, j, t, rp, pc, rent_net, buy_net)
    return CapacityValue(
        pool=pool.id,
        accelerator=pool.accelerator,
        region=pool.region,
        ownership=pool.ownership.value,
        period=label,
        hours=h,
        gpus=float(arr.gpus[j, t]),
        usable=float(m.usable[j, t]),
        used=float(m.used[j, t]),
        rented=float(m.rented[j, t]),
        rentable=float(arr.rentable[j, t]),
        surplus=float(m.surplus[j, t]),
        shadow_price_per_gpu_hour=float(m.price[j, t]),
        value_per_gpu=v,
        value_per_owned_gpu=float(m.value_owned[j, t]),
        rental_price_per_gpu_hour=rp,
        rental_cost_per_gpu=rp * h if rp is not None else None,
        rental_exhausted=bool(m.exhausted[j, t]),
        rent_more_value_per_gpu=rent_net if m.rent_more[j, t] else None,
        fixed_cost_per_gpu=float(arr.fixed_cost[j, t] * h),
        purchase_price_per_gpu_hour=float(m.purchase_cost[j, t] / h) if m.has_price[j] else None,
        purchase_price_source=m.source[j],
        purchase_cost_per_gpu=pc,
        buy_value_per_gpu=buy_net,
        periods_worth_buying=int(m.worth_periods[j]),
        recommendation=rec,
        reason=reason,
    )


def capacity_table(rows: list[CapacityValue], currency: str = "") -> str:
    """The rows as an aligned text table: pool, period, value of one more usable GPU and
    of one more owned GPU, rental and amortised purchase cost per GPU (each for the whole
    period, nominal), recommendation."""
    unit = f" ({currency}/GPU-period)" if currency else " (per GPU-period)"
    headers = ["pool", "period", "value" + unit, "owned GPU value" + unit]
    headers += ["rent" + unit, "buy" + unit, "recommendation", "reason"]
    cells = [
        [
            r.pool,
            r.period,
            _money(r.value_per_gpu),
            _money(r.value_per_owned_gpu),
            "-" if r.rental_cost_per_gpu is None else _money(r.rental_cost_per_gpu),
            "-" if r.purchase_cost_per_gpu is None else _money(r.purchase_cost_per_gpu),
            r.recommendation,
            r.reason,
        ]
        for r in rows
    ]
    return "\n".join(table(headers, cells, "llrrrrll"))
