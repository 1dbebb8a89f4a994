"""The demo fleet: its shape, its determinism, and that its readings agree with its ground-truth sessions."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core import demo
from core.schema import ENTITIES_SCHEMA, READINGS_SCHEMA

EVS_WITH_POWER = ("ev-01", "ev-02", "ev-03", "ev-04")
EVS_WITH_SOC = (*EVS_WITH_POWER, "ev-05")
CHARGE_POINTS = ("cp-01", "cp-02", "cp-03", "cp-04")
START_S = int(demo.PERIOD_START.timestamp())
END_S = int(demo.PERIOD_END.timestamp())


@pytest.fixture(scope="module")
def fleet() -> demo.DemoFleet:
    return demo.generate(1)


def seconds(column: pl.Series) -> np.ndarray:
    return column.dt.epoch("s").to_numpy()


def readings_of(fleet: demo.DemoFleet, entity_id: str) -> pl.DataFrame:
    return fleet.readings.filter(pl.col("entity_id") == entity_id)


def truth_of(fleet: demo.DemoFleet, entity_id: str, complete_only: bool = True) -> pl.DataFrame:
    truth = fleet.truth.filter(pl.col("entity_id") == entity_id)
    return truth.filter(pl.col("complete")) if complete_only else truth


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (b[0] - a[0]) * 111.195
    east = (b[1] - a[1]) * 111.195 * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(north, east)


def power_integral_kwh(ts: np.ndarray, power: np.ndarray, start: int, end: int) -> float:
    """Trapezoids over the readings in [start, end), each end held flat to the session bound it faces."""
    inside = (ts >= start) & (ts < end)
    t, p = ts[inside].astype(np.float64), power[inside]
    area = np.sum(np.diff(t) * (p[1:] + p[:-1]) / 2) + p[0] * (t[0] - start) + p[-1] * (end - t[-1])
    return float(area) / 3600


# -- determinism ----------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_fleet(fleet):
    again = demo.generate(1)
    assert_frame_equal(again.entities, fleet.entities)
    assert_frame_equal(again.readings, fleet.readings)
    assert_frame_equal(again.truth, fleet.truth)
    assert again.locations == fleet.locations
    assert again.tariff == fleet.tariff
    assert again.true_capacity_kwh == fleet.true_capacity_kwh


def test_another_seed_gives_other_readings(fleet):
    other = demo.generate(2)
    assert not other.readings.equals(fleet.readings)
    assert not other.truth.equals(fleet.truth)


# -- entities, places, tariff ---------------------------------------------------------------------------------


def test_entities_are_the_documented_ones(fleet):
    assert fleet.entities.schema == ENTITIES_SCHEMA
    assert dict(fleet.entities.select("entity_id", "entity_type").iter_rows()) == {
        "cp-01": "ChargePoint",
        "cp-02": "ChargePoint",
        "cp-03": "ChargePoint",
        "cp-04": "ChargePoint",
        "ev-01": "EV",
        "ev-02": "EV",
        "ev-03": "EV",
        "ev-04": "EV",
        "ev-05": "EV",
        "ev-06": "EV",
        "home-battery": "Battery",
    }
    assert fleet.entities["entity_id"].is_sorted()
    assert fleet.display_timezone == demo.FLEET_TIMEZONE == "Europe/Brussels"


def test_battery_capacity_is_known_except_for_the_soc_only_ev(fleet):
    capacity = dict(fleet.entities.select("entity_id", "battery_capacity_kwh").iter_rows())
    assert {e: capacity[e] for e in EVS_WITH_POWER} == {"ev-01": 60.0, "ev-02": 77.0, "ev-03": 82.0, "ev-04": 40.0}
    assert capacity["ev-05"] is None
    assert fleet.true_capacity_kwh == {
        "ev-01": 60.0,
        "ev-02": 77.0,
        "ev-03": 82.0,
        "ev-04": 40.0,
        "ev-05": 58.0,
        "ev-06": 68.0,
    }


def test_charge_points_have_fixed_positions_and_no_reading_positions(fleet):
    rows = fleet.entities.select("entity_id", "latitude", "longitude").iter_rows()
    positions = {entity_id: (lat, lon) for entity_id, lat, lon in rows}
    assert all(positions[cp][0] is not None and positions[cp][1] is not None for cp in CHARGE_POINTS)
    assert all(positions[e] == (None, None) for e in positions if e not in CHARGE_POINTS)
    assert km(positions["cp-02"], demo.OFFICE) < 0.1
    assert km(positions["cp-03"], demo.OFFICE) < 0.1
    cp_readings = fleet.readings.filter(pl.col("entity_id").is_in(CHARGE_POINTS))
    assert cp_readings["latitude"].null_count() == cp_readings["longitude"].null_count() == cp_readings.height


def test_locations_are_a_home_per_ev_and_one_office(fleet):
    homes = {loc["entity_id"]: loc for loc in fleet.locations if loc["label"] == "Home"}
    offices = [loc for loc in fleet.locations if loc["label"] == "Office"]
    assert sorted(homes) == list(EVS_WITH_SOC)
    assert len(fleet.locations) == 6
    assert offices == [
        {"label": "Office", "latitude": 50.8466, "longitude": 4.3572, "radius_m": 200, "entity_id": None}
    ]
    centres = [(loc["latitude"], loc["longitude"]) for loc in homes.values()]
    assert all(loc["radius_m"] == 150 for loc in homes.values())
    assert all(50.80 <= lat <= 50.90 and 4.30 <= lon <= 4.50 for lat, lon in centres)
    assert min(km(a, b) for i, a in enumerate(centres) for b in centres[i + 1 :]) >= 2.0


def test_tariff_is_the_default_two_band_one(fleet):
    assert fleet.tariff == {
        "name": "demo-two-band",
        "currency": "EUR",
        "timezone": "Europe/Brussels",
        "bands": [
            {"band": "t1", "price_per_kwh": 0.32, "days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": [7, 22]},
            {"band": "t2", "price_per_kwh": 0.21},
        ],
        "fee_per_min": 0,
        "idle_fee_per_min": 0,
        "idle_grace_min": 0,
        "fee_per_session": 0,
        "vat_pct": 21,
        "min_per_session": None,
        "max_per_session": None,
        "valid_from": "2025-01-01",
        "valid_to": None,
    }


# -- readings -------------------------------------------------------------------------------------------------


def test_readings_are_canonical_unique_sorted_and_inside_the_period(fleet):
    readings = fleet.readings
    assert readings.schema == READINGS_SCHEMA
    assert readings.select("entity_id", "ts").is_unique().all()
    assert_frame_equal(readings, readings.sort("entity_id", "ts"))
    ts = seconds(readings["ts"])
    assert ts.min() >= START_S and ts.max() < END_S
    assert (readings["ts"].dt.epoch("us") % 1_000_000 == 0).all()
    assert readings.height < 400_000


@pytest.mark.parametrize(
    ("entity_id", "present"),
    [
        *[(ev, set(READINGS_SCHEMA) - {"entity_id", "ts", "energy_kwh"}) for ev in EVS_WITH_POWER],
        ("ev-05", {"soc_pct", "range_km", "odometer_km", "latitude", "longitude"}),
        ("ev-06", {"odometer_km", "latitude", "longitude"}),
        ("home-battery", {"soc_pct", "power_kw"}),
        *[(cp, {"power_kw", "energy_kwh"}) for cp in CHARGE_POINTS],
    ],
)
def test_each_entity_reports_exactly_its_columns(fleet, entity_id, present):
    readings = readings_of(fleet, entity_id).drop("entity_id", "ts")
    assert readings.height > 1000
    nulls = {c: readings[c].null_count() for c in readings.columns}
    assert {c for c, n in nulls.items() if n == 0} == present
    assert {c for c, n in nulls.items() if n == readings.height} == set(readings.columns) - present


def test_state_of_charge_is_whole_percent(fleet):
    soc = fleet.readings["soc_pct"].drop_nulls()
    assert (soc == soc.round()).all()
    assert soc.min() >= 0 and soc.max() <= 100


def test_home_battery_charges_and_discharges(fleet):
    power = readings_of(fleet, "home-battery")["power_kw"]
    assert power.min() < 0 < power.max()


def test_sampling_is_irregular_with_bounded_gaps(fleet):
    for entity_id in (*EVS_WITH_SOC, "ev-06"):
        gaps = np.diff(seconds(readings_of(fleet, entity_id)["ts"]))
        assert gaps.max() <= 17 * 60 and len(np.unique(gaps)) > 100
    for entity_id in CHARGE_POINTS:
        ts = seconds(readings_of(fleet, entity_id)["ts"])
        assert np.diff(ts).max() <= 390
        truth = truth_of(fleet, entity_id)
        k = np.searchsorted(seconds(truth["start_utc"]), ts, side="right") - 1
        charging = (k >= 0) & (ts < seconds(truth["end_utc"])[np.clip(k, 0, None)])
        # Idle charge points report on the 5-minute grid (plus up to 3 s); charging ones about every minute.
        assert ((ts[~charging] - START_S) % 300 <= 3).all()
        assert np.diff(ts[charging]).min() >= 55 and np.median(np.diff(ts[charging])) <= 63


def test_regeneration_blips_only_while_driving(fleet):
    blips = 0
    for entity_id in EVS_WITH_SOC:
        r = readings_of(fleet, entity_id)
        moved = (r["odometer_km"].diff() > 0).fill_null(False).to_numpy()
        rise = (r["soc_pct"].diff() >= 1).fill_null(False).to_numpy()
        blips += int(np.sum(moved & rise))
    assert blips >= 5


# -- truth ----------------------------------------------------------------------------------------------------


def test_truth_shape_and_methods(fleet):
    truth = fleet.truth
    assert truth.schema == demo.TRUTH_SCHEMA
    assert_frame_equal(truth, truth.sort("entity_id", "start_utc"))
    assert truth.null_count().sum_horizontal().item() == 0
    methods = dict(truth.group_by("entity_id").agg(pl.col("method").unique().sort().str.join(",")).iter_rows())
    assert methods == {
        **dict.fromkeys(EVS_WITH_POWER, "power"),
        "ev-05": "soc",
        **dict.fromkeys(CHARGE_POINTS, "meter"),
    }
    assert set(truth["kind"]) == {"home", "work", "fast", "public"}
    assert (truth["end_utc"] > truth["start_utc"]).all()
    assert (truth["battery_energy_kwh"] < truth["energy_kwh"]).all()
    assert ((truth["battery_energy_kwh"] / truth["energy_kwh"]).is_between(0.85, 0.95)).all()
    assert truth["energy_kwh"].min() >= 0.05


def test_session_counts_are_in_the_intended_range(fleet):
    counts = dict(fleet.truth.filter(pl.col("complete")).group_by("entity_id").len().iter_rows())
    assert all(40 <= counts[ev] <= 60 for ev in EVS_WITH_POWER), counts
    assert 20 <= counts["ev-05"] <= 60, counts
    assert all(60 <= counts[cp] <= 300 for cp in CHARGE_POINTS), counts
    for ev in EVS_WITH_POWER:
        assert {"home", "work"} <= set(truth_of(fleet, ev)["kind"])


def test_sessions_of_one_entity_are_at_least_30_minutes_apart(fleet):
    gaps = fleet.truth.select(
        (pl.col("start_utc") - pl.col("end_utc").shift().over("entity_id")).dt.total_seconds().alias("gap_s")
    )["gap_s"].drop_nulls()
    assert gaps.min() >= 30 * 60


def test_one_session_is_still_running_at_the_end(fleet):
    ongoing = fleet.truth.filter(~pl.col("complete"))
    assert ongoing.height == 1
    row = ongoing.row(0, named=True)
    assert row["entity_id"] == "ev-01" and row["end_utc"] == demo.PERIOD_END
    assert row["start_utc"] < demo.PERIOD_END - timedelta(hours=1)
    last = readings_of(fleet, "ev-01").row(-1, named=True)
    assert last["ts"] > row["start_utc"] and last["power_kw"] > 0 and last["is_plugged_in"]
    complete = fleet.truth.filter(pl.col("complete"))
    assert complete["end_utc"].max() <= demo.PERIOD_END - timedelta(minutes=30)


def test_power_integral_matches_the_true_energy(fleet):
    for entity_id in (*EVS_WITH_POWER, *CHARGE_POINTS):
        r = readings_of(fleet, entity_id)
        ts, power = seconds(r["ts"]), r["power_kw"].to_numpy()
        truth = truth_of(fleet, entity_id)
        for start, end, energy in zip(
            seconds(truth["start_utc"]), seconds(truth["end_utc"]), truth["energy_kwh"], strict=True
        ):
            assert power_integral_kwh(ts, power, start, end) == pytest.approx(energy, rel=0.03), (entity_id, start)


def test_power_stays_on_inside_sessions_except_in_short_pauses(fleet):
    short_pauses = 0
    for entity_id in (*EVS_WITH_POWER, *CHARGE_POINTS):
        r = readings_of(fleet, entity_id)
        ts, power = seconds(r["ts"]), r["power_kw"].to_numpy()
        truth = truth_of(fleet, entity_id)
        for start, end in zip(seconds(truth["start_utc"]), seconds(truth["end_utc"]), strict=True):
            inside = (ts > start) & (ts < end)
            t, p = ts[inside], power[inside]
            on = p >= 0.1
            assert on[0] and on[-1]
            off = np.flatnonzero(~on)
            if len(off):
                short_pauses += 1
                # Around every off reading, the readings that show power again are less than 15 min apart.
                on_t = t[on]
                before = on_t[np.searchsorted(on_t, t[off]) - 1]
                after = on_t[np.searchsorted(on_t, t[off])]
                assert (after - before).max() < 15 * 60
    assert short_pauses >= 10


def test_long_pauses_split_sessions_while_the_car_stays_plugged(fleet):
    splits = 0
    for entity_id in EVS_WITH_POWER:
        r = readings_of(fleet, entity_id)
        ts, plugged = seconds(r["ts"]), r["is_plugged_in"].to_numpy()
        truth = truth_of(fleet, entity_id)
        ends, starts = seconds(truth["end_utc"])[:-1], seconds(truth["start_utc"])[1:]
        for end, start in zip(ends, starts, strict=True):
            between = (ts >= end) & (ts <= start)
            if start - end < 2 * 3600 and plugged[between].all():
                splits += 1
    assert splits >= 3


def test_cars_plug_in_before_and_unplug_after_charging(fleet):
    for entity_id in EVS_WITH_POWER:
        r = readings_of(fleet, entity_id)
        idle = r.filter(pl.col("is_plugged_in") & ~pl.col("is_charging"))
        assert (idle["power_kw"] == 0).all() and idle.height > 100
        assert (r.filter(pl.col("is_charging"))["power_kw"] > 0).all()


def test_meter_rise_equals_the_true_energy(fleet):
    for entity_id in CHARGE_POINTS:
        r = readings_of(fleet, entity_id)
        ts, meter = seconds(r["ts"]), r["energy_kwh"].to_numpy()
        truth = truth_of(fleet, entity_id)
        before = np.searchsorted(ts, seconds(truth["start_utc"]), side="right") - 1
        after = np.searchsorted(ts, seconds(truth["end_utc"]), side="left")
        np.testing.assert_allclose(meter[after] - meter[before], truth["energy_kwh"].to_numpy(), atol=0.01)


def test_meters_only_rise_except_for_the_cp_03_replacement(fleet):
    for entity_id in CHARGE_POINTS:
        r = readings_of(fleet, entity_id)
        meter = r["energy_kwh"].to_numpy()
        drops = np.flatnonzero(np.diff(meter) < 0)
        assert meter[0] > 100
        if entity_id != "cp-03":
            assert len(drops) == 0
            continue
        assert len(drops) == 1 and meter[drops[0] + 1] == 0.0
        reset = r["ts"][int(drops[0]) + 1]
        truth = truth_of(fleet, entity_id)
        assert truth.filter((pl.col("start_utc") <= reset) & (pl.col("end_utc") >= reset)).height == 0


def test_energy_added_counter_rises_by_the_session_energy(fleet):
    for entity_id in EVS_WITH_POWER:
        r = readings_of(fleet, entity_id)
        ts, added = seconds(r["ts"]), r["energy_added_kwh"].to_numpy()
        truth = truth_of(fleet, entity_id)
        for start, end, energy in zip(
            seconds(truth["start_utc"]), seconds(truth["end_utc"]), truth["energy_kwh"], strict=True
        ):
            i = np.searchsorted(ts, start, side="right") - 1
            j = np.searchsorted(ts, end, side="left")
            restarted = (np.diff(added[i : j + 1]) < 0).any()
            base = 0.0 if restarted else added[i]
            assert added[j] - base == pytest.approx(energy, abs=0.002)


def test_soc_never_rises_while_parked_outside_sessions(fleet):
    for entity_id in EVS_WITH_SOC:
        r = readings_of(fleet, entity_id)
        ts = seconds(r["ts"])
        soc, odometer = r["soc_pct"].to_numpy(), r["odometer_km"].to_numpy()
        rise = np.flatnonzero((np.diff(soc) >= 1) & (np.diff(odometer) == 0))
        truth = truth_of(fleet, entity_id, complete_only=False)
        starts, ends = seconds(truth["start_utc"]), seconds(truth["end_utc"])
        k = np.searchsorted(starts, ts[rise + 1], side="left") - 1
        assert (k >= 0).all() and (ends[k] > ts[rise]).all(), entity_id


def test_soc_only_sessions_raise_the_soc_by_ten_percent_or_more(fleet):
    r = readings_of(fleet, "ev-05")
    ts, soc = seconds(r["ts"]), r["soc_pct"].to_numpy()
    truth = truth_of(fleet, "ev-05")
    before = soc[np.searchsorted(ts, seconds(truth["start_utc"]), side="right") - 1]
    after = soc[np.searchsorted(ts, seconds(truth["end_utc"]), side="left")]
    assert (after - before).min() >= 10
    # Whole-percent SoC at both ends (up to 1 % of 58 kWh), plus the last minute of a drive when the charge
    # starts on arrival, keep the estimate within 1.25 kWh of the energy that reached the battery.
    np.testing.assert_allclose((after - before) / 100 * 58.0, truth["battery_energy_kwh"].to_numpy(), atol=1.25)


def test_sessions_happen_where_their_kind_says(fleet):
    homes = {loc["entity_id"]: (loc["latitude"], loc["longitude"]) for loc in fleet.locations if loc["label"] == "Home"}
    places = {"work": (demo.OFFICE, 0.2), "fast": (demo.HIGHWAY, 0.1)}
    for entity_id in EVS_WITH_SOC:
        r = readings_of(fleet, entity_id)
        for row in truth_of(fleet, entity_id).iter_rows(named=True):
            during = r.filter(pl.col("ts").is_between(row["start_utc"], row["end_utc"]))
            centre = (during["latitude"].median(), during["longitude"].median())
            if row["kind"] == "home":
                assert km(centre, homes[entity_id]) < 0.15
            elif row["kind"] in places:
                place, radius_km = places[row["kind"]]
                assert km(centre, place) < radius_km
            assert during["odometer_km"].n_unique() == 1


def test_home_charging_keeps_local_evening_hours_across_the_dst_change(fleet):
    home = (
        fleet.truth.filter(pl.col("kind") == "home", pl.col("entity_id").is_in(EVS_WITH_SOC))
        .with_columns(
            local=pl.col("start_utc").dt.convert_time_zone(demo.FLEET_TIMEZONE),
            gap=pl.col("start_utc") - pl.col("end_utc").shift().over("entity_id"),
        )
        .with_columns(
            day=pl.col("local").dt.date(),
            hour=pl.col("local").dt.hour(),
            offset_h=(
                pl.col("local").dt.replace_time_zone(None) - pl.col("start_utc").dt.replace_time_zone(None)
            ).dt.total_hours(),
        )
    )
    # The second half of a charge split by a long pause may start later; every first half starts in the window.
    first_halves = home.filter(pl.col("gap").is_null() | (pl.col("gap") > timedelta(hours=2)))
    assert first_halves["hour"].is_between(18, 22).all()
    for day, offset in ((date(2025, 3, 29), 1), (date(2025, 3, 31), 2)):
        that_evening = first_halves.filter(pl.col("day") == day)
        assert that_evening.height >= 1
        assert (that_evening["offset_h"] == offset).all()
