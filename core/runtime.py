"""The serving process's start and stop: open (and migrate) the store, announce the server beside the database."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from core.settings import database_path
from core.store import Store, server_file


@contextlib.contextmanager
def serving(url: str, db_path: Path | None = None):
    """Hold the database for the server's lifetime and write chargelens.server.json (removed at a clean stop)."""
    db = db_path or database_path()
    store = Store.open(db)
    marker = server_file(db)
    marker.write_text(json.dumps({"pid": os.getpid(), "url": url, "database": db.name}))
    try:
        yield store
    finally:
        with contextlib.suppress(OSError):
            if json.loads(marker.read_text()).get("pid") == os.getpid():
                marker.unlink()
        Store.close_all()
