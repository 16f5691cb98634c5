"""Usage read back, by hand. Scenario: data/tiny.json (periods P1, P2 of 100 hours each;
flavors B200/east and H100/east). The horizon starts 2026-01-01 00:00 UTC, so P1 is
[Jan 1 00:00, Jan 5 04:00) and P2 [Jan 5 04:00, Jan 9 08:00)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from allocator.operations.mapping import Mapping
from allocator.operations.usage import Usage, UsageError, import_usage
from allocator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 1)
MAP = Mapping.model_validate(
    {
        "regions": {"east": {"partitions": ["gpu-east"]}},
        "segments": {"cloud": {"account": "cloudacct"}},
    }
)


@pytest.fixture(scope="module")
def sc() -> Scenario:
    return Scenario.from_file(ROOT / "data" / "tiny.json")


def table(u: Usage) -> dict[tuple[str, str, str], float]:
    return {
        (r["segment"], r["accelerator"], r["period"]): r["gpu_hours"] for r in u.to_dict()["rows"]
    }


CSV = """segment,gpu_type,region,start,end,gpus
chat,H100,east,2026-01-01T00:00:00,2026-01-01T10:00:00,4
cloud,B200,,2026-01-05T00:00:00,2026-01-05T08:00:00,2
chat,h100,east,2025-12-31T22:00:00Z,2026-01-01T02:00:00Z,1
cloud,H100,east,2026-01-09T06:00:00,2026-01-09T12:00:00,1
"""


def test_csv_by_hand(sc, tmp_path) -> None:
    """chat H100: 4 GPUs x 10 h = 40, plus 1 x 2 h inside P1 (2 h before the start are
    outside) = 42. cloud B200: 2 GPUs from Jan 5 00:00 to 08:00 crosses P1's end at 04:00:
    8 in P1, 8 in P2. cloud H100: 1 GPU Jan 9 06:00-12:00, 2 h before P2 ends at 08:00.
    Outside: 2 + 4 = 6."""
    f = tmp_path / "u.csv"
    f.write_text(CSV)
    u = import_usage(f, "csv", sc, start=START)
    assert table(u) == {
        ("chat", "H100", "P1"): 42.0,
        ("cloud", "B200", "P1"): 8.0,
        ("cloud", "B200", "P2"): 8.0,
        ("cloud", "H100", "P2"): 2.0,
    }
    assert u.outside_gpu_hours == pytest.approx(6.0) and u.jobs == 4
    assert table(Usage.from_dict(json.loads(json.dumps(u.to_dict())), sc)) == table(u)


SACCT = """JobID|Account|QOS|Partition|Start|End|AllocTRES
101|chat|chat-p1|gpu-east|2026-01-01T00:00:00|2026-01-01T05:00:00|billing=8,cpu=8,gres/gpu:h100=8,gres/gpu=8,mem=64G,node=1
101.batch|chat|chat-p1|gpu-east|2026-01-01T00:00:00|2026-01-01T05:00:00|cpu=8,gres/gpu:h100=8,gres/gpu=8
102|cloudacct|cloud-p1|gpu-east|2026-01-05T02:00:00|2026-01-05T06:00:00|cpu=4,gres/gpu:b200=3,gres/gpu=3
103|chat|normal|cpu|2026-01-02T00:00:00|2026-01-02T05:00:00|cpu=4,mem=1G
"""


def test_slurm_by_hand(sc, tmp_path) -> None:
    """Job 101: 8 H100 x 5 h = 40 (its step 101.batch is the same GPUs: not counted again).
    Job 102 (QOS cloud-p1 -> cloud, partition gpu-east -> east): 3 B200 from 02:00 to 06:00
    on Jan 5, 2 h each side of 04:00: 6 and 6. Job 103 has no GPUs."""
    f = tmp_path / "sacct.txt"
    f.write_text(SACCT)
    u = import_usage(f, "slurm", sc, MAP, start=START)
    assert table(u) == {
        ("chat", "H100", "P1"): 40.0,
        ("cloud", "B200", "P1"): 6.0,
        ("cloud", "B200", "P2"): 6.0,
    }


K8S = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "Workload",
            "metadata": {"name": "job-a", "namespace": "chat"},
            "status": {
                "admission": {
                    "clusterQueue": "chat",
                    "podSetAssignments": [
                        {
                            "name": "main",
                            "count": 1,
                            "flavors": {"nvidia.com/gpu": "b200-east", "cpu": "cpu"},
                            "resourceUsage": {"nvidia.com/gpu": "4", "cpu": "8"},
                        }
                    ],
                },
                "conditions": [
                    {
                        "type": "Admitted",
                        "status": "True",
                        "lastTransitionTime": "2026-01-05T03:00:00Z",
                    },
                    {
                        "type": "Finished",
                        "status": "True",
                        "lastTransitionTime": "2026-01-05T05:00:00Z",
                    },
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "cloud"},
            "spec": {
                "nodeSelector": {
                    "nvidia.com/gpu.product": "H100",
                    "topology.kubernetes.io/region": "east",
                },
                "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
            },
            "status": {
                "startTime": "2026-01-02T00:00:00Z",
                "containerStatuses": [
                    {"name": "c", "state": {"terminated": {"finishedAt": "2026-01-02T03:00:00Z"}}}
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "cpu-only", "namespace": "x"},
            "spec": {"containers": [{"name": "c", "resources": {}}]},
            "status": {},
        },
    ],
}


def test_kueue_workloads_and_pods_by_hand(sc, tmp_path) -> None:
    """The Workload: 4 B200 (flavor b200-east) admitted 03:00, finished 05:00 on Jan 5:
    1 h each side of P1's end: 4 and 4. The pod: 2 H100 for 3 h on Jan 2: 6 in P1."""
    f = tmp_path / "k.json"
    f.write_text(json.dumps(K8S))
    u = import_usage(f, "kueue", sc, start=START)
    assert table(u) == {
        ("chat", "B200", "P1"): 4.0,
        ("chat", "B200", "P2"): 4.0,
        ("cloud", "H100", "P1"): 6.0,
    }


@pytest.mark.parametrize(
    ("fmt", "text", "match"),
    [
        (
            "csv",
            "segment,gpu_type,region,start,end,gpus\n"
            "chat,H100,east,2026-01-02T00:00:00,2026-01-01T00:00:00,1\n",
            r"u:2: end 2026-01-01T00:00:00 is before start",
        ),
        (
            "csv",
            "segment,gpu_type,region,start,end,gpus\n"
            "chat,H100,east,2026-01-01T00:00:00,2026-01-01T01:00:00,1\n"
            "ghost,H100,east,2026-01-01T00:00:00,2026-01-01T01:00:00,1\n",
            r"u:3: segment/queue/account 'ghost' is not one",
        ),
        (
            "csv",
            "segment,gpu_type,region,start,end,gpus\n"
            "chat,A100,east,2026-01-01T00:00:00,2026-01-01T01:00:00,1\n",
            r"u:2: GPU type 'A100' is not an accelerator",
        ),
        (
            "csv",
            "segment,gpu_type,region,start,end,gpus\nchat,H100,east,yesterday,2026-01-01,1\n",
            r"u:2: start: 'yesterday' is not a date",
        ),
        ("csv", "segment,gpu,start\nchat,1,2\n", r"u:1: no column gpu_type or accelerator"),
        (
            "csv",
            "segment,gpu_type,region,start,end,gpus\n"
            "chat,H100,east,2026-01-01T00:00:00,2026-01-01T01:00:00,many\n",
            r"u:2: gpus 'many' is not a number",
        ),
        ("kueue", '{"items": [\n  {"kind": "Pod",,}\n]}', r"u:2: not valid JSON"),
        ("kueue", '{"kind": "Pod"}', r"u: items: expected a Kubernetes List"),
        (
            "slurm",
            "JobID|Account|Start|End|AllocTRES\n1|chat|2026-01-01T00:00:00|Unknown|"
            "gres/gpu:h100=1\n",
            r"u:2: End 'Unknown': the job has not ended",
        ),
        ("slurm", "JobID|Account|Start\n", r"u:1: no column End"),
    ],
)
def test_bad_usage_names_file_line_and_field(sc, tmp_path, fmt, text, match) -> None:
    f = tmp_path / "u"
    f.write_text(text)
    with pytest.raises(UsageError, match=match):
        import_usage(f, fmt, sc, start=START)


def test_usage_needs_a_start(sc, tmp_path) -> None:
    f = tmp_path / "u.csv"
    f.write_text(CSV)
    with pytest.raises(UsageError, match="horizon_start"):
        import_usage(f, "csv", sc)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "segment,gpu_type,region,start,end,gpus\nchat,H100,east,2026-01-01,2026-01-02,inf\n",
            r"u:2: GPUs inf must be a number from 0 to 1e9",
        ),
        (
            "segment,gpu_type,region,start,end,gpus\nchat,H100,east,2026-01-01,2026-01-02,1,9\n",
            r"u:2: more fields than the header has",
        ),
        ('segment,gpu_type,region,start,end,gpus\n"chat\0,H100\n', r"u:\d+: "),
    ],
)
def test_hostile_csv_is_a_usage_error(sc, tmp_path, text, match) -> None:
    f = tmp_path / "u"
    f.write_text(text)
    with pytest.raises(UsageError, match=match):
        import_usage(f, "csv", sc, start=START)
