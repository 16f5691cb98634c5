"""Plans in notebooks: a compact HTML summary (``Plan._repr_html_``) and the charts of the
plan explorer page (``Plan.plot``), drawn with plotly (a core dependency of allocator)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from allocator.numbers import violation
from allocator.plan.money import money
from allocator.plan.rows import RENTALS
from allocator.plan.utilisation import has_gpus, use_of_usable

if TYPE_CHECKING:
    from allocator.plan import Plan

CHARTS = ("allocation", "prices", "utilisation", "margins")
COLORS = {"cloud": "#2563eb", "first_party": "#f59e0b", "rnd": "#10b981", "consumer": "#a855f7"}


def plan_html(plan: Plan, top: int = 5) -> str:
    """Totals, money by kind and the dearest GPU-hours, as one small HTML block."""
    e = html.escape
    t = plan.totals
    cur = e(plan.currency)
    head = (
        f"<b>Plan for {e(plan.scenario)}</b>: {e(plan.status.value)}, objective "
        f"{money(t.objective)} {cur} (PV), gross margin {money(t.gross_margin)}, LTV "
        f"{money(t.ltv)}; {len(plan.allocations)} allocations, max violation "
        f"{violation(plan.max_violation)}"
    )
    rows = "".join(
        f"<tr><td>{e(k.kind)}</td><td>{money(k.revenue)}</td><td>{money(k.gross_margin)}</td>"
        f"<td>{money(k.ltv)}</td>"
        f"<td>{k.gpus_by_period[0]:,.0f} → {k.gpus_by_period[-1]:,.0f}</td></tr>"
        for k in plan.by_kind.values()
    )
    kinds = (
        "<table><tr><th>kind</th><th>revenue</th><th>gross margin</th><th>LTV</th>"
        f"<th>GPUs first → last</th></tr>{rows}</table>"
    )
    with_gpus = [r for r in plan.pools if has_gpus(r)]  # as the text summary
    dear = sorted(with_gpus, key=lambda r: -(r.shadow_price_per_gpu_hour or 0.0))[:top]
    prices = "".join(
        f"<tr><td>{e(r.pool)}</td><td>{e(r.period)}</td>"
        f"<td>{(r.shadow_price_per_gpu_hour or 0.0):,.3f}</td></tr>"
        for r in dear
    )
    price_table = (
        f"<table><tr><th>pool</th><th>period</th><th>{cur}/GPU-hour</th></tr>{prices}</table>"
        if plan.has_duals
        else "<p>no shadow prices (the solver returned no duals)</p>"
    )
    return (
        f"<div class='allocator-plan'><p>{head}</p>{kinds}"
        f"<p>Dearest GPU-hours:</p>{price_table}</div>"
    )


def plot(plan: Plan, chart: str = "allocation", by: str = "kind") -> Any:
    """A plotly Figure: ``allocation`` (GPUs over the periods, stacked ``by`` kind, pool or
    region), ``prices`` (shadow price heatmap), ``utilisation``, ``margins`` (by kind)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError(
            "Plan.plot() needs plotly, a dependency of allocator: pip install plotly"
        ) from None
    if chart not in CHARTS:
        raise ValueError(f"chart must be one of {', '.join(CHARTS)}, got {chart!r}")
    periods = plan.periods
    fig = go.Figure()
    if chart == "allocation":
        if by == "kind":
            for key, k in plan.by_kind.items():
                if key == RENTALS:  # rented GPUs are in the kinds that use them
                    continue
                fig.add_bar(
                    x=periods, y=k.gpus_by_period, name=k.kind, marker_color=COLORS.get(k.kind)
                )
        elif by in ("pool", "region"):
            region = {r.pool: r.region for r in plan.pools}
            sums: dict[str, dict[str, float]] = {}
            for a in plan.allocations:
                key = a.pool if by == "pool" else region[a.pool]
                sums.setdefault(key, dict.fromkeys(periods, 0.0))[a.period] += a.gpus
            for key, v in sums.items():
                fig.add_bar(x=periods, y=[v[p] for p in periods], name=key)
        else:
            raise ValueError(f"by must be kind, pool or region, got {by!r}")
        fig.update_layout(barmode="stack", yaxis_title="GPUs", title="GPUs over the periods")
    elif chart == "prices":
        pools = list(dict.fromkeys(r.pool for r in plan.pools))
        price = {(r.pool, r.period): r.shadow_price_per_gpu_hour for r in plan.pools}
        z = [[price[(p, t)] for t in periods] for p in pools]
        fig.add_heatmap(
            x=periods, y=pools, z=z, colorscale="YlOrRd", colorbar_title=f"{plan.currency}/GPU-h"
        )
        fig.update_layout(
            title="Opportunity cost of a GPU-hour (shadow price)",
            xaxis_title="period",
            yaxis_title="pool",
        )
    elif chart == "utilisation":
        _utilisation(fig, plan)
    else:
        kinds = list(plan.by_kind)
        for field, name in (
            ("revenue", "revenue"),
            ("gross_margin", "gross margin"),
            ("ltv", "LTV"),
        ):
            fig.add_bar(x=kinds, y=[getattr(plan.by_kind[k], field) for k in kinds], name=name)
        fig.update_layout(
            barmode="group",
            yaxis_title=f"{plan.currency} (PV)",
            title="Revenue, gross margin and LTV by kind",
        )
    return fig


def _utilisation(fig: Any, plan: Plan) -> None:
    """A pool × period heatmap of the share of usable capacity used, as the page draws it:
    a pool-period without GPUs is a gap (no data), not 0 %."""
    pools = list(dict.fromkeys(r.pool for r in plan.pools))
    share = {(r.pool, r.period): use_of_usable(r) for r in plan.pools}
    z = [[None if (v := share[(p, t)]) is None else 100 * v for t in plan.periods] for p in pools]
    fig.add_heatmap(
        x=plan.periods,
        y=pools,
        z=z,
        zmin=0,
        zmax=100,
        colorscale="Blues",
        colorbar_title="% of usable",
        hoverongaps=False,
        hovertemplate="%{y}, %{x}: %{z:.1f} % of usable capacity used<extra></extra>",
    )
    fig.update_layout(
        title="Pool use (share of usable capacity; blank: no GPUs)",
        xaxis_title="period",
        yaxis_title="pool",
    )
