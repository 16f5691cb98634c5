"""Issue 19, "What a planner sees": the CLI's output, messages and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allocator.cli import main
from tests.conftest import DATA


def test_bench_help_prints_help_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    assert "usage: allocator bench" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    """`allocator solve x --json | head`: no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "allocator", "solve", str(DATA / "tiny.json"), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the plan is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_solve_verbose_shows_the_solver_log_on_stderr(capsys):
    assert main(["solve", str(DATA / "tiny.json"), "--verbose", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "optimal"  # stdout stays the JSON alone
    assert "Presolving model" in err or "Model status" in err  # HiGHS' own log
    assert "[allocator] solving" in err  # the engine's phases
    assert main(["solve", str(DATA / "tiny.json")]) == 0
    assert "Model status" not in capsys.readouterr().err  # silent by default


def test_time_limit_without_a_plan_says_what_to_try(capsys):
    from allocator.cli.common import EXIT_TIME_LIMIT

    assert main(["solve", str(DATA / "tiny.json"), "--time-limit", "0"]) == EXIT_TIME_LIMIT
    err = capsys.readouterr().err
    assert "longer --time-limit" in err and "--algorithm ipm" in err and "--partitions" in err
