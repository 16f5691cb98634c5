"""Sites and power (issue 27): hand-solved cases, validation, certificates on random fleets
with sites, CBC against HiGHS, the default solve (row generation) against a whole solve,
and scenarios without sites bit-identical to the code before the feature."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator import Plan, ScenarioError, Status, build_lp, solve
from allocator.scenario import Scenario
from allocator.scenario.load import as_scenario
from allocator.solvers import HighsSolver
from allocator.solvers.pulp import PulpSolver, available_solvers
from tests.certificates import assert_optimal
from tests.power.fingerprint import fingerprints
from tests.test_properties import fleets

HERE = Path(__file__).parent
REL = 1e-7


def one_site(power_mw: float | list[float], periods: int = 1, **site: object) -> dict:
    """One site, two GPU types, one segment that wants far more than the site can power.

    Pool ``a`` (type A): 10 GPUs of 1 kW, 1 unit per GPU-hour; pool ``b`` (type B): 10 GPUs
    of 2 kW, 3 units per GPU-hour; a unit sells for 1, no variable cost, 100 hours a
    period. A GPU-hour earns 1 on A and 3 on B: per kWh, 1 on A and 1.5 on B."""
    T = periods
    return {
        "periods": [{"label": f"t{t}", "hours": 100.0} for t in range(T)],
        "sites": [{"id": "dc", "region": "r", "power_mw": power_mw, **site}],
        "pools": [
            {
                "id": p,
                "accelerator": p.upper(),
                "region": "r",
                "gpus": [10.0] * T,
                "variable_cost_per_gpu_hour": 0.0,
                "site": "dc",
                "power_kw_per_gpu": kw,
            }
            for p, kw in (("a", 1.0), ("b", 2.0))
        ],
        "segments": [
            {
                "id": "chat",
                "kind": "first_party",
                "demand": [1e6] * T,
                "revenue_per_unit": 1.0,
                "throughput": {"A": 1.0, "B": 3.0},
            }
        ],
    }


def rows(table, **key):
    return [r for r in table if all(getattr(r, k) == v for k, v in key.items())]


def test_the_better_value_per_kw_is_powered_first_and_the_dual_is_its_value_per_kwh():
    """10 kW: B earns 1.5 per kWh against A's 1, so all 10 kW go to B: 5 GPUs of B
    powered (5 left in inventory), none of A (10 in inventory); objective 5 x 3 x 100 =
    1,500. One more kW powers 1/2 GPU of B more: 1.5 per hour, 150 over the period, so the
    site-power dual is 150 per kW, 1,500 per MWh (1.5 per kWh = B's value per kWh); with
    no discount, nominal = present value."""
    plan = solve(one_site(0.01))
    assert plan.objective == pytest.approx(1500.0, rel=REL)
    (pa,) = rows(plan.power, pool="a")
    (pb,) = rows(plan.power, pool="b")
    assert (pa.powered, pa.in_inventory) == pytest.approx((0.0, 10.0), abs=1e-7)
    assert (pb.powered, pb.in_inventory) == pytest.approx((5.0, 5.0), abs=1e-7)
    (site,) = plan.sites
    assert site.used_mw == pytest.approx(0.01, rel=REL)
    assert site.free_mw == pytest.approx(0.0, abs=1e-9)
    assert site.shadow_price_per_mwh == pytest.approx(1500.0, rel=REL)
    assert site.shadow_price_pv_per_mwh == pytest.approx(1500.0, rel=REL)
    # only powered GPUs are usable: B uses its 5, and no GPU of B is idle
    (b,) = rows(plan.pools, pool="b")
    assert (b.used, b.usable, b.idle) == pytest.approx((5.0, 5.0, 0.0), abs=1e-7)
    assert plan.max_violation <= 1e-9


def test_when_the_better_type_is_all_powered_the_marginal_user_sets_the_price():
    """25 kW: B's 10 GPUs take 20 kW, A gets the last 5 kW: 5 GPUs of A powered, 5 left
    in inventory. Objective 10 x 3 x 100 + 5 x 1 x 100 = 3,500. The marginal kW powers one
    more GPU of A: 1 per hour, so the dual is 1 per kWh = 1,000 per MWh."""
    plan = solve(one_site(0.025))
    assert plan.objective == pytest.approx(3500.0, rel=REL)
    (pa,) = rows(plan.power, pool="a")
    (pb,) = rows(plan.power, pool="b")
    assert (pa.powered, pa.in_inventory) == pytest.approx((5.0, 5.0), abs=1e-7)
    assert (pb.powered, pb.in_inventory) == pytest.approx((10.0, 0.0), abs=1e-7)
    assert plan.sites[0].shadow_price_per_mwh == pytest.approx(1000.0, rel=REL)
    # B's GPUs are worth their 3 per hour less 2 kW at 1 per kWh: 1 per GPU-hour of B
    # more on hand (they need power too); the pool price is what a usable GPU earns: 3
    (b,) = rows(plan.pools, pool="b")
    assert b.shadow_price_per_gpu_hour == pytest.approx(3.0, rel=REL)


def test_power_to_spare_powers_every_gpu_and_prices_a_mw_at_zero():
    """40 kW > 30 kW needed: every GPU powered, 10 kW free, the dual 0."""
    plan = solve(one_site(0.04))
    assert plan.objective == pytest.approx(4000.0, rel=REL)
    assert sum(r.in_inventory for r in plan.power) == pytest.approx(0.0, abs=1e-7)
    site = plan.sites[0]
    assert site.free_mw == pytest.approx(0.01, rel=1e-6)
    assert site.shadow_price_per_mwh == pytest.approx(0.0, abs=1e-9)


def test_energy_cost_per_gpu_hour_and_nominal_against_present_value():
    """Energy at 100 per MWh, PUE 1.2: a GPU-hour of A costs 1 x 1.2 x 100 / 1000 = 0.12,
    of B 0.24. Net per kWh: A (1 - 0.12) / 1 = 0.88, B (3 - 0.24) / 2 = 1.38: B first.
    Period t0 (10 kW): 5 GPUs of B, 500 GPU-hours, energy 120, margin 5 x 2.76 x 100 =
    1,380; dual 1.38 per kWh = 1,380 per MWh. Period t1 (25 kW, discount 1/1.1): B's 10 GPUs
    and 5 of A: energy 10 x 100 x 0.24 + 5 x 100 x 0.12 = 300, margin 2,760 + 440 = 3,200,
    dual A's 0.88 per kWh = 880 per MWh nominal, 800 present value.
    Objective 1,380 + 3,200 / 1.1; energy_cost (present value) 120 + 300 / 1.1."""
    data = one_site([0.01, 0.025], periods=2, pue=1.2, energy_price_per_mwh=100.0)
    data["discount_rate"] = 0.1
    plan = solve(data)
    assert plan.objective == pytest.approx(1380.0 + 3200.0 / 1.1, rel=REL)
    assert plan.totals.energy_cost == pytest.approx(120.0 + 300.0 / 1.1, rel=REL)
    s0, s1 = plan.sites
    assert s0.energy_cost == pytest.approx(120.0, rel=REL)
    assert s1.energy_cost == pytest.approx(300.0, rel=REL)
    assert s0.shadow_price_per_mwh == pytest.approx(1380.0, rel=REL)
    assert s1.shadow_price_per_mwh == pytest.approx(880.0, rel=REL)
    assert s1.shadow_price_pv_per_mwh == pytest.approx(800.0, rel=REL)
    assert s1.facility_mw == pytest.approx(0.025 * 1.2, rel=REL)
    # the energy is part of the variable cost, reported as its own line too
    assert plan.totals.variable_cost == pytest.approx(plan.totals.energy_cost, rel=REL)
    d = plan.to_dict()
    assert d["totals"]["energy_cost"] == pytest.approx(plan.totals.energy_cost)
    assert {"power", "sites"} <= d.keys()
    back = Plan.from_dict(json.loads(plan.to_json()))
    assert back.to_dict() == d


def test_bought_gpus_need_power_too():
    """Pool b may buy GPUs at 0.5 per GPU-hour: each earns 3 - 0.5 = 2.5 an hour and
    needs 2 kW, 1.25 per kWh, below what B's own GPUs earn (1.5) but above A's (1). With
    30 kW: 10 of B (20 kW) then 5 bought (10 kW), none of A: objective 3,000 + 1,250."""
    data = one_site(0.03)
    data["pools"][1]["expansion"] = {"max_gpus": 100.0, "cost_per_gpu_hour": 0.5}
    plan = solve(data)
    assert plan.objective == pytest.approx(4250.0, rel=REL)
    (pb,) = rows(plan.power, pool="b")
    assert (pb.powered, pb.bought, pb.power_kw) == pytest.approx((10.0, 5.0, 30.0), rel=1e-7)
    assert plan.sites[0].shadow_price_per_mwh == pytest.approx(1250.0, rel=REL)


def test_pools_without_a_site_are_not_power_limited():
    """A rented-style pool without a site keeps every GPU usable."""
    data = one_site(0.0)
    del data["pools"][0]["site"]
    plan = solve(data)
    assert plan.objective == pytest.approx(1000.0, rel=REL)  # 10 GPUs of A, 100 h
    assert [r.pool for r in plan.power] == ["b"]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d["pools"][0].update(site="dcc"), "pools[0].site", "unknown site 'dcc'"),
        (lambda d: d["pools"][0].pop("power_kw_per_gpu"), "pools[0].power_kw_per_gpu", "required"),
        (lambda d: d["pools"][0].update(region="x"), "pools[0].site", "region"),
        (lambda d: d["sites"][0].update(power_mw=[1.0, 2.0]), "sites[0].power_mw", "2 entries"),
        (lambda d: d["sites"].append(dict(d["sites"][0])), "sites", "duplicate"),
        (lambda d: d["sites"][0].update(pue=0.9), "sites", "pue"),
    ],
)
def test_bad_sites_are_named_by_their_field(change, path, words):
    data = one_site(0.01)
    change(data)
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(data)
    text = "\n".join(str(i) for i in err.value.issues)
    assert any(i.path.startswith(path) for i in err.value.issues), text
    assert words in text


def test_scenarios_without_sites_give_bit_identical_lps_and_plans():
    """Every example and two generated fleets: the LP (c, A, bounds, blocks) and the plan
    JSON (less solver timings) hash as they did before issue 27 (baseline.json)."""
    baseline = json.loads((HERE / "baseline.json").read_text())
    now = fingerprints()
    for name, fp in baseline.items():
        assert now[name] == fp, name


# ------------------------------------------------------------- random fleets with sites
@st.composite
def sited_fleets(draw):
    """Random small fleets (tests.test_properties.fleets) with one or two sites: some
    pools in a site with 0.5-2 kW per GPU, sometimes a power cap or retirement, power
    per period from none to plenty."""
    data = draw(fleets())
    T = len(data["periods"])
    regions = sorted({p["region"] for p in data["pools"]})
    data["sites"] = [
        {
            "id": f"q{i}",
            "region": r,
            "power_mw": draw(st.lists(st.floats(0, 0.2), min_size=T, max_size=T)),
            "pue": draw(st.floats(1, 1.5)),
            "energy_price_per_mwh": draw(st.floats(0, 200)),
        }
        for i, r in enumerate(regions)
    ]
    for p in data["pools"]:
        if draw(st.booleans()):
            p["site"] = f"q{regions.index(p['region'])}"
            p["power_kw_per_gpu"] = draw(st.floats(0.5, 2))
            if draw(st.integers(0, 2)) == 0:  # a power cap
                p["power_levels"] = [
                    {
                        "name": "cap",
                        "power_share": draw(st.floats(0.3, 1)),
                        "throughput_share": draw(st.floats(0.3, 1)),
                    }
                ]
            if draw(st.integers(0, 2)) == 0:  # retirement
                p["retirement"] = {"salvage_per_gpu": draw(st.floats(0, 500))}
    return data


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(sited_fleets())
def test_random_fleets_with_sites_have_optimality_certificates(data):
    """Primal feasibility, dual feasibility and strong duality on the whole LP; the plan's
    own check (from the domain) finds no violation, power included; the site prices are
    >= 0 and zero wherever a site has power to spare."""
    lp = build_lp(as_scenario(data))
    sol = HighsSolver().solve(lp)
    assert_optimal(lp, sol)
    plan = solve(data)
    assert plan.status is Status.OPTIMAL
    assert plan.objective == pytest.approx(sol.objective, rel=1e-6, abs=1e-6)
    assert plan.max_violation <= 1e-6, plan.violations
    for s in plan.sites:
        assert s.used_mw <= s.power_mw * (1 + 1e-7) + 1e-9
        assert s.shadow_price_per_mwh >= 0
        if s.free_mw > 1e-6 * max(1.0, s.power_mw):
            assert s.shadow_price_per_mwh == pytest.approx(0.0, abs=1e-6)


@pytest.mark.skipif("CBC" not in available_solvers(), reason="PuLP's CBC is not installed")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sited_fleets())
def test_random_fleets_with_sites_agree_between_highs_and_cbc(data):
    lp = build_lp(as_scenario(data))
    h = HighsSolver().solve(lp)
    c = PulpSolver("CBC").solve(lp)
    assert h.status is Status.OPTIMAL and c.status is Status.OPTIMAL
    scale = max(1.0, abs(h.objective))
    assert c.objective == pytest.approx(h.objective, rel=1e-6, abs=1e-6 * scale)


def test_the_default_solve_splits_site_power_by_period_and_stays_exact():
    """Site-power rows are per period: the row generation splits the LP by period with
    them (no fallback to a whole solve), and its objective and site prices equal those of
    HiGHS on the whole LP. A generated fleet of 1,000+ columns so the default is row
    generation, with stability rows added as they bind; half its pools in a site whose power
    binds in some periods."""
    from allocator.scenario.generate import generate_dict
    from allocator.solvers.rowgen import lazy_mask, split_by_period

    d = generate_dict(segments=40, pools=8, periods=6, seed=3)
    T = len(d["periods"])
    regions = sorted({p["region"] for p in d["pools"]})
    need = np.zeros((len(regions), T))  # kW to power every GPU of the sited pools
    for j, p in enumerate(d["pools"]):
        if j % 2 == 0:
            q = regions.index(p["region"])
            p["site"] = f"q{q}"
            p["power_kw_per_gpu"] = 1.3
            need[q] += 1.3 * np.array(p["gpus"])
    share = np.linspace(0.3, 1.5, T)  # short of power early, power to spare late
    d.setdefault("policy", {})["max_change_share"] = 0.1  # lazy stability rows as well
    d["sites"] = [
        {"id": f"q{i}", "region": r, "power_mw": list(need[i] * share / 1000.0)}
        for i, r in enumerate(regions)
    ]
    sc = as_scenario(copy.deepcopy(d))
    lp = build_lp(sc)
    assert lp.num_cols >= 1000
    assert split_by_period(lp, lazy_mask(lp)) is not None
    plan = solve(sc)
    assert plan.solver.algorithm == "row-generation"
    whole = HighsSolver().solve(lp)
    assert plan.objective == pytest.approx(whole.objective, rel=1e-7)
    binding = [s for s in plan.sites if s.shadow_price_per_mwh > 1e-6]
    assert binding and any(s.free_mw > 1e-3 for s in plan.sites)
    blk = lp.block("site-power")
    assert blk is not None and whole.row_dual is not None
    prices = np.array([s.shadow_price_pv_per_mwh for s in plan.sites])
    hours = np.array([p["hours"] for p in d["periods"]])
    expected = (
        1000.0 * np.maximum(whole.row_dual[blk.start : blk.stop], 0) / np.tile(hours, len(regions))
    )
    np.testing.assert_allclose(prices, expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- surfaces
def test_summary_csv_and_workbook_show_sites_and_power(tmp_path):
    """The 10 kW case of the first test: the text summary has the sites table (0.01 MW
    used, 15 GPUs unpowered, 1,500 per MWh), the CSV folder power.csv and sites.csv, the
    workbook Sites and Power sheets; a plan without sites has none of them."""
    import openpyxl

    from allocator.plan.report import summary
    from allocator.plan.workbook import write_plan_workbook
    from allocator.plan.writers import write_csv

    plan = solve(one_site(0.01))
    text = summary(plan)
    assert "Sites (IT power" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("dc"))
    assert line.split()[-2:] == ["15", "1,500.00"]
    names = {p.name for p in write_csv(plan, tmp_path / "csv")}
    assert {"power.csv", "sites.csv"} <= names
    sites_csv = (tmp_path / "csv" / "sites.csv").read_text().splitlines()
    assert sites_csv[0].startswith("site,region,period,power_mw,used_mw")
    assert "power" not in json.loads((tmp_path / "csv" / "plan.json").read_text())
    path = tmp_path / "plan.xlsx"
    path.write_bytes(write_plan_workbook(plan))
    wb = openpyxl.load_workbook(path)
    assert {"Sites", "Power"} <= set(wb.sheetnames)
    assert wb["Sites"]["I2"].value == pytest.approx(1500.0)
    bare = one_site(0.01)
    del bare["sites"]
    for p in bare["pools"]:
        del p["site"]
    plain = solve(bare)
    assert "Sites (" not in summary(plain)
    assert not {"power.csv", "sites.csv"} & {p.name for p in write_csv(plain, tmp_path / "b")}
    assert "energy_cost" not in plain.to_dict()["totals"]


# ------------------------------------------------------------------- power caps (levels)
def capped(power_mw: float, power_share: float, throughput_share: float) -> dict:
    """Only pool b (10 GPUs of 2 kW, 3 per GPU-hour) in the site; it may run at a cap."""
    data = one_site(power_mw)
    del data["pools"][0]
    data["segments"][0]["throughput"] = {"B": 3.0}
    data["pools"][0]["power_levels"] = [
        {"name": "cap", "power_share": power_share, "throughput_share": throughput_share}
    ]
    return data


def test_a_power_cap_that_earns_more_per_kw_fits_more_gpus_in_the_power():
    """Cap at 70 % of the power for 90 % of the throughput: a capped GPU earns 0.9 x 3 =
    2.7 per hour on 1.4 kW, 1.93 per kWh, against 1.5 at full power. With 10 kW every kW
    goes to capped GPUs: 10 / 1.4 = 7.14 GPUs (< 10 on hand), delivering the throughput of
    6.43 full GPUs: objective 6.43 x 3 x 100 = 1,928.6; the dual is 2.7 / 1.4 per kWh =
    1,928.6 per MWh."""
    plan = solve(capped(0.01, 0.7, 0.9))
    (pb,) = plan.power
    assert pb.powered == pytest.approx(10 / 1.4, rel=1e-7)
    assert pb.capped == pytest.approx(10 / 1.4, rel=1e-7)
    assert plan.objective == pytest.approx(10 / 1.4 * 0.9 * 300, rel=REL)
    assert plan.sites[0].shadow_price_per_mwh == pytest.approx(2.7 / 1.4 * 1000, rel=REL)
    (b,) = plan.pools
    assert b.usable == pytest.approx(10 / 1.4 * 0.9, rel=1e-7)  # full-power equivalents
    assert plan.max_violation <= 1e-9


def test_a_power_cap_breaks_even_at_the_price_of_its_lost_throughput_per_kw_saved():
    """Break-even: uncapping one GPU gains (1 - 0.9) x 3 = 0.3 per hour for (1 - 0.7) x 2
    = 0.6 kW more: worth it while a kWh is worth less than 0.3 / 0.6 = 0.5. With 17 kW,
    all 10 GPUs capped take 14 kW; the 3 kW left uncap 3 / 0.6 = 5 of them: 5 capped and 5
    full, objective (5 x 0.9 + 5) x 300 = 2,850, and the price of power is exactly the
    break-even, 0.5 per kWh = 500 per MWh. At 20 kW every GPU runs at full power (3,000)
    and power is free (price 0)."""
    plan = solve(capped(0.017, 0.7, 0.9))
    (pb,) = plan.power
    assert (pb.powered, pb.capped) == pytest.approx((10.0, 5.0), rel=1e-7)
    assert plan.objective == pytest.approx(2850.0, rel=REL)
    assert plan.sites[0].shadow_price_per_mwh == pytest.approx(500.0, rel=REL)
    plan = solve(capped(0.02, 0.7, 0.9))
    assert plan.objective == pytest.approx(3000.0, rel=REL)
    assert plan.power[0].capped == pytest.approx(0.0, abs=1e-7)


def test_a_power_cap_that_earns_less_per_kw_is_never_used():
    """Cap at 70 % power for 60 % throughput: 1.8 per hour on 1.4 kW, 1.29 per kWh < 1.5
    at full power: with 10 kW, 5 GPUs at full power, none capped (objective 1,500)."""
    plan = solve(capped(0.01, 0.7, 0.6))
    assert plan.objective == pytest.approx(1500.0, rel=REL)
    assert plan.power[0].capped == pytest.approx(0.0, abs=1e-7)


# ------------------------------------------------------------------------- retirement
def retiring(value_b: float, salvage: float | list[float]) -> dict:
    """Two periods, 10 kW: the old pool a (10 GPUs of 1 kW, 1 per GPU-hour) runs alone in
    t0; the new pool b (2 kW, ``value_b`` per GPU-hour) is delivered in t1 (10 GPUs).
    Pool a may be retired for ``salvage`` per GPU."""
    data = one_site(0.01, periods=2)
    data["pools"][1]["gpus"] = [0.0, 10.0]
    data["segments"][0]["throughput"] = {"A": 1.0, "B": value_b}
    data["pools"][0]["retirement"] = {"salvage_per_gpu": salvage}
    return data


@pytest.mark.parametrize(
    ("value_b", "salvage", "retire"),
    [(1.5, 20.0, False), (1.7, 20.0, True), (1.7, 0.0, False), (2.1, 0.0, True)],
)
def test_the_old_type_is_retired_exactly_when_the_new_value_per_kw_plus_salvage_beats_it(
    value_b, salvage, retire
):
    """In t1 a kW either powers a GPU of a (1 per hour: 100 over the period) or half a
    GPU of b (value_b / 2 per hour: 50 x value_b) while a's GPU is sold for the salvage
    (nothing later needs it). So a is retired in t1 exactly when 50 x value_b + salvage >
    100: at salvage 20 the break-even is value_b = 1.6 (1.5 keeps a powered, 1.7 retires
    all 10 and powers 5 GPUs of b); without salvage it is 2.0 (1.7 keeps a powered; at 2.1
    b is powered and a waits unpowered, its retirement worth nothing either way). Never in
    t0, where a runs alone and earns 100 a GPU (salvage 25 there)."""
    plan = solve(retiring(value_b, [salvage + 5.0, salvage]))
    a0, a1 = rows(plan.power, pool="a")
    assert a0.retired == pytest.approx(0.0, abs=1e-7)
    b_wins = 50 * value_b > 100
    if retire and salvage > 0:
        assert a1.retired == pytest.approx(10.0, rel=1e-7)
        assert a1.salvage == pytest.approx(10.0 * salvage, rel=1e-7)
        expected = 1000.0 + 10.0 * salvage + 5 * value_b * 100
    elif b_wins:  # b is powered, a waits unpowered: no salvage to earn
        assert a1.powered == pytest.approx(0.0, abs=1e-7)
        expected = 1000.0 + 5 * value_b * 100
    else:
        assert a1.retired == pytest.approx(0.0, abs=1e-7)
        assert a1.powered == pytest.approx(10.0, rel=1e-7)
        expected = 2000.0
    assert plan.objective == pytest.approx(expected, rel=REL)
    assert plan.totals.salvage == pytest.approx(a1.salvage, rel=REL, abs=1e-9)
    assert plan.max_violation <= 1e-9


def test_a_scenario_with_sites_survives_the_workbook_round_trip(tmp_path):
    """Sites (power per period, PUE, energy price per period), pools' site, kW, power
    levels and retirement (salvage per period): JSON -> xlsx -> JSON gives the same
    scenario, and a scenario without sites gets no sites sheets."""
    from allocator.scenario.workbook import read_workbook, write_workbook

    data = one_site([0.01, 0.02], periods=2, pue=1.2, energy_price_per_mwh=[80.0, 90.0])
    data["pools"][1]["power_levels"] = [
        {"name": "cap-70", "power_share": 0.7, "throughput_share": 0.9}
    ]
    data["pools"][0]["retirement"] = {"salvage_per_gpu": [30.0, 20.0], "from_period": "t1"}
    want = Scenario.from_dict(data).to_dict()
    path = tmp_path / "s.xlsx"
    write_workbook(want, path)
    assert Scenario.from_dict(read_workbook(path)).to_dict() == want
    import openpyxl

    assert {"sites", "power_levels"} <= set(openpyxl.load_workbook(path).sheetnames)
    bare = one_site(0.01)
    del bare["sites"]
    for p in bare["pools"]:
        del p["site"]
    write_workbook(bare, tmp_path / "b.xlsx")
    assert "sites" not in openpyxl.load_workbook(tmp_path / "b.xlsx").sheetnames


# ------------------------------------------------------------------- what-if overrides
def test_power_change_adds_megawatts_and_is_checked():
    """+15 kW in the 10 kW case: 25 kW is the second hand-solved case (objective 3,500);
    per period, and refused when it removes more than the site has."""
    from allocator.scenario.overrides import apply_overrides

    sc = Scenario.from_dict(one_site(0.01, periods=2))
    more = apply_overrides(sc, {"power_change": {"dc": 0.015}})
    assert more.sites[0].power_mw == pytest.approx([0.025, 0.025])
    assert solve(more).objective == pytest.approx(3500.0 * 2, rel=REL)
    per = apply_overrides(sc, {"power_change": {"dc": [0.0, 0.015]}})
    assert solve(per).objective == pytest.approx(1500.0 + 3500.0, rel=REL)
    for bad, path in (
        ({"dcc": 1.0}, "power_change.dcc"),
        ({"dc": [0.0, -1.0]}, "power_change.dc[1]"),
    ):
        with pytest.raises(ScenarioError) as err:
            apply_overrides(sc, {"power_change": bad})
        assert [i.path for i in err.value.issues] == [path]


def test_the_warm_planner_sets_gpus_of_a_pool_in_a_site_and_its_power():
    """Planner.set_capacity on a sited pool changes the GPUs it may power (not its
    capacity row, which the powered GPUs bound): b down to 3 GPUs in the 25 kW case
    powers 3 of b (6 kW) and 10 of a (10 kW), 9 kW free: objective 900 + 1,000; a
    what-if with power_change warm from there matches a cold solve."""
    from allocator.workflows.planner import Planner

    pl = Planner(one_site(0.025))
    assert pl.solve().objective == pytest.approx(3500.0, rel=REL)
    plan = pl.set_capacity("b", 0, 3.0)
    assert plan.objective == pytest.approx(1900.0, rel=REL)
    assert pl.check_consistent() == 0.0
    plan = pl.what_if({"power_change": {"dc": -0.015}})
    cold = solve(one_site(0.01))
    assert plan.objective == pytest.approx(cold.objective, rel=REL)


def test_explain_says_what_a_kwh_earns_against_the_marginal_user():
    """25 kW case: chat earns 3 per GPU-hour of b (2 kW: 1.5 per kWh) and 1 on a (1 kW:
    1 per kWh); the marginal user (a) earns 1 per kWh = the 1,000 per MWh price."""
    from allocator.analysis.explain import explain

    sc = Scenario.from_dict(one_site(0.025))
    text = explain(sc, "chat", solve(sc)).text
    assert "earns 1.50 USD per kWh of dc's power on b (2 kW a GPU)" in text
    assert "earns 1.00 USD per kWh of dc's power on a" in text
    assert "the site's marginal user earns 1.00." in text


def test_sensitivity_ranges_a_sites_power():
    """10 kW case: every kW up to 20 kW powers half a GPU of b at 1.5 per kWh (150 over
    the period per kW), and down to 0 kW too: the price of 1,500 per MWh holds from 0 to
    0.02 MW, the objective 0 at 0 MW and 3,000 at 0.02 MW."""
    from allocator.analysis.sensitivity import sensitivity

    s = sensitivity(Scenario.from_dict(one_site(0.01)))
    r = s.power_range("dc", "t0")
    assert r.binding and r.shadow_price_per_mwh == pytest.approx(1500.0, rel=REL)
    assert (r.lower_mw, r.upper_mw) == pytest.approx((0.0, 0.02), abs=1e-9)
    assert (r.objective_at_lower, r.objective_at_upper) == pytest.approx((0.0, 3000.0), abs=1e-6)
    assert s.to_dict()["power"][0]["site"] == "dc"


def test_counterfactual_had_the_site_got_more_power_from_a_period():
    """Two periods at 10 kW; 15 kW more from t1 makes t1 the 25 kW case: objective
    1,500 + 3,500 against 3,000, an opportunity cost of the base of -2,000."""
    from allocator.workflows.counterfactuals import counterfactual

    sc = Scenario.from_dict(one_site(0.01, periods=2))
    out = counterfactual(
        sc, {"transforms": [{"type": "power", "site": "dc", "mw": 0.015, "from_period": "t1"}]}
    )
    assert out["opportunity_cost"] == pytest.approx(3000.0 - 5000.0, rel=REL)
    with pytest.raises(ScenarioError) as err:
        counterfactual(sc, {"transforms": [{"type": "power", "site": "x", "mw": 1.0}]})
    assert "unknown site 'x'" in str(err.value)


def test_power_value_against_a_price_of_power():
    """Two periods: 10 kW (a MWh worth 1,500: B's 1.5 per kWh) then 40 kW (power to
    spare). At 1,200 per MWh more power pays in t0 (one MW for the 100-hour period is
    worth 150,000); at 2,000 it is not worth its price; t1 has power to spare."""
    from allocator.analysis.power_value import power_value

    sc = Scenario.from_dict(one_site([0.01, 0.04], periods=2))
    plan = solve(sc)
    cheap = power_value(plan, sc, {"dc": 1200.0})
    assert [r.recommendation for r in cheap] == ["more power pays", "power to spare"]
    assert cheap[0].value_of_one_mw == pytest.approx(150_000.0, rel=REL)
    dear = power_value(plan, sc, {"dc": [2000.0, 2000.0]})
    assert dear[0].recommendation == "not worth its price"
    with pytest.raises(ValueError, match="unknown site"):
        power_value(plan, sc, {"dcc": 1.0})
