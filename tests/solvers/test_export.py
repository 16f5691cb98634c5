"""MPS and LP export: readable names, and a round trip through HiGHS' reader gives the
plan's objective (MPS in minimisation form: the negative)."""

from __future__ import annotations

import re

import highspy
import numpy as np
import pytest

from allocator import Scenario, build_lp, solve
from allocator.cli import main
from allocator.cli.common import EXIT_INVALID, EXIT_USAGE
from allocator.solvers.export import column_names, lp_format_name, row_names, write_model
from tests.conftest import DATA

MPS_NAME = re.compile(r"^[a-z-]+\[[A-Za-z0-9_.:/+,-]+\]$")
LP_NAME = re.compile(r"^[a-z_]+\([A-Za-z0-9_.,~&;%]+\)$")  # what HiGHS' LP writer accepts


def read_back(path):
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h


@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_round_trip_through_highs_gives_the_objective(example_scenario, fmt, tmp_path):
    sc = example_scenario
    plan = solve(sc)
    lp = build_lp(sc)
    path = write_model(sc, tmp_path / f"model.{fmt}")
    h = read_back(path)
    sign = -1.0 if fmt == "mps" else 1.0  # MPS minimises -objective
    assert sign * h.getInfo().objective_function_value == pytest.approx(plan.objective, rel=1e-9)
    back = h.getLp()
    cols, rows = column_names(sc, lp), row_names(sc, lp)
    if fmt == "lp":
        # HiGHS writes an LP file's columns in order of first appearance: the objective's
        # first, then columns of cost 0 (a site's powered GPUs, issue 27) as rows name them
        cost0 = lp.c == 0
        if cost0.any():
            first_row = np.full(lp.num_cols, lp.num_rows)
            csc = lp.A.tocsc()
            csc.sort_indices()
            has = np.diff(csc.indptr) > 0
            first_row[has] = csc.indices[csc.indptr[:-1][has]]
            later = np.nonzero(cost0)[0]
            later = later[np.argsort(first_row[later], kind="stable")]
            cols = [cols[j] for j in np.nonzero(~cost0)[0]] + [cols[j] for j in later]
        cols, rows = [lp_format_name(n) for n in cols], [lp_format_name(n) for n in rows]
        assert all(LP_NAME.match(n) for n in cols + rows)
        # the LP format has no ranged rows: HiGHS writes each as <name>lo and <name>up
        ranged = np.isfinite(lp.row_lower) & np.isfinite(lp.row_upper)
        ranged &= lp.row_lower < lp.row_upper
        rows = [
            p
            for n, r in zip(rows, ranged, strict=True)
            for p in ([n + "lo", n + "up"] if r else [n])
        ]
    else:
        assert all(MPS_NAME.match(n) for n in cols + rows)
    assert list(back.col_names_) == cols and list(back.row_names_) == rows
    assert len(set(cols)) == len(cols) and len(set(rows)) == len(rows)


def test_names_follow_the_plan_labels(tiny_scenario):
    lp = build_lp(tiny_scenario)
    cols = column_names(tiny_scenario, lp)
    assert cols[:2] == ["x[chat,full,h100,P1]", "x[chat,full,h100,P2]"]
    assert cols[-1] == "u[cloud,P2]"
    rows = row_names(tiny_scenario, lp)
    assert rows[0] == "pool-capacity[h100,P1]" and rows[-1] == "segment-contract[cloud,P2]"
    binding = {b.label for b in solve(tiny_scenario).binding}
    assert binding <= set(rows)


@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_milp_round_trip_keeps_integrality_and_whole_unit_names(tiny_dict, fmt, tmp_path):
    tiny_dict["pools"][0]["allocation_unit_gpus"] = 4
    tiny_dict["pools"][0]["id"] = "h100-east:a/b+c"  # every id character that needs care
    plan = solve(tiny_dict)
    path = write_model(tiny_dict, tmp_path / f"m.{fmt}")
    h = read_back(path)
    sign = -1.0 if fmt == "mps" else 1.0
    assert sign * h.getInfo().objective_function_value == pytest.approx(plan.objective, rel=1e-9)
    back = h.getLp()
    n_int = sum(v == highspy.HighsVarType.kInteger for v in back.integrality_)
    assert n_int == plan.solver.integer_columns == 4
    want = "n[chat,full,h100-east:a/b+c,P1]"
    assert (lp_format_name(want) if fmt == "lp" else want) in list(back.col_names_)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("\\ " if fmt == "lp" else "* ")
    if fmt == "lp":  # the keywords every LP reader knows (CBC 2.10 misreads gen, bin)
        assert "general" in lines and not {"gen", "bin", "semi"} & set(lines)


def test_lp_names_are_injective_on_awkward_ids():
    names = ["x[a-b,m,p,t]", "x[a_b,m,p,t]", "x[a+b,m,p,t]", "x[a:b,m,p,t]", "x[a/b,m,p,t]"]
    spelled = [lp_format_name(n) for n in names]
    assert len(set(spelled)) == len(names)
    assert lp_format_name("segment-stability[s-1,p.2,2026-Q1]") == (
        "segment_stability(s~1,p.2,2026~Q1)"
    )


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "tiny.mps"
    assert main(["export", str(DATA / "tiny.json"), "-o", str(out)]) == 0
    assert "minimises -objective" in capsys.readouterr().err
    assert -read_back(out).getInfo().objective_function_value == pytest.approx(30950)
    assert main(["export", str(DATA / "tiny.json"), "--format", "lp"]) == 0
    text = capsys.readouterr().out
    assert "pool_capacity(h100,P1)" in text and text.splitlines()[0].startswith("\\ ")
    assert main(["export", str(DATA / "tiny.json")]) == EXIT_USAGE  # format unknown
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["export", str(bad), "--format", "lp"]) == EXIT_INVALID


def test_write_model_needs_a_format(tmp_path):
    with pytest.raises(ValueError, match="format="):
        write_model(Scenario.from_file(DATA / "tiny.json"), tmp_path / "model.txt")
