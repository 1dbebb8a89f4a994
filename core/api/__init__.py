"""The HTTP API of ChargeLens (API.md), a FastAPI app mounted under /api in the serving process."""

from core.api.app import api_first, api_mount, create_app

__all__ = ["api_first", "api_mount", "create_app"]
