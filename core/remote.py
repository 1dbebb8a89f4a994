"""Connection to a remote Charge Sessions platform: connect, list, pull readings and sessions, toggle, reconcile."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from core import jobs
from core.client import PlatformClient, PlatformError, format_time
from core.errors import ChargeLensError, InputError
from core.ids import session_id
from core.importers import ImportOptions, ParsedFile
from core.importers import readings as readings_importer
from core.importers.platform import flatten
from core.importers.rules import reject_frame
from core.pipeline import ImportSummary, land
from core.platform import remote_secret_file
from core.queries import SessionFilter
from core.queries import sessions as query_sessions
from core.records import rfc3339
from core.schema import ENTITIES_SCHEMA, ENTITY_TYPE_ALIASES, SESSIONS_SCHEMA, UTC_TS, conform
from core.store import Store

SECRET_ENV = "CHARGELENS_REMOTE_SECRET"
PULL_CHUNK = 10_000  # readings landed per transaction: what a failure midway keeps is at most this much behind
SESSIONS_LOOKBACK = timedelta(days=30)  # `remote sessions` without --start and without any earlier pull
PLATFORM_REASON = "reported by the remote platform"
_PLATFORM_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")  # as the readings importer accepts entity types
_CONNECT_HINT = "run `remote connect --url URL --client-id ID` (or use the Entities page) first"


class RemoteError(ChargeLensError):
    """The remote platform refused or could not be reached; `title` is the platform's title when it gave one."""

    title = "RemoteError"


class NotConnected(RemoteError):
    title = "NotConnected"


def platform_error(exc: PlatformError, what: str) -> RemoteError:
    """A PlatformError as one sentence with the platform's status, title and detail."""
    if exc.status is None:
        return RemoteError(
            f"{what} failed: the remote platform could not be reached ({exc.title}: {exc.detail})", title=exc.title
        )
    return RemoteError(
        f"{what} failed: the remote platform answered {exc.status} {exc.title}: {exc.detail}", title=exc.title
    )


# -- connection ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Connection:
    url: str
    client_id: str
    connected: bool  # url, client id and the secret file are all there


def connection(store: Store) -> Connection:
    settings = store.settings()
    has_secret = remote_secret_file(store.path).is_file()
    return Connection(
        settings.remote_url,
        settings.remote_client_id,
        bool(settings.remote_url and settings.remote_client_id and has_secret),
    )


def connect(store: Store, url: str, client_id: str, secret: str, **client_options) -> int:
    """Check the credentials (authenticate and list the entities), then keep them; returns the entity count.

    Nothing is stored when the check fails. The secret goes to a 0600 file beside the database, never into it.
    """
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"'{url}' is not an http(s) URL; give the platform's API base, e.g. https://platform/api.")
    client_id = (client_id or "").strip()
    if not client_id:
        raise InputError("The client id is empty; give the client id that the remote platform issued.")
    if not secret or "\n" in secret or "\r" in secret:
        raise InputError(f"The secret is empty or spans several lines; give it on standard input or in {SECRET_ENV}.")
    try:
        with PlatformClient(url, client_id, secret, **client_options) as client:
            count = sum(1 for _ in client.entities())
    except PlatformError as exc:
        raise platform_error(exc, f"Connecting to {url}") from None
    write_secret(remote_secret_file(store.path), secret)
    store.set_setting("remote_url", url)
    store.set_setting("remote_client_id", client_id)
    return count


def write_secret(path: Path, secret: str) -> None:
    """Replace the secret file whole, created 0600 from the start (as core.credentials writes its file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a reader sees the old secret or the new one, never half of one
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotConnected(f"There is no remote secret ({path.name} is missing); {_CONNECT_HINT}.") from None
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)  # a copy restored with looser rights must not stay readable by others
    if not text:
        raise NotConnected(f"The remote secret file {path.name} is empty; {_CONNECT_HINT}.")
    return text


def open_client(store: Store, **client_options) -> PlatformClient:
    """The client of the connected remote platform (client_options go to PlatformClient, e.g. a transport)."""
    settings = store.settings()
    if not settings.remote_url or not settings.remote_client_id:
        raise NotConnected(f"ChargeLens is not connected to a remote platform yet; {_CONNECT_HINT}.")
    secret = read_secret(remote_secret_file(store.path))
    return PlatformClient(settings.remote_url, settings.remote_client_id, secret, **client_options)


# -- entities and features ----------------------------------------------------------------------------------
def list_entities(client: PlatformClient) -> list[dict]:
    """The remote platform's entities as it sends them (API.md entity objects)."""
    try:
        return list(client.entities())
    except PlatformError as exc:
        raise platform_error(exc, "Listing the remote entities") from None


def entity_table(store: Store, remote: Sequence[dict]) -> pl.DataFrame:
    """Remote entities with what was pulled of each (last reading pulled, last error)."""
    frame = pl.DataFrame(
        [{"entity_id": e.get("id"), "entity_type": e.get("type"), "name": e.get("name")} for e in remote],
        schema={"entity_id": pl.String, "entity_type": pl.String, "name": pl.String},
    )
    log = store.frame("SELECT entity_id, last_ts AS last_reading_pulled, error AS last_error FROM remote_pulls")
    return frame.join(log, on="entity_id", how="left", maintain_order="left")


def set_feature(client: PlatformClient, entity_id: str, feature: str, enabled: bool) -> list[dict]:
    try:
        return client.set_feature(entity_id, feature, enabled)
    except PlatformError as exc:
        raise platform_error(exc, f"Switching {feature} {'on' if enabled else 'off'} for '{entity_id}'") from None


# -- pulling readings ---------------------------------------------------------------------------------------
@dataclass
class EntityPull:
    """What one pull did for one entity: its import summary, how far it got and why it stopped."""

    entity_id: str
    start: datetime | None
    after: datetime | None = None  # readings at or before this instant were pulled before and are skipped
    summary: ImportSummary = field(default_factory=lambda: ImportSummary(""))
    last_ts: datetime | None = None
    error: str | None = None

    def line(self) -> str:
        if self.error is None:
            return self.summary.line()
        return f"{self.summary.line()}; failed: {self.error}"


@dataclass
class PullResult:
    entities: list[EntityPull] = field(default_factory=list)

    @property
    def failed(self) -> list[EntityPull]:
        return [e for e in self.entities if e.error is not None]

    def total(self) -> ImportSummary:
        total = ImportSummary("total")
        for pulled in self.entities:
            total.add(pulled.summary)
        return total


@dataclass(frozen=True)
class PullProgress:
    entity_index: int  # 0-based position of the entity being pulled
    entity_count: int
    entity_id: str
    readings: int  # readings of this entity received so far

    def line(self) -> str:
        return f"pulling {self.entity_id} ({self.entity_index + 1}/{self.entity_count}): {self.readings} readings"


def pull(
    store: Store,
    client: PlatformClient,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    since_last: bool = False,
    entity_ids: Sequence[str] = (),
    progress: Callable[[PullProgress], None] | None = None,
    chunk_size: int = PULL_CHUNK,
    now: datetime | None = None,
) -> PullResult:
    """Pull the readings of all (or these) remote entities into the store, one import per chunk and entity.

    A window [start, end) pulls that window (end defaults to the platform's now); `since_last` continues each
    entity after the last reading pulled before. Each chunk is landed (deduplicated, sessions recomputed) and the
    entity's last pulled timestamp recorded, so a failure midway keeps what was landed and the next
    `since_last` pull continues from there. A failure of one entity is reported and the others are still pulled,
    unless the platform cannot be reached or refuses the credentials (then the rest is skipped).
    """
    now = now or datetime.now(UTC)
    if since_last and (start is not None or end is not None):
        raise InputError("Give either --since-last or a --start/--end window, not both.")
    if not since_last and start is None:
        raise InputError("Give a window with --start ISO (and --end ISO), or --since-last to continue the last pull.")
    if start is not None and end is not None and end <= start:
        raise InputError(f"The window ends ({format_time(end)}) before it starts ({format_time(start)}).")
    window = "since the last pull" if since_last else f"from {format_time(start)}"
    with jobs.recorded(store, "remote pull", f"{client.url} {window}") as outcome:
        chosen = _chosen_entities(client, entity_ids)
        starts = {e["id"]: (start, None) for e in chosen} if not since_last else _since_last_starts(store, chosen)
        _create_entities(store, chosen)
        options = ImportOptions(format="readings", not_after=now + timedelta(days=1))
        result = PullResult()
        abort: str | None = None
        for index, entity in enumerate(chosen):
            entity_id = entity["id"]
            pulled = EntityPull(entity_id, *starts[entity_id], summary=ImportSummary(entity_id))
            result.entities.append(pulled)
            if abort is not None:
                pulled.error = f"not pulled ({abort})"
                continue

            def report(received: int, index: int = index, entity_id: str = entity_id) -> None:
                if progress is not None:
                    progress(PullProgress(index, len(chosen), entity_id, received))

            try:
                _pull_entity(store, client, entity, pulled, end, options, chunk_size, report)
            except PlatformError as exc:
                pulled.error = str(platform_error(exc, f"Pulling '{entity_id}'"))
                if exc.status in (None, 401, 403):
                    abort = f"stopped after '{entity_id}' failed with {exc.status or 'no reply'} {exc.title}"
            _log_pull(store, entity_id, pulled)
        total = result.total()
        outcome.line = (f"{len(result.entities)} entities, {total.stored:,} readings stored, "
                        f"{len(result.failed)} failed")  # fmt: skip
        return result


def _chosen_entities(client: PlatformClient, entity_ids: Sequence[str]) -> list[dict]:
    remote = list_entities(client)
    if not entity_ids:
        return remote
    by_id = {e.get("id"): e for e in remote}
    unknown = [e for e in entity_ids if e not in by_id]
    if unknown:
        raise InputError(
            f"The remote platform has no entity {', '.join(repr(e) for e in unknown)}; list them with "
            "`remote entities`."
        )
    return [by_id[e] for e in dict.fromkeys(entity_ids)]


def _since_last_starts(store: Store, chosen: list[dict]) -> dict[str, tuple[datetime, datetime | None]]:
    """Per entity (start, skip up to): its last pulled reading, else its first window, else the earliest window."""
    log = {r["entity_id"]: r for r in store.frame("SELECT * FROM remote_pulls").to_dicts()}
    earliest = store.scalar("SELECT min(first_start) FROM remote_pulls")
    if earliest is None:
        raise InputError(
            "Nothing was pulled from the remote platform yet, so --since-last has no place to continue from; "
            "run `remote pull --start ISO --end ISO` first."
        )
    starts = {}
    for entity in chosen:
        row = log.get(entity["id"])
        if row and row["last_ts"] is not None:
            starts[entity["id"]] = (row["last_ts"], row["last_ts"])
        else:
            starts[entity["id"]] = (row["first_start"] if row else earliest, None)
    return starts


def _entity_type(entity: dict) -> str:
    raw = str(entity.get("type") or "EV")
    kind = ENTITY_TYPE_ALIASES.get(raw, raw)
    if not _PLATFORM_TYPE.match(kind):
        raise InputError(f"The remote entity '{entity.get('id')}' has the type '{raw}', which ChargeLens cannot keep.")
    return kind


def _create_entities(store: Store, chosen: list[dict]) -> None:
    """Remote entities exist locally with their type and name, even before (or without) readings."""
    rows = [
        {
            "entity_id": e["id"],
            "entity_type": _entity_type(e),
            "name": e.get("name"),
            "brand": e.get("brand"),
            "identifier": e.get("identifier"),
        }
        for e in chosen
    ]
    if rows:
        with store.transaction() as tx:
            Store.upsert_entities(tx, conform(pl.DataFrame(rows, infer_schema_length=None), ENTITIES_SCHEMA))


def _pull_entity(
    store: Store,
    client: PlatformClient,
    entity: dict,
    pulled: EntityPull,
    end: datetime | None,
    options: ImportOptions,
    chunk_size: int,
    report: Callable[[int], None],
) -> None:
    entity_id = entity["id"]
    extra = {
        "entity_id": entity_id,
        "entity_type": _entity_type(entity),
        "name": entity.get("name"),
        "brand": entity.get("brand"),
        "identifier": entity.get("identifier"),
    }
    chunk: list[dict] = []
    received = 0
    report(0)
    for record in client.readings(entity_id, pulled.start, end):
        # Since-last asks from the last pulled instant itself (inclusive on every platform) and skips what it had.
        if pulled.after is not None and (ts := _instant(record.get("timestamp"))) is not None and ts <= pulled.after:
            continue
        chunk.append({**flatten(record), **extra})
        received += 1
        if len(chunk) >= chunk_size:
            _land_chunk(store, pulled, chunk, received - len(chunk), options)
            chunk = []
            report(received)
    if chunk:
        _land_chunk(store, pulled, chunk, received - len(chunk), options)
    report(received)


def _land_chunk(store: Store, pulled: EntityPull, records: list[dict], offset: int, options: ImportOptions) -> None:
    name = f"remote readings of {pulled.entity_id}"
    table = pl.DataFrame(records, schema={k: pl.String for k in records[0]})
    parsed = readings_importer.parse(Path(name), name, options, table, first_line=offset + 1)
    parsed.format = "remote"
    summary = land(store, parsed)
    pulled.summary.add(summary)
    pulled.summary.rejects = pl.concat([pulled.summary.rejects, summary.rejects])
    if parsed.readings.height:
        last = parsed.readings.get_column("ts").max()
        pulled.last_ts = last if pulled.last_ts is None else max(pulled.last_ts, last)
        _log_pull(store, pulled.entity_id, pulled)  # after the chunk's commit: a crash here only re-pulls it


def _log_pull(store: Store, entity_id: str, pulled: EntityPull) -> None:
    if pulled.start is None:
        return
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO remote_pulls (entity_id, first_start, last_ts, pulled, error) VALUES (?, ?, ?, now(), ?) "
            "ON CONFLICT (entity_id) DO UPDATE SET "
            "first_start = least(remote_pulls.first_start, excluded.first_start), "
            "last_ts = greatest(remote_pulls.last_ts, excluded.last_ts), pulled = excluded.pulled, "
            "error = excluded.error",
            [entity_id, pulled.start, pulled.last_ts, pulled.error],
        )


def _instant(text) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else None


# -- pulling charge sessions --------------------------------------------------------------------------------
@dataclass
class SessionPull:
    start: datetime
    entities: list[EntityPull] = field(default_factory=list)

    @property
    def failed(self) -> list[EntityPull]:
        return [e for e in self.entities if e.error is not None]


def default_sessions_start(store: Store, now: datetime) -> datetime:
    """Where `remote sessions` starts without --start: the earliest readings pull, else 30 days back."""
    earliest = store.scalar("SELECT min(first_start) FROM remote_pulls")
    return earliest.astimezone(UTC) if earliest is not None else now - SESSIONS_LOOKBACK


def pull_sessions(
    store: Store,
    client: PlatformClient,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    entity_ids: Sequence[str] = (),
    now: datetime | None = None,
) -> SessionPull:
    """Store the platform's completed charge sessions (source platform, method reported) of [start, end)."""
    now = now or datetime.now(UTC)
    start = start or default_sessions_start(store, now)
    if end is not None and end <= start:
        raise InputError(f"The window ends ({format_time(end)}) before it starts ({format_time(start)}).")
    chosen = _chosen_entities(client, entity_ids)
    _create_entities(store, chosen)
    result = SessionPull(start)
    for entity in chosen:
        entity_id = entity["id"]
        pulled = EntityPull(entity_id, start, summary=ImportSummary(entity_id))
        result.entities.append(pulled)
        try:
            records = list(client.charge_sessions(entity_id, start, end))
        except PlatformError as exc:
            pulled.error = str(platform_error(exc, f"Pulling the sessions of '{entity_id}'"))
            if exc.status in (None, 401, 403):
                break
            continue
        name = f"remote sessions of {entity_id}"
        sessions, rejects = platform_sessions_frame(entity_id, records, name)
        entities = conform(
            pl.DataFrame({"entity_id": [entity_id], "entity_type": [_entity_type(entity)]}), ENTITIES_SCHEMA
        )
        if records:
            parsed = ParsedFile(
                name=name,
                format="remote-sessions",
                rows_read=len(records),
                sessions=sessions,
                entities=entities,
                rejects=rejects,
            )
            pulled.summary = land(store, parsed)
            pulled.summary.name = entity_id
        with store.transaction() as tx:
            tx.execute("INSERT INTO remote_session_windows VALUES (?, ?, ?, now())", [entity_id, start, end or now])
    return result


def _measure(part, unit_factors: dict[str, float] | None = None) -> float | None:
    """The value of a {"unit", "value"} measurement (converted by unit when asked), None when unknown."""
    if not isinstance(part, dict) or part.get("value") is None:
        return None
    try:
        value = float(part["value"])
    except (TypeError, ValueError):
        return None
    factor = (unit_factors or {}).get(str(part.get("unit")), 1.0)
    return value if factor == 1.0 else round(value * factor, 9)  # 10200 W is 10.2 kW, not 10.200000000000001


def platform_sessions_frame(entity_id: str, records: Sequence[dict], name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """API.md charge-session objects as stored sessions (ids from entity + start) and a rejects frame."""
    rows, problems = [], []
    for number, record in enumerate(records, start=1):
        data = record.get("data") if isinstance(record, dict) and isinstance(record.get("data"), dict) else {}
        charge = data.get("charge") if isinstance(data.get("charge"), dict) else {}
        total = charge.get("total") if isinstance(charge.get("total"), dict) else {}
        start, end = _instant(data.get("start")), _instant(data.get("end"))
        energy = total.get("total")
        row = {
            "entity_id": entity_id,
            "start_utc": start,
            "end_utc": end,
            "plug_in_utc": _instant(data.get("plugIn")),
            "plug_out_utc": _instant(data.get("plugOut")),
            "energy_kwh": float(energy) if isinstance(energy, int | float) else None,
            "average_power_kw": _measure(charge.get("averagePower"), {"W": 0.001}),
            "max_power_kw": _measure(charge.get("maxPower"), {"W": 0.001}),
            "soc_start_pct": _measure(charge.get("start")),
            "soc_end_pct": _measure(charge.get("end")),
            "range_start_km": _measure((data.get("range") or {}).get("start")),
            "range_end_km": _measure((data.get("range") or {}).get("end")),
            "latitude": (data.get("location") or {}).get("latitude"),
            "longitude": (data.get("location") or {}).get("longitude"),
        }
        checks = (
            ("start", start is None, data.get("start"), "start is missing or not a time with a zone"),
            ("end", end is None, data.get("end"), "end is missing or not a time with a zone"),
            ("end", start and end and end < start, data.get("end"), "the session ends before it starts"),
            ("energy", energy is not None and row["energy_kwh"] is None, energy, "energy is not a number"),
            ("energy", (row["energy_kwh"] or 0) < 0, energy, "energy must be zero or positive"),
            (
                "charge.start",
                not 0 <= (row["soc_start_pct"] or 0) <= 100,
                row["soc_start_pct"],
                "state of charge must be between 0 and 100 %",
            ),
            (
                "charge.end",
                not 0 <= (row["soc_end_pct"] or 0) <= 100,
                row["soc_end_pct"],
                "state of charge must be between 0 and 100 %",
            ),
        )
        failed = [(column, value, reason) for column, bad, value, reason in checks if bad]
        for column, value, reason in failed:
            problems.append(
                {
                    "file": name,
                    "row": number,
                    "column": column,
                    "value": None if value is None else str(value),
                    "reason": reason,
                }
            )
        if not failed:
            rows.append(row)
    frame = pl.DataFrame(rows, schema={k: SESSIONS_SCHEMA.get(k, pl.Float64) for k in _SESSION_ROW_KEYS})
    frame = frame.with_columns(
        method=pl.lit("reported"),
        source=pl.lit("platform"),
        flags=pl.lit(""),
        start_reason=pl.lit(PLATFORM_REASON),
        end_reason=pl.lit(PLATFORM_REASON),
    )
    # The same start text as the session importers hash, so one instant always gives one id.
    starts = frame.get_column("start_utc").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_list()
    ids = [session_id(entity_id, s, "platform") for s in starts]
    frame = frame.with_columns(session_id=pl.Series(ids, dtype=pl.String))
    return conform(frame, SESSIONS_SCHEMA), reject_frame(problems)


_SESSION_ROW_KEYS = (
    "entity_id",
    "start_utc",
    "end_utc",
    "plug_in_utc",
    "plug_out_utc",
    "energy_kwh",
    "average_power_kw",
    "max_power_kw",
    "soc_start_pct",
    "soc_end_pct",
    "range_start_km",
    "range_end_km",
    "latitude",
    "longitude",
)


def platform_sessions(store: Store, start: datetime | None = None, entity_ids: Iterable[str] = ()) -> pl.DataFrame:
    """The stored platform sessions (start in [start, …)), ordered by start."""
    return query_sessions(store, SessionFilter(start=start, entity_ids=tuple(entity_ids), source="platform"))


# -- reconciliation -----------------------------------------------------------------------------------------
RECONCILE_SCHEMA = pl.Schema(
    {
        "entity_id": pl.String(),
        "status": pl.String(),  # matched | only_platform | only_local
        "platform_session_id": pl.String(),
        "local_session_id": pl.String(),
        "platform_start_utc": UTC_TS,
        "platform_end_utc": UTC_TS,
        "local_start_utc": UTC_TS,
        "local_end_utc": UTC_TS,
        "platform_energy_kwh": pl.Float64(),
        "local_energy_kwh": pl.Float64(),
        "energy_diff_kwh": pl.Float64(),  # local minus platform
        "start_diff_min": pl.Float64(),  # local minus platform
        "end_diff_min": pl.Float64(),
        "overlap_min": pl.Float64(),
    }
)
_SIDE_COLUMNS = ("session_id", "start_utc", "end_utc", "energy_kwh")


def _minutes(later: str, earlier: str) -> pl.Expr:
    return (pl.col(later) - pl.col(earlier)).dt.total_microseconds() / 6e7


def reconcile(platform: pl.DataFrame, local: pl.DataFrame) -> pl.DataFrame:
    """Platform sessions next to local ones of the same entity, paired one to one by the longest time overlap.

    Both frames hold session_id, entity_id, start_utc, end_utc, energy_kwh. A pair needs a positive overlap;
    pairs are taken longest overlap first (ties by ids), so each session is in at most one pair. Differences are
    local minus platform. Sessions of one side without a pair are listed as only_platform / only_local.
    """
    p = platform.select("entity_id", *[pl.col(c).alias(f"platform_{c}") for c in _SIDE_COLUMNS])
    loc = local.select("entity_id", *[pl.col(c).alias(f"local_{c}") for c in _SIDE_COLUMNS])
    overlap = (
        pl.min_horizontal("platform_end_utc", "local_end_utc")
        - pl.max_horizontal("platform_start_utc", "local_start_utc")
    ).dt.total_microseconds() / 6e7
    pairs = p.join(loc, on="entity_id").with_columns(overlap_min=overlap).filter(pl.col("overlap_min") > 0)
    order = ["overlap_min", "platform_session_id", "local_session_id"]
    pairs = pairs.sort(order, descending=[True, False, False])
    matched = []
    while pairs.height:
        # Each round keeps the pairs that are the best for both their sessions; the overall best always is one.
        best_p = pairs.unique("platform_session_id", keep="first", maintain_order=True)
        best_l = pairs.unique("local_session_id", keep="first", maintain_order=True)
        mutual = best_p.join(
            best_l.select("platform_session_id", "local_session_id"),
            on=["platform_session_id", "local_session_id"],
            how="semi",
        )
        matched.append(mutual)
        pairs = pairs.filter(
            ~pl.col("platform_session_id").is_in(mutual.get_column("platform_session_id").implode())
            & ~pl.col("local_session_id").is_in(mutual.get_column("local_session_id").implode())
        )
    pairs = pl.concat(matched) if matched else pairs
    only_p = p.join(pairs, on="platform_session_id", how="anti").with_columns(status=pl.lit("only_platform"))
    only_l = loc.join(pairs, on="local_session_id", how="anti").with_columns(status=pl.lit("only_local"))
    out = pl.concat([pairs.with_columns(status=pl.lit("matched")), only_p, only_l], how="diagonal_relaxed")
    out = conform(out, RECONCILE_SCHEMA).with_columns(
        energy_diff_kwh=pl.col("local_energy_kwh") - pl.col("platform_energy_kwh"),
        start_diff_min=_minutes("local_start_utc", "platform_start_utc"),
        end_diff_min=_minutes("local_end_utc", "platform_end_utc"),
    )
    first = pl.coalesce("platform_start_utc", "local_start_utc")
    return out.sort(["entity_id", first, "platform_session_id", "local_session_id"], nulls_last=True)


def reconciliation(store: Store, entity_id: str | None = None) -> pl.DataFrame:
    """reconcile() of the stored platform and detected sessions that start inside the windows pulled from it."""
    scope, params = ("AND s.entity_id = ?", [entity_id]) if entity_id is not None else ("", [])
    both = store.frame(
        "SELECT s.source, s.session_id, s.entity_id, s.start_utc, s.end_utc, s.energy_kwh FROM sessions s "
        "WHERE s.source IN ('platform', 'detected') AND EXISTS (SELECT 1 FROM remote_session_windows w WHERE "
        f"w.entity_id = s.entity_id AND s.start_utc >= w.start_utc AND s.start_utc < w.end_utc) {scope}",
        params,
    )
    return reconcile(both.filter(pl.col("source") == "platform"), both.filter(pl.col("source") == "detected"))


def reconciled_entities(store: Store) -> list[str]:
    """Entities whose platform sessions were pulled (the ones a reconciliation can speak about)."""
    rows = store.cursor().execute("SELECT DISTINCT entity_id FROM remote_session_windows ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def reconcile_record(row: dict) -> dict:
    """One reconciliation row for JSON (camelCase, RFC 3339 times)."""
    names = {
        "entity_id": "entityId",
        "status": "status",
        "platform_session_id": "platformSessionId",
        "local_session_id": "localSessionId",
        "platform_energy_kwh": "platformEnergyKwh",
        "local_energy_kwh": "localEnergyKwh",
        "energy_diff_kwh": "energyDiffKwh",
        "start_diff_min": "startDiffMin",
        "end_diff_min": "endDiffMin",
        "overlap_min": "overlapMin",
        "platform_start_utc": "platformStart",
        "platform_end_utc": "platformEnd",
        "local_start_utc": "localStart",
        "local_end_utc": "localEnd",
    }
    return {
        names[k]: (rfc3339(v) if isinstance(v, datetime) else round(v, 6) if isinstance(v, float) else v)
        for k, v in row.items()
    }


# -- what the `remote` commands print, the same whether they run here or through a server holding the database ----
ENTITY_TABLE = ["entity_id", "entity_type", "name", "last_reading_pulled", "last_error"]
SESSION_TABLE = ["session_id", "entity_id", "start_utc", "end_utc", "energy_kwh", "method", "source"]
RECONCILE_TABLE = ["entity_id", "status", "platform_start_utc", "local_start_utc", "platform_energy_kwh",
                   "local_energy_kwh", "energy_diff_kwh", "start_diff_min", "end_diff_min"]  # fmt: skip
RECONCILE_STATUSES = ("matched", "only_platform", "only_local")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def entities_report(store: Store, client: PlatformClient) -> dict:
    """`remote entities`: the platform's entity objects as it sends them (data) and the table rows (rows)."""
    records = list_entities(client)
    rows = entity_table(store, records).to_dicts()
    return {"data": records, "rows": [{**r, "last_reading_pulled": rfc3339(r["last_reading_pulled"])} for r in rows]}


def pull_report(result: PullResult) -> dict:
    """`remote pull`: a line per entity, a total line when there are several, and why entities failed."""
    lines = [pulled.line() for pulled in result.entities]
    total = [result.total().line()] if len(result.entities) > 1 else []
    return {"lines": lines + total, "failed": [pulled.error for pulled in result.failed]}


def sessions_report(store: Store, client: PlatformClient, start: datetime | None) -> dict:
    """`remote sessions`: pull the platform's sessions, then list the stored ones from the window's start.

    lines: one per entity pulled; data: the table rows; failed: the first failure, or None.
    """
    result = pull_sessions(store, client, start=start)
    rows = platform_sessions(store, start=result.start).to_dicts()
    data = [{**{c: r[c] for c in SESSION_TABLE}, "start_utc": rfc3339(r["start_utc"]),
             "end_utc": rfc3339(r["end_utc"]), "energy_kwh": _rounded(r["energy_kwh"])} for r in rows]  # fmt: skip
    failed = result.failed[0].error if result.failed else None
    return {"lines": [pulled.line() for pulled in result.entities], "data": data, "failed": failed}


def reconcile_report(store: Store, entity_id: str | None) -> dict:
    """`remote reconcile`: the JSON records (data), the table rows (rows) and the count per status (summary)."""
    pulled = reconciled_entities(store)
    if not pulled or (entity_id is not None and entity_id not in pulled):
        whose = f"of '{entity_id}' " if entity_id is not None else ""
        raise InputError(
            f"No platform sessions {whose}were pulled yet, so there is nothing to reconcile; "
            "run `remote sessions --start ISO` first."
        )
    frame = reconciliation(store, entity_id)
    times = ("platform_start_utc", "local_start_utc")
    rows = [{c: rfc3339(r[c]) if c in times else r[c] if c in ("entity_id", "status") else _rounded(r[c])
             for c in RECONCILE_TABLE} for r in frame.to_dicts()]  # fmt: skip
    counts = frame.get_column("status").value_counts()
    found = dict(zip(counts.get_column("status").to_list(), counts.get_column("count").to_list(), strict=True))
    summary = ", ".join(f"{status.replace('_', ' ')} {found.get(status, 0)}" for status in RECONCILE_STATUSES)
    return {"data": [reconcile_record(r) for r in frame.to_dicts()], "rows": rows, "summary": summary}
