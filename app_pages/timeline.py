"""Timeline: sessions per entity over time and energy per day."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core import queries
from ui.common import empty_state, store
from ui.filters import filter_bar

st.title("Timeline")
db = store()
flt = filter_bar(db, "timeline")
table = queries.sessions(db, flt)
if table.height == 0:
    empty_state("No sessions to draw.", "Import readings or widen the filter.")
    st.stop()

# One Scattergl trace of line segments (start, end, gap) draws thousands of sessions quickly.
segments = table.select("entity_id", "start_utc", "end_utc").sort("entity_id", "start_utc")
xs, ys = [], []
for entity, start, end in segments.iter_rows():
    xs += [start, end, None]
    ys += [entity, entity, None]
fig = go.Figure(go.Scattergl(x=xs, y=ys, mode="lines", line={"width": 10}, name="sessions"))
fig.update_yaxes(type="category", categoryorder="category descending")
fig.update_layout(title="Sessions per entity", height=max(300, 40 * table.get_column("entity_id").n_unique()))
st.plotly_chart(fig, width="stretch")
st.caption("Each bar is one charge session, from its first to its last instant of charging.")

timezone = db.settings().display_timezone
daily = queries.energy_per_period(db, flt, "day", timezone)
fig = px.bar(
    daily,
    x="period",
    y="energy_kwh",
    color="method",
    title="Energy per day",
    labels={"period": f"Day ({timezone})", "energy_kwh": "Energy (kWh)"},
)
st.plotly_chart(fig, width="stretch")
st.caption(f"Energy of the sessions that started on each day, in {timezone}.")
