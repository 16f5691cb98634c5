"""One emitter per scheduler: a QuotaSet's rows of one period as the scheduler's own
objects and field names, checked before anything is written (``check``), then rendered as
YAML (Kubernetes objects, YuniKorn's queues.yaml) or a shell script (Slurm's sacctmgr).

Field names are the schedulers' own (docs/operations.md says where each is documented):
Kueue ``kueue.x-k8s.io/v1beta2`` ResourceFlavor / Cohort / ClusterQueue / LocalQueue;
Volcano ``scheduling.volcano.sh/v1beta1`` Queue; YuniKorn ``queues.yaml``; KAI
``scheduling.run.ai/v2`` Queue; Slurm ``sacctmgr`` QOS and account limits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml

from allocator.operations.mapping import rfc1123
from allocator.operations.quotas import QuotaError, QuotaSet

KUEUE = "kueue.x-k8s.io/v1beta2"
VOLCANO = "scheduling.volcano.sh/v1beta1"
KAI = "scheduling.run.ai/v2"
ANNOTATION = "allocator.io"
RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TARGETS = ("kueue", "volcano", "yunikorn", "kai", "slurm")


def _period_rows(q: QuotaSet, period: str) -> np.ndarray:
    if period not in q.periods:
        raise QuotaError(f"period {period!r}: not one of the plan's periods {q.periods}")
    return np.flatnonzero(q.per == q.periods.index(period))


def _annotations(q: QuotaSet, period: str) -> dict[str, str]:
    return {
        f"{ANNOTATION}/plan": q.plan_id,
        f"{ANNOTATION}/scenario": q.scenario,
        f"{ANNOTATION}/period": period,
    }


def _segment_rows(q: QuotaSet, rows: np.ndarray) -> dict[int, list[int]]:
    by: dict[int, list[int]] = defaultdict(list)
    for i in rows.tolist():
        by[int(q.seg[i])].append(i)
    return dict(sorted(by.items()))


# ----------------------------------------------------------------------------- kueue
def kueue_objects(q: QuotaSet, period: str) -> list[dict[str, Any]]:
    """ResourceFlavors, Cohorts (the root, one per kind or mapped parent), a ClusterQueue per
    segment and a LocalQueue per namespace."""
    m, rows, ann = q.mapping, _period_rows(q, period), _annotations(q, period)
    objs: list[dict[str, Any]] = []
    used_flavors = sorted({int(q.flv[i]) for i in rows.tolist()})
    for f in used_flavors:
        acc, region = q.flavors[f]
        objs.append(
            {
                "apiVersion": KUEUE,
                "kind": "ResourceFlavor",
                "metadata": {"name": q.flavor_name(f), "annotations": ann},
                "spec": {"nodeLabels": m.node_labels(acc, region)},
            }
        )
    root = rfc1123(m.root)
    objs.append({"apiVersion": KUEUE, "kind": "Cohort", "metadata": {"name": root}, "spec": {}})
    by_seg = _segment_rows(q, rows)
    parents = sorted({m.parent(q.segments[s], q.kinds[s]) for s in by_seg})
    for p in parents:
        objs.append(
            {
                "apiVersion": KUEUE,
                "kind": "Cohort",
                "metadata": {"name": p},
                "spec": {"parentName": root},
            }
        )
    for s, idx in by_seg.items():
        sid = q.segments[s]
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i in sorted(idx, key=lambda i: q.flavor_name(int(q.flv[i]))):
            res = m.resource(q.flavors[int(q.flv[i])][0])
            g, cap = int(q.guaranteed[i]), int(q.cap[i])
            groups[res].append(
                {
                    "name": q.flavor_name(int(q.flv[i])),
                    "resources": [
                        {
                            "name": res,
                            "nominalQuota": g,
                            "borrowingLimit": cap - g,
                            "lendingLimit": int(q.lend_limit[i]),
                        }
                    ],
                }
            )
        objs.append(
            {
                "apiVersion": KUEUE,
                "kind": "ClusterQueue",
                "metadata": {"name": m.queue(sid), "annotations": ann},
                "spec": {
                    "cohortName": m.parent(sid, q.kinds[s]),
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": m.namespaces(sid),
                            }
                        ]
                    },
                    "resourceGroups": [
                        {"coveredResources": [res], "flavors": fl}
                        for res, fl in sorted(groups.items())
                    ],
                    "fairSharing": {"weight": str(int(q.weight[idx[0]]))},
                },
            }
        )
        for ns in m.namespaces(sid):
            objs.append(
                {
                    "apiVersion": KUEUE,
                    "kind": "LocalQueue",
                    "metadata": {"name": m.queue(sid), "namespace": ns, "annotations": ann},
                    "spec": {"clusterQueue": m.queue(sid)},
                }
            )
    return objs


def kueue_effective_quotas(q: QuotaSet, period: str) -> list[dict[str, Any]]:
    """The alternative for Dynamic Quota Orchestration (KEP-12382): per ClusterQueue a
    status patch, ``status.effectiveQuotas`` one entry per flavor and resource."""
    out = []
    for cq in (o for o in kueue_objects(q, period) if o["kind"] == "ClusterQueue"):
        quotas = [
            {"flavor": fl["name"], **r}
            for g in cq["spec"]["resourceGroups"]
            for fl in g["flavors"]
            for r in fl["resources"]
        ]
        out.append(
            {
                "apiVersion": KUEUE,
                "kind": "ClusterQueue",
                "metadata": {
                    "name": cq["metadata"]["name"],
                    "annotations": cq["metadata"]["annotations"],
                },
                "status": {"effectiveQuotas": quotas},
            }
        )
    return out


# ------------------------------------------------------- queue trees (volcano, kai, yunikorn)
def _tree(q: QuotaSet, period: str) -> list[dict[str, Any]]:
    """Leaves (segment x flavor) under a queue per segment under a queue per parent (kind):
    each node with its resource sums {resource: (guarantee, deserved, cap)} and weight."""
    m, rows = q.mapping, _period_rows(q, period)
    nodes: list[dict[str, Any]] = []
    parents: dict[str, dict[str, Any]] = {}
    for s, idx in _segment_rows(q, rows).items():
        sid = q.segments[s]
        pname = m.parent(sid, q.kinds[s])
        parent: dict[str, Any] = parents.setdefault(
            pname, {"name": pname, "parent": None, "res": {}, "weight": 0}
        )
        seg: dict[str, Any] = {
            "name": m.queue(sid),
            "parent": pname,
            "res": {},
            "weight": int(q.weight[idx[0]]),
        }
        parent["weight"] = max(parent["weight"], seg["weight"])
        leaves = []
        for i in idx:
            acc = q.flavors[int(q.flv[i])][0]
            res = m.resource(acc)
            g, lend, cap = int(q.guaranteed[i]), int(q.lend_limit[i]), int(q.cap[i])
            triple = (g - lend, g, cap)  # guarantee: the part never lent; deserved; capability
            leaves.append(
                {
                    "name": rfc1123(f"{m.queue(sid)}-{q.flavor_name(int(q.flv[i]))}"),
                    "parent": seg["name"],
                    "res": {res: triple},
                    "weight": seg["weight"],
                    "flavor": int(q.flv[i]),
                }
            )
            for node in (seg, parent):
                old = node["res"].get(res, (0, 0, 0))
                node["res"][res] = tuple(a + b for a, b in zip(old, triple, strict=True))
        nodes.append(seg)
        nodes.extend(leaves)
    # a parent's capability: at most the GPUs of the flavors its children draw on
    caps: dict[str, int] = defaultdict(int)
    t = q.periods.index(period)
    for f, (acc, _) in enumerate(q.flavors):
        caps[m.resource(acc)] += int(q.flavor_gpus[f, t])
    for node in [*parents.values(), *nodes]:
        node["res"] = {r: (g, d, min(c, caps[r])) for r, (g, d, c) in node["res"].items()}
    return [*sorted(parents.values(), key=lambda n: n["name"]), *nodes]


def volcano_objects(q: QuotaSet, period: str) -> list[dict[str, Any]]:
    ann = _annotations(q, period)
    out = []
    for n in _tree(q, period):
        out.append(
            {
                "apiVersion": VOLCANO,
                "kind": "Queue",
                "metadata": {"name": n["name"], "annotations": ann},
                "spec": {
                    "weight": n["weight"],
                    "parent": n["parent"] or "root",  # Volcano's built-in root queue
                    "reclaimable": True,
                    "guarantee": {"resource": {r: str(v[0]) for r, v in n["res"].items()}},
                    "deserved": {r: str(v[1]) for r, v in n["res"].items()},
                    "capability": {r: str(v[2]) for r, v in n["res"].items()},
                },
            }
        )
    return out


def kai_objects(q: QuotaSet, period: str) -> list[dict[str, Any]]:
    ann = _annotations(q, period)
    unlimited = {"quota": -1, "limit": -1, "overQuotaWeight": 1}
    out = []
    for n in _tree(q, period):
        d, c = (sum(v[k] for v in n["res"].values()) for k in (1, 2))
        out.append(
            {
                "apiVersion": KAI,
                "kind": "Queue",
                "metadata": {"name": n["name"], "annotations": ann},
                "spec": {
                    **({"parentQueue": n["parent"]} if n["parent"] else {}),
                    "resources": {
                        "gpu": {"quota": d, "overQuotaWeight": n["weight"], "limit": c},
                        "cpu": dict(unlimited),
                        "memory": dict(unlimited),
                    },
                },
            }
        )
    return out


def yunikorn_config(q: QuotaSet, period: str) -> dict[str, Any]:
    tree = _tree(q, period)
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    root = rfc1123(q.mapping.root)
    for n in tree:
        children[n["parent"] or root].append(n)

    def queue(n: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": n["name"],
            "resources": {
                "guaranteed": {r: v[1] for r, v in n["res"].items()},
                "max": {r: v[2] for r, v in n["res"].items()},
            },
        }
        if children.get(n["name"]):
            out["queues"] = [queue(c) for c in children[n["name"]]]
        return out

    return {
        "partitions": [
            {
                "name": "default",
                "queues": [
                    {
                        "name": "root",
                        "submitacl": "*",
                        "queues": [{"name": root, "queues": [queue(c) for c in children[root]]}],
                    }
                ],
            }
        ]
    }


# ----------------------------------------------------------------------------- slurm
def slurm_script(q: QuotaSet, period: str) -> str:
    """sacctmgr commands: a QOS per segment and period with GrpTRES (the cap per GRES type)
    and GrpTRESMins (the GPU-hour budget x 60, NoDecay), the account's fairshare (weight)."""
    m, rows = q.mapping, _period_rows(q, period)
    types = sorted({m.gres(a) for a, _ in q.flavors})
    lines = [
        "#!/bin/sh",
        f"# allocator quotas: plan {q.plan_id}, scenario {q.scenario}, period {period}",
        "# slurm.conf needs the GPU types tracked:",
        "#   AccountingStorageTRES=gres/gpu," + ",".join(f"gres/gpu:{t}" for t in types),
        "set -e",
    ]
    for s, idx in _segment_rows(q, rows).items():
        sid = q.segments[s]
        qos = rfc1123(f"{m.queue(sid)}-{period}")
        cap: dict[str, int] = defaultdict(int)
        for i in idx:
            cap[m.gres(q.flavors[int(q.flv[i])][0])] += int(q.cap[i])
        limits = "GrpTRES=" + ",".join(f"gres/gpu:{t}={cap[t]}" for t in sorted(cap))
        budget = q.budget_gpu_hours[idx]
        if not np.isnan(budget).all():  # the segment's GPU-hours in the period, any type
            limits += f" GrpTRESMins=gres/gpu={int(np.nansum(budget) * 60)} Flags=NoDecay"
        acct = m.account(sid)
        lines += [
            f"sacctmgr -i add qos {qos} || true  # exists after the first period",
            f"sacctmgr -i modify qos where name={qos} set {limits}",
            f"sacctmgr -i add account {acct} || true",
            f"sacctmgr -i modify account where name={acct} set fairshare={int(q.weight[idx[0]])} "
            f"qos+={qos} defaultqos={qos}",
        ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- checks
def check(q: QuotaSet, target: str, objs: list[dict[str, Any]]) -> None:
    """Raise QuotaError naming every object that breaks a rule: guarantee <= deserved <= cap,
    Σ guaranteed per flavor <= its GPUs, RFC 1123 names, resources in coveredResources."""
    bad: list[str] = []
    for t in range(len(q.periods)):
        sel = q.per == t
        sums = np.bincount(q.flv[sel], weights=q.guaranteed[sel], minlength=len(q.flavors))
        for f in np.flatnonzero(sums > q.flavor_gpus[:, t]).tolist():
            bad.append(
                f"flavor {q.flavor_name(f)} in {q.periods[t]}: Σ guaranteed {int(sums[f])} > "
                f"its {int(q.flavor_gpus[f, t])} GPUs"
            )
    seen: set[tuple[Any, ...]] = set()
    for o in objs:
        md = o.get("metadata", {})
        where = f"{o.get('kind')} {md.get('name')!r}"
        ident = (o.get("kind"), md.get("namespace"), md.get("name"))
        if ident in seen:
            bad.append(f"{where}: the name is used twice")
        seen.add(ident)
        for key in ("name", "namespace"):
            if key in md and not (RFC1123_LABEL.match(md[key]) and len(md[key]) <= 63):
                bad.append(f"{where}: metadata.{key} {md[key]!r} is not an RFC 1123 label")
        spec = o.get("spec", {})
        for g in spec.get("resourceGroups", []):
            for fl in g["flavors"]:
                for r in fl["resources"]:
                    if r["name"] not in g["coveredResources"]:
                        bad.append(f"{where}: {r['name']} not in coveredResources")
                    if r["nominalQuota"] < 0 or r["borrowingLimit"] < 0:
                        bad.append(f"{where}: negative quota in flavor {fl['name']}")
                    if r["lendingLimit"] > r["nominalQuota"]:
                        bad.append(f"{where}: lendingLimit above nominalQuota in {fl['name']}")
        if "deserved" in spec:
            for r, d in spec["deserved"].items():
                g, c = int(spec["guarantee"]["resource"][r]), int(spec["capability"][r])
                if not 0 <= g <= int(d) <= c:
                    bad.append(f"{where}: guarantee {g} <= deserved {d} <= capability {c} fails")
        gpu = spec.get("resources", {}).get("gpu")
        if gpu is not None and not 0 <= gpu["quota"] <= gpu["limit"]:
            bad.append(f"{where}: quota {gpu['quota']} <= limit {gpu['limit']} fails")
    if bad:
        raise QuotaError(f"{target} quotas fail their checks:\n  " + "\n  ".join(bad))


def _dump(objs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False, default_flow_style=False)


def _flat_queues(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """YuniKorn queues as objects for the checks (names; guaranteed <= max)."""
    out, stack = [], list(cfg["partitions"][0]["queues"])
    while stack:
        n = stack.pop()
        stack.extend(n.get("queues", []))
        res = n.get("resources")
        spec = {}
        if res:
            spec = {
                "guarantee": {"resource": res["guaranteed"]},
                "deserved": res["guaranteed"],
                "capability": res["max"],
            }
        out.append({"kind": "queue", "metadata": {"name": n["name"]}, "spec": spec})
    return out


def render(q: QuotaSet, target: str, period: str) -> dict[str, str]:
    """{file name: text} for ``target`` in ``period``, checked first."""
    emit: dict[str, Callable[[], dict[str, str]]] = {
        "kueue": lambda: _checked(q, target, period, kueue_objects, "kueue.yaml", effective=True),
        "volcano": lambda: _checked(q, target, period, volcano_objects, "volcano.yaml"),
        "kai": lambda: _checked(q, target, period, kai_objects, "kai.yaml"),
        "yunikorn": lambda: _yunikorn(q, period),
        "slurm": lambda: _slurm(q, period),
    }
    if target not in emit:
        raise QuotaError(f"--to {target!r}: one of {', '.join(TARGETS)}")
    return emit[target]()


def _checked(
    q: QuotaSet,
    target: str,
    period: str,
    make: Callable[[QuotaSet, str], list[dict[str, Any]]],
    name: str,
    effective: bool = False,
) -> dict[str, str]:
    objs = make(q, period)
    check(q, target, objs)
    out = {f"{period}/{name}": _dump(objs)}
    if effective:
        out[f"{period}/kueue-effective-quotas.yaml"] = _dump(kueue_effective_quotas(q, period))
    return out


def _yunikorn(q: QuotaSet, period: str) -> dict[str, str]:
    cfg = yunikorn_config(q, period)
    check(q, "yunikorn", _flat_queues(cfg))
    return {f"{period}/queues.yaml": yaml.safe_dump(cfg, sort_keys=False)}


def _slurm(q: QuotaSet, period: str) -> dict[str, str]:
    check(q, "slurm", [])
    return {f"{period}/slurm.sh": slurm_script(q, period)}


def render_all(q: QuotaSet, target: str, periods: list[str] | None = None) -> dict[str, str]:
    """Files of every period in ``periods`` (all of the plan's when None)."""
    out: dict[str, str] = {}
    for p in periods or q.periods:
        out.update(render(q, target, p))
    return out
