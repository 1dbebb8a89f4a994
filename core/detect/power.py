"""Power-flow detection: power at or above min_power_kw means charging; energy is the trapezoid integral.

Trapezoids, not the step rule: a reading reports the power at its instant, so between two readings the
best estimate is the average of both; at a session's edges this counts half of the interval in which
charging started or stopped, the unbiased guess when the true instant is unknown.

An interval longer than max_gap_min inside a session is not integrated: power may have changed in any way
there. Its energy comes from the meter, the energy_added counter or the state of charge (with the battery
capacity) when both of its readings carry one (flag gap_bridged), else it is left out (gap_not_integrated).
"""

from __future__ import annotations

import polars as pl

from core.detect.params import DetectParams
from core.detect.prepare import BY, exact_sum, following, has_data, prev
from core.ids import SESSION_NAMESPACE, session_id

__all__ = ["ISO", "SESSION_NAMESPACE", "power_candidates", "session_id"]  # session_id: older imports use this path

ISO = "%Y-%m-%dT%H:%M:%SZ"


def power_candidates(prepared: pl.DataFrame, params: DetectParams) -> pl.DataFrame | None:
    """Every power session, complete or not (see engine.CANDIDATE_COLUMNS), from `prepare()`d readings."""
    found = prepared.filter(pl.col("power_kw").is_not_null())
    if found.height == 0:
        return None
    bridge = _bridge(found)
    # One lazy plan from here: polars keeps only the columns each step needs and computes the shared part once.
    pause = pl.duration(seconds=params.max_pause_min * 60)
    max_gap = params.max_gap_min * 60
    by = BY
    charging = pl.col("power_kw") >= params.min_power_kw
    first_row = ~pl.col("__eid").eq(pl.col("__eid").shift(1)).fill_null(False)
    last_row = ~pl.col("__eid").eq(pl.col("__eid").shift(-1)).fill_null(False)
    # Only charging readings, their neighbours and each entity's first and last reading count below: the rest lie
    # inside a stretch without charging, where no interval belongs to a session and no pause or session starts
    # (most readings of a fleet: 83 % of the benchmark's). Every step after this sees the same neighbours as on
    # all readings: a charging reading's and an owned interval's other end are kept.
    df = (
        found.lazy()
        .with_columns(__charging=charging, __bridge=bridge)
        .filter(pl.col("__charging") | prev("__charging") | following("__charging") | first_row | last_row)
        .with_columns(__last_ts=pl.when(last_row).then(pl.col("ts")).backward_fill())
    )
    # A pause runs from the first reading without charging to the next charging reading; sparse charging
    # readings with none in between are not a pause. A long pause, an unplug or a move opens a new session; so
    # does a counter restart after a pause, however short. A restart between two charging readings is the car's
    # counter catching up with a charge that power already shows, one poll late: splitting there would cut a
    # one-reading session off the charge.
    df = df.with_columns(
        # Plain fill: a run without charging always starts inside its own entity (see the first `when`).
        __off_start=pl.when(~pl.col("__charging") & prev("__charging").fill_null(True))
        .then(pl.col("ts"))
        .when(~pl.col("__charging"))
        .then(None)
        .forward_fill(),
    )
    df = df.with_columns(
        __pause=pl.when(~prev("__charging").fill_null(True))
        .then(pl.col("ts") - prev("__off_start"))
        .otherwise(pl.duration(seconds=0))
    )
    # Sessions are numbered over the charging readings alone: each is compared with the entity's previous charging
    # reading, and the numbers are a running count over the charging rows. The previous charging reading is
    # prepare.previous_known with the entity checked once for both values (calling it per value made this step a
    # tenth slower on 10 M readings).
    charging_only = pl.col("__charging")
    hard = pl.col("__seg_u") + pl.col("__moves")
    restarts = pl.col("__seg_r") - pl.col("__moves")
    before = {
        name: pl.when(charging_only).then(expr).forward_fill().shift(1)
        for name, expr in {"eid": pl.col("__eid"), "hard": hard, "restarts": restarts}.items()
    }
    same = (before["eid"] == pl.col("__eid")).fill_null(False)
    new = (
        ~same
        | (pl.col("__pause") > pause)
        | (hard != before["hard"])
        | ((restarts != before["restarts"]) & (pl.col("__pause") > pl.duration(seconds=0)))
    )
    df = df.with_columns(__session=pl.when(charging_only).then((charging_only & new).cum_sum()))
    # Each interval to the next reading belongs to the session of its charging end, if any.
    df = df.with_columns(
        __next_ts=following("ts"),
        __next_power=following("power_kw"),
        __next_session=following("__session"),
    ).with_columns(
        __dt_s=(pl.col("__next_ts") - pl.col("ts")).dt.total_microseconds() / 1e6,
        __owner=pl.coalesce("__session", "__next_session"),
    )
    interval_ok = pl.col("__dt_s") <= max_gap
    gap = ~interval_ok & pl.col("__session").is_not_null() & (pl.col("__next_session") == pl.col("__session"))
    df = df.with_columns(__gap=gap.fill_null(False))
    bridged = pl.col("__gap") & pl.col("__bridge").is_not_null()
    owned = interval_ok & pl.col("__owner").is_not_null()
    df = df.with_columns(
        __energy=pl.when(owned)
        .then(
            (pl.col("power_kw").clip(lower_bound=0) + pl.col("__next_power").clip(lower_bound=0))
            / 2
            * pl.col("__dt_s")
            / 3600
        )
        .when(bridged)
        .then(pl.col("__bridge"))
        .otherwise(0.0),
        __charge_h=pl.when(owned)
        .then(
            (pl.col("__charging").cast(pl.Float64) + (pl.col("__next_power") >= params.min_power_kw).cast(pl.Float64))
            / 2
            * pl.col("__dt_s")
            / 3600
        )
        .when(bridged)
        .then(pl.col("__dt_s") / 3600)
        .otherwise(0.0),
        __bridged=bridged,
        __open=pl.col("__gap") & pl.col("__bridge").is_null(),
    )
    energy = (
        df.filter(pl.col("__owner").is_not_null())
        .group_by(by, "__owner")
        .agg(
            energy_kwh=exact_sum("__energy"),
            __hours=exact_sum("__charge_h"),
            gap_bridged=pl.col("__bridged").any(),
            gap_not_integrated=pl.col("__open").any(),
        )
        .rename({"__owner": "__session"})
    )
    sessions = (
        df.filter(pl.col("__session").is_not_null())
        .group_by(by, "__session")
        .agg(
            start_utc=pl.col("ts").min(),
            end_utc=pl.col("ts").max(),
            max_power_kw=pl.col("power_kw").max(),
            start_power=pl.col("power_kw").get(pl.col("ts").arg_min()),
            end_power=pl.col("power_kw").get(pl.col("ts").arg_max()),
            __seg=pl.col("__seg").get(pl.col("ts").arg_min()),
            __seg_end=pl.col("__seg").get(pl.col("ts").arg_max()),
            __last_ts=pl.col("__last_ts").first(),
        )
        .join(energy, on=[by, "__session"], how="left")
    )
    hours = pl.col("__hours")  # time spent charging, counting half of each edge interval like the energy
    return sessions.select(
        by,
        "start_utc",
        "end_utc",
        "energy_kwh",
        average_power_kw=pl.when(hours > 0).then(pl.col("energy_kwh") / hours),
        max_power_kw="max_power_kw",
        method=pl.lit("power"),
        gap_bridged="gap_bridged",
        gap_not_integrated="gap_not_integrated",
        meter_reset=pl.lit(False),
        energy_added_counter=pl.lit(False),
        soc_rise_pct=pl.lit(None, dtype=pl.Float64),
        start_reason=pl.format(
            "started: power rose to {} kW at {}", pl.col("start_power").round(2), pl.col("start_utc").dt.strftime(ISO)
        ),
        end_evidence=pl.format(
            "last reading at {} kW or more was {} at {} kW",
            pl.lit(params.min_power_kw),
            pl.col("end_utc").dt.strftime(ISO),
            pl.col("end_power").round(2),
        ),
        __seg="__seg",
        __seg_end="__seg_end",
        __open_ts="start_utc",
        __done_ts="end_utc",
        __last_ts="__last_ts",
        __strict=pl.lit(False),
        __allow_s=pl.lit(0.0),
    ).collect()


def _bridge(df: pl.DataFrame) -> pl.Expr:
    """Energy over the interval to the next reading from the meter, the counter or the SoC, when both ends have it."""
    options = []
    for column in ("energy_kwh", "energy_added_kwh"):
        if has_data(df, column):
            rise = following(column) - pl.col(column)
            options.append(pl.when(rise >= 0).then(rise))
    if has_data(df, "soc_pct") and has_data(df, "__cap"):
        rise = following("soc_pct") - pl.col("soc_pct")
        options.append(pl.when(rise >= 0).then(rise / 100 * pl.col("__cap")))
    if not options:
        return pl.lit(None, dtype=pl.Float64)
    return pl.coalesce(options) if len(options) > 1 else options[0]
