"""Locations: validation, matching of session positions to named places, and place suggestions (pure polars).

Accuracy of a match falls linearly from 1 at the centre to 0 at the radius: accuracy = 1 - d / r, where d is
the great-circle distance. Candidate pairs come from a grid of cubes on the unit-sphere vectors (x, y, z), so
that the antimeridian and the poles need no special case.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from core.errors import InputError

EARTH_RADIUS_M = 6_371_008.8
MATCH_COLUMNS = {"session_id": pl.String, "location_id": pl.String, "accuracy": pl.Float64}
SUGGESTION_COLUMNS = {
    "number": pl.Int64, "label": pl.String, "latitude": pl.Float64, "longitude": pl.Float64, "radius_m": pl.Float64,
    "sessions": pl.Int64, "energy_kwh": pl.Float64, "night_share": pl.Float64, "entity_id": pl.String,
}  # fmt: skip
_NEIGHBOURS = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]


def validate_location(label: str, latitude: float, longitude: float, radius_m: float | None = None) -> dict:
    """A location's fields checked against API.md's limits; InputError lists every field that fails."""
    errors = {}
    label = (label or "").strip() if isinstance(label, str) else ""
    if not 1 <= len(label) <= 100:
        errors["label"] = "the label must be 1 to 100 characters"
    radius_m = 150.0 if radius_m is None else radius_m
    for key, value, low, high in (("latitude", latitude, -90, 90), ("longitude", longitude, -180, 180),
                                  ("radius", radius_m, 10, 5000)):  # fmt: skip
        ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
        if not ok or not low <= value <= high:
            errors[key] = f"{key} must be a number from {low} to {high}"
    if errors:
        raise InputError("The location is not valid: " + "; ".join(errors.values()) + ".", errors=errors)
    return {"label": label, "latitude": float(latitude), "longitude": float(longitude), "radius_m": float(radius_m)}


def merged_location(current: dict, changes: dict) -> dict:
    """A location's fields with `changes` applied (a change of None keeps the field), checked like a new one."""
    fields = ("label", "latitude", "longitude", "radius_m")
    return validate_location(**{k: changes[k] if changes.get(k) is not None else current[k] for k in fields})


def haversine_m(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in metres (only sines and cosines of differences: the antimeridian is no edge)."""
    p1, p2 = lat1.radians(), lat2.radians()
    dlat = p2 - p1
    dlon = (lon2 - lon1).radians()
    a = (dlat / 2).sin() ** 2 + p1.cos() * p2.cos() * (dlon / 2).sin() ** 2
    return 2 * EARTH_RADIUS_M * a.sqrt().clip(upper_bound=1.0).arcsin()


def _cells(lat: pl.Expr, lon: pl.Expr, size_m: float, prefix: str) -> list[pl.Expr]:
    """Grid cell of a position: cubes of `size_m` on the Earth-radius vector (chord <= arc, so no pair is lost)."""
    p, q = lat.radians(), lon.radians()
    xyz = (p.cos() * q.cos(), p.cos() * q.sin(), p.sin())
    return [(v * EARTH_RADIUS_M / size_m).floor().cast(pl.Int64).alias(f"{prefix}{axis}")
            for v, axis in zip(xyz, "xyz", strict=True)]  # fmt: skip


def pairs_within(left: pl.DataFrame, right: pl.DataFrame, reach_m: float) -> pl.DataFrame:
    """Every (left row, right row) pair whose positions may lie within `reach_m`, with their distance `__d`.

    Both frames have latitude/longitude; right's columns are suffixed `_r`.
    """
    size = max(reach_m, 1.0)
    a = left.with_columns(_cells(pl.col("latitude"), pl.col("longitude"), size, "__c"))
    b = right.with_columns(_cells(pl.col("latitude"), pl.col("longitude"), size, "__c"))
    shifts = pl.DataFrame(_NEIGHBOURS, schema=["__dx", "__dy", "__dz"], orient="row")
    b = (
        b.join(shifts, how="cross")
        .with_columns(pl.col("__cx") + pl.col("__dx"), pl.col("__cy") + pl.col("__dy"), pl.col("__cz") + pl.col("__dz"))
        .drop("__dx", "__dy", "__dz")
    )
    joined = a.join(b, on=["__cx", "__cy", "__cz"], suffix="_r").drop("__cx", "__cy", "__cz")
    distance = haversine_m(pl.col("latitude"), pl.col("longitude"), pl.col("latitude_r"), pl.col("longitude_r"))
    return joined.with_columns(__d=distance)


def match_sessions(sessions: pl.DataFrame, locations: pl.DataFrame) -> pl.DataFrame:
    """Every (session, location) pair whose radius contains the session position, best accuracy first.

    sessions: session_id, entity_id, latitude, longitude; locations: location_id, entity_id (null = all),
    latitude, longitude, radius_m.
    """
    positioned = sessions.select("session_id", "entity_id", "latitude", "longitude").filter(
        pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null()
    )
    if positioned.height == 0 or locations.height == 0:
        return pl.DataFrame(schema=MATCH_COLUMNS)
    places = locations.select("location_id", "entity_id", "latitude", "longitude", "radius_m")
    pairs = pairs_within(positioned, places, float(places.get_column("radius_m").max()))
    return (
        pairs.filter(
            (pl.col("__d") <= pl.col("radius_m"))
            & (pl.col("entity_id_r").is_null() | (pl.col("entity_id_r") == pl.col("entity_id")))
        )
        .select("session_id", "location_id", (1 - pl.col("__d") / pl.col("radius_m")).alias("accuracy"))
        .sort(["session_id", "accuracy", "location_id"], descending=[False, True, False])
        .cast(MATCH_COLUMNS)
    )


MERGE_SHARE = 8  # positions inside one cube of eps/8 are clustered as one weighted point


def suggest_places(sessions: pl.DataFrame, timezone: str, eps_m: float = 60.0, min_sessions: int = 3) -> pl.DataFrame:
    """Clusters of unmatched session positions (DBSCAN on great-circle distance) proposed as places.

    sessions: session_id, entity_id, start_utc, energy_kwh, latitude, longitude. A cluster whose sessions mostly
    start at night (18:00-06:00 local) is "Home?", mostly on weekday daytime "Work?", else "Place?". The centre is
    the median of the positions; the radius covers 90 % of them (at least 50 m, at most 5000 m).

    The positions inside one cube of eps/8 are clustered as one point at their mean, weighing as many sessions:
    a depot's 40 000 sessions at jittered positions would otherwise be 1.6 billion neighbour pairs. Distances
    between such points are off by at most the cube's diagonal (13 m for the 60 m default), which a suggestion,
    shown rounded to 100 m, does not notice; centre and radius still come from every position.
    """
    points = sessions.filter(pl.col("latitude").is_not_null() & pl.col("longitude").is_not_null()).sort("session_id")
    if points.height < min_sessions:
        return pl.DataFrame(schema=SUGGESTION_COLUMNS)
    cube = ["__mx", "__my", "__mz"]
    points = points.with_columns(_cells(pl.col("latitude"), pl.col("longitude"), eps_m / MERGE_SHARE, "__m"))
    # Longitudes are averaged as offsets from one member's, so a cube or a place on the antimeridian is not put at 0.
    offset = (pl.col("longitude") - pl.col("longitude").first() + 540) % 360 - 180
    merged = (
        points.group_by(cube)
        .agg(__w=pl.len(), latitude=pl.col("latitude").mean(),
             longitude=(offset.mean() + pl.col("longitude").first() + 540) % 360 - 180)
        .sort(cube)
        .with_row_index("__i")
    )  # fmt: skip
    near = merged.select("__i", "latitude", "longitude")
    pairs = pairs_within(near, near, eps_m).filter(pl.col("__d") <= eps_m)
    merged = merged.with_columns(__cluster=_dbscan(merged.get_column("__w").to_numpy(), pairs, min_sessions))
    clustered = points.join(merged.select(*cube, "__cluster"), on=cube).filter(pl.col("__cluster") >= 0)
    if clustered.height == 0:
        return pl.DataFrame(schema=SUGGESTION_COLUMNS)
    local = pl.col("start_utc").dt.convert_time_zone(timezone)
    hour, weekday = local.dt.hour(), local.dt.weekday()
    groups = clustered.group_by("__cluster").agg(
        latitude=pl.col("latitude").median(),
        longitude=(offset.median() + pl.col("longitude").first() + 540) % 360 - 180,
        sessions=pl.len().cast(pl.Int64),
        energy_kwh=pl.col("energy_kwh").sum(),
        night_share=((hour >= 18) | (hour < 6)).mean(),
        work_share=((weekday <= 5) & hour.is_between(7, 17)).mean(),
        entity_ids=pl.col("entity_id").unique().sort(),
        __lat=pl.col("latitude"),
        __lon=pl.col("longitude"),
    )
    spread = (
        groups.explode("__lat", "__lon")
        .with_columns(__d=haversine_m(pl.col("latitude"), pl.col("longitude"), pl.col("__lat"), pl.col("__lon")))
        .group_by("__cluster")
        .agg(radius_m=pl.col("__d").quantile(0.9).clip(50, 5000))
    )
    return (
        groups.join(spread, on="__cluster")
        .with_columns(
            label=pl.when(pl.col("night_share") > 0.5).then(pl.lit("Home?"))
            .when(pl.col("work_share") > 0.5).then(pl.lit("Work?"))
            .otherwise(pl.lit("Place?")),
            entity_id=pl.when(pl.col("entity_ids").list.len() == 1).then(pl.col("entity_ids").list.first()),
        )
        .sort(["sessions", "latitude", "longitude"], descending=[True, False, False])
        .with_row_index("number", offset=1)
        .select(list(SUGGESTION_COLUMNS))
        .cast(SUGGESTION_COLUMNS)
    )  # fmt: skip


def _dbscan(weights: np.ndarray, pairs: pl.DataFrame, min_points: int) -> np.ndarray:
    """Cluster labels (-1 = noise) of weighted points from their neighbour pairs `__i`, `__i_r`, `__d` (each point
    is its own neighbour; `weights[i]` sessions sit at point i).

    A point is core when its neighbours weigh at least `min_points`; core points within reach of each other share
    a cluster, labelled by its smallest point; a border point joins the cluster of its nearest core neighbour.
    The components come from pointer jumping in numpy (rounds grow with the log of a cluster's size), not from
    a Python loop over the pairs."""
    left, right = pairs.get_column("__i").to_numpy(), pairs.get_column("__i_r").to_numpy()
    core = np.bincount(left, weights=weights[right], minlength=len(weights)) >= min_points
    linked = core[left] & core[right]
    a, b = left[linked], right[linked]
    parent = np.arange(len(weights))
    while True:
        before = parent.copy()
        low = np.minimum(parent[a], parent[b])
        np.minimum.at(parent, parent[a], low)  # hook both roots of every link onto the smaller
        np.minimum.at(parent, parent[b], low)
        while not np.array_equal(jumped := parent[parent], parent):  # every point straight to its root
            parent = jumped
        if np.array_equal(parent, before):
            break
    labels = np.where(core, parent, -1)
    border = pairs.filter(pl.Series(~core[left] & core[right]))
    nearest = (
        border.with_columns(__label=labels[border.get_column("__i_r").to_numpy()])
        .sort("__i", "__d", "__label")
        .unique("__i", keep="first")
    )
    labels[nearest.get_column("__i").to_numpy()] = nearest.get_column("__label").to_numpy()
    return labels
