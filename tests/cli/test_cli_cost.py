"""The command line's fixed cost (issue 25, item 4): ``allocator --help`` loads no
numerical or validation library, and ``solve --json`` writes the plan with the plan's own
writer (columns checked for NaN by numpy) — the same bytes the former writer made."""

from __future__ import annotations

import subprocess
import sys

import pytest

import allocator.engine
from allocator import solve
from allocator.cli import main
from allocator.plan import jsonio
from tests.conftest import DATA

HEAVY = ("numpy", "scipy", "pydantic", "highspy", "orjson", "openpyxl", "allocator.scenario")


def test_help_imports_no_heavy_library():
    """What `allocator --help` imports, in a fresh interpreter: the parser only."""
    code = (
        "import sys\n"
        "from allocator.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "loaded: []"


@pytest.mark.parametrize("name", ["tiny", "hyperscaler", "ai_lab"])
@pytest.mark.parametrize("indent", [None, 2, 4])
def test_solve_json_bytes_are_the_plans_own(name, indent, monkeypatch, capsysbinary):
    """`solve --json` prints plan.to_json_bytes() and the bytes the former writer
    (jsonio.dumps of plan.to_dict(), its NaN walk included) made for the same plan."""
    plan = solve(DATA / f"{name}.json")
    monkeypatch.setattr(allocator.engine, "solve", lambda *a, **k: plan)
    args = ["solve", str(DATA / f"{name}.json"), "--json"]
    if indent is not None:
        args += ["--indent", str(indent)]
    assert main(args) == 0
    out = capsysbinary.readouterr().out
    assert out == plan.to_json_bytes(indent) + b"\n"
    assert out == jsonio.dumps(plan.to_dict(), indent=indent) + b"\n"


def test_solve_json_refuses_nan_naming_the_column(monkeypatch, capsys):
    plan = solve(DATA / "tiny.json")
    plan.allocations.columns["gpus"][0] = float("nan")  # type: ignore[index]
    monkeypatch.setattr(allocator.engine, "solve", lambda *a, **k: plan)
    with pytest.raises(ValueError, match=r"allocations\.gpus"):
        main(["solve", str(DATA / "tiny.json"), "--json"])
