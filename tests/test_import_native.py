"""Files read and checked by DuckDB's own readers land exactly as the full checks land them, or go to the full
checks: the same readings, entities, rejects, counts and sessions, whatever awkward values the file holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core import pipeline
from core.errors import InputError
from core.importers import ImportOptions, native
from core.importers import readings as readings_mod
from core.store import Store

NOT_AFTER = datetime(2026, 1, 1, tzinfo=UTC)
OPTIONS = ImportOptions(not_after=NOT_AFTER)

NUMBERS = ["7.4", " 2.5", "3.0 ", "", "0", "-0", "+3", ".5", "5.", "1e2", "1E-1", "1_000", "12_5.5", "nan", "NaN",
           "none", "None", "NULL", "n/a", "NA", "inf", "-inf", "1,5", "abc", "1__0", "150", "-3", "1e400"]  # fmt: skip
BOOLEANS = ["true", "false", "TRUE", "False", "1", "0", "yes", "No", "y", "N", "t", "F", "", " true", "maybe",
            "none", "2"]  # fmt: skip
TIMES = ["2025-03-01T{h:02d}:{m:02d}:00Z"] * 12 + ["2025-03-01T{h:02d}:{m:02d}:00+00:00", "2025-3-1T{h}:{m}:0Z",
         "2025-03-01 {h:02d}:{m:02d}:00Z", "2025-03-01T{h:02d}:{m:02d}:00.5Z", "1740787200", "2025-02-29T00:00:00Z",
         "2025-03-01T24:00:00Z", "not a time", "", "2999-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
         "2025-03-01T{h:02d}:{m:02d}:00"]  # fmt: skip
ENTITIES = ["ev-1"] * 6 + ["cp-2"] * 4 + ["ev 3", "none", "", "x" * 129, "é-4", "ev\t5"]
TYPES = ["EV", "CP", "ChargePole", "Battery", " cp ", "", "bad type!", "HeatPump"]


def outcome(db: Path, source: Path, native_allowed: bool, twice: Path | None = None):
    """What an import (and optionally a second one) leaves: summaries (or the error) and the tables."""
    with pytest.MonkeyPatch.context() as patch:
        if not native_allowed:
            patch.setattr(native, "source", lambda *args: None)
        store = Store.open(db)
        results = []
        for path in [source] + ([twice] if twice else []):
            try:
                s = pipeline.ingest_file(store, path, OPTIONS)
                results.append((s.read, s.stored, s.duplicate, s.conflict, s.rejected, _rejects(s.rejects)))
            except InputError as exc:
                results.append(str(exc))
        tables = tuple(
            store.frame(sql)
            for sql in (
                "SELECT * FROM readings ORDER BY entity_id, ts",
                "SELECT * EXCLUDE (created) FROM entities ORDER BY entity_id",
                'SELECT file, "row", "column", value, reason FROM rejects ORDER BY ALL',
                "SELECT * EXCLUDE (session_id, import_id, created, matches_json) FROM sessions ORDER BY ALL",
                "SELECT file_name, rows_read, stored, duplicate, conflict, rejected FROM imports ORDER BY ALL",
            )
        )
        Store.close_all()
    return results, tables


def _rejects(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.rows(), key=repr)


def assert_same(tmp_path: Path, source: Path, twice: Path | None = None, native_expected: bool | None = None):
    """Import with staging and with the full checks only; assert the same outcome; return it and what was staged."""
    staged = []
    real_stage = native.stage

    def stage(*args, **kwargs):
        result = real_stage(*args, **kwargs)  # raises NeedsFullChecks when the file goes to the full checks
        staged.append(result)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "stage", stage)
        fast = outcome(tmp_path / f"fast-{random.random()}.duckdb", source, True, twice)
    full = outcome(tmp_path / f"full-{random.random()}.duckdb", source, False, twice)
    assert fast[0] == full[0]
    for a, b in zip(fast[1], full[1], strict=True):
        assert_frame_equal(a, b)
    if native_expected is not None:
        assert bool(staged) is native_expected
    return fast[0], staged


def write(path: Path, header: list[str], rows: list[list[str]], newline: str = "\n", bom: bool = False) -> Path:
    text = newline.join([",".join(header)] + [",".join(r) for r in rows]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def clean_rows(n: int, entity: str = "ev-1", start_minute: int = 0, power: float = 7.4) -> list[list[str]]:
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    return [
        [entity, (t0 + timedelta(minutes=start_minute + i)).strftime("%Y-%m-%dT%H:%M:%SZ"), str(power if 20 <= i < 80
         else 0.0), str(50 + i // 10), "true"]
        for i in range(n)
    ]  # fmt: skip


HEADER = ["entity_id", "ts", "power_kw", "soc_pct", "is_plugged_in"]


def test_a_clean_file_is_staged_and_lands_as_the_full_checks_land_it(tmp_path):
    source = write(tmp_path / "clean.csv", HEADER, clean_rows(120) + clean_rows(120, "cp-2"))
    results, staged = assert_same(tmp_path, source, native_expected=True)
    assert results == [(240, 240, 0, 0, 0, [])]
    assert staged[0].rows == 240 and not staged[0].repeats
    assert staged[0].columns == ("power_kw", "soc_pct", "is_plugged_in")


def test_repeats_in_the_file_and_rows_already_stored_are_merged_like_the_full_checks(tmp_path):
    rows = clean_rows(100) + clean_rows(100, "cp-2")
    rows += [rows[5], rows[150], rows[7][:2] + ["99", "50", "true"]]  # two exact repeats, one conflict
    random.Random(3).shuffle(rows)
    source = write(tmp_path / "repeats.csv", HEADER, rows)
    overlap = [["ev-1", "2025-03-01T00:03:00Z", "55", "1", "false"]] + clean_rows(140)[80:]  # in order: no repeats
    second = write(tmp_path / "overlap.csv", HEADER, overlap)
    results, staged = assert_same(tmp_path, source, twice=second, native_expected=True)
    first, again = results
    assert first[:5] == (203, 200, 2, 1, 0)
    assert again[:5] == (61, 40, 20, 1, 0)  # 20 rows of minutes 80..99 stored before; the changed row conflicts
    assert [r[4] for r in again[5]] == ["conflict: a different reading for this entity and time is already stored; "
                                        "kept the stored one"]  # fmt: skip
    assert staged[0].repeats and staged[1].repeats is False


def test_the_same_file_again_changes_nothing(tmp_path):
    source = write(tmp_path / "a.csv", HEADER, clean_rows(50))
    results, _ = assert_same(tmp_path, source, twice=source, native_expected=True)
    assert [r[:5] for r in results] == [(50, 50, 0, 0, 0), (50, 0, 50, 0, 0)]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_line_ends_byte_order_marks_quotes_and_entity_columns(tmp_path, newline, bom):
    header = ["entity_id", "ts", "power_kw", "entity_type", "name", "brand"]
    rows = [r[:3] + [t, n, b] for r, t, n, b in zip(clean_rows(40), ["CP", "", " cp "] * 14, ['"Van, big"', ""] * 20,
            ["None", "x"] * 20, strict=False)]  # fmt: skip
    source = write(tmp_path / "odd.csv", header, rows, newline=newline, bom=bom)
    results, _ = assert_same(tmp_path, source, native_expected=True)
    assert results[0][:5] == (40, 40, 0, 0, 0)


def test_a_csv_file_beyond_the_staging_size_goes_to_the_block_reader(tmp_path, monkeypatch):
    source = write(tmp_path / "large.csv", HEADER, clean_rows(120))
    monkeypatch.setattr(native, "CSV_MAX_BYTES", source.stat().st_size - 1)
    monkeypatch.setattr(readings_mod, "STREAM_ABOVE_BYTES", 0)
    assert native.source(Store.open(tmp_path / "s.duckdb").cursor(), source, OPTIONS) is None
    Store.close_all()
    assert readings_mod.streamable(source, OPTIONS)
    results, _ = assert_same(tmp_path, source, native_expected=False)
    assert results[0][:5] == (120, 120, 0, 0, 0)


def test_a_file_the_full_checks_must_report_is_not_staged_and_nothing_of_the_attempt_remains(tmp_path):
    rows = clean_rows(30)
    rows[17][3] = "150"  # state of charge out of range
    source = write(tmp_path / "bad.csv", HEADER, rows)
    results, staged = assert_same(tmp_path, source, native_expected=False)
    assert results[0][:5] == (30, 29, 0, 0, 1)
    assert results[0][5][0][1:] == (19, "soc_pct", "150", "state of charge must be between 0 and 100 %")


def test_numbers_that_duckdb_reads_are_numbers_for_the_full_checks_too(tmp_path):
    rows = clean_rows(3)
    rows[0][2], rows[1][2], rows[2][2] = "1_000", "2_5.2_5", "1e0_1"
    source = write(tmp_path / "underscores.csv", HEADER, rows)
    results, _ = assert_same(tmp_path, source, native_expected=True)
    assert results[0][:5] == (3, 3, 0, 0, 0)


def test_parquet_with_typed_columns_is_staged(tmp_path):
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "entity_id": ["ev-1"] * 50 + ["cp-2"] * 50,
            "ts": [t0 + timedelta(minutes=i % 50) for i in range(100)],
            "power_kw": [7.4 if 10 <= i % 50 < 40 else 0.0 for i in range(100)],
            "soc_pct": pl.Series([float("nan"), *range(1, 100)], dtype=pl.Float32),
            "odometer_km": pl.Series(list(range(100)), dtype=pl.Int32),
            "entity_type": ["EV"] * 50 + [" CP", "", None, "CP"] * 12 + ["CP", "CP"],
            "name": [""] * 50 + ["Lobby"] * 50,  # an empty name is text in Parquet (none in a CSV)
        }
    )
    source = tmp_path / "readings.parquet"
    frame.write_parquet(source)
    results, _ = assert_same(tmp_path, source, native_expected=True)
    assert results[0][:5] == (100, 100, 0, 0, 0)
    naive = tmp_path / "naive.parquet"
    frame.with_columns(pl.col("ts").dt.replace_time_zone(None)).write_parquet(naive)
    assert native.source(Store.open(tmp_path / "n.duckdb").cursor(), naive, OPTIONS) is None  # the full checks ask
    Store.close_all()


WIDE = ["entity_id", "ts", "power_kw", "soc_pct", "is_charging", "entity_type"]
ONE_VALUE = [
    (column, value, width)
    for column, values in [("ts", [t.format(h=1, m=2) for t in TIMES[11:]]), ("power_kw", NUMBERS),
                           ("soc_pct", NUMBERS), ("is_charging", BOOLEANS), ("entity_id", ENTITIES[9:]),
                           ("entity_type", TYPES)]
    for value in values
    for width in (3, 6)  # DuckDB plans a narrow file otherwise (one plan took naive times as UTC)
    if WIDE.index(column) < width
]  # fmt: skip


@pytest.mark.parametrize(("column", "value", "width"), ONE_VALUE, ids=[f"{c}={v!r}-{w}" for c, v, w in ONE_VALUE])
def test_each_awkward_value_on_its_own_lands_the_same_either_way(tmp_path, column, value, width):
    rows = [["ev-1", f"2025-03-01T00:0{i}:00Z", "7.4", "50", "true", "EV"][:width] for i in range(3)]
    rows[1][WIDE.index(column)] = value
    assert_same(tmp_path, write(tmp_path / "one.csv", WIDE[:width], rows))


CLEAN = {
    "entity_id": ["ev-1", "cp-2", "ev 3", "none", "é-4"],
    "ts": ["2025-03-01T{h:02d}:{m:02d}:00Z"],
    "power_kw": ["7.4", "0", "0.0", "11", "", "-2.5"],
    "soc_pct": ["50", "50.5", "", "100", "0"],
    "is_charging": ["true", "false", ""],
    "entity_type": ["EV", "CP", "", "HeatPump"],
}
AWKWARD = {
    "entity_id": ["", "x" * 129, "ev\t5", " ev-1"],
    "ts": TIMES[12:],
    "power_kw": NUMBERS,
    "soc_pct": NUMBERS,
    "is_charging": BOOLEANS,
    "entity_type": TYPES,
}


@st.composite
def awkward_file(draw) -> list[list[str]]:
    """Rows of clean values (times often repeated or out of order), then up to three awkward cells."""
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        h, m = draw(st.integers(0, 2)), draw(st.integers(0, 59))
        rows.append([draw(st.sampled_from(CLEAN[c])).format(h=h, m=m) for c in CLEAN])
    for _ in range(draw(st.integers(0, 3))):
        r, c = draw(st.integers(0, n - 1)), draw(st.sampled_from(list(CLEAN)))
        rows[r][list(CLEAN).index(c)] = draw(st.sampled_from(AWKWARD[c])).format(h=1, m=2)
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(rows=awkward_file(), crlf=st.booleans(), second=st.booleans())
def test_any_mix_of_awkward_values_lands_the_same_either_way(tmp_path_factory, rows, crlf, second):
    folder = tmp_path_factory.mktemp("mix")
    source = write(folder / "mix.csv", list(CLEAN), rows, newline="\r\n" if crlf else "\n")
    twice = write(folder / "again.csv", list(CLEAN), rows[::-1]) if second else None
    assert_same(folder, source, twice=twice)
