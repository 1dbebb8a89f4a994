"""Canonical readings import: units, time formats, rejects with reasons, DST rule, merge rules."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.errors import InputError
from core.importers import ImportOptions, parse_file
from core.pipeline import ingest_file
from core.schema import READING_COLUMNS as READINGS_COLUMNS
from tests.conftest import FIXTURES

READINGS = FIXTURES / "readings"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_units_aliases_and_every_time_format():
    parsed = parse_file(READINGS / "canonical_mixed_times.csv", ImportOptions())
    assert parsed.rejects.height == 0
    r = parsed.readings
    assert r.get_column("ts").to_list() == [
        utc(2025, 2, 1, 10), utc(2025, 2, 1, 9, 5), utc(2025, 2, 1, 10, 10), utc(2025, 2, 1, 10, 15),
        utc(2025, 2, 1, 10),
    ]  # fmt: skip
    assert r.get_column("power_kw").to_list() == [0.0, 7.4, 7.4, 0.0, None]
    assert r.get_column("energy_kwh").to_list() == [1000.0, 1000.0, 1000.617, 1001.233, None]
    assert r.get_column("is_plugged_in").to_list() == [True, True, True, False, None]
    ev = r.filter(pl.col("entity_id") == "ev-b").row(0, named=True)
    assert ev["range_km"] == pytest.approx(160.9344) and ev["odometer_km"] == pytest.approx(16093.44)
    assert parsed.entities.select("entity_id", "entity_type").rows() == [("cp-a", "ChargePoint"), ("ev-b", "EV")]


def test_every_bad_row_is_rejected_with_file_row_column_and_reason():
    parsed = parse_file(READINGS / "canonical_bad_rows.csv", ImportOptions())
    expected = pl.DataFrame(
        {
            "file": ["canonical_bad_rows.csv"] * 8,
            "row": [3, 4, 5, 6, 7, 8, 9, 10],
            "column": ["ts", "power_kw", "soc_pct", "latitude", "longitude", "is_charging", "entity_id", "ts"],
            "value": ["not a time", "abc", "101", "95", "200", "maybe", None, "1900-01-01T00:00:00Z"],
            "reason": [
                "not a time: use ISO 8601 (with Z or an offset) or epoch seconds/milliseconds",
                "not a number",
                "state of charge must be between 0 and 100 %",
                "latitude must be between -90 and 90",
                "longitude must be between -180 and 180",
                "is_charging must be true/false, 1/0 or yes/no",
                "entity id must be 1 to 128 printable characters",
                "time is outside 1970-01-02 .. 2100-01-01",
            ],
        }
    )
    assert_frame_equal(parsed.rejects, expected, check_dtypes=False)
    # Row 11 has "None" and empty cells: unknown, not bad.
    assert parsed.readings.get_column("ts").to_list() == [utc(2025, 2, 1, 10), utc(2025, 2, 1, 10, 9)]
    assert parsed.readings.get_column("power_kw").to_list() == [1.5, None]


def test_naive_times_need_a_time_zone_and_never_get_a_guess():
    with pytest.raises(InputError, match="--timezone"):
        parse_file(READINGS / "naive_dst_brussels.csv", ImportOptions())


def test_dst_rule_rejects_skipped_hour_and_orders_the_repeated_hour():
    parsed = parse_file(READINGS / "naive_dst_brussels.csv", ImportOptions(timezone="Europe/Brussels"))
    assert (parsed.ambiguous, parsed.nonexistent) == (4, 1)
    assert parsed.rejects.select("row", "value").rows() == [(3, "2025-03-30T02:15:00")]
    assert "does not exist" in parsed.rejects.get_column("reason")[0]
    assert parsed.readings.select("ts", "power_kw").rows() == [
        (utc(2025, 3, 30, 0, 45), 1.0),
        (utc(2025, 3, 30, 1, 15), 1.0),
        (utc(2025, 10, 26, 0, 15), 2.0),  # first pass: the earlier instant (CEST)
        (utc(2025, 10, 26, 0, 45), 2.0),
        (utc(2025, 10, 26, 1, 15), 3.0),  # second pass: the later instant (CET)
        (utc(2025, 10, 26, 1, 45), 3.0),
        (utc(2025, 10, 26, 2, 15), 3.0),
    ]


def test_bom_crlf_jsonl_and_parquet():
    assert parse_file(READINGS / "bom_crlf.csv", ImportOptions()).readings.get_column("power_kw").to_list() == [1.0]
    jsonl = parse_file(READINGS / "readings.jsonl", ImportOptions()).readings
    assert jsonl.select("power_kw", "soc_pct", "is_charging").rows() == [(7.2, 40.0, True), (7.1, 41.0, True)]
    parquet = parse_file(READINGS / "readings.parquet", ImportOptions()).readings
    assert parquet.select("ts", "power_kw").rows() == [(utc(2025, 2, 1, 10), 3.0), (utc(2025, 2, 1, 10, 1), 4.0)]


@pytest.mark.parametrize(
    ("name", "message"),
    [("empty.csv", "is empty"), ("header_only.csv", "no rows"), ("latin1.csv", "not UTF-8")],
)
def test_unusable_files_get_one_clear_error(name, message):
    with pytest.raises(InputError, match=message):
        parse_file(READINGS / name, ImportOptions())


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("vehicle,time,kw\nev,2025-01-01T00:00:00Z,1\n")
    with pytest.raises(InputError, match=r"not recognised from its columns \(vehicle, time, kw\). Expected readings"):
        parse_file(path, ImportOptions())
    with pytest.raises(InputError, match=r"no column entity_id, ts \(or timestamp\); found vehicle, time, kw"):
        parse_file(path, ImportOptions(format="readings"))
    parsed = parse_file(
        path, ImportOptions(format="readings", mapping={"entity_id": "vehicle", "ts": "time", "power_kw": "kw"})
    )
    assert parsed.readings.select("entity_id", "power_kw").rows() == [("ev", 1.0)]


def test_reimport_changes_nothing_and_conflicts_are_counted(store, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("entity_id,ts,power_kw\nev,2025-02-01T10:00:00Z,1\nev,2025-02-01T10:01:00Z,2\n")
    first = ingest_file(store, path, ImportOptions())
    again = ingest_file(store, path, ImportOptions())
    assert (first.read, first.stored, first.duplicate, first.conflict) == (2, 2, 0, 0)
    assert (again.read, again.stored, again.duplicate, again.conflict) == (2, 0, 2, 0)
    other = tmp_path / "b.csv"
    other.write_text("entity_id,ts,power_kw\nev,2025-02-01T10:01:00Z,9\nev,2025-02-01T10:02:00Z,3\n")
    merged = ingest_file(store, other, ImportOptions())
    assert (merged.read, merged.stored, merged.duplicate, merged.conflict) == (2, 1, 0, 1)
    assert "conflict" in merged.rejects.get_column("reason")[0]
    stored = store.frame("SELECT power_kw FROM readings ORDER BY ts").get_column("power_kw").to_list()
    assert stored == [1.0, 2.0, 3.0]  # the stored reading won
    assert store.scalar("SELECT count(*) FROM imports") == 3


def test_file_with_no_usable_row_writes_nothing(store, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("entity_id,ts,power_kw\nev,yesterday,1\n")
    with pytest.raises(InputError, match="no usable row"):
        ingest_file(store, path, ImportOptions())
    assert store.scalar("SELECT count(*) FROM imports") == 0
    assert store.scalar("SELECT count(*) FROM entities") == 0


def test_teslafi_two_cars_needs_time_zone_and_maps_every_field():
    path = READINGS / "teslafi_two_cars.csv"
    with pytest.raises(InputError, match="--timezone"):
        parse_file(path, ImportOptions())
    parsed = parse_file(path, ImportOptions(timezone="Europe/Brussels"))
    assert parsed.format == "teslafi" and parsed.rejects.height == 0
    r = parsed.readings
    assert r.columns == list(READINGS_COLUMNS)
    blue = r.filter(pl.col("entity_id") == "5YJ3000000001")
    assert blue.get_column("ts").to_list() == [utc(2025, 3, 1, 17, 0, 5), utc(2025, 3, 1, 17, 5, 5),
                                               utc(2025, 3, 1, 17, 10, 5)]  # fmt: skip
    assert blue.get_column("power_kw").to_list() == [0.0, 7.0, 7.0]
    assert blue.get_column("energy_added_kwh").to_list() == [None, 0.5, 1.1]
    assert blue.get_column("is_charging").to_list() == [False, True, False]
    assert blue.get_column("is_plugged_in").to_list() == [False, True, True]
    assert blue.get_column("latitude").to_list() == [50.85, 50.85, None]  # 0.0 means unknown
    assert blue.get_column("range_km").to_list()[0] == pytest.approx(140.5 * 1.609344)
    red = r.filter(pl.col("entity_id") == "5YJ3000000002")
    assert red.get_column("is_plugged_in").to_list() == [True, None]  # unknown state stays unknown
    assert red.get_column("power_kw").to_list() == [None, None]
    assert parsed.entities.select("entity_id", "name").rows() == [("5YJ3000000001", "Blue Car"),
                                                                  ("5YJ3000000002", "Red Car")]  # fmt: skip


def test_api_json_page():
    parsed = parse_file(READINGS / "api_page.json", ImportOptions())
    assert parsed.rejects.height == 0
    rows = parsed.readings.select("entity_id", "ts", "power_kw", "energy_kwh", "soc_pct", "latitude").rows()
    assert rows == [
        ("cp-api", utc(2025, 2, 1, 10), 7.2, 12.5, None, None),
        ("ev-api", utc(2025, 2, 1, 9), None, None, 55.0, 50.1),
    ]
    assert parsed.readings.get_column("is_charging").to_list() == [True, None]


def test_every_utc_form_reads_as_the_same_instant_and_near_misses_are_rejected():
    from core.importers.times import parse_times

    texts = ["2025-02-01T10:00:00Z", "2025-02-01T10:00:00.000Z", "2025-02-01T10:00Z", "2025-02-01T10:00:00z",
             "2025-02-01 10:00:00Z", "2025-02-01T11:00:00+01:00", "1738404000", "2025-02-01T10:00:00Zx",
             "2025-02-30T10:00:00Z"]  # fmt: skip
    frame = pl.DataFrame({"__row": range(len(texts)), "ts": texts}).with_columns(pl.col("__row").cast(pl.Int64))
    out = parse_times(frame, "ts", None, None, "--timezone").frame
    assert out.get_column("ts").to_list()[:7] == [utc(2025, 2, 1, 10)] * 7
    assert (
        out.get_column("__ts_reason").to_list()[7:]
        == ["not a time: use ISO 8601 (with Z or an offset) or epoch seconds/milliseconds"] * 2
    )
