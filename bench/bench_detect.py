"""Detection benchmark: plain Parquet scan (baseline) vs ChargeLens detection, same data, same run."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fleet_readings, row, timed
from core.detect import DetectParams, detect_sessions

COLUMNS = ["entity_id", "ts", "power_kw", "energy_kwh", "soc_pct", "is_plugged_in", "latitude", "longitude"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="readings (default 1 million)")
    parser.add_argument("--entities", type=int, default=100)
    args = parser.parse_args()
    readings = fleet_readings(args.size, args.entities)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "readings.parquet"
        readings.write_parquet(path)
        scan_s, frame = timed(lambda: pl.scan_parquet(path).select(COLUMNS).collect(), repeat=3)
        detect_s, sessions = timed(lambda: detect_sessions(pl.read_parquet(path), DetectParams()))
    n = readings.height
    print(f"detection benchmark: {n:,} readings, {args.entities} entities, {sessions.height:,} sessions")
    print(row("plain scan (pl.scan_parquet)", scan_s, n))
    print(row("ChargeLens detect (read + detect)", detect_s, n, scan_s))
    del frame


if __name__ == "__main__":
    main()
