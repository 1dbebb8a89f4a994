"""Readings made ready for detection: one row per entity and instant, in time order, with the session breaks marked."""

from __future__ import annotations

import polars as pl

from core.schema import READING_VALUE_COLUMNS, READINGS_SCHEMA, conform

BY = "entity_id"
# A vehicle counts as moved between two readings when its odometer changed by more than this, or (without an
# odometer at both) its position by more than MOVE_M. The odometer tolerance absorbs the rounding of values that
# were converted from miles (0.1 mi = 0.16 km) and matches the 200 m of SPEC section 3.
MOVE_KM = 0.2
MOVE_M = 200.0
METRES_PER_DEGREE = 111_195.0  # mean Earth radius 6 371 km; equirectangular is exact enough at 200 m

UNPLUGGED = "unplugged"
MOVED = "moved"
RESTARTED = "energy_added counter restarted"


# exact_sum: terms as integers of 2**-60 (kWh or hours): exact for every term of 2**-8 or more, and for smaller ones
# to within 1e-18; the 128-bit total holds 2**67.
FIXED_POINT = 2.0**60


def exact_sum(expr: pl.Expr | str) -> pl.Expr:
    """The sum of a float column, the same whatever the order in which its rows are added.

    A float sum depends on that order in its last bits, and the streaming engine's group_by adds partial sums in
    whichever order its threads finish: the same readings gave sessions whose energy differed in the 16th digit
    from one run to the next. Integers add the same in any order; the one rounding is the final conversion."""
    expr = pl.col(expr) if isinstance(expr, str) else expr
    return (expr * FIXED_POINT).cast(pl.Int128).sum().cast(pl.Float64) / FIXED_POINT


def has_data(df: pl.DataFrame, column: str) -> bool:
    return df.height > 0 and df.get_column(column).null_count() < df.height


def same_entity(shift: int = 1) -> pl.Expr:
    """True where the row `shift` places away belongs to the same entity (frames are sorted by entity, then time)."""
    return (pl.col("__eid") == pl.col("__eid").shift(shift)).fill_null(False)


def prev(expr: pl.Expr | str) -> pl.Expr:
    """The value on the entity's previous row (null on its first)."""
    expr = pl.col(expr) if isinstance(expr, str) else expr
    return pl.when(same_entity()).then(expr.shift(1))


def following(expr: pl.Expr | str) -> pl.Expr:
    """The value on the entity's next row (null on its last)."""
    expr = pl.col(expr) if isinstance(expr, str) else expr
    return pl.when(same_entity(-1)).then(expr.shift(-1))


def previous_known(column: str, known: pl.Expr | None = None) -> pl.Expr:
    """The entity's last known value of `column` before this row (null if none); `known` marks the rows to use."""
    known = pl.col(column).is_not_null() if known is None else known
    source = pl.when(known).then(pl.col("__eid")).forward_fill().shift(1)
    # Plain fills run across entities; the source's entity id tells where that happened.
    return pl.when(source == pl.col("__eid")).then(pl.when(known).then(pl.col(column)).forward_fill().shift(1))


def prepare(readings: pl.DataFrame, capacities: dict[str, float] | None = None) -> pl.DataFrame:
    """Canonical, de-duplicated readings sorted by entity and time, with break counters and event labels.

    Added columns: `__eid` (a number per entity, cheaper to compare than the id), `__cap` (battery capacity kWh or
    null), `__seg` (the reading's segment: it grows at every unplug, move and counter restart, and a session never
    spans two), `__seg_u` and `__seg_r` (its unplug part and its move-or-restart part: an unplug belongs after the
    interval that ends at it, a move or restart to that interval), `__moves` (moves so far) and `__event` (what
    happened at this reading: unplugged, moved, counter restarted, or null).
    """
    df = conform(readings, READINGS_SCHEMA).filter(pl.col(BY).is_not_null() & pl.col("ts").is_not_null())
    df = df.rechunk()  # whole columns: the shifts and fills below run several times faster than over many chunks
    if df.height == 0:
        return df.with_columns(__eid=pl.col(BY).rle_id())
    if not _in_order(df):  # the store reads in this order; sorting 10 M rows costs 2.5 times the check
        df = df.sort(BY, "ts", maintain_order=True)
    df = df.with_columns(__eid=pl.col(BY).rle_id())
    if df.select((same_entity() & (pl.col("ts") == pl.col("ts").shift(1))).any()).item():
        df = _merge_duplicates(df).with_columns(__eid=pl.col(BY).rle_id())
    caps = {k: float(v) for k, v in (capacities or {}).items() if v is not None and v > 0}
    cap = (
        pl.col(BY).replace_strict(caps, default=None, return_dtype=pl.Float64)
        if caps
        else pl.lit(None, dtype=pl.Float64)
    )
    unplug = (pl.col("is_plugged_in") == False).fill_null(False)  # noqa: E712
    restart = (
        (pl.col("energy_added_kwh") < previous_known("energy_added_kwh")).fill_null(False)
        if has_data(df, "energy_added_kwh")
        else pl.lit(False)
    )
    moved = _moved(df)
    lazy = df.lazy().with_columns(__cap=cap, __unplug=unplug, __restart=restart, __moved=moved)
    # Global running counts are enough: they are only ever compared between rows of the same entity.
    return (
        lazy.with_columns(
            __seg_u=pl.col("__unplug").cum_sum().cast(pl.Int64),
            __seg_r=(pl.col("__restart") | pl.col("__moved")).cum_sum().cast(pl.Int64),
            __moves=pl.col("__moved").cum_sum().cast(pl.Int64),
            __event=pl.when("__unplug")
            .then(pl.lit(UNPLUGGED))
            .when("__moved")
            .then(pl.lit(MOVED))
            .when("__restart")
            .then(pl.lit(RESTARTED)),
        )
        .with_columns(__seg=pl.col("__seg_u") + pl.col("__seg_r"))
        .collect()
    )


def _in_order(df: pl.DataFrame) -> bool:
    """True when the rows are already by entity, then time (equal times in any order: stable sort keeps them)."""
    entity, ts = pl.col(BY), pl.col("ts")
    ordered = (entity > entity.shift(1)) | ((entity == entity.shift(1)) & (ts >= ts.shift(1)))
    return bool(df.select(ordered.slice(1).all()).item())


def _merge_duplicates(df: pl.DataFrame) -> pl.DataFrame:
    """One row per entity and instant: per column the smallest known value, so the result never depends on row order.

    The store already keeps readings unique; this only matters for frames that callers build themselves.
    """
    dup = same_entity() & (pl.col("ts") == pl.col("ts").shift(1))
    key = dup | dup.shift(-1).fill_null(False)
    marked = df.with_columns(__dup=key).drop("__eid")
    merged = (
        marked.filter("__dup")
        .group_by(BY, "ts")
        .agg([pl.col(c).min() for c in READING_VALUE_COLUMNS])
        .select(READINGS_SCHEMA.names())
    )
    return pl.concat([marked.filter(~pl.col("__dup")).drop("__dup"), merged]).sort(BY, "ts")


def _moved(df: pl.DataFrame) -> pl.Expr:
    """True where the vehicle moved since the entity's previous reading that knew where it was."""
    odo = has_data(df, "odometer_km")
    pos = has_data(df, "latitude") and has_data(df, "longitude")
    if not (odo or pos):
        return pl.lit(False)
    moved = pl.lit(None, dtype=pl.Boolean)
    if pos:
        known = pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null()
        lat0 = previous_known("latitude", known)
        lon0 = previous_known("longitude", known)
        dy = (pl.col("latitude") - lat0) * METRES_PER_DEGREE
        dx = (pl.col("longitude") - lon0) * METRES_PER_DEGREE * ((pl.col("latitude") + lat0) / 2).radians().cos()
        moved = pl.when(known).then((dx * dx + dy * dy).sqrt() > MOVE_M)
    if odo:
        odo0 = previous_known("odometer_km")
        moved = (
            pl.when(pl.col("odometer_km").is_not_null() & odo0.is_not_null())
            .then((pl.col("odometer_km") - odo0).abs() > MOVE_KM)
            .otherwise(moved)
        )
    return moved.fill_null(False)
