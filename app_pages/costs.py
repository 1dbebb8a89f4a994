"""Costs: the tariffs and where they apply."""

import streamlit as st

from core import queries
from ui.common import empty_state, store

st.title("Costs")
db = store()
tariffs = queries.tariffs(db)
if tariffs.height == 0:
    empty_state("No tariffs yet.", "Add a tariff with `python -m core tariffs add FILE` or load the demo fleet.")
    st.stop()
st.dataframe(tariffs.drop("body"), hide_index=True, width="stretch")
for row in tariffs.iter_rows(named=True):
    with st.expander(f"Tariff {row['name']}"):
        st.json(row["body"])
st.caption("Sessions are priced with these tariffs once the cost engine is in place; until then costs show as empty.")
