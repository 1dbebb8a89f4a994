"""Spark scale-out: the demo fleet gives the single process's sessions exactly, time chunks stitch back to the
unsplit result, and `scale detect` then `ingest` work end to end.

In CI (CI set) the Spark tests fail when pyspark or Java is missing; elsewhere they are skipped.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core import demo
from core.cli import main
from core.detect import DetectParams, detect_sessions
from core.exports import export_frame
from core.queries import SessionFilter
from core.scale import inputs, split
from core.scale import spark as scale_spark
from core.schema import EXPORT_COLUMNS, READINGS_SCHEMA, conform
from core.store import Store
from tests.conftest import assert_no_traceback


def spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if scale_spark.java() is None:
        return "Java is not installed"
    return None


def need_spark() -> None:
    missing = spark_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing}; CI runs the Spark tests (make test-deps installs pyspark and Java)")
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def spark():
    need_spark()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = scale_spark.start("local[2]", {"spark.driver.memory": "1g", "spark.ui.enabled": "false"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The demo fleet loaded into a database the usual way, its export, and the same data as scale inputs."""
    folder = tmp_path_factory.mktemp("spark")
    db = folder / "demo.duckdb"
    assert main(["--db", str(db), "demo"]) == 0
    store = Store.open(db)
    expected = export_frame(store, SessionFilter())
    Store.close_all()
    paths = inputs.write_demo(folder / "inputs")
    loaded = inputs.load(paths["entities.csv"], paths["locations.json"], paths["tariffs.json"])
    return {"folder": folder, "paths": paths, "inputs": loaded, "expected": as_written(expected)}


def as_written(frame: pl.DataFrame) -> pl.DataFrame:
    """An export frame as its Parquet holds it (UTC times), sorted for comparison."""
    return frame.with_columns(pl.col("start_utc", "end_utc").dt.replace_time_zone("UTC")).sort("session_id")


def written(folder: Path) -> pl.DataFrame:
    files = sorted(folder.glob("month=*/*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]).select(EXPORT_COLUMNS).sort("session_id")


def test_scale_detect_then_ingest_into_a_fresh_database(cli, fleet, tmp_path):
    # First in the file: its Spark runs in the CLI's own process, before the module's session starts.
    need_spark()
    paths, out = fleet["paths"], tmp_path / "sessions"
    run = cli("scale", "detect", "--readings", str(paths["readings.parquet"]), "--out", str(out),
              "--entities", str(paths["entities.csv"]), "--locations", str(paths["locations.json"]),
              "--tariffs", str(paths["tariffs.json"]))  # fmt: skip
    assert run.code == 0, run.err
    sessions = fleet["expected"].height
    assert run.out.strip().endswith(f"{sessions} sessions in 3 months written to {out}")
    again = cli("scale", "detect", "--readings", str(paths["readings.parquet"]), "--out", str(out))
    assert again.code == 2 and "already exists" in again.err and len(again.err.strip().splitlines()) == 1
    fresh = tmp_path / "fresh.duckdb"
    loaded = cli("ingest", str(out), db=fresh)
    assert loaded.code == 0, loaded.err
    assert loaded.out == f"sessions: read {sessions}, stored {sessions}, duplicate 0, conflict 0, rejected 0\n"
    store = Store.open(fresh)
    stored = store.frame("SELECT s.*, e.entity_type FROM sessions s JOIN entities e USING (entity_id) ORDER BY ALL")
    Store.close_all()
    expected = fleet["expected"]
    assert set(stored.get_column("source")) == {"imported"}
    key = ["entity_id", "entity_type", "start_utc", "end_utc"]
    assert_frame_equal(
        stored.select(*key, pl.col("energy_kwh").round(3)).sort(key), expected.select(*key, "energy_kwh").sort(key)
    )
    assert_no_traceback(run.err + loaded.err)


def test_spark_gives_the_single_process_sessions_of_the_demo(spark, fleet):
    out = fleet["folder"] / "out"
    summary = scale_spark.scale_detect(spark, str(fleet["paths"]["readings.parquet"]), str(out), fleet["inputs"])
    got, expected = written(out), fleet["expected"]
    assert (summary.entities, summary.captured, summary.chunked, summary.sessions) == (11, 8, 0, expected.height)
    assert got.columns == EXPORT_COLUMNS and got.height > 700
    # Ids, times, energy, bands, location labels, costs: every column, bit for bit.
    assert_frame_equal(got, expected, check_exact=True)
    assert got.filter(pl.col("location_label") == "Office").height > 50
    assert got.filter(pl.col("location_label") == "Home").height > 100
    assert got.get_column("cost_total").null_count() == 0
    assert sorted(p.name for p in out.glob("month=*")) == ["month=2025-02", "month=2025-03", "month=2025-04"]
    for month in out.glob("month=*"):
        starts = pl.concat([pl.read_parquet(f) for f in month.glob("*.parquet")]).get_column("start_utc")
        assert set(starts.dt.strftime("%Y-%m")) == {month.name.removeprefix("month=")}


def test_spark_cuts_large_entities_into_chunks_and_stitches_them_back(spark, fleet):
    out = fleet["folder"] / "chunked"
    summary = scale_spark.scale_detect(
        spark, str(fleet["paths"]["readings.parquet"]), str(out), fleet["inputs"], max_rows=9_000, partitions=4
    )
    assert summary.chunked == 8
    assert_frame_equal(written(out), fleet["expected"], check_exact=True)


# --- the split and stitch rule (core/scale/split.py), without Spark ----------------------------------------------

T0 = datetime(2025, 2, 1, tzinfo=UTC)
VALUES = ("power_kw", "energy_kwh", "energy_added_kwh", "soc_pct", "odometer_km", "position", "is_plugged_in",
          "is_charging")  # fmt: skip
PHASES = ("charge", "charge", "idle", "drive", "unplug", "gap", "creep")


@st.composite
def logged_readings(draw) -> pl.DataFrame:
    """One vehicle's log: phases of charging (full power or creeping), standing, driving, unplugged and data
    gaps, polled every 1 to 400 minutes, with a random choice of columns and of values left unknown."""
    columns = draw(st.sets(st.sampled_from(VALUES), min_size=1))
    phases = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PHASES),
                st.integers(1, 30),
                st.sampled_from([1, 4, 15, 40, 90, 400]),
                st.sampled_from([0.05, 3.7, 11.0]),
            ),
            min_size=1,
            max_size=20,
        )
    )
    unknown = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    minute, meter, counter, soc, odometer, latitude, plugged = 0.0, 1000.0, 0.0, 40.0, 5000.0, 50.85, True
    rows = []
    for kind, polls, every, kw in phases:
        if kind == "gap":
            minute += polls * every
            continue
        if kind in ("charge", "creep") and not plugged:
            plugged, counter = True, 0.0  # the per-charge counter restarts at each plug-in
        for _ in range(polls):
            minute += every * float(rng.uniform(0.9, 1.1))
            power = {"charge": kw, "creep": 0.02}.get(kind, 0.0)
            kwh = power * every / 60
            meter, counter, soc = meter + kwh, counter + kwh, min(100.0, soc + kwh / 60 * 100)
            if kind == "drive":
                odometer, latitude, soc = odometer + every * 0.5, latitude + every * 0.004, max(0.0, soc - every * 0.2)
            plugged = plugged and kind not in ("drive", "unplug")
            rows.append({"ts": T0 + timedelta(minutes=minute), "power_kw": power, "energy_kwh": round(meter, 3),
                         "energy_added_kwh": round(counter, 3), "soc_pct": float(round(soc)),
                         "odometer_km": round(odometer, 1), "latitude": round(latitude, 5), "longitude": 4.35,
                         "is_plugged_in": plugged, "is_charging": kind == "charge"})  # fmt: skip
    frame = pl.DataFrame(rows or [{"ts": T0}]).with_columns(entity_id=pl.lit("ev"))
    keep = set(columns) | ({"latitude", "longitude"} if "position" in columns else set())
    frame = frame.select("entity_id", "ts", *[c for c in frame.columns if c in keep])
    holes = rng.random((frame.height, frame.width)) < unknown
    frame = frame.with_columns(
        pl.when(pl.Series(holes[:, i])).then(None).otherwise(pl.col(c)).alias(c)
        for i, c in enumerate(frame.columns)
        if c not in ("entity_id", "ts")
    )
    return conform(frame, READINGS_SCHEMA)


def assert_same_sessions(split_result: pl.DataFrame, unsplit: pl.DataFrame) -> None:
    """Every column but end_reason's wording; energies to float rounding (a counter summed from another start)."""
    got, expected = split_result.drop("end_reason"), unsplit.drop("end_reason")
    assert_frame_equal(got, expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    readings=logged_readings(),
    max_rows=st.integers(3, 60),
    pause=st.sampled_from([5, 15, 30]),
    gap=st.sampled_from([20, 60, 120]),
    capacity=st.sampled_from([None, 60.0]),
)
def test_split_detection_equals_unsplit_on_generated_logs(readings, max_rows, pause, gap, capacity):
    params = DetectParams(max_pause_min=pause, max_gap_min=gap)
    capacities = {"ev": capacity} if capacity else None
    unsplit = detect_sessions(readings, params, capacities)
    assert_same_sessions(split.detect_split(readings, params, capacities, max_rows), unsplit)


@pytest.fixture(scope="module")
def demo_fleet():
    fleet = demo.generate(2)
    caps = dict(fleet.entities.select("entity_id", "battery_capacity_kwh").drop_nulls().iter_rows())
    return fleet.readings, caps


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=st.sampled_from(["cp-01", "cp-03", "ev-01", "ev-02", "ev-03", "ev-04"]), max_rows=st.integers(1000, 6000))
def test_split_detection_equals_unsplit_on_the_demo_fleet(demo_fleet, entity, max_rows):
    readings, caps = demo_fleet
    one = readings.filter(pl.col("entity_id") == entity)
    unsplit = detect_sessions(one, DetectParams(), caps)
    assert unsplit.height > 10
    assert_same_sessions(split.detect_split(one, DetectParams(), caps, max_rows), unsplit)


def test_a_session_longer_than_the_overlap_is_never_cut():
    # 30 hours at 7 kW with a poll every 5 minutes: the chunks around it grow until one holds it whole.
    ts = [T0 + timedelta(minutes=5 * i) for i in range(30 * 12 + 40)]
    power = [7.0 if 10 <= i < 370 else 0.0 for i in range(len(ts))]
    readings = conform(pl.DataFrame({"entity_id": "cp", "ts": ts, "power_kw": power}), READINGS_SCHEMA)
    result = split.detect_split(readings, max_rows=40)
    assert result.select("start_utc", "end_utc").rows() == [(ts[10], ts[369])]
    assert_same_sessions(result, detect_sessions(readings))
