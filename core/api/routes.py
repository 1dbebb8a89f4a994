"""The /v1 routes of API.md: each one checks its input, asks core (pipeline, queries, service) and shapes the reply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from core.api import service
from core.api.auth import require_token
from core.api.bodies import BatteryCapacity, Credentials, FeatureChange, Location
from core.api.paging import Pager, page_reply, resume
from core.api.params import Paging, check_range, known_query, paging, parse_time
from core.api.service import to_micros
from core.api.shapes import EXACT_DECIMALS, capacity_record, location_record, reading_record
from core.errors import NotFound
from core.pipeline import add_location, delete_location, set_capacity, set_feature, update_location
from core.records import entity_record, session_record
from core.settings import database_path
from core.store import Store

EntityId = Annotated[str, Path(alias="entityId", description="The entity id, percent-encoded (`/` as `%2F`).")]
LocationId = Annotated[str, Path(alias="locationId")]
Start = Annotated[str, Query(description="RFC 3339 time, e.g. 2025-03-01T00:00:00Z (a space for T and offsets too).")]
End = Annotated[str | None, Query(description="RFC 3339 time; exclusive.")]
Page = Annotated[Paging, Depends(paging)]
ENTITY = "/entities/{entityId:entity}"

public = APIRouter(prefix="/v1", tags=["authentication"], dependencies=[Depends(known_query)])
router = APIRouter(prefix="/v1", dependencies=[Depends(require_token), Depends(known_query)])


def _store() -> Store:
    return Store.open(database_path())


def _pager(request: Request) -> Pager:
    return request.app.state.pager


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _with_position(rows: list[dict]) -> bool:
    """Whether any row holds a position, the only part of a reply the exact-locations setting changes."""
    return any(r.get("latitude") is not None for r in rows)


# -- authentication -------------------------------------------------------------------------------------
@public.post("/authentication", summary="Client credentials -> bearer token")
def authenticate(body: Credentials, request: Request) -> dict:
    address = request.client.host if request.client else "unknown"
    return request.app.state.auth.authenticate(address, body.clientId, body.clientSecret)


# -- entities -------------------------------------------------------------------------------------------
@router.get("/entities", tags=["entities"], summary="Page of entities, by id")
def entities(request: Request, page: Page) -> dict:
    scope: dict = {}
    after = resume(_pager(request), page, "entities", scope)
    rows = service.entities_page(_store(), after[0] if after else None, page.size + 1)
    return page_reply(
        request, _pager(request), page, "entities", scope, rows, lambda r: [r["entity_id"]], entity_record
    )


@router.get(ENTITY, tags=["entities"], summary="One entity")
def entity(entity_id: EntityId) -> dict:
    return entity_record(service.entity_or_404(_store(), entity_id))


@router.get(f"{ENTITY}/features", tags=["features"], summary="Feature states of an entity")
def features(entity_id: EntityId) -> list[dict]:
    return service.features(_store(), entity_id)


@router.patch(f"{ENTITY}/features", tags=["features"], summary="Activate or deactivate a feature")
def change_feature(entity_id: EntityId, body: FeatureChange) -> list[dict]:
    store = _store()
    service.entity_or_404(store, entity_id)
    set_feature(store, entity_id, body.feature, body.enabled)  # returns after the recompute is committed
    return service.features(store, entity_id)


@router.get(f"{ENTITY}/battery-capacity", tags=["battery capacity"], summary="Battery capacity (kWh)")
def battery_capacity(entity_id: EntityId) -> dict:
    return capacity_record(service.entity_or_404(_store(), entity_id))


@router.put(f"{ENTITY}/battery-capacity", tags=["battery capacity"], summary="Set an EV's battery capacity")
def set_battery_capacity(entity_id: EntityId, body: BatteryCapacity) -> dict:
    return {"unit": "kWh", "value": set_capacity(_store(), entity_id, body.value)}


# -- locations ------------------------------------------------------------------------------------------
def _locations_page(request: Request, page: Paging, entity_id: str | None) -> dict:
    store = _store()
    if entity_id is not None:
        service.entity_or_404(store, entity_id)
    kind, scope = "locations", {"entity": entity_id}
    after = resume(_pager(request), page, kind, scope)
    rows = service.locations_page(store, entity_id, after, page.size + 1)
    return page_reply(
        request,
        _pager(request),
        page,
        kind,
        scope,
        rows,
        lambda r: [to_micros(r["created"]), r["location_id"]],
        location_record,
    )


def _add_location(body: Location, entity_id: str | None) -> dict:
    store = _store()
    if entity_id is not None:
        service.entity_or_404(store, entity_id)
    location_id = add_location(store, body.label, body.latitude, body.longitude, body.radius, entity_id)
    return location_record(service.location_in_scope(store, location_id, entity_id))


def _replace_location(location_id: str, body: Location, entity_id: str | None) -> dict:
    store = _store()
    if entity_id is not None:
        service.entity_or_404(store, entity_id)
    service.location_in_scope(store, location_id, entity_id)
    update_location(
        store, location_id, label=body.label, latitude=body.latitude, longitude=body.longitude, radius_m=body.radius
    )
    return location_record(service.location_in_scope(store, location_id, entity_id))


def _delete_location(location_id: str, entity_id: str | None) -> Response:
    store = _store()
    if entity_id is not None:
        service.entity_or_404(store, entity_id)
    service.location_in_scope(store, location_id, entity_id)
    delete_location(store, location_id)
    return Response(status_code=204)


@router.get(f"{ENTITY}/locations", tags=["locations"], summary="Page of an entity's own locations")
def entity_locations(request: Request, entity_id: EntityId, page: Page) -> dict:
    return _locations_page(request, page, entity_id)


@router.post(f"{ENTITY}/locations", tags=["locations"], status_code=201, summary="Create an entity location")
def add_entity_location(entity_id: EntityId, body: Location) -> dict:
    return _add_location(body, entity_id)


@router.put(f"{ENTITY}/locations/{{locationId}}", tags=["locations"], summary="Replace an entity location")
def replace_entity_location(entity_id: EntityId, location_id: LocationId, body: Location) -> dict:
    return _replace_location(location_id, body, entity_id)


@router.delete(
    f"{ENTITY}/locations/{{locationId}}",
    tags=["locations"],
    status_code=204,
    response_class=Response,
    summary="Delete an entity location",
)
def delete_entity_location(entity_id: EntityId, location_id: LocationId) -> Response:
    return _delete_location(location_id, entity_id)


@router.get("/locations", tags=["locations"], summary="Page of locations for all entities")
def locations(request: Request, page: Page) -> dict:
    return _locations_page(request, page, None)


@router.post("/locations", tags=["locations"], status_code=201, summary="Create a location for all entities")
def add_global_location(body: Location) -> dict:
    return _add_location(body, None)


@router.put("/locations/{locationId}", tags=["locations"], summary="Replace a location for all entities")
def replace_global_location(location_id: LocationId, body: Location) -> dict:
    return _replace_location(location_id, body, None)


@router.delete(
    "/locations/{locationId}",
    tags=["locations"],
    status_code=204,
    response_class=Response,
    summary="Delete a location for all entities",
)
def delete_global_location(location_id: LocationId) -> Response:
    return _delete_location(location_id, None)


# -- readings and sessions ------------------------------------------------------------------------------
@router.get(f"{ENTITY}/readings", tags=["readings"], summary="Page of readings with ts in [start, end)")
def readings(request: Request, entity_id: EntityId, start: Start, page: Page, end: End = None) -> dict:
    pager, kind = _pager(request), "readings"
    start_at = parse_time(start, "start")
    # Without `end`, the first page fixes "now" in its token, so later pages keep the same window.
    earlier = pager.decode(page.token, kind)[0] if page.token else {}
    end_at = parse_time(end, "end") or parse_time(earlier.get("end"), "end") or datetime.now(UTC)
    check_range(start_at, end_at)
    scope = {"entity": entity_id, "start": _iso(start_at), "end": _iso(end_at)}
    after = resume(pager, page, kind, scope)
    store = _store()
    service.entity_or_404(store, entity_id)
    rows = service.readings_page(store, entity_id, start_at, end_at, after[0] if after else None, page.size + 1)
    exact = _with_position(rows[: page.size]) and service.exact_locations(store)
    return page_reply(
        request,
        pager,
        page,
        kind,
        scope,
        rows,
        lambda r: [to_micros(r["ts"])],
        lambda r: reading_record(r, exact),
        fixed_query={"end": _iso(end_at)},
    )


@router.get(f"{ENTITY}/readings/last", tags=["readings"], summary="The latest reading")
def last_reading(entity_id: EntityId) -> dict:
    store = _store()
    row = service.last_reading(store, entity_id)
    if row is None:
        raise NotFound(f"'{entity_id}' has no readings yet; import readings for it first.")
    return reading_record(row, _with_position([row]) and service.exact_locations(store))


@router.get(f"{ENTITY}/charge-sessions", tags=["charge sessions"], summary="Page of completed sessions, by start")
def charge_sessions(request: Request, entity_id: EntityId, start: Start, page: Page, end: End = None) -> dict:
    pager, kind = _pager(request), "charge-sessions"
    start_at, end_at = parse_time(start, "start"), parse_time(end, "end")
    check_range(start_at, end_at)
    scope = {"entity": entity_id, "start": _iso(start_at), "end": _iso(end_at)}
    after = resume(pager, page, kind, scope)
    store = _store()
    rows = service.sessions_page(store, entity_id, start_at, end_at, after, page.size + 1)  # matches included
    if not rows:
        service.entity_or_404(store, entity_id)
    exact = _with_position(rows[: page.size]) and service.exact_locations(store)
    return page_reply(
        request,
        pager,
        page,
        kind,
        scope,
        rows,
        lambda r: [to_micros(r["start_utc"]), r["session_id"]],
        lambda r: session_record(r, EXACT_DECIMALS if exact else None, service.location_matches(r)),
    )
