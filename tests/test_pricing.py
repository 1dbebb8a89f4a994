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
