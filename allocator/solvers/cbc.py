"""COIN-OR CBC as a program: where its binary is, and its binary solution file read back.
Shared by the CLP adapter (clp.py, which runs the binary on an MPS file) and the PuLP
adapter (pulp.py, whose CBC writes the same file); neither adapter imports the other."""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator

import numpy as np


@contextlib.contextmanager
def quiet_deprecations() -> Iterator[None]:
    """PuLP 3.3 warns that PULP_CBC_CMD (the CBC bundled with it) goes away in PuLP 4;
    that is PuLP's roadmap, not the user's problem. COIN_CMD is the fallback for "CBC"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def cbc_binary() -> str | None:
    """PuLP's bundled cbc, else a ``cbc`` on the PATH, else None. (PuLP 3.3 deprecates
    its bundled binary, to be removed in PuLP 4; ``pip install pulp[cbc]`` or a system
    ``cbc`` then takes over; without any, the engine stays with HiGHS.)"""
    path: str | None = None
    try:
        import pulp

        with quiet_deprecations():
            path = pulp.PULP_CBC_CMD().path
    except Exception:
        path = None
    if path and os.path.exists(path) and os.access(path, os.X_OK):
        return str(path)
    return shutil.which("cbc")


def read_cbc_binary_solution(path: str) -> dict[str, np.ndarray] | None:
    """CBC's ``saveSolution`` file: int rows, int columns, double objective, then row
    activities, row duals, column values, reduced costs (doubles, in the order of the MPS
    file PuLP wrote). None when the file is missing or malformed."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if len(raw) < 16:
        return None
    m, n = (int(v) for v in np.frombuffer(raw[:8], dtype=np.int32))
    values = np.frombuffer(raw[16:], dtype=np.float64)
    if m < 0 or n < 0 or values.size != 2 * m + 2 * n:
        return None
    return {
        "row_activity": values[:m].copy(),
        "pi": values[m : 2 * m].copy(),
        "x": values[2 * m : 2 * m + n].copy(),
        "dj": values[2 * m + n :].copy(),
    }
