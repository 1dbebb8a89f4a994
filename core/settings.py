"""One settings object: every key declared once with its type, default and a line of help."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_ROOT / "data" / "chargelens.duckdb"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


class SettingError(ValueError):
    """A setting key or value that cannot be used; the message says what would work."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise SettingError(f"'{text}' is not a yes/no value; use true or false.")


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"'{text}' is not a known time zone; use a name like Europe/Brussels or UTC.") from None
    return text


def _clock(text: str) -> str:
    parts = text.split(":")
    if len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[0]) < 24 and int(parts[1]) < 60:
        return f"{int(parts[0]):02d}:{int(parts[1]):02d}"
    raise SettingError(f"'{text}' is not a time of day; use HH:MM, for example 03:00.")


def _number(kind, low: float | None = None, high: float | None = None):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise SettingError(f"'{text}' is not a {'whole ' if kind is int else ''}number.") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise SettingError(f"{value} is out of range; use a value from {low} to {high}.")
        return value

    return parse


def _text(text: str) -> str:
    return text.strip()


@dataclasses.dataclass(frozen=True)
class Setting:
    key: str
    default: object
    parse: object  # callable str -> value, raising SettingError
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("exact_locations", False, _bool, "Let exact coordinates out in exports, the API and the pages."),
    Setting("display_timezone", "UTC", _timezone, "Time zone for day/week/month totals, heatmaps and reports."),
    Setting("min_power_kw", 0.1, _number(float, 0, 1000), "Power at or above this means charging (kW)."),
    Setting("max_pause_min", 15, _number(int, 0, 1440), "Pauses shorter than this stay inside one session (minutes)."),
    Setting(
        "max_gap_min", 60, _number(int, 1, 10080), "Never integrate power across a data gap longer than this (minutes)."
    ),
    Setting("min_energy_kwh", 0.05, _number(float, 0, 1000), "Sessions with less energy are dropped (kWh)."),
    Setting(
        "soc_min_rise_pct", 1.0, _number(float, 0, 100), "Smallest state-of-charge rise that counts as charging (%)."
    ),
    Setting("remote_url", "", _text, "Base URL of a remote platform's API, e.g. https://platform.example/api."),
    Setting("remote_client_id", "", _text, "Client id for the remote platform (its secret is kept in a file)."),
    Setting("remote_pull_time", "03:00", _clock, "Local time of day of the daily pull from the remote platform."),
    Setting("max_upload_mb", 1024, _number(int, 1, 1_048_576), "Largest upload accepted in the browser and API (MB)."),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The effective settings: defaults, then the database's `settings` table, then CHARGELENS_<KEY>."""

    exact_locations: bool = False
    display_timezone: str = "UTC"
    min_power_kw: float = 0.1
    max_pause_min: int = 15
    max_gap_min: int = 60
    min_energy_kwh: float = 0.05
    soc_min_rise_pct: float = 1.0
    remote_url: str = ""
    remote_client_id: str = ""
    remote_pull_time: str = "03:00"
    max_upload_mb: int = 1024

    @classmethod
    def from_sources(cls, stored: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for setting in SETTINGS:
            raw = environ.get(f"CHARGELENS_{setting.key.upper()}", stored.get(setting.key))
            if raw is None:
                continue
            try:
                values[setting.key] = setting.parse(str(raw))
            except SettingError:
                continue  # a bad stored or environment value falls back to the default
        return cls(**values)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def parse_setting(key: str, value: str) -> object:
    """Validate one user-given value; raises SettingError naming the valid keys or values."""
    if key not in SETTINGS_BY_KEY:
        raise SettingError(f"Unknown setting '{key}'; known settings: {', '.join(SETTINGS_BY_KEY)}.")
    return SETTINGS_BY_KEY[key].parse(value)


def database_path(explicit: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The database file: an explicit path, else CHARGELENS_DB, else data/chargelens.duckdb."""
    environ = os.environ if environ is None else environ
    if explicit:
        return _resolved(os.fspath(explicit), os.getcwd())
    if environ.get("CHARGELENS_DB"):
        return _resolved(environ["CHARGELENS_DB"], os.getcwd())
    return DEFAULT_DB


@functools.lru_cache(maxsize=64)
def _resolved(name: str, cwd: str) -> Path:
    """An absolute, resolved file name (the API asks for the database's on every request: resolving walks the
    folders with a system call each)."""
    return Path(name).expanduser().resolve()  # relative to `cwd`, the current folder


def sidecar(db_path: Path, suffix: str) -> Path:
    """Files that live next to the database and are named after it, e.g. chargelens.server.json."""
    return db_path.with_name(f"{db_path.stem}.{suffix}")
