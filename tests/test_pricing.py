"""Costs through the store and the CLI: every demo session priced, bands adding up, tariffs refused clearly."""

from __future__ import annotations

import json

import polars as pl
import pytest

from core.cli import main
from core.store import Store
from tests.conftest import FIXTURES

TARIFFS = FIXTURES / "tariffs"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("pricing") / "p.duckdb"
    assert main(["--db", str(db), "demo"]) == 0
    Store.close_all()
    return db


def run(db, *args, capsys) -> tuple[int, str, str]:
    code = main(["--db", str(db), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_demo_session_is_priced_and_bands_add_up(demo_db):
    store = Store.open(demo_db)
    s = store.frame("SELECT * FROM sessions")
    assert s.height > 700
    assert s.get_column("cost_total").null_count() == 0 and set(s.get_column("currency")) == {"EUR"}
    bands = s.select(pl.sum_horizontal("energy_t1_kwh", "energy_t2_kwh", "energy_t3_kwh", "energy_t4_kwh") -
                     pl.col("energy_kwh")).to_series().abs()  # fmt: skip
    assert bands.max() <= 1e-9
    # Two bands of the demo tariff: 0.32 (weekdays 07-22) and 0.21, plus 21 % VAT, no fees.
    expected = (s["energy_t1_kwh"] * 0.32 + s["energy_t2_kwh"] * 0.21) * 1.21
    assert (s["cost_total"] - expected).abs().max() < 1e-9
    assert s.filter(pl.col("energy_t3_kwh") != 0).height == 0
    Store.close_all()


def test_tariff_gap_is_refused_with_exit_2(demo_db, capsys):
    code, _, err = run(demo_db, "tariffs", "add", str(TARIFFS / "gap.json"), capsys=capsys)
    assert code == 2 and "Sat 00:00" in err and len(err.strip().splitlines()) == 1
    Store.close_all()


def test_location_tariff_wins_over_default_and_whatif(demo_db, capsys, tmp_path):
    assert run(demo_db, "tariffs", "add", str(TARIFFS / "home-two-band.json"), capsys=capsys)[0] == 0
    # Same validity on the same assignment as the demo tariff would overlap: refused.
    code, _, err = run(demo_db, "tariffs", "assign", "home-two-band", "--default", capsys=capsys)
    assert code == 2 and "overlap" in err.lower()
    assert run(demo_db, "tariffs", "assign", "home-two-band", "--location", "Home", capsys=capsys)[0] == 0
    store = Store.open(demo_db)
    home = store.frame(
        "SELECT s.* FROM sessions s JOIN session_locations m USING (session_id) JOIN locations l "
        "USING (location_id) WHERE l.label = 'Home'"
    )
    expected = (home["energy_t1_kwh"] * 0.40 + home["energy_t2_kwh"] * 0.20 + 0.50) * 1.21
    assert home.height > 100 and (home["cost_total"] - expected).abs().max() < 1e-9
    Store.close_all()
    code, out, _ = run(demo_db, "costs", "whatif", "--tariff", "home-two-band", "--entity", "cp-02", "--json",
                       capsys=capsys)  # fmt: skip
    rows = json.loads(out)["data"]
    assert code == 0 and {r["entity_id"] for r in rows} == {"cp-02"}
    assert all(r["difference"] == pytest.approx(r["whatif"] - r["actual"], abs=0.011) for r in rows)
    prices = tmp_path / "prices.csv"
    prices.write_text("ts,price_per_kwh\n2025-03-03T00:00:00Z,0.05\n2025-03-03T01:00:00Z,0.06\n")
    code, out, _ = run(demo_db, "prices", "import", str(prices), "--tariff", "home-two-band", capsys=capsys)
    assert code == 0 and out.strip() == "prices.csv: 2 prices stored for tariff home-two-band"
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,price_per_kwh\n2025-03-03 00:00:00,cheap\n")
    code, _, err = run(demo_db, "prices", "import", str(bad), "--tariff", "home-two-band", capsys=capsys)
    assert code == 2 and "no time zone" in err
    Store.close_all()


# --- the cheapest hours, and tariffs with dynamic prices only -----------------------------------------------------

# Every day 0.40 from 07:00 to 23:00 Brussels time and 0.20 at night; fees and VAT stay out of the shift comparison.
NIGHT = {
    "name": "night",
    "currency": "EUR",
    "timezone": "Europe/Brussels",
    "bands": [{"band": "t1", "price_per_kwh": 0.40, "hours": [7, 23]}, {"band": "t2", "price_per_kwh": 0.20}],
    "fee_per_session": 0.50,
    "vat_pct": 21,
}
# Wed 2025-02-05: plugged in 18:00-07:00 local, 11 kWh at 11 kW from 18:00 (flexible); Thu: the same charge, plugged
# in only while charging (not flexible).
EVENINGS = (
    "entity_id,start,end,energy_kwh,plug_in,plug_out\n"
    "ev-1,2025-02-05T17:00:00Z,2025-02-05T18:00:00Z,11,2025-02-05T17:00:00Z,2025-02-06T06:00:00Z\n"
    "ev-1,2025-02-06T17:00:00Z,2025-02-06T18:00:00Z,11,2025-02-06T17:00:00Z,2025-02-06T18:00:00Z\n"
)


@pytest.fixture
def evenings_db(tmp_path, capsys):
    db = tmp_path / "evenings.duckdb"
    (tmp_path / "evenings.csv").write_text(EVENINGS)
    (tmp_path / "night.json").write_text(json.dumps(NIGHT))
    assert run(db, "ingest", str(tmp_path / "evenings.csv"), capsys=capsys)[0] == 0
    assert run(db, "settings", "set", "display_timezone", "Europe/Brussels", capsys=capsys)[0] == 0
    yield db
    Store.close_all()


def test_costs_shift_moves_the_flexible_evening_into_the_night(evenings_db, tmp_path, capsys):
    assert run(evenings_db, "tariffs", "add", str(tmp_path / "night.json"), capsys=capsys)[0] == 0
    assert run(evenings_db, "tariffs", "assign", "night", "--default", capsys=capsys)[0] == 0
    code, out, _ = run(evenings_db, "costs", "shift", "--json", capsys=capsys)
    assert code == 0
    # 4.40 + 4.40 now; the Wednesday one moves to 23:00-00:00 local at 0.20: 2.20 + 4.40.
    assert json.loads(out)["data"] == [
        {"period_start": "2025-02-01", "entity_id": "ev-1", "sessions": 2, "flexible": 1, "energy_kwh": 22.0,
         "cost_energy": 8.8, "cost_energy_shifted": 6.6, "saving": 2.2, "currency": "EUR"},
    ]  # fmt: skip
    code, out, _ = run(evenings_db, "costs", "shift", "--profile", "--json", capsys=capsys)
    busy = [r for r in json.loads(out)["data"] if r["energy_now_kwh"] or r["energy_shifted_kwh"]]
    assert busy == [
        {"hour": 18, "energy_now_kwh": 22.0, "energy_shifted_kwh": 11.0, "price_per_kwh": 0.4},
        {"hour": 23, "energy_now_kwh": 0.0, "energy_shifted_kwh": 11.0, "price_per_kwh": 0.2},
    ]
    code, out, _ = run(evenings_db, "costs", "shift", "--period", "day", capsys=capsys)
    assert code == 0 and out.splitlines()[0].split() == [
        "period_start", "entity_id", "sessions", "flexible", "energy_kwh", "cost_energy", "cost_energy_shifted",
        "saving", "currency",
    ]  # fmt: skip
    assert out.splitlines()[1].split() == ["2025-02-05", "ev-1", "1", "1", "11.0", "4.4", "2.2", "2.2", "EUR"]
    assert "energy cost only" in out
    # The existing what-if syntax still works next to it.
    code, out, _ = run(evenings_db, "costs", "whatif", "--tariff", "night", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["data"][0]["difference"] == 0.0


def test_costs_shift_under_a_whatif_tariff_and_without_any(evenings_db, tmp_path, capsys):
    code, out, _ = run(evenings_db, "costs", "shift", "--json", capsys=capsys)
    # No tariff assigned: nothing is priced, so nothing is compared (unknown, not 0).
    assert code == 0 and [(r["flexible"], r["saving"], r["currency"]) for r in json.loads(out)["data"]] == [
        (0, None, None)
    ]
    flat = {**NIGHT, "name": "flat", "bands": [{"band": "t1", "price_per_kwh": 0.30}]}
    (tmp_path / "flat.json").write_text(json.dumps(flat))
    assert run(evenings_db, "tariffs", "add", str(tmp_path / "flat.json"), capsys=capsys)[0] == 0
    (tmp_path / "night.json").write_text(json.dumps(NIGHT))
    assert run(evenings_db, "tariffs", "add", str(tmp_path / "night.json"), capsys=capsys)[0] == 0
    code, out, _ = run(evenings_db, "costs", "shift", "--tariff", "night", "--json", capsys=capsys)
    assert [(r["flexible"], r["saving"]) for r in json.loads(out)["data"]] == [(1, 2.2)]
    code, out, _ = run(evenings_db, "costs", "shift", "--tariff", "flat", "--json", capsys=capsys)
    assert [(r["cost_energy"], r["saving"]) for r in json.loads(out)["data"]] == [(6.6, 0.0)]
    code, _, err = run(evenings_db, "costs", "shift", "--tariff", "gone", capsys=capsys)
    assert code == 2 and "no tariff 'gone'" in err
    code, _, err = run(evenings_db, "costs", "shift", "--start", "2030-01-01", capsys=capsys)
    assert code == 2 and "No sessions match" in err


def test_shift_on_the_demo_fleet_prices_now_as_stored_and_never_costs_more(demo_db):
    from core.pricing import shift
    from core.queries import SessionFilter

    store = Store.open(demo_db)
    report = shift(store, SessionFilter(only_enabled=False))
    stored = store.frame("SELECT session_id, cost_energy, plug_in_utc, plug_out_utc, start_utc, end_utc FROM sessions")
    both = report.sessions.join(stored, on="session_id", suffix="_stored")
    assert both.height == stored.height
    assert (both["cost_energy"] - both["cost_energy_stored"]).abs().max() < 1e-9
    assert both["saving"].min() >= 0 and report.saving > 0 and report.currency == "EUR"
    longer = (pl.col("plug_out_utc") - pl.col("plug_in_utc")) > (pl.col("end_utc") - pl.col("start_utc"))
    assert both.filter("flexible").height == both.filter(longer.fill_null(False)).height > 100
    profile = report.profile.select(pl.col("energy_now_kwh", "energy_shifted_kwh").sum()).row(0)
    assert profile[0] == pytest.approx(profile[1]) and profile[0] == pytest.approx(both["energy_kwh"].sum())
    Store.close_all()


SPOT = {"name": "spot", "currency": "EUR", "timezone": "Europe/Brussels", "bands": [], "vat_pct": 0}


def test_a_tariff_with_dynamic_prices_only_is_added_with_its_prices_in_one_go(evenings_db, tmp_path, capsys):
    (tmp_path / "spot.json").write_text(json.dumps(SPOT))
    code, _, err = run(evenings_db, "tariffs", "add", str(tmp_path / "spot.json"), capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "needs a dynamic price series" in err and "--prices PRICES.csv" in err and "add at least one band" in err
    # A series without a known step is refused, and the tariff is not stored either: one transaction.
    (tmp_path / "one.csv").write_text("ts,price_per_kwh\n2025-02-05T17:00:00Z,0.10\n")
    code, _, err = run(evenings_db, "tariffs", "add", str(tmp_path / "spot.json"), "--prices",
                       str(tmp_path / "one.csv"), capsys=capsys)  # fmt: skip
    assert code == 2 and "at least two prices" in err
    assert Store.open(evenings_db).scalar("SELECT count(*) FROM tariffs") == 0
    Store.close_all()

    # Hourly: 0.10 from 17:00 UTC, 0.30 from 19:00 Brussels time (18:00 UTC) until 19:00 UTC.
    (tmp_path / "prices.csv").write_text(
        "ts,price_per_kwh\n2025-02-05T17:00:00Z,0.10\n2025-02-05T19:00:00+01:00,0.30\n"
    )
    code, out, _ = run(evenings_db, "tariffs", "add", str(tmp_path / "spot.json"), "--prices",
                       str(tmp_path / "prices.csv"), capsys=capsys)  # fmt: skip
    assert code == 0 and out.strip() == "tariff spot saved (EUR, 0 bands, 2 prices)"
    assert run(evenings_db, "tariffs", "assign", "spot", "--entity", "ev-1", capsys=capsys)[0] == 0
    store = Store.open(evenings_db)
    # Wednesday 17-18 UTC: 11 kWh at 0.10; Thursday has no price at all: unknown, never 0.
    costs = store.frame("SELECT cost_energy, currency FROM sessions ORDER BY start_utc").rows()
    assert costs == [(pytest.approx(11 * 0.10), "EUR"), (None, None)]
    # Shifting the flexible Wednesday session: nothing is cheaper than 0.10 in its window, so it saves 0.
    code, out, _ = run(evenings_db, "costs", "shift", "--period", "day", "--json", capsys=capsys)
    assert [(r["cost_energy"], r["saving"]) for r in json.loads(out)["data"]] == [(1.1, 0.0), (None, None)]
    Store.close_all()
