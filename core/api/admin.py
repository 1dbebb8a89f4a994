"""Local administration (API.md): the CLI's work while `serve` holds the database. Long work runs as jobs."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from core import remote
from core.api.auth import require_token
from core.api.bodies import FeatureChange
from core.api.params import known_query, parse_time
from core.backup import backup
from core.errors import ChargeLensError, InputError, NotFound
from core.exports import MEDIA_TYPES, export_sessions
from core.importers import FORMATS, ImportOptions
from core.importers.times import check_timezone
from core.jobs import Jobs
from core.pipeline import (
    COUNTS,
    DETECTION_OPTIONS,
    accept_suggestion,
    detect_with,
    detection_overrides,
    ingest_file,
    suggestion_records,
)
from core.pricing import assign_tariff, read_prices, save_tariff, store_prices, whatif, whatif_records
from core.queries import SessionFilter, tariff_records
from core.records import camel
from core.reports import monthly_report, render
from core.settings import SETTINGS, database_path
from core.store import Store

admin = APIRouter(
    prefix="/v1", tags=["local administration"], dependencies=[Depends(require_token), Depends(known_query)]
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
REPORT_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def _upload_limit_mb() -> int:
    return Store.open(database_path()).settings().max_upload_mb


def _too_large(limit_mb: int) -> ChargeLensError:
    return ChargeLensError(
        f"The upload is larger than max_upload_mb ({limit_mb} MB); raise it with `settings set max_upload_mb N`.",
        title="PayloadTooLarge",
    )


def _refuse_declared_over(request: Request, limit_mb: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_mb * 1024**2:
        raise _too_large(limit_mb)


async def _upload_bytes(request: Request) -> bytes:
    """A raw upload (a CSV body), refused once it is larger than the max_upload_mb setting."""
    limit_mb = await run_in_threadpool(_upload_limit_mb)
    _refuse_declared_over(request, limit_mb)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit_mb * 1024**2:
            raise _too_large(limit_mb)
    return bytes(data)


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
    _refuse_declared_over(request, _upload_limit_mb())
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


# -- tariffs and prices ----------------------------------------------------------------------------------
TariffName = Annotated[str, PathParam(max_length=1000, description="The tariff's name, percent-encoded.")]
_TARIFF_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object", "description": "The tariff JSON (SPEC.md section 5)."}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["tariff"],
                "properties": {
                    "tariff": {"type": "string", "description": "The tariff JSON (SPEC.md section 5)."},
                    "prices": {"type": "string", "format": "binary", "description": "CSV ts,price_per_kwh"},
                },
            }
        },
    },
}
_PRICES_BODY = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}


@admin.get("/tariffs", summary="`tariffs list`: every tariff with where it is assigned")
def tariffs_list() -> dict:
    return {"data": tariff_records(Store.open(database_path()))}


def _tariff_json(data: bytes | str) -> dict:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"The tariff is not valid JSON ({str(exc)[:150]}).", errors={"body": "JSON"}) from None
    if not isinstance(body, dict):
        raise InputError("The tariff must be one JSON object (SPEC.md section 5).", errors={"body": "an object"})
    return body


async def _tariff_upload(request: Request) -> tuple[dict, tuple[bytes, str] | None]:
    """The tariff JSON, or from a multipart body its `tariff` part and its `prices` part (a CSV) with its name."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return _tariff_json(await request.body()), None
    _refuse_declared_over(request, await run_in_threadpool(_upload_limit_mb))
    async with request.form(max_files=1, max_fields=2) as form:
        tariff, prices = form.get("tariff"), form.get("prices")
        if not isinstance(tariff, str):
            raise InputError("Send the tariff JSON as the part `tariff`.", errors={"body.tariff": "required"})
        if prices is None or isinstance(prices, str):
            return _tariff_json(tariff), None if prices is None else (prices.encode(), "prices")
        return _tariff_json(tariff), (await prices.read(), Path(prices.filename or "").name[:200] or "prices")


def _save_tariff(body: dict, prices: tuple[bytes, str] | None) -> dict:
    return save_tariff(Store.open(database_path()), body, read_prices(*prices) if prices is not None else None)


@admin.post(
    "/tariffs",
    status_code=201,
    summary="`tariffs add`: the tariff JSON, or multipart `tariff` and `prices` (CSV) for `--prices`",
    openapi_extra={"requestBody": _TARIFF_BODY},
)
async def tariffs_add(request: Request) -> dict:
    body, prices = await _tariff_upload(request)
    return await run_in_threadpool(_save_tariff, body, prices)


class Assignment(BaseModel):
    """Where a tariff applies (`tariffs assign`): exactly one of default, location (a label) and entity."""

    model_config = ConfigDict(extra="forbid", strict=True)
    default: bool = False
    location: str | None = Field(None, max_length=10_000)
    entity: str | None = Field(None, max_length=10_000)

    def scope(self) -> tuple[str, str]:
        given = [(k, v) for k, v in (("location", self.location), ("entity", self.entity)) if v is not None]
        if self.default:
            given.insert(0, ("default", ""))
        if len(given) != 1:
            raise InputError("Give exactly one of default, location and entity.", errors={"body": "one of them"})
        return given[0]


@admin.put("/tariffs/{name:path}/assignment", summary="`tariffs assign`")
def tariffs_assign(name: TariffName, body: Assignment) -> dict:
    scope, target = body.scope()
    store = Store.open(database_path())
    assign_tariff(store, name, scope, target, store.settings().max_gap_min)
    return {"tariff": name, "scope": scope, "target": target}


def _save_prices(data: bytes, file: str, tariff: str) -> dict:
    store = Store.open(database_path())
    count = store_prices(store, read_prices(data, file), tariff, store.settings().max_gap_min)
    return {"tariff": tariff, "prices": count}


@admin.post(
    "/tariffs/{name:path}/prices",
    summary="`prices import`: the CSV ts,price_per_kwh as the body (up to max_upload_mb)",
    openapi_extra={"requestBody": _PRICES_BODY},
)
async def prices_import(
    request: Request,
    name: TariffName,
    file: Annotated[str, Query(max_length=200, description="The file's name, used in messages only.")] = "prices",
) -> dict:
    data = await _upload_bytes(request)
    return await run_in_threadpool(_save_prices, data, Path(file).name or "prices", name)


# -- locations suggested, costs and reports -----------------------------------------------------------------
@admin.get("/locations/suggestions", summary="`locations suggest`: places proposed from unmatched sessions")
def location_suggestions() -> dict:
    return {"data": suggestion_records(Store.open(database_path()))}


class Acceptance(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: str | None = Field(None, description="The new location's label (default: the suggested one)")


@admin.post("/locations/suggestions/{n}/accept", status_code=201, summary="`locations suggest --accept N`")
def accept_location_suggestion(
    n: Annotated[int, PathParam(ge=-(2**53), le=2**53)], body: Annotated[Acceptance, Body()] = Acceptance()
) -> dict:
    return {"id": accept_suggestion(Store.open(database_path()), n, body.label)}


@admin.get(
    "/costs/whatif",
    summary="`costs whatif`: actual cost next to the cost under another tariff",
    responses={404: {"description": "NotFound"}},
)
def costs_whatif(
    tariff: Annotated[str, Query(max_length=1000)],
    start: Annotated[str | None, Query(description="RFC 3339 time: sessions starting at or after it")] = None,
    end: Annotated[str | None, Query(description="RFC 3339 time: sessions starting before it")] = None,
    entity: Annotated[list[str], Query(max_length=10_000)] = [],  # noqa: B006 (read by FastAPI, never mutated)
    period: Literal["day", "week", "month"] = "month",
) -> dict:
    flt = SessionFilter(start=parse_time(start, "start"), end=parse_time(end, "end"), entity_ids=tuple(entity))
    return {"data": whatif_records(whatif(Store.open(database_path()), tariff, flt, period))}


@admin.get(
    "/reports/monthly",
    summary="`reports monthly`: the statement's bytes",
    response_class=Response,
    responses={
        200: {"description": "The statement", "content": {media: {} for media in REPORT_TYPES.values()}},
        404: {"description": "NotFound"},
    },
)
def reports_monthly(
    month: Annotated[str, Query(max_length=20, description="YYYY-MM, a month of display_timezone")],
    entity: Annotated[str | None, Query(max_length=200)] = None,
    fmt: Annotated[Literal["csv", "html"], Query(alias="format")] = "csv",
) -> Response:
    report = monthly_report(Store.open(database_path()), month, entity)
    return Response(render(report, fmt), media_type=REPORT_TYPES[fmt])


# -- the remote platform -----------------------------------------------------------------------------------------
class RemoteConnection(BaseModel):
    """`remote connect`: the platform's API base URL and client credentials; the secret is kept, never returned."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=camel, populate_by_name=True)
    url: str = Field(max_length=2000)
    client_id: str = Field(max_length=500)
    secret: str = Field(max_length=10_000)


def _connection(store: Store) -> dict:
    found = remote.connection(store)
    return {"url": found.url, "clientId": found.client_id, "connected": found.connected}


@admin.put("/remote/connection", summary="`remote connect`: check the credentials, then keep them")
def remote_connect(body: RemoteConnection) -> dict:
    store = Store.open(database_path())
    count = remote.connect(store, body.url, body.client_id, body.secret)
    return {**_connection(store), "entities": count}


@admin.get("/remote/connection", summary="The remote platform connected to (never its secret)")
def remote_connection() -> dict:
    return _connection(Store.open(database_path()))


def _remote_report(report, *params) -> dict:
    store = Store.open(database_path())
    with remote.open_client(store) as client:
        return report(store, client, *params)


@admin.get("/remote/entities", summary="`remote entities`: the platform's entities (data) and the table (rows)")
def remote_entities() -> dict:
    return _remote_report(remote.entities_report)


class RemotePull(BaseModel):
    """`remote pull`: a window (start, end) or sinceLast, for every remote entity or the ones listed."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=camel, populate_by_name=True)
    since_last: bool = False
    start: str | None = Field(None, max_length=64)
    end: str | None = Field(None, max_length=64)
    entity: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=10_000)


@admin.post("/remote/pulls", status_code=202, summary="`remote pull` as a job")
def remote_pull(request: Request, body: RemotePull) -> dict:
    window = {"start": parse_time(body.start, "start"), "end": parse_time(body.end, "end"),
              "since_last": body.since_last, "entity_ids": body.entity}  # fmt: skip
    store = Store.open(database_path())
    remote.open_client(store).close()  # not connected: refused now, not as a failed job

    def work(progress) -> dict:
        def shown(pulled: remote.PullProgress) -> None:
            progress(pulled.entity_index / pulled.entity_count, pulled.line())

        with remote.open_client(store) as client:
            return remote.pull_report(remote.pull(store, client, progress=shown, **window))

    return {"jobId": _jobs(request).submit("remote pull", work).id}


@admin.get("/remote/sessions", summary="`remote sessions`: pull the platform's sessions, then list them")
def remote_sessions(
    start: Annotated[str | None, Query(description="RFC 3339 time; default: from the first readings pull")] = None,
) -> dict:
    return _remote_report(remote.sessions_report, parse_time(start, "start"))


@admin.patch("/remote/entities/{entityId:path}/features", summary="`remote features set`")
def remote_feature(entity_id: Annotated[str, PathParam(alias="entityId")], body: FeatureChange) -> list[dict]:
    with remote.open_client(Store.open(database_path())) as client:
        return remote.set_feature(client, entity_id, body.feature, body.enabled)


@admin.get("/remote/reconciliation", summary="`remote reconcile`: records (data), table (rows) and summary")
def remote_reconciliation(entity: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    return remote.reconcile_report(Store.open(database_path()), entity)
