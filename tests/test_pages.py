"""Every page renders on an empty and on a demo database without an exception (AppTest)."""

from __future__ import annotations

import json

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


# --- Costs: the cheapest hours and a tariff with dynamic prices only ------------------------------------------------

NIGHT = {
    "name": "night", "currency": "EUR", "timezone": "Europe/Brussels", "vat_pct": 21, "fee_per_session": 0.5,
    "bands": [{"band": "t1", "price_per_kwh": 0.40, "hours": [7, 23]}, {"band": "t2", "price_per_kwh": 0.20}],
}  # fmt: skip
# Wed 2025-02-05, plugged in 18:00-07:00 Brussels time, 11 kWh at 11 kW from 18:00: 4.40 now, 2.20 from 23:00.
EVENING = (
    "entity_id,start,end,energy_kwh,plug_in,plug_out\n"
    "ev-1,2025-02-05T17:00:00Z,2025-02-05T18:00:00Z,11,2025-02-05T17:00:00Z,2025-02-06T06:00:00Z\n"
)


def costs_page() -> AppTest:
    at = render("costs")
    assert not at.exception, at.exception
    return at


def test_costs_page_shows_the_cheapest_hours(empty_db, tmp_path):
    from core.cli import main

    (tmp_path / "evening.csv").write_text(EVENING)
    (tmp_path / "night.json").write_text(json.dumps(NIGHT))
    for args in (
        ["ingest", str(tmp_path / "evening.csv")],
        ["tariffs", "add", str(tmp_path / "night.json")],
        ["tariffs", "assign", "night", "--default"],
        ["settings", "set", "display_timezone", "UTC"],
    ):
        assert main(["--db", str(empty_db), *args]) == 0
    Store.close_all()
    at = costs_page()
    assert not [m for m in at.metric if m.label.startswith("Saving if")]  # built on request only
    at.button(key="whatif-run").click().run()
    saving = next(m for m in at.metric if m.label.startswith("Saving if flexible sessions"))
    assert saving.value == "2.20 EUR"
    note = next(c.value for c in at.caption if c.value.startswith("Energy cost only, VAT excluded."))
    assert "per-minute and idle fees" in note and "session fee" in note
    totals = at.dataframe[-1].value
    assert totals[["flexible", "cost_energy", "cost_energy_shifted", "saving"]].values.tolist() == [[1, 4.4, 2.2, 2.2]]
    assert "chart-cheapest-hours" in [c.key for c in at.get("plotly_chart")]
    assert any(c.value.startswith("Energy per local hour (UTC)") for c in at.caption)
    at.radio(key="shift-under").set_value("the what-if tariff").run()
    assert not at.exception and not at.error
    assert any(c.value.endswith("click Compare again.") for c in at.caption)
    at.button(key="whatif-run").click().run()
    assert next(m for m in at.metric if m.label.startswith("Saving if")).value == "2.20 EUR"


def test_costs_page_creates_a_tariff_with_dynamic_prices_only(empty_db):
    at = costs_page()
    at.radio(key="tariff-kind").set_value("Dynamic prices only").run()
    assert not at.exception
    # No bands and no price file yet: the refusal says what to do.
    assert "needs a dynamic price series" in at.error[0].value and "price file" in at.error[0].value
    prices = b"ts,price_per_kwh\n2025-02-05T17:00:00Z,0.10\n2025-02-05T17:15:00Z,0.12\n2025-02-05T17:30:00Z,0.09\n"
    at.file_uploader(key="tariff-prices").upload("spot.csv", prices, "text/csv").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    next(t for t in at.text_input if t.label == "Name").set_value("spot").run()
    next(b for b in at.button if b.label == "Save tariff").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Tariff spot saved" in at.success[0].value
    store = Store.open(empty_db)
    assert json.loads(store.scalar("SELECT body FROM tariffs WHERE name = 'spot'"))["bands"] == []
    assert store.frame("SELECT price_per_kwh FROM prices WHERE tariff = 'spot' ORDER BY ts")[
        "price_per_kwh"
    ].to_list() == [0.10, 0.12, 0.09]


def test_entities_page_shows_50_switches_and_the_search_narrows(empty_db, tmp_path):
    from core.importers import ImportOptions
    from core.pipeline import ingest_file

    readings = tmp_path / "fleet.csv"
    rows = [f"ev-{n:03d},2025-02-01T10:00:00Z,1.5" for n in range(60)]
    readings.write_text("entity_id,ts,power_kw\n" + "\n".join(rows) + "\n")
    ingest_file(Store.open(empty_db), readings, ImportOptions())
    at = render("entities")
    assert not at.exception

    def switches() -> list[str]:
        return [t.key for t in at.toggle if (t.key or "").startswith("capture-")]

    assert switches() == [f"capture-ev-{n:03d}" for n in range(50)]
    assert "60 entities; showing the first 50. Narrow the search to see others." in [c.value for c in at.caption]
    next(t for t in at.text_input if t.label == "Find entities").input("ev-05").run()
    assert switches() == [f"capture-ev-05{n}" for n in range(10)]


def test_locations_page_says_when_a_place_is_added_and_deleted(demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(demo_db.read_bytes())
    monkeypatch.setenv("CHARGELENS_DB", str(copy))
    at = render("locations")
    next(t for t in at.text_input if t.label == "Label").set_value("Fast charger")
    next(n for n in at.number_input if n.label == "Latitude").set_value(50.88)
    next(n for n in at.number_input if n.label == "Longitude").set_value(4.263)
    next(n for n in at.number_input if n.label == "Radius (m)").set_value(500.0)
    next(b for b in at.button if b.label == "Add location").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == ["Location Fast charger added; sessions were matched again."]
    store = Store.open(copy)
    matched = "SELECT count(*) FROM session_locations JOIN locations USING (location_id) WHERE label = 'Fast charger'"
    assert store.scalar(matched) >= 200
    edit = next(s for s in at.selectbox if s.label == "Location")
    edit.set_value("Fast charger · all entities")
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == ["Location Fast charger deleted; sessions were matched again."]
    assert (
        store.scalar(matched) == 0 and store.scalar("SELECT count(*) FROM locations WHERE label = 'Fast charger'") == 0
    )
    at.run()
    assert not at.success  # said once
