"""Solves run outside the event loop, in worker processes.

* Plan jobs: the database is the queue. A dispatcher thread claims the oldest queued job
  (an atomic UPDATE, so several service processes can share one database), runs it in a
  process of its own (so cancelling or a hard time limit can stop it), writes the result,
  and heartbeats its running jobs. A running job whose heartbeat stops (its service died)
  is marked failed by whichever service sweeps next, at start-up or while running.
* Synchronous solves (POST /v1/solve, what-if): a small process pool kept warm.

Worker processes come from a forkserver that has already imported the engine, so a job
starts in milliseconds, not the second a fresh interpreter needs.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import re
import socket
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from allocator import InfeasibleError, ScenarioError, SolveError, solve
from allocator.errors import AllocatorWarning
from allocator.workflows.planner import Planner

from .lifeline import die_with_parent
from .store import CANCELLED, DONE, FAILED, PLAN, Store

log = logging.getLogger("allocator.api.jobs")


def _context() -> Any:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(
            [
                "allocator.engine",
                "allocator.workflows.planner",
                "allocator.analysis.explain",
                "api.jobs",
                "api.lifeline",  # the forkserver ends when the service does
            ]
        )
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - platforms without fork


def _guarded(work: Any) -> dict[str, Any]:
    """Run ``work()`` in a worker: ``{"ok": True, "result": …}`` or ``{"ok": False,
    "problem": …}`` with the engine's explanation. Never raises for a client's input."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllocatorWarning)  # they are in plan.warnings
            return {"ok": True, "result": work()}
    except ScenarioError as exc:
        return _problem(
            422,
            "Invalid scenario",
            str(exc),
            "invalid-scenario",
            [{"path": i.path, "message": i.message} for i in exc.issues],
        )
    except InfeasibleError as exc:
        out = _problem(422, "Infeasible scenario", str(exc), "infeasible")
        diagnosis = getattr(exc, "diagnosis", None)
        if diagnosis is not None:
            out["problem"]["diagnosis"] = diagnosis.to_dict()
        return out
    except SolveError as exc:
        return _problem(422, "Solve failed", str(exc), exc.status.value.replace("_", "-"))
    except (KeyError, ValueError) as exc:  # a bad analysis parameter (unknown segment …)
        msg = exc.args[0] if exc.args else str(exc)
        return _problem(422, "Invalid request", str(msg), "invalid-request")
    except Exception as exc:  # a bug: report it without a trace
        log.exception("worker failed")
        return _problem(
            500, "Internal error", f"{type(exc).__name__} in the solver worker", "internal"
        )


def solve_payload(
    scenario: dict[str, Any], options: dict[str, Any], progress: Any = None
) -> dict[str, Any]:
    """Solve in a worker process (see :func:`_guarded`); the plan is under "plan".
    ``progress`` gets the engine's progress lines (``solve(..., progress=)``)."""

    def work() -> dict[str, Any]:
        plan = solve(
            scenario,
            time_limit=options.get("time_limit_s"),
            algorithm=options.get("algorithm", "auto"),
            progress=progress,
            stable=options.get("stable"),
        )
        return plan.to_dict()

    out = _guarded(work)
    if out["ok"]:
        out["plan"] = out.pop("result")
    return out


# what-if sessions of this worker process: (scenario id, revision) -> Planner, most recent
# last. A what-if re-solves warm from the basis of the scenario's previous what-if.
_SESSIONS: OrderedDict[str, Planner] = OrderedDict()


def whatif_payload(key: str, scenario: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Solve a what-if variant of a stored scenario revision (``key``) in a worker process,
    warm from the session this worker keeps for that revision (allocator.workflows.planner); the
    first what-if of a revision, or one that changes the model's structure, solves cold.
    Any failure drops the session, and the answer is what :func:`solve_payload` gives
    (an infeasible what-if gets its diagnosis)."""
    keep = int(options.get("sessions", 0))

    def work() -> dict[str, Any]:
        planner = _SESSIONS.pop(key, None)
        limit = options.get("time_limit_s")
        if planner is None:
            planner = Planner(scenario, time_limit=limit)
            plan = planner.solve()
        else:
            planner.time_limit = limit
            plan = planner.set_scenario(scenario)
        if keep > 0:
            _SESSIONS[key] = planner
            while len(_SESSIONS) > keep:
                _SESSIONS.popitem(last=False)
        warm = bool(planner.last_solve and planner.last_solve.warm)
        return {"plan": plan.to_dict(), "warm": warm}

    out = _guarded(work)
    if not out["ok"]:
        out = solve_payload(scenario, options)  # the engine's own error, diagnosis included
        out["warm"] = False
        return out
    return {"ok": True, **out["result"]}


def _analysis(
    name: str, sc: Any, params: dict[str, Any], time_limit: float | None, progress: Any
) -> dict[str, Any]:
    """One analysis of ``allocator.analysis`` / ``allocator.workflows`` on scenario ``sc``."""
    from allocator import Plan
    from allocator.analysis import frontier, sensitivity
    from allocator.scenario.overrides import apply_overrides
    from allocator.workflows import counterfactuals
    from allocator.workflows.whatif import compare

    if name == "sensitivity":
        return sensitivity.sensitivity(sc, segments=params.get("segments")).to_dict()
    if name == "frontier":
        return frontier.frontier(sc, params.get("points")).to_dict()
    if name == "counterfactual":
        base = Plan.from_dict(params["base"]) if params.get("base") else None
        return counterfactuals.counterfactual(sc, params["spec"], base)
    if name == "fair":
        from allocator.workflows.fairness import fair_solve

        return fair_solve(sc, **params).to_dict()
    if name == "alternatives":
        from allocator.workflows.alternatives import alternatives

        return alternatives(sc, params["vary"], slack=params["slack"]).to_dict()
    if name == "what-if":  # as a job: both plans cold, in the job's own process
        base_plan: dict[str, Any] | None = params.get("base")
        if base_plan is None:
            if progress is not None:
                progress("solving the base plan (the scenario has no finished plan)")
            base_plan = solve(sc, time_limit=time_limit, progress=progress).to_dict()
        changes = {k: v for k, v in params["overrides"].items() if k != "time_limit_s"}
        new = solve(
            apply_overrides(sc, changes), time_limit=time_limit, progress=progress
        ).to_dict()
        return {
            "scenario_id": params["scenario_id"],
            "scenario_revision": params["scenario_revision"],
            "base_plan_id": params.get("base_plan_id"),
            "overrides": params["overrides"],
            "difference": compare(base_plan, new),
            "plan": new,
            "warm": False,
        }
    raise ValueError(f"unknown analysis {name!r}")


def analysis_payload(
    name: str,
    scenario: dict[str, Any],
    params: dict[str, Any],
    time_limit: float | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Run one analysis in a worker process (see :func:`_guarded`): synchronously in the
    solver pool, or as an analysis job (``what-if`` only as a job: the synchronous
    what-if keeps warm sessions, :func:`whatif_payload`)."""
    from allocator import Scenario

    return _guarded(
        lambda: _analysis(name, Scenario.from_dict(scenario), params, time_limit, progress)
    )


def _problem(
    status: int, title: str, detail: str, kind: str, errors: list | None = None
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": f"/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        p["errors"] = errors
    return {"ok": False, "problem": p}


def interrupted(reason: str) -> dict[str, Any]:
    return _problem(503, "Job interrupted", reason + "; submit it again", "interrupted")["problem"]


def interrupted_twice(reason: str) -> dict[str, Any]:
    """A job interrupted a second time fails (the first time it is queued again)."""
    return _problem(
        503,
        "Job interrupted twice",
        reason + " (it had been interrupted once and re-queued); submit it again",
        "interrupted",
    )["problem"]


_ROUND = re.compile(r"\bround (\d+)")


def progress_line(message: str, elapsed_s: float) -> dict[str, Any]:
    """A progress message of the engine as the job JSON shows it: the message, its phase,
    the row-generation round if any, and the time since the job started."""
    low = message.lower()
    m = _ROUND.search(low)
    if m:
        phase = "row generation"
    elif low.startswith("building"):
        phase = "building"
    elif low.startswith("reading"):
        phase = "reading out"
    elif low.startswith("infeasible"):
        phase = "diagnosing"
    else:
        phase = "solving"
    return {
        "message": message,
        "phase": phase,
        "round": int(m.group(1)) if m else None,
        "elapsed_s": round(elapsed_s, 2),
    }


# the analyses that run as jobs (POST .../what-if, GET .../frontier …, beyond the synchronous
# size or with Prefer: respond-async); a plan job's kind is "plan"
ANALYSES = ("what-if", "sensitivity", "frontier", "counterfactual", "fair", "alternatives")


def _job_main(
    conn: Connection,
    kind: str,
    scenario: dict[str, Any],
    options: dict[str, Any],
    base: dict[str, Any] | None,
) -> None:
    die_with_parent()
    t0 = time.monotonic()

    def progress(message: str) -> None:
        conn.send({"progress": progress_line(message, time.monotonic() - t0)})

    try:
        if kind == PLAN:
            conn.send(solve_payload(scenario, options, progress))
        else:
            progress(f"{kind}: started")
            params = dict(options.get("params") or {})
            if kind == "what-if":  # its answer names the stored plan it compares with (none
                # if that plan was deleted meanwhile: the base is then solved again)
                params["base_plan_id"] = options.get("base_plan_id") if base is not None else None
            if base is not None:
                params["base"] = base
            out = analysis_payload(kind, scenario, params, options.get("time_limit_s"), progress)
            conn.send(out)
    finally:
        conn.close()


@dataclass
class _Running:
    proc: Any
    conn: Connection
    deadline: float
    progress: dict[str, Any] | None = None  # the latest line, not yet stored
    kind: str = PLAN
    limit: float = 0.0


class JobRunner:
    """Runs queued plan jobs, ``workers`` at a time."""

    def __init__(
        self,
        store: Store,
        workers: int = 1,
        default_time_limit_s: float = 600.0,
        stale_after_s: float = 30.0,
        grace_s: float = 30.0,
        poll_s: float = 0.2,
    ):
        self.store = store
        self.workers = workers
        self.default_time_limit_s = default_time_limit_s
        self.stale_after_s = stale_after_s
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ctx = _context()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running: dict[str, _Running] = {}
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._sweep("the service stopped while it ran")
        self._thread = threading.Thread(target=self._loop, name="plan-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for pid, job in list(self._running.items()):
            self._kill(job)
            reason = "the service shut down while it ran"
            self.store.requeue_or_fail(pid, interrupted(reason), interrupted_twice(reason))
        self._running.clear()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        last_beat = last_sweep = 0.0
        while not self._stop.is_set():
            try:
                self._reap()
                self._start_more()
                t = time.monotonic()
                if t - last_beat >= min(2.0, self.stale_after_s / 3):
                    self.store.heartbeat(list(self._running), self._progress())
                    last_beat = t
                if t - last_sweep >= max(1.0, min(5.0, self.stale_after_s / 4)):
                    self._sweep("the service running it stopped")
                    last_sweep = t
            except Exception:  # keep the dispatcher alive through a database hiccup
                log.exception("job dispatcher error")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _sweep(self, reason: str) -> None:
        requeued, failed = self.store.fail_stale(
            self.stale_after_s, interrupted(reason), interrupted_twice(reason)
        )
        if requeued:
            log.warning("re-queued %d interrupted job(s)", requeued)
            self._wake.set()
        if failed:
            log.warning("marked %d job(s) interrupted twice failed", failed)

    def _start_more(self) -> None:
        while len(self._running) < self.workers and not self._stop.is_set():
            claimed = self.store.claim_next(self.owner)
            if claimed is None:
                return
            pid, scenario, options, kind = claimed
            options.setdefault("time_limit_s", self.default_time_limit_s)
            base = None  # the plan an analysis compares with (what-if, counterfactual)
            if kind != PLAN and options.get("base_plan_id"):
                row = self.store.get_plan(options["base_plan_id"])
                base = row.result if row is not None else None  # deleted: solved again
            recv, send = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(
                target=_job_main,
                args=(send, kind, scenario, options, base),
                name=f"{kind}-{pid[:8]}",
                daemon=True,
            )
            proc.start()
            send.close()
            limit = float(options["time_limit_s"])
            # a what-if job solves twice (the base, then the variant) at most, each within
            # the limit; the other analyses get the limit for the whole job
            solves = 2 if kind == "what-if" else 1
            deadline = time.monotonic() + solves * limit + self.grace_s
            self._running[pid] = _Running(proc, recv, deadline, kind=kind, limit=limit)

    @staticmethod
    def _progress_of(job: _Running, pid: str) -> dict[str, dict[str, Any]]:
        line, job.progress = job.progress, None
        return {pid: line} if line is not None else {}

    def _progress(self) -> dict[str, dict[str, Any]]:
        """The progress lines received since the last heartbeat, by job."""
        out = {}
        for pid, job in self._running.items():
            if job.progress is not None:
                out[pid], job.progress = job.progress, None
        return out

    def _reap(self) -> None:
        for pid, job in list(self._running.items()):
            result: dict[str, Any] | None = None
            try:
                while job.conn.poll():
                    msg = job.conn.recv()
                    if "progress" in msg:
                        job.progress = msg["progress"]
                        continue
                    result = msg
                    break
            except (EOFError, OSError):
                result = None
            if result is not None:
                if job.progress is not None:  # the last line stays with the finished job
                    self.store.heartbeat([pid], self._progress_of(job, pid))
                job.proc.join(timeout=5)
                if result["ok"]:
                    done = result["plan"] if job.kind == PLAN else result["result"]
                    self.store.finish(pid, DONE, done, None)
                else:
                    self.store.finish(pid, FAILED, None, result["problem"])
            elif not job.proc.is_alive():
                self.store.finish(
                    pid,
                    FAILED,
                    None,
                    _problem(
                        500,
                        "Worker died",
                        f"the solver process exited with code {job.proc.exitcode}",
                        "worker-died",
                    )["problem"],
                )
            elif time.monotonic() > job.deadline:
                self._kill(job)
                detail = (
                    "the solver did not stop at its time limit and was stopped"
                    if job.kind == PLAN
                    else f"the {job.kind} did not finish within its time limit of "
                    f"{job.limit:g} s and was stopped; submit it with a longer time_limit_s"
                )
                self.store.finish(
                    pid,
                    FAILED,
                    None,
                    _problem(422, "Time limit exceeded", detail, "time-limit")["problem"],
                )
            elif self.store.wants_cancel(pid):
                self._kill(job)  # the row already says cancelled
            else:
                continue
            job.conn.close()
            del self._running[pid]

    @staticmethod
    def _kill(job: _Running) -> None:
        if job.proc.is_alive():
            job.proc.kill()
        job.proc.join(timeout=5)


class SyncSolver:
    """A warm process pool for synchronous solves."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self._ctx = _context()
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._ctx, initializer=die_with_parent
        )

    async def solve(self, scenario: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return await self.run(solve_payload, scenario, options)

    async def what_if(
        self, key: str, scenario: dict[str, Any], options: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.run(whatif_payload, key, scenario, options)

    async def run(self, fn: Any, *args: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[no-any-return]
        except BrokenProcessPool:
            with self._lock:  # a worker died (e.g. killed by the OS): start a new pool
                self._pool = self._new_pool()
            return _problem(
                503, "Solver unavailable", "a solver process died; retry", "unavailable"
            )

    def alive(self) -> bool:
        return not getattr(self._pool, "_broken", False)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "ANALYSES",
    "CANCELLED",
    "JobRunner",
    "SyncSolver",
    "analysis_payload",
    "solve_payload",
    "whatif_payload",
]
