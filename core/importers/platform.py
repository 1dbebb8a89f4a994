"""Readings API JSON (API.md "Readings"): a page, a bare list or JSON lines of reading objects."""

from __future__ import annotations

API_KEYS = {"entityId", "timestamp"}


def is_api_reading(record: dict) -> bool:
    return API_KEYS <= record.keys()


def _measure(data: dict, key: str, part: str):
    item = data.get(key)
    if isinstance(item, dict):
        return item.get(part)
    return None


def flatten(record: dict) -> dict:
    """One API reading object as canonical text cells (power in W, as the platform reports it)."""
    data = record.get("data") or {}
    if not isinstance(data, dict):
        data = {}
    location = data.get("location") if isinstance(data.get("location"), dict) else {}
    cells = {
        "entity_id": record.get("entityId"),
        "ts": record.get("timestamp"),
        "power_w": _measure(data, "positiveActiveInstantaneousPower", "total"),
        "energy_kwh": _measure(data, "positiveActiveEnergy", "total"),
        "soc_pct": _measure(data, "stateOfCharge", "value"),
        "range_km": _measure(data, "range", "value"),
        "odometer_km": _measure(data, "odometer", "value"),
        "latitude": location.get("latitude"),
        "longitude": location.get("longitude"),
        "is_charging": data.get("isCharging"),
        "is_plugged_in": data.get("isPluggedIn"),
    }
    return {k: (None if v is None else str(v)) for k, v in cells.items()}
