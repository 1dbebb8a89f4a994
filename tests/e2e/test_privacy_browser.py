"""With exact_locations off, no API reply and no page of the real server shows a vehicle's position."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from core.client import PlatformClient
from core.credentials import load_or_create
from core.pipeline import load_demo
from core.store import Store
from tests.privacy import demo_secrets, leaks

pytestmark = pytest.mark.e2e
EVS = ["ev-01", "ev-02", "ev-03", "ev-04", "ev-05", "ev-06"]


@pytest.fixture(scope="module")
def forbidden(tmp_path_factory) -> set[str]:
    """The demo is deterministic: a twin database gives the same readings and session positions."""
    store = Store.open(tmp_path_factory.mktemp("twin") / "twin.duckdb")
    load_demo(store, seed=1)
    forbidden = demo_secrets(store)
    store.close()
    return forbidden


def test_api_replies_carry_no_position(demo_server, forbidden):
    credentials = load_or_create(demo_server.db)
    with PlatformClient(f"{demo_server.url}/api", credentials["clientId"], credentials["clientSecret"]) as client:
        replies = [list(client.entities())]
        for entity in EVS:
            replies.append(list(client.readings(entity, "2025-01-01T00:00:00Z", "2025-05-01T00:00:00Z",
                                                page_size=1000)))  # fmt: skip
            replies.append(list(client.charge_sessions(entity, "2025-01-01T00:00:00Z", page_size=1000)))
            replies.append(client.last_reading(entity))
    data = json.dumps(replies).encode()
    assert len(data) > 1_000_000  # the readings really came back
    assert leaks(data, forbidden) == []
    assert b'"latitude"' not in data and b'"longitude"' not in data


@pytest.mark.parametrize("path", ["", "sessions", "timeline", "locations", "entities", "costs"])
def test_pages_show_no_position(demo_server, page, forbidden, path):
    page.goto(f"{demo_server.url}/{path}")
    expect(page.locator('[data-testid="stSidebarNav"]')).to_be_visible(timeout=30_000)
    page.wait_for_timeout(2500)  # charts and tables settle
    html = page.content().encode()
    assert leaks(html, forbidden) == []
