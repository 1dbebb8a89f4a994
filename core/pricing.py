"""Prices stored sessions with the tariff engine, and manages tariffs, assignments and dynamic prices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from core import costs
from core.errors import ChargeLensError, InputError, NotFound, unknown_entity
from core.importers import read_bytes
from core.store import BEST_LABEL, Store


def load_tariffs(tx: duckdb.DuckDBPyConnection) -> tuple[list[costs.Tariff], pl.DataFrame, dict[str, pl.DataFrame]]:
    rows = tx.execute("SELECT name, body FROM tariffs ORDER BY name").fetchall()
    prices = tx.sql("SELECT tariff, ts, price_per_kwh FROM prices ORDER BY tariff, ts").pl()
    series = {name: group.drop("tariff") for (name,), group in prices.group_by("tariff")}
    tariffs = [costs.parse_tariff(json.loads(body), has_prices=name in series) for name, body in rows]
    assignments = tx.sql("SELECT tariff, scope, target FROM tariff_assignments ORDER BY ALL").pl()
    return tariffs, assignments, series


def reading_intervals(tx: duckdb.DuckDBPyConnection, sessions: pl.DataFrame, max_gap_min: float) -> pl.DataFrame | None:
    """The reading intervals of detected sessions (imported ones have none and are spread evenly)."""
    detected = sessions.filter(pl.col("source") == "detected")
    if detected.height == 0:
        return None
    readings = tx.sql(
        "SELECT entity_id, ts, power_kw, energy_kwh FROM readings WHERE entity_id IN (SELECT unnest(?)) "
        "AND ts BETWEEN ? - INTERVAL 1 DAY AND ? + INTERVAL 1 DAY ORDER BY entity_id, ts",
        params=[
            detected.get_column("entity_id").unique().to_list(),
            detected["start_utc"].min(),
            detected["end_utc"].max(),
        ],
    ).pl()
    return costs.intervals_from_readings(readings, detected, max_gap_min=max_gap_min)


def reprice(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str] | None, max_gap_min: float) -> int:
    """Price the sessions of these entities (None = all) per reading interval; store bands, costs and currency."""
    scope, params = (
        ("WHERE s.entity_id IN (SELECT unnest(?))", [list(entity_ids)]) if entity_ids is not None else ("", [])
    )
    sessions = tx.sql(
        "SELECT s.session_id, s.entity_id, s.start_utc, s.end_utc, s.plug_in_utc, s.plug_out_utc, s.energy_kwh, "
        f"s.source, s.flags, {BEST_LABEL} AS location_label FROM sessions s {scope} ORDER BY s.session_id",
        params=params or None,
    ).pl()
    if sessions.height == 0:
        return 0
    tariffs, assignments, series = load_tariffs(tx)
    if tariffs:
        choice = costs.choose_tariff(sessions, assignments, tariffs)
    else:
        choice = sessions.select("session_id", pl.lit(None, pl.String).alias("tariff"))
    priced_any = choice.get_column("tariff").is_not_null().any()
    intervals = reading_intervals(tx, sessions, max_gap_min) if priced_any else None
    priced = costs.price_chosen(sessions, intervals, choice, tariffs, series)
    flags = sessions.select(
        "session_id",
        pl.col("flags")
        .fill_null("")
        .str.split(",")
        .list.eval(pl.element().filter((pl.element() != "") & (pl.element() != "priced_evenly")))
        .alias("__flags"),
    )
    update = priced.join(flags, on="session_id").with_columns(
        flags=pl.when(pl.col("priced_evenly").fill_null(False))
        .then(pl.col("__flags").list.concat(pl.lit(["priced_evenly"])))
        .otherwise(pl.col("__flags"))
        .list.join(",")
    )
    columns = [c for c in costs.PRICED_COLUMNS if c not in ("session_id", "cost_net", "priced_evenly")] + ["flags"]
    frame = update.select("session_id", *columns)  # noqa: F841 (read by DuckDB's replacement scan)
    assignments_sql = ", ".join(f"{c} = u.{c}" for c in columns)
    tx.execute(f"UPDATE sessions SET {assignments_sql} FROM frame u WHERE sessions.session_id = u.session_id")
    return update.height


def add_tariff(store: Store, body: dict, max_gap_min: float, prices: pl.DataFrame | None = None) -> costs.Tariff:
    """Add (or replace, by name) a tariff, with its dynamic prices (`read_prices`) when given, in one transaction.

    A tariff without bands needs prices: given here or stored before. Refused when it leaves an hour uncovered,
    overlaps another or its price series has no usable step; nothing is written then.
    """
    with store.transaction() as tx:
        has_prices = prices is not None and prices.height > 0
        has_prices = has_prices or bool(
            tx.execute("SELECT count(*) FROM prices WHERE tariff = ?", [body.get("name")]).fetchall()[0][0]
        )
        tariff = costs.parse_tariff(body, has_prices=has_prices)
        tx.execute(
            "INSERT INTO tariffs (name, body) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            [tariff.name, json.dumps(tariff.to_body())],
        )
        if prices is not None:
            _upsert_prices(tx, prices, tariff.name)
        tariffs, assignments, _ = load_tariffs(tx)
        costs.check_overlap(tariffs, assignments)
        reprice(tx, None, max_gap_min)
    return tariff


def save_tariff(store: Store, body: dict, prices: pl.DataFrame | None = None) -> dict:
    """`add_tariff` as `tariffs add` reports it: the tariff as saved and how many prices came with it (or None)."""
    tariff = add_tariff(store, body, store.settings().max_gap_min, prices)
    return {"tariff": tariff.to_body(), "prices": None if prices is None else prices.height}


def assign_tariff(store: Store, name: str, scope: str, target: str, max_gap_min: float) -> None:
    """Assign a tariff as the default, to every location with a label, or to an entity; then reprice."""
    if scope not in costs.SCOPES:
        raise InputError(f"Assign a tariff to a location, an entity or as the default, not '{scope}'.")
    with store.transaction() as tx:
        if not tx.execute("SELECT count(*) FROM tariffs WHERE name = ?", [name]).fetchall()[0][0]:
            raise NotFound(f"There is no tariff '{name}'; add it first with `tariffs add FILE`.")
        if (
            scope == "entity"
            and not tx.execute("SELECT count(*) FROM entities WHERE entity_id = ?", [target]).fetchall()[0][0]
        ):
            raise unknown_entity(target)
        if (
            scope == "location"
            and not tx.execute("SELECT count(*) FROM locations WHERE label = ?", [target]).fetchall()[0][0]
        ):
            raise NotFound(f"There is no location labelled '{target}'; list locations to see the labels.")
        tx.execute(
            "INSERT INTO tariff_assignments VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [name, scope, target if scope != "default" else ""],
        )
        tariffs, assignments, _ = load_tariffs(tx)
        costs.check_overlap(tariffs, assignments)
        reprice(tx, None, max_gap_min)


def read_prices(data: bytes, name: str) -> pl.DataFrame:
    """A dynamic price series from CSV `ts,price_per_kwh` (times with Z or an offset): ts (UTC), price_per_kwh.

    `name` is the file name used in messages. A repeated time keeps its last price.
    """
    try:
        frame = pl.read_csv(data, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{name} could not be read as CSV ({str(exc).splitlines()[0][:200]}).") from None
    if not {"ts", "price_per_kwh"} <= set(frame.columns):
        raise InputError(f"{name} needs the columns ts and price_per_kwh; found {', '.join(frame.columns)}.")
    from core.importers.times import parse_times

    frame = frame.with_row_index("__row", offset=2).with_columns(pl.col("__row").cast(pl.Int64))
    times = parse_times(frame, "ts", None, None, "Z or an offset on every time (price files are not in local time)")
    prices = frame.select("__row", pl.col("price_per_kwh").str.strip_chars().cast(pl.Float64, strict=False)).join(
        times.frame.select("__row", "ts", "__ts_reason"), on="__row"
    )
    bad = prices.filter(
        pl.col("ts").is_null() | pl.col("__ts_reason").is_not_null() | pl.col("price_per_kwh").is_null()
    )
    if bad.height:
        raise InputError(
            f"{name} row {bad['__row'][0]}: needs an ISO time with Z or an offset and a number "
            f"price; {bad.height} such rows. Fix them and import again."
        )
    if prices.height == 0:
        raise InputError(f"{name} holds no prices; give one row per time: ts,price_per_kwh.")
    return prices.select("ts", "price_per_kwh").unique("ts", keep="last").sort("ts")


def _upsert_prices(tx: duckdb.DuckDBPyConnection, series: pl.DataFrame, tariff: str) -> None:
    """Store prices (later ones replace stored ones at the same time), then check the whole series is usable."""
    frame = series.select("ts", "price_per_kwh")  # noqa: F841 (read by DuckDB's replacement scan)
    tx.execute(
        "INSERT INTO prices SELECT ?, ts, price_per_kwh FROM frame ON CONFLICT (tariff, ts) DO UPDATE SET "
        "price_per_kwh = excluded.price_per_kwh",
        [tariff],
    )
    stored = tx.sql("SELECT ts, price_per_kwh FROM prices WHERE tariff = ? ORDER BY ts", params=[tariff]).pl()
    costs.check_prices(stored)


def import_prices(store: Store, path: Path, tariff: str, max_gap_min: float) -> int:
    """A dynamic price series (CSV `ts,price_per_kwh`) for a tariff; later prices replace stored ones."""
    return store_prices(store, read_prices(read_bytes(path), path.name), tariff, max_gap_min)


def store_prices(store: Store, series: pl.DataFrame, tariff: str, max_gap_min: float) -> int:
    """Add a price series (`read_prices`) to an existing tariff and price the sessions again; the count stored."""
    with store.transaction() as tx:
        if not tx.execute("SELECT count(*) FROM tariffs WHERE name = ?", [tariff]).fetchall()[0][0]:
            raise NotFound(f"There is no tariff '{tariff}'; add it first with `tariffs add FILE`.")
        _upsert_prices(tx, series, tariff)
        reprice(tx, None, max_gap_min)
    return series.height


def whatif(store: Store, tariff: str, flt, period: str = "month") -> pl.DataFrame:
    """Actual cost next to the cost under another tariff, per period and entity, for the filtered sessions."""
    from core.queries import sessions as session_rows

    rows = session_rows(store, flt)
    with store.transaction() as tx:
        tariffs, _, series = load_tariffs(tx)
        chosen = next((t for t in tariffs if t.name == tariff), None)
        if chosen is None:
            raise NotFound(f"There is no tariff '{tariff}'; add it first with `tariffs add FILE`.")
        intervals = reading_intervals(tx, rows, store.settings().max_gap_min)
    if rows.height == 0:
        raise ChargeLensError("No sessions match the filter; widen the period or the entities.", title="NoSessions")
    other = costs.price_sessions(rows, intervals, chosen, series.get(tariff))
    return costs.whatif(rows, other, period, store.settings().display_timezone)


def whatif_records(frame: pl.DataFrame) -> list[dict]:
    """`whatif` rows as `costs whatif` and the API show them: the period's first day as text, money rounded once."""
    money = ("actual", "whatif", "difference")
    return [{**r, "period_start": str(r["period_start"]), **{k: costs.round_money(r[k]) for k in money}}
            for r in frame.to_dicts()]  # fmt: skip


@dataclass(frozen=True)
class ShiftReport:
    """The cheapest hours to charge for the filtered sessions: flexible sessions moved within their plugged-in time.

    Money is energy cost only, VAT excluded (core.costs.shift_sessions says what is left out and why).
    """

    sessions: pl.DataFrame  # per session: entity_id, start_utc, then core.costs.SHIFT_COLUMNS and tariff
    totals: pl.DataFrame  # per local period, entity and currency (core.costs.shift_summary)
    profile: pl.DataFrame  # per local hour of the display time zone (core.costs.shift_profile)

    @property
    def currency(self) -> str | None:
        """The one currency of the money, or None when there is none or several."""
        found = self.totals.get_column("currency").drop_nulls().unique().to_list()
        return found[0] if len(found) == 1 else None

    @property
    def saving(self) -> float | None:
        """The saving over all compared sessions, or None unless they are priced in one currency."""
        return None if self.currency is None else float(self.totals.get_column("saving").sum())


def shift(store: Store, flt, tariff: str | None = None, period: str = "month") -> ShiftReport:
    """Shift the filtered sessions to the cheapest hours of their plugged-in windows.

    Under each session's assigned tariff (`tariff` None; sessions without one are left out of the money), or
    under the named tariff for all of them, as a what-if. Totals and the hour profile use `display_timezone`.
    """
    from core.queries import sessions as session_rows

    rows = session_rows(store, flt)
    settings = store.settings()
    with store.transaction() as tx:
        tariffs, assignments, series = load_tariffs(tx)
        if tariff is not None and all(t.name != tariff for t in tariffs):
            raise NotFound(f"There is no tariff '{tariff}'; add it first with `tariffs add FILE`.")
        if rows.height == 0:
            raise ChargeLensError("No sessions match the filter; widen the period or the entities.", title="NoSessions")
        if tariff is not None:
            choice = rows.select("session_id", pl.lit(tariff).alias("tariff"))
        elif tariffs:
            choice = costs.choose_tariff(rows, assignments, tariffs)
        else:
            choice = rows.select("session_id", pl.lit(None, pl.String).alias("tariff"))
        priced_any = choice.get_column("tariff").is_not_null().any()
        intervals = reading_intervals(tx, rows, settings.max_gap_min) if priced_any else None
    shifted = costs.shift_chosen(rows, intervals, choice, tariffs, series)
    return ShiftReport(
        sessions=rows.select("session_id", "entity_id", "start_utc").join(shifted.sessions, on="session_id"),
        totals=costs.shift_summary(rows, shifted.sessions, period, settings.display_timezone),
        profile=costs.shift_profile(shifted.energy, settings.display_timezone),
    )
