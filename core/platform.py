"""The feature API the dashboard talks to: a remote platform when one is connected, else this process's own API."""

from __future__ import annotations

import functools
from pathlib import Path

from core.client import PlatformClient
from core.credentials import load_or_create
from core.settings import sidecar

LOCAL_BASE_URL = "http://chargelens.local"


@functools.cache
def _local_app():
    from core.api import create_app

    return create_app()


def local_client(db_path: Path) -> PlatformClient:
    """A client of this process's API (same authentication, validation and errors as over the network)."""
    from core.api.bridge import InProcessTransport

    credentials = load_or_create(db_path)
    return PlatformClient(LOCAL_BASE_URL, credentials["clientId"], credentials["clientSecret"],
                          transport=InProcessTransport(_local_app()), max_retries=0)  # fmt: skip


def remote_secret_file(db_path: Path) -> Path:
    return sidecar(db_path, "remote-secret")
