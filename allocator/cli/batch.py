"""CLI subcommands of batch work: ``batch`` (sweeps and many scenario files, locally or on
a Dask cluster), ``replan`` (rolling horizon with a migration cost) and ``stochastic``
(two-stage plan over demand scenarios). See docs/batch.md."""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allocator.scenario import Scenario

from allocator.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_USAGE,
    HANDLED,
    add_json_options,
    emit_json,
    failure,
    report_invalid,
)
from allocator.cli.common import err as _err
from allocator.cli.common import positive_int as _positive_int
from allocator.cli.common import seconds as _seconds
from allocator.cli.progress import progress
from allocator.errors import AllocatorWarning, ScenarioError
from allocator.numbers import short
from allocator.plan.money import money
from allocator.plan.text import number, table
from allocator.solvers.names import ALGORITHMS


def add_commands(sub: Any) -> None:
    b = sub.add_parser(
        "batch",
        help="run a sweep of what-ifs, or many scenario files; one results table",
        description="INPUT is one sweep file (a JSON object with 'base' and 'grid' and/or "
        "'runs'), or scenario files, directories and glob patterns. Re-running the same "
        "command resumes: finished runs are skipped. See docs/batch.md.",
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT")
    b.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="DIR",
        help="output directory (default: batch-results/<sweep name>)",
    )
    b.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask distributed cluster, e.g. tcp://host:8786 (pip install "
        "'allocator[dask]'); default: a local process pool",
    )
    b.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local worker processes (default: all cores)",
    )
    b.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the finished runs that ended without a plan",
    )
    b.add_argument("--time-limit", type=_seconds, default=None, metavar="SECONDS")
    b.add_argument(
        "--algorithm", default=None, choices=list(ALGORITHMS), help="see allocator solve"
    )
    b.add_argument("--quiet", action="store_true", help="no progress output")

    r = sub.add_parser(
        "replan",
        help="re-plan from the current allocation with a cost per GPU moved",
        description="CURRENT is {segment: {pool: gpus}} or a plan (allocator solve --json) "
        "whose first period (or --period) is what runs now; SCENARIO has the new demand.",
    )
    r.add_argument("current", metavar="CURRENT")
    r.add_argument("scenario", metavar="SCENARIO")
    r.add_argument(
        "--migration-cost",
        type=float,
        required=True,
        metavar="PER_GPU",
        help="cost of taking one GPU away from its segment (money of the first period)",
    )
    r.add_argument("--period", default=None, help="period of a CURRENT plan that runs now")
    r.add_argument("--time-limit", type=_seconds, default=None, metavar="SECONDS")
    r.add_argument("--no-keep", action="store_true", help="skip the keep-everything baseline")
    r.add_argument(
        "--actual",
        default=None,
        metavar="USAGE.json",
        help="what ran (allocator usage import -o): periods up to --through pinned to it",
    )
    r.add_argument("--through", default=None, metavar="PERIOD", help="last period that ran")
    r.add_argument(
        "--rescale-demand",
        action="store_true",
        help="with --actual and a CURRENT plan: demand ahead x each segment's used/planned "
        "GPU-hours so far (docs/operations.md)",
    )
    add_json_options(r)

    st = sub.add_parser(
        "stochastic",
        help="two-stage plan over demand scenarios: rentals first, allocations per scenario",
        description="DEMAND is a JSON list of {name, probability, demand_scale, demand} (or "
        "{'scenarios': [...]}); reports each scenario, the expectation and the VSS.",
    )
    st.add_argument("scenario", metavar="SCENARIO")
    st.add_argument("demand", metavar="DEMAND", nargs="?", default=None)
    st.add_argument(
        "--sample",
        type=_positive_int,
        default=None,
        metavar="N",
        help="sample N demand scenarios (lognormal factors per segment kind) instead of DEMAND",
    )
    st.add_argument(
        "--demand-cv",
        type=float,
        default=0.2,
        metavar="CV",
        help="coefficient of variation of each kind's demand factor (--sample)",
    )
    st.add_argument(
        "--kind-cv",
        action="append",
        default=[],
        metavar="KIND=CV",
        help="one kind's own spread (repeatable), e.g. consumer=0.4",
    )
    st.add_argument(
        "--correlation",
        type=float,
        default=0.0,
        metavar="RHO",
        help="correlation of the kinds' log-factors (--sample)",
    )
    st.add_argument("--seed", type=int, default=None, help="random seed of --sample")
    st.add_argument(
        "--method",
        choices=["auto", "extensive", "decomposition"],
        default="auto",
        help="one LP over all scenarios, or scenario decomposition (L-shaped, multi-cut); "
        "auto picks by size",
    )
    st.add_argument(
        "--gap",
        type=float,
        default=1e-4,
        metavar="REL",
        help="decomposition: stop at this relative gap between the bounds",
    )
    st.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="decomposition: local worker processes (default: cores)",
    )
    st.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:8786",
        help="decomposition: run the scenario subproblems on this Dask cluster (the method "
        "is the same as without it: --method auto picks by size, so a small plan is still "
        "one LP, solved here; --method decomposition to use the cluster)",
    )
    st.add_argument(
        "--own-models",
        action="store_true",
        help="decomposition: one HiGHS model per scenario in each worker (more memory; by "
        "default a worker keeps one model for all its scenarios)",
    )
    st.add_argument(
        "--first-period-allocations",
        action="store_true",
        help="also decide the first period's allocations before demand is known",
    )
    st.add_argument("--cvar-weight", type=float, default=0.0, metavar="LAMBDA")
    st.add_argument("--cvar-level", type=float, default=0.9, metavar="ALPHA")
    st.add_argument("--time-limit", type=_seconds, default=None, metavar="SECONDS")
    add_json_options(st)


# ----------------------------------------------------------------------------- batch
def cmd_batch(args: argparse.Namespace) -> int:
    from allocator.workflows.batch import Progress, load_batch, run_batch

    try:
        specs, name = load_batch(args.inputs, args.algorithm, args.time_limit)
    except ScenarioError as exc:
        _err(f"allocator batch: invalid base scenario: {len(exc.issues)} problem(s)")
        for issue in exc.issues:
            _err(f"  {issue}")
        return EXIT_INVALID
    except ValueError as exc:
        _err(f"allocator batch: {exc}")
        return EXIT_USAGE
    out = Path(args.output) if args.output else Path("batch-results") / name
    client = None
    executor = None
    where = f"{args.workers or 'all'} local processes"
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            _err("allocator batch: --scheduler needs Dask: pip install 'allocator[dask]'")
            return EXIT_USAGE
        try:
            client = Client(args.scheduler)
        except OSError as exc:
            _err(f"allocator batch: cannot reach the scheduler {args.scheduler}: {exc}")
            return EXIT_USAGE
        executor = client.get_executor(pure=False)
        where = f"Dask cluster {args.scheduler}"
    bar = None if args.quiet else Progress(len(specs))
    if bar is not None:
        bar.stream.write(f"{name}: {len(specs)} runs on {where} -> {out}\n")
        bar.stream.flush()
    done = 0
    try:
        result = run_batch(
            specs,
            out,
            executor=executor,
            max_workers=args.workers,
            progress=bar,
            retry_failed=args.retry_failed,
            name=name,
            on_record=None,
        )
        done = len(result.records)
    except KeyboardInterrupt:
        done = len(list((out / "runs").glob("*.json")))
        _err(
            f"\ninterrupted: {min(done, len(specs))} of {len(specs)} runs finished in {out}; "
            "run the same command again to resume"
        )
        return EXIT_INTERRUPTED
    finally:
        if client is not None:
            client.close()
    currencies = {str(sp.scenario.get("currency", "USD")) for sp in specs}
    currency = currencies.pop() if len(currencies) == 1 else "currency of each run"
    summary = batch_summary(
        result.records, len(specs), result.ran, result.skipped, currency=currency
    )
    print("\n".join(summary))
    print("results: " + ", ".join(str(p) for p in result.files))
    return 0


SUMMARY_FIGURES = (  # (figure key, label): the key figures of a batch, present values
    ("objective", "objective"),
    ("gross_margin", "gross margin"),
    ("revenue", "revenue"),
    ("ltv", "LTV"),
    ("price_mean", "mean price per GPU-hour (nominal)"),
    ("price_max", "max price per GPU-hour (nominal)"),
)


def batch_summary(
    records: list[dict[str, Any]],
    total: int,
    ran: int,
    skipped: int,
    *,
    currency: str = "USD",
    top: int = 10,
) -> list[str]:
    """The end of a batch as tables: the runs by status, the key figures over the runs
    with a plan (min, median, max), and the runs without a plan with their reason."""
    from statistics import median

    from allocator.workflows.batch import FINISHED_OK

    failed = [r for r in records if r["status"] not in FINISHED_OK]
    lines = [
        f"{len(records)} of {total} runs finished ({ran} now, {skipped} before); "
        f"{len(failed)} without a plan"
    ]
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if counts:
        lines += table(["status", "runs"], sorted(counts.items()), "lr", "  ")
    rows = []
    for key, label in SUMMARY_FIGURES:
        values = [
            float(v)
            for r in records
            if r["status"] in FINISHED_OK and (v := (r.get("figures") or {}).get(key)) is not None
        ]
        if values:
            rows.append([label, money(min(values)), money(median(values)), money(max(values))])
    if rows:
        lines.append("")
        lines += table(
            [f"figure ({currency}, present value)", "min", "median", "max"], rows, "lrrr", "  "
        )
    if failed:
        lines.append("")
        lines += table(
            ["run", "status", "reason"],
            [[r["run_id"], r["status"], str(r.get("reason", ""))[:200]] for r in failed[:top]],
            "lll",
            "  ",
        )
        if len(failed) > top:
            lines.append(f"  … and {len(failed) - top} more (see results.csv)")
    return lines


# ----------------------------------------------------------------------------- replan
def _pinned(sc: Scenario, args: argparse.Namespace) -> Scenario:
    """``sc`` with the periods through ``--through`` pinned to ``--actual``."""
    from allocator.operations.replan import pin_actuals
    from allocator.operations.usage import Usage
    from allocator.plan.tables import Plan

    if args.through is None:
        raise ValueError("--actual needs --through PERIOD (the last period that ran)")
    usage = Usage.from_dict(json.loads(Path(args.actual).read_text(encoding="utf-8")), sc)
    data = json.loads(Path(args.current).read_text(encoding="utf-8"))
    plan = Plan.from_dict(data) if "allocations" in data else None
    if args.rescale_demand and plan is None:
        raise ValueError("--rescale-demand needs CURRENT to be the plan (allocator solve -o)")
    return pin_actuals(sc, usage, args.through, plan, args.rescale_demand)


def cmd_replan(args: argparse.Namespace) -> int:
    from allocator.scenario import Scenario
    from allocator.workflows.replan import read_current, replan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)  # shown by `allocator solve`
        try:
            sc = Scenario.from_file(args.scenario)
            current = read_current(Path(args.current), period=args.period)
            if args.actual:
                sc = _pinned(sc, args)
            result = replan(
                sc,
                current,
                args.migration_cost,
                time_limit=args.time_limit,
                compare_keep=not args.no_keep,
            )
        except HANDLED as exc:
            return failure(exc, "replan", args.scenario)
    if args.json:
        emit_json(result.to_dict(), args.indent)
        return 0
    cur = sc.currency
    first = sc.period_labels[0]
    lines = [
        f"Re-plan of {sc.name!r} at {money(result.migration_cost_per_gpu)} {cur} per GPU moved "
        f"(period {first}):",
        f"  GPUs moved {number(result.gpus_moved, 1)}, migration cost "
        f"{money(result.migration_cost)} {cur}",
        f"  objective {money(result.objective)} {cur} (net of migration cost)",
    ]
    if result.keep_objective is not None and result.margin_gained is not None:
        lines.append(f"  keeping every GPU where it is: {money(result.keep_objective)} {cur}")
        lines.append(f"  margin gained by moving: {money(result.margin_gained)} {cur}")
    elif result.keep_reason:
        lines.append(f"  {result.keep_reason}")
    changed = [m for m in result.moves if abs(m.change) > 1e-6 or m.moved_gpus > 1e-6]
    if changed:
        rows = [
            [m.segment, m.pool, m.current_gpus, m.new_gpus, m.moved_gpus, m.held_idle_gpus]
            for m in sorted(changed, key=lambda m: -abs(m.change))
        ]
        fmt = [None, None] + [lambda v: number(v, 1)] * 4
        lines += table(
            ["segment", "pool", "GPUs now", "GPUs new", "moved away", "held idle"],
            rows,
            "llrrrr",
            "  ",
            formats=fmt,
        )
    else:
        lines.append("  no change in the first period")
    print("\n".join(lines))
    return 0


# ----------------------------------------------------------------------------- stochastic
def cmd_stochastic(args: argparse.Namespace) -> int:
    from allocator.scenario import Scenario
    from allocator.workflows.stochastic import stochastic_plan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllocatorWarning)
        try:
            sc = Scenario.from_file(args.scenario)
        except ScenarioError as exc:
            return report_invalid(args.scenario, exc)
        if (args.demand is None) == (args.sample is None):
            _err("allocator stochastic: give a DEMAND file or --sample N (one of them)")
            return EXIT_USAGE
        client = None
        if args.scheduler:
            try:
                from distributed import Client
            except ImportError:
                _err("allocator stochastic: --scheduler needs Dask: pip install 'allocator[dask]'")
                return EXIT_USAGE
            try:
                client = Client(args.scheduler)
            except OSError as exc:
                _err(f"allocator stochastic: cannot reach the scheduler {args.scheduler}: {exc}")
                return EXIT_USAGE
        try:
            demand = _demand_scenarios(sc, args)
            with progress("two-stage plan") as report:
                result = stochastic_plan(
                    sc,
                    demand,
                    first_period_allocations=args.first_period_allocations,
                    cvar_weight=args.cvar_weight,
                    cvar_level=args.cvar_level,
                    time_limit=args.time_limit,
                    progress=report,
                    method=args.method,  # the same method with or without a cluster
                    gap=args.gap,
                    workers=args.workers,
                    client=client,
                    share_models=not args.own_models,
                )
        except HANDLED as exc:  # a bad demand file is the demand file's problem
            return failure(exc, "stochastic", args.demand or "--sample")
        finally:
            if client is not None:
                client.close()
    if args.json:
        emit_json(result.to_dict(), args.indent)
        return 0
    print("\n".join(_stochastic_text(sc.name, sc.currency, result, args.cvar_level)))
    return 0


def _demand_scenarios(sc: Any, args: argparse.Namespace) -> list[Any]:
    """The demand scenarios of the DEMAND file, or sampled (--sample)."""
    if args.sample is not None:
        from allocator.workflows.sampling import sample_demand_scenarios

        kind_cv = {}
        for item in args.kind_cv:
            kind, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--kind-cv wants KIND=CV, got {item!r}")
            kind_cv[kind.strip()] = float(value)
        return sample_demand_scenarios(
            sc,
            args.sample,
            cv=args.demand_cv,
            kind_cv=kind_cv,
            correlation=args.correlation,
            seed=args.seed,
        )
    try:
        demand = json.loads(Path(args.demand).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        from allocator.scenario.model import json_error

        raise ValueError(json_error(exc)) from None
    if isinstance(demand, dict):
        demand = demand.get("scenarios", [])
    return list(demand)


FIRST_STAGE = (
    ("rentals", "Rented GPUs (decided now)", ["pool", "period"]),
    ("expansions", "GPUs bought (decided now)", ["pool", "period"]),
    ("reservations", "GPUs reserved for customers (decided now)", ["segment", "pool", "period"]),
)


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> list[list[Any]]:
    """A nested {key: {key: value}} as rows [key, key, value]."""
    if not isinstance(tree, dict):
        return [[*path, tree]]
    return [row for k, v in tree.items() for row in _leaves(v, (*path, str(k)))]


def _stochastic_text(name: str, cur: str, result: Any, cvar_level: float) -> list[str]:
    """The answer first (the decisions to take now, the expected value and its bounds, the
    method), then the demand scenarios it was planned over."""
    lines = [
        f"Two-stage plan of {name!r} over {len(result.plans)} demand scenarios "
        f"({_method_note(result)}):",
        *_first_stage_text(result),
        "",
        *table(["measure", cur], _measures(result, cvar_level), "lr", "  "),
    ]
    if result.vss is None and result.vss_note:
        lines.append(f"  {result.vss_note}")
    rows = [
        [n, f"{p:.3f}", money(plan.objective), money(plan.gross_margin)]
        for n, p, plan in zip(result.names, result.probabilities, result.plans, strict=True)
    ]
    lines += ["", "Demand scenarios:"]
    lines += table(
        ["scenario", "probability", f"objective ({cur})", f"gross margin ({cur})"],
        rows,
        "lrrr",
        "  ",
    )
    return lines


def _method_note(result: Any) -> str:
    if result.method == "decomposition":
        return f"scenario decomposition, {len(result.iterations)} iterations"
    return "extensive form: one LP over every scenario"


def _measures(result: Any, cvar_level: float) -> list[list[str]]:
    """The expected objective, CVaR, VSS, EVPI and the decomposition's bound and gap."""
    summary = [["expected objective (RP)", money(result.expected_objective)]]
    if result.cvar is not None:
        summary.append([f"CVaR({short(cvar_level)})", money(result.cvar)])
        summary.append(["objective with the CVaR term", money(result.objective)])
    if result.vss is not None and result.eev is not None:
        summary.append(["expected-demand plan over the scenarios (EEV)", money(result.eev)])
        summary.append(["value of the stochastic solution (VSS)", money(result.vss)])
    if result.wait_and_see is not None and result.evpi is not None:
        summary.append(["demand known in advance (wait-and-see)", money(result.wait_and_see)])
        summary.append(["expected value of perfect information (EVPI)", money(result.evpi)])
    if result.method == "decomposition":
        summary.append(["upper bound (decomposition)", money(result.bound)])
        summary.append(
            [f"proven gap after {len(result.iterations)} iterations", f"{result.gap:.1e}"]
        )
    return summary


def _first_stage_text(result: Any) -> list[str]:
    """The decisions taken before demand is known: rentals, purchases, reservations."""
    lines: list[str] = []
    for key, what, keys in FIRST_STAGE:
        value = result.first_stage.get(key)
        if not value and key != "rentals":
            continue
        lines += ["", f"{what}:"]
        leaves = _leaves(value) if value else []
        if not leaves:
            lines.append("  none")
            continue
        lines += table(
            [*keys, "GPUs"],
            [[*r[:-1], number(r[-1], 1)] for r in leaves],
            "l" * len(keys) + "r",
            "  ",
        )
    return lines


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "batch": cmd_batch,
    "replan": cmd_replan,
    "stochastic": cmd_stochastic,
}
