"""While `serve` holds the database, `ingest`, `settings`, `sessions detect`, `sessions export` and `backup` run through
the server's local administration API with the same output and exit codes; 20 API readers get only 200s and
consistent pages during an import."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import polars as pl
import pytest

from bench.common import fleet_readings
from tests.conftest import bearer, served_twin

REJECTED = "entity_id,ts,power_kw,soc_pct\nev-x,2025-02-01T10:00:00Z,0,50\nev-x,2025-02-01T10:05:00Z,7.4,150\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    yield from served_twin(tmp_path_factory.mktemp("admin"))


def test_ingest_while_serving_lands_through_the_server_with_the_same_output(demo, cli, tmp_path):
    server, twin = demo
    source = tmp_path / "upload.csv"
    source.write_text(REJECTED)
    through = cli("ingest", str(source), "--rejects", str(tmp_path / "through.csv"), db=server.db)
    here = cli("ingest", str(source), "--rejects", str(tmp_path / "here.csv"), db=twin)
    assert (
        (through.code, through.out, through.err)
        == (here.code, here.out, here.err)
        == (
            0,
            "upload.csv: read 2, stored 1, duplicate 0, conflict 0, rejected 1\n",
            "",
        )
    )
    assert (tmp_path / "through.csv").read_bytes() == (tmp_path / "here.csv").read_bytes()
    last = httpx.get(f"{server.url}/api/v1/entities/ev-x/readings/last", headers=bearer(server), timeout=10)
    assert last.status_code == 200 and last.json()["timestamp"] == "2025-02-01T10:00:00Z"


def test_a_refused_file_is_refused_the_same_way_through_the_server(demo, cli, tmp_path):
    server, twin = demo
    source = tmp_path / "bad.csv"
    source.write_text("entity_id,ts,power_kw\nev,not a time,1\n")
    through, here = cli("ingest", str(source), db=server.db), cli("ingest", str(source), db=twin)
    assert (through.code, through.out, through.err) == (here.code, here.out, here.err)
    assert through.code == 2 and through.err.startswith("bad.csv: refused: bad.csv has no usable row")


def test_jobs_are_found_by_id_only(demo):
    server, _ = demo
    reply = httpx.get(f"{server.url}/api/v1/jobs/nope", headers=bearer(server), timeout=10)
    assert reply.status_code == 404 and reply.json()["title"] == "NotFound"
    reply = httpx.post(f"{server.url}/api/v1/imports", params={"format": "nope"}, headers=bearer(server),
                       files={"file": ("x.csv", b"a,b\n")}, timeout=10)  # fmt: skip
    assert reply.status_code == 400 and reply.json()["errors"] == {"query.format": "unknown"}


def test_twenty_readers_during_an_import_get_only_200s_and_whole_pages(demo, cli, tmp_path):
    server, _ = demo
    source = tmp_path / "fleet.csv"
    frame = fleet_readings(200_000, 10).select(
        pl.format("new-{}", "entity_id").alias("entity_id"), pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "power_kw"
    )
    frame.write_csv(source)
    headers = bearer(server)
    before = {e["id"] for e in _all_entities(server, headers)}
    new = set(frame.get_column("entity_id").unique().to_list())
    seen: list[tuple[int, frozenset]] = []
    failures: list[str] = []
    done = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=f"{server.url}/api", headers=headers, timeout=60) as http:
            while not done.is_set():
                try:
                    ids = frozenset(e["id"] for e in _all_entities(server, headers, http))
                    seen.append((200, ids))
                except AssertionError as exc:
                    failures.append(str(exc))

    readers = [threading.Thread(target=read) for _ in range(20)]
    for reader in readers:
        reader.start()
    try:
        result = cli("ingest", str(source), db=server.db)
    finally:
        done.set()
        for reader in readers:
            reader.join(60)
    assert result.code == 0 and result.out.startswith("fleet.csv: read 200000, stored 200000"), result.err
    assert not failures, failures[:3]
    assert len(seen) >= 20
    # every listing is the set before the import or the set after it, never a part of the new entities
    assert {ids for _, ids in seen} <= {frozenset(before), frozenset(before | new)}
    assert {e["id"] for e in _all_entities(server, headers)} == before | new


def _all_entities(server, headers, http: httpx.Client | None = None) -> list[dict]:
    http = http or httpx.Client(base_url=f"{server.url}/api", headers=headers, timeout=60)
    items, token = [], None
    while True:
        params = {"pageSize": 7, **({"continuationToken": token} if token else {})}
        reply = http.get("/v1/entities", params=params)
        assert reply.status_code == 200, f"{reply.status_code} {reply.text[:200]}"
        page = reply.json()
        items += page["data"]
        token = page["meta"]["continuationToken"]
        if not token or not page["data"]:
            return items


def test_settings_detect_export_and_backup_while_serving_match_the_same_commands_here(demo, cli, tmp_path):
    """Every answer through the server equals the same command on a twin database the CLI opens itself."""
    server, twin = demo
    for args in (
        ("settings", "set", "max_pause_min", "20"),
        ("settings", "set", "max_pause_min", "-3"),  # refused the same way: exit 2, one sentence
        ("settings", "list"),
        ("sessions", "detect", "--min-power-kw", "1.5", "--entity", "ev-01", "--save"),
        ("sessions", "detect", "--max-gap-min", "0"),
        ("settings", "list"),
    ):
        through, here = cli(*args, db=server.db), cli(*args, db=twin)
        assert (through.code, through.out, through.err) == (here.code, here.out, here.err), args
    for fmt in ("csv", "xlsx"):
        args = ("sessions", "export", "--format", fmt, "--entity", "ev-01", "--start", "2025-03-01")
        through = cli(*args, "--out", str(tmp_path / f"through.{fmt}"), db=server.db)
        here = cli(*args, "--out", str(tmp_path / f"here.{fmt}"), db=twin)
        assert through.code == here.code == 0
        assert (tmp_path / f"through.{fmt}").read_bytes() == (tmp_path / f"here.{fmt}").read_bytes()
    assert (tmp_path / "through.csv").read_text().count("\n") > 1

    copy = tmp_path / "copy.duckdb"
    made = cli("backup", str(copy), db=server.db)
    assert (made.code, made.out) == (0, f"backup written to {copy}\n")
    again = cli("backup", str(copy), db=server.db)
    assert again.code == 2 and "already exists" in again.err
    listed = cli("sessions", "export", "--format", "csv", db=copy)  # the copy holds what the server holds
    assert listed.code == 0 and listed.out == cli("sessions", "export", "--format", "csv", db=server.db).out


def test_api_requests_skip_the_dashboard_layers_and_the_dashboard_keeps_them(demo):
    server, _ = demo
    auth = bearer(server)
    # An id that looks like a path climb is just an id to the API: its one error shape, not the dashboard's
    # plain-text refusal of unsafe file paths.
    climb = httpx.get(f"{server.url}/api/v1/entities/..%2F..%2Fetc", headers=auth, timeout=10)
    assert climb.status_code == 404 and climb.json()["title"] == "NotFound"
    assert climb.headers["x-content-type-options"] == "nosniff"
    small = httpx.get(f"{server.url}/api/health", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert small.status_code == 200 and "content-encoding" not in small.headers
    large = httpx.get(f"{server.url}/api/openapi.json", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert large.headers["content-encoding"] == "gzip" and large.json()["info"]["title"] == "ChargeLens API"
    assert httpx.get(f"{server.url}/", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/_stcore/health", timeout=10).text == "ok"
    # A request line over the HTTP parser's limit is refused before any app sees it, still in the one error shape.
    # (sent by hand: httpx itself refuses so long an address)
    line = "/api/v1/sessions/export?" + "&".join(["entity="] * 12_000)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(f"GET {line} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        reply = b"".join(iter(lambda: raw.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
    assert b"x-content-type-options: nosniff" in head
    problem = json.loads(body)
    assert problem["title"] == "BadRequest" and problem["status"] == 400 and "shorter" in problem["detail"]
    unsafe = httpx.get(f"{server.url}/static/..%2F..%2Fetc%2Fpasswd", timeout=10)
    assert unsafe.status_code in (400, 404) and "root:" not in unsafe.text
