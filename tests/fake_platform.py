"""A fake remote Charge Sessions platform: a real FastAPI app served by uvicorn on a loopback port, with faults.

It implements the [doc] parts that core.client calls (authentication, entities, features PATCH, readings,
charge sessions) in the shapes of API.md, and can be told to misbehave: tokens that die mid-run, 429 with
Retry-After, 5xx with JSON or non-JSON bodies, slow replies, pages that repeat their token or come back empty.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from core.client import entity_path
from tests.conftest import free_port

CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-secret-0123456789"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime | None:
    """An RFC 3339 time (Z, an offset, or a space instead of T) as an aware datetime; None when unreadable."""
    try:
        value = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _problem(status: int, title: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"title": title, "status": status, "detail": detail}, status_code=status, headers=headers)


@dataclass
class Faults:
    """What goes wrong next; counters count down per affected request (authentication is spared by default)."""

    rate_limited: int = 0
    retry_after: str = "2"
    failing: int = 0
    fail_status: int = 500
    fail_text: str | None = None  # a body that is not JSON (as a proxy in front of a platform sends)
    slow: int = 0
    slow_s: float = 1.0
    revoke_after: int | None = None  # tokens die after this many authorized requests
    repeat_token: bool = False
    empty_page_with_token: bool = False
    include_auth: bool = False
    broken_entity: str | None = None  # requests about this entity fail with fail_status (a 500 that persists) ...
    broken_after: int = 0  # ... once this many of them have succeeded (the platform breaks midway)


@dataclass
class Seen:
    method: str
    raw_path: str
    query: str
    status: int = 0


@dataclass
class FakePlatform:
    """The platform's data and state; `url` is the base URL a client uses (ending in /api)."""

    entities: list[dict] = field(default_factory=list)
    sessions: dict[str, list[dict]] = field(default_factory=dict)
    readings: dict[str, list[dict]] = field(default_factory=dict)
    features: dict[str, bool] = field(default_factory=dict)
    token_lifetime: int = 3599
    faults: Faults = field(default_factory=Faults)
    seen: list[Seen] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    authorized: int = 0
    url: str = ""

    def __post_init__(self):
        self._lock = threading.Lock()
        self._broken_seen = 0

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.seen.clear()
            self.tokens.clear()
            self.authorized = 0
            self._broken_seen = 0

    def auth_calls(self) -> int:
        return sum(1 for s in self.seen if s.raw_path.endswith("/authentication"))

    # -- faults ----------------------------------------------------------------------------------------
    def _take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def _broken(self, raw_path: str) -> bool:
        """A request about the broken entity, past the ones allowed to succeed."""
        entity = self.faults.broken_entity
        if entity is None:
            return False
        prefix = "/api" + entity_path(entity)
        if raw_path != prefix and not raw_path.startswith(prefix + "/"):
            return False
        with self._lock:
            self._broken_seen += 1
            return self._broken_seen > self.faults.broken_after

    def _authorize(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        with self._lock:
            if token not in self.tokens:
                return False
            self.authorized += 1
            if self.faults.revoke_after is not None and self.authorized % self.faults.revoke_after == 0:
                self.tokens.clear()  # the token "expires" after this request, as a hosted token may
            return True

    # -- app -------------------------------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI()
        api = APIRouter(prefix="/api/v1")

        @app.middleware("http")
        async def misbehave(request: Request, call_next):
            seen = Seen(request.method, request.scope["raw_path"].decode("latin-1"), request.url.query)
            self.seen.append(seen)
            spared = seen.raw_path.endswith("/authentication") and not self.faults.include_auth
            if not spared and self._take("rate_limited"):
                response = _problem(429, "TooManyRequests", "Slow down.", {"Retry-After": self.faults.retry_after})
            elif not spared and (self._take("failing") or self._broken(seen.raw_path)):
                status, text = self.faults.fail_status, self.faults.fail_text
                response = (
                    PlainTextResponse(text, status_code=status, media_type="text/html")
                    if text is not None
                    else _problem(status, "InternalError", "The platform failed; it was logged.")
                )
            else:
                if not spared and self._take("slow"):
                    await asyncio.sleep(self.faults.slow_s)
                response = await call_next(request)
            seen.status = response.status_code
            return response

        @api.post("/authentication")
        async def authenticate(request: Request):
            body = await request.json()
            if body.get("clientId") != CLIENT_ID or body.get("clientSecret") != CLIENT_SECRET:
                return _problem(401, "Unauthorized", "Unknown client id or secret.")
            token = secrets.token_urlsafe(16)
            with self._lock:
                self.tokens.add(token)
            return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

        def guarded(handler):
            async def run(request: Request):
                if not self._authorize(request):
                    return _problem(401, "Unauthorized", "The token is unknown or expired.")
                return await handler(request)

            return run

        async def entities(request: Request):
            return self._page(request, self.entities)

        async def one_entity(request: Request):
            entity = self._entity(request.path_params["entity_id"])
            return entity or _problem(404, "NotFound", "No such entity.")

        async def patch_features(request: Request):
            entity = self._entity(request.path_params["entity_id"])
            if entity is None:
                return _problem(404, "NotFound", "No such entity.")
            body = await request.json()
            if body.get("feature") != "CaptureChargeSessions":
                return _problem(400, "UnknownFeature", "Unknown feature.")
            if entity["type"] not in ("EV", "ChargePoint") and body.get("enabled"):
                return _problem(400, "FeatureNotSupported", "Only EVs and charge points capture sessions.")
            self.features[entity["id"]] = bool(body.get("enabled"))
            return [{"feature": "CaptureChargeSessions", "enabled": self.features[entity["id"]]}]

        async def readings(request: Request):
            return self._page(request, self.readings.get(request.path_params["entity_id"], []), "timestamp")

        async def sessions(request: Request):
            items = self.sessions.get(request.path_params["entity_id"], [])
            return self._page(request, items, lambda s: s["data"]["start"])

        # The fake routes ids with "/" through a path converter: fine for its own, known ids.
        api.add_api_route("/entities", guarded(entities), methods=["GET"])
        api.add_api_route("/entities/{entity_id:path}/features", guarded(patch_features), methods=["PATCH"])
        api.add_api_route("/entities/{entity_id:path}/readings", guarded(readings), methods=["GET"])
        api.add_api_route("/entities/{entity_id:path}/charge-sessions", guarded(sessions), methods=["GET"])
        api.add_api_route("/entities/{entity_id:path}", guarded(one_entity), methods=["GET"])
        app.include_router(api)
        return app

    def _entity(self, entity_id: str) -> dict | None:
        return next((e for e in self.entities if e["id"] == entity_id), None)

    def _page(self, request: Request, items: list[dict], time_key=None) -> JSONResponse | dict:
        query = request.query_params
        if time_key is not None:
            if "start" not in query:
                return _problem(400, "ValidationError", "start is required.")
            key = time_key if callable(time_key) else (lambda item: item[time_key])
            start, end = _instant(query["start"]), _instant(query["end"]) if "end" in query else None
            if start is None or ("end" in query and end is None):
                return _problem(400, "ValidationError", "start and end must be RFC 3339 times.")
            items = [i for i in items if start <= _instant(key(i)) and (end is None or _instant(key(i)) < end)]
        size = int(query.get("pageSize", 25))
        token = query.get("continuationToken")
        offset = int(token.removeprefix("o:")) if token else 0
        chunk = items[offset : offset + size]
        following = f"o:{offset + size}" if offset + size < len(items) else None
        if self.faults.repeat_token and token:
            following = token  # a broken platform: the same token again
        if self.faults.empty_page_with_token and token:
            chunk, following = [], f"o:{offset + size}"
        return {"data": chunk, "links": {"next": None}, "meta": {"continuationToken": following, "pageSize": size}}


def sample_platform() -> FakePlatform:
    """Three entities (one id with "/", a quote and a space), 23 sessions and 40 readings of the first EV."""
    entities = [
        {"id": "ev/1 \"north\"", "type": "EV", "name": "Van north", "brand": None, "identifier": None,
         "created": "2025-01-01T00:00:00Z", "lastSeen": None},
        {"id": "cp-7", "type": "ChargePoint", "name": "Depot", "brand": None, "identifier": None,
         "created": "2025-01-01T00:00:00Z", "lastSeen": None},
        {"id": "battery-1", "type": "Battery", "name": "Store", "brand": None, "identifier": None,
         "created": "2025-01-01T00:00:00Z", "lastSeen": None},
    ]  # fmt: skip
    ev = entities[0]["id"]
    sessions = [
        {
            "id": f"s-{i:02d}",
            "entityId": ev,
            "created": _z(T0),
            "data": {
                "start": _z(T0 + timedelta(hours=6 * i)),
                "end": _z(T0 + timedelta(hours=6 * i, minutes=90)),
                "charge": {"total": {"t1": 10.0 + i, "t2": 0, "t3": 0, "t4": 0, "total": 10.0 + i, "unit": "kWh"}},
                "locationMatches": [],
            },
        }
        for i in range(23)
    ]
    readings = [
        {
            "entityId": ev,
            "timestamp": _z(T0 + timedelta(minutes=15 * i)),
            "data": {"stateOfCharge": {"unit": "%", "value": 40 + i}},
        }
        for i in range(40)
    ]
    return FakePlatform(entities=entities, sessions={ev: sessions}, readings={ev: readings})


def _entity(entity_id: str, kind: str, name: str) -> dict:
    return {
        "id": entity_id,
        "type": kind,
        "name": name,
        "brand": None,
        "identifier": None,
        "created": "2025-01-01T00:00:00Z",
        "lastSeen": None,
    }


def _session(entity_id: str, number: int, start: str, end: str, kwh: float) -> dict:
    total = {"t1": kwh, "t2": 0, "t3": 0, "t4": 0, "total": kwh, "unit": "kWh"}
    return {
        "id": f"{entity_id}-s{number}",
        "entityId": entity_id,
        "created": end,
        "data": {"start": start, "end": end, "charge": {"total": total}, "locationMatches": []},
    }


def fleet_platform() -> FakePlatform:
    """A small fleet to pull from: an EV with power and state of charge, a charge point with an energy meter
    (both over two days, with their platform sessions) and a home battery without data.

    ev-a: 288 readings every 10 min from T0; charges at 7.2 kW 18:00-20:00 on day 1 and 11 kW 02:00-03:00 on
    day 2. cp-b: 192 readings every 15 min; its meter rises 2.5 kWh per quarter 08:00-10:00 on day 1 and 14:00-15:00
    on day 2. Its platform sessions are the reconciliation case: 08:00-10:00 20.0 kWh and 14:00-15:00 5.0 kWh on
    day 1 (the second one has no readings behind it).
    """
    entities = [
        _entity("battery-9", "Battery", "Store"),
        _entity("cp-b", "CP", "Depot B"),
        _entity("ev-a", "EV", "Van A"),
    ]
    ev, meter = [], 100.0
    for i in range(288):
        at = T0 + timedelta(minutes=10 * i)
        watts = 7200 if 108 <= i < 120 else 11000 if 156 <= i < 162 else 0
        power = {"l1": watts / 3, "l2": watts / 3, "l3": watts / 3, "total": watts, "unit": "W"}
        data = {
            "positiveActiveInstantaneousPower": power,
            "stateOfCharge": {"unit": "%", "value": 40 + min(i, 50)},
            "isPluggedIn": watts > 0,
        }
        ev.append({"entityId": "ev-a", "timestamp": _z(at), "data": data})
    cp = []
    for i in range(192):
        at = T0 + timedelta(minutes=15 * i)
        cp.append(
            {
                "entityId": "cp-b",
                "timestamp": _z(at),
                "data": {"positiveActiveEnergy": {"t1": meter, "total": meter, "unit": "kWh"}},
            }
        )
        if 32 <= i < 40 or 152 <= i < 156:
            meter += 2.5
    sessions = {
        "ev-a": [
            _session("ev-a", 1, "2025-03-01T18:00:00Z", "2025-03-01T20:00:00Z", 14.4),
            _session("ev-a", 2, "2025-03-02T02:00:00Z", "2025-03-02T03:00:00Z", 11.0),
        ],
        "cp-b": [
            _session("cp-b", 1, "2025-03-01T08:00:00Z", "2025-03-01T10:00:00Z", 20.0),
            _session("cp-b", 2, "2025-03-01T14:00:00Z", "2025-03-01T15:00:00Z", 5.0),
        ],
    }
    return FakePlatform(entities=entities, sessions=sessions, readings={"ev-a": ev, "cp-b": cp})


class Served:
    """uvicorn serving one app in a background thread on a free loopback port."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-platform", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake platform did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serving(fake: FakePlatform) -> Iterator[FakePlatform]:
    """Serve a fake platform on loopback for a fixture (its base URL set), and stop it afterwards."""
    served = Served(fake.app())
    fake.url = f"{served.url}/api"
    yield fake
    served.stop()


def fresh(platform: FakePlatform) -> FakePlatform:
    """The served platform with its faults, counters and remote features reset for one test."""
    platform.reset()
    platform.features.clear()
    return platform
