"""Fingerprints of the LP and the plan of a scenario, to show that scenarios without
sites build bit-identical LPs and plans to those before issue 27.

Run as a script (``python -m tests.power.fingerprint``) it prints the fingerprints of
every example; ``baseline.json`` holds them as computed on the code before issue 27
(re-taken on main just before issue 27 was merged, when issues 23-26 had changed the plan: moves, the rentals line) by running this same file with that commit's package.
Only APIs that existed then are used here."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# solver timings differ from run to run; everything else must be identical
TIMING = ("time_s", "build_time_s")


def example_scenarios() -> dict[str, object]:
    from allocator.scenario import Scenario
    from allocator.scenario.generate import generate

    out: dict[str, object] = {
        p.name: Scenario.from_file(p) for p in sorted((ROOT / "data").glob("*.json"))
    }
    for seed in (1, 2):  # generated fleets too: stability rows, rentals, many pools
        out[f"generated-{seed}"] = generate(segments=12, pools=5, periods=4, seed=seed)
    return out


def lp_fingerprint(lp: object) -> str:
    h = hashlib.sha256()
    A = lp.A.tocsr()  # type: ignore[attr-defined]
    for a in (
        lp.c,  # type: ignore[attr-defined]
        A.indptr.astype(np.int64),
        A.indices.astype(np.int64),
        A.data,
        lp.row_lower,  # type: ignore[attr-defined]
        lp.row_upper,  # type: ignore[attr-defined]
        lp.col_lower,  # type: ignore[attr-defined]
        lp.col_upper,  # type: ignore[attr-defined]
    ):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr([(b.name, b.start, b.stop) for b in lp.blocks]).encode())  # type: ignore[attr-defined]
    return h.hexdigest()


def plan_fingerprint(plan: object) -> str:
    d = plan.to_dict()  # type: ignore[attr-defined]
    for k in TIMING:
        d["solver"].pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def fingerprints() -> dict[str, dict[str, str]]:
    from allocator import build_lp, solve

    return {
        name: {"lp": lp_fingerprint(build_lp(sc)), "plan": plan_fingerprint(solve(sc))}
        for name, sc in example_scenarios().items()
    }


if __name__ == "__main__":
    json.dump(fingerprints(), sys.stdout, indent=1, sort_keys=True)
