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

The modules, in the order data flows: ``system`` (the LP as a feasibility system for
HiGHS, its IIS), ``domain`` (each row's block, key and numbers), ``wording`` (numbers as
a planner reads them), ``conflicts`` (the IIS in domain words), ``relaxation`` (the
elastic LP and the smallest change), ``diagnosis`` (:func:`diagnose`,
:func:`apply_relaxation`); ``results`` holds the result classes.
"""

from allocator.analysis.infeasibility.diagnosis import apply_relaxation, diagnose
from allocator.analysis.infeasibility.results import (
    REQUIREMENTS,
    Conflict,
    ConflictGroup,
    Diagnosis,
    Relaxation,
)

# the feasibility system, for tests that check a conflict is irreducible
from allocator.analysis.infeasibility.system import _is_feasible as _is_feasible
from allocator.analysis.infeasibility.system import _system as _system

__all__ = [
    "REQUIREMENTS",
    "Conflict",
    "ConflictGroup",
    "Diagnosis",
    "Relaxation",
    "apply_relaxation",
    "diagnose",
]
