"""The CLI's way to its database while `serve` holds it: the server's local administration API (API.md).

The CLI authenticates with the local credentials beside the database, uploads the file, follows the job, and gives
back the same summary as an import of its own, so its output and exit codes do not depend on where the work ran.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import polars as pl

from core import credentials
from core.errors import ChargeLensError, InputError
from core.importers import ImportOptions
from core.importers.rules import reject_frame
from core.pipeline import COUNTS, ImportSummary, Progress
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


def _summary(result: dict) -> ImportSummary:
    summary = result["summary"]
    rejects = pl.DataFrame(result["rejects"], schema=reject_frame().schema) if result["rejects"] else reject_frame()
    return ImportSummary(
        name=summary["name"], import_id=summary["importId"], rejects=rejects, **{k: summary[k] for k in COUNTS}
    )
