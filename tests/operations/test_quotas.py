"""Quotas from a plan, by hand. The plan is data/tiny.json's optimum (derived in
data/README.md): P1 chat 5 B200 + 5 H100, cloud 5 H100; P2 chat 10 B200 + 5 H100, cloud 5
H100. Pools: h100 10 GPUs, b200 5 then 10, one region (east), so the flavors are
b200-east and h100-east.

Mapping: borrow policy share 0.2 (P1: floor(0.2 x 10) = 2 H100, floor(0.2 x 5) = 1 B200),
lend_share 0.5 (lend floor(G / 2)), cloud's weight 7 by hand; chat's from value per
GPU-hour: chat earns (revenue + LTV) 0.6 x (20,000 + 35,000) Mtok = 33,000 over 2,500
GPU-hours = 13.2/h; cloud 4 x (500 + 500) = 4,000 over 1,000 = 4/h -> chat 100. A cloud
GPU-hour budget of 2,000 over both periods (not binding: cloud uses 1,000) is split by the
plan's GPU-hours: 1,000 per period, all on H100.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from allocator.engine import solve
from allocator.operations import MappingError, QuotaError, compute_quotas, load_mapping
from allocator.operations.emit import TARGETS, render, render_all
from allocator.operations.quotas import round_largest_remainder
from allocator.scenario.load import as_scenario

ROOT = Path(__file__).resolve().parents[2]
ANN = {"allocator.io/plan": "p1", "allocator.io/scenario": "tiny", "allocator.io/period": "P1"}
MAPPING = {
    "segments": {
        "chat": {"queue": "chat-prod", "namespaces": ["chat-a", "chat-b"], "account": "chatacct"},
        "cloud": {"weight": 7},
    },
    "accelerators": {"H100": {"gres": "h100", "node_labels": {"gpu": "h100"}}},
    "borrow": {"policy": "share", "share": 0.2},
    "lend_share": 0.5,
}


@pytest.fixture(scope="module")
def tiny():
    data = json.loads((ROOT / "data" / "tiny.json").read_text())
    data["policy"] = {
        "gpu_hour_budgets": [{"id": "cloud-cap", "segment": "cloud", "max_gpu_hours": 2000}]
    }
    sc = as_scenario(data)
    return sc, solve(sc)


@pytest.fixture(scope="module")
def quotas(tiny, tmp_path_factory):
    sc, plan = tiny
    path = tmp_path_factory.mktemp("m") / "map.yaml"
    path.write_text(yaml.safe_dump(MAPPING))
    return compute_quotas(plan, sc, load_mapping(path, sc), plan_id="p1")


def test_tuples_by_hand(quotas):
    rows = {(r["segment"], r["accelerator"], r["period"]): r for r in quotas.rows()}
    want = {  # (guaranteed, cap, lend, weight, budget)
        ("chat", "B200", "P1"): (5, 5, 2, 100, None),
        ("chat", "H100", "P1"): (5, 7, 2, 100, None),
        ("cloud", "B200", "P1"): (0, 1, 0, 7, 0.0),
        ("cloud", "H100", "P1"): (5, 7, 2, 7, 1000.0),
        ("chat", "B200", "P2"): (10, 10, 5, 100, None),  # share 2 of 10, capped by the 10
        ("chat", "H100", "P2"): (5, 7, 2, 100, None),
        ("cloud", "B200", "P2"): (0, 2, 0, 7, 0.0),
        ("cloud", "H100", "P2"): (5, 7, 2, 7, 1000.0),
    }
    got = {
        k: (r["guaranteed"], r["cap"], r["lend_limit"], r["weight"], r["budget_gpu_hours"])
        for k, r in rows.items()
    }
    assert got == want
    assert all(r["difference"] == 0 for r in quotas.rounding)


def test_largest_remainder_never_exceeds_a_pool():
    """Pool 0 (unit 1, 4 GPUs): 1.5 + 1.5 + 0.6 = 3.6 -> target 4; floors 1 + 1 + 0 = 2;
    remainders 0.5, 0.5, 0.6 -> one each to 0.6, then segment 0's 0.5: [2, 1, 1] = 4.
    Pool 1 (nodes of 8, 16 GPUs): 6 + 7 + 3 = 16 GPUs = 0.75 + 0.875 + 0.375 = 2 nodes;
    floors 0, remainders rank 0.875, 0.75: [8, 8, 0]. Pool 2 (3 GPUs): 1.4 x 3 = 4.2 wanted
    but only 3 exist: target 3, floors 1 each, nothing more."""
    x = np.array([[1.5, 6.0, 1.4], [1.5, 7.0, 1.4], [0.6, 3.0, 1.4]])[:, :, None]
    g = round_largest_remainder(x, np.array([1, 8, 1]), np.array([[4.0], [16.0], [3.0]]))
    assert g[:, :, 0].tolist() == [[2, 8, 1], [1, 8, 1], [1, 0, 1]]
    rng = np.random.default_rng(7)
    for _ in range(50):
        cap = rng.integers(1, 40, size=(3, 2)).astype(float)
        share = rng.dirichlet(np.ones(4), size=(3, 2)).transpose(2, 0, 1)
        x = share * cap[None] * rng.uniform(0.5, 1.0)
        unit = rng.choice([1, 2, 4], size=3)
        g = round_largest_remainder(x, unit, cap)
        assert (g.sum(axis=0) <= cap + 1e-9).all()
        assert (g % unit[None, :, None] == 0).all()
        lost = np.abs(x.sum(axis=0) - g.sum(axis=0))
        full = g.sum(axis=0) == np.floor(cap / unit[:, None]) * unit[:, None]
        assert ((lost <= unit[:, None] / 2 + 1e-9) | full).all()


KUEUE_P1 = [
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "b200-east", "annotations": ANN},
        "spec": {
            "nodeLabels": {
                "nvidia.com/gpu.product": "B200",
                "topology.kubernetes.io/region": "east",
            }
        },
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "h100-east", "annotations": ANN},
        "spec": {"nodeLabels": {"gpu": "h100", "topology.kubernetes.io/region": "east"}},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Cohort",
        "metadata": {"name": "fleet"},
        "spec": {},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Cohort",
        "metadata": {"name": "kind-cloud"},
        "spec": {"parentName": "fleet"},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Cohort",
        "metadata": {"name": "kind-first-party"},
        "spec": {"parentName": "fleet"},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "chat-prod", "annotations": ANN},
        "spec": {
            "cohortName": "kind-first-party",
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": ["chat-a", "chat-b"],
                    }
                ]
            },
            "resourceGroups": [
                {
                    "coveredResources": ["nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": "b200-east",
                            "resources": [
                                {
                                    "name": "nvidia.com/gpu",
                                    "nominalQuota": 5,
                                    "borrowingLimit": 0,
                                    "lendingLimit": 2,
                                }
                            ],
                        },
                        {
                            "name": "h100-east",
                            "resources": [
                                {
                                    "name": "nvidia.com/gpu",
                                    "nominalQuota": 5,
                                    "borrowingLimit": 2,
                                    "lendingLimit": 2,
                                }
                            ],
                        },
                    ],
                }
            ],
            "fairSharing": {"weight": "100"},
        },
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": "chat-prod", "namespace": "chat-a", "annotations": ANN},
        "spec": {"clusterQueue": "chat-prod"},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": "chat-prod", "namespace": "chat-b", "annotations": ANN},
        "spec": {"clusterQueue": "chat-prod"},
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "cloud", "annotations": ANN},
        "spec": {
            "cohortName": "kind-cloud",
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["cloud"]}
                ]
            },
            "resourceGroups": [
                {
                    "coveredResources": ["nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": "b200-east",
                            "resources": [
                                {
                                    "name": "nvidia.com/gpu",
                                    "nominalQuota": 0,
                                    "borrowingLimit": 1,
                                    "lendingLimit": 0,
                                }
                            ],
                        },
                        {
                            "name": "h100-east",
                            "resources": [
                                {
                                    "name": "nvidia.com/gpu",
                                    "nominalQuota": 5,
                                    "borrowingLimit": 2,
                                    "lendingLimit": 2,
                                }
                            ],
                        },
                    ],
                }
            ],
            "fairSharing": {"weight": "7"},
        },
    },
    {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": "cloud", "namespace": "cloud", "annotations": ANN},
        "spec": {"clusterQueue": "cloud"},
    },
]

# (name, parent, weight, guarantee, deserved, capability): guarantee = G - lend limit
TREE_P1 = [
    ("kind-cloud", None, 7, 3, 5, 8),
    ("kind-first-party", None, 100, 6, 10, 12),
    ("chat-prod", "kind-first-party", 100, 6, 10, 12),
    ("chat-prod-b200-east", "chat-prod", 100, 3, 5, 5),
    ("chat-prod-h100-east", "chat-prod", 100, 3, 5, 7),
    ("cloud", "kind-cloud", 7, 3, 5, 8),
    ("cloud-b200-east", "cloud", 7, 0, 0, 1),
    ("cloud-h100-east", "cloud", 7, 3, 5, 7),
]
VOLCANO_P1 = [
    {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": n, "annotations": ANN},
        "spec": {
            "weight": w,
            "parent": p or "root",
            "reclaimable": True,
            "guarantee": {"resource": {"nvidia.com/gpu": str(g)}},
            "deserved": {"nvidia.com/gpu": str(d)},
            "capability": {"nvidia.com/gpu": str(c)},
        },
    }
    for n, p, w, g, d, c in TREE_P1
]
UNLIMITED = {"quota": -1, "limit": -1, "overQuotaWeight": 1}
KAI_P1 = [
    {
        "apiVersion": "scheduling.run.ai/v2",
        "kind": "Queue",
        "metadata": {"name": n, "annotations": ANN},
        "spec": {
            **({"parentQueue": p} if p else {}),
            "resources": {
                "gpu": {"quota": d, "overQuotaWeight": w, "limit": c},
                "cpu": UNLIMITED,
                "memory": UNLIMITED,
            },
        },
    }
    for n, p, w, g, d, c in TREE_P1
]


def _yk(name: str, d: int, c: int, kids: list | None = None) -> dict:
    out = {
        "name": name,
        "resources": {"guaranteed": {"nvidia.com/gpu": d}, "max": {"nvidia.com/gpu": c}},
    }
    if kids:
        out["queues"] = kids
    return out


YUNIKORN_P1 = {
    "partitions": [
        {
            "name": "default",
            "queues": [
                {
                    "name": "root",
                    "submitacl": "*",
                    "queues": [
                        {
                            "name": "fleet",
                            "queues": [
                                _yk(
                                    "kind-cloud",
                                    5,
                                    8,
                                    [
                                        _yk(
                                            "cloud",
                                            5,
                                            8,
                                            [
                                                _yk("cloud-b200-east", 0, 1),
                                                _yk("cloud-h100-east", 5, 7),
                                            ],
                                        )
                                    ],
                                ),
                                _yk(
                                    "kind-first-party",
                                    10,
                                    12,
                                    [
                                        _yk(
                                            "chat-prod",
                                            10,
                                            12,
                                            [
                                                _yk("chat-prod-b200-east", 5, 5),
                                                _yk("chat-prod-h100-east", 5, 7),
                                            ],
                                        )
                                    ],
                                ),
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}
SLURM_P1 = [
    "sacctmgr -i add qos chat-prod-p1 || true  # exists after the first period",
    "sacctmgr -i modify qos where name=chat-prod-p1 set GrpTRES=gres/gpu:b200=5,gres/gpu:h100=7",
    "sacctmgr -i add account chatacct || true",
    "sacctmgr -i modify account where name=chatacct set fairshare=100 qos+=chat-prod-p1 "
    "defaultqos=chat-prod-p1",
    "sacctmgr -i add qos cloud-p1 || true  # exists after the first period",
    "sacctmgr -i modify qos where name=cloud-p1 set GrpTRES=gres/gpu:b200=1,gres/gpu:h100=7 "
    "GrpTRESMins=gres/gpu=60000 Flags=NoDecay",
    "sacctmgr -i add account cloud || true",
    "sacctmgr -i modify account where name=cloud set fairshare=7 qos+=cloud-p1 defaultqos=cloud-p1",
]


def _docs(text: str) -> list[dict]:
    return list(yaml.safe_load_all(text))


def test_kueue_by_hand(quotas):
    files = render(quotas, "kueue", "P1")
    got = _docs(files["P1/kueue.yaml"])
    assert len(got) == len(KUEUE_P1)
    for g, w in zip(got, KUEUE_P1, strict=True):
        assert g == w, g["metadata"]["name"]
    eff = {
        o["metadata"]["name"]: o["status"]["effectiveQuotas"]
        for o in _docs(files["P1/kueue-effective-quotas.yaml"])
    }
    assert eff["cloud"] == [
        {
            "flavor": "b200-east",
            "name": "nvidia.com/gpu",
            "nominalQuota": 0,
            "borrowingLimit": 1,
            "lendingLimit": 0,
        },
        {
            "flavor": "h100-east",
            "name": "nvidia.com/gpu",
            "nominalQuota": 5,
            "borrowingLimit": 2,
            "lendingLimit": 2,
        },
    ]


@pytest.mark.parametrize(
    ("target", "name", "want"),
    [("volcano", "P1/volcano.yaml", VOLCANO_P1), ("kai", "P1/kai.yaml", KAI_P1)],
)
def test_queue_trees_by_hand(quotas, target, name, want):
    got = _docs(render(quotas, target, "P1")[name])
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w, g["metadata"]["name"]


def test_yunikorn_and_slurm_by_hand(quotas):
    assert yaml.safe_load(render(quotas, "yunikorn", "P1")["P1/queues.yaml"]) == YUNIKORN_P1
    script = render(quotas, "slurm", "P1")["P1/slurm.sh"].splitlines()
    assert "#   AccountingStorageTRES=gres/gpu,gres/gpu:b200,gres/gpu:h100" in script
    assert [s for s in script if s.startswith("sacctmgr")] == SLURM_P1


# Schemas of the fields we emit, written from the schedulers' documentation (Kueue's
# v1beta2 CRDs, Volcano's Queue, YuniKorn's queue configuration, KAI's Queue): a dict is
# an object whose keys must all be known (a "*" key: any key), a type a leaf's type.
QTY = (int, str)
KUEUE_META = {"name": str, "namespace": str, "annotations": {"*": str}}
SCHEMAS = {
    ("kueue.x-k8s.io/v1beta2", "ResourceFlavor"): {"spec": {"nodeLabels": {"*": str}}},
    ("kueue.x-k8s.io/v1beta2", "Cohort"): {"spec": {"parentName": str}},
    ("kueue.x-k8s.io/v1beta2", "ClusterQueue"): {
        "spec": {
            "cohortName": str,
            "namespaceSelector": {
                "matchExpressions": [{"key": str, "operator": str, "values": [str]}]
            },
            "resourceGroups": [
                {
                    "coveredResources": [str],
                    "flavors": [
                        {
                            "name": str,
                            "resources": [
                                {
                                    "name": str,
                                    "nominalQuota": QTY,
                                    "borrowingLimit": QTY,
                                    "lendingLimit": QTY,
                                }
                            ],
                        }
                    ],
                }
            ],
            "fairSharing": {"weight": QTY},
        }
    },
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): {"spec": {"clusterQueue": str}},
    ("scheduling.volcano.sh/v1beta1", "Queue"): {
        "spec": {
            "weight": int,
            "parent": str,
            "reclaimable": bool,
            "guarantee": {"resource": {"*": QTY}},
            "deserved": {"*": QTY},
            "capability": {"*": QTY},
        }
    },
    ("scheduling.run.ai/v2", "Queue"): {
        "spec": {
            "parentQueue": str,
            "resources": {
                r: {"quota": int, "overQuotaWeight": int, "limit": int}
                for r in ("gpu", "cpu", "memory")
            },
        }
    },
}
YUNIKORN_QUEUE: dict = {
    "name": str,
    "submitacl": str,
    "resources": {"guaranteed": {"*": int}, "max": {"*": int}},
}
YUNIKORN_QUEUE["queues"] = [YUNIKORN_QUEUE]


def conforms(value, schema, where="") -> list[str]:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        out = []
        for k, v in value.items():
            sub = schema.get(k, schema.get("*"))
            out += (
                [f"{where}.{k}: unknown field"] if sub is None else conforms(v, sub, f"{where}.{k}")
            )
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [e for i, v in enumerate(value) for e in conforms(v, schema[0], f"{where}[{i}]")]
    return [] if isinstance(value, schema) else [f"{where}: {value!r} is not {schema}"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_matches_its_schema(quotas, target):
    files = render_all(quotas, target)
    assert sorted(files)[0].startswith("P1/") and any(f.startswith("P2/") for f in files)
    for name, text in files.items():
        if name.endswith(".sh"):
            assert text.startswith("#!/bin/sh")
            continue
        for doc in _docs(text):
            if "partitions" in doc:
                for part in doc["partitions"]:
                    assert conforms(part["queues"][0], YUNIKORN_QUEUE) == []
                continue
            key = (doc["apiVersion"], doc["kind"])
            if "status" in doc:  # the effectiveQuotas patch
                assert set(doc) == {"apiVersion", "kind", "metadata", "status"}
                continue
            assert key in SCHEMAS, key
            assert conforms(doc["metadata"], KUEUE_META, "metadata") == []
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
            assert conforms(doc["spec"], SCHEMAS[key]["spec"], "spec") == []


def test_checks_refuse_bad_names_and_overfull_flavors(tiny, quotas):
    sc, plan = tiny
    bad = compute_quotas(plan, sc, load_mapping(None), plan_id="p1")
    bad.mapping = bad.mapping.model_copy(update={"root": "x" * 70})  # rfc1123 trims to 63
    render(bad, "kueue", "P1")
    over = compute_quotas(plan, sc, plan_id="p1")
    over.guaranteed = over.guaranteed + 3
    with pytest.raises(QuotaError, match=r"flavor h100-east in P1: Σ guaranteed 16 > its 10"):
        render(over, "volcano", "P1")
    with pytest.raises(QuotaError, match="period 'P9'"):
        render(quotas, "kai", "P9")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("segments: {nope: {queue: x}}", r"map.yaml: segments.nope: no such segment"),
        ("accelerators: {TPU: {gres: tpu}}", r"accelerators.TPU: no such accelerator"),
        ("borrow: {policy: maybe}", r"map.yaml: borrow.policy: Input should be"),
        ("lend_share: 2", r"lend_share: Input should be less than or equal to 1"),
        ("segments: [\n  - a\n  - {b", r"map.yaml:\d+: not valid YAML/JSON"),
        ("a: &x [1, 2]\nb: [*x, *x]\n", r"map.yaml:2: not valid YAML/JSON: aliases"),
    ],
)
def test_bad_mappings_name_the_field(tiny, tmp_path, text, match):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match=match):
        load_mapping(path, tiny[0])
