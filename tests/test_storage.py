"""A full disk and a read-only folder: one sentence with what to do, exit 2, and the database as it was.

The tests mount small tmpfs file systems, which needs root (as in CI, which installs packages with apt-get).
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import polars as pl
import pytest

from bench.common import fleet_readings
from core.store import Store


@contextlib.contextmanager
def tmpfs(folder, size: str):
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to mount a tmpfs for the storage tests: {mounted.stderr.decode()}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def readings_csv(path, rows: int, entities: int) -> None:
    frame = fleet_readings(rows, entities).select(
        "entity_id", pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "power_kw"
    )
    frame.write_csv(path)


def test_a_full_disk_refuses_the_import_in_one_sentence_and_keeps_the_database(tmp_path, cli):
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    readings_csv(small, 20_000, 4)
    readings_csv(big, 300_000, 10)
    with tmpfs(tmp_path / "disk", "3m") as disk:
        db = disk / "c.duckdb"
        assert cli("ingest", str(small), db=db).code == 0
        full = cli("ingest", str(big), db=db)
        assert full.code == 2, full.err
        assert full.err == (
            "error: The disk holding c.duckdb is full; nothing of this change was stored. Free some space in "
            f"{disk} (or move the database with --db) and try again.\n"
        )
        store = Store.open(db)
        assert (store.scalar("SELECT count(*) FROM readings"), store.scalar("SELECT count(*) FROM imports")) == (
            20_000,
            1,
        )
        Store.close_all()


def test_a_read_only_folder_is_named_with_what_to_do(tmp_path, cli):
    small = tmp_path / "small.csv"
    readings_csv(small, 2_000, 2)
    with tmpfs(tmp_path / "ro", "8m") as folder:
        db = folder / "c.duckdb"
        assert cli("ingest", str(small), db=db).code == 0
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        for args in (("entities", "list"), ("ingest", str(small))):
            result = cli(*args, db=db)
            assert result.code == 2
            assert result.err == (
                f"error: ChargeLens cannot write in the folder of c.duckdb ({folder}: read-only or not permitted); "
                "move the database to a folder you may write to, or point --db (CHARGELENS_DB) at one.\n"
            )
        fresh = cli("entities", "list", db=folder / "new.duckdb")
        assert fresh.code == 2 and "cannot write in the folder of new.duckdb" in fresh.err
