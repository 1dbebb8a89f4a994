"""Reference: run bench/reference_duckdb.sql (the power method's rules as DuckDB window queries) on a Parquet file."""

from __future__ import annotations

from pathlib import Path

import duckdb

SQL = (Path(__file__).resolve().parent / "reference_duckdb.sql").read_text()


def detect_power_sessions(
    path: str | Path,
    min_power_kw: float = 0.1,
    max_pause_min: float = 15,
    max_gap_min: float = 60,
    min_energy_kwh: float = 0.05,
    con: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyRelation:
    """Complete power sessions of the readings in `path` (entity_id, start_utc, end_utc, energy_kwh)."""
    con = con or duckdb.connect()
    params = {
        "path": str(path),
        "min_power_kw": float(min_power_kw),
        "max_pause_us": round(max_pause_min * 60_000_000),
        "max_gap_us": round(max_gap_min * 60_000_000),
        "min_energy_kwh": float(min_energy_kwh),
    }
    return con.sql(SQL, params=params)
