"""The serving process's start and stop: open (and migrate) the store, announce the server beside the database."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from core.daily import DailyPull
from core.settings import database_path
from core.store import Store, server_file


def _log_to_stderr() -> None:
    """The server's own messages (daily pull, API failures) go to its standard error, beside Streamlit's."""
    logger = logging.getLogger("chargelens")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def serving(url: str, db_path: Path | None = None):
    """Hold the database for the server's lifetime and write chargelens.server.json (removed at a clean stop);
    meanwhile keep a connected remote platform current with the daily pull (core.daily)."""
    _log_to_stderr()
    db = db_path or database_path()
    store = Store.open(db)
    marker = server_file(db)
    marker.write_text(json.dumps({"pid": os.getpid(), "url": url, "database": db.name}))
    daily = DailyPull(db).start()
    try:
        yield store
    finally:
        daily.stop()
        with contextlib.suppress(OSError):
            if json.loads(marker.read_text()).get("pid") == os.getpid():
                marker.unlink()
        Store.close_all()
