"""Progress of long work on stderr: a spinner with the current step and the time elapsed,
shown only when stderr is a terminal (pipes, files and ``--json`` consumers see nothing).
rich draws it; it is imported only when a terminal will show it."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    """No terminal: progress is not shown."""


def enabled() -> bool:
    return sys.stderr.isatty() and os.environ.get("ALLOCATOR_PROGRESS", "1") != "0"


@contextlib.contextmanager
def progress(first: str, *, show: bool | None = None) -> Iterator[Report]:
    """``with progress("solving") as report: ... report("round 2: +40 rows")``. The line
    disappears when the block ends, leaving the terminal to the command's own output."""
    if not (enabled() if show is None else show):
        yield _quiet
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(first, total=None)

        def report(message: str) -> None:
            bar.update(task, description=message)

        yield report


@contextlib.contextmanager
def machine_stdout() -> Iterator[None]:
    """While a ``--json`` command runs, file descriptor 1 points at stderr, so whatever a
    solver library prints there (HiGHS' banner through PuLP, CBC's log) cannot mix with the
    JSON; ``sys.stdout`` keeps writing to the real standard output."""
    sys.stdout.flush()
    try:
        bound = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # captured (a test, a notebook)
        bound = False
    if not bound:
        yield
        return
    real = os.dup(1)
    saved = sys.stdout
    sys.stdout = os.fdopen(real, "w", encoding="utf-8", closefd=False)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None).fflush(None)  # C stdio buffers of the libraries
        os.dup2(real, 1)
        os.close(real)
        sys.stdout = saved
