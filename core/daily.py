"""Keeping a connected remote platform current while serving: the daily pull at `remote_pull_time` (SPEC §8).

The rule: the pull is due once the most recent daily slot (`remote_pull_time` in `display_timezone`) lies after
the last successful pull of any kind (a manual `remote pull` counts too). A server that was down at that time
therefore catches up as soon as it starts, and a day never gets two pulls. Before anything was ever pulled, the
first slot after the server started triggers a pull of the last LOOKBACK. A failed attempt is retried after RETRY.

A daily pull is the same work as `remote pull --since-last` followed by `remote sessions` from where the previous
session pull ended (less SESSION_OVERLAP, for sessions that were still open then; stored sessions are not
duplicated), so cron without a server and the server itself keep the database current the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core import remote
from core.errors import ChargeLensError
from core.store import Store

log = logging.getLogger("chargelens.daily")

LOOKBACK = timedelta(days=30)  # the first daily pull, when nothing was pulled before
SESSION_OVERLAP = timedelta(days=2)  # sessions open at the end of the previous window are complete by now
RETRY = timedelta(minutes=15)
POLL_S = 60.0


# -- when ---------------------------------------------------------------------------------------------------
def _local_slot(day: date, pull_time: str, zone: ZoneInfo) -> datetime:
    """`pull_time` on this local day as UTC. A time the spring DST change skips lands the gap's length later
    (02:30 → 03:30); a time the autumn change repeats counts once, at its first occurrence."""
    hour, minute = (int(p) for p in pull_time.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def slot_before(now: datetime, pull_time: str, timezone: str) -> datetime:
    """The latest daily slot at or before `now` (UTC)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    for back in range(3):
        slot = _local_slot(today - timedelta(days=back), pull_time, zone)
        if slot <= now:
            return slot
    raise AssertionError("a daily slot always lies within the last two days")


def slot_after(now: datetime, pull_time: str, timezone: str) -> datetime:
    """The first daily slot strictly after `now` (UTC)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    for ahead in range(3):
        slot = _local_slot(today + timedelta(days=ahead), pull_time, zone)
        if slot > now:
            return slot
    raise AssertionError("a daily slot always lies within the next two days")


def last_pull(store: Store) -> datetime | None:
    """When readings were last pulled without an error, by any means."""
    return store.scalar("SELECT max(pulled) FROM remote_pulls WHERE error IS NULL")


def sessions_resume(store: Store, now: datetime) -> datetime:
    """Where the next session pull starts: the end of the previous one less the overlap, else LOOKBACK back."""
    end = store.scalar("SELECT max(end_utc) FROM remote_session_windows")
    return end.astimezone(UTC) - SESSION_OVERLAP if end is not None else now - LOOKBACK


@dataclass(frozen=True)
class Schedule:
    """What the Entities page and the server log say about the daily pull."""

    connected: bool
    pull_time: str
    timezone: str
    last: datetime | None
    next: datetime

    def sentence(self) -> str:
        if not self.connected:
            return "No remote platform is connected, so there is no daily pull."
        last = "nothing was pulled yet" if self.last is None else f"last pull {self.last:%Y-%m-%d %H:%M} UTC"
        return (
            f"While the server runs, new readings and sessions are pulled every day at {self.pull_time} "
            f"{self.timezone} (next {self.next:%Y-%m-%d %H:%M} UTC; {last})."
        )


def schedule(store: Store, now: datetime) -> Schedule:
    settings = store.settings()
    return Schedule(
        remote.connection(store).connected,
        settings.remote_pull_time,
        settings.display_timezone,
        last_pull(store),
        slot_after(now, settings.remote_pull_time, settings.display_timezone),
    )


# -- what ---------------------------------------------------------------------------------------------------
@dataclass
class DailyOutcome:
    at: datetime
    readings: int = 0
    sessions: int = 0
    errors: list[str] | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def line(self) -> str:
        done = f"daily pull: {self.readings} new readings, {self.sessions} new sessions"
        return f"{done}; failed: {'; '.join(self.errors)}" if self.errors else done


def pull_now(store: Store, now: datetime, **client_options) -> DailyOutcome:
    """One daily pull: readings since the last pull (or LOOKBACK back), then sessions from where they stopped."""
    outcome = DailyOutcome(now)
    try:
        with remote.open_client(store, **client_options) as client:
            if last_pull(store) is None and store.scalar("SELECT count(*) FROM remote_pulls") == 0:
                readings = remote.pull(store, client, start=now - LOOKBACK, now=now)
            else:
                readings = remote.pull(store, client, since_last=True, now=now)
            sessions = remote.pull_sessions(store, client, start=sessions_resume(store, now), now=now)
    except ChargeLensError as exc:
        outcome.errors = [str(exc)]
        return outcome
    outcome.readings = readings.total().stored
    outcome.sessions = sum(e.summary.stored for e in sessions.entities)
    errors = [e.error for e in (*readings.failed, *sessions.failed)]
    outcome.errors = errors or None
    return outcome


# -- the thread ---------------------------------------------------------------------------------------------
class DailyPull:
    """Checks once a minute whether the daily pull is due and runs it, in a daemon thread of the server."""

    def __init__(
        self,
        db_path: Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_s: float = POLL_S,
        client_options: dict | None = None,
    ):
        self.db_path = db_path
        self.clock = clock
        self.poll_s = poll_s
        self.client_options = client_options or {}
        self.started = clock()
        self.retry_at: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chargelens-daily-pull", daemon=True)

    def start(self) -> DailyPull:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def due(self, store: Store, now: datetime) -> bool:
        if not remote.connection(store).connected or (self.retry_at is not None and now < self.retry_at):
            return False
        settings = store.settings()
        slot = slot_before(now, settings.remote_pull_time, settings.display_timezone)
        return (last_pull(store) or self.started) < slot

    def tick(self) -> DailyOutcome | None:
        """Run the pull if it is due; returns what it did, or None when it was not due."""
        store = Store.open(self.db_path)
        now = self.clock()
        if not self.due(store, now):
            return None
        outcome = pull_now(store, now, **self.client_options)
        self.retry_at = now + RETRY if outcome.failed else None
        (log.warning if outcome.failed else log.info)("%s", outcome.line())
        return outcome

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the server keeps serving; the next minute tries again
                log.exception("the daily pull check failed")
            self._stop.wait(self.poll_s)
