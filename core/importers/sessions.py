"""Session tables measured by charge points: canonical sessions CSV, ChargeLens exports, ACN-Data, EPFL.

They become sessions with source = imported and method = reported. A table that only knows arrival and
departure gives start = plug_in = arrival and end = plug_out = departure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.errors import InputError
from core.ids import session_id
from core.importers import ImportOptions, ParsedFile
from core.importers.readings import load_table
from core.importers.rules import check_entity_id, parse_number, reject_frame, require_columns
from core.importers.times import check_timezone, parse_times
from core.schema import ENTITIES_SCHEMA, ENTITY_TYPE_ALIASES, SESSIONS_SCHEMA, conform


@dataclass(frozen=True)
class SessionLayout:
    """Where a session table keeps each field (None = the table does not have it)."""

    format: str
    entity: str | None
    start: str
    end: str
    energy: str
    energy_factor: float = 1.0
    plug_in: str | None = None
    plug_out: str | None = None
    soc_start: str | None = None
    soc_end: str | None = None
    entity_prefix: str = ""
    zone_hint: str = ""  # the documented zone of a dataset with naive times, named in the error


LAYOUTS = {
    "sessions": SessionLayout("sessions", "entity_id", "start", "end", "energy_kwh", plug_in="plug_in",
                              plug_out="plug_out", soc_start="soc_start_pct", soc_end="soc_end_pct"),
    "export": SessionLayout("sessions", "entity_id", "start_utc", "end_utc", "energy_kwh", plug_in="plug_in_utc",
                            plug_out="plug_out_utc", soc_start="soc_start_pct", soc_end="soc_end_pct"),
    "acn": SessionLayout("acn", "station_id", "arrival", "departure", "delivered_energy (kWh)"),
    "epfl": SessionLayout("epfl", "CCS", "Arrival", "Departure", "Energy (Wh)", energy_factor=0.001,
                          soc_start="SOC arrival", soc_end="SOC departure", entity_prefix="EPFL-",
                          zone_hint=" (the EPFL data set records Europe/Zurich local time)"),
}  # fmt: skip


def layout_for(columns: list[str], fmt: str) -> SessionLayout | None:
    """The layout a header fits, or None; `fmt` narrows the choice when the user gave one."""
    names = set(columns)
    candidates = {"sessions": ("export", "sessions"), "sessions-parquet": ("export", "sessions"),
                  "acn": ("acn",), "epfl": ("epfl",)}.get(fmt, tuple(LAYOUTS))  # fmt: skip
    for key in candidates:
        layout = LAYOUTS[key]
        if {layout.entity, layout.start, layout.end, layout.energy} <= names:
            return layout
    return None


def parse(path: Path, name: str, options: ImportOptions, table: pl.DataFrame | None = None,
          first_line: int = 2) -> ParsedFile:  # fmt: skip
    check_timezone(options.timezone)
    if table is None:
        table, first_line = load_table(path, name)
    if table.height == 0:
        raise InputError(f"{name} has a header but no rows; nothing to import.")
    layout = layout_for(table.columns, options.format)
    if layout is None:
        layout = LAYOUTS["acn" if options.format == "acn" else "epfl" if options.format == "epfl" else "sessions"]
        require_columns(table.columns, [layout.entity, layout.start, layout.end, layout.energy], "session table")
    table = table.with_row_index("__row", offset=first_line).with_columns(pl.col("__row").cast(pl.Int64))
    hint = f"--timezone{layout.zone_hint}"
    problems: list[pl.DataFrame] = []
    times = {}
    counts = [0, 0]
    for key in ("start", "end", "plug_in", "plug_out"):
        column = getattr(layout, key)
        if column and column in table.columns:
            result = parse_times(table, column, options.timezone, layout.entity, hint, options.not_after)
            counts[0] += result.ambiguous
            counts[1] += result.nonexistent
            times[key] = result.frame.select("__row", pl.col("ts").alias(f"{key}_utc"))
            problems.append(_rejects(result.frame.filter(pl.col("__ts_reason").is_not_null()), column,
                                     pl.col("__raw").cast(pl.String), pl.col("__ts_reason")))  # fmt: skip
    entity = pl.lit(layout.entity_prefix) + pl.col(layout.entity).cast(pl.String).str.strip_chars()
    values = table.select(
        "__row",
        entity.alias("entity_id"),
        (parse_number(pl.col(layout.energy), table.schema[layout.energy]) * layout.energy_factor).alias("energy_kwh"),
        *[
            parse_number(pl.col(c), table.schema[c]).alias(target) if c and c in table.columns
            else pl.lit(None, pl.Float64).alias(target)
            for c, target in ((layout.soc_start, "soc_start_pct"), (layout.soc_end, "soc_end_pct"))
        ],
    )  # fmt: skip
    frame = values
    for part in times.values():
        frame = frame.join(part, on="__row", how="left")
    checks = [
        (layout.entity, ~check_entity_id(pl.col("entity_id")), "entity id must be 1 to 128 printable characters"),
        (layout.energy, pl.col("energy_kwh").is_null(), "energy is missing or not a number"),
        (layout.energy, pl.col("energy_kwh") < 0, "energy must be zero or positive"),
        (layout.end, pl.col("end_utc") < pl.col("start_utc"), "the session ends before it starts"),
        (layout.soc_start, ~pl.col("soc_start_pct").is_between(0, 100), "state of charge must be between 0 and 100 %"),
        (layout.soc_end, ~pl.col("soc_end_pct").is_between(0, 100), "state of charge must be between 0 and 100 %"),
    ]
    raw = table.select("__row", *[pl.col(c).cast(pl.String).alias(f"__raw_{c}") for c in table.columns if c != "__row"])
    checked = frame.join(raw, on="__row")
    for column, mask, reason in checks:
        if column and column in table.columns:
            problems.append(_rejects(checked.filter(mask.fill_null(False)), column, pl.col(f"__raw_{column}"),
                                     pl.lit(reason)))  # fmt: skip
    rejects = pl.concat(problems).with_columns(file=pl.lit(name)).select(reject_frame().columns).sort("row", "column")
    good = frame.join(rejects.select(pl.col("row").alias("__row")).unique(), on="__row", how="anti").sort("__row")
    good = good.filter(pl.col("start_utc").is_not_null() & pl.col("end_utc").is_not_null())
    sessions = _sessions(good, "plug_in_utc" not in good.columns)
    entities = conform(_entity_types(sessions, table, layout, options), ENTITIES_SCHEMA)
    return ParsedFile(name=name, format=layout.format, rows_read=table.height, sessions=sessions,
                      entities=entities, rejects=rejects, ambiguous=counts[0], nonexistent=counts[1])  # fmt: skip


def _entity_types(sessions: pl.DataFrame, table: pl.DataFrame, layout: SessionLayout, options: ImportOptions):
    """entity_id, entity_type of the sessions' entities: --entity-type, else a ChargeLens export's own
    entity_type column (as `scale detect` writes it too), else ChargePoint (charge points measure sessions)."""
    ids = sessions.select("entity_id").unique(maintain_order=True)
    if options.entity_type or layout is not LAYOUTS["export"] or "entity_type" not in table.columns:
        return ids.with_columns(entity_type=pl.lit(options.entity_type or "ChargePoint"))
    raw = pl.col(layout.entity).cast(pl.String).str.strip_chars()
    kind = pl.col("entity_type").cast(pl.String).str.strip_chars()
    named = (
        table.select(entity_id=raw, entity_type=kind.replace(ENTITY_TYPE_ALIASES))
        .filter(pl.col("entity_type").is_not_null() & (pl.col("entity_type") != ""))
        .unique("entity_id", keep="first", maintain_order=True)
    )
    return ids.join(named, on="entity_id", how="left").with_columns(pl.col("entity_type").fill_null("ChargePoint"))


def _sessions(good: pl.DataFrame, arrival_only: bool) -> pl.DataFrame:
    hours = (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds() / 3.6e9
    frame = good.with_columns(
        plug_in_utc=pl.col("start_utc") if arrival_only else pl.col("plug_in_utc"),
        plug_out_utc=pl.col("end_utc") if arrival_only else pl.col("plug_out_utc"),
        average_power_kw=pl.when(hours > 0).then(pl.col("energy_kwh") / hours),
        method=pl.lit("reported"),
        source=pl.lit("imported"),
        flags=pl.lit(""),
        start_reason=pl.lit("reported by the charge point's session table"),
        end_reason=pl.lit("reported by the charge point's session table"),
    )
    starts = frame.get_column("start_utc").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_list()
    ids = [session_id(e, s, "imported") for e, s in zip(frame.get_column("entity_id").to_list(), starts, strict=True)]
    return conform(frame.with_columns(session_id=pl.Series(ids, dtype=pl.String)), SESSIONS_SCHEMA)


def _rejects(frame: pl.DataFrame, column: str, value: pl.Expr, reason: pl.Expr) -> pl.DataFrame:
    return frame.select(pl.col("__row").alias("row"), pl.lit(column).alias("column"), value.alias("value"),
                        reason.alias("reason"))  # fmt: skip
