"""The API's hot reads (sessions pages, entity, features, last reading) in process on the demo fleet: the same answers
as core.queries, the edge cases their single-statement reads must keep, and pages that stay consistent while the
sessions they list are recomputed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from core.api import create_app
from core.credentials import load_or_create
from core.detect import DetectParams
from core.pipeline import detect, load_demo
from core.queries import SessionFilter, sessions
from core.store import Store

CAPTURE = "CaptureChargeSessions"
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = {"start": "2025-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}


@pytest.fixture
def demo(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    store = Store.open(db_path)
    load_demo(store)
    with TestClient(create_app()) as http:
        token = http.post("/v1/authentication", json=load_or_create(db_path)).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http, store
    Store.close_all()


def listing(http: TestClient, entity_id: str, size: int) -> list[dict]:
    """Every session of the window, page by page through links.next, as a client follows them."""
    reply = http.get(f"/v1/entities/{entity_id}/charge-sessions", params={**WINDOW, "pageSize": size})
    found = []
    while True:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        found += body["data"]
        if body["links"]["next"] is None:
            assert body["meta"]["continuationToken"] is None
            return found
        reply = http.get(body["links"]["next"])


def expected_ids(store: Store, entity_id: str) -> list[str]:
    frame = sessions(store, SessionFilter(start=START, end=END, entity_ids=(entity_id,))).sort(
        "start_utc", "session_id"
    )
    return frame.get_column("session_id").to_list()


def test_session_pages_list_what_the_session_filter_lists(demo):
    http, store = demo
    entity_ids = store.entities().get_column("entity_id").to_list()
    off = store.scalar("SELECT min(entity_id) FROM sessions WHERE source = 'detected'")
    listed_while_on = expected_ids(store, off)
    # Capture off with its detected sessions still stored (switching it off through the pipeline deletes them, a
    # fleet written straight into the store keeps them): the listing hides them and keeps the other ones.
    store.cursor().execute("UPDATE features SET enabled = false WHERE entity_id = ? AND feature = ?", [off, CAPTURE])
    assert len(expected_ids(store, off)) < len(listed_while_on)
    for entity_id in entity_ids:
        assert [s["id"] for s in listing(http, entity_id, 3)] == expected_ids(store, entity_id), entity_id


def test_location_matches_come_with_their_sessions(demo):
    http, store = demo
    for entity_id in store.entities().get_column("entity_id").to_list():
        for session in listing(http, entity_id, 7):
            rows = store.cursor().execute(
                "SELECT l.location_id, l.label FROM session_locations sl JOIN locations l USING (location_id) "
                "WHERE sl.session_id = ? ORDER BY sl.accuracy DESC, l.label, l.location_id",
                [session["id"]],
            )
            expected = [{"id": i, "label": label} for i, label in rows.fetchall()]
            assert [m["location"] for m in session["data"]["locationMatches"]] == expected


def test_a_known_entity_with_nothing_in_the_window_gets_an_empty_page(demo):
    http, store = demo
    entity_id = store.entities().get_column("entity_id").to_list()[0]
    reply = http.get(f"/v1/entities/{entity_id}/charge-sessions", params={"start": "2031-01-01T00:00:00Z"})
    assert reply.status_code == 200
    assert reply.json() == {"data": [], "links": {"next": None}, "meta": {"continuationToken": None, "pageSize": 25}}


def test_an_entity_without_features_or_readings(demo):
    http, store = demo
    store.cursor().execute("INSERT INTO entities (entity_id, entity_type) VALUES ('bare', 'EV')")
    assert http.get("/v1/entities/bare").json()["id"] == "bare"
    assert http.get("/v1/entities/bare/features").json() == [{"feature": CAPTURE, "enabled": False}]
    last = http.get("/v1/entities/bare/readings/last")
    assert last.status_code == 404 and "no readings yet" in last.json()["detail"]
    assert http.get("/v1/entities/bare/charge-sessions", params=WINDOW).json()["data"] == []
    for path in ("nope", "nope/features", "nope/readings/last", "nope/charge-sessions?start=2025-01-01T00:00:00Z"):
        missing = http.get(f"/v1/entities/{path}")
        assert missing.status_code == 404 and "There is no entity 'nope'" in missing.json()["detail"], path


def test_pages_stay_ordered_and_whole_while_sessions_are_recomputed(demo):
    http, store = demo
    entity_id = max(store.entities().get_column("entity_id").to_list(), key=lambda e: len(expected_ids(store, e)))
    before = expected_ids(store, entity_id)
    stop = threading.Event()
    failures: list[BaseException] = []

    def recompute() -> None:
        writer = Store.open(store.path)
        try:
            while not stop.is_set():
                # The same readings: the same sessions (ids are stable), deleted and written again each time.
                detect(writer, DetectParams.from_settings(writer.settings()), [entity_id])
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=recompute)
    thread.start()
    try:
        for size in (1, 2, 5, 1000):
            found = listing(http, entity_id, size)
            keys = [(s["data"]["start"], s["id"]) for s in found]
            assert [s["id"] for s in found] == before, size
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
    finally:
        stop.set()
        thread.join()
    assert not failures
