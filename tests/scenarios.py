"""Named reading scenarios for detection tests, built from compact (minute, power, plugged) rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from core.schema import READINGS_SCHEMA, conform

T0 = datetime(2025, 2, 3, 18, 0, tzinfo=UTC)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def readings(rows: list[tuple], entity: str = "ev", **constant) -> pl.DataFrame:
    """rows: (minute, power_kw[, is_plugged_in]); other columns are constant or unknown."""
    data = {
        "entity_id": [entity] * len(rows),
        "ts": [at(r[0]) for r in rows],
        "power_kw": [r[1] for r in rows],
        "is_plugged_in": [r[2] if len(r) > 2 else None for r in rows],
        **{k: [v] * len(rows) for k, v in constant.items()},
    }
    return conform(pl.DataFrame(data, strict=False), READINGS_SCHEMA)


def steady(start: int, end: int, power: float, step: int = 5, plugged: bool | None = None) -> list[tuple]:
    return [(m, power, plugged) for m in range(start, end + 1, step)]


def table(columns: str, rows: list[tuple], entity: str = "ev", t0: datetime = T0, **constant) -> pl.DataFrame:
    """rows: (minute, value, ...) with one value per name in `columns` (space-separated canonical columns)."""
    names = columns.split()
    data = {
        "entity_id": [entity] * len(rows),
        "ts": [t0 + timedelta(minutes=r[0]) for r in rows],
        **{name: [r[i] for r in rows] for i, name in enumerate(names, start=1)},
        **{k: [v] * len(rows) for k, v in constant.items()},
    }
    return conform(pl.DataFrame(data, strict=False), READINGS_SCHEMA)


def through(corners: list[tuple[float, float]], step: int = 5) -> list[tuple[float, float]]:
    """(minute, value) every `step` minutes along the straight lines between corner points (a register's curve)."""
    rows = []
    for (m0, v0), (m1, v1) in zip(corners, corners[1:], strict=False):
        rows += [(m, v0 + (v1 - v0) * (m - m0) / (m1 - m0)) for m in range(int(m0), int(m1), step)]
    return [*rows, corners[-1]]
