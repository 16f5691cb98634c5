"""Command line: `allocator solve|validate`.

Exit codes: 0 success; 1 invalid scenario; 2 usage error; 3 infeasible;
4 time limit without a plan; 5 other solver failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from . import __version__
from .engine import solve
from .errors import (
    AllocatorWarning,
    InfeasibleError,
    ScenarioError,
    SolveError,
    TimeLimitError,
)
from .report import summary
from .scenario import Scenario

EXIT_INVALID, EXIT_INFEASIBLE, EXIT_TIME_LIMIT, EXIT_SOLVER = 1, 3, 4, 5


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
    s.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    s.add_argument(
        "--algorithm",
        default="auto",
        choices=["auto", "simplex", "ipm", "pdlp"],
        help="HiGHS algorithm (default: chosen by problem size)",
    )
    s.add_argument("--top", type=int, default=10, help="rows in each ranking of the summary")

    v = sub.add_parser("validate", help="check scenario files; print every problem")
    v.add_argument("scenarios", nargs="+", help="scenario JSON files")
    return ap


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_validate(paths: Sequence[str]) -> int:
    bad = 0
    for path in paths:
        try:
            sc = Scenario.from_file(path)
        except ScenarioError as exc:
            bad += 1
            _err(f"{path}: {len(exc.issues)} problem(s)")
            for issue in exc.issues:
                _err(f"  {issue}")
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
            plan = solve(args.scenario, time_limit=args.time_limit, algorithm=args.algorithm)
        except ScenarioError as exc:
            _err(f"{args.scenario}: {len(exc.issues)} problem(s)")
            for issue in exc.issues:
                _err(f"  {issue}")
            return EXIT_INVALID
        except InfeasibleError as exc:
            _err(f"infeasible: {exc}")
            return EXIT_INFEASIBLE
        except TimeLimitError as exc:
            _err(f"time limit: {exc}")
            return EXIT_TIME_LIMIT
        except SolveError as exc:
            _err(f"{exc.status.value}: {exc}")
            return EXIT_SOLVER
    for w in caught:
        if not issubclass(w.category, AllocatorWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(summary(plan, top=args.top))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args.scenarios)
    return cmd_solve(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
