"""Timestamps in files: ISO 8601 with Z or an offset, epoch seconds or milliseconds, or naive local times.

Naive local times need a time zone chosen by the user (never guessed). The documented DST rule:
a local time that does not exist (the hour skipped when clocks go forward) is rejected with a reason;
in the repeated hour when clocks go back, the first occurrence of a local time (per entity, in file
order) is the earlier instant and the second occurrence the later one; a single occurrence is the earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from core.errors import InputError
from core.schema import UTC_TS

_ZULU_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
# Epoch numbers at or above this are milliseconds (1e11 s would be the year 5138).
_EPOCH_MS_FROM = 100_000_000_000
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)  # times outside [EARLIEST, LATEST) are rejected
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_TS = pl.lit(EARLIEST, dtype=UTC_TS)
LATEST_TS = pl.lit(LATEST, dtype=UTC_TS)


@dataclass(frozen=True)
class TimeResult:
    frame: pl.DataFrame  # __row, ts (UTC) and __ts_reason (null when fine)
    ambiguous: int
    nonexistent: int


def check_timezone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"'{name}' is not a known time zone; use a name like Europe/Brussels or UTC.") from None
    return name


def parse_times(
    df: pl.DataFrame, column: str, timezone: str | None, group: str | None, hint: str, not_after: datetime | None = None
) -> TimeResult:
    """Parse df[column] into UTC; `group` (entity column) scopes the repeated-hour rule; `hint` names the option."""
    dtype = df.schema[column]
    base = df.select("__row", *([group] if group else []), pl.col(column).alias("__raw"))
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            frame = base.with_columns(ts=pl.col("__raw").dt.convert_time_zone("UTC").cast(UTC_TS))
            return _finish(frame, 0, 0, not_after)
        base = base.with_columns(__naive=pl.col("__raw").cast(pl.Datetime("us")), __aware=pl.lit(None, UTC_TS))
    elif dtype.is_integer() or dtype.is_float():
        epoch = pl.col("__raw").cast(pl.Float64)
        frame = base.with_columns(ts=_epoch(epoch))
        return _finish(frame, 0, 0, not_after)
    else:
        # Fast path for the common form, whole seconds in UTC with Z (its fixed pattern parses three times faster
        # than the general one); only the rows it cannot read go through every other form.
        raw = pl.col("__raw").cast(pl.String)
        fast = raw.str.to_datetime(_ZULU_SECONDS, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        base = base.with_columns(__aware=fast, __naive=pl.lit(None, pl.Datetime("us")))
        rest = base.filter(pl.col("__aware").is_null() & pl.col("__raw").is_not_null())
        if rest.height:
            text = raw.str.strip_chars().str.replace(r"(?i)z$", "+00:00").str.replace(" ", "T")
            digits = text.str.contains(r"^-?\d{9,14}(\.\d+)?$")
            rest = rest.with_columns(
                __aware=pl.coalesce(
                    [text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _AWARE_FORMATS]
                    + [pl.when(digits).then(_epoch(text.cast(pl.Float64, strict=False)))]
                ),
                __naive=pl.coalesce([text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]),
            )
            base = base.update(rest.select("__row", "__aware", "__naive"), on="__row", how="left")
    naive_rows = base.filter(pl.col("__aware").is_null() & pl.col("__naive").is_not_null())
    if naive_rows.height and timezone is None:
        sample = naive_rows.get_column("__raw").cast(pl.String).first()
        raise InputError(
            f"The times in column '{column}' have no time zone (for example '{sample}'); "
            f"choose the zone they were recorded in with {hint}."
        )
    if not naive_rows.height:
        frame = base.with_columns(ts=pl.col("__aware"))
        return _finish(frame, 0, 0, not_after)
    naive = pl.col("__naive")
    local = base.with_columns(
        __early=naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone(
            "UTC"
        ),
        __late=naive.dt.replace_time_zone(timezone, ambiguous="latest", non_existent="null").dt.convert_time_zone(
            "UTC"
        ),
    )
    keys = [group, "__naive"] if group else ["__naive"]
    local = local.with_columns(
        __ambiguous=pl.col("__early") != pl.col("__late"),
        __nonexistent=naive.is_not_null() & pl.col("__early").is_null() & pl.col("__aware").is_null(),
        __pass=pl.col("__row").rank("ordinal").over(keys),
    )
    frame = local.with_columns(
        ts=pl.coalesce(
            "__aware",
            pl.when(pl.col("__ambiguous") & (pl.col("__pass") >= 2)).then("__late").otherwise("__early"),
        ),
        __ts_reason=pl.when(pl.col("__nonexistent"))
        .then(pl.lit(f"local time does not exist in {timezone} (skipped when clocks went forward)"))
        .otherwise(None),
    )
    ambiguous = int(frame.get_column("__ambiguous").fill_null(False).sum())
    nonexistent = int(frame.get_column("__nonexistent").sum())
    return _finish(frame, ambiguous, nonexistent, not_after)


def _epoch(number: pl.Expr) -> pl.Expr:
    micros = pl.when(number.abs() >= _EPOCH_MS_FROM).then(number * 1_000).otherwise(number * 1_000_000)
    return micros.round(0).cast(pl.Int64, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _finish(frame: pl.DataFrame, ambiguous: int, nonexistent: int, not_after: datetime | None) -> TimeResult:
    if "__ts_reason" not in frame.columns:
        frame = frame.with_columns(__ts_reason=pl.lit(None, pl.String))
    ts = pl.col("ts")
    reason = (
        pl.when(pl.col("__ts_reason").is_not_null())
        .then("__ts_reason")
        .when(ts.is_null() & pl.col("__raw").is_null())
        .then(pl.lit("time is missing"))
        .when(ts.is_null())
        .then(pl.lit("not a time: use ISO 8601 (with Z or an offset) or epoch seconds/milliseconds"))
        .when((ts < EARLIEST_TS) | (ts >= LATEST_TS))
        .then(pl.lit("time is outside 1970-01-02 .. 2100-01-01"))
        .when(pl.lit(not_after is not None) & (ts > pl.lit(not_after, dtype=UTC_TS)))
        .then(pl.lit("time is in the future"))
        .otherwise(None)
    )
    out = frame.select("__row", pl.col("ts").cast(UTC_TS), reason.alias("__ts_reason"), pl.col("__raw"))
    return TimeResult(out, ambiguous, nonexistent)
