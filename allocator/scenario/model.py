"""The scenario: periods, GPU pools, demand segments and policy (pydantic v2 models).

Every per-period list has one entry per period. All money is in the scenario's currency,
all capacity in GPUs (an average over the period), all work in the segment's own unit.

Validation happens in two layers that report together:

* field checks (types, signs, NaN/inf, ranges) by pydantic, item by item, so one bad pool
  does not hide the problems of the next one;
* cross checks (list lengths against the periods, duplicate ids, unknown accelerator
  types or regions, segments no pool can serve, contract minimum above demand, floors
  above caps).

:func:`validate_scenario` returns every problem as an :class:`~allocator.errors.Issue`
with a field path such as ``segments[3].demand[5]``; :meth:`Scenario.from_dict` and
:meth:`Scenario.from_file` raise them all at once in a :class:`ScenarioError`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import typing
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from allocator.errors import Issue, ScenarioError
from allocator.numbers import short

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
# Every number is strict (an int is a number; a bool or a string is not) and bounded: amounts
# (GPUs, work units, prices, weights) by MAX_AMOUNT, and the LP coefficients made of their
# products (hours x throughput, hours x price …) by MAX_COEFFICIENT, below the 1e15 from
# which HiGHS refuses matrix values (and the 1e20 from which it treats bounds as infinite).
MAX_AMOUNT = 1e12
MAX_COEFFICIENT = 1e15
NonNeg = Annotated[float, Field(ge=0, le=MAX_AMOUNT, strict=True)]
Positive = Annotated[float, Field(gt=0, le=MAX_AMOUNT, strict=True)]
Share = Annotated[float, Field(ge=0, le=1, strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]
# a per-unit economic number (price, cost, throughput, multiplier): one value for every
# period, or a list with one value per period (issue 15: economics that move)
NonNegPP = list[NonNeg] | NonNeg
# pools' gpus and rentable_gpus: one number (the same in every period) or one per period;
# a number becomes the list when the scenario is read (expand_pool_numbers), so the model
# holds lists
ONE_OR_PER_PERIOD = {
    "anyOf": [
        {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT}},
        {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT},
    ]
}
PositivePP = list[Positive] | Positive
MAX_ALLOCATION_UNIT_GPUS = 1_000_000


class Kind(StrEnum):
    """What a segment of demand is."""

    CLOUD = "cloud"  # external customers with contracts
    FIRST_PARTY = "first_party"  # copilots, assistants
    RND = "rnd"  # training and research
    CONSUMER = "consumer"  # free tier


class Ownership(StrEnum):
    OWNED = "owned"
    LEASED = "leased"
    RENTED = "rented"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _given(*fields: str) -> list[JsonValue]:
    """JSON Schema: one branch per field, each requiring that field and not null (what the
    scenario checks enforce, published so that the schema is no looser than the service)."""
    return [{"required": [f], "properties": {f: {"not": {"type": "null"}}}} for f in fields]


class Period(_Model):
    label: Id
    hours: Annotated[float, Field(gt=0, le=1e6, strict=True)] = Field(
        description="Hours in the period (a quarter is about 2,190)."
    )


def _whole_number(v: Any) -> Any:
    """A count of GPUs per unit: a whole number (1.0 is 1), never a bool or a string."""
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer():
        raise ValueError(f"must be a whole number of GPUs (e.g. 1 or 8), got {v!r}")
    return int(v)


class Expansion(_Model):
    """GPUs the plan may buy into a pool: a decision of the LP (expansion mode)."""

    max_gpus: Annotated[float, Field(gt=0, le=1e9, strict=True)] = Field(
        description="Most GPUs that can be bought into the pool over the horizon."
    )
    cost_per_gpu_hour: NonNegPP = Field(
        description="Amortised capex per GPU-hour, paid every period once bought: one "
        "number, or one per period (the price of a GPU bought in that period)."
    )
    from_period: Id | None = Field(
        None, description="First period GPUs can be bought (and used); the first by default."
    )
    unit_gpus: Annotated[int, Field(ge=1, le=MAX_ALLOCATION_UNIT_GPUS)] | None = Field(
        None,
        description="Buy in whole multiples of this many GPUs (1 = whole GPUs, 8 = whole "
        "8-GPU nodes), shared by every segment of the pool; absent = fractional. Makes the "
        "model a MILP.",
    )

    @field_validator("unit_gpus", mode="before")
    @classmethod
    def _whole_gpus(cls, v: Any) -> Any:
        return _whole_number(v)


class Pool(_Model):
    """GPUs of one accelerator type in one region under one ownership."""

    id: Id
    accelerator: Id = Field(description="Accelerator type, e.g. H100, B200, TPU-v5e.")
    region: Id
    ownership: Ownership = Ownership.OWNED
    gpus: Annotated[list[NonNeg], WithJsonSchema(ONE_OR_PER_PERIOD)] = Field(
        description="GPUs available (before headroom): one number for every period, or one "
        "per period."
    )
    variable_cost_per_gpu_hour: NonNegPP = Field(
        description="Marginal cost of running a GPU for an hour (power, operations): one "
        "number or one per period."
    )
    fixed_cost_per_gpu_hour: NonNegPP = Field(
        0.0, description="Depreciation or lease per GPU-hour: sunk, reported, not optimised."
    )
    rentable_gpus: Annotated[list[NonNeg], WithJsonSchema(ONE_OR_PER_PERIOD)] | None = Field(
        None,
        description="Extra GPUs that can be rented (neocloud capacity): one number for every "
        "period, or one per period.",
    )
    rental_price_per_gpu_hour: NonNegPP | None = Field(
        None, description="Price of a rented GPU-hour, on top of the variable cost."
    )
    headroom: Share | None = Field(
        None, description="Share of the pool's GPUs kept free; overrides policy.headroom."
    )
    expansion: Expansion | None = Field(
        None, description="Optional: GPUs the plan may buy into this pool (expansion mode)."
    )
    allocation_unit_gpus: Annotated[int, Field(ge=1, le=MAX_ALLOCATION_UNIT_GPUS)] | None = Field(
        None,
        description="Allocate this pool's GPUs to a segment in whole multiples of this many "
        "GPUs (1 = whole GPUs, 8 = whole 8-GPU nodes); absent = fractional GPUs. Any pool "
        "with it makes the model a MILP.",
    )

    site: Id | None = Field(
        None,
        description="The site (sites[].id) whose power the pool's GPUs draw; absent = not "
        "power-limited (e.g. neocloud rentals, which bring their own power).",
    )
    power_kw_per_gpu: Annotated[float, Field(gt=0, le=1e3, strict=True)] | None = Field(
        None,
        description="All-in IT power per GPU at full power (GPU, host share, network), kW; "
        "required with site.",
    )
    power_levels: list[PowerLevel] | None = Field(
        None,
        description="Power caps the pool's GPUs may run at (needs site); full power always "
        "exists. The LP chooses how many GPUs run at each.",
    )
    retirement: Retirement | None = Field(
        None, description="GPUs the plan may retire for their salvage (needs site)."
    )
    rental_unit_gpus: Annotated[int, Field(ge=1, le=MAX_ALLOCATION_UNIT_GPUS)] | None = Field(
        None,
        description="Rent in whole multiples of this many GPUs (1 = whole GPUs, 8 = whole "
        "8-GPU nodes), shared by every segment of the pool; absent = fractional. Makes the "
        "model a MILP.",
    )

    @field_validator("rental_unit_gpus", mode="before")
    @classmethod
    def _whole_rental(cls, v: Any) -> Any:
        return _whole_number(v)

    @field_validator("allocation_unit_gpus", mode="before")
    @classmethod
    def _whole_gpus(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer():
            raise ValueError(f"must be a whole number of GPUs (e.g. 1 or 8), got {v!r}")
        return int(v)


class PowerLevel(_Model):
    """A power cap a pool's GPUs may run at: that share of their kW for that share of
    their throughput (full power, share 1 and 1, always exists)."""

    name: Id
    power_share: Annotated[float, Field(gt=0, le=1, strict=True)]
    throughput_share: Annotated[float, Field(gt=0, le=1, strict=True)]


class Retirement(_Model):
    """GPUs of a pool the plan may retire (sell): from the period retired on they draw no
    power and no variable cost, for good, and earn the salvage once."""

    salvage_per_gpu: NonNegPP = Field(
        description="Resale value of a GPU retired in that period: one number or one per "
        "period (falling over time)."
    )
    from_period: Id | None = Field(None, description="First period GPUs may be retired.")


class Site(_Model):
    """A shell: IT power (megawatts) the GPUs of the pools in it may draw (issue 27)."""

    id: Id
    region: Id
    power_mw: NonNegPP = Field(
        description="IT power available, MW: one number, or one per period (shells coming "
        "online quarter by quarter)."
    )
    pue: Annotated[float, Field(ge=1, le=10, strict=True)] = Field(
        1.0,
        description="Power usage effectiveness: facility power = IT power x PUE (for the "
        "energy cost and reporting).",
    )
    energy_price_per_mwh: NonNegPP | None = Field(
        None,
        description="Price of a MWh of facility power: one number or one per period; the "
        "energy cost of a GPU-hour (kW x PUE x price / 1000) joins the variable cost.",
    )


class Mode(_Model):
    """A way of serving a segment: full model, distilled, quantized …"""

    name: Id
    throughput_multiplier: (
        list[Annotated[float, Field(gt=0, le=1e6, strict=True)]]
        | Annotated[float, Field(gt=0, le=1e6, strict=True)]
    ) = 1.0
    revenue_share: Share = Field(1.0, description="Fraction of revenue per unit kept.")
    ltv_share: Share = Field(1.0, description="Fraction of LTV per unit kept.")


FULL_MODE = Mode(name="full")


class Reservation(_Model):
    """GPUs a segment's customer offers to reserve: a take-or-pay contract the plan may
    accept, in whole or in part.

    Each reserved GPU is dedicated to the customer for its period (it counts against its
    pool's capacity, and as the segment's GPUs for caps, floors, shares and stability) and
    pays ``price_per_gpu_hour`` for every hour, used or not. The customer runs its own work
    on it: reserved GPUs do not serve the segment's on-demand ``demand``, which is planned
    as before. In a stochastic plan reservations are decided before demand is known."""

    max_gpus: list[NonNeg] | NonNeg = Field(
        description="Most GPUs the customer would reserve: one number, or one per period."
    )
    price_per_gpu_hour: NonNeg = Field(description="Fee per reserved GPU-hour, used or not.")


class Tier(_Model):
    """One step of a segment's demand curve: this many work units per period are bought at
    this price (and bring this LTV per unit). Tiers come in falling price; the plan chooses
    how much of each to serve (concave revenue)."""

    units: list[NonNeg] | NonNeg = Field(
        description="Work units wanted at this price per period: one number or one per period."
    )
    price: NonNegPP = Field(description="Revenue per unit of this tier: one or one per period.")
    ltv_per_unit: NonNegPP = Field(0.0, description="Future value per unit served in the tier.")


class Subscription(_Model):
    """Subscribers who pay a fee per period whether their usage is served or not; their
    usage is the segment's demand, and serving less of it costs lifetime value."""

    subscribers: list[NonNeg] | NonNeg = Field(
        description="Subscribers per period: one number or one per period."
    )
    fee_per_subscriber: NonNegPP = Field(
        description="Fee per subscriber per period, earned whether usage is served or not."
    )
    usage_per_subscriber: PositivePP = Field(
        description="Work units a subscriber uses per period (at full service)."
    )
    ltv_loss_per_unit: NonNegPP = Field(
        description="Lifetime value lost (churn) per unit of usage not served (below the "
        "minimum service share, when one is given)."
    )
    min_service_share: Share | None = Field(
        None,
        description="Share of usage below which the loss applies; absent: every unit of "
        "usage not served costs the loss.",
    )


def _fill_from_tiers_or_subscription(data: Any, periods: int | None = None) -> Any:
    """A segment with tiers or a subscription may leave out ``demand`` (the tiers' units
    summed, or subscribers x usage) and ``revenue_per_unit`` (0: its revenue comes from the
    tiers, or is the usage price on top of the fee). With one number each (no list to tell
    the periods) the demand is that number in each of the scenario's ``periods`` (told by
    :func:`validate_scenario`; unknown, it is reported missing)."""
    if not isinstance(data, dict) or not (data.get("tiers") or data.get("subscription")):
        return data
    out = dict(data)
    out.setdefault("revenue_per_unit", 0.0)
    if "demand" in out:
        return out
    try:
        if out.get("tiers"):
            units = [t["units"] for t in out["tiers"]]
            T = max((len(u) for u in units if isinstance(u, list)), default=1)
            out["demand"] = [
                float(sum(u[t] if isinstance(u, list) else u for u in units)) for t in range(T)
            ]
        else:
            sub = out["subscription"]
            n, use = sub["subscribers"], sub["usage_per_subscriber"]
            T = (
                max(len(v) for v in (n, use) if isinstance(v, list))
                if any(isinstance(v, list) for v in (n, use))
                else 1
            )
            out["demand"] = [
                float(
                    (n[t] if isinstance(n, list) else n)
                    * (use[t] if isinstance(use, list) else use)
                )
                for t in range(T)
            ]
    except (KeyError, TypeError, IndexError, ValueError):
        return out  # the field checks report what is wrong
    if len(out["demand"]) == 1 and not _any_list(out):
        if periods:  # one number: the same in every period of the scenario
            out["demand"] = out["demand"] * periods
        else:
            out.pop("demand")  # the periods unknown: reported as missing
    return out


def _any_list(seg: dict[str, Any]) -> bool:
    if seg.get("tiers"):
        return any(isinstance(t.get("units"), list) for t in seg["tiers"] if isinstance(t, dict))
    sub = seg.get("subscription") or {}
    return any(isinstance(sub.get(k), list) for k in ("subscribers", "usage_per_subscriber"))


class GpuLimit(_Model):
    """Most and/or fewest GPUs a segment holds per period over all its pools (a customer's
    cap, a team's guaranteed minimum), of one accelerator type or of every type."""

    model_config = ConfigDict(json_schema_extra={"anyOf": _given("max_gpus", "min_gpus")})

    accelerator: Id | None = Field(
        None, description="Count only this accelerator type's pools; all pools when absent."
    )
    max_gpus: list[NonNeg] | NonNeg | None = Field(
        None, description="Most GPUs per period: one number, or one per period."
    )
    min_gpus: list[NonNeg] | NonNeg | None = Field(
        None, description="Fewest GPUs per period (a hard floor): one number, or one per period."
    )


class Segment(_Model):
    """Demand of one kind, in its own work unit (million tokens, GPU-hours …)."""

    id: Id
    kind: Kind
    unit: str = Field("unit", max_length=64)
    demand: list[NonNeg] = Field(description="Work units wanted per period.")
    revenue_per_unit: NonNegPP
    ltv_per_unit: NonNegPP = Field(0.0, description="Future value per unit served.")
    throughput: dict[Id, PositivePP] = Field(
        description="Work units per GPU-hour by accelerator type; only these types serve it.",
        json_schema_extra={"minProperties": 1},  # checked by _some_throughput
    )
    regions: list[Id] | None = Field(None, description="Allowed regions; all when absent.")
    contract_min: list[NonNeg] | None = Field(
        None, description="Contracted minimum work units per period."
    )
    contract_hard: StrictBool = Field(
        False,
        description="If true the minimum must be met; otherwise a shortfall pays the penalty.",
    )
    shortfall_penalty_per_unit: NonNegPP = Field(0.0, description="SLA credit per unit short.")
    churn_cost_per_unit: NonNegPP = Field(0.0, description="Cost per unit of demand left unserved.")
    modes: list[Mode] = Field(default_factory=lambda: [FULL_MODE], min_length=1)
    reservation: Reservation | None = Field(
        None,
        description="Optional: GPUs the segment's customer would reserve (take-or-pay, "
        "dedicated), which the plan may accept.",
    )
    tiers: list[Tier] | None = Field(
        None,
        min_length=1,
        description="Optional: the demand as price tiers (a demand curve), in falling price; "
        "demand defaults to the tiers' units summed and revenue_per_unit to 0.",
    )
    subscription: Subscription | None = Field(
        None,
        description="Optional: subscribers paying a fee per period; demand defaults to "
        "subscribers x usage, revenue_per_unit (a usage price on top of the fee) to 0.",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_tiers(cls, data: Any, info: ValidationInfo) -> Any:
        periods = (info.context or {}).get("periods")
        return _fill_from_tiers_or_subscription(data, periods)

    gpu_limits: list[GpuLimit] = Field(
        default_factory=list,
        description="Most/fewest GPUs the segment holds per period over its pools, "
        "optionally of one accelerator type (rows segment-gpus).",
    )

    @field_validator("throughput")
    @classmethod
    def _some_throughput(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("must name at least one accelerator type")
        return v


PerPeriod = list[NonNeg] | NonNeg


class GpuHourBudget(_Model):
    """GPU-hours a segment (or every segment of a kind) must get at least, or may get at
    most, over a window of periods, spent in whichever periods the plan finds best
    ("at least 2M H100-hours for R&D this quarter")."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": _given("segment", "kind"),
            "anyOf": _given("min_gpu_hours", "max_gpu_hours"),
        }
    )

    id: Id = Field(description="Names the budget in the plan's binding table.")
    segment: Id | None = Field(None, description="The segment; give this or kind.")
    kind: Kind | None = Field(None, description="Every segment of this kind; or give segment.")
    accelerator: Id | None = Field(
        None, description="Count only this accelerator type's pools; all pools when absent."
    )
    from_period: Id | None = Field(None, description="First period of the window (the first).")
    to_period: Id | None = Field(None, description="Last period of the window (the last).")
    min_gpu_hours: NonNeg | None = Field(None, description="Fewest GPU-hours over the window.")
    max_gpu_hours: NonNeg | None = Field(None, description="Most GPU-hours over the window.")


class Policy(_Model):
    ltv_weight: NonNeg = Field(1.0, description="Weight of LTV against gross margin.")
    rnd_min_share: Share = Field(0.0, description="Minimum share of the fleet's GPUs for R&D.")
    headroom: Annotated[float, Field(ge=0, lt=1, strict=True)] = Field(
        0.0, description="Share of every pool's GPUs kept free."
    )
    max_change_share: Share | None = Field(
        None,
        description="Most a pool's allocation to a segment may change between consecutive "
        "periods, as a share of the pool's GPUs.",
    )
    max_segment_share: Annotated[float, Field(gt=0, le=1, strict=True)] | None = Field(
        None, description="Most any one segment may take of a pool, as a share of its GPUs."
    )
    kind_caps: dict[Kind, PerPeriod] = Field(
        default_factory=dict, description="Most GPUs per period a segment kind may use."
    )
    kind_floors: dict[Kind, PerPeriod] = Field(
        default_factory=dict, description="Fewest GPUs per period a segment kind must get."
    )
    gpu_hour_budgets: list[GpuHourBudget] = Field(
        default_factory=list,
        description="GPU-hours over a window of periods a segment or kind gets at least or "
        "at most (rows gpu-hour-budget).",
    )
    stable: bool = Field(
        False,
        description="Among the plans within stable_tolerance of the optimum, return the one "
        "that moves the fewest GPUs between consecutive periods (a second solve; "
        "docs/stable-plans.md).",
    )
    stable_tolerance: Annotated[float, Field(ge=0, le=0.1, strict=True)] = Field(
        1e-7,
        description="What the stable plan may give up, relative to max(1, |optimum|).",
    )


class ScenarioHeader(_Model):
    """The top-level fields of a scenario other than its item lists."""

    name: str = Field("scenario", max_length=200)
    description: str = ""
    currency: str = Field("USD", max_length=8)
    discount_rate: Annotated[float, Field(ge=0, le=10, strict=True)] = Field(
        0.0, description="Discount rate per period."
    )
    policy: Policy = Field(default_factory=Policy)
    sites: list[Site] | None = Field(
        None,
        description="Optional shells with their IT power (issue 27); a pool names its site.",
    )


class Scenario(ScenarioHeader):
    periods: list[Period] = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    segments: list[Segment] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _pool_numbers(cls, data: Any) -> Any:
        return expand_pool_numbers(data)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        issues = cross_check(self)
        if issues:
            raise ValueError("; ".join(str(i) for i in issues))
        return self

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Validate ``data``; raise :class:`ScenarioError` listing every problem."""
        scenario, issues = validate_scenario(data)
        if issues or scenario is None:
            raise ScenarioError(issues)
        return scenario

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError([Issue("", json_error(exc))]) from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """A JSON file, or by its suffix an Excel workbook (.xlsx: see workbook.py)."""
        if Path(path).suffix.lower() in (".xlsx", ".xlsm"):
            from allocator.scenario.workbook import read_workbook

            return cls.from_dict(read_workbook(path))
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError([Issue("", f"cannot read {path}: {exc.strerror}")]) from None
        return cls.from_json(text)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    # ------------------------------------------------------------- conveniences
    @property
    def period_labels(self) -> list[str]:
        return [p.label for p in self.periods]

    def segment(self, segment_id: str) -> Segment:
        for s in self.segments:
            if s.id == segment_id:
                return s
        raise KeyError(segment_id)

    def pool(self, pool_id: str) -> Pool:
        for p in self.pools:
            if p.id == pool_id:
                return p
        raise KeyError(pool_id)

    def compatible(self, segment: Segment, pool: Pool) -> bool:
        """Can ``segment`` run on ``pool``: its type listed and its region allowed."""
        return pool.accelerator in segment.throughput and (
            segment.regions is None or pool.region in segment.regions
        )


# ---------------------------------------------------------------------- validation
def _path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def json_error(exc: json.JSONDecodeError) -> str:
    """A JSON syntax error with its line and column (where an editor goes)."""
    return f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"


def unknown_id(what: str, value: Any, ids: Iterable[str], limit: int = 40) -> str:
    """``unknown segment 'chatt'; did you mean 'chat'? (segments: chat, cloud)``: the
    closest id and the valid ones (the first ``limit``)."""
    return f"unknown {what} {value!r}{id_hint(what, value, ids, limit)}"


def id_hint(what: str, value: Any, ids: Iterable[str], limit: int = 40) -> str:
    """``"; did you mean 'chat'? (segments: chat, cloud)"``: what follows an unknown id."""
    ids = list(dict.fromkeys(ids))
    shown = ", ".join(ids[:limit]) + (f", … ({len(ids)} in all)" if len(ids) > limit else "")
    return f"{did_you_mean(value, ids)} ({what}s: {shown or 'none'})"


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``word`` (difflib), or ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_in(tp: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``Pool``, ``list[Mode]``, ``X | None``)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``loc`` below ``model`` ([] if none)."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = None if info is None else _model_in(info.annotation)
    return [] if model is None else list(model.model_fields)


def _unknown_field(loc: tuple[int | str, ...], model: type[BaseModel] | None) -> str:
    """The message for a field the model does not have, with the closest one."""
    name = loc[-1] if loc else ""
    fields = _fields_at(model, loc[:-1])
    hint = did_you_mean(name, fields)
    if not hint and fields:
        hint = f" (fields here: {', '.join(fields)})"
    return f"unknown field {name!r}{hint}"


def pydantic_issues(
    exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> list[Issue]:
    """Pydantic's errors as issues under ``prefix``; ``model`` (the model validated) lets
    an unknown field name the closest field it has."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if p not in ("function-after[_some_throughput()]",))
        # list[float] | float unions add the member type to the path: drop it.
        loc = tuple(
            p
            for p in loc
            if not (
                isinstance(p, str)
                and (p.startswith(("list[", "float", "constrained-float")) or p == "[key]")
            )
        )
        msg = err["msg"]
        if err["type"] == "finite_number":
            msg = "must be a finite number (NaN and infinity are not allowed)"
        elif err["type"] in ("float_type", "bool_type", "int_type"):
            want = "true or false" if err["type"] == "bool_type" else "a number"
            msg = (
                f"must be {want} (strict: no strings, no booleans as numbers), got {err['input']!r}"
            )
        elif err["type"] == "less_than_equal" and err.get("ctx", {}).get("le") == MAX_AMOUNT:
            msg = (
                f"must be at most {short(MAX_AMOUNT)} (the limit on any amount; "
                "use a larger unit), "
                f"got {short(err['input'])}"
            )
        elif err["type"] == "extra_forbidden":
            msg = _unknown_field(loc, model)
        elif err["type"] == "enum":
            expected = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            msg += did_you_mean(err.get("input"), expected)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(Issue(_path(loc, prefix), msg))
    # a union reports once per member; keep each (path, message) once
    issues = list(dict.fromkeys(issues))
    return _union_issues(exc, issues)


def _union_issues(exc: ValidationError, issues: list[Issue]) -> list[Issue]:
    """A one-number-or-a-list field reports a bad value once per member of the union:
    keep the member that fits what was given (a list's bad entries, or the bad number)."""
    paths = [i.path for i in issues]
    drop: set[int] = set()
    for k, issue in enumerate(issues):
        others = [q for j, q in enumerate(paths) if j != k]
        if issue.message == "Input should be a valid list" and issue.path in others:
            drop.add(k)  # the number member explains it
        elif issue.message.startswith("must be a number") and any(
            q.startswith(issue.path + "[") for q in others
        ):
            drop.add(k)  # a list was given: its entries explain it
    return [i for k, i in enumerate(issues) if k not in drop]


def _check_len(values: list[Any] | None, n: int, path: str, issues: list[Issue]) -> None:
    if values is not None and len(values) != n:
        issues.append(Issue(path, f"has {len(values)} entries, expected {n} (one per period)"))


def _dupes(ids: list[str], path: str, what: str, issues: list[Issue]) -> None:
    seen: dict[str, int] = {}
    for i, x in enumerate(ids):
        if x in seen:
            issues.append(
                Issue(f"{path}[{i}].{what}", f"duplicate {what} {x!r} (also at [{seen[x]}])")
            )
        else:
            seen[x] = i


def cross_check(
    sc: Scenario,
    pool_index: list[int] | None = None,
    segment_index: list[int] | None = None,
    check_segments: bool = True,
) -> list[Issue]:
    """Checks that span fields. ``*_index`` map items back to their original positions;
    ``check_segments=False`` skips the checks of segments against pools."""
    issues: list[Issue] = []
    T = len(sc.periods)
    pool_ix = pool_index or list(range(len(sc.pools)))
    seg_ix = segment_index or list(range(len(sc.segments)))

    labels = [p.label for p in sc.periods]
    _check_unique_ids(sc, labels, issues)
    pools = list(zip(pool_ix, sc.pools, strict=True))
    segments = list(zip(seg_ix, sc.segments, strict=True))
    _item_checks(sc, pools, segments, check_segments, issues)
    _check_policy_lengths(sc.policy, T, issues)
    _check_floors_below_caps(sc.policy, labels, issues)
    _check_budgets(sc, labels, types_of(sc), issues)
    _check_sites(sc, pool_ix, T, issues)
    return issues


def check_items(sc: Scenario, pools: list[int], segments: list[int]) -> list[Issue]:
    """The checks of :func:`cross_check` that concern one pool or one segment, for the
    pools and segments at these indexes of ``sc``: all a change of some items' numbers
    (a what-if's demand, prices, costs, GPUs) needs checked again when the rest of ``sc``
    passed. The scenario-wide checks (ids, policy, budgets) do not read those numbers."""
    issues: list[Issue] = []
    _item_checks(
        sc,
        [(j, sc.pools[j]) for j in pools],
        [(i, sc.segments[i]) for i in segments],
        True,
        issues,
    )
    return issues


def types_of(sc: Scenario) -> list[str]:
    return sorted({p.accelerator for p in sc.pools})


def _item_checks(
    sc: Scenario,
    pools: list[tuple[int, Pool]],
    segments: list[tuple[int, Segment]],
    check_segments: bool,
    issues: list[Issue],
) -> None:
    """Each pool's and segment's own checks, then their coefficients' magnitudes."""
    T = len(sc.periods)
    labels = [p.label for p in sc.periods]
    for i, pool in pools:
        _check_pool(pool, f"pools[{i}]", labels, issues)
        _check_pool_economics(pool, f"pools[{i}]", T, issues)
    types = types_of(sc)
    regions = sorted({p.region for p in sc.pools})
    for i, seg in segments:
        base = f"segments[{i}]"
        _check_segment_lengths(seg, base, T, issues)
        _check_segment_economics(seg, base, T, issues)
        _check_tiers(seg, base, labels, issues)
        _check_subscription(seg, base, labels, issues)
        _check_contract_below_demand(seg, base, labels, issues)
        if check_segments:
            _check_segment_references(sc, seg, base, types, regions, issues)
        _check_gpu_limits(seg, base, labels, types, issues)
    _check_magnitudes(sc, pools, segments, issues)


def _check_power_options(pool: Pool, base: str, labels: list[str], issues: list[Issue]) -> None:
    """Power levels and retirement need a site; levels are named uniquely; retirement
    starts in a known period, its salvage one number or one per period."""
    for name in ("power_levels", "retirement"):
        if getattr(pool, name) is not None and pool.site is None:
            issues.append(Issue(f"{base}.{name}", "needs the pool's site (power to free)"))
    if pool.power_levels:
        _dupes([lv.name for lv in pool.power_levels], f"{base}.power_levels", "name", issues)
    ret = pool.retirement
    if ret is None:
        return
    if isinstance(ret.salvage_per_gpu, list):
        _check_len(ret.salvage_per_gpu, len(labels), f"{base}.retirement.salvage_per_gpu", issues)
    if ret.from_period is not None and ret.from_period not in labels:
        issues.append(
            Issue(
                f"{base}.retirement.from_period",
                f"unknown period {ret.from_period!r}{did_you_mean(ret.from_period, labels)}",
            )
        )


def _check_sites(sc: Scenario, pool_ix: list[int], T: int, issues: list[Issue]) -> None:
    """Sites have unique ids and per-period lists of the right length; a pool names a
    known site of its region, and gives its power per GPU when it names one."""
    sites = sc.sites or []
    _dupes([q.id for q in sites], "sites", "id", issues)
    for j, q in enumerate(sites):
        for name in ("power_mw", "energy_price_per_mwh"):
            v = getattr(q, name)
            if isinstance(v, list):
                _check_len(v, T, f"sites[{j}].{name}", issues)
        hours = max(p.hours for p in sc.periods)
        if q.energy_price_per_mwh is not None and not (
            hours * q.pue * top(q.energy_price_per_mwh) < MAX_COEFFICIENT
        ):
            issues.append(
                Issue(
                    f"sites[{j}].energy_price_per_mwh",
                    f"hours x PUE x price is above {MAX_COEFFICIENT:g}; use a larger unit",
                )
            )
    by_id = {q.id: q for q in sites}
    labels = sc.period_labels
    for i, pool in zip(pool_ix, sc.pools, strict=True):
        _check_power_options(pool, f"pools[{i}]", labels, issues)
        if pool.site is None:
            continue
        site = by_id.get(pool.site)
        if site is None:
            issues.append(Issue(f"pools[{i}].site", unknown_id("site", pool.site, by_id)))
            continue
        if pool.power_kw_per_gpu is None:
            issues.append(
                Issue(
                    f"pools[{i}].power_kw_per_gpu",
                    f"required when the pool draws power from site {pool.site!r}",
                )
            )
        if site.region != pool.region:
            issues.append(
                Issue(
                    f"pools[{i}].site",
                    f"site {pool.site!r} is in region {site.region!r}, the pool in {pool.region!r}",
                )
            )


def _check_unique_ids(sc: Scenario, labels: list[str], issues: list[Issue]) -> None:
    """Period labels, pool ids and segment ids are each unique."""
    _dupes(labels, "periods", "label", issues)
    _dupes([p.id for p in sc.pools], "pools", "id", issues)
    _dupes([s.id for s in sc.segments], "segments", "id", issues)


def _check_pool(pool: Pool, base: str, labels: list[str], issues: list[Issue]) -> None:
    """A pool has one GPU count (and rentable count) per period, its expansion starts in
    a known period, and it has a rental price if it offers rentable GPUs."""
    T = len(labels)
    _check_len(pool.gpus, T, f"{base}.gpus", issues)
    _check_len(pool.rentable_gpus, T, f"{base}.rentable_gpus", issues)
    exp = pool.expansion
    if exp is not None and exp.from_period is not None and exp.from_period not in labels:
        issues.append(
            Issue(
                f"{base}.expansion.from_period",
                f"unknown period {exp.from_period!r}{did_you_mean(exp.from_period, labels)}",
            )
        )
    if pool.rental_unit_gpus is not None and not (pool.rentable_gpus and any(pool.rentable_gpus)):
        issues.append(Issue(f"{base}.rental_unit_gpus", "needs rentable_gpus to rent from"))
    if pool.rentable_gpus and any(pool.rentable_gpus) and pool.rental_price_per_gpu_hour is None:
        issues.append(
            Issue(f"{base}.rental_price_per_gpu_hour", "required when rentable_gpus is given")
        )


def _check_segment_lengths(seg: Segment, base: str, T: int, issues: list[Issue]) -> None:
    """A segment's demand, contract minimums and reservation limits have one entry per
    period, and its modes are named uniquely."""
    _check_len(seg.demand, T, f"{base}.demand", issues)
    _check_len(seg.contract_min, T, f"{base}.contract_min", issues)
    if seg.reservation is not None and isinstance(seg.reservation.max_gpus, list):
        _check_len(seg.reservation.max_gpus, T, f"{base}.reservation.max_gpus", issues)
    _dupes([m.name for m in seg.modes], f"{base}.modes", "name", issues)


POOL_ECONOMICS = (
    "variable_cost_per_gpu_hour",
    "fixed_cost_per_gpu_hour",
    "rental_price_per_gpu_hour",
)
SEGMENT_ECONOMICS = (
    "revenue_per_unit",
    "ltv_per_unit",
    "shortfall_penalty_per_unit",
    "churn_cost_per_unit",
)


def _check_pool_economics(pool: Pool, base: str, T: int, issues: list[Issue]) -> None:
    """A pool's per-unit numbers given as lists have one entry per period."""
    for name in POOL_ECONOMICS:
        v = getattr(pool, name)
        if isinstance(v, list):
            _check_len(v, T, f"{base}.{name}", issues)
    if pool.expansion is not None and isinstance(pool.expansion.cost_per_gpu_hour, list):
        _check_len(
            pool.expansion.cost_per_gpu_hour, T, f"{base}.expansion.cost_per_gpu_hour", issues
        )


def _check_segment_economics(seg: Segment, base: str, T: int, issues: list[Issue]) -> None:
    """A segment's per-unit numbers (prices, costs, throughputs, mode multipliers) given as
    lists have one entry per period."""
    for name in SEGMENT_ECONOMICS:
        v = getattr(seg, name)
        if isinstance(v, list):
            _check_len(v, T, f"{base}.{name}", issues)
    for acc, v in seg.throughput.items():
        if isinstance(v, list):
            _check_len(v, T, f"{base}.throughput.{acc}", issues)
    for j, m in enumerate(seg.modes):
        if isinstance(m.throughput_multiplier, list):
            _check_len(
                m.throughput_multiplier, T, f"{base}.modes[{j}].throughput_multiplier", issues
            )


def _equal(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _check_tiers(seg: Segment, base: str, labels: list[str], issues: list[Issue]) -> None:
    """Tiers: one entry per period where lists, prices falling from tier to tier, units
    adding up to the demand; revenue comes from the tiers alone (revenue_per_unit 0, every
    mode keeping the whole price)."""
    if not seg.tiers:
        return
    T = len(labels)
    ok = True
    for j, tier in enumerate(seg.tiers):
        for name in ("units", "price", "ltv_per_unit"):
            v = getattr(tier, name)
            if isinstance(v, list) and len(v) != T:
                _check_len(v, T, f"{base}.tiers[{j}].{name}", issues)
                ok = False
    if seg.subscription is not None:
        issues.append(Issue(f"{base}.tiers", "a segment has tiers or a subscription, not both"))
    if top(seg.revenue_per_unit) > 0:
        issues.append(
            Issue(
                f"{base}.revenue_per_unit",
                "must be 0 (or left out) with tiers: the tiers' prices are the revenue",
            )
        )
    for j, m in enumerate(seg.modes):
        if m.revenue_share != 1.0:
            issues.append(
                Issue(
                    f"{base}.modes[{j}].revenue_share",
                    "must be 1 with tiers (a tier's price is per unit served, in any mode)",
                )
            )
    if not ok:
        return
    units = [per_period(t.units, T) for t in seg.tiers]
    prices = [per_period(t.price, T) for t in seg.tiers]
    for j in range(1, len(seg.tiers)):
        for t in range(T):
            if prices[j][t] > prices[j - 1][t]:
                issues.append(
                    Issue(
                        f"{base}.tiers[{j}].price",
                        f"tiers come in falling price: {short(prices[j][t])} is above the "
                        f"previous tier's {short(prices[j - 1][t])} in period {labels[t]!r}",
                    )
                )
                break
    if len(seg.demand) == T:
        for t in range(T):
            total = sum(u[t] for u in units)
            if not _equal(total, seg.demand[t]):
                issues.append(
                    Issue(
                        f"{base}.demand[{t}]",
                        f"demand {short(seg.demand[t])} is not the tiers' units "
                        f"{short(total)} in period "
                        f"{labels[t]!r} (leave demand out to take the tiers')",
                    )
                )
                break


def _check_gpu_limits(
    seg: Segment, base: str, labels: list[str], types: list[str], issues: list[Issue]
) -> None:
    """A segment's GPU limits: one per accelerator type (or one for all types), a type the
    segment can use, one value per period, and a floor at most its cap."""
    T = len(labels)
    seen: dict[str | None, int] = {}
    for j, lim in enumerate(seg.gpu_limits):
        path = f"{base}.gpu_limits[{j}]"
        if lim.accelerator in seen:
            what = lim.accelerator or "all types"
            issues.append(
                Issue(
                    f"{path}.accelerator",
                    f"a second limit for {what} (also at [{seen[lim.accelerator]}])",
                )
            )
        else:
            seen[lim.accelerator] = j
        if lim.accelerator is not None and lim.accelerator not in seg.throughput:
            issues.append(
                Issue(
                    f"{path}.accelerator",
                    f"{lim.accelerator!r} is not one of the segment's accelerator types "
                    f"({', '.join(sorted(seg.throughput))})",
                )
            )
        if lim.max_gpus is None and lim.min_gpus is None:
            issues.append(Issue(path, "needs max_gpus, min_gpus or both"))
        for name in ("max_gpus", "min_gpus"):
            v = getattr(lim, name)
            if isinstance(v, list):
                _check_len(v, T, f"{path}.{name}", issues)
        if lim.max_gpus is None or lim.min_gpus is None:
            continue
        lo, hi = _per_period(lim.min_gpus, T), _per_period(lim.max_gpus, T)
        if lo is None or hi is None:
            continue
        for t in range(T):
            if lo[t] > hi[t]:
                issues.append(
                    Issue(
                        f"{path}.min_gpus",
                        f"floor {short(lo[t])} is above the cap {short(hi[t])} "
                        f"in period {labels[t]!r}",
                    )
                )
                break


def _check_subscription(seg: Segment, base: str, labels: list[str], issues: list[Issue]) -> None:
    """A subscription: lists of one entry per period, demand = subscribers x usage, and a
    minimum service share only without a contract minimum (both are the same kind of row)."""
    sub = seg.subscription
    if sub is None:
        return
    T = len(labels)
    ok = True
    for name in (
        "subscribers",
        "fee_per_subscriber",
        "usage_per_subscriber",
        "ltv_loss_per_unit",
    ):
        v = getattr(sub, name)
        if isinstance(v, list) and len(v) != T:
            _check_len(v, T, f"{base}.subscription.{name}", issues)
            ok = False
    if sub.min_service_share is not None and seg.contract_min is not None:
        issues.append(
            Issue(
                f"{base}.subscription.min_service_share",
                "a subscription's minimum service share and a contract minimum cannot be combined",
            )
        )
    if not ok or len(seg.demand) != T:
        return
    n, use = per_period(sub.subscribers, T), per_period(sub.usage_per_subscriber, T)
    for t in range(T):
        if not _equal(n[t] * use[t], seg.demand[t]):
            issues.append(
                Issue(
                    f"{base}.demand[{t}]",
                    f"demand {short(seg.demand[t])} is not subscribers x usage "
                    f"{short(n[t] * use[t])} in "
                    f"period {labels[t]!r} (leave demand out to take it)",
                )
            )
            break


def top(v: float | list[float] | None) -> float:
    """The largest value of a scalar-or-per-period number (0 for None or an empty list)."""
    if v is None:
        return 0.0
    if isinstance(v, list):
        return max(v, default=0.0)
    return float(v)


def _check_contract_below_demand(
    seg: Segment, base: str, labels: list[str], issues: list[Issue]
) -> None:
    """A segment's contract minimum is at most its demand in every period."""
    T = len(labels)
    if seg.contract_min is None or len(seg.contract_min) != T or len(seg.demand) != T:
        return
    for t, (m, d) in enumerate(zip(seg.contract_min, seg.demand, strict=True)):
        if m > d * (1 + 1e-12):
            issues.append(
                Issue(
                    f"{base}.contract_min[{t}]",
                    f"contract minimum {short(m)} is above demand {short(d)} "
                    f"in period {labels[t]!r}",
                )
            )


def _check_segment_references(
    sc: Scenario,
    seg: Segment,
    base: str,
    types: list[str],
    regions: list[str],
    issues: list[Issue],
) -> None:
    """A segment names only accelerator types and regions some pool has, and at least
    one pool can serve it."""
    _check_names(list(seg.throughput), list(seg.regions or []), base, types, regions, issues)
    if not any(sc.compatible(seg, p) for p in sc.pools):
        issues.append(
            Issue(
                base,
                f"segment {seg.id!r} cannot be served by any pool: it lists accelerator "
                f"types {sorted(seg.throughput)} in regions "
                f"{seg.regions if seg.regions is not None else 'any'}",
            )
        )


def _check_names(
    accelerators: list[str],
    wanted_regions: list[str],
    base: str,
    types: list[str],
    regions: list[str],
    issues: list[Issue],
) -> None:
    """Accelerator types and regions a segment names are among the pools' (the closest
    one suggested for a typo)."""
    for acc in accelerators:
        if acc not in types:
            issues.append(
                Issue(
                    f"{base}.throughput.{acc}",
                    f"unknown accelerator type {acc!r}{did_you_mean(acc, types)} "
                    f"(pools have: {', '.join(types)})",
                )
            )
    for j, r in enumerate(wanted_regions):
        if r not in regions:
            issues.append(
                Issue(
                    f"{base}.regions[{j}]",
                    f"unknown region {r!r}{did_you_mean(r, regions)} "
                    f"(pools are in: {', '.join(regions)})",
                )
            )


def _check_policy_lengths(pol: Policy, T: int, issues: list[Issue]) -> None:
    """Kind caps and floors given per period have one entry per period."""
    for attr in ("kind_caps", "kind_floors"):
        for kind, v in getattr(pol, attr).items():
            if isinstance(v, list):
                _check_len(v, T, f"policy.{attr}.{kind.value}", issues)


def _check_floors_below_caps(pol: Policy, labels: list[str], issues: list[Issue]) -> None:
    """A kind's floor is at most its cap in every period (the first period above it is
    reported)."""
    T = len(labels)
    caps = {k: _per_period(v, T) for k, v in pol.kind_caps.items()}
    for kind, v in pol.kind_floors.items():
        floor = _per_period(v, T)
        cap = caps.get(kind)
        if cap is None or floor is None:
            continue
        for t in range(T):
            if floor[t] > cap[t]:
                issues.append(
                    Issue(
                        f"policy.kind_floors.{kind.value}",
                        f"floor {short(floor[t])} is above the cap {short(cap[t])} "
                        f"in period {labels[t]!r}",
                    )
                )
                break


def _check_budgets(sc: Scenario, labels: list[str], types: list[str], issues: list[Issue]) -> None:
    """GPU-hour budgets: unique ids, one segment or one kind, known segment, accelerator
    type and periods, a window in order, a bound, and a floor at most its cap."""
    seen: dict[str, int] = {}
    seg_ids = {s.id for s in sc.segments}
    for j, b in enumerate(sc.policy.gpu_hour_budgets):
        path = f"policy.gpu_hour_budgets[{j}]"
        if b.id in seen:
            issues.append(Issue(f"{path}.id", f"duplicate id {b.id!r} (also at [{seen[b.id]}])"))
        seen.setdefault(b.id, j)
        if (b.segment is None) == (b.kind is None):
            issues.append(Issue(path, "give exactly one of segment and kind"))
        elif b.segment is not None and b.segment not in seg_ids:
            issues.append(Issue(f"{path}.segment", f"unknown segment {b.segment!r}"))
        if b.accelerator is not None and b.accelerator not in types:
            issues.append(
                Issue(
                    f"{path}.accelerator",
                    f"unknown accelerator type {b.accelerator!r} (pools have: {', '.join(types)})",
                )
            )
        ends = []
        for name in ("from_period", "to_period"):
            v = getattr(b, name)
            if v is not None and v not in labels:
                issues.append(Issue(f"{path}.{name}", f"unknown period {v!r}"))
            ends.append(v)
        if all(e in labels for e in ends) and labels.index(ends[0]) > labels.index(ends[1]):  # type: ignore[arg-type]
            issues.append(Issue(f"{path}.to_period", f"{ends[1]!r} comes before {ends[0]!r}"))
        if b.min_gpu_hours is None and b.max_gpu_hours is None:
            issues.append(Issue(path, "needs min_gpu_hours, max_gpu_hours or both"))
        elif (
            b.min_gpu_hours is not None
            and b.max_gpu_hours is not None
            and b.min_gpu_hours > b.max_gpu_hours
        ):
            issues.append(
                Issue(
                    f"{path}.min_gpu_hours",
                    f"floor {short(b.min_gpu_hours)} is above the cap {short(b.max_gpu_hours)}",
                )
            )


def _check_magnitudes(
    sc: Scenario,
    pools: list[tuple[int, Pool]],
    segments: list[tuple[int, Segment]],
    issues: list[Issue],
) -> None:
    """Products of amounts that become one LP coefficient stay below MAX_COEFFICIENT."""
    hours = max(p.hours for p in sc.periods)

    def check(value: float, path: str, what: str) -> None:
        if not value < MAX_COEFFICIENT:  # also catches inf and nan
            issues.append(
                Issue(
                    path,
                    f"{what} is {short(value)}, the limit is {short(MAX_COEFFICIENT)} "
                    "(HiGHS refuses "
                    "larger coefficients); use a larger unit or shorter periods",
                )
            )

    for i, pool in pools:
        for name in (
            "variable_cost_per_gpu_hour",
            "fixed_cost_per_gpu_hour",
            "rental_price_per_gpu_hour",
        ):
            v = getattr(pool, name)
            if v is not None:
                check(hours * top(v), f"pools[{i}].{name}", "hours x price per GPU-hour")
        if pool.expansion is not None:
            check(
                hours * len(sc.periods) * top(pool.expansion.cost_per_gpu_hour),
                f"pools[{i}].expansion.cost_per_gpu_hour",
                "hours over the horizon x price per GPU-hour",
            )
    weight = sc.policy.ltv_weight
    for i, seg in segments:
        mult = max(top(m.throughput_multiplier) for m in seg.modes)
        value = (
            top(seg.revenue_per_unit)
            + weight * top(seg.ltv_per_unit)
            + top(seg.churn_cost_per_unit)
            + top(seg.shortfall_penalty_per_unit)
            + max(
                (top(t.price) + weight * top(t.ltv_per_unit) for t in seg.tiers or []),
                default=0.0,
            )
            + (top(seg.subscription.ltv_loss_per_unit) if seg.subscription else 0.0)
        )
        for acc, tp in seg.throughput.items():
            units = hours * top(tp) * mult
            check(
                units,
                f"segments[{i}].throughput.{acc}",
                "work units per GPU over a period (hours x throughput x mode multiplier)",
            )
            check(
                units * value,
                f"segments[{i}].revenue_per_unit",
                "value per GPU over a period (work units x revenue, LTV, churn and penalty "
                "per unit)",
            )
        if seg.reservation is not None:
            check(
                hours * seg.reservation.price_per_gpu_hour,
                f"segments[{i}].reservation.price_per_gpu_hour",
                "hours x price per GPU-hour",
            )


def _per_period(v: float | list[float], T: int) -> list[float] | None:
    if isinstance(v, list):
        return v if len(v) == T else None
    return [float(v)] * T


def per_period(v: float | list[float], T: int) -> list[float]:
    """A scalar-or-list policy value as one float per period."""
    out = _per_period(v, T)
    assert out is not None
    return out


def validate_scenario(data: Any) -> tuple[Scenario | None, list[Issue]]:
    """Validate raw data; return the scenario (or None) and every problem found.

    Items of ``periods``, ``pools`` and ``segments`` are validated one by one so that
    every bad item is reported; cross checks then run on the items that passed (the
    checks against pools only when every pool passed, so as not to report a segment's
    accelerator type as unknown because the pool naming it was itself invalid).
    """
    if not isinstance(data, dict):
        return None, [Issue("", f"a scenario must be a JSON object, got {type(data).__name__}")]
    raw, data = data, expand_pool_numbers(data)
    issues: list[Issue] = []
    items: dict[str, list[Any]] = {}
    index: dict[str, list[int]] = {}
    complete = True
    periods = data.get("periods")  # a segment's demand from one number: in every period
    ctx = {"periods": len(periods) if isinstance(periods, list) else None}
    for key, model in (("periods", Period), ("pools", Pool), ("segments", Segment)):
        value = data.get(key)
        items[key], index[key] = [], []
        if value is None:
            issues.append(Issue(key, "Field required"))
        elif not isinstance(value, list):
            issues.append(Issue(key, "must be a list"))
        elif not value:
            issues.append(Issue(key, "must have at least one entry"))
        else:
            for i, item in enumerate(value):
                try:
                    items[key].append(model.model_validate(item, context=ctx))
                    index[key].append(i)
                except ValidationError as exc:
                    issues.extend(pydantic_issues(exc, f"{key}[{i}]", model))
            continue
        complete = False
    complete = complete and all(
        len(index[k]) == len(data[k]) for k in ("periods", "pools", "segments")
    )
    # the header and the policy separately, so that a bad name does not hide policy checks
    header_data = {
        k: v for k, v in data.items() if k not in ("periods", "pools", "segments", "policy")
    }
    header: ScenarioHeader | None = None
    policy: Policy | None = None
    try:
        header = ScenarioHeader.model_validate(header_data)
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc, "", Scenario))
    try:
        policy = Policy.model_validate(data.get("policy", {}))
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc, "policy", Policy))
    periods_ok = bool(items["periods"]) and len(index["periods"]) == len(data.get("periods") or [])
    if periods_ok:
        pools_ok = len(index["pools"]) == len(data.get("pools") or []) and bool(items["pools"])
        base = header or ScenarioHeader()  # an invalid header is reported above; check the rest
        fields = {name: getattr(base, name) for name in ScenarioHeader.model_fields}
        fields["policy"] = policy or Policy()
        sc = Scenario.model_construct(
            **fields,
            periods=items["periods"],
            pools=items["pools"],
            segments=items["segments"],
        )
        issues.extend(cross_check(sc, index["pools"], index["segments"], check_segments=pools_ok))
        issues.extend(_check_the_rest(data, sc, index, pools_ok))
    if issues or not complete or header is None or policy is None:
        return None, _named(_fold_pool_numbers(issues, raw), data)
    try:
        return Scenario.model_validate(data, context=ctx), []
    except ValidationError as exc:  # pragma: no cover - the layers above catch everything
        return None, _named(pydantic_issues(exc, "", Scenario), data)


POOL_NUMBERS = ("gpus", "rentable_gpus")  # a pool's per-period fields that take one number


def expand_pool_numbers(data: Any) -> Any:
    """``data`` with a pool's ``gpus`` or ``rentable_gpus`` given as one number turned into
    that number for every period (the periods' count from ``data["periods"]``); anything
    else as it is (the field checks report what is wrong)."""
    if not isinstance(data, dict):
        return data
    periods, pools = data.get("periods"), data.get("pools")
    if not isinstance(periods, list) or not isinstance(pools, list):
        return data
    T = len(periods)

    def one(p: Any) -> Any:
        if not isinstance(p, dict):
            return p
        scalar = [k for k in POOL_NUMBERS if _is_number(p.get(k))]
        return {**p, **{k: [p[k]] * T for k in scalar}} if scalar else p

    new = [one(p) for p in pools]
    if all(a is b for a, b in zip(new, pools, strict=True)):
        return data
    return {**data, "pools": new}


def _fold_pool_numbers(issues: list[Issue], raw: dict[str, Any]) -> list[Issue]:
    """Issues about a pool number given once (``pools[0].gpus[3]`` of ``"gpus": 1e13``) as
    one issue about the number as written (``pools[0].gpus``)."""
    pools = raw.get("pools")
    if not isinstance(pools, list):
        return issues
    once = {
        f"pools[{i}].{k}"
        for i, p in enumerate(pools)
        if isinstance(p, dict)
        for k in POOL_NUMBERS
        if _is_number(p.get(k))
    }
    if not once:
        return issues
    out: list[Issue] = []
    folded: set[tuple[str, str]] = set()
    for issue in issues:
        head, _, tail = issue.path.rpartition("[")
        if head in once and tail[:-1].isdigit():
            key = (head, issue.message)
            if key in folded:
                continue
            folded.add(key)
            issue = Issue(head, issue.message)
        out.append(issue)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


PER_PERIOD_FIELDS = {"pools": ("gpus", "rentable_gpus"), "segments": ("demand", "contract_min")}


def _check_the_rest(
    data: dict[str, Any], sc: Scenario, index: dict[str, list[int]], pools_ok: bool
) -> list[Issue]:
    """The cross checks that can run on what the field checks refused, from its raw data:
    the per-period lists' lengths of pools and segments that failed, and the accelerator
    types and regions of failed segments (and, when a pool failed, of every segment)
    against those of every pool that names one. So a type error does not hide an unknown
    accelerator or a list one period short."""
    issues: list[Issue] = []
    T = len(sc.periods)
    for key, names in PER_PERIOD_FIELDS.items():
        passed = set(index[key])
        for i, raw in enumerate(data.get(key) or []):
            if i in passed or not isinstance(raw, dict):
                continue
            for name in names:
                value = raw.get(name)
                if isinstance(value, list):
                    _check_len(value, T, f"{key}[{i}].{name}", issues)
    raw_pools = [p for p in data.get("pools") or [] if isinstance(p, dict)]
    types = sorted({a for p in raw_pools if isinstance(a := p.get("accelerator"), str)})
    regions = sorted({r for p in raw_pools if isinstance(r := p.get("region"), str)})
    if not types:
        return issues
    checked = set(index["segments"]) if pools_ok else set()
    for i, raw in enumerate(data.get("segments") or []):
        if i in checked or not isinstance(raw, dict):
            continue
        tp, allowed = raw.get("throughput"), raw.get("regions")
        accelerators = [k for k in tp if isinstance(k, str)] if isinstance(tp, dict) else []
        wanted = [r for r in allowed if isinstance(r, str)] if isinstance(allowed, list) else []
        _check_names(accelerators, wanted, f"segments[{i}]", types, regions, issues)
    return issues


_ITEM_PATH = re.compile(r"^(periods|pools|segments)\[(\d+)\]")


def named_issues(issues: list[Issue], sc: Scenario) -> list[Issue]:
    """``issues`` about items of ``sc`` named as :func:`validate_scenario` names them."""
    data = {
        "periods": [{"label": p.label} for p in sc.periods],
        "pools": [{"id": p.id} for p in sc.pools],
        "segments": [{"id": s.id} for s in sc.segments],
    }
    return _named(issues, data)


def _named(issues: list[Issue], data: dict[str, Any]) -> list[Issue]:
    """Each issue under an item with the item's id (or period label) next to its index:
    ``segments[3] (chat).demand[5]``."""
    out = []
    for issue in issues:
        m = _ITEM_PATH.match(issue.path)
        items = data.get(m.group(1)) if m else None
        name = None
        if m and isinstance(items, list) and int(m.group(2)) < len(items):
            item = items[int(m.group(2))]
            if isinstance(item, dict):
                name = item.get("label" if m.group(1) == "periods" else "id")
        if m and isinstance(name, str) and name:
            where = f"{m.group(0)} ({name}){issue.path[m.end() :]}"
            issue = Issue(issue.path, issue.message, where=where)
        out.append(issue)
    return out


def discount_factors(sc: Scenario) -> list[float]:
    """1 / (1 + r)^t for each period t (the first period is not discounted)."""
    return [1.0 / math.pow(1.0 + sc.discount_rate, t) for t in range(len(sc.periods))]
