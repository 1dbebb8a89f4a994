"""Costs: tariffs (editor, assignment, prices), cost per entity, location and period, what-if and the cheapest hours."""

import plotly.express as px
import polars as pl
import streamlit as st

from core import queries
from core.costs import DAY_NAMES, parse_tariff, round_money_expr
from core.pricing import add_tariff, assign_tariff, read_prices, shift, store_prices, whatif
from ui import charts
from ui.common import announce_once, empty_state, shown_errors, store
from ui.filters import filter_bar, show_totals

MONEY = ("cost_energy", "cost_energy_shifted", "saving")
SHIFT_NOTE = (
    "Energy cost only, VAT excluded. A session is flexible when it stayed plugged in longer than it charged; its "
    "energy is moved, at its own average power, into the cheapest quarter hours between plug-in and plug-out. "
    "Left out: the per-minute and idle fees (same minutes, but some operators bill idle time only after the "
    "charge ends), the session fee (unchanged), and the minimum, maximum and VAT of the whole session."
)

st.title("Costs")
db = store()
settings = db.settings()
tariffs = queries.tariffs(db)

st.subheader("Tariffs")
announce_once("costs-saved")  # after the rerun that lists the new tariff
if tariffs.height:
    st.dataframe(tariffs.drop("body"), hide_index=True, width="stretch")
else:
    empty_state("No tariffs yet.", "Create one below; sessions without a tariff show “no tariff”, never 0.")

with st.expander("Create or change a tariff", expanded=tariffs.height == 0):
    left, right = st.columns(2)
    name = left.text_input("Name", value="home-two-band", max_chars=100)
    currency = right.text_input("Currency", value="EUR", max_chars=3)
    zone = left.text_input("Time zone", value=settings.display_timezone if settings.display_timezone != "UTC"
                           else "Europe/Brussels")  # fmt: skip
    vat = right.number_input("VAT %", 0.0, 100.0, value=21.0)
    kind = st.radio("Energy price", ["Two bands", "Dynamic prices only"], horizontal=True, key="tariff-kind")
    bands, series = [], None
    if kind == "Dynamic prices only":
        price_file = st.file_uploader("Price file (CSV: ts, price_per_kwh)", type=["csv"], key="tariff-prices")
        if price_file is not None:
            with shown_errors():
                series = read_prices(price_file.getvalue(), price_file.name)
    else:
        t1_price = left.number_input("Band t1 price per kWh", 0.0, 10.0, value=0.40, format="%.4f")
        t1_days = right.multiselect("Band t1 days", DAY_NAMES, default=list(DAY_NAMES[:5]))
        t1_hours = st.slider("Band t1 local hours [from, to)", 0, 24, (7, 22))
        t2_price = left.number_input("Band t2 price per kWh (every other hour)", 0.0, 10.0, value=0.20, format="%.4f")
        bands = [{"band": "t1", "price_per_kwh": t1_price, "days": t1_days, "hours": list(t1_hours)},
                 {"band": "t2", "price_per_kwh": t2_price}]  # fmt: skip
    fee_session = right.number_input("Fee per session", 0.0, 1000.0, value=0.50)
    fee_min = left.number_input("Fee per charging minute", 0.0, 100.0, value=0.0, format="%.4f")
    idle_fee = right.number_input("Idle fee per minute", 0.0, 100.0, value=0.0, format="%.4f")
    grace = left.number_input("Idle grace (minutes)", 0.0, 1440.0, value=0.0)
    valid_from = right.date_input("Valid from", value=None)
    body = {
        "name": name, "currency": currency.upper(), "timezone": zone, "bands": bands,
        "fee_per_min": fee_min, "idle_fee_per_min": idle_fee, "idle_grace_min": grace, "fee_per_session": fee_session,
        "vat_pct": vat, "min_per_session": None, "max_per_session": None,
        "valid_from": valid_from.isoformat() if valid_from else None, "valid_to": None,
    }  # fmt: skip
    with shown_errors():
        stored = tariffs.filter(pl.col("name") == name).get_column("prices").sum() if tariffs.height else 0
        preview = parse_tariff(body, has_prices=series is not None or stored > 0)
        if series is not None:
            st.caption(f"{series.height} prices from {series['ts'].min():%Y-%m-%d %H:%M} to "
                       f"{series['ts'].max():%Y-%m-%d %H:%M} UTC; the first ones:")  # fmt: skip
            st.dataframe(series.head(8), hide_index=True)
        elif preview.bands:
            grid = pl.DataFrame(
                {day: [next(b.band for b in preview.bands if b.matches(i, h)) for h in range(24)]
                 for i, day in enumerate(DAY_NAMES)}
            ).with_row_index("hour")  # fmt: skip
            st.caption("Band of each local hour (rows) and weekday (columns):")
            st.dataframe(grid, hide_index=True, height=300)
        if st.button("Save tariff", type="primary"):
            add_tariff(db, body, settings.max_gap_min, series)
            st.session_state["costs-saved"] = f"Tariff {name} saved; sessions were priced again."
            st.rerun()

if tariffs.height:
    with st.expander("Assign a tariff"):
        tariff_name = st.selectbox("Tariff", tariffs.get_column("name").to_list(), key="assign-tariff")
        scope = st.radio("Applies to", ["location", "entity", "default"], horizontal=True)
        choices = queries.filter_choices(db)
        target = "" if scope == "default" else st.selectbox(
            "Location label" if scope == "location" else "Entity",
            choices["location"] if scope == "location" else choices["entities"],
        )  # fmt: skip
        if st.button("Assign"):
            with shown_errors():
                assign_tariff(db, tariff_name, scope, target or "", settings.max_gap_min)
                st.rerun()
    with st.expander("Dynamic prices (CSV: ts, price_per_kwh)"):
        price_tariff = st.selectbox("For tariff", tariffs.get_column("name").to_list(), key="price-tariff")
        upload = st.file_uploader("Price file", type=["csv"], key="prices")
        if upload is not None:
            with shown_errors():
                uploaded = read_prices(upload.getvalue(), upload.name)
                st.dataframe(uploaded.head(10), hide_index=True)
                if st.button("Import prices"):
                    count = store_prices(db, uploaded, price_tariff, settings.max_gap_min)
                    st.success(f"{count} prices stored; sessions were priced again.")

st.subheader("Cost of the filtered sessions")
flt = filter_bar(db, "costs")
show_totals(db, flt)
by = st.radio("Per", ["entity", "location", "day", "week", "month"], horizontal=True, index=4)
summary = queries.costs_by(db, flt, by, settings.display_timezone)
if summary.height == 0:
    empty_state("No sessions match.", "Widen the filter, or import readings.")
    st.stop()
st.dataframe(summary.with_columns(pl.col("energy_kwh", "cost_total").round(2)), hide_index=True, width="stretch")
fig = px.bar(summary, x=by, y="cost_total", color="currency", title=f"Cost per {by} (VAT included)")
st.plotly_chart(fig, width="stretch")
st.caption("Costs include VAT; sessions without a tariff count as “no tariff”, not as 0.")

if tariffs.height:
    st.subheader("What if")
    st.caption("Both views reprice every filtered session from its readings, so they are built when you click.")
    other = st.selectbox("Price the same sessions under", tariffs.get_column("name").to_list(), key="whatif")
    own = "each session's own tariff"
    under = st.radio("Cheapest hours priced under", [own, "the what-if tariff"], horizontal=True, key="shift-under")
    asked = (flt, other, under)
    if st.button("Compare", key="whatif-run", type="primary"):
        with shown_errors(), st.spinner("Repricing the filtered sessions…"):
            compared = whatif(db, other, flt, "month")
            report = shift(db, flt, None if under == own else other, "month")
            st.session_state["whatif-result"] = (asked, compared, report)
    result = st.session_state.get("whatif-result")
    if result is not None and result[0] == asked:
        _, compared, report = result
        st.dataframe(compared, hide_index=True, width="stretch")
        totals = compared.select(pl.col("actual", "whatif", "difference").sum())
        st.metric("Difference over the filtered sessions", f"{totals['difference'][0]:,.2f}",
                  help="What-if minus actual; negative means the other tariff would have been cheaper.")  # fmt: skip

        st.subheader("Cheapest hours")
        saving = "–" if report.saving is None else f"{report.saving:,.2f} {report.currency}"
        st.metric("Saving if flexible sessions had charged in their cheapest hours", saving, help=SHIFT_NOTE)
        st.caption(SHIFT_NOTE)
        rounded = [*(round_money_expr(c).alias(c) for c in MONEY), pl.col("energy_kwh").round(2)]
        st.dataframe(report.totals.with_columns(rounded), hide_index=True, width="stretch")
        fig = charts.shift_profile(report.profile, settings.display_timezone, report.currency)
        charts.show(fig, f"Energy per local hour ({settings.display_timezone}), as charged and with flexible sessions "
                    "moved to the cheapest hours they were plugged in; the line is the mean price on offer.",
                    "cheapest-hours")  # fmt: skip
    elif result is not None:
        st.caption("The filter or the tariffs changed since the last comparison; click Compare again.")
