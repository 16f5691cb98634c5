"""CLI subcommands from plan to operations: ``quotas`` (a plan's quotas as a scheduler's
objects), ``usage import`` (what ran, as GPU-hours per segment, pool and period) and
``actual`` (plan vs actual)."""

from __future__ import annotations

import argparse
import json
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from allocator.cli.common import HANDLED, add_json_options, emit_json, failure
from allocator.errors import AllocatorWarning
from allocator.plan.text import number, table

TARGETS = ("kueue", "volcano", "yunikorn", "kai", "slurm")
FORMATS = ("slurm", "kueue", "csv")


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

    u = sub.add_parser("usage", help="actual usage read back from the schedulers")
    usub = u.add_subparsers(dest="usage_command", required=True)
    imp = usub.add_parser(
        "import",
        help="GPU-hours per segment, pool and period from sacct, kubectl JSON or CSV",
        description="FILE is `sacct --parsable2` output (slurm), `kubectl get pods|workloads "
        "-A -o json` (kueue) or a CSV (segment, gpu_type, region, start, end, gpus). Jobs "
        "spanning periods are split by time; periods follow each other from --start.",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--format", required=True, choices=FORMATS)
    _usage_inputs(imp)
    imp.add_argument("-o", "--out", default=None, metavar="USAGE.json")
    add_json_options(imp, "the GPU-hours")

    a = sub.add_parser(
        "actual",
        help="plan vs actual: planned and used GPU-hours, variance, quota unused and exceeded",
        description="PLAN as for `allocator quotas`; USAGE a file `allocator usage import -o` "
        "wrote, or a raw usage file with --format.",
    )
    a.add_argument("plan", metavar="PLAN")
    a.add_argument("usage", metavar="USAGE")
    a.add_argument("--format", default=None, choices=FORMATS, help="USAGE is a raw file")
    _usage_inputs(a)
    add_json_options(a, "the comparison")


def _usage_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=None, help="the scenario (names, periods)")
    p.add_argument("--map", default=None, metavar="MAPPING", help="mapping file (YAML/JSON)")
    p.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        metavar="DATETIME",
        help="when the first period starts (ISO 8601; else the mapping's horizon_start)",
    )


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(plan, scenario, mapping) of a command given PLAN, --scenario and --map."""
    from allocator.operations import load_mapping
    from allocator.operations.io import plan_and_scenario

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)  # shown by `allocator solve`
        plan, sc = plan_and_scenario(args.plan, args.scenario)
    return plan, sc, load_mapping(args.map, sc)


def cmd_quotas(args: argparse.Namespace) -> int:
    from allocator.operations import compute_quotas
    from allocator.operations.emit import render_all
    from allocator.operations.io import write_files

    try:
        plan, sc, mapping = _inputs(args)
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


def cmd_usage(args: argparse.Namespace) -> int:
    from allocator.operations import load_mapping
    from allocator.operations.usage import import_usage
    from allocator.scenario import Scenario

    try:
        if args.scenario is None:
            raise ValueError("give the scenario with --scenario (its segments and periods)")
        sc = Scenario.from_file(args.scenario)
        u = import_usage(args.file, args.format, sc, load_mapping(args.map, sc), args.start)
    except HANDLED as exc:
        return failure(exc, "usage import", args.file)
    data = {"scenario": sc.name, **u.to_dict()}
    if args.out:
        from allocator.plan import jsonio

        Path(args.out).write_bytes(jsonio.dumps(data, indent=2))
    if args.json:
        emit_json(data, args.indent)
        return 0
    rows = [
        [r["segment"], f"{r['accelerator']}/{r['region']}", r["period"], r["gpu_hours"]]
        for r in data["rows"]
    ]
    print(f"{u.jobs} job(s) from {args.file}:")
    print("\n".join(table(["segment", "pool", "period", "GPU-hours"], rows)))
    if u.outside_gpu_hours:
        print(f"GPU-hours outside the plan's periods: {number(u.outside_gpu_hours, 1)}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_actual(args: argparse.Namespace) -> int:
    from allocator.operations.actual import actual_text, plan_vs_actual
    from allocator.operations.usage import Usage, import_usage

    try:
        plan, sc, m = _inputs(args)
        if args.format:
            u = import_usage(args.usage, args.format, sc, m, args.start)
        else:
            u = Usage.from_dict(json.loads(Path(args.usage).read_text(encoding="utf-8")), sc)
        report = plan_vs_actual(plan, sc, u, m)
    except HANDLED as exc:
        return failure(exc, "actual", args.plan)
    if args.json:
        emit_json(report, args.indent)
        return 0
    print("\n".join(actual_text(report)))
    return 0


COMMANDS = {"quotas": cmd_quotas, "usage": cmd_usage, "actual": cmd_actual}
