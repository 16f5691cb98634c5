"""The plan as a workbook for people (``allocator solve s.json -o plan.xlsx``): a summary,
money by segment kind, allocations, segments, pools, a pool × period grid of shadow prices
with a colour scale, binding constraints and reservations. Units are in the headers,
header rows are frozen, numbers carry number formats. Written by xlsxwriter in constant
memory: cells are streamed row by row, their formats come from the column.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allocator.plan.tables import Plan

GPUS, MONEY, PRICE, SHARE, UNITS = "#,##0.0", "#,##0", "#,##0.000", "0.0%", "#,##0.0"

# (field, header, number format) per table; "{cur}" is the scenario's currency
ALLOCATIONS = [
    ("segment", "segment", None),
    ("kind", "kind", None),
    ("mode", "mode", None),
    ("pool", "pool", None),
    ("period", "period", None),
    ("gpus", "GPUs", GPUS),
    ("gpu_hours", "GPU-hours", MONEY),
    ("units", "work (segment's unit)", UNITS),
]
SEGMENTS = [
    ("segment", "segment", None),
    ("kind", "kind", None),
    ("period", "period", None),
    ("unit", "unit", None),
    ("demand", "demand (units)", UNITS),
    ("served", "served (units)", UNITS),
    ("unserved", "unserved (units)", UNITS),
    ("gpus", "GPUs", GPUS),
    ("revenue", "revenue ({cur})", MONEY),
    ("compute_cost", "compute cost ({cur})", MONEY),
    ("shortfall_penalty", "SLA penalty ({cur})", MONEY),
    ("gross_margin", "gross margin ({cur})", MONEY),
    ("ltv", "LTV ({cur})", MONEY),
    ("churn_cost", "churn cost ({cur})", MONEY),
    ("contract_min", "contract minimum (units)", UNITS),
    ("shortfall", "contract shortfall (units)", UNITS),
]
POOLS = [
    ("pool", "pool", None),
    ("accelerator", "accelerator", None),
    ("region", "region", None),
    ("period", "period", None),
    ("gpus", "own GPUs", GPUS),
    ("usable", "usable GPUs", GPUS),
    ("rented", "rented GPUs", GPUS),
    ("used", "used GPUs", GPUS),
    ("idle", "idle GPUs (usable, unused)", GPUS),
    ("headroom_gpus", "GPUs kept free (headroom)", GPUS),
    ("utilisation", "utilisation (of own + rented GPUs)", SHARE),
    ("utilisation_of_usable", "use of usable capacity", SHARE),
    ("variable_cost", "variable cost ({cur})", MONEY),
    ("rental_cost", "rental cost ({cur})", MONEY),
    ("fixed_cost", "depreciation ({cur})", MONEY),
    ("shadow_price_per_gpu_hour", "shadow price ({cur}/GPU-hour)", PRICE),
    ("shadow_price_pv_per_gpu_hour", "shadow price, present value ({cur}/GPU-hour)", PRICE),
    ("bought", "GPUs bought so far", GPUS),
    ("expansion_cost", "expansion cost ({cur})", MONEY),
]
RESERVATIONS = [
    ("segment", "segment", None),
    ("kind", "kind", None),
    ("pool", "pool", None),
    ("period", "period", None),
    ("gpus", "GPUs reserved", GPUS),
    ("gpu_hours", "GPU-hours", MONEY),
    ("revenue", "fees ({cur})", MONEY),
]
POWER = [
    ("pool", "pool", None),
    ("site", "site", None),
    ("period", "period", None),
    ("gpus", "GPUs on hand", GPUS),
    ("powered", "GPUs powered", GPUS),
    ("in_inventory", "GPUs in inventory (unpowered)", GPUS),
    ("bought", "GPUs bought so far", GPUS),
    ("power_kw", "IT power (kW)", MONEY),
    ("energy_cost", "energy cost ({cur})", MONEY),
]
SITES = [
    ("site", "site", None),
    ("region", "region", None),
    ("period", "period", None),
    ("power_mw", "IT power (MW)", UNITS),
    ("used_mw", "used (MW)", UNITS),
    ("free_mw", "free (MW)", UNITS),
    ("facility_mw", "facility power (MW, x PUE)", UNITS),
    ("energy_cost", "energy cost ({cur})", MONEY),
    ("shadow_price_per_mwh", "price of a MW-hour ({cur}/MWh)", PRICE),
    ("shadow_price_pv_per_mwh", "price of a MW-hour, present value ({cur}/MWh)", PRICE),
]
KIND_FIELDS = [
    ("kind", "kind", None),
    ("revenue", "revenue ({cur}, PV)", MONEY),
    ("compute_cost", "compute cost ({cur}, PV)", MONEY),
    ("shortfall_penalty", "SLA penalty ({cur}, PV)", MONEY),
    ("gross_margin", "gross margin ({cur}, PV)", MONEY),
    ("ltv", "LTV ({cur}, PV)", MONEY),
    ("churn_cost", "churn cost ({cur}, PV)", MONEY),
]
TOTALS = {
    "objective": "objective: gross margin + LTV weight × LTV − churn − expansion",
    "revenue": "revenue",
    "variable_cost": "variable cost",
    "rental_cost": "rental cost",
    "shortfall_penalty": "SLA penalties",
    "gross_margin": "gross margin",
    "fixed_cost": "depreciation of owned GPUs",
    "margin_after_depreciation": "margin after depreciation",
    "ltv": "lifetime value (LTV)",
    "churn_cost": "churn cost",
    "expansion_cost": "expansion cost (GPUs bought)",
    "reservation_revenue": "reservation fees (part of revenue)",
}


class _Book:
    def __init__(self, currency: str):
        import xlsxwriter

        self.buf = io.BytesIO()
        self.wb = xlsxwriter.Workbook(self.buf, {"constant_memory": True, "in_memory": True})
        self.cur = currency
        self.head = self.wb.add_format({"bold": True, "bg_color": "#E8EEF7", "text_wrap": True})
        self.formats: dict[str, Any] = {}

    def fmt(self, num_format: str | None) -> Any:
        if num_format is None:
            return None
        if num_format not in self.formats:
            self.formats[num_format] = self.wb.add_format({"num_format": num_format})
        return self.formats[num_format]

    def sheet(self, name: str, headers: Sequence[str], formats: Sequence[str | None]) -> Any:
        """A sheet with its header row frozen and one format and width per column."""
        ws = self.wb.add_worksheet(name)
        for j, (h, f) in enumerate(zip(headers, formats, strict=True)):
            ws.set_column(j, j, max(10, min(len(h) + 2, 40)), self.fmt(f))
        ws.set_row(0, 30)
        ws.write_row(0, 0, list(headers), self.head)
        ws.freeze_panes(1, 0)
        return ws

    def table(self, name: str, spec: list[tuple[str, str, str | None]], columns: Any) -> None:
        """One sheet of a plan table from its columns (lists in ``spec`` order)."""
        headers = [h.format(cur=self.cur) for _, h, _ in spec]
        ws = self.sheet(name, headers, [f for _, _, f in spec])
        for i, row in enumerate(zip(*columns, strict=True), start=1):
            ws.write_row(i, 0, ["" if v is None else v for v in row])
        if columns and columns[0]:
            ws.autofilter(0, 0, len(columns[0]), len(spec) - 1)

    def close(self) -> bytes:
        self.wb.close()
        return self.buf.getvalue()


def _summary(book: _Book, plan: Plan) -> None:
    from allocator.plan.report import status_note

    cur = plan.currency
    ws = book.sheet("Summary", ["item", "value", "unit"], [None, MONEY, None])
    ws.set_column(0, 0, 58)
    rows: list[tuple[str, Any, str]] = [
        ("scenario", plan.scenario, ""),
        ("status", plan.status.value, status_note(plan)),
        ("periods", f"{plan.periods[0]} … {plan.periods[-1]} ({len(plan.periods)})", ""),
    ]
    totals = asdict(plan.totals)
    rows += [(label, totals[k], f"{cur}, present value") for k, label in TOTALS.items()]
    if plan.has_sites:
        rows.append(("energy (part of variable cost)", totals["energy_cost"], f"{cur}, PV"))
    rows.append(("LTV weight", plan.totals.ltv_weight, ""))
    s = plan.solver
    rows += [
        ("solver", f"{s.backend}:{s.solver}/{s.algorithm}", f"{s.time_s:.3f} s"),
        ("model", f"{s.columns:,} columns × {s.rows:,} rows", f"{s.nonzeros:,} non-zeros"),
        ("largest violation (checked independently)", plan.max_violation, "relative"),
    ]
    rows += [("warning", w, "") for w in plan.warnings]
    for i, row in enumerate(rows, start=1):
        ws.write_row(i, 0, list(row))


def _prices(book: _Book, plan: Plan) -> None:
    """Pool × period grid of the nominal shadow price, coloured low (green) to high (red)."""
    prices = plan.pool_prices
    periods = list(plan.periods)
    headers = [f"pool \\ period ({plan.currency}/GPU-hour)", *periods]
    ws = book.sheet("Prices", headers, [None] + [PRICE] * len(periods))
    ws.set_column(0, 0, 34)
    ws.freeze_panes(1, 1)
    for i, (pool, by_period) in enumerate(prices.items(), start=1):
        values = [by_period.get(t) for t in periods]
        ws.write_row(i, 0, [pool, *("" if v is None else v for v in values)])
    if prices and plan.has_duals:
        ws.conditional_format(
            1,
            1,
            len(prices),
            len(periods),
            {
                "type": "3_color_scale",
                "min_color": "#63BE7B",
                "mid_color": "#FFEB84",
                "max_color": "#F8696B",
            },
        )


def write_plan_workbook(plan: Plan) -> bytes:
    """The plan as .xlsx bytes (see the module docstring for the sheets)."""
    book = _Book(plan.currency)
    _summary(book, plan)
    kinds = [asdict(k) for k in plan.by_kind.values()]
    book.table("By kind", KIND_FIELDS, [[k[f] for k in kinds] for f, _, _ in KIND_FIELDS])
    _prices(book, plan)
    for name, table, spec in (
        ("Allocations", plan.allocations, ALLOCATIONS),
        ("Segments", plan.segments, SEGMENTS),
        ("Pools", plan.pools, POOLS),
        ("Reservations", plan.reservations, RESERVATIONS),
        ("Sites", plan.sites, SITES),
        ("Power", plan.power, POWER),
    ):
        if name in ("Reservations", "Sites", "Power") and not len(table):
            continue
        lists = dict(zip(table.columns, table.lists(), strict=True))
        book.table(name, spec, [lists[f] for f, _, _ in spec])
    binding = [
        [b.constraint, ", ".join(f"{k}={v}" for k, v in b.key.items()), b.bound, b.dual]
        for b in plan.binding
    ]
    spec = [
        ("constraint", "constraint", None),
        ("key", "key", None),
        ("bound", "bound", None),
        ("dual", "dual ({cur} PV per unit of the constraint)", PRICE),
    ]
    book.table("Binding", spec, [list(c) for c in zip(*binding, strict=True)] or [[], [], [], []])
    return book.close()
