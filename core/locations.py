"""Locations: validation and matching of session positions to named places (pure polars).

Accuracy of a match falls linearly from 1 at the centre to 0 at the radius: accuracy = 1 - d / r.
"""

from __future__ import annotations

import math

import polars as pl

from core.errors import InputError

EARTH_RADIUS_M = 6_371_008.8
MATCH_COLUMNS = {"session_id": pl.String, "location_id": pl.String, "accuracy": pl.Float64}


def validate_location(label: str, latitude: float, longitude: float, radius_m: float | None = None) -> dict:
    """A location's fields checked against API.md's limits; InputError lists every field that fails."""
    errors = {}
    label = (label or "").strip()
    if not 1 <= len(label) <= 100:
        errors["label"] = "the label must be 1 to 100 characters"
    radius_m = 150.0 if radius_m is None else radius_m
    for key, value, low, high in (
        ("latitude", latitude, -90, 90),
        ("longitude", longitude, -180, 180),
        ("radius", radius_m, 10, 5000),
    ):
        if value is None or not isinstance(value, int | float) or math.isnan(value) or not low <= value <= high:
            errors[key] = f"{key} must be a number from {low} to {high}"
    if errors:
        raise InputError("The location is not valid: " + "; ".join(errors.values()) + ".", errors=errors)
    return {"label": label, "latitude": float(latitude), "longitude": float(longitude), "radius_m": float(radius_m)}


def haversine_m(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in metres (handles the antimeridian: only sines and cosines of differences)."""
    p1, p2 = lat1.radians(), lat2.radians()
    dlat = p2 - p1
    dlon = (lon2 - lon1).radians()
    a = (dlat / 2).sin() ** 2 + p1.cos() * p2.cos() * (dlon / 2).sin() ** 2
    return 2 * EARTH_RADIUS_M * a.sqrt().clip(upper_bound=1.0).arcsin()


def match_sessions(sessions: pl.DataFrame, locations: pl.DataFrame) -> pl.DataFrame:
    """Every (session, location) pair whose radius contains the session position, best accuracy first.

    sessions: session_id, entity_id, latitude, longitude; locations: location_id, entity_id (null = all),
    latitude, longitude, radius_m.
    """
    if sessions.height == 0 or locations.height == 0:
        return pl.DataFrame(schema=MATCH_COLUMNS)
    positioned = sessions.filter(pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null())
    places = locations.select(
        "location_id",
        pl.col("entity_id").alias("__scope"),
        pl.col("latitude").alias("__lat"),
        pl.col("longitude").alias("__lon"),
        "radius_m",
    )
    pairs = positioned.join(places, how="cross").filter(
        pl.col("__scope").is_null() | (pl.col("__scope") == pl.col("entity_id"))
    )
    distance = haversine_m(pl.col("latitude"), pl.col("longitude"), pl.col("__lat"), pl.col("__lon"))
    return (
        pairs.with_columns(__d=distance)
        .filter(pl.col("__d") <= pl.col("radius_m"))
        .select("session_id", "location_id", (1 - pl.col("__d") / pl.col("radius_m")).alias("accuracy"))
        .sort(["session_id", "accuracy", "location_id"], descending=[False, True, False])
        .cast(MATCH_COLUMNS)
    )
