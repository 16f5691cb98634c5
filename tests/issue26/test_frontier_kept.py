"""The service keeps frontier answers per scenario revision (the page asks for one each
time it shows a plan): a new revision gets its own frontier, never the kept one."""

from __future__ import annotations

import pytest

from tests.api.conftest import tiny


def test_a_new_revision_gets_its_own_frontier(client):
    """tiny: chat's LTV 0.1 per Mtok makes two frontier plans (docstring of
    allocator.analysis.frontier); with no LTV at all there is one plan."""
    first = client.get("/v1/scenarios/tiny/frontier").json()
    again = client.get("/v1/scenarios/tiny/frontier").json()
    assert again == first and len(first["points"]) == 2
    body = tiny()
    body["segments"][0]["ltv_per_unit"] = 0.0
    assert client.put("/v1/scenarios/tiny", json=body).status_code == 200
    changed = client.get("/v1/scenarios/tiny/frontier").json()
    assert len(changed["points"]) == 1 and changed["points"][0]["ltv"] == pytest.approx(0)
