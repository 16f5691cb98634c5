"""By-kind lines add up to the totals on every surface (issue 26 item 3): the rental cost,
charged to no kind, has its own line ``rentals (not by kind)``."""

from __future__ import annotations

import io
import re

import pytest

from allocator import Scenario, solve
from allocator.plan.report import summary
from allocator.plan.rows import RENTALS, RENTALS_LABEL
from allocator.plan.tables import Plan
from allocator.plan.workbook import write_plan_workbook
from allocator.workflows.whatif import compare
from tests.conftest import DATA

EXAMPLES = sorted(DATA.glob("*.json")) + sorted(DATA.glob("*.xlsx"))
MONEY = re.compile(r"^(-?[\d,]+\.\d\d)([kMB]?)$")
SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9}


@pytest.fixture(scope="module", params=EXAMPLES, ids=[p.name for p in EXAMPLES])
def plan(request: pytest.FixtureRequest) -> Plan:
    return solve(Scenario.from_file(request.param))


def test_the_dict_adds_up(plan: Plan):
    """revenue, compute cost (variable + rental), SLA penalties, gross margin, LTV and churn
    of the lines are the totals'; the rentals line is there exactly when the scenario rents
    (a pool with rentable GPUs)."""
    d = plan.to_dict()
    t, lines = d["totals"], d["by_kind"].values()
    for key, total in (
        ("revenue", t["revenue"]),
        ("compute_cost", t["variable_cost"] + t["rental_cost"]),
        ("shortfall_penalty", t["shortfall_penalty"]),
        ("gross_margin", t["gross_margin"]),
        ("ltv", t["ltv"]),
        ("churn_cost", t["churn_cost"]),
    ):
        got = sum(k[key] for k in lines)
        assert got == pytest.approx(total, rel=1e-9, abs=1e-6), key
    rents = any(r.rented > 0 for r in plan.pools) or t["rental_cost"] > 0
    if rents:
        line = d["by_kind"][RENTALS]
        assert line["kind"] == RENTALS_LABEL
        assert line["gross_margin"] == pytest.approx(-t["rental_cost"], rel=1e-12)
        assert sum(line["gpus_by_period"]) == 0  # rented GPUs are in the kinds using them
    # a stored plan reads back with the same lines
    assert Plan.from_dict(d).by_kind == plan.by_kind


def test_the_text_adds_up(plan: Plan):
    """The summary's by-kind table: the lines' gross margins (as printed, 2 decimals of
    their unit) add up to the printed total within the rounding."""
    text = summary(plan).splitlines()
    start = text.index("By segment kind (money in present value):") + 3
    rows = []
    for line in text[start:]:
        if not line.startswith("  ") or not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    *lines, total = rows
    assert total[0] == "total"

    def value(cell: str) -> tuple[float, float]:
        m = MONEY.match(cell)
        assert m, cell
        unit = SCALE[m.group(2)]
        return float(m.group(1).replace(",", "")) * unit, 0.005 * unit

    got = [value(r[2]) for r in lines]
    want, rounding = value(total[2])
    assert sum(v for v, _ in got) == pytest.approx(want, abs=rounding + sum(e for _, e in got))
    assert want == pytest.approx(plan.totals.gross_margin, abs=rounding)


def test_the_workbook_adds_up(plan: Plan):
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(write_plan_workbook(plan)), read_only=True)
    rows = list(wb["By kind"].iter_rows(values_only=True))
    col = next(i for i, h in enumerate(rows[0]) if str(h).startswith("gross margin"))
    got = sum(r[col] for r in rows[1:] if r[col] is not None)
    assert got == pytest.approx(plan.totals.gross_margin, rel=1e-9, abs=1e-6)


def test_the_comparison_adds_up():
    """A what-if comparison's by-kind changes add up to the change in gross margin: the
    rental cost changes with the capacity."""
    base = solve(DATA / "hyperscaler.json")
    sc = Scenario.from_file(DATA / "hyperscaler.json")
    data = sc.to_dict()
    for p in data["pools"]:
        if p.get("rentable_gpus"):  # half as many GPUs to rent: less rental cost
            p["rentable_gpus"] = [0.5 * g for g in p["rentable_gpus"]]
    other = solve(data)
    assert other.totals.rental_cost != pytest.approx(base.totals.rental_cost)
    out = compare(base.to_dict(), other.to_dict())
    change = sum(k["gross_margin"]["change"] for k in out["by_kind"].values())
    assert change == pytest.approx(out["totals"]["gross_margin"]["change"], rel=1e-9, abs=1e-3)
