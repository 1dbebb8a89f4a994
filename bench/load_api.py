"""API load: many clients reading the Charge Sessions API of the real server at once, on a generated fleet.

Each client (an asyncio task with its own connection) authenticates, then for --seconds repeats a mix of the calls
an integration makes: a page of entities, one entity, its features, its last reading, and a page of its sessions
(pageSize 100, a 30-day window). Prints requests, requests/s, errors (anything but 200) and latency percentiles,
plus the server's peak memory. The fleet is bench_pages' generated database (default 10 000 sessions; the
figure asked for is --sessions 100000), cached and reused. Targets: zero errors, p99 <= 500 ms.
The baseline in the same run is /api/health under the same load: what the server costs before any query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import FleetSize, Server, fleet_database  # noqa: E402
from core.credentials import load_or_create  # noqa: E402
from core.store import Store  # noqa: E402

WINDOW_DAYS = 30
ROUTE = re.compile(r"/entities/[^/]+")


def entity_ids(db: Path) -> tuple[list[str], str]:
    store = Store.open(db)
    try:
        ids = store.frame("SELECT entity_id FROM entities ORDER BY 1").get_column("entity_id").to_list()
        last = store.scalar("SELECT max(start_utc) FROM sessions")
    finally:
        Store.close_all()
    return ids, last.strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def client(url: str, token: str, ids: list[str], until: float, health_only: bool, out: list) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(len(out))
    async with httpx.AsyncClient(base_url=f"{url}/api", headers=headers, timeout=30) as http:
        while time.monotonic() < until:
            if health_only:
                calls = [("/health", {})]
            else:
                entity = rng.choice(ids)
                start = f"{2025 - rng.randint(0, 1)}-{rng.randint(1, 12):02d}-01T00:00:00Z"
                calls = [
                    ("/v1/entities", {"pageSize": 100}),
                    (f"/v1/entities/{entity}", {}),
                    (f"/v1/entities/{entity}/features", {}),
                    (f"/v1/entities/{entity}/readings/last", {}),
                    (f"/v1/entities/{entity}/charge-sessions", {"start": start, "pageSize": 100}),
                ]
            for path, params in calls:
                t0 = time.perf_counter()
                try:
                    reply = await http.get(path, params=params)
                    status = reply.status_code
                except httpx.HTTPError as exc:
                    status = exc.__class__.__name__
                out.append((ROUTE.sub("/{entityId}", path), status, time.perf_counter() - t0))


async def load(url: str, token: str, ids: list[str], clients: int, seconds: float, health_only: bool) -> list:
    out: list = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(url, token, ids, until, health_only, out) for _ in range(clients)))
    return out


def summary(label: str, results: list, seconds: float) -> dict:
    latencies = [r[2] for r in results]
    errors = [r for r in results if r[1] not in (200, 404)]  # 404: an entity without readings has no last one
    line = {
        "label": label,
        "requests": len(results),
        "per_s": len(results) / seconds,
        "errors": len(errors),
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies, default=float("nan")),
    }
    print(
        f"{label:<28} {line['requests']:>8,} requests {line['per_s']:8.1f}/s  errors {line['errors']:>4}  "
        f"p50 {line['p50_ms']:7.1f} ms  p95 {line['p95_ms']:7.1f} ms  p99 {line['p99_ms']:7.1f} ms  "
        f"max {line['max_ms']:7.1f} ms"
    )
    if errors:
        print(f"  first errors: {errors[:5]}")
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "chargelens-bench"))
    args = parser.parse_args()
    source, built = fleet_database(Path(args.cache), FleetSize(args.sessions, args.readings, args.entities))
    print(f"fleet: {source.name} ({'reused' if built is None else f'built in {built:.1f} s'})")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "chargelens.duckdb"
        shutil.copy(source, db)
        ids, _ = entity_ids(db)
        server = Server(db)
        try:
            token = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(db), timeout=30).json()
            token = token["access_token"]
            base = asyncio.run(load(server.url, token, ids, args.clients, min(10.0, args.seconds), True))
            summary("/api/health (baseline)", base, min(10.0, args.seconds))
            results = asyncio.run(load(server.url, token, ids, args.clients, args.seconds, False))
            line = summary(f"API mix, {args.clients} clients", results, args.seconds)
            by_call: dict[str, list] = {}
            for r in results:
                by_call.setdefault(r[0], []).append(r)
            for call, rows in sorted(by_call.items()):
                summary(f"  {call}", rows, args.seconds)
        finally:
            peak = server.stop()
    print(f"peak server memory {peak:,.0f} MB; median latency {statistics.median(r[2] for r in results) * 1000:.1f} ms")
    ok = line["errors"] == 0 and line["p99_ms"] <= 500
    print(json.dumps({"pass": ok, **line, "peak_mb": round(peak)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
