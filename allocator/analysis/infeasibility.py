"""Infeasibility in domain words: which hard requirements conflict, and the smallest change
that makes the scenario feasible.

Only four things in a scenario can make it infeasible, because an allocation of zero GPUs
meets every other constraint: hard contract minimums (``contract_min`` with
``contract_hard``), the R&D floor (``policy.rnd_min_share``), kind floors
(``policy.kind_floors``) and, together with one of those, the stability limit
(``policy.max_change_share``). :func:`diagnose` answers two questions about them.

**What conflicts.** HiGHS computes an irreducible infeasible subsystem (IIS) of the LP:
a set of rows (and column bounds) that cannot hold together although any proper subset
can. Each row is mapped back to its block and key (``segment-contract[cloud-a, 2026-Q2]``,
``pool-capacity[h100, 2026-Q2]``) and said in a sentence with the scenario's numbers. The
conflict's headline adds the rows up the way a proof of infeasibility does (a Farkas
certificate: the multipliers are the duals of an elastic LP over the IIS), so it reads
"the hard contracts of segments a and b in 2026-Q2 need 12,400 GPUs, but the capacity of
pools h100 and b200 after headroom allows only 9,800". Up to ``max_conflicts`` conflicts
are reported: after each one its requirements are set aside and the rest is checked again.

**What to change.** An elastic LP lowers the requirements as little as possible:

* one slack per hard contract row (work units) and per kind-floor row (GPUs),
* one variable for the R&D share and one for the stability share, since each is a single
  number in the scenario (a per-row slack would report a change the scenario cannot
  express),

minimised lexicographically in ``order`` (most protected first, by default contracts,
then the R&D floor, then kind floors, then stability): contracts are lowered only as far
as no change of policy can make room; within one requirement, contract slack is counted in
GPU-equivalents (work units over the segment's best work per GPU in the period), and ties
are broken by the smallest largest relative cut, so contracts that compete for the same
pools are lowered by the same share. Each reported change is minimal: lowering any one of
them by less, the others as reported, leaves the scenario infeasible.
:func:`apply_relaxation` writes the changes into a copy of the scenario.

A scenario with whole allocation units (``allocation_unit_gpus``, a MILP) is diagnosed on
its LP relaxation (fractional GPUs); if that is feasible, the whole units are the cause
and the diagnosis says so without a relaxation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sp

from allocator.errors import NumericalError
from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, ScenarioArrays
from allocator.lp.build import build_lp
from allocator.scenario import Scenario, per_period
from allocator.solvers.highs_model import new_highs

# the requirements a relaxation may change, most protected first (the default order)
REQUIREMENTS = ("contract_min", "rnd_min_share", "kind_floors", "max_change_share")

CONTRACT = "segment-contract"
RND_FLOOR = "rnd-floor"
KIND_FLOOR = "kind-floor"
STABILITY = "segment-stability"
CAPACITY = "pool-capacity"
DEMAND = "segment-demand"
SHARE = "segment-share"
KIND_CAP = "kind-cap"
RENTABLE = "pool-rentable"  # not a row: the upper bound of the rented-GPU column

# blocks whose rows count GPUs (the others count work units)
GPU_BLOCKS = frozenset({CAPACITY, RND_FLOOR, KIND_FLOOR, KIND_CAP, SHARE, STABILITY, RENTABLE})
REQUIREMENT_OF_BLOCK = {
    CONTRACT: "contract_min",
    RND_FLOOR: "rnd_min_share",
    KIND_FLOOR: "kind_floors",
    STABILITY: "max_change_share",
}
BLOCK_ORDER = {
    b: i
    for i, b in enumerate(
        (CONTRACT, RND_FLOOR, KIND_FLOOR, CAPACITY, RENTABLE, DEMAND, SHARE, KIND_CAP, STABILITY)
    )
}
# the sides of an IIS row or column bound
LOWER = int(highspy.IisBoundStatus.kIisBoundStatusLower)
UPPER = int(highspy.IisBoundStatus.kIisBoundStatusUpper)
BOXED = int(highspy.IisBoundStatus.kIisBoundStatusBoxed)
MARGIN = 1e-6  # relative margin added to each relaxation so solver tolerances accept it
TOL = 1e-9


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Conflict:
    """One constraint of a minimal conflicting set.

    ``role`` is ``"requirement"`` (a hard contract or a floor: the side that needs
    GPUs) or ``"limit"`` (capacity, rentals, demand, caps, share and stability limits: the
    side that holds them back). ``value`` is the constraint's bound in ``unit``; ``gpus``
    its weight in the conflict's sum, in GPUs (or GPU-equivalents, see
    :class:`ConflictGroup`).
    """

    group: int
    constraint: str  # block name, or "pool-rentable" for a rental limit
    key: dict[str, str]
    bound: str  # "lower" or "upper": the side of the constraint in conflict
    role: str  # "requirement" or "limit"
    requirement: str | None  # scenario field it comes from (contract_min, …) if relaxable
    value: float
    unit: str
    gpus: float | None
    sentence: str

    @property
    def label(self) -> str:
        return f"{self.constraint}[{','.join(self.key.values())}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConflictGroup:
    """One minimal conflicting set, added up: its requirements need ``need``, its limits
    allow ``allow`` (``need > allow``), both in ``unit``: ``"GPUs"`` when every pool in
    the conflict counts alike, otherwise ``"GPU-equivalents"`` (a GPU of each pool
    weighted by the work it does for these requirements, the most valuable counting 1)."""

    group: int
    need: float
    allow: float
    shortfall: float
    unit: str
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Relaxation:
    """One change to the scenario: ``path`` is the field (``segments[1].contract_min[2]``,
    ``policy.rnd_min_share``, ``policy.kind_floors.rnd[0]``, ``policy.max_change_share``),
    ``current`` its value, ``relaxed`` the value that (with the other changes) makes the
    scenario feasible, ``change = relaxed - current`` in ``unit``; ``gpus`` the size of the
    change in GPUs (GPU-equivalents at the segment's best throughput for a contract)."""

    requirement: str  # contract_min, rnd_min_share, kind_floors or max_change_share
    path: str
    key: dict[str, str]
    current: float
    relaxed: float
    change: float
    unit: str
    gpus: float | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    scenario: str
    feasible: bool  # the scenario as given (its LP relaxation for whole units) is feasible
    conflicts: list[Conflict] = field(default_factory=list)
    groups: list[ConflictGroup] = field(default_factory=list)
    relaxation: list[Relaxation] = field(default_factory=list)
    relaxable: bool = True  # the requirements in ``order`` can be relaxed to feasibility
    order: tuple[str, ...] = REQUIREMENTS
    message: str = ""

    @property
    def conflict_set(self) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        """The conflicts as a set of (constraint, sorted key items), for comparisons."""
        return {(c.constraint, tuple(sorted(c.key.items()))) for c in self.conflicts}

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "feasible": self.feasible,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "groups": [g.to_dict() for g in self.groups],
            "relaxation": [r.to_dict() for r in self.relaxation],
            "relaxable": self.relaxable,
            "order": list(self.order),
            "message": self.message,
        }

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"Diagnosis({self.scenario!r}, feasible={self.feasible}, "
            f"conflicts={len(self.conflicts)}, relaxation={len(self.relaxation)})"
        )


# --------------------------------------------------------------------------- highspy
@dataclass
class _System:
    """A feasibility system L <= A x <= U, l <= x <= u (CSR A)."""

    A: sp.csr_matrix
    rl: np.ndarray
    ru: np.ndarray
    cl: np.ndarray
    cu: np.ndarray


def _highs(sys_: _System, cost: np.ndarray | None = None) -> highspy.Highs:
    inf = highspy.kHighsInf
    A = sp.csr_matrix(sys_.A)
    m, n = A.shape
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = np.zeros(n) if cost is None else np.asarray(cost, dtype=float)
    lp.col_lower_ = np.clip(sys_.cl, -inf, inf)
    lp.col_upper_ = np.clip(sys_.cu, -inf, inf)
    lp.row_lower_ = np.clip(sys_.rl, -inf, inf)
    lp.row_upper_ = np.clip(sys_.ru, -inf, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = m
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    h = new_highs()
    h.passModel(lp)
    return h


def _run(h: highspy.Highs) -> bool:
    """Solve; True if optimal (feasible), False if infeasible; raise otherwise."""
    h.run()
    status = h.getModelStatus()
    if status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kModelEmpty):
        return True
    if status in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    ):
        return False
    raise NumericalError(f"infeasibility analysis: HiGHS stopped with {status.name}")


def _is_feasible(sys_: _System) -> bool:
    return _run(_highs(sys_))


def _iis(sys_: _System) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Rows and columns of an IIS with their bound sides (2 lower, 3 upper, 4 both), or
    None when HiGHS cannot find one."""
    h = _highs(sys_)
    # from an elastic LP, then a deletion filter over its rows: irreducible, and fast
    # (the deletion filter over the whole LP took 1.7 s on hyperscaler.json, this 0.04 s)
    strategy = int(highspy.IisStrategy.kIisStrategyFromLp) | int(
        highspy.IisStrategy.kIisStrategyIrreducible
    )
    h.setOptionValue("iis_strategy", strategy)
    if _run(h):
        return None
    status, iis = h.getIis()
    if status == highspy.HighsStatus.kError or not iis.valid_ or len(iis.row_index_) == 0:
        return None
    return (
        np.asarray(iis.row_index_, dtype=np.int64),
        np.asarray(iis.row_bound_, dtype=np.int64),
        np.asarray(iis.col_index_, dtype=np.int64),
        np.asarray(iis.col_bound_, dtype=np.int64),
    )


# ------------------------------------------------------------------------ the domain
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

    def fleet_gpus(self) -> np.ndarray:
        return self.arr.gpus.sum(axis=0)

    def stability_basis(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        cap = self.capacity
        return np.maximum(cap[p, t], cap[p, t - 1])


# -------------------------------------------------------------------------- numbers
def _num(x: float) -> str:
    """A number as a planner reads it: thousands separated, few decimals."""
    if not math.isfinite(x):
        return str(x)
    a = abs(x)
    if 0 < a < 0.005:
        return f"{x:.2g}"
    digits = 0 if a >= 1000 else 1 if a >= 100 else 2
    s = f"{x:,.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pct(x: float) -> str:
    s = f"{100 * x:.2f}".rstrip("0").rstrip(".")
    return f"{s}%"


def _gpus(x: float) -> str:
    s = _num(x)
    return f"{s} GPU" if s == "1" else f"{s} GPUs"


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


# ----------------------------------------------------------------------- sentences
def _describe(
    dom: _Domain, block: str, ix: dict[str, int], side: str, value: float, here: str
) -> tuple[str, str]:
    """(unit, sentence) of one constraint in the conflict; ``here`` notes its weight in
    the conflict's sum, e.g. " (10 GPUs in this conflict)", or is empty."""
    sc, arr = dom.sc, dom.arr
    name = dom.names
    t = ix.get("period")
    per = name["period"][t] if t is not None else ""
    if block == CONTRACT:
        seg = sc.segments[ix["segment"]]
        return seg.unit, (
            f"Segment {seg.id} ({seg.kind.value}) has a hard contract for at least "
            f"{_num(value)} {seg.unit} in {per}{here}."
        )
    if block == DEMAND:
        seg = sc.segments[ix["segment"]]
        return seg.unit, (
            f"Segment {seg.id} ({seg.kind.value}) wants only {_num(value)} {seg.unit} in "
            f"{per}{here}: it cannot use more GPUs than that work takes."
        )
    if block == RND_FLOOR:
        assert t is not None
        share = sc.policy.rnd_min_share
        return "GPUs", (
            f"The R&D floor needs {_gpus(value)} for R&D in {per}{here}: policy.rnd_min_share "
            f"{_pct(share)} of the fleet's {_gpus(dom.fleet_gpus()[t])}."
        )
    if block == KIND_FLOOR:
        kind = name["kind"][ix["kind"]]
        return "GPUs", (
            f"The {kind} floor (policy.kind_floors.{kind}) needs {_gpus(value)} for "
            f"{kind} segments in {per}{here}."
        )
    if block == KIND_CAP:
        kind = name["kind"][ix["kind"]]
        return "GPUs", (
            f"The {kind} cap (policy.kind_caps.{kind}) allows at most {_gpus(value)} "
            f"for {kind} segments in {per}{here}."
        )
    if block == CAPACITY:
        p = ix["pool"]
        assert t is not None
        head = arr.headroom[p]
        less = f", {_gpus(arr.gpus[p, t])} less {_pct(head)} headroom" if head > 0 else ""
        return "GPUs", (
            f"Pool {name['pool'][p]} has {_num(value)} usable GPUs in {per}{less}{here}."
        )
    if block == RENTABLE:
        return "GPUs", (
            f"Pool {name['pool'][ix['pool']]} can rent at most {_gpus(value)} in {per}{here}."
        )
    if block == SHARE:
        share = sc.policy.max_segment_share or 0.0
        return "GPUs", (
            f"policy.max_segment_share ({_pct(share)}) holds segment "
            f"{name['segment'][ix['segment']]} to {_gpus(value)} of pool "
            f"{name['pool'][ix['pool']]} in {per}{here}."
        )
    if block == STABILITY:
        assert t is not None
        share = sc.policy.max_change_share or 0.0
        basis = float(dom.stability_basis(np.array([ix["pool"]]), np.array([t]))[0])
        verb = "grow" if side == "upper" else "shrink"
        return "GPUs", (
            f"Stability (policy.max_change_share {_pct(share)} of {_gpus(basis)}) lets "
            f"segment {name['segment'][ix['segment']]}'s GPUs in pool {name['pool'][ix['pool']]} "
            f"{verb} by at most {_num(abs(value))} from {name['period'][t - 1]} to {per}{here}."
        )
    key = ",".join(dom.key(ix).values())
    return "units", f"Constraint {block}[{key}]: {side} bound {_num(value)}{here}."


def _phrases(items: list[Conflict]) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Short noun phrases for the headline, each with whether it is plural:
    (requirements, limits)."""

    def grouped(block: str, dim: str) -> tuple[list[str], list[str]]:
        sel = [c for c in items if c.constraint == block]
        return (
            list(dict.fromkeys(c.key[dim] for c in sel if dim in c.key)),
            list(dict.fromkeys(c.key["period"] for c in sel if "period" in c.key)),
        )

    def kinds(block: str) -> list[str]:
        return list(dict.fromkeys(c.key["kind"] for c in items if c.constraint == block))

    needs: list[tuple[str, bool]] = []
    limits: list[tuple[str, bool]] = []
    for block in dict.fromkeys(c.constraint for c in items):
        if block == CONTRACT:
            segs, pers = grouped(block, "segment")
            many = len(segs) > 1
            needs.append(
                (
                    f"the hard {'contracts' if many else 'contract'} of "
                    f"{_plural('segment', len(segs))} {_join(segs)} in {_join(pers)}",
                    many,
                )
            )
        elif block == RND_FLOOR:
            _, pers = grouped(block, "period")
            needs.append((f"the R&D floor in {_join(pers)}", False))
        elif block == KIND_FLOOR:
            for kind in kinds(block):
                pers = [
                    c.key["period"]
                    for c in items
                    if c.constraint == block and c.key["kind"] == kind
                ]
                needs.append((f"the {kind} floor in {_join(pers)}", False))
        elif block == CAPACITY:
            pools, pers = grouped(block, "pool")
            limits.append(
                (
                    f"the usable capacity of {_plural('pool', len(pools))} {_join(pools)} "
                    f"in {_join(pers)}",
                    False,
                )
            )
        elif block == RENTABLE:
            pools, pers = grouped(block, "pool")
            limits.append((f"the rentable GPUs of {_join(pools)} in {_join(pers)}", True))
        elif block == DEMAND:
            segs, pers = grouped(block, "segment")
            limits.append(
                (
                    f"the demand of {_plural('segment', len(segs))} {_join(segs)} in {_join(pers)}",
                    False,
                )
            )
        elif block == KIND_CAP:
            for kind in kinds(block):
                pers = [
                    c.key["period"]
                    for c in items
                    if c.constraint == block and c.key["kind"] == kind
                ]
                limits.append((f"the {kind} cap in {_join(pers)}", False))
        elif block == SHARE:
            segs, _ = grouped(block, "segment")
            limits.append((f"the max_segment_share limit on {_join(segs)}", False))
        elif block == STABILITY:
            segs, _ = grouped(block, "segment")
            limits.append((f"the stability limit (max_change_share) on {_join(segs)}", False))
        else:
            for c in items:
                if c.constraint == block:
                    (needs if c.role == "requirement" else limits).append((c.label, False))
    return needs, limits


def _subject(phrases: list[tuple[str, bool]], singular: str, plural: str) -> str:
    many = len(phrases) > 1 or any(p for _, p in phrases)
    return f"{_join([t for t, _ in phrases])} {plural if many else singular}"


# -------------------------------------------------------------------- conflicts (IIS)
def _certificate(
    sys_: _System, rows: np.ndarray, rside: np.ndarray, cols: np.ndarray, cside: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Farkas multipliers of an IIS: the duals of min Σ slack over the IIS alone.

    Returns (row weight >= 0, row side 2/3, column weight >= 0, column side 2/3)."""
    inf = np.inf
    sub = sys_.A[rows]
    used = np.union1d(np.unique(sub.indices), cols)
    sub = sub[:, used]
    n, m = used.size, rows.size
    cl, cu = np.full(n, -inf), np.full(n, inf)
    pos = np.searchsorted(used, cols)
    lo_side = (cside == LOWER) | (cside == BOXED)
    up_side = (cside == UPPER) | (cside == BOXED)
    cl[pos[lo_side]] = sys_.cl[cols[lo_side]]
    cu[pos[up_side]] = sys_.cu[cols[up_side]]
    rl = np.where((rside == LOWER) | (rside == BOXED), sys_.rl[rows], -inf)
    ru = np.where((rside == UPPER) | (rside == BOXED), sys_.ru[rows], inf)
    # elastic columns: +e on every lower side, -e on every upper side
    lo_rows = np.nonzero(np.isfinite(rl))[0]
    up_rows = np.nonzero(np.isfinite(ru))[0]
    k = lo_rows.size + up_rows.size
    E = sp.csr_matrix(
        (
            np.concatenate([np.ones(lo_rows.size), -np.ones(up_rows.size)]),
            (np.concatenate([lo_rows, up_rows]), np.arange(k)),
        ),
        shape=(m, k),
    )
    elastic = _System(
        sp.hstack([sub, E]).tocsr(),
        rl,
        ru,
        np.concatenate([cl, np.zeros(k)]),
        np.concatenate([cu, np.full(k, inf)]),
    )
    h = _highs(elastic, np.concatenate([np.zeros(n), np.ones(k)]))
    if not _run(h):  # pragma: no cover - the elastic system is always feasible
        raise NumericalError("infeasibility analysis: the elastic IIS system is infeasible")
    sol = h.getSolution()
    rd = np.asarray(sol.row_dual, dtype=float)
    cd = np.asarray(sol.col_dual, dtype=float)[:n][pos]
    return np.abs(rd), np.where(rd >= 0, LOWER, UPPER), np.abs(cd), np.where(cd >= 0, LOWER, UPPER)


def _conflict_group(
    dom: _Domain, sys_: _System, group: int, iis: tuple[np.ndarray, ...]
) -> tuple[list[Conflict], ConflictGroup]:
    rows, rside, cols, cside = iis
    weight, side, cweight, _ = _certificate(sys_, rows, rside, cols, cside)
    boxed = rside == BOXED
    rside = np.where(boxed, side, rside)
    cols_ = dom.lp.columns
    r_lo, r_hi = cols_.r_offset, cols_.u_offset
    # items: IIS rows, and upper bounds of rented-GPU columns (rental limits)
    raw: list[tuple[str, dict[str, int], str, float, float]] = []
    for i, r in enumerate(rows):
        block, _, ix = dom.locate(int(r))
        s = "lower" if rside[i] == LOWER else "upper"
        bound = float(sys_.rl[r] if s == "lower" else sys_.ru[r])
        raw.append((block, ix, s, bound, float(weight[i] * abs(bound))))
    for j, c in enumerate(cols):
        if r_lo <= c < r_hi and cside[j] in (UPPER, BOXED) and math.isfinite(sys_.cu[c]):
            k = int(c - r_lo)
            ix = {"pool": int(cols_.r_pool[k]), "period": int(cols_.r_period[k])}
            raw.append((RENTABLE, ix, "upper", float(sys_.cu[c]), float(cweight[j] * sys_.cu[c])))
    # normalise: the largest multiplier of a GPU-counting constraint counts 1
    mult = [w / abs(v) for (b, _, _, v, w) in raw if b in GPU_BLOCKS and abs(v) > 0]
    norm = max(mult) if mult else max((w / abs(v) for *_, v, w in raw if abs(v) > 0), default=1.0)
    norm = norm if norm > 0 else 1.0
    uniform = bool(mult) and all(abs(m - norm) <= 1e-6 * norm for m in mult)
    unit = "GPUs" if uniform else "GPU-equivalents"

    items: list[Conflict] = []
    need = allow = 0.0
    for block, ix, s, bound, w in raw:
        contribution = w / norm
        requirement_side = block in (CONTRACT, RND_FLOOR, KIND_FLOOR) and s == "lower"
        if requirement_side:
            need += contribution if bound >= 0 else -contribution
        else:
            allow += contribution if (s == "upper") == (bound >= 0) else -contribution
        here = ""
        if unit != "GPUs":
            here = f" ({_num(contribution)} GPU-equivalents in this conflict)"
        elif block not in GPU_BLOCKS:
            here = f" ({_gpus(contribution)} in this conflict)"
        u, sentence = _describe(dom, block, ix, s, bound, here)
        items.append(
            Conflict(
                group=group,
                constraint=block,
                key=dom.key(ix),
                bound=s,
                role="requirement" if requirement_side else "limit",
                requirement=REQUIREMENT_OF_BLOCK.get(block),
                value=bound,
                unit=u,
                gpus=contribution,
                sentence=sentence,
            )
        )
    items.sort(key=lambda c: (c.role != "requirement", BLOCK_ORDER.get(c.constraint, 99)))
    needs, limits = _phrases(items)
    short = need - allow
    if needs and limits:
        head = (
            f"{_subject(needs, 'needs', 'need')} {_num(need)} {unit}, but "
            f"{_subject(limits, 'allows', 'allow')} only {_num(allow)} ({_num(short)} short)."
        )
    else:
        head = (
            "These constraints cannot all hold at once: "
            + _join([t for t, _ in needs + limits])
            + "."
        )
    if not uniform:
        pools: dict[str, float] = {}
        for block, ix, _, v, w in raw:
            if block == CAPACITY and abs(v) > 0:
                pools.setdefault(dom.names["pool"][ix["pool"]], w / abs(v) / norm)
        if pools:
            weights = ", ".join(f"{p} {_num(m)}" for p, m in pools.items())
            head += (
                f" A GPU-equivalent weighs each pool's GPUs by the work they do for these "
                f"requirements: {weights}."
            )
    head = head[0].upper() + head[1:]
    return items, ConflictGroup(group, need, allow, short, unit, head)


# ----------------------------------------------------------------------- relaxation
@dataclass
class _Elastic:
    """The LP with elastic columns for every relaxable requirement."""

    sys: _System
    cols: dict[str, np.ndarray]  # requirement -> elastic column indices
    weight: np.ndarray  # objective weight of every column (0 for the LP's own)
    scale: np.ndarray  # per elastic column: its bound (for relative cuts), 0 elsewhere
    contract: tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, segments, periods
    kind_floor: tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, kinds, periods
    rnd_rows: np.ndarray
    stab: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rows, segment, pool, period
    stab_basis: np.ndarray


def _elastic(dom: _Domain, sys_: _System, order: Sequence[str]) -> _Elastic:
    m, n = sys_.A.shape
    pol = dom.sc.policy
    c_rows, c_seg, c_per = dom.hard_contract_rows()
    kf_rows, kf_keys = dom.rows_of(KIND_FLOOR)
    rnd_rows, rnd_keys = dom.rows_of(RND_FLOOR)
    st_rows, st_keys = dom.rows_of(STABILITY)

    e_rows: list[np.ndarray] = []
    e_cols: list[np.ndarray] = []
    e_vals: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    weight: list[np.ndarray] = []
    scale: list[np.ndarray] = []
    cols: dict[str, np.ndarray] = {}
    k = 0

    def add(
        name: str,
        rows: np.ndarray,
        colix: np.ndarray,
        vals: np.ndarray,
        ub: np.ndarray,
        w: np.ndarray,
        sc_: np.ndarray,
    ) -> None:
        nonlocal k
        e_rows.append(rows)
        e_cols.append(colix + k)
        e_vals.append(vals)
        upper.append(ub if name in order else np.zeros_like(ub))
        weight.append(w)
        scale.append(sc_)
        cols[name] = n + k + np.arange(ub.size)
        k += ub.size

    if c_rows.size:
        L = sys_.rl[c_rows]
        add(
            "contract_min",
            c_rows,
            np.arange(c_rows.size),
            np.ones(c_rows.size),
            L,
            1.0 / dom.best_units[c_seg, c_per],
            L,
        )
    if kf_rows.size:
        L = sys_.rl[kf_rows]
        add(
            "kind_floors",
            kf_rows,
            np.arange(kf_rows.size),
            np.ones(kf_rows.size),
            L,
            np.ones(kf_rows.size),
            L,
        )
    if rnd_rows.size:
        G = dom.fleet_gpus()[rnd_keys["period"]]
        add(
            "rnd_min_share",
            rnd_rows,
            np.zeros(rnd_rows.size, dtype=np.int64),
            G,
            np.array([pol.rnd_min_share]),
            np.ones(1),
            np.array([pol.rnd_min_share]),
        )
    st_basis = np.zeros(0)
    rl, ru = sys_.rl.copy(), sys_.ru.copy()
    A_rows = [sys_.A]
    if st_rows.size:
        st_basis = dom.stability_basis(st_keys["pool"], st_keys["period"])
        # the ranged row splits: x_t - x_{t-1} - M δ <= Δ (kept) and ... + M δ >= -Δ (new)
        add(
            "max_change_share",
            np.concatenate([st_rows, m + np.arange(st_rows.size)]),
            np.zeros(2 * st_rows.size, dtype=np.int64),
            np.concatenate([-st_basis, st_basis]),
            np.array([1.0 - (pol.max_change_share or 0.0)]),
            np.ones(1),
            np.ones(1),
        )
        A_rows.append(sys_.A[st_rows])
        rl = np.concatenate([rl, sys_.rl[st_rows]])
        ru = np.concatenate([ru, np.full(st_rows.size, np.inf)])
        rl[st_rows] = -np.inf
    m_all = m + (st_rows.size if st_rows.size else 0)
    E = sp.csr_matrix(
        (
            np.concatenate(e_vals) if e_vals else np.zeros(0),
            (
                np.concatenate(e_rows) if e_rows else np.zeros(0, dtype=np.int64),
                np.concatenate(e_cols) if e_cols else np.zeros(0, dtype=np.int64),
            ),
        ),
        shape=(m_all, k),
    )
    A = sp.hstack([sp.vstack(A_rows), E]).tocsr()
    ub = np.concatenate(upper) if upper else np.zeros(0)
    return _Elastic(
        sys=_System(
            A, rl, ru, np.concatenate([sys_.cl, np.zeros(k)]), np.concatenate([sys_.cu, ub])
        ),
        cols=cols,
        weight=np.concatenate([np.zeros(n), *weight]) if weight else np.zeros(n),
        scale=np.concatenate([np.zeros(n), *scale]) if scale else np.zeros(n),
        contract=(c_rows, c_seg, c_per),
        kind_floor=(
            kf_rows,
            kf_keys.get("kind", np.zeros(0, dtype=np.int64)),
            kf_keys.get("period", np.zeros(0, dtype=np.int64)),
        ),
        rnd_rows=rnd_rows,
        stab=(
            st_rows,
            st_keys.get("segment", np.zeros(0, dtype=np.int64)),
            st_keys.get("pool", np.zeros(0, dtype=np.int64)),
            st_keys.get("period", np.zeros(0, dtype=np.int64)),
        ),
        stab_basis=st_basis,
    )


def _minimise(el: _Elastic, order: Sequence[str]) -> np.ndarray | None:
    """Lexicographic minimum of the elastic columns in ``order``; the solution, or None
    when no relaxation of those requirements is enough."""
    h = _highs(el.sys)
    ncol = el.sys.A.shape[1]
    every = np.arange(ncol, dtype=np.int32)
    if not _run(h):
        return None
    for name in order:
        idx = el.cols.get(name)
        if idx is None or idx.size == 0:
            continue
        cost = np.zeros(ncol)
        cost[idx] = el.weight[idx]
        h.changeColsCost(ncol, every, cost)
        if not _run(h):  # pragma: no cover - each phase starts from a feasible point
            raise NumericalError(f"infeasibility analysis: relaxing {name} failed")
        opt = float(h.getInfo().objective_function_value)
        h.addRow(
            -highspy.kHighsInf,
            opt + 1e-9 * max(1.0, abs(opt)),
            idx.size,
            idx.astype(np.int32),
            el.weight[idx],
        )
        if idx.size > 1 and opt > TOL:
            # several rows lowered: spread the cut, smallest largest share first
            h.addVar(0.0, 1.0)
            z = ncol
            ncol += 1
            every = np.arange(ncol, dtype=np.int32)
            for i in idx:
                h.addRow(
                    -highspy.kHighsInf,
                    0.0,
                    2,
                    np.array([i, z], dtype=np.int32),
                    np.array([1.0, -float(el.scale[i])]),
                )
            cost = np.zeros(ncol)
            cost[z] = 1.0
            h.changeColsCost(ncol, every, cost)
            if not _run(h):  # pragma: no cover
                raise NumericalError(f"infeasibility analysis: spreading {name} failed")
            zstar = float(np.asarray(h.getSolution().col_value)[z])
            h.changeColBounds(z, 0.0, min(1.0, zstar + 1e-9))
    h.changeColsCost(ncol, every, np.zeros(ncol))
    return np.asarray(h.getSolution().col_value)[: el.sys.A.shape[1]]


def _relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    sc, names = dom.sc, dom.names
    out: list[Relaxation] = []
    n_lp = dom.lp.num_cols
    act = el.sys.A[:, :n_lp] @ x[:n_lp]

    def grown(v: float, cap: float) -> float:
        return min(cap, v * (1 + MARGIN) + 1e-12)

    idx = el.cols.get("contract_min")
    rows, segs, pers = el.contract
    if idx is not None:
        for j, (r, s, t) in enumerate(zip(rows, segs, pers, strict=True)):
            L = float(el.sys.rl[r])
            cut = float(x[idx[j]])
            if cut <= TOL * max(1.0, L):
                continue
            cut = grown(cut, L)
            seg = sc.segments[s]
            g = cut / dom.best_units[s, t]
            out.append(
                Relaxation(
                    requirement="contract_min",
                    path=f"segments[{s}].contract_min[{t}]",
                    key={"segment": seg.id, "period": names["period"][t]},
                    current=L,
                    relaxed=L - cut,
                    change=-cut,
                    unit=seg.unit,
                    gpus=g,
                    sentence=(
                        f"Lower the hard contract minimum of segment {seg.id} in "
                        f"{names['period'][t]} from {_num(L)} to {_num(L - cut)} {seg.unit} "
                        f"(-{_num(cut)} {seg.unit}, about {_gpus(g)} at its best throughput)."
                    ),
                )
            )
    idx = el.cols.get("rnd_min_share")
    if idx is not None and x[idx[0]] > TOL:
        share = sc.policy.rnd_min_share
        d = grown(float(x[idx[0]]), share)
        G = dom.fleet_gpus()
        floor_rows = el.rnd_rows
        slack = act[floor_rows] - (share - d) * G
        t = int(np.argmin(slack))  # the period whose lowered floor binds
        out.append(
            Relaxation(
                requirement="rnd_min_share",
                path="policy.rnd_min_share",
                key={"period": names["period"][t]},
                current=share,
                relaxed=share - d,
                change=-d,
                unit="share of the fleet's GPUs",
                gpus=float(d * G[t]),
                sentence=(
                    f"Lower policy.rnd_min_share from {_pct(share)} to {_pct(share - d)}: the "
                    f"R&D floor in {names['period'][t]} falls from {_num(share * G[t])} to "
                    f"{_num((share - d) * G[t])} GPUs."
                ),
            )
        )
    idx = el.cols.get("kind_floors")
    rows, kinds, pers = el.kind_floor
    if idx is not None:
        for j, (r, k, t) in enumerate(zip(rows, kinds, pers, strict=True)):
            L = float(el.sys.rl[r])
            cut = float(x[idx[j]])
            if cut <= TOL * max(1.0, L):
                continue
            cut = grown(cut, L)
            kind = names["kind"][k]
            out.append(
                Relaxation(
                    requirement="kind_floors",
                    path=f"policy.kind_floors.{kind}[{t}]",
                    key={"kind": kind, "period": names["period"][t]},
                    current=L,
                    relaxed=L - cut,
                    change=-cut,
                    unit="GPUs",
                    gpus=cut,
                    sentence=(
                        f"Lower the {kind} floor in {names['period'][t]} from {_num(L)} to "
                        f"{_num(L - cut)} GPUs (-{_num(cut)})."
                    ),
                )
            )
    idx = el.cols.get("max_change_share")
    if idx is not None and x[idx[0]] > TOL:
        share = sc.policy.max_change_share or 0.0
        d = grown(float(x[idx[0]]), 1.0 - share)
        rows, segs, pools, pers = el.stab
        move = np.abs(act[rows])
        j = int(np.argmax(move / np.maximum(el.stab_basis, TOL)))
        basis = float(el.stab_basis[j])
        s, p, t = int(segs[j]), int(pools[j]), int(pers[j])
        out.append(
            Relaxation(
                requirement="max_change_share",
                path="policy.max_change_share",
                key={
                    "segment": names["segment"][s],
                    "pool": names["pool"][p],
                    "period": names["period"][t],
                },
                current=share,
                relaxed=share + d,
                change=d,
                unit="share of a pool's GPUs",
                gpus=d * basis,
                sentence=(
                    f"Raise policy.max_change_share from {_pct(share)} to {_pct(share + d)}: "
                    f"segment {names['segment'][s]}'s GPUs in pool {names['pool'][p]} may then "
                    f"change by {_num((share + d) * basis)} instead of {_num(share * basis)} "
                    f"from {names['period'][t - 1]} to {names['period'][t]}."
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------- public
def _as_scenario(scenario: Scenario | Mapping[str, Any] | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(dict(scenario))
    return Scenario.from_file(scenario)


def _system(lp: LinearProgram) -> _System:
    return _System(
        sp.csr_matrix(lp.A),
        np.asarray(lp.row_lower, dtype=float).copy(),
        np.asarray(lp.row_upper, dtype=float).copy(),
        np.asarray(lp.col_lower, dtype=float).copy(),
        np.asarray(lp.col_upper, dtype=float).copy(),
    )


def diagnose(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    *,
    order: Sequence[str] = REQUIREMENTS,
    max_conflicts: int = 5,
) -> Diagnosis:
    """Why ``scenario`` is infeasible, in domain words, and the smallest relaxation.

    ``order`` lists the requirements a relaxation may change, most protected first
    (default: ``contract_min``, ``rnd_min_share``, ``kind_floors``, ``max_change_share``);
    one left out is never changed. ``max_conflicts`` bounds the number of minimal
    conflicting sets reported. A feasible scenario gives ``feasible=True`` and nothing to
    change.
    """
    unknown = [r for r in order if r not in REQUIREMENTS]
    if unknown or len(set(order)) != len(order):
        raise ValueError(
            f"order must list distinct requirements among {', '.join(REQUIREMENTS)}; "
            f"got {list(order)}"
        )
    if max_conflicts < 1:
        raise ValueError(f"max_conflicts must be at least 1, got {max_conflicts}")
    sc = _as_scenario(scenario)
    lp = build_lp(sc)
    whole_units = bool(getattr(lp, "is_mip", False))
    sys_ = _system(lp)  # the LP's rows and bounds; integrality is not passed on
    order = tuple(order)
    if _is_feasible(sys_):
        msg = f"Scenario {sc.name!r}: the hard requirements can all be met together."
        if whole_units:
            units = [p.id for p in sc.pools if getattr(p, "allocation_unit_gpus", None)]
            msg += (
                " This holds with fractional GPUs; if solve() reports the scenario infeasible, "
                f"the whole allocation units of {_plural('pool', len(units))} {_join(units)} "
                "(allocation_unit_gpus) are what makes the requirements unreachable."
            )
        return Diagnosis(sc.name, True, order=order, message=msg)

    dom = _Domain(sc, lp)
    conflicts: list[Conflict] = []
    groups: list[ConflictGroup] = []
    work = _System(sys_.A, sys_.rl.copy(), sys_.ru.copy(), sys_.cl, sys_.cu)
    hard_rows = set(dom.hard_contract_rows()[0].tolist())
    for name in (RND_FLOOR, KIND_FLOOR, STABILITY):
        hard_rows.update(dom.rows_of(name)[0].tolist())
    iis_failed = False
    for g in range(1, max_conflicts + 1):
        iis = _iis(work)
        if iis is None:
            iis_failed = not groups
            break
        items, group = _conflict_group(dom, work, g, iis)
        conflicts.extend(items)
        groups.append(group)
        # set this conflict's requirements aside and look for another one
        rows, rside = iis[0], iis[1]
        touched = False
        for r, s in zip(rows, rside, strict=True):
            if int(r) in hard_rows:
                if s in (LOWER, BOXED):
                    work.rl[r] = -np.inf
                if s in (UPPER, BOXED):
                    work.ru[r] = np.inf
                touched = True
        if not touched or _is_feasible(work):
            break

    el = _elastic(dom, sys_, order)
    x = _minimise(el, order)
    relaxation = [] if x is None else _relaxations(dom, el, x)
    relaxation.sort(key=lambda r: -order.index(r.requirement))  # in the order they give way

    lines = [f"Scenario {sc.name!r} is infeasible: its hard requirements conflict."]
    if whole_units:
        lines.append("(Diagnosed with fractional GPUs: allocation_unit_gpus is left out.)")
    if iis_failed:
        lines.append("HiGHS could not isolate a minimal conflicting set.")
    for grp in groups:
        prefix = f"Conflict {grp.group}: " if len(groups) > 1 else ""
        lines.append(prefix + grp.sentence)
        lines.extend("  - " + c.sentence for c in conflicts if c.group == grp.group)
    if x is None:
        lines.append(
            f"No change of {_join(list(order))} alone makes it feasible."
            if order
            else "No requirement may change (order is empty), so nothing is relaxed."
        )
    else:
        tried = [r for r in reversed(order) if el.cols.get(r) is not None]
        how = f" (changing {' before '.join(tried)})" if len(tried) > 1 else ""
        lines.append(f"Smallest relaxation{how}:")
        lines.extend("  - " + r.sentence for r in relaxation)
    return Diagnosis(
        scenario=sc.name,
        feasible=False,
        conflicts=conflicts,
        groups=groups,
        relaxation=relaxation,
        relaxable=x is not None,
        order=order,
        message="\n".join(lines),
    )


def apply_relaxation(
    scenario: Scenario | Mapping[str, Any] | str | Path, diagnosis: Diagnosis
) -> Scenario:
    """A copy of ``scenario`` with ``diagnosis.relaxation`` applied: hard contract
    minimums, kind floors and the R&D share lowered, the stability share raised. A kind
    floor given as one number becomes a list (one per period) when a period changes."""
    sc = _as_scenario(scenario)
    data = sc.to_dict()
    T = len(sc.periods)
    labels = sc.period_labels
    seg_ix = {s.id: i for i, s in enumerate(sc.segments)}
    policy = data.setdefault("policy", {})
    for r in diagnosis.relaxation:
        if r.requirement == "contract_min":
            sid, per = r.key["segment"], r.key["period"]
            if sid not in seg_ix or per not in labels:
                raise ValueError(
                    f"relaxation {r.path} names a segment or period not in {sc.name!r}"
                )
            seg = data["segments"][seg_ix[sid]]
            if not seg.get("contract_min"):
                raise ValueError(f"segment {sid!r} of {sc.name!r} has no contract_min to lower")
            seg["contract_min"][labels.index(per)] = max(0.0, r.relaxed)
        elif r.requirement == "rnd_min_share":
            policy["rnd_min_share"] = max(0.0, r.relaxed)
        elif r.requirement == "kind_floors":
            kind, per = r.key["kind"], r.key["period"]
            floors = policy.get("kind_floors", {})
            if kind not in floors or per not in labels:
                raise ValueError(f"relaxation {r.path} names a floor or period not in {sc.name!r}")
            values = list(per_period(floors[kind], T))
            values[labels.index(per)] = max(0.0, r.relaxed)
            floors[kind] = values
        elif r.requirement == "max_change_share":
            policy["max_change_share"] = min(1.0, r.relaxed)
        else:
            raise ValueError(f"unknown requirement {r.requirement!r} in the relaxation")
    return Scenario.from_dict(data)
