"""Readable text summary of a plan (what `allocator solve` prints)."""

from __future__ import annotations

from collections import defaultdict

from allocator.plan.money import money
from allocator.plan.tables import Plan


def summary(plan: Plan, top: int = 10) -> str:
    """Margin by segment kind, pool utilisation, top opportunity costs, binding rows."""
    cur = plan.currency
    t = plan.totals
    lines = [
        f"Plan for {plan.scenario!r}: {plan.status.value} — {plan.message}",
        f"  objective {money(t.objective)} {cur} (present value) = gross margin "
        f"{money(t.gross_margin)} + {t.ltv_weight:g} × LTV {money(t.ltv)} − churn "
        f"{money(t.churn_cost)}",
        f"  revenue {money(t.revenue)}, variable cost {money(t.variable_cost)}, rental "
        f"{money(t.rental_cost)}, SLA penalties {money(t.shortfall_penalty)}; "
        f"depreciation {money(t.fixed_cost)} → margin after depreciation "
        f"{money(t.margin_after_depreciation)}",
        "",
        "By segment kind (present value; GPUs first → last period):",
        f"  {'kind':<12}{'revenue':>12}{'gross margin':>14}{'LTV':>12}{'GPUs':>22}{'served':>16}",
    ]
    for k in plan.by_kind.values():
        g0, g1 = k.gpus_by_period[0], k.gpus_by_period[-1]
        s0, s1 = k.served_share_by_period[0], k.served_share_by_period[-1]
        lines.append(
            f"  {k.kind:<12}{money(k.revenue):>12}{money(k.gross_margin):>14}"
            f"{money(k.ltv):>12}{f'{g0:,.0f} → {g1:,.0f}':>22}{f'{s0:.0%} → {s1:.0%}':>16}"
        )

    if plan.reservations:
        held: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for rs in plan.reservations:
            held[rs.segment][0] += rs.gpus
            held[rs.segment][1] += rs.revenue
        n_t = len(plan.periods)
        lines += [
            "",
            f"Reservations accepted (take-or-pay; fees {money(t.reservation_revenue)} {cur} "
            "present value, part of revenue):",
            f"  {'segment':<28}{'GPUs (average)':>16}{'fees (nominal)':>16}",
        ]
        for seg, (k_g, fee) in sorted(held.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"  {seg:<28}{k_g / n_t:>16,.1f}{money(fee):>16}")

    lines += [
        "",
        "Pools (average over the periods):",
        f"  {'pool':<22}{'GPUs':>10}{'util':>8}{'rented':>10}{'price/GPU-h':>14}",
    ]
    acc: dict[str, list] = defaultdict(list)
    for r in plan.pools:
        acc[r.pool].append(r)
    for pool, rows in acc.items():
        n = len(rows)
        gpus = sum(r.gpus for r in rows) / n
        util = sum(r.utilisation for r in rows) / n
        rented = sum(r.rented for r in rows) / n
        prices = [r.shadow_price_per_gpu_hour for r in rows]
        price = "n/a" if None in prices else f"{sum(prices) / n:,.2f}"  # type: ignore[arg-type]
        lines.append(f"  {pool:<22}{gpus:>10,.0f}{util:>8.0%}{rented:>10,.0f}{price:>14}")

    if plan.has_duals:
        lines += ["", f"Top opportunity costs (shadow price of a GPU-hour, {cur}, nominal):"]
        ranked = sorted(plan.pools, key=lambda r: -(r.shadow_price_per_gpu_hour or 0.0))[:top]
        for r in ranked:
            lines.append(f"  {r.pool:<22}{r.period:<10}{r.shadow_price_per_gpu_hour:>10,.3f}")

    lines += ["", f"Binding constraints ({len(plan.binding)}; largest duals first):"]
    for b in plan.binding[:top]:
        dual = "" if b.dual is None else f"{b.dual:>14,.4g}"
        lines.append(f"  {b.label:<48}{b.bound:<7}{dual}")

    s = plan.solver
    via = "" if s.backend == s.solver else f"{s.backend}:"
    lines += [
        "",
        f"Solver: {via}{s.solver}/{s.algorithm} {s.time_s:.3f}s ({s.iterations} iterations), build "
        f"{s.build_time_s:.3f}s; {s.columns:,} columns × {s.rows:,} rows, {s.nonzeros:,} "
        f"non-zeros; largest violation {plan.max_violation:.1e} (checked independently)",
    ]
    if s.integer_columns:
        gap = "n/a" if s.gap is None else f"{s.gap:.2e}"
        bound = "n/a" if s.bound is None else money(s.bound)
        relax = "n/a" if s.lp_relaxation_objective is None else money(s.lp_relaxation_objective)
        lines.append(
            f"MILP: {s.integer_columns:,} whole-unit columns; relative gap {gap}, bound "
            f"{bound}, LP relaxation (fractional GPUs) {relax} {cur}"
        )
        if s.duals_from == "fixed_milp":
            lines.append(
                "Shadow prices are those of the LP with the whole-unit allocations fixed "
                "(capacity valued with those allocations held as they are)"
            )
    for w in plan.warnings:
        lines.append(f"Warning: {w}")
    return "\n".join(lines)
