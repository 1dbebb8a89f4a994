"""Power-flow detection on named scenarios, with exact expected sessions."""

from __future__ import annotations

import math
import random

import polars as pl
import pytest

from core.detect import DetectParams, detect_sessions
from core.detect.prepare import exact_sum
from tests.scenarios import at, readings, steady


def test_single_session_trapezoid_energy_and_edges():
    rows = [(0, 0.0), *steady(5, 65, 6.0), (70, 0.0), (100, 0.0)]
    s = detect_sessions(readings(rows))
    assert s.height == 1
    row = s.row(0, named=True)
    assert (row["start_utc"], row["end_utc"]) == (at(5), at(65))
    # 60 min at 6 kW plus half of each 5-minute edge interval: 6 kW * 65 min = 6.5 kWh
    assert row["energy_kwh"] == pytest.approx(6.5, abs=1e-12)
    assert row["average_power_kw"] == pytest.approx(6.0) and row["max_power_kw"] == 6.0
    assert (row["method"], row["source"]) == ("power", "detected")
    assert row["start_reason"] == "started: power rose to 6.0 kW at 2025-02-03T18:05:00Z"


def test_pause_inside_session():
    rows = [*steady(0, 60, 7.0), (65, 0.0), (70, 0.0), *steady(75, 120, 7.0), (125, 0.0), (200, 0.0)]
    s = detect_sessions(readings(rows))
    assert s.select("start_utc", "end_utc").rows() == [(at(0), at(120))]


def test_long_pause_splits():
    rows = [*steady(0, 60, 7.0), *[(m, 0.0) for m in range(65, 95, 5)], *steady(95, 120, 7.0), (125, 0.0), (200, 0.0)]
    s = detect_sessions(readings(rows))
    assert s.select("start_utc", "end_utc").rows() == [(at(0), at(60)), (at(95), at(120))]


def test_unplug_ends_session_even_after_a_short_pause():
    rows = [*steady(0, 30, 7.0, plugged=True), (35, 0.0, False), (40, 0.0, True), *steady(45, 60, 7.0, plugged=True),
            (65, 0.0, False)]  # fmt: skip
    s = detect_sessions(readings(rows))
    assert s.select("start_utc", "end_utc").rows() == [(at(0), at(30)), (at(45), at(60))]


def test_ongoing_at_end_not_listed():
    rows = [*steady(0, 30, 7.0), (35, 0.0), (60, 0.0), *steady(65, 90, 7.0)]
    s = detect_sessions(readings(rows))
    assert s.select("start_utc", "end_utc").rows() == [(at(0), at(30))]


def test_session_is_complete_only_after_max_pause_without_charging():
    rows = [*steady(0, 30, 7.0), (40, 0.0)]
    assert detect_sessions(readings(rows)).height == 0  # 10 min of data after the end: may still resume
    assert detect_sessions(readings([*rows, (45, 0.0)])).height == 1


def test_tiny_session_dropped():
    rows = [(0, 0.0), (1, 0.2), (2, 0.0), (60, 0.0)]
    assert detect_sessions(readings(rows)).height == 0
    assert detect_sessions(readings(rows), DetectParams(min_energy_kwh=0.001)).height == 1


def test_gap_longer_than_max_gap_is_not_integrated():
    rows = [*steady(0, 10, 6.0), *steady(100, 110, 6.0), (115, 0.0), (300, 0.0)]
    s = detect_sessions(readings(rows), DetectParams(max_pause_min=120))
    row = s.row(0, named=True)
    assert row["energy_kwh"] == pytest.approx(6.0 * 20 / 60 + 6.0 * 2.5 / 60)
    assert row["flags"] == "gap_not_integrated"


def test_duplicates_and_out_of_order_give_the_same_sessions_and_ids():
    rows = [(0, 0.0), *steady(5, 65, 6.0), (70, 0.0), (100, 0.0)]
    clean = detect_sessions(readings(rows))
    messy = readings(rows)
    messy = pl.concat([messy, messy.head(5)]).sample(fraction=1.0, shuffle=True, seed=3)
    assert detect_sessions(messy).equals(clean)


def test_ids_are_deterministic_and_independent_of_later_data():
    rows = [(0, 0.0), *steady(5, 65, 6.0), (70, 0.0), (100, 0.0)]
    first = detect_sessions(readings(rows))
    longer = detect_sessions(readings([*rows, *steady(200, 260, 6.0), (300, 0.0)]))
    assert longer.get_column("session_id").to_list()[0] == first.get_column("session_id")[0]
    assert longer.height == 2


def test_entities_are_independent():
    both = pl.concat([readings([(0, 0.0), *steady(5, 65, 6.0), (100, 0.0)], entity=e) for e in ("a", "b")])
    s = detect_sessions(both)
    assert s.get_column("entity_id").to_list() == ["a", "b"]
    assert s.get_column("session_id").n_unique() == 2


def test_no_power_readings_give_no_sessions():
    assert detect_sessions(readings([(0, None), (10, None)])).height == 0


def test_exact_sum_is_the_correctly_rounded_sum_in_any_row_order():
    # Terms of 2**-8 or more are whole numbers of the fixed point, so the one rounding left is the final one: the
    # result is math.fsum's, whatever the order (a plain float sum of these differs by order in its last bits).
    rng = random.Random(7)
    terms = [rng.uniform(0.004, 30.0) for _ in range(5000)] + [1e6, -1e6 + 0.5]
    expected = math.fsum(terms)
    orders = [terms, terms[::-1], *(rng.sample(terms, len(terms)) for _ in range(5))]
    sums = {pl.DataFrame({"x": order}).select(exact_sum("x")).item() for order in orders}
    assert sums == {expected}
    assert len({sum(order) for order in orders}) > 1  # the plain sum does depend on the order here
    grouped = pl.DataFrame({"g": [i % 3 for i in range(len(terms))], "x": terms}).lazy()
    once = grouped.group_by("g").agg(exact_sum("x")).sort("g").collect(engine="streaming")
    assert once["x"].to_list() == [math.fsum(terms[g::3]) for g in range(3)]
    assert pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64}).select(exact_sum("x")).item() == 0.0
