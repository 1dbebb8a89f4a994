"""The command line as a user runs it: exit codes, one-line errors, the ingest -> export slice."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core.schema import EXPORT_COLUMNS, EXPORT_POSITION_COLUMNS, EXPORT_WIDE_COLUMNS
from tests.conftest import assert_no_traceback

SLICE = """entity_id,ts,power_kw,latitude,longitude,is_plugged_in
=HYPERLINK("x"),2025-02-03T18:00:00Z,0,50.812345,4.412345,true
=HYPERLINK("x"),2025-02-03T18:05:00Z,6,50.812345,4.412345,true
=HYPERLINK("x"),2025-02-03T18:35:00Z,6,50.812345,4.412345,true
=HYPERLINK("x"),2025-02-03T19:05:00Z,6,50.812345,4.412345,true
=HYPERLINK("x"),2025-02-03T19:10:00Z,0,50.812345,4.412345,false
"""


@pytest.fixture
def sliced(cli, tmp_path):
    path = tmp_path / "slice.csv"
    path.write_text(SLICE)
    result = cli("ingest", str(path))
    assert result.code == 0, result.err
    return result


def test_ingest_then_export_csv_slice(sliced, cli):
    assert sliced.out == "slice.csv: read 5, stored 5, duplicate 0, conflict 0, rejected 0\n"
    out = cli("sessions", "export", "--format", "csv")
    assert out.code == 0
    rows = list(csv.reader(io.StringIO(out.out)))
    assert rows[0] == EXPORT_COLUMNS
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["entity_id"] == '\'=HYPERLINK("x")'  # neutralised for spreadsheets
    assert (record["start_utc"], record["end_utc"], record["duration_min"]) == (
        "2025-02-03T18:05:00Z", "2025-02-03T19:05:00Z", "60.0",
    )  # fmt: skip
    assert (record["energy_kwh"], record["energy_t1_kwh"], record["method"]) == ("6.5", "6.5", "power")
    assert (record["cost_total"], record["currency"]) == ("", "")
    assert "50.81" not in out.out and "4.41" not in out.out  # no positions by default


def test_export_positions_only_when_allowed(sliced, cli):
    refused = cli("sessions", "export", "--exact-locations")
    assert refused.code == 2 and "exact_locations" in refused.err and refused.err.count("\n") == 1
    rounded = cli("sessions", "export", "--round-locations", "2", "--wide")
    header = rounded.out.splitlines()[0].split(",")
    assert header == EXPORT_COLUMNS + EXPORT_POSITION_COLUMNS + EXPORT_WIDE_COLUMNS
    assert ",50.81,4.41," in rounded.out
    assert cli("sessions", "export", "--round-locations", "4").code == 2
    assert cli("settings", "set", "exact_locations", "true").code == 0
    exact = cli("sessions", "export", "--exact-locations", "--format", "json")
    assert json.loads(exact.out)["data"][0]["data"]["location"]["latitude"] == 50.812345


def test_export_json_has_the_api_shape(sliced, cli):
    data = json.loads(cli("sessions", "export", "--format", "json").out)["data"]
    assert data[0]["entityId"] == '=HYPERLINK("x")'
    assert data[0]["data"]["charge"]["total"] == {"t1": 6.5, "t2": 0.0, "t3": 0.0, "t4": 0.0, "total": 6.5,
                                                  "unit": "kWh"}  # fmt: skip
    assert "location" not in data[0]["data"]


def test_export_filters_and_out_file(sliced, cli, tmp_path):
    out = tmp_path / "s.parquet"
    assert cli("sessions", "export", "--format", "parquet", "--out", str(out)).code == 0
    import polars as pl

    assert pl.read_parquet(out).columns == EXPORT_COLUMNS
    empty = cli("sessions", "export", "--start", "2025-02-04", "--end", "2025-02-05")
    assert empty.out.splitlines() == [",".join(EXPORT_COLUMNS)]
    bad = cli("sessions", "export", "--start", "yesterday")
    assert bad.code == 2 and "ISO 8601" in bad.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "/nonexistent/file.csv"), "does not exist"),
        (("features", "set", "nobody", "CaptureChargeSessions", "on"), "no entity 'nobody'"),
        (("settings", "set", "display_timezone", "Mars/Base"), "time zone"),
        (("reports", "monthly", "--month", "2025-13"), "month"),
        (("scale", "detect"), "required: --readings, --out"),
        (("restore", "/etc/hostname"), "not a ChargeLens database"),
        (("sessions", "export", "--format", "pdf"), "invalid choice"),
        (("locations", "add", "--label", "", "--lat", "91", "--lon", "0"), "latitude must be"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args, message):
    result = cli(*args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert_no_traceback(result.err)


def test_refused_file_exits_2_and_writes_nothing(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("entity_id,ts,power_kw\nev,yesterday,1\n")
    result = cli("ingest", str(path))
    assert result.code == 2 and "no usable row" in result.err
    assert cli("entities", "list").out.strip() == "(none)"


def test_rejects_file(cli, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("entity_id,ts,power_kw,soc_pct\nev,2025-02-01T10:00:00Z,1,50\nev,2025-02-01T10:01:00Z,1,150\n")
    rejects = tmp_path / "rejects.csv"
    result = cli("ingest", str(path), "--rejects", str(rejects))
    assert result.out == "r.csv: read 2, stored 1, duplicate 0, conflict 0, rejected 1\n"
    assert rejects.read_text() == (
        "file,row,column,value,reason\nr.csv,3,soc_pct,150,state of charge must be between 0 and 100 %\n"
    )


def test_several_files_print_a_total_line(cli, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("entity_id,ts,power_kw\nev,2025-02-01T10:00:00Z,1\n")
    b.write_text("entity_id,ts,power_kw\nev,2025-02-01T10:00:00Z,1\nev,2025-02-01T10:01:00Z,2\n")
    result = cli("ingest", str(a), str(b))
    assert result.out.splitlines()[-1] == "total: read 3, stored 2, duplicate 1, conflict 0, rejected 0"


def test_features_and_settings_round_trip(sliced, cli):
    assert cli("features", "set", '=HYPERLINK("x")', "CaptureChargeSessions", "off").code == 0
    assert cli("sessions", "export").out.count("\n") == 1  # detected sessions hidden while capture is off
    assert cli("features", "set", '=HYPERLINK("x")', "CaptureChargeSessions", "on").code == 0
    assert cli("sessions", "export").out.count("\n") == 2
    unknown = cli("features", "set", '=HYPERLINK("x")', "Teleport", "on")
    assert unknown.code == 2 and "Unknown feature" in unknown.err
    assert "max_pause_min" in cli("settings", "list").out


def test_locations_add_update_delete_rematch_sessions(sliced, cli):
    entity = '=HYPERLINK("x")'
    location_id = cli("locations", "add", "--label", "Home", "--lat", "50.8123", "--lon", "4.4123").out.strip()
    assert "Home" in cli("sessions", "export").out
    assert cli("locations", "update", location_id, "--label", "Garage").code == 0
    assert ",Garage," in cli("sessions", "export").out
    assert cli("locations", "update", location_id, "--radius", "1").code == 2  # below 10 m
    assert cli("locations", "delete", location_id).code == 0
    assert "Garage" not in cli("sessions", "export").out
    assert cli("locations", "delete", location_id).code == 2
    assert cli("entities", "set-capacity", entity, "75").out.strip() == f"{entity}: battery capacity 75.0 kWh"
    assert cli("entities", "set-capacity", entity, "301").code == 2


def test_api_credentials_created_once_owner_only(cli, db_path):
    import stat

    first = cli("api", "credentials")
    assert first.code == 0
    body = json.loads(first.out)
    assert set(body) == {"clientId", "clientSecret"} and len(body["clientSecret"]) >= 32
    assert json.loads(cli("api", "credentials").out) == body
    path = db_path.with_name(f"{db_path.stem}.api-credentials.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_backup_and_restore_round_trip(sliced, cli, db_path, tmp_path):
    copy = tmp_path / "copy.duckdb"
    assert cli("backup", str(copy)).code == 0
    again = cli("backup", str(copy))
    assert again.code == 2 and "already exists" in again.err
    before = cli("sessions", "export").out
    assert cli("locations", "add", "--label", "Later", "--lat", "50.812345", "--lon", "4.412345").code == 0
    assert "Later" in cli("sessions", "export").out
    restored = cli("restore", str(copy))
    assert restored.code == 0, restored.err
    assert cli("sessions", "export").out == before
    assert db_path.with_name(db_path.name + ".before-restore").exists()


def test_scale_detect_without_java_or_pyspark_says_so_in_one_sentence(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELENS_") and k != "JAVA_HOME"}
    args = [sys.executable, "-m", "core", "scale", "detect", "--readings", "r.parquet", "--out", str(tmp_path / "o")]
    no_java = {**env, "PATH": str(tmp_path)}  # a PATH without java
    fake = tmp_path / "fake" / "pyspark"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named pyspark')\n")
    no_pyspark = {**env, "PYTHONPATH": str(fake.parent)}
    for environment, message in ((no_java, "needs Java 17"), (no_pyspark, "Spark is not installed")):
        result = subprocess.run(args, capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert_no_traceback(result.stderr)


def test_scale_detect_refuses_bad_side_files_before_starting_spark(cli, tmp_path):
    tariffs = tmp_path / "tariffs.json"
    tariffs.write_text('[{"name": "gap", "currency": "EUR", "timezone": "UTC", "bands": '
                       '[{"band": "t1", "price_per_kwh": 0.3, "hours": [0, 12]}], "assign": "default"}]')  # fmt: skip
    entities = tmp_path / "entities.csv"
    entities.write_text("entity_id,battery_capacity_kwh\nev-01,60\n")
    locations = tmp_path / "locations.json"
    locations.write_text('[{"label": "Home", "latitude": 95, "longitude": 4.3}]')
    base = ("scale", "detect", "--readings", "r.parquet", "--out", str(tmp_path / "out"))
    for option, path, message in (
        ("--tariffs", tariffs, "12:00"),
        ("--entities", entities, "entity_type"),
        ("--locations", locations, "latitude must be"),
    ):
        result = cli(*base, option, str(path))
        assert result.code == 2, result.err
        assert message in result.err and len(result.err.strip().splitlines()) == 1
