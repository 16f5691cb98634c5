"""Solver processes die with the service.

The service's worker processes are forked from a forkserver (see api.jobs), so their parent
is the forkserver, whose parent is the service. When the service is killed (kill -9, OOM)
nothing tells them, and a pool worker waits for work forever, a job's solver runs on to its
time limit. So:

* the forkserver imports this module (a preload of the forkserver): a thread of its own
  watches the service's pid and ends the forkserver when the service is gone;
* every worker process calls :func:`die_with_parent` first: Linux kills it (SIGKILL, by
  ``prctl(PR_SET_PDEATHSIG)``) the moment its parent, the forkserver, ends, even while
  HiGHS holds the interpreter; a thread watching ``os.getppid()`` is the fallback
  elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_S = 0.2


def _watch(parent: int) -> None:
    """End this process once ``parent`` is no longer its parent (it died: the process
    was re-parented)."""

    def run() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=run, name="lifeline", daemon=True).start()


def die_with_parent() -> None:
    """In a worker process: be killed when the parent process ends."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
    if parent == 1:  # the parent already died before the signal was armed
        os._exit(1)
    _watch(parent)


def _in_forkserver() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return frame.f_code.co_name == "main"
        frame = frame.f_back  # type: ignore[assignment]
    return False


if _in_forkserver():  # imported as the forkserver's preload: end with the service
    _watch(os.getppid())
