"""Importers: every file format becomes the canonical frames of core.schema plus a rejects frame."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from core.errors import InputError
from core.importers.rules import column_names, reject_frame
from core.schema import empty_readings, empty_sessions

FORMATS = ("auto", "readings", "api-json", "teslafi", "sessions", "sessions-parquet", "acn", "epfl")
MAX_DECOMPRESSED_BYTES = 64 * 1024**3
MAX_RATIO = 200


@dataclass(frozen=True)
class ImportOptions:
    format: str = "auto"
    timezone: str | None = None
    entity_type: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # canonical column -> source column
    not_after: datetime | None = None  # times later than this are rejected as being in the future


@dataclass
class ParsedFile:
    """What one file holds, validated, before anything is written."""

    name: str
    format: str
    rows_read: int
    readings: pl.DataFrame = field(default_factory=empty_readings)
    entities: pl.DataFrame | None = None
    sessions: pl.DataFrame = field(default_factory=empty_sessions)
    rejects: pl.DataFrame = field(default_factory=reject_frame)
    ambiguous: int = 0
    nonexistent: int = 0


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when compressed, refusing archives that expand beyond reason."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    limit = min(MAX_DECOMPRESSED_BYTES, max(len(raw) * MAX_RATIO, 1024**2))
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            while chunk := gz.read(1024**2):
                out.write(chunk)
                if out.tell() > limit:
                    raise InputError(
                        f"{path.name} expands to more than {limit // 1024**2} MB when decompressed, which looks "
                        "like a compression bomb; decompress it yourself and import the plain file if it is genuine."
                    )
    except (OSError, EOFError) as exc:
        raise InputError(f"{path.name} is not a complete gzip file ({exc}); download or copy it again.") from None
    return out.getvalue()


def parse_file(path: Path, options: ImportOptions, name: str | None = None) -> ParsedFile:
    """Parse and validate one file (or a folder of Parquet files) without writing anything."""
    from core.importers import readings, sessions, teslafi

    name = name or path.name
    fmt = options.format
    if fmt not in FORMATS:
        raise InputError(f"Unknown format '{fmt}'; use one of {', '.join(FORMATS)}.")
    table, first_line = readings.load_table(path, name)
    if table.height == 0:
        raise InputError(f"{name} has a header but no rows; nothing to import.")
    if fmt == "teslafi" or (fmt == "auto" and teslafi.is_teslafi(table.columns)):
        if not teslafi.is_teslafi(table.columns):
            raise InputError(f"{name} is not a TeslaFi export: it needs the columns Date, vin and charging_state.")
        parsed = readings.parse(path, name, options, teslafi.to_canonical(table), first_line)
        parsed.format = "teslafi"
        return parsed
    if fmt in ("sessions", "sessions-parquet", "acn", "epfl"):
        return sessions.parse(path, name, options, table, first_line)
    if fmt == "readings" or options.mapping:
        return readings.parse(path, name, options, table, first_line)
    if sessions.layout_for(table.columns, "auto") is not None:
        return sessions.parse(path, name, options, table, first_line)
    if "entity_id" in table.columns and ({"ts", "timestamp"} & set(table.columns)):
        return readings.parse(path, name, options, table, first_line)
    raise InputError(
        f"The format of {name} is not recognised from its columns ({column_names(table.columns)}). Expected "
        "readings (entity_id, ts, power_kw, ...), sessions (entity_id, start, end, energy_kwh), ACN-Data (arrival, "
        "departure, delivered_energy (kWh), station_id) or EPFL (Session, CCS, Arrival, Departure, Energy (Wh)); "
        "choose --format and --map for other files."
    )
