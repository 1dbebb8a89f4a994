"""Every page opened by its URL in real Chromium against the real server: title, sidebar, no exception."""

from __future__ import annotations

import csv
import io
import re

import polars as pl
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server, download, shot

pytestmark = pytest.mark.e2e

PAGES = {"": "Overview", "import": "Import", "sessions": "Sessions", "timeline": "Timeline", "costs": "Costs",
         "locations": "Locations", "entities": "Entities"}  # fmt: skip


def assert_page(page, title: str) -> None:
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=30_000)
    expect(page).to_have_title(title, timeout=10_000)
    expect(page.locator('[data-testid="stSidebarNav"]')).to_be_visible()
    for name in PAGES.values():
        expect(page.locator('[data-testid="stSidebarNav"]').get_by_text(name, exact=True)).to_be_visible()
    page.wait_for_timeout(500)  # let late elements settle before looking for exceptions
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_deep_link_on_fresh_server_gets_app_navigation(tmp_path, page):
    server = Server(tmp_path / "fresh.duckdb")
    try:
        page.goto(f"{server.url}/sessions")
        assert_page(page, "Sessions")
        expect(page.get_by_text("No sessions match.")).to_be_visible()
        shot(page, "fresh-sessions-empty")
    finally:
        server.stop()


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_by_url_on_demo_data(demo_server, page, path):
    page.goto(f"{demo_server.url}/{path}")
    assert_page(page, PAGES[path])
    if path in ("", "sessions", "timeline"):
        expect(page.locator('[data-testid="stPlotlyChart"], [data-testid="stDataFrame"]').first).to_be_visible(
            timeout=30_000
        )
    page.wait_for_timeout(1000)
    shot(page, f"demo-{path or 'overview'}")
    assert not page.dialogs


def test_second_serve_and_a_cli_write_without_an_endpoint_get_one_sentence(demo_server, cli):
    for args in (("demo",), ("serve", "--port", "1")):  # the commands that never run through a server (API.md)
        result = cli(*args, db=demo_server.db)
        assert result.code == 2
        assert demo_server.url in result.err and len(result.err.strip().splitlines()) == 1
        assert "Traceback" not in result.err


def test_health_on_the_real_server(demo_server):
    import httpx

    reply = httpx.get(f"{demo_server.url}/api/health")
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    assert reply.json()["database"]["file"] == "chargelens.duckdb"


SHARED_VIEW = "entity=ev-01&entity=cp-02&start=2025-02-10&end=2025-03-09"  # the end date is included
SAME_FILTER = ("--entity", "ev-01", "--entity", "cp-02", "--start", "2025-02-10T00:00:00Z",
               "--end", "2025-03-10T00:00:00Z")  # fmt: skip


def test_a_shared_view_exports_the_same_bytes_as_the_cli_in_every_format(demo_server, page, cli, tmp_path):
    page.goto(f"{demo_server.url}/sessions?{SHARED_VIEW}")
    caption = page.get_by_text(re.compile(r"^[\d,]+ sessions?, [\d,.]+ kWh$"))
    expect(caption).to_be_visible(timeout=30_000)
    shown_count = int(caption.inner_text().split(" ")[0].replace(",", ""))
    twin = tmp_path / "twin.duckdb"  # the same demo (same seed) in a database of its own
    assert cli("demo", db=twin).code == 0
    for fmt in ("csv", "json", "parquet", "xlsx"):
        saved = tmp_path / f"ui.{fmt}"
        download(page, page.get_by_role("button", name=f"Export {fmt.upper()}"), demo_server).save_as(saved)
        out = tmp_path / f"cli.{fmt}"
        assert cli("sessions", "export", "--format", fmt, *SAME_FILTER, "--out", str(out), db=twin).code == 0
        assert saved.read_bytes() == out.read_bytes(), fmt
    rows = list(csv.DictReader(io.StringIO((tmp_path / "ui.csv").read_text())))
    assert len(rows) == shown_count > 0  # the CSV holds the rows the table shows
    assert {r["entity_id"] for r in rows} == {"ev-01", "cp-02"}
    assert min(r["start_utc"] for r in rows) >= "2025-02-10" and max(r["start_utc"] for r in rows) < "2025-03-10"
    assert pl.read_parquet(tmp_path / "ui.parquet").height == shown_count
    assert pl.read_excel(tmp_path / "ui.xlsx", engine="openpyxl").height == shown_count


SUMMARY = re.compile(r"^[\d,]+ sessions?, [\d,.]+ kWh$")


def test_a_shared_view_shows_the_same_filtered_figures_on_every_filtered_page(demo_server, page, cli, tmp_path):
    twin = tmp_path / "twin.duckdb"
    assert cli("demo", db=twin).code == 0
    exported = cli("sessions", "export", "--format", "csv", *SAME_FILTER, db=twin)
    rows = list(csv.DictReader(io.StringIO(exported.out)))
    energy = sum(float(r["energy_kwh"]) for r in rows)
    expected = f"{len(rows):,} sessions, {energy:,.1f} kWh"
    for path in ("", "sessions", "timeline", "costs"):
        page.goto(f"{demo_server.url}/{path}?{SHARED_VIEW}")
        summary = page.get_by_text(SUMMARY)
        expect(summary).to_have_text(expected, timeout=30_000)
        # the widgets show the shared filter, and the URL keeps it
        expect(page.get_by_text("ev-01", exact=True).first).to_be_visible()
        expect(page.get_by_text("cp-02", exact=True).first).to_be_visible()
        assert "entity=ev-01" in page.url and "start=2025-02-10" in page.url
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_clicking_a_session_opens_its_detail(demo_server, page):
    page.goto(f"{demo_server.url}/sessions?entity=cp-02")
    grid = page.locator('[data-testid="stDataFrame"]').first
    expect(grid).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selection cell, under the header
    expect(page.get_by_role("heading", name="Session of cp-02")).to_be_visible(timeout=30_000)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart).to_be_attached(timeout=30_000)
    chart.scroll_into_view_if_needed()
    expect(chart).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Select a row to see")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^started: "))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^ended: "))).to_be_visible()
    shot(page, "session-detail")
