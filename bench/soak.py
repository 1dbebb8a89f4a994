"""Soak: the real server taking one more day of readings per cycle through its API while its sessions are read back.

Each cycle uploads the next day of minute readings of every entity (POST /api/v1/imports, the path `ingest` takes
while a server runs), waits for the job, then reads every entity's charge sessions through the API and compares
their total energy with the same engine run here on all readings so far (sessions rounded to the Wh as the API
gives them): it must be exact in every cycle. The server's memory (VmRSS of its process tree) is read at the end of
each cycle; its growth is measured from the end of the first cycle to the end of the last (target <= 10 %).
Default 2 minutes; the figure asked for is --minutes 30.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import Server, _status_kb, _tree  # noqa: E402
from core.detect import DetectParams, detect_sessions  # noqa: E402
from core.importers import ImportOptions  # noqa: E402
from core.local import LocalServer  # noqa: E402
from core.schema import READINGS_SCHEMA, conform  # noqa: E402

DAY0 = datetime(2025, 1, 1, tzinfo=UTC)


def day_of_readings(day: int, entities: int) -> pl.DataFrame:
    """Minute readings of one day: charging at 7.4 kW (with a little seeded noise) 00:00-02:00 and 12:00-14:00."""
    minutes = np.arange(1440)
    charging = (minutes % 720) < 120
    frames = []
    for e in range(entities):
        rng = np.random.default_rng(day * 100_003 + e)
        power = np.where(charging, 7.4 + rng.normal(0, 0.05, 1440), 0.0)
        ts = [DAY0 + timedelta(days=day, minutes=int(m), seconds=e) for m in minutes]
        frames.append(pl.DataFrame({"entity_id": f"soak-{e:03d}", "ts": ts, "power_kw": power}))
    return conform(pl.concat(frames), READINGS_SCHEMA)


def rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in _tree(pid)) / 1024


def api_energy(http: httpx.Client, ids: list[str]) -> tuple[int, float]:
    count, total = 0, 0.0
    for entity_id in ids:
        token = None
        while True:
            params = {
                "start": "2000-01-01T00:00:00Z",
                "pageSize": 1000,
                **({"continuationToken": token} if token else {}),
            }
            page = http.get(f"/v1/entities/{entity_id}/charge-sessions", params=params)
            page.raise_for_status()
            body = page.json()
            count += len(body["data"])
            total += sum(s["data"]["charge"]["total"]["total"] for s in body["data"])
            token = body["meta"]["continuationToken"]
            if not token or not body["data"]:
                break
    return count, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--entities", type=int, default=50)
    args = parser.parse_args()
    ids = [f"soak-{e:03d}" for e in range(args.entities)]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        db = folder / "chargelens.duckdb"
        server = Server(db)
        local = LocalServer(db, {"url": server.url})
        http = local.http
        so_far: list[pl.DataFrame] = []
        rows, exact, first_rss = [], True, None
        until = time.monotonic() + args.minutes * 60
        day = 0
        try:
            while time.monotonic() < until:
                t0 = time.perf_counter()
                readings = day_of_readings(day, args.entities)
                so_far.append(readings)
                path = folder / f"day-{day:03d}.csv"
                readings.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
                summary = local.ingest(path, ImportOptions())
                path.unlink()
                upload_s = time.perf_counter() - t0
                count, energy = api_energy(http, ids)
                expected = detect_sessions(pl.concat(so_far), DetectParams(), {})
                want = float(expected.get_column("energy_kwh").round(3).sum())
                same = count == expected.height and abs(energy - want) < 1e-6
                exact &= same
                rss = rss_mb(server.proc.pid)
                first_rss = first_rss or rss
                rows.append((day, summary.stored, count, energy, want, same, upload_s, rss))
                print(
                    f"cycle {day + 1:3d}: stored {summary.stored:,} readings in {upload_s:5.1f} s; sessions {count:,} "
                    f"(expected {expected.height:,}); energy {energy:,.3f} kWh (expected {want:,.3f}) "
                    f"{'exact' if same else 'DIFFERENT'}; server RSS {rss:,.0f} MB",
                    flush=True,
                )
                day += 1
        finally:
            peak = server.stop()
    growth = 100 * (rows[-1][-1] - first_rss) / first_rss if rows else float("nan")
    print(
        f"{len(rows)} cycles in {args.minutes:g} min: energy exact in every cycle: {exact}; server RSS from the end of "
        f"the first cycle to the end of the last: {first_rss:,.0f} -> {rows[-1][-1]:,.0f} MB ({growth:+.1f} %, target "
        f"<= 10 %); peak {peak:,.0f} MB"
    )
    return 0 if exact and growth <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
