"""The filter bar shared by the analysis pages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core.queries import SessionFilter
from core.store import Store


def filter_bar(db: Store, key: str) -> SessionFilter:
    entities = db.entities().get_column("entity_id").to_list()
    left, right = st.columns([2, 1])
    chosen = left.multiselect("Entities", entities, key=f"{key}-entities", placeholder="All entities")
    period = right.date_input("Period (start dates, UTC)", value=(), key=f"{key}-period")
    start = end = None
    if isinstance(period, tuple | list) and len(period) == 2:
        start = datetime.combine(period[0], time(), tzinfo=UTC)
        end = datetime.combine(period[1], time(), tzinfo=UTC) + timedelta(days=1)
    return SessionFilter(start=start, end=end, entity_ids=tuple(chosen))
