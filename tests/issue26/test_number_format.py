"""Issue 26 item 8: one number format on every text surface. Every text command runs on
the bundled examples; its output holds no scientific notation (``2.3e-16``,
``1.95316e+10``), no raw float with 7+ decimals or 10+ integer digits without separators,
and no negative zero (``-0.00``, ``−0.00``)."""

from __future__ import annotations

import re

from allocator.cli import main
from allocator.numbers import money, number, short, violation
from tests.conftest import DATA

SCIENTIFIC = re.compile(r"(?<![\w.])\d+(\.\d+)?[eE][+-]?\d+\b")  # not inside a hex run id
RAW_FLOAT = re.compile(r"\d\.\d{7,}|(?<![\w,])\d{10,}(?![\w,])")
NEGATIVE_ZERO = re.compile(r"(?<![\w.])[-−]0(\.0+)?(?![\d.])")
EXAMPLES = ("tiny", "ai_lab", "hyperscaler")


def first_segment(name: str) -> str:
    import json

    return json.loads((DATA / f"{name}.json").read_text())["segments"][0]["id"]


def commands(tmp: str) -> list[tuple[str, list[str]]]:
    out = []
    for ex in EXAMPLES:
        f = str(DATA / f"{ex}.json")
        out += [
            (f"solve {ex}", ["solve", f]),
            (f"explain {ex}", ["explain", f, "--segment", first_segment(ex)]),
            (f"capacity {ex}", ["capacity", f]),
            (f"frontier {ex}", ["frontier", f]),
            (f"counterfactual {ex}", ["counterfactual", f, "--scale-demand", "cloud:1.2"]),
            (f"fair {ex}", ["fair", f]),
            (f"validate {ex}", ["validate", f]),
        ]
    tiny = str(DATA / "tiny.json")
    out += [
        ("sensitivity tiny", ["sensitivity", tiny]),
        ("sensitivity ai_lab", ["sensitivity", str(DATA / "ai_lab.json")]),
        ("counterfactual seeds", ["counterfactual", tiny, "--seeds-case"]),
        (
            "alternatives ai_lab",
            ["alternatives", str(DATA / "ai_lab.json"), "--vary", "kind:cloud,rentals"],
        ),
        ("stochastic tiny", ["stochastic", tiny, "--sample", "3", "--seed", "1"]),
        ("diagnose tiny", ["diagnose", tiny]),
    ]
    return out


def test_formatters():
    assert money(-0.004) == "0.00" and money(20_125_535_610.28) == "20.13B"
    assert number(-0.04, 1) == "0.0" and number(-1.06, 1) == "-1.1"
    assert short(2.3e-16) == "0" and short(1.95316e10) == "19,531,600,000"
    assert short(0.00012345) == "0.0001234" and short(-0.5) == "-0.5"
    assert violation(2.3e-16) == "0.000000" and violation(1.2e-4) == "0.000120"


def test_every_text_command_writes_one_number_format(capsys, tmp_path):
    plan = tmp_path / "hyper-plan.json"
    assert main(["solve", str(DATA / "hyperscaler.json"), "--json", "-o", str(plan)]) in (0,)
    capsys.readouterr()
    runs = commands(str(tmp_path))
    runs += [
        (
            "replan",
            ["replan", str(plan), str(DATA / "hyperscaler.json"), "--migration-cost", "100"],
        ),
        (
            "batch",
            [
                "batch",
                str(DATA / "sweeps" / "hyperscaler-growth.json"),
                "-o",
                str(tmp_path / "b"),
                "--workers",
                "1",
            ],
        ),
    ]
    bad = []
    for name, argv in runs:
        main(argv)
        out, err = capsys.readouterr()
        for line in (out + err).splitlines():
            if SCIENTIFIC.search(line) or RAW_FLOAT.search(line) or NEGATIVE_ZERO.search(line):
                bad.append(f"{name}: {line.strip()}")
    assert not bad, "\n".join(bad[:30])
