"""Batch runs and sweeps: expansion, storage, resume, interruption, executors (local
process pool, threads, Dask LocalCluster), CLI."""

from __future__ import annotations

import concurrent.futures as cf
import io
import json
from pathlib import Path

import pytest

from allocator import Scenario, solve
from allocator.cli import main
from allocator.scenario.overrides import apply_overrides
from allocator.workflows.batch import (
    BatchStore,
    Progress,
    expand_sweep,
    file_runs,
    load_batch,
    run_batch,
    run_key,
    table_rows,
)

DATA = Path(__file__).resolve().parents[2] / "data"
TINY = DATA / "tiny.json"


def tiny_sweep(**extra: object) -> dict:
    sweep: dict = {
        "name": "tiny-sweep",
        "base": str(TINY),
        "grid": {"demand_scale.cloud": [1.0, 1.5], "price_change.chat": [0.8, 1.0, 1.2]},
    }
    sweep.update(extra)
    return sweep


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


@pytest.fixture
def threads() -> cf.ThreadPoolExecutor:
    with cf.ThreadPoolExecutor(2) as ex:
        yield ex


# ----------------------------------------------------------------------------- expansion
def test_grid_is_the_cartesian_product_with_stable_ids() -> None:
    specs = expand_sweep(tiny_sweep())
    assert len(specs) == 6
    assert [s.index for s in specs] == list(range(6))
    assert {(s.params["demand_scale.cloud"], s.params["price_change.chat"]) for s in specs} == {
        (d, p) for d in (1.0, 1.5) for p in (0.8, 1.0, 1.2)
    }
    again = expand_sweep(tiny_sweep())
    assert [s.run_id for s in again] == [s.run_id for s in specs]
    assert len({s.run_id for s in specs}) == 6
    # the base inline or from its file, keys in any order: the same runs
    inline = expand_sweep(tiny_sweep(base=json.loads(TINY.read_text())))
    assert [s.run_id for s in inline] == [s.run_id for s in specs]


def test_run_key_ignores_key_order_and_defaults_but_not_solver_options() -> None:
    sc = Scenario.from_file(TINY).to_dict()
    a = run_key(sc, {"demand_scale": {"cloud": 1.2}, "price_change": {"chat": 1.0}})
    b = run_key(sc, {"price_change": {"chat": 1.0}, "demand_scale": {"cloud": 1.2}})
    assert a == b
    assert run_key(sc, {}) == run_key(sc, {"demand_scale": {}})
    assert run_key(sc, {}, time_limit=10) != run_key(sc, {})
    assert run_key(sc, {"demand_scale": {"cloud": 1.2}}) != run_key(sc, {})


def test_runs_list_combined_with_grid_and_common_overrides() -> None:
    specs = expand_sweep(
        {
            "base": str(TINY),
            "overrides": {"capacity_change": {"b200": 1}},
            "runs": [{"label": "base"}, {"label": "cheap", "price_change": {"cloud": 0.5}}],
            "grid": {"demand_scale.chat": [1.0, 2.0]},
        }
    )
    assert len(specs) == 4
    assert [s.label for s in specs] == ["base", "base", "cheap", "cheap"]
    assert all(s.overrides["capacity_change"] == {"b200": 1} for s in specs)
    assert specs[3].overrides["price_change"] == {"cloud": 0.5}
    assert specs[3].params == {
        "capacity_change.b200": 1,
        "demand_scale.chat": 2.0,
        "price_change.cloud": 0.5,
    }


def test_duplicate_runs_are_run_once() -> None:
    specs = expand_sweep({"base": str(TINY), "runs": [{}, {"demand_scale": {}}, {"label": "x"}]})
    assert len(specs) == 1


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"grid": {}}, "needs a 'base'"),
        ({"base": str(TINY), "grid": {"demand.cloud": [1]}}, "FIELD.KEY"),
        ({"base": str(TINY), "grid": {"demand_scale.cloud": []}}, "non-empty list"),
        ({"base": str(TINY), "grid": {"demand_scale.cloud": [-1]}}, "greater than or equal"),
        ({"base": str(TINY), "colour": "red"}, "unknown sweep field"),
    ],
)
def test_malformed_sweeps_are_rejected(sweep: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_sweep(sweep)


def test_example_sweep_expands_and_applies() -> None:
    specs, name = load_batch([str(DATA / "sweeps" / "hyperscaler-growth.json")])
    assert name == "hyperscaler-growth"
    assert len(specs) == 36
    sc = Scenario.from_dict(specs[-1].scenario)
    apply_overrides(sc, specs[-1].overrides)  # every axis names a real segment kind / pool


# ----------------------------------------------------------------------------- running
def test_results_match_direct_solves_and_plans_are_stored(
    tmp_path: Path, threads: cf.Executor
) -> None:
    specs = expand_sweep(tiny_sweep())
    result = run_batch(specs, tmp_path, executor=threads)
    assert result.ran == 6 and result.skipped == 0 and not result.failed
    base = Scenario.from_file(TINY)
    for spec, rec in zip(specs, result.records, strict=True):
        plan = solve(apply_overrides(base, spec.overrides))
        assert rec["run_id"] == spec.run_id
        assert rec["figures"]["objective"] == pytest.approx(plan.objective, rel=1e-9)
        assert rec["figures"]["margin_cloud"] == pytest.approx(
            plan.by_kind["cloud"].gross_margin, rel=1e-9, abs=1e-6
        )
        prices = [p for per in plan.pool_prices.values() for p in per.values()]
        assert rec["figures"]["price_max"] == pytest.approx(max(prices))
        stored = json.loads((tmp_path / rec["plan"]).read_text())
        assert stored["totals"]["objective"] == pytest.approx(plan.objective, rel=1e-9)
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(lines) == 7
    header = lines[0].split(",")
    for col in ("run_id", "demand_scale.cloud", "price_change.chat", "status", "objective"):
        assert col in header
    for col in ("margin_first_party", "ltv_cloud", "price_mean", "price_max:b200"):
        assert col in header
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave nothing behind
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == [s.run_id for s in specs]


def test_failed_runs_are_recorded_and_the_batch_goes_on(
    tmp_path: Path, threads: cf.Executor
) -> None:
    specs = expand_sweep(
        {
            "base": str(TINY),
            "runs": [
                {"label": "ok"},
                {"label": "infeasible", "kind_floors": {"cloud": 1000}},
                {"label": "unknown", "demand_scale": {"no-such-segment": 2}},
                {"label": "ok too", "demand_scale": {"chat": 0.5}},
            ],
        }
    )
    result = run_batch(specs, tmp_path, executor=threads)
    by_label = {r["label"]: r for r in result.records}
    assert by_label["ok"]["status"] == by_label["ok too"]["status"] == "optimal"
    assert by_label["infeasible"]["status"] == "infeasible"
    assert "cloud" in by_label["infeasible"]["reason"]
    assert by_label["unknown"]["status"] == "invalid_input"
    assert "no-such-segment" in by_label["unknown"]["reason"]
    assert by_label["infeasible"]["plan"] is None
    assert len(result.failed) == 2
    rows = {r["label"]: r for r in table_rows(result.records)}
    assert "objective" not in rows["infeasible"] and rows["infeasible"]["reason"]


def test_rerun_resumes_and_retry_failed_reruns_failures(
    tmp_path: Path, threads: cf.Executor
) -> None:
    specs = expand_sweep(tiny_sweep(runs=[{}, {"kind_floors": {"cloud": 1000}}]))
    first = run_batch(specs, tmp_path, executor=threads)
    assert first.ran == 12 and len(first.failed) == 6
    again = run_batch(specs, tmp_path, executor=threads)
    assert again.ran == 0 and again.skipped == 12
    assert without_timing(again.records) == without_timing(first.records)
    BatchStore(tmp_path).record_path(specs[0].run_id).unlink()
    third = run_batch(specs, tmp_path, executor=threads)
    assert third.ran == 1 and third.skipped == 11
    retry = run_batch(specs, tmp_path, executor=threads, retry_failed=True)
    assert retry.ran == 6 and retry.skipped == 6


def test_interrupt_keeps_finished_runs_and_the_next_run_resumes(tmp_path: Path) -> None:
    specs = expand_sweep(tiny_sweep())
    seen: list[str] = []

    def stop_after_two(rec: dict) -> None:
        seen.append(rec["run_id"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(KeyboardInterrupt):
        run_batch(specs, tmp_path, executor=ex, on_record=stop_after_two)
    finished = sorted(p.stem for p in (tmp_path / "runs").glob("*.json"))
    assert finished == sorted(seen)
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 3
    with cf.ThreadPoolExecutor(2) as ex:
        rest = run_batch(specs, tmp_path, executor=ex)
    assert rest.skipped == 2 and rest.ran == 4 and len(rest.records) == 6


def test_default_local_process_pool_gives_the_same_results(
    tmp_path: Path, threads: cf.Executor
) -> None:
    specs = expand_sweep(tiny_sweep())
    local = run_batch(specs, tmp_path / "pool", max_workers=2)
    threaded = run_batch(specs, tmp_path / "threads", executor=threads)
    assert without_timing(local.records) == without_timing(threaded.records)


def test_scenario_files_one_run_each_invalid_ones_recorded(
    tmp_path: Path, threads: cf.Executor
) -> None:
    bad = tmp_path / "in" / "bad.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"name": "bad", "periods": []}))
    (tmp_path / "in" / "tiny.json").write_text(TINY.read_text())
    (tmp_path / "in" / "broken.json").write_text("{not json")
    specs, name = load_batch([str(tmp_path / "in")])
    assert name == "files" and len(specs) == 3
    result = run_batch(specs, tmp_path / "out", executor=threads)
    status = {Path(r["source"]).name: r["status"] for r in result.records}
    assert status == {
        "bad.json": "invalid_input",
        "broken.json": "invalid_input",
        "tiny.json": "optimal",
    }
    glob_specs, _ = load_batch([str(tmp_path / "in" / "t*.json")])
    assert [s.run_id for s in glob_specs] == [
        s.run_id for s in file_runs([tmp_path / "in" / "tiny.json"])
    ]


# ----------------------------------------------------------------------------- progress
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _rec(i: int, status: str = "optimal") -> dict:
    figures = {"objective": 1.5} if status == "optimal" else None
    return {"run_id": f"r{i}", "status": status, "reason": "why", "figures": figures}


def test_progress_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = Progress(3, stream=out)
    bar.update(_rec(1))
    bar.update(_rec(2, "infeasible"))
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == ["[1/3] r1 optimal: objective 1.50", "[2/3] r2 infeasible: why"]


def test_progress_bar_on_a_terminal() -> None:
    out = _Tty()
    bar = Progress(4, done=1, stream=out, width=8)
    bar.update(_rec(1))
    bar.update(_rec(2, "error"))
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r[####----] 2/4  50%")
    assert "\r[######--] 3/4  75% 1 failed" in text
    assert text.endswith("\n")


# ----------------------------------------------------------------------------- CLI
def test_cli_batch_runs_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps(tiny_sweep(base=json.loads(TINY.read_text()))))
    out = tmp_path / "out"
    assert main(["batch", str(sweep), "-o", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "6 of 6 runs finished (6 now, 0 before)" in text
    assert "[6/6]" in text
    assert main(["batch", str(sweep), "-o", str(out), "--quiet"]) == 0
    assert "(0 now, 6 before)" in capsys.readouterr().out


def test_cli_batch_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps({"base": str(TINY), "grid": {"nope.x": [1]}}))
    assert main(["batch", str(sweep), "-o", str(tmp_path / "o")]) == 2
    assert "FIELD.KEY" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "missing*.json")]) == 2


# ----------------------------------------------------------------------------- Dask
def test_dask_cluster_gives_the_same_results_as_local(tmp_path: Path, threads: cf.Executor) -> None:
    distributed = pytest.importorskip("distributed")
    specs = expand_sweep(tiny_sweep(runs=[{}, {"kind_floors": {"cloud": 1000}}]))
    local = run_batch(specs, tmp_path / "local", executor=threads)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = run_batch(specs, tmp_path / "dask", executor=client.get_executor(pure=False))
        # the CLI's --scheduler connects a client of its own to the same cluster
        sweep = tmp_path / "sweep.json"
        sweep.write_text(json.dumps(tiny_sweep(runs=[{}, {"kind_floors": {"cloud": 1000}}])))
        argv = ["batch", str(sweep), "-o", str(tmp_path / "cli"), "--quiet"]
        assert main([*argv, "--scheduler", cluster.scheduler_address]) == 0
    assert on_dask.ran == len(specs) == 12
    assert without_timing(on_dask.records) == without_timing(local.records)
    store = BatchStore(tmp_path / "cli")
    from_cli = [store.load(s.run_id) for s in specs]
    assert without_timing(from_cli) == without_timing(local.records)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- parquet
def test_parquet_written_when_pyarrow_is_importable(tmp_path: Path, threads: cf.Executor) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    result = run_batch(expand_sweep(tiny_sweep()), tmp_path, executor=threads)
    assert tmp_path / "results.parquet" in result.files
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 6
