"""Timeline page (AppTest) on an empty and on the demo database: every option, the whole period, empty filters."""

from __future__ import annotations

import json
from datetime import date, timedelta
from itertools import product

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core.costs import round_money
from core.pipeline import load_demo
from core.queries import sessions
from core.store import Store
from tests.conftest import ROOT
from ui.common import literal

TITLES = [
    "Sessions per entity",
    "Energy per week, by location",
    "Session starts by weekday and hour",
    "Distributions",
    "Plug-in time: charging and idle",
]
TABS = ["Energy per period", "Start hours", "Distributions", "Idle time"]


def timeline_caption(at) -> str:
    """The caption of the sessions timeline (it says which sessions the bars are)."""
    found = [c.value for c in at.caption if "Each bar is one session" in c.value]
    assert len(found) == 1, [c.value for c in at.caption]
    return found[0]


def timeline() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("app_pages/timeline.py").run()
    assert not at.exception, at.exception
    return at


def open_report(at: AppTest) -> AppTest:
    """Open the monthly-report panel (it builds nothing while closed)."""
    at.session_state["report-open"] = True
    at.run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [spec["layout"]["title"]["text"] for spec in charts(at)]


def every_tab(at: AppTest) -> list[str]:
    """The sessions timeline, then the chart of each analysis tab, opened one after the other (only the open tab
    runs); back on the first tab at the end."""
    assert [tab.label for tab in at.tabs] == TABS
    first = titles(at)[:1]
    shown = list(first)
    for label in TABS:
        at.session_state["timeline-tab"] = label
        at.run()
        assert_fine(at)
        assert titles(at)[:1] == first
        shown += titles(at)[1:]
    at.session_state["timeline-tab"] = TABS[0]
    at.run()
    return shown


def assert_fine(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("timeline") / "demo.duckdb"
    load_demo(Store.open(path), seed=1)
    Store.close_all()
    return path


@pytest.fixture(scope="module")
def demo_sessions(demo_db) -> pl.DataFrame:
    """The listed demo sessions, read the plain way: expectations follow the detector instead of freezing it."""
    table = sessions(Store.open(demo_db)).with_columns(
        pl.col("start_utc", "end_utc").dt.convert_time_zone("Europe/Brussels")
    )
    Store.close_all()
    return table


def opening_view(table: pl.DataFrame) -> pl.DataFrame:
    """SPEC 7: the last 30 days of the filtered period, or the 5 000 most recent sessions, whichever is fewer."""
    recent = table.filter(pl.col("start_utc") > pl.col("start_utc").max() - timedelta(days=30))
    return recent.sort("start_utc", descending=True).head(5000)


def span(table: pl.DataFrame) -> str:
    return f"{table['start_utc'].min():%Y-%m-%d} to {table['end_utc'].max():%Y-%m-%d}"


@pytest.fixture
def demo(demo_db, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(demo_db))
    yield demo_db
    Store.close_all()


def test_empty_database_shows_empty_states(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    at = timeline()
    assert_fine(at)
    assert at.info[0].value.startswith("No sessions to draw.")
    assert not charts(at)
    assert "No sessions yet" in " ".join(c.value for c in open_report(at).caption)
    Store.close_all()


def test_demo_opens_on_the_last_30_days_with_every_chart(demo, demo_sessions):
    at = timeline()
    assert_fine(at)
    assert titles(at) == TITLES[:2]  # the timeline and the open tab's chart, nothing of the other tabs
    shown = opening_view(demo_sessions)
    assert 0 < shown.height < demo_sessions.height
    expected = (
        f"the most recent {shown.height} of {demo_sessions.height} filtered sessions, {span(shown)} (Europe/Brussels)"
    )
    assert expected in timeline_caption(at)
    assert len(charts(at)[0]["data"][0]["y"]) == 3 * shown.height  # one segment (start, end, gap) per session
    assert [b.label for b in at.get("download_button")] == ["Download PNG"] * 2  # the report panel is closed
    assert "report-month" not in at.session_state
    labels = [b.label for b in open_report(at).get("download_button")]
    assert labels == ["Download CSV", "Download HTML"] + ["Download PNG"] * 2
    assert at.selectbox(key="report-month").options == ["2025-04", "2025-03", "2025-02"]
    assert every_tab(at) == TITLES


def test_whole_period_is_one_click_away(demo, demo_sessions):
    at = timeline()
    at.toggle(key="whole-period").set_value(True).run()
    assert_fine(at)
    total = demo_sessions.height
    assert f"all {total} of {total} filtered sessions, {span(demo_sessions)}" in timeline_caption(at)
    assert span(demo_sessions).startswith("2025-02-01")
    assert len(charts(at)[0]["data"][0]["y"]) == 3 * total
    at.toggle(key="whole-period").set_value(False).run()
    assert f"{opening_view(demo_sessions).height} of {total}" in timeline_caption(at)


def test_every_period_and_stack(demo):
    at = timeline()
    for period, stack in product(("day", "week", "month"), ("location", "method")):
        at.radio(key="energy-period").set_value(period)
        at.radio(key="energy-stack").set_value(stack).run()
        assert_fine(at)
        assert titles(at)[1] == f"Energy per {period}, by {stack}"
        legend = {trace["name"] for trace in charts(at)[1]["data"]}
        assert legend == ({"Home", "Office", "(no location)"} if stack == "location" else {"meter", "power"})


def test_a_short_period_fits_in_the_opening_view(demo):
    at = timeline()
    at.date_input(key="timeline-period").set_value((date(2025, 2, 1), date(2025, 2, 7))).run()
    assert_fine(at)
    assert "all " in timeline_caption(at) and "2025-02-01 to 2025-02-0" in timeline_caption(at)


@pytest.mark.parametrize(
    "choice",
    [
        {"timeline-entities": ["home-battery"]},  # an entity without sessions
        {"timeline-entities": ["ev-05", "ev-06"]},  # capture off: nothing shown
        {"timeline-location": "Home", "timeline-entity_type": "ChargePoint"},
        {"timeline-method": "power", "timeline-entity_type": "ChargePoint", "timeline-source": "detected"},
    ],
)
def test_a_filter_that_matches_nothing(demo, choice):
    at = timeline()
    for key, value in choice.items():
        (at.multiselect if isinstance(value, list) else at.selectbox)(key=key).set_value(value)
    at.run()
    assert_fine(at)
    assert at.info[0].value.startswith("No sessions to draw.")
    assert not charts(at)
    assert open_report(at).selectbox(key="report-month").options  # the report does not depend on the filter


@pytest.mark.parametrize(
    "choice",
    [
        {"timeline-entities": ["cp-01"]},  # no plug-in times: the idle chart gives way to a sentence
        {"timeline-location": "Office"},
        {"timeline-method": "power", "timeline-entity_type": "EV"},
    ],
)
def test_filters_with_sessions_draw_without_error(demo, choice):
    at = timeline()
    for key, value in choice.items():
        (at.multiselect if isinstance(value, list) else at.selectbox)(key=key).set_value(value)
    at.toggle(key="whole-period").set_value(True)
    at.run()
    assert_fine(at)
    shown = every_tab(at)
    assert shown[:4] == TITLES[:4]
    if choice == {"timeline-entities": ["cp-01"]}:
        assert len(shown) == 4  # no plug-in times: the idle tab says so in a sentence instead of a chart
        at.session_state["timeline-tab"] = "Idle time"
        at.run()
        assert any("idle time cannot be shown" in c.value for c in at.caption)
    else:
        assert shown == TITLES


def test_report_selectors(demo):
    at = open_report(timeline())
    at.selectbox(key="report-month").set_value("2025-03")
    at.selectbox(key="report-entity").set_value("ev-01").run()
    assert_fine(at)
    assert [b.label for b in at.get("download_button")][:2] == ["Download CSV", "Download HTML"]


def test_overview_shows_location_shares_costs_and_quality_notes(demo, demo_sessions):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert_fine(at)
    metrics = {m.label: m.value for m in at.metric}
    energy = demo_sessions.group_by(pl.col("location_label").fill_null("(no location)")).agg(pl.col("energy_kwh").sum())
    total = demo_sessions["energy_kwh"].sum()
    assert {label: metrics[label] for label in energy["location_label"]} == {
        label: f"{kwh / total:.0%}" for label, kwh in energy.iter_rows()
    }
    assert set(energy["location_label"]) == {"Home", "Office", "(no location)"}
    assert metrics["Cost (EUR)"] == f"{round_money(demo_sessions['cost_total'].sum()):,.2f}"
    assert at.warning[0].value == literal("Entities that get no detected sessions from their readings: 3.")
    notes = next(d.value for d in at.dataframe if "note" in d.value.columns)
    assert notes["entity_id"].tolist() == ["ev-05", "ev-06", "home-battery"]
    assert notes["note"].str.startswith("FeatureNotSupported").tolist()[-1]
    captions = " ".join(c.value for c in at.caption)
    assert "No entity has a gap longer than 60 min" in captions and "No rows were rejected" in captions


def test_the_timeline_is_one_svg_path_up_to_5000_sessions_and_webgl_beyond():
    from ui.charts import SVG_MAX_POINTS, sessions_timeline

    def segments(n):
        return pl.DataFrame({"x": ["2025-01-01 00:00:00", "2025-01-01 01:00:00", None] * n,
                             "y": ["ev", "ev", None] * n, "energy_kwh": [1.0, 1.0, None] * n})  # fmt: skip

    assert SVG_MAX_POINTS == 3 * 5000
    assert [t.type for t in sessions_timeline(segments(5000), "UTC").data] == ["scatter"]
    assert [t.type for t in sessions_timeline(segments(5001), "UTC").data] == ["scattergl"]


def test_the_timeline_margin_fits_the_longest_entity_id_up_to_a_cap():
    from ui.charts import LEFT_MARGIN_MAX, sessions_timeline

    def margin(*ids: str) -> int:
        rows = [(x, e, 1.0) for e in ids for x in ("2025-01-01 10:00:00", "2025-01-01 11:00:00", None)]
        segments = pl.DataFrame(rows, schema=["x", "y", "energy_kwh"], orient="row")
        return sessions_timeline(segments, "UTC").layout.margin.l

    assert margin("ev-1", "cp-00001") == 24 + 7 * len("cp-00001")
    assert margin("ev-1", "a" * 36) == 24 + 7 * 36  # a UUID-long id is shown whole
    assert margin("x" * 80) == LEFT_MARGIN_MAX
