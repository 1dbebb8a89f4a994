"""The daily pull while serving (core.daily): when it is due, what it pulls, how it fails and retries, and the real
server doing it on its own against the fake platform on a loopback port."""

from __future__ import annotations

import time as clock_time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from core import daily, remote
from core.credentials import load_or_create
from core.store import Store
from tests.e2e.conftest import Server
from tests.fake_platform import CLIENT_ID, CLIENT_SECRET, T0, FakePlatform, fleet_platform, fresh, serving

DAY2 = T0 + timedelta(days=1)
LAST_EV_READING = "2025-03-02T23:50:00Z"  # ev-a: 288 readings every 10 min from T0


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- when -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "pull_time", "zone", "before", "after"),
    [
        ("2025-03-10T12:00", "03:00", "UTC", "2025-03-10T03:00", "2025-03-11T03:00"),
        ("2025-03-10T02:59", "03:00", "UTC", "2025-03-09T03:00", "2025-03-10T03:00"),
        ("2025-03-10T03:00", "03:00", "UTC", "2025-03-10T03:00", "2025-03-11T03:00"),
        # Brussels is UTC+1 in winter and UTC+2 from 2025-03-30 (02:00 → 03:00) to 2025-10-26 (03:00 → 02:00).
        ("2025-03-29T12:00", "03:00", "Europe/Brussels", "2025-03-29T02:00", "2025-03-30T01:00"),
        ("2025-03-30T12:00", "02:30", "Europe/Brussels", "2025-03-30T01:30", "2025-03-31T00:30"),  # skipped: 03:30
        ("2025-10-26T12:00", "02:30", "Europe/Brussels", "2025-10-26T00:30", "2025-10-27T01:30"),  # first of two
        ("2025-10-25T23:00", "00:15", "Europe/Brussels", "2025-10-25T22:15", "2025-10-26T23:15"),  # 01:00 local
    ],
)
def test_daily_slots_are_local_times_of_day_across_dst(now, pull_time, zone, before, after):
    assert daily.slot_before(utc(now), pull_time, zone) == utc(before)
    assert daily.slot_after(utc(now), pull_time, zone) == utc(after)


# -- what, against the fake platform --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def platform():
    yield from serving(fleet_platform())


@pytest.fixture
def fake(platform: FakePlatform) -> FakePlatform:
    return fresh(platform)


@pytest.fixture
def connected(store: Store, fake: FakePlatform) -> Store:
    remote.connect(store, fake.url, CLIENT_ID, CLIENT_SECRET)
    return store


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def pulled_yesterday(store: Store) -> None:
    """The first day was pulled by hand, a day before the last daily slot (the server was down since)."""
    with remote.open_client(store, sleep=lambda s: None) as client:
        first = remote.pull(store, client, start=T0, end=DAY2)
        remote.pull_sessions(store, client, start=T0, end=DAY2)
    assert first.total().stored == 144 + 96
    with store.transaction() as tx:
        tx.execute("UPDATE remote_pulls SET pulled = pulled - INTERVAL 2 DAY")


def readings(store: Store) -> list[tuple]:
    return store.frame("SELECT entity_id, count(*), count(DISTINCT ts) FROM readings GROUP BY 1 ORDER BY 1").rows()


def test_nothing_happens_without_a_connection(store, fake):
    runner = daily.DailyPull(store.path, clock=Clock(datetime.now(UTC) + timedelta(days=3)))
    assert runner.tick() is None
    assert fake.seen == []


def test_a_missed_slot_is_caught_up_once_and_continues_where_the_last_pull_stopped(connected, fake):
    pulled_yesterday(connected)
    fake.seen.clear()
    runner = daily.DailyPull(connected.path, client_options={"sleep": lambda s: None})
    outcome = runner.tick()
    assert outcome is not None and not outcome.failed
    assert (outcome.readings, outcome.line()) == (144 + 96, "daily pull: 240 new readings, 1 new sessions")
    assert readings(connected) == [("cp-b", 192, 192), ("ev-a", 288, 288)]
    starts: dict[str, str] = {}
    for seen in fake.seen:
        if seen.raw_path.endswith("/readings"):
            starts.setdefault(seen.raw_path.split("/")[-2], parse_qs(seen.query)["start"][0])
    # each from its last reading; the battery, which had none, from its first window again
    assert starts == {
        "ev-a": "2025-03-01T23:50:00Z",
        "cp-b": "2025-03-01T23:45:00Z",
        "battery-9": "2025-03-01T00:00:00Z",
    }
    assert connected.scalar("SELECT count(*) FROM sessions WHERE source = 'platform'") == 4

    fake.seen.clear()
    assert runner.tick() is None  # the day's pull is done
    assert fake.seen == []


def test_before_any_pull_the_first_slot_after_start_pulls_the_lookback(connected, fake):
    now = datetime.now(UTC).replace(microsecond=0)
    at = Clock(now)
    runner = daily.DailyPull(connected.path, clock=at, client_options={"sleep": lambda s: None})
    assert runner.tick() is None  # no slot passed since the server started
    at.now = now + timedelta(days=1)
    outcome = runner.tick()
    assert outcome is not None and not outcome.failed
    first = next(s for s in fake.seen if s.raw_path.endswith("/ev-a/readings"))
    assert parse_qs(first.query)["start"] == [(at.now - daily.LOOKBACK).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_a_failed_pull_is_reported_and_retried_after_a_pause(connected, fake):
    pulled_yesterday(connected)
    fake.faults.failing = 1000
    now = datetime.now(UTC)
    at = Clock(now)
    runner = daily.DailyPull(connected.path, clock=at, client_options={"sleep": lambda s: None})
    outcome = runner.tick()
    assert outcome.failed
    assert outcome.errors == [
        "Listing the remote entities failed: the remote platform answered 500 InternalError: "
        "The platform failed; it was logged."
    ]
    assert runner.retry_at == now + daily.RETRY
    asked = len(fake.seen)
    at.now = now + daily.RETRY - timedelta(seconds=1)
    assert runner.tick() is None and len(fake.seen) == asked  # no hammering of a failing platform
    fake.faults.failing = 0
    at.now = now + daily.RETRY
    outcome = runner.tick()
    assert outcome is not None and not outcome.failed and outcome.readings == 240
    assert readings(connected) == [("cp-b", 192, 192), ("ev-a", 288, 288)]


def test_the_schedule_sentence(connected):
    now = utc("2025-03-10T12:00")
    assert daily.schedule(connected, now).sentence() == (
        "While the server runs, new readings and sessions are pulled every day at 03:00 UTC "
        "(next 2025-03-11 03:00 UTC; nothing was pulled yet)."
    )
    connected.set_setting("remote_pull_time", "22:30")
    connected.set_setting("display_timezone", "Europe/Brussels")
    assert daily.schedule(connected, now).next == utc("2025-03-10T21:30")


# -- the real server ------------------------------------------------------------------------------------------
def test_the_server_catches_up_a_missed_daily_pull_on_its_own(db_path, fake):
    store = Store.open(db_path)
    remote.connect(store, fake.url, CLIENT_ID, CLIENT_SECRET)
    pulled_yesterday(store)
    Store.close_all()
    server = Server(db_path)
    try:
        token = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(db_path), timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        deadline = clock_time.monotonic() + 60
        last = None
        while clock_time.monotonic() < deadline:
            reply = httpx.get(f"{server.url}/api/v1/entities/ev-a/readings/last", headers=headers, timeout=10)
            last = reply.json().get("timestamp") if reply.status_code == 200 else None
            if last == LAST_EV_READING:
                break
            clock_time.sleep(0.5)
        assert last == LAST_EV_READING
    finally:
        server.stop()
    assert "daily pull: 240 new readings, 1 new sessions" in db_path.with_suffix(".log").read_text()
    store = Store.open(db_path)
    assert readings(store) == [("cp-b", 192, 192), ("ev-a", 288, 288)]
