"""API load: many clients reading the Charge Sessions API of the real server at once while an import runs.

The server is `python -m core --db DB serve` on a loopback port (bench_pages' `Server`), serving a copy of
bench_pages' generated fleet (default 100 000 sessions, 10 million readings, 400 entities: the acceptance figure;
cached under the temp folder by size and reused). For --seconds, --clients clients (default 50) each:
  - authenticate themselves first (POST /api/v1/authentication with the local credentials; counted as a call),
  - then repeat a cycle of the calls an integration makes: the next page of entities (pageSize 100, following
    the listing's continuation token across cycles and starting again after its last page), one entity, its
    features, its last reading, and all of its charge sessions in a 90-day window, page by page (pageSize 25, the
    platform's default) by following `links.next` until it is null (API.md), then another entity and window.
Each listing is checked as it is read: sessions ordered by start (shown to the second) with no id twice, starts
inside the window, links.next null exactly when meta.continuationToken is; a listing that breaks this counts as
an error ("inconsistent").

Meanwhile an import runs through the server as `ingest` sends it while a server holds the database (POST
/api/v1/imports, multipart, then GET /api/v1/jobs/{id} until done): a generated CSV of minute readings (288 000
rows: 20 existing entities x 10 days, after the fleet's last day, so every round stores new readings and detects
the sessions of those entities again), then the next 10 days, until the load ends. Each round's outcome (the
import summary line, seconds, when it started) is printed; import calls are not part of the latency figures.

Printed: for /api/health alone (the baseline: what the server costs before any query) and for the mix, requests,
requests/s, errors (anything but 200; a 404 of a last reading is allowed: an entity may have no readings) and
latency p50/p95/p99/max, overall and per call, and the mix's p99 per 10 s of the run (spikes line up with the
imports' commits); the CPU time per request of the server (its process tree, from /proc; the import's work
included) and of the load generator; the generator's event-loop lag (how late a 10 ms timer fires): when that is
high, the generator and not the server adds to the latencies. Targets: zero errors, p99 <= 500 ms. --no-import
measures the reads alone.

The load generator is measured so as not to be the bottleneck: clients are asyncio tasks with one
httpx.AsyncClient each (one keep-alive connection per client, as separate integrations would have; 50 connections
in all), spread over --processes worker processes (default 2). httpx costs the generator 1.2-1.4 ms of CPU per
request; at the ~450 requests/s of the /api/health baseline one process used 54 % of a core and its event loop ran
late by 11 ms (p50) / 55 ms (p99), which would be added to every latency; two processes brought the lag to 2 ms
(p50). During the mix (~2 ms of generator CPU per request at 100-150 requests/s) it uses about 20-25 % of a core.
With 2 cores the generator still shares the CPU with the server, which the printed CPU split shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import FleetSize, Server, _tree, fleet_database  # noqa: E402
from core.credentials import load_or_create  # noqa: E402
from core.store import Store  # noqa: E402

WINDOW_DAYS = 90
SESSIONS_PAGE = 25
FIRST = {"pageSize": 100}  # the first page of entities; later ones follow links.next
ROUTE = re.compile(r"/entities/[^/?]+")
IMPORT_ENTITIES, IMPORT_DAYS = 20, 10
TICK_S = 0.010
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    """What every client process needs: where the server is, how to authenticate, which entities exist."""

    url: str
    credentials: dict
    ids: list[str]
    seconds: float
    health_only: bool


def fleet_facts(db: Path) -> tuple[list[str], list[str], datetime]:
    """Entity ids, those that charge (EVs and charge points), and the last reading's time of the fleet."""
    store = Store.open(db)
    try:
        entities = store.frame("SELECT entity_id, entity_type FROM entities ORDER BY 1")
        last = store.scalar("SELECT max(ts) FROM readings")
    finally:
        Store.close_all()
    charging = entities.filter(pl.col("entity_type") != "Battery").get_column("entity_id").to_list()
    return entities.get_column("entity_id").to_list(), charging, last


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _label(url: str) -> str:
    path = httpx.URL(url).path.removeprefix("/api")
    return ROUTE.sub("/entities/{entityId}", path)


class Client:
    """One integration: its own connection and token, its own random choices."""

    def __init__(self, http: httpx.AsyncClient, plan: Plan, seed: int, out: list):
        self.http, self.plan, self.out = http, plan, out
        self.rng = random.Random(seed)
        self.entities_next: str | None = None

    async def call(self, method: str, url: str, **kwargs) -> httpx.Response | None:
        started, t0 = time.time(), time.perf_counter()
        try:
            reply = await self.http.request(method, url, **kwargs)
            status = reply.status_code
        except httpx.HTTPError as exc:
            reply, status = None, exc.__class__.__name__
        self.out.append((_label(url), status, time.perf_counter() - t0, started))
        return reply

    async def authenticate(self) -> bool:
        reply = await self.call("POST", "/v1/authentication", json=self.plan.credentials)
        if reply is None or reply.status_code != 200:
            return False
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
        return True

    async def cycle(self, until: float) -> None:
        entity = self.rng.choice(self.plan.ids)
        listing = {"url": self.entities_next} if self.entities_next else {"url": "/v1/entities", "params": FIRST}
        page = await self.call("GET", **listing)
        if page is not None and page.status_code == 200:
            self.entities_next = page.json()["links"]["next"]
        for path in (
            f"/v1/entities/{entity}",
            f"/v1/entities/{entity}/features",
            f"/v1/entities/{entity}/readings/last",
        ):
            if time.monotonic() >= until:
                return
            await self.call("GET", path)
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=self.rng.randrange(365 - WINDOW_DAYS))
        await self.sessions(entity, start, start + timedelta(days=WINDOW_DAYS), until)

    async def sessions(self, entity: str, start: datetime, end: datetime, until: float) -> None:
        """Every page of one listing, following links.next; a page out of order is recorded as inconsistent."""
        window = (start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"))
        url: str | None = f"/v1/entities/{entity}/charge-sessions"
        params: dict | None = {"start": window[0], "end": window[1], "pageSize": SESSIONS_PAGE}
        last, seen = "", set()
        while url is not None and time.monotonic() < until:
            reply = await self.call("GET", url, params=params)
            if reply is None or reply.status_code != 200:
                return
            body = reply.json()
            starts = [last, *(s["data"]["start"] for s in body["data"])]
            ids = [s["id"] for s in body["data"]]
            # Starts are shown to the second, so two sessions in one second may look tied: ids must not repeat.
            ordered = all(a <= b for a, b in zip(starts, starts[1:], strict=False)) and seen.isdisjoint(ids)
            inside = all(window[0] <= s < window[1] for s in starts[1:])
            url, token = body["links"]["next"], body["meta"]["continuationToken"]
            if not ordered or not inside or len(set(ids)) != len(ids) or (url is None) != (token is None):
                self.out.append((_label(str(reply.request.url)), "inconsistent", 0.0, time.time()))
                return
            seen.update(ids)
            if not ids:
                return
            last, params = starts[-1], None

    async def run(self, until: float) -> None:
        if not await self.authenticate():
            return
        while time.monotonic() < until:
            if self.plan.health_only:
                await self.call("GET", "/health")
            else:
                await self.cycle(until)


async def _lag(until: float, out: list) -> None:
    """How late a short timer fires: the generator's own queueing, added to every latency it measures."""
    while time.monotonic() < until:
        t0 = time.perf_counter()
        await asyncio.sleep(TICK_S)
        out.append(time.perf_counter() - t0 - TICK_S)


async def _clients(plan: Plan, seeds: list[int], start_at: float) -> tuple[list, list]:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    until = time.monotonic() + plan.seconds
    out: list = []
    lags: list = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=f"{plan.url}/api", timeout=30, limits=limits))
            for _ in seeds
        ]
        await asyncio.gather(
            _lag(until, lags), *(Client(h, plan, seed, out).run(until) for h, seed in zip(https, seeds, strict=True))
        )
    return out, lags


def worker(plan: Plan, seeds: list[int], start_at: float) -> tuple[list, list, float]:
    """One process of clients; returns their calls, the loop lags and the CPU seconds this process used."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    out, lags = asyncio.run(_clients(plan, seeds, start_at))
    after = resource.getrusage(resource.RUSAGE_SELF)
    return out, lags, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree so far (children that ended are not counted: the server's stay)."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def load(pool: ProcessPoolExecutor, plan: Plan, clients: int, processes: int, start_at: float):
    """Calls, loop lags and generator CPU seconds of `clients` clients spread over `processes` processes."""
    shares = [list(range(i, clients, processes)) for i in range(processes)]
    futures = [pool.submit(worker, plan, seeds, start_at) for seeds in shares if seeds]
    results = [f.result() for f in futures]
    return (
        [r for out, _, _ in results for r in out],
        [x for _, lags, _ in results for x in lags],
        sum(cpu for _, _, cpu in results),
    )


def windows(results: list, start_at: float, seconds: float, width: int = 10) -> str:
    """p99 latency per `width`-second window of the run (by the time a call started), to see spikes."""
    cells = []
    for begin in range(0, int(seconds), width):
        inside = [r[2] for r in results if begin <= r[3] - start_at < begin + width and r[1] != "inconsistent"]
        cells.append(f"{begin}-{begin + width} s: {1000 * percentile(inside, 0.99):.0f}")
    return ", ".join(cells)


# -- the import running meanwhile ------------------------------------------------------------------------------
def import_csv(path: Path, entities: list[str], first_day: datetime, days: int) -> int:
    """Minute readings of `entities` for `days` from `first_day`: 7.4 kW from 18:00 to 21:00 each day, else idle."""
    minutes = np.arange(days * 1440, dtype=np.int64)
    charging = (minutes % 1440 >= 18 * 60) & (minutes % 1440 < 21 * 60)
    start_us = int(first_day.timestamp() * 1_000_000)
    frames = [
        pl.DataFrame(
            {
                "entity_id": entity,
                "ts": pl.Series(start_us + (minutes * 60 + n) * 1_000_000).cast(pl.Datetime("us", "UTC")),
                "power_kw": np.where(charging, 7.4, 0.0),
            }
        )
        for n, entity in enumerate(entities)
    ]
    frame = pl.concat(frames).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame.write_csv(path)
    return frame.height


class Importer(threading.Thread):
    """Imports one generated file after another through the server until stopped; prints each round's outcome."""

    def __init__(self, url: str, credentials: dict, entities: list[str], first_day: datetime, folder: Path):
        super().__init__(daemon=True)
        self.url, self.credentials, self.entities = url, credentials, entities
        self.first_day, self.folder = first_day, folder
        self.halt = threading.Event()
        self.rounds: list[dict] = []
        self.load_start = 0.0  # wall time the clients start, for the printed offsets

    def run(self) -> None:
        with httpx.Client(base_url=f"{self.url}/api", timeout=120) as http:
            token = http.post("/v1/authentication", json=self.credentials).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            day = self.first_day
            while not self.halt.is_set():
                self.rounds.append(self.one(http, day))
                day += timedelta(days=IMPORT_DAYS)

    def one(self, http: httpx.Client, day: datetime) -> dict:
        path = self.folder / f"readings-{day:%Y%m%d}.csv"
        rows = import_csv(path, self.entities, day, IMPORT_DAYS)
        t0 = time.time()
        try:
            with path.open("rb") as fh:
                reply = http.post("/v1/imports", files={"file": (path.name, fh, "text/csv")})
            if reply.status_code != 202:
                return self.report(rows, t0, f"refused: {reply.status_code} {reply.text[:200]}")
            job_id = reply.json()["jobId"]
            while True:
                job = http.get(f"/v1/jobs/{job_id}").json()
                if job["state"] in ("done", "failed"):
                    break
                time.sleep(0.5)
        except httpx.HTTPError as exc:
            return self.report(rows, t0, f"failed: {exc!r}")
        finally:
            path.unlink(missing_ok=True)
        if job["state"] == "failed":
            return self.report(rows, t0, f"failed: {job['error']}")
        return self.report(rows, t0, job["result"]["summary"]["line"], ok=True)

    def report(self, rows: int, t0: float, outcome: str, ok: bool = False) -> dict:
        seconds = time.time() - t0
        since = f"{t0 - self.load_start:+.0f} s" if self.load_start else "?"
        print(f"  import of {rows:,} readings from {since} into the load: {outcome} ({seconds:.1f} s)", flush=True)
        return {"rows": rows, "ok": ok, "seconds": seconds, "outcome": outcome}


# -- the report --------------------------------------------------------------------------------------------------
def summary(label: str, results: list, seconds: float) -> dict:
    latencies = [r[2] for r in results if r[1] != "inconsistent"]
    errors = [r for r in results if r[1] != 200 and not (r[1] == 404 and r[0].endswith("/readings/last"))]
    line = {
        "label": label,
        "requests": len(latencies),
        "per_s": len(latencies) / seconds,
        "errors": len(errors),
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies, default=float("nan")),
    }
    print(
        f"{label:<42} {line['requests']:>8,} requests {line['per_s']:8.1f}/s  errors {line['errors']:>4}  "
        f"p50 {line['p50_ms']:7.1f} ms  p95 {line['p95_ms']:7.1f} ms  p99 {line['p99_ms']:7.1f} ms  "
        f"max {line['max_ms']:7.1f} ms"
    )
    if errors:
        print(f"  first errors: {errors[:5]}")
    return line


def run_phase(label: str, pool, plan: Plan, args, server: Server, by_call: bool, start_at: float) -> dict:
    cpu0 = cpu_seconds(server.proc.pid)
    results, lags, client_cpu = load(pool, plan, args.clients, args.processes, start_at)
    server_cpu = cpu_seconds(server.proc.pid) - cpu0
    line = summary(label, results, plan.seconds)
    if by_call:
        print(f"  p99 ms by start time: {windows(results, start_at, plan.seconds)}")
        calls: dict[str, list] = {}
        for r in results:
            calls.setdefault(r[0], []).append(r)
        for call, rows in sorted(calls.items()):
            summary(f"  {call}", rows, plan.seconds)
    n = max(1, line["requests"])
    print(
        f"  CPU per request: server {1000 * server_cpu / n:.2f} ms ({server_cpu / plan.seconds:.0%} of a core), "
        f"load generator {1000 * client_cpu / n:.2f} ms ({client_cpu / plan.seconds:.0%} of a core over "
        f"{args.processes} processes); generator loop lag p50 {1000 * percentile(lags, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(lags, 0.99):.1f} ms",
        flush=True,
    )
    return {**line, "server_cpu_ms": 1000 * server_cpu / n, "client_cpu_ms": 1000 * client_cpu / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=400)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--no-import", action="store_true", help="measure the reads alone, without the import")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "chargelens-bench"))
    args = parser.parse_args()
    source, built = fleet_database(Path(args.cache), FleetSize(args.sessions, args.readings, args.entities))
    print(f"fleet: {source.name} ({'reused' if built is None else f'built in {built:.1f} s'})")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before serving", flush=True)
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.processes) as pool:
        db = Path(folder) / "chargelens.duckdb"
        shutil.copy(source, db)
        ids, charging, last = fleet_facts(db)
        credentials = load_or_create(db)
        first_day = datetime.combine(last.date() + timedelta(days=1), datetime.min.time(), UTC)
        server = Server(db)
        importer = None
        try:
            health = Plan(server.url, credentials, ids, min(10.0, args.seconds), health_only=True)
            run_phase("/api/health (baseline)", pool, health, args, server, False, time.time() + 1.0)
            start_at = time.time() + 1.0  # every process starts its clients at this moment
            if not args.no_import:
                movers = charging[:: max(1, len(charging) // IMPORT_ENTITIES)]
                importer = Importer(server.url, credentials, movers[:IMPORT_ENTITIES], first_day, Path(folder))
                importer.load_start = start_at
                importer.start()
            plan = Plan(server.url, credentials, ids, args.seconds, health_only=False)
            label = f"API mix, {args.clients} clients" + ("" if args.no_import else ", import running")
            line = run_phase(label, pool, plan, args, server, True, start_at)
            if importer is not None:
                importer.halt.set()
                importer.join()
        finally:
            peak = server.stop()
    rounds = importer.rounds if importer is not None else []
    imports_ok = all(r["ok"] for r in rounds)
    if importer is not None:
        done = [r["seconds"] for r in rounds if r["ok"]]
        median = f", median {statistics.median(done):.1f} s" if done else ""
        print(f"imports during the load: {len(rounds)} rounds, {sum(r['ok'] for r in rounds)} done{median}")
    print(f"peak server memory {peak:,.0f} MB")
    ok = line["errors"] == 0 and line["p99_ms"] <= 500 and imports_ok
    print(json.dumps({"pass": ok, **line, "imports": len(rounds), "imports_ok": imports_ok, "peak_mb": round(peak)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
