"""Plan vs actual on data/tiny.json's plan, by hand. The plan's shadow prices of a GPU-hour
(data/README.md's values): H100 3 in P1 (cloud's margin, its demand unmet), 4.5 in P2 (cloud
short of its contract); B200 = 3 H100-hours of chat freed for cloud (3 x (1 + price)) less
B200's $2: 10 in P1, 14.5 in P2. The plan: 500 GPU-hours of chat on B200 in P1 and 1,000 in
P2, 500 of chat and 500 of cloud on H100 in each period.

Usage (tests/operations/test_usage.py's CSV, first two jobs): chat 40 H100-hours in P1;
cloud 8 B200-hours in P1 and 8 in P2, where it has no quota (borrowed)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from allocator.cli import main
from allocator.engine import solve
from allocator.operations.actual import plan_vs_actual
from allocator.operations.usage import import_usage
from allocator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
CSV = """segment,gpu_type,region,start,end,gpus
chat,H100,east,2026-01-01T00:00:00,2026-01-01T10:00:00,4
cloud,B200,,2026-01-05T00:00:00,2026-01-05T08:00:00,2
"""


def test_plan_vs_actual_by_hand(tmp_path) -> None:
    sc = Scenario.from_file(ROOT / "data" / "tiny.json")
    f = tmp_path / "u.csv"
    f.write_text(CSV)
    usage = import_usage(f, "csv", sc, start=datetime(2026, 1, 1))
    rep = plan_vs_actual(solve(sc), sc, usage)
    rows = {(r["segment"], r["accelerator"], r["period"]): r for r in rep["rows"]}
    keys = ("planned", "used", "variance", "quota", "unused", "exceeded", "variance_value")
    got = {k: tuple(round(r[x], 6) for x in keys) for k, r in rows.items()}
    assert got == {
        ("chat", "B200", "P1"): (500, 0, -500, 500, 500, 0, -5000),
        ("chat", "B200", "P2"): (1000, 0, -1000, 1000, 1000, 0, -14500),
        ("chat", "H100", "P1"): (500, 40, -460, 500, 460, 0, -1380),
        ("chat", "H100", "P2"): (500, 0, -500, 500, 500, 0, -2250),
        ("cloud", "B200", "P1"): (0, 8, 8, 0, 0, 8, 80),
        ("cloud", "B200", "P2"): (0, 8, 8, 0, 0, 8, 116),
        ("cloud", "H100", "P1"): (500, 0, -500, 500, 500, 0, -1500),
        ("cloud", "H100", "P2"): (500, 0, -500, 500, 500, 0, -2250),
    }
    by_kind = {r["name"]: r["variance_value"] for r in rep["by_kind"]}
    assert by_kind == pytest.approx({"first_party": -23130.0, "cloud": -3554.0})
    assert rep["totals"]["exceeded"] == pytest.approx(16.0)


def test_cli_usage_import_then_actual(tmp_path, capsys) -> None:
    tiny = str(ROOT / "data" / "tiny.json")
    f = tmp_path / "u.csv"
    f.write_text(CSV)
    out = tmp_path / "usage.json"
    args = ["usage", "import", str(f), "--format", "csv", "--scenario", tiny]
    assert main([*args, "--start", "2026-01-01", "-o", str(out)]) == 0
    assert "chat     H100/east  P1             40" in capsys.readouterr().out
    assert main(["actual", tiny, str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["totals"]["used"] == pytest.approx(56.0)
    assert main(["actual", tiny, str(out)]) == 0
    assert "first_party" in capsys.readouterr().out
    assert main([*args]) == 2  # no start anywhere
    assert "horizon_start in the mapping or --start" in capsys.readouterr().err
