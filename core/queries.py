"""Read-side queries as data: filters become SQL with bound parameters, shared by pages, API, CLI and exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from core.store import Query, Store


@dataclass(frozen=True)
class SessionFilter:
    start: datetime | None = None  # sessions whose start is in [start, end)
    end: datetime | None = None
    entity_ids: tuple[str, ...] = ()
    entity_type: str | None = None
    location: str | None = None  # a location label
    method: str | None = None
    source: str | None = None
    only_enabled: bool = True  # detected sessions of entities with capture off are hidden
    limit: int | None = None
    extra: dict = field(default_factory=dict)

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.start is not None:
            clauses.append("s.start_utc >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append("s.start_utc < ?")
            params.append(self.end)
        if self.entity_ids:
            clauses.append("s.entity_id IN (SELECT unnest(?))")
            params.append(list(self.entity_ids))
        for column, value in (
            ("e.entity_type", self.entity_type),
            ("s.method", self.method),
            ("s.source", self.source),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.location:
            clauses.append(
                "s.session_id IN (SELECT sl.session_id FROM session_locations sl JOIN locations l "
                "USING (location_id) WHERE l.label = ?)"
            )
            params.append(self.location)
        if self.only_enabled:
            clauses.append(
                "(s.source <> 'detected' OR EXISTS (SELECT 1 FROM features f WHERE f.entity_id = s.entity_id "
                "AND f.feature = 'CaptureChargeSessions' AND f.enabled))"
            )
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_BEST_MATCH = """
LEFT JOIN (
    SELECT session_id, label AS location_label, accuracy AS location_accuracy FROM (
        SELECT sl.session_id, l.label, sl.accuracy,
               row_number() OVER (PARTITION BY sl.session_id ORDER BY sl.accuracy DESC, l.label) AS rn
        FROM session_locations sl JOIN locations l USING (location_id)) WHERE rn = 1
) m USING (session_id)"""


def sessions_query(flt: SessionFilter) -> Query:
    where, params = flt.where()
    limit = f" LIMIT {int(flt.limit)}" if flt.limit else ""
    sql = (
        "SELECT s.*, e.entity_type, e.name AS entity_name, m.location_label, m.location_accuracy, "
        "date_diff('second', s.start_utc, s.end_utc) / 60.0 AS duration_min "
        f"FROM sessions s JOIN entities e USING (entity_id) {_BEST_MATCH}{where} "
        f"ORDER BY s.start_utc, s.entity_id, s.session_id{limit}"
    )
    return Query(sql, tuple(params))


def sessions(store: Store, flt: SessionFilter = SessionFilter()) -> pl.DataFrame:
    return store.frame(sessions_query(flt))


def overview(store: Store) -> dict:
    """Key figures of what is loaded."""
    row = (
        store.cursor()
        .execute(
            "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM readings), (SELECT count(*) FROM sessions), "
            "(SELECT sum(energy_kwh) FROM sessions), (SELECT min(start_utc) FROM sessions), "
            "(SELECT max(end_utc) FROM sessions), (SELECT max(imported) FROM imports)"
        )
        .fetchall()[0]
    )
    keys = ("entities", "readings", "sessions", "energy_kwh", "first_start", "last_end", "last_import")
    return dict(zip(keys, row, strict=True))


def energy_per_period(store: Store, flt: SessionFilter, period: str, timezone: str) -> pl.DataFrame:
    """Energy per day/week/month in the display time zone, per method."""
    if period not in ("day", "week", "month"):
        raise ValueError(period)
    where, params = flt.where()
    return store.frame(
        f"SELECT date_trunc('{period}', timezone(?, s.start_utc)) AS period, s.method, "
        "sum(s.energy_kwh) AS energy_kwh, count(*) AS sessions "
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY ALL ORDER BY period, s.method",
        [timezone, *params],
    )


def imports(store: Store, limit: int = 50) -> pl.DataFrame:
    return store.frame("SELECT * FROM imports ORDER BY imported DESC LIMIT ?", [limit])


def session_readings(store: Store, session: dict, margin_min: int = 30) -> pl.DataFrame:
    """The readings around one session, for its detail curve."""
    return store.frame(
        "SELECT ts, power_kw, soc_pct, energy_kwh FROM readings WHERE entity_id = ? AND ts BETWEEN "
        "? - INTERVAL (?) MINUTE AND ? + INTERVAL (?) MINUTE ORDER BY ts",
        [session["entity_id"], session["start_utc"], margin_min, session["end_utc"], margin_min],
    )


def location_summary(store: Store) -> pl.DataFrame:
    """Every location with the number and energy of sessions that match it best."""
    return store.frame(
        "SELECT l.label, coalesce(l.entity_id, 'all entities') AS scope, l.latitude, l.longitude, l.radius_m, "
        "count(m.session_id) AS sessions, coalesce(sum(s.energy_kwh), 0) AS energy_kwh, l.location_id "
        "FROM locations l LEFT JOIN session_locations m USING (location_id) LEFT JOIN sessions s USING (session_id) "
        "GROUP BY ALL ORDER BY l.label, scope"
    )


def tariffs(store: Store) -> pl.DataFrame:
    return store.frame(
        "SELECT t.name, json_extract_string(t.body, '$.currency') AS currency, "
        "json_extract_string(t.body, '$.timezone') AS timezone, t.body, "
        "string_agg(CASE a.scope WHEN 'default' THEN 'default' ELSE a.scope || ' ' || a.target END, ', ') "
        "AS assigned FROM tariffs t LEFT JOIN tariff_assignments a ON a.tariff = t.name GROUP BY ALL ORDER BY t.name"
    )


def session_positions(store: Store, decimals: int | None) -> pl.DataFrame:
    """Session positions for a map: exact only when allowed, else rounded (3 decimals is about 100 m)."""
    frame = store.frame(
        "SELECT coalesce(s.latitude, e.latitude) AS latitude, coalesce(s.longitude, e.longitude) AS longitude, "
        "count(*) AS sessions FROM sessions s JOIN entities e USING (entity_id) "
        "WHERE coalesce(s.latitude, e.latitude) IS NOT NULL GROUP BY ALL"
    )
    if decimals is None:
        return frame
    return (
        frame.with_columns(pl.col("latitude", "longitude").round(decimals))
        .group_by("latitude", "longitude")
        .agg(pl.col("sessions").sum())
        .sort("latitude", "longitude")
    )


def filter_choices(store: Store) -> dict[str, list[str]]:
    """The values each filter can take, from what is stored."""

    def distinct(sql: str) -> list[str]:
        return [r[0] for r in store.cursor().execute(sql).fetchall() if r[0] is not None]

    return {
        "entities": distinct("SELECT entity_id FROM entities ORDER BY entity_id"),
        "entity_type": distinct("SELECT DISTINCT entity_type FROM entities ORDER BY 1"),
        "location": distinct("SELECT DISTINCT label FROM locations ORDER BY 1"),
        "method": distinct("SELECT DISTINCT method FROM sessions ORDER BY 1"),
        "source": distinct("SELECT DISTINCT source FROM sessions ORDER BY 1"),
    }


def costs_by(store: Store, flt: SessionFilter, by: str, timezone: str) -> pl.DataFrame:
    """Sessions, energy and cost per entity, location or local day/week/month, per currency."""
    keys = {
        "entity": "s.entity_id",
        "location": "coalesce(m.location_label, '(no location)')",
        "day": "date_trunc('day', timezone(?, s.start_utc))",
        "week": "date_trunc('week', timezone(?, s.start_utc))",
        "month": "date_trunc('month', timezone(?, s.start_utc))",
    }
    if by not in keys:
        raise ValueError(by)
    where, params = flt.where()
    lead = [timezone] if by in ("day", "week", "month") else []
    return store.frame(
        f"SELECT {keys[by]} AS {by}, coalesce(s.currency, 'no tariff') AS currency, count(*) AS sessions, "
        "sum(s.energy_kwh) AS energy_kwh, sum(s.cost_total) AS cost_total "
        f"FROM sessions s JOIN entities e USING (entity_id) {_BEST_MATCH}{where} GROUP BY ALL ORDER BY 1, 2",
        [*lead, *params],
    )
