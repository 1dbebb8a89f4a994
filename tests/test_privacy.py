"""With exact_locations off, no default output carries a vehicle's position (exports of every format, CLI)."""

from __future__ import annotations

import polars as pl
import pytest

from core.exports import FORMATS, export_sessions
from core.pipeline import load_demo, suggestions
from core.queries import SessionFilter, session_positions
from core.store import Store
from tests.privacy import demo_secrets, leaks


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("privacy") / "p.duckdb")
    load_demo(store, seed=1)
    yield store, demo_secrets(store)
    store.close()


def test_the_probe_finds_a_planted_position(fleet):
    store, forbidden = fleet
    assert len(forbidden) > 10_000
    planted = next(iter(sorted(forbidden)))
    assert leaks(f"x,{planted}1,y".encode(), forbidden) == [planted]
    exact = export_sessions(store, SessionFilter(), "csv", round_to=3)
    assert leaks(exact, forbidden) == []  # 3 decimals are allowed
    store.set_setting("exact_locations", True)
    try:
        assert leaks(export_sessions(store, SessionFilter(), "csv", exact=True), forbidden)
    finally:
        store.set_setting("exact_locations", False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_exports_carry_no_position(fleet, fmt):
    store, forbidden = fleet
    data = export_sessions(store, SessionFilter(), fmt, wide=True)
    assert len(data) > 1000
    assert leaks(data, forbidden) == []


def test_suggestions_and_map_positions_are_rounded(fleet):
    store, forbidden = fleet
    shown = suggestions(store).with_columns(pl.col("latitude", "longitude").round(3))
    assert leaks(shown.write_csv().encode(), forbidden) == []
    assert leaks(session_positions(store, 3).write_csv().encode(), forbidden) == []
