"""core.client against a fake remote platform on a real loopback port: tokens, retries, paging, typed errors."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from core.client import PlatformClient, PlatformError, entity_path, format_time
from tests.conftest import free_port
from tests.fake_platform import CLIENT_ID, CLIENT_SECRET, T0, FakePlatform, fresh, sample_platform, serving

EV = 'ev/1 "north"'


@pytest.fixture(scope="module")
def platform():
    yield from serving(sample_platform())


@pytest.fixture
def fake(platform: FakePlatform) -> FakePlatform:
    return fresh(platform)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(fake, sleeps, clock):
    with PlatformClient(fake.url, CLIENT_ID, CLIENT_SECRET, sleep=sleeps.append, clock=clock, timeout=5.0) as c:
        yield c


def session_ids(fake: FakePlatform) -> list[str]:
    return [s["id"] for s in fake.sessions[EV]]


# -- paging -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page_size", [1, 7, 23, 1000])
def test_sessions_page_through_without_duplicates_or_holes(client, fake, page_size):
    listed = [s["id"] for s in client.charge_sessions(EV, T0, page_size=page_size)]
    assert listed == session_ids(fake)
    expected_requests = max(1, -(-23 // page_size))
    assert [s.raw_path for s in fake.seen].count("/api" + entity_path(EV, "charge-sessions")) == expected_requests


def test_entities_and_readings_are_listed_whole(client, fake):
    assert [e["id"] for e in client.entities(page_size=2)] == [EV, "cp-7", "battery-1"]
    readings = list(client.readings(EV, "2025-03-01T01:00:00Z", datetime(2025, 3, 1, 5, tzinfo=UTC), page_size=3))
    assert [r["data"]["stateOfCharge"]["value"] for r in readings] == list(range(44, 60))


def test_entity_id_with_slash_travels_as_one_segment(client, fake):
    assert client.entity(EV)["name"] == "Van north"
    assert client.set_feature(EV, "CaptureChargeSessions", True) == [{"feature": "CaptureChargeSessions",
                                                                      "enabled": True}]  # fmt: skip
    paths = [s.raw_path for s in fake.seen if s.method != "POST"]
    assert paths == ["/api/v1/entities/ev%2F1%20%22north%22", "/api/v1/entities/ev%2F1%20%22north%22/features"]
    assert fake.features == {EV: True}


def test_empty_page_with_a_token_ends_the_listing(client, fake):
    fake.faults.empty_page_with_token = True
    assert [s["id"] for s in client.charge_sessions(EV, T0, page_size=5)] == session_ids(fake)[:5]


def test_a_repeated_token_stops_with_a_clear_error(client, fake):
    fake.faults.repeat_token = True
    listed = []
    with pytest.raises(PlatformError) as caught:
        for item in client.charge_sessions(EV, T0, page_size=5):
            listed.append(item["id"])
    assert (caught.value.status, caught.value.title) == (200, "PagingLoop")
    assert "same continuationToken" in caught.value.detail
    assert listed == session_ids(fake)[:5]  # the repeated page is not yielded twice


# -- tokens -----------------------------------------------------------------------------------------------
def test_token_is_cached_and_renewed_shortly_before_expiry(client, fake, clock):
    fake.token_lifetime = 300
    try:
        client.entity("cp-7")
        client.entity("cp-7")
        assert fake.auth_calls() == 1
        clock.now += 300 - 60 - 1
        client.entity("cp-7")
        assert fake.auth_calls() == 1
        clock.now += 1  # 60 s before expiry: renew before sending
        client.entity("cp-7")
        assert fake.auth_calls() == 2
        assert all(s.status != 401 for s in fake.seen)
    finally:
        fake.token_lifetime = 3599


def test_token_dying_mid_listing_is_renewed_once_and_nothing_is_lost(client, fake):
    fake.faults.revoke_after = 3
    listed = [s["id"] for s in client.charge_sessions(EV, T0, page_size=2)]
    assert listed == session_ids(fake)
    # 12 pages; the token dies after the 3rd, 6th and 9th page (the 12th is the last request)
    assert fake.auth_calls() == 1 + 3
    assert [s.status for s in fake.seen].count(401) == 3


def test_wrong_secret_is_a_typed_401_without_retries(fake, sleeps):
    with PlatformClient(fake.url, CLIENT_ID, "wrong", sleep=sleeps.append) as client:
        with pytest.raises(PlatformError) as caught:
            client.entity("cp-7")
    assert (caught.value.status, caught.value.title, caught.value.detail) == (
        401, "Unauthorized", "Unknown client id or secret.",
    )  # fmt: skip
    assert len(fake.seen) == 1 and sleeps == []


def test_repr_never_shows_the_secret(client):
    assert CLIENT_SECRET not in repr(client)


# -- retries ----------------------------------------------------------------------------------------------
def test_429_waits_as_long_as_retry_after_says(client, fake, sleeps):
    fake.faults.rate_limited = 2
    fake.faults.retry_after = "7"
    assert client.entity("cp-7")["id"] == "cp-7"
    assert sleeps == [7.0, 7.0]


def test_429_beyond_the_retries_is_a_typed_error(client, fake, sleeps):
    fake.faults.rate_limited = 10
    with pytest.raises(PlatformError) as caught:
        client.entity("cp-7")
    assert (caught.value.status, caught.value.title, caught.value.detail) == (429, "TooManyRequests", "Slow down.")
    assert sleeps == [2.0, 2.0, 2.0]


def test_503_is_retried_with_exponential_backoff(client, fake, sleeps):
    fake.faults.failing = 3
    fake.faults.fail_status = 503
    assert [e["id"] for e in client.entities()] == [EV, "cp-7", "battery-1"]
    assert sleeps == [0.5, 1.0, 2.0]


def test_500_is_not_retried_and_keeps_the_platforms_words(client, fake, sleeps):
    fake.faults.failing = 1
    with pytest.raises(PlatformError) as caught:
        client.entity("cp-7")
    assert (caught.value.status, caught.value.title, caught.value.detail) == (
        500, "InternalError", "The platform failed; it was logged.",
    )  # fmt: skip
    assert sleeps == []
    assert [s.status for s in fake.seen] == [200, 500]  # authentication, then the one failed call


def test_a_body_that_is_not_json_still_gives_status_title_and_detail(client, fake, sleeps):
    fake.faults.failing = 10
    fake.faults.fail_status = 502
    fake.faults.fail_text = "<html><body><h1>502 Bad Gateway</h1>\n nginx</body></html>"
    with pytest.raises(PlatformError) as caught:
        client.set_feature(EV, "CaptureChargeSessions", True)
    assert (caught.value.status, caught.value.title) == (502, "BadGateway")
    assert caught.value.detail == "<html><body><h1>502 Bad Gateway</h1> nginx</body></html>"
    assert sleeps == [0.5, 1.0, 2.0]


def test_business_refusal_is_surfaced_not_retried(client, fake, sleeps):
    with pytest.raises(PlatformError) as caught:
        client.set_feature("battery-1", "CaptureChargeSessions", True)
    assert (caught.value.status, caught.value.title) == (400, "FeatureNotSupported")
    assert sleeps == []


def test_slow_reply_times_out_and_is_retried(fake, sleeps):
    fake.faults.slow = 1
    fake.faults.slow_s = 1.0
    with PlatformClient(fake.url, CLIENT_ID, CLIENT_SECRET, sleep=sleeps.append, timeout=0.25) as client:
        assert client.entity("cp-7")["id"] == "cp-7"
    assert sleeps == [0.5]


def test_a_platform_that_stays_slow_gives_a_timeout_error(fake, sleeps):
    fake.faults.slow = 2
    fake.faults.slow_s = 1.0
    with PlatformClient(fake.url, CLIENT_ID, CLIENT_SECRET, sleep=sleeps.append, timeout=0.25, max_retries=1) as c:
        with pytest.raises(PlatformError) as caught:
            c.entity("cp-7")
    assert (caught.value.status, caught.value.title) == (None, "Timeout")
    assert sleeps == [0.5]


def test_nobody_listing_is_retried_then_reported(sleeps):
    closed = f"http://127.0.0.1:{free_port()}/api"
    with PlatformClient(closed, CLIENT_ID, CLIENT_SECRET, sleep=sleeps.append, timeout=1.0) as client:
        with pytest.raises(PlatformError) as caught:
            client.entity("cp-7")
    assert (caught.value.status, caught.value.title) == (None, "ConnectionFailed")
    assert "4 attempt(s)" in caught.value.detail
    assert sleeps == [0.5, 1.0, 2.0]


def test_non_idempotent_post_is_not_resent_after_a_timeout():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path.endswith("/authentication"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3599, "token_type": "Bearer"})
        raise httpx.ReadTimeout("slow", request=request)

    transport = httpx.MockTransport(handler)
    with PlatformClient("http://platform.test/api", "id", "secret", transport=transport, sleep=lambda s: None) as c:
        with pytest.raises(PlatformError) as caught:
            c.add_location("Depot", 50.1, 4.2)
    assert caught.value.title == "Timeout"
    assert sent == ["/api/v1/authentication", "/api/v1/locations"]


def test_times_are_sent_as_rfc3339_utc():
    assert format_time(datetime(2025, 3, 1, 1, 0, tzinfo=UTC)) == "2025-03-01T01:00:00Z"
    with pytest.raises(ValueError, match="no time zone"):
        format_time(datetime(2025, 3, 1))
