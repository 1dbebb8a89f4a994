"""Overview: what is loaded and the key figures."""

import plotly.express as px
import streamlit as st

from core import queries
from core.pipeline import load_demo
from ui.common import Kpi, empty_state, kpi_row, shown_errors, store

KPIS = (
    Kpi("Entities", "entities"),
    Kpi("Readings", "readings"),
    Kpi("Sessions", "sessions"),
    Kpi("Energy (kWh)", "energy_kwh", "{:,.1f}"),
)

st.title("Overview")
db = store()
figures = queries.overview(db)
if not figures["entities"]:
    empty_state("The database is empty.", "Import reading files on the Import page, or start with the demo fleet.")
    if st.button("Load demo data", type="primary"):
        with st.spinner("Loading the demo fleet…"), shown_errors():
            load_demo(db)
            st.rerun()
    st.stop()

kpi_row(KPIS, figures)
period = (figures["first_start"], figures["last_end"])
if period[0] is not None:
    st.caption(f"Sessions from {period[0]:%Y-%m-%d %H:%M} to {period[1]:%Y-%m-%d %H:%M} UTC.")
timezone = db.settings().display_timezone
weekly = queries.energy_per_period(db, queries.SessionFilter(), "week", timezone)
if weekly.height:
    fig = px.bar(
        weekly,
        x="period",
        y="energy_kwh",
        color="method",
        title="Energy per week",
        labels={"period": f"Week ({timezone})", "energy_kwh": "Energy (kWh)"},
    )
    st.plotly_chart(fig, width="stretch")
else:
    empty_state("No sessions yet.", "Sessions appear once readings show charging and session capture is on.")
st.subheader("Recent imports")
st.dataframe(queries.imports(db, 10).drop("import_id"), hide_index=True, width="stretch")
