"""Real server on a free loopback port, real headless Chromium (Debian's), screenshots in tests/artifacts/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from bench.common import Server
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = ROOT / "tests" / "artifacts"


def load_demo(db: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    subprocess.run([sys.executable, "-m", "core", "--db", str(db), "demo"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: `make test` must install it (apt-get install chromium).")
        pytest.skip("Chromium missing: run `make test`, which installs Debian's chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e-demo") / "chargelens.duckdb"
    load_demo(db)
    server = Server(db)
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path):
    """A demo database and a server of the test's own, for tests that change data."""
    db = tmp_path / "chargelens.duckdb"
    load_demo(db)
    server = Server(db)
    yield server
    server.stop()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def choose(page, combobox, option: str, tries: int = 3) -> None:
    """Pick `option` in a Streamlit selectbox; a rerun that lands while the list is open closes it, so retry."""
    for attempt in range(tries):
        combobox.click()
        item = page.get_by_role("option", name=option, exact=True)
        try:
            item.wait_for(state="visible", timeout=10_000)
        except Exception:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            continue
        item.click()
        return


def settled(page, timeout_ms: int = 60_000) -> None:
    """Wait until no script run is in flight: a download button clicked while a rerun is still on its way holds the
    previous run's file id, which the server has already revoked (Streamlit answers with an error under the button)."""
    expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(
        1, timeout=timeout_ms
    )


def download(page, button, server=None, timeout_s: float = 60.0):
    """Click a download button on a settled page and return the Download. When none comes, fail with what the
    button showed and the end of the server's log, so a failure says why."""
    settled(page)
    downloads = []

    def arrived(d) -> None:
        downloads.append(d)

    page.on("download", arrived)
    try:
        button.click()
        error = page.locator('[data-testid="stDownloadButtonError"]')
        deadline = time.monotonic() + timeout_s
        while not downloads:
            shown = error.all_inner_texts()
            if shown or time.monotonic() > deadline:
                log = server_stacks(server) if server else ""
                what = f"the button showed {shown}" if shown else f"no download within {timeout_s:.0f} s"
                pytest.fail(f"{what}; server log:\n{log}")
            page.wait_for_timeout(100)
    finally:
        page.remove_listener("download", arrived)
    return downloads[0]


def server_stacks(server) -> str:
    """The end of the server's log after asking it for every thread's stack (server.py registers SIGUSR1)."""
    os.kill(server.proc.pid, signal.SIGUSR1)
    time.sleep(1.0)
    return server.db.with_suffix(".log").read_text()[-12000:]
