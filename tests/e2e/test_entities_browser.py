"""Entities page in real Chromium: a refused toggle with its fix inline, then the EV's sessions appear."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot

pytestmark = pytest.mark.e2e


def sessions_of(page, server, entity: str) -> str:
    page.goto(f"{server.url}/sessions?entity={entity}")
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible(timeout=30_000)
    caption = page.get_by_text(" sessions, ").or_(page.get_by_text("No sessions match."))
    expect(caption.first).to_be_visible(timeout=30_000)
    return caption.first.inner_text()


def test_refusal_then_capacity_then_sessions(server, page):
    assert sessions_of(page, server, "ev-05") == "No sessions match."
    page.goto(f"{server.url}/entities")
    expect(page.get_by_role("heading", name="Entities", level=1)).to_be_visible(timeout=30_000)
    toggle = page.get_by_text("ev-05 · EV", exact=False)
    toggle.click()
    expect(page.get_by_text("BatteryCapacityRequired:", exact=False)).to_be_visible(timeout=30_000)
    switch = page.locator('[data-testid="stCheckbox"]').filter(has_text="ev-05 · EV").locator("input")
    expect(switch).not_to_be_checked()
    shot(page, "entities-refusal")
    page.get_by_label("Battery capacity of ev-05 (kWh)").fill("58")
    page.get_by_role("button", name="Set capacity and switch capture on").click()
    expect(page.get_by_text("BatteryCapacityRequired:", exact=False)).to_have_count(0, timeout=30_000)
    expect(switch).to_be_checked(timeout=30_000)
    caption = sessions_of(page, server, "ev-05")
    assert caption.startswith("25 sessions"), caption
    assert not page.dialogs
