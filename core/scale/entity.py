"""One entity's readings to the export rows of its sessions, with the pure functions the database path runs.

Detection (core.detect), location matching (core.locations) and pricing (core.costs) as core.pipeline and
core.pricing call them, then the rounding of every export (core.exports): the rows equal what `sessions export`
gives after the same readings were imported, except that the id, times and values are those of detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from core import costs
from core import locations as locations_mod
from core.detect import detect_sessions
from core.exports import export_table
from core.scale import split
from core.scale.inputs import Entity, Inputs
from core.schema import EXPORT_COLUMNS, READINGS_SCHEMA, UTC_TS, conform

EXPORT_SCHEMA = pl.Schema(
    {
        c: UTC_TS
        if c in ("start_utc", "end_utc")
        else pl.String()
        if c in ("session_id", "entity_id", "entity_type", "location_label", "method", "source", "currency")
        else pl.Float64()
        for c in EXPORT_COLUMNS
    }
)
# A chunk of a large entity also tells where its candidates have evidence (core.scale.split places seams with it).
CHUNK_SCHEMA = pl.Schema({**EXPORT_SCHEMA, "evidence_from": UTC_TS, "evidence_to": UTC_TS})


def has_values(readings: pl.DataFrame) -> dict[str, bool]:
    """What capture needs to know of an entity's readings: does it report power, a meter, a state of charge."""
    names = {"has_power": "power_kw", "has_meter": "energy_kwh", "has_soc": "soc_pct"}
    counts = {c: readings.get_column(c).count() for c in names.values() if c in readings.columns}
    return {k: counts.get(c, 0) > 0 for k, c in names.items()}


def entity_rows(readings: pl.DataFrame, entity: Entity, inputs: Inputs) -> pl.DataFrame:
    """All export rows of one entity (EXPORT_SCHEMA), or none when session capture is refused for it."""
    if not entity.capture(**has_values(readings)):
        return pl.DataFrame(schema=EXPORT_SCHEMA)
    readings = conform(readings, READINGS_SCHEMA)
    sessions = detect_sessions(readings, inputs.params, capacities([entity]))
    return export_rows(sessions, readings, {entity.entity_id: entity}, inputs)


def fleet_rows(readings: pl.DataFrame, inputs: Inputs) -> pl.DataFrame:
    """Every entity's export rows in one process, detected all at once (the single-process baseline of the bench)."""
    kinds = readings.get_column("entity_type") if "entity_type" in readings.columns else None
    frame = readings.with_columns(entity_type=kinds if kinds is not None else pl.lit(None, pl.String))
    profile = frame.group_by("entity_id").agg(
        pl.col("entity_type").drop_nulls().first(),
        *(pl.col(c).count().alias(c) if c in frame.columns else pl.lit(0).alias(c)
          for c in ("power_kw", "energy_kwh", "soc_pct")),
    )  # fmt: skip
    entities = {}
    for row in profile.iter_rows(named=True):
        entity = inputs.entity(row["entity_id"], row["entity_type"])
        counts = {"has_power": row["power_kw"] > 0, "has_meter": row["energy_kwh"] > 0, "has_soc": row["soc_pct"] > 0}
        if entity is not None and entity.capture(**counts):
            entities[entity.entity_id] = entity
    captured = conform(frame.filter(pl.col("entity_id").is_in(list(entities))), READINGS_SCHEMA)
    sessions = detect_sessions(captured, inputs.params, capacities(entities.values()))
    return export_rows(sessions, captured, entities, inputs)


def chunk_rows(readings: pl.DataFrame, entity: Entity, inputs: Inputs, window: split.Window) -> pl.DataFrame:
    """Rows of one chunk of a large entity (CHUNK_SCHEMA): its kept sessions as export rows, then one row per
    candidate's evidence span (session_id null) for placing the seams."""
    readings = conform(readings, READINGS_SCHEMA)
    run = split.run_window(readings, window, inputs.params, capacities([entity]))
    rows = export_rows(run.sessions.filter("kept").drop("kept"), readings, {entity.entity_id: entity}, inputs)
    spans = run.spans.with_columns(entity_id=pl.lit(entity.entity_id))
    return pl.concat([rows, spans], how="diagonal").select(list(CHUNK_SCHEMA)).cast(dict(CHUNK_SCHEMA))


def capacities(entities: Iterable[Entity]) -> dict[str, float] | None:
    """Battery capacities for detection (the SoC method needs them)."""
    found = {e.entity_id: e.battery_capacity_kwh for e in entities if e.battery_capacity_kwh}
    return found or None


def export_rows(
    sessions: pl.DataFrame, readings: pl.DataFrame, entities: Mapping[str, Entity], inputs: Inputs
) -> pl.DataFrame:
    """Detected sessions matched to locations and priced, as export rows (EXPORT_SCHEMA)."""
    if sessions.height == 0:
        return pl.DataFrame(schema=EXPORT_SCHEMA)
    known = pl.DataFrame(
        [(e.entity_id, e.entity_type, e.latitude, e.longitude) for e in entities.values()],
        schema={"entity_id": pl.String, "entity_type": pl.String, "__lat": pl.Float64, "__lon": pl.Float64},
        orient="row",
    )
    sessions = sessions.join(known, on="entity_id", how="left")
    # Matching as core.pipeline._rematch does: a session without a position takes its entity's fixed position.
    positions = sessions.select(
        "session_id",
        "entity_id",
        latitude=pl.coalesce("latitude", "__lat"),
        longitude=pl.coalesce("longitude", "__lon"),
    )
    matches = locations_mod.match_sessions(positions, inputs.locations)
    best = (
        matches.join(inputs.locations.select("location_id", "label"), on="location_id")
        .sort(["session_id", "accuracy", "label"], descending=[False, True, False])
        .unique("session_id", keep="first", maintain_order=True)
        .select("session_id", location_label="label", location_accuracy="accuracy")
    )
    s = sessions.drop("__lat", "__lon").join(best, on="session_id", how="left")
    priced = _priced(s, readings, inputs)
    rows = s.drop(*[c for c in priced.columns if c != "session_id" and c in s.columns]).join(priced, on="session_id")
    rows = rows.with_columns(
        # As the sessions query counts it: whole seconds between start and end (DuckDB's date_diff).
        duration_min=(pl.col("end_utc").dt.epoch("s") - pl.col("start_utc").dt.epoch("s")) / 60.0,
    )
    return (
        export_table(rows)
        .with_columns(pl.col("start_utc", "end_utc").dt.replace_time_zone("UTC"))
        .cast(dict(EXPORT_SCHEMA))
    )


def _priced(sessions: pl.DataFrame, readings: pl.DataFrame, inputs: Inputs) -> pl.DataFrame:
    """Bands and costs as core.pricing.reprice computes them (without its database)."""
    if inputs.tariffs:
        choice = costs.choose_tariff(sessions, inputs.assignments, inputs.tariffs)
    else:
        choice = sessions.select("session_id", pl.lit(None, pl.String).alias("tariff"))
    intervals = None
    if choice.get_column("tariff").is_not_null().any():
        meters = readings.select("entity_id", "ts", "power_kw", "energy_kwh")
        intervals = costs.intervals_from_readings(meters, sessions, max_gap_min=inputs.params.max_gap_min)
    priced = costs.price_chosen(sessions, intervals, choice, inputs.tariffs)
    return priced.select(*[c for c in costs.PRICED_COLUMNS if c not in ("cost_net", "priced_evenly")])
