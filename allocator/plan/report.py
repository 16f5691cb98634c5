"""Readable text summary of a plan (what `allocator solve` prints)."""

from __future__ import annotations

from collections import defaultdict

from allocator.numbers import short, violation
from allocator.plan.money import money
from allocator.plan.rows import RENTALS
from allocator.plan.tables import Plan
from allocator.plan.text import number, percent, table
from allocator.plan.utilisation import has_gpus, mean_use


def summary(plan: Plan, top: int = 10) -> str:
    """Margin by segment kind, pool utilisation, top opportunity costs, binding rows, each
    an aligned table whatever the length of the ids."""
    lines = [*_headline(plan), "", *_kind_table(plan), *_reservation_table(plan)]
    lines += ["", *_pool_table(plan), *_move_table(plan, top), *_price_table(plan, top)]
    lines += _site_table(plan)
    lines += ["", *_binding_table(plan, top), "", *_solver_lines(plan)]
    lines += [f"Warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def status_note(plan: Plan) -> str:
    """The solver's message when it says more than the status ("" for an optimal plan: no
    "optimal — optimal plan found" echo)."""
    status = plan.status.value
    message = (plan.message or "").strip()
    if not message or message.lower() in (status, f"{status} plan found"):
        return ""
    return message


def _headline(plan: Plan) -> list[str]:
    """Status, the objective's terms and the money lines."""
    cur, t = plan.currency, plan.totals
    head = f"Plan for {plan.scenario!r}: {plan.status.value}"
    if note := status_note(plan):
        head += f" — {note}"
    return [
        head,
        f"  objective {money(t.objective)} {cur} (present value) = gross margin "
        f"{money(t.gross_margin)} + {t.ltv_weight:g} × LTV {money(t.ltv)} − churn "
        f"{money(t.churn_cost)}"
        + (f" − expansion {money(t.expansion_cost)}" if t.expansion_cost else ""),
        f"  revenue {money(t.revenue)}, variable cost {money(t.variable_cost)}, rental "
        f"{money(t.rental_cost)}, SLA penalties {money(t.shortfall_penalty)}; "
        f"depreciation {money(t.fixed_cost)} → margin after depreciation "
        f"{money(t.margin_after_depreciation)}",
    ]


def _kind_table(plan: Plan) -> list[str]:
    """One line per kind, the rentals line (charged to no kind) and the total: the money
    columns add up."""
    cur, t = plan.currency, plan.totals
    rows = [
        [
            k.kind,
            money(k.revenue),
            money(k.gross_margin),
            money(k.ltv),
            f"{k.gpus_by_period[0]:,.0f} → {k.gpus_by_period[-1]:,.0f}" if key != RENTALS else "—",
            f"{k.served_share_by_period[0]:.0%} → {k.served_share_by_period[-1]:.0%}"
            if k.served_share_by_period
            else "—",
        ]
        for key, k in plan.by_kind.items()
    ]
    rows.append(["total", money(t.revenue), money(t.gross_margin), money(t.ltv), "", ""])
    headers = ["kind", f"revenue ({cur})", f"gross margin ({cur})", f"LTV ({cur})"]
    headers += ["GPUs (first → last)", "served (first → last)"]
    return [
        "By segment kind (money in present value):",
        *table(headers, rows, align="lrrrrr", indent="  "),
    ]


def _reservation_table(plan: Plan) -> list[str]:
    if not plan.reservations:
        return []
    held: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for rs in plan.reservations:
        held[rs.segment][0] += rs.gpus
        held[rs.segment][1] += rs.revenue
    n_t = len(plan.periods)
    rows = [
        [seg, number(k_g / n_t, 1), money(fee)]
        for seg, (k_g, fee) in sorted(held.items(), key=lambda kv: -kv[1][1])
    ]
    return [
        "",
        f"Reservations accepted (take-or-pay; fees {money(plan.totals.reservation_revenue)} "
        f"{plan.currency} present value, part of revenue):",
        *table(
            ["segment", "GPUs (average)", f"fees ({plan.currency}, nominal)"],
            rows,
            align="lrr",
            indent="  ",
        ),
    ]


def _share_of_usable(rs: list) -> str:
    """Mean of used / usable capacity over the periods in which the pool has GPUs ("no
    GPUs" when it has none in any)."""
    share = mean_use(rs)
    return "no GPUs" if share is None else percent(share)


def _pool_table(plan: Plan) -> list[str]:
    acc: dict[str, list] = defaultdict(list)
    for r in plan.pools:
        acc[r.pool].append(r)
    rows = []
    for pool, rs in acc.items():
        n = len(rs)
        prices = [r.shadow_price_per_gpu_hour for r in rs]
        price = None if None in prices else sum(prices) / n  # type: ignore[arg-type]
        rows.append(
            [
                pool,
                number(sum(r.gpus for r in rs) / n),
                _share_of_usable(rs),
                number(sum(r.rented for r in rs) / n),
                number(sum(r.idle for r in rs) / n),
                _headroom(rs),
                "n/a" if price is None else number(price, 2),
            ]
        )
    headers = ["pool", "GPUs", "used (% of usable)", "rented GPUs", "idle GPUs", "headroom GPUs"]
    headers.append(f"price ({plan.currency}/GPU-hour)")
    return ["Pools (average over the periods):", *table(headers, rows, "lrrrrrr", "  ")]


def _site_table(plan: Plan) -> list[str]:
    """Sites (issue 27): per site and period the IT power, MW used and free, GPUs left in
    inventory and the price of a MW-hour; the energy cost line. Nothing without sites."""
    if not plan.has_sites:
        return []
    cur = plan.currency
    inventory: dict[tuple[str, str], float] = defaultdict(float)
    for r in plan.power:
        inventory[(r.site, r.period)] += r.in_inventory
    rows = [
        [
            s.site,
            s.period,
            number(s.power_mw, 1),
            number(s.used_mw, 1),
            number(s.free_mw, 1),
            number(inventory[(s.site, s.period)]),
            "n/a" if s.shadow_price_per_mwh is None else number(s.shadow_price_per_mwh, 2),
        ]
        for s in plan.sites
    ]
    headers = ["site", "period", "power (MW)", "used (MW)", "free (MW)", "GPUs unpowered"]
    headers.append(f"price ({cur}/MWh)")
    return [
        "",
        f"Sites (IT power; energy {money(plan.totals.energy_cost or 0.0)} {cur} present "
        "value, part of variable cost; price of a MW-hour of the site's power, nominal):",
        *table(headers, rows, "llrrrrr", "  "),
    ]


def _headroom(rs: list) -> str:
    """Mean GPUs kept free by headroom (n/a for a plan stored before ``headroom_gpus``)."""
    kept = [r.headroom_gpus for r in rs]
    return "n/a" if None in kept else number(sum(kept) / len(kept))


def _move_table(plan: Plan, top: int) -> list[str]:
    """The (segment, pool) pairs whose GPUs change most between periods: churn a customer
    would see."""
    if not len(plan.moves):
        return []
    ranked = sorted(plan.moves, key=lambda m: -m.moved_gpus)[:top]
    rows = [
        [
            m.segment,
            m.pool,
            number(m.moved_gpus),
            number(m.largest_move_gpus),
            m.largest_move_period,
        ]
        for m in ranked
    ]
    total = sum(m.moved_gpus for m in plan.moves)
    how = "stable plan" if plan.solver.first_stage_objective is not None else "not stabilised"
    return [
        "",
        f"Largest moves (GPUs moved between consecutive periods; {number(total)} in all, {how}):",
        *table(["segment", "pool", "moved", "largest", "in period"], rows, "llrrl", "  "),
    ]


def _price_table(plan: Plan, top: int) -> list[str]:
    if not plan.has_duals:
        return []
    # a pool-period without GPUs has a price (what a first GPU there would earn) but no
    # opportunity cost of GPUs it does not have: left out, and said so
    with_gpus = [r for r in plan.pools if has_gpus(r)]
    left_out = len(plan.pools) - len(with_gpus)
    ranked = sorted(with_gpus, key=lambda r: -(r.shadow_price_per_gpu_hour or 0.0))[:top]
    rows = [[r.pool, r.period, number(r.shadow_price_per_gpu_hour, 3)] for r in ranked]
    plural = "s" if left_out > 1 else ""
    note = f" ({left_out} pool-period{plural} without GPUs left out)" if left_out else ""
    return [
        "",
        f"Top opportunity costs (shadow price of a GPU-hour, nominal){note}:",
        *table(["pool", "period", f"{plan.currency}/GPU-hour"], rows, "llr", "  "),
    ]


def _binding_table(plan: Plan, top: int) -> list[str]:
    rows = [
        [b.constraint, ", ".join(b.key.values()), b.bound, number(b.dual, 2)]
        for b in plan.binding[:top]
    ]
    head = f"Binding constraints ({len(plan.binding):,}; largest duals first"
    head += f", dual in {plan.currency} (present value) per unit of the constraint):"
    return [head, *table(["constraint", "key", "bound", "dual"], rows, "lllr", "  ")]


def _solver_lines(plan: Plan) -> list[str]:
    s, cur = plan.solver, plan.currency
    via = "" if s.backend == s.solver else f"{s.backend}:"
    lines = [
        f"Solver: {via}{s.solver}/{s.algorithm} {s.time_s:.3f}s ({s.iterations:,} iterations), "
        f"build {s.build_time_s:.3f}s; {s.columns:,} columns × {s.rows:,} rows, "
        f"{s.nonzeros:,} non-zeros; largest violation {violation(plan.max_violation)} "
        "(checked independently)",
    ]
    if s.first_stage_objective is not None:
        lines.append(
            f"Stable plan: a second solve ({s.stable_time_s or 0.0:.3f}s) chose, of the plans "
            f"within the tolerance of the optimum {money(s.first_stage_objective)} {cur}, the "
            f"one that moves the fewest GPUs ({money(plan.objective - s.first_stage_objective)}"
            f" {cur} from the optimum); shadow prices are the first solve's"
        )
    if s.integer_columns:
        gap = "n/a" if s.gap is None else f"{short(s.gap * 100)}%"
        bound = "n/a" if s.bound is None else money(s.bound)
        relax = "n/a" if s.lp_relaxation_objective is None else money(s.lp_relaxation_objective)
        via_plan = {"rounding": "rounded from the LP relaxation", "mip": "branch and cut"}
        how = via_plan.get(s.whole_units_from or "", "")
        against = {"lp_relaxation": " (the LP relaxation)", "mip": " (proven by the solver)"}
        lines.append(
            f"MILP: {s.integer_columns:,} whole-unit columns{', ' + how if how else ''}; "
            f"relative gap {gap}, bound {bound}{against.get(s.bound_from or '', '')}, "
            f"LP relaxation (fractional GPUs) {relax} {cur}"
        )
        if s.duals_from == "fixed_milp":
            lines.append(
                "Shadow prices are those of the LP with the whole-unit allocations fixed "
                "(capacity valued with those allocations held as they are)"
            )
    return lines
