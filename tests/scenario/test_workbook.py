"""Scenario workbooks: every bundled example round-trips exactly; a bad workbook names the
sheet and cell of every problem, all at once; the template reads back with clear messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from openpyxl import load_workbook

from allocator import Scenario, ScenarioError
from allocator.scenario.generate import generate
from allocator.scenario.load import as_scenario
from allocator.scenario.workbook import read_workbook, write_template, write_workbook
from tests.conftest import DATA
from tests.lp.test_count_columns import busy_fleets

SCENARIOS = sorted(
    p
    for p in [*DATA.glob("*.json"), *DATA.glob("stochastic/*.json")]
    if "pools" in json.loads(p.read_text())
)


def issues(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_file(path)
    return [f"{i.path}: {i.message}" if i.path else i.message for i in exc.value.issues]


def edited(src: Path, dst: Path, **cells: object) -> Path:
    """A copy of workbook ``src`` with cells set: sheet__A1=value."""
    wb = load_workbook(src)
    for key, value in cells.items():
        sheet, cell = key.split("__")
        wb[sheet][cell] = value
    wb.save(dst)
    return dst


@pytest.fixture(scope="module")
def hyper_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wb") / "hyperscaler.xlsx"
    write_workbook(Scenario.from_file(DATA / "hyperscaler.json"), path)
    return path


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_bundled_example_round_trips_exactly(path: Path, tmp_path: Path) -> None:
    sc = Scenario.from_file(path)
    write_workbook(sc, tmp_path / "s.xlsx")
    back = Scenario.from_file(tmp_path / "s.xlsx")
    assert back.to_dict() == sc.to_dict()
    # a dict writes the same workbook content as the scenario
    write_workbook(json.loads(path.read_text()), tmp_path / "d.xlsx")
    assert Scenario.from_dict(read_workbook(tmp_path / "d.xlsx")).to_dict() == sc.to_dict()


def test_every_field_round_trips(tmp_path: Path) -> None:
    """Fields no bundled example uses: expansion, headroom and allocation unit of a pool,
    per-period reservations, kind caps per period, hard contracts, odd floats."""
    d = json.loads((DATA / "hyperscaler.json").read_text())
    d["currency"] = "EUR"
    d["policy"]["kind_caps"] = {"consumer": [1000.5 + t for t in range(8)], "rnd": 90000}
    d["policy"]["kind_floors"] = {"rnd": 100}
    d["policy"].pop("max_change_share")
    p = d["pools"][0]
    p.update(headroom=0.1, allocation_unit_gpus=8, ownership="rented")
    p["expansion"] = {"max_gpus": 5000, "cost_per_gpu_hour": 1.1, "from_period": "2026-Q3"}
    d["pools"][1]["expansion"] = {"max_gpus": 0.1 + 0.2, "cost_per_gpu_hour": 1 / 3}
    s = d["segments"][0]
    s["contract_hard"] = True
    s["reservation"] = {"max_gpus": [100.0 * t for t in range(8)], "price_per_gpu_hour": 2.5}
    d["segments"][1]["reservation"] = {"max_gpus": 40, "price_per_gpu_hour": 2.0}
    d["segments"][2]["unit"] = "million tokens"
    sc = Scenario.from_dict(d)
    write_workbook(sc, tmp_path / "s.xlsx")
    assert Scenario.from_file(tmp_path / "s.xlsx").to_dict() == sc.to_dict()
    assert load_workbook(tmp_path / "s.xlsx")["pools"]["E1"].value == "variable_cost (EUR/GPU-hour)"


@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_fleets_round_trip(seed: int, tmp_path: Path) -> None:
    """Random floats of every magnitude: written with all 17 digits, read back exactly."""
    sc = generate(segments=30, pools=12, periods=6, seed=seed)
    write_workbook(sc, tmp_path / "g.xlsx")
    assert Scenario.from_file(tmp_path / "g.xlsx").to_dict() == sc.to_dict()


def test_bundled_workbook_is_up_to_date() -> None:
    """data/hyperscaler.xlsx is `allocator convert data/hyperscaler.json data/hyperscaler.xlsx`."""
    want = Scenario.from_file(DATA / "hyperscaler.json").to_dict()
    assert Scenario.from_file(DATA / "hyperscaler.xlsx").to_dict() == want


def test_sheets_are_for_people(hyper_xlsx: Path) -> None:
    wb = load_workbook(hyper_xlsx)
    assert wb.sheetnames[0] == "about"
    assert wb["capacity"].freeze_panes == "B2" and wb["pools"].freeze_panes == "B2"
    assert [c.value for c in wb["demand"][1]][:3] == ["segment (work units)", "2026-Q1", "2026-Q2"]
    assert wb["capacity"].conditional_formatting  # a colour scale over the grid
    assert wb["capacity"]["B2"].number_format == "#,##0"
    about = " ".join(str(c.value) for row in wb["about"].iter_rows() for c in row if c.value)
    for sheet in ("capacity", "throughput", "kind_limits", "reservations", "modes"):
        assert sheet in about


# ------------------------------------------------------------------ the template
def test_empty_template_reads_back_with_clear_messages(tmp_path: Path) -> None:
    write_template(tmp_path / "t.xlsx")
    assert issues(tmp_path / "t.xlsx") == [
        "periods: no periods: add one row per period below the header",
        "pools: no pools: add one row per pool below the header",
        "segments: no segments: add one row per segment below the header",
    ]


def test_template_filled_with_a_minimal_example_is_valid(tmp_path: Path) -> None:
    t = tmp_path / "t.xlsx"
    write_template(t, periods=["P1", "P2"], hours=100)
    wb = load_workbook(t)
    wb["pools"].append(["h100", "H100", "east", None, 0.5])
    wb["capacity"].append(["h100", 10, 12])
    wb["segments"].append(["chat", "first_party", "Mtok", 2.0])
    wb["demand"].append(["chat", 1000, 1500])
    wb["throughput"]["B1"] = "H100"  # one column per accelerator type
    wb["throughput"].append(["chat", 3.0])
    wb["scenario"]["B2"] = "minimal"
    wb.save(t)
    sc = Scenario.from_file(t)
    assert sc.name == "minimal" and sc.period_labels == ["P1", "P2"]
    assert sc.pools[0].gpus == [10, 12] and sc.pools[0].ownership == "owned"
    assert sc.segments[0].throughput == {"H100": 3.0} and sc.segments[0].modes[0].name == "full"
    assert sc.policy.headroom == 0 and sc.policy.ltv_weight == 1


# ------------------------------------------------------------------ bad workbooks
def test_text_in_a_number_cell_names_sheet_and_cell(hyper_xlsx: Path, tmp_path: Path) -> None:
    bad = edited(hyper_xlsx, tmp_path / "b.xlsx", demand__F7="n/a")
    assert issues(bad) == ["demand!F7: not a number: 'n/a'"]


def test_missing_sheet(hyper_xlsx: Path, tmp_path: Path) -> None:
    wb = load_workbook(hyper_xlsx)
    del wb["throughput"]
    wb.save(tmp_path / "b.xlsx")
    msg, *rest = issues(tmp_path / "b.xlsx")
    assert msg.startswith("throughput: missing sheet (the workbook has: about, scenario,")
    # the per-period throughput rows (hyperscaler.json's serving gains) then have no sheet
    # to belong to; each is named, nothing else is reported
    assert all("not a per-period field of a segment: 'throughput." in m for m in rest)


def test_unknown_pool_and_segment_in_grids(hyper_xlsx: Path, tmp_path: Path) -> None:
    bad = edited(hyper_xlsx, tmp_path / "b.xlsx", capacity__A3="h100-mars", demand__A4="nobody")
    found = issues(bad)
    assert found[0].startswith("capacity!A3: unknown pool 'h100-mars' (the pools sheet has: ")
    assert "capacity: no row for pool 'h100-westeurope'" in found
    assert any(m.startswith("demand!A4: unknown segment 'nobody'") for m in found)


def test_duplicate_row_id(hyper_xlsx: Path, tmp_path: Path) -> None:
    bad = edited(hyper_xlsx, tmp_path / "b.xlsx", pools__A3="h100-eastus")
    assert "pools!A3: duplicate pool 'h100-eastus' (also in row 2)" in issues(bad)


def test_missing_period_column(hyper_xlsx: Path, tmp_path: Path) -> None:
    wb = load_workbook(hyper_xlsx)
    wb["contract_min"].delete_cols(4)  # 2026-Q3
    wb.save(tmp_path / "b.xlsx")
    assert issues(tmp_path / "b.xlsx") == ["contract_min!1:1: missing column for period '2026-Q3'"]


def test_every_problem_at_once(hyper_xlsx: Path, tmp_path: Path) -> None:
    bad = edited(
        hyper_xlsx,
        tmp_path / "b.xlsx",
        demand__F7="n/a",
        capacity__C2=None,
        pools__E3="cheap",
        segments__A3="cloud-anchor-ailab",
        throughput__G1="TPU-v9",
        periods__B4="long",
        policy__B3="a lot",
        rentable__J1="2099-Q1",
        kind_limits__A2="robots",
        kind_limits__B2="cap",
        kind_limits__C2=5,
        pools__Z1="colour",
        pools__AA1="notes",
        modes__A2="nobody",
        modes__B3="quantized",
    )
    found = issues(bad)
    for want in (
        "demand!F7: not a number: 'n/a'",
        "capacity!C2: empty: enter a number",
        "pools!E3: not a number: 'cheap'",
        "segments!A3: duplicate segment 'cloud-anchor-ailab' (also in row 2)",
        "periods!B4: not a number: 'long'",
        "policy!B3: not a number: 'a lot'",
        "kind_limits!A2: not a kind: 'robots' (one of cloud, first_party, rnd, consumer)",
        "modes!A2: unknown segment 'nobody'",
        "modes!B4: duplicate mode 'quantized' of segment '1p-coding-copilot' (also in row 3)",
    ):
        assert want in found
    for prefix in (
        "throughput!G1: unknown accelerator type 'TPU-v9'",
        "rentable!J1: unknown period '2099-Q1'",
        "pools!Z1: unknown column 'colour'",
    ):
        assert any(m.startswith(prefix) for m in found), prefix
    assert not any("AA1" in m for m in found)  # a notes column is ignored


def test_after_parsing_the_scenario_checks_keep_their_field_paths(
    hyper_xlsx: Path, tmp_path: Path
) -> None:
    bad = edited(
        hyper_xlsx, tmp_path / "b.xlsx", demand__C3=-5, pools__D2="bought", throughput__B2=0
    )
    found = issues(bad)
    assert "segments[1].demand[1]: Input should be greater than or equal to 0" in found
    assert any(m.startswith("pools[0].ownership: Input should be 'owned'") for m in found)
    assert "segments[0].throughput.H100: Input should be greater than 0" in found


def test_both_one_value_and_per_period_values(hyper_xlsx: Path, tmp_path: Path) -> None:
    bad = edited(
        hyper_xlsx,
        tmp_path / "b.xlsx",
        reservations__A2="cloud-anchor-ailab",
        reservations__B2=2.0,
        reservations__C2=100,
        reservations__D2=100,
    )
    assert issues(bad) == [
        "reservations!C2: give one value for all periods or one per period, not both"
    ]


def test_not_a_workbook(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_text("hello")
    (msg,) = issues(tmp_path / "x.xlsx")
    assert "not an Excel workbook" in msg
    (msg,) = issues(tmp_path / "missing.xlsx")
    assert msg.startswith("cannot read")


def test_numbers_typed_as_text_and_labels_typed_as_numbers(
    hyper_xlsx: Path, tmp_path: Path
) -> None:
    """What spreadsheets do to cells: '48,000' as text reads as a number."""
    ok = edited(hyper_xlsx, tmp_path / "b.xlsx", capacity__B2="48,000", segments__H2="TRUE")
    sc = Scenario.from_file(ok)
    want = copy.deepcopy(Scenario.from_file(DATA / "hyperscaler.json").to_dict())
    want["segments"][0]["contract_hard"] = True
    assert sc.to_dict() == want


# ------------------------------------------- the newer fields (issues 15 and 16)
def newer_fields() -> dict:
    """Every newer field at once, with one value and with one value per period: GPU limits
    (all types, one type; cap, floor, both), GPU-hour budgets (a segment, a kind, a type and
    a window), whole-unit rentals and purchases, price tiers (per-period price and units),
    a subscription (per-period fee and usage, a minimum service share) and a plain one."""
    d = json.loads((DATA / "hyperscaler.json").read_text())
    labels = [p["label"] for p in d["periods"]]
    T = len(labels)
    p0, p1 = d["pools"][0], d["pools"][1]
    p0.update(rentable_gpus=[64.0] * T, rental_price_per_gpu_hour=3.0, rental_unit_gpus=8)
    p1["expansion"] = {"max_gpus": 4096, "cost_per_gpu_hour": 1.5, "unit_gpus": 8}
    s0, s1, s2, s3 = d["segments"][:4]
    types = sorted(s0["throughput"])
    s0["gpu_limits"] = [
        {"max_gpus": 9000, "min_gpus": [10.0 * t for t in range(T)]},
        {"accelerator": types[0], "max_gpus": [5000.5] * T},
    ]
    s1["gpu_limits"] = [{"min_gpus": 2}]
    d["policy"]["gpu_hour_budgets"] = [
        {"id": "lab", "kind": "rnd", "min_gpu_hours": 1e6},
        {
            "id": "chat-h100",
            "segment": s0["id"],
            "accelerator": types[0],
            "from_period": labels[1],
            "to_period": labels[2],
            "max_gpu_hours": 2.5e7,
            "min_gpu_hours": 1e3,
        },
    ]
    for s in (s2, s3):
        for k in ("demand", "revenue_per_unit", "contract_min", "shortfall_penalty_per_unit"):
            s.pop(k, None)
        s.pop("contract_hard", None)
        s.pop("modes", None)
    s2["tiers"] = [
        {"units": [1e6 * (t + 1) for t in range(T)], "price": [4.0 - 0.1 * t for t in range(T)]},
        {"units": 5e6, "price": 1.0, "ltv_per_unit": 0.25},
    ]
    s3["subscription"] = {
        "subscribers": [1e5 + t for t in range(T)],
        "fee_per_subscriber": [20.0] * T,
        "usage_per_subscriber": 30.0,
        "ltv_loss_per_unit": [0.5 + 0.01 * t for t in range(T)],
        "min_service_share": 0.6,
    }
    return d


def test_newer_fields_round_trip(tmp_path: Path) -> None:
    sc = Scenario.from_dict(newer_fields())
    write_workbook(sc, tmp_path / "s.xlsx")
    back = Scenario.from_file(tmp_path / "s.xlsx")
    assert back.to_dict() == sc.to_dict()
    assert back == sc
    wb = load_workbook(tmp_path / "s.xlsx")
    for name in ("gpu_limits", "budgets", "tiers", "subscriptions"):
        assert wb[name].max_row > 1, name
    # one row per (segment, type, bound): 2 + 1 for the first segment, 1 for the second
    assert wb["gpu_limits"].max_row == 1 + 4
    assert [c.value for c in wb["tiers"][1]][:4] == [
        "segment",
        "price (USD/unit)",
        "ltv (USD/unit)",
        "all_periods (units)",
    ]
    fields = {r[2] for r in wb["by_period"].iter_rows(min_row=2, values_only=True)}
    assert {"tiers.1.price", "subscription.fee_per_subscriber"} <= fields
    assert "subscription.usage_per_subscriber" not in fields  # one number: on its sheet


def test_a_plain_subscription_and_one_tier_round_trip(tmp_path: Path) -> None:
    from tests.test_tiers_subscriptions import API_TIERS, CHAT, fleet, subscribers

    sc = Scenario.from_dict(fleet([10.0, 5.0], [API_TIERS, CHAT, subscribers()]))
    write_workbook(sc, tmp_path / "t.xlsx")
    assert Scenario.from_file(tmp_path / "t.xlsx") == sc


def test_workbooks_from_before_the_newer_sheets_still_read(hyper_xlsx: Path, tmp_path: Path):
    """A workbook without the new sheets and pool columns reads as before."""
    wb = load_workbook(hyper_xlsx)
    for name in ("gpu_limits", "budgets", "tiers", "subscriptions"):
        del wb[name]
    ws = wb["pools"]
    heads = [c.value for c in ws[1]]
    for key in ("expansion_unit (GPUs)", "rental_unit (GPUs)"):
        ws.delete_cols(heads.index(key) + 1)
        heads = [c.value for c in ws[1]]
    wb.save(tmp_path / "old.xlsx")
    want = Scenario.from_file(DATA / "hyperscaler.json").to_dict()
    assert Scenario.from_file(tmp_path / "old.xlsx").to_dict() == want


def test_bad_rows_of_the_newer_sheets_name_their_cells(tmp_path: Path) -> None:
    sc = Scenario.from_dict(newer_fields())
    src = tmp_path / "s.xlsx"
    write_workbook(sc, src)
    bad = edited(
        src,
        tmp_path / "b.xlsx",
        gpu_limits__C2="most",
        tiers__A2="nobody",
        subscriptions__B2="free",
    )
    got = issues(bad)
    assert "gpu_limits!C2: not a limit: 'most' (max or min)" in got
    assert "tiers!A2: unknown segment 'nobody'" in got
    assert any(m.startswith("subscriptions!B2: not a number") for m in got), got


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=busy_fleets())
def test_random_fleets_with_every_newer_field_round_trip(data) -> None:
    """fleets() with tiers, subscriptions, whole-unit rentals and purchases, reservations,
    GPU limits and budgets: JSON -> workbook -> JSON gives the same scenario."""
    import tempfile

    sc = as_scenario(data)
    with tempfile.TemporaryDirectory() as tmp:
        write_workbook(sc, Path(tmp) / "r.xlsx")
        assert Scenario.from_file(Path(tmp) / "r.xlsx").to_dict() == sc.to_dict()
