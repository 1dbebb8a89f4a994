"""Locations page in real Chromium: adding a place relabels matched sessions on the Sessions page; deleting it
takes the label away again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import choose, shot

pytestmark = pytest.mark.e2e


def sessions_at(page, server, label: str) -> str:
    """The Sessions page's caption ("N sessions, E kWh") filtered on one location label."""
    page.goto(f"{server.url}/sessions")
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible(timeout=30_000)
    page.get_by_label("Location").click()
    options = page.get_by_role("option")
    if label not in options.all_inner_texts():
        page.keyboard.press("Escape")
        return ""
    page.get_by_role("option", name=label, exact=True).click()
    caption = page.get_by_text(" sessions, ", exact=False)
    expect(caption).to_be_visible(timeout=30_000)
    return caption.inner_text()


def test_add_and_delete_a_location_changes_session_labels(server, page):
    # cp-04 (the public fast charger) matches no location in the demo; its fixed position is public.
    page.goto(f"{server.url}/locations")
    expect(page.get_by_role("heading", name="Locations", level=1)).to_be_visible(timeout=30_000)
    form = page.locator('[data-testid="stForm"]').filter(has_text="Add a location")
    form.get_by_label("Label").fill("Fast charger")
    form.get_by_label("Latitude").fill("50.880000")
    form.get_by_label("Longitude").fill("4.263000")
    form.get_by_label("Radius (m)").fill("500")
    form.get_by_role("button", name="Add location").click()
    # the page says so once the place is stored and sessions are matched again (only then may the test move on)
    expect(page.get_by_text("Location Fast charger added; sessions were matched again.")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_contain_text("Fast charger", timeout=30_000)
    shot(page, "locations-added")
    caption = sessions_at(page, server, "Fast charger")
    count = int(caption.split()[0].replace(",", ""))
    assert count >= 200, caption  # cp-04's sessions now carry the new label

    page.goto(f"{server.url}/locations")
    edit = page.locator('[data-testid="stForm"]').filter(has_text="Edit or delete")
    expect(edit).to_be_visible(timeout=30_000)
    choose(page, edit.locator('[data-testid="stSelectbox"]'), "Fast charger · all entities")
    expect(edit.get_by_role("combobox", name="Location")).to_have_value("Fast charger · all entities")
    edit.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Location Fast charger deleted; sessions were matched again.")).to_be_visible(
        timeout=60_000
    )
    expect(page.locator('[data-testid="stDataFrame"]').first).not_to_contain_text("Fast charger", timeout=30_000)
    assert sessions_at(page, server, "Fast charger") == ""  # the label is gone from the filter and the rows
    assert not page.dialogs
