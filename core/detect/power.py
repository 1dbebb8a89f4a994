"""Power-flow detection: power at or above min_power_kw means charging; energy is the trapezoid integral.

Trapezoids, not the step rule: a reading reports the power at its instant, so between two readings the
best estimate is the average of both; at a session's edges this counts half of the interval in which
charging started or stopped, the unbiased guess when the true instant is unknown.
"""

from __future__ import annotations

import uuid

import polars as pl

from core.detect.params import DetectParams
from core.schema import SESSIONS_SCHEMA, conform, empty_sessions

SESSION_NAMESPACE = uuid.UUID("6f1c1a52-4c35-4a7e-9d55-1c7c3f0f2b9e")


def session_id(entity_id: str, start_iso: str, source: str = "detected") -> str:
    """Deterministic id: the same entity, start and source always give the same id."""
    return str(uuid.uuid5(SESSION_NAMESPACE, f"{source}|{entity_id}|{start_iso}"))


def detect_sessions(readings: pl.DataFrame, params: DetectParams = DetectParams()) -> pl.DataFrame:
    """Complete charge sessions of every entity in `readings` (canonical columns), ordered by entity and start."""
    df = (
        readings.filter(pl.col("power_kw").is_not_null())
        .unique(["entity_id", "ts"], keep="first", maintain_order=True)
        .sort("entity_id", "ts")
    )
    if df.height == 0:
        return empty_sessions()
    pause = pl.duration(seconds=params.max_pause_min * 60)
    max_gap = params.max_gap_min * 60
    by = "entity_id"
    charging = pl.col("power_kw") >= params.min_power_kw
    df = df.with_columns(
        __charging=charging,
        __unplugged=(pl.col("is_plugged_in") == False).fill_null(False).cum_sum().over(by),  # noqa: E712
        __last_ts=pl.col("ts").max().over(by),
    )
    # A pause runs from the first reading without charging to the next charging reading; sparse charging
    # readings with none in between are not a pause. A long pause or an unplug opens a new session.
    df = df.with_columns(
        __off_start=pl.when(~pl.col("__charging") & pl.col("__charging").shift(1).over(by).fill_null(True))
        .then(pl.col("ts"))
        .when(~pl.col("__charging"))
        .then(None)
        .forward_fill()
        .over(by),
    )
    df = df.with_columns(
        __pause=pl.when(~pl.col("__charging").shift(1).over(by).fill_null(True))
        .then(pl.col("ts") - pl.col("__off_start").shift(1).over(by))
        .otherwise(pl.duration(seconds=0))
    )
    on = df.filter("__charging").with_columns(
        __prev_ts=pl.col("ts").shift(1).over(by),
        __prev_unplugged=pl.col("__unplugged").shift(1).over(by),
    )
    new = (
        pl.col("__prev_ts").is_null()
        | (pl.col("__pause") > pause)
        | (pl.col("__unplugged") != pl.col("__prev_unplugged"))
    )
    on = on.with_columns(__session=new.cum_sum().over(by))
    df = df.join(on.select("entity_id", "ts", "__session"), on=["entity_id", "ts"], how="left")
    # Each interval to the next reading belongs to the session of its charging end, if any.
    df = df.with_columns(
        __next_ts=pl.col("ts").shift(-1).over(by),
        __next_power=pl.col("power_kw").shift(-1).over(by),
        __next_session=pl.col("__session").shift(-1).over(by),
    ).with_columns(
        __dt_s=(pl.col("__next_ts") - pl.col("ts")).dt.total_microseconds() / 1e6,
        __owner=pl.coalesce("__session", "__next_session"),
    )
    interval_ok = pl.col("__dt_s") <= max_gap
    df = df.with_columns(
        __energy=pl.when(interval_ok & pl.col("__owner").is_not_null())
        .then(
            (pl.col("power_kw").clip(lower_bound=0) + pl.col("__next_power").clip(lower_bound=0))
            / 2
            * pl.col("__dt_s")
            / 3600
        )
        .otherwise(0.0),
        __charge_h=pl.when(interval_ok & pl.col("__owner").is_not_null())
        .then(
            (pl.col("__charging").cast(pl.Float64) + (pl.col("__next_power") >= params.min_power_kw).cast(pl.Float64))
            / 2
            * pl.col("__dt_s")
            / 3600
        )
        .otherwise(0.0),
        __gap=(~interval_ok & pl.col("__session").is_not_null() & (pl.col("__next_session") == pl.col("__session"))),
    )
    energy = (
        df.filter(pl.col("__owner").is_not_null())
        .group_by(by, "__owner")
        .agg(energy_kwh=pl.col("__energy").sum(), __hours=pl.col("__charge_h").sum(), __gaps=pl.col("__gap").any())
        .rename({"__owner": "__session"})
    )
    sessions = (
        df.filter(pl.col("__session").is_not_null())
        .group_by(by, "__session")
        .agg(
            start_utc=pl.col("ts").min(),
            end_utc=pl.col("ts").max(),
            max_power_kw=pl.col("power_kw").max(),
            start_power=pl.col("power_kw").first(),
            end_power=pl.col("power_kw").last(),
            soc_start_pct=pl.col("soc_pct").drop_nulls().first(),
            soc_end_pct=pl.col("soc_pct").drop_nulls().last(),
            range_start_km=pl.col("range_km").drop_nulls().first(),
            range_end_km=pl.col("range_km").drop_nulls().last(),
            latitude=pl.col("latitude").median(),
            longitude=pl.col("longitude").median(),
            __last_ts=pl.col("__last_ts").first(),
        )
        .join(energy, on=[by, "__session"], how="left")
    )
    # Complete once the data shows the end: a later charging session, an unplug, or max_pause without charging.
    later_unplug = (
        df.filter(pl.col("is_plugged_in") == False)  # noqa: E712
        .select(by, __unplug_ts="ts")
        .sort(by, "__unplug_ts")
    )
    sessions = sessions.sort(by, "end_utc").join_asof(
        later_unplug, left_on="end_utc", right_on="__unplug_ts", by=by, strategy="forward", check_sortedness=False
    )
    complete = (pl.col("__last_ts") - pl.col("end_utc") >= pause) | pl.col("__unplug_ts").is_not_null()
    hours = pl.col("__hours")  # time spent charging, counting half of each edge interval like the energy
    sessions = (
        sessions.filter(complete & (pl.col("energy_kwh") >= params.min_energy_kwh))
        .with_columns(
            average_power_kw=pl.when(hours > 0).then(pl.col("energy_kwh") / hours),
            method=pl.lit("power"),
            source=pl.lit("detected"),
            flags=pl.when(pl.col("__gaps")).then(pl.lit("gap_not_integrated")).otherwise(pl.lit("")),
            start_reason=pl.format(
                "started: power rose to {} kW at {}",
                pl.col("start_power").round(2),
                pl.col("start_utc").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
            end_reason=pl.format(
                "ended: last reading at {} kW or more was {} at {} kW",
                pl.lit(params.min_power_kw),
                pl.col("end_utc").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                pl.col("end_power").round(2),
            ),
        )
        .sort(by, "start_utc")
    )
    ids = [
        session_id(e, s)
        for e, s in zip(
            sessions.get_column(by).to_list(),
            sessions.get_column("start_utc").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_list(),
            strict=True,
        )
    ]
    return conform(sessions.with_columns(session_id=pl.Series(ids, dtype=pl.String)), SESSIONS_SCHEMA)
