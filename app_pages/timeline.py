"""Timeline: sessions per entity over time, energy per period, start hours, distributions, idle time, reports."""

import streamlit as st

from core import queries, reports
from ui import charts
from ui.common import empty_state, store
from ui.filters import ALL, filter_bar, show_totals

RECENT_DAYS, MAX_SESSIONS = 30, 5000
PERIODS = ("day", "week", "month")
STACKS = {"location": "best-matching location label", "method": "how the energy was measured (method)"}
TABS = ["Energy per period", "Start hours", "Distributions", "Idle time"]

st.title("Timeline")
db = store()
timezone = db.settings().display_timezone


@st.fragment
def monthly_report() -> None:
    """Built only while open, and rerun on its own: the page's charts do not redraw for it."""
    panel = st.expander(
        "Monthly report: a statement per entity for reimbursing home charging",
        icon=":material/receipt:",
        key="report-open",
        on_change="rerun",
    )
    if not panel.open:
        return
    with panel:
        months = queries.session_months(db, timezone)
        if not months:
            st.caption("No sessions yet; statements can be made once there are sessions.")
            return
        left, right = st.columns(2)
        month = left.selectbox(f"Month ({timezone})", months, key="report-month")
        entity = right.selectbox("Entity", [ALL, *queries.filter_choices(db)["entities"]], key="report-entity")
        entity_id = None if entity == ALL else entity
        report = reports.monthly_report(db, month, entity_id, timezone)
        st.caption("Sessions, energy and cost per location label (Home first) and totals.")
        for column, fmt in zip(st.columns(len(reports.FORMATS)), reports.FORMATS, strict=True):
            column.download_button(
                f"Download {fmt.upper()}",
                reports.render(report, fmt),
                file_name=reports.file_name(month, entity_id, fmt),
                mime=reports.MEDIA_TYPES[fmt],
                key=f"report-{fmt}",
                on_click="ignore",
            )


monthly_report()

flt = filter_bar(db, "timeline")
show_totals(db, flt)
full = st.toggle("Whole filtered period", key="whole-period", help="Off: the last 30 days, at most 5 000 sessions.")
days, limit = (None, None) if full else (RECENT_DAYS, MAX_SESSIONS)
window = queries.timeline_window(db, flt, timezone, days, limit)
if window["total"] == 0:
    empty_state("No sessions to draw.", "Import readings or widen the filter.")
    st.stop()

span = f"{window['first_local']:%Y-%m-%d} to {window['last_local']:%Y-%m-%d}"
scope = "all" if window["shown"] == window["total"] else "the most recent"
charts.show(
    charts.sessions_timeline(queries.timeline_segments(db, flt, timezone, days, limit), timezone),
    f"Each bar is one session, from its first to its last instant of charging: {scope} {window['shown']:,} of "
    f"{window['total']:,} filtered sessions, {span} ({timezone}).",
    "sessions-timeline",
)

# One analysis at a time: only the open tab runs and draws (five charts at once took seconds to draw).
energy_tab, hours_tab, spread_tab, idle_tab = st.tabs(TABS, key="timeline-tab", on_change="rerun")
if energy_tab.open:
    with energy_tab:
        left, right = st.columns(2)
        period = left.radio("Energy per", PERIODS, index=1, horizontal=True, key="energy-period")  # a year: 53 bars
        by = right.radio("Stacked by", list(STACKS), horizontal=True, key="energy-stack")
        charts.show(
            charts.energy_bars(queries.energy_by_period(db, flt, period, by, timezone), period, by, timezone),
            f"Energy of the sessions that started in each {period} ({timezone}), stacked by {STACKS[by]}.",
            "energy",
        )
if hours_tab.open:
    with hours_tab:
        charts.show(
            charts.start_heatmap(queries.start_heatmap(db, flt, timezone), timezone),
            f"Number of sessions by the weekday and hour they started, in {timezone}.",
            "start-heatmap",
        )
if spread_tab.open:
    with spread_tab:
        charts.show(
            charts.distributions(queries.distributions(db, flt)),
            "How long sessions last, the energy they take, their average power and the state of charge at start "
            "and end (unknown values left out).",
            "distributions",
        )
if idle_tab.open:
    with idle_tab:
        idle = queries.plug_idle(db, flt)
        if idle.height:
            charts.show(
                charts.plug_idle(idle),
                "Hours charging and hours plugged in without charging per entity, for sessions with known plug-in "
                "and plug-out times.",
                "plug-idle",
            )
        else:
            st.caption("No filtered session has known plug-in and plug-out times, so idle time cannot be shown.")
