"""What conflicts: the minimal conflicting sets (IIS) of the LP in domain words, each
constraint said in a sentence and the set added up the way a proof of infeasibility is
(a Farkas certificate)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from allocator.analysis.infeasibility.domain import (
    BLOCK_ORDER,
    BUDGET,
    CAPACITY,
    CONTRACT,
    DEMAND,
    FLOOR_ONLY,
    GPU_BLOCKS,
    KIND_CAP,
    KIND_FLOOR,
    RENTABLE,
    REQUIREMENT_OF_BLOCK,
    RND_FLOOR,
    SEGMENT_GPUS,
    SHARE,
    STABILITY,
    _Domain,
)
from allocator.analysis.infeasibility.results import Conflict, ConflictGroup
from allocator.analysis.infeasibility.system import (
    BOXED,
    LOWER,
    UPPER,
    _highs,
    _iis,
    _is_feasible,
    _run,
    _System,
)
from allocator.analysis.infeasibility.wording import _gpus, _join, _num, _pct, _plural
from allocator.errors import NumericalError


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
    if block == SEGMENT_GPUS:
        seg = sc.segments[ix["segment"]]
        j = dom.gpu_limit_index(ix["segment"], ix["accelerator"])
        acc = sc.segments[ix["segment"]].gpu_limits[j].accelerator
        of = f" of type {acc}" if acc else ""
        if side == "lower":
            return "GPUs", (
                f"Segment {seg.id} ({seg.kind.value}) must hold at least {_gpus(value)}{of} in "
                f"{per} (segments[{ix['segment']}].gpu_limits[{j}].min_gpus){here}."
            )
        return "GPUs", (
            f"Segment {seg.id} ({seg.kind.value}) may hold at most {_gpus(value)}{of} in "
            f"{per} (segments[{ix['segment']}].gpu_limits[{j}].max_gpus){here}."
        )
    if block == BUDGET:
        b = ix["budget"]
        bud = sc.policy.gpu_hour_budgets[b]
        who = (
            f"segment {bud.segment}"
            if bud.segment
            else f"{bud.kind.value if bud.kind else ''} segments"
        )
        of = f" of type {bud.accelerator}" if bud.accelerator else ""
        first = bud.from_period or sc.period_labels[0]
        last = bud.to_period or sc.period_labels[-1]
        window = first if first == last else f"{first} to {last}"
        verb = "needs at least" if side == "lower" else "allows at most"
        fld = "min_gpu_hours" if side == "lower" else "max_gpu_hours"
        return "GPU-hours", (
            f"Budget {bud.id} (policy.gpu_hour_budgets[{b}].{fld}) {verb} {_num(value)} "
            f"GPU-hours{of} for {who} over {window}{here}."
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
        elif block == SEGMENT_GPUS:
            for lower in (True, False):
                sel = [c for c in items if c.constraint == block and (c.bound == "lower") == lower]
                segs = list(dict.fromkeys(c.key["segment"] for c in sel))
                pers = list(dict.fromkeys(c.key["period"] for c in sel))
                if sel:
                    what = "floor" if lower else "cap"
                    many = len(segs) > 1
                    (needs if lower else limits).append(
                        (
                            f"the GPU {what}{'s' if many else ''} (gpu_limits) of "
                            f"{_plural('segment', len(segs))} {_join(segs)} in {_join(pers)}",
                            many,
                        )
                    )
        elif block == BUDGET:
            for lower in (True, False):
                ids = [
                    c.key["budget"]
                    for c in items
                    if c.constraint == block and (c.bound == "lower") == lower
                ]
                if ids:
                    many = len(ids) > 1
                    (needs if lower else limits).append(
                        (f"the GPU-hour budget{'s' if many else ''} {_join(ids)}", many)
                    )
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


# One constraint of a conflict: block, key indices, side in conflict ("lower" or
# "upper"), bound, and weight in the certificate's sum (multiplier × |bound|).
_Item = tuple[str, dict[str, int], str, float, float]


def _find_conflicts(
    dom: _Domain, sys_: _System, max_conflicts: int
) -> tuple[list[Conflict], list[ConflictGroup], bool]:
    """Up to ``max_conflicts`` minimal conflicting sets, their constraints and headlines:
    after each one its requirements are set aside and the rest is checked again. The
    third value is True when HiGHS could not isolate even one set."""
    conflicts: list[Conflict] = []
    groups: list[ConflictGroup] = []
    work = _System(sys_.A, sys_.rl.copy(), sys_.ru.copy(), sys_.cl, sys_.cu)
    hard_rows = _requirement_rows(dom)
    floor_only = _floor_only_rows(dom)
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
        if not _set_aside(work, iis, hard_rows, floor_only) or _is_feasible(work):
            break
    return conflicts, groups, iis_failed


def _requirement_rows(dom: _Domain) -> set[int]:
    """The rows of the requirements a relaxation may change: hard contracts, the R&D
    floor, kind floors, stability, and the GPU limits and GPU-hour budgets (whose lower
    side alone is set aside: see ``FLOOR_ONLY``)."""
    hard_rows = set(dom.hard_contract_rows()[0].tolist())
    for name in (RND_FLOOR, KIND_FLOOR, STABILITY, *FLOOR_ONLY):
        hard_rows.update(dom.rows_of(name)[0].tolist())
    return hard_rows


def _floor_only_rows(dom: _Domain) -> set[int]:
    out: set[int] = set()
    for name in FLOOR_ONLY:
        out.update(dom.rows_of(name)[0].tolist())
    return out


def _set_aside(
    work: _System,
    iis: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    hard_rows: set[int],
    floor_only: set[int] | frozenset[int] = frozenset(),
) -> bool:
    """Drop from ``work`` the sides in conflict of the IIS's requirement rows (of a row in
    ``floor_only``, its lower side only: the other is a cap); False when the IIS has no
    requirement row (nothing to set aside)."""
    rows, rside = iis[0], iis[1]
    touched = False
    for r, s in zip(rows, rside, strict=True):
        if int(r) in floor_only:
            if s in (LOWER, BOXED):
                work.rl[r] = -np.inf
                touched = True
        elif int(r) in hard_rows:
            if s in (LOWER, BOXED):
                work.rl[r] = -np.inf
            if s in (UPPER, BOXED):
                work.ru[r] = np.inf
            touched = True
    return touched


def _conflict_group(
    dom: _Domain, sys_: _System, group: int, iis: tuple[np.ndarray, ...]
) -> tuple[list[Conflict], ConflictGroup]:
    """One IIS in domain words: its constraints, each weighted as in the Farkas sum, and
    the headline that adds them up."""
    raw = _weighted_items(dom, sys_, iis)
    norm, uniform = _normalisation(raw)
    unit = "GPUs" if uniform else "GPU-equivalents"
    items, need, allow = _conflicts(dom, group, raw, norm, unit)
    head = _headline(dom, items, raw, need, allow, unit, norm)
    return items, ConflictGroup(group, need, allow, need - allow, unit, head)


def _weighted_items(dom: _Domain, sys_: _System, iis: tuple[np.ndarray, ...]) -> list[_Item]:
    """The IIS's rows, and the upper bounds of its rented-GPU columns (rental limits),
    each with its side in conflict, its bound and its weight in the certificate's sum."""
    rows, rside, cols, cside = iis
    weight, side, cweight, _ = _certificate(sys_, rows, rside, cols, cside)
    boxed = rside == BOXED
    rside = np.where(boxed, side, rside)
    cols_ = dom.lp.columns
    r_lo, r_hi = cols_.r_offset, cols_.u_offset
    raw: list[_Item] = []
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
    return raw


def _normalisation(raw: list[_Item]) -> tuple[float, bool]:
    """The divisor that makes the largest multiplier of a GPU-counting constraint count 1,
    and whether every GPU-counting constraint has that multiplier (the sum is then in
    plain GPUs, otherwise in GPU-equivalents)."""
    mult = [w / abs(v) for (b, _, _, v, w) in raw if b in GPU_BLOCKS and abs(v) > 0]
    norm = max(mult) if mult else max((w / abs(v) for *_, v, w in raw if abs(v) > 0), default=1.0)
    norm = norm if norm > 0 else 1.0
    uniform = bool(mult) and all(abs(m - norm) <= 1e-6 * norm for m in mult)
    return norm, uniform


def _conflicts(
    dom: _Domain, group: int, raw: list[_Item], norm: float, unit: str
) -> tuple[list[Conflict], float, float]:
    """The constraints of the conflict, requirements first, each said in a sentence with
    its weight; and the sums of the requirements' weights (need) and the limits' (allow)."""
    items: list[Conflict] = []
    need = allow = 0.0
    for block, ix, s, bound, w in raw:
        contribution = w / norm
        requirement_side = (
            block in (CONTRACT, RND_FLOOR, KIND_FLOOR, SEGMENT_GPUS, BUDGET) and s == "lower"
        )
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
                requirement=(
                    None
                    if block in FLOOR_ONLY and s != "lower"
                    else REQUIREMENT_OF_BLOCK.get(block)
                ),
                value=bound,
                unit=u,
                gpus=contribution,
                sentence=sentence,
            )
        )
    items.sort(key=lambda c: (c.role != "requirement", BLOCK_ORDER.get(c.constraint, 99)))
    return items, need, allow


def _headline(
    dom: _Domain,
    items: list[Conflict],
    raw: list[_Item],
    need: float,
    allow: float,
    unit: str,
    norm: float,
) -> str:
    """The conflict in one sentence: what its requirements need against what its limits
    allow, and in GPU-equivalents what one GPU of each pool counts for."""
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
    if unit != "GPUs":
        head += _pool_weights(dom, raw, norm)
    return head[0].upper() + head[1:]


def _pool_weights(dom: _Domain, raw: list[_Item], norm: float) -> str:
    """What a GPU of each pool in the conflict's capacity rows counts for in
    GPU-equivalents, as a sentence (empty when no capacity row is in the conflict)."""
    pools: dict[str, float] = {}
    for block, ix, _, v, w in raw:
        if block == CAPACITY and abs(v) > 0:
            pools.setdefault(dom.names["pool"][ix["pool"]], w / abs(v) / norm)
    if not pools:
        return ""
    weights = ", ".join(f"{p} {_num(m)}" for p, m in pools.items())
    return (
        f" A GPU-equivalent weighs each pool's GPUs by the work they do for these "
        f"requirements: {weights}."
    )
