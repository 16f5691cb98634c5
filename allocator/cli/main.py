"""Command line: `allocator solve|validate|export` and the analytics (`explain`,
`counterfactual`, `sensitivity`, `frontier`, `capacity`, `diagnose`: cli_analysis.py).

Exit codes: 0 success; 1 invalid scenario; 2 usage error (including a solver that is
not available); 3 infeasible; 4 time limit without a plan; 5 other solver failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from allocator.cli.analysis import COMMANDS, add_commands
from allocator.cli.batch import COMMANDS as BATCH_COMMANDS
from allocator.cli.batch import add_commands as add_batch_commands
from allocator.cli.bench import COMMANDS as BENCH_COMMANDS
from allocator.cli.bench import add_commands as add_bench_commands
from allocator.cli.common import (
    EXIT_INVALID,
    EXIT_USAGE,
    HANDLED,
    err,
    failure,
    report_invalid,
    seconds,
)
from allocator.engine import solve
from allocator.errors import AllocatorWarning, ScenarioError, SolveError, SolverUnavailableError
from allocator.lp.build import build_lp
from allocator.plan.report import summary
from allocator.scenario import Scenario
from allocator.solvers.export import FORMATS, model_text
from allocator.solvers.registry import ALGORITHMS, BACKENDS, make_solver
from allocator.version import __version__


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="allocator",
        description="Split a GPU fleet between cloud customers, first-party apps, R&D and "
        "consumer tiers; show the opportunity cost of every GPU-hour.",
    )
    ap.add_argument("--version", action="version", version=f"allocator {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="solve a scenario and print the plan")
    s.add_argument("scenario", help="scenario JSON file")
    s.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    s.add_argument("--time-limit", type=seconds, default=None, metavar="SECONDS")
    s.add_argument(
        "--algorithm",
        default="auto",
        choices=list(ALGORITHMS),
        help="auto (default): the period split with lazy stability rows; or one solver on "
        "the whole LP: simplex, ipm, pdlp (HiGHS), clp (COIN-OR CLP)",
    )
    s.add_argument(
        "--backend",
        default="highs",
        choices=list(BACKENDS),
        help="highs (default, fastest) or pulp (the same model through PuLP)",
    )
    s.add_argument(
        "--solver",
        default=None,
        metavar="NAME",
        help="PuLP solver for --backend pulp: CBC (default, bundled), HiGHS, GUROBI, CPLEX …",
    )
    s.add_argument(
        "--mip-gap",
        type=float,
        default=None,
        metavar="GAP",
        help="relative gap at which a MILP (pools with allocation_unit_gpus) stops (default 1e-4)",
    )
    s.add_argument("--top", type=int, default=10, help="rows in each ranking of the summary")
    s.add_argument(
        "--partitions",
        type=int,
        default=None,
        metavar="K",
        help="plan K groups of segments in parallel, each with 1/K of every pool, and add "
        "them up (POP-style: feasible, not optimal, no shadow prices; for fleets too large "
        "for one solve)",
    )

    e = sub.add_parser("export", help="write the model as an MPS or LP file with readable names")
    e.add_argument("scenario", help="scenario JSON file")
    e.add_argument(
        "--format",
        choices=list(FORMATS),
        default=None,
        help="mps (minimisation form) or lp (maximisation); default: from -o's suffix",
    )
    e.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)"
    )

    add_commands(sub)
    add_batch_commands(sub)
    add_bench_commands(sub)

    v = sub.add_parser("validate", help="check scenario files; print every problem")
    v.add_argument("scenarios", nargs="+", help="scenario JSON files")
    return ap


def cmd_validate(paths: Sequence[str]) -> int:
    bad = 0
    for path in paths:
        try:
            sc = Scenario.from_file(path)
        except ScenarioError as exc:
            bad += 1
            err(f"{path}: {len(exc.issues)} problem(s)")
            for issue in exc.issues:
                err(f"  {issue}")
            continue
        print(
            f"{path}: ok ({len(sc.periods)} periods, {len(sc.pools)} pools, "
            f"{len(sc.segments)} segments)"
        )
    return EXIT_INVALID if bad else 0


def cmd_solve(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AllocatorWarning)
        try:
            backend = make_solver(
                args.backend, args.solver, algorithm=args.algorithm, mip_gap=args.mip_gap
            )
        except (SolverUnavailableError, ValueError) as exc:  # unusable solver or option
            err(f"allocator solve: {exc}")
            return EXIT_USAGE
        try:
            if args.partitions is not None:
                if args.partitions < 1:
                    err(f"allocator solve: --partitions must be >= 1, got {args.partitions}")
                    return EXIT_USAGE
                from allocator.workflows.partition import partitioned_solve

                part = partitioned_solve(args.scenario, args.partitions, time_limit=args.time_limit)
                plan = part.plan
                err(
                    f"partitioned into {args.partitions} groups in {part.wall_s:.2f} s; the "
                    f"groups' prices of a pool-period differ by up to "
                    f"{part.price_spread():.4g} per GPU-hour"
                )
            else:
                plan = solve(args.scenario, time_limit=args.time_limit, solver=backend)
        except (ScenarioError, SolveError) as exc:
            return failure(exc, "solve", args.scenario)
    for w in caught:
        if not issubclass(w.category, AllocatorWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(summary(plan, top=args.top))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lstrip(".").lower()
        if suffix not in FORMATS:
            err("allocator export: give --format mps|lp (or an -o file ending .mps or .lp)")
            return EXIT_USAGE
        fmt = suffix
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", AllocatorWarning)  # scaling warnings: for solve
        try:
            sc = Scenario.from_file(args.scenario)
        except ScenarioError as exc:
            return report_invalid(args.scenario, exc)
        lp = build_lp(sc)
    text = model_text(sc, lp, fmt)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    sense = "maximises the objective" if fmt == "lp" else "minimises -objective"
    ints = f" ({lp.num_integer} integer)" if lp.is_mip else ""
    where = "stdout" if args.output == "-" else args.output
    err(
        f"wrote {fmt.upper()} to {where}: {lp.num_cols:,} columns{ints}, {lp.num_rows:,} rows; "
        f"it {sense}"
    )
    return 0


def cmd_analysis(args: argparse.Namespace) -> int:
    """explain, counterfactual, sensitivity, frontier, capacity, diagnose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)  # shown by `allocator solve`
        try:
            sc = Scenario.from_file(args.scenario)
            return COMMANDS[args.command](args, sc)
        except HANDLED as exc:  # an unknown segment, a bad option value, the engine's errors
            return failure(exc, args.command, args.scenario)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args.scenarios)
    if args.command == "export":
        return cmd_export(args)
    if args.command in COMMANDS:
        return cmd_analysis(args)
    if args.command in BATCH_COMMANDS:
        return BATCH_COMMANDS[args.command](args)
    if args.command in BENCH_COMMANDS:
        return BENCH_COMMANDS[args.command](args)
    return cmd_solve(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
