"""Benchmark helpers: timing, peak memory, and a generated fleet of readings with known shape."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from core.schema import READINGS_SCHEMA, conform

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m core --db DB serve` on a free loopback port, as a user starts it (benchmarks and tests).

    Its output goes to DB.log; it is ready when /api/health answers 200 within `wait_s` seconds."""

    def __init__(self, db: Path, wait_s: float = 120.0):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
        self.log = db.with_suffix(".log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core", "--db", str(db), "serve", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.started()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {db.with_suffix('.log').read_text()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /api/health within {wait_s:.0f} s")

    def started(self) -> None:
        """Called once the process runs, before it answers (a subclass starts watching it here)."""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


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
    n_readings: int, n_entities: int, seed: int = 7, cycle_min: int = 720, charge_min: int = 120, step_min: int = 1
) -> pl.DataFrame:
    """Readings every `step_min` minutes per entity: a charge of `charge_min` every `cycle_min` minutes at 7.4 kW
    with small noise."""
    rng = np.random.default_rng(seed)
    per = n_readings // n_entities
    minutes = np.arange(per, dtype=np.int64) * step_min
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
