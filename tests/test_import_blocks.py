"""Large files are imported block by block and entities detected in batches, with exactly the outcome of the
whole-file path: the same readings, rejects (with the file's row numbers), summary and sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core import pipeline
from core.importers import ImportOptions
from core.importers import readings as readings_mod
from core.pipeline import ingest_file, load_demo
from core.queries import recent_rejects
from core.store import Store

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def fleet_csv(path: Path) -> None:
    """Four entities, minute readings with charges, plus rows that are rejected, repeated or in conflict."""
    lines = ["entity_id,ts,power_kw,energy_kwh,soc_pct"]
    for minute in range(0, 600):
        at = (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        charging = 60 <= minute % 300 < 150
        for n in range(4):
            lines.append(f"ev-{n},{at},{7.4 if charging else 0},,{40 + minute // 20}")
        if minute % 97 == 0:
            lines.append(f"ev-0,{at},{7.4 if charging else 0},,{40 + minute // 20}")  # an exact repeat
        if minute % 131 == 0:
            lines.append(f"ev-1,{at},99,,{40 + minute // 20}")  # the same time, another value: a conflict
        if minute % 113 == 0:
            lines.append(f"ev-2,{at},-5,,101")  # out of range
            lines.append("ev-3,not a time,1,,50")
    lines.append("ev-0,2999-01-01T00:00:00Z,1,,50")  # in the future
    path.write_text("\n".join(lines) + "\n")


def table(store: Store, sql: str) -> pl.DataFrame:
    return store.frame(sql)


def outcome(db: Path, source: Path):
    store = Store.open(db)
    shares: list[float] = []
    summary = ingest_file(store, source, ImportOptions(), progress=lambda share, text: shares.append(share))
    assert shares[0] == 0.0 and shares[-1] == 1.0 and shares == sorted(shares)
    frames = (
        table(store, "SELECT entity_id, ts, power_kw, soc_pct FROM readings ORDER BY entity_id, ts"),
        table(store, 'SELECT file, "row", "column", value, reason FROM rejects ORDER BY "row", "column", reason'),
        table(store, "SELECT session_id, entity_id, start_utc, end_utc, energy_kwh FROM sessions ORDER BY session_id"),
        table(store, "SELECT rows_read, stored, duplicate, conflict, rejected FROM imports"),
    )
    Store.close_all()
    return summary, frames


def test_a_file_read_in_blocks_lands_exactly_as_one_read_whole(tmp_path, monkeypatch):
    source = tmp_path / "fleet.csv"
    fleet_csv(source)
    assert not readings_mod.streamable(source, ImportOptions())  # small: read whole
    whole, whole_frames = outcome(tmp_path / "whole.duckdb", source)

    monkeypatch.setattr(readings_mod, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(readings_mod, "BLOCK_BYTES", 4096)  # about 100 rows a block: repeats cross blocks
    assert readings_mod.streamable(source, ImportOptions())
    blocks = list(readings_mod.csv_blocks(source, source.name))
    assert len(blocks) >= 20 and blocks[1][1] == 2 + blocks[0][0].height
    assert blocks[-1][2] == source.stat().st_size and [b[2] for b in blocks] == sorted(b[2] for b in blocks)
    blocked, blocked_frames = outcome(tmp_path / "blocks.duckdb", source)

    assert (blocked.read, blocked.stored, blocked.duplicate, blocked.conflict, blocked.rejected) == (
        whole.read,
        whole.stored,
        whole.duplicate,
        whole.conflict,
        whole.rejected,
    )
    assert whole.duplicate == 7 and whole.conflict == 5 and whole.rejected == 13
    for a, b in zip(whole_frames, blocked_frames, strict=True):
        assert_frame_equal(a, b)
    assert whole_frames[2].height > 0


CANONICAL = "entity_id,ts,power_kw\nev,2025-03-01T00:00:00Z,1\n"


@pytest.mark.parametrize(
    ("text", "options", "blocks"),
    [
        (CANONICAL, ImportOptions(), True),
        (CANONICAL, ImportOptions(format="readings"), True),
        ('entity_id,ts,power_kw\n"ev, one",2025-03-01T00:00:00Z,1\n', ImportOptions(), False),  # a quote
        ("entity_id,ts,power_kw\nev,2025-03-01 00:00:00,1\n", ImportOptions(timezone="Europe/Brussels"), False),
        ("entity_id,start,end,energy_kwh\nev,2025-03-01T00:00:00Z,2025-03-01T01:00:00Z,5\n", ImportOptions(), False),
        (CANONICAL, ImportOptions(format="sessions"), False),
        ("car,time,kW\nev,2025-03-01T00:00:00Z,1\n", ImportOptions(mapping={"entity_id": "car", "ts": "time"}), True),
        ("car,time,kW\nev,2025-03-01T00:00:00Z,1\n", ImportOptions(), False),
    ],
)
def test_only_files_that_give_the_same_outcome_are_read_in_blocks(tmp_path, text, options, blocks):
    source = tmp_path / "f.csv"
    source.write_text(text)
    assert readings_mod.streamable(source, options, above=0) is blocks
    assert readings_mod.streamable(source, options) is False  # small files are always read whole


def test_a_file_with_no_usable_row_is_refused_whole_in_blocks_too(tmp_path, monkeypatch, store):
    monkeypatch.setattr(readings_mod, "STREAM_ABOVE_BYTES", 0)
    source = tmp_path / "bad.csv"
    source.write_text("entity_id,ts,power_kw\nev,not a time,1\nev,2025-13-01T00:00:00Z,1\n")
    with pytest.raises(pipeline.InputError, match=r"bad.csv has no usable row \(row 2: "):
        ingest_file(store, source, ImportOptions())
    assert store.is_empty()


def test_entities_detected_in_batches_give_the_same_sessions(tmp_path, monkeypatch):
    def sessions(db: Path) -> pl.DataFrame:
        store = Store.open(db)
        load_demo(store, seed=3)
        frame = store.frame("SELECT * EXCLUDE (import_id, created) FROM sessions ORDER BY session_id")
        # Location ids are made anew in each database: each session's copy of its matches is compared without them.
        frame = frame.with_columns(
            pl.col("matches_json").map_elements(
                lambda text: json.dumps([{k: v for k, v in m.items() if k != "id"} for m in json.loads(text)]),
                return_dtype=pl.String,
            )
        )
        Store.close_all()
        return frame

    whole = sessions(tmp_path / "whole.duckdb")
    monkeypatch.setattr(pipeline, "DETECT_BATCH_ROWS", 5_000)  # every entity in a batch of its own
    assert_frame_equal(whole, sessions(tmp_path / "batched.duckdb"))


def test_the_cli_shows_a_progress_line_on_a_terminal_only(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    source = tmp_path / "fleet.csv"
    fleet_csv(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    command = [sys.executable, "-m", "core", "--db", str(tmp_path / "t.duckdb"), "ingest", str(source)]
    primary, secondary = pty.openpty()
    run = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=secondary, timeout=300)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert run.returncode == 0
    assert run.stdout.decode().startswith("fleet.csv: read 2425, stored 2400, duplicate 7, conflict 5, rejected 13")
    lines = shown.decode().split("\r\x1b[K")
    assert "fleet.csv:   0% reading and checking" in lines
    assert any(line.startswith("fleet.csv:  50% storing 2,412 rows") for line in lines), lines
    assert lines[-1] == ""  # the line is cleared before the summary

    piped = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == b""  # not a terminal: no progress line


def test_blocks_are_read_typed_and_again_as_text_where_a_number_needs_it(tmp_path, monkeypatch):
    monkeypatch.setattr(readings_mod, "BLOCK_BYTES", 200)
    source = tmp_path / "typed.csv"
    clean = [f"ev,2025-03-01T00:{m:02d}:00Z,7.4" for m in range(10)]
    worded = ["ev,2025-03-01T01:00:00Z,none"] + [f"ev,2025-03-01T01:{m:02d}:00Z,7.4" for m in range(1, 10)]
    huge = ["ev,2025-03-01T02:00:00Z,5e9"] + [f"ev,2025-03-01T02:{m:02d}:00Z,7.4" for m in range(1, 10)]
    source.write_text("\n".join(["entity_id,ts,power_kw", *clean, *worded, *huge]) + "\n")
    blocks = list(readings_mod.csv_blocks(source, source.name, typed=True))
    kinds = [(b[0].schema["power_kw"], b[3] is not None) for b in blocks]
    assert (pl.Float64, True) in kinds and (pl.String, False) in kinds  # "none" is a word: that block is text
    rejects = pl.concat([readings_mod.parse_block(source, source.name, ImportOptions(), frame, line, as_text).rejects
                         for frame, line, _, as_text in blocks])  # fmt: skip
    assert rejects.select("row", "column", "value").rows() == [(22, "power_kw", "5e9")]  # as written, not 5000000000.0


@pytest.mark.parametrize("blocks", [False, True])
def test_the_null_words_mean_no_value_and_other_words_are_rejected(tmp_path, monkeypatch, blocks):
    """README: an empty cell and none, null, nan, na, n/a in any case mean no value; other text is not a number."""
    if blocks:
        monkeypatch.setattr(readings_mod, "STREAM_ABOVE_BYTES", 0)
        monkeypatch.setattr(readings_mod, "BLOCK_BYTES", 120)
    words = ["", "none", "NULL", "NaN", "nan", "NA", "n/a", " N/A "]
    lines = [f"ev,2025-03-01T00:{m:02d}:00Z,{word},50" for m, word in enumerate(words)]
    source = tmp_path / "words.csv"
    source.write_text("\n".join(["entity_id,ts,power_kw,soc_pct", *lines, "ev,2025-03-01T01:00:00Z,lots,50"]) + "\n")
    store = Store.open(tmp_path / "words.duckdb")
    summary = ingest_file(store, source, ImportOptions())
    assert (summary.stored, summary.rejected) == (len(words), 1)
    kept = table(store, "SELECT power_kw, soc_pct FROM readings ORDER BY ts")
    assert kept.rows() == [(None, 50.0)] * len(words)
    rejects = table(store, 'SELECT "row", "column", value, reason FROM rejects')
    assert rejects.rows() == [(len(words) + 2, "power_kw", "lots", "not a number")]  # stored, for the Overview:
    assert recent_rejects(store).select("file_name", "reason", "rows").rows() == [("words.csv", "not a number", 1)]
    Store.close_all()
