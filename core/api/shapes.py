"""API.md objects that core.records does not build yet (readings, locations, capacity); candidates for it."""

from __future__ import annotations

from datetime import UTC, datetime

from core.records import measure, rfc3339

EXACT_DECIMALS = 6  # about 0.1 m: what "exact" means everywhere in ChargeLens (exports use the same)


def instant(value: datetime | None) -> str | None:
    """RFC 3339 with Z; fractions of a second only when there are some, so that no two readings collide."""
    if value is None or not value.microsecond:
        return rfc3339(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _simple(unit: str, value) -> dict | None:
    return None if value is None else {"unit": unit, "value": measure(unit, value)}


def reading_record(row: dict, exact_locations: bool) -> dict:
    """One reading as API.md shows it; unknown metrics are left out; the position only when allowed."""
    data: dict = {}
    if row.get("power_kw") is not None:
        # The platform reports power per phase in W; readings here only know the total.
        watts = measure("W", row["power_kw"] * 1000.0)
        data["positiveActiveInstantaneousPower"] = {"l1": None, "l2": None, "l3": None, "total": watts, "unit": "W"}
    if row.get("energy_kwh") is not None:
        # API.md: with no tariff bands, t1 holds the total and t2..t4 are 0.
        kwh = measure("kWh", row["energy_kwh"])
        data["positiveActiveEnergy"] = {"t1": kwh, "t2": 0.0, "t3": 0.0, "t4": 0.0, "total": kwh, "unit": "kWh"}
    for key, unit, column in (
        ("stateOfCharge", "%", "soc_pct"),
        ("range", "km", "range_km"),
        ("odometer", "km", "odometer_km"),
    ):
        if (item := _simple(unit, row.get(column))) is not None:
            data[key] = item
    if exact_locations and row.get("latitude") is not None and row.get("longitude") is not None:
        data["location"] = {
            "latitude": round(row["latitude"], EXACT_DECIMALS),
            "longitude": round(row["longitude"], EXACT_DECIMALS),
            "address": None,
        }
    for key, column in (("isCharging", "is_charging"), ("isPluggedIn", "is_plugged_in")):
        if row.get(column) is not None:
            data[key] = bool(row[column])
    return {"entityId": row["entity_id"], "timestamp": instant(row["ts"]), "data": data}


def location_record(row: dict) -> dict:
    return {
        "id": row["location_id"],
        "label": row["label"],
        "latitude": row["latitude"],
        "longitude": row["longitude"],
        "radius": row["radius_m"],
    }


def capacity_record(entity: dict) -> dict:
    return {"unit": "kWh", "value": entity.get("battery_capacity_kwh")}
