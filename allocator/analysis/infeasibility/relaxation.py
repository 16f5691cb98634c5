"""What to change: the elastic LP that lowers the requirements as little as possible,
its lexicographic minimum in the order given, and the changes it makes in domain words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from allocator.analysis.infeasibility.domain import (
    BUDGET,
    KIND_FLOOR,
    RND_FLOOR,
    SEGMENT_GPUS,
    STABILITY,
    _Domain,
)
from allocator.analysis.infeasibility.results import Relaxation
from allocator.analysis.infeasibility.system import _highs, _run, _System
from allocator.analysis.infeasibility.wording import _gpus, _num, _pct
from allocator.errors import NumericalError

MARGIN = 1e-6  # relative margin added to each relaxation so solver tolerances accept it
TOL = 1e-9


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
    # segment-gpus floors: rows, segment, accelerator index, period; budget floors: rows, budget
    gpu_floor: tuple[np.ndarray, ...] = ()
    budget_floor: tuple[np.ndarray, ...] = ()


@dataclass
class _ElasticColumns:
    """Elastic columns appended to an LP of ``n`` columns, one requirement at a time:
    their coefficients (row, column, value), upper bounds (0 for a requirement not in
    ``order``: it may not change), objective weights and scales."""

    n: int
    order: Sequence[str]
    e_rows: list[np.ndarray] = field(default_factory=list)
    e_cols: list[np.ndarray] = field(default_factory=list)
    e_vals: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    weight: list[np.ndarray] = field(default_factory=list)
    scale: list[np.ndarray] = field(default_factory=list)
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    k: int = 0  # elastic columns so far

    def add(
        self,
        name: str,
        rows: np.ndarray,
        colix: np.ndarray,
        vals: np.ndarray,
        ub: np.ndarray,
        w: np.ndarray,
        sc_: np.ndarray,
    ) -> None:
        """The columns of requirement ``name``: coefficient ``vals[i]`` in row ``rows[i]``
        of its column ``colix[i]`` (numbered from 0); ``ub``, ``w`` and ``sc_`` give each
        column's upper bound, objective weight and scale."""
        self.e_rows.append(rows)
        self.e_cols.append(colix + self.k)
        self.e_vals.append(vals)
        self.upper.append(ub if name in self.order else np.zeros_like(ub))
        self.weight.append(w)
        self.scale.append(sc_)
        self.cols[name] = self.n + self.k + np.arange(ub.size)
        self.k += ub.size


def _elastic(dom: _Domain, sys_: _System, order: Sequence[str]) -> _Elastic:
    """The LP with elastic columns for every relaxable requirement: a slack per hard
    contract, kind-floor, segment GPU floor and GPU-hour budget floor row, one column for
    the R&D share and one for the stability share."""
    n = sys_.A.shape[1]
    c_rows, c_seg, c_per = dom.hard_contract_rows()
    kf_rows, kf_keys = dom.rows_of(KIND_FLOOR)
    rnd_rows, rnd_keys = dom.rows_of(RND_FLOOR)
    st_rows, st_keys = dom.rows_of(STABILITY)

    ec = _ElasticColumns(n, order)
    if c_rows.size:
        weight = 1.0 / dom.best_units[c_seg, c_per]
        _add_floor_slacks(ec, "contract_min", c_rows, sys_.rl[c_rows], weight)
    if kf_rows.size:
        _add_floor_slacks(ec, "kind_floors", kf_rows, sys_.rl[kf_rows], np.ones(kf_rows.size))
    if rnd_rows.size:
        _add_rnd_share(ec, dom, rnd_rows, rnd_keys)
    g_rows, g_keys = dom.floor_rows(SEGMENT_GPUS, sys_.rl)
    if g_rows.size:
        _add_floor_slacks(ec, "gpu_limits", g_rows, sys_.rl[g_rows], np.ones(g_rows.size))
    b_rows, b_keys = dom.floor_rows(BUDGET, sys_.rl)
    if b_rows.size:
        _add_floor_slacks(ec, "gpu_hour_budgets", b_rows, sys_.rl[b_rows], np.ones(b_rows.size))
    A_rows, rl, ru, st_basis = _split_stability_rows(ec, dom, sys_, st_rows, st_keys)
    return _Elastic(
        sys=_elastic_system(ec, sys_, A_rows, rl, ru),
        cols=ec.cols,
        weight=np.concatenate([np.zeros(n), *ec.weight]) if ec.weight else np.zeros(n),
        scale=np.concatenate([np.zeros(n), *ec.scale]) if ec.scale else np.zeros(n),
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
        gpu_floor=(g_rows, *(g_keys.get(k, g_rows) for k in ("segment", "accelerator", "period"))),
        budget_floor=(b_rows, b_keys.get("budget", b_rows)),
    )


def _add_floor_slacks(
    ec: _ElasticColumns, name: str, rows: np.ndarray, lower: np.ndarray, weight: np.ndarray
) -> None:
    """One slack per row of a lower bound (a hard contract in work units, a kind floor in
    GPUs) that lowers it, at most to 0, at ``weight`` per unit."""
    ec.add(name, rows, np.arange(rows.size), np.ones(rows.size), lower, weight, lower)


def _add_rnd_share(
    ec: _ElasticColumns, dom: _Domain, rows: np.ndarray, keys: dict[str, np.ndarray]
) -> None:
    """One column for the R&D share, which lowers the floor of every period by that share
    of the fleet's GPUs, at most to 0."""
    G = dom.fleet_gpus()[keys["period"]]
    share = dom.sc.policy.rnd_min_share
    ec.add(
        "rnd_min_share",
        rows,
        np.zeros(rows.size, dtype=np.int64),
        G,
        np.array([share]),
        np.ones(1),
        np.array([share]),
    )


def _split_stability_rows(
    ec: _ElasticColumns,
    dom: _Domain,
    sys_: _System,
    st_rows: np.ndarray,
    st_keys: dict[str, np.ndarray],
) -> tuple[list[sp.csr_matrix], np.ndarray, np.ndarray, np.ndarray]:
    """Each ranged stability row split in two, x_t - x_{t-1} - M δ <= Δ (kept in place)
    and x_t - x_{t-1} + M δ >= -Δ (appended), with one column δ for the stability share
    (up to 1 - max_change_share). Returns the row blocks of the LP, its row bounds and the
    basis M of each stability row."""
    m = sys_.A.shape[0]
    st_basis = np.zeros(0)
    rl, ru = sys_.rl.copy(), sys_.ru.copy()
    A_rows = [sys_.A]
    if st_rows.size:
        st_basis = dom.stability_basis(st_keys["pool"], st_keys["period"])
        ec.add(
            "max_change_share",
            np.concatenate([st_rows, m + np.arange(st_rows.size)]),
            np.zeros(2 * st_rows.size, dtype=np.int64),
            np.concatenate([-st_basis, st_basis]),
            np.array([1.0 - (dom.sc.policy.max_change_share or 0.0)]),
            np.ones(1),
            np.ones(1),
        )
        A_rows.append(sys_.A[st_rows])
        rl = np.concatenate([rl, sys_.rl[st_rows]])
        ru = np.concatenate([ru, np.full(st_rows.size, np.inf)])
        rl[st_rows] = -np.inf
    return A_rows, rl, ru, st_basis


def _elastic_system(
    ec: _ElasticColumns,
    sys_: _System,
    A_rows: list[sp.csr_matrix],
    rl: np.ndarray,
    ru: np.ndarray,
) -> _System:
    """The rows ``A_rows`` with the elastic columns appended, [A E]: the LP's column
    bounds, and 0 <= each elastic column <= its upper bound."""
    k = ec.k
    E = sp.csr_matrix(
        (
            np.concatenate(ec.e_vals) if ec.e_vals else np.zeros(0),
            (
                np.concatenate(ec.e_rows) if ec.e_rows else np.zeros(0, dtype=np.int64),
                np.concatenate(ec.e_cols) if ec.e_cols else np.zeros(0, dtype=np.int64),
            ),
        ),
        shape=(rl.size, k),
    )
    A = sp.hstack([sp.vstack(A_rows), E]).tocsr()
    ub = np.concatenate(ec.upper) if ec.upper else np.zeros(0)
    return _System(A, rl, ru, np.concatenate([sys_.cl, np.zeros(k)]), np.concatenate([sys_.cu, ub]))


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


def _smallest_relaxation(
    dom: _Domain, sys_: _System, order: Sequence[str]
) -> tuple[_Elastic, np.ndarray | None, list[Relaxation]]:
    """The elastic LP, its lexicographic minimum (None when no change of the requirements
    in ``order`` is enough) and the changes it makes, in the order they give way."""
    el = _elastic(dom, sys_, order)
    x = _minimise(el, order)
    relaxation = [] if x is None else _relaxations(dom, el, x)
    relaxation.sort(key=lambda r: -order.index(r.requirement))  # in the order they give way
    return el, x, relaxation


def _grown(v: float, cap: float) -> float:
    """A change made a little larger (``MARGIN``) so solver tolerances accept it, at most
    ``cap``."""
    return min(cap, v * (1 + MARGIN) + 1e-12)


def _relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    """The changes to the scenario that the elastic solution ``x`` makes, in domain words."""
    n_lp = dom.lp.num_cols
    act = el.sys.A[:, :n_lp] @ x[:n_lp]
    return [
        *_contract_relaxations(dom, el, x),
        *_rnd_relaxation(dom, el, x, act),
        *_kind_floor_relaxations(dom, el, x),
        *_gpu_floor_relaxations(dom, el, x),
        *_budget_relaxations(dom, el, x),
        *_stability_relaxation(dom, el, x, act),
    ]


def _gpu_floor_relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    """The segments' GPU floors (gpu_limits min_gpus) the solution lowers, one per segment,
    accelerator type and period."""
    sc, names = dom.sc, dom.names
    out: list[Relaxation] = []
    idx = el.cols.get("gpu_limits")
    if idx is None or not el.gpu_floor:
        return out
    rows, segs, accs, pers = el.gpu_floor
    for j, (r, s, a, t) in enumerate(zip(rows, segs, accs, pers, strict=True)):
        L = float(el.sys.rl[r])
        cut = float(x[idx[j]])
        if cut <= TOL * max(1.0, L):
            continue
        cut = _grown(cut, L)
        seg = sc.segments[s]
        k = dom.gpu_limit_index(int(s), int(a))
        acc = seg.gpu_limits[k].accelerator
        key = {"segment": seg.id, "period": names["period"][t]}
        if acc:
            key["accelerator"] = acc
        of = f" {acc}" if acc else ""
        out.append(
            Relaxation(
                requirement="gpu_limits",
                path=f"segments[{s}].gpu_limits[{k}].min_gpus[{t}]",
                key=key,
                current=L,
                relaxed=L - cut,
                change=-cut,
                unit="GPUs",
                gpus=cut,
                sentence=(
                    f"Lower the{of} GPU floor of segment {seg.id} (gpu_limits min_gpus) in "
                    f"{names['period'][t]} from {_num(L)} to {_num(L - cut)} GPUs (-{_num(cut)})."
                ),
            )
        )
    return out


def _budget_relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    """The GPU-hour budget minimums the solution lowers, one per budget."""
    sc = dom.sc
    out: list[Relaxation] = []
    idx = el.cols.get("gpu_hour_budgets")
    if idx is None or not el.budget_floor:
        return out
    rows, budgets = el.budget_floor
    labels = sc.period_labels
    for j, (r, b) in enumerate(zip(rows, budgets, strict=True)):
        L = float(el.sys.rl[r])
        cut = float(x[idx[j]])
        if cut <= TOL * max(1.0, L):
            continue
        cut = _grown(cut, L)
        bud = sc.policy.gpu_hour_budgets[b]
        lo = labels.index(bud.from_period) if bud.from_period else 0
        hi = labels.index(bud.to_period) if bud.to_period else len(labels) - 1
        hours = sum(p.hours for p in sc.periods[lo : hi + 1])
        g = cut / hours if hours > 0 else None
        about = f", about {_gpus(g)} over the window" if g is not None else ""
        out.append(
            Relaxation(
                requirement="gpu_hour_budgets",
                path=f"policy.gpu_hour_budgets[{b}].min_gpu_hours",
                key={"budget": bud.id},
                current=L,
                relaxed=L - cut,
                change=-cut,
                unit="GPU-hours",
                gpus=g,
                sentence=(
                    f"Lower the minimum of GPU-hour budget {bud.id} from {_num(L)} to "
                    f"{_num(L - cut)} GPU-hours (-{_num(cut)}{about})."
                ),
            )
        )
    return out


def _contract_relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    """The hard contract minimums the solution lowers, one per segment and period."""
    sc, names = dom.sc, dom.names
    out: list[Relaxation] = []
    idx = el.cols.get("contract_min")
    rows, segs, pers = el.contract
    if idx is None:
        return out
    for j, (r, s, t) in enumerate(zip(rows, segs, pers, strict=True)):
        L = float(el.sys.rl[r])
        cut = float(x[idx[j]])
        if cut <= TOL * max(1.0, L):
            continue
        cut = _grown(cut, L)
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
    return out


def _rnd_relaxation(dom: _Domain, el: _Elastic, x: np.ndarray, act: np.ndarray) -> list[Relaxation]:
    """The lowered R&D share, if the solution lowers it, named by the period whose
    lowered floor binds (``act``: the LP's row activities)."""
    sc, names = dom.sc, dom.names
    idx = el.cols.get("rnd_min_share")
    if idx is None or not (x[idx[0]] > TOL):
        return []
    share = sc.policy.rnd_min_share
    d = _grown(float(x[idx[0]]), share)
    G = dom.fleet_gpus()
    floor_rows = el.rnd_rows
    slack = act[floor_rows] - (share - d) * G
    t = int(np.argmin(slack))  # the period whose lowered floor binds
    return [
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
    ]


def _kind_floor_relaxations(dom: _Domain, el: _Elastic, x: np.ndarray) -> list[Relaxation]:
    """The kind floors the solution lowers, one per kind and period."""
    names = dom.names
    out: list[Relaxation] = []
    idx = el.cols.get("kind_floors")
    rows, kinds, pers = el.kind_floor
    if idx is None:
        return out
    for j, (r, k, t) in enumerate(zip(rows, kinds, pers, strict=True)):
        L = float(el.sys.rl[r])
        cut = float(x[idx[j]])
        if cut <= TOL * max(1.0, L):
            continue
        cut = _grown(cut, L)
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
    return out


def _stability_relaxation(
    dom: _Domain, el: _Elastic, x: np.ndarray, act: np.ndarray
) -> list[Relaxation]:
    """The raised stability share, if the solution raises it, named by the segment, pool
    and period that change the most for their basis (``act``: the LP's row activities)."""
    sc, names = dom.sc, dom.names
    idx = el.cols.get("max_change_share")
    if idx is None or not (x[idx[0]] > TOL):
        return []
    share = sc.policy.max_change_share or 0.0
    d = _grown(float(x[idx[0]]), 1.0 - share)
    rows, segs, pools, pers = el.stab
    move = np.abs(act[rows])
    j = int(np.argmax(move / np.maximum(el.stab_basis, TOL)))
    basis = float(el.stab_basis[j])
    s, p, t = int(segs[j]), int(pools[j]), int(pers[j])
    return [
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
    ]
