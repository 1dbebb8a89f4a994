"""Session exports (CSV, JSON, Parquet, Excel), one function for the UI, the CLI and the API."""

from __future__ import annotations

import io
import json
from datetime import datetime

import polars as pl
import xlsxwriter

from core.errors import InputError
from core.queries import SessionFilter, sessions
from core.records import session_record
from core.schema import EXPORT_COLUMNS, EXPORT_POSITION_COLUMNS, EXPORT_WIDE_COLUMNS
from core.store import Store

FORMATS = ("csv", "json", "parquet", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_FIXED_CREATED = datetime(2000, 1, 1)  # an export without sessions


def position_decimals(exact_setting: bool, exact: bool, round_to: int | None) -> int | None:
    """How many decimals of positions an export may carry (None = no positions), per SPEC section 4."""
    if exact and round_to is not None:
        raise InputError("Use either --exact-locations or --round-locations, not both.")
    if exact:
        if not exact_setting:
            raise InputError("Exact locations are off; turn on the exact_locations setting to export them.")
        return 6
    if round_to is not None:
        limit = 6 if exact_setting else 3
        if not 0 <= round_to <= limit:
            raise InputError(f"--round-locations takes 0 to {limit} decimals here.")
        return round_to
    return None


def export_frame(store: Store, flt: SessionFilter, decimals: int | None = None, wide: bool = False) -> pl.DataFrame:
    """The export table: exactly the SPEC columns in order, times in UTC."""
    return export_table(sessions(store, flt), decimals, wide)


def export_table(df: pl.DataFrame, decimals: int | None = None, wide: bool = False) -> pl.DataFrame:
    """Session rows (as core.queries.sessions gives them) as the export table, rounded as every export is."""
    columns = list(EXPORT_COLUMNS)
    if decimals is not None:
        df = df.with_columns(pl.col("latitude", "longitude").round(decimals))
        columns += EXPORT_POSITION_COLUMNS
    if wide:
        columns += EXPORT_WIDE_COLUMNS
    rounded = {
        **{
            c: 3
            for c in (
                "energy_kwh",
                "energy_t1_kwh",
                "energy_t2_kwh",
                "energy_t3_kwh",
                "energy_t4_kwh",
                "average_power_kw",
                "max_power_kw",
                "location_accuracy",
            )
        },
        "duration_min": 2,
        **{c: 2 for c in ("cost_total", "cost_energy", "cost_time", "cost_idle", "cost_flat", "cost_tax")},
    }
    return df.with_columns(
        pl.col("start_utc", "end_utc", "plug_in_utc", "plug_out_utc").dt.replace_time_zone(None),
        *[pl.col(c).cast(pl.Float64).round(n, mode="half_away_from_zero") for c, n in rounded.items()],
    ).select(columns)


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with an apostrophe."""
    text = [c for c, t in df.schema.items() if t == pl.String]
    return df.with_columns(
        [pl.when(_starts_formula(pl.col(c))).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c) for c in text]
    )


def _starts_formula(col: pl.Expr) -> pl.Expr:
    return pl.any_horizontal([col.str.starts_with(p) for p in _FORMULA_START]).fill_null(False)


def render(df: pl.DataFrame, fmt: str, exact_setting: bool = False, decimals: int | None = None) -> bytes:
    """The bytes of one export file of `df` (an export_frame) in `fmt`."""
    if fmt not in FORMATS:
        raise InputError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    if fmt == "json":
        records = [session_record(r, decimals=decimals) for r in df.iter_rows(named=True)]
        return (json.dumps({"data": records}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    if fmt == "csv":
        out = neutralise(df).with_columns(
            [pl.col(c).dt.strftime(_TIME_FORMAT) for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
        )
        return out.write_csv(line_terminator="\n", null_value="").encode("utf-8")
    buffer = io.BytesIO()
    if fmt == "parquet":
        df.with_columns(
            [pl.col(c).dt.replace_time_zone("UTC") for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
        ).write_parquet(buffer)
    else:
        # xlsxwriter stamps the workbook with the time it was written; the newest session end (or a fixed date)
        # instead, so the same sessions give the same bytes from the page and from the CLI, today or tomorrow.
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        newest = df.get_column("end_utc").max() if "end_utc" in df.columns and df.height else None
        workbook.set_properties({"created": (newest or _FIXED_CREATED).replace(tzinfo=None)})
        neutralise(df).write_excel(workbook, worksheet="sessions", autofit=False)
        workbook.close()
    return buffer.getvalue()


def export_sessions(
    store: Store,
    flt: SessionFilter,
    fmt: str = "csv",
    *,
    exact: bool = False,
    round_to: int | None = None,
    wide: bool = False,
) -> bytes:
    exact_setting = store.settings().exact_locations
    decimals = position_decimals(exact_setting, exact, round_to)
    return render(export_frame(store, flt, decimals, wide), fmt, exact_setting, decimals)
