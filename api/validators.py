"""Validator processes: big scenario bodies and workbooks are parsed and validated here,
not in the service's process, each within a deadline.

Two groups of processes, so that no workbook ever delays a JSON body: one process for JSON
bodies from ``bodies.BIG`` bytes on, and ``WORKBOOK_VALIDATORS`` (2) for workbooks. A request
waits for a free process of its group, without blocking the event loop. Each validation has
``VALIDATION_TIME_LIMIT_S`` (60 s): past it, its process is killed and replaced at once, and
the request is answered 413 saying so, so that a slow file holds one process for that long
at most. Each process's address space is capped at ``VALIDATOR_MEMORY_MB`` above what it
starts with (``RLIMIT_AS``, Linux): a body that needs more is a 413, not an exhausted host.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from allocator.errors import Issue

from .problems import ApiError

log = logging.getLogger("allocator.api")
MB = 1024 * 1024


def _start(memory_bytes: int) -> None:
    """A validator process's initializer: die with the service; cap its address space."""
    from .lifeline import die_with_parent

    die_with_parent()
    if memory_bytes <= 0 or not os.path.exists("/proc/self/statm"):
        return
    with open("/proc/self/statm") as f:
        now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = now + memory_bytes
    if hard == resource.RLIM_INFINITY or cap <= hard:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


class _Slot:
    """One validator process (a one-worker pool), replaced when it overruns or dies."""

    def __init__(self, ctx: Any, memory_bytes: int):
        self.ctx, self.memory_bytes = ctx, memory_bytes
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=self.ctx, initializer=_start, initargs=(self.memory_bytes,)
        )

    def replace(self) -> None:
        """Kill the process (whatever it is doing) and start a fresh one."""
        for proc in list(getattr(self.pool, "_processes", {}).values()):
            proc.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new()

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Group:
    def __init__(self, n: int, ctx: Any, memory_bytes: int):
        self.slots = [_Slot(ctx, memory_bytes) for _ in range(n)]
        self.free: asyncio.Queue[_Slot] = asyncio.Queue()
        for s in self.slots:
            self.free.put_nowait(s)


class Validators:
    """The validator processes of a service (started with it, stopped with it)."""

    def __init__(self, workbooks: int, time_limit_s: float, memory_mb: int):
        from .jobs import _context

        ctx, memory = _context(), memory_mb * MB
        self.time_limit_s, self.memory_mb = time_limit_s, memory_mb
        self.groups = {"json": _Group(1, ctx, memory), "xlsx": _Group(workbooks, ctx, memory)}

    def warm_up(self, fn: Any, *args: Any) -> None:
        """Start every process now (at startup), not on the first big body."""
        for group in self.groups.values():
            for s in group.slots:
                s.pool.submit(fn, *args)

    def stop(self) -> None:
        for group in self.groups.values():
            for s in group.slots:
                s.stop()

    async def run(self, kind: str, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in a free process of group ``kind`` within the time limit; past
        it, or when the process dies, a 413 naming ``what`` (the process is replaced)."""
        group = self.groups[kind]
        slot = await group.free.get()
        fut = None
        try:
            fut = slot.pool.submit(fn, *args)
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.time_limit_s)
        except TimeoutError:
            log.warning(
                "validating %s took over %s s: its process is replaced", what, self.time_limit_s
            )
            raise ApiError(
                413,
                "Too slow to validate",
                f"reading and validating {what} took longer than {self.time_limit_s:g} s, the "
                "limit of one validation (ALLOCATOR_VALIDATION_TIME_LIMIT_S); nothing was "
                "stored",
                "validation-time-limit",
                [Issue("", f"over {self.time_limit_s:g} s to read and validate")],
            ) from None
        except BrokenProcessPool:
            log.warning("the validator process died validating %s: it is replaced", what)
            raise ApiError(
                413,
                "Too large to validate",
                f"the process validating {what} ended before it finished (more than "
                f"{self.memory_mb:,} MB, ALLOCATOR_VALIDATOR_MEMORY_MB?); nothing was stored",
                "too-large-to-validate",
                [Issue("", "the validator process ended while reading it")],
            ) from None
        finally:
            # timed out, the request was cancelled, or the process died: a fresh process
            if fut is not None and (not fut.done() or fut.cancelled() or fut.exception()):
                slot.replace()
            group.free.put_nowait(slot)
