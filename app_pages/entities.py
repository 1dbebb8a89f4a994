"""Entities: type, battery capacity and the CaptureChargeSessions toggle."""

import streamlit as st

from core.errors import ChargeLensError
from core.features import CAPTURE
from core.pipeline import set_feature
from ui.common import empty_state, store

st.title("Entities")
db = store()
entities = db.entities()
if entities.height == 0:
    empty_state("No entities yet.", "Entities appear when readings are imported.")
    st.stop()


def toggle_capture(entity_id: str, key: str, before: bool) -> None:
    """Ask for the change; a refusal leaves the toggle as it was and says why."""
    try:
        set_feature(db, entity_id, CAPTURE, st.session_state[key])
    except ChargeLensError as exc:
        st.session_state[key] = before
        st.session_state["capture-refusal"] = f"{exc.title}: {exc.detail}"


st.dataframe(
    entities.select("entity_id", "entity_type", "name", "brand", "battery_capacity_kwh", "last_seen"),
    hide_index=True,
    width="stretch",
)
st.subheader(CAPTURE)
if refusal := st.session_state.pop("capture-refusal", None):
    st.error(refusal)
for row in entities.iter_rows(named=True):
    key = f"capture-{row['entity_id']}"
    st.toggle(
        f"{row['entity_id']} ({row['entity_type']})",
        value=row["capture_sessions"],
        key=key,
        on_change=toggle_capture,
        args=(row["entity_id"], key, row["capture_sessions"]),
    )
