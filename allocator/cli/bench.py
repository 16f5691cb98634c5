"""CLI subcommands for scale work: ``generate`` (a seeded synthetic scenario of a given
size) and ``bench`` (the benchmark harness in benchmarks/, a thin entry)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from allocator.cli.common import EXIT_USAGE, err


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share in [0, 1], got {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def add_commands(sub: Any) -> None:
    g = sub.add_parser(
        "generate",
        help="write a seeded synthetic scenario of a given size (JSON)",
        description="A reproducible synthetic fleet: several accelerator types and regions, "
        "capacity growing over time, sparse compatibility, contract minimums on cloud "
        "segments, demand growth, serving modes. The same options and seed give the same file.",
    )
    g.add_argument("--segments", type=_positive, default=200)
    g.add_argument("--pools", type=_positive, default=16)
    g.add_argument("--periods", type=_positive, default=52)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--compatibility",
        type=_share,
        default=0.3,
        help="expected share of accelerator types each segment can use (default 0.3)",
    )
    g.add_argument(
        "--scarcity",
        type=float,
        default=1.3,
        help="total demand over total capacity, in GPU terms (default 1.3)",
    )
    g.add_argument(
        "--contract-share",
        type=_share,
        default=0.4,
        help="cloud contract minimum as a share of demand; 0 for none (default 0.4)",
    )
    g.add_argument(
        "--growth",
        type=float,
        default=0.06,
        help="largest demand growth per period; each segment draws its own (default 0.06)",
    )
    g.add_argument(
        "--stability",
        type=_share,
        default=None,
        metavar="SHARE",
        help="max_change_share policy: most an allocation may change between periods, as a "
        "share of the pool (default: no stability rows)",
    )
    g.add_argument("--hours", type=float, default=168.0, help="hours per period (default 168)")
    g.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)"
    )

    b = sub.add_parser(
        "bench",
        help="run the benchmark (engine vs solvers alone vs peers); see BENCHMARKS.md",
        add_help=False,
    )
    b.add_argument("bench_args", nargs=argparse.REMAINDER)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.scarcity <= 0 or args.growth < 0 or args.hours <= 0:
        print(
            "allocator generate: --scarcity and --hours must be > 0, --growth >= 0",
            file=sys.stderr,
        )
        return 2
    from allocator.scenario.generate import generate_dict

    data = generate_dict(
        args.segments,
        args.pools,
        args.periods,
        seed=args.seed,
        compatibility=args.compatibility,
        hours=args.hours,
        scarcity=args.scarcity,
        contract_share=args.contract_share,
        max_growth=args.growth,
        stability=args.stability,
    )
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    if args.output == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(
            f"wrote {args.output}: {args.segments} segments, {args.pools} pools, "
            f"{args.periods} periods (seed {args.seed})",
            file=sys.stderr,
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    harness = _harness()
    if harness is None:
        err(
            "the benchmark harness (benchmarks/) ships with the source checkout, not the "
            "installed package: run `make bench` there"
        )
        return EXIT_USAGE
    return int(harness.main(list(args.bench_args)))


def _harness() -> Any:
    """benchmarks.harness from the checkout this package was installed from (editable), or
    None. The harness loads PuLP and friends: only ``allocator bench`` imports it."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "harness.py").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import benchmarks.harness

    return benchmarks.harness


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": cmd_generate,
    "bench": cmd_bench,
}
