"""`allocator solve`, `validate` and `export`: one scenario in, a plan, a verdict or a model
file out."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from allocator.cli.common import (
    EXIT_INVALID,
    EXIT_USAGE,
    add_json_options,
    emit_bytes,
    err,
    failure,
    report_invalid,
    seconds,
)
from allocator.cli.progress import progress
from allocator.errors import AllocatorWarning, ScenarioError, SolveError, SolverUnavailableError
from allocator.numbers import short
from allocator.solvers.names import ALGORITHMS, BACKENDS, EXPORT_FORMATS


def add_commands(sub: Any) -> None:
    s = sub.add_parser("solve", help="solve a scenario and print the plan")
    s.add_argument("scenario", help="scenario file (.json, or an .xlsx workbook)")
    add_json_options(s, "the whole plan")
    s.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="PATH",
        help="also write the plan to PATH: .json, .parquet (a folder of Parquet files), "
        ".xlsx (a workbook for people) or a folder ending / (one CSV per table)",
    )
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
    s.add_argument(
        "--stable",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="of the optimal plans, return the one that moves the fewest GPUs between "
        "periods (a second solve; default: the scenario's policy.stable; "
        "docs/stable-plans.md)",
    )
    s.add_argument("--top", type=int, default=10, help="rows in each ranking of the summary")
    s.add_argument(
        "-v",
        "--verbose",
        "--log",
        dest="verbose",
        action="store_true",
        help="show the solver's log on stderr: HiGHS' output (presolve, iterations, status) "
        "and each round of the row generation",
    )
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
    e.add_argument("scenario", help="scenario file (.json, or an .xlsx workbook)")
    e.add_argument(
        "--format",
        choices=list(EXPORT_FORMATS),
        default=None,
        help="mps (minimisation form) or lp (maximisation); default: from -o's suffix",
    )
    e.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)"
    )

    v = sub.add_parser(
        "validate",
        help="check scenario, sweep or demand-scenario files; print every problem",
        description="Each file is recognised by its content: a scenario (.json or .xlsx), a "
        "sweep (a 'base' scenario and overrides, as for `allocator batch`) or demand "
        "scenarios (a list of {name, probability, demand_scale, demand}, or "
        "{'scenarios': [...]}, as for `allocator stochastic`).",
    )
    v.add_argument("scenarios", nargs="+", metavar="FILE", help="files to check")
    v.add_argument(
        "--scenario",
        dest="base",
        default=None,
        metavar="SCENARIO",
        help="the scenario demand-scenario files are for: also check their segment ids and "
        "demand lengths against it",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from allocator.scenario import Scenario

    base = None
    if args.base is not None:
        try:
            base = Scenario.from_file(args.base)
        except ScenarioError as exc:
            return report_invalid(args.base, exc)
    bad = 0
    for path in args.scenarios:
        try:
            verdict = _validate_one(path, base)
        except ScenarioError as exc:
            bad += 1
            report_invalid(path, exc)
            continue
        print(f"{path}: ok ({verdict})")
    return EXIT_INVALID if bad else 0


def _validate_one(path: str, base: Any) -> str:
    """What ``path`` holds, checked as what it is (a scenario, a sweep, demand scenarios);
    raises :class:`ScenarioError` with every problem."""
    from allocator.scenario import Scenario

    if Path(path).suffix.lower() in (".xlsx", ".xlsm"):
        sc = Scenario.from_file(path)
    else:
        data = _read_json(path)
        from allocator.workflows.batch import is_sweep, validate_sweep
        from allocator.workflows.stochastic import is_demand_file, validate_demand_scenarios

        if is_sweep(data):
            specs, issues = validate_sweep(data, Path(path).parent)
            if issues:
                raise ScenarioError(issues)
            on = data["base"] if isinstance(data["base"], str) else "an inline base"
            return f"sweep: {len(specs)} runs on {on}"
        if is_demand_file(data):
            issues = validate_demand_scenarios(data, base)
            if issues:
                raise ScenarioError(issues)
            n = len(data["scenarios"] if isinstance(data, dict) else data)
            against = f", checked against {base.name!r}" if base is not None else ""
            return f"{n} demand scenarios{against}"
        sc = Scenario.from_dict(data)
    return f"{len(sc.periods)} periods, {len(sc.pools)} pools, {len(sc.segments)} segments"


def _read_json(path: str) -> Any:
    """A JSON file's data; :class:`ScenarioError` (with the line and column of a syntax
    error) if it cannot be read."""
    import json

    from allocator.errors import Issue

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Issue("", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        from allocator.scenario.model import json_error

        raise ScenarioError([Issue("", json_error(exc))]) from None


def cmd_solve(args: argparse.Namespace) -> int:
    from allocator.engine import solve
    from allocator.plan.report import summary
    from allocator.solvers.registry import make_solver

    verbose = getattr(args, "verbose", False)
    with (
        warnings.catch_warnings(record=True) as caught,
        progress("reading the scenario", show=False if verbose else None) as report,
        _solver_log(verbose),
    ):
        if verbose:  # each phase and round as a line of the log, not a transient line
            report = _log_line
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

                report(f"solving {args.partitions} partitions")
                part = partitioned_solve(args.scenario, args.partitions, time_limit=args.time_limit)
                plan = part.plan
                err(
                    f"partitioned into {args.partitions} groups in {part.wall_s:.2f} s; the "
                    f"groups' prices of a pool-period differ by up to "
                    f"{short(part.price_spread())} per GPU-hour"
                )
                report("solving the whole LP to measure the partitions' loss")
                err(_partition_loss(part, args.scenario, args.time_limit))
            else:
                backend.progress = report  # rounds of the row generation, when it runs
                plan = solve(
                    args.scenario, time_limit=args.time_limit, solver=backend, stable=args.stable
                )
        except (ScenarioError, SolveError) as exc:
            return failure(exc, "solve", args.scenario)
    for w in caught:
        if not issubclass(w.category, AllocatorWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.output is not None:
        from allocator.plan.writers import write_plan

        try:
            files = write_plan(plan, args.output, indent=args.indent)
        except (OSError, ValueError, ImportError) as exc:
            err(f"allocator solve: cannot write {args.output}: {exc}")
            return EXIT_USAGE
        where = str(files[0]) if len(files) == 1 else f"{len(files)} files in {args.output}"
        err(f"wrote the plan to {where}")
    if args.json:
        emit_bytes(plan.to_json_bytes(args.indent))  # the plan's own writer
    elif args.output is None:
        print(summary(plan, top=args.top))
    return 0


def _partition_loss(part: Any, scenario: Any, time_limit: float | None) -> str:
    """The partitions' measured loss against the whole LP (solved too when it has at most
    MEASURE_COLUMNS columns), or a warning that it can be large."""
    from allocator.lp.build import count_columns
    from allocator.plan.money import money
    from allocator.scenario.load import as_scenario
    from allocator.workflows.partition import MEASURE_COLUMNS, UNMEASURED_WARNING, measure_loss

    sc = as_scenario(scenario)
    columns = count_columns(sc)
    if columns > MEASURE_COLUMNS:
        return "Warning: " + UNMEASURED_WARNING.format(columns=columns, limit=MEASURE_COLUMNS)
    try:
        measure_loss(part, sc, time_limit)
    except SolveError as exc:
        return f"Warning: the whole LP did not solve ({exc}), so the loss is not measured"
    assert part.whole_objective is not None and part.loss_share is not None
    return (
        f"measured: the partitioned plan earns {money(part.objective)} against the whole "
        f"LP's optimum {money(part.whole_objective)} {sc.currency}, a loss of "
        f"{part.loss_share:.2%}"
    )


def _log_line(message: str) -> None:
    err(f"[allocator] {message}")


def _solver_log(verbose: bool) -> contextlib.AbstractContextManager[None]:
    """HiGHS' log on stderr while the block runs (``--verbose``); silence otherwise."""
    if not verbose:
        return contextlib.nullcontext()
    from allocator.solvers.highs_model import highs_log

    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return highs_log(write)


def cmd_export(args: argparse.Namespace) -> int:
    from allocator.lp import build_lp
    from allocator.scenario import Scenario
    from allocator.solvers.export import model_text

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lstrip(".").lower()
        if suffix not in EXPORT_FORMATS:
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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "solve": cmd_solve,
    "validate": cmd_validate,
    "export": cmd_export,
}
