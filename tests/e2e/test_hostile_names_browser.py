"""Names from data are shown as text: HTML and Markdown in an entity id and a location label stay literal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.e2e.conftest import Server, shot

pytestmark = pytest.mark.e2e
NAME = "<img src=x onerror=alert(1)>**bold**"
LABEL = "**Depot** _x_ [link](http://x) :red[y]"


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "hostile.duckdb"
    readings = tmp_path / "hostile.csv"
    rows = ["entity_id,ts,power_kw,latitude,longitude"]
    quoted = '"' + NAME + '"'
    rows += [f"{quoted},2025-02-03T18:{m:02d}:00Z,{7.0 if 5 <= m <= 40 else 0.0},50.5,4.5" for m in range(0, 60, 5)]
    rows += [f"{quoted},2025-02-03T19:30:00Z,0,50.5,4.5"]
    readings.write_text("\n".join(rows) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    for args in (["ingest", str(readings)], ["locations", "add", "--label", LABEL, "--lat", "50.5", "--lon", "4.5"]):
        subprocess.run([sys.executable, "-m", "core", "--db", str(db), *args], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    server = Server(db)
    yield server
    server.stop()


def test_markup_in_names_is_shown_literally(server, page):
    page.goto(f"{server.url}/entities")
    expect(page.get_by_text(f"{NAME} · EV", exact=True)).to_be_visible(timeout=30_000)
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("strong", has_text="bold").count() == 0
    shot(page, "hostile-entities")
    page.goto(f"{server.url}/locations")
    expect(page.get_by_role("combobox", name="Location")).to_have_value(f"{LABEL} · all entities", timeout=30_000)
    assert page.locator("a[href='http://x']").count() == 0 and page.locator("strong", has_text="Depot").count() == 0
    page.goto(f"{server.url}/sessions")
    expect(page.get_by_text("1 session, ")).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stDataFrame"]').click(position={"x": 18, "y": 52})  # the row's selection box
    expect(page.get_by_role("heading", name=f"Session of {NAME}")).to_be_visible(timeout=30_000)
    assert page.locator("img[src=x]").count() == 0 and page.locator("a[href='http://x']").count() == 0
    shot(page, "hostile-session")
    assert not page.dialogs
