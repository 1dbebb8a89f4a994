"""Objects in the API's shape (API.md): sessions, entities; shared by the API server and JSON exports."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# Decimals of values in API replies and JSON exports: Wh, W, metres and cents are as fine as any meter reads,
# and shorter numbers never look like a coordinate written with 4 or more decimals.
DECIMALS = {"kWh": 3, "kW": 3, "W": 1, "%": 2, "km": 3, "accuracy": 3, "money": 2}


def measure(unit: str, value: float | None) -> float | None:
    return None if value is None else round(float(value), DECIMALS[unit])


def _simple(unit: str, value) -> dict | None:
    return None if value is None else {"unit": unit, "value": measure(unit, value)}


def session_record(row: dict, decimals: int | None = None, matches: list[dict] | None = None) -> dict:
    """One charge session as API.md shows it; unknown parts are omitted; positions only when allowed."""
    t = [row.get(f"energy_t{i}_kwh") for i in range(1, 5)]
    charge: dict = {}
    if row.get("energy_kwh") is not None:
        charge["total"] = {
            "t1": measure("kWh", t[0] if t[0] is not None else row["energy_kwh"]),
            "t2": measure("kWh", t[1] or 0.0),
            "t3": measure("kWh", t[2] or 0.0),
            "t4": measure("kWh", t[3] or 0.0),
            "total": measure("kWh", row["energy_kwh"]),
            "unit": "kWh",
        }
    for key, unit, column in (
        ("averagePower", "kW", "average_power_kw"),
        ("maxPower", "kW", "max_power_kw"),
        ("start", "%", "soc_start_pct"),
        ("end", "%", "soc_end_pct"),
    ):
        if (item := _simple(unit, row.get(column))) is not None:
            charge[key] = item
    data: dict = {"start": rfc3339(row["start_utc"]), "end": rfc3339(row["end_utc"])}
    if charge:
        data["charge"] = charge
    range_ = {
        k: v
        for k, v in (
            ("start", _simple("km", row.get("range_start_km"))),
            ("end", _simple("km", row.get("range_end_km"))),
        )
        if v is not None
    }
    if range_:
        data["range"] = range_
    if matches is None:
        label = row.get("location_label")
        accuracy = measure("accuracy", row.get("location_accuracy"))
        matches = [] if label is None else [{"accuracy": accuracy, "location": {"label": label}}]
    data["locationMatches"] = matches
    if decimals is not None and row.get("latitude") is not None:
        data["location"] = {
            "latitude": round(row["latitude"], decimals),
            "longitude": round(row["longitude"], decimals),
            "address": None,
        }
    for key, column in (("plugIn", "plug_in_utc"), ("plugOut", "plug_out_utc")):
        if row.get(column) is not None:
            data[key] = rfc3339(row[column])
    record = {"id": row["session_id"], "entityId": row["entity_id"]}
    if row.get("created") is not None:
        record["created"] = rfc3339(row["created"])
    record["data"] = data
    for key, column in (("method", "method"), ("source", "source")):
        if row.get(column) is not None:
            record[key] = row[column]
    if row.get("cost_total") is not None:
        # Money is rounded once, half away from zero, when it is shown (SPEC section 5).
        from core.costs import round_money

        record["cost"] = {"total": round_money(row["cost_total"]), "currency": row.get("currency")}
    return record


def entity_record(row: dict) -> dict:
    return {
        "id": row["entity_id"],
        "type": row["entity_type"],
        "name": row.get("name"),
        "brand": row.get("brand"),
        "identifier": row.get("identifier"),
        "created": rfc3339(row.get("created")),
        "lastSeen": rfc3339(row.get("last_seen")),
    }


def camel(name: str) -> str:
    """A CLI option's snake_case name as the API names it (min_power_kw -> minPowerKw)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
