"""The DuckDB store: migrations, version refusal, one sentence when another process holds the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from core.errors import DatabaseBusy, DatabaseError
from core.store import SCHEMA_VERSION, Store


def test_new_database_is_migrated_to_the_current_version(store):
    assert store.schema_version() == SCHEMA_VERSION
    tables = {r[0] for r in store.cursor().execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"entities", "features", "readings", "sessions", "locations", "tariffs", "imports", "settings"} <= tables


def test_older_database_is_upgraded(db_path):
    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ)")
    con.close()  # version 0: nothing applied yet
    store = Store.open(db_path)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_newer_database_is_refused_with_a_clear_message(db_path):
    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ)")
    con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(DatabaseError, match="newer ChargeLens") as info:
        Store.open(db_path)
    assert info.value.title == "DatabaseTooNew"
    Store.close_all()


def test_not_a_database_is_refused_with_a_clear_message(db_path):
    db_path.write_bytes(b"this is not a database file" * 1000)
    with pytest.raises(DatabaseError, match="--db"):
        Store.open(db_path)


def test_file_held_by_another_process_gives_one_sentence(db_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(db_path)!r}); print("ready", flush=True); sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseBusy) as info:
            Store.open(db_path)
        message = info.value.detail
        assert f"pid {holder.pid}" in message and "try again" in message
        assert "\n" not in message
    finally:
        holder.communicate("", timeout=10)


def test_each_thread_gets_its_own_cursor(store):
    import threading

    seen = []
    threads = [threading.Thread(target=lambda: seen.append(store.scalar("SELECT count(*) FROM entities")))
               for _ in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [0] * 8


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO settings VALUES ('display_timezone', 'UTC')")
        raise RuntimeError("boom")
    assert store.stored_settings() == {}
