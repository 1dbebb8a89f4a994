"""Tariff pricing on named scenarios, with amounts a person can check by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.costs import (
    Tariff,
    check_overlap,
    choose_tariff,
    even_intervals,
    intervals_from_readings,
    parse_tariff,
    price_chosen,
    price_sessions,
    round_money,
    round_money_expr,
    shift_chosen,
    shift_profile,
    shift_sessions,
    shift_summary,
    whatif,
)
from core.errors import ChargeLensError, InputError
from core.schema import UTC_TS

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
# SPEC section 5's example: weekdays 07-22 local at 0.40, all other hours at 0.20.
HOME = {
    "name": "home-two-band",
    "currency": "EUR",
    "timezone": "Europe/Brussels",
    "bands": [
        {"band": "t1", "price_per_kwh": 0.40, "days": WEEKDAYS, "hours": [7, 22]},
        {"band": "t2", "price_per_kwh": 0.20},
    ],
    "fee_per_min": 0,
    "idle_fee_per_min": 0,
    "idle_grace_min": 0,
    "fee_per_session": 0.50,
    "vat_pct": 21,
    "min_per_session": None,
    "max_per_session": None,
    "valid_from": "2025-01-01",
    "valid_to": None,
}
# Local hour 2 is its own band, so the DST days show whether that hour was skipped or lived twice.
DST_PROBE = {
    **HOME,
    "name": "dst-probe",
    "bands": [
        {"band": "t1", "price_per_kwh": 1.00, "hours": [2, 3]},
        {"band": "t2", "price_per_kwh": 0.30, "hours": [7, 23]},
        {"band": "t3", "price_per_kwh": 0.10},
    ],
    "fee_per_session": 0,
    "vat_pct": 0,
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def tariff(**changes) -> Tariff:
    return parse_tariff({**HOME, **changes})


def sessions(*rows: tuple) -> pl.DataFrame:
    """rows: (session_id, start, end, energy_kwh[, plug_in, plug_out])."""
    return pl.DataFrame(
        [(*r, None, None)[:6] for r in rows],
        schema={
            "session_id": pl.String,
            "start_utc": UTC_TS,
            "end_utc": UTC_TS,
            "energy_kwh": pl.Float64,
            "plug_in_utc": UTC_TS,
            "plug_out_utc": UTC_TS,
        },
        orient="row",
    )


def priced(s: pl.DataFrame, t: Tariff, prices: pl.DataFrame | None = None) -> dict:
    """The one priced row of a one-session frame, spread evenly over the session."""
    out = price_sessions(s, even_intervals(s), t, prices)
    assert out.height == 1
    return out.row(0, named=True)


def bands(row: dict) -> tuple[float, ...]:
    return tuple(round(row[f"energy_t{i}_kwh"], 9) for i in range(1, 5))


# --- bands ------------------------------------------------------------------------------------------------------


def test_session_crossing_a_band_boundary():
    # Wed 2025-02-05 20:00-22:00 UTC = 21:00-23:00 in Brussels (UTC+1): one hour at 0.40, one at 0.20, 11 kWh each.
    row = priced(sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 22.0)), tariff())
    assert bands(row) == (11.0, 11.0, 0.0, 0.0)
    assert row["cost_energy"] == pytest.approx(11 * 0.40 + 11 * 0.20)
    assert row["cost_flat"] == 0.50
    assert row["cost_net"] == pytest.approx(11 * 0.40 + 11 * 0.20 + 0.50)
    assert row["cost_tax"] == pytest.approx((11 * 0.40 + 11 * 0.20 + 0.50) * 0.21)
    assert row["cost_total"] == pytest.approx(7.1 * 1.21)
    assert round_money(row["cost_total"]) == 8.59  # 8.591
    assert (row["cost_time"], row["cost_idle"], row["currency"], row["priced_evenly"]) == (0.0, 0.0, "EUR", True)


def test_session_over_midnight_into_the_weekend():
    # Fri 21:30 -> Sat 01:30 local at 2 kWh/h: 21:30-22:00 is t1 (1 kWh), the rest t2 (3.5 h = 7 kWh).
    row = priced(sessions(("fri", utc(2025, 2, 7, 20, 30), utc(2025, 2, 8, 0, 30), 8.0)), tariff())
    assert bands(row) == (1.0, 7.0, 0.0, 0.0)
    assert row["cost_energy"] == pytest.approx(1 * 0.40 + 7 * 0.20)


def test_sunday_night_into_monday_morning():
    # Sun 23:00 -> Mon 08:00 local at 1 kWh/h: only Mon 07:00-08:00 is t1.
    row = priced(sessions(("sun", utc(2025, 2, 9, 22), utc(2025, 2, 10, 7), 9.0)), tariff())
    assert bands(row) == (1.0, 8.0, 0.0, 0.0)
    assert row["cost_energy"] == pytest.approx(1 * 0.40 + 8 * 0.20)


def test_dst_spring_forward_skips_local_hour_two():
    # 2025-03-30 00:00-06:00 UTC = 01:00 CET .. 08:00 CEST: 6 real hours at 1 kWh/h; local 02:00-03:00 never happens.
    # UTC 00-01 = 01h local (t3), UTC 01-05 = 03h..06h CEST (t3), UTC 05-06 = 07h CEST (t2).
    row = priced(sessions(("spring", utc(2025, 3, 30, 0), utc(2025, 3, 30, 6), 6.0)), parse_tariff(DST_PROBE))
    assert bands(row) == (0.0, 1.0, 5.0, 0.0)
    assert row["cost_energy"] == pytest.approx(1 * 0.30 + 5 * 0.10)


def test_dst_fall_back_lives_local_hour_two_twice():
    # 2025-10-25 22:00 -> 2025-10-26 07:00 UTC = 00:00 CEST .. 08:00 CET: 9 real hours at 1 kWh/h.
    # Local 02h comes twice (UTC 00-01 in CEST, 01-02 in CET): 2 kWh in t1; 07h CET (UTC 06-07) is t2.
    row = priced(sessions(("fall", utc(2025, 10, 25, 22), utc(2025, 10, 26, 7), 9.0)), parse_tariff(DST_PROBE))
    assert bands(row) == (2.0, 1.0, 6.0, 0.0)
    assert row["cost_energy"] == pytest.approx(2 * 1.00 + 1 * 0.30 + 6 * 0.10)


def test_reading_intervals_place_energy_where_it_was_taken():
    # Same session as the band-boundary test, but 20 of the 22 kWh came in the first hour (t1).
    s = sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 22.0))
    intervals = pl.DataFrame(
        {
            "session_id": ["a", "a"],
            "from_utc": [utc(2025, 2, 5, 20), utc(2025, 2, 5, 21)],
            "to_utc": [utc(2025, 2, 5, 21), utc(2025, 2, 5, 22)],
            "energy_kwh": [20.0, 2.0],
        }
    )
    row = price_sessions(s, intervals, tariff()).row(0, named=True)
    assert bands(row) == (20.0, 2.0, 0.0, 0.0)
    assert row["cost_energy"] == pytest.approx(20 * 0.40 + 2 * 0.20)
    assert row["priced_evenly"] is False


def test_interval_split_in_proportion_to_time_across_the_boundary():
    # One 40-minute interval, 21:40-22:20 local on a Wednesday, 4 kWh: 20 min in t1 and 20 min in t2.
    s = sessions(("a", utc(2025, 2, 5, 20, 40), utc(2025, 2, 5, 21, 20), 4.0))
    row = priced(s, tariff())
    assert bands(row) == (2.0, 2.0, 0.0, 0.0)


def test_no_bands_prices_everything_from_the_series_and_t1_holds_the_total():
    prices = pl.DataFrame(
        {"ts": [utc(2025, 2, 5, 20), utc(2025, 2, 5, 21), utc(2025, 2, 5, 22)], "price_per_kwh": [0.1, 0.3, 0.5]}
    )
    dynamic_only = parse_tariff({**HOME, "bands": [], "fee_per_session": 0, "vat_pct": 0}, has_prices=True)
    row = priced(sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 4.0)), dynamic_only, prices)
    assert bands(row) == (4.0, 0.0, 0.0, 0.0)
    assert row["cost_total"] == pytest.approx(2 * 0.1 + 2 * 0.3)
    # Outside the series there is no price at all: the cost is unknown, never 0.
    outside = priced(sessions(("b", utc(2025, 2, 6, 20), utc(2025, 2, 6, 21), 1.0)), dynamic_only, prices)
    assert (outside["cost_energy"], outside["cost_total"], outside["currency"]) == (None, None, None)
    with pytest.raises(InputError, match="no bands"):
        price_sessions(sessions(("b", utc(2025, 2, 6, 20), utc(2025, 2, 6, 21), 1.0)), pl.DataFrame(), dynamic_only)


# --- fees, caps, tax --------------------------------------------------------------------------------------------


def test_time_fee_and_idle_fee_after_grace():
    # Charging 18:00-19:00, plugged 17:50-20:30: 160 - 60 = 100 idle minutes, 30 of them free.
    t = tariff(fee_per_min=0.05, idle_fee_per_min=0.10, idle_grace_min=30, fee_per_session=0, vat_pct=0)
    s = sessions(
        ("a", utc(2025, 2, 8, 18), utc(2025, 2, 8, 19), 10.0, utc(2025, 2, 8, 17, 50), utc(2025, 2, 8, 20, 30))
    )
    row = priced(s, t)
    assert row["cost_time"] == pytest.approx(60 * 0.05)
    assert row["cost_idle"] == pytest.approx((100 - 30) * 0.10)
    assert row["cost_total"] == pytest.approx(10 * 0.20 + 60 * 0.05 + 70 * 0.10)


def test_idle_fee_without_grace_and_without_plug_times():
    t = tariff(idle_fee_per_min=0.10, fee_per_session=0, vat_pct=0)
    s = sessions(
        ("a", utc(2025, 2, 8, 18), utc(2025, 2, 8, 19), 10.0, utc(2025, 2, 8, 17, 50), utc(2025, 2, 8, 20, 30))
    )
    assert priced(s, t)["cost_idle"] == pytest.approx(100 * 0.10)
    # Plug times unknown: no idle time can be shown, so none is billed.
    assert priced(sessions(("b", utc(2025, 2, 8, 18), utc(2025, 2, 8, 19), 10.0)), t)["cost_idle"] == 0.0
    # Unplugged within the grace period: nothing.
    grace = tariff(idle_fee_per_min=0.10, idle_grace_min=120, fee_per_session=0, vat_pct=0)
    assert priced(s, grace)["cost_idle"] == 0.0


def test_minimum_per_session_lifts_the_net_before_vat():
    # 1 kWh on Saturday (t2) + 0.50 = 0.70, lifted to 5.00; VAT on the 5.00.
    row = priced(sessions(("a", utc(2025, 2, 8, 10), utc(2025, 2, 8, 11), 1.0)), tariff(min_per_session=5))
    assert row["cost_energy"] == pytest.approx(0.20) and row["cost_net"] == 5.0
    assert row["cost_tax"] == pytest.approx(5 * 0.21)
    assert row["cost_total"] == pytest.approx(6.05)


def test_maximum_per_session_caps_the_net_before_vat():
    # 100 kWh on Saturday (t2) + 0.50 = 20.50, capped at 10.00.
    row = priced(sessions(("a", utc(2025, 2, 8, 0), utc(2025, 2, 8, 10), 100.0)), tariff(max_per_session=10))
    assert row["cost_energy"] == pytest.approx(100 * 0.20) and row["cost_net"] == 10.0
    assert row["cost_total"] == pytest.approx(10 * 1.21)


def test_vat_zero_and_full():
    s = sessions(("a", utc(2025, 2, 8, 10), utc(2025, 2, 8, 11), 10.0))
    assert priced(s, tariff(vat_pct=0))["cost_total"] == pytest.approx(10 * 0.20 + 0.50)
    assert priced(s, tariff(vat_pct=100))["cost_total"] == pytest.approx((10 * 0.20 + 0.50) * 2)


def test_unknown_energy_gives_unknown_cost():
    row = priced(sessions(("a", utc(2025, 2, 8, 10), utc(2025, 2, 8, 11), None)), tariff())
    assert [row[f"energy_t{i}_kwh"] for i in range(1, 5)] == [None] * 4
    assert (row["cost_energy"], row["cost_total"], row["currency"]) == (None, None, None)


# --- dynamic prices ---------------------------------------------------------------------------------------------


def quarter_prices() -> pl.DataFrame:
    starts = [utc(2025, 2, 5, 20, m) for m in (0, 15, 30, 45)]
    return pl.DataFrame({"ts": starts, "price_per_kwh": [0.10, 0.20, 0.30, 0.40]})


def test_dynamic_prices_override_bands_only_where_they_have_data():
    # Wed 20:00-22:00 UTC, 8 kWh = 1 kWh per quarter. The series covers 20:00-21:00 UTC (its last price holds one
    # 15-minute step, not until the next day); 21:00-22:00 UTC = 22-23 local falls back to t2 at 0.20.
    row = priced(sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 8.0)), tariff(), quarter_prices())
    assert row["cost_energy"] == pytest.approx(0.10 + 0.20 + 0.30 + 0.40 + 4 * 0.20)
    # The energy still counts in the band of its hour: 21-22 local is t1 even though the series priced it.
    assert bands(row) == (4.0, 4.0, 0.0, 0.0)


def test_a_gap_in_the_series_falls_back_to_the_band_for_one_step():
    # Hourly series with 02:00 missing (UTC, Saturday = t2 at 0.20): 01:00's price holds 01-02 only.
    ts = [utc(2025, 2, 8, h) for h in (0, 1, 3)]
    prices = pl.DataFrame({"ts": ts, "price_per_kwh": [0.05, 0.06, 0.07]})
    row = priced(sessions(("a", utc(2025, 2, 8, 0), utc(2025, 2, 8, 5), 5.0)), tariff(), prices)
    # 00h 0.05, 01h 0.06, 02h band 0.20, 03h 0.07 (until 04:00, one step), 04h band 0.20.
    assert row["cost_energy"] == pytest.approx(0.05 + 0.06 + 0.20 + 0.07 + 0.20)


def test_a_ten_minute_series_is_split_at_its_own_steps():
    # Wed 20:00-20:40 UTC (t1 at 0.40), 4 kWh = 1 kWh per 10 minutes; the series covers 20:00-20:30.
    prices = pl.DataFrame({"ts": [utc(2025, 2, 5, 20, m) for m in (0, 10, 20)], "price_per_kwh": [0.10, 0.20, 0.30]})
    row = priced(sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 20, 40), 4.0)), tariff(), prices)
    assert row["cost_energy"] == pytest.approx(0.10 + 0.20 + 0.30 + 0.40)


def test_a_price_series_needs_a_known_step_and_whole_minutes():
    s = sessions(("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 21), 1.0))
    with pytest.raises(InputError, match="at least two prices"):
        price_sessions(s, even_intervals(s), tariff(), pl.DataFrame({"ts": [utc(2025, 2, 5)], "price_per_kwh": [1.0]}))
    odd = pl.DataFrame({"ts": [utc(2025, 2, 5, 20), utc(2025, 2, 5, 20, 0, 30)], "price_per_kwh": [1.0, 2.0]})
    with pytest.raises(InputError, match="whole minutes"):
        price_sessions(s, even_intervals(s), tariff(), odd)


# --- tariff validation ------------------------------------------------------------------------------------------


def test_spec_example_parses_and_round_trips():
    t = tariff()
    assert (t.name, t.currency, t.timezone, len(t.bands), t.valid_from, t.valid_to) == (
        "home-two-band",
        "EUR",
        "Europe/Brussels",
        2,
        date(2025, 1, 1),
        None,
    )
    assert parse_tariff(t.to_body()) == t


def test_an_uncovered_hour_is_refused_with_tariff_gap_naming_it():
    gap = [
        {"band": "t1", "price_per_kwh": 0.40, "days": WEEKDAYS},
        {"band": "t2", "price_per_kwh": 0.20, "days": ["Sat", "Sun"], "hours": [0, 22]},
    ]
    with pytest.raises(ChargeLensError) as refused:
        tariff(bands=gap)
    assert refused.value.title == "TariffGap"
    assert refused.value.detail == (
        "Tariff 'home-two-band': Sat 22:00–23:00 is in no band; add a band that covers it, "
        "or a last band without days and hours."
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"currency": "EURO"}, "currency"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"bands": [{"band": "t5", "price_per_kwh": 0.1}]}, "bands[0].band"),
        ({"bands": [{"band": "t1", "price_per_kwh": -0.1}]}, "bands[0].price_per_kwh"),
        ({"bands": [{"band": "t1", "price_per_kwh": 0.1, "hours": [22, 7]}]}, "bands[0].hours"),
        ({"bands": [{"band": "t1", "price_per_kwh": 0.1, "hours": [0, 25]}]}, "bands[0].hours"),
        ({"bands": [{"band": "t1", "price_per_kwh": 0.1, "days": ["Moon"]}]}, "bands[0].days"),
        ({"bands": [{"band": "t2", "price_per_kwh": 0.1}, {"band": "t1", "price_per_kwh": 0.1}]}, "bands"),
        ({"bands": [{"band": "t1", "price_per_kwh": 0.1}, {"band": "t1", "price_per_kwh": 0.2}]}, "bands"),
        ({"bands": [{"band": f"t{i}", "price_per_kwh": 0.1} for i in (1, 2, 3, 4, 4)]}, "bands"),
        ({"bands": []}, "bands"),
        ({"fee_per_session": -1}, "fee_per_session"),
        ({"idle_grace_min": True}, "idle_grace_min"),
        ({"vat_pct": 101}, "vat_pct"),
        ({"min_per_session": 10, "max_per_session": 5}, "min_per_session"),
        ({"valid_from": "2025-13-01"}, "valid_from"),
        ({"valid_to": "2025-01-01"}, "valid_to"),
        ({"vat": 21}, "vat"),
    ],
)
def test_bad_tariff_fields_are_named(changes, field):
    with pytest.raises(InputError) as refused:
        tariff(**changes)
    assert field in refused.value.errors
    assert f"'{field}'" in refused.value.detail


def test_no_bands_error_says_a_price_series_is_needed():
    with pytest.raises(InputError, match="needs a dynamic price series"):
        tariff(bands=[])


# --- validity and assignment ------------------------------------------------------------------------------------


def test_overlapping_validity_on_one_assignment_is_refused():
    a = tariff(name="old", valid_from="2025-01-01", valid_to=None)
    b = tariff(name="summer", valid_from="2025-06-01", valid_to="2025-09-01")
    with pytest.raises(ChargeLensError) as refused:
        check_overlap([a, b], [("old", "default", None), ("summer", "default", None)])
    assert refused.value.title == "TariffOverlap"
    assert refused.value.detail == (
        "Tariffs 'old' and 'summer' are both assigned to the default and both valid from 2025-06-01 to 2025-09-01; "
        "change the validity dates so they do not overlap."
    )
    # Different targets, or validity that only touches ([from, to) is half-open), are fine.
    check_overlap([a, b], [("old", "location", "Home"), ("summer", "location", "Office")])
    ended = tariff(name="old", valid_to="2025-06-01")
    check_overlap([ended, b], [("old", "entity", "ev1"), ("summer", "entity", "ev1")])


@pytest.mark.parametrize(
    ("valid", "words"),
    [
        ((None, None), "both valid always"),
        (("2025-03-01", None), "both valid from 2025-03-01 on"),
        ((None, "2025-03-01"), "both valid before 2025-03-01"),
    ],
)
def test_overlap_message_names_the_common_period(valid, words):
    a = tariff(name="a", valid_from=None, valid_to=None)
    b = tariff(name="b", valid_from=valid[0], valid_to=valid[1])
    with pytest.raises(ChargeLensError, match=f"to entity 'ev1' and {words};"):
        check_overlap([b, a], [{"tariff": "b", "scope": "entity", "target": "ev1"}, ("a", "entity", "ev1")])


def test_choose_tariff_prefers_location_then_entity_then_default_within_validity():
    tariffs = [
        tariff(name="default", valid_from="2025-01-01"),
        tariff(name="ev1-lease", valid_from="2025-01-01", valid_to="2025-03-01"),
        tariff(name="home", valid_from="2025-01-01"),
    ]
    assignments = pl.DataFrame(
        {
            "tariff": ["default", "ev1-lease", "home"],
            "scope": ["default", "entity", "location"],
            "target": ["", "ev1", "Home"],
        }
    )
    s = pl.DataFrame(
        [
            ("at-home", "ev1", utc(2025, 2, 10, 18), "Home"),
            ("away", "ev1", utc(2025, 2, 10, 18), None),
            ("lease-ended", "ev1", utc(2025, 3, 5, 18), None),
            ("other-car", "ev2", utc(2025, 2, 10, 18), "Office"),
            # 2024-12-31 23:30 UTC is already 2025-01-01 00:30 in Brussels: valid.
            ("new-year-local", "ev2", utc(2024, 12, 31, 23, 30), None),
            # 22:30 UTC is 23:30 local on 2024-12-31: before every tariff.
            ("old-year", "ev2", utc(2024, 12, 31, 22, 30), None),
        ],
        schema={"session_id": pl.String, "entity_id": pl.String, "start_utc": UTC_TS, "location_label": pl.String},
        orient="row",
    )
    chosen = choose_tariff(s, assignments, tariffs)
    assert chosen.rows() == [
        ("at-home", "home"),
        ("away", "ev1-lease"),
        ("lease-ended", "default"),
        ("other-car", "default"),
        ("new-year-local", "default"),
        ("old-year", None),
    ]
    assert choose_tariff(s, [], tariffs).get_column("tariff").null_count() == s.height


def test_price_chosen_leaves_sessions_without_tariff_unpriced():
    s = sessions(
        ("a", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 22.0), ("b", utc(2025, 2, 5, 20), utc(2025, 2, 5, 22), 3.0)
    )
    choice = pl.DataFrame({"session_id": ["a", "b"], "tariff": ["home-two-band", None]})
    out = price_chosen(s, even_intervals(s).head(0), choice, [tariff()])
    assert out.get_column("session_id").to_list() == ["a", "b"]
    a, b = out.rows(named=True)
    assert a["cost_total"] == pytest.approx(7.1 * 1.21) and a["tariff"] == "home-two-band"
    assert (b["energy_t1_kwh"], b["energy_t2_kwh"], b["cost_total"], b["currency"]) == (3.0, 0.0, None, None)


def test_price_chosen_keeps_the_session_order_and_spreads_evenly_without_intervals():
    s = sessions(*[(f"s{i}", utc(2025, 2, 8, 10), utc(2025, 2, 8, 11), float(i)) for i in range(30)])
    choice = s.select("session_id", tariff=pl.when(pl.int_range(30) % 3 == 0).then(pl.lit("home-two-band")))
    out = price_chosen(s, None, choice.reverse(), [tariff()])
    assert out.get_column("session_id").to_list() == s.get_column("session_id").to_list()
    assert out.get_column("energy_t2_kwh").to_list() == [float(i) if i % 3 == 0 else 0.0 for i in range(30)]
    with pytest.raises(InputError, match="'gone' was chosen but is not defined"):
        price_chosen(s, None, choice.with_columns(tariff=pl.lit("gone")), [tariff()])


def test_empty_inputs_give_empty_frames():
    empty = sessions()
    assert price_sessions(empty, None, tariff()).height == 0
    assert choose_tariff(empty.with_columns(entity_id=pl.lit("x")), [], []).columns == ["session_id", "tariff"]
    assert intervals_from_readings(reading_rows("ev", []), session_rows()).height == 0


# --- intervals from readings ------------------------------------------------------------------------------------


def reading_rows(entity: str, rows: list[tuple]) -> pl.DataFrame:
    """rows: (minutes after Wed 2025-02-05 20:00 UTC, power_kw, meter_kwh)."""
    t0 = utc(2025, 2, 5, 20)
    return pl.DataFrame(
        [(entity, t0 + timedelta(minutes=m), p, e) for m, p, e in rows],
        schema={"entity_id": pl.String, "ts": UTC_TS, "power_kw": pl.Float64, "energy_kwh": pl.Float64},
        orient="row",
    )


def session_rows(*rows: tuple) -> pl.DataFrame:
    """rows: (session_id, entity_id, start minute, end minute, energy_kwh) after Wed 2025-02-05 20:00 UTC."""
    t0 = utc(2025, 2, 5, 20)
    return pl.DataFrame(
        [(i, e, t0 + timedelta(minutes=a), t0 + timedelta(minutes=b), k) for i, e, a, b, k in rows],
        schema={
            "session_id": pl.String,
            "entity_id": pl.String,
            "start_utc": UTC_TS,
            "end_utc": UTC_TS,
            "energy_kwh": pl.Float64,
        },
        orient="row",
    )


def test_meter_rises_weight_the_intervals_and_sum_to_the_session_energy():
    # Meter 0 -> 1 -> 3 -> 6 over three 30-minute intervals, but the session says 12 kWh: 2, 4, 6.
    r = reading_rows("ev", [(0, None, 0.0), (30, None, 1.0), (60, None, 3.0), (90, None, 6.0)])
    out = intervals_from_readings(r, session_rows(("s", "ev", 0, 90, 12.0)))
    assert out.get_column("energy_kwh").to_list() == pytest.approx([2.0, 4.0, 6.0])
    assert out.get_column("priced_evenly").to_list() == [False] * 3
    # Priced: minutes 0-60 are 21-22 local (t1), 60-90 are t2.
    row = price_sessions(session_rows(("s", "ev", 0, 90, 12.0)), out, tariff()).row(0, named=True)
    assert bands(row) == (6.0, 6.0, 0.0, 0.0)


def test_power_trapezoid_where_no_meter_and_after_a_meter_reset():
    # Power 0, 6, 6, 0 every 10 min gives trapezoids 0.5, 1, 0.5; the meter drops (reset) in the middle one.
    r = reading_rows("ev", [(0, 0.0, 5.0), (10, 6.0, 5.5), (20, 6.0, 0.2), (30, 0.0, 0.7)])
    out = intervals_from_readings(r, session_rows(("s", "ev", 0, 30, 2.0)))
    # Weights: meter rise 0.5, trapezoid 1.0 (reset), meter rise 0.5; scaled to 2 kWh.
    assert out.get_column("energy_kwh").to_list() == pytest.approx([0.5, 1.0, 0.5])


def test_intervals_are_clipped_to_the_session():
    # One 40-minute reading interval of 4 kWh; the session covers its last 20 minutes only.
    r = reading_rows("ev", [(0, None, 0.0), (40, None, 4.0)])
    out = intervals_from_readings(r, session_rows(("s", "ev", 20, 40, 2.0)))
    assert out.select("from_utc", "to_utc", "energy_kwh").rows() == [
        (utc(2025, 2, 5, 20, 20), utc(2025, 2, 5, 20, 40), 2.0)
    ]


def test_sessions_without_usable_readings_are_spread_evenly():
    r = reading_rows("ev", [(0, None, None), (30, None, None), (200, 7.0, None)])
    s = session_rows(("no-data", "ev", 0, 30, 3.0), ("other-entity", "cp", 0, 60, 5.0))
    out = intervals_from_readings(r, s)
    assert out.select("session_id", "energy_kwh", "priced_evenly").rows() == [
        ("no-data", 3.0, True),
        ("other-entity", 5.0, True),
    ]
    assert price_sessions(s, out, tariff()).get_column("priced_evenly").to_list() == [True, True]


# --- shifting flexible sessions to the cheapest hours -----------------------------------------------------------

# Every day: 0.40 from 07:00 to 23:00 local, 0.20 at night (23:00-07:00). Fees and VAT do not enter the comparison.
NIGHT = {
    **HOME,
    "name": "night",
    "bands": [{"band": "t1", "price_per_kwh": 0.40, "hours": [7, 23]}, {"band": "t2", "price_per_kwh": 0.20}],
    "fee_per_min": 0.05,
    "idle_fee_per_min": 0.10,
}


def shifted(s: pl.DataFrame, t: Tariff, prices: pl.DataFrame | None = None, intervals=None) -> list[dict]:
    return shift_sessions(s, intervals, t, prices).sessions.rows(named=True)


def placed(energy: pl.DataFrame, column: str) -> dict[datetime, float]:
    """Where a session's energy goes: slice start (UTC) -> kWh, for the slices that get any."""
    rows = energy.filter(pl.col(column) > 0).select("slice_from", column).rows()
    return {ts: round(kwh, 9) for ts, kwh in rows}


def test_a_session_plugged_all_evening_is_shifted_into_the_night():
    # Wed 2025-02-05: plugged in 18:00 local (17:00 UTC) until Thu 07:00 local, charging 11 kWh at 11 kW 18-19 local
    # at 0.40 = 4.40. The same hour at 11 kW in the first night hour, 23:00-00:00 local, costs 11 x 0.20 = 2.20.
    s = sessions(("evening", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 6, 6)))
    result = shift_sessions(s, None, parse_tariff(NIGHT))
    row = result.sessions.row(0, named=True)
    assert (row["flexible"], row["shift_power_kw"], row["currency"]) == (True, 11.0, "EUR")
    assert row["cost_energy"] == pytest.approx(4.40)
    assert row["cost_energy_shifted"] == pytest.approx(2.20)
    assert row["saving"] == pytest.approx(2.20)
    # Night prices are all equal: the earliest night quarters win, 22:00-23:00 UTC = 23:00-00:00 local.
    assert placed(result.energy, "kwh_shifted") == {utc(2025, 2, 5, 22, m): 2.75 for m in (0, 15, 30, 45)}
    assert placed(result.energy, "kwh_now") == {utc(2025, 2, 5, 17, m): 2.75 for m in (0, 15, 30, 45)}
    # The window is 13 plugged-in hours in quarters.
    assert result.energy.get_column("hours").sum() == pytest.approx(13.0)


def test_sessions_that_cannot_move_save_exactly_zero():
    t = parse_tariff(NIGHT)
    rows = shifted(
        sessions(
            # Plug times unknown: the window is [start, end], so nothing can move.
            ("unknown", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0),
            # Plugged in exactly while charging.
            ("tight", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 5, 18)),
            # Plugged longer, but only in day hours (18-22 local): no cheaper quarter to move to.
            ("daytime", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 5, 21)),
            # Energy unknown: nothing to move and no cost.
            ("no-energy", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), None, utc(2025, 2, 5, 17), utc(2025, 2, 6, 6)),
        ),
        t,
    )
    assert [(r["session_id"], r["flexible"], r["saving"]) for r in rows] == [
        ("unknown", False, 0.0),
        ("tight", False, 0.0),
        ("daytime", True, 0.0),
        ("no-energy", False, None),
    ]
    assert [r["cost_energy_shifted"] == r["cost_energy"] for r in rows[:3]] == [True] * 3
    assert (rows[3]["cost_energy"], rows[3]["cost_energy_shifted"], rows[3]["currency"]) == (None, None, None)


def test_a_session_that_charged_fast_in_the_cheap_hour_keeps_its_placement():
    # Plugged 18:00-00:30 local, charging 18:00-24:00 (6 h, average 11/6 kW): 1 kWh in 18-23 at 0.40 and 10 kWh in
    # 23-24 at 0.20 = 2.40. At the average power the 1.5 night hours hold 2.75 kWh: 0.55 + 8.25 x 0.40 = 3.85,
    # dearer, so the observed placement stays and the saving is 0.
    s = sessions(("fast", utc(2025, 2, 5, 17), utc(2025, 2, 5, 23), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 5, 23, 30)))
    intervals = pl.DataFrame(
        {
            "session_id": ["fast", "fast"],
            "from_utc": [utc(2025, 2, 5, 17), utc(2025, 2, 5, 22)],
            "to_utc": [utc(2025, 2, 5, 22), utc(2025, 2, 5, 23)],
            "energy_kwh": [1.0, 10.0],
        }
    )
    (row,) = shifted(s, parse_tariff(NIGHT), intervals=intervals)
    assert row["flexible"] is True
    assert row["cost_energy"] == pytest.approx(1 * 0.40 + 10 * 0.20)
    assert (row["cost_energy_shifted"], row["saving"]) == (row["cost_energy"], 0.0)


def test_shift_power_is_the_observed_average_capped_by_the_maximum():
    # 11 kWh over 2 charging hours is 5.5 kW: two night hours, 23:00-01:00 local.
    s = sessions(("slow", utc(2025, 2, 5, 17), utc(2025, 2, 5, 19), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 6, 6)))
    result = shift_sessions(s, None, parse_tariff(NIGHT))
    assert result.sessions.item(0, "shift_power_kw") == 5.5
    assert placed(result.energy, "kwh_shifted") == {utc(2025, 2, 5, 22) + timedelta(minutes=15 * q): 1.375
                                                    for q in range(8)}  # fmt: skip
    # A stated average above the session's maximum is held to the maximum.
    capped = s.with_columns(average_power_kw=pl.lit(22.0), max_power_kw=pl.lit(11.0))
    assert shift_sessions(capped, None, parse_tariff(NIGHT)).sessions.item(0, "shift_power_kw") == 11.0


@pytest.mark.parametrize(
    ("night", "actual", "shifted_cost", "where"),
    [
        # 2025-10-26 (clocks go back): local 02:00-03:00 happens twice, UTC 00-01 (CEST) and 01-02 (CET), so the
        # 22 kWh (2 h at 11 kW) all fit in the 0.10 hour: 2.20 instead of 6.60.
        (
            (utc(2025, 10, 25, 20), utc(2025, 10, 25, 22), utc(2025, 10, 26, 6)),
            6.60,
            2.20,
            {utc(2025, 10, 26, 0): 11.0, utc(2025, 10, 26, 1): 11.0},
        ),
        # 2025-03-30 (clocks go forward): local 02:00-03:00 never happens, so there is nothing cheaper to move to.
        ((utc(2025, 3, 29, 20), utc(2025, 3, 29, 22), utc(2025, 3, 30, 6)), 6.60, 6.60, None),
    ],
)
def test_a_window_crossing_a_dst_change(night, actual, shifted_cost, where):
    t = parse_tariff({**DST_PROBE, "bands": [{"band": "t1", "price_per_kwh": 0.10, "hours": [2, 3]},
                                             {"band": "t2", "price_per_kwh": 0.30}]})  # fmt: skip
    start, end, unplug = night
    result = shift_sessions(sessions(("dst", start, end, 22.0, start, unplug)), None, t)
    row = result.sessions.row(0, named=True)
    assert row["cost_energy"] == pytest.approx(actual)
    assert row["cost_energy_shifted"] == pytest.approx(shifted_cost)
    assert row["saving"] == pytest.approx(actual - shifted_cost)
    if where is not None:
        hourly = result.energy.group_by(pl.col("slice_from").dt.truncate("1h")).agg(pl.col("kwh_shifted").sum())
        assert dict(hourly.filter(pl.col("kwh_shifted") > 0).rows()) == pytest.approx(where)
        # Both of those UTC hours are local hour 2 in Brussels.
        profile = shift_profile(result.energy, "Europe/Brussels")
        assert profile.filter(pl.col("hour") == 2).item(0, "energy_shifted_kwh") == pytest.approx(22.0)
        assert profile.filter(pl.col("hour").is_in([0, 1])).get_column("energy_now_kwh").to_list() == [0.0, 0.0]
        assert profile.filter(pl.col("hour").is_in([22, 23])).get_column("energy_now_kwh").to_list() == [11.0, 11.0]


def test_dynamic_prices_pull_the_shift_to_cheap_quarters_where_the_series_has_data():
    # Same evening session (4.40). Quarter-hour prices 0.05, 0.50, 0.05, 0.50 at 19:00-20:00 UTC (20-21 local):
    # the two 0.05 quarters take 2.75 kWh each (0.275), the rest goes to the first night quarters from 22:00 UTC
    # at the band's 0.20 (5.5 x 0.20 = 1.10): 1.375 in all, a saving of 3.025. After 20:00 UTC the series is silent.
    prices = pl.DataFrame(
        {"ts": [utc(2025, 2, 5, 19, m) for m in (0, 15, 30, 45)], "price_per_kwh": [0.05, 0.50, 0.05, 0.50]}
    )
    s = sessions(("evening", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 6, 6)))
    result = shift_sessions(s, None, parse_tariff(NIGHT), prices)
    row = result.sessions.row(0, named=True)
    assert row["cost_energy"] == pytest.approx(4.40)
    assert row["cost_energy_shifted"] == pytest.approx(2 * 2.75 * 0.05 + 5.5 * 0.20)
    assert row["saving"] == pytest.approx(4.40 - 1.375)
    assert placed(result.energy, "kwh_shifted") == {
        utc(2025, 2, 5, 19, 0): 2.75,
        utc(2025, 2, 5, 19, 30): 2.75,
        utc(2025, 2, 5, 22, 0): 2.75,
        utc(2025, 2, 5, 22, 15): 2.75,
    }
    # A tariff with prices only: quarters without a price are never chosen while priced ones have room.
    dynamic_only = parse_tariff({**NIGHT, "bands": []}, has_prices=True)
    s = sessions(("short", utc(2025, 2, 5, 19, 15), utc(2025, 2, 5, 19, 30), 2.0, utc(2025, 2, 5, 19), utc(2025, 2, 6)))
    (row,) = shifted(s, dynamic_only, prices)
    assert (row["cost_energy"], row["cost_energy_shifted"]) == pytest.approx((1.00, 0.10))


def test_shift_chosen_summary_and_profile():
    t = parse_tariff(NIGHT)
    s = sessions(
        ("a", utc(2025, 2, 5, 17), utc(2025, 2, 5, 18), 11.0, utc(2025, 2, 5, 17), utc(2025, 2, 6, 6)),
        ("b", utc(2025, 2, 6, 17), utc(2025, 2, 6, 18), 11.0),
        ("c", utc(2025, 3, 5, 17), utc(2025, 3, 5, 18), 5.0, utc(2025, 3, 5, 17), utc(2025, 3, 6, 6)),
    ).with_columns(entity_id=pl.Series(["ev1", "ev1", "ev1"]))
    choice = pl.DataFrame({"session_id": ["c", "b", "a"], "tariff": ["night", None, "night"]})
    result = shift_chosen(s, None, choice, [t])
    assert result.sessions.select("session_id", "tariff", "flexible", "saving").rows() == [
        ("a", "night", True, pytest.approx(2.20)),
        ("b", None, False, None),
        ("c", "night", True, pytest.approx(1.00)),
    ]
    totals = shift_summary(s, result.sessions, "month", "Europe/Brussels")
    assert totals.rows() == [
        (date(2025, 2, 1), "ev1", 1, 1, 11.0, pytest.approx(4.40), pytest.approx(2.20), pytest.approx(2.20), "EUR"),
        (date(2025, 2, 1), "ev1", 1, 0, 11.0, None, None, None, None),
        (date(2025, 3, 1), "ev1", 1, 1, 5.0, pytest.approx(2.00), pytest.approx(1.00), pytest.approx(1.00), "EUR"),
    ]
    profile = shift_profile(result.energy, "Europe/Brussels")
    assert profile.height == 24 and profile.get_column("hour").to_list() == list(range(24))
    # Session b has no tariff, so it is not in the profile: 16 kWh now at 18h, shifted to 23h.
    assert profile.filter((pl.col("energy_now_kwh") > 0) | (pl.col("energy_shifted_kwh") > 0)).rows() == [
        (18, 16.0, 0.0, 0.40),
        (23, 0.0, 16.0, 0.20),
    ]
    assert profile.filter(pl.col("hour") == 12).item(0, "price_per_kwh") is None  # not plugged in at noon


# --- what-if and money ------------------------------------------------------------------------------------------


def test_whatif_per_week_and_entity():
    actual = pl.DataFrame(
        {
            "session_id": ["a", "b", "c", "d"],
            "entity_id": ["ev1", "ev1", "ev1", "ev2"],
            # Sun 2025-02-09 23:30 UTC is Mon 00:30 in Brussels: the week of 2025-02-10.
            "start_utc": [utc(2025, 2, 4, 8), utc(2025, 2, 6, 8), utc(2025, 2, 9, 23, 30), utc(2025, 2, 4, 8)],
            "cost_total": [10.0, 5.0, 4.0, 7.0],
            "currency": ["EUR"] * 4,
        }
    )
    other = pl.DataFrame(
        {"session_id": ["a", "b", "c", "d"], "cost_total": [8.0, 6.0, 3.0, None], "currency": ["EUR"] * 3 + [None]}
    )
    out = whatif(actual, other, "week", "Europe/Brussels")
    assert out.select("period_start", "entity_id", "sessions", "actual", "whatif", "difference").rows() == [
        (date(2025, 2, 3), "ev1", 2, 10.0 + 5.0, 8.0 + 6.0, (8.0 + 6.0) - (10.0 + 5.0)),
        (date(2025, 2, 3), "ev2", 1, None, None, None),
        (date(2025, 2, 10), "ev1", 1, 4.0, 3.0, 3.0 - 4.0),
    ]
    assert whatif(actual, other, "month", "Europe/Brussels").get_column("sessions").to_list() == [3, 1]
    with pytest.raises(InputError, match="day, week or month"):
        whatif(actual, other, "year", "Europe/Brussels")


def test_money_is_rounded_half_away_from_zero_once():
    assert round_money(0.125) == 0.13
    assert round_money(-0.125) == -0.13
    assert round_money(2.675) == 2.68  # stored as 2.67499999..., meant as 2.675
    assert round_money(-0.001) == 0.0 and str(round_money(-0.001)) == "0.0"
    assert round_money(None) is None
    frame = pl.DataFrame({"x": [0.125, -0.125, 2.675, -0.001, None]})
    assert frame.select(round_money_expr("x")).to_series().to_list() == [0.13, -0.13, 2.68, 0.0, None]
    # Rounded once at the end: three sessions of 0.125 each total 0.375 -> 0.38, not 3 x 0.13 = 0.39.
    assert round_money(0.125 * 3) == 0.38


# --- property ---------------------------------------------------------------------------------------------------

PROPERTY_TARIFF = parse_tariff(
    {
        **DST_PROBE,
        "bands": [
            {"band": "t1", "price_per_kwh": 0.5, "days": ["Sat", "Sun"], "hours": [9, 17]},
            {"band": "t2", "price_per_kwh": 0.3, "hours": [7, 22]},
            {"band": "t3", "price_per_kwh": 0.0, "days": ["Mon"]},
            {"band": "t4", "price_per_kwh": 0.1},
        ],
        "fee_per_min": 0.01,
        "idle_fee_per_min": 0.02,
        "idle_grace_min": 15,
        "fee_per_session": 0.3,
        "vat_pct": 21,
        "max_per_session": 80.0,
    }
)
_YEAR_START = utc(2025, 1, 1)
_session = st.tuples(
    st.integers(0, 365 * 24 * 60 - 1),  # start minute in 2025 (covers both DST changes)
    st.integers(0, 3 * 24 * 60),  # duration in minutes
    st.floats(0, 150, allow_nan=False),  # energy
    st.lists(st.floats(0, 1), min_size=1, max_size=6),  # interval cut points (fractions)
    st.lists(st.floats(0, 10, allow_nan=False), min_size=7, max_size=7),  # interval weights
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_session, min_size=1, max_size=5), st.booleans())
def test_bands_add_up_and_costs_are_never_negative(drawn, with_prices):
    rows, intervals = [], []
    for n, (start_min, duration, energy, cuts, weights) in enumerate(drawn):
        start = _YEAR_START + timedelta(minutes=start_min)
        end = start + timedelta(minutes=duration)
        rows.append((f"s{n}", start, end, energy, start - timedelta(minutes=7), end + timedelta(minutes=duration)))
        edges = [start, *sorted(start + (end - start) * c for c in cuts), end]
        total = sum(weights[: len(edges) - 1]) or 1.0
        for (a, b), w in zip(zip(edges, edges[1:], strict=False), weights, strict=False):
            intervals.append((f"s{n}", a, b, energy * w / total))
    s = sessions(*rows)
    iv = pl.DataFrame(
        intervals,
        schema={"session_id": pl.String, "from_utc": UTC_TS, "to_utc": UTC_TS, "energy_kwh": pl.Float64},
        orient="row",
    )
    prices = None
    if with_prices:
        ts = [_YEAR_START + timedelta(minutes=15 * q) for q in range(0, 365 * 96, 7)]
        prices = pl.DataFrame({"ts": ts, "price_per_kwh": [(q % 5) / 10 for q in range(len(ts))]})
    out = price_sessions(s, iv, PROPERTY_TARIFF, prices)
    assert out.get_column("session_id").to_list() == s.get_column("session_id").to_list()
    band_sum = out.select(pl.sum_horizontal(f"energy_t{i}_kwh" for i in range(1, 5))).to_series()
    for got, want in zip(band_sum.to_list(), s.get_column("energy_kwh").to_list(), strict=True):
        assert abs(got - want) <= 1e-9
    assert out.get_column("cost_total").min() >= 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_session, min_size=1, max_size=4), st.booleans())
def test_shifting_keeps_the_energy_never_costs_more_and_fits_the_power(drawn, with_prices):
    rows, flexible = [], {}
    for n, (start_min, duration, energy, _, _) in enumerate(drawn):
        start = _YEAR_START + timedelta(minutes=start_min)
        end = start + timedelta(minutes=duration)
        rows.append((f"s{n}", start, end, energy, start - timedelta(minutes=7), end + timedelta(minutes=duration)))
        # Plugged in 7 + 2 x duration minutes, charging for duration minutes at a power above 0.
        flexible[f"s{n}"] = duration > 0 and energy / duration > 0
    s = sessions(*rows)
    prices = None
    if with_prices:
        ts = [_YEAR_START + timedelta(minutes=15 * q) for q in range(0, 365 * 96, 7)]
        prices = pl.DataFrame({"ts": ts, "price_per_kwh": [(q % 5) / 10 for q in range(len(ts))]})
    result = shift_sessions(s, None, PROPERTY_TARIFF, prices)
    priced = price_sessions(s, None, PROPERTY_TARIFF, prices)
    out = result.sessions.join(priced.select("session_id", pl.col("cost_energy").alias("priced")), on="session_id")
    for row in out.rows(named=True):
        assert row["cost_energy"] == pytest.approx(row["priced"], abs=1e-9)
        assert row["saving"] >= 0
        assert row["flexible"] == flexible[row["session_id"]]
    per_session = (
        result.energy.join(result.sessions.select("session_id", "shift_power_kw", "energy_kwh"), on="session_id")
        .group_by("session_id")
        .agg(
            now=pl.col("kwh_now").sum(),
            shifted=pl.col("kwh_shifted").sum(),
            cost=(pl.col("kwh_shifted") * pl.col("price_per_kwh")).sum(),
            energy=pl.col("energy_kwh").first(),
            over=(pl.col("kwh_shifted") - pl.col("hours") * pl.col("shift_power_kw")).max(),
        )
        .join(result.sessions.select("session_id", "cost_energy_shifted", "cost_energy", "saving"), on="session_id")
    )
    for row in per_session.rows(named=True):
        assert row["now"] == pytest.approx(row["energy"], abs=1e-9)
        assert row["shifted"] == pytest.approx(row["energy"], abs=1e-9)
        assert row["cost"] == pytest.approx(row["cost_energy_shifted"], abs=1e-9)
        if row["saving"] > 0:
            assert row["over"] <= 1e-9  # moved energy never exceeds the session's power in any slice
