"""ChargeLens dashboard entry: page config and navigation, nothing else."""

import streamlit as st

st.set_page_config(page_icon=":material/ev_station:", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="", default=True),
    st.Page("app_pages/import_data.py", title="Import", icon=":material/upload_file:", url_path="import"),
    st.Page("app_pages/sessions.py", title="Sessions", icon=":material/bolt:", url_path="sessions"),
    st.Page("app_pages/timeline.py", title="Timeline", icon=":material/timeline:", url_path="timeline"),
    st.Page("app_pages/costs.py", title="Costs", icon=":material/euro:", url_path="costs"),
    st.Page("app_pages/locations.py", title="Locations", icon=":material/place:", url_path="locations"),
    st.Page("app_pages/entities.py", title="Entities", icon=":material/electric_car:", url_path="entities"),
]

st.navigation(PAGES).run()
