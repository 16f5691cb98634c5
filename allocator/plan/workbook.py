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

from allocator.cells import XLSXWRITER_OPTIONS

if TYPE_CHECKING:
    from allocator.plan.tables import Plan

GPUS, MONEY, PRICE, SHARE, UNITS = "#,##0.0", "#,##0", "#,##0.000", "0.0%", "#,##0.0"

# (field, header, number format) per table; "{cur}" is the scenario's currency
MOVES = [
    ("segment", "segment", None),
    ("kind", "kind", None),
    ("pool", "pool", None),
    ("moved_gpus", "GPUs moved (sum over periods)", GPUS),
    ("largest_move_gpus", "largest move (GPUs)", GPUS),
    ("largest_move_period", "in period", None),
]
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
TOTALS = {  # plain characters: a CSV export of the sheet keeps them
    "objective": "objective = gross margin + LTV weight x LTV - churn - expansion",
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


HEADER_WRAP = 24  # a header wraps (text_wrap) at about this many characters
MAX_WIDTH = 80  # no column wider than this (characters)


def formatted(value: Any, num_format: str | None) -> str:
    """``value`` as a spreadsheet shows it in ``num_format`` (the formats above)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if num_format == SHARE:
        return f"{value * 100:,.1f}%"
    if num_format is None or num_format == "General":
        return f"{value:.10g}"
    decimals = len(num_format.split(".")[1]) if "." in num_format else 0
    return f"{value:,.{decimals}f}"


def column_width(header: str, num_format: str | None, values: Sequence[Any]) -> float:
    """Characters wide enough for the widest formatted value and the header's longest
    word (the header wraps), plus a margin; at least 8, at most MAX_WIDTH."""
    widest = max((len(formatted(v, num_format)) for v in values), default=0)
    head = min(len(header), max(HEADER_WRAP, max(map(len, header.split()), default=0)))
    return float(min(MAX_WIDTH, max(8, widest + 2, head + 2)))


class _Book:
    def __init__(self, currency: str):
        import xlsxwriter

        self.buf = io.BytesIO()
        options = {"constant_memory": True, "in_memory": True} | XLSXWRITER_OPTIONS
        self.wb = xlsxwriter.Workbook(self.buf, options)  # text cells are strings, never formulas
        self.cur = currency
        self.head = self.wb.add_format({"bold": True, "bg_color": "#E8EEF7", "text_wrap": True})
        self.formats: dict[str, Any] = {}

    def fmt(self, num_format: str | None) -> Any:
        if num_format is None:
            return None
        if num_format not in self.formats:
            self.formats[num_format] = self.wb.add_format({"num_format": num_format})
        return self.formats[num_format]

    def sheet(
        self,
        name: str,
        headers: Sequence[str],
        formats: Sequence[str | None],
        columns: Sequence[Sequence[Any]] | None = None,
    ) -> Any:
        """A sheet with its header row frozen (and repeated on every printed page), one
        format per column and each column as wide as its widest formatted value (so no
        ``###``, no id cut off; ``columns``: the values), printed landscape, one page wide."""
        ws = self.wb.add_worksheet(name)
        for j, (h, f) in enumerate(zip(headers, formats, strict=True)):
            values = columns[j] if columns is not None and j < len(columns) else ()
            ws.set_column(j, j, column_width(h, f, values), self.fmt(f))
        ws.set_row(0, 30)
        ws.write_row(0, 0, list(headers), self.head)
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)  # one page wide, as many tall as it takes
        ws.repeat_rows(0)
        return ws

    def table(self, name: str, spec: list[tuple[str, str, str | None]], columns: Any) -> None:
        """One sheet of a plan table from its columns (lists in ``spec`` order)."""
        headers = [h.format(cur=self.cur) for _, h, _ in spec]
        ws = self.sheet(name, headers, [f for _, _, f in spec], columns)
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
    rows: list[tuple[str, Any, str]] = [
        ("scenario", plan.scenario, ""),
        ("status", plan.status.value, status_note(plan)),
        ("periods", f"{plan.periods[0]} to {plan.periods[-1]} ({len(plan.periods)})", ""),
    ]
    totals = asdict(plan.totals)
    rows += [(label, totals[k], f"{cur}, present value") for k, label in TOTALS.items()]
    if plan.has_sites:
        rows.append(("energy (part of variable cost)", totals["energy_cost"], f"{cur}, PV"))
    rows.append(("LTV weight", plan.totals.ltv_weight, ""))
    s = plan.solver
    rows += [
        ("solver", f"{s.backend}:{s.solver}/{s.algorithm}", f"{s.time_s:.3f} s"),
        ("model", f"{s.columns:,} columns x {s.rows:,} rows", f"{s.nonzeros:,} non-zeros"),
        ("largest violation (checked independently)", plan.max_violation, "relative"),
    ]
    rows += [("warning", w, "") for w in plan.warnings]
    ws = book.sheet(
        "Summary",
        ["item", "value", "unit"],
        [None, MONEY, None],
        [list(c) for c in zip(*rows, strict=True)],
    )
    for i, row in enumerate(rows, start=1):
        ws.write_row(i, 0, list(row))


def _prices(book: _Book, plan: Plan) -> None:
    """Pool × period grid of the nominal shadow price, coloured low (green) to high (red)."""
    prices = plan.pool_prices
    periods = list(plan.periods)
    headers = [f"pool \\ period ({plan.currency}/GPU-hour)", *periods]
    columns: list[list[Any]] = [list(prices)]
    columns += [[by.get(t) for by in prices.values()] for t in periods]
    ws = book.sheet("Prices", headers, [None] + [PRICE] * len(periods), columns)
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


def _no_gpus_no_utilisation(plan: Plan, lists: dict[str, list[Any]]) -> None:
    """Blank utilisation cells where the pool has no GPUs (no data, not 0 %), as on every
    other surface (:mod:`allocator.plan.utilisation`)."""
    from allocator.plan.utilisation import has_gpus

    for i, r in enumerate(plan.pools):
        if not has_gpus(r):
            for f in ("utilisation", "utilisation_of_usable"):
                if f in lists:
                    lists[f][i] = None


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
        ("Moves", plan.moves, MOVES),
        ("Sites", plan.sites, SITES),
        ("Power", plan.power, POWER),
    ):
        if name in ("Reservations", "Moves", "Sites", "Power") and not len(table):
            continue
        lists = dict(zip(table.columns, table.lists(), strict=True))
        if name == "Pools":
            _no_gpus_no_utilisation(plan, lists)
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
