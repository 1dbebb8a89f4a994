"""Import benchmark: ChargeLens ingest (validation on) vs DuckDB's plain read_csv into a table, same data, same run.

Each measurement runs in a fresh process so that its peak RSS is its own. For ChargeLens the import itself (read,
check, store: what read_csv does, plus validation) is timed apart from the session detection, matching and pricing
that follow it in the same transaction (the progress callback marks the moment); rows/s and the ratio to the
baseline are given for both the import and the whole ingest.
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
marks = {}
if kind == "duckdb":
    import duckdb
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE r AS SELECT * FROM read_csv(?)", [str(source)])
    con.close()
else:
    from core.importers import ImportOptions
    from core.pipeline import ingest_file
    from core.store import Store
    def progress(share, message):
        if "detecting" in message:
            marks.setdefault("import_seconds", time.perf_counter() - started)
    ingest_file(Store.open(db), source, ImportOptions(), progress=progress)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **marks}))
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
            if "import_seconds" in r:
                line(f"{label}: import", r["import_seconds"], base["seconds"], rows, None)
                line(f"{label}: + sessions", r["seconds"], base["seconds"], rows, r["rss_mb"])
            else:
                line(label, r["seconds"], base["seconds"], rows, r["rss_mb"])


def line(label: str, seconds: float, base_seconds: float, rows: int, rss_mb: float | None) -> None:
    throughput = rows / seconds
    rss = f"peak RSS {rss_mb:,.0f} MB" if rss_mb is not None else "(read, check, store)"
    print(f"{label:<42} {seconds:8.2f} s {throughput:14,.0f} rows/s  {base_seconds / seconds:5.2f}x of baseline "
          f"throughput  {rss}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
