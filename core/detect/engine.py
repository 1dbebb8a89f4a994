"""The detection engine: per entity and stretch of data, the best evidence turns readings into charge sessions.

The rules, in short (core/detect/README.md has them in full, with the reasons):
- Each method finds its candidate sessions on its own: meter (`energy_kwh`), power (`power_kw`), the energy_added
  counter and the state of charge (`soc_pct`, only for entities with a battery capacity).
- Method choice, by rank meter > power > counter > soc: a candidate is dropped when it overlaps a candidate of a
  higher rank, or when a higher-ranked value is present around it (a reading of that value at most max_gap_min
  before its start and one at most max_gap_min after its end). So where a meter reports, the meter decides, also
  that nothing was charged; else power; else the counter; else the SoC. Counter sessions are reported as method
  "meter" (the counter is the car's own meter) with the flag energy_added_counter.
- An unplug or a move always ends a session, and so does a pause longer than max_pause_min. A counter restart
  starts a new session (for the power method only after a pause, however short: see power.py).
- A session is listed once complete (a later reading shows an unplug, a move or a counter restart, or the data
  goes on for max_pause_min without charging; for the interval methods more than max_pause_min) and when it has
  at least min_energy_kwh (and, for the SoC, a rise of at least soc_min_rise_pct).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from core.detect.params import DetectParams
from core.detect.power import ISO, power_candidates
from core.detect.prepare import BY, has_data, prepare
from core.detect.registers import num, register_candidates
from core.ids import session_id
from core.schema import SESSIONS_SCHEMA, UTC_TS, conform, empty_sessions

# Highest rank first: (method, the column whose presence gives that method the stretch).
RANKED = (("meter", "energy_kwh"), ("power", "power_kw"), ("counter", "energy_added_kwh"), ("soc", "soc_pct"))
FLAGS = ("energy_added_counter", "gap_bridged", "gap_not_integrated", "meter_reset")


def detect_sessions(
    readings: pl.DataFrame, params: DetectParams = DetectParams(), capacities: dict[str, float] | None = None
) -> pl.DataFrame:
    """Complete charge sessions of every entity in `readings`, ordered by entity and start (SESSIONS_SCHEMA).

    `capacities` maps entity_id to battery capacity in kWh; the SoC method needs it (no capacity, no SoC sessions).
    """
    return detect(readings, params, capacities).sessions


# Where every candidate's evidence lies: listed or not (ongoing, too little energy, outranked).
CANDIDATE_SCHEMA = pl.Schema({BY: pl.String(), "column": pl.String(), "evidence_from": UTC_TS, "evidence_to": UTC_TS})


@dataclass(frozen=True)
class Detection:
    """Sessions (SESSIONS_SCHEMA) and the candidates behind them (CANDIDATE_SCHEMA; `column` names the method's value).

    core.scale.split places the seams between the chunks of a large entity where no candidate has evidence.
    """

    sessions: pl.DataFrame
    candidates: pl.DataFrame


def detect(
    readings: pl.DataFrame, params: DetectParams = DetectParams(), capacities: dict[str, float] | None = None
) -> Detection:
    """`detect_sessions`, together with the evidence span of every candidate session."""
    df = prepare(readings, capacities)
    frames = []
    for rank, (kind, column) in enumerate(RANKED):
        if not has_data(df, column):
            continue
        found = power_candidates(df, params) if kind == "power" else register_candidates(df, params, kind)
        if found is not None and found.height:
            frames.append(found.with_columns(__rank=pl.lit(rank, dtype=pl.Int8)))
    if not frames:
        return Detection(empty_sessions(), pl.DataFrame(schema=CANDIDATE_SCHEMA))
    candidates = pl.concat(frames, how="vertical_relaxed").with_row_index("__cid")
    spans = candidates.select(
        BY,
        pl.col("__rank").replace_strict(dict(enumerate(c for _, c in RANKED)), return_dtype=pl.String).alias("column"),
        evidence_from="__open_ts",
        evidence_to="__done_ts",
    ).cast(dict(CANDIDATE_SCHEMA))
    candidates = _with_end(candidates, df, params)
    candidates = _resolve(candidates, df, params)
    sessions = candidates.filter(
        pl.col("__complete")
        & (pl.col("energy_kwh") >= params.min_energy_kwh)
        & (pl.col("soc_rise_pct").is_null() | (pl.col("soc_rise_pct") >= params.soc_min_rise_pct))
    )
    if sessions.height == 0:
        return Detection(empty_sessions(), spans)
    if has_data(df, "energy_added_kwh"):
        sessions = _counter_energy(sessions, df, params)
    sessions = _enrich(sessions.sort(BY, "start_utc"), df)
    sessions = sessions.with_columns(
        source=pl.lit("detected"),
        flags=pl.concat_str([pl.when(f).then(pl.lit(f)) for f in FLAGS], separator=",", ignore_nulls=True),
        end_reason=pl.format("ended: {}; {}", pl.col("__cause"), pl.col("end_evidence")),
    ).sort(BY, "start_utc")
    ids = [
        session_id(e, s)
        for e, s in zip(
            sessions.get_column(BY).to_list(),
            sessions.get_column("start_utc").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_list(),
            strict=True,
        )
    ]
    return Detection(conform(sessions.with_columns(session_id=pl.Series(ids, dtype=pl.String)), SESSIONS_SCHEMA), spans)


def _minutes(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later - earlier).dt.total_microseconds() / 6e7


def _with_end(candidates: pl.DataFrame, df: pl.DataFrame, params: DetectParams) -> pl.DataFrame:
    """Whether each candidate is complete, and the sentence saying why it ended (`__cause`)."""
    pause = params.max_pause_min
    # An unplug belongs after the interval that ends at it, so it completes a session that ends at that very
    # reading; a move or a counter restart belongs to that interval (it may be what opened the session), so it
    # only completes a session that ended before it: one microsecond earlier in the search key says "strictly".
    events = df.filter(pl.col("__event").is_not_null()).select(
        BY,
        __ev_ts="ts",
        __ev="__event",
        __ev_key=pl.when("__unplug").then(pl.col("ts")).otherwise(pl.col("ts") - pl.duration(microseconds=1)),
    )
    # __open_ts/__done_ts: where the method's evidence of charging begins and ends (for the interval methods the
    # outer readings of the first and last charging interval; for power the session's own start and end).
    c = candidates.sort(BY, "__rank", "start_utc").with_columns(
        __next_open=pl.col("__open_ts").shift(-1).over(BY, "__rank"),
        __next_seg=pl.col("__seg").shift(-1).over(BY, "__rank"),
        __next_allow=pl.col("__allow_s").shift(-1).over(BY, "__rank"),
    )
    c = c.sort(BY, "__done_ts").join_asof(
        events.sort(BY, "__ev_key"),
        left_on="__done_ts",
        right_on="__ev_key",
        by=BY,
        strategy="forward",
        check_sortedness=False,
    )
    idle = _minutes(pl.col("__last_ts"), pl.col("__done_ts"))
    # Registers need strictly more than max_pause: their next charging interval can begin at the last reading.
    goes_on = pl.when("__strict").then(idle > pause).otherwise(idle >= pause)
    has_event = pl.col("__ev_ts").is_not_null()
    has_next = pl.col("__next_open").is_not_null()
    event = pl.format("{} at {}", pl.col("__ev"), pl.col("__ev_ts").dt.strftime(ISO))
    paused = pl.format(
        "paused {} min, longer than {} min{}",
        num(_minutes(pl.col("__next_open"), pl.col("__done_ts")), 1),
        num(pl.lit(pause)),
        pl.when(pl.col("__next_allow") > 0)
        .then(pl.format(" and the {} min the SoC stayed flat within its steps", num(pl.col("__next_allow") / 60, 1)))
        .otherwise(pl.lit("")),
    )
    quiet = pl.format(
        "no charging for {} min until the last reading at {}", num(idle, 1), pl.col("__last_ts").dt.strftime(ISO)
    )
    event_first = has_event & (_minutes(pl.col("__ev_ts"), pl.col("__done_ts")) <= pause)
    return c.with_columns(
        __complete=has_event | goes_on,
        __cause=pl.when(has_next & (pl.col("__next_seg") != pl.col("__seg_end")))
        .then(event)
        .when(has_next)
        .then(paused)
        .when(event_first | (has_event & ~goes_on))
        .then(event)
        .otherwise(quiet),
    )


def _resolve(candidates: pl.DataFrame, df: pl.DataFrame, params: DetectParams) -> pl.DataFrame:
    """Keep, where methods disagree about a stretch of time, only the candidates of the best-ranked method there."""
    max_gap = pl.duration(seconds=params.max_gap_min * 60)
    ranks = sorted(candidates.get_column("__rank").unique().to_list())
    dropped: list[pl.Series] = []
    for rank, (_, column) in enumerate(RANKED):
        lower = candidates.filter(pl.col("__rank") > rank).select(
            "__cid", BY, "start_utc", "end_utc", "__open_ts", "__done_ts"
        )
        if lower.height == 0:
            break
        if rank in ranks:
            # Overlap is judged on the evidence spans: an interval method's edge intervals are its evidence too.
            higher = candidates.filter(pl.col("__rank") == rank).select(
                BY, "start_utc", __hs="__open_ts", __he="__done_ts"
            )
            overlap = lower.sort(BY, "__done_ts").join_asof(
                higher.sort(BY, "__hs"),
                left_on="__done_ts",
                right_on="__hs",
                by=BY,
                strategy="backward",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            dropped.append(overlap.filter(pl.col("__he") > pl.col("__open_ts")).get_column("__cid"))
            # Sessions of one entity with the same start would get the same id.
            same_start = lower.join(higher, on=[BY, "start_utc"], how="semi")
            dropped.append(same_start.get_column("__cid"))
        if has_data(df, column):
            seen = df.filter(pl.col(column).is_not_null()).select(BY, __st="ts")
            before = lower.sort(BY, "start_utc").join_asof(
                seen, left_on="start_utc", right_on="__st", by=BY, strategy="backward", check_sortedness=False
            )
            around = (
                before.rename({"__st": "__before"})
                .sort(BY, "end_utc")
                .join_asof(seen, left_on="end_utc", right_on="__st", by=BY, strategy="forward", check_sortedness=False)
            )
            present = (pl.col("start_utc") - pl.col("__before") <= max_gap) & (
                pl.col("__st") - pl.col("end_utc") <= max_gap
            )
            dropped.append(around.filter(present).get_column("__cid"))
    if not dropped:
        return candidates
    return candidates.filter(~pl.col("__cid").is_in(pl.concat(dropped).implode()))


def _counter_energy(sessions: pl.DataFrame, df: pl.DataFrame, params: DetectParams) -> pl.DataFrame:
    """Power sessions take their energy from the per-charge counter where it covers them (SPEC §3, item 4).

    Power sampled at instants misses how fast the charge ramped between two polls; the car's own counter adds up
    what really flowed. The counter's rise is summed from the reading before the start to the first reading after
    the end (when that reading comes within max_pause_min, else to the end), counting a restart as a rise from 0.
    The average power follows the new energy; the power method's times stay.
    """
    counter = (
        df.filter(pl.col("energy_added_kwh").is_not_null())
        .select(BY, "ts", __c="energy_added_kwh")
        .with_columns(__d=pl.col("__c").diff().over(BY))
        .with_columns(__inc=pl.when(pl.col("__d") >= 0).then("__d").otherwise("__c").fill_null(0.0))
        .with_columns(__cum=pl.col("__inc").cum_sum().over(BY))
        .select(BY, __t="ts", __cum="__cum")
        .sort(BY, "__t")
    )
    pause = pl.duration(microseconds=int(params.max_pause_min * 60_000_000))
    s = sessions.with_row_index("__ck")

    def counter_at(column: str, strategy: str, exact: bool, **names: str) -> pl.DataFrame:
        """For each session, the counter's running total at the reading nearest `column` in that direction."""
        return (
            s.select(BY, "__ck", column)
            .sort(BY, column)
            .join_asof(
                counter,
                left_on=column,
                right_on="__t",
                by=BY,
                strategy=strategy,
                allow_exact_matches=exact,
                check_sortedness=False,
            )
            .select("__ck", *[pl.col(source).alias(name) for name, source in names.items()])
        )

    before = counter_at("start_utc", "backward", False, __from="__cum", __from_t="__t")
    at_end = counter_at("end_utc", "backward", True, __end="__cum")
    after = counter_at("end_utc", "forward", False, __next="__cum", __next_t="__t", __end_t="end_utc")
    covered = (
        before.join(at_end, on="__ck")
        .join(after, on="__ck")
        .filter(pl.col("__from").is_not_null() & pl.col("__end").is_not_null())
        .with_columns(
            __counter_kwh=pl.when(pl.col("__next").is_not_null() & (pl.col("__next_t") - pl.col("__end_t") <= pause))
            .then(pl.col("__next") - pl.col("__from"))
            .otherwise(pl.col("__end") - pl.col("__from"))
        )
        .select("__ck", "__counter_kwh")
    )
    use = (pl.col("method") == "power") & pl.col("__counter_kwh").is_not_null() & (pl.col("__counter_kwh") > 0)
    return (
        s.join(covered, on="__ck", how="left")
        .with_columns(
            average_power_kw=pl.when(use & pl.col("energy_kwh").gt(0))
            .then(pl.col("average_power_kw") * pl.col("__counter_kwh") / pl.col("energy_kwh"))
            .otherwise("average_power_kw"),
            energy_added_counter=pl.col("energy_added_counter") | use.fill_null(False)
            if "energy_added_counter" in s.columns
            else use.fill_null(False),
            energy_kwh=pl.when(use).then("__counter_kwh").otherwise("energy_kwh"),
        )
        .drop("__ck", "__counter_kwh")
    )


def _enrich(sessions: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """SoC and range at start and end, median position, measured peak power, plug-in and plug-out times."""
    s = sessions.with_row_index("__k")
    for column, first, last in (
        ("soc_pct", "soc_start_pct", "soc_end_pct"),
        ("range_km", "range_start_km", "range_end_km"),
    ):
        if not has_data(df, column):
            s = s.with_columns(pl.lit(None, dtype=pl.Float64).alias(first), pl.lit(None, dtype=pl.Float64).alias(last))
            continue
        known = df.filter(pl.col(column).is_not_null()).select(BY, __t="ts", __x=column)
        s = (
            s.sort(BY, "start_utc")
            .join_asof(known, left_on="start_utc", right_on="__t", by=BY, strategy="forward", check_sortedness=False)
            .with_columns(pl.when(pl.col("__t") <= pl.col("end_utc")).then("__x").alias(first))
            .drop("__t", "__x")
            .sort(BY, "end_utc")
            .join_asof(known, left_on="end_utc", right_on="__t", by=BY, strategy="backward", check_sortedness=False)
            .with_columns(pl.when(pl.col("__t") >= pl.col("start_utc")).then("__x").alias(last))
            .drop("__t", "__x")
        )
    spans = s.select(BY, "__k", "start_utc", "end_utc").sort(BY, "start_utc")
    inside = {}
    for columns in (("power_kw",), ("latitude", "longitude")):
        if not all(has_data(df, c) for c in columns):
            continue
        wanted = spans
        if columns == ("power_kw",):  # measured peaks replace the estimates of the other methods only
            wanted = spans.filter(pl.col("__k").is_in(s.filter(pl.col("method") != "power")["__k"].implode()))
        if wanted.height == 0:
            continue
        known = pl.all_horizontal(pl.col(c).is_not_null() for c in columns)
        rows = df.filter(known & pl.col(BY).is_in(wanted[BY].unique().implode())).select(BY, "ts", *columns)
        inside[columns] = (
            rows.join_asof(
                wanted, left_on="ts", right_on="start_utc", by=BY, strategy="backward", check_sortedness=False
            )
            .filter(pl.col("ts") <= pl.col("end_utc"))
            .group_by("__k")
            .agg(
                [pl.col(c).max().alias("__peak") for c in columns if c == "power_kw"]
                + [pl.col(c).median() for c in columns if c != "power_kw"]
            )
        )
    peak = inside.get(("power_kw",))
    if peak is not None:
        s = s.join(peak, on="__k", how="left").with_columns(
            # The power method's own peak stands; the registers' estimate yields to measured power.
            max_power_kw=pl.when(pl.col("method") == "power")
            .then("max_power_kw")
            .otherwise(pl.coalesce("__peak", "max_power_kw"))
        )
    where = inside.get(("latitude", "longitude"))
    s = s.join(where, on="__k", how="left") if where is not None else s.with_columns(latitude=None, longitude=None)
    return _with_plug_times(s, df)


def _with_plug_times(s: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """plug_in: first plugged-in reading after the last unplugged one before the start; plug_out: first unplugged
    reading from the end on. Both stay unknown where the data does not show them."""
    if not has_data(df, "is_plugged_in"):
        return s.with_columns(plug_in_utc=pl.lit(None, dtype=s.schema["start_utc"]), plug_out_utc=pl.lit(None))
    out = df.filter(pl.col("is_plugged_in") == False).select(BY, __t="ts")  # noqa: E712
    plugged = df.filter(pl.col("is_plugged_in") == True).select(BY, __p="ts")  # noqa: E712
    s = (
        s.sort(BY, "end_utc")
        .join_asof(out, left_on="end_utc", right_on="__t", by=BY, strategy="forward", check_sortedness=False)
        .rename({"__t": "plug_out_utc"})
        .sort(BY, "start_utc")
        .join_asof(
            out,
            left_on="start_utc",
            right_on="__t",
            by=BY,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
    )
    with_out = s.filter(pl.col("__t").is_not_null()).sort(BY, "__t")
    found = with_out.join_asof(
        plugged,
        left_on="__t",
        right_on="__p",
        by=BY,
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).select("__k", plug_in_utc=pl.when(pl.col("__p") <= pl.col("start_utc")).then("__p"))
    return s.drop("__t").join(found, on="__k", how="left")
