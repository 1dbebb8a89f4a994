"""Backups: a consistent copy of the database into a new file, and restoring one in place of the database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from core.errors import InputError
from core.store import SCHEMA_VERSION, Store


def backup(store: Store, target: Path) -> Path:
    """Copy every table into a new DuckDB file (in one transaction: a consistent copy even while others write)."""
    target = Path(target).resolve()
    if target.exists():
        raise InputError(f"{target} already exists; choose a new file name for the backup.")
    if not target.parent.is_dir():
        raise InputError(f"The folder {target.parent} does not exist; create it or choose another place.")
    cur = store.cursor()
    source = cur.execute("SELECT current_database()").fetchall()[0][0]
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        cur.execute("ATTACH ? AS chargelens_backup", [str(partial)])
        try:
            cur.execute(f'COPY FROM DATABASE "{source}" TO chargelens_backup')
        finally:
            cur.execute("DETACH chargelens_backup")
        os.replace(partial, target)
    except (duckdb.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise InputError(
            f"The backup could not be written to {target} ({str(exc).splitlines()[0][:200]}); "
            "check the free space and the folder's permissions."
        ) from None
    return target


def check_backup(source: Path) -> int:
    """The schema version of a backup file, refusing files that are not ChargeLens databases this version knows."""
    source = Path(source).resolve()
    if not source.is_file():
        raise InputError(f"{source} does not exist; check the path.")
    try:
        con = duckdb.connect(str(source), read_only=True)
        try:
            version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
            con.execute("SELECT count(*) FROM entities").fetchall()
        finally:
            con.close()
    except duckdb.Error:
        raise InputError(f"{source.name} is not a ChargeLens database; choose a file made by `backup`.") from None
    if version is None or version > SCHEMA_VERSION:
        raise InputError(f"{source.name} was written by a newer ChargeLens (schema {version}); upgrade ChargeLens.")
    return int(version)


def restore(db_path: Path, source: Path) -> None:
    """Replace the database with a backup (the database must not be in use; the old file is kept as .before-restore)."""
    check_backup(source)
    db_path = Path(db_path).resolve()
    Store.open(db_path).close()  # one clear sentence when a server or another process holds it
    staged = db_path.with_name(db_path.name + ".restoring")
    shutil.copyfile(source, staged)
    if db_path.exists():
        os.replace(db_path, db_path.with_name(db_path.name + ".before-restore"))
    db_path.with_name(db_path.name + ".wal").unlink(missing_ok=True)
    os.replace(staged, db_path)
    Store.open(db_path)  # migrates an older backup to the current schema
