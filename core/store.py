"""DuckDB store: the connection owner, versioned migrations, transactions and queries as data."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from core.errors import DatabaseBusy, DatabaseError, InputError
from core.schema import ENTITIES_SCHEMA, READINGS_SCHEMA, SESSIONS_SCHEMA, conform
from core.settings import SettingError, Settings, parse_setting, sidecar


def matches_json_update(scope: str = "") -> str:
    """The statement that keeps `sessions.matches_json` equal to the session's rows of `session_locations`.

    For the sessions `scope` selects (a WHERE clause over `s`; empty: all): the matches best first, as the JSON text
    of a list of {accuracy, id, label}, NULL when none. Only rows whose text changes are written, so a location
    edit rewrites the sessions near it, not all of them.
    """
    return (
        "UPDATE sessions SET matches_json = m.matches FROM (SELECT s.session_id, (SELECT to_json(list("
        "{'accuracy': sl.accuracy, 'id': l.location_id, 'label': l.label} ORDER BY sl.accuracy DESC, l.label, "
        "l.location_id))::VARCHAR FROM session_locations sl JOIN locations l USING (location_id) "
        f"WHERE sl.session_id = s.session_id) AS matches FROM sessions s {scope}) m "
        "WHERE sessions.session_id = m.session_id AND sessions.matches_json IS DISTINCT FROM m.matches"
    )


# The best match of a session (its first), read from its copy of the matches: no join, no window over every match.
BEST_LABEL = "json_extract_string(s.matches_json, '$[0].label')"
BEST_ACCURACY = "CAST(json_extract(s.matches_json, '$[0].accuracy') AS DOUBLE)"


# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
# Readings have no PRIMARY KEY on purpose: the index made imports six times slower, and the one writer keeps
# (entity_id, ts) unique itself (pipeline._merge anti-joins every import against the stored readings).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE entities (
            entity_id VARCHAR PRIMARY KEY, entity_type VARCHAR NOT NULL, name VARCHAR, brand VARCHAR,
            identifier VARCHAR, battery_capacity_kwh DOUBLE, latitude DOUBLE, longitude DOUBLE,
            created TIMESTAMPTZ NOT NULL DEFAULT now(), last_seen TIMESTAMPTZ)""",
        """CREATE TABLE features (
            entity_id VARCHAR NOT NULL, feature VARCHAR NOT NULL, enabled BOOLEAN NOT NULL,
            PRIMARY KEY (entity_id, feature))""",
        """CREATE TABLE readings (
            entity_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, power_kw DOUBLE, energy_kwh DOUBLE,
            energy_added_kwh DOUBLE, soc_pct DOUBLE, range_km DOUBLE, odometer_km DOUBLE, latitude DOUBLE,
            longitude DOUBLE, is_charging BOOLEAN, is_plugged_in BOOLEAN)""",
        """CREATE TABLE sessions (
            session_id VARCHAR PRIMARY KEY, entity_id VARCHAR NOT NULL, start_utc TIMESTAMPTZ NOT NULL,
            end_utc TIMESTAMPTZ NOT NULL, plug_in_utc TIMESTAMPTZ, plug_out_utc TIMESTAMPTZ, energy_kwh DOUBLE,
            average_power_kw DOUBLE, max_power_kw DOUBLE, soc_start_pct DOUBLE, soc_end_pct DOUBLE,
            range_start_km DOUBLE, range_end_km DOUBLE, latitude DOUBLE, longitude DOUBLE, method VARCHAR NOT NULL,
            source VARCHAR NOT NULL, flags VARCHAR, start_reason VARCHAR, end_reason VARCHAR,
            energy_t1_kwh DOUBLE, energy_t2_kwh DOUBLE, energy_t3_kwh DOUBLE, energy_t4_kwh DOUBLE,
            cost_energy DOUBLE, cost_time DOUBLE, cost_idle DOUBLE, cost_flat DOUBLE, cost_tax DOUBLE,
            cost_total DOUBLE, currency VARCHAR, import_id VARCHAR, created TIMESTAMPTZ NOT NULL DEFAULT now())""",
        "CREATE INDEX sessions_entity_start ON sessions (entity_id, start_utc)",
        """CREATE TABLE locations (
            location_id VARCHAR PRIMARY KEY, entity_id VARCHAR, label VARCHAR NOT NULL, latitude DOUBLE NOT NULL,
            longitude DOUBLE NOT NULL, radius_m DOUBLE NOT NULL, created TIMESTAMPTZ NOT NULL DEFAULT now())""",
        """CREATE TABLE session_locations (
            session_id VARCHAR NOT NULL, location_id VARCHAR NOT NULL, accuracy DOUBLE NOT NULL,
            PRIMARY KEY (session_id, location_id))""",
        """CREATE TABLE tariffs (
            name VARCHAR PRIMARY KEY, body JSON NOT NULL, created TIMESTAMPTZ NOT NULL DEFAULT now())""",
        """CREATE TABLE tariff_assignments (
            tariff VARCHAR NOT NULL, scope VARCHAR NOT NULL, target VARCHAR NOT NULL,
            PRIMARY KEY (tariff, scope, target))""",
        """CREATE TABLE imports (
            import_id VARCHAR PRIMARY KEY, file_name VARCHAR NOT NULL, size_bytes BIGINT, sha256 VARCHAR,
            format VARCHAR, rows_read BIGINT, stored BIGINT, duplicate BIGINT, conflict BIGINT, rejected BIGINT,
            ambiguous BIGINT, nonexistent BIGINT, imported TIMESTAMPTZ NOT NULL DEFAULT now())""",
        """CREATE TABLE rejects (
            import_id VARCHAR NOT NULL, file VARCHAR, "row" BIGINT, "column" VARCHAR, value VARCHAR,
            reason VARCHAR NOT NULL)""",
        "CREATE TABLE settings (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    ),
    (
        """CREATE TABLE prices (
            tariff VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, price_per_kwh DOUBLE NOT NULL,
            PRIMARY KEY (tariff, ts))""",
    ),
    (
        # Remote pulls (core.remote): per entity, the last reading pulled, so `remote pull --since-last` resumes.
        """CREATE TABLE remote_pulls (
            entity_id VARCHAR PRIMARY KEY, first_start TIMESTAMPTZ NOT NULL, last_ts TIMESTAMPTZ,
            pulled TIMESTAMPTZ NOT NULL, error VARCHAR)""",
        # The windows whose platform sessions were pulled: reconciliation compares sessions inside them only.
        """CREATE TABLE remote_session_windows (
            entity_id VARCHAR NOT NULL, start_utc TIMESTAMPTZ NOT NULL, end_utc TIMESTAMPTZ NOT NULL,
            pulled TIMESTAMPTZ NOT NULL)""",
    ),
    (
        # Long work (core.jobs.recorded): running, then done or failed; interrupted when its process died.
        """CREATE TABLE jobs (
            job_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, subject VARCHAR NOT NULL, state VARCHAR NOT NULL,
            outcome VARCHAR, started TIMESTAMPTZ NOT NULL, finished TIMESTAMPTZ)""",
    ),
    (
        # The API's page of sessions looks up the matches of its 25 sessions: the primary key's index over
        # (session_id, location_id) is not used for that, this one is (a scan of every match otherwise).
        "CREATE INDEX session_locations_session ON session_locations (session_id)",
    ),
    (
        # Each session's location matches on its own row (kept by pipeline._rematch), so that a page of the API's
        # sessions is one read: the second statement for its matches cost a third of the page's CPU. JSON text,
        # not a LIST of STRUCTs: DuckDB rewrites a nested column on UPDATE, 15 to 50 times slower.
        "ALTER TABLE sessions ADD COLUMN matches_json VARCHAR",
        matches_json_update(),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
INTERRUPTED = "Stopped when its process ended (killed or crashed); nothing of it was kept. Run it again."

STORED_SESSION_COLUMNS = (
    *SESSIONS_SCHEMA.names(),
    "energy_t1_kwh",
    "energy_t2_kwh",
    "energy_t3_kwh",
    "energy_t4_kwh",
    "cost_energy",
    "cost_time",
    "cost_idle",
    "cost_flat",
    "cost_tax",
    "cost_total",
    "currency",
    "import_id",
)
_LOCK_PID = re.compile(r"PID (\d+)")


def server_file(db_path: Path) -> Path:
    return sidecar(db_path, "server.json")


def running_server(db_path: Path) -> dict | None:
    """The server that announced itself for this database, if its process still lives."""
    path = server_file(db_path)
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None  # stale file of a server that died
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def busy_message(db_path: Path, error_text: str = "") -> str:
    info = running_server(db_path)
    if info:
        return (
            f"The database {db_path.name} is held by the ChargeLens server at {info.get('url')} (pid {info['pid']}); "
            "use that server, or stop it (Ctrl+C in its terminal) and run this command again."
        )
    match = _LOCK_PID.search(error_text)
    holder = f"another process (pid {match.group(1)})" if match else "another process"
    return (
        f"The database {db_path} is in use by {holder}; close that program and try again, "
        "or point --db at another database file."
    )


@dataclass(frozen=True)
class Query:
    """SQL with its bound parameters: filters become data, never string formatting of values."""

    sql: str
    params: tuple = ()


class Store:
    """Owns one DuckDB connection per database file in this process; each thread gets its own cursor."""

    _open: dict[Path, Store] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection):
        self.path = path
        self._con = connection
        self._local = threading.local()

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> Store:
        """The process-wide store of this file, opened read-write and migrated on first use."""
        if isinstance(path, Path) and (store := cls._open.get(path)) is not None:
            return store  # already the resolved name of an open store: the API asks on every request
        path = Path(path).resolve()
        with cls._open_lock:
            store = cls._open.get(path)
            if store is None:
                store = cls(path, _connect(path))
                store._migrate()
                store._interrupt_stale_jobs()
                cls._open[path] = store
            return store

    @classmethod
    def close_all(cls) -> None:
        with cls._open_lock:
            for store in cls._open.values():
                with contextlib.suppress(duckdb.Error):
                    store._con.close()
            cls._open.clear()

    def close(self) -> None:
        with self._open_lock:
            self._open.pop(self.path, None)
        with contextlib.suppress(duckdb.Error):
            self._con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (DuckDB 2 refuses one connection shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            # Progress of long statements for the import's progress bar (pipeline._polled), never printed.
            cur.execute("SET enable_progress_bar = true")
            cur.execute("SET enable_progress_bar_print = false")
            self._local.cursor = cur
        return cur

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on this thread's cursor: it lands whole or not at all."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
                cur.execute("ROLLBACK")
            if (storage := storage_error(self.path, exc)) is not None:
                raise storage from None
            raise

    # -- migrations --------------------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self.scalar("SELECT max(version) FROM schema_version") or 0)

    def _migrate(self) -> None:
        cur = self.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ)")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise DatabaseError(
                f"The database {self.path.name} was written by a newer ChargeLens (schema {current}, this version "
                f"knows {SCHEMA_VERSION}); upgrade ChargeLens or open another database with --db.",
                title="DatabaseTooNew",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with self.transaction() as tx:
                for statement in MIGRATIONS[version - 1]:
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version VALUES (?, now())", [version])

    def _interrupt_stale_jobs(self) -> None:
        """Jobs still running in the file belong to a process that died: only one process opens the file."""
        if not self.scalar("SELECT count(*) FROM jobs WHERE state = 'running'"):
            return  # nothing to write (a read-only folder still opens)
        try:
            self.cursor().execute(
                "UPDATE jobs SET state = 'interrupted', outcome = ?, finished = now() WHERE state = 'running'",
                [INTERRUPTED],
            )
        except duckdb.Error as exc:
            # A full disk (the job that died may have filled it) or a read-only folder: the file still opens for
            # reading, and a later start that can write marks them.
            if storage_error(self.path, exc) is None:
                raise

    # -- generic reads -----------------------------------------------------------------------------
    def frame(self, query: Query | str, params: Sequence = ()) -> pl.DataFrame:
        if isinstance(query, Query):
            query, params = query.sql, query.params
        return self.cursor().sql(query, params=list(params) or None).pl()

    def scalar(self, sql: str, params: Sequence = ()):
        # fetchall, not fetchone: DuckDB 2 refuses further work on a cursor with an unfinished result
        rows = self.cursor().execute(sql, list(params)).fetchall()
        return rows[0][0] if rows else None

    def is_empty(self) -> bool:
        return not self.scalar("SELECT count(*) FROM entities")

    # -- settings ----------------------------------------------------------------------------------
    def stored_settings(self) -> dict[str, str]:
        return dict(self.cursor().execute("SELECT key, value FROM settings").fetchall())

    def settings(self) -> Settings:
        return Settings.from_sources(self.stored_settings())

    def change_setting(self, key: str, text: str) -> object:
        """A setting typed by a person (CLI or page): checked against its rule, stored, and returned as parsed."""
        value = self.check_setting(key, text)
        self.set_setting(key, value)
        return value

    @staticmethod
    def check_setting(key: str, text: str) -> object:
        """The value a setting would take from this text, or InputError saying what is allowed."""
        try:
            return parse_setting(key, text)
        except SettingError as exc:
            raise InputError(str(exc)) from None

    def set_setting(self, key: str, value: object) -> None:
        self.write_setting(self.cursor(), key, value)

    @staticmethod
    def write_setting(cur: duckdb.DuckDBPyConnection, key: str, value: object) -> None:
        """Store one checked setting on this cursor (inside the caller's transaction, if it holds one)."""
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cur.execute(
            "INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, text]
        )

    # -- entities and features ---------------------------------------------------------------------
    def entities(self) -> pl.DataFrame:
        return self.frame(
            "SELECT e.*, coalesce(f.enabled, false) AS capture_sessions FROM entities e "
            "LEFT JOIN features f ON f.entity_id = e.entity_id AND f.feature = 'CaptureChargeSessions' "
            "ORDER BY e.entity_id"
        )

    def entity(self, entity_id: str) -> dict | None:
        rows = self.frame(
            "SELECT e.*, coalesce(f.enabled, false) AS capture_sessions FROM entities e "
            "LEFT JOIN features f ON f.entity_id = e.entity_id AND f.feature = 'CaptureChargeSessions' "
            "WHERE e.entity_id = ?",
            [entity_id],
        )
        return rows.row(0, named=True) if rows.height else None

    def data_profile(self, entity_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Per entity: which kinds of evidence its readings hold (for the feature compatibility check)."""
        where, params = ("WHERE entity_id IN (SELECT unnest(?))", [list(entity_ids)]) if entity_ids else ("", [])
        return self.frame(
            "SELECT entity_id, count(power_kw) > 0 AS has_power, count(energy_kwh) > 0 AS has_meter, "
            "count(soc_pct) > 0 AS has_soc, count(*) AS readings, min(ts) AS first_ts, max(ts) AS last_ts "
            f"FROM readings {where} GROUP BY entity_id ORDER BY entity_id",
            params,
        )

    def enabled_entities(self) -> list[str]:
        rows = self.cursor().execute(
            "SELECT entity_id FROM features WHERE feature = 'CaptureChargeSessions' AND enabled ORDER BY entity_id"
        )
        return [r[0] for r in rows.fetchall()]

    def readings(self, entity_ids: Sequence[str], start=None, end=None) -> pl.DataFrame:
        clauses, params = ["entity_id IN (SELECT unnest(?))"], [list(entity_ids)]
        if start is not None:
            clauses.append("ts >= ?")
            params.append(start)
        if end is not None:
            clauses.append("ts < ?")
            params.append(end)
        cols = ", ".join(READINGS_SCHEMA.names())
        df = self.frame(f"SELECT {cols} FROM readings WHERE {' AND '.join(clauses)} ORDER BY entity_id, ts", params)
        return conform(df, READINGS_SCHEMA)

    def locations(self) -> pl.DataFrame:
        return self.frame("SELECT * FROM locations ORDER BY label, location_id")

    # -- writes inside a transaction (tx = the cursor of Store.transaction) -------------------------
    @staticmethod
    def upsert_entities(tx: duckdb.DuckDBPyConnection, entities: pl.DataFrame) -> None:
        """New entities are added; known ones keep their attributes except empty ones, which get filled."""
        frame = conform(entities, ENTITIES_SCHEMA)  # noqa: F841 (read by DuckDB's replacement scan)
        tx.execute(
            "INSERT INTO entities (entity_id, entity_type, name, brand, identifier, battery_capacity_kwh, "
            "latitude, longitude) SELECT * FROM frame ON CONFLICT (entity_id) DO UPDATE SET "
            "name = coalesce(entities.name, excluded.name), brand = coalesce(entities.brand, excluded.brand), "
            "identifier = coalesce(entities.identifier, excluded.identifier), "
            "battery_capacity_kwh = coalesce(entities.battery_capacity_kwh, excluded.battery_capacity_kwh), "
            "latitude = coalesce(entities.latitude, excluded.latitude), "
            "longitude = coalesce(entities.longitude, excluded.longitude)"
        )

    @staticmethod
    def replace_detected_sessions(tx: duckdb.DuckDBPyConnection, entity_ids: Sequence[str], sessions: pl.DataFrame):
        """Detected sessions of these entities are replaced by a new detection result."""
        tx.execute(
            "DELETE FROM session_locations WHERE session_id IN (SELECT session_id FROM sessions "
            "WHERE source = 'detected' AND entity_id IN (SELECT unnest(?)))",
            [list(entity_ids)],
        )
        tx.execute(
            "DELETE FROM sessions WHERE source = 'detected' AND entity_id IN (SELECT unnest(?))", [list(entity_ids)]
        )
        Store.insert_sessions(tx, sessions)

    @staticmethod
    def insert_sessions(tx: duckdb.DuckDBPyConnection, sessions: pl.DataFrame) -> None:
        """Insert session rows; columns beyond the session schema (bands, costs) are kept when present."""
        frame = sessions.select([c for c in sessions.columns if c in STORED_SESSION_COLUMNS])
        if frame.height:
            cols = ", ".join(frame.columns)
            tx.execute(f"INSERT INTO sessions ({cols}) SELECT {cols} FROM frame")


_READ_ONLY = ("read-only file system", "permission denied")
_FULL = ("no space left", "disk quota exceeded", "could not write file", "file too large")


def storage_error(path: Path, exc: BaseException) -> DatabaseError | None:
    """A full disk or a folder ChargeLens may not write to, said in one sentence with what to do; else None."""
    # A failed COMMIT says it as a TransactionException ("Failed to commit: Could not write file ...").
    if not isinstance(exc, duckdb.IOException | duckdb.TransactionException | OSError):
        return None
    text = str(exc).lower()
    if any(words in text for words in _READ_ONLY):
        return DatabaseError(
            f"ChargeLens cannot write in the folder of {path.name} ({path.parent}: read-only or not permitted); "
            "move the database to a folder you may write to, or point --db (CHARGELENS_DB) at one.",
            title="StorageReadOnly",
        )
    if any(words in text for words in _FULL):
        return DatabaseError(
            f"The disk holding {path.name} is full; nothing of this change was stored. Free some space in "
            f"{path.parent} (or move the database with --db) and try again.",
            title="StorageFull",
        )
    return None


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise DatabaseBusy(busy_message(path, text)) from None
        if (storage := storage_error(path, exc)) is not None:
            raise storage from None
        raise DatabaseError(
            f"The database file {path} cannot be opened ({text.splitlines()[0][:200]}); "
            "check that it is a ChargeLens database, or point --db at another file."
        ) from None
    except duckdb.Error as exc:
        raise DatabaseError(
            f"The file {path} is not a database this version can open ({str(exc).splitlines()[0][:200]}); "
            "restore a backup or point --db at another file."
        ) from None
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    # Memory DuckDB freed goes back to the system within seconds: without it, an import's staging table stayed
    # resident (1.4 GB after 10 million rows) under the session detection that follows it.
    con.execute("SET GLOBAL allocator_background_threads = true")
    return con
