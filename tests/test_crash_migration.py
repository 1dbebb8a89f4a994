"""kill -9 during a schema migration: the database reopens at the old version, then migrates whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

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


def test_kill_9_inside_a_migration_keeps_the_old_schema_and_the_data(tmp_path):
    db = tmp_path / "m.duckdb"
    store = Store.open(db)
    load_demo(store, seed=1)
    before = store.frame("SELECT * FROM sessions ORDER BY session_id")
    # The file as the previous version left it: without the last migration's table and version row.
    store.cursor().execute("DROP INDEX session_locations_session")
    store.cursor().execute("DELETE FROM schema_version WHERE version = ?", [SCHEMA_VERSION])
    store.close()

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
    indexes = {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    assert "session_locations_session" not in indexes and "half_done" not in tables
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION - 1
    con.close()

    store = Store.open(db)  # this version migrates it whole
    assert store.schema_version() == SCHEMA_VERSION
    assert store.scalar("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'session_locations_session'") == 1
    assert store.frame("SELECT * FROM sessions ORDER BY session_id").equals(before)
    store.close()
