"""The scenario behind the LP: its block names, and the map from each row back to its
block, key and the scenario's numbers."""

from __future__ import annotations

import numpy as np

from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays, extra_key_names
from allocator.scenario import Scenario

CONTRACT = "segment-contract"
RND_FLOOR = "rnd-floor"
KIND_FLOOR = "kind-floor"
STABILITY = "segment-stability"
CAPACITY = "pool-capacity"
DEMAND = "segment-demand"
SHARE = "segment-share"
KIND_CAP = "kind-cap"
SEGMENT_GPUS = "segment-gpus"  # a segment's gpu_limits: min_gpus a floor, max_gpus a cap
BUDGET = "gpu-hour-budget"  # policy.gpu_hour_budgets: min a floor, max a cap (GPU-hours)
RENTABLE = "pool-rentable"  # not a row: the upper bound of the rented-GPU column

# blocks whose rows count GPUs (the others count work units)
GPU_BLOCKS = frozenset(
    {CAPACITY, RND_FLOOR, KIND_FLOOR, KIND_CAP, SHARE, STABILITY, RENTABLE, SEGMENT_GPUS}
)
REQUIREMENT_OF_BLOCK = {
    CONTRACT: "contract_min",
    RND_FLOOR: "rnd_min_share",
    KIND_FLOOR: "kind_floors",
    STABILITY: "max_change_share",
    SEGMENT_GPUS: "gpu_limits",  # its lower side only: the cap is a limit
    BUDGET: "gpu_hour_budgets",  # likewise
}
FLOOR_ONLY = frozenset({SEGMENT_GPUS, BUDGET})  # blocks whose upper side is not relaxed
BLOCK_ORDER = {
    b: i
    for i, b in enumerate(
        (
            CONTRACT,
            SEGMENT_GPUS,
            RND_FLOOR,
            KIND_FLOOR,
            BUDGET,
            CAPACITY,
            RENTABLE,
            DEMAND,
            SHARE,
            KIND_CAP,
            STABILITY,
        )
    )
}


class _Domain:
    """Names, numbers and the row → (block, key) map of one scenario's LP."""

    def __init__(self, sc: Scenario, lp: LinearProgram):
        self.sc = sc
        self.lp = lp
        self.arr = ScenarioArrays.of(sc)
        self.T = len(sc.periods)
        self.names = {
            "pool": [p.id for p in sc.pools],
            "segment": [s.id for s in sc.segments],
            "period": sc.period_labels,
            "kind": [k.value for k in KINDS],
            **extra_key_names(sc),
        }
        self.blocks = list(lp.blocks)
        self.starts = np.array([b.start for b in self.blocks], dtype=np.int64)
        cols = lp.columns
        S = self.arr.demand.shape[0]
        # best work units per GPU of each segment in each period (over pools and modes)
        best = np.zeros((S, self.T))
        np.maximum.at(best, (cols.x_segment, cols.x_period), cols.x_units_per_gpu)
        self.best_units = np.where(best > 0, best, 1.0)
        self.capacity = self.arr.usable + self.arr.rentable  # (P, T), the stability basis

    def locate(self, row: int) -> tuple[str, int, dict[str, int]]:
        b = self.blocks[int(np.searchsorted(self.starts, row, side="right")) - 1]
        j = row - b.start
        return b.name, j, {dim: int(ix[j]) for dim, ix in b.keys.items()}

    def key(self, ix: dict[str, int]) -> dict[str, str]:
        return {dim: self.names[dim][i] for dim, i in ix.items() if dim in self.names}

    def rows_of(self, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        b = self.lp.block(name)
        if b is None:
            return np.zeros(0, dtype=np.int64), {}
        return np.arange(b.start, b.stop), dict(b.keys)

    def hard_contract_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, keys = self.rows_of(CONTRACT)
        if rows.size == 0:
            return rows, rows, rows
        s, t = keys["segment"], keys["period"]
        hard = self.arr.contract_hard[s]
        return rows[hard], s[hard], t[hard]

    def floor_rows(self, name: str, lower: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows of block ``name`` (segment-gpus, gpu-hour-budget) with a positive lower
        bound in ``lower`` (the system's row lower bounds): the floors, and their keys."""
        rows, keys = self.rows_of(name)
        if rows.size == 0:
            return rows, keys
        keep = lower[rows] > 0
        return rows[keep], {k: v[keep] for k, v in keys.items()}

    def gpu_limit_index(self, s: int, a: int) -> int:
        """Which of segment ``s``'s gpu_limits a segment-gpus row of accelerator index
        ``a`` (the last index: every type) comes from."""
        acc = self.names["accelerator"][a]
        want = None if a == len(self.names["accelerator"]) - 1 else acc
        for j, lim in enumerate(self.sc.segments[s].gpu_limits):
            if lim.accelerator == want:
                return j
        raise KeyError((s, a))  # pragma: no cover - every row comes from a limit

    def fleet_gpus(self) -> np.ndarray:
        return self.arr.gpus.sum(axis=0)

    def stability_basis(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        cap = self.capacity
        return np.maximum(cap[p, t], cap[p, t - 1])
