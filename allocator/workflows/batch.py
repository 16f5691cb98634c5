"""Batch runs and parameter sweeps: many solves, one results table, each plan stored.

A **sweep** is a base scenario plus what-if overrides
(:class:`allocator.workflows.whatif.Overrides`) given as a grid (cartesian product of
``"field.key": [values]`` axes) and/or a list of runs. A **batch of files** is one run
per scenario file. Either way every run gets a stable id (a hash of its scenario,
overrides and solver options), so re-running the same batch into the same output
directory skips what is already finished.

Output directory layout::

    runs/<run_id>.json    one record per finished run (status, reason, key figures)
    plans/<run_id>.json   the plan (Plan.to_dict()) of every run that has one
    results.csv           one row per run, in sweep order (results.parquet with pyarrow)
    manifest.json         the runs of the batch and their overrides

Each file is written atomically (temporary file + rename) as its run completes, the plan
before the record, so a run is finished exactly when its record exists; an interrupted
batch (Ctrl-C, a lost machine) keeps every finished run.

Runs execute through a :class:`concurrent.futures.Executor`: by default a local process
pool over all cores, or a Dask ``distributed`` cluster (``client.get_executor()``) — the
same task function either way. Each task solves with HiGHS limited to one thread, so
parallel workers do not fight over cores (docs/batch.md).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from allocator.cells import csv_cell
from allocator.errors import AllocatorError, Issue, ScenarioError, SolveError, Status
from allocator.numbers import money
from allocator.plan.writers import write_atomic
from allocator.scenario.overrides import Overrides

OVERRIDE_FIELDS = tuple(Overrides.model_fields)
FINISHED_OK = (Status.OPTIMAL.value, Status.TIME_LIMIT.value)


# ------------------------------------------------------------------------ run specs
@dataclass(frozen=True)
class RunSpec:
    """One run of a batch: a scenario (as data), overrides and solver options."""

    run_id: str
    index: int
    source: str  # the scenario file, or the sweep's base
    scenario: Mapping[str, Any]
    overrides: dict[str, Any]
    params: dict[str, Any]  # the overrides flattened to "field.key" -> value
    label: str = ""
    algorithm: str = "auto"
    time_limit: float | None = None

    def task(self) -> dict[str, Any]:
        """What a worker needs: plain data, picklable for any executor."""
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "overrides": self.overrides,
            "algorithm": self.algorithm,
            "time_limit": self.time_limit,
        }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_key(
    scenario: Mapping[str, Any],
    overrides: Mapping[str, Any],
    algorithm: str = "auto",
    time_limit: float | None = None,
) -> str:
    """The stable id of a run: a hash of its base scenario, overrides and solver options
    (16 hex digits). Key order and default values do not change it."""
    try:
        ov = Overrides.model_validate(overrides).model_dump(mode="json", exclude_defaults=True)
    except ValueError:
        ov = dict(overrides)
    payload = {
        "scenario": scenario,
        "overrides": ov,
        "solver": {"algorithm": algorithm, "time_limit": time_limit},
    }
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:16]


def flatten_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"demand_scale": {"cloud": 1.2}}`` -> ``{"demand_scale.cloud": 1.2}``; lists
    become JSON text so every value fits a table cell.

    >>> flatten_overrides({"demand_scale": {"cloud": 1.2}, "capacity_change": {"b200": [1, 0]}})
    {'capacity_change.b200': '[1, 0]', 'demand_scale.cloud': 1.2}
    """
    out: dict[str, Any] = {}
    for fld in sorted(overrides):
        value = overrides[fld]
        if isinstance(value, Mapping):
            for key in sorted(value):
                v = value[key]
                out[f"{fld}.{key}"] = json.dumps(v) if isinstance(v, list | dict) else v
        elif value is not None:
            out[fld] = json.dumps(value) if isinstance(value, list | dict) else value
    return out


def _merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides merged field by field (later keys win within a field)."""
    out: dict[str, Any] = {}
    for part in parts:
        for fld, value in part.items():
            if isinstance(value, Mapping) and isinstance(out.get(fld), dict):
                out[fld] = {**out[fld], **value}
            elif isinstance(value, Mapping):
                out[fld] = dict(value)
            else:
                out[fld] = value
    return out


def _axis(name: str) -> tuple[str, str]:
    fld, dot, key = name.partition(".")
    if fld not in OVERRIDE_FIELDS or not dot or not key:
        raise ValueError(
            f"grid axis {name!r} must be FIELD.KEY with FIELD one of {', '.join(OVERRIDE_FIELDS)} "
            "(e.g. 'demand_scale.cloud', 'capacity_change.b200')"
        )
    return fld, key


def _read_json(path: Path) -> Any:
    """A JSON file's data, or by its suffix a scenario workbook's (.xlsx)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from allocator.scenario.workbook import read_workbook

        return read_workbook(path)  # a ScenarioError is a ValueError: unreadable
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        from allocator.scenario.model import json_error

        raise ValueError(f"{path}: {json_error(exc)}") from None


def _canonical_scenario(data: Any) -> dict[str, Any]:
    """The validated scenario as data (so formatting and defaults do not change run ids);
    raises :class:`ScenarioError`."""
    from allocator.scenario import Scenario

    return Scenario.from_dict(data).to_dict()


def expand_sweep(sweep: Mapping[str, Any], base_dir: str | Path = ".") -> list[RunSpec]:
    """The runs of a sweep description (see docs/batch.md):

    ``base`` (a scenario file, relative to ``base_dir``, or an inline scenario),
    ``overrides`` (applied to every run), ``runs`` (a list of overrides, each with an
    optional ``label``), ``grid`` (``{"field.key": [values]}``: every combination),
    ``algorithm``, ``time_limit``. With both ``runs`` and ``grid``, every run is combined
    with every grid point. Raises ``ValueError`` (or :class:`ScenarioError` for an invalid
    base) on a malformed sweep."""
    known = {"name", "description", "base", "overrides", "runs", "grid", "algorithm", "time_limit"}
    unknown = sorted(set(sweep) - known)
    if unknown:
        raise ValueError(f"unknown sweep field(s): {', '.join(unknown)} (known: {sorted(known)})")
    if "base" not in sweep:
        raise ValueError("a sweep needs a 'base' scenario (a file path or an inline scenario)")
    base = sweep["base"]
    if isinstance(base, str):
        source = os.path.normpath(Path(base_dir) / base)
        scenario = _canonical_scenario(_read_json(Path(source)))
    elif isinstance(base, Mapping):
        source = "<inline>"
        scenario = _canonical_scenario(base)
    else:
        raise ValueError("'base' must be a scenario file path or an inline scenario object")
    algorithm = str(sweep.get("algorithm", "auto"))
    time_limit = sweep.get("time_limit")
    if time_limit is not None and not (isinstance(time_limit, int | float) and time_limit >= 0):
        raise ValueError(f"'time_limit' must be seconds >= 0, got {time_limit!r}")

    common = dict(sweep.get("overrides") or {})
    runs = sweep.get("runs")
    run_items: list[dict[str, Any]] = [dict(r) for r in runs] if runs else [{}]
    grid = dict(sweep.get("grid") or {})
    axes = []
    for name, values in grid.items():
        fld, key = _axis(name)
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid axis {name!r} needs a non-empty list of values")
        axes.append([{fld: {key: v}} for v in values])
    points = [_merge(*combo) for combo in itertools.product(*axes)] if axes else [{}]

    specs: list[RunSpec] = []
    seen: set[str] = set()
    for item in run_items:
        label = str(item.pop("label", ""))
        for point in points:
            ov = _merge(common, item, point)
            Overrides.model_validate(ov)  # a type error is the sweep's, not one run's
            rid = run_key(scenario, ov, algorithm, time_limit)
            if rid in seen:
                continue  # the same run twice: once is enough
            seen.add(rid)
            specs.append(
                RunSpec(
                    run_id=rid,
                    index=len(specs),
                    source=source,
                    scenario=scenario,
                    overrides=ov,
                    params=flatten_overrides(ov),
                    label=label,
                    algorithm=algorithm,
                    time_limit=time_limit,
                )
            )
    return specs


SWEEP_FIELDS = (
    "name",
    "description",
    "base",
    "overrides",
    "runs",
    "grid",
    "algorithm",
    "time_limit",
)


def is_sweep(data: Any) -> bool:
    """Does ``data`` look like a sweep description (a ``base`` and no scenario items)?"""
    return isinstance(data, Mapping) and "base" in data and "segments" not in data


def validate_sweep(
    sweep: Mapping[str, Any], base_dir: str | Path = "."
) -> tuple[list[RunSpec], list[Issue]]:
    """The runs of a sweep and every problem found: its own fields, its base scenario
    (paths under ``base``), and each run's overrides applied to the base (unknown
    segments, kinds or pools), each problem once."""
    from pydantic import ValidationError

    from allocator.scenario import Scenario
    from allocator.scenario.model import did_you_mean, pydantic_issues
    from allocator.scenario.overrides import apply_overrides

    issues: list[Issue] = []
    for key in sorted(set(sweep) - set(SWEEP_FIELDS)):
        issues.append(Issue(key, f"unknown sweep field {key!r}{did_you_mean(key, SWEEP_FIELDS)}"))
    if issues:
        return [], issues
    try:
        specs = expand_sweep(sweep, base_dir)
    except ScenarioError as exc:
        where = "base" if isinstance(sweep.get("base"), Mapping) else f"base ({sweep['base']})"
        return [], [
            Issue(f"base.{i.path}" if i.path else "base", i.message, where=f"{where}: {i}")
            for i in exc.issues
        ]
    except ValidationError as exc:  # overrides of the wrong type
        return [], pydantic_issues(exc, "overrides")
    except ValueError as exc:
        return [], [Issue("", str(exc))]
    if specs:
        base = Scenario.model_validate(specs[0].scenario)
        pools = [p.id for p in base.pools]
        targets = [s.id for s in base.segments] + sorted({s.kind.value for s in base.segments})
        for spec in specs:
            try:
                apply_overrides(base, spec.overrides)
            except ScenarioError as exc:
                for i in exc.issues:
                    field, _, key = i.path.partition(".")
                    hint = (
                        ""
                        if "did you mean" in i.message
                        else did_you_mean(key, pools if field == "capacity_change" else targets)
                    )
                    issues.append(Issue(i.path, i.message + hint))
            except ValueError as exc:
                issues.append(Issue("", str(exc)))
    return specs, list(dict.fromkeys(issues))


def scenario_files(inputs: Sequence[str]) -> list[Path]:
    """Scenario files from paths, directories (their ``*.json``) and glob patterns."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(p.glob("*.json")))
        elif any(ch in item for ch in "*?["):
            out.extend(Path(m) for m in sorted(glob.glob(item)))
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def file_runs(
    paths: Iterable[str | Path], algorithm: str = "auto", time_limit: float | None = None
) -> list[RunSpec]:
    """One run per scenario file, no overrides. A file that is not a valid scenario still
    gets a run (recorded as invalid input, with the reason)."""
    specs: list[RunSpec] = []
    for path in paths:
        try:
            raw = _read_json(Path(path))
            try:
                data: Any = _canonical_scenario(raw)
            except ScenarioError:
                data = raw  # the worker reports every problem
        except ValueError as exc:
            data = {"__unreadable__": str(exc)}
        rid = run_key(data, {}, algorithm, time_limit)
        specs.append(
            RunSpec(
                run_id=rid,
                index=len(specs),
                source=str(path),
                scenario=data,
                overrides={},
                params={},
                algorithm=algorithm,
                time_limit=time_limit,
            )
        )
    return specs


# ------------------------------------------------------------------------ the worker
def figures(plan: dict[str, Any]) -> dict[str, Any]:
    """The key figures of a plan (``Plan.to_dict()``) as one flat table row: totals,
    margin, LTV and revenue by kind, and shadow prices (nominal, per GPU-hour) averaged and
    maximal over pools and periods, overall and per pool."""
    t = plan["totals"]
    row: dict[str, Any] = {
        k: t[k]
        for k in (
            "objective",
            "gross_margin",
            "revenue",
            "ltv",
            "churn_cost",
            "variable_cost",
            "rental_cost",
            "shortfall_penalty",
        )
    }
    for kind, kr in sorted(plan["by_kind"].items()):
        row[f"margin_{kind}"] = kr["gross_margin"]
        row[f"ltv_{kind}"] = kr["ltv"]
        row[f"revenue_{kind}"] = kr["revenue"]
    prices: dict[str, list[float]] = {}
    for r in plan["pools"]:
        v = r.get("shadow_price_per_gpu_hour")
        if v is not None:
            prices.setdefault(r["pool"], []).append(float(v))
    every = [v for vs in prices.values() for v in vs]
    row["price_mean"] = sum(every) / len(every) if every else None
    row["price_max"] = max(every) if every else None
    for pool, vs in prices.items():
        row[f"price_mean:{pool}"] = sum(vs) / len(vs)
        row[f"price_max:{pool}"] = max(vs)
    row["max_violation"] = plan["max_violation"]
    return row


def run_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Solve one run (in a worker process or on a Dask worker): returns
    ``{"record": {...}, "plan_json": text or None}``. Never raises for a run that fails:
    the failure is the record's status and reason."""
    from allocator.engine import solve
    from allocator.scenario import Scenario
    from allocator.scenario.overrides import apply_overrides
    from allocator.solvers.registry import HighsSolver

    t0 = time.perf_counter()
    record: dict[str, Any] = {"run_id": task["run_id"], "status": None, "reason": ""}
    plan_json = None
    try:
        data = task["scenario"]
        if "__unreadable__" in data:
            raise ScenarioError([_issue(str(data["__unreadable__"]))])
        sc = Scenario.from_dict(data)
        if task["overrides"]:
            sc = apply_overrides(sc, task["overrides"])
        solver = HighsSolver(algorithm=task["algorithm"], threads=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan = solve(sc, time_limit=task["time_limit"], solver=solver)
        d = plan.to_dict()
        ok = plan.status is Status.OPTIMAL
        record.update(status=plan.status.value, reason="" if ok else plan.message)
        record["figures"] = figures(d)
        record["warnings"] = sorted({str(w.message) for w in caught} | set(plan.warnings))
        plan_json = plan.to_json_bytes()  # the same writer as `solve -o plan.json`
    except ScenarioError as exc:
        record.update(status=Status.INVALID_INPUT.value, reason="; ".join(map(str, exc.issues)))
    except SolveError as exc:
        record.update(status=exc.status.value, reason=str(exc))
    except AllocatorError as exc:
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a batch goes on whatever one run does
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}")
    record["time_s"] = time.perf_counter() - t0
    return {"record": record, "plan_json": plan_json}


def _issue(message: str) -> Any:
    from allocator.errors import Issue

    return Issue("", message)


def _worker_init() -> None:
    """Local pool workers leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ------------------------------------------------------------------------ output files
class BatchStore:
    """The output directory of a batch."""

    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir)
        self.runs = self.root / "runs"
        self.plans = self.root / "plans"

    def record_path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    def plan_path(self, run_id: str) -> Path:
        return self.plans / f"{run_id}.json"

    def load(self, run_id: str) -> dict[str, Any] | None:
        p = self.record_path(run_id)
        if not p.exists():
            return None
        try:
            rec: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
            return rec
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: run it again

    def save(self, spec: RunSpec, result: Mapping[str, Any]) -> dict[str, Any]:
        rec = dict(result["record"])
        rec.update(
            index=spec.index,
            label=spec.label,
            source=spec.source,
            overrides=spec.overrides,
            params=spec.params,
            plan=None,
        )
        if result.get("plan_json") is not None:
            write_atomic(self.plan_path(spec.run_id), result["plan_json"])
            rec["plan"] = str(Path("plans") / f"{spec.run_id}.json")
        write_atomic(self.record_path(spec.run_id), json.dumps(rec, indent=1, allow_nan=False))
        return rec

    def write_manifest(self, specs: Sequence[RunSpec], name: str) -> None:
        manifest = {
            "name": name,
            "runs": [
                {
                    "run_id": s.run_id,
                    "index": s.index,
                    "label": s.label,
                    "source": s.source,
                    "overrides": s.overrides,
                }
                for s in specs
            ],
        }
        write_atomic(self.root / "manifest.json", json.dumps(manifest, indent=1))


def table_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per run record: id, label, source, override values, status, reason,
    solve time, and the key figures (empty for a run without a plan)."""
    rows = []
    for rec in records:
        row: dict[str, Any] = {
            "run_id": rec["run_id"],
            "index": rec.get("index"),
            "label": rec.get("label", ""),
            "source": rec.get("source", ""),
        }
        row.update(rec.get("params") or {})
        row.update(status=rec["status"], reason=rec.get("reason", ""), time_s=rec.get("time_s"))
        row.update(rec.get("figures") or {})
        row["plan"] = rec.get("plan") or ""
        rows.append(row)
    return rows


def write_table(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """results.csv (always) and results.parquet (when pyarrow is importable)."""
    root = Path(out_dir)
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(k) for k in columns])
    for r in rows:  # numbers as they are (a float's repr), text made safe
        w.writerow([csv_cell(v) if not isinstance(v, float) else v for v in map(r.get, columns)])
    written = [root / "results.csv"]
    write_atomic(written[0], buf.getvalue())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    full = [{k: r.get(k) for k in columns} for r in rows]
    table = pa.Table.from_pylist(full)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    written.append(root / "results.parquet")
    write_atomic(written[1], sink.getvalue().to_pybytes())
    return written


# ------------------------------------------------------------------------ progress
class Progress:
    """A one-line progress bar on a terminal; plain lines (one per finished run) when the
    stream is not a terminal."""

    def __init__(self, total: int, done: int = 0, stream: IO[str] | None = None, width: int = 30):
        self.total, self.done, self.failed = total, done, 0
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.start = time.monotonic()
        self.started_at = done

    def update(self, rec: Mapping[str, Any]) -> None:
        self.done += 1
        if rec["status"] not in FINISHED_OK:
            self.failed += 1
        if self.tty:
            self._bar()
        else:
            obj = (rec.get("figures") or {}).get("objective")
            reason = str(rec.get("reason", ""))[:120]
            what = f"objective {money(obj)}" if obj is not None else reason
            params = ", ".join(f"{k}={v}" for k, v in (rec.get("params") or {}).items())
            params = f" [{params}]" if params else ""
            width = len(str(self.total))
            self.stream.write(
                f"[{self.done:>{width}}/{self.total}] {rec['run_id']} {rec['status']}: "
                f"{what}{params}\n"
            )
        self.stream.flush()

    def _bar(self) -> None:
        frac = self.done / self.total if self.total else 1.0
        filled = round(frac * self.width)
        ran = self.done - self.started_at
        elapsed = time.monotonic() - self.start
        eta = ""
        if ran > 0 and self.done < self.total:
            eta = f" eta {_duration(elapsed / ran * (self.total - self.done))}"
        failed = f" {self.failed} failed" if self.failed else ""
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {frac:4.0%}{failed}{eta}\x1b[K")

    def begin(self) -> None:
        """On a terminal, draw the bar before the first run finishes (the runs already
        finished counted); nothing otherwise."""
        if self.tty:
            self._bar()
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# ------------------------------------------------------------------------ the runner
@dataclass
class BatchResult:
    out_dir: Path
    records: list[dict[str, Any]]  # every run's record, in batch order (finished ones)
    ran: int  # runs solved by this call
    skipped: int  # runs already finished before this call
    interrupted: bool = False
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] not in FINISHED_OK]

    def rows(self) -> list[dict[str, Any]]:
        return table_rows(self.records)


def local_executor(max_workers: int | None = None) -> cf.ProcessPoolExecutor:
    """A process pool over all cores (or ``max_workers``); fresh (spawned) interpreters,
    so no solver thread state is inherited, and Ctrl-C left to the parent."""
    return cf.ProcessPoolExecutor(
        max_workers=max_workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
    )


def _workers_of(executor: cf.Executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if client is not None:
        with contextlib.suppress(Exception):
            return max(1, sum(client.nthreads().values()))
    return os.cpu_count() or 1


def run_batch(
    specs: Sequence[RunSpec],
    out_dir: str | Path,
    *,
    executor: cf.Executor | None = None,
    max_workers: int | None = None,
    progress: Progress | bool | None = None,
    retry_failed: bool = False,
    name: str = "batch",
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Run ``specs`` and store every result in ``out_dir``; return what is finished.

    Runs whose record already exists in ``out_dir`` are skipped (resume); with
    ``retry_failed`` those that did not end with a plan are run again. ``executor`` is any
    :class:`concurrent.futures.Executor` (e.g. a Dask client's ``get_executor()``); by
    default a local process pool with ``max_workers`` (all cores) is created and shut
    down. At most twice as many runs as workers are in flight at a time. On
    ``KeyboardInterrupt`` the runs in flight are cancelled, the table of the finished
    ones is written, and the interrupt propagates."""
    store = BatchStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    store.write_manifest(specs, name)
    done, todo = _resume(store, specs, retry_failed)
    skipped = len(done)
    bar = _progress_bar(progress, len(specs), skipped)
    if bar is not None:
        bar.begin()
    owned = executor is None and bool(todo)
    ex = local_executor(max_workers) if owned else executor
    ran = 0
    interrupted = False
    in_flight: dict[cf.Future[dict[str, Any]], RunSpec] = {}
    try:
        if todo:
            assert ex is not None
            ran = _run_all(ex, todo, in_flight, store, done, bar, on_record)
    except KeyboardInterrupt:
        interrupted = True
        for fut in in_flight:
            fut.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
        if owned and ex is not None:
            _stop(ex, interrupted)
        records = [done[s.run_id] for s in specs if s.run_id in done]
        files = write_table(table_rows(records), store.root)
    return BatchResult(store.root, records, ran, skipped, interrupted, files)


def _resume(
    store: BatchStore, specs: Sequence[RunSpec], retry_failed: bool
) -> tuple[dict[str, dict[str, Any]], list[RunSpec]]:
    """The records already finished in ``store`` (by run id) and the runs still to do."""
    done: dict[str, dict[str, Any]] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        rec = store.load(spec.run_id)
        if rec is not None and (not retry_failed or rec["status"] in FINISHED_OK):
            done[spec.run_id] = rec
        else:
            todo.append(spec)
    return done, todo


def _progress_bar(progress: Progress | bool | None, total: int, skipped: int) -> Progress | None:
    """The caller's :class:`Progress`, a new one on stdout for ``True``, else none."""
    if isinstance(progress, Progress):
        if progress.done == 0 and skipped:  # a resumed batch counts the runs already done
            progress.done = progress.started_at = skipped
        return progress
    if progress is True:
        return Progress(total, done=skipped)
    return None


def _run_all(
    ex: cf.Executor,
    todo: Sequence[RunSpec],
    in_flight: dict[cf.Future[dict[str, Any]], RunSpec],
    store: BatchStore,
    done: dict[str, dict[str, Any]],
    bar: Progress | None,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> int:
    """Run ``todo`` on ``ex``, at most twice as many as workers in ``in_flight`` at a time,
    storing each result as it finishes (into ``store`` and ``done``); return how many
    ran."""
    ran = 0
    window = 2 * _workers_of(ex)
    queue: Iterator[RunSpec] = iter(todo)
    for spec in itertools.islice(queue, window):
        in_flight[ex.submit(run_task, spec.task())] = spec
    while in_flight:
        finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
        for fut in finished:
            spec = in_flight.pop(fut)
            rec = store.save(spec, _result_of(fut, spec))
            done[spec.run_id] = rec
            ran += 1
            if bar is not None:
                bar.update(rec)
            if on_record is not None:
                on_record(rec)
            nxt = next(queue, None)
            if nxt is not None:
                in_flight[ex.submit(run_task, nxt.task())] = nxt
    return ran


def _result_of(fut: cf.Future[dict[str, Any]], spec: RunSpec) -> dict[str, Any]:
    """A finished task's result, or an error record when the worker itself died."""
    try:
        return fut.result()
    except Exception as exc:  # the worker itself died (not the run)
        return {
            "record": {
                "run_id": spec.run_id,
                "status": "error",
                "reason": f"worker failed: {type(exc).__name__}: {exc}",
            },
            "plan_json": None,
        }


def _stop(ex: cf.Executor, interrupted: bool) -> None:
    if not interrupted:
        ex.shutdown(wait=True)
        return
    procs = getattr(ex, "_processes", None) or {}
    ex.shutdown(wait=False, cancel_futures=True)
    for p in list(procs.values()):  # a solve in flight is not worth waiting for
        with contextlib.suppress(Exception):
            p.terminate()


def load_batch(
    inputs: Sequence[str], algorithm: str | None = None, time_limit: float | None = None
) -> tuple[list[RunSpec], str]:
    """The runs of a CLI batch: one sweep file (a JSON object with ``base``), or scenario
    files, directories and glob patterns. ``algorithm`` and ``time_limit``, when given,
    replace the sweep's. Returns the runs and a name for the batch."""
    if len(inputs) == 1 and Path(inputs[0]).is_file():
        p = Path(inputs[0])
        data = _read_json(p)
        if isinstance(data, dict) and "base" in data:
            if algorithm is not None:
                data["algorithm"] = algorithm
            if time_limit is not None:
                data["time_limit"] = time_limit
            return expand_sweep(data, p.parent), str(data.get("name") or p.stem)
    paths = scenario_files(inputs)
    if not paths:
        raise ValueError(f"no scenario files in {' '.join(inputs)}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"no such file: {', '.join(missing)}")
    return file_runs(paths, algorithm or "auto", time_limit), "files"
