"""Session detection: readings in, charge sessions out (pure polars, no I/O, no clock)."""

from __future__ import annotations

from core.detect.engine import Detection, detect, detect_sessions
from core.detect.params import DetectParams
from core.ids import session_id

__all__ = ["DetectParams", "Detection", "detect", "detect_sessions", "session_id"]
