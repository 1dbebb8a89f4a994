"""Figures of the analysis pages and the one way to show a chart: figure, one-line caption, PNG download."""

from __future__ import annotations

import re

import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

PNG_WIDTH = 1200
PNG_TEMPLATE = "plotly_white"
_PLACEHOLDER = re.compile(r'"#0000(\d\d)"')
_PALETTE = [*px.colors.qualitative.Plotly, *px.colors.sequential.Blues[:10], *px.colors.diverging.RdBu[:10]]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# Histogram panels: measure(s) drawn, panel title, row, column (SoC at start and end share one panel).
DISTRIBUTION_PANELS = (
    (("duration_min",), "Duration (min)", 1, 1),
    (("energy_kwh",), "Energy (kWh)", 1, 2),
    (("average_power_kw",), "Average power (kW)", 2, 1),
    (("soc_start_pct", "soc_end_pct"), "State of charge (%)", 2, 2),
)
SERIES_NAMES = {"soc_start_pct": "SoC at start", "soc_end_pct": "SoC at end"}


def png(fig: go.Figure) -> bytes:
    """The figure as a PNG, drawn by kaleido in the system Chromium (it finds /usr/bin/chromium by itself)."""
    # Streamlit's plotly template holds placeholder colours (#000001, #000002, ...) that only its frontend turns into
    # theme colours, and plotly express copies them into the traces: swap them for real ones before drawing.
    text = _PLACEHOLDER.sub(lambda m: f'"{_PALETTE[(int(m.group(1)) - 1) % len(_PALETTE)]}"', fig.to_json())
    printable = pio.from_json(text).update_layout(template=PNG_TEMPLATE)
    return printable.to_image(format="png", width=PNG_WIDTH, height=fig.layout.height or 500)


def show(fig: go.Figure, caption: str, key: str) -> None:
    """A chart, a one-line caption saying what it shows, and a PNG download drawn only when clicked."""
    st.plotly_chart(fig, width="stretch", key=f"chart-{key}")
    text, button = st.columns([4, 1], vertical_alignment="center")
    text.caption(caption)
    button.download_button(
        "Download PNG",
        lambda: png(fig),  # kaleido takes seconds: render on click, never on every rerun
        file_name=f"{re.sub(r'[^A-Za-z0-9_-]+', '-', key)}.png",
        mime="image/png",
        key=f"png-{key}",
        on_click="ignore",
        width="stretch",
    )


LEFT_MARGIN_MAX = 320  # px; longer entity ids are cut at the left edge of the timeline
SVG_MAX_POINTS = 15_000  # a timeline of up to 5 000 sessions (3 points each) is drawn as SVG, larger ones by WebGL


def sessions_timeline(segments: pl.DataFrame, timezone: str) -> go.Figure:
    """Sessions as one trace of thick segments (start, end, gap) per entity row.

    `segments` comes from core.queries.timeline_segments. Up to 5 000 sessions the trace is SVG (a short path per
    session), which the browser draws faster than it sets up a WebGL context (measured with bench/bench_pages.py on
    a machine without a GPU: 1.5 s instead of 4 s after a filter change); beyond, Scattergl. Categories are
    ordered rather than the axis reversed: a reversed Scattergl y axis collapses every point onto one line inside
    Streamlit."""
    entities = segments.get_column("y").drop_nulls().unique().sort().to_list()
    trace = go.Scatter if segments.height <= SVG_MAX_POINTS else go.Scattergl
    fig = go.Figure(
        trace(
            x=segments.get_column("x").to_numpy(),
            y=segments.get_column("y").to_numpy(),
            customdata=segments.get_column("energy_kwh").to_numpy(),
            mode="lines",
            line={"width": 10},
            name="sessions",
            hovertemplate="%{y}<br>%{x}<br>%{customdata:.1f} kWh<extra></extra>",
        )
    )
    # The left margin from the longest entity id (about 7 px a character) rather than measured by the browser: with
    # hundreds of rows, measuring every label took a tenth of the page's first draw.
    widest = max((len(e) for e in entities), default=0)
    fig.update_yaxes(type="category", categoryorder="category descending", title=None, automargin=False)
    fig.update_layout(margin={"l": min(LEFT_MARGIN_MAX, 24 + 7 * widest)})
    fig.update_xaxes(type="date", title=f"Local time ({timezone})")
    fig.update_layout(title="Sessions per entity", height=min(3000, max(320, 120 + 32 * len(entities))))
    return fig


def energy_bars(energy: pl.DataFrame, period: str, by: str, timezone: str) -> go.Figure:
    """Energy per local day/week/month, stacked by location or method (from core.queries.energy_by_period)."""
    fig = px.bar(
        energy,
        x="period",
        y="energy_kwh",
        color=by,
        title=f"Energy per {period}, by {by}",
        labels={"period": f"{period.capitalize()} ({timezone})", "energy_kwh": "Energy (kWh)", by: by.capitalize()},
        hover_data={"sessions": True},
    )
    fig.update_layout(barmode="stack", height=420)
    return fig


def start_heatmap(cells: pl.DataFrame, timezone: str) -> go.Figure:
    """Sessions per local weekday and start hour (the 7 x 24 cells of core.queries.start_heatmap)."""
    fig = go.Figure(
        go.Heatmap(
            x=cells.get_column("hour").to_numpy(),
            y=cells.get_column("day").to_numpy(),
            z=cells.get_column("sessions").to_numpy(),
            customdata=cells.get_column("energy_kwh").to_numpy(),
            colorscale="Blues",
            colorbar={"title": "Sessions"},
            hovertemplate="%{y} %{x}:00<br>%{z} sessions<br>%{customdata:.1f} kWh<extra></extra>",
        )
    )
    fig.update_xaxes(title=f"Start hour ({timezone})", dtick=1)
    fig.update_yaxes(title=None, type="category", categoryorder="array", categoryarray=WEEKDAYS[::-1])
    fig.update_layout(title="Session starts by weekday and hour", height=360)
    return fig


def distributions(bins: pl.DataFrame) -> go.Figure:
    """Histograms binned in DuckDB (core.queries.distributions), one panel per measure."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title, _, _ in DISTRIBUTION_PANELS])
    for measures, _, row, col in DISTRIBUTION_PANELS:
        for measure in measures:
            part = bins.filter(pl.col("measure") == measure)
            fig.add_bar(
                x=((part["bin_start"] + part["bin_end"]) / 2).to_numpy(),
                y=part.get_column("sessions").to_numpy(),
                width=(part["bin_end"] - part["bin_start"]).to_numpy(),
                name=SERIES_NAMES.get(measure, measure),
                showlegend=measure in SERIES_NAMES,
                opacity=0.6 if len(measures) > 1 else 1.0,
                hovertemplate="%{x}: %{y} sessions<extra></extra>",
                row=row,
                col=col,
            )
        fig.update_yaxes(title="Sessions", row=row, col=col)
    fig.update_layout(title="Distributions", barmode="overlay", height=620)
    return fig


def plug_idle(idle: pl.DataFrame) -> go.Figure:
    """Per entity: hours charging and hours plugged in but idle (core.queries.plug_idle)."""
    # The idle share is in the hover, not printed on the bars: plotly measures every bar's text before drawing,
    # which takes seconds for a fleet of hundreds of entities.
    share = idle.get_column("idle_share").fill_null(0).to_numpy()
    fig = go.Figure()
    entities = idle["entity_id"].to_list()
    fig.add_bar(x=entities, y=idle["charging_h"].to_numpy(), name="charging",
                hovertemplate="%{x}: %{y:.1f} h charging<extra></extra>")  # fmt: skip
    fig.add_bar(x=entities, y=idle["idle_h"].to_numpy(), name="plugged in, idle", customdata=share,
                hovertemplate="%{x}: %{y:.1f} h idle, %{customdata:.0%} of plugged-in time<extra></extra>")  # fmt: skip
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(title="Hours")
    fig.update_layout(title="Plug-in time: charging and idle", barmode="stack", height=420)
    return fig


def weekly_energy(weekly: pl.DataFrame, timezone: str) -> go.Figure:
    """Energy per local week by method (core.queries.energy_per_period), for the Overview."""
    return px.bar(
        weekly,
        x="period",
        y="energy_kwh",
        color="method",
        title="Energy per week",
        labels={"period": f"Week ({timezone})", "energy_kwh": "Energy (kWh)"},
    )


# The two bars of the cheapest-hours chart: column of core.costs.shift_profile, legend name.
SHIFT_SERIES = (("energy_now_kwh", "charged now"), ("energy_shifted_kwh", "charged if shifted"))


def shift_profile(profile: pl.DataFrame, timezone: str, currency: str | None) -> go.Figure:
    """Energy per local hour of the day, as charged and as if flexible sessions were shifted to the cheapest hours;
    with one currency, the mean price on offer while they were plugged in (core.costs.shift_profile)."""
    fig = make_subplots(specs=[[{"secondary_y": currency is not None}]])
    hours = profile.get_column("hour").to_numpy()
    for column, name in SHIFT_SERIES:
        fig.add_bar(x=hours, y=profile.get_column(column).to_numpy(), name=name,
                    hovertemplate="%{x}:00 %{y:.1f} kWh<extra>" + name + "</extra>")  # fmt: skip
    if currency is not None:
        fig.add_scatter(x=hours, y=profile.get_column("price_per_kwh").to_numpy(), name=f"price ({currency}/kWh)",
                        mode="lines+markers", secondary_y=True, connectgaps=False)  # fmt: skip
        fig.update_yaxes(title=f"{currency} per kWh", secondary_y=True, rangemode="tozero")
    fig.update_xaxes(title=f"Local hour ({timezone})", dtick=1, range=[-0.5, 23.5])
    fig.update_yaxes(title="Energy (kWh)", secondary_y=False)
    fig.update_layout(title="Cheapest hours: energy per hour of the day", barmode="group", height=420)
    return fig
