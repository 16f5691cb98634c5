"""What really ran, read back: Slurm ``sacct --parsable2`` output, Kubernetes pods or Kueue
Workloads as JSON (``kubectl get pods -A -o json``, ``kubectl get workloads -A -o json``),
or a plain CSV; turned into GPU-hours per (segment, accelerator x region, period), a job
that spans periods split by time. Names are read back through the mapping (queue, account,
namespace -> segment; GRES type or node label -> accelerator; partition or node label ->
region). Periods follow each other from ``horizon_start`` (the mapping's, or given), each
as long as its hours. Any bad row stops the import with the file, line and field.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from allocator.errors import AllocatorError
from allocator.operations.mapping import Mapping, rfc1123
from allocator.scenario import Scenario

FORMATS = ("slurm", "kueue", "csv")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


class UsageError(AllocatorError, ValueError):
    """A usage file that cannot be read: names the file, the line and the field."""


@dataclass
class Job:
    line: int
    segment: str
    accelerator: str
    region: str
    start: datetime
    end: datetime
    gpus: float


@dataclass
class Usage:
    """GPU-hours (segment, flavor, period) of a scenario, plus what fell outside."""

    segments: list[str]
    flavors: list[tuple[str, str]]
    periods: list[str]
    gpu_hours: np.ndarray  # (S, F, T)
    jobs: int
    outside_gpu_hours: float  # before the first period or after the last

    def to_dict(self) -> dict[str, Any]:
        s, f, t = np.nonzero(self.gpu_hours)
        return {
            "jobs": self.jobs,
            "outside_gpu_hours": self.outside_gpu_hours,
            "rows": [
                {
                    "segment": self.segments[a],
                    "accelerator": self.flavors[b][0],
                    "region": self.flavors[b][1],
                    "period": self.periods[c],
                    "gpu_hours": float(self.gpu_hours[a, b, c]),
                }
                for a, b, c in zip(s.tolist(), f.tolist(), t.tolist(), strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], sc: Scenario) -> Usage:
        u = empty_usage(sc)
        for i, r in enumerate(d.get("rows", [])):
            try:
                key = (
                    u.segments.index(r["segment"]),
                    u.flavors.index((r["accelerator"], r["region"])),
                    u.periods.index(r["period"]),
                )
                u.gpu_hours[key] += float(r["gpu_hours"])
            except (KeyError, ValueError, TypeError) as exc:
                raise UsageError(f"rows[{i}]: {exc}") from None
        u.jobs, u.outside_gpu_hours = int(d.get("jobs", 0)), float(d.get("outside_gpu_hours", 0))
        return u


def flavors_of(sc: Scenario) -> list[tuple[str, str]]:
    return sorted({(p.accelerator, p.region) for p in sc.pools})


def empty_usage(sc: Scenario) -> Usage:
    fl = flavors_of(sc)
    return Usage(
        [s.id for s in sc.segments],
        fl,
        [p.label for p in sc.periods],
        np.zeros((len(sc.segments), len(fl), len(sc.periods))),
        0,
        0.0,
    )


class _Names:
    """Scheduler names back to the scenario's: case-insensitive, RFC 1123 forms too."""

    def __init__(self, sc: Scenario, m: Mapping):
        self.seg: dict[str, str] = {}
        for s in sc.segments:
            for n in (s.id, m.queue(s.id), m.account(s.id), *m.namespaces(s.id)):
                self.seg.setdefault(n.lower(), s.id)
        self.acc: dict[str, str] = {}
        self.region: dict[str, str] = {}
        for acc, region in flavors_of(sc):
            for n in (acc, m.gres(acc), rfc1123(acc), *m.node_labels(acc, region).values()):
                if n != region:
                    self.acc.setdefault(n.lower(), acc)
            rmap = m.regions.get(region)
            for n in (region, *(rmap.partitions if rmap else [])):
                self.region.setdefault(n.lower(), region)
            self.region.setdefault(
                m.node_labels(acc, region).get(m.region_label, "").lower(), region
            )
        self.flavors = {(a.lower(), r.lower()): (a, r) for a, r in flavors_of(sc)}
        self.regions_of: dict[str, list[str]] = {}
        for a, r in flavors_of(sc):
            self.regions_of.setdefault(a, []).append(r)


def _time(value: str, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise UsageError(f"{where}: {value!r} is not a date and time (ISO 8601)") from None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _job(
    names: _Names,
    where: str,
    line: int,
    seg: str,
    acc: str,
    region: str | None,
    start: str,
    end: str,
    gpus: float,
) -> Job:
    s = names.seg.get(seg.lower())
    if s is None:
        raise UsageError(f"{where}: segment/queue/account {seg!r} is not one the mapping knows")
    a = names.acc.get(acc.lower())
    if a is None:
        raise UsageError(f"{where}: GPU type {acc!r} is not an accelerator of the scenario")
    if region:
        r = names.region.get(region.lower())
        if r is None:
            raise UsageError(f"{where}: region/partition {region!r} is not one of the scenario's")
    elif len(names.regions_of[a]) == 1:
        r = names.regions_of[a][0]
    else:
        raise UsageError(f"{where}: {a} is in several regions; the row does not say which")
    if (a, r) not in names.flavors.values():
        raise UsageError(f"{where}: no pool has {a} in {r}")
    t0, t1 = _time(start, f"{where}: start"), _time(end, f"{where}: end")
    if t1 < t0:
        raise UsageError(f"{where}: end {end} is before start {start}")
    if not 0 <= gpus < 1e9:  # NaN and infinity too
        raise UsageError(f"{where}: GPUs {gpus!r} must be a number from 0 to 1e9")
    return Job(line, s, a, r, t0, t1, gpus)


def read_csv(text: str, source: str, names: _Names) -> list[Job]:
    """Columns: segment (or queue), gpu_type (or accelerator), region (optional), start,
    end, gpus."""
    rows = csv.DictReader(io.StringIO(text))
    try:
        fields = {f.strip().lower() for f in rows.fieldnames or []}
        need = [("segment", "queue"), ("gpu_type", "accelerator"), ("start",), ("end",), ("gpus",)]
        for alts in need:
            if not fields & set(alts):
                raise UsageError(f"{source}:1: no column {' or '.join(alts)}")
        return [
            _csv_row(raw, f"{source}:{rows.line_num}", n, names) for n, raw in enumerate(rows, 2)
        ]
    except csv.Error as exc:
        raise UsageError(f"{source}:{rows.line_num}: not valid CSV: {exc}") from None


def _csv_row(raw: dict[Any, Any], where: str, n: int, names: _Names) -> Job:
    if None in raw:
        raise UsageError(f"{where}: more fields than the header has")
    r = {k.strip().lower(): (v or "").strip() for k, v in raw.items()}
    try:
        gpus = float(r["gpus"])
    except ValueError:
        raise UsageError(f"{where}: gpus {r['gpus']!r} is not a number") from None
    return _job(
        names,
        where,
        n,
        r.get("segment") or r.get("queue", ""),
        r.get("gpu_type") or r.get("accelerator", ""),
        r.get("region"),
        r["start"],
        r["end"],
        gpus,
    )


def _tres_gpus(tres: str) -> tuple[str | None, float]:
    """(GPU type, GPUs) in an AllocTRES string such as cpu=8,gres/gpu:h100=4,gres/gpu=4."""
    typed, total = None, 0.0
    for part in tres.split(","):
        key, _, value = part.partition("=")
        if key.startswith("gres/gpu:"):
            typed = key.split(":", 1)[1]
            total = float(value)
        elif key == "gres/gpu" and typed is None:
            total = float(value)
    return typed, total


def read_slurm(text: str, source: str, names: _Names) -> list[Job]:
    """``sacct --parsable2 --format=JobID,Account,QOS,Partition,Start,End,AllocTRES``; job
    steps (ids with a dot) are left out (the job counts its GPUs once), as are jobs with no
    GPUs. The segment is the QOS's or the account's (the QOS first, as `allocator quotas`
    names them <queue>-<period>)."""
    lines = text.splitlines()
    if not lines:
        raise UsageError(f"{source}:1: empty file")
    head = [h.strip() for h in lines[0].split("|")]
    for col in ("JobID", "Account", "Start", "End", "AllocTRES"):
        if col not in head:
            raise UsageError(f"{source}:1: no column {col} (sacct --parsable2 --format=...)")
    jobs = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("|")
        if len(cells) < len(head):
            raise UsageError(f"{source}:{n}: {len(cells)} fields, the header has {len(head)}")
        r = dict(zip(head, cells, strict=False))
        if "." in r["JobID"]:
            continue
        where = f"{source}:{n}"
        try:
            gtype, gpus = _tres_gpus(r["AllocTRES"])
        except ValueError:
            raise UsageError(
                f"{where}: AllocTRES {r['AllocTRES']!r} is not TRES=count,..."
            ) from None
        if gpus <= 0:
            continue
        if gtype is None:
            raise UsageError(f"{where}: AllocTRES has GPUs but no type (gres/gpu:TYPE)")
        if r["End"] in ("Unknown", "None", ""):
            raise UsageError(f"{where}: End {r['End']!r}: the job has not ended")
        qos = r.get("QOS", "")
        qseg = qos.rsplit("-", 1)[0] if qos else ""
        seg = qseg if qseg.lower() in names.seg else r["Account"]
        jobs.append(
            _job(
                names, where, n, seg, gtype, r.get("Partition") or None, r["Start"], r["End"], gpus
            )
        )
    return jobs


def _pod_gpus(spec: dict[str, Any]) -> float:
    total = 0.0
    for c in spec.get("containers", []):
        res = c.get("resources", {})
        for kind in ("limits", "requests"):
            got = [float(v) for k, v in (res.get(kind) or {}).items() if k in GPU_RESOURCES]
            if got:
                total += sum(got)
                break
    return total


def read_kubernetes(text: str, source: str, names: _Names, m: Mapping) -> list[Job]:
    """A List of Pods (namespace -> segment; nodeSelector labels -> accelerator and region;
    status.startTime to the containers' finishedAt) or of Kueue Workloads (the admitting
    ClusterQueue -> segment; the flavor -> accelerator and region; Admitted to Finished)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UsageError(f"{source}: items: expected a Kubernetes List (kubectl get ... -o json)")
    flavor_names = {rfc1123(f"{a}-{r}"): (a, r) for a, r in names.flavors.values()}
    jobs = []
    for i, it in enumerate(items):
        where = f"{source}: items[{i}]"
        try:
            job = (_workload if it.get("kind") == "Workload" else _pod)(
                it, where, i, names, m, flavor_names
            )
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"{where}: missing or malformed field {exc}") from None
        if job is not None:
            jobs.append(job)
    return jobs


def _pod(it, where, i, names, m, _flavors):  # type: ignore[no-untyped-def]
    gpus = _pod_gpus(it["spec"])
    if gpus <= 0:
        return None
    sel = it["spec"].get("nodeSelector") or {}
    acc = sel.get(m.accelerator_label, "")
    region = sel.get(m.region_label)
    ends = [
        c["state"]["terminated"]["finishedAt"]
        for c in it["status"].get("containerStatuses", [])
        if "terminated" in (c.get("state") or {})
    ]
    if not ends:
        raise UsageError(f"{where}: status.containerStatuses: the pod has not finished")
    return _job(
        names,
        where,
        i,
        it["metadata"]["namespace"],
        acc,
        region,
        it["status"]["startTime"],
        max(ends),
        gpus,
    )


def _workload(it, where, i, names, m, flavors):  # type: ignore[no-untyped-def]
    adm = it["status"]["admission"]
    cond = {c["type"]: c["lastTransitionTime"] for c in it["status"].get("conditions", [])}
    if "Finished" not in cond:
        raise UsageError(f"{where}: status.conditions: the workload has not finished")
    gpus, flavor = 0.0, None
    for ps in adm["podSetAssignments"]:
        for res, fl in (ps.get("flavors") or {}).items():
            if res in GPU_RESOURCES:
                gpus += float((ps.get("resourceUsage") or {}).get(res, 0))
                flavor = fl
    if gpus <= 0:
        return None
    if flavor not in flavors:
        raise UsageError(f"{where}: flavor {flavor!r} is not one `allocator quotas` names")
    acc, region = flavors[flavor]
    return _job(
        names, where, i, adm["clusterQueue"], acc, region, cond["Admitted"], cond["Finished"], gpus
    )


def period_bounds(sc: Scenario, start: datetime) -> np.ndarray:
    """Period edges in hours from ``start``: (T + 1,)."""
    return np.concatenate([[0.0], np.cumsum([p.hours for p in sc.periods])])


def import_usage(
    path: str | Path,
    fmt: str,
    sc: Scenario,
    mapping: Mapping | None = None,
    start: datetime | None = None,
) -> Usage:
    """GPU-hours per (segment, flavor, period) of the jobs in ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: cannot read: {exc}") from None
    return parse_usage(text, str(p), fmt, sc, mapping, start)


def parse_usage(
    text: str,
    source: str,
    fmt: str,
    sc: Scenario,
    mapping: Mapping | None = None,
    start: datetime | None = None,
) -> Usage:
    """As :func:`import_usage`, of the text of a file; errors name ``source``."""
    m = mapping or Mapping()
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    origin = start or m.horizon_start
    if origin is None:
        raise UsageError(
            "when does the first period start? give horizon_start in the mapping or --start"
        )
    if origin.tzinfo:
        origin = origin.astimezone(UTC).replace(tzinfo=None)
    names = _Names(sc, m)
    if fmt == "csv":
        jobs = read_csv(text, source, names)
    elif fmt == "slurm":
        jobs = read_slurm(text, source, names)
    else:
        jobs = read_kubernetes(text, source, names, m)
    return split_by_period(jobs, sc, origin)


def split_by_period(jobs: list[Job], sc: Scenario, origin: datetime) -> Usage:
    """Each job's GPUs x its overlap (hours) with each period, as one (job, period) array."""
    u = empty_usage(sc)
    u.jobs = len(jobs)
    if not jobs:
        return u
    hour = timedelta(hours=1)
    t0 = np.array([(j.start - origin) / hour for j in jobs])
    t1 = np.array([(j.end - origin) / hour for j in jobs])
    gpus = np.array([j.gpus for j in jobs])
    edges = period_bounds(sc, origin)
    overlap = np.clip(
        np.minimum(t1[:, None], edges[None, 1:]) - np.maximum(t0[:, None], edges[None, :-1]),
        0.0,
        None,
    )
    gh = overlap * gpus[:, None]
    s = np.array([u.segments.index(j.segment) for j in jobs])
    f = np.array([u.flavors.index((j.accelerator, j.region)) for j in jobs])
    np.add.at(u.gpu_hours, (s, f), gh)
    u.outside_gpu_hours = float((gpus * (t1 - t0)).sum() - gh.sum())
    return u
