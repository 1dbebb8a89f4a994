"""Every page opened by its URL in real Chromium against the real server: title, sidebar, no exception."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server, shot

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


def test_second_serve_and_cli_write_while_serving_get_one_sentence(demo_server, cli, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("entity_id,ts,power_kw\nev,2025-02-01T10:00:00Z,1\n")
    for args in (("ingest", str(path)), ("serve", "--port", "1")):
        result = cli(*args, db=demo_server.db)
        assert result.code == 2
        assert demo_server.url in result.err and len(result.err.strip().splitlines()) == 1
        assert "Traceback" not in result.err


def test_health_on_the_real_server(demo_server):
    import httpx

    reply = httpx.get(f"{demo_server.url}/api/health")
    assert reply.status_code == 200 and reply.json()["status"] == "ok"
    assert reply.json()["database"]["file"] == "chargelens.duckdb"


def test_sessions_csv_download_equals_the_cli_export(demo_server, page, cli, tmp_path):
    page.goto(f"{demo_server.url}/sessions")
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible(timeout=30_000)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / "ui.csv"
    download.value.save_as(saved)
    # The same demo (same seed) in a database of its own: the CLI export must be byte-for-byte the same.
    twin = tmp_path / "twin.duckdb"
    assert cli("demo", db=twin).code == 0
    exported = cli("sessions", "export", "--format", "csv", db=twin)
    assert exported.code == 0
    assert saved.read_bytes() == exported.out.encode()
    assert saved.read_text().count("\n") == 727
