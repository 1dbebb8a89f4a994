"""Pure tariff pricing: tariffs x sessions x reading intervals -> energy per band and cost per session."""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from core.errors import ChargeLensError, InputError
from core.schema import UTC_TS

BAND_NAMES = ("t1", "t2", "t3", "t4")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SCOPES = ("location", "entity", "default")  # also the precedence of choose_tariff
PERIODS = {"day": "1d", "week": "1w", "month": "1mo"}
PRICED_COLUMNS = (
    "session_id",
    *(f"energy_{b}_kwh" for b in BAND_NAMES),
    "cost_energy",
    "cost_time",
    "cost_idle",
    "cost_flat",
    "cost_net",
    "cost_tax",
    "cost_total",
    "currency",
    "priced_evenly",
)

# Every modern zone's hour boundaries fall on whole UTC quarter hours, and so do hourly and
# quarter-hourly prices: cutting intervals on this grid puts every slice inside one band hour.
_GRID = timedelta(minutes=15)
# A finer grid (for price series on other steps) below one minute would explode the slice count.
_FINEST_GRID = timedelta(minutes=1)
_MICROS_PER_MIN = 60_000_000
_TARIFF_FIELDS = (
    "name",
    "currency",
    "timezone",
    "bands",
    "fee_per_min",
    "idle_fee_per_min",
    "idle_grace_min",
    "fee_per_session",
    "vat_pct",
    "min_per_session",
    "max_per_session",
    "valid_from",
    "valid_to",
)
_BAND_FIELDS = ("band", "price_per_kwh", "days", "hours")


@dataclass(frozen=True)
class Band:
    """One energy price band: matches when the local weekday is in `days` and the local hour in `hours`."""

    band: str
    price_per_kwh: float
    days: tuple[str, ...] | None = None  # None: every day
    hours: tuple[int, int] | None = None  # [from, to) whole local hours; None: all day

    def matches(self, weekday: int, hour: int) -> bool:
        """weekday 0 = Mon .. 6 = Sun, hour 0..23 (local)."""
        day_ok = self.days is None or DAY_NAMES[weekday] in self.days
        hour_ok = self.hours is None or self.hours[0] <= hour < self.hours[1]
        return day_ok and hour_ok


@dataclass(frozen=True)
class Tariff:
    """A validated tariff (SPEC section 5); build it with `parse_tariff`."""

    name: str
    currency: str
    timezone: str
    bands: tuple[Band, ...]
    fee_per_min: float = 0.0
    idle_fee_per_min: float = 0.0
    idle_grace_min: float = 0.0
    fee_per_session: float = 0.0
    vat_pct: float = 0.0
    min_per_session: float | None = None
    max_per_session: float | None = None
    valid_from: date | None = None  # None: since always
    valid_to: date | None = None  # exclusive; None: open-ended

    def to_body(self) -> dict[str, Any]:
        """The tariff as the SPEC JSON body, for saving; `parse_tariff(t.to_body()) == t`."""
        bands = []
        for b in self.bands:
            body: dict[str, Any] = {"band": b.band, "price_per_kwh": b.price_per_kwh}
            if b.days is not None:
                body["days"] = list(b.days)
            if b.hours is not None:
                body["hours"] = list(b.hours)
            bands.append(body)
        return {
            "name": self.name,
            "currency": self.currency,
            "timezone": self.timezone,
            "bands": bands,
            "fee_per_min": self.fee_per_min,
            "idle_fee_per_min": self.idle_fee_per_min,
            "idle_grace_min": self.idle_grace_min,
            "fee_per_session": self.fee_per_session,
            "vat_pct": self.vat_pct,
            "min_per_session": self.min_per_session,
            "max_per_session": self.max_per_session,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
        }


# ---------------------------------------------------------------------------------------------------------------
# Parsing and checking tariffs


def _bad(field: str, problem: str) -> InputError:
    return InputError(f"Tariff field '{field}' {problem}.", errors={field: problem})


def _number(
    body: Mapping[str, Any], field: str, *, default: float | None = 0.0, maximum: float | None = None, path: str = ""
) -> float | None:
    value = body.get(field, default)
    where = f"{path}{field}"
    if value is None:
        if default is None:
            return None
        raise _bad(where, "must be a number, not null")
    # bool is an int in Python, but `true` is no price.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(where, f"must be a number, not {value!r}")
    if value < 0:
        raise _bad(where, f"must be 0 or more, not {value}")
    if maximum is not None and value > maximum:
        raise _bad(where, f"must be at most {maximum:g}, not {value}")
    return float(value)


def _date(body: Mapping[str, Any], field: str) -> date | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad(field, f"must be an ISO date such as 2025-01-01, or null, not {value!r}")


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad("timezone", f"must be a time zone name such as Europe/Brussels, not {value!r}")
    try:
        zoneinfo.ZoneInfo(value)
        # polars resolves zones itself; a name Python knows but polars does not would fail later, mid-pricing.
        pl.select(pl.lit(datetime(2025, 1, 1, tzinfo=UTC)).dt.convert_time_zone(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, pl.exceptions.PolarsError):
        raise _bad("timezone", f"must be a time zone name such as Europe/Brussels, not {value!r}") from None
    return value


def _whole_hour(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _band(raw: Any, i: int) -> Band:
    path = f"bands[{i}]."
    if not isinstance(raw, Mapping):
        raise _bad(f"bands[{i}]", "must be an object with band and price_per_kwh")
    unknown = sorted(set(raw) - set(_BAND_FIELDS))
    if unknown:
        raise _bad(f"bands[{i}]", f"has unknown field '{unknown[0]}' (a band has {', '.join(_BAND_FIELDS)})")
    name = raw.get("band")
    if name not in BAND_NAMES:
        raise _bad(f"{path}band", f"must be one of {', '.join(BAND_NAMES)}, not {name!r}")
    if "price_per_kwh" not in raw:
        raise _bad(f"{path}price_per_kwh", "is missing")
    price = _number(raw, "price_per_kwh", path=path)
    assert price is not None

    days = raw.get("days")
    if days is not None:
        if not isinstance(days, list) or not days:
            raise _bad(f"{path}days", f"must be a non-empty list of {', '.join(DAY_NAMES)}, or left out")
        canon = {d.lower(): d for d in DAY_NAMES}
        named = []
        for d in days:
            if not isinstance(d, str) or d.lower() not in canon:
                raise _bad(f"{path}days", f"must name days as {', '.join(DAY_NAMES)}, not {d!r}")
            named.append(canon[d.lower()])
        if len(set(named)) != len(named):
            raise _bad(f"{path}days", "names a day twice")
        days = tuple(sorted(named, key=DAY_NAMES.index))

    hours = raw.get("hours")
    if hours is not None:
        pair = [_whole_hour(h) for h in hours] if isinstance(hours, list) else []
        if len(pair) != 2 or None in pair or not 0 <= pair[0] < pair[1] <= 24:
            raise _bad(
                f"{path}hours", f"must be [from, to) in whole local hours with 0 <= from < to <= 24, not {hours!r}"
            )
        hours = (pair[0], pair[1])
    return Band(band=name, price_per_kwh=price, days=days, hours=hours)


def _check_coverage(name: str, bands: Sequence[Band]) -> None:
    for weekday in range(7):
        for hour in range(24):
            if not any(b.matches(weekday, hour) for b in bands):
                when = f"{DAY_NAMES[weekday]} {hour:02d}:00–{hour + 1:02d}:00"
                raise ChargeLensError(
                    f"Tariff '{name}': {when} is in no band; add a band that covers it, "
                    "or a last band without days and hours.",
                    title="TariffGap",
                    errors={"bands": f"{when} is in no band"},
                )


def parse_tariff(body: Mapping[str, Any], *, has_prices: bool = False) -> Tariff:
    """Validate a tariff body (SPEC section 5 JSON). `has_prices`: a dynamic price series exists for it.

    Raises InputError naming the field, or ChargeLensError titled TariffGap for an hour of the week in no band.
    """
    if not isinstance(body, Mapping):
        raise InputError("A tariff must be a JSON object; see the example in the documentation.")
    unknown = sorted(set(body) - set(_TARIFF_FIELDS))
    if unknown:
        raise _bad(unknown[0], f"is unknown (a tariff has {', '.join(_TARIFF_FIELDS)})")

    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100 or len(name) > 100:
        raise _bad("name", "must be text of 1 to 100 characters")
    currency = body.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise _bad("currency", f"must be a three-letter currency code such as EUR, not {currency!r}")
    timezone = _timezone(body.get("timezone"))

    raw_bands = body.get("bands", [])
    if raw_bands is None:
        raw_bands = []
    if not isinstance(raw_bands, list):
        raise _bad("bands", "must be a list of bands")
    if len(raw_bands) > len(BAND_NAMES):
        raise _bad("bands", f"has {len(raw_bands)} bands; a tariff has at most 4 (t1..t4)")
    bands = tuple(_band(raw, i) for i, raw in enumerate(raw_bands))
    order = [BAND_NAMES.index(b.band) for b in bands]
    if order != sorted(set(order)):
        listed = ", ".join(b.band for b in bands)
        raise _bad("bands", f"must list each of t1..t4 at most once and in order, not {listed}")
    if not bands and not has_prices:
        raise _bad(
            "bands",
            "is empty; a tariff without bands needs a dynamic price series: give its price file with it "
            "(`tariffs add FILE --prices PRICES.csv`, or the price file in the Costs page's tariff editor), "
            "or add at least one band (a band without days and hours matches always)",
        )

    fees = {f: _number(body, f) for f in ("fee_per_min", "idle_fee_per_min", "idle_grace_min", "fee_per_session")}
    vat_pct = _number(body, "vat_pct", maximum=100)
    low = _number(body, "min_per_session", default=None)
    high = _number(body, "max_per_session", default=None)
    if low is not None and high is not None and low > high:
        raise _bad("min_per_session", f"({low:g}) must not exceed max_per_session ({high:g})")
    valid_from, valid_to = _date(body, "valid_from"), _date(body, "valid_to")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise _bad("valid_to", f"({valid_to}) must be after valid_from ({valid_from})")

    if bands:
        _check_coverage(name, bands)
    return Tariff(
        name=name,
        currency=currency.upper(),
        timezone=timezone,
        bands=bands,
        fee_per_min=fees["fee_per_min"] or 0.0,
        idle_fee_per_min=fees["idle_fee_per_min"] or 0.0,
        idle_grace_min=fees["idle_grace_min"] or 0.0,
        fee_per_session=fees["fee_per_session"] or 0.0,
        vat_pct=vat_pct or 0.0,
        min_per_session=low,
        max_per_session=high,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def _assignments(assignments: pl.DataFrame | Iterable[Any]) -> pl.DataFrame:
    """Assignments as a frame tariff, scope, target ("" for the default), from a frame, dicts or tuples."""
    if isinstance(assignments, pl.DataFrame):
        frame = assignments.select("tariff", "scope", "target")
    else:
        rows = [
            (a["tariff"], a["scope"], a.get("target")) if isinstance(a, Mapping) else (*a, None)[:3]
            for a in assignments
        ]
        frame = pl.DataFrame(rows, schema=["tariff", "scope", "target"], orient="row")
    frame = frame.cast(pl.String).with_columns(
        target=pl.when(pl.col("scope") == "default").then(pl.lit("")).otherwise(pl.col("target"))
    )
    bad = frame.filter(~pl.col("scope").is_in(SCOPES) | pl.col("scope").is_null() | pl.col("target").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise InputError(
            f"Tariff assignment {row['tariff']!r} has scope {row['scope']!r} and target {row['target']!r}; "
            "the scope must be default, location (with a label) or entity (with an id).",
            errors={"scope": "must be default, location or entity"},
        )
    return frame


def _known(tariffs: Sequence[Tariff], frame: pl.DataFrame) -> dict[str, Tariff]:
    by_name = {t.name: t for t in tariffs}
    missing = sorted(set(frame.get_column("tariff").to_list()) - set(by_name))
    if missing:
        raise InputError(f"Tariff '{missing[0]}' is assigned but not defined; add it first or remove the assignment.")
    return by_name


def _scope_words(scope: str, target: str) -> str:
    return "the default" if scope == "default" else f"{scope} '{target}'"


def check_overlap(tariffs: Sequence[Tariff], assignments: pl.DataFrame | Iterable[Any]) -> None:
    """Refuse two tariffs valid on a common date on the same assignment (ChargeLensError titled TariffOverlap).

    `assignments`: rows (tariff, scope, target) with scope default | location (label) | entity (id).
    """
    frame = _assignments(assignments).unique().sort("scope", "target", "tariff")
    by_name = _known(tariffs, frame)
    for (scope, target), group in frame.group_by("scope", "target", maintain_order=True):
        names = group.get_column("tariff").to_list()
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                a, b = by_name[first], by_name[second]
                start = max(a.valid_from or date.min, b.valid_from or date.min)
                ends = [d for d in (a.valid_to, b.valid_to) if d is not None]
                end = min(ends) if ends else None
                if end is not None and start >= end:
                    continue
                since = "" if start == date.min else f" from {start}"
                until = f" to {end}" if since and end else f" before {end}" if end else " on" if since else " always"
                raise ChargeLensError(
                    f"Tariffs '{first}' and '{second}' are both assigned to {_scope_words(str(scope), str(target))} "
                    f"and both valid{since}{until}; change the validity dates so they do not overlap.",
                    title="TariffOverlap",
                    errors={"valid_from": f"'{first}' and '{second}' overlap"},
                )


def choose_tariff(
    sessions: pl.DataFrame, assignments: pl.DataFrame | Iterable[Any], tariffs: Sequence[Tariff]
) -> pl.DataFrame:
    """session_id -> tariff name (null: no tariff), in the order of `sessions`.

    `sessions`: session_id, entity_id, start_utc and optionally location_label (the best match, may be null).
    A location assignment wins over an entity one, which wins over the default; a tariff counts only when the
    session's start, as a local date in the tariff's time zone, is within [valid_from, valid_to).
    """
    frame = _assignments(assignments)
    by_name = _known(tariffs, frame)
    s = sessions.select(
        "session_id",
        pl.col("entity_id").cast(pl.String),
        _utc(sessions, "start_utc"),
        (pl.col("location_label") if "location_label" in sessions.columns else pl.lit(None))
        .cast(pl.String)
        .alias("location_label"),
    ).with_row_index("_row")
    if frame.height == 0:
        return s.select("session_id", pl.lit(None, pl.String).alias("tariff"))
    candidates = frame.with_columns(
        rank=pl.col("scope").replace_strict({scope: i for i, scope in enumerate(SCOPES)}, return_dtype=pl.Int8),
        timezone=pl.col("tariff").replace_strict({n: t.timezone for n, t in by_name.items()}, return_dtype=pl.String),
        valid_from=pl.col("tariff").replace_strict(
            {n: t.valid_from or date.min for n, t in by_name.items()}, return_dtype=pl.Date
        ),
        valid_to=pl.col("tariff").replace_strict(
            {n: t.valid_to for n, t in by_name.items()}, return_dtype=pl.Date, default=None
        ),
    )
    pairs = pl.concat(
        [
            s.join(candidates.filter(pl.col("scope") == "location"), left_on="location_label", right_on="target"),
            s.join(candidates.filter(pl.col("scope") == "entity"), left_on="entity_id", right_on="target"),
            s.join(candidates.filter(pl.col("scope") == "default").drop("target"), how="cross"),
        ],
        how="diagonal",
    )
    zones = sorted({t.timezone for t in by_name.values()})
    local_date = pl.coalesce(
        pl.lit(None, pl.Date),
        *(pl.when(pl.col("timezone") == z).then(pl.col("start_utc").dt.convert_time_zone(z).dt.date()) for z in zones),
    )
    chosen = (
        pairs.with_columns(local_date=local_date)
        .filter(
            (pl.col("valid_from") <= pl.col("local_date"))
            & (pl.col("valid_to").is_null() | (pl.col("local_date") < pl.col("valid_to")))
        )
        .sort("_row", "rank", "tariff")
        .unique("_row", keep="first")
        .select("_row", "tariff")
    )
    return s.join(chosen, on="_row", how="left").sort("_row").select("session_id", "tariff")


# ---------------------------------------------------------------------------------------------------------------
# Reading intervals


def _utc(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A timestamp column as UTC microseconds; a naive column is taken to be UTC already."""
    dtype = frame.schema[name]
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        col = col.dt.replace_time_zone("UTC")
    elif isinstance(dtype, pl.Datetime):
        col = col.dt.convert_time_zone("UTC")
    return col.cast(UTC_TS).alias(name)


def _minutes(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds() / _MICROS_PER_MIN


def even_intervals(sessions: pl.DataFrame) -> pl.DataFrame:
    """One interval per session, from start to end with its whole energy (for sessions without readings)."""
    return sessions.select(
        "session_id",
        _utc(sessions, "start_utc").alias("from_utc"),
        _utc(sessions, "end_utc").alias("to_utc"),
        pl.col("energy_kwh").cast(pl.Float64),
        priced_evenly=pl.lit(True),
    )


def intervals_from_readings(
    readings: pl.DataFrame, sessions: pl.DataFrame, *, max_gap_min: float | None = 60.0
) -> pl.DataFrame:
    """Intervals between consecutive readings that overlap each session, holding the session's energy.

    `readings`: entity_id, ts, power_kw, energy_kwh (canonical). `sessions`: session_id, entity_id, start_utc,
    end_utc, energy_kwh. Each interval is clipped to the session and weighted by the meter rise where both ends
    have a register that did not drop, else by the trapezoid of power (not across gaps longer than
    `max_gap_min`, as detection does not integrate them either); the weights are then scaled to sum exactly
    to the session's energy_kwh. Sessions without a usable interval get `even_intervals` (priced_evenly true).
    Columns: session_id, from_utc, to_utc, energy_kwh, priced_evenly; sorted by session, then time.
    """
    first_of_pair = (pl.col("entity_id") != pl.col("entity_id").shift()) | (pl.col("ts") != pl.col("ts").shift())
    r = (
        readings.select(
            pl.col("entity_id").cast(pl.String),
            _utc(readings, "ts"),
            pl.col("power_kw").cast(pl.Float64),
            pl.col("energy_kwh").cast(pl.Float64).alias("meter_kwh"),
        )
        .filter(pl.col("entity_id").is_not_null() & pl.col("ts").is_not_null())
        .sort("entity_id", "ts", "power_kw", "meter_kwh", nulls_last=True)
        # Sorted, a repeated (entity, ts) follows its first row: keeping the first of each run is what a unique on
        # the pair would keep, without its hashing (about 40 % of this function's time on millions of readings).
        .filter(first_of_pair.fill_null(True))
    )
    nxt = {c: pl.col(c).shift(-1).over("entity_id") for c in ("ts", "power_kw", "meter_kwh")}
    hours = (nxt["ts"] - pl.col("ts")).dt.total_microseconds() / (60 * _MICROS_PER_MIN)
    rise = nxt["meter_kwh"] - pl.col("meter_kwh")
    # Regeneration and discharge are not charging: negative power adds no weight.
    trapezoid = pl.mean_horizontal(pl.col("power_kw").clip(lower_bound=0), nxt["power_kw"].clip(lower_bound=0)) * hours
    if max_gap_min is not None:
        trapezoid = pl.when(hours * 60 <= max_gap_min).then(trapezoid)
    pairs = (
        r.with_columns(
            to_ts=nxt["ts"],
            weight=pl.when(rise >= 0).then(rise).otherwise(trapezoid),
        )
        .filter(pl.col("to_ts").is_not_null())
        .select("entity_id", pl.col("ts").alias("a"), pl.col("to_ts").alias("b"), "weight")
        .sort("entity_id", "a")
        .with_row_index("i")
    )

    s = sessions.select(
        "session_id",
        pl.col("entity_id").cast(pl.String),
        _utc(sessions, "start_utc"),
        _utc(sessions, "end_utc"),
        pl.col("energy_kwh").cast(pl.Float64),
    ).with_row_index("_row")
    # Pairs of one entity are sorted and contiguous, so a session covers one run of rows: from the first pair
    # ending after its start to the last pair beginning before its end. Two as-of joins find both ends without
    # a readings x sessions product.
    first = s.sort("start_utc").join_asof(
        pairs.select("entity_id", "b", pl.col("i").alias("i0")).sort("b"),
        left_on="start_utc",
        right_on="b",
        by="entity_id",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    last = s.sort("end_utc").join_asof(
        pairs.select("entity_id", "a", pl.col("i").alias("i1")).sort("a"),
        left_on="end_utc",
        right_on="a",
        by="entity_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    spans = (
        first.select("_row", "i0")
        .join(last.select("_row", "i1"), on="_row")
        .filter(pl.col("i0").is_not_null() & pl.col("i1").is_not_null() & (pl.col("i0") <= pl.col("i1")))
        .with_columns(i=pl.int_ranges("i0", pl.col("i1") + 1, dtype=pl.UInt32))
        .explode("i")
        .select("_row", pl.col("i").cast(pairs.schema["i"]))
    )
    clipped = (
        spans.join(s, on="_row")
        .join(pairs.drop("entity_id"), on="i")
        .with_columns(
            from_utc=pl.max_horizontal("a", "start_utc"),
            to_utc=pl.min_horizontal("b", "end_utc"),
        )
        .with_columns(
            weight=pl.col("weight").fill_null(0.0).clip(lower_bound=0)
            * (pl.col("to_utc") - pl.col("from_utc")).dt.total_microseconds()
            / (pl.col("b") - pl.col("a")).dt.total_microseconds()
        )
        .filter(pl.col("to_utc") > pl.col("from_utc"))
        .with_columns(total=pl.col("weight").sum().over("_row"))
        .filter(pl.col("total") > 0)
        .with_columns(energy_kwh=pl.col("weight") / pl.col("total") * pl.col("energy_kwh"), priced_evenly=False)
    )
    missing = s.join(clipped.select("_row").unique(), on="_row", how="anti")
    evenly = even_intervals(missing).with_columns(missing.get_column("_row"))
    columns = ["_row", "session_id", "from_utc", "to_utc", "energy_kwh", "priced_evenly"]
    return pl.concat([clipped.select(columns), evenly.select(columns)]).sort("_row", "from_utc").drop("_row")


# ---------------------------------------------------------------------------------------------------------------
# Pricing


def _price_segments(prices: pl.DataFrame | None) -> pl.DataFrame | None:
    """Dynamic prices as segments [ts, end): until the next price, but no longer than one step of the series."""
    if prices is None:
        return None
    p = prices.select(_utc(prices, "ts"), pl.col("price_per_kwh").cast(pl.Float64)).drop_nulls().sort("ts")
    if p.height == 0:
        return None
    if p.get_column("price_per_kwh").is_nan().any():
        raise InputError("A dynamic price is not a number; fix the price file and import it again.")
    dup = p.filter(pl.col("ts").is_duplicated())
    if dup.height:
        raise InputError(
            f"The dynamic price series has two prices at {dup.item(0, 'ts'):%Y-%m-%dT%H:%M:%SZ}; keep one."
        )
    if p.height < 2:
        raise InputError(
            "A dynamic price series needs at least two prices, so that its step (hour or quarter) is known."
        )
    gaps = p.select(gap=pl.col("ts").diff().dt.total_microseconds()).drop_nulls()
    # The most common gap is the step; on a tie the shorter one, so that no price is stretched too far.
    step = gaps.group_by("gap").len().sort(["len", "gap"], descending=[True, False]).item(0, "gap")
    return p.with_columns(
        end=pl.min_horizontal(pl.col("ts").shift(-1), pl.col("ts") + timedelta(microseconds=step))
    ).rename({"price_per_kwh": "dynamic_price"})


def check_prices(prices: pl.DataFrame) -> None:
    """Refuse a dynamic price series (ts, price_per_kwh) that cannot price anything: InputError saying why."""
    _grid(_price_segments(prices))  # the step, duplicates and NaN are checked here, whole minutes by the grid


def _grid(segments: pl.DataFrame | None) -> timedelta:
    """The UTC cut grid: 15 minutes, or finer when the price boundaries are not on quarter hours."""
    if segments is None:
        return _GRID
    unit = int(_GRID / timedelta(microseconds=1))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for column in ("ts", "end"):
        offsets = segments.select(((pl.col(column) - epoch).dt.total_microseconds() % unit).unique())
        for offset in offsets.to_series().to_list():
            unit = math.gcd(unit, int(offset))
    grid = timedelta(microseconds=unit)
    if grid < _FINEST_GRID:
        raise InputError("Dynamic price times must fall on whole minutes; fix the price file and import it again.")
    return grid


def _band_columns(tariff: Tariff) -> list[pl.Expr]:
    """band and band_price of each slice, from the local weekday and hour of its start (DST-correct)."""
    if not tariff.bands:
        return [pl.lit("t1").alias("band"), pl.lit(None, pl.Float64).alias("band_price")]
    local = pl.col("slice_from").dt.convert_time_zone(tariff.timezone)
    weekday, hour = local.dt.weekday(), local.dt.hour()  # weekday: 1 = Mon .. 7 = Sun
    band: pl.Expr = pl.lit(None, pl.String)
    # Built from the last band back, so that the first band that matches wins, as the bands are tried in order.
    for b in reversed(tariff.bands):
        cond = pl.lit(True)
        if b.days is not None:
            cond = cond & weekday.is_in([DAY_NAMES.index(d) + 1 for d in b.days])
        if b.hours is not None:
            cond = cond & (hour >= b.hours[0]) & (hour < b.hours[1])
        band = pl.when(cond).then(pl.lit(b.band)).otherwise(band)
    prices = {b.band: b.price_per_kwh for b in tariff.bands}
    return [band.alias("band"), band.replace_strict(prices, return_dtype=pl.Float64).alias("band_price")]


def _sessions_input(sessions: pl.DataFrame) -> pl.DataFrame:
    s = sessions.select(
        "session_id",
        _utc(sessions, "start_utc"),
        _utc(sessions, "end_utc"),
        *(
            _utc(sessions, c) if c in sessions.columns else pl.lit(None, UTC_TS).alias(c)
            for c in ("plug_in_utc", "plug_out_utc")
        ),
        pl.col("energy_kwh").cast(pl.Float64),
    ).with_row_index("_row")
    bad = s.filter(
        pl.col("start_utc").is_null() | pl.col("end_utc").is_null() | (pl.col("end_utc") < pl.col("start_utc"))
    )
    if bad.height:
        raise InputError(f"Session {bad.item(0, 'session_id')!r} has no start and end, or ends before it starts.")
    return s


def _intervals_input(s: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    """Intervals scaled to their session's energy; sessions without usable intervals get one even interval."""
    iv = intervals.select(
        "session_id",
        _utc(intervals, "from_utc"),
        _utc(intervals, "to_utc"),
        pl.col("energy_kwh").cast(pl.Float64).alias("iv_kwh"),
        (pl.col("priced_evenly") if "priced_evenly" in intervals.columns else pl.lit(False))
        .cast(pl.Boolean)
        .fill_null(False)
        .alias("priced_evenly"),
    )
    bad = iv.filter(pl.col("from_utc").is_null() | pl.col("to_utc").is_null() | (pl.col("to_utc") < pl.col("from_utc")))
    if bad.height:
        raise InputError(f"An interval of session {bad.item(0, 'session_id')!r} has no times or ends before it starts.")
    if iv.filter(pl.col("iv_kwh") < 0).height:
        raise InputError("An interval has negative energy; charging intervals hold 0 kWh or more.")
    iv = (
        iv.join(s.select("session_id", "_row", "energy_kwh"), on="session_id")
        .with_columns(iv_kwh=pl.col("iv_kwh").fill_null(0.0))
        .with_columns(total=pl.col("iv_kwh").sum().over("_row"))
        # Intervals holding nothing cannot place a session's energy in time; those sessions are spread evenly.
        .filter((pl.col("total") > 0) | (pl.col("energy_kwh") == 0) | pl.col("energy_kwh").is_null())
        .with_columns(
            energy_kwh=pl.when(pl.col("total") > 0)
            .then(pl.col("iv_kwh") / pl.col("total") * pl.col("energy_kwh"))
            .otherwise(pl.col("energy_kwh"))
        )
    )
    missing = s.join(iv.select("_row").unique(), on="_row", how="anti")
    columns = ["_row", "session_id", "from_utc", "to_utc", "energy_kwh", "priced_evenly"]
    evenly = even_intervals(missing).with_columns(missing.get_column("_row"))
    return pl.concat([iv.select(columns), evenly.select(columns)])


def _slices(iv: pl.DataFrame, grid: timedelta) -> pl.DataFrame:
    """Cut intervals on the UTC grid; each slice gets the interval's energy in proportion to its time."""
    length = (pl.col("to_utc") - pl.col("from_utc")).dt.total_microseconds()
    part = (pl.col("slice_to") - pl.col("slice_from")).dt.total_microseconds()
    return (
        iv.with_columns(first_cut=pl.col("from_utc").dt.truncate(grid))
        .with_columns(cut=pl.datetime_ranges("first_cut", "to_utc", grid, closed="both"))
        .explode("cut")
        .with_columns(
            slice_from=pl.max_horizontal("from_utc", "cut"),
            slice_to=pl.min_horizontal("to_utc", pl.col("cut") + grid),
        )
        .with_columns(
            # An instant (from == to) keeps all its energy in the one slice that holds it.
            share=pl.when(length > 0).then(part / length).otherwise((pl.col("cut") == pl.col("first_cut")).cast(float))
        )
        .filter(pl.col("share") > 0)
        .select(
            "_row", "slice_from", "slice_to", (pl.col("energy_kwh") * pl.col("share")).alias("kwh"), "priced_evenly"
        )
    )


def _segments_for(tariff: Tariff, prices: pl.DataFrame | None) -> pl.DataFrame | None:
    """The tariff's price segments; a tariff without bands cannot price anything without them."""
    segments = _price_segments(prices)
    if not tariff.bands and segments is None:
        raise InputError(
            f"Tariff '{tariff.name}' has no bands, so it needs a dynamic price series; import prices for it "
            "or add a band."
        )
    return segments


def _priced(slices: pl.DataFrame, tariff: Tariff, segments: pl.DataFrame | None) -> pl.DataFrame:
    """Slices (with slice_from) plus band, band_price and price: the series' price where it has data, else the band's.

    The one price lookup of the engine: pricing, what-if and shifting all go through it.
    """
    slices = slices.with_columns(_band_columns(tariff))
    if segments is None:
        return slices.with_columns(price=pl.col("band_price"))
    return (
        slices.sort("slice_from")
        .join_asof(segments, left_on="slice_from", right_on="ts", strategy="backward", check_sortedness=False)
        .with_columns(
            # The energy still counts in its band; only the price comes from the series where it has data.
            price=pl.when(pl.col("slice_from") < pl.col("end")).then(pl.col("dynamic_price")).otherwise("band_price")
        )
        .drop("ts", "end", "dynamic_price")
    )


def price_sessions(
    sessions: pl.DataFrame, intervals: pl.DataFrame | None, tariff: Tariff, prices: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Price sessions under one tariff, per reading interval; one row per session, in the order of `sessions`.

    `sessions`: session_id, start_utc, end_utc, plug_in_utc, plug_out_utc, energy_kwh. `intervals`: session_id,
    from_utc, to_utc, energy_kwh (optionally priced_evenly); their energy is scaled to the session's, and a
    session without intervals (all of them when `intervals` is None) is spread evenly from start to end.
    `prices`: ts (UTC), price_per_kwh, the tariff's dynamic series. Columns: PRICED_COLUMNS. Money is unrounded
    and excludes VAT except cost_tax and cost_total; cost_net is the sum held within [min, max] per session.
    Raises InputError for a tariff without bands and without prices, or for bad sessions, intervals or prices.
    """
    segments = _segments_for(tariff, prices)
    s = _sessions_input(sessions)
    if intervals is None:
        intervals = even_intervals(s)
    slices = _priced(_slices(_intervals_input(s, intervals), _grid(segments)), tariff, segments)

    per_session = slices.group_by("_row").agg(
        *(pl.col("kwh").filter(pl.col("band") == b).sum().alias(f"energy_{b}_kwh") for b in BAND_NAMES),
        cost_energy=(pl.col("kwh") * pl.col("price")).sum(),
        unpriced=(pl.col("price").is_null() & (pl.col("kwh") > 0)).any(),
        priced_evenly=pl.col("priced_evenly").any(),
    )
    band_cols = [f"energy_{b}_kwh" for b in BAND_NAMES]
    out = s.join(per_session, on="_row", how="left").with_columns(
        pl.col(band_cols).fill_null(0.0), pl.col("priced_evenly").fill_null(True), pl.col("unpriced").fill_null(False)
    )
    # Float sums over many slices drift by ~1e-15; the residue goes to the largest band so the bands add up.
    residue = pl.col("energy_kwh") - pl.sum_horizontal(band_cols)
    largest = pl.concat_list(band_cols).list.arg_max()
    known = pl.col("energy_kwh").is_not_null()
    out = out.with_columns(
        *(
            pl.when(known).then(pl.col(c) + pl.when(largest == i).then(residue).otherwise(0.0)).alias(c)
            for i, c in enumerate(band_cols)
        ),
        cost_energy=pl.when(known & ~pl.col("unpriced")).then(pl.col("cost_energy")),
    )

    charging_min = _minutes(pl.col("start_utc"), pl.col("end_utc"))
    idle_min = _minutes(pl.col("plug_in_utc"), pl.col("plug_out_utc")) - charging_min
    out = out.with_columns(
        cost_time=tariff.fee_per_min * charging_min,
        # Without both plug times the idle time is unknown, and nobody bills what they cannot show: 0.
        cost_idle=pl.when(pl.col("plug_in_utc").is_not_null() & pl.col("plug_out_utc").is_not_null())
        .then(tariff.idle_fee_per_min * (idle_min - tariff.idle_grace_min).clip(lower_bound=0))
        .otherwise(0.0),
        cost_flat=pl.lit(tariff.fee_per_session),
    )
    net = pl.sum_horizontal("cost_energy", "cost_time", "cost_idle", "cost_flat", ignore_nulls=False)
    out = (
        out.with_columns(cost_net=net.clip(tariff.min_per_session, tariff.max_per_session))
        .with_columns(cost_tax=pl.col("cost_net") * tariff.vat_pct / 100)
        .with_columns(cost_total=pl.col("cost_net") + pl.col("cost_tax"))
        .with_columns(currency=pl.when(pl.col("cost_total").is_not_null()).then(pl.lit(tariff.currency)))
    )
    return out.sort("_row").select(PRICED_COLUMNS)


_PRICED_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    **{f"energy_{b}_kwh": pl.Float64() for b in BAND_NAMES},
    **{c: pl.Float64() for c in PRICED_COLUMNS if c.startswith("cost_")},
    "currency": pl.String(),
    "priced_evenly": pl.Boolean(),
}


def _chosen(choice: pl.DataFrame, tariffs: Sequence[Tariff]) -> dict[str, Tariff]:
    by_name = {t.name: t for t in tariffs}
    unknown = sorted(set(choice.get_column("tariff").drop_nulls().to_list()) - set(by_name))
    if unknown:
        raise InputError(f"Tariff '{unknown[0]}' was chosen but is not defined; add it first.")
    return by_name


def price_chosen(
    sessions: pl.DataFrame,
    intervals: pl.DataFrame | None,
    choice: pl.DataFrame,
    tariffs: Sequence[Tariff],
    prices: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Price every session under its chosen tariff (`choose_tariff` output); columns PRICED_COLUMNS + tariff.

    A session without a tariff has no cost (cost columns and currency null), all its energy in t1 and
    priced_evenly null.
    """
    by_name = _chosen(choice, tariffs)
    # The row index comes before the join, which keeps no order.
    s = sessions.with_row_index("_order").join(choice.select("session_id", "tariff"), on="session_id", how="left")
    parts = []
    for (name,), group in s.group_by("tariff"):
        if name is None:
            parts.append(
                group.select(
                    "_order",
                    "session_id",
                    pl.col("energy_kwh").cast(pl.Float64).alias("energy_t1_kwh"),
                    *(
                        pl.when(pl.col("energy_kwh").is_not_null()).then(0.0).alias(f"energy_{b}_kwh")
                        for b in BAND_NAMES[1:]
                    ),
                    *(pl.lit(None, pl.Float64).alias(c) for c in PRICED_COLUMNS if c.startswith("cost_")),
                    pl.lit(None, pl.String).alias("currency"),
                    pl.lit(None, pl.Boolean).alias("priced_evenly"),
                    "tariff",
                )
            )
            continue
        ids = group.select("session_id")
        own = None if intervals is None else intervals.join(ids, on="session_id")
        priced = price_sessions(group, own, by_name[name], (prices or {}).get(name))
        parts.append(group.select("_order", "session_id", "tariff").join(priced, on="session_id"))
    columns = [*PRICED_COLUMNS, "tariff"]
    if not parts:
        return pl.DataFrame(schema={**_PRICED_SCHEMA, "tariff": pl.String()})
    return (
        pl.concat([p.select("_order", *columns) for p in parts], how="vertical_relaxed").sort("_order").drop("_order")
    )


# ---------------------------------------------------------------------------------------------------------------
# Shifting flexible sessions to the cheapest hours of their plugged-in windows

SHIFT_COLUMNS = (
    "session_id",
    "flexible",
    "shift_power_kw",
    "energy_kwh",
    "cost_energy",
    "cost_energy_shifted",
    "saving",
    "currency",
)
_SHIFT_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "flexible": pl.Boolean(),
    "shift_power_kw": pl.Float64(),
    "energy_kwh": pl.Float64(),
    "cost_energy": pl.Float64(),
    "cost_energy_shifted": pl.Float64(),
    "saving": pl.Float64(),
    "currency": pl.String(),
}
_SHIFT_ENERGY_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.String(),
    "slice_from": UTC_TS,
    "hours": pl.Float64(),
    "price_per_kwh": pl.Float64(),
    "kwh_now": pl.Float64(),
    "kwh_shifted": pl.Float64(),
}
# Sums over slices drift by ~1e-15: a placement has to be cheaper by more than this to count as a saving, and an
# energy remainder below this share of the session's energy is drift, not energy.
_CHEAPER_BY = 1e-9
_NOISE_SHARE = 1e-9
_MICROS_PER_HOUR = 60 * _MICROS_PER_MIN


@dataclass(frozen=True)
class Shift:
    """Where the energy of sessions was charged, and where it would be charged in the cheapest hours.

    `sessions`: SHIFT_COLUMNS (plus `tariff` from shift_chosen), one row per session, in the order given.
    `energy`: session_id, slice_from (the UTC start of a slice of the pricing grid, 15 minutes or finer),
    hours (plugged-in time of a flexible session in the slice; null outside such a window), price_per_kwh (null:
    no price known), kwh_now, kwh_shifted. Sessions with unknown energy have no rows.
    """

    sessions: pl.DataFrame
    energy: pl.DataFrame


def shift_sessions(
    sessions: pl.DataFrame, intervals: pl.DataFrame | None, tariff: Tariff, prices: pl.DataFrame | None = None
) -> Shift:
    """Charge each flexible session's energy in the cheapest slices of its plugged-in window, under one tariff.

    `sessions`: as for price_sessions, plus optionally average_power_kw and max_power_kw. A session is flexible
    when both plug times are known and it stayed plugged in longer than it charged (start to end); its window is
    [plug_in, plug_out] (widened to [start, end] should the data put them inside). Sessions without plug times are
    not flexible. The same energy is then charged at the session's observed average power (average_power_kw, else
    energy over charging time; capped by max_power_kw where known, and never so low that the energy no longer fits
    the window: shift_power_kw) in the cheapest slices of the window. Prices come from the same lookup as
    price_sessions: the band of the local hour in the tariff's time zone (DST-correct), or the dynamic price where
    the series has data. Equal prices go to the earliest slice; slices without a price come last and make the
    shifted cost unknown when used. A flexible session whose placement would not be cheaper (it charged faster
    than its average in the cheap hours) keeps the one it had; every session that keeps its placement saves 0.

    Only the energy cost is compared, VAT excluded: cost_energy (as price_sessions computes it, from the reading
    intervals), cost_energy_shifted and saving = cost_energy - cost_energy_shifted (null where either is unknown).
    Left out on purpose: the per-minute and idle fees (the charging and plugged-in minutes stay the same, so this
    engine would bill them alike, but an operator who bills idle time only after the charge ends would not), the
    session fee (unchanged), and the minimum, maximum and VAT, which apply to a session's whole net amount.
    """
    segments = _segments_for(tariff, prices)
    s = _sessions_input(sessions).with_columns(
        (sessions.get_column(c) if c in sessions.columns else pl.lit(None)).cast(pl.Float64).alias(c)
        for c in ("average_power_kw", "max_power_kw")
    )
    grid = _grid(segments)
    cell = pl.col("slice_from").dt.truncate(grid)
    if intervals is None:
        intervals = even_intervals(s)

    charging_h = (pl.col("end_utc") - pl.col("start_utc")).dt.total_microseconds() / _MICROS_PER_HOUR
    window_h = (pl.col("window_to") - pl.col("window_from")).dt.total_microseconds() / _MICROS_PER_HOUR
    observed = pl.coalesce("average_power_kw", pl.when(charging_h > 0).then(pl.col("energy_kwh") / charging_h))
    capped = pl.when(pl.col("max_power_kw") > 0).then(pl.min_horizontal(observed, "max_power_kw")).otherwise(observed)
    s = (
        s.with_columns(
            window_from=pl.min_horizontal("plug_in_utc", "start_utc"),
            window_to=pl.max_horizontal("plug_out_utc", "end_utc"),
        )
        .with_columns(
            # At least the power that fits the energy into the window, so that the cheapest slices can hold it all.
            shift_power_kw=pl.when(capped.is_not_null()).then(
                pl.max_horizontal(capped, pl.col("energy_kwh") / window_h)
            )
        )
        .with_columns(
            flexible=(
                pl.col("plug_in_utc").is_not_null()
                & pl.col("plug_out_utc").is_not_null()
                & (pl.col("energy_kwh") > 0)
                & (pl.col("shift_power_kw") > 0)
                & pl.col("shift_power_kw").is_finite()
                & (window_h > charging_h)
            ).fill_null(False)
        )
        .with_columns(shift_power_kw=pl.when("flexible").then("shift_power_kw"))
    )

    now = (
        _priced(_slices(_intervals_input(s, intervals), grid), tariff, segments)
        .filter(pl.col("kwh").is_not_null())
        .group_by("_row", cell.alias("slice_from"))
        .agg(kwh_now=pl.col("kwh").sum(), price_now=pl.col("price").first())
    )
    flex = s.filter("flexible")
    window = _slices(
        flex.select(
            "_row",
            from_utc="window_from",
            to_utc="window_to",
            energy_kwh=pl.lit(0.0),  # only the slice times of the window are used
            priced_evenly=pl.lit(False),
        ),
        grid,
    ).with_columns(hours=(pl.col("slice_to") - pl.col("slice_from")).dt.total_microseconds() / _MICROS_PER_HOUR)
    capacity = pl.col("hours") * pl.col("shift_power_kw")
    remaining = pl.col("energy_kwh") - pl.col("before")
    window = (
        _priced(window, tariff, segments)
        .with_columns(slice_from=cell)
        .join(flex.select("_row", "energy_kwh", "shift_power_kw"), on="_row")
        .with_columns(
            before=(capacity.cum_sum() - capacity).over(
                "_row", order_by=[pl.col("price").fill_null(float("inf")), pl.col("slice_from")]
            )
        )
        .with_columns(
            kwh_greedy=pl.when(remaining > _NOISE_SHARE * pl.col("energy_kwh"))
            .then(remaining.clip(0.0, capacity))
            .otherwise(0.0)
        )
        # The capacity holds the energy by construction; scaling removes the float residue of the running sums.
        .with_columns(kwh_greedy=pl.col("kwh_greedy") * pl.col("energy_kwh") / pl.col("kwh_greedy").sum().over("_row"))
    )

    def cost(kwh: str, price: str, name: str) -> list[pl.Expr]:
        return [
            (pl.col(kwh) * pl.col(price)).sum().alias(name),
            (pl.col(price).is_null() & (pl.col(kwh) > 0)).any().alias(f"{name}_unpriced"),
        ]

    out = (
        s.join(now.group_by("_row").agg(cost("kwh_now", "price_now", "now")), on="_row", how="left")
        .join(window.group_by("_row").agg(cost("kwh_greedy", "price", "greedy")), on="_row", how="left")
        .with_columns(
            cost_energy=pl.when(pl.col("energy_kwh").is_not_null() & ~pl.col("now_unpriced").fill_null(False)).then(
                pl.col("now").fill_null(0.0)
            )
        )
        .with_columns(
            moved=(
                pl.col("flexible")
                & ~pl.col("greedy_unpriced")
                & (pl.col("greedy") < pl.col("cost_energy") - _CHEAPER_BY)
            ).fill_null(False)
        )
        .with_columns(cost_energy_shifted=pl.when("moved").then("greedy").otherwise("cost_energy"))
        .with_columns(
            saving=pl.col("cost_energy") - pl.col("cost_energy_shifted"),
            currency=pl.when(pl.col("cost_energy").is_not_null()).then(pl.lit(tariff.currency)),
        )
        .sort("_row")
    )

    energy = (
        now.join(
            window.select("_row", "slice_from", "hours", "price", "kwh_greedy"),
            on=["_row", "slice_from"],
            how="full",
            coalesce=True,
        )
        .join(out.select("_row", "session_id", "moved"), on="_row")
        .with_columns(
            price_per_kwh=pl.coalesce("price_now", "price"),
            kwh_now=pl.col("kwh_now").fill_null(0.0),
            kwh_shifted=pl.when("moved").then(pl.col("kwh_greedy").fill_null(0.0)).otherwise(pl.col("kwh_now")),
        )
        .with_columns(kwh_shifted=pl.col("kwh_shifted").fill_null(0.0))
        .sort("_row", "slice_from")
        .select(list(_SHIFT_ENERGY_SCHEMA))
    )
    return Shift(sessions=out.select(SHIFT_COLUMNS), energy=energy)


def shift_chosen(
    sessions: pl.DataFrame,
    intervals: pl.DataFrame | None,
    choice: pl.DataFrame,
    tariffs: Sequence[Tariff],
    prices: Mapping[str, pl.DataFrame] | None = None,
) -> Shift:
    """`shift_sessions` with every session under its chosen tariff (`choose_tariff` output, or one what-if tariff
    for all); `sessions` gets a tariff column. A session without a tariff has no price, so it is not flexible, its
    money is null and it has no energy rows."""
    by_name = _chosen(choice, tariffs)
    s = sessions.with_row_index("_order").join(choice.select("session_id", "tariff"), on="session_id", how="left")
    parts, energy = [], []
    for name in sorted(set(s.get_column("tariff").drop_nulls().to_list())):
        group = s.filter(pl.col("tariff") == name)
        own = None if intervals is None else intervals.join(group.select("session_id"), on="session_id")
        shifted = shift_sessions(group, own, by_name[name], (prices or {}).get(name))
        parts.append(group.select("_order", "tariff").with_columns(shifted.sessions))
        energy.append(shifted.energy)
    unpriced = {c: pl.lit(None, d) for c, d in _SHIFT_SCHEMA.items()} | {
        "session_id": pl.col("session_id"),
        "flexible": pl.lit(False),
        "energy_kwh": pl.col("energy_kwh").cast(pl.Float64),
    }
    parts.append(
        s.filter(pl.col("tariff").is_null()).select("_order", "tariff", *(e.alias(c) for c, e in unpriced.items()))
    )
    columns = [*SHIFT_COLUMNS, "tariff"]
    return Shift(
        sessions=pl.concat([p.select("_order", *columns) for p in parts], how="vertical_relaxed")
        .sort("_order")
        .select(columns),
        energy=pl.concat(energy) if energy else pl.DataFrame(schema=_SHIFT_ENERGY_SCHEMA),
    )


def shift_summary(sessions: pl.DataFrame, shifted: pl.DataFrame, period: str, timezone: str) -> pl.DataFrame:
    """Per local period, entity and currency: sessions, flexible ones, energy and the energy cost now and shifted.

    `sessions`: session_id, entity_id, start_utc; `shifted`: Shift.sessions. Money sums cover the sessions with
    both costs known and is null where there is none (sessions without a tariff have a null currency).
    """
    period_start = _period_start(period, timezone)
    compared = pl.col("cost_energy").is_not_null() & pl.col("cost_energy_shifted").is_not_null()
    some = pl.col("sessions_compared") > 0
    money = ("cost_energy", "cost_energy_shifted", "saving")
    return (
        sessions.select("session_id", pl.col("entity_id").cast(pl.String), _utc(sessions, "start_utc"))
        .join(shifted, on="session_id", how="left")
        .with_columns(period_start=period_start)
        .group_by("period_start", "entity_id", "currency")
        .agg(
            pl.len().alias("sessions"),
            pl.col("flexible").fill_null(False).sum(),
            compared.sum().alias("sessions_compared"),
            pl.col("energy_kwh").sum(),
            *(pl.col(c).filter(compared).sum() for c in money),
        )
        .with_columns(pl.when(some).then(pl.col(c)).alias(c) for c in money)
        .sort("period_start", "entity_id", "currency", nulls_last=True)
        .select("period_start", "entity_id", "sessions", "flexible", "energy_kwh", *money, "currency")
    )


def shift_profile(energy: pl.DataFrame, timezone: str) -> pl.DataFrame:
    """Per local hour of the day (0..23 in `timezone`): energy charged now and if shifted, and the price on offer.

    `energy`: Shift.energy. price_per_kwh is the time-weighted mean price over the plugged-in windows of the
    flexible sessions in that hour (null where there were none); it mixes currencies if the tariffs do.
    """
    timezone = _zone(timezone)
    offered = pl.col("hours").is_not_null() & pl.col("price_per_kwh").is_not_null()
    hours = pl.DataFrame({"hour": list(range(24))}, schema={"hour": pl.Int8})
    per_hour = (
        energy.with_columns(hour=pl.col("slice_from").dt.convert_time_zone(timezone).dt.hour())
        .group_by("hour")
        .agg(
            energy_now_kwh=pl.col("kwh_now").sum(),
            energy_shifted_kwh=pl.col("kwh_shifted").sum(),
            price_hours=pl.col("hours").filter(offered).sum(),
            price_sum=(pl.col("price_per_kwh") * pl.col("hours")).filter(offered).sum(),
        )
        .with_columns(pl.col("hour").cast(pl.Int8))
    )
    return (
        hours.join(per_hour, on="hour", how="left")
        .with_columns(
            pl.col("energy_now_kwh", "energy_shifted_kwh").fill_null(0.0),
            price_per_kwh=pl.when(pl.col("price_hours") > 0).then(pl.col("price_sum") / pl.col("price_hours")),
        )
        .sort("hour")
        .select("hour", "energy_now_kwh", "energy_shifted_kwh", "price_per_kwh")
    )


# ---------------------------------------------------------------------------------------------------------------
# What-if and money


def _zone(timezone: str) -> str:
    try:
        return _timezone(timezone)
    except InputError:
        raise InputError(f"Unknown time zone {timezone!r}; use a name such as Europe/Brussels.") from None


def _period_start(period: str, timezone: str) -> pl.Expr:
    """The local day, Monday or first of the month (in `timezone`) on which start_utc's period starts."""
    if period not in PERIODS:
        raise InputError(f"The period must be day, week or month, not {period!r}.", errors={"period": "day|week|month"})
    zone = _zone(timezone)
    return pl.col("start_utc").dt.convert_time_zone(zone).dt.date().dt.truncate(PERIODS[period])


def whatif(actual: pl.DataFrame, other: pl.DataFrame, period: str, timezone: str) -> pl.DataFrame:
    """Per local period and entity: actual cost, cost under another tariff, and the difference (what-if − actual).

    `actual`: session_id, entity_id, start_utc, cost_total, currency; `other`: session_id, cost_total, currency.
    Sums cover the sessions priced in both (`sessions_compared` of `sessions`), so the difference compares
    like with like; they are null where no session of the group was priced in both. Periods start on the
    local day, on Monday, or on the first of the month in `timezone`.
    """
    period_start = _period_start(period, timezone)
    both = actual.select(
        "session_id",
        pl.col("entity_id").cast(pl.String),
        _utc(actual, "start_utc"),
        pl.col("cost_total").cast(pl.Float64).alias("actual"),
        pl.col("currency").cast(pl.String).alias("currency_actual"),
    ).join(
        other.select(
            "session_id",
            pl.col("cost_total").cast(pl.Float64).alias("whatif"),
            pl.col("currency").cast(pl.String).alias("currency_whatif"),
        ),
        on="session_id",
        how="left",
    )
    currencies = sorted(
        set(both.get_column("currency_actual").drop_nulls()) | set(both.get_column("currency_whatif").drop_nulls())
    )
    if len(currencies) > 1:
        raise InputError(f"The sessions are priced in {' and '.join(currencies)}; compare tariffs in one currency.")
    compared = pl.col("actual").is_not_null() & pl.col("whatif").is_not_null()
    some = pl.col("sessions_compared") > 0
    return (
        both.with_columns(period_start=period_start)
        .group_by("period_start", "entity_id")
        .agg(
            sessions=pl.len(),
            sessions_compared=compared.sum(),
            actual=pl.col("actual").filter(compared).sum(),
            whatif=pl.col("whatif").filter(compared).sum(),
        )
        .with_columns(actual=pl.when(some).then("actual"), whatif=pl.when(some).then("whatif"))
        .with_columns(
            difference=pl.col("whatif") - pl.col("actual"),
            currency=pl.when(some).then(pl.lit(currencies[0] if currencies else None, pl.String)),
        )
        .sort("period_start", "entity_id")
    )


def round_money(x: float | None) -> float | None:
    """Round to 2 decimals, half away from zero, once, for display and export (None stays None)."""
    if x is None or math.isnan(x):
        return None
    # Six decimals of cents first drop binary noise: 2.675 is stored as 2.67499999..., yet people mean 2.675.
    cents = round(abs(x) * 100, 6)
    return math.copysign(math.floor(cents + 0.5), x) / 100 + 0.0  # + 0.0 turns -0.0 into 0.0


def round_money_expr(expr: pl.Expr | str) -> pl.Expr:
    """`round_money` for a frame column."""
    col = pl.col(expr) if isinstance(expr, str) else expr
    size = ((col.abs() * 100).round(6) + 0.5).floor() / 100
    # Branches rather than a sign multiply, which would give -0.0 for small negative amounts.
    return pl.when(col.is_nan()).then(None).when((size == 0) | (col > 0)).then(size.abs()).otherwise(-size)
