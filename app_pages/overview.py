"""Overview: what is loaded, the key figures, where the energy went, what it cost, and notes on data quality."""

import polars as pl
import streamlit as st

from core import queries
from core.costs import round_money
from core.pipeline import load_demo
from core.queries import totals
from ui import charts
from ui.common import Kpi, empty_state, kpi_row, literal, shown_errors, store
from ui.filters import filter_bar, summary_line

KPIS = (
    Kpi("Entities", "entities"),
    Kpi("Readings", "readings"),
    Kpi("Sessions", "sessions", help="Of the filter above."),
    Kpi("Energy (kWh)", "energy_kwh", "{:,.1f}", "Of the filter above."),
)
RECENT_IMPORTS = 10
RECENT_JOBS = 20
NO_TARIFF = "no tariff"  # how core.queries.cost_per_currency names sessions without a tariff
TOP_GAPS = 5


@st.cache_data(max_entries=4, show_spinner="Looking for gaps in the readings…")
def reading_gaps(path: str, readings: int, last_import, max_gap_min: int) -> pl.DataFrame:
    """A scan of every reading: computed again only when readings or the setting change (the arguments)."""
    return queries.reading_gaps(store(), max_gap_min)


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

st.caption(
    f"Loaded: {figures['entities']:,} entities, {figures['readings']:,} readings, {figures['sessions']:,} sessions."
)
flt = filter_bar(db, "overview")
selected = totals(db, flt)
st.caption(summary_line(selected["sessions"], selected["energy_kwh"]))
kpi_row(KPIS, {**figures, "sessions": selected["sessions"], "energy_kwh": selected["energy_kwh"]})
if selected["first_start"] is not None:
    st.caption(f"Sessions from {selected['first_start']:%Y-%m-%d %H:%M} to {selected['last_end']:%Y-%m-%d %H:%M} UTC.")
settings = db.settings()
timezone = settings.display_timezone

shares = queries.energy_share_by_location(db, flt).to_dicts()
costs = queries.cost_per_currency(db, flt).to_dicts()
if shares:
    st.subheader("Where the energy went and what it cost")
    kpi_row(
        [
            Kpi(r["location"], r["location"], "{:.0%}", f"{r['energy_kwh']:,.1f} kWh; best-matching location")
            for r in shares
        ],
        {r["location"]: r["share"] for r in shares},
    )
    priced = [r for r in costs if r["currency"] != NO_TARIFF]
    cost_cards = [
        Kpi(f"Cost ({r['currency']})", r["currency"], "{:,.2f}", f"{r['sessions']:,} sessions") for r in priced
    ]
    cost_values = {r["currency"]: round_money(r["cost_total"]) for r in priced}
    if unpriced := sum(r["sessions"] for r in costs if r["currency"] == NO_TARIFF):
        cost_cards.append(
            Kpi("Sessions without tariff", NO_TARIFF, help="They have no cost (shown as no tariff, not 0).")
        )
        cost_values[NO_TARIFF] = unpriced
    kpi_row(cost_cards, cost_values)
    st.caption("Costs include VAT and are rounded once, to cents.")

weekly = queries.energy_per_period(db, flt, "week", timezone)
if weekly.height:
    charts.show(
        charts.weekly_energy(weekly, timezone),
        f"Energy of the sessions that started in each week ({timezone}), by how it was measured.",
        "overview-energy-week",
    )
else:
    empty_state("No sessions match.", "Sessions appear once readings show charging and session capture is on.")

st.subheader("Data quality")
gaps = reading_gaps(str(db.path), figures["readings"], figures["last_import"], settings.max_gap_min)
rejects = queries.recent_rejects(db, RECENT_IMPORTS)
capture = queries.capture_notes(db)
# Each note: how many problems, what they are, what is fine when there are none, the rows that show them.
NOTES = (
    (
        gaps.height,
        f"Entities with gaps longer than {settings.max_gap_min} min (the max_gap_min setting) in their readings, "
        f"where power is not integrated: {gaps.height:,}. The {TOP_GAPS} with the most gaps:",
        f"No entity has a gap longer than {settings.max_gap_min} min in its readings.",
        gaps.head(TOP_GAPS),
    ),
    (
        rejects.height,
        f"Rows rejected in the last {RECENT_IMPORTS} imports: {rejects['rows'].sum():,}. The Import page lists "
        "them with file, row and reason; per file and reason:",
        f"No rows were rejected in the last {RECENT_IMPORTS} imports.",
        rejects,
    ),
    (
        capture.height,
        f"Entities that get no detected sessions from their readings: {capture.height:,}.",
        "Session capture is on for every entity with readings to detect sessions from.",
        capture,
    ),
)
for found, problem, fine, rows in NOTES:
    if found:
        st.warning(literal(problem), icon=":material/warning:")
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.caption(f":material/check_circle: {fine}")

st.subheader("Recent imports")
st.dataframe(queries.imports(db, RECENT_IMPORTS).drop("import_id"), hide_index=True, width="stretch")

st.subheader("Jobs")
st.caption(
    f"Imports, detections and remote pulls, running ones first; times in {timezone}. Interrupted: its process "
    "ended midway and nothing of it was kept."
)
st.dataframe(queries.jobs(db, timezone, RECENT_JOBS), hide_index=True, width="stretch")
