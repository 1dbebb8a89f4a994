"""Sessions: filtered table, one session's detail, exports."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import queries
from core.exports import FORMATS, MEDIA_TYPES, export_sessions
from core.schema import EXPORT_COLUMNS
from ui.common import empty_state, literal, store
from ui.detection import detection_panel
from ui.filters import filter_bar, summary_line

MAX_ROWS = 10_000  # the table the browser gets: 100 000 sessions are 24 MB of Arrow and take seconds to draw

st.title("Sessions")
db = store()
flt = filter_bar(db, "sessions")
detection_panel(db, flt.entity_ids)
figures = queries.totals(db, flt)
if figures["sessions"] == 0:
    empty_state("No sessions match.", "Import readings, switch session capture on for an entity, or widen the filter.")
    st.stop()

table = queries.latest_sessions(db, flt, MAX_ROWS)
st.caption(summary_line(figures["sessions"], figures["energy_kwh"]))
if table.height < figures["sessions"]:
    st.caption(f"The table shows the {table.height:,} that started last; narrow the filter, or export them all.")
shown = table.select([c for c in EXPORT_COLUMNS if c in table.columns]).with_columns(
    pl.col("^.*_kwh$", "^.*_kw$", "location_accuracy").round(3), pl.col("duration_min").round(1)
)
event = st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="sessions-table",
)
columns = st.columns(len(FORMATS))
for column, fmt in zip(columns, FORMATS, strict=True):
    column.download_button(
        f"Export {fmt.upper()}",
        lambda fmt=fmt: export_sessions(db, flt, fmt),  # built only when clicked
        file_name=f"sessions.{fmt}",
        mime=MEDIA_TYPES[fmt],
        key=f"export-{fmt}",
        on_click="ignore",
    )

rows = event.selection.rows if event is not None else []
if rows:
    session = table.row(rows[0], named=True)
    st.subheader(f"Session of {literal(session['entity_id'])}")
    st.text(session["start_reason"] or "")
    st.text(session["end_reason"] or "")
    curve = queries.session_readings(db, session)
    fig = go.Figure()
    fig.add_scatter(x=curve["ts"], y=curve["power_kw"], name="power (kW)", mode="lines+markers")
    if curve["soc_pct"].is_not_null().any():
        fig.add_scatter(x=curve["ts"], y=curve["soc_pct"], name="state of charge (%)", yaxis="y2")
    fig.add_vrect(x0=session["start_utc"], x1=session["end_utc"], fillcolor="green", opacity=0.1, line_width=0)
    fig.update_layout(title="Power and state of charge", yaxis2={"overlaying": "y", "side": "right"})
    st.plotly_chart(fig, width="stretch")
else:
    st.caption("Select a row to see the session's curve and why it starts and ends there.")
