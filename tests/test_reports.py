"""Monthly statements: exact numbers on a hand-made fleet, the display time zone, escaping, and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from core.errors import InputError, NotFound
from core.importers import ImportOptions
from core.pipeline import add_location, ingest_file
from core.pricing import add_tariff, assign_tariff
from core.reports import MonthlyReport, file_name, month_bounds, monthly_report, parse_month, statement, to_csv, to_html
from core.store import Store
from tests.conftest import assert_no_traceback

HOME, OFFICE, ELSEWHERE, ROAD = (50.80, 4.40), (50.85, 4.35), (50.90, 4.20), (51.0, 4.0)
MARKUP = "<b>x</b>"
# One EV with two home sessions and one office session in March 2025 (Europe/Brussels), plus one that starts on
# 1 March in Brussels but on 28 February in UTC, one that starts on 1 April in Brussels but on 31 March in UTC,
# and an entity whose id is markup, charging where no location matches and without a tariff.
SESSIONS = (
    ("ev-a", "2025-02-28T23:30", 7.0, HOME),
    ("ev-a", "2025-03-10T18:00", 5.5, HOME),
    ("ev-a", "2025-03-12T08:00", 11.0, OFFICE),
    ("ev-a", "2025-03-31T22:30", 3.0, HOME),
    (MARKUP, "2025-03-15T10:00", 4.0, ELSEWHERE),
)
# 0.30 EUR/kWh + 0.50 per session, 21 % VAT: 7 kWh -> 3.146, 5.5 kWh -> 2.6015, 11 kWh -> 4.598, 3 kWh -> 1.694
FLAT = {
    "name": "flat",
    "currency": "EUR",
    "timezone": "Europe/Brussels",
    "bands": [{"band": "t1", "price_per_kwh": 0.30}],
    "fee_per_session": 0.5,
    "vat_pct": 21,
}
HEADER = "month,timezone,entity_id,entity_name,location,sessions,energy_kwh,cost_total,currency\n"
MARCH_BRUSSELS = HEADER + (
    "2025-03,Europe/Brussels,<b>x</b>,,(no location),1,4.0,,\n"
    "2025-03,Europe/Brussels,<b>x</b>,,Total,1,4.0,,\n"
    "2025-03,Europe/Brussels,ev-a,,Home,2,12.5,5.75,EUR\n"  # 3.146 + 2.6015 = 5.7475, rounded half away
    "2025-03,Europe/Brussels,ev-a,,Office,1,11.0,4.6,EUR\n"
    "2025-03,Europe/Brussels,ev-a,,Total,3,23.5,10.35,EUR\n"  # 10.3455: rounded once, from unrounded parts
)


def readings_csv() -> str:
    """Meter readings: flat for 30 min, rising over an hour, flat, then the car drives away."""
    lines, meters = [], {}
    for entity, start, kwh, (lat, lon) in SESSIONS:
        t0 = datetime.fromisoformat(start).replace(tzinfo=UTC)
        meter = meters.get(entity, 100.0)
        steps = [(-30, meter), (0, meter)] + [(15 * i, meter + kwh * i / 4) for i in range(1, 5)]
        steps.append((90, meter + kwh))
        for minutes, value in steps:
            lines.append(f"{entity},{t0 + timedelta(minutes=minutes):%Y-%m-%dT%H:%M:%SZ},{value:.3f},{lat},{lon}")
        lines.append(f"{entity},{t0 + timedelta(minutes=120):%Y-%m-%dT%H:%M:%SZ},{meter + kwh:.3f},{ROAD[0]},{ROAD[1]}")
        meters[entity] = meter + kwh
    return "entity_id,ts,energy_kwh,latitude,longitude\n" + "\n".join(lines) + "\n"


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "report.duckdb"
    csv = tmp_path / "readings.csv"
    csv.write_text(readings_csv())
    db = Store.open(path)
    ingest_file(db, csv, ImportOptions())
    add_location(db, "Office", *OFFICE, 200)
    add_location(db, "Home", *HOME, 150, "ev-a")
    add_tariff(db, FLAT, 60)
    assign_tariff(db, "flat", "entity", "ev-a", 60)
    db.set_setting("display_timezone", "Europe/Brussels")
    db.close()  # the CLI tests open the file from another process
    return path


@pytest.fixture
def fleet_store(fleet: Path):
    db = Store.open(fleet)
    yield db
    db.close()


def test_march_statement_in_the_display_timezone(fleet_store):
    report = monthly_report(fleet_store, "2025-03")
    assert (report.month, report.timezone) == ("2025-03", "Europe/Brussels")
    assert to_csv(report).decode() == MARCH_BRUSSELS
    assert report.sessions.get_column("energy_kwh").to_list() == [4.0, 7.0, 5.5, 11.0]


def test_the_same_month_in_utc_takes_other_sessions(fleet_store):
    report = monthly_report(fleet_store, "2025-03", "ev-a", timezone="UTC")
    assert to_csv(report).decode() == HEADER + (
        "2025-03,UTC,ev-a,,Home,2,8.5,4.3,EUR\n"  # 2.6015 + 1.694 = 4.2955
        "2025-03,UTC,ev-a,,Office,1,11.0,4.6,EUR\n"
        "2025-03,UTC,ev-a,,Total,3,19.5,8.89,EUR\n"  # 8.8935
    )


def test_one_entity_and_a_month_without_sessions(fleet_store):
    only = monthly_report(fleet_store, "2025-03", "ev-a")
    assert only.summary.get_column("entity_id").unique().to_list() == ["ev-a"]
    february = monthly_report(fleet_store, "2025-02")  # 23:30 UTC on 28 February is 1 March in Brussels
    assert to_csv(february).decode() == HEADER
    assert "No charge session started in 2025-02 (Europe/Brussels)." in to_html(february).decode()
    with pytest.raises(NotFound):
        monthly_report(fleet_store, "2025-03", "nobody")


def test_no_tariff_stays_unknown_never_zero(fleet_store):
    summary = monthly_report(fleet_store, "2025-03", MARKUP).summary
    assert summary.select("location", "sessions", "energy_kwh", "cost_total", "currency").rows() == [
        ("(no location)", 1, 4.0, None, None),
        ("Total", 1, 4.0, None, None),
    ]


def test_html_escapes_every_text_and_needs_nothing_else(fleet_store):
    page = to_html(monthly_report(fleet_store, "2025-03")).decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;b&gt;x&lt;/b&gt;" in page and MARKUP not in page
    for external in ("http://", "https://", "<script", "<link", "src=", "url("):
        assert external not in page
    assert page.count('<section class="statement">') == 2
    assert '<td>Total</td><td class="num">3</td><td class="num">23.50</td><td class="num">10.35 EUR</td>' in page
    assert "no tariff" in page
    # Home comes first in the statement of ev-a
    ev_a = page[page.index("<h2>ev-a</h2>") :]
    assert ev_a.index("<td>Home</td>") < ev_a.index("<td>Office</td>")


def test_labels_are_ordered_home_first_and_formulas_neutralised():
    rows = pl.DataFrame(
        {
            "entity_id": ["=cmd", "=cmd", "=cmd", "=cmd"],
            "entity_name": [None, None, None, None],
            "location_label": ["Office", None, "home", "Depot"],
            "energy_kwh": [1.0, 2.0, 3.0, 4.0],
            "cost_total": [1.0, 2.0, 3.0, 4.0],
            "currency": ["EUR", "EUR", "EUR", "EUR"],
        },
        schema_overrides={"entity_name": pl.String},
    )
    summary = statement(rows)
    assert summary.get_column("location").to_list() == ["home", "Depot", "Office", "(no location)", "Total"]
    csv = to_csv(MonthlyReport("2025-03", "UTC", summary, rows)).decode()
    assert "\n2025-03,UTC,'=cmd,,home,1,3.0,3.0,EUR\n" in csv


@pytest.mark.parametrize("text", ["2025-13", "2025-00", "2025-3", "25-03", "March", "", "2025-03-01"])
def test_a_bad_month_is_refused_with_one_sentence(text):
    with pytest.raises(InputError, match="YYYY-MM"):
        parse_month(text)


def test_month_bounds_follow_the_zone_and_its_dst():
    assert month_bounds(date(2025, 3, 1), "Europe/Brussels") == (
        datetime(2025, 2, 28, 23, tzinfo=UTC),
        datetime(2025, 3, 31, 22, tzinfo=UTC),  # clocks went forward on 30 March
    )
    assert month_bounds(date(2025, 12, 1), "UTC") == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_download_names_are_safe():
    assert file_name("2025-03", None, "csv") == "chargelens-2025-03.csv"
    assert file_name("2025-03", "<b>x</b>/../y", "html") == "chargelens-2025-03-b_x_b_.._y.html"


def test_cli_prints_the_csv_and_writes_html(cli, fleet, tmp_path):
    result = cli("reports", "monthly", "--month", "2025-03", db=fleet)
    assert (result.code, result.out, result.err) == (0, MARCH_BRUSSELS, "")
    out = tmp_path / "march.html"
    result = cli(
        "reports", "monthly", "--month", "2025-03", "--entity", "ev-a", "--format", "html", "--out", str(out), db=fleet
    )
    assert (result.code, result.out) == (0, "")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h2>ev-a</h2>" in page and "&lt;b&gt;" not in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--month", "2025-13"), "is not a month in the form YYYY-MM"),
        (("--month", "03/2025"), "is not a month in the form YYYY-MM"),
        (("--month", "2025-03", "--entity", "nobody"), "There is no entity 'nobody'"),
        (("--month", "2025-03", "--format", "pdf"), "invalid choice"),
        ((), "the following arguments are required: --month"),
    ],
)
def test_cli_refusals_exit_2_with_one_line(cli, fleet, args, message):
    result = cli("reports", "monthly", *args, db=fleet)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert result.out == ""
    assert_no_traceback(result.err)
