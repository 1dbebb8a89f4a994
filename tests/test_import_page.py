"""The Import page under AppTest: upload, summary, rejects, clear errors, and the mapping step."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.conftest import FIXTURES, ROOT
from tests.test_bad_input import CASES as BAD_CASES
from ui.common import literal


@pytest.fixture
def page(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/import_data.py").run()
    yield at
    Store.close_all()


def test_upload_shows_summary_and_rejects(page, db_path):
    data = (FIXTURES / "bad" / "soc_out_of_range.csv").read_bytes()
    page.file_uploader(key="upload").upload("soc.csv", data, "text/csv").run()
    assert not page.exception
    page.button[0].click().run()
    assert not page.exception
    assert page.success[0].value == literal("soc.csv: read 2, stored 1, duplicate 0, conflict 0, rejected 1")
    assert page.dataframe[1].value["reason"].tolist() == ["state of charge must be between 0 and 100 %"]
    assert Store.open(db_path).scalar("SELECT count(*) FROM readings") == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("empty.csv", "is empty"), ("binary.bin", "binary file"), ("latin1.csv", "not UTF-8"),
     ("bomb.csv.gz", "compression bomb"), ("only_bad_rows.csv", "no usable row")],
)  # fmt: skip
def test_bad_files_get_one_clear_error_and_write_nothing(page, db_path, name, message):
    page.file_uploader(key="upload").upload(name, (FIXTURES / "bad" / name).read_bytes(), "text/csv").run()
    assert not page.exception
    previewed = [w.value for w in page.warning] + [c.value for c in page.caption]
    assert any(literal(message) in text or "1 problem found" in text for text in previewed)
    page.button[0].click().run()
    assert not page.exception
    assert literal(message) in page.error[0].value
    assert page.error[0].value.startswith(literal(f"{name}: nothing imported."))
    assert Store.open(db_path).scalar("SELECT count(*) FROM imports") == 0


def test_unknown_columns_get_a_mapping_step(page, db_path):
    data = b"vehicle,time,kw\nvan-1,2025-02-01T10:00:00Z,7.4\nvan-1,2025-02-01T10:01:00Z,7.3\n"
    page.file_uploader(key="upload").upload("odd.csv", data, "text/csv").run()
    assert literal("not recognised") in page.warning[0].value
    page.selectbox(key="map-entity_id").select("vehicle").run()
    page.selectbox(key="map-ts").select("time").run()
    page.selectbox(key="map-power_kw").select("kw").run()
    page.button[0].click().run()
    assert not page.exception
    assert page.success[0].value == literal("odd.csv: read 2, stored 2, duplicate 0, conflict 0, rejected 0")
    assert Store.open(db_path).frame("SELECT entity_id, power_kw FROM readings ORDER BY ts").rows() == [
        ("van-1", 7.4),
        ("van-1", 7.3),
    ]


def test_the_whole_bad_input_corpus_on_the_import_page(page, db_path):
    """All 38 files in one upload: each gets its summary (stored rows, rejected rows) or its one clear error; the
    refused ones write nothing, and the page never shows an exception."""
    uploader = page.file_uploader(key="upload")
    for name in sorted(BAD_CASES):
        uploader.upload(name, (FIXTURES / "bad" / name).read_bytes(), "application/octet-stream")
    page.run()
    assert not page.exception, page.exception
    next(b for b in page.button if b.label == "Import").click().run()
    assert not page.exception, page.exception
    errors = {e.value.split(literal(": nothing imported."))[0]: e.value for e in page.error}
    lines = {s.value.split(literal(": read"))[0]: s.value for s in page.success}
    refused = {n for n, case in BAD_CASES.items() if case[0] == "error"}
    stored_total = 0
    assert set(errors) == {literal(n) for n in refused}
    assert set(lines) == {literal(n) for n in BAD_CASES} - {literal(n) for n in refused}
    for name, case in BAD_CASES.items():
        if case[0] == "error":
            assert literal(case[1]) in errors[literal(name)], errors[literal(name)]
        else:
            # Files of the corpus share entities and times, so a later file may find some already stored: the rows
            # a file alone would have stored are stored, duplicates or conflicts (the stored reading wins).
            _, accepted, rejected, _ = case
            counts = dict(re.findall(r"(\w+) (\d+)", lines[literal(name)].replace("\\", "")))
            kept = int(counts["stored"]) + int(counts["duplicate"]) + int(counts["conflict"])
            assert kept == accepted, lines[literal(name)]
            assert int(counts["rejected"]) == rejected, lines[literal(name)]
            stored_total += int(counts["stored"])
    store = Store.open(db_path)
    held = store.scalar("SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM sessions)")
    assert held == stored_total
    assert store.scalar("SELECT count(*) FROM imports") == len(BAD_CASES) - len(refused)
