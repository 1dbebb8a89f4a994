"""Timeline in real Chromium: the charts draw, the whole period is one click away, downloads carry real files."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import download, shot

pytestmark = pytest.mark.e2e

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def open_timeline(page, url: str) -> None:
    page.goto(f"{url}/timeline")
    expect(page.get_by_role("heading", name="Timeline", level=1)).to_be_visible(timeout=30_000)
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2, timeout=60_000)  # the timeline, one tab
    for title in ("Sessions per entity", "Energy per week, by location"):
        expect(page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text=title)).to_have_count(1, timeout=30_000)


def open_tab(page, label: str, title: str) -> None:
    """Open an analysis tab: its chart replaces the previous tab's (only the open tab runs)."""
    page.get_by_role("tab", name=label).click()
    expect(page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text=title)).to_have_count(1, timeout=30_000)
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2, timeout=30_000)


def test_timeline_draws_every_chart_and_downloads_a_png(demo_server, page, tmp_path):
    page.set_viewport_size({"width": 1400, "height": 2400})  # the main area scrolls inside itself: a tall window
    open_timeline(page, demo_server.url)
    # The opening window's sessions are SVG (one line segment per session, no WebGL canvas); the heatmap draws an
    # image, the bars SVG shapes.
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    expect(timeline.locator(".scatterlayer path.js-line").first).to_be_attached()
    expect(timeline.locator("canvas")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"the most recent \d+ of \d+ filtered sessions"))).to_be_visible()
    shot(page, "timeline")
    open_tab(page, "Start hours", "Session starts by weekday and hour")
    expect(page.locator('[data-testid="stPlotlyChart"] .hm image')).to_have_count(1, timeout=30_000)
    open_tab(page, "Distributions", "Distributions")
    open_tab(page, "Idle time", "Plug-in time: charging and idle")
    shot(page, "timeline-idle-tab")

    png = download(page, page.get_by_role("button", name="Download PNG").first, demo_server, timeout_s=120)
    saved = tmp_path / png.suggested_filename
    png.save_as(saved)
    assert saved.name == "sessions-timeline.png"
    assert saved.read_bytes()[:8] == PNG_SIGNATURE
    assert saved.stat().st_size > 10_000
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert not page.dialogs


def test_whole_period_toggle_and_monthly_report_download(demo_server, page, cli, tmp_path):
    open_timeline(page, demo_server.url)
    page.get_by_text("Whole filtered period").click()
    expect(page.get_by_text(re.compile(r"all (\d+) of \1 filtered sessions"))).to_be_visible(timeout=30_000)

    page.get_by_text("Monthly report: a statement per entity").click()
    html = download(page, page.get_by_role("button", name="Download HTML"), demo_server)
    saved = tmp_path / "ui.html"
    html.save_as(saved)
    assert html.suggested_filename == "chargelens-2025-04.html"
    # The same demo in a database of its own: the CLI statement must be byte-for-byte the same.
    twin = tmp_path / "twin.duckdb"
    assert cli("demo", db=twin).code == 0
    printed = cli("reports", "monthly", "--month", "2025-04", "--format", "html", db=twin)
    assert printed.code == 0
    assert saved.read_bytes() == printed.out.encode()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
