"""Import page in real Chromium: upload a CSV, see the summary, download the rejects file."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Server, download, shot

pytestmark = pytest.mark.e2e

CSV = (
    "entity_id,ts,power_kw,soc_pct\n"
    "ev-up,2025-02-01T10:00:00Z,0,50\n"
    "ev-up,2025-02-01T10:05:00Z,7.4,51\n"
    "ev-up,2025-02-01T10:10:00Z,7.4,150\n"
    "ev-up,2025-02-01T10:15:00Z,0,53\n"
)


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path / "import.duckdb")
    yield server
    server.stop()


def test_upload_summary_and_rejects_download(server, page, tmp_path):
    source = tmp_path / "upload.csv"
    source.write_text(CSV)
    page.goto(f"{server.url}/import")
    expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(source))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("upload.csv: read 4, stored 3, duplicate 0, conflict 0, rejected 1")).to_be_visible(
        timeout=30_000
    )
    saved = tmp_path / "rejects.csv"
    download(page, page.get_by_role("button", name="Download rejects of upload.csv"), server).save_as(saved)
    assert saved.read_text() == (
        "file,row,column,value,reason\nupload.csv,4,soc_pct,150,state of charge must be between 0 and 100 %\n"
    )
    shot(page, "import-summary")
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def test_the_whole_bad_input_corpus_uploaded_at_once(server, page):
    """38 bad files in one upload: each one gets its summary or its one clear error, and the page never breaks."""
    from tests.conftest import FIXTURES
    from tests.test_bad_input import CASES

    files = sorted((FIXTURES / "bad").iterdir())
    page.goto(f"{server.url}/import")
    expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible(timeout=30_000)
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Import", exact=True).click()
    errors = page.locator('[data-testid="stAlertContentError"]')
    successes = page.locator('[data-testid="stAlertContentSuccess"]')
    refused = sorted(n for n, case in CASES.items() if case[0] == "error")
    expect(errors).to_have_count(len(refused), timeout=120_000)
    expect(successes).to_have_count(len(CASES) - len(refused))
    shown = sorted(e.split(": nothing imported.")[0] for e in errors.all_inner_texts())
    assert shown == refused
    for name, case in CASES.items():
        if case[0] == "error":
            expect(errors.filter(has_text=f"{name}: nothing imported.")).to_contain_text(case[1])
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert not page.dialogs
    shot(page, "import-bad-corpus")
