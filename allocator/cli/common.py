"""What every CLI subcommand shares: exit codes, argument types and the one mapping of
errors to messages on stderr and exit codes.

Exit codes: 0 success; 1 invalid scenario; 2 usage error (a bad option, an unknown id, a
solver that is not available, an unreadable file); 3 infeasible; 4 time limit without a
plan; 5 other solver failure; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys

from allocator.errors import InfeasibleError, ScenarioError, SolveError, TimeLimitError

EXIT_INVALID, EXIT_USAGE, EXIT_INFEASIBLE, EXIT_TIME_LIMIT, EXIT_SOLVER = 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130

# errors a command turns into an exit code (anything else is a bug and shows its trace)
HANDLED = (
    ScenarioError,
    SolveError,
    OSError,
    json.JSONDecodeError,
    KeyError,
    TypeError,
    ValueError,
)


def err(msg: str) -> None:
    print(msg, file=sys.stderr)


def report_invalid(where: str, exc: ScenarioError) -> int:
    err(f"{where}: {len(exc.issues)} problem(s)")
    for issue in exc.issues:
        err(f"  {issue}")
    return EXIT_INVALID


def time_limit_advice(command: str) -> str:
    """What to try when a time limit ends with no plan (``solve`` has the most options)."""
    if command != "solve":
        return "try a longer --time-limit"
    return (
        "try a longer --time-limit, --algorithm ipm (interior point on the whole LP, often "
        "the fastest where periods are tightly coupled) or --partitions K (K smaller plans "
        "in parallel: feasible, not optimal); --verbose shows where the time goes"
    )


def failure(exc: BaseException, command: str, where: str) -> int:
    """Print ``exc`` for a planner and return its exit code. ``where`` names the input
    (a file) for validation problems."""
    if isinstance(exc, BrokenPipeError):  # the reader of stdout left: main() ends quietly
        raise exc
    if isinstance(exc, ScenarioError):
        return report_invalid(where, exc)
    if isinstance(exc, InfeasibleError):
        err(f"infeasible: {exc}")
        return EXIT_INFEASIBLE
    if isinstance(exc, TimeLimitError):
        err(f"time limit: {exc}")
        err(f"  {time_limit_advice(command)}")
        return EXIT_TIME_LIMIT
    if isinstance(exc, SolveError):
        err(f"{exc.status.value}: {exc}")
        return EXIT_SOLVER
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    err(f"allocator {command}: {msg}")
    return EXIT_USAGE


def seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def add_json_options(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json`` (compact) and ``--indent N`` (pretty-printed, implies --json)."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON (compact)")
    p.add_argument(
        "--indent",
        type=int,
        nargs="?",
        const=2,
        default=None,
        metavar="N",
        help="indent the JSON by N spaces (default 2); implies --json",
    )


def emit_json(data: object, indent: int | None = None) -> None:
    """``data`` as JSON on stdout (orjson; NaN and infinities refused)."""
    from allocator.plan import jsonio

    emit_bytes(jsonio.dumps(data, indent=indent))


def emit_bytes(raw: bytes) -> None:
    """JSON already encoded (``plan.to_json_bytes()``: its columns checked for NaN with
    numpy, not walked in Python) on stdout, with a newline."""
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    raw += b"\n"
    if out is not None:
        sys.stdout.flush()
        out.write(raw)
        out.flush()
    else:  # a captured stream (tests, notebooks)
        sys.stdout.write(raw.decode())
