"""Battery capacity suggested from sessions with energy and state of charge: exact figures, the demo, the page."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from core import capacity
from core.pipeline import load_demo
from core.store import Store
from tests.conftest import ROOT
from ui.common import literal


def sessions(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["entity_id", "method", "energy_kwh", "soc_start_pct", "soc_end_pct", "flags"],
        orient="row",
    )


def test_median_and_middle_half_of_clean_sessions_only():
    frame = sessions(
        [
            ("a", "power", 30.0, 40.0, 80.0, None),  # 75
            ("a", "meter", 15.0, 50.0, 70.0, ""),  # 75 (a rise of exactly 20 points counts)
            ("a", "counter", 33.0, 20.0, 64.0, None),  # 75
            ("a", "power", 5.0, 50.0, 60.0, None),  # a rise under 20 points: too coarse
            ("a", "power", 10.0, 20.0, 70.0, "gap_bridged"),  # energy not measured throughout
            ("a", "soc", 40.0, 10.0, 90.0, None),  # the SoC method's energy comes from the capacity itself
            ("b", "power", 14.0, 20.0, 40.0, None),
            ("b", "power", 14.0, 20.0, 40.0, None),  # two clean sessions are not enough
            ("c", "power", 14.0, 30.0, 50.0, None),  # 70
            ("c", "power", 15.0, 30.0, 50.0, None),  # 75
            ("c", "power", 16.0, 30.0, 50.0, None),  # 80
            ("c", "power", 18.0, 30.0, 50.0, "meter_reset,x"),  # not clean
            ("c", "power", 18.0, 30.0, 50.0, None),  # 90
        ]
    )
    expected = pl.DataFrame(
        {
            "entity_id": ["a", "c"],
            "sessions": [3, 4],
            "capacity_kwh": [75.0, 77.5],
            "low_kwh": [75.0, 73.75],
            "high_kwh": [75.0, 82.5],
        },
        schema=capacity.SUGGESTION_SCHEMA,
    )
    assert_frame_equal(capacity.estimate_capacity(frame), expected)
    row = expected.row(1, named=True)
    assert capacity.suggestion_text(row, 60.0) == (
        "77.5 kWh from 4 sessions with energy and state of charge (middle half 73.8–82.5 kWh; charging losses "
        "included, so usually 5–15 % above the usable capacity); set now: 60 kWh."
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("capacity") / "demo.duckdb"
    load_demo(Store.open(path), seed=1)
    Store.close_all()
    return path


def test_the_demo_evs_get_their_capacity_plus_charging_losses(demo):
    suggested = capacity.suggestions(Store.open(demo))
    Store.close_all()
    assert suggested.get_column("entity_id").to_list() == ["ev-01", "ev-02", "ev-03", "ev-04"]
    for row in suggested.iter_rows(named=True):
        # the demo's chargers lose 7-12 % between the grid and the battery
        assert row["battery_capacity_kwh"] * 1.05 < row["capacity_kwh"] < row["battery_capacity_kwh"] / 0.85, row
        assert row["low_kwh"] <= row["capacity_kwh"] <= row["high_kwh"] and row["sessions"] >= 5


def test_a_suggestion_is_applied_only_when_asked(demo, tmp_path, monkeypatch):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(demo.read_bytes())
    monkeypatch.setenv("CHARGELENS_DB", str(path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/entities.py").run()
    assert not at.exception
    assert Store.open(path).entity("ev-01")["battery_capacity_kwh"] == 60.0  # shown, not applied
    suggestion = next(m.value for m in at.markdown if m.value.startswith(literal("ev-01: 66.0 kWh from 15 sessions")))
    assert literal("set now: 60 kWh") in suggestion
    at.button(key="use-ev-01").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [literal("ev-01: battery capacity 66 kWh saved.")]
    assert Store.open(path).entity("ev-01")["battery_capacity_kwh"] == 66.0
    at.selectbox(key="capacity-entity").set_value("ev-02").run()
    at.number_input(key="capacity-kwh").set_value(80.5).run()
    next(b for b in at.button if b.label == "Save capacity").click().run()
    assert Store.open(path).entity("ev-02")["battery_capacity_kwh"] == 80.5
    Store.close_all()
