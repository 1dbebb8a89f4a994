"""Entities: type, battery capacity and the CaptureChargeSessions toggle, which calls the feature API."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import streamlit as st

from core import capacity, daily, remote
from core.client import PlatformError
from core.credentials import load_or_create
from core.errors import ChargeLensError
from core.features import CAPTURE
from core.settings import database_path
from ui.common import announce_once, empty_state, feature_client, literal, shown_errors, store

MAX_TOGGLES = 50  # a switch per entity: hundreds of them take seconds to draw; the search narrows


def remote_section(db) -> None:
    """Connection to a remote platform: credentials, its entities, a pull with progress, reconciliation."""
    st.subheader("Connection to a remote platform")
    with st.form("remote-connect"):
        current = remote.connection(db)
        st.text_input("Platform API URL", current.url, placeholder="https://platform/api", key="remote-url")
        st.text_input("Client id", current.client_id, key="remote-client-id")
        st.text_input("Client secret", type="password", help="Kept beside the database only.", key="remote-secret")
        st.form_submit_button("Connect", on_click=save_connection, args=(db,))
    if outcome := st.session_state.pop("remote-outcome", None):
        getattr(st, outcome[0])(outcome[1])
    current = remote.connection(db)
    if not current.connected:
        st.caption("Not connected: enter the platform's API URL, client id and secret, then Connect.")
        return
    st.caption(f"Connected to {current.url} as {current.client_id}.")
    st.text_input(
        "Daily pull at (HH:MM, display time zone)",
        db.settings().remote_pull_time,
        key="remote-pull-time",
        on_change=save_pull_time,
        args=(db,),
    )
    st.caption(daily.schedule(db, datetime.now(UTC)).sentence())
    if st.button(
        "List remote entities", key="remote-list"
    ):  # on demand: a slow platform must not slow every rerun of the page
        with shown_errors(), remote.open_client(db) as client:
            st.session_state["remote-entities"] = remote.list_entities(client)
    listed = st.session_state.get("remote-entities", [])
    if listed:
        st.dataframe(remote.entity_table(db, listed), hide_index=True, width="stretch")
        remote_feature(db, [e["id"] for e in listed])
    today = datetime.now(UTC).date()
    days = st.date_input("Pull these UTC days", (today - timedelta(days=7), today), key="remote-days")
    chosen = st.multiselect("Remote entities (none = all)", [e["id"] for e in listed], key="remote-chosen")
    if st.button("Pull readings and sessions", disabled=len(days) != 2, key="remote-pull"):
        with shown_errors(), remote.open_client(db) as client:
            pull_with_progress(db, client, *days, chosen)
    pulled = remote.reconciled_entities(db)
    if pulled:
        entity_id = st.selectbox("Reconcile the platform's sessions of", pulled, key="remote-reconcile")
        st.dataframe(remote.reconciliation(db, entity_id), hide_index=True, width="stretch")


def remote_feature(db, entity_ids: list[str]) -> None:
    """CaptureChargeSessions of a remote entity, switched on the platform itself; a refusal shows its title."""
    left, on, off = st.columns([4, 1, 1], vertical_alignment="bottom")
    chosen = left.selectbox(f"{CAPTURE} on the remote platform for", entity_ids, key="remote-feature-entity")
    for column, enabled in ((on, True), (off, False)):
        if column.button("Switch on" if enabled else "Switch off", key=f"remote-feature-{enabled}", width="stretch"):
            with shown_errors(), remote.open_client(db) as client:
                states = remote.set_feature(client, chosen, CAPTURE, enabled)
                now_on = any(s.get("feature") == CAPTURE and s.get("enabled") for s in states)
                st.success(literal(f"{chosen}: {CAPTURE} is {'on' if now_on else 'off'} on the remote platform."))


def save_pull_time(db) -> None:
    with shown_errors():
        db.change_setting("remote_pull_time", st.session_state["remote-pull-time"])


def save_connection(db) -> None:
    """Connect with what the form holds, then forget the typed secret: it is never shown again."""
    state = st.session_state
    try:
        count = remote.connect(db, state["remote-url"], state["remote-client-id"], state["remote-secret"])
        state["remote-outcome"] = ("success", f"Connected: {count} remote entities.")
    except ChargeLensError as exc:
        state["remote-outcome"] = ("error", f"{exc.title}: {exc.detail}")
    state["remote-secret"] = ""


def pull_with_progress(db, client, first: date, last: date, chosen: list[str]) -> None:
    """Pull the days [first, last] (UTC): readings with a progress bar, then the platform's sessions."""
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    bar = st.progress(0.0, text="Pulling readings…")

    def show(step: remote.PullProgress) -> None:
        bar.progress(step.entity_index / step.entity_count, text=f"{step.entity_id}: {step.readings:,} readings")

    readings = remote.pull(db, client, start=start, end=end, entity_ids=chosen, progress=show)
    sessions = remote.pull_sessions(db, client, start=start, end=end, entity_ids=chosen)
    bar.progress(1.0, text="Done")
    for failed in readings.failed + sessions.failed:
        st.warning(literal(failed.error))
    by_entity = {s.entity_id: s.line() for s in sessions.entities}
    lines = [{"readings": r.line(), "sessions": by_entity.get(r.entity_id, "not pulled")} for r in readings.entities]
    st.dataframe(lines, hide_index=True, width="stretch")


st.title("Entities")
db = store()
entities = db.entities()
if entities.height == 0:
    empty_state("No entities yet.", "Entities appear when readings are imported or pulled from a remote platform.")
    remote_section(db)
    st.stop()
client = feature_client()


def remember(entity_id: str, error: PlatformError) -> None:
    st.session_state["refusal"] = (entity_id, error.title, error.detail)


def toggle_capture(entity_id: str, key: str, before: bool) -> None:
    """Ask the feature API; a refusal leaves the toggle as it was and says why (with the fix inline)."""
    try:
        client.set_feature(entity_id, CAPTURE, st.session_state[key])
    except PlatformError as error:
        st.session_state[key] = before
        remember(entity_id, error)


st.dataframe(
    entities.select("entity_id", "entity_type", "name", "brand", "battery_capacity_kwh", "capture_sessions",
                    "last_seen"),
    hide_index=True, width="stretch",
)  # fmt: skip


def fix_capacity(entity_id: str) -> None:
    """Set the capacity, then switch capture on; toggles follow the stored state."""
    try:
        client.set_battery_capacity(entity_id, st.session_state["capacity-fix-kwh"])
        client.set_feature(entity_id, CAPTURE, True)
        st.session_state.pop("refusal", None)
        st.session_state[f"capture-{entity_id}"] = True
    except PlatformError as error:
        remember(entity_id, error)


def switch_many(entity_ids: list[str], state: bool) -> None:
    failures = []
    for entity_id in entity_ids:
        try:
            client.set_feature(entity_id, CAPTURE, state)
            st.session_state[f"capture-{entity_id}"] = state
        except PlatformError as error:
            failures.append(f"{entity_id}: {error.title}")
    st.session_state["bulk-refusals"] = failures


refusal = st.session_state.get("refusal")
if refusal:
    entity_id, title, detail = refusal
    st.error(literal(f"{title}: {detail}"))
    if title == "BatteryCapacityRequired":
        st.number_input(f"Battery capacity of {literal(entity_id)} (kWh)", 1.0, 300.0, value=60.0, step=1.0,
                        key="capacity-fix-kwh")  # fmt: skip
        st.button("Set capacity and switch capture on", on_click=fix_capacity, args=(entity_id,))

st.subheader(CAPTURE)
search = st.text_input("Find entities", placeholder="part of an id or name")
shown = entities.filter(
    entities["entity_id"].str.contains(search, literal=True) | entities["name"].fill_null("").str.contains(
        search, literal=True)
) if search else entities  # fmt: skip
if shown.height > MAX_TOGGLES:
    st.caption(f"{shown.height:,} entities; showing the first {MAX_TOGGLES}. Narrow the search to see others.")
for row in shown.head(MAX_TOGGLES).iter_rows(named=True):
    key = f"capture-{row['entity_id']}"
    label = literal(f"{row['entity_id']} · {row['entity_type']}" + (f" · {row['name']}" if row["name"] else ""))
    st.toggle(label, value=row["capture_sessions"], key=key, on_change=toggle_capture,
              args=(row["entity_id"], key, row["capture_sessions"]))  # fmt: skip


def save_capacity(entity_id: str, key: str) -> None:
    """Through the feature API, as the platform does it (it recomputes the entity's state-of-charge sessions)."""
    try:
        client.set_battery_capacity(entity_id, st.session_state[key])
        st.session_state["capacity-saved"] = f"{entity_id}: battery capacity {st.session_state[key]:g} kWh saved."
    except PlatformError as error:
        remember(entity_id, error)


evs = entities.filter(pl.col("entity_type") == "EV")
if evs.height:
    with st.expander("Battery capacity"):
        chosen_ev = st.selectbox("EV", evs.get_column("entity_id").to_list(), key="capacity-entity")
        now_kwh = evs.filter(pl.col("entity_id") == chosen_ev).get_column("battery_capacity_kwh")[0]
        st.number_input("Capacity (kWh)", 1.0, 300.0, value=float(now_kwh or 60.0), step=0.5, key="capacity-kwh")
        st.button("Save capacity", on_click=save_capacity, args=(chosen_ev, "capacity-kwh"))
        announce_once("capacity-saved")
        # The chosen EV's suggestion with its button, the others in one table: a row of widgets per EV took
        # over a second to draw at a few hundred EVs.
        suggested = capacity.suggestions(db)
        mine = suggested.filter(pl.col("entity_id") == chosen_ev)
        if mine.height:
            row = mine.row(0, named=True)
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.write(literal(f"{chosen_ev}: {capacity.suggestion_text(row, row['battery_capacity_kwh'])}"))
            key = f"suggested-{chosen_ev}"
            st.session_state[key] = round(row["capacity_kwh"], 1)
            right.button(f"Use {row['capacity_kwh']:.1f} kWh", key=f"use-{chosen_ev}",
                         on_click=save_capacity, args=(chosen_ev, key))  # fmt: skip
        if suggested.height:
            st.caption(
                f"Suggested for {suggested.height:,} EVs from their own sessions with energy and state of charge; "
                "never applied by itself. Choose an EV above to use its suggestion."
            )
            st.dataframe(
                suggested.select("entity_id", "capacity_kwh", "low_kwh", "high_kwh", "sessions",
                                 "battery_capacity_kwh"),
                hide_index=True, width="stretch", height=220,
            )  # fmt: skip

with st.expander("Switch several at once"):
    chosen = st.multiselect("Entities", shown.get_column("entity_id").to_list())
    on, off = st.columns(2)
    on.button("Switch on", disabled=not chosen, on_click=switch_many, args=(chosen, True))
    off.button("Switch off", disabled=not chosen, on_click=switch_many, args=(chosen, False))
    if failures := st.session_state.pop("bulk-refusals", None):
        st.warning(literal("Refused: " + "; ".join(failures)))

with st.expander("Local API credentials"):
    credentials = load_or_create(database_path())
    st.write("Scripts reach this dashboard's API at `/api` (see `/api/docs`) with these client credentials.")
    st.code(f"clientId: {credentials['clientId']}", language=None)
    if st.toggle("Show the client secret"):
        st.code(f"clientSecret: {credentials['clientSecret']}", language=None)

remote_section(db)
