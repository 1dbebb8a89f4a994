"""Locations: named places and how many sessions match them."""

import streamlit as st

from core import queries
from core.pipeline import add_location
from ui.common import empty_state, shown_errors, store

st.title("Locations")
db = store()
places = queries.location_summary(db)
if places.height:
    st.dataframe(places.drop("location_id"), hide_index=True, width="stretch")
else:
    empty_state("No locations yet.", "Add a place below; sessions within its radius get its label.")

with st.form("add-location"):
    st.subheader("Add a location")
    label = st.text_input("Label", max_chars=100)
    left, middle, right = st.columns(3)
    latitude = left.number_input("Latitude", -90.0, 90.0, value=50.85, format="%.6f")
    longitude = middle.number_input("Longitude", -180.0, 180.0, value=4.35, format="%.6f")
    radius = right.number_input("Radius (m)", 10.0, 5000.0, value=150.0)
    if st.form_submit_button("Add location"):
        with shown_errors():
            add_location(db, label, latitude, longitude, radius)
            st.rerun()
