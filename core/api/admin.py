"""Local administration (API.md): the CLI's work while `serve` holds the database. Imports run as jobs."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi import Path as PathParam

from core.api.auth import require_token
from core.api.params import known_query
from core.errors import ChargeLensError, InputError
from core.importers import FORMATS, ImportOptions
from core.importers.times import check_timezone
from core.jobs import Jobs
from core.pipeline import COUNTS, ingest_file
from core.settings import database_path
from core.store import Store

admin = APIRouter(
    prefix="/v1", tags=["local administration"], dependencies=[Depends(require_token), Depends(known_query)]
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def import_options(fmt: str, timezone: str | None, entity_type: str | None, mapping: list[str]) -> ImportOptions:
    """The `ingest` options as the CLI names them, checked before anything is uploaded or queued."""
    if fmt not in FORMATS:
        raise InputError(
            f"Unknown format '{fmt[:40]}'; use one of {', '.join(FORMATS)}.", errors={"query.format": "unknown"}
        )
    try:
        check_timezone(timezone)
    except ChargeLensError as exc:
        raise InputError(exc.detail, errors={"query.timezone": "unknown time zone"}) from None
    pairs = {}
    for item in mapping:
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise InputError(f"map '{item[:60]}' must look like canonical=source, for example ts=Time.",
                             errors={"query.map": "canonical=source"})  # fmt: skip
        pairs[canonical.strip()] = source.strip()
    return ImportOptions(fmt, timezone or None, entity_type or None, pairs)


@admin.post("/imports", status_code=202, summary="Import one uploaded file as a job (multipart, field `file`)")
def start_import(
    request: Request,
    file: UploadFile,
    fmt: Annotated[str, Query(alias="format")] = "auto",
    timezone: Annotated[str | None, Query(max_length=64)] = None,
    entity_type: Annotated[str | None, Query(alias="entityType", max_length=40)] = None,
    mapping: Annotated[list[str], Query(alias="map")] = [],  # noqa: B006 (FastAPI reads the default, never mutates it)
) -> dict:
    options = import_options(fmt, timezone, entity_type, mapping)
    db = database_path()
    limit_mb = Store.open(db).settings().max_upload_mb
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_mb * 1024**2:
        raise ChargeLensError(
            f"The upload is larger than max_upload_mb ({limit_mb} MB); raise it with `settings set max_upload_mb N`.",
            title="PayloadTooLarge",
        ) from None
    name = Path(file.filename or "upload").name[:200] or "upload"
    folder = db.parent / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / f"{uuid.uuid4().hex}-{_UNSAFE.sub('_', name)}"  # a path the server chooses, never the client
    with saved.open("wb") as out:
        shutil.copyfileobj(file.file, out, 1 << 20)

    def work(progress) -> dict:
        summary = ingest_file(Store.open(db), saved, options, name=name, progress=progress)
        return {
            "summary": {"name": summary.name, "importId": summary.import_id, "line": summary.line(),
                        **{k: getattr(summary, k) for k in COUNTS}},
            "rejects": summary.rejects.to_dicts(),
        }  # fmt: skip

    job = _jobs(request).submit("import", work, cleanup=lambda: saved.unlink(missing_ok=True))
    return {"jobId": job.id}


@admin.get("/jobs/{jobId}", summary="State, progress and result of a job")
def job(request: Request, job_id: Annotated[str, PathParam(alias="jobId", max_length=64)]) -> dict:
    return _jobs(request).get(job_id).record()
