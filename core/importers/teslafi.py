"""TeslaFi monthly CSV (one row per poll of the car's API) mapped onto canonical readings.

`Date` is naive local time (a time zone is required); `vin` is the entity and `display_name` its name;
positions of 0.0 mean unknown; `charging_state` Charging/Starting = charging, Disconnected = unplugged,
Complete/Stopped = plugged in but not charging; `charge_energy_added` is the per-charge counter.
"""

from __future__ import annotations

import polars as pl

SIGNATURE = {"Date", "vin", "charging_state"}
_CHARGING = {"charging": "true", "starting": "true", "complete": "false", "stopped": "false",
             "disconnected": "false", "nopower": "false"}  # fmt: skip
_PLUGGED = {"charging": "true", "starting": "true", "complete": "true", "stopped": "true",
            "disconnected": "false", "nopower": "true"}  # fmt: skip


def is_teslafi(columns: list[str]) -> bool:
    return SIGNATURE <= set(columns)


def to_canonical(table: pl.DataFrame) -> pl.DataFrame:
    """The same rows (same order, so row numbers hold) with canonical column names and units as text."""

    def col(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in table.columns else pl.lit(None, pl.String)

    def position(name: str) -> pl.Expr:
        text = col(name).str.strip_chars()
        return pl.when(text.cast(pl.Float64, strict=False) == 0.0).then(None).otherwise(text)

    state = col("charging_state").str.strip_chars().str.to_lowercase()
    return table.select(
        col("vin").str.strip_chars().alias("entity_id"),
        col("Date").alias("ts"),
        col("display_name").alias("name"),
        col("charger_power").alias("power_kw"),
        col("battery_level").alias("soc_pct"),
        col("battery_range").alias("range_mi"),
        col("odometer").alias("odometer_mi"),
        position("latitude").alias("latitude"),
        position("longitude").alias("longitude"),
        col("charge_energy_added").alias("energy_added_kwh"),
        state.replace_strict(_CHARGING, default=None).alias("is_charging"),
        state.replace_strict(_PLUGGED, default=None).alias("is_plugged_in"),
    )
