"""The Sessions page's detection settings: try parameters, see what they change per entity, then save them."""

from __future__ import annotations

from dataclasses import fields

import polars as pl
import streamlit as st

from core.detect import DetectParams
from core.pipeline import detect_with, detection_overrides, preview_detection
from core.settings import SETTINGS
from core.store import Store
from ui.common import literal, shown_errors

HELP = {s.key: s.help for s in SETTINGS}
STEPS = {"min_power_kw": 0.1, "max_pause_min": 1.0, "max_gap_min": 5.0, "min_energy_kwh": 0.05, "soc_min_rise_pct": 1.0}


def detection_panel(db: Store, entity_ids: tuple[str, ...]) -> None:
    with st.expander("Detection settings"):
        current = DetectParams.from_settings(db.settings())
        cells = st.columns(len(STEPS))
        chosen = {}
        for cell, field in zip(cells, fields(DetectParams), strict=True):
            value = float(getattr(current, field.name))
            chosen[field.name] = cell.number_input(
                field.name, min_value=0.0, value=value, step=STEPS[field.name], help=HELP.get(field.name),
                key=f"detect-{field.name}",
            )  # fmt: skip
        scope = "the filtered entities" if entity_ids else "every entity"
        st.caption(f"Preview runs detection on {scope} with these values; nothing changes until you save.")
        params = {k: v for k, v in chosen.items()}
        if st.button("Preview the difference", key="detect-preview"):
            with shown_errors(), st.spinner("Detecting sessions…"):
                diff = preview_detection(db, DetectParams(**detection_overrides(db, params)), entity_ids or None)
                st.session_state["detect-diff"] = (params, entity_ids, diff)
        shown = st.session_state.get("detect-diff")
        if shown is not None and shown[0] == params and shown[1] == entity_ids:
            diff = shown[2]
            totals = diff.select(pl.exclude("entity_id").sum()).row(0, named=True)
            st.write(
                literal(
                    f"Sessions {totals['sessions_now']:,} → {totals['sessions_then']:,} ({totals['new']:,} new, "
                    f"{totals['gone']:,} gone, {totals['kept']:,} kept); energy {totals['energy_now_kwh']:,.1f} → "
                    f"{totals['energy_then_kwh']:,.1f} kWh ({totals['energy_change_kwh']:+,.1f})."
                )
            )
            st.dataframe(diff.with_columns(pl.col("^energy_.*$").round(2)), hide_index=True, width="stretch")
            if st.button("Save these settings and detect again", type="primary", key="detect-save"):
                with shown_errors(), st.spinner("Detecting sessions of every entity…"):
                    count = detect_with(db, detection_overrides(db, params), save=True)
                    st.session_state.pop("detect-diff", None)
                    st.success(f"Saved; {count:,} sessions detected.")
