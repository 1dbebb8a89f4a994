"""`scale detect` on Spark: readings Parquet in, sessions Parquet with the export columns out, a folder per month.

The readings are repartitioned by entity and `groupBy("entity_id").applyInArrow` hands each entity's readings to
core.scale.entity as one Arrow table, turned into a polars frame without pandas: the same detection, location
matching and pricing as the single process, so the rows equal what `sessions export` gives for the same data.
An entity with more readings than `max_rows` is cut into chunks in time (core.scale.split): a first job reads the
columns that place the seams, one task per chunk detects it with its overlap, and where a seam turns out not to
be quiet it moves and only the chunks around it run again.

pyspark is an optional dependency: this is the only module that imports it, inside its functions, and only the
`scale` command of core.cli loads this module.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from core.errors import ChargeLensError, InputError
from core.importers.rules import UNIT_VARIANTS
from core.scale import split
from core.scale.entity import CHUNK_SCHEMA, EXPORT_SCHEMA, chunk_rows, entity_rows
from core.scale.inputs import Entity, Inputs
from core.schema import READINGS_SCHEMA, UTC_TS

DEFAULT_MASTER = "local[2]"
DEFAULT_MAX_ROWS = 5_000_000
# Month folders and timestamps depend on the session time zone; INT96, Spark's default, reads back as naive times.
SETTINGS = {"spark.sql.session.timeZone": "UTC", "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}
MAX_ROWS_SETTING = "spark.chargelens.maxRowsPerTask"


class ScaleUnavailable(ChargeLensError):
    title = "ScaleUnavailable"


def _arrow(schema: pl.Schema) -> pa.Schema:
    """The Arrow schema that applyInArrow accepts: plain strings, microsecond UTC times (no casts on that path)."""
    kinds = {
        pl.String(): pa.string(),
        pl.Float64(): pa.float64(),
        pl.Boolean(): pa.bool_(),
        UTC_TS: pa.timestamp("us", "UTC"),
    }
    return pa.schema([(name, kinds[dtype]) for name, dtype in schema.items()])


def _ddl(schema: pa.Schema) -> str:
    kinds = {
        pa.string(): "string",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.timestamp("us", "UTC"): "timestamp",
    }
    return ", ".join(f"`{f.name}` {kinds[f.type]}" for f in schema)


EXPORT_ARROW = _arrow(EXPORT_SCHEMA)
CHUNK_ARROW = _arrow(CHUNK_SCHEMA).append(pa.field("chunk_key", pa.string()))
PLAN_ARROW = pa.schema([("entity_id", pa.string()), ("plan", pa.string())])


def java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def require() -> None:
    """One sentence, and no Spark, when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ScaleUnavailable(
            "Spark is not installed in this environment; install pyspark with `.venv/bin/pip install -r "
            "requirements-test.txt` and run the command again."
        ) from None
    if java() is None:
        raise ScaleUnavailable(
            "Spark needs Java 17, which is not installed here; install it (Debian: apt-get install -y "
            "openjdk-17-jre-headless) or set JAVA_HOME, then run the command again."
        )


def start(master: str | None = None, conf: Mapping[str, str] | None = None):
    """A SparkSession for `scale detect`: `master` (default local[2], or the cluster spark-submit chose)."""
    require()
    from pyspark.sql import SparkSession

    # Workers must run this Python (the venv), not whatever python3 the PATH finds first.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    master = master or (None if under_submit else DEFAULT_MASTER)
    builder = SparkSession.builder.appName("chargelens scale detect")
    if master:
        builder = builder.master(master)
    if (master or "").startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        cores = master.partition("[")[2].rstrip("]").split(",")[0]
        cores = int(cores) if cores.isdigit() else os.cpu_count() or 2
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Two tasks per core rather than Spark's 200, which only add start-up costs on one machine.
            .config("spark.sql.shuffle.partitions", str(2 * cores))
        )
    for key, value in {**SETTINGS, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark raises several types when the JVM does not come up
        raise ScaleUnavailable(f"Spark did not start ({_first_line(exc)}); check Java 17 and --master.") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass(frozen=True)
class Summary:
    readings: int
    entities: int
    captured: int
    chunked: int
    sessions: int
    months: int
    out: str

    def line(self) -> str:
        split_note = f", {self.chunked} of them in time chunks" if self.chunked else ""
        return (
            f"scale detect: {self.readings} readings of {self.entities} entities, session capture on for "
            f"{self.captured}{split_note}; {self.sessions} sessions in {self.months} months written to {self.out}"
        )


def run(readings_uri: str, out_uri: str, inputs: Inputs, master: str | None = None) -> Summary:
    """The `scale detect` command: start Spark, detect, write, stop."""
    require()
    if "://" not in readings_uri and not Path(readings_uri).exists():
        raise InputError(f"{readings_uri} does not exist; check the --readings path or URI.")
    if "://" not in out_uri and Path(out_uri).exists():
        raise InputError(f"{out_uri} already exists; choose a new --out (nothing is ever written over).")
    spark = start(master)
    try:
        max_rows = int(spark.conf.get(MAX_ROWS_SETTING, str(DEFAULT_MAX_ROWS)))
        return scale_detect(spark, readings_uri, out_uri, inputs, max_rows=max_rows)
    finally:
        spark.stop()


def scale_detect(
    spark,
    readings_uri: str,
    out_uri: str,
    inputs: Inputs,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    partitions: int | None = None,
) -> Summary:
    """Detect, match and price every entity of the readings; write the sessions partitioned by `month=YYYY-MM`.

    `partitions`: how many tasks the entities are spread over (default: Spark's shuffle partitions).
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    cached: list = []
    try:
        return _scale_detect(spark, readings_uri, out_uri, inputs, max_rows, partitions, cached)
    except (PySparkException, Py4JJavaError) as exc:
        raise _translated(exc, readings_uri, out_uri) from None
    finally:
        for frame in cached:
            frame.unpersist()


def _scale_detect(spark, readings_uri, out_uri, inputs: Inputs, max_rows: int, partitions, cached: list) -> Summary:
    from pyspark.sql import functions as F

    readings = _readings(spark, readings_uri)
    counts = _entity_counts(readings).collect()
    readings = readings.drop("entity_type")
    entities: dict[str, Entity] = {}
    large: set[str] = set()
    for row in counts:
        entity = inputs.entity(row["entity_id"], row["entity_type"])
        if entity and entity.capture(has_power=row["power"] > 0, has_meter=row["meter"] > 0, has_soc=row["soc"] > 0):
            entities[entity.entity_id] = entity
            if row["rows"] > max_rows:
                large.add(entity.entity_id)
    captured = readings.join(F.broadcast(_ids(spark, entities)), "entity_id")
    small = captured.join(F.broadcast(_ids(spark, large)), "entity_id", "left_anti") if large else captured
    by_entity = small.repartition(partitions, "entity_id") if partitions else small.repartition("entity_id")
    sessions = by_entity.groupBy("entity_id").applyInArrow(_entity_task(entities, inputs), _ddl(EXPORT_ARROW))
    if large:
        big = captured.join(F.broadcast(_ids(spark, large)), "entity_id")
        sessions = sessions.unionByName(_chunked(spark, big, entities, inputs, max_rows, partitions, cached))
    sessions = sessions.withColumn("month", F.date_format("start_utc", "yyyy-MM")).persist()
    cached.append(sessions)
    count, months = sessions.select(F.count(F.lit(1)), F.count_distinct("month")).first()
    sessions.sortWithinPartitions("month", "start_utc", "entity_id").write.partitionBy("month").mode(
        "errorifexists"
    ).parquet(out_uri)
    total = sum(row["rows"] for row in counts)
    return Summary(total, len(counts), len(entities), len(large), count, months, out_uri)


def _entity_counts(readings):
    """Per entity: readings, readings with power, meter and SoC, and the first entity_type (if the file has one)."""
    from pyspark.sql import functions as F

    present = set(readings.columns)
    values = (("power_kw", "power"), ("energy_kwh", "meter"), ("soc_pct", "soc"))
    kind = F.first("entity_type", ignorenulls=True) if "entity_type" in present else F.lit(None).cast("string")
    return readings.groupBy("entity_id").agg(
        F.count(F.lit(1)).alias("rows"),
        *((F.count(column) if column in present else F.lit(0)).alias(name) for column, name in values),
        kind.alias("entity_type"),
    )


def _translated(exc: Exception, readings_uri: str, out_uri: str) -> Exception:
    text = _first_line(exc)
    if "PATH_ALREADY_EXISTS" in text or "already exists" in text:
        return InputError(f"{out_uri} already exists; choose a new --out (nothing is ever written over).")
    if "PATH_NOT_FOUND" in text or "does not exist" in text:
        return InputError(f"{readings_uri} does not exist; check the --readings path or URI.")
    if "TIMESTAMP(NANOS" in text:
        return InputError(f"{readings_uri} stores nanosecond times, which Spark cannot read; write microseconds.")
    return RuntimeError(f"Spark failed: {text}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _readings(spark, uri: str):
    """The readings with those canonical columns that the file has (unit variants converted) and entity_type if
    it has one. Columns it lacks are not carried through the shuffle: each task adds them back as unknown."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    raw = spark.read.parquet(uri)
    time = next((c for c in ("ts", "timestamp") if c in raw.columns), None)
    if "entity_id" not in raw.columns or time is None:
        raise InputError(
            f"{uri} needs the canonical reading columns entity_id and ts (and power_kw, energy_kwh, soc_pct, ...); "
            f"found {', '.join(raw.columns[:12])}."
        )
    dtype = raw.schema[time].dataType
    if isinstance(dtype, T.TimestampNTZType):
        raise InputError(f"{uri}: {time} holds times without a time zone; write them as UTC timestamps.")
    if not isinstance(dtype, T.TimestampType):
        raise InputError(f"{uri}: {time} must be a timestamp column (UTC), not {dtype.simpleString()}.")
    columns = [F.col("entity_id").cast("string").alias("entity_id"), F.col(time).alias("ts")]
    for name, kind in READINGS_SCHEMA.items():
        if name in ("entity_id", "ts"):
            continue
        spark_type = "boolean" if kind == pl.Boolean() else "double"
        variant, factor = UNIT_VARIANTS.get(name, (None, 1.0))
        if name in raw.columns:
            columns.append(F.col(name).cast(spark_type).alias(name))
        elif variant in raw.columns:
            columns.append((F.col(variant).cast("double") * F.lit(factor)).alias(name))
    if "entity_type" in raw.columns:
        columns.append(F.col("entity_type").cast("string").alias("entity_type"))
    return raw.select(*columns).where(F.col("entity_id").isNotNull() & F.col("ts").isNotNull())


def _ids(spark, ids):
    """A one-column frame of entity ids, small enough to broadcast to every task."""
    return spark.createDataFrame([(i,) for i in sorted(ids)], "entity_id string")


def _entity_task(entities: dict[str, Entity], inputs: Inputs):
    def task(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        return entity_rows(frame, entities[frame.item(0, "entity_id")], inputs).to_arrow().cast(EXPORT_ARROW)

    return task


def _chunked(spark, readings, entities: dict[str, Entity], inputs: Inputs, max_rows: int, partitions, cached: list):
    """The export rows of the large entities, chunk by chunk, moving seams until every one is quiet."""
    from pyspark.sql import functions as F

    params = inputs.params
    present = set(readings.columns)

    def known(column: str):
        return F.col(column).isNotNull() if column in present else F.lit(False)

    def value(column: str, kind: str = "double"):
        return F.col(column) if column in present else F.lit(None).cast(kind)

    profile = readings.select(
        "entity_id",
        "ts",
        known("power_kw").alias("has_power"),
        known("energy_kwh").alias("has_meter"),
        known("soc_pct").alias("has_soc"),
        *(value(c).alias(c) for c in ("energy_added_kwh", "odometer_km", "latitude", "longitude")),
        value("is_plugged_in", "boolean").alias("is_plugged_in"),
    )
    seams: dict[str, list[split.Seam]] = {}
    blocked: dict[str, dict[int, int]] = {}
    spans: dict[tuple[str, str], pl.DataFrame] = {}
    windows: dict[str, list[split.Window]] = {}
    results = []
    while True:
        planning = profile.join(F.broadcast(_ids(spark, blocked)), "entity_id") if blocked else profile
        plans = planning.groupBy("entity_id").applyInArrow(_planner(seams, blocked, params, max_rows), _ddl(PLAN_ARROW))
        for row in plans.collect():
            plan = json.loads(row["plan"])
            seams[row["entity_id"]] = [split.Seam(at, moves) for at, moves in plan["seams"]]
            windows[row["entity_id"]] = [split.Window(w[0], w[1], w[2], w[3], w[4], tuple(map(tuple, w[5])))
                                         for w in plan["windows"]]  # fmt: skip
        todo = {(e, w.key): w for e, ws in windows.items() for w in ws if (e, w.key) not in spans}
        if todo:
            rows = _run_chunks(spark, readings, todo, entities, inputs, partitions).persist()
            cached.append(rows)
            results.append(rows)
            evidence = rows.where(F.col("session_id").isNull())
            found = pl.from_arrow(evidence.select("entity_id", "chunk_key", "evidence_from", "evidence_to").toArrow())
            for key in todo:
                spans[key] = found.filter((pl.col("entity_id") == key[0]) & (pl.col("chunk_key") == key[1]))
        blocked = {}
        for entity_id, ws in windows.items():
            found_seams = split.blocked_seams(seams[entity_id], [spans[(entity_id, w.key)] for w in ws], params)
            if found_seams:
                blocked[entity_id] = found_seams
        if not blocked:
            break
    final = spark.createDataFrame(
        [(e, w.key) for e, ws in windows.items() for w in ws], "entity_id string, chunk_key string"
    )
    kept = results[0]
    for frame in results[1:]:
        kept = kept.unionByName(frame)
    kept = kept.where(F.col("session_id").isNotNull()).join(F.broadcast(final), ["entity_id", "chunk_key"])
    return kept.select(*EXPORT_ARROW.names)


def _planner(seams: dict, blocked: dict, params, max_rows: int):
    def task(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        entity_id = frame.item(0, "entity_id")
        profile = split.Profile.of(frame)
        if entity_id in blocked:
            current = split.move_seams(profile, seams[entity_id], blocked[entity_id], params)
        else:
            current = seams.get(entity_id) or split.first_seams(profile, max_rows)
        windows = split.windows(profile, current, params)
        plan = {
            "seams": [[s.at, s.moves] for s in current],
            "windows": [[w.chunk, w.owned_from, w.owned_to, w.read_from, w.read_to, w.context] for w in windows],
        }
        return pa.table({"entity_id": [entity_id], "plan": [json.dumps(plan)]}, schema=PLAN_ARROW)

    return task


def _run_chunks(spark, readings, todo: dict[tuple[str, str], split.Window], entities, inputs, partitions):
    from pyspark.sql import functions as F

    bounds = spark.createDataFrame(
        [(e, key, split.to_datetime(w.read_from), split.to_datetime(w.read_to)) for (e, key), w in todo.items()],
        "entity_id string, chunk_key string, read_from timestamp, read_to timestamp",
    )
    inside = (F.col("read_from").isNull() | (F.col("ts") >= F.col("read_from"))) & (
        F.col("read_to").isNull() | (F.col("ts") <= F.col("read_to"))
    )
    windows = readings.join(F.broadcast(bounds), "entity_id").where(inside).drop("read_from", "read_to")
    if partitions:
        windows = windows.repartition(partitions, "entity_id", "chunk_key")

    def task(table: pa.Table) -> pa.Table:
        frame = pl.from_arrow(table)
        entity_id, key = frame.item(0, "entity_id"), frame.item(0, "chunk_key")
        rows = chunk_rows(frame.drop("chunk_key"), entities[entity_id], inputs, todo[(entity_id, key)])
        return rows.with_columns(chunk_key=pl.lit(key)).to_arrow().cast(CHUNK_ARROW)

    return windows.groupBy("entity_id", "chunk_key").applyInArrow(task, _ddl(CHUNK_ARROW))
