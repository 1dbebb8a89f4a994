"""Reads the API needs beyond core.store and core.queries (keyset pages); candidates to move into those modules.

Every function takes the store and plain values and returns rows as dicts; SQL carries bound parameters only.
The calls a client makes most (a page of sessions, an entity, its features, its last reading) read their few rows
straight from the cursor: a polars frame per call, for a page of 25 rows, cost more than the rows themselves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.errors import NotFound, unknown_entity
from core.features import FEATURES
from core.records import measure
from core.schema import READINGS_SCHEMA
from core.settings import Settings
from core.store import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_READING_COLUMNS = ", ".join(READINGS_SCHEMA.names())


def to_micros(value: datetime) -> int:
    """An instant as whole microseconds since 1970 (exact, unlike float timestamps), for keyset positions."""
    return (value.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def tuples(store: Store, sql: str, params: list | dict) -> list[tuple]:
    """The rows of one statement, read on this thread's cursor."""
    return store.cursor().execute(sql, params).fetchall()


def rows(store: Store, sql: str, params: list | dict) -> list[dict]:
    """The rows of one statement as dicts by column name, read on this thread's cursor."""
    cursor = store.cursor().execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def entity_or_404(store: Store, entity_id: str) -> dict:
    found = rows(store, "SELECT * FROM entities WHERE entity_id = ?", [entity_id])
    if not found:
        raise unknown_entity(entity_id)
    return found[0]


def exact_locations(store: Store) -> bool:
    """The exact-locations setting alone (stored value or environment, as Settings reads it), in one small read."""
    stored = tuples(store, "SELECT key, value FROM settings WHERE key = 'exact_locations'", [])
    return Settings.from_sources(dict(stored)).exact_locations


def entities_page(store: Store, after: str | None, limit: int) -> list[dict]:
    """Entities by id, from the one after `after`."""
    where, params = ("WHERE entity_id > ?", [after]) if after is not None else ("", [])
    return rows(store, f"SELECT * FROM entities {where} ORDER BY entity_id LIMIT ?", [*params, limit])


def features(store: Store, entity_id: str) -> list[dict]:
    """Every known feature of an entity with its state; a feature never set is off. NotFound for no such entity.

    One statement answers both whether the entity exists and its feature states: one row per stored feature, or a
    single row without a feature when it has none.
    """
    found = tuples(
        store,
        "SELECT f.feature, f.enabled FROM entities e LEFT JOIN features f ON f.entity_id = e.entity_id "
        "WHERE e.entity_id = ?",
        [entity_id],
    )
    if not found:
        raise unknown_entity(entity_id)
    state = {feature: enabled for feature, enabled in found if feature is not None}
    return [{"feature": name, "enabled": bool(state.get(name, False))} for name in FEATURES]


def locations_page(store: Store, entity_id: str | None, after: list | None, limit: int) -> list[dict]:
    """The locations of one entity (or, with None, those for all entities) in creation order."""
    clauses, params = ["entity_id IS NOT DISTINCT FROM ?"], [entity_id]
    if after is not None:
        clauses.append("(created > ? OR (created = ? AND location_id > ?))")
        at = from_micros(after[0])
        params += [at, at, after[1]]
    return store.frame(
        f"SELECT * FROM locations WHERE {' AND '.join(clauses)} ORDER BY created, location_id LIMIT ?",
        [*params, limit],
    ).to_dicts()


def location_in_scope(store: Store, location_id: str, entity_id: str | None) -> dict:
    """One location as addressed by its path: the entity's own, or (entity None) one for all entities."""
    found = store.frame(
        "SELECT * FROM locations WHERE location_id = ? AND entity_id IS NOT DISTINCT FROM ?", [location_id, entity_id]
    )
    if found.height == 0:
        where = f"of entity '{entity_id}'" if entity_id is not None else "for all entities"
        raise NotFound(f"There is no location '{location_id}' {where}; list the locations to see their ids.")
    return found.row(0, named=True)


def readings_page(
    store: Store, entity_id: str, start: datetime, end: datetime, after_us: int | None, limit: int
) -> list[dict]:
    """Readings of one entity with ts in [start, end), by time, from the one after `after_us`."""
    clauses, params = ["entity_id = ?", "ts >= ?", "ts < ?"], [entity_id, start, end]
    if after_us is not None:
        clauses.append("ts > ?")
        params.append(from_micros(after_us))
    return rows(
        store,
        f"SELECT {_READING_COLUMNS} FROM readings WHERE {' AND '.join(clauses)} ORDER BY ts LIMIT ?",
        [*params, limit],
    )


def last_reading(store: Store, entity_id: str) -> dict | None:
    """The latest reading of a known entity; None when it has none. NotFound for no such entity.

    The entity's existence is asked inside the same statement (once, not per row), so the common case of an entity
    with readings costs one read; the entity is looked up alone only when no reading came back. The latest instant
    is found first and its row read after, inside the statement: a top-1 sort over every column of the entity's
    readings cost a quarter more CPU (3.7 against 2.9 ms for an entity with 25 000 readings).
    """
    found = rows(
        store,
        f"SELECT {_READING_COLUMNS} FROM readings WHERE entity_id = $1 "
        "AND ts = (SELECT max(ts) FROM readings WHERE entity_id = $1) "
        "AND EXISTS (SELECT 1 FROM entities WHERE entity_id = $1) LIMIT 1",
        [entity_id],
    )
    if found:
        return found[0]
    entity_or_404(store, entity_id)
    return None


# API.md: while capture is off, an entity's detected sessions are not listed. The same rule as SessionFilter's
# `only_enabled`, with the entity fixed: its feature state is read once per statement instead of once per session.
_LISTED = (
    "(s.source <> 'detected' OR EXISTS (SELECT 1 FROM features f WHERE f.entity_id = $entity "
    "AND f.feature = 'CaptureChargeSessions' AND f.enabled))"
)


def sessions_page(
    store: Store, entity_id: str, start: datetime, end: datetime | None, after: list | None, limit: int
) -> list[dict]:
    """Listed sessions of one entity with start in [start, end), by (start, id), from the one after `after`.

    Only complete sessions are ever stored, so all of them are listed. An unknown entity lists nothing (its
    existence is asked inside the statement, once): the caller tells it apart from an empty page only then.
    """
    clauses = [
        "s.entity_id = $entity",
        "s.start_utc >= $start",
        _LISTED,
        "EXISTS (SELECT 1 FROM entities e WHERE e.entity_id = $entity)",
    ]
    params: dict = {"entity": entity_id, "start": start, "limit": limit}
    if end is not None:
        clauses.append("s.start_utc < $end")
        params["end"] = end
    if after is not None:
        clauses.append("(s.start_utc > $at OR (s.start_utc = $at AND s.session_id > $after))")
        params |= {"at": from_micros(after[0]), "after": after[1]}
    return rows(
        store,
        f"SELECT s.* FROM sessions s WHERE {' AND '.join(clauses)} ORDER BY s.start_utc, s.session_id LIMIT $limit",
        params,
    )


def location_matches(row: dict) -> list[dict]:
    """A stored session's matching locations, best accuracy first (API.md's locationMatches), from the copy on its
    row (`sessions.matches_json`, kept equal to `session_locations` by every change of either)."""
    return [
        {"accuracy": measure("accuracy", m["accuracy"]), "location": {"id": m["id"], "label": m["label"]}}
        for m in json.loads(row["matches_json"] or "[]")
    ]
