"""Benchmark helpers: timing, peak memory, and a generated fleet of readings with known shape."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import polars as pl

from core.schema import READINGS_SCHEMA, conform


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable, *args, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def fleet_readings(
    n_readings: int, n_entities: int, seed: int = 7, cycle_min: int = 720, charge_min: int = 120
) -> pl.DataFrame:
    """Minute readings per entity: a charge of `charge_min` every `cycle_min` minutes at 7.4 kW with small noise."""
    rng = np.random.default_rng(seed)
    per = n_readings // n_entities
    minutes = np.arange(per, dtype=np.int64)
    cycle = minutes % cycle_min
    charging = cycle < charge_min
    power = np.where(charging, 7.4, 0.0)
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    ts = start + minutes * 60_000_000
    frames = []
    for e in range(n_entities):
        noise = rng.normal(0, 0.05, per) * charging
        frames.append(
            pl.DataFrame(
                {
                    "entity_id": np.full(per, f"ev-{e:05d}"),
                    "ts": pl.Series(ts + e * 1_000_000).cast(pl.Datetime("us", "UTC")),
                    "power_kw": power + noise,
                }
            )
        )
    return conform(pl.concat(frames), READINGS_SCHEMA)


def row(label: str, seconds: float, rows: int, baseline: float | None = None) -> str:
    ratio = f"{seconds / baseline:6.2f}x" if baseline else "   base"
    return f"{label:<34} {seconds:8.3f} s {rows / seconds:14,.0f} rows/s  {ratio}  peak RSS {peak_rss_mb():,.0f} MB"
