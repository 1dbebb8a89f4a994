"""The one serving process: the Streamlit dashboard with the API under /api, on one port.

The API answers as the first middleware, so its requests skip the dashboard's own layers (see `ApiFirst`)."""

import contextlib
import faulthandler
import signal

import streamlit as st

from core.api import api_first
from core.api.middleware import unreadable_requests_in_the_error_shape
from core.runtime import serving

unreadable_requests_in_the_error_shape()
faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack into the log


@contextlib.asynccontextmanager
async def lifespan(app):
    url = f"http://{st.get_option('server.address') or '127.0.0.1'}:{st.get_option('server.port')}"
    with serving(url):
        yield {}


app = st.App("app.py", middleware=[api_first()], lifespan=lifespan)
