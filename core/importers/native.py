"""Canonical readings files read and checked by DuckDB's own CSV and Parquet readers, for speed on large files.

A file that qualifies (canonical column names, no mapping; CSV with times in the common UTC form
`YYYY-MM-DDTHH:MM:SSZ`, or Parquet with typed columns) is read straight into a temporary table of the
import's transaction, typed as stored, and every rule of `rules.RULES` and of `times` is checked there in
SQL. When every row passes, the pipeline lands the table (`pipeline._land_staged`); when any row fails, or
the reader refuses a value, nothing is kept and the file goes through the full checks of `readings.parse`,
which name each rejected row and value as written. Both ways give the same readings, entities and counts
(`tests/test_import_native.py` compares them on generated files with awkward values).

Values are read as the full checks read them: an empty cell and NaN are no value, booleans take exactly
`rules.TRUE_TOKENS` / `FALSE_TOKENS` (in any case), numbers take DuckDB's grammar (which `rules.parse_number`
also accepts) and times only the one form above. Anything else, the other null words of `rules.NULL_TOKENS`
among them (DuckDB cannot read them as no value without also blanking such text in the name columns), sends
the file to the full checks. Text columns keep their text; an empty one is no value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from core.importers import ImportOptions
from core.importers.rules import RULES, check_entity_id
from core.importers.times import EARLIEST, LATEST
from core.schema import ENTITY_TYPE_ALIASES, READING_VALUE_COLUMNS

TABLE = "staged_readings"  # the temporary table of one import (per connection, gone at its end)
# The staged table is held in memory, about 100 bytes a row (1 GB for a 624 MB CSV of 10 million rows): larger CSV
# files go to the full checks, which read them in blocks of bounded size. Parquet is staged whatever its size:
# the full checks would hold all of it at once.
CSV_MAX_BYTES = 1024**3
ENTITY_TEXT = ("entity_type", "name", "brand", "identifier")
_TYPES = {"entity_id": "VARCHAR", "ts": "TIMESTAMP", "timestamp": "TIMESTAMP"} | {
    r.column: "DOUBLE" if r.kind == "number" else "BOOLEAN" for r in RULES
}
_ZULU = "%Y-%m-%dT%H:%M:%SZ"


class NeedsFullChecks(Exception):
    """The file has a row or value that only the full checks can report as it should be (row number, raw value)."""


@dataclass(frozen=True)
class Staged:
    """A file staged in TABLE: its row count, its entities (first row's attributes, first and last time) and
    whether some entity and time appear more than once in it."""

    rows: int
    columns: tuple[str, ...]  # the reading value columns the file has (the others are no value)
    entities: pl.DataFrame  # entity_id, entity_type, name, brand, identifier, first_ts, last_ts
    repeats: bool


def source(con: duckdb.DuckDBPyConnection, path: Path, options: ImportOptions) -> tuple[str, list] | None:
    """The table function (SQL and parameters) that reads this file for staging, or None when it does not
    qualify (other layouts, mapped or renamed columns, gzip, JSON, Excel, a separator other than a comma).

    `con` is the store's: a DuckDB of its own, closed again, would turn off the store's allocator settings."""
    if options.format not in ("auto", "readings") or options.mapping:
        return None
    if path.is_dir() or path.suffix.lower() == ".parquet":
        return _parquet_source(con, path)
    if not path.is_file() or path.suffix.lower() in (".xlsx", ".gz", ".json", ".jsonl", ".ndjson"):
        return None
    if path.stat().st_size > CSV_MAX_BYTES:
        return None
    with path.open("rb") as fh:
        header = fh.readline(65536)
        if header[:2] == b"\x1f\x8b" or b"\x00" in header or not header.endswith(b"\n"):
            return None
        try:
            text = header.removeprefix(b"\xef\xbb\xbf").decode().rstrip("\r\n")
        except UnicodeDecodeError:
            return None
        if text.lstrip()[:1] in ("{", "[") or ";" in text or "\t" in text or "|" in text or '"' in text:
            return None
        columns = text.split(",")
        if not _canonical(columns):
            return None
    types = {c: _TYPES.get(c, "VARCHAR") for c in columns}
    keep_text = [c for c in columns if _TYPES.get(c) is None]  # entity_id too: 'none' is a valid id
    sql = (
        "read_csv(?, header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        "strict_mode = true, timestampformat = ?, columns = ?, force_not_null = ?)"
    )
    return sql, [str(path), _ZULU, types, keep_text + ["entity_id"]]


def _parquet_source(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, list] | None:
    files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
    if not files:
        return None
    function = "read_parquet(?, union_by_name = true)", [[str(f) for f in files]]
    try:
        types = dict(_describe(con, function))
    except duckdb.Error:
        return None
    if not _canonical(list(types)):
        return None
    for name, kind in types.items():
        if name in ("ts", "timestamp") and kind != "TIMESTAMP WITH TIME ZONE":
            return None  # naive or epoch times, or nanoseconds: the full checks
        if name == "entity_id" and kind != "VARCHAR":
            return None
        expected = _TYPES.get(name)
        numeric = kind in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT")
        if expected == "DOUBLE" and not numeric or expected == "BOOLEAN" and kind != "BOOLEAN":
            return None
        if name in ENTITY_TEXT and kind != "VARCHAR":
            return None
    return function


def _canonical(columns: list[str]) -> bool:
    """Canonical names, each once, with entity_id, one time column and a value (unit variants need the full path)."""
    names = set(columns)
    times = names & {"ts", "timestamp"}
    return (
        len(names) == len(columns)
        and all(c == c.strip() and c for c in columns)
        and "entity_id" in names
        and len(times) == 1
        and bool(names & set(READING_VALUE_COLUMNS))
        and not names & {"power_w", "energy_wh", "range_mi", "odometer_mi"}
    )


def stage(tx: duckdb.DuckDBPyConnection, table_function: tuple[str, list], options: ImportOptions,
          columns: list[str]) -> Staged:  # fmt: skip
    """Read the file into TABLE and check every row; NeedsFullChecks when a row fails or the reader refuses one.

    `columns` are the file's column names (from `names_of`). Run it in a thread of its own to follow its progress
    with `tx.query_progress()`."""
    sql, params = table_function
    parquet = sql.startswith("read_parquet")
    time_col = "ts" if "ts" in columns else "timestamp"
    ts = time_col if parquet else f"timezone('UTC', {time_col})"  # Parquet's are zoned
    # Only the file's own columns are staged (an absent one is no value: nothing to hold 10 million times).
    values = [f"{c}::{_TYPES[c]} AS {c}" for c in READING_VALUE_COLUMNS if c in columns]
    # As the full checks read them: an empty type is none; an empty name is none in a CSV, text in a Parquet file.
    text = [
        f"nullif(trim({c}), '') AS {c}" if c == "entity_type" else c if parquet else f"nullif({c}, '') AS {c}"
        for c in ENTITY_TEXT
        if c in columns
    ]
    # Without statistics propagation: DuckDB folds isnan() to false from Parquet's min and max, which leave NaN
    # out. The setting is the connection's: `reset` puts it back, also after a failed statement aborted the
    # transaction (when only a rollback can run).
    tx.execute(f"SET disabled_optimizers = '{NO_STATISTICS}'")
    try:
        # timezone('UTC', t), not a cast: DuckDB pushes a cast to TIMESTAMPTZ into the CSV reader, which then
        # parses every ISO form and ignores the time format (a naive time would pass as UTC).
        tx.execute(
            f"CREATE OR REPLACE TEMP TABLE {TABLE} AS SELECT entity_id, {ts} AS ts, "
            f"{', '.join(values + text)} FROM {sql}",
            params,
        )
    except duckdb.Error as exc:  # a value the reader refuses, a ragged row, bytes that are not UTF-8
        raise NeedsFullChecks(str(exc).splitlines()[0]) from None
    numbers = [r for r in RULES if r.kind == "number" and r.column in columns]
    # Each check over the whole column at once: the range rules hold when its minimum and maximum are within them.
    spans = "".join(f", min({r.column}), max({r.column}), count(*) FILTER (WHERE isnan({r.column}))" for r in numbers)
    rows, times, first, last, *found = tx.execute(
        f"SELECT count(*), count(ts), min(ts), max(ts){spans} FROM {TABLE}"
    ).fetchall()[0]
    if rows == 0:
        raise NeedsFullChecks("no rows")  # the full checks say so in their words
    if times < rows or first < EARLIEST or last >= LATEST or options.not_after is not None and last > options.not_after:
        raise NeedsFullChecks("a time that is missing or out of bounds")
    for rule, low, high, nan in zip(numbers, found[0::3], found[1::3], found[2::3], strict=True):
        if nan:  # NaN is no value (as in rules.parse_number); DuckDB orders it above every number
            tx.execute(f"UPDATE {TABLE} SET {rule.column} = NULL WHERE isnan({rule.column})")
            low, high = tx.execute(f"SELECT min({rule.column}), max({rule.column}) FROM {TABLE}").fetchall()[0]
        if low is not None and not (rule.low <= low and high <= rule.high):
            raise NeedsFullChecks(f"a value of {rule.column} outside its range")
    reset(tx)
    out_of_order, runs = tx.execute(
        f"SELECT count(*) FILTER (WHERE entity_id = __e AND ts <= __t), count(*) FILTER (WHERE entity_id IS DISTINCT "
        f"FROM __e) FROM (SELECT entity_id, ts, lag(entity_id) OVER () AS __e, lag(ts) OVER () AS __t FROM {TABLE})"
    ).fetchall()[0]
    default = options.entity_type or "EV"
    given = "entity_type" in columns
    types = [t for (t,) in tx.execute(f"SELECT DISTINCT entity_type FROM {TABLE}").fetchall()] if given else [None]
    canonical = {t: _entity_type(t if t is not None else default) for t in types}
    if None in canonical.values():
        raise NeedsFullChecks("an entity type that is not known")
    firsts = [f"arg_min_null({c}, rowid) AS {c}" if c in columns else f"NULL::VARCHAR AS {c}" for c in ENTITY_TEXT]
    entities = tx.sql(
        f"SELECT entity_id, {', '.join(firsts)}, min(ts) AS first_ts, max(ts) AS last_ts FROM {TABLE} "
        "GROUP BY entity_id ORDER BY min(rowid)"
    ).pl()
    if not entities.select(check_entity_id(pl.col("entity_id")).all()).item():
        raise NeedsFullChecks("an entity id that is not 1 to 128 printable characters")
    entities = entities.with_columns(
        pl.col("entity_type")
        .fill_null(default)
        .replace_strict({k if k is not None else default: v for k, v in canonical.items()}, return_dtype=pl.String)
    )
    # Rows of each entity together and in strictly increasing time (whatever the order the window saw them in)
    # prove that no entity and time repeats; otherwise the landing looks for the repeats.
    repeats = out_of_order > 0 or runs != entities.height
    return Staged(rows, tuple(c for c in READING_VALUE_COLUMNS if c in columns), entities, repeats)


NO_STATISTICS = "statistics_propagation"


def reset(con: duckdb.DuckDBPyConnection) -> None:
    """The optimizer settings of `con` as before `stage` (it runs outside an aborted transaction too)."""
    con.execute("RESET disabled_optimizers")


def names_of(con: duckdb.DuckDBPyConnection, table_function: tuple[str, list]) -> list[str]:
    """The column names the table function gives."""
    return [name for name, _ in _describe(con, table_function)]


def _describe(con: duckdb.DuckDBPyConnection, table_function: tuple[str, list]) -> list[tuple[str, str]]:
    sql, params = table_function
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {sql}", params).fetchall()]


def _entity_type(raw: str) -> str | None:
    """The stored entity type for a type as written (as readings._entity_types decides it), None if refused."""
    if raw in ENTITY_TYPE_ALIASES:
        return ENTITY_TYPE_ALIASES[raw]
    ok = raw[:1].isascii() and raw[:1].isalpha() and len(raw) <= 40 and raw.isascii() and raw.isalnum()
    return raw if ok else None
