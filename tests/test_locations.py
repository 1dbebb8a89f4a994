"""Location matching and suggestions: exact distances, scopes, edges of the globe, suggestions on the demo."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from core import demo
from core.detect import DetectParams
from core.errors import InputError
from core.locations import EARTH_RADIUS_M, haversine_m, match_sessions, suggest_places, validate_location
from core.pipeline import add_location, delete_location, detect, load_demo, suggestions, update_location
from core.store import Store

METRE_LAT = 180 / (math.pi * EARTH_RADIUS_M)  # degrees of latitude per metre


def sessions(*rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["session_id", "entity_id", "latitude", "longitude"], orient="row")


def places(*rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["location_id", "entity_id", "latitude", "longitude", "radius_m"], orient="row")


def test_edge_of_radius_inside_and_just_outside():
    home = places(("home", None, 50.0, 4.0, 100.0))
    on_edge = sessions(("edge", "ev", 50.0 + 99.999 * METRE_LAT, 4.0), ("out", "ev", 50.0 + 100.01 * METRE_LAT, 4.0),
                       ("centre", "ev", 50.0, 4.0), ("half", "ev", 50.0 - 50 * METRE_LAT, 4.0))  # fmt: skip
    result = match_sessions(on_edge, home)
    assert result.get_column("session_id").to_list() == ["centre", "edge", "half"]
    accuracy = dict(result.select("session_id", "accuracy").rows())
    assert accuracy["centre"] == 1.0
    assert accuracy["half"] == pytest.approx(0.5, abs=1e-9)
    assert accuracy["edge"] == pytest.approx(1e-5, abs=1e-7)


def test_overlapping_locations_both_listed_best_first_and_scopes():
    spots = places(("a", None, 50.0, 4.0, 200.0), ("b", None, 50.0 + 100 * METRE_LAT, 4.0, 200.0),
                   ("mine", "ev-1", 50.0, 4.0, 200.0), ("theirs", "ev-2", 50.0, 4.0, 200.0))  # fmt: skip
    result = match_sessions(sessions(("s", "ev-1", 50.0 + 80 * METRE_LAT, 4.0)), spots)
    assert result.get_column("location_id").to_list() == ["b", "a", "mine"]  # "theirs" is another entity's
    assert result.get_column("accuracy").to_list() == pytest.approx([0.9, 0.6, 0.6], abs=1e-9)


def test_antimeridian_near_pole_and_no_position():
    spots = places(("dateline", None, 10.0, 179.9995, 150.0), ("pole", None, 89.9999, 0.0, 100.0))
    probe = sessions(("east", "ev", 10.0, -179.9995, ), ("polar", "ev", 89.9999, 120.0),
                     ("nowhere", "ev", None, None))  # fmt: skip
    result = match_sessions(probe, spots)
    assert result.select("session_id", "location_id").rows() == [("east", "dateline"), ("polar", "pole")]
    # 0.001 degrees of longitude at 10 N is about 109.5 m across the antimeridian
    assert result.get_column("accuracy")[0] == pytest.approx(1 - 109.5 / 150, abs=0.01)


@pytest.mark.parametrize(
    ("fields", "message"),
    [(("", 50, 4, 150), "label must be 1 to 100"), (("x" * 101, 50, 4, 150), "label"),
     (("Home", 91, 4, 150), "latitude must be"), (("Home", 50, -181, 150), "longitude must be"),
     (("Home", 50, 4, 9), "radius must be"), (("Home", 50, 4, 5001), "radius must be"),
     (("Home", float("nan"), 4, 150), "latitude")],
)  # fmt: skip
def test_validation(fields, message):
    with pytest.raises(InputError, match=message):
        validate_location(*fields)


def test_suggestions_find_every_demo_place_with_three_sessions(tmp_path):
    fleet = demo.generate(1)
    store = Store.open(tmp_path / "s.duckdb")
    load_demo(store, seed=1)
    for location_id in store.frame("SELECT location_id FROM locations").get_column("location_id"):
        delete_location(store, location_id)
    proposals = suggestions(store)
    truth_places = {loc["entity_id"] or "Office": (loc["latitude"], loc["longitude"]) for loc in fleet.locations}
    truth_places["highway"] = demo.HIGHWAY
    for row in fleet.entities.filter(pl.col("entity_type") == "ChargePoint").iter_rows(named=True):
        truth_places[row["entity_id"]] = (row["latitude"], row["longitude"])
    centres = proposals.select("latitude", "longitude").rows()

    def distance(a, b) -> float:
        frame = pl.DataFrame([(*a, *b)], schema=["a", "b", "c", "d"], orient="row")
        return frame.select(haversine_m(pl.col("a"), pl.col("b"), pl.col("c"), pl.col("d"))).item()

    expected = ["ev-01", "ev-02", "ev-03", "ev-04", "Office", "highway", "cp-01", "cp-04"]
    for name in expected:
        nearest = min(distance(truth_places[name], c) for c in centres)
        assert nearest <= 50, (name, nearest)
    # No suggestion is away from every true place (none from driving positions).
    for centre in centres:
        assert min(distance(centre, p) for p in truth_places.values()) <= 200
    labels = {row["entity_id"]: row["label"] for row in proposals.iter_rows(named=True) if row["entity_id"]}
    assert labels["ev-01"] == "Home?" and labels["cp-01"] == "Home?"
    store.close()


def test_too_few_positions_give_no_suggestion():
    schema = {
        "session_id": pl.String,
        "entity_id": pl.String,
        "start_utc": pl.Datetime("us", "UTC"),
        "energy_kwh": pl.Float64,
        "latitude": pl.Float64,
        "longitude": pl.Float64,
    }
    assert suggest_places(pl.DataFrame(schema=schema), "UTC").height == 0


def test_cli_suggest_shows_rounded_centres_and_accepts(tmp_path, capsys):
    from core.cli import main

    db = str(tmp_path / "c.duckdb")
    assert main(["--db", db, "demo"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "locations", "suggest", "--json"]) == 0
    data = __import__("json").loads(capsys.readouterr().out)["data"]
    assert [d["number"] for d in data] == list(range(1, len(data) + 1))
    assert all(round(d["latitude"], 3) == d["latitude"] for d in data)
    assert main(["--db", db, "locations", "suggest", "--accept", "1", "--label", "Fast charger"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "locations", "list", "--json"]) == 0
    labels = [d["label"] for d in __import__("json").loads(capsys.readouterr().out)["data"]]
    assert "Fast charger" in labels
    assert main(["--db", db, "locations", "suggest", "--accept", "99"]) == 2
    Store.close_all()


def _positions(rows, start=None) -> pl.DataFrame:
    """Sessions for suggest_places at the given (latitude, longitude) rows, all starting at 03:00 UTC."""
    from datetime import UTC, datetime

    start = start or datetime(2025, 3, 4, 3, tzinfo=UTC)
    return pl.DataFrame(
        {
            "session_id": [f"s{i:06d}" for i in range(len(rows))],
            "entity_id": "ev",
            "start_utc": [start] * len(rows),
            "energy_kwh": 1.0,
            "latitude": [r[0] for r in rows],
            "longitude": [r[1] for r in rows],
        }
    )


def _reference_clusters(rows, eps_m=60.0, min_points=3) -> list[set[int]]:
    """Textbook DBSCAN over every pair of points (quadratic; small inputs only): the clusters as sets of rows."""
    n = len(rows)
    lat = [math.radians(r[0]) for r in rows]
    lon = [math.radians(r[1]) for r in rows]

    def dist(i, j):
        dlat, dlon = lat[j] - lat[i], lon[j] - lon[i]
        a = math.sin(dlat / 2) ** 2 + math.cos(lat[i]) * math.cos(lat[j]) * math.sin(dlon / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))

    near = [[j for j in range(n) if dist(i, j) <= eps_m] for i in range(n)]
    core = [len(near[i]) >= min_points for i in range(n)]
    label = [-1] * n
    for i in range(n):
        if core[i] and label[i] == -1:
            label[i], todo = i, [i]
            while todo:
                k = todo.pop()
                for j in near[k]:
                    if label[j] == -1:
                        label[j] = i
                        if core[j]:
                            todo.append(j)
    clusters: dict[int, set[int]] = {}
    for i, c in enumerate(label):
        if c >= 0:
            clusters.setdefault(c, set()).add(i)
    return sorted(clusters.values(), key=len, reverse=True)


def test_suggestions_match_textbook_dbscan_on_separated_places():
    import random

    rng = random.Random(7)
    rows = []
    for place in range(8):  # places 2 km apart with 3 to 40 sessions scattered over 20 m, then lone positions
        lat, lon = 50.0 + place * 0.018, 4.0
        rows += [(lat + rng.gauss(0, 10) * METRE_LAT, lon + rng.gauss(0, 10) * METRE_LAT / 0.64)
                 for _ in range(rng.randint(3, 40))]  # fmt: skip
    rows += [(51.0 + k * 0.01, 5.0) for k in range(10)]
    proposals = suggest_places(_positions(rows), "UTC")
    expected = _reference_clusters(rows)
    assert proposals.get_column("sessions").to_list() == [len(c) for c in expected]
    assert len(expected) == 8


def test_suggestions_chain_of_core_points_is_one_place_and_pairs_are_noise():
    # Triples 50 m apart along a meridian chain into one cluster; pairs 70 m apart stay noise.
    chain = [(50.0 + k * 50 * METRE_LAT, 4.0) for k in range(6) for _ in range(3)]
    pairs = [(52.0 + k * 100 * METRE_LAT, 4.0) for k in range(5) for _ in range(2)]
    proposals = suggest_places(_positions(chain + pairs), "UTC")
    assert proposals.get_column("sessions").to_list() == [18]
    assert proposals.item(0, "latitude") == pytest.approx(50.0 + 125 * METRE_LAT, abs=1e-9)


def test_suggestions_for_a_busy_depot_with_jittered_positions_and_across_the_antimeridian():
    import random

    rng = random.Random(3)
    depot = [(48.0 + rng.uniform(-25, 25) * METRE_LAT, 2.0 + rng.uniform(-25, 25) * METRE_LAT / 0.67)
             for _ in range(30_000)]  # fmt: skip
    dateline = [(10.0, 179.99990), (10.0, 179.99995), (10.0, -179.99995), (10.0, -179.99990)]
    proposals = suggest_places(_positions(depot + dateline), "UTC")
    assert proposals.get_column("sessions").to_list() == [30_000, 4]
    assert abs(proposals.item(0, "latitude") - 48.0) < 5 * METRE_LAT
    assert abs(proposals.item(1, "longitude")) > 179.9  # not averaged to 0 across the antimeridian


def _matches_on_rows(store: Store) -> dict[str, list]:
    """Each session's copy of its matches (`sessions.matches_json`), as (accuracy, id, label) best first."""
    rows = store.cursor().execute("SELECT session_id, matches_json FROM sessions").fetchall()
    return {s: [(m["accuracy"], m["id"], m["label"]) for m in json.loads(text or "[]")] for s, text in rows}


def _matches_in_table(store: Store) -> dict[str, list]:
    """The same from `session_locations`, the matching's own result, in the API's order."""
    found = {r[0]: [] for r in store.cursor().execute("SELECT session_id FROM sessions").fetchall()}
    for session, *match in (
        store.cursor()
        .execute(
            "SELECT m.session_id, m.accuracy, l.location_id, l.label FROM session_locations m JOIN locations l "
            "USING (location_id) ORDER BY m.session_id, m.accuracy DESC, l.label, l.location_id"
        )
        .fetchall()
    ):
        found[session].append(tuple(match))
    return found


def test_each_session_keeps_a_copy_of_its_matches_through_every_change(tmp_path):
    store = Store.open(tmp_path / "copy.duckdb")
    load_demo(store, seed=1)
    first = "SELECT location_id FROM locations WHERE label = ? ORDER BY location_id LIMIT 1"
    office, home = (store.cursor().execute(first, [label]).fetchall()[0][0] for label in ("Office", "Home"))
    steps = [
        lambda: None,
        # a second place over the demo's office, labelled with quotes, a backslash and accents
        lambda: add_location(store, 'Café "Nord" \\ 2', *demo.OFFICE, radius_m=400),
        lambda: update_location(store, office, label="Office <b>"),
        lambda: delete_location(store, home),
        lambda: detect(store, DetectParams(min_energy_kwh=5.0)),
    ]
    counts = []
    for step in steps:
        step()
        on_rows = _matches_on_rows(store)
        assert on_rows == _matches_in_table(store)
        counts.append(sum(len(m) for m in on_rows.values()))
    assert len(set(counts)) > 2  # the steps changed the matches, so each comparison above compared something
    assert any(m[0][2] == 'Café "Nord" \\ 2' for m in _matches_on_rows(store).values() if m)
