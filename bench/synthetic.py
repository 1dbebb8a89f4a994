"""A second fleet with known truth for bench/quality.py, written apart from core.demo and from the detector.

Every entity lives on a timeline of blocks (parked, charging, driving), each with its grid power, the power into or
out of the battery and the speed; a logger samples that timeline at irregular instants, 1 to 15 minutes apart
(each entity its own pace, every step varied by +-30 % and by whole random seconds). Truth is read off the blocks,
never off the readings:

- a session runs from the first to the last instant of non-zero grid power; a pause of 3-10 min stays inside it, a
  pause of 40-90 min (still plugged in) makes two sessions; nothing in between occurs;
- its energy is the exact integral of the grid power (what a meter at the charger measures), and the battery gets
  that less the entity's charging losses (5-15 %); SoC-only sessions are measured against the battery energy;
- a session counts as complete when it ended more than an hour before the data does.

The kinds: charge points with a 1 Wh energy register (reset to 0 now and then while idle, never inside a session)
and power; charge points with power only; EVs with power, integer SoC, odometer and position (home and work
charging, public DC fast charging, regeneration on the road, which raises the SoC while driving); EVs with integer
SoC, odometer and position only. The readings also hold logger outages of 20-50 min, exact duplicate rows, rows out
of order, the DST change of 2025-03-30 (plug-in times follow local time) and sessions still running at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

START = datetime(2025, 3, 10, tzinfo=UTC)
DAYS = 42  # to 2025-04-21: the DST change of 2025-03-30 lies inside
TZ = ZoneInfo("Europe/Brussels")
END_S = DAYS * 86_400
KINDS = ("cp-meter", "cp-power", "ev-power", "ev-soc")
METHOD = {"cp-meter": "meter", "cp-power": "power", "ev-power": "power", "ev-soc": "soc"}
KM_PER_DEG = 111.195


@dataclass(frozen=True)
class Fleet:
    readings: pl.DataFrame  # canonical columns (core.schema), with duplicates and rows out of order
    truth: pl.DataFrame  # entity_id, start_utc, end_utc, grid_kwh, battery_kwh, method, complete
    capacities: dict[str, float]


@dataclass
class _Blocks:
    """Consecutive blocks [t0, t1) in seconds from START: grid kW, battery kW, speed km/h, position, plugged in."""

    t0: list[float]
    t1: list[float]
    grid: list[float]
    battery: list[float]
    speed: list[float]
    lat: list[float]
    lon: list[float]
    plugged: list[bool]
    level0: float = 0.0  # battery kWh at the start (EVs)

    @classmethod
    def empty(cls) -> _Blocks:
        return cls([], [], [], [], [], [], [], [])

    def add(self, t0, t1, grid=0.0, battery=0.0, speed=0.0, where=(np.nan, np.nan), plugged=False) -> None:
        if t1 <= t0:
            return
        if self.t1 and t0 > self.t1[-1]:  # fill the time in between as parked where the last block was
            self.add(self.t1[-1], t0, where=(self.lat[-1], self.lon[-1]))
        self.t0.append(t0), self.t1.append(t1), self.grid.append(grid), self.battery.append(battery)
        self.speed.append(speed), self.lat.append(where[0]), self.lon.append(where[1]), self.plugged.append(plugged)

    @property
    def end(self) -> float:
        return self.t1[-1] if self.t1 else 0.0


def _local_s(day: int, hour: float) -> float:
    """Seconds from START of a local wall-clock time on day `day` (plug-in habits follow local time over DST)."""
    local = (START + timedelta(days=day)).astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    at = local + timedelta(hours=hour)
    return (at.astimezone(UTC) - START).total_seconds()


def _charge(b: _Blocks, rng, t: float, kwh: float, kw: float, loss: float, where, taper: bool) -> tuple[float, list]:
    """Blocks of one plug-in delivering `kwh` from the grid at up to `kw` (the last fifth at falling power when
    `taper`), with a short pause (a quarter of them) or a long one (a tenth). Returns the end time and the sessions
    [(start, end, grid kWh)] as truth sees them."""
    steps = [(kwh * (0.8 if taper else 1.0) / kw * 3600, kw)]
    if taper:  # ten steps of equal energy at 97 % down to 43 % of the power
        powers = [kw * (1 - 0.6 * (i + 0.5) / 10) for i in range(10)]
        steps += [(kwh * 0.02 / p * 3600, p) for p in powers]
    draw = rng.random()
    pause_s = rng.uniform(180, 600) if draw < 0.25 else rng.uniform(2400, 5400) if draw < 0.35 else 0.0
    cut = rng.uniform(0.3, 0.7) * sum(d for d, _ in steps) if pause_s else None
    sessions, start, done, elapsed = [], t, 0.0, 0.0
    for duration, power in steps:
        if cut is not None and elapsed <= cut < elapsed + duration:
            first = cut - elapsed
            b.add(t, t + first, power, power * (1 - loss), where=where, plugged=True)
            done += power * first / 3600
            t += first
            b.add(t, t + pause_s, where=where, plugged=True)
            if pause_s > 900:  # a long pause: two sessions
                sessions.append((start, t, done))
                start, done = t + pause_s, 0.0
            t += pause_s
            duration -= first
            elapsed += first
            cut = None
        b.add(t, t + duration, power, power * (1 - loss), where=where, plugged=True)
        done += power * duration / 3600
        t += duration
        elapsed += duration
    sessions.append((start, t, done))
    return t, sessions


def _ev(rng) -> tuple[_Blocks, list, float, float]:
    capacity = float(rng.choice([40.0, 58.0, 64.0, 77.0, 82.0]))
    loss = rng.uniform(0.05, 0.15)
    home = (50.6 + rng.uniform(0, 0.6), 3.9 + rng.uniform(0, 1.2))
    work = (50.84 + rng.uniform(0, 0.02), 4.34 + rng.uniform(0, 0.03))
    fast = (50.75, 4.57)
    km_home_work = max(8.0, KM_PER_DEG * np.hypot(home[0] - work[0], (home[1] - work[1]) * 0.63) * 1.3)
    use_kwh_km = rng.uniform(0.15, 0.2)
    kw_home = float(rng.choice([3.7, 7.4, 11.0]))
    b, sessions = _Blocks.empty(), []
    level = initial = capacity * rng.uniform(0.4, 0.8)  # battery kWh
    b.add(0, _local_s(0, 7), where=home)
    for day in range(DAYS):

        def drive(t: float, frm, to, km: float) -> float:
            nonlocal level
            speed = rng.uniform(40, 80)
            duration = km / speed * 3600
            regen = rng.random() < 0.4 and duration > 900
            if regen:  # a long descent: the battery gains while the car moves
                a = t + duration * rng.uniform(0.3, 0.6)
                r = rng.uniform(120, 240)
                b.add(t, a, 0.0, -use_kwh_km * speed, speed, frm)
                b.add(a, a + r, 0.0, 15.0, speed, frm)
                b.add(a + r, t + duration + r, 0.0, -use_kwh_km * speed, speed, to)
                level += 15.0 * r / 3600 - use_kwh_km * km
                return t + duration + r
            b.add(t, t + duration, 0.0, -use_kwh_km * speed, speed, frm)
            level -= use_kwh_km * km
            return t + duration

        leave = max(b.end, _local_s(day, rng.uniform(6.5, 8.5)))
        b.add(b.end, leave, where=home)
        t = drive(leave, home, work, km_home_work)
        if rng.random() < 0.15 and level < capacity * 0.5:  # a DC stop on the way
            t = drive(t, home, fast, 5.0)
            kwh = min(capacity * 0.8 - level, rng.uniform(15, 35)) / (1 - 0.04)
            if kwh > 3:
                t, found = _charge(b, rng, t + 60, kwh, rng.choice([50.0, 75.0]), 0.04, fast, taper=False)
                sessions += [(s, e, k, k * 0.96) for s, e, k in found]
                level += kwh * 0.96
            t = drive(t + rng.uniform(120, 600), fast, work, 5.0)
        home_at = max(t + 3600, _local_s(day, rng.uniform(16.5, 19.0)))
        b.add(t, home_at - 1, where=work)
        t = drive(home_at - 1, work, home, km_home_work)
        departure = _local_s(day + 1, 6.5)  # the earliest the car leaves next morning: charging is over by then
        if (rng.random() < 0.85 or level < capacity * 0.4) and level < capacity * 0.9:
            target = capacity * rng.uniform(0.8, 1.0)
            plug = t + rng.uniform(60, 900)
            # Within the night, with room for a long pause and the slower taper.
            kwh = min((target - level) / (1 - loss), kw_home * ((departure - plug) / 3600 - 1.6) * 0.85)
            if kwh > 1:
                b.add(t, plug, where=home)
                t, found = _charge(b, rng, plug, kwh, kw_home, loss, home, taper=target > capacity * 0.85)
                sessions += [(s, e, k, k * (1 - loss)) for s, e, k in found]
                level += kwh * (1 - loss)
        if b.end >= END_S:
            break
    b.level0 = initial
    return b, sessions, capacity, loss


def _cp(rng) -> tuple[_Blocks, list, float]:
    kw = float(rng.choice([7.4, 11.0, 22.0]))
    b, sessions = _Blocks.empty(), []
    b.add(0, rng.uniform(3600, 20_000))
    for day in range(DAYS):
        t = max(b.end, _local_s(day, rng.uniform(6.0, 9.0)))
        for _ in range(int(rng.integers(1, 4))):
            if t > _local_s(day, 21.0):
                break
            plug = t + rng.uniform(2700, 4 * 3600)
            b.add(t, plug)
            kwh = rng.uniform(8, 45)
            end, found = _charge(b, rng, plug + rng.uniform(10, 120), kwh, kw, 0.0, (np.nan, np.nan), taper=False)
            sessions += [(s, e, k, None) for s, e, k in found]
            t = end + rng.uniform(0, 2 * 3600)
            b.add(end, t, plugged=True)  # still plugged in, not charging
    return b, sessions, kw


def _sample(rng, b: _Blocks, step_min: float) -> np.ndarray:
    """The logger's instants: its own pace, varied by +-30 % and whole random seconds; every 60-120 s while fast
    charging (at 40 kW or more, as vehicles report then); outages of 20-50 min (a few a week)."""
    n = int(END_S / (step_min * 60) * 1.4) + 10
    steps = step_min * 60 * rng.uniform(0.7, 1.3, n) + rng.integers(0, 60, n)
    t = np.cumsum(steps) + rng.uniform(0, 60)
    fast = [(a, z) for a, z, kw in zip(b.t0, b.t1, b.grid, strict=True) if kw >= 40]
    extra: list[np.ndarray] = []
    for a, z in fast:
        dense = a + np.cumsum(rng.uniform(60, 120, int((z - a) / 60) + 2))
        extra.append(dense[dense < z])
    t = np.sort(np.concatenate([t, *extra]))
    t = t[t < min(END_S, b.end)]
    for _ in range(int(DAYS * 0.3)):  # logger outages of 20-50 min
        a = rng.uniform(0, END_S)
        t = t[(t < a) | (t > a + rng.uniform(1200, 3000))]
    return np.floor(t)  # whole seconds


def _frame(name: str, kind: str, b: _Blocks, t: np.ndarray, rng, capacity: float | None, loss: float | None,
           resets: bool) -> pl.DataFrame:  # fmt: skip
    t0, t1 = np.array(b.t0), np.array(b.t1)
    grid, battery, speed = np.array(b.grid), np.array(b.battery), np.array(b.speed)
    i = np.clip(np.searchsorted(t0, t, side="right") - 1, 0, len(t0) - 1)
    into = t - t0[i]
    cum = lambda rate: np.concatenate([[0.0], np.cumsum(rate * (t1 - t0) / 3600)])  # noqa: E731
    grid_kwh = cum(grid)[i] + grid[i] * into / 3600
    columns: dict[str, object] = {"entity_id": name, "ts": t}
    if kind.startswith("cp"):
        columns["power_kw"] = np.round(grid[i] * rng.uniform(0.995, 1.005, t.size), 3)
        if kind == "cp-meter":
            register = grid_kwh.copy()
            # Resets to 0 at a reading with no energy since the one before, so no session loses any.
            idle = np.flatnonzero((grid[i][1:] == 0) & (np.diff(grid_kwh) == 0)) + 1
            if resets and idle.size:
                for at in np.sort(rng.choice(idle, size=min(3, idle.size), replace=False)):
                    register[at:] -= register[at]
            columns["energy_kwh"] = np.round(register, 3)
        columns["is_plugged_in"] = np.array(b.plugged)[i] | (grid[i] > 0)
    else:
        level = b.level0 + cum(battery)[i] + battery[i] * into / 3600
        columns["soc_pct"] = np.clip(np.floor(level / capacity * 100), 0, 100)  # integer, as cars report it
        odometer = 1000 + cum(speed)[i] + speed[i] * into / 3600
        columns["odometer_km"] = np.round(odometer, 1)
        columns["latitude"] = np.array(b.lat)[i] + rng.normal(0, 0.00002, t.size)
        columns["longitude"] = np.array(b.lon)[i] + rng.normal(0, 0.00003, t.size)
        if kind == "ev-power":
            columns["power_kw"] = np.round(grid[i] * rng.uniform(0.99, 1.01, t.size), 2)
    frame = pl.DataFrame(columns).with_columns(
        ts=(pl.lit(START) + pl.duration(seconds=pl.col("ts"))).cast(pl.Datetime("us", "UTC"))
    )
    return frame


def generate(entities: int = 240, seed: int = 11) -> Fleet:
    from core.schema import READINGS_SCHEMA, conform

    frames, truth, capacities = [], [], {}
    for n in range(entities):
        kind = KINDS[n % len(KINDS)]
        name = f"{kind}-{n:03d}"
        erng = np.random.default_rng([seed, n])
        if kind.startswith("ev"):
            blocks, sessions, capacity, loss = _ev(erng)
            capacities[name] = capacity
        else:
            blocks, sessions, _ = _cp(erng)
            capacity = loss = None
        t = _sample(erng, blocks, float(erng.uniform(1, 15)))
        frames.append(_frame(name, kind, blocks, t, erng, capacity, loss, resets=kind == "cp-meter"))
        last = t.max() if t.size else 0
        for s, e, kwh, battery in sessions:
            truth.append(
                (
                    name,
                    float(s),
                    float(e),
                    float(kwh),
                    float(battery if battery is not None else kwh),
                    METHOD[kind],
                    bool(e < last - 3600),
                )
            )
    readings = conform(pl.concat(frames, how="diagonal_relaxed"), READINGS_SCHEMA)
    duplicates = readings.sample(fraction=0.003, seed=seed)
    readings = pl.concat([readings, duplicates]).sample(fraction=1.0, shuffle=True, seed=seed)  # rows out of order
    base = pl.lit(START)
    truth_frame = pl.DataFrame(
        truth, schema=["entity_id", "s", "e", "grid_kwh", "battery_kwh", "method", "complete"], orient="row"
    ).select(
        "entity_id",
        start_utc=(base + pl.duration(seconds=pl.col("s"))).cast(pl.Datetime("us", "UTC")),
        end_utc=(base + pl.duration(seconds=pl.col("e"))).cast(pl.Datetime("us", "UTC")),
        grid_kwh="grid_kwh",
        battery_kwh="battery_kwh",
        method="method",
        complete="complete",
    )
    return Fleet(readings=readings, truth=truth_frame, capacities=capacities)
