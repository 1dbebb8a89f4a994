"""One entity's detection in time chunks that overlap, stitched back to what one run over all its readings gives.

An entity with more readings than one task should hold is cut at *seams*: chunk k owns the sessions that start in
[seam k, seam k+1) and runs the detection engine on its own window of readings. The rule that makes the stitched
result equal the unsplit one, column for column (energies to the last bits of float rounding; only `end_reason`
may be worded differently, because it cites the next session and the last reading that its run saw):

1. Overlap. A window reaches `overlap` = max(6 h, 4 x reach) beyond its owned range on both sides, where reach =
   max(max_pause_min, max_gap_min), the farthest that detection compares readings around a session.
2. Anchors. Detection also looks up readings however far away they are: the previous reading of each value (an
   interval of the meter, counter or SoC runs from it; a move or a counter restart is judged against it), the
   next one (whether a session's data went on long enough to be complete), the last unplug before a session
   (plug-in time) and the first one after it (plug-out time). So a window widens to the last reading of power,
   meter, counter, SoC, odometer and position before its overlap and to the first one after it; where one of
   those values stops reporting inside the window, to the first break (unplug, move, counter restart) after its
   last reading, which decides whether its last session was complete; and the last unplug before the window
   (with the first plugged-in reading after it) and the first unplug after it join the window as rows that
   carry nothing but `is_plugged_in`, which moves no session and ends none that the chunk keeps.
3. Quiet seams. A seam must lie in a quiet stretch: the evidence of no candidate session that either neighbouring
   chunk saw may come within reach of it, listed or not (still ongoing in that chunk, too little energy,
   outranked by another method), from the reading of its value before it to the one after it. Otherwise the seam
   moves just past the candidates that block it (at most 3 times) and both chunks run again; a seam that finds no
   quiet place is dropped, and its two chunks become one. So a session longer than the overlap never straddles a
   seam: both chunks around it see some of its evidence near the seam, and they grow until one holds it whole.

`detect_split` runs the whole loop in one process (the property test holds it to `detect_sessions`); core.scale.spark
runs the same steps as Spark jobs, one window per task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from core.detect import DetectParams, detect
from core.detect.prepare import prepare
from core.schema import READINGS_SCHEMA, conform, empty_sessions

MIN_OVERLAP = timedelta(hours=6)
MAX_MOVES = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Values whose previous and next reading detection looks up, however far away; "position" is latitude and longitude.
LOOKUP_COLUMNS = ("power_kw", "energy_kwh", "energy_added_kwh", "soc_pct", "odometer_km", "position")
METHOD_COLUMNS = ("power_kw", "energy_kwh", "energy_added_kwh", "soc_pct")
# What planning reads of an entity: presence of the method values, the values that make breaks, and times.
PROFILE_SCHEMA = pl.Schema(
    {
        "entity_id": pl.String(),
        "ts": READINGS_SCHEMA["ts"],
        "has_power": pl.Boolean(),
        "has_meter": pl.Boolean(),
        "has_soc": pl.Boolean(),
        "energy_added_kwh": pl.Float64(),
        "odometer_km": pl.Float64(),
        "latitude": pl.Float64(),
        "longitude": pl.Float64(),
        "is_plugged_in": pl.Boolean(),
    }
)


def reach_us(params: DetectParams) -> int:
    return int(max(params.max_pause_min, params.max_gap_min) * 60_000_000)


def overlap_us(params: DetectParams) -> int:
    return max(int(MIN_OVERLAP / timedelta(microseconds=1)), 4 * reach_us(params))


def to_datetime(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=int(us))


def to_us(value: datetime | None) -> int | None:
    return None if value is None else (value - EPOCH) // timedelta(microseconds=1)


def profile_frame(readings: pl.DataFrame) -> pl.DataFrame:
    """The columns of readings that planning needs (PROFILE_SCHEMA), as core.scale.spark selects them too."""
    r = conform(readings, READINGS_SCHEMA)
    return r.select(
        "entity_id",
        "ts",
        has_power=pl.col("power_kw").is_not_null(),
        has_meter=pl.col("energy_kwh").is_not_null(),
        has_soc=pl.col("soc_pct").is_not_null(),
        energy_added_kwh="energy_added_kwh",
        odometer_km="odometer_km",
        latitude="latitude",
        longitude="longitude",
        is_plugged_in="is_plugged_in",
    )


@dataclass(frozen=True)
class Profile:
    """Where one entity's values and breaks are in time (sorted microseconds since 1970, UTC)."""

    entity_id: str
    ts: np.ndarray
    times: Mapping[str, np.ndarray]  # LOOKUP_COLUMNS -> times of the readings that carry the value
    unplugged: np.ndarray
    plugged: np.ndarray
    breaks: np.ndarray  # unplugs, moves and counter restarts, as prepare() marks them

    @classmethod
    def of(cls, frame: pl.DataFrame) -> Profile:
        """From PROFILE_SCHEMA rows (or full readings) of one entity."""
        if "has_power" not in frame.columns:
            frame = profile_frame(frame)
        frame = frame.cast(dict(PROFILE_SCHEMA)).sort("ts")
        us = pl.col("ts").dt.epoch("us")

        def times(mask: pl.Expr) -> np.ndarray:
            return frame.filter(mask).select(us).to_series().to_numpy()

        prepared = prepare(frame.select("entity_id", "ts", "energy_added_kwh", "odometer_km", "latitude",
                                        "longitude", "is_plugged_in"))  # fmt: skip
        return cls(
            entity_id=frame.item(0, "entity_id") if frame.height else "",
            ts=frame.select(us).to_series().to_numpy(),
            times={
                "power_kw": times(pl.col("has_power")),
                "energy_kwh": times(pl.col("has_meter")),
                "energy_added_kwh": times(pl.col("energy_added_kwh").is_not_null()),
                "soc_pct": times(pl.col("has_soc")),
                "odometer_km": times(pl.col("odometer_km").is_not_null()),
                "position": times(pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null()),
            },
            unplugged=times(pl.col("is_plugged_in") == False),  # noqa: E712
            plugged=times(pl.col("is_plugged_in") == True),  # noqa: E712
            breaks=prepared.filter(pl.col("__event").is_not_null()).select(us).to_series().to_numpy(),
        )


def _before(times: np.ndarray, at: int) -> int | None:
    """The last time strictly before `at`."""
    i = int(np.searchsorted(times, at, side="left"))
    return int(times[i - 1]) if i > 0 else None


def _from(times: np.ndarray, at: int, strictly: bool = False) -> int | None:
    """The first time at or after `at` (strictly after when asked)."""
    i = int(np.searchsorted(times, at, side="right" if strictly else "left"))
    return int(times[i]) if i < len(times) else None


@dataclass(frozen=True)
class Seam:
    at: int  # microseconds since 1970: the later chunk owns sessions starting at or after it
    moves: int = 0


@dataclass(frozen=True)
class Window:
    """One chunk: the sessions it keeps start in [owned_from, owned_to); it reads readings in [read_from, read_to]
    plus `context`, rows that carry only is_plugged_in (ts, plugged). None: no bound on that side."""

    chunk: int
    owned_from: int | None
    owned_to: int | None
    read_from: int | None
    read_to: int | None
    context: tuple[tuple[int, bool], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.owned_from}|{self.owned_to}|{self.read_from}|{self.read_to}"

    def reads(self, ts: pl.Expr) -> pl.Expr:
        """The readings of the window, as a filter on the ts column."""
        inside = pl.lit(True)
        if self.read_from is not None:
            inside = inside & (ts >= to_datetime(self.read_from))
        if self.read_to is not None:
            inside = inside & (ts <= to_datetime(self.read_to))
        return inside


def first_seams(profile: Profile, max_rows: int) -> list[Seam]:
    """Seams that cut the entity into chunks of about `max_rows` readings each (none when it has no more)."""
    n = len(profile.ts)
    if n <= max_rows:
        return []
    chunks = math.ceil(n / max_rows)
    seams: list[Seam] = []
    for i in range(1, chunks):
        at = int(profile.ts[i * n // chunks])
        if at > profile.ts[0] and (not seams or at > seams[-1].at):
            seams.append(Seam(at))
    return seams


def windows(profile: Profile, seams: Sequence[Seam], params: DetectParams) -> list[Window]:
    """The window of every chunk between the seams (rules 1 and 2 of the module docstring)."""
    overlap = overlap_us(params)
    bounds: list[int | None] = [None, *(s.at for s in seams), None]
    out = []
    for chunk, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        read_from = read_to = None
        context: list[tuple[int, bool]] = []
        if lo is not None:
            read_from = lo - overlap
            for times in profile.times.values():
                previous = _before(times, read_from)
                read_from = min(read_from, previous) if previous is not None else read_from
            unplug = _before(profile.unplugged, read_from)
            if unplug is not None:
                context.append((unplug, False))
                plugged = _from(profile.plugged, unplug, strictly=True)
                if plugged is not None and plugged < read_from:
                    context.append((plugged, True))
        if hi is not None:
            read_to = hi + overlap
            for times in profile.times.values():
                following = _from(times, read_to)
                read_to = max(read_to, following) if following is not None else read_to
            for column in METHOD_COLUMNS:
                times = profile.times[column]
                if len(times) and times[-1] < read_to and (read_from is None or times[-1] >= read_from):
                    decider = _from(profile.breaks, int(times[-1]))
                    read_to = max(read_to, decider) if decider is not None else read_to
            unplug = _from(profile.unplugged, read_to, strictly=True)
            if unplug is not None:
                context.append((unplug, False))
        out.append(Window(chunk, lo, hi, read_from, read_to, tuple(context)))
    return out


@dataclass(frozen=True)
class Run:
    """What one window's detection gives: its sessions (SESSIONS_SCHEMA plus `kept`, whether the chunk owns the
    session) and the evidence span (`evidence_from`, `evidence_to`) of every candidate it saw, listed or not."""

    sessions: pl.DataFrame
    spans: pl.DataFrame


def run_window(
    readings: pl.DataFrame,
    window: Window,
    params: DetectParams = DetectParams(),
    capacities: dict[str, float] | None = None,
) -> Run:
    """Detect one window. `readings`: one entity's readings, at least those of the window (others are left out)."""
    frame = conform(readings, READINGS_SCHEMA).filter(window.reads(pl.col("ts")))
    if window.context and frame.height:
        entity_id = frame.item(0, "entity_id")
        context = pl.DataFrame(
            {
                "entity_id": [entity_id] * len(window.context),
                "ts": [to_datetime(t) for t, _ in window.context],
                "is_plugged_in": [p for _, p in window.context],
            }
        )
        frame = pl.concat([frame, conform(context, READINGS_SCHEMA)])
    found = detect(frame, params, capacities)
    start = pl.col("start_utc")
    kept = pl.lit(True)
    if window.owned_from is not None:
        kept = kept & (start >= to_datetime(window.owned_from))
    if window.owned_to is not None:
        kept = kept & (start < to_datetime(window.owned_to))
    return Run(found.sessions.with_columns(kept=kept), widened(found.candidates, frame))


def widened(spans: pl.DataFrame, readings: pl.DataFrame) -> pl.DataFrame:
    """Evidence spans reaching on to the previous and the next reading of the candidate's own value: the power
    method counts half of the intervals on both sides of its first and last charging reading."""
    out = [pl.DataFrame(schema={"evidence_from": READINGS_SCHEMA["ts"], "evidence_to": READINGS_SCHEMA["ts"]})]
    for name in METHOD_COLUMNS:
        own = spans.filter(pl.col("column") == name).select("evidence_from", "evidence_to").with_row_index("__k")
        if own.height == 0:
            continue
        times = readings.filter(pl.col(name).is_not_null()).select(__t=pl.col("ts")).unique().sort("__t")
        before = own.sort("evidence_from").join_asof(
            times, left_on="evidence_from", right_on="__t", strategy="backward", allow_exact_matches=False
        )
        after = own.sort("evidence_to").join_asof(
            times, left_on="evidence_to", right_on="__t", strategy="forward", allow_exact_matches=False
        )
        out.append(
            before.select("__k", evidence_from=pl.coalesce("__t", "evidence_from"))
            .join(after.select("__k", evidence_to=pl.coalesce("__t", "evidence_to")), on="__k")
            .drop("__k")
        )
    return pl.concat(out)


def blocked_seams(seams: Sequence[Seam], spans: Sequence[pl.DataFrame], params: DetectParams) -> dict[int, int]:
    """Seams that the evidence of some candidate comes within reach of, each with the latest end of that evidence
    (microseconds). `spans[k]`: the evidence spans of chunk k's run (Run.spans)."""
    reach = reach_us(params)
    blocked = {}
    for j, seam in enumerate(seams):
        near = (pl.col("evidence_from") <= to_datetime(seam.at + reach)) & (
            pl.col("evidence_to") >= to_datetime(seam.at - reach)
        )
        latest = pl.concat([spans[j].filter(near), spans[j + 1].filter(near)]).get_column("evidence_to").max()
        if latest is not None:
            blocked[j] = to_us(latest)
    return blocked


def move_seams(profile: Profile, seams: Sequence[Seam], blocked: Mapping[int, int], params: DetectParams) -> list[Seam]:
    """Each blocked seam moves just past the sessions that block it; it is dropped after MAX_MOVES moves, or when
    it would overtake the next seam or leave the data (rule 3)."""
    reach = reach_us(params)
    out = []
    for j, seam in enumerate(seams):
        if j in blocked:
            limit = seams[j + 1].at if j + 1 < len(seams) else int(profile.ts[-1]) + 1
            seam = Seam(blocked[j] + reach + 1, seam.moves + 1)
            if seam.moves > MAX_MOVES or seam.at >= limit:
                continue
        out.append(seam)
    return out


def detect_split(
    readings: pl.DataFrame,
    params: DetectParams = DetectParams(),
    capacities: dict[str, float] | None = None,
    max_rows: int = 5_000_000,
) -> pl.DataFrame:
    """`detect_sessions`, with every entity of more than `max_rows` readings detected in chunks (see above)."""
    readings = conform(readings, READINGS_SCHEMA)
    parts = []
    for (entity_id,), entity in readings.group_by("entity_id", maintain_order=True):
        caps = {entity_id: capacities[entity_id]} if capacities and entity_id in capacities else None
        parts.append(detect_entity_split(entity.sort("ts"), params, caps, max_rows))
    if not parts:
        return empty_sessions()
    return pl.concat(parts).sort("entity_id", "start_utc")


def detect_entity_split(
    readings: pl.DataFrame, params: DetectParams, capacities: dict[str, float] | None, max_rows: int
) -> pl.DataFrame:
    """One entity's sessions through chunks and seams, in one process."""
    profile = Profile.of(readings)
    seams = first_seams(profile, max_rows)
    done: dict[str, Run] = {}
    while True:
        runs = []
        for window in windows(profile, seams, params):
            if window.key not in done:
                done[window.key] = run_window(readings, window, params, capacities)
            runs.append(done[window.key])
        blocked = blocked_seams(seams, [r.spans for r in runs], params)
        if not blocked:
            return pl.concat([r.sessions.filter("kept").drop("kept") for r in runs]).sort("start_utc")
        seams = move_seams(profile, seams, blocked, params)
