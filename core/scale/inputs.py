"""What `scale detect` reads beside the readings: entities CSV, locations and tariffs JSON (SPEC section 6).

- `--entities` CSV: `entity_id, entity_type, battery_capacity_kwh`, optionally `latitude, longitude` (a charge
  point's fixed position, which its sessions match locations with). Only the listed entities are processed.
  Without it, every entity of the readings is, typed by their `entity_type` column (EV where it is missing).
- `--locations` JSON: a list of API.md location objects `{"label", "latitude", "longitude", "radius"}`, plus
  `"entityId"` for a place of one entity (`"id"` is optional).
- `--tariffs` JSON: a list of SPEC section 5 tariffs, each with `"assign"`: `"default"`, `{"location": LABEL}`,
  `{"entity": ID}`, or a list of these.

Session capture is on for every entity that the compatibility check allows, as an import switches it on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from core import costs
from core.detect import DetectParams
from core.errors import InputError
from core.features import capture_refusal
from core.importers.rules import check_entity_id, parse_number
from core.locations import validate_location
from core.schema import ENTITY_TYPE_ALIASES

LOCATION_COLUMNS = {
    "location_id": pl.String,
    "entity_id": pl.String,
    "label": pl.String,
    "latitude": pl.Float64,
    "longitude": pl.Float64,
    "radius_m": pl.Float64,
}
ASSIGNMENT_COLUMNS = {"tariff": pl.String, "scope": pl.String, "target": pl.String}


@dataclass(frozen=True)
class Entity:
    entity_id: str
    entity_type: str = "EV"
    battery_capacity_kwh: float | None = None
    latitude: float | None = None  # fixed position (charge points)
    longitude: float | None = None

    def capture(self, *, has_power: bool, has_meter: bool, has_soc: bool) -> bool:
        """Whether session capture is on: the same check as an import and the feature API."""
        refusal = capture_refusal(
            self.entity_id,
            self.entity_type,
            has_power=has_power,
            has_meter=has_meter,
            has_soc=has_soc,
            capacity_kwh=self.battery_capacity_kwh,
        )
        return refusal is None


@dataclass(frozen=True)
class Inputs:
    """Everything a task needs besides its readings; small enough to ship with every task."""

    entities: dict[str, Entity] | None = None  # None: every entity of the readings
    locations: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LOCATION_COLUMNS))
    tariffs: tuple[costs.Tariff, ...] = ()
    assignments: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ASSIGNMENT_COLUMNS))
    params: DetectParams = DetectParams()

    def entity(self, entity_id: str, entity_type: str | None = None) -> Entity | None:
        """The entity as configured; without an entities file, typed by its readings (None: not to be processed)."""
        if self.entities is not None:
            return self.entities.get(entity_id)
        raw = (entity_type or "").strip() or "EV"
        return Entity(entity_id, ENTITY_TYPE_ALIASES.get(raw, raw))


def load(
    entities: Path | None = None,
    locations: Path | None = None,
    tariffs: Path | None = None,
    params: DetectParams = DetectParams(),
) -> Inputs:
    """Read and check the side files; InputError names the file and what to fix."""
    found = read_tariffs(tariffs) if tariffs else ((), pl.DataFrame(schema=ASSIGNMENT_COLUMNS))
    return Inputs(
        entities=read_entities(entities) if entities else None,
        locations=read_locations(locations) if locations else pl.DataFrame(schema=LOCATION_COLUMNS),
        tariffs=found[0],
        assignments=found[1],
        params=params,
    )


def read_entities(path: Path) -> dict[str, Entity]:
    try:
        table = pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; check the path.") from None
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path.name} could not be read as CSV ({str(exc).splitlines()[0][:200]}).") from None
    table = table.rename(lambda c: c.strip())
    missing = [c for c in ("entity_id", "entity_type") if c not in table.columns]
    if missing:
        raise InputError(
            f"{path.name} needs the columns entity_id, entity_type and battery_capacity_kwh; "
            f"{' and '.join(missing)} missing."
        )
    numbers = {c: parse_number(pl.col(c), table.schema[c]) if c in table.columns else pl.lit(None, pl.Float64)
               for c in ("battery_capacity_kwh", "latitude", "longitude")}  # fmt: skip
    rows = table.select(pl.col("entity_id").str.strip_chars(), pl.col("entity_type").str.strip_chars(), **numbers)
    out: dict[str, Entity] = {}
    for line, row in enumerate(rows.iter_rows(named=True), start=2):
        entity_id, kind = row["entity_id"], row["entity_type"]
        where = f"{path.name} row {line}"
        if not pl.select(check_entity_id(pl.lit(entity_id, pl.String))).item():
            raise InputError(f"{where}: the entity id must be 1 to 128 printable characters.")
        if not kind:
            raise InputError(f"{where}: entity_type is empty; use EV or ChargePoint.")
        capacity = row["battery_capacity_kwh"]
        if capacity is not None and not 0 < capacity <= 300:
            raise InputError(f"{where}: battery_capacity_kwh must be more than 0 and at most 300, or empty.")
        if entity_id in out:
            raise InputError(f"{where}: '{entity_id}' is listed twice; keep one row per entity.")
        out[entity_id] = Entity(entity_id, ENTITY_TYPE_ALIASES.get(kind, kind), capacity, row["latitude"],
                                row["longitude"])  # fmt: skip
    return out


def _json_list(path: Path, what: str) -> list:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; check the path.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name} is not valid JSON ({str(exc)[:150]}).") from None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = body["data"]  # a page as the API and `--json` lists give it
    if not isinstance(body, list):
        raise InputError(f"{path.name} must hold a JSON list of {what}.")
    return body


def read_locations(path: Path) -> pl.DataFrame:
    rows = []
    for i, item in enumerate(_json_list(path, "location objects")):
        if not isinstance(item, dict):
            raise InputError(f"{path.name} item {i + 1}: a location is an object with label, latitude and longitude.")
        try:
            place = validate_location(item.get("label"), item.get("latitude"), item.get("longitude"),
                                      item.get("radius", item.get("radius_m")))  # fmt: skip
        except InputError as exc:
            raise InputError(f"{path.name} item {i + 1}: {exc.detail}") from None
        entity_id = item.get("entityId", item.get("entity_id"))
        rows.append({"location_id": str(item.get("id") or f"location-{i + 1}"), "entity_id": entity_id, **place})
    return pl.DataFrame(rows, schema=LOCATION_COLUMNS)


def _assignments(name: str, assign: Any, where: str) -> list[dict]:
    items = assign if isinstance(assign, list) else [assign]
    out = []
    for item in items:
        if item == "default":
            out.append({"tariff": name, "scope": "default", "target": ""})
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in ("location", "entity"):
            scope, target = next(iter(item.items()))
            if not isinstance(target, str) or not target:
                raise InputError(f"{where}: assign {scope} needs a label or an id as text.")
            out.append({"tariff": name, "scope": scope, "target": target})
        else:
            raise InputError(
                f'{where}: "assign" must be "default", {{"location": LABEL}}, {{"entity": ID}} or a list of these.'
            )
    return out


def read_tariffs(path: Path) -> tuple[tuple[costs.Tariff, ...], pl.DataFrame]:
    tariffs, assignments = [], []
    for i, item in enumerate(_json_list(path, "tariffs")):
        where = f"{path.name} item {i + 1}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: a tariff is an object (see the tariff format in the README).")
        body = {k: v for k, v in item.items() if k != "assign"}
        try:
            tariff = costs.parse_tariff(body)
        except InputError as exc:
            raise InputError(f"{where}: {exc.detail}") from None
        tariffs.append(tariff)
        if "assign" in item:
            assignments += _assignments(tariff.name, item["assign"], where)
    names = [t.name for t in tariffs]
    if len(set(names)) != len(names):
        raise InputError(f"{path.name} names a tariff twice; give each tariff its own name.")
    frame = pl.DataFrame(assignments, schema=ASSIGNMENT_COLUMNS)
    costs.check_overlap(tariffs, frame)
    return tuple(tariffs), frame


def write_demo(folder: Path, seed: int = 1) -> dict[str, Path]:
    """The demo fleet as `scale detect` inputs: readings.parquet, entities.csv, locations.json and tariffs.json."""
    from core import demo

    fleet = demo.generate(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("readings.parquet", "entities.csv", "locations.json", "tariffs.json")}
    readings = fleet.readings.join(fleet.entities.select("entity_id", "entity_type"), on="entity_id", how="left")
    readings.write_parquet(paths["readings.parquet"])
    fleet.entities.select("entity_id", "entity_type", "battery_capacity_kwh", "latitude", "longitude").write_csv(
        paths["entities.csv"]
    )
    locations = [
        {"id": f"demo-{i + 1}", "label": p["label"], "latitude": p["latitude"], "longitude": p["longitude"],
         "radius": p["radius_m"], **({"entityId": p["entity_id"]} if p["entity_id"] else {})}
        for i, p in enumerate(fleet.locations)
    ]  # fmt: skip
    paths["locations.json"].write_text(json.dumps(locations, indent=2) + "\n")
    paths["tariffs.json"].write_text(json.dumps([{**fleet.tariff, "assign": "default"}], indent=2) + "\n")
    return paths
