"""The one place that runs import -> detect -> match -> store, each step in one transaction."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from core import jobs, pricing
from core import locations as locations_mod
from core.detect import DetectParams, detect_sessions
from core.errors import InputError, NotFound, unknown_entity, unknown_location
from core.features import CAPTURE, capture_refusal, check_feature_name
from core.importers import ImportOptions, ParsedFile, native, parse_file
from core.importers import readings as readings_mod
from core.importers.rules import REJECT_COLUMNS, reject_frame
from core.schema import READING_VALUE_COLUMNS, READINGS_SCHEMA, conform
from core.store import Store, matches_json_update

COUNTS = (
    "read",
    "stored",
    "duplicate",
    "conflict",
    "rejected",
    "ambiguous",
    "nonexistent",
)  # the counts of an ImportSummary


@dataclass
class ImportSummary:
    name: str
    read: int = 0
    stored: int = 0
    duplicate: int = 0
    conflict: int = 0
    rejected: int = 0
    ambiguous: int = 0
    nonexistent: int = 0
    import_id: str = ""
    rejects: pl.DataFrame = field(default_factory=reject_frame)

    def add(self, other: ImportSummary) -> None:
        """Count `other` in (its rows, not its rejects)."""
        for key in COUNTS:
            setattr(self, key, getattr(self, key) + getattr(other, key))

    def line(self) -> str:
        text = (
            f"{self.name}: read {self.read}, stored {self.stored}, duplicate {self.duplicate}, "
            f"conflict {self.conflict}, rejected {self.rejected}"
        )
        if self.ambiguous or self.nonexistent:
            text += f"; local times: ambiguous {self.ambiguous}, nonexistent {self.nonexistent}"
        return text


Progress = Callable[[float, str], None]  # (share done 0..1, what is happening)


def _quiet(share: float, text: str) -> None:
    return None


def ingest_file(
    store: Store, path: Path, options: ImportOptions, name: str | None = None, progress: Progress | None = None
) -> ImportSummary:
    """Validate one file, then land it whole in one transaction and recompute the touched sessions (one job)."""
    name = name or path.name
    with jobs.recorded(store, "import", name) as outcome:
        summary = _ingest_file(store, path, options, name, progress or _quiet)
        outcome.line = summary.line()
        return summary


def _ingest_file(store: Store, path: Path, options: ImportOptions, name: str, progress: Progress) -> ImportSummary:
    if options.not_after is None:  # the clock is read here, at the edge; a day of slack for clock skew
        options = dataclasses.replace(options, not_after=datetime.now(UTC) + timedelta(days=1))
    if (summary := _ingest_native(store, path, options, name, progress)) is not None:
        return summary
    if readings_mod.streamable(path, options):
        return _ingest_blocks(store, path, options, name, progress)
    progress(0.0, "reading and checking")
    parsed = parse_file(path, options, name)
    if parsed.readings.height == 0 and parsed.sessions.height == 0:
        _no_usable_row(parsed.name, parsed.rejects)
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.glob("**/*.parquet"))
    progress(0.5, f"storing {parsed.readings.height + parsed.sessions.height:,} rows")
    summary = land(store, parsed, size=size, digest=_sha256(path), progress=progress)
    progress(1.0, "done")
    return summary


def _no_usable_row(name: str, rejects: pl.DataFrame) -> None:
    first = rejects.head(3).select(pl.format("row {}: {}", "row", "reason")).to_series().to_list()
    raise InputError(f"{name} has no usable row ({'; '.join(first) or 'no rows'}); fix the file and import it again.")


def _ingest_blocks(store: Store, path: Path, options: ImportOptions, name: str, progress: Progress) -> ImportSummary:
    """A large CSV of readings, read, validated and landed block by block inside one transaction, so memory stays
    bounded by the block size and the import still lands whole or not at all. Row numbers in rejects are the
    file's, as for a file read whole; repeats across blocks count as duplicates or conflicts as within one."""
    import_id = str(uuid.uuid4())
    parts: list[ImportSummary] = []
    touched: set[str] = set()
    size = path.stat().st_size
    rows = 0
    with store.transaction() as tx:
        progress(0.0, "reading and checking")
        typed = not options.mapping  # a mapped file's number columns go by other names: text, then cast
        for table, first_line, position, as_text in readings_mod.csv_blocks(path, name, typed=typed):
            parsed = readings_mod.parse_block(path, name, options, table, first_line, as_text)
            touched.update(parsed.readings.get_column("entity_id").unique().to_list())
            parts.append(_land(tx, parsed, import_id))
            rows += table.height
            del parsed, table
            progress(0.8 * position / size, f"{rows:,} rows read and stored")
        summary = ImportSummary(name=name, import_id=import_id)
        for part in parts:
            summary.add(part)
        summary.rejects = pl.concat([reject_frame(), *(p.rejects for p in parts)], how="vertical_relaxed")
        if summary.read == summary.rejected:
            _no_usable_row(name, summary.rejects)
        progress(0.8, f"{rows:,} rows stored; detecting the sessions of {len(touched):,} entities")
        _finish(tx, store, summary, "readings", size, _sha256(path), sorted(touched), [])
    progress(1.0, "done")
    return summary


def _ingest_native(store: Store, path: Path, options: ImportOptions, name: str, progress: Progress):
    """A canonical CSV or Parquet file read, checked and landed by DuckDB's own readers (core.importers.native);
    None when the file does not qualify or a row fails a check (nothing written: the full checks report it)."""
    try:
        function = native.source(store.cursor(), path, options)
        columns = native.names_of(store.cursor(), function) if function is not None else []
    except duckdb.Error:
        return None
    if function is None:
        return None
    import_id = str(uuid.uuid4())
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.glob("**/*.parquet"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        digest = pool.submit(_sha256, path)  # hashing releases the GIL: it overlaps the reading
        try:
            with store.transaction() as tx:
                progress(0.0, "reading and checking")
                staged = _polled(tx, lambda: native.stage(tx, function, options, columns), progress, 0.0, 0.5,
                                 "reading and checking")  # fmt: skip
                summary = _polled(tx, lambda: _land_staged(tx, staged, name, import_id), progress, 0.5, 0.8,
                                  f"storing {staged.rows:,} rows")  # fmt: skip
                touched = staged.entities.get_column("entity_id").sort().to_list()
                sha = digest.result()
                progress(0.8, f"{summary.stored:,} rows stored; detecting the sessions of {len(touched):,} entities")
                _finish(tx, store, summary, "readings", size, sha, touched, [])
        except native.NeedsFullChecks:
            return None
        finally:
            native.reset(store.cursor())  # after the rollback of a failed stage, when only now it can run
    progress(1.0, "done")
    return summary


def _polled(tx: duckdb.DuckDBPyConnection, work: Callable, progress: Progress, low: float, high: float, text: str):
    """`work()` (statements on tx) in a thread of its own while this thread reports DuckDB's progress of them, from
    `low` to `high`: the furthest share of any statement so far (each statement of `work` counts from 0 again)."""
    shown = low
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(work)
        while True:
            try:
                return future.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                share = low + (high - low) * min(tx.query_progress(), 100.0) / 100.0
                if share > shown:
                    shown = share
                    progress(share, text)


def _land_staged(tx: duckdb.DuckDBPyConnection, staged: native.Staged, name: str, import_id: str) -> ImportSummary:
    """Merge the staged rows into the readings as _merge does: the first of repeated rows in the file and rows
    already stored win; later ones are duplicates when equal, conflicts (listed) when not."""
    table = native.TABLE
    entities = staged.entities
    Store.upsert_entities(tx, entities.select("entity_id", "entity_type", "name", "brand", "identifier"))
    # Equal values: the staged columns compared, and a column the file lacks (no value) must be stored as none.
    in_file = " AND ".join(f"n.{c} IS NOT DISTINCT FROM o.{c}" for c in staged.columns) or "true"
    as_stored = " AND ".join([in_file] + [f"o.{c} IS NULL" for c in READING_VALUE_COLUMNS if c not in staged.columns])
    checked = []  # (temporary table of rowid and sameness) for the rows that do not land
    if staged.repeats:
        tx.execute(
            f"CREATE OR REPLACE TEMP TABLE staged_repeats AS SELECT n.rowid AS rid, ({in_file}) AS same FROM {table} n "
            f"JOIN (SELECT entity_id, ts, min(rowid) AS first FROM {table} GROUP BY entity_id, ts "
            f"HAVING count(*) > 1) k ON n.entity_id = k.entity_id AND n.ts = k.ts AND n.rowid <> k.first "
            f"JOIN {table} o ON o.rowid = k.first"
        )
        checked.append("staged_repeats")
    # Only entities whose stored data may reach this file's first time can hold one of its rows already.
    spans = entities.select("entity_id", "first_ts")  # noqa: F841 (read by DuckDB's replacement scan)
    near = tx.sql(
        "SELECT s.entity_id, s.first_ts FROM spans s JOIN entities e USING (entity_id) "
        "WHERE e.last_seen IS NULL OR e.last_seen >= s.first_ts"
    ).fetchall()
    if near:
        firsts = "AND n.rowid NOT IN (SELECT rid FROM staged_repeats)" if staged.repeats else ""
        tx.execute(
            f"CREATE OR REPLACE TEMP TABLE staged_stored AS SELECT n.rowid AS rid, ({as_stored}) AS same "
            f"FROM {table} n JOIN readings o ON o.entity_id = n.entity_id AND o.ts = n.ts "
            f"WHERE n.entity_id IN (SELECT unnest(?)) AND o.entity_id IN (SELECT unnest(?)) AND o.ts >= ? {firsts}",
            [[e for e, _ in near], [e for e, _ in near], min(t for _, t in near)],
        )
        checked.append("staged_stored")
    skip = " ".join(f"ANTI JOIN {t} ON {t}.rid = n.rowid" for t in checked)
    given = ", ".join(f"n.{c}" for c in ("entity_id", "ts", *staged.columns))
    tx.execute(
        f"INSERT INTO readings (entity_id, ts, {', '.join(staged.columns)}) SELECT {given} FROM {table} n {skip}"
    )
    held = " UNION ALL ".join(f"SELECT rid, same FROM {t}" for t in checked)
    conflicts = (
        tx.sql(
            f"SELECT ? AS file, NULL::BIGINT AS row, 'ts' AS column, n.entity_id || ' ' || strftime(n.ts, "
            f"'%Y-%m-%dT%H:%M:%SZ') AS value, ? AS reason FROM ({held}) h JOIN {table} n ON n.rowid = h.rid "
            f"WHERE NOT h.same ORDER BY h.rid",
            params=[name, f"conflict: a different {_READINGS.what} is already stored; kept the stored one"],
        ).pl()
        if checked
        else reject_frame()
    )
    held_rows = int(tx.execute(f"SELECT count(*) FROM ({held})").fetchall()[0][0]) if checked else 0
    # The latest time of each entity's rows: those that did not land are stored already, so no later than it.
    latest = entities.select(id="entity_id", m="last_ts")  # noqa: F841 (read by DuckDB's replacement scan)
    tx.execute("UPDATE entities SET last_seen = greatest(coalesce(last_seen, m), m) FROM latest WHERE entity_id = id")
    for t in (*checked, table):
        tx.execute(f"DROP TABLE {t}")
    stored = staged.rows - held_rows
    return ImportSummary(
        name=name,
        read=staged.rows,
        stored=stored,
        duplicate=held_rows - conflicts.height,
        conflict=conflicts.height,
        import_id=import_id,
        rejects=conflicts.cast(REJECT_COLUMNS),
    )


def land(store: Store, parsed: ParsedFile, size: int | None = None, digest: str | None = None,
         progress: Progress | None = None) -> ImportSummary:  # fmt: skip
    """Write one validated file in one transaction: readings, import record, rejects, features, sessions."""
    with store.transaction() as tx:
        summary = _land(tx, parsed, str(uuid.uuid4()))
        touched = parsed.readings.get_column("entity_id").unique().sort().to_list()
        if progress is not None:
            progress(0.8, f"{summary.stored:,} rows stored; detecting the sessions of {len(touched):,} entities")
        with_sessions = parsed.sessions.get_column("entity_id").unique().to_list() if parsed.sessions.height else []
        _finish(tx, store, summary, parsed.format, size, digest, touched, with_sessions)
    return summary


def _finish(tx, store: Store, summary: ImportSummary, fmt: str, size, digest, touched: list, with_sessions: list):
    """The import record and its rejects, capture for new entities, then the touched sessions detected again."""
    tx.execute(
        "INSERT INTO imports (import_id, file_name, size_bytes, sha256, format, rows_read, stored, duplicate, "
        "conflict, rejected, ambiguous, nonexistent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            summary.import_id,
            summary.name,
            size,
            digest,
            fmt,
            summary.read,
            summary.stored,
            summary.duplicate,
            summary.conflict,
            summary.rejected,
            summary.ambiguous,
            summary.nonexistent,
        ],
    )
    # Not named `rejects`: DuckDB reads a table of that name before a Python frame, and the table is the target.
    rejected = summary.rejects.with_columns(import_id=pl.lit(summary.import_id))  # noqa: F841
    tx.execute('INSERT INTO rejects SELECT import_id, file, "row", "column", value, reason FROM rejected')
    _enable_compatible(tx, touched)
    _recompute(tx, touched, DetectParams.from_settings(store.settings()))
    if with_sessions:
        _refresh(tx, with_sessions, store.settings())


@dataclass(frozen=True)
class _Merge:
    """How rows of one kind merge into their table: unique key, compared values, conflict wording."""

    table: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    what: str


_READINGS = _Merge("readings", ("entity_id", "ts"), tuple(READING_VALUE_COLUMNS), "reading for this entity and time")
_SESSIONS = _Merge(
    "sessions", ("session_id",), ("entity_id", "end_utc", "energy_kwh", "soc_start_pct", "soc_end_pct"),
    "session with this entity and start",
)  # fmt: skip


def _merge(tx: duckdb.DuckDBPyConnection, incoming: pl.DataFrame, how: _Merge, file: str):
    """Split rows into new, duplicate (same as stored or earlier in the file) and conflict (different)."""
    incoming = incoming.with_row_index("__order")
    is_first = incoming.select(pl.struct(*how.key).is_first_distinct()).to_series()
    first, repeats = incoming.filter(is_first), incoming.filter(~is_first)
    same = " AND ".join(f"n.{c} IS NOT DISTINCT FROM o.{c}" for c in how.values)
    on = " AND ".join(f"o.{c} = n.{c}" for c in how.key)
    staged = first.select("__order", *how.key, *how.values)  # noqa: F841 (read by DuckDB's replacement scan)
    existing = tx.sql(f"SELECT n.__order, ({same}) AS same FROM staged n JOIN {how.table} o ON {on}").pl()
    earlier = first.select(*how.key, *[pl.col(c).alias(f"{c}__first") for c in how.values])
    in_file = repeats.join(earlier, on=list(how.key)).select(
        "__order", pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}__first")) for c in how.values]).alias("same")
    )
    new = first.join(existing.select("__order"), on="__order", how="anti") if existing.height else first
    new = new.drop("__order")
    conflict_orders = pl.concat([existing, in_file.cast({"same": pl.Boolean})]).filter(~pl.col("same"))
    conflicts = incoming.join(conflict_orders.select("__order"), on="__order").select(
        pl.lit(file).alias("file"),
        pl.lit(None, pl.Int64).alias("row"),
        pl.lit(how.key[-1] if how.table == "readings" else "start").alias("column"),
        pl.format("{} {}", "entity_id", pl.col("ts" if how.table == "readings" else "start_utc").dt.strftime(
            "%Y-%m-%dT%H:%M:%SZ")).alias("value"),
        pl.lit(f"conflict: a different {how.what} is already stored; kept the stored one").alias("reason"),
    )  # fmt: skip
    duplicate = incoming.height - new.height - conflicts.height
    return new, duplicate, conflicts


def _land(tx: duckdb.DuckDBPyConnection, parsed: ParsedFile, import_id: str) -> ImportSummary:
    Store.upsert_entities(tx, parsed.entities)
    readings, dup_r, conflicts_r = _merge(tx, parsed.readings, _READINGS, parsed.name)
    new = conform(readings, READINGS_SCHEMA)  # noqa: F841
    tx.execute(f"INSERT INTO readings ({', '.join(READINGS_SCHEMA.names())}) SELECT * FROM new")
    sessions, dup_s, conflicts_s = _merge(tx, parsed.sessions, _SESSIONS, parsed.name)
    Store.insert_sessions(tx, _with_bands(sessions).with_columns(import_id=pl.lit(import_id)))
    tx.execute(
        "UPDATE entities SET last_seen = greatest(coalesce(last_seen, m), m) FROM (SELECT entity_id AS id, max(ts) "
        "AS m FROM (SELECT entity_id, ts FROM new UNION ALL SELECT entity_id, end_utc FROM sessions "
        "WHERE import_id = ?) GROUP BY entity_id) WHERE entity_id = id",
        [import_id],
    )
    rejected = parsed.rejects.get_column("row").n_unique()
    stored = readings.height + sessions.height
    conflict = conflicts_r.height + conflicts_s.height
    duplicate = dup_r + dup_s
    return ImportSummary(
        name=parsed.name,
        read=stored + duplicate + conflict + rejected,
        stored=stored,
        duplicate=duplicate,
        conflict=conflict,
        rejected=rejected,
        ambiguous=parsed.ambiguous,
        nonexistent=parsed.nonexistent,
        import_id=import_id,
        rejects=pl.concat([parsed.rejects, conflicts_r, conflicts_s]),
    )


def _with_bands(sessions: pl.DataFrame) -> pl.DataFrame:
    # Until tariffs price sessions, all energy counts in band t1 (API.md: with no bands, t1 = total).
    return sessions.with_columns(
        energy_t1_kwh=pl.col("energy_kwh"), energy_t2_kwh=0.0, energy_t3_kwh=0.0, energy_t4_kwh=0.0
    )


def _enable_compatible(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str]) -> None:
    """At import, an entity without a feature row gets capture switched on when its data allows it."""
    if not entity_ids:
        return
    rows = tx.sql(
        "SELECT e.entity_id, e.entity_type, e.battery_capacity_kwh, count(r.power_kw) > 0, count(r.energy_kwh) > 0, "
        "count(r.soc_pct) > 0 FROM entities e LEFT JOIN readings r USING (entity_id) "
        "WHERE e.entity_id IN (SELECT unnest(?)) AND e.entity_id NOT IN "
        "(SELECT entity_id FROM features WHERE feature = ?) GROUP BY ALL",
        params=[list(entity_ids), CAPTURE],
    ).fetchall()
    for entity_id, entity_type, capacity, has_power, has_meter, has_soc in rows:
        refusal = capture_refusal(
            entity_id, entity_type, has_power=has_power, has_meter=has_meter, has_soc=has_soc, capacity_kwh=capacity
        )
        tx.execute("INSERT INTO features VALUES (?, ?, ?)", [entity_id, CAPTURE, refusal is None])


# Readings held in memory at once while recomputing (whole entities per batch). After a 10-million-row import
# the peak RSS was 2.2 GB with 2 M, 1.8 GB with 1 M and 1.5 GB with 500 000, for 0.25 s and 0.5 s more detection.
DETECT_BATCH_ROWS = 1_000_000


def _recompute(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str], params: DetectParams) -> int:
    """Replace the detected sessions of these entities (only those with capture on get any) and re-match them.

    Entities are taken in batches of about DETECT_BATCH_ROWS readings (an entity is never split), so memory stays
    bounded however many readings the entities have.
    """
    detected = 0
    for batch, sessions in _detected_batches(tx, entity_ids, params):
        Store.replace_detected_sessions(tx, batch, _with_bands(sessions))
        _rematch(tx, batch)
        pricing.reprice(tx, batch, params.max_gap_min)
        detected += sessions.height
    return detected


def _detected_batches(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str], params: DetectParams):
    """(entities, their detected sessions) per batch of about DETECT_BATCH_ROWS readings; nothing is written."""
    if not entity_ids:
        return
    enabled = dict(
        tx.execute(
            "SELECT f.entity_id, e.battery_capacity_kwh FROM features f JOIN entities e USING (entity_id) "
            "WHERE f.feature = ? AND f.enabled AND f.entity_id IN (SELECT unnest(?))",
            [CAPTURE, list(entity_ids)],
        ).fetchall()
    )
    counts = dict(
        tx.execute(
            "SELECT entity_id, count(*) FROM readings WHERE entity_id IN (SELECT unnest(?)) GROUP BY entity_id",
            [list(enabled)],
        ).fetchall()
    )
    cols = ", ".join(READINGS_SCHEMA.names())
    for batch in _batches(sorted(set(entity_ids)), counts, DETECT_BATCH_ROWS):
        chosen = [e for e in batch if e in enabled]
        readings = tx.sql(
            f"SELECT {cols} FROM readings WHERE entity_id IN (SELECT unnest(?)) ORDER BY entity_id, ts",
            params=[chosen],
        ).pl()
        capacities = {k: enabled[k] for k in chosen if enabled[k]}
        sessions = detect_sessions(conform(readings, READINGS_SCHEMA), params, capacities)
        del readings
        yield batch, sessions


DIFF_SCHEMA = {
    "entity_id": pl.String,
    "sessions_now": pl.UInt32,
    "sessions_then": pl.UInt32,
    "kept": pl.UInt32,
    "new": pl.UInt32,
    "gone": pl.UInt32,
    "energy_now_kwh": pl.Float64,
    "energy_then_kwh": pl.Float64,
    "energy_change_kwh": pl.Float64,
}


def detection_diff(now: pl.DataFrame, then: pl.DataFrame) -> pl.DataFrame:
    """Per entity, detected sessions as stored (`now`) against another run (`then`): counts, energy, and how many
    sessions keep their id (same entity and start), are new, or are gone. Inputs: entity_id, session_id, energy_kwh."""

    def per_entity(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return frame.group_by("entity_id").agg(
            pl.len().alias(f"sessions_{suffix}"), pl.col("energy_kwh").sum().alias(f"energy_{suffix}_kwh")
        )

    ids_now, ids_then = now.select("entity_id", "session_id"), then.select("entity_id", "session_id")
    kept = ids_now.join(ids_then, on=["entity_id", "session_id"]).group_by("entity_id").agg(kept=pl.len())
    new = ids_then.join(ids_now, on=["entity_id", "session_id"], how="anti").group_by("entity_id").agg(new=pl.len())
    gone = ids_now.join(ids_then, on=["entity_id", "session_id"], how="anti").group_by("entity_id").agg(gone=pl.len())
    entities = pl.concat([now.select("entity_id"), then.select("entity_id")]).unique()
    frame = entities
    for part in (per_entity(now, "now"), per_entity(then, "then"), kept, new, gone):
        frame = frame.join(part, on="entity_id", how="left")
    return (
        frame.with_columns(pl.exclude("entity_id").fill_null(0))
        .with_columns(energy_change_kwh=pl.col("energy_then_kwh") - pl.col("energy_now_kwh"))
        .select(list(DIFF_SCHEMA))
        .cast(DIFF_SCHEMA)
        .sort("entity_id")
    )


def preview_detection(store: Store, params: DetectParams, entity_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """What detection with these parameters would change, per entity (detection_diff); nothing is written."""
    with store.transaction() as tx:
        ids = list(entity_ids or [r[0] for r in tx.execute("SELECT entity_id FROM entities").fetchall()])
        now = tx.sql(
            "SELECT entity_id, session_id, energy_kwh FROM sessions WHERE source = 'detected' "
            "AND entity_id IN (SELECT unnest(?))",
            params=[ids],
        ).pl()
        then = [s.select("entity_id", "session_id", "energy_kwh") for _, s in _detected_batches(tx, ids, params)]
    schema = {"entity_id": pl.String, "session_id": pl.String, "energy_kwh": pl.Float64}
    return detection_diff(now.cast(schema), pl.concat([pl.DataFrame(schema=schema), *then]).cast(schema))


def _batches(entity_ids: Sequence[str], counts: dict[str, int], limit: int) -> list[list[str]]:
    """Consecutive groups of entities holding at most `limit` readings each (or one entity that has more)."""
    batches: list[list[str]] = [[]]
    held = 0
    for entity_id in entity_ids:
        rows = counts.get(entity_id, 0)
        if batches[-1] and held + rows > limit:
            batches.append([])
            held = 0
        batches[-1].append(entity_id)
        held += rows
    return batches


def _refresh(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str] | None, settings) -> None:
    """After places change: match sessions to locations again, then price them again (tariffs follow labels)."""
    _rematch(tx, entity_ids)
    pricing.reprice(tx, entity_ids, settings.max_gap_min)


def _rematch(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str] | None = None) -> None:
    scope = "WHERE entity_id IN (SELECT unnest(?))" if entity_ids is not None else ""
    params = [list(entity_ids)] if entity_ids is not None else []
    sessions = tx.sql(
        f"SELECT s.session_id, s.entity_id, coalesce(s.latitude, e.latitude) AS latitude, "
        f"coalesce(s.longitude, e.longitude) AS longitude FROM sessions s JOIN entities e USING (entity_id) {scope}",
        params=params or None,
    ).pl()
    locations = tx.sql("SELECT location_id, entity_id, label, latitude, longitude, radius_m FROM locations").pl()
    matches = locations_mod.match_sessions(sessions, locations)  # noqa: F841
    tx.execute(f"DELETE FROM session_locations WHERE session_id IN (SELECT session_id FROM sessions {scope})", params)
    tx.execute("INSERT INTO session_locations SELECT session_id, location_id, accuracy FROM matches")
    tx.execute(matches_json_update("WHERE s.entity_id IN (SELECT unnest(?))" if entity_ids is not None else ""), params)


DETECTION_OPTIONS = ("min_power_kw", "max_pause_min", "max_gap_min", "min_energy_kwh", "soc_min_rise_pct")


def detection_overrides(store: Store, given: dict[str, float | None]) -> dict[str, float]:
    """The detection options given for one run (None: the setting), checked like `settings set` (600.0 minutes is
    600: an option typed as a number may read either way)."""
    unknown = sorted(set(given) - set(DETECTION_OPTIONS))
    if unknown:
        raise InputError(f"Unknown detection option {unknown[0]}; use {', '.join(DETECTION_OPTIONS)}.")
    return {k: store.check_setting(k, f"{v:g}") for k, v in given.items() if v is not None}


def detect_with(store: Store, overrides: dict[str, float], entity_ids: Sequence[str] = (), save: bool = False) -> int:
    """`sessions detect`: recompute with the settings and these checked overrides; `save` keeps them as settings."""
    params = DetectParams.from_settings(store.settings(), **overrides)
    return detect(store, params, list(entity_ids) or None, keep=overrides if save else None)


def detect(
    store: Store,
    params: DetectParams,
    entity_ids: Sequence[str] | None = None,
    keep: Mapping[str, object] | None = None,
) -> int:
    """Recompute detected sessions (all entities, or these) with these parameters; returns the session count.

    `keep`: checked settings stored in the same transaction, so the sessions and the settings that made them land
    together or not at all."""
    subject = f"{len(entity_ids)} entities" if entity_ids else "all entities"
    with jobs.recorded(store, "detect", subject) as outcome, store.transaction() as tx:
        for key, value in (keep or {}).items():
            Store.write_setting(tx, key, value)
        ids = entity_ids or [r[0] for r in tx.execute("SELECT entity_id FROM entities").fetchall()]
        count = _recompute(tx, ids, params)
        outcome.line = f"{count:,} sessions"
        return count


def set_feature(store: Store, entity_id: str, feature: str, enabled: bool) -> list[dict]:
    """Switch a feature; activation runs the compatibility check. Returns the entity's features afterwards."""
    check_feature_name(feature)
    entity = store.entity(entity_id)
    if entity is None:
        raise unknown_entity(entity_id)
    if enabled:
        profile = store.data_profile([entity_id])
        row = (
            profile.row(0, named=True) if profile.height else {"has_power": False, "has_meter": False, "has_soc": False}
        )
        refusal = capture_refusal(
            entity_id,
            entity["entity_type"],
            has_power=row["has_power"],
            has_meter=row["has_meter"],
            has_soc=row["has_soc"],
            capacity_kwh=entity["battery_capacity_kwh"],
        )
        if refusal:
            raise refusal
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO features VALUES (?, ?, ?) ON CONFLICT (entity_id, feature) DO UPDATE SET enabled = "
            "excluded.enabled",
            [entity_id, feature, enabled],
        )
        if enabled != bool(entity["capture_sessions"]):
            _recompute(tx, [entity_id], DetectParams.from_settings(store.settings()))
    return [{"feature": feature, "enabled": enabled}]


def add_location(
    store: Store, label: str, latitude: float, longitude: float, radius_m: float = 150, entity_id: str | None = None
) -> str:
    location = locations_mod.validate_location(label, latitude, longitude, radius_m)
    if entity_id is not None and store.entity(entity_id) is None:
        raise unknown_entity(entity_id)
    location_id = str(uuid.uuid4())
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO locations (location_id, entity_id, label, latitude, longitude, radius_m) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                location_id,
                entity_id,
                location["label"],
                location["latitude"],
                location["longitude"],
                location["radius_m"],
            ],
        )
        _refresh(tx, None, store.settings())
    return location_id


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(path.glob("**/*.parquet"))
    for file in files:
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def load_demo(store: Store, seed: int = 1) -> ImportSummary:
    """Load the demo fleet through the same landing path as a file, with its locations, tariff and settings."""
    from core import demo

    fleet = demo.generate(seed)
    parsed = ParsedFile(
        name=f"demo fleet (seed {seed})",
        format="demo",
        rows_read=fleet.readings.height,
        readings=fleet.readings,
        entities=fleet.entities,
    )
    with store.transaction() as tx:
        Store.upsert_entities(tx, fleet.entities)
        for loc in fleet.locations:
            exists = tx.execute(
                "SELECT count(*) FROM locations WHERE label = ? AND entity_id IS NOT DISTINCT FROM ?",
                [loc["label"], loc["entity_id"]],
            ).fetchall()[0][0]
            if not exists:
                tx.execute(
                    "INSERT INTO locations (location_id, entity_id, label, latitude, longitude, radius_m) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        str(uuid.uuid4()),
                        loc["entity_id"],
                        loc["label"],
                        loc["latitude"],
                        loc["longitude"],
                        loc["radius_m"],
                    ],
                )
        tariff = fleet.tariff
        tx.execute(
            "INSERT INTO tariffs (name, body) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [tariff["name"], json.dumps(tariff)],
        )
        tx.execute("INSERT INTO tariff_assignments VALUES (?, 'default', '') ON CONFLICT DO NOTHING", [tariff["name"]])
        tx.execute(
            "INSERT INTO settings VALUES ('display_timezone', ?) ON CONFLICT DO NOTHING", [fleet.display_timezone]
        )
    with jobs.recorded(store, "import", parsed.name) as outcome:
        summary = land(store, parsed)
        outcome.line = summary.line()
        return summary


def check_capacity(kwh: float) -> None:
    if not (isinstance(kwh, int | float) and 0 < kwh <= 300):
        raise InputError(f"Battery capacity must be more than 0 and at most 300 kWh, not {kwh}.")


def set_capacity(store: Store, entity_id: str, kwh: float) -> float:
    """Set an EV's battery capacity (0 < kWh <= 300) and recompute its sessions."""
    check_capacity(kwh)
    entity = store.entity(entity_id)
    if entity is None:
        raise unknown_entity(entity_id)
    if entity["entity_type"] != "EV":
        raise InputError(f"Battery capacity is for EVs only; '{entity_id}' is a {entity['entity_type']}.")
    with store.transaction() as tx:
        tx.execute("UPDATE entities SET battery_capacity_kwh = ? WHERE entity_id = ?", [float(kwh), entity_id])
        _recompute(tx, [entity_id], DetectParams.from_settings(store.settings()))
    return float(kwh)


def update_location(store: Store, location_id: str, **changes) -> dict:
    """Change a location's label, position or radius, then re-match every session."""
    rows = store.frame("SELECT * FROM locations WHERE location_id = ?", [location_id])
    if rows.height == 0:
        raise unknown_location(location_id)
    location = locations_mod.merged_location(rows.row(0, named=True), changes)
    with store.transaction() as tx:
        tx.execute(
            "UPDATE locations SET label = ?, latitude = ?, longitude = ?, radius_m = ? WHERE location_id = ?",
            [location["label"], location["latitude"], location["longitude"], location["radius_m"], location_id],
        )
        _refresh(tx, None, store.settings())
    return {"location_id": location_id, **location}


def delete_location(store: Store, location_id: str) -> None:
    if not store.scalar("SELECT count(*) FROM locations WHERE location_id = ?", [location_id]):
        raise unknown_location(location_id)
    with store.transaction() as tx:
        tx.execute("DELETE FROM session_locations WHERE location_id = ?", [location_id])
        tx.execute("DELETE FROM locations WHERE location_id = ?", [location_id])
        _refresh(tx, None, store.settings())


def suggestions(store: Store) -> pl.DataFrame:
    """Places proposed from the positions of sessions that match no location (numbered, best first)."""
    unmatched = store.frame(
        "SELECT s.session_id, s.entity_id, s.start_utc, s.energy_kwh, coalesce(s.latitude, e.latitude) AS latitude, "
        "coalesce(s.longitude, e.longitude) AS longitude FROM sessions s JOIN entities e USING (entity_id) "
        "WHERE NOT EXISTS (SELECT 1 FROM session_locations m WHERE m.session_id = s.session_id)"
    )
    return locations_mod.suggest_places(unmatched, store.settings().display_timezone)


def suggestion_records(store: Store) -> list[dict]:
    """The suggestions as `locations suggest` and the API show them.

    Centres are rounded to 3 decimals (about 100 m) until accepted: they are session positions.
    """
    rows = suggestions(store).with_columns(
        pl.col("latitude").round(3), pl.col("longitude").round(3), pl.col("radius_m").round(0)
    )
    return [{"number": r["number"], "label": r["label"], "latitude": r["latitude"], "longitude": r["longitude"],
             "radius": r["radius_m"], "sessions": r["sessions"], "energyKwh": r["energy_kwh"],
             "entityId": r["entity_id"]} for r in rows.to_dicts()]  # fmt: skip


def accept_suggestion(store: Store, number: int, label: str | None = None) -> str:
    """Create the location of suggestion `number` (as `locations suggest` numbers them)."""
    proposals = suggestions(store)
    chosen = proposals.filter(pl.col("number") == number)
    if chosen.height == 0:
        raise NotFound(
            f"There is no suggestion {number}; list them with `locations suggest` (1 to {proposals.height})."
        )
    place = chosen.row(0, named=True)
    name = label or place["label"].rstrip("?")
    return add_location(store, name, place["latitude"], place["longitude"], place["radius_m"], place["entity_id"])
