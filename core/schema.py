"""The canonical columns of readings and sessions, with units and dtypes, written down once."""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

ENTITY_TYPES = ("EV", "ChargePoint")
ENTITY_TYPE_ALIASES = {"EV": "EV", "CP": "ChargePoint", "ChargePole": "ChargePoint", "ChargePoint": "ChargePoint"}

# A reading: one snapshot of one entity at one instant. Null means unknown, never 0.
READING_COLUMNS: dict[str, pl.DataType] = {
    "entity_id": pl.String(),
    "ts": UTC_TS,
    "power_kw": pl.Float64(),
    "energy_kwh": pl.Float64(),  # cumulative meter register
    "energy_added_kwh": pl.Float64(),  # per-charge counter that restarts at each charge
    "soc_pct": pl.Float64(),
    "range_km": pl.Float64(),
    "odometer_km": pl.Float64(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "is_charging": pl.Boolean(),
    "is_plugged_in": pl.Boolean(),
}
READING_VALUE_COLUMNS = [c for c in READING_COLUMNS if c not in ("entity_id", "ts")]
READINGS_SCHEMA = pl.Schema(READING_COLUMNS)

# An entity as stored.
ENTITY_COLUMNS: dict[str, pl.DataType] = {
    "entity_id": pl.String(),
    "entity_type": pl.String(),
    "name": pl.String(),
    "brand": pl.String(),
    "identifier": pl.String(),
    "battery_capacity_kwh": pl.Float64(),
    "latitude": pl.Float64(),  # fixed position (charge points)
    "longitude": pl.Float64(),
}
ENTITIES_SCHEMA = pl.Schema(ENTITY_COLUMNS)

METHODS = ("meter", "power", "soc", "reported")
SOURCES = ("detected", "imported", "platform")

# A charge session as the detection engine produces it and the store keeps it.
SESSION_COLUMNS: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "entity_id": pl.String(),
    "start_utc": UTC_TS,
    "end_utc": UTC_TS,
    "plug_in_utc": UTC_TS,
    "plug_out_utc": UTC_TS,
    "energy_kwh": pl.Float64(),
    "average_power_kw": pl.Float64(),
    "max_power_kw": pl.Float64(),
    "soc_start_pct": pl.Float64(),
    "soc_end_pct": pl.Float64(),
    "range_start_km": pl.Float64(),
    "range_end_km": pl.Float64(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "method": pl.String(),
    "source": pl.String(),
    "flags": pl.String(),  # comma-separated, e.g. "gap_bridged,meter_reset"
    "start_reason": pl.String(),  # one sentence: why the session starts here
    "end_reason": pl.String(),
}
SESSIONS_SCHEMA = pl.Schema(SESSION_COLUMNS)

# Export columns (SPEC section 6), in this exact order.
EXPORT_COLUMNS = [
    "session_id",
    "entity_id",
    "entity_type",
    "start_utc",
    "end_utc",
    "duration_min",
    "energy_kwh",
    "energy_t1_kwh",
    "energy_t2_kwh",
    "energy_t3_kwh",
    "energy_t4_kwh",
    "average_power_kw",
    "max_power_kw",
    "soc_start_pct",
    "soc_end_pct",
    "range_start_km",
    "range_end_km",
    "location_label",
    "location_accuracy",
    "method",
    "source",
    "cost_total",
    "currency",
]
EXPORT_POSITION_COLUMNS = ["latitude", "longitude"]
EXPORT_WIDE_COLUMNS = [
    "plug_in_utc",
    "plug_out_utc",
    "flags",
    "cost_energy",
    "cost_time",
    "cost_idle",
    "cost_flat",
    "cost_tax",
]


def empty_readings() -> pl.DataFrame:
    return pl.DataFrame(schema=READINGS_SCHEMA)


def empty_sessions() -> pl.DataFrame:
    return pl.DataFrame(schema=SESSIONS_SCHEMA)


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Select and cast to the schema's columns, adding missing ones as null (unknown)."""
    return df.select(
        [
            (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
