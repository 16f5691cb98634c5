"""CLI subcommands of planning policies: ``fair`` (max-min fair shares of served demand,
and the price of fairness) and ``alternatives`` (near-optimal plans: the range of chosen
quantities within a slack of the optimum). Each prints readable text, or JSON with
``--json``."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allocator.scenario import Scenario

from allocator.cli.common import HANDLED, add_json_options, emit_json, failure
from allocator.errors import AllocatorWarning
from allocator.numbers import short
from allocator.plan.money import money
from allocator.plan.text import table

KINDS = ["cloud", "first_party", "rnd", "consumer"]


def _weights(parser: argparse.ArgumentParser, items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            parser.error(f"--weight takes ID=WEIGHT, got {item!r}")
    return out


def add_commands(sub: Any) -> None:
    f = sub.add_parser(
        "fair",
        help="max-min fair shares of demand first, then value; the price of fairness",
        description="Guarantee every segment (of --kind, or every kind with --by kind) the "
        "largest weighted share of its demand the fleet allows, max-min fair, then plan for "
        "value above that floor; report the objective lost against the unconstrained plan.",
    )
    f.add_argument("scenario")
    f.add_argument("--by", choices=["segment", "kind"], default="segment")
    f.add_argument("--kind", choices=KINDS, default=None, help="only this kind's segments")
    f.add_argument(
        "--weight",
        action="append",
        metavar="ID=WEIGHT",
        help="weight of a segment (or kind): its guaranteed share is weight x the floor",
    )
    f.set_defaults(_parser=f)
    add_json_options(f)

    a = sub.add_parser(
        "alternatives",
        help="near-optimal plans: how far chosen quantities can move within a slack",
        description="Modelling to generate alternatives: among plans whose objective is "
        "within --slack of the optimum, minimise and maximise each quantity named by --vary "
        "(GPU-hours over the horizon): kind:K, segment:S, region:R, accelerator:A, pool:P, "
        "rentals, rentals:P.",
    )
    a.add_argument("scenario")
    a.add_argument(
        "--slack", type=float, default=0.01, help="share of the optimum given up (0.01 = 1 %%)"
    )
    a.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="Q[,Q...]",
        help="quantities, comma-separated or repeated, e.g. kind:cloud,region:eastus,rentals",
    )
    add_json_options(a)


def cmd_fair(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.workflows.fairness import fair_solve

    res = fair_solve(sc, by=args.by, kind=args.kind, weights=_weights(args._parser, args.weight))
    if args.json:
        emit_json(res.to_dict(), args.indent)
        return 0
    periods = res.plan.periods
    rows = [
        [e, short(w)]
        + [
            f"{s:.1%} ({u:.1%})"
            for s, u in zip(res.shares[e], res.unconstrained_shares[e], strict=True)
        ]
        for e, w in zip(res.entities, res.weights, strict=True)
    ]
    cur = sc.currency
    share = res.price_of_fairness_share
    lines = [
        f"Fair shares of {sc.name!r} by {res.by} "
        "(served share of demand; unconstrained in brackets):",
        *table([res.by, "weight", *periods], rows, "lr" + "r" * len(periods), "  "),
        "",
        "floor (least weighted share): "
        + ", ".join(f"{p} {z:.1%}" for p, z in zip(periods, res.floor, strict=True)),
        f"objective: {money(res.fair_objective)} {cur} fair, "
        f"{money(res.unconstrained_objective)} {cur} unconstrained (present value)",
        f"price of fairness: {money(res.price_of_fairness)} {cur}"
        + ("" if share is None else f" ({share:.2%})"),
    ]
    print("\n".join(lines))
    return 0


def cmd_alternatives(args: argparse.Namespace, sc: Scenario) -> int:
    from allocator.plan.text import number
    from allocator.workflows.alternatives import alternatives

    res = alternatives(sc, args.vary, slack=args.slack)
    d = res.to_dict()
    if args.json:
        emit_json(d, args.indent)
        return 0
    rows = [
        [
            a["quantity"],
            number(a["min"]["value"], 0),
            number(a["optimal"], 0),
            number(a["max"]["value"], 0),
            f"{number(a['range_avg_gpus'][0], 1)} – {number(a['range_avg_gpus'][1], 1)}",
        ]
        for a in d["alternatives"]
    ]
    cur = sc.currency
    lines = [
        f"Near-optimal alternatives of {sc.name!r}: objective at least "
        f"{money(res.floor)} {cur} ({res.slack:.2%} below the optimum {money(res.optimum)} {cur})",
        *table(
            ["quantity", "min (GPU-h)", "optimal (GPU-h)", "max (GPU-h)", "average GPUs"],
            rows,
            "lrrrr",
            "  ",
        ),
    ]
    print("\n".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    """Read the scenario, run the command, map its errors to an exit code."""
    from allocator.scenario import Scenario

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)
        try:
            sc = Scenario.from_file(args.scenario)
            return PLANNING[args.command](args, sc)
        except HANDLED as exc:
            return failure(exc, args.command, args.scenario)


PLANNING: dict[str, Callable[[argparse.Namespace, Scenario], int]] = {
    "fair": cmd_fair,
    "alternatives": cmd_alternatives,
}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = dict.fromkeys(PLANNING, run)
