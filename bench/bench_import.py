"""Import benchmark: ChargeLens ingest (validation on) vs DuckDB's plain read_csv into a table, same data, same run.

Each measurement runs in a fresh process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
kind, source, db = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
if kind == "duckdb":
    import duckdb
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE r AS SELECT * FROM read_csv(?)", [str(source)])
    con.close()
else:
    from core.importers import ImportOptions
    from core.pipeline import ingest_file
    from core.store import Store
    ingest_file(Store.open(db), source, ImportOptions())
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind: str, source: Path, folder: Path) -> dict:
    db = folder / f"{kind}-{time.monotonic_ns()}.duckdb"
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(source), str(db)], cwd=ROOT, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import polars as pl

    from bench.common import fleet_readings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="readings (the issue's figure: 10000000)")
    parser.add_argument("--entities", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        frame = fleet_readings(args.size, args.entities).with_columns(
            soc_pct=pl.lit(55.0), latitude=pl.lit(50.85), longitude=pl.lit(4.35), is_plugged_in=pl.lit(True)
        )
        csv_path, parquet_path = folder / "readings.csv", folder / "readings.parquet"
        frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(csv_path)
        frame.write_parquet(parquet_path)
        rows = frame.height
        del frame
        size_mb = csv_path.stat().st_size / 1e6
        print(f"import benchmark: {rows:,} readings, {args.entities} entities, CSV {size_mb:,.0f} MB")
        base = measure("duckdb", csv_path, folder)
        results = [("duckdb read_csv -> table (baseline)", base),
                   ("ChargeLens ingest CSV", measure("chargelens", csv_path, folder)),
                   ("ChargeLens ingest Parquet", measure("chargelens", parquet_path, folder))]  # fmt: skip
        for label, r in results:
            throughput = rows / r["seconds"]
            ratio = throughput / (rows / base["seconds"])
            print(f"{label:<38} {r['seconds']:8.2f} s {throughput:14,.0f} rows/s  {ratio:5.2f}x of baseline "
                  f"throughput  peak RSS {r['rss_mb']:,.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
