"""Interval detection for values that only grow while charging: the meter, the energy_added counter and the SoC.

Such a value says nothing about an instant, only about the interval between two of its readings: a rise at an
average power of at least min_power_kw means the interval was charging (so slow creep and rounding noise are not
sessions). Intervals where the entity reports is_charging at both ends also count as charging, so an integer SoC
that stays flat for a while during slow charging does not split the session. A session is a run of charging
intervals with pauses of at most max_pause_min between them.

Start and end, per value:
- meter and counter: start = the first reading that shows a rise, end = the last reading before the final rise
  (the same reading for a session of one interval). Like the power method's first and last charging readings,
  these are readings taken while charging was under way: loggers poll densely while charging and sparsely at
  rest, so the readings on the far side of the edge intervals can be many minutes off. The edge intervals' energy
  still counts, as the power method counts its edge intervals.
- SoC: start = the last reading before the first rise (the last reading at the old level), end = the first reading
  at the final level. An integer SoC steps up well after charging began and its last step comes before charging
  stopped, so the outer readings are the better guess; when within the first interval charging began is unknown.

Energy:
- meter (`energy_kwh`, cumulative): the sum of the rises; a drop is a reset, a new baseline worth 0 kWh, and inside
  a session it sets the flag meter_reset.
- counter (`energy_added_kwh`, restarts at 0 at each charge): a drop is a restart, so the value after it is the
  energy of that interval and the restart opens a new session (prepare() marks it as a break for all methods).
- soc (`soc_pct`, needs the battery capacity): only while the vehicle stays put (a rise while moving is
  regeneration); (final level - level at start) / 100 x capacity, the energy added to the battery.
Average power = energy / the time of the charging intervals: energy and time over the same intervals, as the power
method's trapezoids weigh both the same way (a lower bound where charging filled the edge intervals only in part).
"""

from __future__ import annotations

import polars as pl

from core.detect.params import DetectParams
from core.detect.power import ISO
from core.detect.prepare import BY, exact_sum, same_entity

COLUMNS = {"meter": "energy_kwh", "counter": "energy_added_kwh", "soc": "soc_pct"}


def num(expr: pl.Expr, decimals: int = 3) -> pl.Expr:
    """A number as short text: 51 rather than 51.0, at most `decimals` decimals."""
    rounded = expr.round(decimals)
    return (
        pl.when(rounded == rounded.floor())
        .then(rounded.cast(pl.Int64).cast(pl.String))
        .otherwise(rounded.cast(pl.String))
    )


def register_candidates(prepared: pl.DataFrame, params: DetectParams, kind: str) -> pl.DataFrame | None:
    """Every session of one register kind (meter | counter | soc), complete or not, as engine candidates (None when
    the value is never known; an empty frame when no entity has two readings of it)."""
    column = COLUMNS[kind]
    r = prepared.filter(pl.col(column).is_not_null())
    if kind == "soc":
        r = r.filter(pl.col("__cap") > 0)
    if r.height == 0:
        return None
    # One row per interval: from the entity's previous reading of this value to this one. One lazy plan from here:
    # polars keeps only the columns each step needs and computes the part shared by first, last and inside once.
    r = (
        r.lazy()
        .select(BY, "__eid", "ts", "__seg_u", "__seg_r", "__moves", "is_charging", "__cap", __v=pl.col(column))
        .with_columns(
            __same=same_entity(),
            __pts=pl.col("ts").shift(1),
            __pv=pl.col("__v").shift(1),
            __pu=pl.col("__seg_u").shift(1),
            __pm=pl.col("__moves").shift(1),
            __pch=pl.col("is_charging").shift(1),
            __last_ts=pl.when(~same_entity(-1)).then(pl.col("ts")).backward_fill(),
        )
        .filter("__same")
    )
    delta = pl.col("__v") - pl.col("__pv")
    dt_h = (pl.col("ts") - pl.col("__pts")).dt.total_microseconds() / 3.6e9
    if kind == "meter":
        kwh = pl.when(delta < 0).then(0.0).otherwise(delta)
    elif kind == "counter":
        kwh = pl.when(delta < 0).then(pl.col("__v")).otherwise(delta)
    else:
        kwh = delta.clip(lower_bound=0) / 100 * pl.col("__cap")
    r = r.with_columns(__delta=delta, __kwh=kwh, __dt_h=dt_h)
    rising = (pl.col("__kwh") > 0) & (pl.col("__kwh") / pl.col("__dt_h") >= params.min_power_kw)
    reported = (pl.col("is_charging") & pl.col("__pch")).fill_null(False)
    # An unplug at the interval's last reading ends the session after this interval; a move or a counter
    # restart inside it starts a new one with it.
    r = r.with_columns(
        __rising=rising,
        __charging=(pl.col("__moves") == pl.col("__pm")) & (rising | reported),
        __seg=pl.col("__pu") + pl.col("__seg_r"),
    )
    on = pl.col("__charging")
    prev_end = pl.when(on).then(pl.col("ts")).shift(1).forward_fill()
    prev_seg = pl.when(on).then(pl.col("__seg")).shift(1).forward_fill()
    prev_entity = pl.when(on).then(pl.col("__eid")).shift(1).forward_fill()
    pause_s = params.max_pause_min * 60
    flat_s = (pl.col("__pts") - prev_end).dt.total_microseconds() / 1e6  # since the last charging interval ended
    context = (prev_entity == pl.col("__eid")) & (prev_seg == pl.col("__seg"))
    r = r.with_columns(__context=context.fill_null(False), __flat_s=flat_s)
    if kind == "soc":
        # An integer SoC stays flat for most of a 1 % step while charging slowly (17 min for 82 kWh at 3.7 kW): a
        # flat stretch is a pause only when it is longer than max_pause_min plus the flat stretches of the steps
        # next to it (the shorter of the two; none when the SoC rises at every reading).
        r = r.with_columns(__step_s=pl.when(on & pl.col("__context")).then(pl.col("__flat_s")))
        before = pl.when(on).then(pl.col("__step_s")).shift(1).forward_fill()
        after = pl.when(on).then(pl.col("__step_s")).shift(-1).backward_fill()
        after_context = pl.when(on).then(pl.col("__context")).shift(-1).backward_fill().fill_null(False)
        allowance = pl.min_horizontal(
            pl.when(pl.col("__context")).then(before), pl.when(after_context).then(after)
        ).fill_null(0.0)
        r = r.with_columns(__allow_s=pl.when(on).then(allowance))
    else:
        r = r.with_columns(__allow_s=pl.when(on).then(pl.lit(0.0)))
    new = on & (~pl.col("__context") | (pl.col("__flat_s") > pause_s + pl.col("__allow_s")))
    r = r.with_columns(__new=new).with_columns(__sid=pl.when(on).then(pl.col("__new").cum_sum()))
    # Session ids are global, so a fill never joins two entities: the ids on both sides differ there.
    r = r.with_columns(__prev_sid=pl.col("__sid").forward_fill(), __next_sid=pl.col("__sid").backward_fill())
    r = r.with_columns(
        __owner=pl.when(pl.col("__prev_sid") == pl.col("__next_sid")).then(pl.col("__prev_sid")),
        __last=on & (pl.col("__sid").shift(-1).backward_fill() != pl.col("__sid")).fill_null(True),
    )
    # Interval edges: __t0/__t1 the first charging interval, __t8/__t9 the last one.
    first = r.filter("__new").select(
        "__sid",
        BY,
        "__seg",
        "__cap",
        "__allow_s",
        __t0="__pts",
        __t1="ts",
        __v0="__pv",
        __v1="__v",
        __k1="__kwh",
        __r1="__rising",
    )
    last = r.filter("__last").select(
        "__sid", "__last_ts", __t8="__pts", __t9="ts", __v9="__v", __k9="__kwh", __r9="__rising"
    )
    inside = (
        r.filter(pl.col("__owner").is_not_null())
        .group_by("__owner")
        .agg(
            __sum_kwh=exact_sum(pl.col("__kwh").clip(lower_bound=0)),
            # An integer SoC is flat between its steps while charging: for the SoC every interval inside counts.
            __hours=exact_sum(pl.when(pl.col("__charging") | (kind == "soc")).then(pl.col("__dt_h"))),
            __reset=(pl.col("__delta") < 0).any(),
            __gap=(pl.col("__dt_h") * 60 > params.max_gap_min).any(),
            __rate=pl.when("__rising").then(pl.col("__kwh") / pl.col("__dt_h")).max(),
        )
        .rename({"__owner": "__sid"})
    )
    s = first.join(last, on="__sid").join(inside, on="__sid")
    if kind == "soc":
        start, end = pl.col("__t0"), pl.col("__t9")
        energy = (pl.col("__v9") - pl.col("__v0")) / 100 * pl.col("__cap")
        rise = pl.col("__v9") - pl.col("__v0")
        max_power = pl.lit(None, dtype=pl.Float64)  # integer SoC steps are too coarse for a peak power
    else:
        start, end = pl.col("__t1"), pl.max_horizontal("__t1", "__t8")
        energy = pl.col("__sum_kwh")
        rise = pl.lit(None, dtype=pl.Float64)
        max_power = pl.col("__rate")  # the highest average over one interval; readings of power_kw win later
    s = s.with_columns(start_utc=start, end_utc=end)
    start_reason, end_evidence = _reasons(kind)
    return s.select(
        BY,
        "start_utc",
        "end_utc",
        energy_kwh=energy,
        average_power_kw=pl.when(pl.col("__hours") > 0).then(energy / pl.col("__hours")),
        max_power_kw=max_power,
        method=pl.lit("soc" if kind == "soc" else "meter"),
        gap_bridged="__gap",
        gap_not_integrated=pl.lit(False),
        meter_reset=pl.col("__reset") if kind == "meter" else pl.lit(False),
        energy_added_counter=pl.lit(kind == "counter"),
        soc_rise_pct=rise,
        start_reason=start_reason,
        end_evidence=end_evidence,
        __seg="__seg",
        __seg_end="__seg",
        __open_ts="__t0",
        __done_ts="__t9",
        __last_ts="__last_ts",
        __strict=pl.lit(True),
        __allow_s="__allow_s",
    ).collect()


def _reasons(kind: str) -> tuple[pl.Expr, pl.Expr]:
    t0, t1, t8, t9 = (pl.col(c).dt.strftime(ISO) for c in ("__t0", "__t1", "__t8", "__t9"))
    reported_start = pl.format("started: is_charging was true at {} and at {}", t0, t1)
    reported_end = pl.format("is_charging last true at {} and at {}", t8, t9)
    if kind == "soc":
        start = pl.format(
            "started: SoC rose from {}% to {}% between {} and {} (start = the last reading at {}%)",
            num(pl.col("__v0")),
            num(pl.col("__v1")),
            t0,
            t1,
            num(pl.col("__v0")),
        )
        end = pl.format("SoC reached {}% at {}", num(pl.col("__v9")), t9)
    else:
        name = "meter" if kind == "meter" else "energy_added counter"
        start = pl.format(f"started: {name} rose {{}} kWh by {{}} (from {{}})", num(pl.col("__k1")), t1, t0)
        end = pl.format(f"{name} rose its last {{}} kWh after {{}} (by {{}})", num(pl.col("__k9")), t8, t9)
    return (
        pl.when("__r1").then(start).otherwise(reported_start),
        pl.when("__r9").then(end).otherwise(reported_end),
    )
