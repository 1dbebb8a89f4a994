"""The one serving process: the Streamlit dashboard with the API mounted under /api, on one port."""

import contextlib

import streamlit as st

from core.api import api_mount
from core.runtime import serving


@contextlib.asynccontextmanager
async def lifespan(app):
    url = f"http://{st.get_option('server.address') or '127.0.0.1'}:{st.get_option('server.port')}"
    with serving(url):
        yield {}


app = st.App("app.py", routes=[api_mount()], lifespan=lifespan)
