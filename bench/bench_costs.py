"""Pricing benchmark: sessions priced per reading interval under a two-band tariff with quarter-hour prices."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fleet_readings, peak_rss_mb, timed
from core import costs
from core.detect import DetectParams, detect_sessions

TARIFF = {
    "name": "bench",
    "currency": "EUR",
    "timezone": "Europe/Brussels",
    "bands": [
        {"band": "t1", "price_per_kwh": 0.40, "days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": [7, 22]},
        {"band": "t2", "price_per_kwh": 0.20},
    ],
    "fee_per_min": 0.01,
    "idle_fee_per_min": 0.05,
    "idle_grace_min": 30,
    "fee_per_session": 0.5,
    "vat_pct": 21,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="readings (the issue's figure: 10000000)")
    parser.add_argument(
        "--sessions",
        type=int,
        help="charge sessions to aim for (default: one 2-hour charge per entity every 12 hours; the issue's figure: "
        "100000); each entity then charges for a sixth of every cycle",
    )
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--shift", action="store_true", help="also shift the sessions, plugged in 6 h longer")
    args = parser.parse_args()
    cycle_min, charge_min = 720, 120
    if args.sessions:
        per_entity = args.size // args.entities
        cycle_min = per_entity // max(1, args.sessions // args.entities)
        if cycle_min < 12:
            parser.error(f"{args.sessions} sessions in {args.size} readings leave under 12 readings per session")
        charge_min = cycle_min // 6
    readings = fleet_readings(args.size, args.entities, cycle_min=cycle_min, charge_min=charge_min)
    sessions = detect_sessions(readings, DetectParams())
    start, end = readings["ts"].min(), readings["ts"].max()
    steps = int((end - start) / timedelta(minutes=15)) + 1
    rng = np.random.default_rng(3)
    prices = pl.DataFrame(
        {
            "ts": pl.datetime_range(start, end + timedelta(minutes=15), "15m", eager=True).head(steps),
            "price_per_kwh": rng.uniform(0.05, 0.45, steps),
        }
    )
    tariff = costs.parse_tariff(TARIFF)
    intervals_s, intervals = timed(lambda: costs.intervals_from_readings(readings, sessions))
    price_s, priced = timed(lambda: costs.price_sessions(sessions, intervals, tariff, prices))
    total = intervals_s + price_s
    print(
        f"pricing benchmark: {readings.height:,} readings, {sessions.height:,} sessions, {intervals.height:,} "
        f"reading intervals, {prices.height:,} quarter-hour prices"
    )
    print(f"intervals from readings {intervals_s:8.3f} s")
    print(f"price sessions          {price_s:8.3f} s")
    print(
        f"total                   {total:8.3f} s  {readings.height / total:14,.0f} readings/s  "
        f"{sessions.height / total:10,.0f} sessions/s  peak RSS {peak_rss_mb():,.0f} MB"
    )
    bands = priced.select(pl.sum_horizontal(pl.col("^energy_t._kwh$"))).to_series()
    assert (bands - sessions["energy_kwh"]).abs().max() < 1e-9
    if args.shift:
        plugged = sessions.with_columns(plug_in_utc="start_utc", plug_out_utc=pl.col("end_utc") + timedelta(hours=6))
        shift_s, shifted = timed(lambda: costs.shift_sessions(plugged, intervals, tariff, prices))
        print(
            f"shift to cheapest hours {shift_s:7.3f} s  {sessions.height / shift_s:10,.0f} sessions/s  "
            f"{shifted.energy.height:,} slices  saving {shifted.sessions['saving'].sum():,.2f} EUR  "
            f"peak RSS {peak_rss_mb():,.0f} MB"
        )


if __name__ == "__main__":
    main()
