"""Battery capacity suggested from an EV's own sessions: the energy it took per point of state of charge.

For every clean session of an EV that measures both energy (meter, power or the car's charge counter) and state of
charge, energy / (SoC rise / 100) is one estimate of the capacity. The suggestion is their median, with the middle
half of them as its spread. Clean means: a rise of at least MIN_RISE_PCT points (integer SoC steps make small rises
coarse), no gap in the energy and no meter reset. The energy is what the charger delivered, charging losses
included, so the figure is usually 5 to 15 % above the usable capacity. It is only ever shown as a suggestion.
"""

from __future__ import annotations

import polars as pl

MIN_RISE_PCT = 20.0
MIN_SESSIONS = 3
ENERGY_METHODS = ("meter", "power", "counter")
_UNCLEAN = ("gap_not_integrated", "gap_bridged", "meter_reset", "estimated")

SUGGESTION_SCHEMA = {
    "entity_id": pl.String,
    "sessions": pl.UInt32,
    "capacity_kwh": pl.Float64,
    "low_kwh": pl.Float64,
    "high_kwh": pl.Float64,
}


def estimate_capacity(sessions: pl.DataFrame) -> pl.DataFrame:
    """Per entity with at least MIN_SESSIONS clean sessions: their count, the median estimate and its middle half.

    `sessions`: entity_id, method, energy_kwh, soc_start_pct, soc_end_pct, flags (comma-separated or null).
    """
    rise = pl.col("soc_end_pct") - pl.col("soc_start_pct")
    unclean = pl.any_horizontal([pl.col("flags").fill_null("").str.contains(flag) for flag in _UNCLEAN])
    clean = sessions.filter(
        pl.col("method").is_in(ENERGY_METHODS) & (rise >= MIN_RISE_PCT) & (pl.col("energy_kwh") > 0) & ~unclean
    ).select("entity_id", estimate=pl.col("energy_kwh") / (rise / 100))
    return (
        clean.group_by("entity_id")
        .agg(
            sessions=pl.len(),
            capacity_kwh=pl.col("estimate").median(),
            low_kwh=pl.col("estimate").quantile(0.25, interpolation="linear"),
            high_kwh=pl.col("estimate").quantile(0.75, interpolation="linear"),
        )
        .filter(pl.col("sessions") >= MIN_SESSIONS)
        .sort("entity_id")
        .cast(SUGGESTION_SCHEMA)
    )


def suggestion_text(row: dict, current_kwh: float | None) -> str:
    """One sentence for the Entities page."""
    text = (
        f"{row['capacity_kwh']:.1f} kWh from {row['sessions']} sessions with energy and state of charge "
        f"(middle half {row['low_kwh']:.1f}–{row['high_kwh']:.1f} kWh; charging losses included, so usually "
        "5–15 % above the usable capacity)"
    )
    if current_kwh:
        text += f"; set now: {current_kwh:g} kWh"
    return text + "."


def suggestions(store) -> pl.DataFrame:
    """Capacity suggestions for the stored EVs (from their detected sessions), with their capacity set now."""
    sessions = store.frame(
        "SELECT s.entity_id, s.method, s.energy_kwh, s.soc_start_pct, s.soc_end_pct, s.flags FROM sessions s "
        "JOIN entities e USING (entity_id) WHERE e.entity_type = 'EV' AND s.source = 'detected'"
    )
    current = store.frame("SELECT entity_id, battery_capacity_kwh FROM entities WHERE entity_type = 'EV'")
    return estimate_capacity(sessions).join(current, on="entity_id", how="left")
