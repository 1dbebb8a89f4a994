"""Local administration (API.md): the CLI's work while `serve` holds the database. Imports run as jobs."""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from core.api.auth import require_token
from core.api.params import known_query, parse_time
from core.backup import backup
from core.errors import ChargeLensError, InputError, NotFound
from core.exports import MEDIA_TYPES, export_sessions
from core.importers import FORMATS, ImportOptions
from core.importers.times import check_timezone
from core.jobs import Jobs
from core.pipeline import COUNTS, DETECTION_OPTIONS, detect_with, detection_overrides, ingest_file
from core.queries import SessionFilter
from core.records import camel
from core.settings import SETTINGS, database_path
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


class Detection(BaseModel):
    """The `sessions detect` options: entities (none = all), the detection settings for this run, save."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=camel, populate_by_name=True)
    entity: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=10_000)
    min_power_kw: float | None = None
    max_pause_min: float | None = None
    max_gap_min: float | None = None
    min_energy_kwh: float | None = None
    soc_min_rise_pct: float | None = None
    save: bool = False


@admin.post("/sessions/detect", status_code=202, summary="`sessions detect` as a job")
def start_detect(request: Request, body: Detection) -> dict:
    db = database_path()
    overrides = detection_overrides(Store.open(db), {k: getattr(body, k) for k in DETECTION_OPTIONS})  # 400 now

    def work(progress) -> dict:
        return {"sessions": detect_with(Store.open(db), overrides, body.entity, body.save)}

    return {"jobId": _jobs(request).submit("detect", work).id}


@admin.get(
    "/sessions/export",
    summary="`sessions export`: the file's bytes for the filters",
    response_class=Response,
    responses={200: {"description": "The file", "content": {media: {} for media in MEDIA_TYPES.values()}}},
)
def export(
    fmt: Annotated[Literal["csv", "json", "parquet", "xlsx"], Query(alias="format")] = "csv",
    start: Annotated[str | None, Query(description="RFC 3339 time: sessions starting at or after it")] = None,
    end: Annotated[str | None, Query(description="RFC 3339 time: sessions starting before it")] = None,
    entity: Annotated[list[str], Query(max_length=10_000)] = [],  # noqa: B006 (read by FastAPI, never mutated)
    entity_type: Annotated[str | None, Query(alias="entityType", max_length=40)] = None,
    location: Annotated[str | None, Query(max_length=100)] = None,
    method: Annotated[str | None, Query(max_length=40)] = None,
    source: Annotated[str | None, Query(max_length=40)] = None,
    exact_locations: Annotated[bool, Query(alias="exactLocations")] = False,
    round_locations: Annotated[int | None, Query(alias="roundLocations", ge=0, le=12)] = None,
    wide: bool = False,
) -> Response:
    if exact_locations and round_locations is not None:
        raise InputError("Give exactLocations or roundLocations, not both.", errors={"query.roundLocations": "both"})
    flt = SessionFilter(start=parse_time(start, "start"), end=parse_time(end, "end"), entity_ids=tuple(entity),
                        entity_type=entity_type, location=location, method=method, source=source)  # fmt: skip
    data = export_sessions(Store.open(database_path()), flt, fmt, exact=exact_locations, round_to=round_locations,
                           wide=wide)  # fmt: skip
    return Response(data, media_type=MEDIA_TYPES[fmt])


@admin.post("/backups", status_code=201, summary="A consistent copy of the database into the data folder's backups/")
def make_backup() -> dict:
    db = database_path()
    folder = db.parent / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{db.stem}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.duckdb"  # a name the server chooses, never the client
    return {"file": backup(Store.open(db), folder / name).name}


def _setting_key(key: str) -> str:
    if key not in {s.key for s in SETTINGS}:
        raise NotFound(f"There is no setting '{key[:60]}'; `settings list` shows them.")
    return key


@admin.get("/settings", summary="`settings list`")
def settings_list() -> dict:
    current = Store.open(database_path()).settings().as_dict()
    return {"data": [{"key": s.key, "value": current[s.key], "help": s.help} for s in SETTINGS]}


@admin.get("/settings/{key}", summary="One setting")
def setting(key: Annotated[str, PathParam(max_length=64)]) -> dict:
    return {"key": _setting_key(key), "value": Store.open(database_path()).settings().as_dict()[key]}


class SettingValue(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    value: str = Field(max_length=200, description='the value as `settings set` takes it, e.g. "15" or "true"')


@admin.put("/settings/{key}", summary="`settings set`")
def set_setting(key: Annotated[str, PathParam(max_length=64)], body: Annotated[SettingValue, Body()]) -> dict:
    return {"key": key, "value": Store.open(database_path()).change_setting(_setting_key(key), body.value)}
