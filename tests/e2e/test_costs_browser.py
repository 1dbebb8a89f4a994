"""Costs page in real Chromium: create a two-band tariff, assign it to a location, see the costs in the export."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import choose, download, shot

pytestmark = pytest.mark.e2e


def test_two_band_tariff_for_home_shows_in_sessions_export(server, page, tmp_path):
    page.goto(f"{server.url}/costs")
    expect(page.get_by_role("heading", name="Costs", level=1)).to_be_visible(timeout=30_000)
    page.get_by_text("Create or change a tariff").click()
    page.get_by_label("Name").fill("home-two-band")
    page.get_by_label("Band t1 price per kWh").fill("0.4000")
    page.get_by_label("Band t2 price per kWh (every other hour)").fill("0.2000")
    page.get_by_label("Fee per session").fill("0.50")
    page.get_by_role("button", name="Save tariff").click()
    expect(page.get_by_text("Tariff home-two-band saved")).to_be_visible(timeout=60_000)
    page.get_by_text("Assign a tariff").click()
    choose(page, page.get_by_label("Tariff", exact=True), "home-two-band")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_text("location Home")).to_be_attached(timeout=30_000)  # a grid cell, drawn on canvas
    shot(page, "costs-assigned")

    page.goto(f"{server.url}/sessions?location=Home&entity=ev-01")
    expect(page.get_by_text(" sessions, ")).to_be_visible(timeout=30_000)
    exported = download(page, page.get_by_role("button", name="Export CSV"), server)
    rows = list(csv.DictReader(io.StringIO(exported.path().read_text())))
    assert len(rows) > 10
    for row in rows:
        t1, t2 = float(row["energy_t1_kwh"]), float(row["energy_t2_kwh"])
        assert row["location_label"] == "Home" and row["currency"] == "EUR"
        # rounded energies in the file, so allow a cent
        assert float(row["cost_total"]) == pytest.approx((t1 * 0.40 + t2 * 0.20 + 0.50) * 1.21, abs=0.011)


def test_cheapest_hours_are_drawn_with_their_note(demo_server, page):
    page.goto(f"{demo_server.url}/costs")
    page.get_by_role("button", name="Compare").click(timeout=60_000)
    expect(page.get_by_role("heading", name="Cheapest hours")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Saving if flexible sessions had charged in their cheapest hours")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text("Energy cost only, VAT excluded.").first).to_be_visible()
    chart = page.locator(".js-plotly-plot").filter(has_text="Cheapest hours: energy per hour of the day")
    expect(chart).to_be_visible(timeout=60_000)
    chart.scroll_into_view_if_needed()
    # Both bar series and the price line are drawn, with their legend entries.
    for name in ("charged now", "charged if shifted", "price (EUR/kWh)"):
        expect(chart.get_by_text(name)).to_be_visible()
    shot(page, "costs-cheapest-hours")
