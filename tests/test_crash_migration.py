"""kill -9 during a schema migration: the database reopens at the old version, then migrates whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from core import store as store_mod
from core.pipeline import load_demo
from core.store import SCHEMA_VERSION, Store
from tests.conftest import ROOT

# The upgrade to the current version, with a statement that runs for minutes after its own DDL: killed inside it.
MIGRATE_SLOWLY = textwrap.dedent(
    """
    import sys
    from core import store
    slow = "CREATE TABLE half_done AS SELECT sum(hash(range)) AS h FROM range(100000000000)"
    store.MIGRATIONS = (*store.MIGRATIONS[:-1], (*store.MIGRATIONS[-1], slow))
    print("migrating", flush=True)
    store.Store.open(sys.argv[1])
    """
)


def _previous_version(tmp_path, monkeypatch) -> Path:
    """The demo as the previous version stored it: loaded now, then copied into a file of the previous schema."""
    now = Store.open(tmp_path / "now.duckdb")
    load_demo(now, seed=1)
    now.close()
    db = tmp_path / "m.duckdb"
    with monkeypatch.context() as m:
        m.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:-1])
        m.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION - 1)
        old = Store.open(db)
        tx = old.cursor()
        tx.execute(f"ATTACH '{tmp_path / 'now.duckdb'}' AS now (READ_ONLY)")
        tables = [r[0] for r in tx.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'now' "
                                           "AND table_name <> 'schema_version'").fetchall()]  # fmt: skip
        for table in tables:
            tx.execute(f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (matches_json) FROM now.{table}"
                       if table == "sessions" else f"INSERT INTO {table} SELECT * FROM now.{table}")  # fmt: skip
        tx.execute("DETACH now")
        old.close()
    return db


def test_kill_9_inside_a_migration_keeps_the_old_schema_and_the_data(tmp_path, monkeypatch):
    db = _previous_version(tmp_path, monkeypatch)
    now = Store.open(tmp_path / "now.duckdb")
    before = now.frame("SELECT * FROM sessions ORDER BY session_id")
    now.close()
    assert before.get_column("matches_json").is_not_null().sum() > 0  # the demo's sessions near its locations

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
    proc = subprocess.Popen([sys.executable, "-c", MIGRATE_SLOWLY, str(db)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "migrating", proc.stderr.read()
    try:
        proc.wait(3)  # the DDL of the migration is done by then; the slow statement runs for minutes
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL, proc.stderr.read()

    import duckdb

    con = duckdb.connect(str(db), read_only=True)  # as the killed process left it, before any migration
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'sessions'").fetchall()}  # fmt: skip
    assert "matches_json" not in columns and "half_done" not in tables
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION - 1
    con.close()

    store = Store.open(db)  # this version migrates it whole
    assert store.schema_version() == SCHEMA_VERSION
    # The migration fills the new column exactly as the matching of locations had (the `before` frame).
    assert store.frame("SELECT * FROM sessions ORDER BY session_id").equals(before)
    store.close()
