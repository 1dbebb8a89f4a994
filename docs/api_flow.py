"""The Charge Sessions API flow of API.md, from the outside: nothing here knows ChargeLens beyond that document.

    .venv/bin/python -m core api credentials | .venv/bin/python docs/api_flow.py --url http://127.0.0.1:8501/api

Authenticates with the client credentials read from standard input, lists the entities, switches
CaptureChargeSessions on for each and reports the refusals, sets a battery capacity where one is required,
pages through an entity's sessions at page sizes 1, 7 and 1000 (they must agree, with no duplicates), and shows
that the entity's sessions are not listed while its feature is off. It changes the database it talks to: the
features it switched on stay on and the capacity it set stays set. Exit code 0 when every step held, 1 otherwise.
Needs only httpx.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

FEATURE = "CaptureChargeSessions"
CAPACITY_KWH = 60.0
EVER = "2000-01-01T00:00:00Z"


class FlowFailed(Exception):
    pass


class Api:
    def __init__(self, base_url: str, client_id: str, client_secret: str):
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=60)
        reply = self.http.post("/v1/authentication", json={"clientId": client_id, "clientSecret": client_secret})
        self.expect(reply, 200, "authentication")
        body = reply.json()
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"
        self.expires_in = body["expires_in"]

    @staticmethod
    def expect(reply: httpx.Response, status: int, what: str) -> None:
        if reply.status_code != status:
            raise FlowFailed(f"{what}: expected {status}, got {reply.status_code}: {reply.text[:300]}")

    def pages(self, path: str, **params) -> list[dict]:
        """Every item of a paged list, following continuationToken until it is null or a page is empty."""
        items: list[dict] = []
        token = None
        while True:
            query = {**params, **({"continuationToken": token} if token else {})}
            reply = self.http.get(path, params=query)
            self.expect(reply, 200, f"GET {path}")
            page = reply.json()
            items += page["data"]
            token = page["meta"]["continuationToken"]
            if not token or not page["data"]:
                return items

    def set_feature(self, entity_id: str, enabled: bool) -> httpx.Response:
        body = {"feature": FEATURE, "enabled": enabled}
        return self.http.patch(f"/v1/entities/{quote(entity_id, safe='')}/features", json=body)


def flow(api: Api) -> list[str]:
    said = [f"authenticated: token valid {api.expires_in} s"]
    entities = api.pages("/v1/entities", pageSize=100)
    said.append(f"entities: {len(entities)} ({', '.join(sorted({e['type'] for e in entities}))})")

    first = quote(entities[0]["id"], safe="")
    unknown = api.http.patch(f"/v1/entities/{first}/features", json={"feature": "NoSuchFeature", "enabled": True})
    api.expect(unknown, 400, "an unknown feature")
    refusals = {"UnknownFeature": entities[0]["id"]} if unknown.json()["title"] == "UnknownFeature" else {}
    capturing = []
    for entity in entities:
        reply = api.set_feature(entity["id"], True)
        if reply.status_code == 200:
            capturing.append(entity["id"])
            continue
        api.expect(reply, 400, f"switching {entity['id']} on")
        title = reply.json()["title"]
        refusals.setdefault(title, entity["id"])
        if title == "BatteryCapacityRequired":
            path = f"/v1/entities/{quote(entity['id'], safe='')}/battery-capacity"
            api.expect(api.http.put(path, json={"value": CAPACITY_KWH}), 200, f"capacity of {entity['id']}")
            api.expect(api.set_feature(entity["id"], True), 200, f"switching {entity['id']} on after its capacity")
            capturing.append(entity["id"])
            said.append(f"capacity set: {entity['id']} {CAPACITY_KWH:g} kWh, then {FEATURE} on")
    said.append("refusals: " + ", ".join(f"{title} ({who})" for title, who in sorted(refusals.items())))
    missing = {"UnknownFeature", "FeatureNotSupported", "BatteryCapacityRequired", "FeatureNotAvailable"} - set(
        refusals
    )
    if missing:
        raise FlowFailed(f"these refusals were never seen: {', '.join(sorted(missing))}")

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = {}
    for entity_id in capturing:
        path = f"/v1/entities/{quote(entity_id, safe='')}/charge-sessions"
        counts[entity_id] = len(api.pages(path, start=EVER, end=now, pageSize=1000))
    busiest = max(counts, key=counts.get)
    path = f"/v1/entities/{quote(busiest, safe='')}/charge-sessions"
    listings = {size: [s["id"] for s in api.pages(path, start=EVER, end=now, pageSize=size)] for size in (1, 7, 1000)}
    reference = listings[1000]
    for size, ids in listings.items():
        if len(set(ids)) != len(ids):
            raise FlowFailed(f"page size {size} listed a session twice")
        if ids != reference:
            raise FlowFailed(f"page size {size} listed {len(ids)} sessions, page size 1000 listed {len(reference)}")
    starts = [s["data"]["start"] for s in api.pages(path, start=EVER, end=now, pageSize=1000)]
    if starts != sorted(starts):
        raise FlowFailed("sessions are not ordered by start")
    said.append(f"sessions of {busiest}: {len(reference)}, the same at page sizes 1, 7 and 1000, no duplicates")

    api.expect(api.set_feature(busiest, False), 200, f"switching {busiest} off")
    off = api.http.get(path, params={"start": EVER, "end": now})
    api.expect(off, 200, "sessions while the feature is off")
    if off.json()["data"]:
        raise FlowFailed(f"{busiest} still lists sessions with {FEATURE} off")
    api.expect(api.set_feature(busiest, True), 200, f"switching {busiest} back on")
    again = api.pages(path, start=EVER, end=now, pageSize=1000)
    if [s["id"] for s in again] != reference:
        raise FlowFailed(f"{busiest} lists other sessions after switching its feature back on")
    said.append(f"{FEATURE} off: empty page; back on: the same {len(again)} sessions")
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501/api", help="the API base (ending in /api)")
    args = parser.parse_args(argv)
    try:
        credentials = json.load(sys.stdin)
        api = Api(args.url, credentials["clientId"], credentials["clientSecret"])
        for line in flow(api):
            print(line)
    except (ValueError, KeyError) as exc:
        print(f"FAILED: give the client credentials as JSON on standard input ({exc})", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"FAILED: {args.url} could not be reached ({exc}); is the server running (make run)?", file=sys.stderr)
        return 1
    except FlowFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("the whole flow held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
