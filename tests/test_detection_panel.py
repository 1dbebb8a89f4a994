"""Trying detection parameters before saving them: the difference per entity, nothing written until saved."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from core.detect import DetectParams
from core.pipeline import DIFF_SCHEMA, detect, detect_with, detection_diff, load_demo, preview_detection
from core.store import Store
from tests.conftest import ROOT


def frame(rows):
    return pl.DataFrame(rows, schema=["entity_id", "session_id", "energy_kwh"], orient="row")


def test_the_difference_counts_kept_new_and_gone_sessions_and_energy():
    now = frame([("a", "s1", 10.0), ("a", "s2", 5.0), ("b", "s3", 7.0)])
    then = frame([("a", "s1", 10.0), ("a", "s4", 6.5), ("c", "s5", 1.0)])
    expected = pl.DataFrame(
        {
            "entity_id": ["a", "b", "c"],
            "sessions_now": [2, 1, 0],
            "sessions_then": [2, 0, 1],
            "kept": [1, 0, 0],
            "new": [1, 0, 1],
            "gone": [1, 1, 0],
            "energy_now_kwh": [15.0, 7.0, 0.0],
            "energy_then_kwh": [16.5, 0.0, 1.0],
            "energy_change_kwh": [1.5, -7.0, 1.0],
        },
        schema=DIFF_SCHEMA,
    )
    assert_frame_equal(detection_diff(now, then), expected)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("panel") / "demo.duckdb"
    load_demo(Store.open(path), seed=1)
    Store.close_all()
    return path


@pytest.fixture
def copy(demo, tmp_path):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(demo.read_bytes())
    yield path
    Store.close_all()


def test_a_preview_writes_nothing_and_saving_gives_what_it_showed(copy):
    store = Store.open(copy)
    before = store.frame("SELECT session_id FROM sessions ORDER BY 1")
    same = preview_detection(store, DetectParams.from_settings(store.settings()))
    assert same.filter((pl.col("new") > 0) | (pl.col("gone") > 0)).height == 0
    assert same.get_column("energy_change_kwh").abs().max() < 1e-9

    longer_pauses = DetectParams.from_settings(store.settings(), max_pause_min=600)
    diff = preview_detection(store, longer_pauses, ["ev-01", "cp-02"])
    assert diff.get_column("entity_id").to_list() == ["cp-02", "ev-01"]
    assert diff.get_column("sessions_then").sum() < diff.get_column("sessions_now").sum()  # pauses merge sessions
    assert_frame_equal(store.frame("SELECT session_id FROM sessions ORDER BY 1"), before)  # nothing written

    detect(store, longer_pauses, ["ev-01", "cp-02"])
    stored = store.frame(
        "SELECT entity_id, count(*) AS n, sum(energy_kwh) AS e FROM sessions WHERE source = 'detected' "
        "AND entity_id IN ('ev-01', 'cp-02') GROUP BY 1 ORDER BY 1"
    )
    assert stored.get_column("n").to_list() == diff.get_column("sessions_then").to_list()
    assert stored.get_column("e").to_list() == pytest.approx(diff.get_column("energy_then_kwh").to_list(), abs=1e-9)


def test_the_sessions_page_previews_then_saves(copy, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(copy))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/sessions.py").run()
    at.multiselect(key="sessions-entities").set_value(["ev-01"]).run()
    at.number_input(key="detect-max_pause_min").set_value(600.0).run()
    at.button(key="detect-preview").click().run()
    assert not at.exception and not at.error
    store = Store.open(copy)
    diff = preview_detection(store, DetectParams.from_settings(store.settings(), max_pause_min=600), ["ev-01"])
    row = diff.row(0, named=True)
    said = next(m.value for m in at.markdown if m.value.startswith("Sessions "))
    assert said.startswith(f"Sessions {row['sessions_now']:,} → {row['sessions_then']:,} ({row['new']:,} new")
    assert store.settings().max_pause_min == 15  # not saved yet
    at.button(key="detect-save").click().run()
    assert not at.exception and not at.error
    assert Store.open(copy).settings().max_pause_min == 600
    assert any(s.value.startswith("Saved; ") for s in at.success)


def test_the_cli_takes_whole_minutes_typed_either_way_and_refuses_fractions_in_one_line(copy, cli):
    saved = cli("sessions", "detect", "--max-pause-min", "600.0", "--save", db=copy)
    assert saved.code == 0 and saved.out.endswith(" sessions detected\n")
    assert Store.open(copy).settings().max_pause_min == 600
    Store.close_all()
    refused = cli("sessions", "detect", "--max-pause-min", "2.5", db=copy)
    assert refused.code == 2 and refused.err == "error: '2.5' is not a whole number.\n"


def test_saved_settings_land_with_the_sessions_they_made_or_not_at_all(copy, monkeypatch):
    store = Store.open(copy)
    before = store.frame("SELECT session_id, energy_kwh FROM sessions ORDER BY 1")

    def fail(tx, *args):
        tx.execute("DELETE FROM sessions")  # written inside the transaction, then the run fails
        raise RuntimeError("killed")

    monkeypatch.setattr("core.pipeline._recompute", fail)
    with pytest.raises(RuntimeError):
        detect_with(store, {"max_pause_min": 600}, save=True)
    assert store.settings().max_pause_min == 15
    assert_frame_equal(store.frame("SELECT session_id, energy_kwh FROM sessions ORDER BY 1"), before)
    monkeypatch.undo()
    detect_with(store, {"max_pause_min": 600}, save=True)
    assert store.settings().max_pause_min == 600
    assert store.scalar("SELECT count(*) FROM sessions") < before.height  # longer pauses merged sessions
