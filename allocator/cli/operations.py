"""CLI subcommands from plan to operations: ``quotas`` (a plan's quotas as a scheduler's
objects), ``usage import`` (what ran, as GPU-hours per segment, pool and period) and
``actual`` (plan vs actual)."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from allocator.cli.common import HANDLED, add_json_options, emit_json, failure
from allocator.errors import AllocatorWarning
from allocator.plan.text import number, table

TARGETS = ("kueue", "volcano", "yunikorn", "kai", "slurm")


def add_commands(sub: Any) -> None:
    q = sub.add_parser(
        "quotas",
        help="a plan's quotas as Kueue, Volcano, YuniKorn, KAI or Slurm objects",
        description="PLAN is a plan JSON (allocator solve -o plan.json; give its scenario with "
        "--scenario) or a scenario, solved first. Writes one folder per period under DIR, "
        "each file checked before it is written (docs/operations.md).",
    )
    q.add_argument("plan", metavar="PLAN")
    q.add_argument("--to", required=True, choices=TARGETS)
    when = q.add_mutually_exclusive_group()
    when.add_argument("--period", default=None, help="one period (default: the first)")
    when.add_argument("--all-periods", action="store_true", help="every period of the plan")
    q.add_argument("--scenario", default=None, help="the scenario of a plan JSON")
    q.add_argument("--map", default=None, metavar="MAPPING", help="mapping file (YAML/JSON)")
    q.add_argument("-o", "--out", required=True, metavar="DIR")
    add_json_options(q, "the quota tuples and the rounding")


def cmd_quotas(args: argparse.Namespace) -> int:
    from allocator.operations import compute_quotas, load_mapping
    from allocator.operations.emit import render_all
    from allocator.operations.io import plan_and_scenario, write_files

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)
        try:
            plan, sc = plan_and_scenario(args.plan, args.scenario)
            mapping = load_mapping(args.map, sc)
            q = compute_quotas(plan, sc, mapping, plan_id=plan.scenario)
            periods = None if args.all_periods else [args.period or q.periods[0]]
            files = render_all(q, args.to, periods)
            written = write_files(files, args.out)
        except HANDLED as exc:
            return failure(exc, "quotas", args.plan)
    if args.json:
        emit_json({**q.to_dict(), "files": [str(p) for p in written]}, args.indent)
        return 0
    print(f"{args.to} quotas of {sc.name!r}: {len(written)} file(s) in {args.out}")
    for p in written:
        print(f"  {p}")
    changed = [r for r in q.rounding if abs(r["difference"]) > 1e-9 or r["largest_change"] > 1e-9]
    planned = sum(r["planned"] for r in q.rounding)
    rounded = sum(r["guaranteed"] for r in q.rounding)
    print(
        f"Rounding to whole GPUs: planned {number(planned, 1)}, guaranteed {number(rounded)} "
        f"({number(rounded - planned, 1)})"
    )
    if changed:
        rows = [
            [
                r["pool"],
                r["period"],
                r["gpus"],
                r["planned"],
                r["guaranteed"],
                r["difference"],
                r["largest_change"],
            ]
            for r in changed
        ]
        heads = ["pool", "period", "GPUs", "planned", "guaranteed", "difference", "largest"]
        print("\n".join(table(heads, rows)))
    return 0


COMMANDS = {"quotas": cmd_quotas}
