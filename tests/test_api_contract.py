"""The local API against API.md: the real server process on a free loopback port, driven through core.client.

A few rules that need a clock or odd ids (rate limit, token expiry, streamed bodies) run in process.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from core.api import create_app
from core.api.shapes import instant
from core.client import PlatformClient, PlatformError, entity_path
from core.credentials import CredentialsError, credentials_file, load_or_create
from core.importers import ImportOptions
from core.pipeline import ingest_file
from core.queries import SessionFilter, sessions
from core.store import Store
from tests.conftest import ROOT
from tests.e2e.conftest import Server

CAPTURE = "CaptureChargeSessions"
SLASH_ID = 'fleet/ev "1"'
WINDOW = (datetime(2025, 2, 10, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC))
READINGS_WINDOW = (datetime(2025, 2, 12, 6, tzinfo=UTC), datetime(2025, 2, 12, 14, tzinfo=UTC))
IMPORTED_START = "2025-02-20T03:00:00Z"  # a session ev-01's charge point measured (source imported)
SLASH_READINGS = [
    ("2025-02-03T18:00:00Z", 0, "true"),
    ("2025-02-03T18:05:00Z", 6, "true"),
    ("2025-02-03T18:35:00Z", 6, "true"),
    ("2025-02-03T19:05:00Z", 6, "true"),
    ("2025-02-03T19:10:00Z", 0, "false"),
]


def run_cli(db: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    subprocess.run([sys.executable, "-m", "core", "--db", str(db), *args], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip


@dataclass
class Fleet:
    """The demo database (plus an entity whose id holds '/') and what its store held before serving."""

    db: Path
    exact_db: Path
    entity_ids: list[str]
    ev01_sessions: list[str]  # ids of ev-01's sessions starting in WINDOW, by start
    ev01_readings: list[str]  # timestamps of ev-01's readings in READINGS_WINDOW
    ev01_position: tuple[float, float]  # one of ev-01's reading positions, which must stay private by default


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    folder = tmp_path_factory.mktemp("contract")
    db = folder / "chargelens.duckdb"
    run_cli(db, "demo")
    with (folder / "slash.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["entity_id", "ts", "power_kw", "is_plugged_in"])
        writer.writerows([(SLASH_ID, *row) for row in SLASH_READINGS])
    reported = f"entity_id,start,end,energy_kwh\nev-01,{IMPORTED_START},2025-02-20T04:00:00Z,5.5\n"
    (folder / "reported.csv").write_text(reported)
    run_cli(db, "ingest", str(folder / "slash.csv"), str(folder / "reported.csv"))
    store = Store.open(db)
    try:
        entity_ids = store.entities().get_column("entity_id").to_list()
        window = SessionFilter(start=WINDOW[0], end=WINDOW[1], entity_ids=("ev-01",))
        ev01_sessions = sessions(store, window).get_column("session_id").to_list()
        readings = store.readings(["ev-01"], *READINGS_WINDOW)
        ev01_readings = [instant(ts) for ts in readings.get_column("ts").to_list()]
        position = readings.select("latitude", "longitude").row(0)
    finally:
        store.close()
    exact_db = folder / "exact" / "chargelens.duckdb"
    exact_db.parent.mkdir()
    shutil.copy(db, exact_db)
    run_cli(exact_db, "settings", "set", "exact_locations", "true")
    return Fleet(db, exact_db, entity_ids, ev01_sessions, ev01_readings, position)


@pytest.fixture(scope="module")
def server(fleet):
    load_or_create(fleet.db)  # the test and the server read the same credentials file
    served = Server(fleet.db)
    yield served
    served.stop()


@pytest.fixture
def client(server, fleet):
    creds = load_or_create(fleet.db)
    with PlatformClient(f"{server.url}/api", creds["clientId"], creds["clientSecret"], sleep=lambda s: None) as c:
        yield c


@pytest.fixture
def bearer(server, fleet) -> dict:
    reply = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(fleet.db))
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def refusal(call) -> tuple[int | None, str]:
    with pytest.raises(PlatformError) as caught:
        call()
    assert caught.value.detail  # a sentence a person can act on, never empty
    return caught.value.status, caught.value.title


# -- the main story -----------------------------------------------------------------------------------------
def test_capture_story_through_the_client(client, fleet):
    entities = list(client.entities())
    assert [e["id"] for e in entities] == fleet.entity_ids
    assert SLASH_ID in fleet.entity_ids
    assert set(entities[0]) == {"id", "type", "name", "brand", "identifier", "created", "lastSeen"}
    assert {e["id"]: e["type"] for e in entities}["home-battery"] == "Battery"

    assert refusal(lambda: client.set_feature("ev-01", "Teleport", True)) == (400, "UnknownFeature")
    assert refusal(lambda: client.set_feature("home-battery", CAPTURE, True)) == (400, "FeatureNotSupported")
    assert refusal(lambda: client.set_feature("ev-05", CAPTURE, True)) == (400, "BatteryCapacityRequired")
    assert refusal(lambda: client.set_feature("ev-06", CAPTURE, True)) == (400, "FeatureNotAvailable")
    assert list(client.charge_sessions("ev-05", "2025-02-01T00:00:00Z")) == []

    assert client.battery_capacity("ev-05") is None
    assert client.set_battery_capacity("ev-05", 58.0) == 58.0
    assert client.battery_capacity("ev-05") == 58.0
    assert client.set_feature("ev-05", CAPTURE, True) == [{"feature": CAPTURE, "enabled": True}]
    assert client.features("ev-05") == [{"feature": CAPTURE, "enabled": True}]
    soc_sessions = list(client.charge_sessions("ev-05", "2025-02-01T00:00:00Z"))
    # Only state-of-charge sessions can come from ev-05 (how many depends on the detector, not on the API).
    assert {s["method"] for s in soc_sessions} <= {"soc"}
    starts = [s["data"]["start"] for s in soc_sessions]
    assert starts == sorted(starts)

    start, end = WINDOW
    whole = list(client.charge_sessions("ev-01", start, end, page_size=1000))
    assert [s["id"] for s in whole] == fleet.ev01_sessions
    assert len(fleet.ev01_sessions) > 7
    assert all("2025-02-10T00:00:00Z" <= s["data"]["start"] < "2025-03-10T00:00:00Z" for s in whole)
    for size in (1, 7):
        assert list(client.charge_sessions("ev-01", start, end, page_size=size)) == whole
    assert [s["data"]["start"] for s in whole] == sorted(s["data"]["start"] for s in whole)

    assert IMPORTED_START in [s["data"]["start"] for s in whole]
    assert client.set_feature("ev-01", CAPTURE, False) == [{"feature": CAPTURE, "enabled": False}]
    # Detected sessions are hidden while the feature is off; the imported one stays listed.
    assert [(s["source"], s["data"]["start"]) for s in client.charge_sessions("ev-01", start, end)] == [
        ("imported", IMPORTED_START)
    ]
    assert list(client.charge_sessions("ev-02", start, end))
    assert client.set_feature("ev-02", CAPTURE, False) == [{"feature": CAPTURE, "enabled": False}]
    assert list(client.charge_sessions("ev-02", start, end)) == []  # an empty page, not an error
    assert client.set_feature("ev-01", CAPTURE, False) == [{"feature": CAPTURE, "enabled": False}]  # idempotent


def test_entities_and_readings_page_without_duplicates_or_holes(client, fleet):
    for size in (1, 7, 1000):
        assert [e["id"] for e in client.entities(page_size=size)] == fleet.entity_ids
        readings = list(client.readings("ev-01", *READINGS_WINDOW, page_size=size))
        assert [r["timestamp"] for r in readings] == fleet.ev01_readings
    assert len(fleet.ev01_readings) > 7


def test_session_shape_hides_positions_by_default(client, server, bearer, fleet):
    session = next(iter(client.charge_sessions("cp-02", "2025-02-01T00:00:00Z")))
    assert set(session) >= {"id", "entityId", "created", "data"}
    assert session["data"]["charge"]["total"]["unit"] == "kWh"
    assert session["data"]["locationMatches"][0]["location"]["label"] == "Office"
    assert "location" not in session["data"]
    reading = client.last_reading("ev-01")
    assert set(reading["data"]) >= {"positiveActiveInstantaneousPower", "stateOfCharge", "isCharging"}
    assert reading["data"]["positiveActiveInstantaneousPower"]["unit"] == "W"
    assert "location" not in reading["data"]
    page = httpx.get(
        f"{server.url}/api/v1/entities/ev-01/readings",
        params={"start": READINGS_WINDOW[0].isoformat(), "end": READINGS_WINDOW[1].isoformat(), "pageSize": 1000},
        headers=bearer,
    )
    assert page.status_code == 200 and len(page.json()["data"]) == len(fleet.ev01_readings)
    for value in fleet.ev01_position:
        for decimals in (4, 5, 6):
            assert f"{value:.{decimals}f}" not in page.text
            assert str(value)[: str(value).index(".") + 1 + decimals] not in page.text


def test_positions_are_returned_with_exact_locations_on(fleet):
    creds = load_or_create(fleet.exact_db)
    served = Server(fleet.exact_db)
    try:
        with PlatformClient(f"{served.url}/api", creds["clientId"], creds["clientSecret"]) as client:
            readings = list(client.readings("ev-01", *READINGS_WINDOW))
            session = next(iter(client.charge_sessions("ev-01", "2025-02-01T00:00:00Z")))
    finally:
        served.stop()
    lat, lon = fleet.ev01_position
    assert readings[0]["data"]["location"] == {"latitude": round(lat, 6), "longitude": round(lon, 6), "address": None}
    assert set(session["data"]["location"]) == {"latitude", "longitude", "address"}


# -- entity ids with "/" ------------------------------------------------------------------------------------
def test_entity_id_with_slash_reaches_its_entity(client, server, bearer):
    assert client.entity(SLASH_ID)["id"] == SLASH_ID
    assert client.features(SLASH_ID) == [{"feature": CAPTURE, "enabled": True}]
    sessions_ = list(client.charge_sessions(SLASH_ID, "2025-02-03T00:00:00Z"))
    assert [(s["entityId"], s["data"]["start"], s["data"]["end"]) for s in sessions_] == [
        (SLASH_ID, "2025-02-03T18:05:00Z", "2025-02-03T19:05:00Z")
    ]
    assert client.last_reading(SLASH_ID)["timestamp"] == "2025-02-03T19:10:00Z"
    # links.next keeps the id encoded, so following it as given works
    first = httpx.get(
        f"{server.url}/api/v1/entities/fleet%2Fev%20%221%22/readings",
        params={"start": "2025-02-03 18:00:00Z", "pageSize": 2},
        headers=bearer,
    ).json()
    assert "/api/v1/entities/fleet%2Fev%20%221%22/readings?" in first["links"]["next"]
    timestamps = [r["timestamp"] for r in first["data"]]
    next_url = first["links"]["next"]
    while next_url:
        page = httpx.get(next_url, headers=bearer).json()
        timestamps += [r["timestamp"] for r in page["data"]]
        next_url = page["links"]["next"]
    assert timestamps == [row[0] for row in SLASH_READINGS]
    unencoded = httpx.get(f"{server.url}/api/v1/entities/fleet/ev%20%221%22", headers=bearer)
    assert unencoded.status_code == 404 and unencoded.json()["title"] == "NotFound"


# -- locations ----------------------------------------------------------------------------------------------
def test_location_lifecycle(client):
    created = client.add_location("Depot", 50.9, 4.5)
    assert created == {"id": created["id"], "label": "Depot", "latitude": 50.9, "longitude": 4.5, "radius": 150.0}
    assert created in list(client.locations())
    replaced = client.update_location(created["id"], "Depot north", 50.91, 4.51, 300)
    assert replaced == {**created, "label": "Depot north", "latitude": 50.91, "longitude": 4.51, "radius": 300.0}
    assert client.delete_location(created["id"]) is None
    assert refusal(lambda: client.delete_location(created["id"])) == (404, "NotFound")

    own = client.add_location("Yard", 50.8, 4.4, 10, entity_id="cp-01")
    assert [loc["id"] for loc in client.locations("cp-01")] == [own["id"]]
    assert own["id"] not in [loc["id"] for loc in client.locations()]
    assert refusal(lambda: client.delete_location(own["id"])) == (404, "NotFound")  # not one for all entities
    client.delete_location(own["id"], entity_id="cp-01")
    assert list(client.locations("cp-01")) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "", "latitude": 50.0, "longitude": 4.0}, "label"),
        ({"label": "x" * 101, "latitude": 50.0, "longitude": 4.0}, "label"),
        ({"label": "X", "latitude": 91, "longitude": 4.0}, "latitude"),
        ({"label": "X", "latitude": 50.0, "longitude": -181}, "longitude"),
        ({"label": "X", "latitude": 50.0, "longitude": 4.0, "radius": 9}, "radius"),
        ({"label": "X", "latitude": 50.0, "longitude": 4.0, "radius": 5001}, "radius"),
        ({"label": "X", "latitude": "50", "longitude": 4.0}, "latitude"),
        ({"label": "X", "longitude": 4.0}, "latitude"),
    ],
)
def test_invalid_locations_get_400_per_field(server, bearer, body, field):
    reply = httpx.post(f"{server.url}/api/v1/locations", json=body, headers=bearer)
    assert reply.status_code == 400
    assert reply.json()["title"] == "ValidationError"
    assert list(reply.json()["errors"]) == [field]


# -- errors, auth, paging parameters --------------------------------------------------------------------------
def test_missing_or_bad_token_gets_401(server, fleet):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        reply = httpx.get(f"{server.url}/api/v1/entities", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["title"] == "Unauthorized" and set(reply.json()) == {"title", "status", "detail"}
        assert reply.headers["www-authenticate"] == "Bearer"
    creds = load_or_create(fleet.db)
    with PlatformClient(f"{server.url}/api", creds["clientId"], "wrong") as bad:
        assert refusal(lambda: bad.entity("cp-01")) == (401, "Unauthorized")


def test_authentication_reply_has_the_documented_shape(server, fleet):
    reply = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(fleet.db))
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (3599, "Bearer")


def test_forged_or_foreign_continuation_tokens_get_400(server, bearer):
    url = f"{server.url}/api/v1/entities"
    token = httpx.get(url, params={"pageSize": 2}, headers=bearer).json()["meta"]["continuationToken"]
    body, signature = token.split(".")
    forged = [
        f"{body}.{signature[:-2]}AA",
        f"{body[:-2]}AA.{signature}",
        "garbage",
        "a.b.c",
        "%%%",
        "x" * 3000,
        "",  # empty is not "no token": a first page is asked for by leaving the parameter out
    ]
    for bad in forged:
        reply = httpx.get(url, params={"continuationToken": bad}, headers=bearer)
        assert reply.status_code == 400, bad
        assert reply.json()["title"] == "ValidationError"
    foreign = httpx.get(
        f"{server.url}/api/v1/entities/cp-01/charge-sessions",
        params={"start": "2025-02-01T00:00:00Z", "continuationToken": token},
        headers=bearer,
    )
    assert foreign.status_code == 400 and foreign.json()["title"] == "ValidationError"
    sessions_url = f"{server.url}/api/v1/entities/cp-01/charge-sessions"
    page = httpx.get(sessions_url, params={"start": "2025-02-01T00:00:00Z", "pageSize": 1}, headers=bearer).json()
    other_window = httpx.get(
        sessions_url,
        params={"start": "2025-02-02T00:00:00Z", "continuationToken": page["meta"]["continuationToken"]},
        headers=bearer,
    )
    assert other_window.status_code == 400


@pytest.mark.parametrize("size", ["0", "1001", "-1", "ten"])
def test_page_size_out_of_range_gets_400(server, bearer, size):
    reply = httpx.get(f"{server.url}/api/v1/entities", params={"pageSize": size}, headers=bearer)
    assert reply.status_code == 400
    assert reply.json()["title"] == "ValidationError" and list(reply.json()["errors"]) == ["query.pageSize"]


def test_page_shape_and_default_size(server, bearer, fleet):
    page = httpx.get(f"{server.url}/api/v1/entities", headers=bearer).json()
    assert set(page) == {"data", "links", "meta"}
    assert page["meta"] == {"continuationToken": None, "pageSize": 25}
    assert page["links"] == {"next": None}
    assert len(page["data"]) == len(fleet.entity_ids)


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "query.start"), ({"start": "yesterday"}, "query.start"),
     ({"start": "2025-02-02T00:00:00Z", "end": "2025-02-01T00:00:00Z"}, "query.end")],
)  # fmt: skip
def test_bad_times_get_400(server, bearer, params, field):
    reply = httpx.get(f"{server.url}/api/v1/entities/cp-01/charge-sessions", params=params, headers=bearer)
    assert reply.status_code == 400
    assert reply.json()["title"] == "ValidationError" and list(reply.json()["errors"]) == [field]


def test_times_accept_z_offsets_and_a_space(client):
    expected = [s["id"] for s in client.charge_sessions("cp-02", "2025-02-05T00:00:00Z", "2025-02-10T00:00:00Z")]
    assert expected
    for start, end in (
        ("2025-02-05T01:00:00+01:00", "2025-02-10T00:00:00Z"),
        ("2025-02-05 00:00:00Z", "2025-02-09 19:00:00-05:00"),
    ):
        assert [s["id"] for s in client.charge_sessions("cp-02", start, end)] == expected


def test_unknown_entity_gets_404_in_the_error_shape(client, server, bearer):
    for path in ("nope", "nope/features", "nope/charge-sessions?start=2025-02-01T00:00:00Z", "nope/readings/last"):
        reply = httpx.get(f"{server.url}/api/v1/entities/{path}", headers=bearer)
        assert reply.status_code == 404, path
        assert set(reply.json()) == {"title", "status", "detail"} and reply.json()["title"] == "NotFound"
    assert refusal(lambda: client.set_battery_capacity("nope", 50)) == (404, "NotFound")


def test_battery_capacity_limits(client):
    assert refusal(lambda: client.set_battery_capacity("ev-04", 0)) == (400, "ValidationError")
    assert refusal(lambda: client.set_battery_capacity("ev-04", 300.5)) == (400, "ValidationError")
    assert refusal(lambda: client.set_battery_capacity("cp-01", 50)) == (400, "ValidationError")


def test_json_body_over_1_mb_gets_413(server, bearer):
    big = b'{"label": "' + b"x" * (1024 * 1024) + b'", "latitude": 1, "longitude": 1}'
    url = f"{server.url}/api/v1/locations"
    declared = httpx.post(url, content=big, headers={**bearer, "Content-Type": "application/json"})
    streamed = httpx.post(
        url, content=(big[i : i + 65536] for i in range(0, len(big), 65536)),
        headers={**bearer, "Content-Type": "application/json"},
    )  # fmt: skip
    for reply in (declared, streamed):
        assert reply.status_code == 413
        assert reply.json()["title"] == "PayloadTooLarge"


def test_security_headers_and_openapi(server, bearer):
    reply = httpx.get(f"{server.url}/api/v1/entities", headers=bearer)
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert reply.headers["content-security-policy"] == "default-src 'none'"
    assert httpx.get(f"{server.url}/api/v1/entities").headers["content-security-policy"] == "default-src 'none'"
    spec = httpx.get(f"{server.url}/api/openapi.json")
    assert spec.status_code == 200
    assert {"/v1/authentication", "/v1/entities/{entityId}/charge-sessions", "/v1/locations/{locationId}"} <= set(
        spec.json()["paths"]
    )
    docs = httpx.get(f"{server.url}/api/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert "Traceback" not in spec.text + docs.text


def test_credentials_file_is_private(fleet):
    assert credentials_file(fleet.db).name == "chargelens.api-credentials.json"
    assert credentials_file(fleet.db).stat().st_mode & 0o777 == 0o600


def test_credentials_are_created_once_and_reused(tmp_path):
    db = tmp_path / "data" / "fleet.duckdb"
    first = load_or_create(db)
    assert set(first) == {"clientId", "clientSecret"} and len(first["clientSecret"]) >= 40
    assert load_or_create(db) == first
    path = tmp_path / "data" / "fleet.api-credentials.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    path.chmod(0o644)
    assert load_or_create(db) == first and path.stat().st_mode & 0o777 == 0o600
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="delete it"):
        load_or_create(db)


# -- in process: a clock for expiry and the rate limit, odd ids --------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def local(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    clock = Clock()
    with TestClient(create_app(clock=clock)) as http:
        yield http, clock, load_or_create(db_path)
    Store.close_all()


def test_failed_authentications_are_rate_limited_per_address(local):
    http, clock, creds = local
    wrong = {**creds, "clientSecret": "wrong"}
    assert [http.post("/v1/authentication", json=wrong).status_code for _ in range(5)] == [401] * 5
    clock.now += 10
    limited = http.post("/v1/authentication", json=creds)
    assert limited.status_code == 429
    assert limited.json()["title"] == "TooManyRequests"
    assert limited.headers["retry-after"] == "50"
    clock.now += 50
    assert http.post("/v1/authentication", json=creds).status_code == 200


def test_an_unexpected_failure_is_a_500_without_trace_but_with_headers(local, monkeypatch):
    http, _, creds = local

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /home/x/db.duckdb")

    monkeypatch.setattr("core.api.service.entities_page", broken)
    token = http.post("/v1/authentication", json=creds).json()["access_token"]
    reply = http.get("/v1/entities", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 500
    assert reply.json()["title"] == "InternalError" and set(reply.json()) == {"title", "status", "detail"}
    assert "secret internals" not in reply.text and "Traceback" not in reply.text
    assert reply.headers["content-security-policy"] == "default-src 'none'"
    assert reply.headers["cache-control"] == "no-store"


def test_tokens_expire_after_3599_seconds(local):
    http, clock, creds = local
    token = http.post("/v1/authentication", json=creds).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/v1/entities", headers=headers).status_code == 200
    clock.now += 3598
    assert http.get("/v1/entities", headers=headers).status_code == 200
    clock.now += 1
    expired = http.get("/v1/entities", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_streamed_body_over_the_limit_gets_413_in_process(local):
    http, _, creds = local
    token = http.post("/v1/authentication", json=creds).json()["access_token"]
    chunks = (b"[" + b"1," * 40000 for _ in range(20))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    reply = http.post("/v1/locations", content=chunks, headers=headers)
    assert reply.status_code == 413 and reply.json()["title"] == "PayloadTooLarge"


def test_ids_that_look_like_routes_reach_their_entities(local, store, tmp_path):
    http, _, creds = local
    odd = ["a/features", "100%", "x/readings/last", "%2F", "sp ace?&#"]
    path = tmp_path / "odd.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["entity_id", "ts", "power_kw"])
        writer.writerows([(entity_id, "2025-02-03T18:00:00Z", 1.0) for entity_id in odd])
    ingest_file(store, path, ImportOptions())
    token = http.post("/v1/authentication", json=creds).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for entity_id in odd:
        assert http.get(entity_path(entity_id), headers=headers).json()["id"] == entity_id
        assert http.get(entity_path(entity_id, "readings", "last"), headers=headers).json()["entityId"] == entity_id
        features = http.get(entity_path(entity_id, "features"), headers=headers).json()
        assert features == [{"feature": CAPTURE, "enabled": True}]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=80), start=st.text(max_size=40), size=st.text(max_size=6))
def test_no_query_value_crashes_a_listing(local, token, start, size):
    http, _, creds = local
    bearer_token = http.post("/v1/authentication", json=creds).json()["access_token"]
    reply = http.get(
        "/v1/entities/x/charge-sessions",
        params={"continuationToken": token, "start": start, "pageSize": size},
        headers={"Authorization": f"Bearer {bearer_token}"},
    )
    assert reply.status_code in (400, 404)  # 404 only when every value was valid: there is no entity x
    assert set(reply.json()) <= {"title", "status", "detail", "errors"}


def test_unknown_query_parameters_are_named_not_ignored(server, bearer):
    reply = httpx.get(f"{server.url}/api/v1/entities", params={"pagesize": 1}, headers=bearer)
    assert reply.status_code == 400
    assert reply.json() == {
        "title": "ValidationError",
        "status": 400,
        "detail": "Unknown query parameter 'pagesize'; this call takes continuationToken, pageSize.",
        "errors": {"query.pagesize": "not a parameter of this call"},
    }


def test_a_method_a_path_does_not_take_names_every_method_it_does(server, bearer):
    reply = httpx.request("DELETE", f"{server.url}/api/v1/entities/ev-01/features", headers=bearer)
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, PATCH"
    assert reply.json()["detail"] == "DELETE is not taken by /api/v1/entities/ev-01/features; it takes GET, PATCH."


def test_an_entity_id_with_a_line_break_stays_inside_the_api(server, bearer):
    reply = httpx.get(f"{server.url}/api/v1/entities/a%0Ab/readings/last", headers=bearer)
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["title"] == "NotFound"
