"""kill -9 during an import: the database reopens with exactly the state before that import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from bench.common import fleet_readings
from core.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def snapshot(db) -> tuple:
    store = Store.open(db)
    try:
        return (
            store.frame("SELECT * FROM readings ORDER BY entity_id, ts").hash_rows().sum(),
            store.scalar("SELECT count(*) FROM readings"),
            store.scalar("SELECT count(*) FROM sessions"),
            store.scalar("SELECT count(*) FROM imports"),
            store.scalar("SELECT count(*) FROM entities"),
        )
    finally:
        store.close()


def ingest(db, path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    return subprocess.Popen([sys.executable, "-m", "core", "--db", str(db), "ingest", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def test_kill_9_midway_leaves_the_previous_state(tmp_path):
    big = tmp_path / "big.csv"
    small = tmp_path / "small.csv"
    frame = fleet_readings(600_000, 20).select("entity_id", pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "power_kw")
    frame.write_csv(big)
    frame.head(5_000).with_columns(pl.col("entity_id") + "-before").write_csv(small)
    # How long a whole import takes here, so that kills land early, midway and late in it.
    timing_db = tmp_path / "timing.duckdb"
    started = time.monotonic()
    assert ingest(timing_db, big).wait(120) == 0
    full = time.monotonic() - started
    db = tmp_path / "crash.duckdb"
    assert ingest(db, small).wait(60) == 0
    before = snapshot(db)
    old_state = 0
    for fraction in (0.35, 0.6, 0.8, 0.95):
        proc = ingest(db, big)
        time.sleep(full * fraction)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        after = snapshot(db)
        if after == before:
            old_state += 1
            continue
        # Killed after the commit (or it finished): then all of it landed, never a part.
        assert after[1] == before[1] + 600_000 and after[3] == before[3] + 1
        break
    assert old_state >= 2
