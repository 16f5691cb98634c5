"""`allocator template` and `convert`: planners' workbooks in and out.

``template fleet.xlsx`` writes an empty, documented scenario workbook; ``convert SRC DST``
reads a scenario (JSON or .xlsx, by suffix), validates it and writes it in the format of
DST's suffix (.json or .xlsx). Exit codes as in common.py: 1 invalid scenario, 2 usage
(an unknown suffix, an existing template file, an unwritable path)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from allocator.cli.common import EXIT_USAGE, err, report_invalid
from allocator.errors import ScenarioError

# the scenario model and the workbook code load when a command runs (`allocator --help`
# imports neither pydantic nor openpyxl)


def add_commands(sub: Any) -> None:
    t = sub.add_parser(
        "template",
        help="write an empty scenario workbook (.xlsx) to fill in, with an 'about' sheet",
    )
    t.add_argument("output", help="workbook to write, e.g. fleet.xlsx")
    t.add_argument(
        "--periods",
        default="",
        metavar="LABELS",
        help="comma-separated period labels to fill in (e.g. 2026-Q1,2026-Q2): the periods "
        "sheet and the grids' column headers",
    )
    t.add_argument(
        "--hours", type=float, default=2190.0, help="hours of each period given (default 2190)"
    )
    t.add_argument("--currency", default="USD", help="currency shown in the headers (USD)")
    t.add_argument("--force", action="store_true", help="overwrite an existing file")

    c = sub.add_parser(
        "convert",
        help="convert a scenario between JSON and an Excel workbook, by suffix",
        description="Read SRC (.json or .xlsx), validate it, write DST (.json or .xlsx).",
    )
    c.add_argument("source", help="scenario file: .json or .xlsx")
    c.add_argument("target", help="file to write: .json or .xlsx")


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def cmd_template(args: argparse.Namespace) -> int:
    from allocator.scenario.workbook import WORKBOOK_SUFFIXES, write_template

    if _suffix(args.output) not in WORKBOOK_SUFFIXES:
        err(f"allocator template: {args.output} must end in .xlsx")
        return EXIT_USAGE
    if Path(args.output).exists() and not args.force:
        err(f"allocator template: {args.output} exists (use --force to overwrite it)")
        return EXIT_USAGE
    if not args.hours > 0:
        err(f"allocator template: --hours must be > 0, got {args.hours:g}")
        return EXIT_USAGE
    periods = [p.strip() for p in args.periods.split(",") if p.strip()]
    try:
        write_template(args.output, periods, hours=args.hours, currency=args.currency)
    except OSError as exc:
        err(f"allocator template: cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_USAGE
    err(f"wrote the template {args.output}: fill in the sheets (see its 'about' sheet)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from allocator.scenario import Scenario
    from allocator.scenario.workbook import WORKBOOK_SUFFIXES, write_workbook

    suffixes = (".json", *WORKBOOK_SUFFIXES)
    for path in (args.source, args.target):
        if _suffix(path) not in suffixes:
            err(f"allocator convert: {path}: the suffix must be one of {', '.join(suffixes)}")
            return EXIT_USAGE
    try:
        sc = Scenario.from_file(args.source)
    except ScenarioError as exc:
        return report_invalid(args.source, exc)
    try:
        if _suffix(args.target) == ".json":
            text = json.dumps(sc.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
            Path(args.target).write_text(text + "\n", encoding="utf-8")
        else:
            write_workbook(sc, args.target)
    except OSError as exc:
        err(f"allocator convert: cannot write {args.target}: {exc.strerror or exc}")
        return EXIT_USAGE
    err(
        f"wrote {args.target}: {len(sc.periods)} periods, {len(sc.pools)} pools, "
        f"{len(sc.segments)} segments"
    )
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "template": cmd_template,
    "convert": cmd_convert,
}
