"""Demand scenarios by sampling: each scenario scales every segment kind's demand by a
lognormal factor of mean 1 and coefficient of variation ``cv`` (or the kind's own in
``kind_cv``), the kinds' log-factors correlated with coefficient ``correlation``; equal
probabilities. Seeded, so a run can be repeated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from allocator.scenario import Scenario


def sample_demand_scenarios(
    base: Scenario,
    n: int,
    *,
    cv: float = 0.2,
    kind_cv: Mapping[str, float] | None = None,
    correlation: float = 0.0,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """``n`` demand scenarios ({name, probability, demand_scale}) for ``base``'s kinds."""
    if n < 1:
        raise ValueError(f"give at least one sample, got {n!r}")
    kinds = sorted({s.kind.value for s in base.segments})
    spread = {k: float(cv) for k in kinds}
    for k, v in (kind_cv or {}).items():
        if k not in spread:
            raise ValueError(f"kind {k!r} has no segment in {base.name!r} (kinds: {kinds})")
        spread[k] = float(v)
    if any(v < 0 or not np.isfinite(v) for v in spread.values()):
        raise ValueError("coefficients of variation must be finite and >= 0")
    m = len(kinds)
    if not -1.0 / max(m - 1, 1) <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1/(kinds-1), 1], got {correlation!r}")
    sigma = np.sqrt(np.log1p(np.array([spread[k] for k in kinds]) ** 2))
    corr = np.full((m, m), float(correlation))
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(sigma, sigma)
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(-0.5 * sigma**2, cov, size=n, method="eigh")
    factors = np.exp(z)  # mean 1 per kind
    return [
        {
            "name": f"sample{i + 1}",
            "probability": 1.0 / n,
            "demand_scale": {k: float(round(f, 6)) for k, f in zip(kinds, row, strict=True)},
        }
        for i, row in enumerate(factors)
    ]


__all__ = ["sample_demand_scenarios"]
