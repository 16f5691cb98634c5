"""CSV views format floats as the CLI's CSV files do: 12 significant digits (issue 19)."""

from __future__ import annotations

import csv
import io

from tests.api.conftest import tiny, wait_done


def test_csv_views_have_no_float_noise(client):
    d = tiny()
    d["name"] = "noisy"
    for p in d["periods"]:
        p["hours"] = 100.1  # GPU-hours = GPUs × 100.1: last-bit noise in repr()
    d["segments"][1]["demand"] = [1500.3, 3000.7]
    assert client.put("/v1/scenarios/noisy", json=d).status_code in (200, 201)
    loc = client.post("/v1/scenarios/noisy/plans").headers["location"]
    plan = wait_done(client, loc)["plan"]
    noisy = [
        v
        for r in plan["allocations"] + plan["segments"] + plan["pools"]
        for v in r.values()
        if isinstance(v, float) and len(repr(v).lstrip("-").replace(".", "")) > 13
    ]
    assert noisy, "the scenario should give floats with more than 12 digits"
    for view in ("allocations", "segments", "pools"):
        text = client.get(f"{loc}/{view}?format=csv").text
        for row in csv.DictReader(io.StringIO(text)):
            for cell in row.values():
                digits = cell.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
                assert len(digits) <= 12, (view, cell)
