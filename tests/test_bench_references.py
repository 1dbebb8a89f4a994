"""The benchmark's pandas and DuckDB references find the same sessions and energy as ChargeLens (power-only data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from bench import reference_duckdb, reference_pandas
from bench.common import fleet_readings
from core.detect import DetectParams, detect_sessions
from core.schema import READINGS_SCHEMA, conform

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _edge_cases() -> pl.DataFrame:
    """Minute readings (plus a few gaps) around the rules' edges, for two entities."""
    rows: list[tuple[str, float, float]] = []  # entity, minute, power

    def span(entity: str, first: float, last: float, power: float, step: float = 1) -> None:
        m = first
        while m <= last:
            rows.append((entity, m, power))
            m += step

    a = "edge-a"
    span(a, 0, 9, 0.0)
    rows.append((a, 9.5, 0.05))  # below min_power_kw but not 0: its trapezoid edge counts it
    span(a, 10, 40, 7.0)
    span(a, 41, 50, 0.0)  # pause of 10 min (41 -> 51): stays inside
    span(a, 51, 70, 11.0)
    span(a, 71, 100, 0.0)  # pause of 30 min: splits
    span(a, 101, 130, 3.7)
    span(a, 220, 240, 3.7)  # 90 min between two charging readings: not integrated, not a pause
    span(a, 241, 255, 0.0)  # pause of exactly 15 min (241 -> 256): stays inside
    span(a, 256, 270, 7.0)
    span(a, 271, 300, 0.0)
    span(a, 301, 320, 7.0)
    rows.append((a, 321, 0.0))
    span(a, 391, 400, 7.0)  # 70 min gap after a reading without charging: splits, not integrated
    span(a, 401, 410, 0.0)
    span(a, 411, 420, 7.0)  # ongoing at the end of the data: not listed
    b = "edge-b"
    span(b, 0, 5, 0.0)
    rows.append((b, 6, 0.2))  # a lone charging reading: 0.0033 kWh, below min_energy_kwh
    span(b, 7, 30, 0.0)
    span(b, 31, 60.5, 22.0, step=0.5)  # sub-minute readings, then sparse charging readings
    span(b, 70, 110, 22.0, step=10)
    span(b, 111, 125, 0.0)  # data goes on for exactly max_pause_min after the last charging reading: complete
    entity, minute, power = zip(*rows, strict=True)
    frame = pl.DataFrame(
        {
            "entity_id": list(entity),
            "ts": [T0 + timedelta(minutes=m, seconds=7) for m in minute],
            "power_kw": list(power),
        }
    )
    return conform(frame.sample(fraction=1.0, shuffle=True, seed=3), READINGS_SCHEMA)  # order must not matter


def _fleet() -> pl.DataFrame:
    return pl.concat([fleet_readings(20_000, 5), _edge_cases()])


def _chargelens(readings: pl.DataFrame) -> pl.DataFrame:
    return detect_sessions(readings, DetectParams(), {}).select("entity_id", "start_utc", "end_utc", "energy_kwh")


@pytest.mark.parametrize("build", [_fleet, _edge_cases], ids=["fleet", "edges"])
def test_references_agree_with_chargelens(tmp_path, build):
    readings = build()
    path = tmp_path / "readings.parquet"
    readings.write_parquet(path)
    ours = _chargelens(readings).sort("entity_id", "start_utc")
    by_pandas = pl.from_pandas(reference_pandas.detect_power_sessions(readings.to_pandas())).sort(
        "entity_id", "start_utc"
    )
    by_duckdb = reference_duckdb.detect_power_sessions(path).pl().sort("entity_id", "start_utc")
    assert ours.height > 0
    for other in (by_pandas, by_duckdb):
        assert other.height == ours.height
        assert other["energy_kwh"].sum() == pytest.approx(ours["energy_kwh"].sum(), abs=1e-6)
        assert other["start_utc"].dt.epoch("us").to_list() == ours["start_utc"].dt.epoch("us").to_list()
        assert other["end_utc"].dt.epoch("us").to_list() == ours["end_utc"].dt.epoch("us").to_list()
        assert other["energy_kwh"].to_list() == pytest.approx(ours["energy_kwh"].to_list(), abs=1e-9)


def test_edge_cases_give_the_expected_sessions():
    ours = _chargelens(_edge_cases())
    starts = {
        (e, round((s - T0).total_seconds() / 60 - 7 / 60, 3)) for e, s in ours.select("entity_id", "start_utc").rows()
    }
    # edge-a: 10-70 (short pause inside), 101-270 (gap between charging readings and a 15 min pause inside),
    # 301-320 (split by the gap after 321), 391-... ongoing; edge-b: the lone 0.2 kW reading is too small.
    assert starts == {("edge-a", 10.0), ("edge-a", 101.0), ("edge-a", 301.0), ("edge-b", 31.0)}
