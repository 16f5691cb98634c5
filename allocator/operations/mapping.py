"""The mapping from a plan's names to a scheduler's: queues, namespaces, accounts, node
labels and GRES types per segment, accelerator and region, plus the borrowing, lending and
weight policies. YAML or JSON (YAML is a superset); every field has a default, so no file
is needed. Names it gives that the scenario does not know are errors naming the field.

>>> m = Mapping.model_validate({"segments": {"chat": {"queue": "chat-prod"}}})
>>> m.queue("chat"), m.queue("Cloud_EU"), m.gres("H100")
('chat-prod', 'cloud-eu', 'h100')
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from allocator.errors import AllocatorError
from allocator.scenario import Scenario

KINDS = ("cloud", "first_party", "rnd", "consumer")
# default kind priorities when weight policy is "kind": customers who pay by the hour first
KIND_WEIGHTS = {"cloud": 4, "first_party": 3, "consumer": 2, "rnd": 1}
GPU = "nvidia.com/gpu"
Share = Annotated[float, Field(ge=0, le=1)]


class MappingError(AllocatorError, ValueError):
    """A mapping file that cannot be read or names what the scenario does not have."""


def rfc1123(name: str) -> str:
    """``name`` as an RFC 1123 label: lower case, [a-z0-9-], at most 63 characters."""
    s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return s[:63].rstrip("-") or "x"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentMap(_M):
    queue: str | None = Field(None, description="Queue / ClusterQueue / QOS base name.")
    namespaces: list[str] | None = Field(None, description="Kubernetes namespaces (LocalQueues).")
    account: str | None = Field(None, description="Slurm account.")
    weight: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    parent: str | None = Field(
        None, description="Parent queue / cohort; default: kind-<the segment's kind>."
    )


class AcceleratorMap(_M):
    resource: str = Field(GPU, description="Extended resource name pods request.")
    gres: str | None = Field(None, description="Slurm GRES type (default: lower-case id).")
    node_labels: dict[str, str] = Field(default_factory=dict)


class RegionMap(_M):
    node_labels: dict[str, str] = Field(default_factory=dict)
    partitions: list[str] = Field(
        default_factory=list, description="Slurm partitions in the region (usage import)."
    )


class Borrow(_M):
    policy: Literal["headroom", "share", "none"] = Field(
        "headroom",
        description="headroom: may borrow the flavor's GPUs no queue is guaranteed; share: "
        "may borrow `share` of the flavor's GPUs; none: cap = guarantee.",
    )
    share: Share = 0.0


class Mapping(_M):
    segments: dict[str, SegmentMap] = Field(default_factory=dict)
    accelerators: dict[str, AcceleratorMap] = Field(default_factory=dict)
    regions: dict[str, RegionMap] = Field(default_factory=dict)
    borrow: Borrow = Field(default_factory=Borrow)
    lend_share: Share = Field(1.0, description="Share of its guarantee a queue may lend.")
    weight: Literal["value", "kind", "equal"] = "value"
    kind_weights: dict[Literal["cloud", "first_party", "rnd", "consumer"], int] = Field(
        default_factory=dict
    )
    root: str = Field("fleet", description="Root cohort / parent queue name.")
    horizon_start: datetime | None = Field(
        None,
        description="When the first period starts (usage import: periods follow each other, "
        "each as long as its hours).",
    )
    region_label: str = "topology.kubernetes.io/region"
    accelerator_label: str = "nvidia.com/gpu.product"

    def _seg(self, sid: str) -> SegmentMap:
        return self.segments.get(sid) or SegmentMap()

    def queue(self, sid: str) -> str:
        return rfc1123(self._seg(sid).queue or sid)

    def namespaces(self, sid: str) -> list[str]:
        return [rfc1123(n) for n in (self._seg(sid).namespaces or [self.queue(sid)])]

    def account(self, sid: str) -> str:
        return rfc1123(self._seg(sid).account or self.queue(sid))

    def parent(self, sid: str, kind: str) -> str:
        return rfc1123(self._seg(sid).parent or f"kind-{kind}")

    def resource(self, acc: str) -> str:
        return (self.accelerators.get(acc) or AcceleratorMap()).resource

    def gres(self, acc: str) -> str:
        a = self.accelerators.get(acc) or AcceleratorMap()
        return a.gres or rfc1123(acc)

    def node_labels(self, acc: str, region: str) -> dict[str, str]:
        a = self.accelerators.get(acc)
        r = self.regions.get(region)
        labels = dict(a.node_labels) if a and a.node_labels else {self.accelerator_label: acc}
        labels.update(r.node_labels if r and r.node_labels else {self.region_label: region})
        return labels

    def kind_weight(self, kind: str) -> int:
        return int(self.kind_weights.get(kind, KIND_WEIGHTS[kind]))  # type: ignore[call-overload]

    def check_against(self, sc: Scenario, source: str = "mapping") -> None:
        """Raise MappingError naming every segment, accelerator or region the mapping names
        that ``sc`` has not."""
        known = {
            "segments": {s.id for s in sc.segments},
            "accelerators": {p.accelerator for p in sc.pools},
            "regions": {p.region for p in sc.pools},
        }
        bad = [
            f"{source}: {field}.{name}: no such {field[:-1]} in scenario {sc.name!r}"
            for field, ids in known.items()
            for name in getattr(self, field)
            if name not in ids
        ]
        if bad:
            raise MappingError("\n".join(bad))


class _Loader(yaml.SafeLoader):
    """Safe YAML without aliases: a few lines of anchors and aliases can stand for a
    structure exponentially large to walk (a "billion laughs"); a mapping needs none."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not accepted in a mapping", mark
            )
        return super().compose_node(parent, index)


def parse_mapping(data: Any, source: str = "mapping") -> Mapping:
    if data is None:
        return Mapping()
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise MappingError("\n".join(lines)) from None


def load_mapping(path: str | Path | None, scenario: Scenario | None = None) -> Mapping:
    """The mapping in ``path`` (YAML or JSON), or the default when ``path`` is None;
    checked against ``scenario`` when given."""
    if path is None:
        return Mapping()
    p = Path(path)
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise MappingError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise MappingError(
            f"{where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}"
        ) from None
    m = parse_mapping(data, str(p))
    if scenario is not None:
        m.check_against(scenario, str(p))
    return m
