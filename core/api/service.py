"""Reads the API needs beyond core.store and core.queries (keyset pages); candidates to move into those modules.

Every function takes the store and plain values and returns rows as dicts; SQL carries bound parameters only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.errors import NotFound
from core.features import FEATURES
from core.queries import SessionFilter
from core.records import measure
from core.schema import READINGS_SCHEMA
from core.store import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_READING_COLUMNS = ", ".join(READINGS_SCHEMA.names())


def to_micros(value: datetime) -> int:
    """An instant as whole microseconds since 1970 (exact, unlike float timestamps), for keyset positions."""
    return (value.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def entity_or_404(store: Store, entity_id: str) -> dict:
    entity = store.entity(entity_id)
    if entity is None:
        raise NotFound(f"There is no entity '{entity_id}'; GET /api/v1/entities lists the known ids.")
    return entity


def entities_page(store: Store, after: str | None, limit: int) -> list[dict]:
    """Entities by id, from the one after `after`."""
    where, params = ("WHERE entity_id > ?", [after]) if after is not None else ("", [])
    return store.frame(f"SELECT * FROM entities {where} ORDER BY entity_id LIMIT ?", [*params, limit]).to_dicts()


def features(store: Store, entity_id: str) -> list[dict]:
    """Every known feature of an entity with its state; a feature never set is off."""
    rows = store.cursor().execute("SELECT feature, enabled FROM features WHERE entity_id = ?", [entity_id]).fetchall()
    state = dict(rows)
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
    rows = store.frame(
        "SELECT * FROM locations WHERE location_id = ? AND entity_id IS NOT DISTINCT FROM ?", [location_id, entity_id]
    )
    if rows.height == 0:
        where = f"of entity '{entity_id}'" if entity_id is not None else "for all entities"
        raise NotFound(f"There is no location '{location_id}' {where}; list the locations to see their ids.")
    return rows.row(0, named=True)


def readings_page(
    store: Store, entity_id: str, start: datetime, end: datetime, after_us: int | None, limit: int
) -> list[dict]:
    """Readings of one entity with ts in [start, end), by time, from the one after `after_us`."""
    clauses, params = ["entity_id = ?", "ts >= ?", "ts < ?"], [entity_id, start, end]
    if after_us is not None:
        clauses.append("ts > ?")
        params.append(from_micros(after_us))
    return store.frame(
        f"SELECT {_READING_COLUMNS} FROM readings WHERE {' AND '.join(clauses)} ORDER BY ts LIMIT ?",
        [*params, limit],
    ).to_dicts()


def last_reading(store: Store, entity_id: str) -> dict | None:
    rows = store.frame(
        f"SELECT {_READING_COLUMNS} FROM readings WHERE entity_id = ? ORDER BY ts DESC LIMIT 1", [entity_id]
    )
    return rows.row(0, named=True) if rows.height else None


def sessions_page(
    store: Store, entity_id: str, start: datetime, end: datetime | None, after: list | None, limit: int
) -> list[dict]:
    """Listed sessions of one entity with start in [start, end), by (start, id), from the one after `after`.

    The feature rule (detected sessions hidden while capture is off) is SessionFilter's, so pages and
    exports agree with the API; only complete sessions are ever stored, so all of them are listed.
    """
    where, params = SessionFilter(start=start, end=end, entity_ids=(entity_id,), only_enabled=True).where()
    if after is not None:
        at = from_micros(after[0])
        where += " AND (s.start_utc > ? OR (s.start_utc = ? AND s.session_id > ?))"
        params += [at, at, after[1]]
    return store.frame(
        f"SELECT s.* FROM sessions s JOIN entities e USING (entity_id){where} "
        "ORDER BY s.start_utc, s.session_id LIMIT ?",
        [*params, limit],
    ).to_dicts()


def location_matches(store: Store, session_ids: list[str]) -> dict[str, list[dict]]:
    """Per session, every matching location, best accuracy first (API.md's locationMatches)."""
    if not session_ids:
        return {}
    rows = store.frame(
        "SELECT sl.session_id, sl.accuracy, l.location_id, l.label FROM session_locations sl "
        "JOIN locations l USING (location_id) WHERE sl.session_id IN (SELECT unnest(?)) "
        "ORDER BY sl.session_id, sl.accuracy DESC, l.label, l.location_id",
        [session_ids],
    ).to_dicts()
    matches: dict[str, list[dict]] = {}
    for r in rows:
        matches.setdefault(r["session_id"], []).append(
            {"accuracy": measure("accuracy", r["accuracy"]), "location": {"id": r["location_id"], "label": r["label"]}}
        )
    return matches
