"""Spark benchmark: `scale detect` in Spark local[2] against the same functions in one process, same data, same run.

Both read the readings Parquet, detect, match and price every entity (the demo tariff, so pricing runs) and write
sessions Parquet partitioned by month; the single process takes all entities at once, Spark one entity per call.
Baselines measured in the same run: the plain scan of the readings (pl.scan_parquet) and the single process. Spark
is timed cold (its first job) and warm over 2, 8 and 32 partitions. Peak RSS is this Python process's: Spark's JVM
and its Python workers are other processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fleet_readings, peak_rss_mb, row, timed
from core import costs, demo
from core.scale import spark as scale_spark
from core.scale.entity import fleet_rows
from core.scale.inputs import Inputs

COLUMNS = ["entity_id", "ts", "power_kw", "energy_kwh", "soc_pct", "is_plugged_in", "latitude", "longitude"]


def single_process(source: Path, out: Path, inputs: Inputs) -> int:
    """The single-process path: every entity detected, matched and priced at once, one partitioned Parquet write."""
    sessions = fleet_rows(pl.read_parquet(source), inputs).with_columns(month=pl.col("start_utc").dt.strftime("%Y-%m"))
    sessions.write_parquet(out, partition_by="month")
    return sessions.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="readings (default 1 million; 10000000 on demand)")
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--partitions", default="2,8,32", help="Spark partitions to time warm (default 2,8,32)")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    try:
        scale_spark.require()
    except scale_spark.ScaleUnavailable as exc:
        print(f"spark benchmark skipped: {exc.detail}")
        return
    tariff = costs.parse_tariff(demo.generate(1).tariff)
    assignments = pl.DataFrame({"tariff": [tariff.name], "scope": ["default"], "target": [""]})
    inputs = Inputs(tariffs=(tariff,), assignments=assignments)
    readings = fleet_readings(args.size, args.entities)
    n = readings.height
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "readings.parquet"
        readings.write_parquet(source)
        del readings
        scan_s, _ = timed(lambda: pl.scan_parquet(source).select(COLUMNS).collect(), repeat=3)
        one_s, sessions = timed(lambda: single_process(source, Path(folder) / "single", inputs))
        t0 = time.perf_counter()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = scale_spark.start(args.master, {"spark.driver.memory": "4g"})
        start_s = time.perf_counter() - t0
        runs = []
        try:

            def job(partitions: int, name: str):
                out = str(Path(folder) / name)
                return scale_spark.scale_detect(spark, str(source), out, inputs, partitions=partitions)

            cold_s, summary = timed(lambda: job(2, "cold"))
            for partitions in [int(p) for p in args.partitions.split(",")]:
                seconds, _ = timed(lambda p=partitions: job(p, f"warm-{p}"))
                runs.append((partitions, seconds))
        finally:
            spark.stop()
    print(
        f"spark benchmark: {n:,} readings, {args.entities} entities, {sessions:,} sessions "
        f"(Spark wrote {summary.sessions:,}), master {args.master}"
    )
    print(row("plain scan (pl.scan_parquet)", scan_s, n))
    print(row("single process (read+detect+write)", one_s, n, scan_s))
    print(f"{'Spark session start':<34} {start_s:8.3f} s")
    print(row("Spark cold (2 partitions)", cold_s, n, one_s) + "  (ratio: overhead vs single process)")
    print(f"{'partitions':>10} {'seconds':>9} {'rows/s':>14} {'vs single':>10}")
    for partitions, seconds in runs:
        print(f"{partitions:>10} {seconds:9.3f} {n / seconds:14,.0f} {seconds / one_s:9.2f}x")
    print(f"peak RSS of this process {peak_rss_mb():,.0f} MB (Spark's JVM and workers not included)")


if __name__ == "__main__":
    main()
