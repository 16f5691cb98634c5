"""Command line: the parser and the dispatch. Each command group lives in its own module
and gives ``add_commands(sub)`` and ``COMMANDS``: solve.py (`solve`, `validate`, `export`),
analysis.py (`explain`, `counterfactual`, `sensitivity`, `frontier`, `capacity`,
`diagnose`), batch.py (`batch`, `replan`, `stochastic`), bench.py (`generate`, `bench`),
convert.py (`template`, `convert`: scenario workbooks), planning.py (`fair`,
`alternatives`), operations.py (`quotas`, `usage`, `actual`). A scenario file is JSON,
or an Excel workbook by its suffix (.xlsx).

Exit codes: 0 success; 1 invalid scenario; 2 usage error (including a solver that is
not available); 3 infeasible; 4 time limit without a plan; 5 other solver failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from allocator.cli import analysis, batch, bench, convert, operations, planning, solve
from allocator.cli.progress import machine_stdout
from allocator.version import __version__

GROUPS = (solve, analysis, planning, batch, bench, convert, operations)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="allocator",
        description="Split a GPU fleet between cloud customers, first-party apps, R&D and "
        "consumer tiers; show the opportunity cost of every GPU-hour.",
    )
    ap.add_argument("--version", action="version", version=f"allocator {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return ap


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    name: command for group in GROUPS for name, command in group.COMMANDS.items()
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `allocator solve x | head`: the reader left; not an error
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush of a closed pipe does not
    print a second BrokenPipeError at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a captured stream (tests)
        pass


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `bench` hands everything after it to the harness, `--help` included (argparse's
    # REMAINDER does not take options that come first)
    if "bench" in argv and all(a.startswith("-") for a in argv[: argv.index("bench")]):
        cut = argv.index("bench") + 1
        args = _parser().parse_args(argv[:cut])
        args.bench_args = argv[cut:]
    else:
        args = _parser().parse_args(argv)
    command = COMMANDS[args.command]
    if getattr(args, "indent", None) is not None:
        args.json = True
    if getattr(args, "json", False):
        with machine_stdout():  # only the JSON reaches stdout
            return command(args)
    return command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
