"""Detection benchmark on one generated readings Parquet, same run: the plain scan (baseline), the scan sorted by
entity and time (what any detector has to do at least), a pandas and a DuckDB reference of the power method's rules,
ChargeLens detection, and ChargeLens on the last 48 h only (incremental).

Each measurement runs in a fresh process so that its peak RSS is its own. The pandas and DuckDB references run up
to 10 million readings (SPEC section 10); above 20 million, ChargeLens reads and detects per batch of entities
(`--batch-entities`) so that its peak RSS stays bounded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFERENCE_MAX = 10_000_000  # SPEC section 10: the pandas reference runs at 10 million readings
BATCH_ABOVE = 20_000_000  # larger runs detect per batch of entities by default
BATCH_READINGS = 5_000_000  # default batch: 10 million readings at once peak at about 3.7 GB RSS
INCREMENT_H = 48  # the incremental run: the last day of readings and the day before as context

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, str(Path.cwd()))
kind, path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
import core  # noqa: F401  (first: polars' allocator settings, as in every ChargeLens process; the scan gets them too)
import polars as pl
from bench.bench_detect import COLUMNS, INCREMENT_H
if kind == "pandas":
    import pandas as pd
    from bench.reference_pandas import detect_power_sessions
elif kind == "duckdb":
    from bench.reference_duckdb import detect_power_sessions
elif kind not in ("scan", "sort"):
    from core.detect import DetectParams, detect_sessions
result = {}
started = time.perf_counter()


def batches(scan):  # the scan whole, or filtered to one batch of entities after another
    if not batch:
        return [scan]
    ids = pl.scan_parquet(path).select(pl.col("entity_id").unique()).collect(engine="streaming")
    ids = ids.get_column("entity_id").sort()
    return [scan.filter(pl.col("entity_id").is_in(ids.slice(i, batch).implode()))
            for i in range(0, ids.len(), batch)]


if kind in ("scan", "sort"):
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for part in batches(pl.scan_parquet(path)):
            part = part.select(COLUMNS)
            frame = (part.sort("entity_id", "ts") if kind == "sort" else part).collect()
            del frame
        best = min(best, time.perf_counter() - t0)
    result = {"seconds": best}
elif kind == "pandas":
    found = detect_power_sessions(pd.read_parquet(path, columns=["entity_id", "ts", "power_kw"]))
    result = {"sessions": len(found), "energy": float(found["energy_kwh"].sum())}
elif kind == "duckdb":
    count, energy = detect_power_sessions(path).aggregate("count(*), sum(energy_kwh)").fetchall()[0]
    result = {"sessions": count, "energy": float(energy or 0.0)}
else:
    scan = pl.scan_parquet(path)
    if kind == "incremental":
        last = scan.group_by("entity_id").agg(__last=pl.col("ts").max())
        window = pl.col("ts") > pl.col("__last") - pl.duration(hours=INCREMENT_H)
        scan = scan.join(last, on="entity_id").filter(window).drop("__last")
    read_s = detect_s = energy = 0.0
    count = rows = 0
    for part in batches(scan):
        t0 = time.perf_counter()
        readings = part.select(COLUMNS).collect()
        t1 = time.perf_counter()
        sessions = detect_sessions(readings, DetectParams(), {})
        detect_s += time.perf_counter() - t1
        read_s += t1 - t0
        rows += readings.height
        count += sessions.height
        energy += float(sessions.get_column("energy_kwh").sum())
        del readings, sessions
    result = {"sessions": count, "energy": energy, "read_s": read_s, "detect_s": detect_s, "rows": rows}
result.setdefault("seconds", time.perf_counter() - started)
result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def _columns() -> list[str]:
    from core.schema import READINGS_SCHEMA

    # Every readings column feeds detection (breaks, methods, enrichment), so the baseline scans them all.
    return list(READINGS_SCHEMA.names())


COLUMNS = _columns()


def measure(kind: str, path: Path, batch: int = 0) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(batch)], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_fleet(path: Path, size: int, entities: int, step_min: int = 1) -> int:
    """The power-only fleet of bench.common.fleet_readings as one Parquet file, written in entity chunks above
    BATCH_ABOVE so that the generator never holds the whole fleet (chunks differ in noise seed only)."""
    import polars as pl
    import pyarrow.parquet as pq

    from bench.common import fleet_readings

    if size <= BATCH_ABOVE:
        frame = fleet_readings(size, entities, step_min=step_min)
        frame.write_parquet(path)
        return frame.height
    per, chunk, rows = size // entities, 100, 0
    writer = None
    for first in range(0, entities, chunk):
        n = min(chunk, entities - first)
        frame = fleet_readings(per * n, n, seed=7 + first, step_min=step_min).with_columns(
            entity_id=pl.format("ev-{}", (pl.col("entity_id").str.slice(3).cast(pl.Int64) + first).cast(pl.String)
                                .str.zfill(5)),
            ts=pl.col("ts") + pl.duration(seconds=first),
        )  # fmt: skip
        table = frame.to_arrow()
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
        rows += frame.height
        del frame, table
    writer.close()
    return rows


def line(label: str, r: dict, rows: int, base_s: float) -> str:
    seconds, rows = r["seconds"], r.get("rows", rows)  # the incremental run reads only its own window
    found = f"{r['sessions']:>9,} sessions {r['energy']:>14,.1f} kWh" if "sessions" in r else " " * 38
    ratio = "   base" if seconds == base_s else f"{seconds / base_s:6.2f}x"
    return (f"{label:<50} {seconds:8.2f} s {rows / seconds:13,.0f} readings/s  {ratio}  peak RSS "
            f"{r['rss_mb']:>6,.0f} MB  {found}").rstrip()  # fmt: skip


def agreement(label: str, r: dict, ours: dict) -> str:
    """Same session count and total energy within 0.1 %? Differences are printed as they are."""
    d_count = r["sessions"] - ours["sessions"]
    d_energy = (r["energy"] - ours["energy"]) / ours["energy"] * 100 if ours["energy"] else float("nan")
    ok = d_count == 0 and abs(d_energy) <= 0.1
    verdict = "agrees" if ok else "DISAGREES"
    return (f"{label} {verdict} with ChargeLens: sessions {r['sessions']:,} vs {ours['sessions']:,} "
            f"({d_count:+,}), energy {r['energy']:,.3f} vs {ours['energy']:,.3f} kWh ({d_energy:+.4f} %)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="readings (default 1 million)")
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument(
        "--batch-entities",
        type=int,
        default=None,
        help=f"ChargeLens reads and detects this many entities at a time (0: all at once; default: all at once up "
        f"to {BATCH_ABOVE:,} readings, above batches of about {BATCH_READINGS:,} readings: 50 of 1,000 entities at "
        f"100 million)",
    )
    parser.add_argument(
        "--step-min",
        type=int,
        default=1,
        help="minutes between readings (default 1; 15 spreads 10 million readings of 1,000 entities over 104 days, "
        "so that the incremental run's last 48 h are the small share of a long history they are in use)",
    )
    args = parser.parse_args()
    batch = args.batch_entities
    if batch is None:  # about BATCH_READINGS readings per batch keeps ChargeLens's peak RSS near 2 GB
        batch = 0 if args.size <= BATCH_ABOVE else max(1, BATCH_READINGS * args.entities // args.size)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "readings.parquet"
        n = write_fleet(path, args.size, args.entities, args.step_min)
        mode = f"batches of {batch} entities" if batch else "all entities at once"
        days = n // args.entities * args.step_min / 1440
        print(
            f"detection benchmark: {n:,} readings, {args.entities} entities, a reading every {args.step_min} min "
            f"({days:,.0f} days), power only; ChargeLens: {mode}",
            flush=True,
        )
        scan = measure("scan", path, batch)
        per = ", per batch" if batch else ""
        results = [(f"plain scan (pl.scan_parquet{per}, best of 3)", scan)]
        # The least any detector does: each entity's readings in time order (the file does not promise an order).
        results.append((f"scan + sort by entity and time{per}, best of 3", measure("sort", path, batch)))
        refs = []
        if n <= REFERENCE_MAX:
            refs = [("pandas reference", measure("pandas", path)), ("DuckDB SQL reference", measure("duckdb", path))]
            results += refs
        ours = measure("chargelens", path, batch)
        results.append(("ChargeLens detect (read + detect)", ours))
        incremental = measure("incremental", path, batch)
        results.append((f"ChargeLens incremental (last {INCREMENT_H} h)", incremental))
    for label, r in results:
        print(line(label, r, n, scan["seconds"]))
    print(f"ChargeLens detect alone: {ours['detect_s']:.2f} s (reading {ours['read_s']:.2f} s)")
    for label, r in refs:
        print(agreement(label, r, ours))
    if not refs:
        print(f"pandas and DuckDB references skipped above {REFERENCE_MAX:,} readings (SPEC section 10)")
    share = incremental["detect_s"] / ours["detect_s"] * 100
    print(f"incremental: detect on the last {INCREMENT_H} h of every entity ({incremental['rows']:,} readings, "
          f"{incremental['rows'] / n * 100:.1f} % of them) took {incremental['detect_s']:.2f} s = {share:.1f} % of "
          f"the full detection ({ours['detect_s']:.2f} s); target < 5 %")  # fmt: skip


if __name__ == "__main__":
    main()
