"""Location matching benchmark: sessions x locations, grid join vs the brute-force cross join (baseline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import peak_rss_mb, timed
from core.locations import haversine_m, match_sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--locations", type=int, default=1_000)
    parser.add_argument("--radius", type=float, default=150.0, help="metres (the largest allowed is 5000)")
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    n, m = args.sessions, args.locations
    # A metropolitan area of about 110 x 70 km; half of the sessions sit near a location, as real fleets do.
    centres = np.column_stack([50.5 + rng.random(m), 4.0 + rng.random(m)])
    near = centres[rng.integers(0, m, n // 2)] + rng.normal(0, 0.0008, (n // 2, 2))
    far = np.column_stack([50.5 + rng.random(n - n // 2), 4.0 + rng.random(n - n // 2)])
    points = np.vstack([near, far])
    sessions = pl.DataFrame(
        {
            "session_id": [f"s{i}" for i in range(n)],
            "entity_id": "ev",
            "latitude": points[:, 0],
            "longitude": points[:, 1],
        }
    )
    locations = pl.DataFrame(
        {
            "location_id": [f"l{i}" for i in range(m)],
            "entity_id": pl.Series([None] * m, dtype=pl.String),
            "latitude": centres[:, 0],
            "longitude": centres[:, 1],
            "radius_m": args.radius,
        }
    )
    grid_s, matches = timed(match_sessions, sessions, locations, repeat=3)
    sample = sessions.head(max(1, n // 100))

    def brute(frame: pl.DataFrame) -> pl.DataFrame:
        pairs = frame.join(locations, how="cross", suffix="_r")
        d = haversine_m(pl.col("latitude"), pl.col("longitude"), pl.col("latitude_r"), pl.col("longitude_r"))
        return pairs.filter(d <= pl.col("radius_m"))

    brute_s, brute_matches = timed(brute, sample)
    brute_full = brute_s * n / sample.height  # the cross join grows linearly with sessions
    got = matches.filter(pl.col("session_id").is_in(sample.get_column("session_id").implode())).height
    assert got == brute_matches.height, (got, brute_matches.height)
    print(
        f"location matching: {n:,} sessions x {m:,} locations (radius {args.radius:.0f} m), {matches.height:,} matches"
    )
    print(f"cross join (baseline, extrapolated from {sample.height:,} sessions) {brute_full:8.3f} s")
    print(f"ChargeLens grid join                                    {grid_s:8.3f} s  {brute_full / grid_s:7.1f}x faster"
          f"  peak RSS {peak_rss_mb():,.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
