"""Page benchmark: every dashboard page in real Chromium against the real server on a generated fleet.

A fleet (default 10 000 sessions and 1 million readings; the SPEC's figure is `--sessions 100000 --readings
10000000`) is written straight into a fresh database through core.store, cached under the temp folder by size and
reused by later runs. `python -m core --db DB serve` serves a copy of it; Chromium opens the Import page once (the
server's first page and the browser's empty cache: printed as the cold start), then opens each page --repeat times,
each time in a new tab (a new Streamlit session), and changes one filter. The server's memory (VmRSS of it and its
children, and its VmHWM) is sampled from /proc during the whole run. The baseline is the same run on a small fleet
of the same shape (1 000 sessions, 100 000 readings) in the same run, so the ratio shows what the size costs.

Complete render, as measured here: from `page.goto` (or from the click that commits a changed filter) until all of
  - the app is connected and idle: `[data-testid="stApp"]` has `data-test-connection-state="CONNECTED"` and
    `data-test-script-state="notRunning"`, after at least one change of that script state since the navigation
    or the click (so a run really started and finished; a MutationObserver records the changes);
  - no status widget shows "Running...", no element is stale (`data-stale="true"`) and no skeleton is shown;
  - the page's title is visible as its `h1`;
  - every plotly chart shown has drawn its SVG (`.main-svg`) and every dataframe shown its canvas (those inside a
    collapsed expander are not drawn by the browser, so they do not count).
Each render is printed as total (connect + script + draw): connect = until the websocket is up (first render only),
script = the page script's run on the server as the browser saw it (first run start to last run end), draw = the
rest (sending, building and drawing the elements).

The filter changed: Entity type -> ChargePoint on the pages with the filter bar (Overview, Sessions, Timeline,
Costs); on Import the entity type for files without one; on Locations the suggestion picked (the second); on
Entities a search typed in "Find entities". A page passes when the median of its repeats
is within the targets (first render <= 3 s, filter change <= 1.5 s) and shows no exception; the run passes when
every page does and the peak server memory is <= 2 GB. Exit status 0 when everything passes, 1 otherwise, 2
without playwright or Chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.common import peak_rss_mb  # noqa: E402
from core.demo import two_band_tariff  # noqa: E402
from core.ids import session_id  # noqa: E402
from core.schema import ENTITIES_SCHEMA, READINGS_SCHEMA, SESSIONS_SCHEMA, UTC_TS, conform  # noqa: E402
from core.store import SCHEMA_VERSION, Store, matches_json_update  # noqa: E402

FLEET_VERSION = 2  # bump when the generated fleet changes, so cached databases are made again
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TARGET_FIRST_S, TARGET_CHANGE_S, TARGET_MEMORY_MB = 3.0, 1.5, 2048.0
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365
US = 1_000_000
OFFICE = (50.8466, 4.3572)
PUBLIC_PLACES, LABELLED_PUBLIC = 12, 6  # public chargers; the first ones are named locations, the rest are not
CHUNK_READINGS = 1_000_000


# -- the fleet ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetSize:
    sessions: int
    readings: int
    entities: int
    seed: int = 11

    @property
    def name(self) -> str:
        shape = f"s{self.sessions}-r{self.readings}-e{self.entities}-seed{self.seed}"
        return f"pages-v{FLEET_VERSION}-schema{SCHEMA_VERSION}-{shape}"


def _spread(lo: np.ndarray, hi: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k increasing instants (µs) spread evenly, with jitter, over the disjoint sorted intervals [lo, hi)."""
    lengths = (hi - lo).astype(np.float64)
    total = lengths.sum()
    if k <= 0 or total <= 0:
        return np.empty(0, np.int64)
    u = (np.arange(k) + rng.uniform(0.05, 0.95, k)) * (total / k)
    ends = np.cumsum(lengths)
    i = np.minimum(np.searchsorted(ends, u, side="right"), len(lo) - 1)
    return (lo[i] + (u - (ends[i] - lengths[i]))).astype(np.int64)


def _entities(rng: np.random.Generator, n: int) -> tuple[pl.DataFrame, dict]:
    """EVs with a home, charge points at the office or at public chargers, a few home batteries."""
    n_bat = max(1, n // 50)
    n_cp = max(2, n // 4)
    n_ev = max(1, n - n_bat - n_cp)
    public = np.column_stack([rng.uniform(50.75, 50.95, PUBLIC_PLACES), rng.uniform(4.20, 4.60, PUBLIC_PLACES)])
    homes = np.column_stack([rng.uniform(50.75, 50.95, n_ev), rng.uniform(4.20, 4.60, n_ev)])
    # Charge points: 70 % at the office, 20 % at named public chargers, 10 % at public chargers without a name.
    site = rng.choice(3, n_cp, p=[0.7, 0.2, 0.1])
    place = np.where(
        site == 1, rng.integers(0, LABELLED_PUBLIC, n_cp), rng.integers(LABELLED_PUBLIC, PUBLIC_PLACES, n_cp)
    )
    cp_pos = np.where(
        (site == 0)[:, None],
        np.array(OFFICE) + rng.normal(0, 0.0004, (n_cp, 2)),
        public[place] + rng.normal(0, 0.0001, (n_cp, 2)),
    )
    brands = np.array(["Renault", "Tesla", "Volkswagen", "Kia", "Hyundai", "BMW", "Peugeot", "Skoda"])
    cp_brands = np.array(["Alfen", "ABB", "Wallbox", "Easee", "Zaptec"])
    ev_ids = [f"ev-{i:05d}" for i in range(1, n_ev + 1)]
    cp_ids = [f"cp-{i:05d}" for i in range(1, n_cp + 1)]
    bat_ids = [f"bat-{i:05d}" for i in range(1, n_bat + 1)]
    frame = pl.DataFrame(
        {
            "entity_id": ev_ids + cp_ids + bat_ids,
            "entity_type": ["EV"] * n_ev + ["ChargePoint"] * n_cp + ["Battery"] * n_bat,
            "name": [f"Car {i}" for i in range(1, n_ev + 1)]
            + [f"Charge point {i}" for i in range(1, n_cp + 1)]
            + [f"Home battery {i}" for i in range(1, n_bat + 1)],
            "brand": list(rng.choice(brands, n_ev)) + list(rng.choice(cp_brands, n_cp)) + ["BYD"] * n_bat,
            "identifier": [f"BENCH-{e.upper()}" for e in ev_ids + cp_ids + bat_ids],
            "battery_capacity_kwh": list(rng.choice([40.0, 52.0, 64.0, 77.0, 82.0, 100.0], n_ev))
            + [None] * n_cp
            + [10.0] * n_bat,
            "latitude": [None] * n_ev + list(cp_pos[:, 0]) + [None] * n_bat,
            "longitude": [None] * n_ev + list(cp_pos[:, 1]) + [None] * n_bat,
        },
        strict=False,
    )
    return conform(frame, ENTITIES_SCHEMA), {"homes": homes, "public": public}


def _sessions(rng: np.random.Generator, entities: pl.DataFrame, places: dict, n: int) -> pl.DataFrame:
    """n sessions spread over the charging entities (charge points twice as busy as EVs), one per time slot."""
    types = entities.get_column("entity_type").to_numpy()
    charging = np.flatnonzero(types != "Battery")
    weights = np.where(types[charging] == "ChargePoint", 2.0, 1.0)
    counts = rng.multinomial(n, weights / weights.sum())
    ent = np.repeat(charging, counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    j = np.arange(n) - first
    per = np.repeat(counts, counts).astype(np.float64)
    period_s = DAYS * 86_400.0
    slot = period_s / per
    is_ev = types[ent] == "EV"
    # EV sessions: 60 % home, 20 % office, 10 % named public chargers, 10 % public chargers without a name.
    kind = np.where(is_ev, rng.choice(4, n, p=[0.6, 0.2, 0.1, 0.1]), 4)
    kw = np.select(
        [kind == 0, kind == 1, kind == 4],
        [rng.choice([3.7, 7.4, 11.0], n), rng.choice([11.0, 22.0], n), rng.choice([7.4, 11.0, 22.0], n)],
        rng.uniform(50.0, 150.0, n),
    )
    mean_min = np.select([kind == 0, kind == 1, kind == 4], [150.0, 120.0, 180.0], 30.0)
    duration = np.clip(rng.lognormal(np.log(mean_min), 0.5), 12.0, None) * 60.0
    duration = np.minimum(duration, 0.45 * slot)
    before = rng.uniform(60.0, 600.0, n)
    after = rng.uniform(0.0, 1.0, n) * np.minimum(4 * 3600.0, 0.3 * slot)
    offset = before + rng.uniform(0.0, 1.0, n) * np.maximum(slot - duration - before - after - 60.0, 0.0)
    start = np.round(START.timestamp() + j * slot + offset)
    end = start + np.round(duration)
    capacity = entities.get_column("battery_capacity_kwh").fill_null(0.0).to_numpy()[ent]
    energy = kw * duration / 3600.0 * rng.uniform(0.85, 1.0, n)
    energy = np.where(is_ev, np.minimum(energy, 0.85 * np.where(capacity > 0, capacity, 1e9)), energy)
    average = energy / (duration / 3600.0)
    soc_start = np.where(is_ev, rng.uniform(10.0, 60.0, n), np.nan)
    soc_end = np.where(
        is_ev, np.minimum(100.0, soc_start + energy / np.where(capacity > 0, capacity, 1.0) * 100), np.nan
    )
    ev_index = np.cumsum(types == "EV") - 1
    home = places["homes"][np.clip(ev_index[ent], 0, None)]
    public_place = np.where(
        kind == 2, rng.integers(0, LABELLED_PUBLIC, n), rng.integers(LABELLED_PUBLIC, PUBLIC_PLACES, n)
    )
    position = np.select(
        [(kind == 0)[:, None], (kind == 1)[:, None]],
        [home, np.broadcast_to(OFFICE, (n, 2))],
        places["public"][public_place],
    ) + rng.normal(0, 0.00012, (n, 2))
    method_ev = rng.choice(np.array(["power", "soc", "reported"]), n, p=[0.6, 0.25, 0.15])
    method_cp = rng.choice(np.array(["meter", "power", "reported"]), n, p=[0.6, 0.3, 0.1])
    method = np.where(is_ev, method_ev, method_cp)
    source = np.where(method == "reported", rng.choice(np.array(["imported", "platform"]), n, p=[0.6, 0.4]), "detected")
    entity_ids = entities.get_column("entity_id").to_numpy()[ent]
    start_ts = pl.Series((start * US).astype(np.int64)).cast(UTC_TS)
    starts_iso = start_ts.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_list()
    ids = [session_id(e, s, src) for e, s, src in zip(entity_ids.tolist(), starts_iso, source.tolist(), strict=True)]
    frame = pl.DataFrame(
        {
            "session_id": ids,
            "entity_id": entity_ids,
            "start_utc": start_ts,
            "end_utc": pl.Series((end * US).astype(np.int64)).cast(UTC_TS),
            "plug_in_utc": pl.Series(((start - before) * US).astype(np.int64)).cast(UTC_TS),
            "plug_out_utc": pl.Series(((end + after) * US).astype(np.int64)).cast(UTC_TS),
            "energy_kwh": energy,
            "average_power_kw": average,
            "max_power_kw": average * rng.uniform(1.02, 1.15, n),
            "soc_start_pct": soc_start,
            "soc_end_pct": soc_end,
            "range_start_km": soc_start * capacity / 100 * 6.0,
            "range_end_km": soc_end * capacity / 100 * 6.0,
            "latitude": np.where(is_ev, position[:, 0], np.nan),
            "longitude": np.where(is_ev, position[:, 1], np.nan),
            "method": method,
            "source": source,
            "flags": np.where((source == "detected") & (rng.uniform(size=n) < 0.1), "gap_bridged", ""),
            "start_reason": np.where(source == "detected", "started: " + method + " rose above the threshold", ""),
            "end_reason": np.where(source == "detected", "ended: charging stopped; " + method + " flat", ""),
        }
    ).with_columns(
        pl.col("soc_start_pct", "soc_end_pct", "range_start_km", "range_end_km", "latitude", "longitude").fill_nan(
            None
        ),
        pl.col("flags", "start_reason", "end_reason").replace("", None),
    )
    return conform(frame, SESSIONS_SCHEMA).with_columns(
        kind=pl.Series(kind), entity_row=pl.Series(ent), start_s=pl.Series(start), end_s=pl.Series(end)
    )


def _priced(sessions: pl.DataFrame, matches: pl.DataFrame, locations: pl.DataFrame, gbp: set[str]) -> pl.DataFrame:
    """Bands and costs as the tariffs of _tariffs() would give them: Home and Office in EUR (location tariffs win),
    the other sessions of the GBP entities in GBP, the rest without a tariff."""
    best = (
        matches.join(locations.select("location_id", "label"), on="location_id")
        .sort("session_id", "accuracy", descending=[False, True])
        .unique("session_id", keep="first")
        .select("session_id", "label")
    )
    hour = pl.col("start_utc").dt.convert_time_zone("Europe/Brussels").dt.hour()
    weekday = pl.col("start_utc").dt.convert_time_zone("Europe/Brussels").dt.weekday()
    peak = (weekday <= 5) & (hour >= 7) & (hour < 22)
    currency = (
        pl.when(pl.col("label").is_in(["Home", "Office"]))
        .then(pl.lit("EUR"))
        .when(pl.col("entity_id").is_in(sorted(gbp)))
        .then(pl.lit("GBP"))
    )
    return (
        sessions.join(best, on="session_id", how="left")
        .with_columns(currency=currency)
        .with_columns(
            energy_t1_kwh=pl.when(peak | pl.col("currency").is_null()).then("energy_kwh").otherwise(0.0),
            energy_t2_kwh=pl.when(peak | pl.col("currency").is_null()).then(0.0).otherwise("energy_kwh"),
            energy_t3_kwh=pl.lit(0.0),
            energy_t4_kwh=pl.lit(0.0),
        )
        .with_columns(
            cost_energy=pl.when(pl.col("currency").is_not_null()).then(
                pl.col("energy_t1_kwh") * 0.32 + pl.col("energy_t2_kwh") * 0.21
            ),
        )
        .with_columns(
            cost_time=pl.when(pl.col("currency").is_not_null()).then(0.0),
            cost_idle=pl.when(pl.col("currency").is_not_null()).then(0.0),
            cost_flat=pl.when(pl.col("currency").is_not_null()).then(0.0),
            cost_tax=(pl.col("cost_energy") * 0.21),
        )
        .with_columns(cost_total=pl.col("cost_energy") + pl.col("cost_tax"))
        .drop("label")
    )


def _tariffs(gbp: list[str]) -> tuple[list[dict], list[tuple[str, str, str]]]:
    tariffs = [two_band_tariff(name, currency, "2024-01-01")
               for name, currency in (("bench-home", "EUR"), ("bench-office", "EUR"), ("bench-uk", "GBP"))]  # fmt: skip
    assignments = [("bench-home", "location", "Home"), ("bench-office", "location", "Office")]
    assignments += [("bench-uk", "entity", e) for e in gbp]
    return tariffs, assignments


def _readings(rng: np.random.Generator, entity: dict, sessions: pl.DataFrame, k: int) -> pl.DataFrame:
    """k readings of one entity consistent with its sessions: half of them while charging, half in between."""
    t0, t1 = int(START.timestamp() * US), int((START.timestamp() + DAYS * 86_400) * US)
    kind = entity["entity_type"]
    if kind == "Battery" or sessions.height == 0:
        ts = _spread(np.array([t0]), np.array([t1]), k, rng)
        hours = (ts - t0) / 3.6e9
        power = np.round(3.0 * np.sin(hours * 2 * np.pi / 24) + rng.normal(0, 0.2, k), 3)
        soc = np.clip(50 + 40 * np.sin(hours * 2 * np.pi / 24 - np.pi / 2), 5, 100)
        return pl.DataFrame({"entity_id": entity["entity_id"], "ts": pl.Series(ts).cast(UTC_TS), "power_kw": power,
                             "soc_pct": soc})  # fmt: skip
    start = (sessions.get_column("start_s").to_numpy() * US).astype(np.int64)
    end = (sessions.get_column("end_s").to_numpy() * US).astype(np.int64)
    plug_in = sessions.get_column("plug_in_utc").dt.epoch("us").to_numpy()
    plug_out = sessions.get_column("plug_out_utc").dt.epoch("us").to_numpy()
    inside = k // 2
    ts = np.sort(
        np.concatenate(
            [
                _spread(start, end, inside, rng),
                _spread(np.concatenate([[t0], end]), np.concatenate([start, [t1]]), k - inside, rng),
            ]
        )
    )
    i = np.searchsorted(start, ts, side="right") - 1
    c = np.clip(i, 0, None)
    charging = (i >= 0) & (ts < end[c])
    p = np.searchsorted(plug_in, ts, side="right") - 1
    plugged = (p >= 0) & (ts < plug_out[np.clip(p, 0, None)])
    average = sessions.get_column("average_power_kw").to_numpy()
    power = np.where(charging, np.round(average[c] * (1 + rng.normal(0, 0.03, len(ts))), 3), 0.0)
    columns: dict = {
        "entity_id": entity["entity_id"],
        "ts": pl.Series(ts).cast(UTC_TS),
        "power_kw": power,
        "is_charging": charging,
        "is_plugged_in": plugged,
    }
    energy = sessions.get_column("energy_kwh").to_numpy()
    frac = np.clip((ts - start[c]) / np.maximum(end[c] - start[c], 1), 0, 1)
    if kind == "ChargePoint":
        before = 1_000.0 + np.concatenate([[0.0], np.cumsum(energy)[:-1]])
        meter = np.where(i >= 0, before[c] + np.where(charging, frac, 1.0) * energy[c], 1_000.0)
        columns["energy_kwh"] = np.round(meter, 3)
    else:
        knots = np.column_stack([start, end]).ravel()
        levels = np.column_stack(
            [sessions.get_column("soc_start_pct").to_numpy(), sessions.get_column("soc_end_pct").to_numpy()]
        ).ravel()
        soc = np.round(np.interp(ts, knots, levels), 1)
        columns["soc_pct"] = soc
        columns["range_km"] = np.round(soc * (entity["battery_capacity_kwh"] or 60.0) / 100 * 6.0, 1)
        columns["latitude"] = sessions.get_column("latitude").to_numpy()[c]
        columns["longitude"] = sessions.get_column("longitude").to_numpy()[c]
    return pl.DataFrame(columns)


def build_fleet(path: Path, size: FleetSize) -> dict:
    """Write entities, features, locations, tariffs, sessions, matches and readings into a fresh database."""
    from core.locations import match_sessions

    rng = np.random.default_rng(size.seed)
    entities, places = _entities(rng, size.entities)
    sessions = _sessions(rng, entities, places, size.sessions)
    ev_ids = entities.filter(pl.col("entity_type") == "EV").get_column("entity_id").to_list()
    homes = places["homes"]
    places_frame = pl.DataFrame(
        {
            "location_id": [f"home-{e}" for e in ev_ids]
            + ["office"]
            + [f"public-{i + 1}" for i in range(LABELLED_PUBLIC)],
            "entity_id": ev_ids + [None] * (1 + LABELLED_PUBLIC),
            "label": ["Home"] * len(ev_ids) + ["Office"] + [f"Fast charger {i + 1}" for i in range(LABELLED_PUBLIC)],
            "latitude": list(homes[:, 0]) + [OFFICE[0]] + list(places["public"][:LABELLED_PUBLIC, 0]),
            "longitude": list(homes[:, 1]) + [OFFICE[1]] + list(places["public"][:LABELLED_PUBLIC, 1]),
            "radius_m": [150.0] * len(ev_ids) + [400.0] + [150.0] * LABELLED_PUBLIC,
        },
        schema_overrides={"entity_id": pl.String},
    )
    positions = sessions.join(
        entities.select("entity_id", pl.col("latitude").alias("e_lat"), pl.col("longitude").alias("e_lon")),
        on="entity_id",
    ).select(
        "session_id",
        "entity_id",
        pl.coalesce("latitude", "e_lat").alias("latitude"),
        pl.coalesce("longitude", "e_lon").alias("longitude"),
    )
    matches = match_sessions(positions, places_frame)
    all_ids = entities.get_column("entity_id").to_list()
    gbp = set(all_ids[3::10])
    sessions = _priced(sessions, matches, places_frame, gbp)
    tariffs, assignments = _tariffs(sorted(gbp))
    # Capture on for EVs and charge points (off for every 40th, whose detected sessions are then hidden).
    feature_rows = entities.select(  # noqa: F841 (read by DuckDB's replacement scan)
        "entity_id",
        feature=pl.lit("CaptureChargeSessions"),
        enabled=(pl.col("entity_type") != "Battery") & (pl.int_range(pl.len()) % 40 != 39),
    )
    import_id = "bench-import"
    sessions = sessions.with_columns(import_id=pl.when(pl.col("source") == "imported").then(pl.lit(import_id)))

    store = Store.open(path)
    with store.transaction() as tx:
        Store.upsert_entities(tx, entities)
        tx.execute("INSERT INTO features SELECT entity_id, feature, enabled FROM feature_rows")
        tx.execute(
            "INSERT INTO locations (location_id, entity_id, label, latitude, longitude, radius_m) "
            "SELECT location_id, entity_id, label, latitude, longitude, radius_m FROM places_frame"
        )
        Store.insert_sessions(tx, sessions)
        tx.execute("INSERT INTO session_locations SELECT session_id, location_id, accuracy FROM matches")
        tx.execute(matches_json_update())  # each session's copy of its matches, as the matching keeps it
        for body in tariffs:
            tx.execute("INSERT INTO tariffs (name, body) VALUES (?, ?)", [body["name"], json.dumps(body)])
        tx.executemany("INSERT INTO tariff_assignments VALUES (?, ?, ?)", assignments)
        tx.execute("INSERT INTO settings VALUES ('display_timezone', 'Europe/Brussels')")
        tx.execute(
            "INSERT INTO imports (import_id, file_name, size_bytes, format, rows_read, stored, duplicate, conflict, "
            "rejected, ambiguous, nonexistent) VALUES (?, 'bench fleet', 0, 'bench', ?, ?, 0, 0, 3, 0, 0)",
            [import_id, size.readings, size.readings],
        )
        tx.executemany(
            "INSERT INTO rejects VALUES (?, 'bench fleet', ?, 'ts', 'yesterday', 'not a date or time')",
            [[import_id, row] for row in (17, 4242, 99_001)],
        )

    # Readings per entity in proportion to its sessions (batteries get an average share), in chunks.
    per_entity = sessions.group_by("entity_row").len()
    counts = np.zeros(entities.height)
    counts[per_entity.get_column("entity_row").to_numpy()] = per_entity.get_column("len").to_numpy()
    counts[entities.get_column("entity_type").to_numpy() == "Battery"] = max(1.0, size.sessions / entities.height)
    share = np.floor(size.readings * counts / counts.sum()).astype(np.int64)
    share[: size.readings - share.sum()] += 1
    by_entity = sessions.sort("entity_row", "start_utc").partition_by("entity_row", as_dict=True)
    empty = sessions.clear()
    batch: list[pl.DataFrame] = []
    rows = 0
    cols = ", ".join(READINGS_SCHEMA.names())
    for index, entity in enumerate(entities.iter_rows(named=True)):
        batch.append(
            conform(_readings(rng, entity, by_entity.get((index,), empty), int(share[index])), READINGS_SCHEMA)
        )
        rows += batch[-1].height
        if rows >= CHUNK_READINGS or index == entities.height - 1:
            frame = pl.concat(batch)  # noqa: F841 (read by DuckDB's replacement scan)
            with store.transaction() as tx:
                tx.execute(f"INSERT INTO readings ({cols}) SELECT {cols} FROM frame")
            batch, rows = [], 0
    store.cursor().execute(
        "UPDATE entities SET last_seen = m.last_ts FROM (SELECT entity_id, max(ts) AS last_ts FROM readings "
        "GROUP BY entity_id) m WHERE entities.entity_id = m.entity_id"
    )
    store.cursor().execute("CHECKPOINT")
    counts_row = (
        store.cursor()
        .execute(
            "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM sessions), (SELECT count(*) FROM readings), "
            "(SELECT count(*) FROM session_locations)"
        )
        .fetchall()[0]
    )
    store.close()
    return dict(zip(("entities", "sessions", "readings", "matches"), counts_row, strict=True))


def fleet_database(folder: Path, size: FleetSize) -> tuple[Path, float | None]:
    """The cached database of this size, generated first when missing; returns (path, seconds or None if reused)."""
    path = folder / f"{size.name}.duckdb"
    if path.exists():
        return path, None
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{size.name}.partial.duckdb"
    for stale in folder.glob(f"{size.name}.partial*"):
        stale.unlink()
    t0 = time.perf_counter()
    build_fleet(partial, size)
    seconds = time.perf_counter() - t0
    partial.rename(path)
    return path, seconds


# -- the server and its memory -----------------------------------------------------------------------------------
def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """The process and its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in task.read_text().split()]
    return found


class MemorySampler(threading.Thread):
    """Samples the RSS of a process tree every `interval` seconds; the peak is the larger of the sampled sum and
    the kernel's high-water mark (VmHWM) of the main process."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        total = sum(_status_kb(p, "VmRSS") for p in _tree(self.pid))
        self.peak_kb = max(self.peak_kb, total, _status_kb(self.pid, "VmHWM"))

    def stop(self) -> float:
        self.sample()
        self._halt.set()
        self.join()
        return self.peak_kb / 1024


class Server(common.Server):
    """The served database, with the memory of the server's process tree sampled from its start."""

    def started(self) -> None:
        self.memory = MemorySampler(self.proc.pid)
        self.memory.start()

    def stop(self) -> float:
        """Stop the server; returns its peak memory in MB."""
        peak = self.memory.stop()
        super().stop()
        return peak


# -- the browser -------------------------------------------------------------------------------------------------
# Every change of the app's connection and script state, with its time since the navigation started.
OBSERVER_JS = """
window.__stRuns = [];
new MutationObserver((mutations) => {
  for (const m of mutations)
    window.__stRuns.push([performance.now(), m.attributeName, m.target.getAttribute(m.attributeName)]);
}).observe(document, {subtree: true, attributes: true,
                      attributeFilter: ["data-test-script-state", "data-test-connection-state"]});
"""
# Whether the script state changed since record `after` (a run started).
STARTED_JS = '(after) => window.__stRuns.slice(after).some((r) => r[1] === "data-test-script-state")'
RUN_START_TIMEOUT_S = 20
# {done: performance.now(), error} once the page is completely rendered or shows an exception (see the module
# docstring), else false.
RENDERED_JS = """
([title, after]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute("data-test-connection-state") !== "CONNECTED") return false;
  if (app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (!(window.__stRuns || []).slice(after).some((r) => r[1] === "data-test-script-state")) return false;
  // A page that fails shows its exception instead of its content: done, and reported as an error.
  const exception = document.querySelector('[data-testid="stException"]');
  if (exception) return {done: performance.now(), error: exception.innerText.split("\\n").slice(0, 2).join(" ")};
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-stale="true"]')) return false;
  for (const skeleton of document.querySelectorAll('[data-testid="stSkeleton"]'))
    if (skeleton.checkVisibility()) return false;
  const heading = [...document.querySelectorAll("h1")].find((h) => h.textContent.trim() === title);
  if (!heading || !heading.getClientRects().length) return false;
  // Charts and tables that are shown (not inside a collapsed expander) have drawn.
  for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (chart.checkVisibility() && !chart.querySelector(".main-svg")) return false;
  for (const grid of document.querySelectorAll('[data-testid="stDataFrame"]'))
    if (grid.checkVisibility() && !grid.querySelector("canvas")) return false;
  return {done: performance.now(), error: null};
}
"""


def _pick(label: str, option: str) -> Callable:
    """Open the selectbox `label`; returns the click that commits `option` (the timed part), or None without it."""

    def prepare(page):
        from playwright.sync_api import Error as PlaywrightError

        box = page.get_by_label(label, exact=True)
        if box.count() == 0:
            return None
        choice = page.get_by_role("option", name=option, exact=True)
        for _ in range(3):  # a click that scrolls the box into view may only focus it: click again
            box.click()
            try:
                choice.wait_for(timeout=5_000)
                return choice.click
            except PlaywrightError:
                page.keyboard.press("Escape")
        return None

    return prepare


def _search(label: str, text: str) -> Callable:
    """Type `text` into the text input `label`; returns the Enter that commits it (the timed part)."""

    def prepare(page):
        box = page.get_by_label(label, exact=True)
        if box.count() == 0:
            return None
        box.fill(text)
        return lambda: box.press("Enter")

    return prepare


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    change: str  # what the filter change does, as printed
    prepare: Callable | None  # page -> the timed action, or None when the page cannot make that change


PAGES = (
    PageSpec("", "Overview", "Entity type", _pick("Entity type", "ChargePoint")),
    PageSpec("import", "Import", "file entity type", _pick("Entity type when the file has none", "ChargePoint")),
    PageSpec("sessions", "Sessions", "Entity type", _pick("Entity type", "ChargePoint")),
    PageSpec("timeline", "Timeline", "Entity type", _pick("Entity type", "ChargePoint")),
    PageSpec("costs", "Costs", "Entity type", _pick("Entity type", "ChargePoint")),
    PageSpec("locations", "Locations", "suggestion", _pick("Suggestion", "2")),
    PageSpec("entities", "Entities", "search", _search("Find entities", "ev-0001")),
)


@dataclass(frozen=True)
class Render:
    """One measured render, in seconds: the whole wait and, from the browser's records, the part the script ran on
    the server (first run start to last run end) and the part before the app connected (first render only)."""

    total: float
    script: float
    shell: float = 0.0

    @property
    def draw(self) -> float:
        """What is left: sending, building and drawing the elements in the browser."""
        return max(0.0, self.total - self.script - self.shell)


@dataclass
class PageTimes:
    first: list[Render] = field(default_factory=list)
    change: list[Render] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rendered(page, spec: PageSpec, after: int, t0: float, timeout_s: float, first: bool, errors: list[str]) -> Render:
    handle = page.wait_for_function(RENDERED_JS, arg=[spec.title, after], polling=50, timeout=timeout_s * 1000)
    total = time.perf_counter() - t0
    outcome = handle.json_value()
    done_ms = outcome["done"]
    if outcome["error"]:
        errors.append(f"exception: {outcome['error'][:150]}")
    records = page.evaluate("window.__stRuns")
    script = [(t, v) for t, name, v in records[after:] if name == "data-test-script-state" and t <= done_ms]
    starts = [t for t, v in script if v == "running"] or [script[0][0]]
    ends = [t for t, v in script if v == "notRunning"]
    connected = [t for t, name, v in records if name == "data-test-connection-state" and v == "CONNECTED"]
    shell = connected[0] / 1000 if first and connected else 0.0
    return Render(total, (ends[-1] - starts[0]) / 1000 if ends else 0.0, shell)


def measure_page(context, url: str, spec: PageSpec, repeat: int, timeout_s: float) -> PageTimes:
    """Open the page `repeat` times, each in a fresh tab (a new Streamlit session) of the same browser context."""
    from playwright.sync_api import Error as PlaywrightError

    times = PageTimes()
    for _ in range(repeat):
        page = context.new_page()
        try:
            failed = len(times.errors)
            t0 = time.perf_counter()
            page.goto(f"{url}/{spec.path}", wait_until="commit")
            times.first.append(_rendered(page, spec, 0, t0, timeout_s, True, times.errors))
            if len(times.errors) > failed:
                continue
            if spec.prepare is not None and (action := spec.prepare(page)) is not None:
                after = page.evaluate("window.__stRuns.length")
                t0 = time.perf_counter()
                action()
                try:  # a click that changed nothing starts no run: say so rather than wait for the timeout
                    page.wait_for_function(STARTED_JS, arg=after, polling=50, timeout=RUN_START_TIMEOUT_S * 1000)
                except PlaywrightError:
                    times.errors.append(f"the change started no run within {RUN_START_TIMEOUT_S} s")
                    continue
                times.change.append(_rendered(page, spec, after, t0, timeout_s, False, times.errors))
        except PlaywrightError as exc:
            times.errors.append(str(exc).splitlines()[0][:120])
        finally:
            page.close()
    return times


def run_pages(
    db: Path, pages: list[PageSpec], repeat: int, timeout_s: float, label: str
) -> tuple[dict[str, PageTimes], float]:
    """Serve `db`, measure each page; returns the times per page path and the server's peak memory (MB)."""
    from playwright.sync_api import sync_playwright

    server = Server(db)
    results: dict[str, PageTimes] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.add_init_script(OBSERVER_JS)
            try:
                # The server's first page (imports, first connection) and the browser's empty cache, once.
                cold = measure_page(context, server.url, PAGES[1], 1, timeout_s)
                print(f"  {label:<8} cold start (Import page, empty browser cache) {_each(cold.first)}", flush=True)
                for spec in pages:
                    results[spec.path] = t = measure_page(context, server.url, spec, repeat, timeout_s)
                    print(
                        f"  {label:<8} {spec.title:<10} first {_each(t.first)}  change {_each(t.change)}"
                        + (f"  ({'; '.join(t.errors)})" if t.errors else ""),
                        flush=True,
                    )
            finally:
                browser.close()
    finally:
        peak = server.stop()
    return results, peak


# -- the report --------------------------------------------------------------------------------------------------
def _each(renders: list[Render]) -> str:
    """Each render as total (connect + script + draw)."""
    if not renders:
        return "n/a"
    return ", ".join(
        f"{r.total:.2f} ({f'{r.shell:.2f} + ' if r.shell else ''}{r.script:.2f} + {r.draw:.2f})" for r in renders
    )


def _median(renders: list[Render], part: str = "total") -> float | None:
    return statistics.median(getattr(r, part) for r in renders) if renders else None


def _cell(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else "    n/a"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:6.1f}x" if value is not None and base else "      -"


def _verdict(times: PageTimes, change_expected: bool) -> str:
    first, change = _median(times.first), _median(times.change)
    ok = first is not None and first <= TARGET_FIRST_S and not times.errors
    if change_expected:
        ok = ok and change is not None and change <= TARGET_CHANGE_S
    return "PASS" if ok else "FAIL"


def report(
    size: FleetSize, pages: list[PageSpec], results: dict, base: dict, peak_mb: float, base_peak_mb: float
) -> bool:
    print()
    print(
        f"pages on {size.sessions:,} sessions / {size.readings:,} readings: seconds, median and max of the repeats; "
        f"base = the baseline fleet; script = median time the page script ran on the server; targets on the median: "
        f"first render <= {TARGET_FIRST_S:g} s, filter change <= {TARGET_CHANGE_S:g} s"
    )
    print(
        f"{'page':<10} {'filter change':<26} {'first':>7} {'max':>7} {'base':>7} {'ratio':>7} {'script':>7}   "
        f"{'change':>7} {'max':>7} {'base':>7} {'ratio':>7} {'script':>7}   result"
    )
    passed = True
    for spec in pages:
        t, b = results[spec.path], base[spec.path]
        first, change = _median(t.first), _median(t.change)
        base_first, base_change = _median(b.first), _median(b.change)
        verdict = _verdict(t, spec.prepare is not None and bool(b.change))
        passed &= verdict == "PASS"
        change_text = spec.change if spec.prepare is None or t.change else f"{spec.change} (missing)"
        print(
            f"{spec.title:<10} {change_text:<26} {_cell(first)} {_cell(max((r.total for r in t.first), default=None))} "
            f"{_cell(base_first)} {_ratio(first, base_first)} {_cell(_median(t.first, 'script'))}   "
            f"{_cell(change)} {_cell(max((r.total for r in t.change), default=None))} {_cell(base_change)} "
            f"{_ratio(change, base_change)} {_cell(_median(t.change, 'script'))}   {verdict}"
            + (f"  {'; '.join(t.errors)}" if t.errors else "")
        )
    memory_ok = peak_mb <= TARGET_MEMORY_MB
    passed &= memory_ok
    print(
        f"peak server memory {peak_mb:,.0f} MB (baseline {base_peak_mb:,.0f} MB, {peak_mb / base_peak_mb:.1f}x; "
        f"target <= {TARGET_MEMORY_MB:,.0f} MB)   {'PASS' if memory_ok else 'FAIL'}"
    )
    print(f"peak RSS of this process {peak_rss_mb():,.0f} MB; load average {os.getloadavg()[0]:.1f}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions (the SPEC's figure: 100000)")
    parser.add_argument("--readings", type=int, default=1_000_000, help="readings (the SPEC's figure: 10000000)")
    parser.add_argument("--entities", type=int, help="entities (default: one per 250 sessions, at least 12)")
    parser.add_argument("--baseline-sessions", type=int, default=1_000)
    parser.add_argument("--baseline-readings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="measurements per page (default 3)")
    parser.add_argument(
        "--pages", default=",".join(spec.title.lower() for spec in PAGES),
        help="the pages to measure, by title (default: all: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for one render (default 180)")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "chargelens-bench",
        help="folder of the generated databases, reused by size (default: %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("bench_pages needs the playwright package: run `make test-deps` first.", file=sys.stderr)
        return 2
    if not shutil.which(CHROMIUM):
        print(f"bench_pages needs Chromium at {CHROMIUM}: run `make chromium` first.", file=sys.stderr)
        return 2

    wanted = {name.strip().lower() for name in args.pages.split(",")}
    pages = [spec for spec in PAGES if spec.title.lower() in wanted]
    if not pages or len(pages) != len(wanted):
        parser.error(f"--pages takes titles among {', '.join(spec.title.lower() for spec in PAGES)}")
    size = FleetSize(args.sessions, args.readings, args.entities or max(12, args.sessions // 250))
    baseline = FleetSize(args.baseline_sessions, args.baseline_readings, max(12, args.baseline_sessions // 250))
    databases = {}
    for label, fleet in (("baseline", baseline), ("fleet", size)):
        path, seconds = fleet_database(args.cache, fleet)
        databases[label] = path
        megabytes = path.stat().st_size / 2**20
        if seconds is None:
            print(f"{label}: reusing {path} ({megabytes:,.0f} MB)")
        else:
            print(
                f"{label}: generated {fleet.sessions:,} sessions, {fleet.readings:,} readings, "
                f"{fleet.entities} entities in {seconds:.1f} s ({fleet.readings / seconds:,.0f} readings/s), "
                f"{megabytes:,.0f} MB in {path}; peak RSS {peak_rss_mb():,.0f} MB"
            )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before serving", flush=True)
    # Each server gets a copy of its cached database: serving writes files beside it, and pages may write to it.
    with tempfile.TemporaryDirectory(prefix="chargelens-bench-") as work:
        measured = {}
        for label in ("baseline", "fleet"):
            copy = Path(work) / f"{label}.duckdb"
            shutil.copyfile(databases[label], copy)
            measured[label] = run_pages(copy, pages, args.repeat, args.timeout, label)
    (results, peak), (base, base_peak) = measured["fleet"], measured["baseline"]
    return 0 if report(size, pages, results, base, peak, base_peak) else 1


if __name__ == "__main__":
    sys.exit(main())
