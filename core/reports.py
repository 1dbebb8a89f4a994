"""Monthly charging statements per entity (sessions, energy and cost per location, Home first) as CSV or HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl

from core.costs import round_money, round_money_expr
from core.errors import InputError, unknown_entity
from core.exports import neutralise
from core.queries import SessionFilter, sessions
from core.store import Store

FORMATS = ("csv", "html")
MEDIA_TYPES = {"csv": "text/csv", "html": "text/html"}
NO_LOCATION = "(no location)"
TOTAL = "Total"
CSV_COLUMNS = [
    *("month", "timezone", "entity_id", "entity_name", "location"),
    *("sessions", "energy_kwh", "cost_total", "currency"),
]
_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class MonthlyReport:
    month: str  # YYYY-MM, in `timezone`
    timezone: str
    summary: pl.DataFrame  # see statement()
    sessions: pl.DataFrame  # one row per session, local times, best-match location


def parse_month(text: str) -> date:
    """The first day of a YYYY-MM month; anything else is refused with one sentence."""
    match = _MONTH.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise InputError(f"The month '{text}' is not a month in the form YYYY-MM; use for example 2025-03.")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_bounds(first: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants where this local month starts and the next one starts."""
    zone = ZoneInfo(timezone)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return tuple(datetime(d.year, d.month, 1, tzinfo=zone).astimezone(UTC) for d in (first, following))


def _location_rank() -> pl.Expr:
    # Home first (it is what is reimbursed), then other labels alphabetically, unmatched sessions, the total.
    label = pl.col("location")
    return (
        pl.when(label == TOTAL)
        .then(3)
        .when(label == NO_LOCATION)
        .then(2)
        .when(label.str.to_lowercase() == "home")
        .then(0)
        .otherwise(1)
    )


def statement(month_sessions: pl.DataFrame) -> pl.DataFrame:
    """Per entity, location label and currency: sessions, energy and cost, followed by per-currency totals.

    Input: session rows with entity_id, entity_name, location_label, energy_kwh, cost_total, currency.
    Output columns: entity_id, entity_name, location, currency, sessions, energy_kwh, cost_total (unrounded;
    null where sessions have no tariff, never 0)."""
    keyed = month_sessions.select(
        "entity_id",
        "entity_name",
        pl.col("location_label").fill_null(NO_LOCATION).alias("location"),
        "currency",
        "energy_kwh",
        "cost_total",
    )
    measures = [
        pl.len().alias("sessions"),
        pl.col("energy_kwh").sum(),
        # polars sums nulls to 0; a group without a tariff must stay unknown instead
        pl.when(pl.col("currency").is_not_null().any()).then(pl.col("cost_total").sum()).alias("cost_total"),
    ]
    by_location = keyed.group_by("entity_id", "entity_name", "location", "currency").agg(measures)
    totals = keyed.group_by("entity_id", "entity_name", "currency").agg(measures).with_columns(location=pl.lit(TOTAL))
    return (
        pl.concat([by_location, totals.select(by_location.columns)])
        .with_columns(pl.col("sessions").cast(pl.Int64), pl.col("energy_kwh").cast(pl.Float64))
        .sort(
            [pl.col("entity_id"), _location_rank(), pl.col("location"), pl.col("currency")],
            nulls_last=True,
        )
    )


def monthly_report(
    store: Store, month: str, entity_id: str | None = None, timezone: str | None = None
) -> MonthlyReport:
    """The statement of one local month for every entity that charged in it, or for one entity."""
    first = parse_month(month)
    timezone = timezone or store.settings().display_timezone
    if entity_id is not None and store.entity(entity_id) is None:
        raise unknown_entity(entity_id)
    start, end = month_bounds(first, timezone)
    flt = SessionFilter(start=start, end=end, entity_ids=(entity_id,) if entity_id else ())
    rows = sessions(store, flt).with_columns(
        pl.col("start_utc").dt.convert_time_zone(timezone).alias("start_local"),
        pl.col("end_utc").dt.convert_time_zone(timezone).alias("end_local"),
    )
    detail = rows.select(
        "entity_id",
        "entity_name",
        "start_local",
        "end_local",
        pl.col("location_label").fill_null(NO_LOCATION).alias("location"),
        "energy_kwh",
        "cost_total",
        "currency",
    ).sort("entity_id", "start_local")
    return MonthlyReport(f"{first:%Y-%m}", timezone, statement(rows), detail)


def to_csv(report: MonthlyReport) -> bytes:
    """One row per entity, location and currency plus the `Total` rows; empty cost and currency = no tariff."""
    table = report.summary.select(
        pl.lit(report.month).alias("month"),
        pl.lit(report.timezone).alias("timezone"),
        "entity_id",
        "entity_name",
        "location",
        "sessions",
        pl.col("energy_kwh").round(3, mode="half_away_from_zero"),
        # the second round only drops binary noise (43.980000000000004) after rounding half away from zero
        round_money_expr("cost_total").round(2).alias("cost_total"),
        "currency",
    ).select(CSV_COLUMNS)
    return neutralise(table).write_csv(line_terminator="\n", null_value="").encode("utf-8")


def _money(amount: float | None, currency: str | None) -> str:
    if currency is None or amount is None:
        return "no tariff"
    return f"{round_money(amount):,.2f} {currency}"


def _row(values: list[str], tag: str = "td", numbers_from: int | None = None) -> str:
    """One table row of escaped cells; cells from index `numbers_from` on hold numbers (aligned right)."""
    cells = []
    for i, value in enumerate(values):
        css = ' class="num"' if numbers_from is not None and i >= numbers_from else ""
        cells.append(f"<{tag}{css}>{html.escape(value)}</{tag}>")
    return f"<tr>{''.join(cells)}</tr>"


def _entity_section(report: MonthlyReport, entity_id: str, summary: pl.DataFrame, detail: pl.DataFrame) -> str:
    name = summary.get_column("entity_name")[0]
    title = f"{name} ({entity_id})" if name else entity_id
    body, foot = [], []
    for r in summary.iter_rows(named=True):
        values = [
            r["location"],
            f"{r['sessions']:,}",
            f"{r['energy_kwh']:,.2f}",
            _money(r["cost_total"], r["currency"]),
        ]
        (foot if r["location"] == TOTAL else body).append(_row(values, numbers_from=1))
    lines = [
        _row(
            [
                f"{r['start_local']:%Y-%m-%d}",
                f"{r['start_local']:%H:%M}",
                f"{r['end_local']:%Y-%m-%d %H:%M}",
                r["location"],
                f"{r['energy_kwh']:,.2f}",
                _money(r["cost_total"], r["currency"]),
            ],
            numbers_from=4,
        )
        for r in detail.iter_rows(named=True)
    ]
    meta = f"Charging statement for {report.month}; times in {report.timezone}."
    return (
        f'<section class="statement"><h2>{html.escape(title)}</h2><p class="meta">{html.escape(meta)}</p>'
        f"<table><thead>{_row(['Location', 'Sessions', 'Energy (kWh)', 'Cost (VAT incl.)'], 'th')}</thead>"
        f"<tbody>{''.join(body)}</tbody><tfoot>{''.join(foot)}</tfoot></table><h3>Sessions</h3>"
        f"<table><thead>{_row(['Date', 'Start', 'End', 'Location', 'Energy (kWh)', 'Cost (VAT incl.)'], 'th')}</thead>"
        f"<tbody>{''.join(lines)}</tbody></table>"
        '<p class="sign">Signature ______________________ &nbsp; Date ____________</p></section>'
    )


_STYLE = """
body { font-family: Arial, Helvetica, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 1.5em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; }
tfoot td { font-weight: bold; }
.meta, .note { color: #555; } .sign { margin-top: 2em; }
@page { size: A4; margin: 15mm; }
@media print { body { margin: 0; } section.statement { break-after: page; } }
"""


def to_html(report: MonthlyReport) -> bytes:
    """A printable, self-contained page (inline style, no scripts, no external assets); every text is escaped."""
    title = f"ChargeLens charging statements, {report.month}"
    sections = [
        _entity_section(report, entity_id, summary, report.sessions.filter(pl.col("entity_id") == entity_id))
        for (entity_id,), summary in report.summary.group_by("entity_id", maintain_order=True)
    ]
    if not sections:
        sections = [
            f'<p class="note">{html.escape(f"No charge session started in {report.month} ({report.timezone}).")}</p>'
        ]
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">{html.escape(_EXPLANATION)}</p>{"".join(sections)}</body></html>\n'
    )
    return page.encode("utf-8")


_EXPLANATION = (
    "Sessions that started in the month, grouped by the location they matched best; costs include VAT and are "
    "rounded once, to cents. Sessions without a tariff have no cost."
)


def render(report: MonthlyReport, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise InputError(f"Unknown report format '{fmt}'; use one of {', '.join(FORMATS)}.")
    return to_csv(report) if fmt == "csv" else to_html(report)


def file_name(month: str, entity_id: str | None, fmt: str) -> str:
    """A safe download name: entity ids may hold slashes, quotes or markup."""
    entity = re.sub(r"[^A-Za-z0-9._-]+", "_", entity_id).strip("._") if entity_id else ""
    return f"chargelens-{month}{'-' + entity if entity else ''}.{fmt}"
