"""The shared filter bar on every filtered page (AppTest): each widget narrows the sessions exactly as the same
SessionFilter does in core.queries, keeps the URL in step, and a filter that matches nothing shows an empty state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from core.importers import ImportOptions
from core.pipeline import ingest_file, load_demo
from core.queries import SessionFilter, filter_choices, totals
from core.store import Store
from tests.conftest import ROOT
from ui.filters import summary_line

FILTERED = {
    "overview": "app.py",
    "sessions": "app_pages/sessions.py",
    "timeline": "app_pages/timeline.py",
    "costs": "app_pages/costs.py",
}
PERIOD = (date(2025, 3, 1), date(2025, 3, 14))
SINGLE = ("entity_type", "location", "method", "source")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("filters") / "demo.duckdb"
    store = Store.open(path)
    load_demo(store, seed=1)
    reported = path.with_name("reported.csv")  # a session a charge point reported, so sources and methods mix
    reported.write_text("entity_id,start,end,energy_kwh\nev-01,2025-02-20T03:00:00Z,2025-02-20T04:00:00Z,5.5\n")
    ingest_file(store, reported, ImportOptions())
    choices = filter_choices(store)
    Store.close_all()
    return path, choices


@pytest.fixture
def db(demo, monkeypatch):
    path, choices = demo
    monkeypatch.setenv("CHARGELENS_DB", str(path))
    yield path, choices
    Store.close_all()


def open_page(key: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    if key != "overview":
        at.switch_page(FILTERED[key]).run()
    assert not at.exception, at.exception
    return at


def summary(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.endswith(" kWh") and " session" in c.value]


def expected(path, flt: SessionFilter) -> str:
    figures = totals(Store.open(path), flt)
    return summary_line(figures["sessions"], figures["energy_kwh"])


def widget_cases(choices) -> list[tuple[str, object, SessionFilter, dict]]:
    """(widget, value to set, the filter it means, the URL parameters it gives)."""
    start = datetime.combine(PERIOD[0], datetime.min.time(), UTC)
    end = datetime.combine(PERIOD[1], datetime.min.time(), UTC) + timedelta(days=1)
    cases = [
        ("entities", ["ev-01", "cp-02"], SessionFilter(entity_ids=("ev-01", "cp-02")), {"entity": ["ev-01", "cp-02"]}),
        ("period", PERIOD, SessionFilter(start=start, end=end), {"start": "2025-03-01", "end": "2025-03-14"}),
    ]
    for name in SINGLE:
        value = choices[name][-1]
        cases.append((name, value, SessionFilter(**{name: value}), {name: value}))
    return cases


@pytest.mark.parametrize("key", list(FILTERED))
def test_every_filter_widget_narrows_like_the_query(db, key):
    path, choices = db
    whole = expected(path, SessionFilter())
    for widget, value, flt, query in widget_cases(choices):
        at = open_page(key)
        assert summary(at) == [whole]
        element = at.multiselect if widget == "entities" else at.date_input if widget == "period" else at.selectbox
        element(key=f"{key}-{widget}").set_value(value).run()
        assert not at.exception, (widget, at.exception)
        shown = summary(at)
        assert shown == [expected(path, flt)], (widget, value, shown)
        assert shown != [whole], f"{widget}={value} should narrow the demo's sessions"
        assert {k: at.query_params[k] for k in query} == query, (widget, dict(at.query_params))


@pytest.mark.parametrize("key", list(FILTERED))
def test_a_filter_that_matches_nothing_gives_an_empty_state(db, key):
    at = open_page(key)
    at.multiselect(key=f"{key}-entities").set_value(["home-battery"]).run()  # a battery has no sessions
    at.selectbox(key=f"{key}-method").set_value("meter").run()
    assert not at.exception, at.exception
    assert summary(at) in ([], [summary_line(0, 0)])
    assert any("No sessions" in i.value for i in at.info), [i.value for i in at.info]


@pytest.mark.parametrize("key", list(FILTERED))
def test_a_shared_url_opens_the_same_view(db, key):
    path, choices = db
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(
        {"entity": ["ev-01", "cp-02"], "start": "2025-03-01", "end": "2025-03-14", "source": "detected"}
    )
    at.run()
    if key != "overview":
        at.switch_page(FILTERED[key]).run()
    start = datetime(2025, 3, 1, tzinfo=UTC)
    flt = SessionFilter(start=start, end=start + timedelta(days=14), entity_ids=("ev-01", "cp-02"), source="detected")
    assert summary(at) == [expected(path, flt)]
    assert at.multiselect(key=f"{key}-entities").value == ["ev-01", "cp-02"]
    assert at.selectbox(key=f"{key}-source").value == "detected"


def test_the_sessions_table_holds_the_latest_filtered_sessions_in_start_order(db):
    from core.queries import latest_sessions, sessions

    store = Store.open(db[0])
    flt = SessionFilter(entity_type="EV")
    every = sessions(store, flt).sort("start_utc", "entity_id", "session_id")
    latest = latest_sessions(store, flt, 7)
    assert latest.get_column("session_id").to_list() == every.tail(7).get_column("session_id").to_list()
    assert latest_sessions(store, flt, 10**6).equals(every)
