"""Write the model as an MPS or LP file with readable names, for any solver.

Names (the same labels the plan uses for binding constraints):

* columns ``x[segment,mode,pool,period]`` (GPUs), ``n[segment,mode,pool,period]`` (whole
  allocation units of a pool with ``allocation_unit_gpus``: GPUs = units x that number),
  ``r[pool,period]`` (rented GPUs), ``u[segment,period]`` (contract shortfall);
* rows ``<block>[keys]`` in the order of the block's keys, e.g. ``pool-capacity[h100,P1]``,
  ``segment-stability[chat,h100,P2]``, ``kind-cap[cloud,P1]``.

MPS takes these names as they are (ids match ``[A-Za-z0-9][A-Za-z0-9_.:/+-]*`` and hold no
spaces). The LP format reads ``-``, ``+``, ``:``, ``/``, ``[`` and ``]`` as syntax (HiGHS'
LP writer refuses them and falls back to ``c0, r0 …``), so LP files spell names with
``( )`` for brackets, ``_`` in block names, and ``~ & ; %`` for ``- + : /`` inside ids:
``pool_capacity(gb200~eastus,P1)``. The substitutes never occur in ids, so names stay
unique and the mapping can be undone (:func:`lp_format_name`).

Sense. The LP file maximises the allocator objective itself, its constant (minus the
churn cost of all demand) included. The MPS file is in minimisation form, as every MPS
reader assumes: it minimises ``-objective = -c'x + K`` with ``K = -offset``, the constant
written, by the MPS convention, as the right-hand side ``-K`` of the objective row; a
solver reports ``-objective``. Each file starts with a comment stating this.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from allocator.lp import LinearProgram
from allocator.lp.arrays import KINDS, extra_key_names
from allocator.lp.build import UNIT_BLOCKS, build_lp
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers.highs_model import highspy, new_highs, to_highs_lp
from allocator.solvers.names import EXPORT_FORMATS

FORMATS = EXPORT_FORMATS
_LP_ID = str.maketrans({"-": "~", "+": "&", ":": ";", "/": "%"})


def column_names(sc: Scenario, lp: LinearProgram) -> list[str]:
    """One name per column, in column order (MPS spelling)."""
    c = lp.columns
    seg = [s.id for s in sc.segments]
    pool = [p.id for p in sc.pools]
    per = sc.period_labels
    mode = [name for _, name in c.modes]
    integer = lp.integrality if lp.integrality is not None else np.zeros(lp.num_cols, bool)
    x = [
        f"{'n' if integer[j] else 'x'}[{seg[s]},{mode[m]},{pool[p]},{per[t]}]"
        for j, (s, m, p, t) in enumerate(
            zip(
                c.x_segment.tolist(),
                c.x_mode.tolist(),
                c.x_pool.tolist(),
                c.x_period.tolist(),
                strict=True,
            )
        )
    ]
    r = [
        f"r[{pool[p]},{per[t]}]"
        for p, t in zip(c.r_pool.tolist(), c.r_period.tolist(), strict=True)
    ]
    u = [
        f"u[{seg[s]},{per[t]}]"
        for s, t in zip(c.u_segment.tolist(), c.u_period.tolist(), strict=True)
    ]
    e = [
        f"e[{pool[p]},{per[t]}]"
        for p, t in zip(c.e_pool.tolist(), c.e_period.tolist(), strict=True)
    ]
    k = [
        f"k[{seg[s]},{pool[p]},{per[t]}]"
        for s, p, t in zip(
            c.rsv_segment.tolist(), c.rsv_pool.tolist(), c.rsv_period.tolist(), strict=True
        )
    ]
    y = [
        f"y[{seg[s]},{i},{per[t]}]"
        for s, i, t in zip(
            c.tier_segment.tolist(), c.tier_rank.tolist(), c.tier_period.tolist(), strict=True
        )
    ]
    levels = ["full", *[q.name for p in sc.pools for q in p.power_levels or []]]
    w = [
        f"w[{pool[p]},{levels[lv + 1]},{per[t]}]"
        for p, lv, t in zip(
            c.pw_pool.tolist(), c.pw_level.tolist(), c.pw_period.tolist(), strict=True
        )
    ]
    z = [
        f"z[{pool[p]},{per[t]}]"
        for p, t in zip(c.rt_pool.tolist(), c.rt_period.tolist(), strict=True)
    ]
    names = x + r + u + e + k + y + w + z
    for b in lp.blocks:  # whole rental and purchase units (build.define_purchase_units)
        prefix = UNIT_BLOCKS.get(b.name)
        if prefix is not None:
            names += [
                f"{prefix}[{pool[p]},{per[t]}]"
                for p, t in zip(b.keys["pool"].tolist(), b.keys["period"].tolist(), strict=True)
            ]
    return names


def row_names(sc: Scenario, lp: LinearProgram) -> list[str]:
    """One name per row, ``block[key,...]`` (MPS spelling), as in ``Binding.label``."""
    labels = {
        "pool": [p.id for p in sc.pools],
        "segment": [s.id for s in sc.segments],
        "period": sc.period_labels,
        "kind": [k.value for k in KINDS],
        **extra_key_names(sc),
    }
    out: list[str] = []
    for b in lp.blocks:
        keys = [[labels[dim][i] for i in ix.tolist()] for dim, ix in b.keys.items()]
        out += [f"{b.name}[{','.join(parts)}]" for parts in zip(*keys, strict=True)]
    return out


def lp_format_name(name: str) -> str:
    """The LP-format spelling of an MPS name: ``pool-capacity[gb200-eastus,P1]`` ->
    ``pool_capacity(gb200~eastus,P1)``.

    >>> lp_format_name("x[chat,full,gb200-eastus,2026-Q1]")
    'x(chat,full,gb200~eastus,2026~Q1)'
    """
    head, _, rest = name.partition("[")
    return f"{head.replace('-', '_')}({rest[:-1].translate(_LP_ID)})"


def highs_model(sc: Scenario, lp: LinearProgram, fmt: str) -> highspy.HighsLp:
    """The HiGHS model with names: minimisation form for MPS, maximisation for LP."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    h = to_highs_lp(lp)
    cols, rows = column_names(sc, lp), row_names(sc, lp)
    if fmt == "lp":
        cols, rows = [lp_format_name(n) for n in cols], [lp_format_name(n) for n in rows]
        h.sense_ = highspy.ObjSense.kMaximize
        h.col_cost_ = np.asarray(lp.c, dtype=float)
        h.offset_ = float(lp.offset)
    h.col_names_ = cols
    h.row_names_ = rows
    h.model_name_ = "allocator"
    return h


def _header(sc: Scenario, lp: LinearProgram, fmt: str) -> list[str]:
    kind = "MILP" if lp.is_mip else "LP"
    ints = f", {lp.num_integer} integer" if lp.is_mip else ""
    size = f"{lp.num_cols} columns{ints}, {lp.num_rows} rows, {lp.nnz} non-zeros"
    if fmt == "lp":
        sense = [
            "maximise the allocator objective (present value), constant included:",
            "the optimum is the plan's objective",
        ]
    else:
        sense = [
            "MINIMISATION form: minimise -(allocator objective) = -c'x + K, K = "
            f"{-lp.offset:.17g};",
            f"MPS convention: the objective row's RHS holds -K = {lp.offset:.17g}.",
            "The optimum is -(plan objective).",
        ]
    lines = [
        f"allocator export of scenario {sc.name!r} ({kind}: {size})",
        *sense,
        "names: x[segment,mode,pool,period] GPUs, n[...] whole allocation units, "
        "r[pool,period] rented GPUs, u[segment,period] contract shortfall; rows "
        "block[keys]",
    ]
    mark = "\\ " if fmt == "lp" else "* "
    return [mark + line for line in lines]


def write_model(
    scenario: Scenario | Mapping[str, Any] | str | Path,
    path: str | Path,
    format: str | None = None,
) -> Path:
    """Write the scenario's model to ``path`` as MPS or LP (``format``, or from the file's
    suffix ``.mps`` / ``.lp``); return the path. See the module docstring for names and
    the objective's sign."""
    sc = as_scenario(scenario)
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(
            f"cannot tell the format: pass format='mps' or 'lp' (or name the file .mps/.lp), "
            f"got {format or path.suffix!r}"
        )
    lp = build_lp(sc)
    text = model_text(sc, lp, fmt)
    path.write_text(text, encoding="utf-8")
    return path


def model_text(sc: Scenario, lp: LinearProgram, fmt: str) -> str:
    """The MPS or LP file of ``lp`` as text (HiGHS' writer, with a comment header)."""
    h = new_highs()
    h.passModel(highs_model(sc, lp, fmt))
    fd, tmp = tempfile.mkstemp(prefix="allocator-export-", suffix=f".{fmt}")
    os.close(fd)
    try:
        status = h.writeModel(tmp)
        if status != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS could not write the {fmt.upper()} file ({status})")
        body = Path(tmp).read_text(encoding="utf-8")
    finally:
        os.unlink(tmp)
    if fmt == "lp":
        body = _portable_lp_sections(body)
    return "\n".join(_header(sc, lp, fmt)) + "\n" + body


# HiGHS writes the short CPLEX-LP section keywords, some always, even when empty; CBC 2.10
# reads "gen" and "bin" as variable names and silently drops integrality. The long
# keywords are read by HiGHS, CBC, CPLEX, Gurobi and GLPK alike.
_LP_SECTIONS = {"bin": "binary", "gen": "general", "semi": "semi-continuous"}
_LP_KEYWORDS = {"bounds", "end", "sos", *_LP_SECTIONS, *_LP_SECTIONS.values()}


def _portable_lp_sections(text: str) -> str:
    """Drop empty binary/general/semi-continuous sections and spell the rest out."""
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        key = line.strip().lower()
        if key in _LP_SECTIONS:
            following = lines[i + 1].strip().lower() if i + 1 < len(lines) else "end"
            if following in _LP_KEYWORDS:
                continue  # an empty section
            line = _LP_SECTIONS[key]
        out.append(line)
    return "\n".join(out)
