"""Locations: named places, how many sessions they match, suggestions and a map."""

import math

import plotly.graph_objects as go
import streamlit as st

from core import queries
from core.pipeline import accept_suggestion, add_location, delete_location, suggestions, update_location
from ui.common import announce_once, empty_state, shown_errors, store

st.title("Locations")
db = store()
exact = db.settings().exact_locations
places = queries.location_summary(db)
announce_once("locations-done")  # after the rerun that lists the change
if places.height:
    st.dataframe(places.drop("location_id"), hide_index=True, width="stretch")
else:
    empty_state(
        "No locations yet.", "Add a place below, or accept a suggestion; sessions within its radius get its label."
    )

left, right = st.columns(2)
with left.form("add-location", clear_on_submit=True):
    st.subheader("Add a location")
    label = st.text_input("Label", max_chars=100)
    latitude = st.number_input("Latitude", -90.0, 90.0, value=None, format="%.6f", placeholder="e.g. 50.846600")
    longitude = st.number_input("Longitude", -180.0, 180.0, value=None, format="%.6f", placeholder="e.g. 4.357200")
    radius = st.number_input("Radius (m)", 10.0, 5000.0, value=150.0)
    if st.form_submit_button("Add location"):
        with shown_errors():
            add_location(db, label, latitude, longitude, radius)
            st.session_state["locations-done"] = f"Location {label.strip()} added; sessions were matched again."
            st.rerun()

if places.height:
    with right.form("edit-location"):
        st.subheader("Edit or delete")
        options = {f"{r['label']} · {r['scope']}": r for r in places.iter_rows(named=True)}
        chosen = options[st.selectbox("Location", list(options))]
        new_label = st.text_input("New label", value=chosen["label"], max_chars=100)
        new_radius = st.number_input("New radius (m)", 10.0, 5000.0, value=float(chosen["radius_m"]))
        save, remove = st.columns(2)
        if save.form_submit_button("Save"):
            with shown_errors():
                update_location(db, chosen["location_id"], label=new_label, radius_m=new_radius)
                st.session_state["locations-done"] = f"Location {new_label.strip()} saved; sessions were matched again."
                st.rerun()
        if remove.form_submit_button("Delete"):
            with shown_errors():
                delete_location(db, chosen["location_id"])
                st.session_state["locations-done"] = f"Location {chosen['label']} deleted; sessions were matched again."
                st.rerun()

st.subheader("Suggested places")
proposals = suggestions(db)
if proposals.height:
    st.caption("Clusters of sessions that match no location; centres rounded to about 100 m until accepted.")
    shown = proposals.with_columns(proposals["latitude"].round(3), proposals["longitude"].round(3))
    st.dataframe(shown, hide_index=True, width="stretch")
    number = st.selectbox("Suggestion", shown.get_column("number").to_list())
    name = st.text_input("Label for it", value="", placeholder="the suggested label without '?'", max_chars=100)
    if st.button("Accept suggestion"):
        with shown_errors():
            accept_suggestion(db, number, name.strip() or None)
            st.session_state["locations-done"] = f"Suggestion {number} accepted; sessions were matched again."
            st.rerun()
else:
    st.caption("No suggestions: every session with a position matches a location (or there are too few).")

positions = queries.session_positions(db, None if exact else 3)
# A plain scatter in degrees (no map tiles or topojson to fetch), with the x axis scaled for the latitude.
mid = float(places["latitude"].mean() if places.height else positions["latitude"].mean() or 0)
fig = go.Figure()
fig.add_scatter(x=positions["longitude"], y=positions["latitude"], mode="markers", name="sessions",
                marker={"size": 5, "opacity": 0.5}, text=positions["sessions"])  # fmt: skip
fig.add_scatter(x=places["longitude"], y=places["latitude"], text=places["label"], mode="markers+text",
                textposition="top center", name="locations", marker={"size": 12, "symbol": "diamond"})  # fmt: skip
fig.update_yaxes(title="latitude", scaleanchor="x", scaleratio=1 / max(math.cos(math.radians(mid)), 0.01))
fig.update_xaxes(title="longitude")
fig.update_layout(title="Places and session positions", height=500)
st.plotly_chart(fig, width="stretch")
st.caption("Session positions are rounded to 3 decimals unless the exact_locations setting is on.")
