"""The results of a diagnosis: the conflicts (constraints and their sums), the changes
of the smallest relaxation, and the diagnosis that holds them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# the requirements a relaxation may change, most protected first (the default order)
REQUIREMENTS = (
    "contract_min",
    "gpu_limits",
    "rnd_min_share",
    "kind_floors",
    "gpu_hour_budgets",
    "max_change_share",
)


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
