"""Shared fixtures: a real DuckDB file per test, the CLI as a subprocess, free loopback ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.common import Server, free_port  # noqa: F401  (tests import free_port from here)
from core.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chargelens.duckdb"


@pytest.fixture
def store(db_path: Path):
    db = Store.open(db_path)
    yield db
    db.close()


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(db_path: Path):
    """Run `python -m core --db <tmp db> ...` in a subprocess, as a user would."""

    def run(*args: str, stdin: str | None = None, db: Path | None = None, cwd: Path | None = None) -> Run:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_")}
        proc = subprocess.run(
            [sys.executable, "-m", "core", "--db", str(db or db_path), *args],
            capture_output=True, text=True, input=stdin, env=env, cwd=cwd or ROOT, timeout=300,
        )  # fmt: skip
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def served_twin(folder: Path):
    """A demo database served by a real server, and a twin copy the CLI opens itself, for comparing a command run
    through the server (local administration) with the same command run here."""
    from tests.e2e.conftest import load_demo

    db = folder / "chargelens.duckdb"
    load_demo(db)
    twin = folder / "twin.duckdb"
    shutil.copy(db, twin)
    server = Server(db)
    try:
        yield server, twin
    finally:
        server.stop()


def bearer(server: Server) -> dict:
    """The Authorization header of a client holding the server's local credentials."""
    from core.credentials import load_or_create

    token = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(server.db), timeout=10)
    return {"Authorization": f"Bearer {token.json()['access_token']}"}
