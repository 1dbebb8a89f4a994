"""The CLI's way to its database while `serve` holds it: the server's API (API.md: its routes and local administration).

The CLI authenticates with the local credentials beside the database. Each method gives back what the core function
of the same name gives here (an import's summary after following its job, a listing after reading all its pages), so
a command's output and exit codes do not depend on where the work ran. Input that the core function refuses before
it looks anything up is checked here with the same function first, so a refusal reads the same.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import polars as pl

from core import credentials
from core.errors import ChargeLensError, InputError, unknown_location
from core.features import CAPTURE, check_feature_name
from core.importers import ImportOptions, read_bytes
from core.importers.rules import reject_frame
from core.locations import merged_location, validate_location
from core.pipeline import COUNTS, ImportSummary, Progress, check_capacity
from core.queries import SessionFilter
from core.records import camel

POLL_S = 0.2


class ServerUnreachable(ChargeLensError):
    title = "ServerUnreachable"


class LocalServer:
    def __init__(self, db_path: Path, info: dict, transport: httpx.BaseTransport | None = None):
        self.db_path = db_path
        self.url = str(info.get("url", "")).rstrip("/")
        self.http = httpx.Client(base_url=f"{self.url}/api", timeout=120, transport=transport)
        reply = self._send("POST", "/v1/authentication", json=credentials.load_or_create(db_path))
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"The ChargeLens server at {self.url} holds the database but did not answer "
                f"({exc.__class__.__name__}); check that it still runs, or stop it and run this command again."
            ) from None
        if reply.status_code >= 400:
            try:
                body = reply.json()
                detail, title = str(body["detail"]), str(body.get("title", "Error"))
            except (ValueError, KeyError, TypeError):
                detail, title = f"the server answered {reply.status_code}", "Error"
            raise InputError(detail, title=title) if reply.status_code < 500 else ChargeLensError(detail, title=title)
        return reply

    def ingest(self, path: Path, options: ImportOptions, progress: Progress | None = None) -> ImportSummary:
        params: dict = {"format": options.format}
        if options.timezone:
            params["timezone"] = options.timezone
        if options.entity_type:
            params["entityType"] = options.entity_type
        if options.mapping:
            params["map"] = [f"{k}={v}" for k, v in options.mapping.items()]
        with path.open("rb") as fh:
            job_id = self._send("POST", "/v1/imports", params=params, files={"file": (path.name, fh)}).json()["jobId"]
        return _summary(self._follow(job_id, progress))

    def _follow(self, job_id: str, progress: Progress | None = None) -> dict:
        """Wait for a job of the server; its result, or InputError with the sentence it failed with."""
        while True:
            job = self._send("GET", f"/v1/jobs/{job_id}").json()
            if progress is not None:
                progress(float(job["progress"]), job.get("message") or job["state"])
            if job["state"] == "done":
                return job["result"]
            if job["state"] == "failed":
                raise InputError(job["error"])
            time.sleep(POLL_S)

    def detect(self, options: dict[str, float | None], entity_ids: list[str], save: bool) -> int:
        body = {camel(k): v for k, v in options.items() if v is not None} | {"entity": entity_ids, "save": save}
        return int(self._follow(self._send("POST", "/v1/sessions/detect", json=body).json()["jobId"])["sessions"])

    def export(self, flt: SessionFilter, fmt: str, exact: bool, round_to: int | None, wide: bool) -> bytes:
        params: dict = {"format": fmt, "entity": list(flt.entity_ids), "entityType": flt.entity_type,
                        "location": flt.location, "method": flt.method, "source": flt.source,
                        "start": flt.start and flt.start.isoformat(), "end": flt.end and flt.end.isoformat(),
                        "exactLocations": exact or None, "roundLocations": round_to, "wide": wide or None}  # fmt: skip
        return self._send("GET", "/v1/sessions/export", params={k: v for k, v in params.items() if v}).content

    def backup(self, target: Path) -> Path:
        """The server writes a consistent copy into the data folder's backups/; this copies it to `target`."""
        target = target.resolve()
        if target.exists():
            raise InputError(f"{target} already exists; choose a new file name for the backup.")
        if not target.parent.is_dir():
            raise InputError(f"The folder {target.parent} does not exist; create it or choose another place.")
        name = self._send("POST", "/v1/backups").json()["file"]
        shutil.copyfile(self.db_path.parent / "backups" / name, target)
        return target

    def settings(self) -> dict:
        return {row["key"]: row["value"] for row in self._send("GET", "/v1/settings").json()["data"]}

    def set_setting(self, key: str, text: str) -> object:
        return self._send("PUT", f"/v1/settings/{key}", json={"value": text}).json()["value"]

    def _all(self, path: str) -> list[dict]:
        """Every item of a paged listing (API.md's pages), in its order."""
        items: list[dict] = []
        token = None
        while True:
            params = {"pageSize": 1000, **({"continuationToken": token} if token else {})}
            page = self._send("GET", path, params=params).json()
            items += page["data"]
            token = page["meta"]["continuationToken"]
            if not token or not page["data"]:
                return items

    # -- entities, features, locations: the routes of the platform's part of API.md ---------------------------
    def entities(self) -> list[dict]:
        return self._all("/v1/entities")

    def entity_rows(self) -> list[dict]:
        """The entities as `Store.entities` gives them, for the table of `entities list`."""
        rows = []
        for record in self.entities():
            path = _entity(record["id"])
            features = {f["feature"]: f["enabled"] for f in self._send("GET", f"{path}/features").json()}
            rows.append({"entity_id": record["id"], "entity_type": record["type"], "name": record["name"],
                         "battery_capacity_kwh": self._send("GET", f"{path}/battery-capacity").json()["value"],
                         "capture_sessions": features.get(CAPTURE, False)})  # fmt: skip
        return rows

    def set_capacity(self, entity_id: str, kwh: float) -> float:
        check_capacity(kwh)  # the value is refused in the same words as here, before the entity is looked up
        return self._send("PUT", f"{_entity(entity_id)}/battery-capacity", json={"value": kwh}).json()["value"]

    def set_feature(self, entity_id: str, feature: str, enabled: bool) -> list[dict]:
        check_feature_name(feature)  # an unknown feature is refused before the entity is looked up, as here
        body = {"feature": feature, "enabled": enabled}
        return self._send("PATCH", f"{_entity(entity_id)}/features", json=body).json()

    def locations(self) -> list[dict]:
        """Every location, those of each entity too, as `Store.locations` gives them (by label, then id)."""
        scopes = [(None, "/v1/locations")] + [(e["id"], f"{_entity(e['id'])}/locations") for e in self.entities()]
        rows = [{"location_id": r["id"], "label": r["label"], "entity_id": owner, "latitude": r["latitude"],
                 "longitude": r["longitude"], "radius_m": r["radius"]}
                for owner, path in scopes for r in self._all(path)]  # fmt: skip
        return sorted(rows, key=lambda r: (r["label"], r["location_id"]))

    def add_location(self, label: str, lat: float, lon: float, radius_m: float, entity_id: str | None) -> str:
        place = validate_location(label, lat, lon, radius_m)
        path = "/v1/locations" if entity_id is None else f"{_entity(entity_id)}/locations"
        return self._send("POST", path, json=_location_body(place)).json()["id"]

    def _location(self, location_id: str) -> tuple[dict, str]:
        """A location found by listing them all (its id may be global or an entity's), and its path."""
        found = next((r for r in self.locations() if r["location_id"] == location_id), None)
        if found is None:
            raise unknown_location(location_id)
        scope = "/v1" if found["entity_id"] is None else _entity(found["entity_id"])
        return found, f"{scope}/locations/{quote(location_id, safe='')}"

    def update_location(self, location_id: str, **changes) -> dict:
        """Only the given fields change: the location is read, merged with them and sent whole."""
        current, path = self._location(location_id)
        place = merged_location(current, changes)
        self._send("PUT", path, json=_location_body(place))
        return {"location_id": location_id, **place}

    def delete_location(self, location_id: str) -> None:
        self._send("DELETE", self._location(location_id)[1])

    # -- tariffs, prices, suggestions, costs and reports: local administration -------------------------------
    def tariff_records(self) -> list[dict]:
        return self._send("GET", "/v1/tariffs").json()["data"]

    def add_tariff(self, body: dict, prices: Path | None) -> dict:
        """The tariff JSON as read from its file; with `prices`, both in one multipart body."""
        content = json.dumps(body).encode()  # as read: values json.loads took (NaN too) reach the same checks
        if prices is None:
            headers = {"Content-Type": "application/json"}
            return self._send("POST", "/v1/tariffs", content=content, headers=headers).json()
        files = {"tariff": (None, content, "application/json"), "prices": (prices.name, read_bytes(prices), "text/csv")}
        return self._send("POST", "/v1/tariffs", files=files).json()

    def assign_tariff(self, name: str, scope: str, target: str) -> None:
        body = {"default": True} if scope == "default" else {scope: target}
        self._send("PUT", f"/v1/tariffs/{quote(name, safe='')}/assignment", json=body)

    def import_prices(self, path: Path, tariff: str) -> int:
        reply = self._send("POST", f"/v1/tariffs/{quote(tariff, safe='')}/prices", params={"file": path.name},
                           content=read_bytes(path), headers={"Content-Type": "text/csv"})  # fmt: skip
        return int(reply.json()["prices"])

    def suggestion_records(self) -> list[dict]:
        return self._send("GET", "/v1/locations/suggestions").json()["data"]

    def accept_suggestion(self, number: int, label: str | None) -> str:
        return self._send("POST", f"/v1/locations/suggestions/{number}/accept", json={"label": label}).json()["id"]

    def whatif(self, tariff: str, flt: SessionFilter, period: str) -> list[dict]:
        params = {"tariff": tariff, "entity": list(flt.entity_ids), "period": period,
                  "start": flt.start and flt.start.isoformat(), "end": flt.end and flt.end.isoformat()}  # fmt: skip
        return self._send("GET", "/v1/costs/whatif", params={k: v for k, v in params.items() if v}).json()["data"]

    def monthly_report(self, month: str, entity_id: str | None, fmt: str) -> bytes:
        params = {"month": month, "format": fmt, **({"entity": entity_id} if entity_id is not None else {})}
        return self._send("GET", "/v1/reports/monthly", params=params).content

    # -- the remote platform, reached by the server ----------------------------------------------------------
    def remote_connect(self, url: str, client_id: str, secret: str) -> tuple[str, int]:
        """The server checks and keeps the connection; the secret travels in the body and never comes back."""
        reply = self._send("PUT", "/v1/remote/connection", json={"url": url, "clientId": client_id, "secret": secret})
        return reply.json()["url"], int(reply.json()["entities"])

    def entities_report(self) -> dict:
        return self._send("GET", "/v1/remote/entities").json()

    def remote_pull(self, start: datetime | None, end: datetime | None, since_last: bool, entity_ids: list[str],
                    progress: Progress | None = None) -> dict:  # fmt: skip
        body = {"start": start and start.isoformat(), "end": end and end.isoformat(), "sinceLast": since_last,
                "entity": entity_ids}  # fmt: skip
        return self._follow(self._send("POST", "/v1/remote/pulls", json=body).json()["jobId"], progress)

    def sessions_report(self, start: datetime | None) -> dict:
        params = {"start": start.isoformat()} if start is not None else {}
        return self._send("GET", "/v1/remote/sessions", params=params).json()

    def remote_set_feature(self, entity_id: str, feature: str, enabled: bool) -> list[dict]:
        path = f"/v1/remote/entities/{quote(entity_id, safe='')}/features"
        return self._send("PATCH", path, json={"feature": feature, "enabled": enabled}).json()

    def reconcile_report(self, entity_id: str | None) -> dict:
        params = {"entity": entity_id} if entity_id is not None else {}
        return self._send("GET", "/v1/remote/reconciliation", params=params).json()


def _entity(entity_id: str) -> str:
    return f"/v1/entities/{quote(entity_id, safe='')}"


def _location_body(place: dict) -> dict:
    return {"label": place["label"], "latitude": place["latitude"], "longitude": place["longitude"],
            "radius": place["radius_m"]}  # fmt: skip


def _summary(result: dict) -> ImportSummary:
    summary = result["summary"]
    rejects = pl.DataFrame(result["rejects"], schema=reject_frame().schema) if result["rejects"] else reject_frame()
    return ImportSummary(
        name=summary["name"], import_id=summary["importId"], rejects=rejects, **{k: summary[k] for k in COUNTS}
    )
