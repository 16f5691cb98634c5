"""CLI subcommands of the analytics: explain, counterfactual, sensitivity, frontier,
capacity, diagnose. Each prints readable text, or JSON with ``--json``."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allocator.scenario import Scenario

from allocator.cli.common import EXIT_INFEASIBLE, HANDLED, add_json_options, emit_json, failure
from allocator.errors import AllocatorWarning
from allocator.numbers import short
from allocator.plan.money import money
from allocator.plan.text import number, table

KINDS = ["cloud", "first_party", "rnd", "consumer"]  # allocator.scenario.Kind (tested)


class _Transform(argparse.Action):
    """Collects counterfactual transforms in the order given on the command line."""

    def __call__(self, parser: Any, ns: argparse.Namespace, value: Any, option: Any = None) -> None:
        kind = self.const
        items = list(getattr(ns, "transforms", None) or [])
        if kind in ("priority", "new_capacity_to"):
            items.append({"type": kind, "kind": value})
        elif kind == "remove_segment":
            items.append({"type": kind, "segment": value})
        elif kind == "capacity":
            parts = str(value).split(":")
            if len(parts) not in (2, 3):
                parser.error("--capacity takes POOL:GPUS or POOL:GPUS:FROM_PERIOD")
            try:
                gpus = float(parts[1])
            except ValueError:
                parser.error(f"--capacity: {parts[1]!r} is not a number of GPUs")
            item: dict[str, Any] = {"type": "capacity", "pool": parts[0], "gpus": gpus}
            if len(parts) == 3:
                item["from_period"] = parts[2]
            items.append(item)
        else:  # scale_demand, scale_contract, price
            target, _, factor = str(value).rpartition(":")
            try:  # one factor, or one per period separated by commas
                fs = [float(x) for x in factor.split(",")]
                f: Any = fs if "," in factor else fs[0]
                items.append({"type": kind, "target": target, "factor": f})
            except ValueError:
                parser.error(f"--{kind.replace('_', '-')} takes TARGET:FACTOR or TARGET:F1,F2,…")
        ns.transforms = items


def add_commands(sub: Any) -> None:
    e = sub.add_parser("explain", help="why a segment gets the GPUs it gets")
    e.add_argument("scenario")
    e.add_argument("--segment", required=True, help="segment id")
    add_json_options(e)

    c = sub.add_parser(
        "counterfactual",
        help="solve a changed scenario and compare with the optimal plan",
        description="Transforms apply in the order given. --seeds-case alone asks: had "
        "every new GPU gone to cloud customers?",
    )
    c.add_argument("scenario")
    c.add_argument(
        "--priority", choices=KINDS, action=_Transform, const="priority", dest="transforms"
    )
    c.add_argument(
        "--new-capacity-to",
        choices=KINDS,
        action=_Transform,
        const="new_capacity_to",
        dest="transforms",
    )
    c.add_argument(
        "--remove-segment",
        metavar="ID",
        action=_Transform,
        const="remove_segment",
        dest="transforms",
    )
    c.add_argument(
        "--capacity",
        metavar="POOL:GPUS[:FROM]",
        action=_Transform,
        const="capacity",
        dest="transforms",
    )
    c.add_argument(
        "--scale-demand",
        metavar="TARGET:FACTOR",
        action=_Transform,
        const="scale_demand",
        dest="transforms",
        help="demand × factor (contract minimums stay, lowered to the demand if above it)",
    )
    c.add_argument(
        "--scale-contract",
        metavar="TARGET:FACTOR",
        action=_Transform,
        const="scale_contract",
        dest="transforms",
        help="contract minimums × factor (never above the demand)",
    )
    c.add_argument(
        "--price", metavar="TARGET:FACTOR", action=_Transform, const="price", dest="transforms"
    )
    c.add_argument(
        "--seeds-case",
        action="store_true",
        help="cloud revenue growth: optimal vs all new capacity to cloud",
    )
    add_json_options(c)

    s = sub.add_parser("sensitivity", help="how far capacity and prices can move")
    s.add_argument("scenario")
    s.add_argument("--segment", action="append", help="only these segments' prices")
    add_json_options(s)

    f = sub.add_parser("frontier", help="the margin-LTV frontier over the LTV weight")
    f.add_argument("scenario")
    f.add_argument(
        "--points", type=int, default=None, help="evenly spaced weights (default: every breakpoint)"
    )
    add_json_options(f)

    k = sub.add_parser("capacity", help="buy, rent or leave idle: one more GPU's value")
    k.add_argument("scenario")
    k.add_argument(
        "--purchase-price",
        type=_purchase_prices,
        default=None,
        metavar="PRICE|TYPE=PRICE,...",
        help="amortised price of buying a GPU per GPU-hour: one for every pool, or by "
        "accelerator type or pool id (H100=2.1,B200=3.4); default: its depreciation",
    )
    add_json_options(k)

    d = sub.add_parser("diagnose", help="why a scenario is infeasible, and what to relax")
    d.add_argument("scenario")
    add_json_options(d)


def _emit(args: argparse.Namespace, data: dict[str, Any] | list[Any], text: str) -> None:
    if args.json:
        emit_json(data, args.indent)
    else:
        print(text)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.1%}"


def cmd_explain(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.analysis.explain import explain
    from allocator.engine import solve

    ex = explain(sc, args.segment, solve(sc))
    _emit(args, ex.to_dict(), ex.table_text)
    return 0


def cmd_counterfactual(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.workflows.counterfactuals import counterfactual, seeds_case

    transforms = getattr(args, "transforms", None) or []
    if args.seeds_case or not transforms:
        r = seeds_case(sc)
        g, h = r["growth_last_period"], r["revenue_growth_over_horizon"]
        text = "\n".join(
            [
                f"Had every new GPU gone to {r['kind']} ({sc.name}):",
                f"  {r['kind']} revenue growth in {r['last_period']}: {_pct(g['optimal'])} in the "
                f"optimal plan, {_pct(g['counterfactual'])} with all new capacity to {r['kind']}",
                f"  over the horizon: {_pct(h['optimal'])} against {_pct(h['counterfactual'])}",
                f"  {r['rival']} gross margin would change by {money(r['rival_margin_change'])} "
                f"{sc.currency}; {r['comparison']['verdict']} (objective, present value)",
            ]
        )
        _emit(args, r, text)
        return 0
    out = counterfactual(sc, {"name": "cli", "transforms": transforms})
    lines = [f"Counterfactual on {sc.name!r}: {out['title']}"]
    cur = sc.currency
    rows = [
        [
            kind,
            money(row["revenue"]["change"]),
            money(row["gross_margin"]["change"]),
            money(row["ltv"]["change"]),
            f"{row['gpus_by_period']['change'][-1]:+,.0f}",
        ]
        for kind, row in out["by_kind"].items()
    ]
    headers = ["kind", f"Δ revenue ({cur})", f"Δ gross margin ({cur})", f"Δ LTV ({cur})"]
    lines += table([*headers, "Δ GPUs, last period"], rows, "lrrrr", "  ")
    lines.append(
        f"  GPUs moved in the last period: {number(out['gpus_moved_by_period'][-1])}; "
        f"{out['verdict']} (objective, present value)"
    )
    _emit(args, out, "\n".join(lines))
    return 0


def cmd_sensitivity(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.analysis.sensitivity import sensitivity

    res = sensitivity(sc, segments=args.segment)
    d = res.to_dict()
    cur = d["currency"]
    cap = [
        [
            r["pool"],
            r["period"],
            number(r["shadow_price_per_gpu_hour"], 3),
            number(r["usable_gpus"]),
            _range(r["lower_gpus"], r["upper_gpus"]),
            _range(r["price_holds_lower_gpus"], r["price_holds_upper_gpus"]),
        ]
        for r in d["capacity"]
    ]
    prices = [
        [
            r["segment"],
            f"{cur}/{r['unit']}",
            number(r["revenue_per_unit"], 4),
            _range(r["lower"], r["upper"], 4),
            _range(r["allocation_lower"], r["allocation_upper"], 4),
        ]
        for r in d["prices"]
    ]
    lines = [
        f"Sensitivity of {sc.name!r} ({d.get('method', '')}); objective "
        f"{money(d['objective'])} {cur}",
        "",
        "Capacity: the usable GPUs over which the pool's shadow price stays the same",
        *table(
            [
                "pool",
                "period",
                f"price ({cur}/GPU-hour)",
                "usable GPUs",
                "basis holds (GPUs)",
                "price holds (GPUs)",
            ],
            cap,
            "llrrrr",
            "  ",
        ),
        "",
        "Prices: the revenue per unit over which the plan stays optimal",
        *table(
            ["segment", "unit", "revenue per unit", "plan optimal for", "allocation holds for"],
            prices,
            "llrrr",
            "  ",
        ),
    ]
    _emit(args, d, "\n".join(lines))
    return 0


def _short(v: Any) -> str:
    return short(v) if isinstance(v, float) else str(v)


def _range(lo: float | None, hi: float | None, digits: int = 0) -> str:
    """``lo – hi``; an open end shows as ``∞`` (no limit found)."""
    low = "−∞" if lo is None else number(lo, digits)
    high = "∞" if hi is None else number(hi, digits)
    return f"{low} – {high}"


def cmd_frontier(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.analysis.frontier import frontier

    res = frontier(sc, args.points)
    d = res.to_dict()
    cur = sc.currency
    margin = "gross margin − churn" if d["margin_axis"] != "gross_margin" else "gross margin"
    lines = [
        f"Margin-LTV frontier of {sc.name!r} ({len(d['points'])} points; present value; "
        "rows whose numbers read the same are grouped):",
        *table(
            ["LTV weight", f"{margin} ({cur})", f"LTV ({cur})", "plans", ""],
            _frontier_rows(d["points"], d["current_point"], d["current_weight"]),
            "lrrrl",
            "  ",
        ),
    ]
    _emit(args, d, "\n".join(lines))
    return 0


def _frontier_rows(points: list[dict[str, Any]], current: int, weight: float) -> list[list[Any]]:
    """One row per run of neighbouring points whose margin and LTV read the same (their
    weight ranges joined, the count in "plans"); the current plan's row is marked."""
    groups: list[list[int]] = []
    for k, p in enumerate(points):
        shown = (money(p["margin"]), money(p["ltv"]))
        if (
            groups
            and (money(points[groups[-1][0]]["margin"]), money(points[groups[-1][0]]["ltv"]))
            == shown
        ):
            groups[-1].append(k)
        else:
            groups.append([k])
    rows = []
    for g in groups:
        lo, hi = points[g[0]]["weight_low"], points[g[-1]]["weight_high"]
        w = f"{_short(lo)} – {_short(hi)}" if hi is not None else f">= {_short(lo)}"
        mark = f"← this plan (LTV weight {_short(weight)})" if current in g else ""
        p = points[g[0]]
        rows.append([w, money(p["margin"]), money(p["ltv"]), len(g), mark])
    return rows


def _purchase_prices(text: str) -> float | dict[str, float]:
    from allocator.analysis.capacity import parse_purchase_prices

    try:
        return parse_purchase_prices(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_capacity(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.analysis.capacity import capacity_table, capacity_value
    from allocator.engine import solve

    rows = capacity_value(solve(sc), sc, purchase_price_per_gpu_hour=args.purchase_price)
    _emit(args, [r.to_dict() for r in rows], capacity_table(rows, sc.currency))
    return 0


def cmd_diagnose(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.analysis.infeasibility import diagnose

    d = diagnose(sc)
    _emit(args, d.to_dict(), d.message or "the scenario is feasible")
    return 0 if d.feasible else EXIT_INFEASIBLE


def run(args: argparse.Namespace) -> int:
    """Read the scenario, run the analysis, map its errors to an exit code."""
    from allocator.scenario import Scenario

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)  # shown by `allocator solve`
        try:
            sc = Scenario.from_file(args.scenario)
            return ANALYSES[args.command](args, sc)
        except HANDLED as exc:  # an unknown segment, a bad option value, the engine's errors
            return failure(exc, args.command, args.scenario)


ANALYSES: dict[str, Callable[[argparse.Namespace, Scenario], int]] = {
    "explain": cmd_explain,
    "counterfactual": cmd_counterfactual,
    "sensitivity": cmd_sensitivity,
    "frontier": cmd_frontier,
    "capacity": cmd_capacity,
    "diagnose": cmd_diagnose,
}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = dict.fromkeys(ANALYSES, run)
