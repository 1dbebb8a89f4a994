"""Session tables: the real ACN-Data and EPFL files as they are, and the canonical sessions CSV."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime

import pytest

from core.errors import InputError
from core.importers import ImportOptions, parse_file
from core.pipeline import ingest_file
from tests.conftest import SHARED_DATA

ACN = SHARED_DATA / "acn-data"
EPFL = SHARED_DATA / "epfl-dc-sessions"


def file_sum(path, column: str, opener=open) -> float:
    with opener(path, "rt", encoding="utf-8") as fh:
        return sum(float(r[column]) for r in csv.DictReader(fh))


@pytest.mark.parametrize(
    ("name", "sessions", "stations"),
    [("caltech_2019-05_2019-08.csv.gz", 3527, 52), ("jpl_2019-05_2019-08.csv.gz", 6026, 52)],
)
def test_acn_files_as_they_are(name, sessions, stations):
    parsed = parse_file(ACN / name, ImportOptions())
    assert parsed.format == "acn" and parsed.rejects.height == 0
    assert parsed.sessions.height == sessions
    assert parsed.sessions.get_column("entity_id").n_unique() == stations
    assert parsed.sessions.get_column("energy_kwh").sum() == pytest.approx(
        file_sum(ACN / name, "delivered_energy (kWh)", gzip.open), abs=0.001
    )
    first = parsed.sessions.row(0, named=True)
    if name.startswith("caltech"):  # 2019-05-01 01:18:45-07:00 is 08:18:45Z
        assert (first["entity_id"], first["start_utc"]) == ("CA-305", datetime(2019, 5, 1, 8, 18, 45, tzinfo=UTC))
    # arrival and departure are plug-in and plug-out too
    assert first["plug_in_utc"] == first["start_utc"] and first["plug_out_utc"] == first["end_utc"]
    assert (first["source"], first["method"]) == ("imported", "reported")


def test_epfl_needs_its_time_zone_and_names_it():
    with pytest.raises(InputError, match="Europe/Zurich"):
        parse_file(EPFL / "Session_data.csv", ImportOptions())


@pytest.mark.parametrize("name", ["Session_data.csv", "Session_data.xlsx"])
def test_epfl_sessions_with_soc_in_utc(name):
    parsed = parse_file(EPFL / name, ImportOptions(timezone="Europe/Zurich"))
    s = parsed.sessions
    assert (parsed.format, s.height, parsed.rejects.height) == ("epfl", 1878, 0)
    assert sorted(s.get_column("entity_id").unique().to_list()) == ["EPFL-CCS1", "EPFL-CCS2"]
    assert s.get_column("soc_start_pct").null_count() == 0 and s.get_column("soc_end_pct").null_count() == 0
    assert s.get_column("energy_kwh").sum() == pytest.approx(file_sum(EPFL / "Session_data.csv", "Energy (Wh)") / 1000,
                                                             abs=0.001)  # fmt: skip
    first = s.row(0, named=True)  # 2022-08-11 23:33 in Zurich (CEST) is 21:33Z
    assert (first["start_utc"], first["energy_kwh"]) == (datetime(2022, 8, 11, 21, 33, tzinfo=UTC), 9.632)


def test_epfl_csv_and_xlsx_give_the_same_sessions():
    csv_sessions = parse_file(EPFL / "Session_data.csv", ImportOptions(timezone="Europe/Zurich")).sessions
    xlsx_sessions = parse_file(EPFL / "Session_data.xlsx", ImportOptions(timezone="Europe/Zurich")).sessions
    assert csv_sessions.drop("energy_kwh", "average_power_kw").equals(
        xlsx_sessions.drop("energy_kwh", "average_power_kw")
    )
    assert (csv_sessions["energy_kwh"] - xlsx_sessions["energy_kwh"]).abs().max() < 1e-9


def test_session_import_lands_once(store):
    first = ingest_file(store, ACN / "caltech_2019-05_2019-08.csv.gz", ImportOptions())
    again = ingest_file(store, ACN / "caltech_2019-05_2019-08.csv.gz", ImportOptions())
    assert (first.read, first.stored, first.duplicate) == (3527, 3527, 0)
    assert (again.read, again.stored, again.duplicate) == (3527, 0, 3527)
    assert store.scalar("SELECT count(*) FROM sessions WHERE source = 'imported'") == 3527
    assert store.scalar("SELECT count(*) FROM entities WHERE entity_type = 'ChargePoint'") == 52


def test_canonical_sessions_csv_with_bad_rows(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "entity_id,start,end,energy_kwh,soc_start_pct,soc_end_pct\n"
        "cp-1,2025-02-01T10:00:00Z,2025-02-01T11:00:00Z,7.5,20,80\n"
        "cp-1,2025-02-01T13:00:00Z,2025-02-01T12:00:00Z,7.5,,\n"
        "cp-1,2025-02-01T14:00:00Z,2025-02-01T15:00:00Z,-1,,\n"
        "cp-1,2025-02-01T16:00:00Z,2025-02-01T17:00:00Z,3,120,\n"
    )
    parsed = parse_file(path, ImportOptions())
    assert parsed.sessions.select("entity_id", "energy_kwh", "soc_start_pct").rows() == [("cp-1", 7.5, 20.0)]
    assert parsed.rejects.select("row", "column", "reason").rows() == [
        (3, "end", "the session ends before it starts"),
        (4, "energy_kwh", "energy must be zero or positive"),
        (5, "soc_start_pct", "state of charge must be between 0 and 100 %"),
    ]
