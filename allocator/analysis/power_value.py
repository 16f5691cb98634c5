"""More power or not: what one more MW of IT power is worth in each site and period,
against a given price of power (issue 27), beside the buy/rent advice of capacity.py.

The value of one more MW for a period is the site's price of a MW-hour (the dual of its
``site-power`` row, nominal: money of that period) times the period's hours. It is net of
the energy cost (the LP pays that per GPU-hour used), so it compares directly with the
**price of power** per MWh of IT power: a lease of shell capacity or a power purchase,
given by site id (one number or one per period).

* ``"power to spare"``: the site has free power (its price is zero): more adds nothing;
* ``"more power pays"``: a MW is worth more than its price;
* ``"not worth its price"``: power binds, but a MW earns less than it costs.

The value is marginal: it holds within the range of the price (see
``Sensitivity.power``, how far the price holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from allocator.plan import Plan
from allocator.scenario import Scenario, per_period

POWER_TO_SPARE = "power to spare"
MORE_PAYS = "more power pays"
NOT_WORTH = "not worth its price"


@dataclass(frozen=True)
class PowerValue:
    site: str
    period: str
    power_mw: float
    free_mw: float
    value_per_mwh: float  # the site's price of a MW-hour, nominal
    price_per_mwh: float | None  # the given price of power, nominal; None: not given
    value_of_one_mw: float  # value_per_mwh x hours: one more MW for the period
    recommendation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def power_value(
    plan: Plan,
    scenario: Scenario,
    price_per_mwh: Mapping[str, float | list[float]] | None = None,
) -> list[PowerValue]:
    """One row per site and period of ``plan`` (solved from ``scenario``, with duals)."""
    if not plan.has_sites:
        return []
    if not plan.has_duals:
        raise ValueError("the plan has no duals: the value of power needs shadow prices")
    T = len(scenario.periods)
    ids = [q.id for q in scenario.sites or []]
    prices = dict(price_per_mwh or {})
    unknown = sorted(set(prices) - set(ids))
    if unknown:
        from allocator.scenario.model import unknown_id

        raise ValueError("; ".join(unknown_id("site", u, ids) for u in unknown))
    hours = {p.label: p.hours for p in scenario.periods}
    labels = scenario.period_labels
    out = []
    for r in plan.sites:
        value = float(r.shadow_price_per_mwh or 0.0)
        given = prices.get(r.site)
        price = None if given is None else per_period(given, T)[labels.index(r.period)]
        if value <= 1e-9 * max(1.0, abs(value)):
            rec = POWER_TO_SPARE
        elif price is None or value > price:
            rec = MORE_PAYS
        else:
            rec = NOT_WORTH
        out.append(
            PowerValue(
                site=r.site,
                period=r.period,
                power_mw=r.power_mw,
                free_mw=r.free_mw,
                value_per_mwh=value,
                price_per_mwh=price,
                value_of_one_mw=value * hours[r.period],
                recommendation=rec,
            )
        )
    return out
