"""The filter bar shared by the analysis pages, kept in the URL query parameters so a view can be shared."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from core.queries import SessionFilter, filter_choices, totals
from core.store import Store

ALL = "All"
SINGLE = (("entity_type", "Entity type"), ("location", "Location"), ("method", "Method"), ("source", "Source"))


def _query_date(name: str) -> date | None:
    try:
        return date.fromisoformat(st.query_params.get(name, ""))
    except ValueError:
        return None


def filter_bar(db: Store, key: str) -> SessionFilter:
    choices = filter_choices(db)
    params = st.query_params
    # Widgets start from the URL (a shared link), then the URL follows the widgets.
    if f"{key}-entities" not in st.session_state:
        st.session_state[f"{key}-entities"] = [e for e in params.get_all("entity") if e in choices["entities"]]
        start, end = _query_date("start"), _query_date("end")
        st.session_state[f"{key}-period"] = (start, end) if start and end else ()
        for name, _ in SINGLE:
            value = params.get(name)
            st.session_state[f"{key}-{name}"] = value if value in choices[name] else ALL
    top = st.columns([3, 2])
    chosen = top[0].multiselect("Entities", choices["entities"], key=f"{key}-entities", placeholder="All entities")
    period = top[1].date_input("Period (start dates, UTC)", key=f"{key}-period")
    row = st.columns(len(SINGLE))
    picked = {name: row[i].selectbox(label, [ALL, *choices[name]], key=f"{key}-{name}")
              for i, (name, label) in enumerate(SINGLE)}  # fmt: skip
    start = end = None
    query: dict[str, str | list[str]] = {}
    if chosen:
        query["entity"] = list(chosen)
    if isinstance(period, tuple | list) and len(period) == 2:
        start = datetime.combine(period[0], time(), tzinfo=UTC)
        end = datetime.combine(period[1], time(), tzinfo=UTC) + timedelta(days=1)
        query["start"], query["end"] = period[0].isoformat(), period[1].isoformat()
    values = {k: (None if v == ALL else v) for k, v in picked.items()}
    query.update({k: v for k, v in values.items() if v})
    if dict(params.to_dict()) != {k: (v[-1] if isinstance(v, list) else v) for k, v in query.items()} or (
        params.get_all("entity") != query.get("entity", [])
    ):
        st.query_params.from_dict(query)
    return SessionFilter(start=start, end=end, entity_ids=tuple(chosen), **values)


def summary_line(sessions: int, energy_kwh: float) -> str:
    """What the filter selects, in the same words on every page (the browser tests compare them)."""
    return f"{sessions:,} session{'' if sessions == 1 else 's'}, {energy_kwh or 0:,.1f} kWh"


def show_totals(db: Store, flt: SessionFilter) -> dict:
    """The filtered sessions' count and energy as a caption under the filter bar; returns the totals."""
    figures = totals(db, flt)
    st.caption(summary_line(figures["sessions"], figures["energy_kwh"]))
    return figures
