"""Read-side queries as data: filters become SQL with bound parameters, shared by pages, API, CLI and exports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from core.store import BEST_ACCURACY, BEST_LABEL, Query, Store


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


def sessions_query(flt: SessionFilter) -> Query:
    where, params = flt.where()
    limit = f" LIMIT {int(flt.limit)}" if flt.limit else ""
    sql = (
        "SELECT s.* EXCLUDE (matches_json), e.entity_type, e.name AS entity_name, "
        f"{BEST_LABEL} AS location_label, {BEST_ACCURACY} AS location_accuracy, "
        "date_diff('second', s.start_utc, s.end_utc) / 60.0 AS duration_min "
        f"FROM sessions s JOIN entities e USING (entity_id){where} "
        f"ORDER BY s.start_utc, s.entity_id, s.session_id{limit}"
    )
    return Query(sql, tuple(params))


def sessions(store: Store, flt: SessionFilter = SessionFilter()) -> pl.DataFrame:
    return store.frame(sessions_query(flt))


def latest_sessions(store: Store, flt: SessionFilter, limit: int) -> pl.DataFrame:
    """The `limit` filtered sessions that start last, in start order: a table a page can send to the browser
    (100 000 sessions are about 24 MB of Arrow to decode and draw)."""
    query = sessions_query(replace(flt, limit=None))
    return store.frame(
        f"SELECT * FROM (SELECT * FROM ({query.sql}) ORDER BY start_utc DESC, entity_id DESC, session_id DESC "
        "LIMIT ?) ORDER BY start_utc, entity_id, session_id",
        [*query.params, limit],
    )


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


def totals(store: Store, flt: SessionFilter) -> dict:
    """Sessions, energy and the span of the filtered sessions: the line every filtered page shows."""
    where, params = flt.where()
    row = store.frame(
        "SELECT count(*) AS sessions, coalesce(sum(s.energy_kwh), 0)::DOUBLE AS energy_kwh, "
        "min(s.start_utc) AS first_start, max(s.end_utc) AS last_end "
        f"FROM sessions s JOIN entities e USING (entity_id){where}",
        params,
    ).row(0, named=True)
    return row


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


def jobs(store: Store, timezone: str, limit: int = 20) -> pl.DataFrame:
    """The latest long work (imports, detections, remote pulls): running ones first, then by start, newest first.

    Columns: kind, subject, state, started and finished (local time as text), seconds, outcome."""
    return store.frame(
        "SELECT kind, subject, state, strftime(timezone(?, started), '%Y-%m-%d %H:%M:%S') AS started, "
        "strftime(timezone(?, finished), '%Y-%m-%d %H:%M:%S') AS finished, "
        "round(date_diff('millisecond', started, coalesce(finished, now())) / 1000.0, 1)::DOUBLE AS seconds, "
        "outcome FROM jobs ORDER BY state = 'running' DESC, jobs.started DESC, job_id LIMIT ?",
        [timezone, timezone, limit],
    )


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
        "AS assigned, coalesce(any_value(p.prices), 0) AS prices FROM tariffs t "
        "LEFT JOIN tariff_assignments a ON a.tariff = t.name "
        "LEFT JOIN (SELECT tariff, count(*) AS prices FROM prices GROUP BY tariff) p ON p.tariff = t.name "
        "GROUP BY t.name, t.body ORDER BY t.name"
    )


def tariff_records(store: Store) -> list[dict]:
    """Each tariff as its JSON (SPEC section 5) and where it is assigned, as `tariffs list --json` shows it."""
    return [{**json.loads(r["body"]), "assigned": r["assigned"]} for r in tariffs(store).to_dicts()]


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
        "location": f"coalesce({BEST_LABEL}, '(no location)')",
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
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY ALL ORDER BY 1, 2",
        [*lead, *params],
    )


# -- Timeline, Overview and reports ------------------------------------------------------------------
_FILTERED = "SELECT s.* FROM sessions s JOIN entities e USING (entity_id)"
_WEEKDAYS = "['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']"


def _and(where: str, condition: str) -> str:
    """Add one fixed condition to the WHERE clause of a SessionFilter."""
    return f"{where} AND {condition}" if where else f" WHERE {condition}"


def _window(flt: SessionFilter, recent_days: int | None, max_sessions: int | None) -> tuple[str, list]:
    """CTEs `f` (the filtered sessions) and `w` (the ones the timeline shows): with `recent_days`, the sessions
    starting in the last that many days before the latest filtered start, at most `max_sessions` of the most
    recent ones; without, every filtered session."""
    where, params = flt.where()
    recent = "true"
    if recent_days:
        recent = "start_utc > (SELECT max(start_utc) FROM f) - to_days(CAST(? AS INTEGER))"
        params.append(recent_days)
    sql = (
        f"WITH f AS ({_FILTERED}{where}), "
        f"w AS (SELECT * FROM f WHERE {recent} ORDER BY start_utc DESC, entity_id, session_id LIMIT ?) "
    )
    return sql, [*params, max_sessions]


def timeline_window(
    store: Store, flt: SessionFilter, timezone: str, recent_days: int | None = 30, max_sessions: int | None = 5000
) -> dict:
    """How many sessions the filter matches, how many the timeline shows, and the local span shown."""
    cte, params = _window(flt, recent_days, max_sessions)
    row = (
        store.cursor()
        .execute(
            f"{cte}SELECT (SELECT count(*) FROM f), count(*), min(timezone(?, start_utc)), "
            "max(timezone(?, end_utc)) FROM w",
            [*params, timezone, timezone],
        )
        .fetchall()[0]
    )
    return dict(zip(("total", "shown", "first_local", "last_local"), row, strict=True))


def timeline_segments(
    store: Store, flt: SessionFilter, timezone: str, recent_days: int | None = 30, max_sessions: int | None = 5000
) -> pl.DataFrame:
    """Sessions as line segments for one Scattergl trace: per session (start, end, gap) in local time.

    Columns x (local time as text, null in the gaps), y (entity id), energy_kwh, in entity order."""
    cte, params = _window(flt, recent_days, max_sessions)
    return store.frame(
        f"{cte}SELECT unnest([strftime(timezone(?, start_utc), '%Y-%m-%d %H:%M:%S'), "
        "strftime(timezone(?, end_utc), '%Y-%m-%d %H:%M:%S'), NULL]) AS x, "
        "unnest([entity_id, entity_id, NULL]) AS y, unnest([energy_kwh, energy_kwh, NULL])::DOUBLE AS energy_kwh "
        "FROM (SELECT * FROM w ORDER BY entity_id, start_utc, session_id)",
        [*params, timezone, timezone],
    )


ENERGY_STACKS = {"location": f"coalesce({BEST_LABEL}, '(no location)')", "method": "s.method"}


def energy_by_period(store: Store, flt: SessionFilter, period: str, by: str, timezone: str) -> pl.DataFrame:
    """Energy and sessions per local day/week/month, stacked by best-match location label or by method."""
    if period not in ("day", "week", "month") or by not in ENERGY_STACKS:
        raise ValueError((period, by))
    where, params = flt.where()
    return store.frame(
        f"SELECT date_trunc('{period}', timezone(?, s.start_utc)) AS period, {ENERGY_STACKS[by]} AS {by}, "
        "sum(s.energy_kwh)::DOUBLE AS energy_kwh, count(*) AS sessions "
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY ALL ORDER BY 1, 2",
        [timezone, *params],
    )


def start_heatmap(store: Store, flt: SessionFilter, timezone: str) -> pl.DataFrame:
    """Sessions and energy per local weekday (1 = Monday) and start hour, all 7 x 24 cells (empty ones 0)."""
    where, params = flt.where()
    return store.frame(
        f"SELECT d.weekday, {_WEEKDAYS}[d.weekday] AS day, h.hour, coalesce(c.sessions, 0) AS sessions, "
        "coalesce(c.energy_kwh, 0)::DOUBLE AS energy_kwh FROM range(1, 8) d(weekday) CROSS JOIN range(0, 24) h(hour) "
        "LEFT JOIN (SELECT isodow(timezone(?, s.start_utc)) AS weekday, hour(timezone(?, s.start_utc)) AS hour, "
        "count(*) AS sessions, sum(s.energy_kwh) AS energy_kwh "
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY ALL) c USING (weekday, hour) "
        "ORDER BY d.weekday, h.hour",
        [timezone, timezone, *params],
    )


DISTRIBUTIONS = ("duration_min", "energy_kwh", "average_power_kw", "soc_start_pct", "soc_end_pct")


def distributions(store: Store, flt: SessionFilter, bins: int = 30) -> pl.DataFrame:
    """Histograms of duration, energy, average power and SoC at start and end, binned in DuckDB.

    Bins are about `bins` per measure, of a round width (1, 2 or 5 times a power of ten) aligned on its
    multiples; SoC at start and end share one grid so they can be drawn over each other. Unknowns are left out.
    Columns: measure, bin_start, bin_end, sessions."""
    where, params = flt.where()
    return store.frame(
        "WITH f AS (SELECT (date_diff('millisecond', s.start_utc, s.end_utc) / 60000.0)::DOUBLE AS duration_min, "
        "s.energy_kwh::DOUBLE AS energy_kwh, s.average_power_kw::DOUBLE AS average_power_kw, "
        "s.soc_start_pct::DOUBLE AS soc_start_pct, s.soc_end_pct::DOUBLE AS soc_end_pct "
        f"FROM sessions s JOIN entities e USING (entity_id){where}), "
        "long AS (SELECT measure, value, CASE WHEN measure LIKE 'soc%' THEN 'soc' ELSE measure END AS grp "
        "FROM (UNPIVOT f ON COLUMNS(*) INTO NAME measure VALUE value) WHERE isfinite(value)), "
        "span AS (SELECT grp, CASE WHEN max(value) > min(value) THEN (max(value) - min(value)) / ? ELSE 1.0 END "
        "AS raw FROM long GROUP BY grp), "
        "width AS (SELECT grp, pow(10, floor(log10(raw))) * CASE WHEN raw / pow(10, floor(log10(raw))) <= 1 THEN 1 "
        "WHEN raw / pow(10, floor(log10(raw))) <= 2 THEN 2 WHEN raw / pow(10, floor(log10(raw))) <= 5 THEN 5 "
        "ELSE 10 END AS w FROM span) "
        "SELECT measure, floor(value / w) * w AS bin_start, floor(value / w) * w + w AS bin_end, count(*) AS sessions "
        "FROM long JOIN width USING (grp) GROUP BY ALL ORDER BY measure, bin_start",
        [*params, bins],
    )


def plug_idle(store: Store, flt: SessionFilter) -> pl.DataFrame:
    """Per entity, for sessions whose plug-in and plug-out are known: hours plugged in, charging and idle."""
    where, params = flt.where()
    where = _and(where, "s.plug_in_utc IS NOT NULL AND s.plug_out_utc IS NOT NULL")
    return store.frame(
        "SELECT entity_id, count(*) AS sessions, (sum(plugged_s) / 3600.0)::DOUBLE AS plugged_h, "
        "(sum(charging_s) / 3600.0)::DOUBLE AS charging_h, (sum(greatest(plugged_s - charging_s, 0)) / 3600.0)::DOUBLE "
        "AS idle_h, CASE WHEN sum(plugged_s) > 0 THEN (sum(greatest(plugged_s - charging_s, 0)) / sum(plugged_s))"
        "::DOUBLE END AS idle_share FROM (SELECT s.entity_id, "
        "date_diff('second', least(s.plug_in_utc, s.start_utc), greatest(s.plug_out_utc, s.end_utc)) AS plugged_s, "
        "date_diff('second', s.start_utc, s.end_utc) AS charging_s "
        f"FROM sessions s JOIN entities e USING (entity_id){where}) GROUP BY entity_id ORDER BY entity_id",
        params,
    )


def energy_share_by_location(store: Store, flt: SessionFilter = SessionFilter(), top: int = 4) -> pl.DataFrame:
    """Energy per best-match location label (the `top` largest, the rest as 'Other places') and its share."""
    where, params = flt.where()
    return store.frame(
        f"WITH t AS (SELECT coalesce({BEST_LABEL}, '(no location)') AS location, sum(s.energy_kwh) AS energy_kwh "
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY 1), "
        "r AS (SELECT *, row_number() OVER (ORDER BY energy_kwh DESC, location) AS rn FROM t) "
        "SELECT CASE WHEN rn <= ? THEN location ELSE 'Other places' END AS location, "
        "sum(energy_kwh)::DOUBLE AS energy_kwh, (sum(energy_kwh) / nullif((SELECT sum(energy_kwh) FROM t), 0))::DOUBLE "
        "AS share FROM r GROUP BY 1 ORDER BY min(rn)",
        [*params, top],
    )


def cost_per_currency(store: Store, flt: SessionFilter = SessionFilter()) -> pl.DataFrame:
    """Sessions, energy and unrounded total cost per currency; sessions without a tariff as 'no tariff', last."""
    where, params = flt.where()
    return store.frame(
        "SELECT coalesce(currency, 'no tariff') AS currency, sessions, energy_kwh, cost_total FROM ("
        "SELECT s.currency, count(*) AS sessions, sum(s.energy_kwh)::DOUBLE AS energy_kwh, "
        "sum(s.cost_total)::DOUBLE AS cost_total "
        f"FROM sessions s JOIN entities e USING (entity_id){where} GROUP BY 1) ORDER BY currency IS NULL, currency",
        params,
    )


def reading_gaps(store: Store, max_gap_min: float) -> pl.DataFrame:
    """Entities whose readings have gaps longer than `max_gap_min`: how many and the longest, most gaps first."""
    # No two readings inside one time bucket `max_gap_min` wide are that far apart, so every long gap runs from the
    # last reading of one non-empty bucket to the first of the next: the window runs over buckets, not readings
    # (10 million readings: 1.5 s instead of 8 to 12 s). Buckets and ends are whole microseconds, not timestamps
    # and doubles: with readings sparser than the buckets (nearly one bucket per reading) that is 2.6 times faster.
    # Counted from 0001-01-01 they are never negative, so // floors; the gap counts millisecond boundaries, as
    # date_diff('millisecond', ...) does.
    return store.frame(
        "WITH r AS (SELECT entity_id, epoch_us(ts) + 62135596800000000 AS us FROM readings), "
        "b AS (SELECT entity_id, us // CAST(? * 60000000.0 AS BIGINT) AS bucket, min(us) AS first_us, "
        "max(us) AS last_us FROM r GROUP BY ALL), "
        "g AS (SELECT entity_id, (first_us // 1000 - lag(last_us // 1000) OVER (PARTITION BY entity_id "
        "ORDER BY bucket)) / 1000.0 AS gap_s FROM b) "
        "SELECT entity_id, count(*) AS gaps, (max(gap_s) / 60.0)::DOUBLE AS longest_gap_min FROM g "
        "WHERE gap_s > ? * 60 GROUP BY entity_id ORDER BY gaps DESC, longest_gap_min DESC, entity_id",
        [max_gap_min, max_gap_min],
    )


def recent_rejects(store: Store, imports: int = 10) -> pl.DataFrame:
    """Rejected rows of the most recent imports, counted per file and reason."""
    return store.frame(
        "SELECT i.file_name, i.imported, r.reason, count(*) AS rows FROM "
        "(SELECT * FROM imports ORDER BY imported DESC LIMIT ?) i JOIN rejects r USING (import_id) "
        "GROUP BY ALL ORDER BY i.imported DESC, rows DESC, r.reason",
        [imports],
    )


def capture_notes(store: Store) -> pl.DataFrame:
    """Entities whose readings give no detected sessions, and why: capture off, or an SoC-only EV without a
    battery capacity. Columns entity_id, entity_type, note."""
    from core.features import capture_refusal

    rows = store.frame(
        "SELECT e.entity_id, e.entity_type, e.battery_capacity_kwh, coalesce(f.enabled, false) AS capture, "
        "coalesce(p.readings, 0) AS readings, coalesce(p.has_power, false) AS has_power, "
        "coalesce(p.has_meter, false) AS has_meter, coalesce(p.has_soc, false) AS has_soc FROM entities e "
        "LEFT JOIN features f ON f.entity_id = e.entity_id AND f.feature = 'CaptureChargeSessions' "
        "LEFT JOIN (SELECT entity_id, count(*) AS readings, count(power_kw) > 0 AS has_power, "
        "count(energy_kwh) > 0 AS has_meter, count(soc_pct) > 0 AS has_soc FROM readings GROUP BY entity_id) p "
        "ON p.entity_id = e.entity_id ORDER BY e.entity_id"
    )
    notes = []
    for r in rows.iter_rows(named=True):
        soc_only = r["has_soc"] and not (r["has_power"] or r["has_meter"])
        if r["entity_type"] == "EV" and soc_only and not r["battery_capacity_kwh"]:
            note = "only state of charge and no battery capacity: set the capacity to get its sessions"
        elif r["capture"]:
            continue
        elif not r["readings"]:
            note = "no readings; only sessions imported from a session table are listed"
        else:
            evidence = {k: r[k] for k in ("has_power", "has_meter", "has_soc")}
            refusal = capture_refusal(
                r["entity_id"], r["entity_type"], **evidence, capacity_kwh=r["battery_capacity_kwh"]
            )
            note = f"{refusal.title}: {refusal.detail}" if refusal else "session capture is switched off"
        notes.append({"entity_id": r["entity_id"], "entity_type": r["entity_type"], "note": note})
    return pl.DataFrame(notes, schema={"entity_id": pl.String, "entity_type": pl.String, "note": pl.String})


def session_months(store: Store, timezone: str) -> list[str]:
    """The local months (YYYY-MM) in which sessions start, newest first."""
    where, params = SessionFilter().where()
    frame = store.frame(
        "SELECT DISTINCT strftime(timezone(?, s.start_utc), '%Y-%m') AS month "
        f"FROM sessions s JOIN entities e USING (entity_id){where} ORDER BY month DESC",
        [timezone, *params],
    )
    return frame.get_column("month").to_list()
