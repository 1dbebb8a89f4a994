"""Every page renders on an empty and on a demo database without an exception (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.pipeline import load_demo
from core.store import Store
from tests.conftest import ROOT

PAGES = ["overview", "import_data", "sessions", "timeline", "costs", "locations", "entities"]


def render(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    return at


@pytest.fixture
def empty_db(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    yield db_path
    Store.close_all()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    load_demo(Store.open(path), seed=1)
    Store.close_all()
    return path


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_database(empty_db, page):
    at = render(page)
    assert not at.exception, at.exception
    assert at.title[0].value.lower().startswith(page.split("_")[0][:4])


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo_database(demo_db, page, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(demo_db))
    at = render(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    Store.close_all()


def test_overview_empty_offers_demo_and_loads_it(empty_db):
    at = render("overview")
    assert "empty" in at.info[0].value
    at.button[0].click().run()
    assert not at.exception
    assert [m.label for m in at.metric][:4] == ["Entities", "Readings", "Sessions", "Energy (kWh)"]
    assert at.metric[0].value == "11"
