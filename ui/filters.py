"""The filter bar shared by the analysis pages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core.queries import SessionFilter, filter_choices
from core.store import Store

ALL = "All"


def filter_bar(db: Store, key: str) -> SessionFilter:
    choices = filter_choices(db)
    top = st.columns([3, 2])
    chosen = top[0].multiselect("Entities", choices["entities"], key=f"{key}-entities", placeholder="All entities")
    period = top[1].date_input("Period (start dates, UTC)", value=(), key=f"{key}-period")
    row = st.columns(4)
    picked = {
        name: row[i].selectbox(label, [ALL, *choices[name]], key=f"{key}-{name}")
        for i, (name, label) in enumerate(
            (("entity_type", "Entity type"), ("location", "Location"), ("method", "Method"), ("source", "Source"))
        )
    }
    start = end = None
    if isinstance(period, tuple | list) and len(period) == 2:
        start = datetime.combine(period[0], time(), tzinfo=UTC)
        end = datetime.combine(period[1], time(), tzinfo=UTC) + timedelta(days=1)
    values = {k: (None if v == ALL else v) for k, v in picked.items()}
    return SessionFilter(start=start, end=end, entity_ids=tuple(chosen), **values)
