"""The full detection engine (meter, power, counter, SoC) on named scenarios with exact expected sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core.detect import DetectParams, detect_sessions, session_id
from core.schema import READINGS_SCHEMA, SESSIONS_SCHEMA, conform
from tests.scenarios import at, readings, steady, table, through

DST = datetime(2025, 3, 30, 0, 0, tzinfo=UTC)  # Europe/Brussels skips 02:00-03:00 local at 01:00Z


def expect(sessions: pl.DataFrame, spans: list[tuple], t0: datetime | None = None) -> None:
    """spans: (start minute, end minute, energy kWh, method, flags) per session, in order."""
    moment = at if t0 is None else (lambda m: t0 + timedelta(minutes=m))
    got = sessions.select("start_utc", "end_utc", "energy_kwh", "method", "flags").rows()
    assert [(s, e, m, f) for s, e, _, m, f in got] == [(moment(a), moment(b), m, f) for a, b, _, m, f in spans]
    assert [g[2] for g in got] == pytest.approx([s[2] for s in spans], abs=1e-9)


# --- named scenarios -----------------------------------------------------------------------------------------


def test_pause_inside_session_meter():
    # 6 kW (0.5 kWh per 5 min) from 18:05 to 18:35, a 10-minute pause, then again until 19:00
    # start = the first reading showing a rise, end = the last reading before the final rise (see registers.py)
    rows = through([(0, 100), (5, 100), (35, 103), (45, 103), (60, 104.5), (80, 104.5)])
    s = detect_sessions(table("energy_kwh", rows, entity="cp"))
    expect(s, [(10, 55, 4.5, "meter", "")])
    row = s.row(0, named=True)
    assert row["start_reason"] == "started: meter rose 0.5 kWh by 2025-02-03T18:10:00Z (from 2025-02-03T18:05:00Z)"
    assert row["end_reason"] == (
        "ended: no charging for 20 min until the last reading at 2025-02-03T19:20:00Z; "
        "meter rose its last 0.5 kWh after 2025-02-03T18:55:00Z (by 2025-02-03T19:00:00Z)"
    )
    assert row["max_power_kw"] == pytest.approx(6.0)
    assert row["average_power_kw"] == pytest.approx(6.0)  # 4.5 kWh over the 45 minutes of rising intervals
    assert (row["source"], row["soc_start_pct"], row["latitude"], row["plug_in_utc"]) == ("detected", None, None, None)


def test_pause_of_exactly_max_pause_stays_inside():
    rows = through([(0, 100), (5, 100), (35, 103), (50, 103), (65, 104.5), (90, 104.5)])
    expect(detect_sessions(table("energy_kwh", rows)), [(10, 60, 4.5, "meter", "")])


def test_long_pause_splits():
    meter = through([(0, 100), (5, 100), (35, 103), (55, 103), (70, 104.5), (100, 104.5)])
    s = detect_sessions(table("energy_kwh", meter))
    expect(s, [(10, 30, 3.0, "meter", ""), (60, 65, 1.5, "meter", "")])
    assert s.get_column("end_reason")[0] == (
        "ended: paused 20 min, longer than 15 min; "
        "meter rose its last 0.5 kWh after 2025-02-03T18:30:00Z (by 2025-02-03T18:35:00Z)"
    )
    # the SoC keeps the outer readings: the last at the old level and the first at the final level
    soc = through([(0, 40), (5, 40), (35, 46), (55, 46), (70, 49), (100, 49)])
    s = detect_sessions(table("soc_pct", soc, odometer_km=500.0), capacities={"ev": 50.0})
    expect(s, [(5, 35, 3.0, "soc", ""), (55, 70, 1.5, "soc", "")])


def test_unplug_ends_session():
    # the 10-minute pause alone would keep both charges together; the unplug at 18:35 ends the first
    rows = [
        *[(m, e, True) for m, e in through([(0, 10), (30, 13)])],
        (35, 13.0, False),
        *[(m, e, True) for m, e in through([(40, 13), (50, 14)])],
        (55, 14.0, False),
        (80, 14.0, False),
    ]
    s = detect_sessions(table("energy_kwh is_plugged_in", rows))
    expect(s, [(5, 25, 3.0, "meter", ""), (45, 45, 1.0, "meter", "")])
    assert s.get_column("end_reason").to_list() == [
        "ended: unplugged at 2025-02-03T18:35:00Z; "
        "meter rose its last 0.5 kWh after 2025-02-03T18:25:00Z (by 2025-02-03T18:30:00Z)",
        "ended: unplugged at 2025-02-03T18:55:00Z; "
        "meter rose its last 0.5 kWh after 2025-02-03T18:45:00Z (by 2025-02-03T18:50:00Z)",
    ]
    # plug-in is known only where an earlier reading shows the vehicle unplugged
    assert s.select("plug_in_utc", "plug_out_utc").rows() == [(None, at(35)), (at(40), at(55))]


def test_unplug_at_the_reading_that_shows_the_last_rise_keeps_that_rise():
    rows = [(0, 10.0, True), (5, 10.0, True), (10, 10.5, True), (15, 11.0, False), (40, 11.0, False)]
    s = detect_sessions(table("energy_kwh is_plugged_in", rows))
    expect(s, [(10, 10, 1.0, "meter", "")])
    assert s.get_column("plug_out_utc").to_list() == [at(15)]


def test_meter_reset_between():
    rows = through([(0, 500), (5, 500), (35, 503), (65, 503)]) + through([(70, 0), (80, 0), (110, 2), (140, 2)])
    s = detect_sessions(table("energy_kwh", rows, entity="cp"))
    expect(s, [(10, 30, 3.0, "meter", ""), (85, 105, 2.0, "meter", "")])


def test_meter_reset_inside():
    # the register restarts at 0 between 18:20 and 18:25 while charging: that interval's energy is unknown,
    # counted as 0 kWh (never negative), and the session carries the flag
    rows = through([(0, 100), (20, 102)]) + through([(25, 0), (40, 1.5), (70, 1.5)])
    s = detect_sessions(table("energy_kwh", rows, entity="cp"))
    expect(s, [(5, 35, 3.5, "meter", "meter_reset")])


def test_regen_while_driving():
    socs = [70, 69, 68, 69, 70, 71, 70, 69, 70, 71, 72, 71, 70]
    drive = [(5 * k, soc, 1000.0 + 4 * k) for k, soc in enumerate(socs)]
    parked = [(m, 70, 1048.0) for m in range(65, 125, 5)]
    caps = {"ev": 60.0}
    assert detect_sessions(table("soc_pct odometer_km", drive + parked), capacities=caps).height == 0
    # without an odometer, the position tells the same: about 1.1 km between readings
    moving = [(5 * k, soc, 50.0 + 0.01 * k, 4.0) for k, soc in enumerate(socs)]
    still = [(m, 70, 50.12, 4.0) for m in range(65, 125, 5)]
    frame = table("soc_pct latitude longitude", moving + still)
    assert detect_sessions(frame, capacities=caps).height == 0
    # the same SoC curve while parked would be charging: the move is what rules it out
    parked_all = [(m, soc, 1000.0) for m, soc, _ in drive] + [(m, 70, 1000.0) for m, _, _ in parked]
    assert detect_sessions(table("soc_pct odometer_km", parked_all), capacities=caps).height > 0


def test_move_ends_session():
    # charging on both sides of a 5-minute gap in which the odometer jumped 3 km: two sessions, never one
    rows = [(m, soc, 800.0) for m, soc in through([(0, 40), (5, 40), (30, 45)])]
    rows += [(m, soc, 803.0) for m, soc in through([(35, 45), (55, 49), (80, 49)])]
    s = detect_sessions(table("soc_pct odometer_km", rows), capacities={"ev": 40.0})
    expect(s, [(5, 30, 2.0, "soc", ""), (35, 55, 1.6, "soc", "")])
    assert s.get_column("end_reason")[0].startswith("ended: moved at 2025-02-03T18:35:00Z; ")


def test_soc_only_needs_capacity():
    rows = through([(0, 40), (10, 40), (60, 50), (100, 50)])
    frame = table("soc_pct range_km", [(m, soc, 4 * soc) for m, soc in rows], odometer_km=1234.0)
    assert detect_sessions(frame).height == 0
    assert detect_sessions(frame, capacities={"other": 60.0}).height == 0
    assert detect_sessions(frame, capacities={"ev": 0.0}).height == 0
    s = detect_sessions(frame, capacities={"ev": 60.0})
    # start = the last reading at 40 % (18:10), end = the first reading at 50 % (19:00); 10 % of 60 kWh
    expect(s, [(10, 60, 6.0, "soc", "")])
    row = s.row(0, named=True)
    assert (row["soc_start_pct"], row["soc_end_pct"], row["range_start_km"], row["range_end_km"]) == (40, 50, 160, 200)
    assert row["average_power_kw"] == pytest.approx(7.2) and row["max_power_kw"] is None
    assert row["start_reason"] == (
        "started: SoC rose from 40% to 41% between 2025-02-03T18:10:00Z and 2025-02-03T18:15:00Z "
        "(start = the last reading at 40%)"
    )
    assert row["end_reason"] == (
        "ended: no charging for 40 min until the last reading at 2025-02-03T19:40:00Z; "
        "SoC reached 50% at 2025-02-03T19:00:00Z"
    )


def _gap_rows(extra: str) -> list[tuple]:
    """6 kW from 18:05 to 20:30 with no reading between 18:30 and 20:00 (90 min > max_gap 60)."""
    values = {"soc_pct": (40, 1.0), "energy_added_kwh": (0, 0.5), "energy_kwh": (10, 0.5)}[extra]
    base, per_step = values
    rows = [(0, 0.0, base)]
    rows += [(m, 6.0, base + per_step * (m - 5) / 5) for m in range(5, 35, 5)]
    rows += [(m, 6.0, base + per_step * (m - 5) / 5) for m in range(120, 155, 5)]
    done = rows[-1][2]
    return rows + [(m, 0.0, done) for m in range(155, 195, 5)]


def test_gap_longer_than_max_gap():
    # with a meter, the meter has the stretch: energy is the register difference across the gap
    s = detect_sessions(table("power_kw energy_kwh", _gap_rows("energy_kwh"), entity="wallbox"))
    expect(s, [(10, 145, 14.5, "meter", "gap_bridged")])  # 6 kW for 145 min
    assert s.get_column("max_power_kw").to_list() == [6.0]  # measured power wins over the meter's estimate
    # power alone: the gap is not integrated (edges counted half, as always)
    alone = table("power_kw", [(m, p) for m, p, _ in _gap_rows("soc_pct")])
    expect(detect_sessions(alone, DetectParams(max_pause_min=15)), [(5, 150, 6.0, "power", "gap_not_integrated")])


@pytest.mark.parametrize("column, capacities", [("soc_pct", {"ev": 50.0}), ("energy_added_kwh", None)])
def test_power_gap_bridged_by_soc_or_counter(column, capacities):
    # 0.25 + 2.5 kWh before the gap, 9 kWh across it (18 % of 50 kWh, or the counter's rise), 3 + 0.25 after
    s = detect_sessions(table(f"power_kw {column}", _gap_rows(column)), capacities=capacities)
    if column == "soc_pct":
        expect(s, [(5, 150, 15.0, "power", "gap_bridged")])
        assert s.get_column("average_power_kw").to_list() == pytest.approx([6.0])
    else:  # the counter measured the whole charge from 18:05: 14.5 kWh, no trapezoid edges
        expect(s, [(5, 150, 14.5, "power", "energy_added_counter,gap_bridged")])
        assert s.get_column("average_power_kw").to_list() == pytest.approx([6.0 * 14.5 / 15.0])


def test_dst_change():
    # 00:30Z-01:30Z is 01:30 CET-03:30 CEST on the wall: one hour of charging, never two
    power = readings([(25, 0.0), *steady(30, 90, 6.0), *[(m, 0.0) for m in range(95, 150, 5)]])
    power = power.with_columns(ts=pl.col("ts") - at(0) + DST)
    meter = table("energy_kwh", through([(0, 50), (30, 50), (90, 56), (150, 56)]), entity="cp", t0=DST)
    frame = pl.concat([power, meter])
    s = detect_sessions(frame)
    expect(s, [(35, 85, 6.0, "meter", ""), (30, 90, 6.5, "power", "")], t0=DST)
    assert s.get_column("entity_id").to_list() == ["cp", "ev"]
    assert s.get_column("average_power_kw").to_list() == pytest.approx([6.0, 6.0])
    assert s.get_column("start_reason").to_list() == [
        "started: meter rose 0.5 kWh by 2025-03-30T00:35:00Z (from 2025-03-30T00:30:00Z)",
        "started: power rose to 6.0 kW at 2025-03-30T00:30:00Z",
    ]
    assert s.schema["start_utc"] == pl.Datetime("us", "UTC")
    # the same instants handed over in local time give exactly the same sessions, in UTC
    local = frame.with_columns(pl.col("ts").dt.convert_time_zone("Europe/Brussels"))
    assert_frame_equal(detect_sessions(local), s)


def test_duplicates_and_out_of_order():
    clean = _fleet()
    messy = pl.concat([clean, clean.sample(n=25, seed=1)]).sample(fraction=1.0, shuffle=True, seed=3)
    expected = detect_sessions(clean, capacities=CAPS)
    assert expected.height == 5
    assert_frame_equal(detect_sessions(messy, capacities=CAPS), expected)


def test_conflicting_duplicates_give_the_same_result_in_any_order():
    a = table("power_kw", [(0, 0.0), *steady(5, 30, 7.0), (35, 0.0), (60, 0.0)])
    b = table("power_kw", [(20, 3.0)])
    first = detect_sessions(pl.concat([a, b]))
    assert_frame_equal(detect_sessions(pl.concat([b, a])), first)
    assert first.get_column("max_power_kw").to_list() == [7.0]


ONGOING = {
    # method: (columns, rows: a complete session, then one still running at the end; capacities; listed span)
    "meter": ("energy_kwh", through([(0, 100), (5, 100), (35, 103), (60, 103), (70, 104)]), None, (10, 30)),
    "power": ("power_kw", [(0, 0.0), *steady(5, 35, 6.0), (40, 0.0), (60, 0.0), *steady(65, 70, 6.0)], None, (5, 35)),
    "counter": (
        "energy_added_kwh",
        through([(0, 0), (5, 0), (35, 3), (60, 3)]) + through([(65, 0.5), (70, 1)]),
        None,
        (10, 30),
    ),
    "soc": ("soc_pct", through([(0, 40), (5, 40), (35, 46), (60, 46), (70, 48)]), {"ev": 50.0}, (5, 35)),
}


@pytest.mark.parametrize("method", sorted(ONGOING))
def test_ongoing_at_end_not_listed(method):
    columns, rows, caps, (start, end) = ONGOING[method]
    s = detect_sessions(table(columns, rows, odometer_km=10.0), capacities=caps)
    assert s.select("start_utc", "end_utc").rows() == [(at(start), at(end))]


def test_register_session_is_complete_only_after_more_than_max_pause():
    # 15-minute readings: at 20:15 the next interval may still rise and continue the session (pause = 15 min)
    rows = [(0, 1000.0), (15, 1001.2), (30, 1003.0), (45, 1003.0), (60, 1003.0)]
    assert detect_sessions(table("energy_kwh", rows[:4])).height == 0
    expect(detect_sessions(table("energy_kwh", rows)), [(15, 15, 3.0, "meter", "")])


def test_tiny_session_dropped():
    rows = [(0, 100.0), (5, 100.0), (10, 100.04), (40, 100.04)]
    assert detect_sessions(table("energy_kwh", rows)).height == 0
    expect(detect_sessions(table("energy_kwh", rows), DetectParams(min_energy_kwh=0.01)), [(10, 10, 0.04, "meter", "")])
    # a meter creeping up slower than min_power_kw is not charging at all
    creep = [(m, 100.0 + 0.001 * m) for m in range(0, 300, 15)]
    assert detect_sessions(table("energy_kwh", creep), DetectParams(min_energy_kwh=0.0)).height == 0
    # the SoC needs a rise of soc_min_rise_pct
    soc = table("soc_pct", [(0, 50), (5, 50), (10, 51), (40, 51)], odometer_km=1.0)
    assert detect_sessions(soc, DetectParams(soc_min_rise_pct=2), capacities={"ev": 60.0}).height == 0
    assert detect_sessions(soc, capacities={"ev": 60.0}).height == 1


def test_counter_restarts():
    # no power: the car's energy_added counter keeps 7.3 from an older charge, restarts at each charge;
    # the second charge follows a 10-minute pause (which alone would not split), SoC is there but ranks lower
    counter = [(0, 7.3), (5, 7.3)] + through([(10, 0.5), (35, 3)]) + [(40, 3.0), (45, 3.0)]
    counter += through([(50, 0.5), (65, 2)]) + [(m, 2.0) for m in range(70, 105, 5)]
    rows = [(m, c, 20 <= m <= 35 or 50 <= m <= 65, 40 + int(m / 5), True) for m, c in counter]
    frame = table("energy_added_kwh is_charging soc_pct is_plugged_in", rows)
    s = detect_sessions(frame, capacities={"ev": 60.0})
    expect(s, [(10, 30, 3.0, "meter", "energy_added_counter"), (50, 60, 2.0, "meter", "energy_added_counter")])
    assert s.get_column("end_reason")[0] == (
        "ended: energy_added counter restarted at 2025-02-03T18:50:00Z; "
        "energy_added counter rose its last 0.5 kWh after 2025-02-03T18:30:00Z (by 2025-02-03T18:35:00Z)"
    )
    assert s.get_column("start_reason")[1] == (
        "started: energy_added counter rose 0.5 kWh by 2025-02-03T18:50:00Z (from 2025-02-03T18:45:00Z)"
    )


def test_counter_restart_one_poll_late_does_not_cut_a_power_charge():
    # power shows charging from 18:05; the counter still holds the last charge's 7.3 kWh and restarts at 18:10
    rows = [(0, 0.0, 7.3), (5, 7.2, 7.3), *[(m, 7.2, 0.6 * (m - 5) / 5) for m in range(10, 35, 5)]]
    rows += [(m, 0.0, 3.0) for m in range(35, 70, 5)]
    # the counter's rise gives the energy (its late restart lost the first poll's 0.6 kWh; power timing stays)
    expect(detect_sessions(table("power_kw energy_added_kwh", rows)), [(5, 30, 3.0, "power", "energy_added_counter")])
    # after a pause, however short, a restart is a new charge
    rows = [(0, 0.0, 7.3), *[(m, 7.2, 0.6 * m / 5) for m in range(5, 20, 5)], (20, 0.0, 1.8)]
    rows += [(25, 7.2, 0.6), (30, 7.2, 1.2), *[(m, 0.0, 1.2) for m in range(35, 70, 5)]]
    s = detect_sessions(table("power_kw energy_added_kwh", rows))
    expect(s, [(5, 15, 1.8, "power", "energy_added_counter"), (25, 30, 1.2, "power", "energy_added_counter")])
    assert s.get_column("end_reason")[0].startswith("ended: energy_added counter restarted at 2025-02-03T18:25:00Z; ")


def test_charge_point_meter_only_15min():
    # 7.2 kW from 18:05 to 19:55, then 14.4 kW from 07:00 to 07:30 the next morning; readings every 15 min
    evening = [(0, 1000.0), (15, 1001.2), (30, 1003.0), (45, 1004.8), (60, 1006.6), (75, 1008.4), (90, 1010.2)]
    evening += [(105, 1012.0), (120, 1012.6), (135, 1012.6), (150, 1012.6)]
    morning = [(780, 1012.6), (795, 1016.2), (810, 1019.8), (825, 1019.8), (840, 1019.8)]
    s = detect_sessions(table("energy_kwh", evening + morning, entity="cp-7"))
    # start/end on the readings taken while charging: 18:15 (first rise seen) and 19:45 (before the last rise)
    expect(s, [(15, 105, 12.6, "meter", ""), (795, 795, 7.2, "meter", "")])
    assert s.get_column("max_power_kw").to_list() == pytest.approx([7.2, 14.4])
    assert s.get_column("average_power_kw").to_list() == pytest.approx([6.3, 14.4])  # over the rising intervals
    assert s.get_column("end_reason").to_list() == [
        "ended: paused 660 min, longer than 15 min; "
        "meter rose its last 0.6 kWh after 2025-02-03T19:45:00Z (by 2025-02-03T20:00:00Z)",
        "ended: no charging for 30 min until the last reading at 2025-02-04T08:00:00Z; "
        "meter rose its last 3.6 kWh after 2025-02-04T07:15:00Z (by 2025-02-04T07:30:00Z)",
    ]


# --- which method wins -----------------------------------------------------------------------------------------


def test_meter_beats_power_where_both_report():
    # the meter says 2.5 kWh where power integrates to 3.0: the meter's figure stands
    rows = [(0, 0.0, 20.0), *[(m, 6.0, 20.0 + 0.4 * (m - 5) / 5) for m in range(5, 35, 5)]]
    rows += [(m, 0.0, 22.4 + 0.1) for m in range(35, 70, 5)]
    s = detect_sessions(table("power_kw energy_kwh", rows))
    expect(s, [(10, 30, 2.5, "meter", "")])


def test_meter_present_and_flat_means_no_charging_whatever_power_says():
    rows = [(0, 0.0, 20.0), *[(m, 6.0, 20.0) for m in range(5, 35, 5)], *[(m, 0.0, 20.0) for m in range(35, 70, 5)]]
    assert detect_sessions(table("power_kw energy_kwh", rows)).height == 0
    # without the meter the same power readings are a session
    assert detect_sessions(table("power_kw", [(m, p) for m, p, _ in rows])).height == 1


def test_power_beats_soc_and_the_counter():
    rows = [(0, 0.0, 40, 0.0), *[(m, 6.0, 40 + (m - 5) / 5, (m - 5) / 10) for m in range(5, 35, 5)]]
    rows += [(m, 0.0, 45, 2.5) for m in range(35, 70, 5)]
    s = detect_sessions(table("power_kw soc_pct energy_added_kwh", rows, odometer_km=3.0), capacities={"ev": 50.0})
    expect(s, [(5, 30, 2.5, "power", "energy_added_counter")])  # power's times, the counter's energy
    assert s.select("soc_start_pct", "soc_end_pct").rows() == [(40, 45)]


def test_method_is_chosen_per_stretch():
    # day 1 the logger sends power; day 2 only the SoC: one session each, each by its own method
    day1 = readings([(0, 0.0), *steady(5, 35, 6.0), (40, 0.0), (70, 0.0)])
    day2 = table("soc_pct", through([(1440, 50), (1445, 50), (1475, 56), (1500, 56)]))
    s = detect_sessions(pl.concat([day1, day2]), capacities={"ev": 50.0})
    expect(s, [(5, 35, 3.5, "power", ""), (1445, 1475, 3.0, "soc", "")])


def test_is_charging_keeps_a_slow_soc_charge_together():
    # integer SoC rising 1 % every 25 min (1.2 kW into 50 kWh): flat for 20 min between steps
    soc = [(m, 40 + (m - 5) // 25) for m in range(0, 135, 5)]
    soc[0] = (0, 40)
    frame = table("soc_pct is_charging", [(m, v, 5 <= m <= 105) for m, v in soc], odometer_km=7.0)
    expect(detect_sessions(frame, capacities={"ev": 50.0}), [(5, 105, 2.0, "soc", "")])


def test_a_slow_soc_charge_stays_one_session_without_is_charging():
    # The same charge without is_charging: the SoC stays flat 20 min within each 1 % step, longer than max_pause_min
    # but no longer than the flat stretches of the steps next to it, so none of them is a pause. Then the SoC stays
    # flat for 60 min, longer than 15 min plus those 20 min: a real pause, which ends the session.
    soc = [(m, 40 + max(0, m - 5) // 25) for m in range(0, 110, 5)]  # 40 % until 18:25, 44 % from 19:45
    soc += [(m, 44 + (m - 145) // 25) for m in range(150, 250, 5)]  # flat until 20:45, then steps again
    soc += [(m, 48) for m in range(250, 290, 5)]
    s = detect_sessions(table("soc_pct", soc, odometer_km=7.0), capacities={"ev": 50.0})
    expect(s, [(25, 105, 2.0, "soc", ""), (165, 245, 2.0, "soc", "")])
    first = s.row(0, named=True)
    assert first["average_power_kw"] == pytest.approx(1.5)  # 2 kWh from the last 40 % to the first 44 %: 80 min
    assert first["end_reason"] == (
        "ended: paused 60 min, longer than 15 min and the 20 min the SoC stayed flat within its steps; "
        "SoC reached 44% at 2025-02-03T19:45:00Z"
    )


def test_ids_are_deterministic_and_later_data_leaves_them_alone():
    first = detect_sessions(_fleet(), capacities=CAPS)
    later = pl.concat([_fleet(), _fleet(shift_min=24 * 60)])
    again = detect_sessions(later, capacities=CAPS)
    assert again.height == 2 * first.height
    assert set(first.get_column("session_id")) <= set(again.get_column("session_id"))
    assert_frame_equal(
        again.filter(pl.col("session_id").is_in(first.get_column("session_id").implode())).drop("end_reason"),
        first.drop("end_reason"),
    )
    row = first.row(0, named=True)
    # whole-second starts are written without a fraction, as the power engine always did
    assert row["session_id"] == session_id(row["entity_id"], row["start_utc"].strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_position_is_the_median_of_the_session_readings_and_unknowns_stay_null():
    # one GPS outlier 150 m off (under the 200 m move threshold) does not pull the position
    lats = [50.85, 50.85, 50.8501, 50.8513, 50.8502, 50.85, 50.85, 50.85, 50.85, 50.85]
    rows = [(m, e, lat, 4.35) for (m, e), lat in zip(through([(0, 7), (5, 7), (25, 9), (45, 9)]), lats, strict=True)]
    s = detect_sessions(table("energy_kwh latitude longitude", rows), capacities={"ev": None})
    expect(s, [(10, 20, 2.0, "meter", "")])
    row = s.row(0, named=True)
    assert (row["latitude"], row["longitude"]) == (pytest.approx(50.8502), 4.35)  # median of 18:10, 18:15, 18:20
    unknown = ("soc_start_pct", "soc_end_pct", "range_start_km", "range_end_km", "plug_in_utc", "plug_out_utc")
    assert [row[c] for c in unknown] == [None] * len(unknown)


def test_empty_and_signal_free_inputs():
    assert detect_sessions(pl.DataFrame()).schema == SESSIONS_SCHEMA
    assert detect_sessions(table("odometer_km", [(0, 1.0), (5, 1.0)])).schema == SESSIONS_SCHEMA
    assert detect_sessions(table("soc_pct", [(0, 40.0)]), capacities={"ev": 50.0}).height == 0


# --- a small mixed fleet and property tests --------------------------------------------------------------------

CAPS = {"car-soc": 50.0}


def _fleet(shift_min: int = 0) -> pl.DataFrame:
    cp = table("energy_kwh", through([(0, 100), (5, 100), (35, 103), (45, 103), (60, 104.5), (80, 104.5)]), entity="cp")
    ev = readings([(0, 0.0), *steady(5, 35, 6.0), (40, 0.0), *[(m, 0.0) for m in range(60, 80, 5)]], entity="ev")
    ev2 = readings([*steady(0, 20, 11.0, plugged=True), (25, 0.0, False), *steady(30, 40, 3.0, True), (45, 0.0, False)])
    soc = through([(0, 30), (10, 30), (40, 36), (80, 36)])
    car = table("soc_pct latitude longitude", [(m, v, 50.85, 4.35) for m, v in soc], entity="car-soc")
    frame = pl.concat([cp, ev, ev2.with_columns(entity_id=pl.lit("ev2")), car])
    return frame.with_columns(pl.col("ts") + timedelta(minutes=shift_min))


@st.composite
def fleets(draw) -> tuple[pl.DataFrame, dict[str, float]]:
    """1-3 entities with irregular readings; each reports some of power, meter, counter, SoC, plug state, odometer."""
    frames, caps = [], {}
    for e in range(draw(st.integers(1, 3))):
        steps = draw(
            st.lists(
                st.tuples(
                    st.integers(1, 25) | st.integers(55, 90),
                    st.sampled_from([0.0, 0.0, 0.05, 3.7, 7.4, 11.0]),
                    st.booleans(),
                ),
                min_size=2,
                max_size=40,
            )
        )
        kinds = draw(st.sets(st.sampled_from(["power", "meter", "counter", "soc", "plug", "odometer"]), min_size=1))
        minute = energy = since_plug = odometer = 0.0
        rows = []
        for dt, power, plugged in steps:
            minute += dt
            energy += power * dt / 60 if plugged else 0.0
            since_plug = since_plug + power * dt / 60 if plugged else 0.0
            odometer += 0.0 if plugged else dt * 0.7
            rows.append(
                {
                    "ts": at(minute),
                    "power_kw": power if plugged else 0.0,
                    "energy_kwh": round(energy, 3),
                    "energy_added_kwh": round(since_plug, 2),
                    "soc_pct": float(min(100, 20 + int(energy * 2))),
                    "is_plugged_in": plugged,
                    "odometer_km": round(odometer, 1),
                }
            )
        frame = pl.DataFrame(rows).with_columns(entity_id=pl.lit(f"e{e}"))
        dropped = {"power": "power_kw", "meter": "energy_kwh", "counter": "energy_added_kwh", "soc": "soc_pct"}
        dropped |= {"plug": "is_plugged_in", "odometer": "odometer_km"}
        frames.append(frame.drop([c for k, c in dropped.items() if k not in kinds]))
        if draw(st.booleans()):
            caps[f"e{e}"] = 40.0
    return conform(pl.concat(frames, how="diagonal_relaxed"), READINGS_SCHEMA), caps


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(fleets(), st.integers(0, 2**31))
def test_shuffled_rows_give_identical_sessions(fleet, seed):
    frame, caps = fleet
    expected = detect_sessions(frame, capacities=caps)
    assert_frame_equal(detect_sessions(frame.sample(fraction=1.0, shuffle=True, seed=seed), capacities=caps), expected)


@PROPERTY
@given(fleets(), st.data())
def test_exact_duplicates_give_identical_sessions(fleet, data):
    frame, caps = fleet
    picks = data.draw(st.lists(st.integers(0, frame.height - 1), min_size=1, max_size=frame.height))
    doubled = pl.concat([frame, frame[picks]])
    assert_frame_equal(detect_sessions(doubled, capacities=caps), detect_sessions(frame, capacities=caps))


@PROPERTY
@given(fleets(), st.data())
def test_concatenated_chunks_give_identical_sessions(fleet, data):
    frame, caps = fleet
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, frame.height - 1)), max_size=6)))
    chunks = [frame[a:b] for a, b in zip([0, *cuts], [*cuts, frame.height], strict=True)]
    order = data.draw(st.permutations(range(len(chunks))))
    glued = pl.concat([chunks[i] for i in order])
    assert_frame_equal(detect_sessions(glued, capacities=caps), detect_sessions(frame, capacities=caps))


@PROPERTY
@given(fleets(), st.data())
def test_register_sessions_of_a_prefix_stay_the_same_with_more_data(fleet, data):
    frame, caps = fleet
    # the interval methods only (power's pinned "at least max_pause" may still extend a listed session)
    frame = frame.with_columns(power_kw=None)
    cut = data.draw(st.integers(1, frame.height))
    prefix = frame.sort("ts")[:cut]
    early = detect_sessions(prefix, capacities=caps).select("session_id", "start_utc", "end_utc", "energy_kwh")
    full = detect_sessions(frame, capacities=caps).select("session_id", "start_utc", "end_utc", "energy_kwh")
    assert_frame_equal(full.filter(pl.col("session_id").is_in(early.get_column("session_id").implode())), early)
