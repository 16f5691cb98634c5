"""Scenario workbooks: a scenario as an Excel workbook that planners edit, and back.

One sheet per kind of thing, one row per entity; per-period values are grids with the
period labels as column headers; units are in the header names (``variable_cost
(USD/GPU-hour)``); header rows and id columns are frozen; an ``about`` sheet explains every
sheet and column. The sheets, in order:

=============  ====================================================================
about          what each sheet and column holds (ignored when reading)
scenario       name, description, currency, discount_rate (one setting per row)
policy         ltv_weight, rnd_min_share, headroom, max_change_share, max_segment_share
periods        one row per period: label, hours
pools          one row per pool: id, accelerator, region, ownership, costs, headroom,
               allocation unit, expansion (max GPUs, cost, first period), rental unit,
               expansion unit
capacity       pool x period grid: GPUs per period
rentable       pool x period grid: GPUs that can be rented (rows only for pools that can)
segments       one row per segment: id, kind, unit, revenue, LTV, churn, shortfall
               penalty, contract_hard, regions
demand         segment x period grid: work units wanted
contract_min   segment x period grid: contracted minimum work units (rows only where set)
throughput     segment x accelerator grid: work units per GPU-hour (blank: cannot serve)
modes          one row per (segment, mode); segments without rows have the one "full" mode
reservations   one row per segment with a reservation offer: price, max GPUs (one value
               for all periods or one per period)
kind_limits    one row per (kind, cap|floor): GPUs, one value or one per period
gpu_limits     one row per (segment, accelerator or blank, max|min): GPUs, one value or
               one per period
budgets        one row per GPU-hour budget: id, segment or kind, accelerator, window,
               min/max GPU-hours
tiers          one row per (segment, price tier): price, LTV, units (one value or one
               per period)
subscriptions  one row per subscription segment: fee, usage, LTV loss, minimum service
               share, subscribers (one value or one per period)
sites          one row per site (issue 27): region, PUE, energy price, IT power in MW
               (one value or one per period); only with sites
power_levels   one row per (pool, power cap): power and throughput shares; only with sites
by_period      one row per (pool, segment or site, per-unit field) that moves over the
               horizon: one value per period (it replaces the one value of the field
               elsewhere, which the writer sets to the first period's)
=============  ====================================================================

:func:`read_workbook` returns the scenario as data for :meth:`Scenario.from_dict`; every
problem of the workbook itself is reported at once, each with its sheet and cell
(``demand!F7: not a number: 'n/a'``), in a :class:`~allocator.errors.ScenarioError`. The
scenario's own validation then runs on the data as usual, with its field paths.
:func:`write_workbook` writes a scenario so that reading it back gives the same scenario;
:func:`write_template` writes an empty, documented workbook.

This module does not import the scenario model: ``Scenario.from_file`` loads it for
``.xlsx`` files.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from allocator.cells import no_formulas
from allocator.errors import Issue, ScenarioError, WorkbookTooLarge

if TYPE_CHECKING:
    from allocator.scenario.model import Scenario

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
KINDS = ("cloud", "first_party", "rnd", "consumer")
OWNERSHIPS = ("owned", "leased", "rented")
LIMITS = {"cap": "kind_caps", "floor": "kind_floors"}
ALL_PERIODS = "all_periods"
_SAVE_LOCK = threading.Lock()
FULL = {"name": "full", "throughput_multiplier": 1.0, "revenue_share": 1.0, "ltv_share": 1.0}


# ------------------------------------------------------------------------ the layout
@dataclass(frozen=True)
class Col:
    """One column of a one-row-per-entity sheet."""

    key: str  # the header's name, before " (unit)"
    field: str  # the field in the item (dotted: inside a sub-object)
    kind: str = "number"  # number | text | bool | list
    unit: str = ""  # shown in the header; {cur} is the scenario's currency
    required: bool = False  # the column must be there and every row must fill it
    doc: str = ""
    choices: tuple[str, ...] = ()

    def header(self, cur: str) -> str:
        return f"{self.key} ({self.unit.format(cur=cur)})" if self.unit else self.key


PERIOD_COLS = (
    Col(
        "label",
        "label",
        "text",
        required=True,
        doc="Period label, unique; the grids' column headers",
    ),
    Col(
        "hours",
        "hours",
        required=True,
        doc="Hours in the period (a quarter is about 2,190)",
    ),
)
POOL_COLS = (
    Col("id", "id", "text", required=True, doc="Pool id, unique; the grids' row labels"),
    Col(
        "accelerator",
        "accelerator",
        "text",
        required=True,
        doc="Accelerator type (H100, B200 ...); the throughput sheet's column headers",
    ),
    Col("region", "region", "text", required=True, doc="Region of the pool"),
    Col(
        "ownership",
        "ownership",
        "text",
        unit="owned/leased/rented",
        choices=OWNERSHIPS,
        doc="Blank: owned",
    ),
    Col(
        "variable_cost",
        "variable_cost_per_gpu_hour",
        unit="{cur}/GPU-hour",
        required=True,
        doc="Marginal cost of running a GPU for an hour (power, operations)",
    ),
    Col(
        "fixed_cost",
        "fixed_cost_per_gpu_hour",
        unit="{cur}/GPU-hour",
        doc="Depreciation or lease: sunk, reported, not optimised; blank: 0",
    ),
    Col(
        "rental_price",
        "rental_price_per_gpu_hour",
        unit="{cur}/GPU-hour",
        doc="Price of a rented GPU-hour on top of the variable cost (needed with a rentable row)",
    ),
    Col(
        "headroom",
        "headroom",
        unit="share 0-1",
        doc="Share of the pool kept free; blank: the policy's headroom",
    ),
    Col(
        "allocation_unit",
        "allocation_unit_gpus",
        unit="GPUs",
        doc="Allocate in whole multiples of this many GPUs (makes the model a MILP); "
        "blank: fractional",
    ),
    Col(
        "expansion_max",
        "expansion.max_gpus",
        unit="GPUs",
        doc="Expansion: most GPUs the plan may buy into the pool; blank: no expansion",
    ),
    Col(
        "expansion_cost",
        "expansion.cost_per_gpu_hour",
        unit="{cur}/GPU-hour",
        doc="Expansion: amortised capex per bought GPU-hour",
    ),
    Col(
        "expansion_from",
        "expansion.from_period",
        "text",
        unit="period label",
        doc="Expansion: first period GPUs can be bought; blank: the first",
    ),
    Col(
        "rental_unit",
        "rental_unit_gpus",
        unit="GPUs",
        doc="Rent in whole units of this many GPUs (a MILP); blank: fractional rentals",
    ),
    Col(
        "expansion_unit",
        "expansion.unit_gpus",
        unit="GPUs",
        doc="Expansion: buy in whole units of this many GPUs (a MILP); blank: fractional",
    ),
    Col("site", "site", "text", doc="The site whose power the pool draws; blank: none"),
    Col(
        "power_kw",
        "power_kw_per_gpu",
        unit="kW/GPU",
        doc="All-in IT power per GPU at full power (needed with a site)",
    ),
    Col(
        "retirement_salvage",
        "retirement.salvage_per_gpu",
        unit="{cur}/GPU",
        doc="Retirement: resale value of a GPU retired (needs a site); blank: no retirement",
    ),
    Col(
        "retirement_from",
        "retirement.from_period",
        "text",
        unit="period label",
        doc="Retirement: first period GPUs may be retired; blank: the first",
    ),
)
LEVEL_COLS = (
    Col("pool", "pool", "text", required=True, doc="Pool id (a pool in a site)"),
    Col("level", "name", "text", required=True, doc="Name of the power cap"),
    Col("power_share", "power_share", unit="share 0-1", required=True, doc="Share of kW drawn"),
    Col(
        "throughput_share",
        "throughput_share",
        unit="share 0-1",
        required=True,
        doc="Share of throughput delivered",
    ),
)
SEGMENT_COLS = (
    Col("id", "id", "text", required=True, doc="Segment id, unique; the grids' row labels"),
    Col(
        "kind",
        "kind",
        "text",
        unit="cloud/first_party/rnd/consumer",
        required=True,
        choices=KINDS,
        doc="What the demand is",
    ),
    Col(
        "unit",
        "unit",
        "text",
        unit="work unit",
        doc="The segment's work unit (million tokens, GPU-hours ...); blank: unit",
    ),
    Col(
        "revenue",
        "revenue_per_unit",
        unit="{cur}/unit",
        required=True,
        doc="Revenue per work unit served",
    ),
    Col("ltv", "ltv_per_unit", unit="{cur}/unit", doc="Future value per unit served; blank: 0"),
    Col(
        "churn_cost",
        "churn_cost_per_unit",
        unit="{cur}/unit",
        doc="Cost per unit of demand left unserved; blank: 0",
    ),
    Col(
        "shortfall_penalty",
        "shortfall_penalty_per_unit",
        unit="{cur}/unit",
        doc="SLA credit per unit short of the contract minimum; blank: 0",
    ),
    Col(
        "contract_hard",
        "contract_hard",
        "bool",
        unit="TRUE/FALSE",
        choices=("TRUE", "FALSE"),
        doc="TRUE: the contract minimum must be met; blank/FALSE: a shortfall pays the penalty",
    ),
    Col(
        "regions",
        "regions",
        "list",
        unit="comma-separated; blank = all",
        doc="Regions allowed to serve the segment",
    ),
)
MODE_COLS = (
    Col("segment", "segment", "text", required=True, doc="Segment id"),
    Col("mode", "name", "text", required=True, doc="Mode name (full, distilled ...)"),
    Col(
        "throughput_multiplier",
        "throughput_multiplier",
        unit="x full",
        doc="Work units per GPU-hour against the full mode; blank: 1",
    ),
    Col("revenue_share", "revenue_share", unit="share 0-1", doc="Revenue kept; blank: 1"),
    Col("ltv_share", "ltv_share", unit="share 0-1", doc="LTV kept; blank: 1"),
)
BUDGET_COLS = (
    Col("id", "id", "text", required=True, doc="Budget id, unique; names it in the plan"),
    Col("segment", "segment", "text", doc="The segment (or give kind)"),
    Col(
        "kind",
        "kind",
        "text",
        unit="cloud/first_party/rnd/consumer",
        choices=KINDS,
        doc="Every segment of this kind (or give segment)",
    ),
    Col("accelerator", "accelerator", "text", doc="Only this accelerator type; blank: all"),
    Col("from_period", "from_period", "text", unit="period label", doc="Blank: the first"),
    Col("to_period", "to_period", "text", unit="period label", doc="Blank: the last"),
    Col("min_gpu_hours", "min_gpu_hours", unit="GPU-hours", doc="Fewest over the window"),
    Col("max_gpu_hours", "max_gpu_hours", unit="GPU-hours", doc="Most over the window"),
)
GPU_BOUNDS = {"max": "max_gpus", "min": "min_gpus"}
SCENARIO_ROWS = (
    Col("name", "name", "text", doc="Name of the scenario"),
    Col("description", "description", "text", doc="What it is"),
    Col(
        "currency",
        "currency",
        "text",
        doc="Currency of every money figure (the headers show it); default USD",
    ),
    Col(
        "discount_rate",
        "discount_rate",
        unit="per period",
        doc="Discount rate per period; default 0",
    ),
)
POLICY_ROWS = (
    Col("ltv_weight", "ltv_weight", unit="x", doc="Weight of LTV against gross margin; default 1"),
    Col(
        "rnd_min_share",
        "rnd_min_share",
        unit="share 0-1",
        doc="Minimum share of the fleet's GPUs for R&D; default 0",
    ),
    Col("headroom", "headroom", unit="share 0-1", doc="Share of every pool kept free; default 0"),
    Col(
        "max_change_share",
        "max_change_share",
        unit="share 0-1",
        doc="Most an allocation "
        "may change between periods, as a share of the pool; blank: no limit",
    ),
    Col(
        "max_segment_share",
        "max_segment_share",
        unit="share 0-1",
        doc="Most one segment may take of a pool; blank: no limit",
    ),
    Col(
        "stable",
        "stable",
        kind="bool",
        doc="Of the optimal plans, the one that moves the fewest GPUs between periods; "
        "default FALSE",
    ),
    Col(
        "stable_tolerance",
        "stable_tolerance",
        unit="share of the optimum",
        doc="What the stable plan may give up; default 1e-7",
    ),
)


@dataclass(frozen=True)
class Sheet:
    name: str
    required: bool
    doc: str


SHEETS = (
    Sheet("about", False, "This page: what each sheet and column holds. Ignored when read."),
    Sheet(
        "scenario",
        False,
        "One setting per row (field, value): name, description, currency, discount_rate.",
    ),
    Sheet("policy", False, "One setting per row (setting, value); blank value: the default."),
    Sheet(
        "periods",
        True,
        "One row per period, in order: label and hours. The labels "
        "head the columns of every grid sheet.",
    ),
    Sheet("pools", True, "One row per GPU pool (accelerator type x region x ownership)."),
    Sheet(
        "capacity",
        True,
        "Grid: one row per pool, one column per period: GPUs "
        "available (an average over the period, before headroom).",
    ),
    Sheet(
        "rentable",
        False,
        "Grid: GPUs that can be rented per period (neocloud capacity); "
        "rows only for pools that can rent (they need a rental_price).",
    ),
    Sheet("segments", True, "One row per demand segment."),
    Sheet(
        "demand",
        True,
        "Grid: one row per segment, one column per period: work units "
        "wanted, in the segment's unit.",
    ),
    Sheet(
        "contract_min",
        False,
        "Grid: contracted minimum work units per period; rows only for segments with a contract.",
    ),
    Sheet(
        "throughput",
        True,
        "Grid: one row per segment, one column per accelerator type: "
        "work units per GPU-hour. Blank: that type cannot serve the segment.",
    ),
    Sheet(
        "modes",
        False,
        "One row per (segment, mode) for segments with several ways of "
        "serving; a segment without rows has the one mode 'full'.",
    ),
    Sheet(
        "reservations",
        False,
        "One row per segment whose customer offers to reserve GPUs "
        "(take-or-pay): price and max GPUs, in all_periods or one per period.",
    ),
    Sheet(
        "kind_limits",
        False,
        "One row per (kind, cap or floor): GPUs a kind of segment "
        "may use at most / must get at least, in all_periods or one per period.",
    ),
    Sheet(
        "gpu_limits",
        False,
        "One row per (segment, accelerator type, max or min): most or fewest GPUs the "
        "segment holds per period over its pools (blank accelerator: every type), in "
        "all_periods or one per period.",
    ),
    Sheet(
        "budgets",
        False,
        "One row per GPU-hour budget: a segment or a kind, optionally one accelerator "
        "type, a window of periods, and the fewest and/or most GPU-hours over it.",
    ),
    Sheet(
        "tiers",
        False,
        "One row per (segment, price tier), in falling price: the price and LTV per unit, "
        "and the units wanted at that price in all_periods or one per period. A segment "
        "with tiers earns from its tiers (revenue 0 on the segments sheet); its demand row "
        "is the tiers' units.",
    ),
    Sheet(
        "subscriptions",
        False,
        "One row per segment sold by subscription: fee, usage per subscriber, LTV lost "
        "per unit of usage not served, optional minimum service share, and subscribers "
        "in all_periods or one per period. Its demand row is subscribers x usage.",
    ),
    Sheet(
        "sites",
        False,
        "One row per site (shell): region, PUE, energy price per MWh and IT power in MW, "
        "in all_periods or one per period (shells coming online).",
    ),
    Sheet(
        "power_levels",
        False,
        "One row per (pool, power cap): share of kW drawn and of throughput delivered "
        "(full power always exists).",
    ),
    Sheet(
        "by_period",
        False,
        "One row per per-unit number that moves over the horizon: item (pool or segment), "
        "id, field (variable_cost_per_gpu_hour, fixed_cost_per_gpu_hour, "
        "rental_price_per_gpu_hour, expansion.cost_per_gpu_hour; revenue_per_unit, "
        "ltv_per_unit, churn_cost_per_unit, shortfall_penalty_per_unit, throughput.<type>, "
        "modes.<mode>.throughput_multiplier, tiers.<n>.price, tiers.<n>.ltv_per_unit (n: "
        "the tier's place on the tiers sheet, from 1), subscription.fee_per_subscriber, "
        "subscription.usage_per_subscriber, subscription.ltv_loss_per_unit), one value per "
        "period. It replaces the "
        "field's one value on the other sheets.",
    ),
)
POOL_BY_PERIOD = (
    "variable_cost_per_gpu_hour",
    "fixed_cost_per_gpu_hour",
    "rental_price_per_gpu_hour",
    "expansion.cost_per_gpu_hour",
    "retirement.salvage_per_gpu",
)
SITE_BY_PERIOD = ("energy_price_per_mwh",)
SEGMENT_BY_PERIOD = (
    "revenue_per_unit",
    "ltv_per_unit",
    "churn_cost_per_unit",
    "shortfall_penalty_per_unit",
)
TIER_BY_PERIOD = ("price", "ltv_per_unit")
SUBSCRIPTION_BY_PERIOD = ("fee_per_subscriber", "usage_per_subscriber", "ltv_loss_per_unit")
_REQUIRED_SHEETS = tuple(s.name for s in SHEETS if s.required)


# ------------------------------------------------------------------------ cell values
def _ref(sheet: str, row: int, col: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{sheet}!{get_column_letter(col)}{row}"


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str | None:
    if _blank(v):
        return None
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, _dt.datetime):
        return v.date().isoformat() if v.time() == _dt.time() else v.isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    return str(v).strip()


class _Reader:
    """Collects every problem of a workbook while turning its cells into values."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def bad(self, where: str, msg: str) -> None:
        self.issues.append(Issue(where, msg))

    def number(self, v: Any, where: str, required: bool = False) -> float | int | None:
        if _blank(v):
            if required:
                self.bad(where, "empty: enter a number")
            return None
        if isinstance(v, bool):
            self.bad(where, f"not a number: {'TRUE' if v else 'FALSE'}")
            return None
        if isinstance(v, int | float):
            x = v
        else:
            try:
                x = float(str(v).strip().replace(",", ""))
            except ValueError:
                self.bad(where, f"not a number: {str(v).strip()!r}")
                return None
        if not math.isfinite(x):
            self.bad(where, f"not a finite number: {v!r}")
            return None
        return x

    def boolean(self, v: Any, where: str) -> bool | None:
        if _blank(v):
            return None
        if isinstance(v, bool):
            return v
        t = str(v).strip().lower()
        if isinstance(v, int | float) and v in (0, 1):
            return bool(v)
        if t in ("true", "yes", "y", "1"):
            return True
        if t in ("false", "no", "n", "0"):
            return False
        self.bad(where, f"not TRUE or FALSE: {str(v).strip()!r}")
        return None

    def value(self, col: Col, v: Any, where: str) -> Any:
        if col.kind == "number":
            return self.number(v, where, col.required)
        if col.kind == "bool":
            return self.boolean(v, where)
        t = _text(v)
        if t is None:
            if col.required:
                self.bad(where, "empty: enter a value")
            return None
        if col.kind == "list":
            return [x.strip() for x in t.split(",") if x.strip()]
        return t


class _Grid:
    """A sheet's cells: the header row and the non-blank rows below it."""

    def __init__(self, name: str, rows: list[tuple[Any, ...]]):
        self.name = name
        width = max((len(r) for r in rows), default=0)
        rows = [tuple(r) + (None,) * (width - len(r)) for r in rows]
        self.header: tuple[Any, ...] = rows[0] if rows else ()
        self.rows = [(i + 2, r) for i, r in enumerate(rows[1:]) if not all(map(_blank, r))]

    def ref(self, row: int, col: int) -> str:  # 1-based
        return _ref(self.name, row, col)

    @property
    def header_ref(self) -> str:
        return f"{self.name}!1:1"

    def columns(self) -> list[tuple[int, str]]:
        """(1-based column, header text) of every non-blank header cell."""
        return [(j + 1, t) for j, v in enumerate(self.header) if (t := _text(v)) is not None]


def _key(header: str) -> str:
    return header.split("(")[0].strip().lower().replace(" ", "_")


def _ignored(header: str) -> bool:
    return header.startswith("#") or _key(header) in ("note", "notes", "comment", "comments")


def _set(item: dict[str, Any], field: str, value: Any) -> None:
    head, dot, rest = field.partition(".")
    if dot:
        _set(item.setdefault(head, {}), rest, value)
    else:
        item[head] = value


def _get(item: Mapping[str, Any], field: str) -> Any:
    head, dot, rest = field.partition(".")
    v = item.get(head)
    return _get(v, rest) if dot and isinstance(v, Mapping) else (None if dot else v)


# ------------------------------------------------------------------------ reading
class _WorkbookReader(_Reader):
    def __init__(self, sheets: dict[str, list[tuple[Any, ...]]]):
        super().__init__()
        self.sheets = {name.strip().lower(): name for name in sheets}
        self.raw = sheets

    def grid(self, name: str) -> _Grid | None:
        actual = self.sheets.get(name)
        if actual is None:
            if name in _REQUIRED_SHEETS:
                have = ", ".join(self.raw) or "none"
                self.bad(name, f"missing sheet (the workbook has: {have})")
            return None
        return _Grid(name, self.raw[actual])

    def table(self, g: _Grid, cols: Sequence[Col], what: str) -> list[tuple[int, dict[str, Any]]]:
        """One dict per row of a one-row-per-entity sheet (row number, item)."""
        by_key = {c.key: c for c in cols}
        where: dict[str, int] = {}
        for j, h in g.columns():
            k = _key(h)
            if _ignored(h):
                continue
            if k not in by_key:
                known = ", ".join(by_key)
                self.bad(g.ref(1, j), f"unknown column {h!r} (known: {known})")
            elif k in where:
                self.bad(g.ref(1, j), f"column {k!r} appears twice")
            else:
                where[k] = j
        for c in cols:
            if c.required and c.key not in where:
                self.bad(g.header_ref, f"missing column {c.key!r}")
        out = []
        for r, row in g.rows:
            item: dict[str, Any] = {}
            for k, j in where.items():
                c = by_key[k]
                v = self.value(c, row[j - 1], g.ref(r, j))
                if v is not None:
                    _set(item, c.field, v)
            out.append((r, item))
        if not g.rows and what:
            self.bad(g.name, f"no {what}s: add one row per {what} below the header")
        return out

    def unique(
        self, g: _Grid, rows: list[tuple[int, dict[str, Any]]], field: str, what: str
    ) -> dict[str, int]:
        """id -> index of the rows' ``field``; a duplicate is reported at its cell."""
        seen: dict[str, int] = {}
        first: dict[str, int] = {}
        col = 1
        for j, h in g.columns():
            if _key(h) in (field, "id"):
                col = j
                break
        for i, (r, item) in enumerate(rows):
            x = item.get(field)
            if x is None:
                continue
            if x in seen:
                self.bad(g.ref(r, col), f"duplicate {what} {x!r} (also in row {first[x]})")
            else:
                seen[x], first[x] = i, r
        return seen

    def settings(self, g: _Grid, cols: Sequence[Col]) -> dict[str, Any]:
        """A sheet of (setting, value) rows."""
        by_key = {c.key: c for c in cols}
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        for r, row in g.rows:
            k = _text(row[0])
            if k is None or _ignored(k):
                continue
            key = _key(k)
            if key not in by_key:
                self.bad(g.ref(r, 1), f"unknown setting {k!r} (known: {', '.join(by_key)})")
                continue
            if key in first:
                self.bad(g.ref(r, 1), f"setting {key!r} given twice (also in row {first[key]})")
                continue
            first[key] = r
            v = self.value(by_key[key], row[1] if len(row) > 1 else None, g.ref(r, 2))
            if v is not None:
                out[by_key[key].field] = v
        return out

    def period_columns(
        self, g: _Grid, labels: Sequence[str], fixed: Sequence[str], need_all: bool
    ) -> tuple[dict[str, int], dict[str, int]]:
        """(fixed column key -> column, period label -> column) of a sheet's header."""
        fixed_at: dict[str, int] = {}
        period_at: dict[str, int] = {}
        known = set(labels)
        for j, h in g.columns():
            if _ignored(h):
                continue
            if j == 1 and not fixed:
                continue  # the row labels' header: free text
            k = _key(h)
            if k in fixed and k not in fixed_at:
                fixed_at[k] = j
            elif h in period_at or k in fixed_at:
                self.bad(g.ref(1, j), f"column {h!r} appears twice")
            elif h in known:
                period_at[h] = j
            else:
                listed = ", ".join(labels) or "none yet"
                self.bad(g.ref(1, j), f"unknown period {h!r} (the periods sheet has: {listed})")
        if need_all:
            for label in labels:
                if label not in period_at:
                    self.bad(g.header_ref, f"missing column for period {label!r}")
        return fixed_at, period_at

    def period_grid(
        self,
        g: _Grid,
        labels: Sequence[str],
        ids: Mapping[str, int],
        what: str,
        required: bool,
    ) -> dict[int, list[Any]]:
        """item index -> one value per period, from a grid with ids in column A."""
        _, at = self.period_columns(g, labels, (), need_all=True)
        out: dict[int, list[Any]] = {}
        first: dict[str, int] = {}
        for r, row in g.rows:
            x = _text(row[0])
            if x is None:
                self.bad(g.ref(r, 1), f"empty: enter a {what} id")
                continue
            if x not in ids:
                self.bad(
                    g.ref(r, 1),
                    f"unknown {what} {x!r} (the {what}s sheet has: {', '.join(ids) or 'none'})",
                )
                continue
            if x in first:
                self.bad(g.ref(r, 1), f"duplicate {what} {x!r} (also in row {first[x]})")
                continue
            first[x] = r
            cells = [(label, at[label]) for label in labels if label in at]
            if not required and all(_blank(row[j - 1]) for _, j in cells):
                continue  # a blank row in an optional grid: none
            values = [self.number(row[j - 1], g.ref(r, j), required=True) for _, j in cells]
            out[ids[x]] = values
        if required:
            for x in ids:
                if x not in first:
                    self.bad(g.name, f"no row for {what} {x!r}")
        return out

    def per_period(
        self,
        g: _Grid,
        r: int,
        row: tuple[Any, ...],
        all_col: int | None,
        at: Mapping[str, int],
        labels: Sequence[str],
    ) -> float | int | list[Any] | None:
        """One value for all periods, or one per period."""
        one = row[all_col - 1] if all_col else None
        cells = [(label, at[label]) for label in labels if label in at]
        per = [j for _, j in cells if not _blank(row[j - 1])]
        if not _blank(one) and per:
            self.bad(
                g.ref(r, all_col or 1), "give one value for all periods or one per period, not both"
            )
            return None
        if not _blank(one):
            return self.number(one, g.ref(r, all_col or 1))
        if not per:
            self.bad(g.ref(r, all_col or 1), f"empty: enter {ALL_PERIODS} or one value per period")
            return None
        missing = [label for label in labels if label not in at]
        if missing:
            self.bad(g.header_ref, f"missing column for period {missing[0]!r}")
            return None
        return [self.number(row[j - 1], g.ref(r, j), required=True) for _, j in cells]


@dataclass(frozen=True)
class ReadLimits:
    """How much of a workbook :func:`read_workbook` reads before it refuses the file with
    :class:`~allocator.errors.WorkbookTooLarge` naming the sheet and the limit, so that a
    hostile file costs no more than an honest one. Only the sheets the reader knows are
    parsed (``about`` and extra sheets never are), each only as far as these bounds; a
    sheet's rows are read as wide as their last cell, so the cells count every row of a
    sheet as wide as its widest. The largest generated scenario (2,000 segments x 32 pools
    x 52 periods) is a 1.2 MB workbook of 6.7 MB unpacked and 0.2M cells."""

    rows: int = 100_000  # per sheet
    columns: int = 4_096  # per sheet (Excel's last column, XFD, is 16,384)
    cells: int = 2_000_000  # in all the sheets read
    unzipped_bytes: int = 128 * 1024 * 1024  # the zip's parts, uncompressed (a zip bomb)


def _load(
    path: str | Path | IO[bytes], limits: ReadLimits | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    with warnings.catch_warnings():  # about features we do not read (extensions, styles)
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        return _load_cells(path, limits or ReadLimits())


def _open(path: str | Path | IO[bytes], label: str, limits: ReadLimits) -> Any:
    """openpyxl's reader of the package with its strings, sheet list and styles (for dates)
    read, but no worksheet touched yet (``load_workbook`` would parse every sheet once to
    size it, ignored sheets too)."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet

    try:
        reader = ExcelReader(path, read_only=True, data_only=True)
    except OSError as exc:
        raise ScenarioError([Issue("", f"cannot read {label}: {exc.strerror}")]) from None
    except Exception as exc:  # not a zip, a bad name: whatever the file is, it is not ours
        raise ScenarioError([Issue("", f"{label}: not an Excel workbook (.xlsx): {exc}")]) from None
    try:
        size = sum(i.file_size for i in reader.archive.infolist())
        if size > limits.unzipped_bytes:
            raise WorkbookTooLarge(
                [
                    Issue(
                        "",
                        f"the workbook unpacks to {size:,} bytes, over {limits.unzipped_bytes:,}",
                    )
                ]
            )
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
    except ScenarioError:
        reader.archive.close()
        raise
    except Exception as exc:  # malformed XML (truncated, entities: defusedxml), missing parts
        reader.archive.close()
        raise ScenarioError(
            [Issue("", f"{label}: not a readable Excel workbook: {_why(exc)}")]
        ) from None
    return reader


def _why(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ValueError) and cause is not None:  # openpyxl wraps the XML error
        exc = cause
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _load_cells(
    path: str | Path | IO[bytes], limits: ReadLimits
) -> dict[str, list[tuple[Any, ...]]]:
    """{sheet name: rows of cell values}; the sheets the reader does not use map to no rows
    (they are never parsed)."""
    label = str(path) if isinstance(path, str | Path) else "the workbook"
    reader = _open(path, label, limits)
    known = {s.name for s in SHEETS if s.name != "about"}
    out: dict[str, list[tuple[Any, ...]]] = {}
    cells = [limits.cells]  # left for the sheets still to read
    name = ""
    try:
        for sheet, rel in reader.parser.find_sheets():
            name = sheet.name
            used = name.strip().lower() in known and rel.target in reader.valid_files
            out[name] = _sheet_rows(reader, name, rel.target, limits, cells) if used else []
        return out
    except ScenarioError:
        raise
    except Exception as exc:  # malformed XML in a sheet
        raise ScenarioError([Issue(name, f"the sheet cannot be read: {_why(exc)}")]) from None
    finally:
        reader.archive.close()


def _sheet_rows(
    reader: Any, name: str, target: str, limits: ReadLimits, cells: list[int]
) -> list[tuple[Any, ...]]:
    """The sheet's rows, each as wide as its last cell, within ``limits``."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    class Unsized(ReadOnlyWorksheet):  # type: ignore[misc]
        def _get_size(self) -> None:  # its recorded used range is often wrong: not read
            pass

    ws = Unsized(reader.wb, name, target, reader.shared_strings)

    def too_large(msg: str) -> WorkbookTooLarge:
        return WorkbookTooLarge([Issue(name, msg)])

    rows: list[tuple[Any, ...]] = []
    width = 0
    for i, row in enumerate(ws.iter_rows(values_only=True), 1):
        if i > limits.rows:
            raise too_large(
                f"more than {limits.rows:,} rows (delete the rows below the data, "
                "formatted empty rows included)"
            )
        if len(row) > limits.columns:
            raise too_large(
                f"a cell at {_ref(name, i, len(row))} is beyond column "
                f"{get_column_letter(limits.columns)} ({limits.columns:,} columns), the widest "
                "a sheet may be (delete the columns to the right of the data)"
            )
        width = max(width, len(row))
        if i * width > cells[0]:
            raise too_large(
                f"over {limits.cells:,} cells in the sheets read (each sheet counted as its "
                f"rows x its widest row; this one reaches {i:,} x {width:,})"
            )
        rows.append(tuple(row))
    cells[0] -= len(rows) * width
    return rows


def read_workbook(path: str | Path | IO[bytes], limits: ReadLimits | None = None) -> dict[str, Any]:
    """The scenario of a workbook (a path, or a binary file object such as an uploaded
    body in ``io.BytesIO``) as data for :meth:`Scenario.from_dict`.

    Raises :class:`ScenarioError` listing every problem of the workbook (missing sheets and
    columns, text in number cells, unknown or duplicate ids, ...) with its sheet and cell.
    The data is not validated as a scenario: ``Scenario.from_file`` does that next. A file
    beyond ``limits`` (:class:`ReadLimits`; its defaults when None) raises
    :class:`~allocator.errors.WorkbookTooLarge` (a ScenarioError) naming the sheet."""
    return sheets_to_dict(_load(path, limits))


def sheets_to_dict(sheets: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """The scenario of a workbook given as {sheet name: rows of cell values}."""
    rd = _WorkbookReader(sheets)
    data: dict[str, Any] = {}
    if (g := rd.grid("scenario")) is not None:
        data.update(rd.settings(g, SCENARIO_ROWS))
    policy: dict[str, Any] = {}
    if (g := rd.grid("policy")) is not None:
        policy.update(rd.settings(g, POLICY_ROWS))

    periods: list[dict[str, Any]] = []
    if (g := rd.grid("periods")) is not None:
        rows = rd.table(g, PERIOD_COLS, "period")
        rd.unique(g, rows, "label", "period")
        periods = [item for _, item in rows]
    labels = [str(p["label"]) for p in periods if "label" in p]

    pools: list[dict[str, Any]] = []
    pool_ids: dict[str, int] = {}
    if (g := rd.grid("pools")) is not None:
        rows = rd.table(g, POOL_COLS, "pool")
        pool_ids = rd.unique(g, rows, "id", "pool")
        pools = [item for _, item in rows]
    for name, field, required in (("capacity", "gpus", True), ("rentable", "rentable_gpus", False)):
        if (g := rd.grid(name)) is not None:
            for i, values in rd.period_grid(g, labels, pool_ids, "pool", required).items():
                pools[i][field] = values

    segments: list[dict[str, Any]] = []
    seg_ids: dict[str, int] = {}
    if (g := rd.grid("segments")) is not None:
        rows = rd.table(g, SEGMENT_COLS, "segment")
        seg_ids = rd.unique(g, rows, "id", "segment")
        segments = [item for _, item in rows]
    for name, field, required in (
        ("demand", "demand", True),
        ("contract_min", "contract_min", False),
    ):
        if (g := rd.grid(name)) is not None:
            for i, values in rd.period_grid(g, labels, seg_ids, "segment", required).items():
                segments[i][field] = values

    if (g := rd.grid("throughput")) is not None:
        _read_throughput(rd, g, seg_ids, segments, {str(p.get("accelerator")) for p in pools})
    if (g := rd.grid("modes")) is not None:
        rows = rd.table(g, MODE_COLS, "")
        first: dict[tuple[str, str], int] = {}
        for r, item in rows:
            sid, mode = item.pop("segment", None), item.get("name")
            if sid is None or mode is None:
                continue
            if sid not in seg_ids:
                rd.bad(g.ref(r, 1), f"unknown segment {sid!r}")
            elif (sid, mode) in first:
                rd.bad(
                    g.ref(r, 2),
                    f"duplicate mode {mode!r} of segment {sid!r} (also in row {first[sid, mode]})",
                )
            else:
                first[sid, mode] = r
                segments[seg_ids[sid]].setdefault("modes", []).append(item)
    if (g := rd.grid("reservations")) is not None:
        _read_reservations(rd, g, labels, seg_ids, segments)
    if (g := rd.grid("kind_limits")) is not None:
        _read_kind_limits(rd, g, labels, policy)
    if (g := rd.grid("gpu_limits")) is not None:
        _read_gpu_limits(rd, g, labels, seg_ids, segments)
    if (g := rd.grid("budgets")) is not None:
        rows = rd.table(g, BUDGET_COLS, "")
        rd.unique(g, rows, "id", "budget")
        if rows:
            policy["gpu_hour_budgets"] = [item for _, item in rows]
    if (g := rd.grid("tiers")) is not None:
        _read_tiers(rd, g, labels, seg_ids, segments)
    if (g := rd.grid("subscriptions")) is not None:
        _read_subscriptions(rd, g, labels, seg_ids, segments)
    sites: list[dict[str, Any]] = []
    site_ids: dict[str, int] = {}
    if (g := rd.grid("sites")) is not None:
        sites, site_ids = _read_sites(rd, g, labels)
    if (g := rd.grid("power_levels")) is not None:
        for r, item in rd.table(g, LEVEL_COLS, ""):
            pid = item.pop("pool", None)
            if pid is None:
                continue
            if pid not in pool_ids:
                rd.bad(g.ref(r, 1), f"unknown pool {pid!r}")
            else:
                pools[pool_ids[pid]].setdefault("power_levels", []).append(item)
    if (g := rd.grid("by_period")) is not None:
        _read_by_period(rd, g, labels, pools, pool_ids, segments, seg_ids, (sites, site_ids))

    if rd.issues:
        raise ScenarioError(rd.issues)
    if policy:
        data["policy"] = policy
    data.update(periods=periods, pools=pools, segments=segments)
    if sites:
        data["sites"] = sites
    return data


def _read_sites(
    rd: _WorkbookReader, g: _Grid, labels: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Sites: id, region, PUE, energy price, and IT power in one value or one per period."""
    keys = ("site", "region", "pue", "energy_price", ALL_PERIODS)
    fixed, at = rd.period_columns(g, labels, keys, need_all=False)
    for k in ("site", "region"):
        if k not in fixed:
            rd.bad(g.header_ref, f"missing column {k!r}")
    sites: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    if "site" not in fixed or "region" not in fixed:
        return sites, ids
    for r, row in g.rows:
        x = _text(row[fixed["site"] - 1])
        cell = g.ref(r, fixed["site"])
        if x is None:
            rd.bad(cell, "empty: enter a site id")
            continue
        if x in ids:
            rd.bad(cell, f"duplicate site {x!r}")
            continue
        site: dict[str, Any] = {"id": x, "region": _text(row[fixed["region"] - 1])}
        for k, fld in (("pue", "pue"), ("energy_price", "energy_price_per_mwh")):
            if k in fixed and not _blank(row[fixed[k] - 1]):
                site[fld] = rd.number(row[fixed[k] - 1], g.ref(r, fixed[k]), True)
        mw = rd.per_period(g, r, row, fixed.get(ALL_PERIODS), at, labels)
        if mw is not None:
            site["power_mw"] = mw
        ids[x] = len(sites)
        sites.append(site)
    return sites, ids


def _read_by_period(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    pools: list[dict[str, Any]],
    pool_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
    seg_ids: Mapping[str, int],
    sites: tuple[list[dict[str, Any]], Mapping[str, int]] = ([], {}),
) -> None:
    """Per-unit numbers that move over the horizon: each row replaces one field's value."""
    fixed, at = rd.period_columns(g, labels, ("item", "id", "field"), need_all=True)
    for k in ("item", "id", "field"):
        if k not in fixed:
            rd.bad(g.header_ref, f"missing column {k!r}")
    if len(fixed) < 3 or len(at) < len(labels):
        return
    first: dict[tuple[str, str, str], int] = {}
    for r, row in g.rows:
        item, rid, fld = (_text(row[fixed[k] - 1]) for k in ("item", "id", "field"))
        if item not in ("pool", "segment", "site"):
            rd.bad(g.ref(r, fixed["item"]), f"not an item: {item!r} (pool, segment or site)")
            continue
        items, ids = {
            "pool": (pools, pool_ids),
            "segment": (segments, seg_ids),
            "site": sites,
        }[item]
        if rid is None or rid not in ids:
            rd.bad(g.ref(r, fixed["id"]), f"unknown {item} {rid!r}")
            continue
        target = items[ids[rid]]
        fld = fld or ""
        if (item, rid, fld) in first:
            rd.bad(
                g.ref(r, fixed["field"]),
                f"duplicate field {fld!r} of {item} {rid!r} (also in row {first[item, rid, fld]})",
            )
            continue
        first[item, rid, fld] = r
        values = [rd.number(row[at[lb] - 1], g.ref(r, at[lb]), required=True) for lb in labels]
        if not _place_by_period(target, item, fld, values):
            rd.bad(
                g.ref(r, fixed["field"]),
                f"not a per-period field of a {item}: {fld!r} (see the about sheet)",
            )


def _place_by_period(target: dict[str, Any], item: str, fld: str, values: list[Any]) -> bool:
    """Put ``values`` into the field ``fld`` of a pool or segment; False if it has none."""
    if item == "site":
        if fld not in SITE_BY_PERIOD:
            return False
        target[fld] = values
        return True
    if item == "pool" and fld in POOL_BY_PERIOD:
        head, _, attr = fld.partition(".")
        if attr:  # expansion.cost_per_gpu_hour, retirement.salvage_per_gpu
            sub = target.get(head)
            if not isinstance(sub, dict):
                return False
            sub[attr] = values
        else:
            target[fld] = values
        return True
    if item != "segment":
        return False
    if fld in SEGMENT_BY_PERIOD:
        target[fld] = values
        return True
    head, _, rest = fld.partition(".")
    if head == "subscription" and rest in SUBSCRIPTION_BY_PERIOD:
        sub = target.get("subscription")
        if not isinstance(sub, dict):
            return False
        sub[rest] = values
        return True
    place, _, attr = rest.partition(".")
    if head == "tiers" and attr in TIER_BY_PERIOD and place.isdigit():
        tiers = target.get("tiers") or []
        if not 1 <= int(place) <= len(tiers):
            return False
        tiers[int(place) - 1][attr] = values
        return True
    if head == "throughput" and rest in (target.get("throughput") or {}):
        target["throughput"][rest] = values
        return True
    mode, _, attr = rest.rpartition(".")
    if head == "modes" and attr == "throughput_multiplier":
        for m in target.get("modes") or []:
            if m.get("name") == mode:
                m["throughput_multiplier"] = values
                return True
        if mode == FULL["name"] and not target.get("modes"):  # the default mode only
            target["modes"] = [{**FULL, "throughput_multiplier": values}]
            return True
    return False


def split_by_period(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """A copy of scenario data with every per-period per-unit number replaced by its first
    period's value, and the by_period rows (item, id, field, values) that restore them."""
    import copy

    out = copy.deepcopy(dict(data))
    rows: list[tuple[Any, ...]] = []

    def take(obj: dict[str, Any], key: str, item: str, rid: str, fld: str) -> None:
        v = obj.get(key)
        if isinstance(v, list):
            rows.append((item, rid, fld, list(v)))
            obj[key] = v[0] if v else None

    for p in out.get("pools") or []:
        for fld in POOL_BY_PERIOD:
            head, _, attr = fld.partition(".")
            if attr:
                if isinstance(p.get(head), dict):
                    take(p[head], attr, "pool", p["id"], fld)
            else:
                take(p, fld, "pool", p["id"], fld)
    for q in out.get("sites") or []:
        for fld in SITE_BY_PERIOD:
            take(q, fld, "site", q["id"], fld)
    for s in out.get("segments") or []:
        for fld in SEGMENT_BY_PERIOD:
            take(s, fld, "segment", s["id"], fld)
        for acc in list(s.get("throughput") or {}):
            take(s["throughput"], acc, "segment", s["id"], f"throughput.{acc}")
        for m in s.get("modes") or []:
            fld = f"modes.{m.get('name')}.throughput_multiplier"
            take(m, "throughput_multiplier", "segment", s["id"], fld)
        for n, tier in enumerate(s.get("tiers") or [], start=1):
            for attr in TIER_BY_PERIOD:
                take(tier, attr, "segment", s["id"], f"tiers.{n}.{attr}")
        if isinstance(s.get("subscription"), dict):
            for attr in SUBSCRIPTION_BY_PERIOD:
                take(s["subscription"], attr, "segment", s["id"], f"subscription.{attr}")
    return out, rows


def _read_throughput(
    rd: _WorkbookReader,
    g: _Grid,
    seg_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
    accelerators: set[str],
) -> None:
    at: list[tuple[str, int]] = []
    for j, h in g.columns():
        if j == 1 or _ignored(h):
            continue
        if h in dict(at):
            rd.bad(g.ref(1, j), f"column {h!r} appears twice")
        elif h not in accelerators:
            have = ", ".join(sorted(accelerators)) or "none"
            rd.bad(g.ref(1, j), f"unknown accelerator type {h!r} (the pools have: {have})")
        else:
            at.append((h, j))
    first: dict[str, int] = {}
    for r, row in g.rows:
        x = _text(row[0])
        if x is None:
            rd.bad(g.ref(r, 1), "empty: enter a segment id")
        elif x not in seg_ids:
            rd.bad(
                g.ref(r, 1),
                f"unknown segment {x!r} (the segments sheet has: {', '.join(seg_ids) or 'none'})",
            )
        elif x in first:
            rd.bad(g.ref(r, 1), f"duplicate segment {x!r} (also in row {first[x]})")
        else:
            first[x] = r
            tp: dict[str, Any] = {}
            for acc, j in at:
                v = rd.number(row[j - 1], g.ref(r, j))
                if v is not None:
                    tp[acc] = v
            if not tp:
                rd.bad(
                    g.ref(r, 1),
                    f"segment {x!r} has no throughput: enter work units per "
                    "GPU-hour for at least one accelerator type",
                )
            segments[seg_ids[x]]["throughput"] = tp
    for x in seg_ids:
        if x not in first:
            rd.bad(g.name, f"no row for segment {x!r}")


def _read_reservations(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    seg_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
) -> None:
    fixed, at = rd.period_columns(g, labels, ("segment", "price", ALL_PERIODS), need_all=False)
    for k in ("segment", "price"):
        if k not in fixed:
            rd.bad(g.header_ref, f"missing column {k!r}")
    if "segment" not in fixed:
        return
    first: dict[str, int] = {}
    for r, row in g.rows:
        x = _text(row[fixed["segment"] - 1])
        cell = g.ref(r, fixed["segment"])
        if x is None:
            rd.bad(cell, "empty: enter a segment id")
        elif x not in seg_ids:
            rd.bad(cell, f"unknown segment {x!r}")
        elif x in first:
            rd.bad(cell, f"duplicate segment {x!r} (also in row {first[x]})")
        else:
            first[x] = r
            res: dict[str, Any] = {}
            if "price" in fixed:
                price = rd.number(row[fixed["price"] - 1], g.ref(r, fixed["price"]), True)
                if price is not None:
                    res["price_per_gpu_hour"] = price
            mx = rd.per_period(g, r, row, fixed.get(ALL_PERIODS), at, labels)
            if mx is not None:
                res["max_gpus"] = mx
            segments[seg_ids[x]]["reservation"] = res


def _read_kind_limits(
    rd: _WorkbookReader, g: _Grid, labels: Sequence[str], policy: dict[str, Any]
) -> None:
    fixed, at = rd.period_columns(g, labels, ("kind", "limit", ALL_PERIODS), need_all=False)
    for k in ("kind", "limit"):
        if k not in fixed:
            rd.bad(g.header_ref, f"missing column {k!r}")
    if "kind" not in fixed or "limit" not in fixed:
        return
    first: dict[tuple[str, str], int] = {}
    for r, row in g.rows:
        kind = _text(row[fixed["kind"] - 1])
        limit = _text(row[fixed["limit"] - 1])
        if kind is None or kind not in KINDS:
            rd.bad(g.ref(r, fixed["kind"]), f"not a kind: {kind!r} (one of {', '.join(KINDS)})")
            continue
        if limit is None or limit.lower() not in LIMITS:
            rd.bad(g.ref(r, fixed["limit"]), f"not a limit: {limit!r} (cap or floor)")
            continue
        limit = limit.lower()
        if (kind, limit) in first:
            rd.bad(
                g.ref(r, fixed["kind"]),
                f"duplicate {limit} of {kind!r} (also in row {first[kind, limit]})",
            )
            continue
        first[kind, limit] = r
        v = rd.per_period(g, r, row, fixed.get(ALL_PERIODS), at, labels)
        if v is not None:
            policy.setdefault(LIMITS[limit], {})[kind] = v


def _segment_rows(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    seg_ids: Mapping[str, int],
    fixed: Sequence[str],
) -> Iterator[tuple[int, tuple[Any, ...], dict[str, int], str, Any]]:
    """The rows of a per-segment sheet with an all_periods column and period columns:
    (row number, cells, fixed column key -> column, segment id, the per-period value)."""
    cols, at = rd.period_columns(g, labels, ("segment", *fixed, ALL_PERIODS), need_all=False)
    if "segment" not in cols:
        if g.rows:
            rd.bad(g.header_ref, "missing column 'segment'")
        return
    for r, row in g.rows:
        x = _text(row[cols["segment"] - 1])
        cell = g.ref(r, cols["segment"])
        if x is None:
            rd.bad(cell, "empty: enter a segment id")
            continue
        if x not in seg_ids:
            rd.bad(cell, f"unknown segment {x!r}")
            continue
        yield r, row, cols, x, rd.per_period(g, r, row, cols.get(ALL_PERIODS), at, labels)


def _read_gpu_limits(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    seg_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
) -> None:
    """gpu_limits rows (segment, accelerator, max|min, GPUs): one limit per (segment,
    accelerator), in the order of their first rows."""
    first: dict[tuple[str, str | None, str], int] = {}
    limits: dict[tuple[str, str | None], dict[str, Any]] = {}
    for r, row, cols, sid, value in _segment_rows(rd, g, labels, seg_ids, ("accelerator", "limit")):
        acc = _text(row[cols["accelerator"] - 1]) if "accelerator" in cols else None
        bound = _text(row[cols["limit"] - 1]) if "limit" in cols else None
        if bound is None or bound.lower() not in GPU_BOUNDS:
            rd.bad(g.ref(r, cols.get("limit", 1)), f"not a limit: {bound!r} (max or min)")
            continue
        bound = bound.lower()
        if (sid, acc, bound) in first:
            rd.bad(
                g.ref(r, cols["segment"]),
                f"duplicate {bound} of segment {sid!r} for {acc or 'every type'} "
                f"(also in row {first[sid, acc, bound]})",
            )
            continue
        first[sid, acc, bound] = r
        if (sid, acc) not in limits:
            limits[sid, acc] = lim = {} if acc is None else {"accelerator": acc}
            segments[seg_ids[sid]].setdefault("gpu_limits", []).append(lim)
        if value is not None:
            limits[sid, acc][GPU_BOUNDS[bound]] = value


def _read_tiers(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    seg_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
) -> None:
    """tiers rows (segment, price, LTV, units): a segment's tiers in the sheet's order."""
    for r, row, cols, sid, units in _segment_rows(rd, g, labels, seg_ids, ("price", "ltv")):
        tier: dict[str, Any] = {}
        if units is not None:
            tier["units"] = units
        if "price" not in cols:
            rd.bad(g.header_ref, "missing column 'price'")
        else:
            price = rd.number(row[cols["price"] - 1], g.ref(r, cols["price"]), required=True)
            if price is not None:
                tier["price"] = price
        if "ltv" in cols:
            ltv = rd.number(row[cols["ltv"] - 1], g.ref(r, cols["ltv"]))
            if ltv is not None:
                tier["ltv_per_unit"] = ltv
        segments[seg_ids[sid]].setdefault("tiers", []).append(tier)


SUBSCRIPTION_COLS = {  # column key -> (field, required)
    "fee": ("fee_per_subscriber", True),
    "usage": ("usage_per_subscriber", True),
    "ltv_loss": ("ltv_loss_per_unit", True),
    "min_service_share": ("min_service_share", False),
}


def _read_subscriptions(
    rd: _WorkbookReader,
    g: _Grid,
    labels: Sequence[str],
    seg_ids: Mapping[str, int],
    segments: list[dict[str, Any]],
) -> None:
    """subscriptions rows (segment, fee, usage, LTV loss, minimum share, subscribers)."""
    first: dict[str, int] = {}
    for r, row, cols, sid, subscribers in _segment_rows(
        rd, g, labels, seg_ids, tuple(SUBSCRIPTION_COLS)
    ):
        if sid in first:
            rd.bad(
                g.ref(r, cols["segment"]), f"duplicate segment {sid!r} (also in row {first[sid]})"
            )
            continue
        first[sid] = r
        sub: dict[str, Any] = {}
        if subscribers is not None:
            sub["subscribers"] = subscribers
        for key, (fld, required) in SUBSCRIPTION_COLS.items():
            if key not in cols:
                if required:
                    rd.bad(g.header_ref, f"missing column {key!r}")
                continue
            v = rd.number(row[cols[key] - 1], g.ref(r, cols[key]), required=required)
            if v is not None:
                sub[fld] = v
        segments[seg_ids[sid]]["subscription"] = sub


# ------------------------------------------------------------------------ writing
def _style_header(ws: Any, ncols: int, freeze: str) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE4EE")
    for cell in ws[1][:ncols]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(vertical="top")
    ws.freeze_panes = freeze


def _widths(ws: Any, cap: int = 48) -> None:
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is not None:
                n = len(str(c.value))
                widths[c.column] = max(widths.get(c.column, 0), min(n, cap))
    for j, w in widths.items():
        ws.column_dimensions[get_column_letter(j)].width = max(8, w + 2)


def _choices(ws: Any, col: int, choices: Sequence[str], rows: int) -> None:
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True)
    letter = get_column_letter(col)
    dv.add(f"{letter}2:{letter}{max(rows, 1) + 200}")
    ws.add_data_validation(dv)


def _number_format(ws: Any, values: Iterable[Any], first: str, last: str) -> None:
    vals = [v for v in values if isinstance(v, int | float)]
    if vals and all(float(v).is_integer() for v in vals):
        for row in ws[f"{first}:{last}"]:
            for c in row:
                c.number_format = "#,##0"


def _colour_scale(ws: Any, first: str, last: str) -> None:
    from openpyxl.formatting.rule import ColorScaleRule

    ws.conditional_formatting.add(
        f"{first}:{last}",
        ColorScaleRule(start_type="min", start_color="FFFFFF", end_type="max", end_color="63BE7B"),
    )


def _plain(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)  # 48000 rather than 48000.0; reads back the same
    return v


def _write_table(
    ws: Any, cols: Sequence[Col], items: Sequence[Mapping[str, Any]], cur: str
) -> None:
    ws.append([c.header(cur) for c in cols])
    for item in items:
        row = []
        for c in cols:
            v = _get(item, c.field)
            if c.kind == "list" and v is not None:
                v = ", ".join(v)
            row.append(_plain(v))
        ws.append(row)
    _style_header(ws, len(cols), "B2")
    for j, c in enumerate(cols, start=1):
        if c.choices and c.kind != "bool":
            _choices(ws, j, c.choices, len(items))


def _write_settings(
    ws: Any, cols: Sequence[Col], values: Mapping[str, Any], cur: str, defaults: bool
) -> None:
    ws.append(["setting", "value", "unit", "meaning"])
    for c in cols:
        v = values.get(c.field) if not defaults else None
        ws.append([c.key, _plain(v), c.unit.format(cur=cur), c.doc])
    _style_header(ws, 4, "A2")


def _write_grid(
    ws: Any,
    corner: str,
    labels: Sequence[str],
    rows: Sequence[tuple[str, Sequence[Any] | None]],
    colour: bool = False,
) -> None:
    from openpyxl.utils import get_column_letter

    ws.append([corner, *labels])
    values: list[Any] = []
    for rid, vals in rows:
        if vals is None or isinstance(vals, int | float):  # one number: every period
            vals = [vals] * len(labels)
        vals = list(vals)
        ws.append([rid, *map(_plain, vals)])
        values.extend(vals)
    _style_header(ws, len(labels) + 1, "B2")
    if rows and labels:
        first, last = "B2", f"{get_column_letter(len(labels) + 1)}{len(rows) + 1}"
        _number_format(ws, values, first, last)
        if colour:
            _colour_scale(ws, first, last)


def _write_per_period(
    ws: Any,
    fixed: Sequence[str],
    labels: Sequence[str],
    rows: Sequence[tuple[Sequence[Any], Any]],
    choices: Mapping[int, Sequence[str]],
    unit: str = "GPUs",
) -> None:
    """Rows of fixed cells, then one value (all_periods) or one per period."""
    ws.append([*fixed, f"{ALL_PERIODS} ({unit})", *labels])
    for head, v in rows:
        if isinstance(v, list):
            ws.append([*map(_plain, head), None, *map(_plain, v)])
        else:
            ws.append([*map(_plain, head), _plain(v)])
    _style_header(ws, len(fixed) + 1 + len(labels), "B2")
    for j, ch in choices.items():
        _choices(ws, j, ch, len(rows))


def _write_about(ws: Any, data: Mapping[str, Any], cur: str) -> None:
    from openpyxl.styles import Alignment, Font

    lines: list[list[Any]] = [
        [f"Scenario workbook: {data.get('name', 'scenario')}"],
        [
            "A GPU-fleet scenario for the allocator (allocator solve fleet.xlsx). One row per "
            "pool, segment, period ...; per-period values as grids with the period labels as "
            "column headers; units in the headers. Blank optional cells take the default."
        ],
        [
            "Conventions: ids (periods, pools, segments, modes, accelerator types, regions) are "
            "letters, digits and _ . : / + - (no spaces). Money is in the scenario's currency "
            f"({cur}), capacity in GPUs (an average over the period), work in the segment's own "
            "unit. Columns headed 'notes' or starting with '#' are ignored, as are extra sheets. "
            "Formulas are read by their last computed value (save the file in Excel first)."
        ],
        [
            "Convert: allocator convert fleet.xlsx fleet.json (and back); check: allocator "
            "validate fleet.xlsx (every problem, with its sheet and cell)."
        ],
        [],
        ["sheet", "required", "what it holds"],
    ]
    head_rows = [len(lines)]
    for s in SHEETS:
        lines.append([s.name, "yes" if s.required else "no", s.doc])
    lines += [[], ["sheet", "column", "meaning"]]
    head_rows.append(len(lines))
    for sheet, cols in (
        ("periods", PERIOD_COLS),
        ("pools", POOL_COLS),
        ("segments", SEGMENT_COLS),
        ("modes", MODE_COLS),
        ("budgets", BUDGET_COLS),
        ("power_levels", LEVEL_COLS),
        ("scenario", SCENARIO_ROWS),
        ("policy", POLICY_ROWS),
    ):
        for c in cols:
            req = " (required)" if c.required and sheet not in ("scenario", "policy") else ""
            lines.append([sheet, c.header(cur), c.doc + req])
    lines += [
        [
            "reservations",
            "segment / price (" + cur + "/GPU-hour)",
            "The segment, the fee per reserved GPU-hour (used or not)",
        ],
        [
            "reservations",
            f"{ALL_PERIODS} (GPUs) / period columns",
            "Most GPUs the customer would reserve: one value for every period, or one per period",
        ],
        ["kind_limits", "kind / limit (cap/floor)", "A segment kind and which limit"],
        [
            "kind_limits",
            f"{ALL_PERIODS} (GPUs) / period columns",
            "GPUs: one value for every period, or one per period",
        ],
        [
            "gpu_limits",
            "segment / accelerator / limit (max/min)",
            "The segment, one accelerator type (blank: every type) and which bound; a min is "
            "a hard floor",
        ],
        [
            "gpu_limits",
            f"{ALL_PERIODS} (GPUs) / period columns",
            "GPUs the segment holds per period over its pools: one value, or one per period",
        ],
        [
            "tiers",
            f"segment / price ({cur}/unit) / ltv ({cur}/unit)",
            "The segment and one price tier (rows in falling price; blank ltv: 0)",
        ],
        [
            "tiers",
            f"{ALL_PERIODS} (units) / period columns",
            "Work units wanted at that price: one value, or one per period",
        ],
        [
            "subscriptions",
            "segment / fee / usage / ltv_loss / min_service_share",
            "Fee per subscriber per period (earned whether served or not), work units a "
            "subscriber uses, LTV lost per unit not served (below the minimum share, if given)",
        ],
        [
            "subscriptions",
            f"{ALL_PERIODS} (subscribers) / period columns",
            "Subscribers: one value, or one per period",
        ],
        [
            "sites",
            f"site / region / pue / energy_price ({cur}/MWh)",
            "The site, its region (its pools' region), PUE (blank: 1) and price of a MWh of "
            "facility power (blank: no energy cost; per period on by_period, item site)",
        ],
        [
            "sites",
            f"{ALL_PERIODS} (MW) / period columns",
            "IT power available: one value, or one per period",
        ],
    ]
    for line in lines:
        ws.append(line)
    ws["A1"].font = Font(bold=True, size=14)
    for r in head_rows:
        for c in ws[r]:
            c.font = Font(bold=True)
    for r in range(2, 5):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=3)
        ws.cell(r, 1).alignment = Alignment(wrap_text=True, vertical="top")
        ws.row_dimensions[r].height = 48
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 40
    ws.column_dimensions["C"].width = 100


def write_workbook(scenario: Scenario | Mapping[str, Any], path: str | Path) -> None:
    """Write ``scenario`` (a Scenario, or scenario data as for ``Scenario.from_dict``) as a
    workbook at ``path``; :func:`read_workbook` gives the same scenario back."""
    data = scenario.to_dict() if hasattr(scenario, "to_dict") else dict(scenario)
    _save(_workbook(data, template=False), path)


def write_template(
    path: str | Path, periods: Sequence[str] = (), hours: float = 2190.0, currency: str = "USD"
) -> None:
    """Write an empty, documented workbook; ``periods`` (labels) fills the periods sheet
    and heads the grids' columns."""
    data = {
        "name": "",
        "currency": currency,
        "periods": [{"label": p, "hours": hours} for p in periods],
        "pools": [],
        "segments": [],
    }
    _save(_workbook(data, template=True), path)


def _save(wb: Any, path: str | Path) -> None:
    """Save ``wb`` with every float written exactly: openpyxl writes 16 significant digits
    and a float needs up to 17 to read back the same (0.1 + 0.2), so its cell writer gets
    ``repr`` for the duration (Excel itself writes 17)."""
    from openpyxl.cell import _writer

    original = getattr(_writer, "safe_string", None)

    def exact(value: Any) -> Any:
        if type(value) is float and math.isfinite(value):
            return repr(value)
        return original(value)  # type: ignore[misc]

    with _SAVE_LOCK:
        if original is not None:
            _writer.safe_string = exact
        try:
            wb.save(path)
        finally:
            if original is not None:
                _writer.safe_string = original


def _workbook(data: Mapping[str, Any], template: bool) -> Any:
    """The whole workbook: about, settings, the pool sheets, the segment sheets, limits."""
    from openpyxl import Workbook

    cur = str(data.get("currency") or "USD")
    labels = [str(p["label"]) for p in data.get("periods") or []]
    wb = Workbook()
    about = wb.active
    about.title = "about"
    _write_about(about, data, cur)
    _settings_sheets(wb, data, cur, template)
    data, by_period = split_by_period(data)
    _pool_sheets(wb, data, labels, cur)
    _segment_sheets(wb, data, labels, cur)
    _limit_sheets(wb, data, labels, cur)
    _demand_curve_sheets(wb, data, labels, cur)
    if template or data.get("sites") or any(p.get("power_levels") for p in data["pools"]):
        _site_sheets(wb, data, labels, cur)
    _by_period_sheet(wb, by_period, labels)
    no_formulas(wb)  # a name or unit starting with "=" is text
    return wb


def _site_sheets(wb: Any, data: Mapping[str, Any], labels: list[str], cur: str) -> None:
    """Sites with their IT power (issue 27), and pools' power caps; only in a workbook of
    a scenario with sites (or a template), so other workbooks keep their sheets."""
    ws = wb.create_sheet("sites")
    rows = [
        ((q["id"], q["region"], q.get("pue"), q.get("energy_price_per_mwh")), q["power_mw"])
        for q in data.get("sites") or []
    ]
    heads = ("site", "region", "pue (x IT power)", f"energy_price ({cur}/MWh)")
    _write_per_period(ws, heads, labels, rows, {}, unit="MW")
    _widths(ws)
    ws = wb.create_sheet("power_levels")
    levels = [
        {"pool": p["id"], **lv}
        for p in data.get("pools") or []
        for lv in p.get("power_levels") or []
    ]
    _write_table(ws, LEVEL_COLS, levels, cur)
    _widths(ws)


def _by_period_sheet(wb: Any, rows: Sequence[tuple[Any, ...]], labels: list[str]) -> None:
    """Per-unit numbers that move over the horizon, one row per (item, field)."""
    ws = wb.create_sheet("by_period")
    ws.append(["item", "id", "field", *labels])
    for item, rid, fld, values in rows:
        ws.append([item, rid, fld, *map(_plain, values)])
    _style_header(ws, 3 + len(labels), "D2")
    _choices(ws, 1, ("pool", "segment", "site"), len(rows))
    _widths(ws)


def _settings_sheets(wb: Any, data: Mapping[str, Any], cur: str, template: bool) -> None:
    """scenario (name, currency, discount rate...) and policy, as item/value rows."""
    from openpyxl.styles import Alignment

    ws = wb.create_sheet("scenario")
    _write_settings(ws, SCENARIO_ROWS, data, cur, defaults=False)
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["D"].width = 70
    ws["B3"].alignment = Alignment(wrap_text=True, vertical="top")
    ws = wb.create_sheet("policy")
    _write_settings(ws, POLICY_ROWS, dict(data.get("policy") or {}), cur, defaults=template)
    _widths(ws, cap=90)


def _pool_sheets(wb: Any, data: Mapping[str, Any], labels: list[str], cur: str) -> None:
    """periods, pools, and the capacity and rentable pool × period grids."""
    pools = list(data.get("pools") or [])
    ws = wb.create_sheet("periods")
    _write_table(ws, PERIOD_COLS, list(data.get("periods") or []), cur)
    _widths(ws)
    ws = wb.create_sheet("pools")
    _write_table(ws, POOL_COLS, pools, cur)
    _widths(ws)
    ws = wb.create_sheet("capacity")
    _write_grid(ws, "pool (GPUs)", labels, [(p["id"], p.get("gpus")) for p in pools], True)
    _widths(ws)
    ws = wb.create_sheet("rentable")
    _write_grid(
        ws,
        "pool (rentable GPUs)",
        labels,
        [(p["id"], p["rentable_gpus"]) for p in pools if p.get("rentable_gpus") is not None],
    )
    _widths(ws)


def _segment_sheets(wb: Any, data: Mapping[str, Any], labels: list[str], cur: str) -> None:
    """segments, the demand and contract-minimum grids, throughput and modes."""
    segments = list(data.get("segments") or [])
    ws = wb.create_sheet("segments")
    _write_table(ws, SEGMENT_COLS, segments, cur)
    _widths(ws)
    ws = wb.create_sheet("demand")
    _write_grid(
        ws, "segment (work units)", labels, [(s["id"], s.get("demand")) for s in segments], True
    )
    _widths(ws)
    ws = wb.create_sheet("contract_min")
    _write_grid(
        ws,
        "segment (work units)",
        labels,
        [(s["id"], s["contract_min"]) for s in segments if s.get("contract_min") is not None],
    )
    _widths(ws)
    ws = wb.create_sheet("throughput")
    accs: dict[str, None] = {}
    for s in segments:
        accs.update(dict.fromkeys(s.get("throughput") or {}))
    for p in data.get("pools") or []:
        accs.setdefault(str(p["accelerator"]))
    _write_grid(
        ws,
        "segment (work units per GPU-hour)",
        list(accs),
        [(s["id"], [(s.get("throughput") or {}).get(a) for a in accs]) for s in segments],
    )
    _widths(ws)
    ws = wb.create_sheet("modes")
    mode_rows: list[dict[str, Any]] = []
    for s in segments:
        modes = [{**FULL, **m} for m in s.get("modes") or [FULL]]
        if modes != [FULL]:
            mode_rows.extend({"segment": s["id"], **m} for m in modes)
    _write_table(ws, MODE_COLS, mode_rows, cur)
    _widths(ws)


def _limit_sheets(wb: Any, data: Mapping[str, Any], labels: list[str], cur: str) -> None:
    """reservations offered by segments, and kind caps and floors."""
    segments = list(data.get("segments") or [])
    policy = dict(data.get("policy") or {})
    ws = wb.create_sheet("reservations")
    res_rows = [
        ((s["id"], s["reservation"].get("price_per_gpu_hour")), s["reservation"].get("max_gpus"))
        for s in segments
        if s.get("reservation") is not None
    ]
    _write_per_period(ws, ("segment", f"price ({cur}/GPU-hour)"), labels, res_rows, {})
    _widths(ws)
    ws = wb.create_sheet("kind_limits")
    lim_rows = [
        ((kind, limit), v)
        for limit, field in LIMITS.items()
        for kind, v in (policy.get(field) or {}).items()
    ]
    _write_per_period(
        ws, ("kind", "limit (cap/floor)"), labels, lim_rows, {1: KINDS, 2: tuple(LIMITS)}
    )
    _widths(ws)
    ws = wb.create_sheet("gpu_limits")
    gpu_rows = [
        ((s["id"], lim.get("accelerator"), bound), lim[field])
        for s in segments
        for lim in s.get("gpu_limits") or []
        for bound, field in GPU_BOUNDS.items()
        if lim.get(field) is not None
    ]
    _write_per_period(
        ws,
        ("segment", "accelerator (blank: all)", "limit (max/min)"),
        labels,
        gpu_rows,
        {3: tuple(GPU_BOUNDS)},
    )
    _widths(ws)
    ws = wb.create_sheet("budgets")
    _write_table(ws, BUDGET_COLS, list(policy.get("gpu_hour_budgets") or []), cur)
    _widths(ws)


def _demand_curve_sheets(wb: Any, data: Mapping[str, Any], labels: list[str], cur: str) -> None:
    """Price tiers and subscriptions of the segments that have them (their per-period
    prices, fees and usage are on the by_period sheet)."""
    segments = list(data.get("segments") or [])
    ws = wb.create_sheet("tiers")
    tier_rows = [
        ((s["id"], t.get("price"), t.get("ltv_per_unit")), t.get("units"))
        for s in segments
        for t in s.get("tiers") or []
    ]
    tier_heads = ("segment", f"price ({cur}/unit)", f"ltv ({cur}/unit)")
    _write_per_period(ws, tier_heads, labels, tier_rows, {}, unit="units")
    _widths(ws)
    ws = wb.create_sheet("subscriptions")
    sub_rows = [
        (
            (s["id"], *(s["subscription"].get(f) for f, _ in SUBSCRIPTION_COLS.values())),
            s["subscription"].get("subscribers"),
        )
        for s in segments
        if s.get("subscription") is not None
    ]
    heads = (
        "segment",
        f"fee ({cur}/subscriber per period)",
        "usage (units/subscriber per period)",
        f"ltv_loss ({cur}/unit not served)",
        "min_service_share (share 0-1; blank: none)",
    )
    _write_per_period(ws, heads, labels, sub_rows, {}, unit="subscribers")
    _widths(ws)
