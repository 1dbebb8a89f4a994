"""The API app: health, the one error shape, security headers (in process; the real server is in e2e)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from core.api import create_app
from core.store import SCHEMA_VERSION, Store


@pytest.fixture
def client(db_path, monkeypatch):
    monkeypatch.setenv("CHARGELENS_DB", str(db_path))
    with TestClient(create_app()) as c:
        yield c
    Store.close_all()


def test_health_names_the_database_file_only(client, db_path):
    reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "version": "0.1.0",
                            "database": {"file": db_path.name, "schemaVersion": SCHEMA_VERSION}}  # fmt: skip
    assert str(db_path.parent) not in reply.text
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["referrer-policy"] == "no-referrer"


def test_unknown_route_gets_the_error_shape(client):
    reply = client.get("/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.json()["title"] == "NotFound" and "detail" in reply.json()
    assert reply.headers["content-security-policy"] == "default-src 'none'"


def test_health_is_unavailable_when_the_database_cannot_be_opened(tmp_path, monkeypatch):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database" * 100)
    monkeypatch.setenv("CHARGELENS_DB", str(bad))
    with TestClient(create_app()) as c:
        reply = c.get("/health")
    assert reply.status_code == 503 and reply.json()["status"] == "unavailable"
    assert "Traceback" not in reply.text
