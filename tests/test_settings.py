"""One settings object: defaults, stored values, environment overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import DEFAULT_DB, SETTINGS, SettingError, Settings, database_path, parse_setting


def test_defaults_follow_the_specification():
    s = Settings.from_sources({}, environ={})
    assert (s.min_power_kw, s.max_pause_min, s.max_gap_min, s.min_energy_kwh, s.soc_min_rise_pct) == (
        0.1, 15, 60, 0.05, 1.0,
    )  # fmt: skip
    assert s.exact_locations is False and s.display_timezone == "UTC" and s.max_upload_mb == 1024
    assert {x.key for x in SETTINGS} == set(s.as_dict())


def test_environment_overrides_stored_value():
    s = Settings.from_sources({"display_timezone": "Europe/Brussels"}, environ={"CHARGELENS_DISPLAY_TIMEZONE": "UTC"})
    assert s.display_timezone == "UTC"
    assert Settings.from_sources({"exact_locations": "true"}, environ={}).exact_locations is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("nope", "1", "Unknown setting"), ("display_timezone", "Mars/Base", "time zone"),
     ("max_pause_min", "abc", "whole number"), ("min_power_kw", "-1", "out of range"),
     ("remote_pull_time", "25:00", "HH:MM")],
)  # fmt: skip
def test_bad_values_are_refused_with_a_reason(key, value, message):
    with pytest.raises(SettingError, match=message):
        parse_setting(key, value)


def test_database_path_resolution(tmp_path):
    assert database_path(None, environ={}) == DEFAULT_DB
    assert database_path(None, environ={"CHARGELENS_DB": str(tmp_path / "x.duckdb")}) == tmp_path / "x.duckdb"
    assert database_path(tmp_path / "y.duckdb", environ={"CHARGELENS_DB": "z"}) == Path(tmp_path / "y.duckdb")
