"""A deterministic demo fleet (readings, entities, places, tariff) with the ground-truth charge sessions behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from core.schema import ENTITIES_SCHEMA, READINGS_SCHEMA, UTC_TS, conform

PERIOD_START = datetime(2025, 2, 1, tzinfo=UTC)
PERIOD_END = datetime(2025, 4, 2, tzinfo=UTC)
FLEET_TIMEZONE = "Europe/Brussels"

OFFICE = (50.8466, 4.3572)
HIGHWAY = (50.7536, 4.5736)  # the DC site where the fleet's own EVs fast-charge (not cp-04)

TRUTH_SCHEMA = pl.Schema(
    {
        "entity_id": pl.String(),
        "start_utc": UTC_TS,
        "end_utc": UTC_TS,
        "energy_kwh": pl.Float64(),
        "battery_energy_kwh": pl.Float64(),
        "method": pl.String(),
        "kind": pl.String(),
        "complete": pl.Boolean(),
    }
)


@dataclass(frozen=True)
class DemoFleet:
    """The fleet as an importer would hand it over, plus the truth a detector is measured against.

    Truth conventions (columns: TRUTH_SCHEMA): `start_utc`/`end_utc` bound the instants of non-zero grid
    power; pauses of 3-10 min stay inside a session, pauses of 30 min or more split it, and nothing in between
    occurs. `energy_kwh` is the exact integral of the grid power, except for charge points, where it is the
    rise of their 1 Wh register (within 0.001 kWh of the integral); `battery_energy_kwh` is what reached the
    battery. The one incomplete session (ev-01, still charging at PERIOD_END) ends at PERIOD_END with the
    energy taken until then. `energy_added_kwh` restarts at each plug-in, so across a long pause it keeps
    counting through two truth sessions.
    """

    entities: pl.DataFrame
    readings: pl.DataFrame
    truth: pl.DataFrame
    locations: list[dict]
    tariff: dict
    true_capacity_kwh: dict[str, float]
    display_timezone: str = FLEET_TIMEZONE


_TZ = ZoneInfo(FLEET_TIMEZONE)
_END = int((PERIOD_END - PERIOD_START).total_seconds())
_START_US = int(PERIOD_START.timestamp()) * 1_000_000
_DAYS = tuple(PERIOD_START.date() + timedelta(days=i) for i in range((PERIOD_END - PERIOD_START).days))
_DST_DAYS = (date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31))

# Pauses are either clearly short (stay inside under max_pause_min = 15) or clearly long (split), never
# in between, and sessions of one entity are at least as far apart, so the truth is never ambiguous.
_SHORT_PAUSE_S = (180, 600)
_LONG_PAUSE_S = (1800, 5400)
_SESSION_GAP_S = 1800
# Every complete session ends this long before PERIOD_END, so the data itself shows that it ended.
_QUIET_END_S = 1800
_KM_PER_DEG = 111.195
_ROAD_FACTOR = 1.3

_CUSTOMERS = (
    (50.8798, 4.7005),
    (51.0259, 4.4776),
    (51.2194, 4.4025),
    (51.0543, 3.7174),
    (50.4674, 4.8720),
    (50.7171, 4.6114),
    (50.4108, 4.4446),
    (50.9378, 4.0403),
)

Block = tuple[int, int, float]  # [start, end) in seconds since PERIOD_START, constant grid power in kW


@dataclass(frozen=True)
class _Car:
    entity_id: str
    name: str
    brand: str
    capacity_kwh: float
    capacity_set: bool
    home_kw: float
    dc_max_kw: float
    kwh_per_km: float
    data: str  # "full", "soc" or "position": which columns its readings carry
    p_work: float = 0.35
    p_trip: float = 0.2


_CARS = (
    # Winter consumption (kWh/km), so that most nights need a charge.
    _Car("ev-01", "Company car 1", "Tesla", 60.0, True, 7.4, 150.0, 0.19, "full"),
    _Car("ev-02", "Company car 2", "Kia", 77.0, True, 11.0, 150.0, 0.21, "full"),
    _Car("ev-03", "Company car 3", "Volkswagen", 82.0, True, 11.0, 135.0, 0.22, "full"),
    _Car("ev-04", "Company car 4", "Renault", 40.0, True, 7.4, 50.0, 0.18, "full", p_work=0.25, p_trip=0.12),
    _Car("ev-05", "Company car 5", "Hyundai", 58.0, False, 7.4, 75.0, 0.2, "soc", p_work=0.25, p_trip=0.25),
    _Car("ev-06", "Delivery van", "Ford", 68.0, True, 11.0, 115.0, 0.28, "position"),
)
# These two always charge at home on the evenings around the DST change, so every seed exercises it.
_DST_CARS = ("ev-01", "ev-02")


@dataclass(frozen=True)
class _ChargePoint:
    entity_id: str
    name: str
    brand: str
    kind: str


_CHARGE_POINTS = (
    _ChargePoint("cp-01", "Residential wallbox", "Wallbox", "home"),
    _ChargePoint("cp-02", "Office charger 11 kW", "Alfen", "work"),
    _ChargePoint("cp-03", "Office charger 22 kW", "Alfen", "work"),
    _ChargePoint("cp-04", "Highway fast charger", "Kempower", "fast"),
)
_CP_03_RESET = date(2025, 3, 1)  # a Saturday: no office sessions, so the meter swap is between sessions


def _at(day: date, hour: float) -> int:
    """Seconds since PERIOD_START of a local wall-clock time (hours past local midnight, may pass 24)."""
    local = datetime(day.year, day.month, day.day, tzinfo=_TZ) + timedelta(hours=hour)
    return round((local - PERIOD_START).total_seconds())


def _local(t: int) -> datetime:
    return (PERIOD_START + timedelta(seconds=int(t))).astimezone(_TZ)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = (b[0] - a[0]) * _KM_PER_DEG
    east = (b[1] - a[1]) * _KM_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(north, east)


def _shift(p: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    return (
        p[0] + north_m / 1000 / _KM_PER_DEG,
        p[1] + east_m / 1000 / (_KM_PER_DEG * math.cos(math.radians(p[0]))),
    )


def _near(rng: np.random.Generator, p: tuple[float, float], radius_m: float) -> tuple[float, float]:
    r = radius_m * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    return _shift(p, r * math.cos(angle), r * math.sin(angle))


def _integral(t: np.ndarray, a: np.ndarray, b: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Exact integral up to each t of a rate that is rate[k] on [a[k], b[k]) and zero elsewhere."""
    if len(a) == 0:
        return np.zeros(len(t))
    width = (b - a).astype(np.float64)
    before = np.concatenate(([0.0], np.cumsum(rate * width)))
    k = np.searchsorted(a, t, side="right") - 1
    kk = np.clip(k, 0, None)
    return np.where(k >= 0, before[kk] + rate[kk] * np.clip(t - a[kk], 0, width[kk]), 0.0)


def _value_at(t: np.ndarray, a: np.ndarray, b: np.ndarray, value: np.ndarray) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(len(t))
    k = np.searchsorted(a, t, side="right") - 1
    kk = np.clip(k, 0, None)
    return np.where((k >= 0) & (t < b[kk]), value[kk], 0.0)


def _inside(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(len(t), dtype=bool)
    k = np.searchsorted(a, t, side="right") - 1
    return (k >= 0) & (t < b[np.clip(k, 0, None)])


def _ac_blocks(rng: np.random.Generator, start: int, kwh: float, kw: float, pauses: str) -> list[Block]:
    """One AC charge of `kwh` at constant power, maybe interrupted once (pauses: "none", "short" or "any")."""
    duration = max(600, round(kwh / kw * 3600))
    roll = rng.random()
    if pauses != "none" and roll < 0.2 and duration >= 3600:
        # Only charges of an hour or more get a short pause, so sampling around it costs little energy accuracy.
        pause = int(rng.integers(_SHORT_PAUSE_S[0], _SHORT_PAUSE_S[1] + 1))
    elif pauses == "any" and 0.2 <= roll < 0.3 and duration >= 2400:
        pause = int(rng.integers(_LONG_PAUSE_S[0], _LONG_PAUSE_S[1] + 1))
    else:
        return [(start, start + duration, kw)]
    cut = start + int(duration * rng.uniform(0.25, 0.75))
    return [(start, cut, kw), (cut + pause, start + duration + pause, kw)]


def _dc_blocks(
    start: int, soc: float, target: float, capacity: float, efficiency: float, max_kw: float, max_s: int
) -> list[Block]:
    """A DC charge in one-minute steps whose power tapers above 80 % SoC, until `target` or `max_s`."""
    blocks: list[Block] = []
    t = start
    while soc < target - 1e-9 and t - start < max_s:
        kw = round(max_kw * max(0.2, min(1.0, 1 - (soc - 80) / 25)), 1)
        to_target = math.ceil((target - soc) / 100 * capacity / efficiency / kw * 3600)
        step = max(1, min(60, max_s - (t - start), to_target))
        soc += kw * step / 3600 * efficiency / capacity * 100
        if blocks and blocks[-1][2] == kw:
            blocks[-1] = (blocks[-1][0], t + step, kw)
        else:
            blocks.append((t, t + step, kw))
        t += step
    return blocks


def _truncate(blocks: list[Block], cutoff: int) -> list[Block]:
    kept = [(a, min(b, cutoff), kw) for a, b, kw in blocks if a < cutoff]
    return [blk for blk in kept if blk[1] - blk[0] >= 300]


def _split(blocks: list[Block]) -> list[list[Block]]:
    """The truth sessions in a run of blocks: a pause of 30 min or more starts a new one."""
    groups = [[blocks[0]]]
    for blk in blocks[1:]:
        if blk[0] - groups[-1][-1][1] >= _LONG_PAUSE_S[0]:
            groups.append([blk])
        else:
            groups[-1].append(blk)
    return groups


def _kwh(blocks: list[Block], until: int) -> float:
    return sum(kw * (min(b, until) - a) for a, b, kw in blocks if a < until) / 3600


def _times(rng: np.random.Generator, spans: list[tuple[int, int, float, float]]) -> np.ndarray:
    """Irregular whole-second sample instants: each span (start, end, min step, max step) at its own cadence."""
    parts = [np.zeros(0)]
    for a, b, lo, hi in spans:
        a, b = max(a, 0), min(b, _END)
        if b <= a:
            continue
        steps = rng.uniform(lo, hi, int((b - a) / lo) + 2)
        times = a + rng.uniform(0, lo) + np.concatenate(([0.0], np.cumsum(steps[:-1])))
        parts.append(times[times < b])
    t = np.unique(np.floor(np.concatenate(parts)).astype(np.int64))
    return t[(t >= 0) & (t < _END)]


def _fill(busy: list[tuple[int, int, float, float]], quiet: tuple[float, float]) -> list[tuple[int, int, float, float]]:
    spans, cursor = [], 0
    for a, b, lo, hi in sorted(busy):
        if a > cursor:
            spans.append((cursor, a, *quiet))
        spans.append((a, b, lo, hi))
        cursor = max(cursor, b)
    if cursor < _END:
        spans.append((cursor, _END, *quiet))
    return spans


def _ts(t: np.ndarray) -> pl.Series:
    return pl.Series("ts", t.astype(np.int64) * 1_000_000 + _START_US, dtype=pl.Int64).cast(UTC_TS)


@dataclass
class _Timeline:
    """Everything that happened to one vehicle; readings are sampled from it and the truth is read off it."""

    place: tuple[float, float]
    battery_kwh: float
    start_place: tuple[float, float] = (0.0, 0.0)
    start_battery_kwh: float = 0.0
    t: int = 0
    blocks: list[Block] = field(default_factory=list)
    plugs: list[tuple[int, int]] = field(default_factory=list)
    drives: list[tuple[int, int, float, float, float, float, float, float]] = field(default_factory=list)
    sessions: list[tuple[int, int, float, str, bool]] = field(default_factory=list)
    last_end: int = -_SESSION_GAP_S


class _Driver:
    """Lives one car's 60 days in local time: commutes, trips, weekends, and where it plugs in."""

    def __init__(self, rng: np.random.Generator, car: _Car, home: tuple[float, float], efficiency: float):
        self.rng, self.car, self.home, self.efficiency = rng, car, home, efficiency
        spot = _near(rng, home, 15)
        battery = car.capacity_kwh * rng.uniform(0.55, 0.9)
        self.tl = _Timeline(place=spot, battery_kwh=battery, start_place=spot, start_battery_kwh=battery)
        # The SoC-only car must show every charge as a clear rise (>= 10 whole percent).
        self.min_battery_kwh = 0.12 * car.capacity_kwh if car.data == "soc" else 1.0

    @property
    def soc(self) -> float:
        return 100 * self.tl.battery_kwh / self.car.capacity_kwh

    def drive(self, dest: tuple[float, float], depart: int) -> None:
        tl, rng = self.tl, self.rng
        depart = max(int(depart), tl.t + 120)
        km = _km(tl.place, dest) * _ROAD_FACTOR
        speed = (32 if km < 15 else 60 if km < 40 else 90) * rng.uniform(0.85, 1.15)
        duration = max(180, round(km / speed * 3600))
        kwh = km * self.car.kwh_per_km * rng.uniform(0.9, 1.1)
        tl.drives.append((depart, depart + duration, *tl.place, *dest, km, kwh))
        tl.battery_kwh -= kwh
        tl.place = dest
        tl.t = depart + duration

    def charge(self, blocks: list[Block], plug_in: int, unplug: int, kind: str, final: bool = False) -> bool:
        tl = self.tl
        if not blocks or plug_in < tl.t or blocks[0][0] - tl.last_end < _SESSION_GAP_S:
            return False
        if not final and unplug > _END - _QUIET_END_S:
            return False
        groups = _split(blocks)
        until = _END if final else blocks[-1][1]
        energies = [_kwh(g, until) for g in groups]
        if min(energies) * self.efficiency < self.min_battery_kwh:
            return False
        tl.blocks += blocks
        tl.plugs.append((plug_in, unplug))
        for g, kwh in zip(groups, energies, strict=True):
            tl.sessions.append((g[0][0], min(g[-1][1], _END), kwh, kind, g[-1][1] < _END))
        tl.battery_kwh += self.efficiency * sum(energies)
        tl.t, tl.last_end = unplug, blocks[-1][1]
        return True

    def ac_charge(
        self, kind: str, start: int, kw: float, target: float, cutoff: int | None, pauses: str, final: bool = False
    ) -> bool:
        rng, tl = self.rng, self.tl
        start = max(start, tl.t + 60)
        plug_in = start - int(rng.integers(120, 1500)) if rng.random() < 0.5 else start
        plug_in = max(plug_in, tl.t + 30)
        kwh = (target / 100 * self.car.capacity_kwh - tl.battery_kwh) / self.efficiency
        if kwh <= 0:
            return False
        blocks = _ac_blocks(rng, start, kwh, kw, pauses)
        if cutoff is not None:
            blocks = _truncate(blocks, cutoff)
        if not blocks:
            return False
        end = blocks[-1][1]
        unplug = end + int(rng.integers(120, 2400)) if rng.random() < 0.5 else end
        if cutoff is not None:
            unplug = max(end, min(unplug, cutoff + 1800))
        return self.charge(blocks, plug_in, unplug, kind, final)

    def dc_charge(self, target: float) -> bool:
        rng, tl, car = self.rng, self.tl, self.car
        plug_in = tl.t + int(rng.integers(60, 300))
        start = plug_in + int(rng.integers(30, 120))
        max_kw = max(50.0, round(min(car.dc_max_kw, 150.0) * rng.uniform(0.85, 1.0), 1))
        blocks = _dc_blocks(start, self.soc, target, car.capacity_kwh, self.efficiency, max_kw, 3600)
        if not blocks:
            return False
        unplug = blocks[-1][1] + int(rng.integers(30, 600))
        return self.charge(blocks, plug_in, unplug, "fast")

    def office_day(self, day: date, depart: int) -> None:
        rng = self.rng
        self.drive(_near(rng, OFFICE, 60), depart)
        leave = max(_at(day, rng.uniform(16.5, 18.0)), self.tl.t + 3 * 3600)
        if rng.random() < 0.3:
            # A customer visit at lunchtime, back to the office afterwards.
            bearing, km = rng.uniform(0, 2 * math.pi), rng.uniform(8, 30)
            spot = _shift(OFFICE, km * 1000 * math.cos(bearing), km * 1000 * math.sin(bearing))
            self.drive(spot, _at(day, rng.uniform(11, 13)))
            self.drive(_near(rng, OFFICE, 60), self.tl.t + int(rng.uniform(0.75, 2) * 3600))
        if self.soc < 35 or (rng.random() < self.car.p_work and self.soc < 88):
            start = self.tl.t + int(rng.integers(60, 600))
            pauses = "short" if self.car.data == "soc" else "any"
            self.ac_charge("work", start, 11.0, rng.uniform(80, 90), leave - 2400, pauses)
        self.drive(_near(rng, self.home, 15), leave)

    def trip_day(self, depart: int, final: bool) -> None:
        """A customer far away, by the highway both ways: the DC site is passed on the way out and back."""
        rng, car = self.rng, self.car
        reserve = 0.15 * car.capacity_kwh

        def leg(a: tuple[float, float], b: tuple[float, float]) -> float:
            return _km(a, b) * _ROAD_FACTOR * car.kwh_per_km * 1.15

        feasible = [c for c in _CUSTOMERS if 2 * leg(HIGHWAY, c) + reserve <= 0.8 * car.capacity_kwh]
        if final:
            dest = max(feasible, key=lambda c: leg(HIGHWAY, c))
        else:
            dest = feasible[int(rng.integers(len(feasible)))]
        self.drive(_near(rng, HIGHWAY, 30), depart)
        need = 2 * leg(HIGHWAY, dest) + reserve
        if self.tl.battery_kwh < need:
            self.dc_charge(min(95.0, max(80.0, 100 * need / car.capacity_kwh + 3)))
        self.drive(_near(rng, dest, 50), self.tl.t + int(rng.integers(60, 600)))
        self.drive(_near(rng, HIGHWAY, 30), self.tl.t + int(rng.uniform(1.5, 4.0) * 3600))
        need = leg(HIGHWAY, self.home) + reserve
        if self.tl.battery_kwh < need:
            self.dc_charge(100 * need / car.capacity_kwh + 5 if final else rng.uniform(80, 90))
        elif not final and self.soc < 70 and rng.random() < 0.7:
            self.dc_charge(rng.uniform(80, 90))
        self.drive(_near(rng, self.home, 15), self.tl.t + int(rng.integers(60, 600)))

    def leisure_day(self, day: date) -> None:
        rng = self.rng
        bearing, km = rng.uniform(0, 2 * math.pi), rng.uniform(5, 25)
        spot = _shift(self.home, km * 1000 * math.cos(bearing), km * 1000 * math.sin(bearing))
        self.drive(spot, _at(day, rng.uniform(10, 14)))
        leave = self.tl.t + int(rng.uniform(1, 3.5) * 3600)
        if rng.random() < 0.3 and self.soc < 85:
            start = self.tl.t + int(rng.integers(120, 600))
            pauses = "short" if self.car.data == "soc" else "any"
            self.ac_charge("public", start, 11.0, rng.uniform(90, 100), leave - 600, pauses)
        self.drive(_near(rng, self.home, 15), leave)

    def home_evening(self, day: date, forced: bool, final: bool) -> None:
        rng, car = self.rng, self.car
        p = 0.8 if day.weekday() < 5 else 0.45
        if not (forced or final or self.soc < 45 or rng.random() < p):
            return
        target = 100.0 if forced or final else float(rng.choice([85, 90, 90, 90, 100]))
        # Charging starts in the 18:00-23:00 local window, whatever the UTC offset of the day.
        start = max(_at(day, (22 if final else 18) + rng.uniform(0, 0.6 if final else 4.5)), self.tl.t + 300)
        if _local(start).hour >= 23 or _local(start).date() != day:
            return
        kw = car.home_kw
        if final:
            # The last charge must still run at PERIOD_END; a lower charge current makes sure it does.
            kwh = (target / 100 * car.capacity_kwh - self.tl.battery_kwh) / self.efficiency
            kw = min(kw, max(2.3, math.floor(kwh * 3600 / (_END + 3600 - start) * 10) / 10))
        pauses = "none" if final else "short" if car.data == "soc" else "any"
        cutoff = None if final else _at(day, 24 + 6.75)
        self.ac_charge("home", start, kw, target, cutoff, pauses, final)

    def live(self, final: bool) -> _Timeline:
        rng = self.rng
        for day in _DAYS:
            last = final and day == _DAYS[-1]
            forced = self.car.entity_id in _DST_CARS and day in _DST_DAYS
            if day.weekday() < 5:
                depart = _at(day, rng.uniform(7.25, 8.75))
                if last or rng.random() < self.car.p_trip:
                    self.trip_day(depart, last)
                else:
                    self.office_day(day, depart)
            elif forced or rng.random() < 0.6:
                self.leisure_day(day)
            self.home_evening(day, forced, last)
        return self.tl

    def live_as_van(self, depot: tuple[float, float]) -> _Timeline:
        rng = self.rng
        for day in _DAYS:
            if day.weekday() >= 5:
                continue
            t = _at(day, rng.uniform(7, 8))
            for _ in range(int(rng.integers(3, 7))):
                bearing, km = rng.uniform(0, 2 * math.pi), rng.uniform(2, 15)
                self.drive(_shift(depot, km * 1000 * math.cos(bearing), km * 1000 * math.sin(bearing)), t)
                t = self.tl.t + int(rng.uniform(10, 45) * 60)
            self.drive(_near(rng, depot, 15), t)
        return self.tl


def _car_readings(rng: np.random.Generator, car: _Car, tl: _Timeline, efficiency: float) -> pl.DataFrame:
    busy = [(a, b, 45.0, 90.0) for a, b in tl.plugs] + [(d[0], d[1], 60.0, 120.0) for d in tl.drives]
    t = _times(rng, _fill(busy, (600.0, 900.0)))
    n = len(t)

    blocks = np.array(sorted(tl.blocks), dtype=np.float64).reshape(-1, 3)
    ba, bb, kw = blocks[:, 0].astype(np.int64), blocks[:, 1].astype(np.int64), blocks[:, 2]
    grid = _integral(t, ba, bb, kw / 3600)
    power = _value_at(t, ba, bb, kw)

    drives = np.array(tl.drives, dtype=np.float64).reshape(-1, 8)
    da, db = drives[:, 0].astype(np.int64), drives[:, 1].astype(np.int64)
    seconds = (db - da).astype(np.float64)
    used = _integral(t, da, db, drives[:, 7] / seconds)
    odometer = 10_000 * rng.uniform(0.5, 6) + _integral(t, da, db, drives[:, 6] / seconds)

    k = np.searchsorted(da, t, side="right") - 1
    kk = np.clip(k, 0, None)
    moving = (k >= 0) & (t < db[kk])
    frac = np.clip((t - da[kk]) / seconds[kk], 0, 1)
    lat = np.where(k >= 0, drives[kk, 2] + frac * (drives[kk, 4] - drives[kk, 2]), tl.start_place[0])
    lon = np.where(k >= 0, drives[kk, 3] + frac * (drives[kk, 5] - drives[kk, 3]), tl.start_place[1])
    # GPS scatter: a few metres when parked, more on the road.
    sigma_m = np.where(moving, 8.0, 4.0)
    lat = lat + rng.normal(0, 1, n) * sigma_m / 1000 / _KM_PER_DEG
    lon = lon + rng.normal(0, 1, n) * sigma_m / 1000 / (_KM_PER_DEG * np.cos(np.radians(lat)))

    frame = {
        "ts": _ts(t),
        "odometer_km": np.round(odometer, 1),
        "latitude": np.round(lat, 6),
        "longitude": np.round(lon, 6),
    }
    if car.data == "position":
        return pl.DataFrame(frame).with_columns(entity_id=pl.lit(car.entity_id))

    battery = tl.start_battery_kwh + efficiency * grid - used
    soc_true = np.clip(100 * battery / car.capacity_kwh, 0, 100)
    soc = np.round(soc_true)
    # Regeneration: a +1 % blip now and then, only between two readings of the same drive, well into it.
    previous_moving = np.concatenate(([False], moving[:-1] & (k[:-1] == k[1:])))
    eligible = moving & previous_moving & (t - da[kk] >= 180)
    blip = eligible & (rng.random(n) < 0.006)
    blip &= ~np.concatenate(([False], blip[:-1]))
    index = np.flatnonzero(blip)
    soc[index] = np.minimum(100, soc[index - 1] + 1)
    frame |= {"soc_pct": soc, "range_km": np.round(soc_true / 100 * car.capacity_kwh / 0.15, 1)}
    if car.data == "soc":
        return pl.DataFrame(frame).with_columns(entity_id=pl.lit(car.entity_id))

    plugs = np.array(tl.plugs, dtype=np.int64).reshape(-1, 2)
    kp = np.searchsorted(plugs[:, 0], t, side="right") - 1
    at_plug_in = _integral(plugs[:, 0], ba, bb, kw / 3600)
    added = np.where(kp >= 0, grid - at_plug_in[np.clip(kp, 0, None)], rng.uniform(5, 40))
    frame |= {
        "power_kw": power,
        "energy_added_kwh": np.round(added, 3),
        "is_charging": power > 0,
        "is_plugged_in": _inside(t, plugs[:, 0], plugs[:, 1]),
    }
    return pl.DataFrame(frame).with_columns(entity_id=pl.lit(car.entity_id))


def _cp_visits(rng: np.random.Generator, kind: str, kw_choices: tuple[float, ...]) -> list[list[Block]]:
    """Anonymous vehicles at one charge point, each visit at least 30 min after the previous charge ended."""
    visits: list[list[Block]] = []
    last_end = -_SESSION_GAP_S

    def add(start: int, blocks: list[Block], latest_end: int) -> bool:
        nonlocal last_end
        if not blocks or blocks[-1][1] > min(latest_end, _END - _QUIET_END_S):
            return False
        visits.append(blocks)
        last_end = blocks[-1][1]
        return True

    def next_start(planned: int) -> int:
        return max(planned, last_end + _SESSION_GAP_S + int(rng.integers(0, 1800)))

    for day in _DAYS:
        weekday = day.weekday() < 5
        if kind == "home":
            plans = [(rng.uniform(17.5, 21.5), rng.uniform(4, 35))] if rng.random() < 0.9 else []
            if not weekday and rng.random() < 0.5:
                plans.insert(0, (rng.uniform(10, 14), rng.uniform(3, 15)))
            for hour, kwh in plans:
                start = next_start(_at(day, hour))
                add(start, _ac_blocks(rng, start, kwh, 7.4, "any"), _at(day, 24 + 7))
        elif kind == "work" and weekday:
            cursor = _at(day, rng.uniform(7.5, 9.5))
            for i in range(5):
                if i > 0 and rng.random() < 0.35:
                    break
                start = next_start(cursor)
                if start > _at(day, 16):
                    break
                kw = float(rng.choice(kw_choices))
                if not add(start, _ac_blocks(rng, start, rng.uniform(5, 30), kw, "any"), _at(day, 19.5)):
                    break
        elif kind == "fast":
            cursor = _at(day, rng.uniform(6, 8))
            while (start := next_start(cursor)) < _at(day, 21.5):
                capacity, max_kw = rng.uniform(45, 100), round(rng.uniform(50, 150), 1)
                for _ in range(10):
                    soc, target = rng.uniform(5, 45), rng.uniform(80, 95)
                    blocks = _dc_blocks(start, soc, target, capacity, 0.93, max_kw, int(rng.uniform(20, 60) * 60))
                    if blocks[-1][1] - start >= 20 * 60:
                        break
                add(start, blocks, _at(day, 23))
                cursor = last_end + int(rng.exponential(3.5 * 3600))
    return visits


def _cp_frame(
    rng: np.random.Generator, cp: _ChargePoint, visits: list[list[Block]], register0: float, reset: int | None
) -> tuple[pl.DataFrame, list[tuple]]:
    sessions = [g for blocks in visits for g in _split(blocks)]
    flat = [blk for blocks in visits for blk in blocks]
    ba = np.array([blk[0] for blk in flat], dtype=np.int64)
    bb = np.array([blk[1] for blk in flat], dtype=np.int64)
    kw = np.array([blk[2] for blk in flat], dtype=np.float64)
    sa = np.array([g[0][0] for g in sessions], dtype=np.int64)
    sb = np.array([g[-1][1] for g in sessions], dtype=np.int64)

    # A 5-minute heartbeat when idle, about once a minute while a vehicle charges.
    beat = np.arange(0, _END, 300, dtype=np.int64) + rng.integers(0, 4, _END // 300)
    beat = beat[~_inside(beat, sa, sb)]
    charging = _times(rng, [(int(a), int(b), 57.0, 63.0) for a, b in zip(sa, sb, strict=True)])
    t = np.unique(np.concatenate((beat, charging)))
    t = t[t < _END]

    def register(times: np.ndarray) -> np.ndarray:
        value = register0 + _integral(times, ba, bb, kw / 3600)
        if reset is not None:
            # The replaced meter starts again from zero.
            at_reset = register0 + _integral(np.array([reset]), ba, bb, kw / 3600)[0]
            value = np.where(times >= reset, value - at_reset, value)
        return np.round(value, 3)

    truth = [
        (cp.entity_id, int(a), int(b), round(float(e1 - e0), 3), "meter", cp.kind, True)
        for a, b, e0, e1 in zip(sa, sb, register(sa), register(sb), strict=True)
    ]
    frame = pl.DataFrame({"ts": _ts(t), "power_kw": _value_at(t, ba, bb, kw), "energy_kwh": register(t)})
    return frame.with_columns(entity_id=pl.lit(cp.entity_id)), truth


def _home_battery(rng: np.random.Generator) -> pl.DataFrame:
    capacity, quarter = 10.0, 900
    starts = np.arange(0, _END, quarter, dtype=np.int64)
    power = np.zeros(len(starts))
    stored = initial = capacity * rng.uniform(0.3, 0.6)
    cloud = {day: rng.uniform(0.2, 1.0) for day in _DAYS}
    for i, start in enumerate(starts):
        local = _local(int(start))
        hour = local.hour + local.minute / 60
        if 9 <= hour < 17:
            kw = 4.5 * cloud.get(local.date(), 0.5) * math.sin(math.pi * (hour - 9) / 8) * rng.uniform(0.8, 1) - 0.4
        elif 17 <= hour < 23:
            kw = -rng.uniform(0.4, 2.5)
        else:
            kw = -rng.uniform(0.1, 0.4) if rng.random() < 0.5 else 0.0
        # Stay between 5 % and full; losses on the way in and on the way out.
        if kw > 0:
            kw = min(kw, (capacity - stored) / (0.95 * quarter / 3600))
        else:
            kw = max(kw, -(stored - 0.05 * capacity) * 0.95 / (quarter / 3600))
        kw = math.floor(kw * 1000) / 1000 if kw > 0 else math.ceil(kw * 1000) / 1000
        power[i] = kw
        stored += (kw * 0.95 if kw > 0 else kw / 0.95) * quarter / 3600
    rate = np.where(power > 0, power * 0.95, power / 0.95) / 3600
    t = np.arange(0, _END, 300, dtype=np.int64) + rng.integers(0, 4, _END // 300)
    stored_at = initial + _integral(t, starts, starts + quarter, rate)
    return pl.DataFrame(
        {
            "ts": _ts(t),
            "power_kw": _value_at(t, starts, starts + quarter, power),
            "soc_pct": np.clip(np.round(100 * stored_at / capacity), 0, 100),
        }
    ).with_columns(entity_id=pl.lit("home-battery"))


def _places(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """Distinct private places near Brussels: at least 2 km apart and from the office."""
    places: list[tuple[float, float]] = []
    while len(places) < count:
        p = (round(rng.uniform(50.80, 50.90), 5), round(rng.uniform(4.30, 4.50), 5))
        if _km(p, OFFICE) >= 2.5 and all(_km(p, q) >= 2.0 for q in places):
            places.append(p)
    return places


def two_band_tariff(name: str = "demo-two-band", currency: str = "EUR", valid_from: str = "2025-01-01") -> dict:
    """The demo's tariff: 0.32 per kWh on weekdays 07:00-22:00 local, 0.21 otherwise, 21 % VAT."""
    return {
        "name": name,
        "currency": currency,
        "timezone": FLEET_TIMEZONE,
        "bands": [
            {"band": "t1", "price_per_kwh": 0.32, "days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": [7, 22]},
            {"band": "t2", "price_per_kwh": 0.21},
        ],
        "fee_per_min": 0,
        "idle_fee_per_min": 0,
        "idle_grace_min": 0,
        "fee_per_session": 0,
        "vat_pct": 21,
        "min_per_session": None,
        "max_per_session": None,
        "valid_from": valid_from,
        "valid_to": None,
    }


def generate(seed: int = 1) -> DemoFleet:
    """The demo fleet for `seed`: the same seed always gives the same frames."""
    rng = np.random.default_rng(seed)
    commuters = [car.entity_id for car in _CARS if car.data != "position"]
    *home_places, depot, wallbox = _places(rng, len(commuters) + 2)
    homes = dict(zip(commuters, home_places, strict=True))
    cp_sites = {
        "cp-01": wallbox,
        "cp-02": _shift(OFFICE, 35.0, -40.0),
        "cp-03": _shift(OFFICE, -30.0, 55.0),
        "cp-04": (50.8805, 4.2630),
    }

    frames, truth = [], []
    for car in _CARS:
        efficiency = round(rng.uniform(0.86, 0.94), 3)
        if car.data == "position":
            tl = _Driver(rng, car, depot, efficiency).live_as_van(depot)
        else:
            tl = _Driver(rng, car, homes[car.entity_id], efficiency).live(final=car.entity_id == "ev-01")
        frames.append(_car_readings(rng, car, tl, efficiency))
        method = "soc" if car.data == "soc" else "power"
        truth += [
            (car.entity_id, a, b, kwh, kwh * efficiency, method, kind, complete)
            for a, b, kwh, kind, complete in tl.sessions
        ]

    frames.append(_home_battery(rng))
    for cp in _CHARGE_POINTS:
        kw_choices = {"cp-02": (11.0,), "cp-03": (11.0, 22.0)}.get(cp.entity_id, (7.4,))
        visits = _cp_visits(rng, cp.kind, kw_choices)
        reset = _at(_CP_03_RESET, 12.0) if cp.entity_id == "cp-03" else None
        register0 = round(float(rng.uniform(800, 20_000)), 1)
        frame, rows = _cp_frame(rng, cp, visits, register0, reset)
        frames.append(frame)
        efficiency = rng.uniform(0.88, 0.95, len(rows))
        truth += [
            (e, a, b, kwh, kwh * eff, m, k, c) for (e, a, b, kwh, m, k, c), eff in zip(rows, efficiency, strict=True)
        ]

    readings = pl.concat([conform(f, READINGS_SCHEMA) for f in frames]).sort("entity_id", "ts")
    truth_frame = (
        pl.DataFrame(truth, schema=list(TRUTH_SCHEMA), orient="row")
        .with_columns((pl.col(c).cast(pl.Int64) * 1_000_000 + _START_US).cast(UTC_TS) for c in ("start_utc", "end_utc"))
        .cast(dict(TRUTH_SCHEMA))
        .sort("entity_id", "start_utc")
    )

    entity_rows = [
        {
            "entity_id": car.entity_id,
            "entity_type": "EV",
            "name": car.name,
            "brand": car.brand,
            "identifier": f"DEMO-{car.entity_id.upper()}",
            "battery_capacity_kwh": car.capacity_kwh if car.capacity_set else None,
        }
        for car in _CARS
    ]
    entity_rows.append(
        {"entity_id": "home-battery", "entity_type": "Battery", "name": "Home battery", "brand": "BYD",
         "identifier": "DEMO-BATTERY"}
    )  # fmt: skip
    entity_rows += [
        {
            "entity_id": cp.entity_id,
            "entity_type": "ChargePoint",
            "name": cp.name,
            "brand": cp.brand,
            "identifier": f"DEMO-{cp.entity_id.upper()}",
            "latitude": cp_sites[cp.entity_id][0],
            "longitude": cp_sites[cp.entity_id][1],
        }
        for cp in _CHARGE_POINTS
    ]
    entities = conform(pl.DataFrame(entity_rows, infer_schema_length=None), ENTITIES_SCHEMA).sort("entity_id")

    locations = [
        {"label": "Home", "latitude": lat, "longitude": lon, "radius_m": 150, "entity_id": entity_id}
        for entity_id, (lat, lon) in homes.items()
    ]
    locations.append(
        {"label": "Office", "latitude": OFFICE[0], "longitude": OFFICE[1], "radius_m": 200, "entity_id": None}
    )
    return DemoFleet(
        entities=entities,
        readings=readings,
        truth=truth_frame,
        locations=locations,
        tariff=two_band_tariff(),
        true_capacity_kwh={car.entity_id: car.capacity_kwh for car in _CARS},
    )
