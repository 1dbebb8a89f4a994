"""The HTTP API of ChargeLens (API.md), a FastAPI app mounted under /api in the serving process."""

from core.api.app import create_app

__all__ = ["create_app"]
